/*
 * attn-multi-bench: one attention on one device against the same attention
 * cut over several contexts with clattn_multi_forward_host, in one
 * interleaved run (round-robin, so every variant sees the same machine
 * load). Both sides go through host memory (the multi-device call is a host
 * call), so the copies are in both. Variants:
 *   one        clattn_forward_host on the default device;
 *   sub x2     the default device's two halves (clCreateSubDevices,
 *              CL_DEVICE_PARTITION_EQUALLY), the cut sized by measured speeds;
 *   same x2    two contexts on the default device (what the cut and the
 *              threads cost where there is nothing to gain).
 * Printed: the median of every timed call and its ratio to `one`.
 *
 *   attn-multi-bench [--shape "B1 H8 S2048 D64 causal"] [--rounds N]
 *                    [--split auto|rows|keys|batch]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clattn.h"
#include "shapes.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void *random_bytes(size_t n, unsigned seed, clattn_dtype dt)
{
    /* values in [-1, 1) in the dtype (fp16 / bf16 through their bit
     * patterns: small exponents only, so no infinities) */
    unsigned char *p = malloc(n ? n : 1);
    unsigned s = seed;
    for (size_t i = 0; p && i < n; i += dt == CLATTN_F32 ? 4 : 2) {
        s = s * 1103515245u + 12345u;
        const float f = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
        if (dt == CLATTN_F32) {
            memcpy(p + i, &f, 4);
        } else {
            uint32_t u;
            memcpy(&u, &f, 4);
            const uint16_t h = dt == CLATTN_BF16 ? (uint16_t)(u >> 16)
                                                 : (uint16_t)(0x3000u | (s >> 20 & 0x3ff));
            memcpy(p + i, &h, 2);
        }
    }
    return p;
}

static void die_st(clattn_context *ctx, clattn_status st, const char *what)
{
    fprintf(stderr, "attn-multi-bench: %s: %s (%s)\n", what, clattn_status_string(st),
            clattn_last_error(ctx));
    exit(1);
}

int main(int argc, char **argv)
{
    const char *shape_text = "B1 H8 S2048 D64 causal";
    int rounds = 7, split = CLATTN_SPLIT_AUTO;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            shape_text = argv[++i];
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
            const char *v = argv[++i];
            split = !strcmp(v, "rows") ? CLATTN_SPLIT_ROWS
                    : !strcmp(v, "keys") ? CLATTN_SPLIT_KEYS
                    : !strcmp(v, "batch") ? CLATTN_SPLIT_BATCH
                                          : CLATTN_SPLIT_AUTO;
        } else {
            fprintf(stderr, "usage: attn-multi-bench [--shape S] [--rounds N] [--split S]\n");
            return 2;
        }
    }
    if (rounds < 1)
        rounds = 1;
    tool_shape s;
    char err[256];
    if (tool_shape_parse(shape_text, &s, err, sizeof err) != 1) {
        fprintf(stderr, "attn-multi-bench: --shape: %s\n", err);
        return 2;
    }
    clattn_context *one = NULL, *same = NULL, *sub[2] = {NULL, NULL};
    clattn_status st = clattn_context_create(NULL, &one);
    if (st != CLATTN_OK)
        die_st(NULL, st, "context");
    if ((st = clattn_context_create(NULL, &same)) != CLATTN_OK)
        die_st(NULL, st, "second context");
    cl_device_id dev, parts[2];
    clattn_context_get_cl(one, NULL, NULL, &dev);
    const cl_device_partition_property props[] = {CL_DEVICE_PARTITION_EQUALLY, 1, 0};
    cl_uint nsub = 0;
    cl_context subctx[2] = {NULL, NULL};
    cl_command_queue subq[2] = {NULL, NULL};
    const int have_sub =
        clCreateSubDevices(dev, props, 2, parts, &nsub) == CL_SUCCESS && nsub >= 2;
    for (int i = 0; have_sub && i < 2; ++i) {
        cl_int e;
        subctx[i] = clCreateContext(NULL, 1, &parts[i], NULL, NULL, &e);
        subq[i] = e == CL_SUCCESS ? clCreateCommandQueue(subctx[i], parts[i], 0, &e) : NULL;
        if (e != CL_SUCCESS || (st = clattn_context_create_from_queue(subq[i], NULL, &sub[i])) !=
                                   CLATTN_OK) {
            fprintf(stderr, "attn-multi-bench: sub-device %d unusable\n", i);
            return 1;
        }
    }
    char name[256];
    cl_uint units = 0;
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    char text[200];
    tool_shape_format(&s, text, sizeof text);
    printf("device: %s (%u compute units)%s\nshape: %s, %d rounds\n", name, units,
           have_sub ? ", cut into 2 sub-devices" : ", no sub-devices", text, rounds);

    int64_t nq, nk, nv, no;
    tool_shape_elements(&s, &nq, &nk, &nv, &no);
    const size_t es = s.p.dtype == CLATTN_F32 ? 4 : 2;
    void *q = random_bytes((size_t)nq * es, 1, s.p.dtype);
    void *k = random_bytes((size_t)nk * es, 2, s.p.dtype);
    void *v = random_bytes((size_t)nv * es, 3, s.p.dtype);
    void *o = malloc((size_t)no * es);
    if (!q || !k || !v || !o)
        return 1;
    clattn_host_buffers h = {0};
    h.q = q, h.k = k, h.v = v, h.o = o;
    clattn_context *pair_sub[2] = {sub[0], sub[1]}, *pair_same[2] = {one, same};
    enum { NV = 3 };
    const char *names[NV] = {"one", "sub x2", "same x2"};
    double *ms[NV];
    clattn_multi_report rep[NV];
    memset(rep, 0, sizeof rep);
    for (int x = 0; x < NV; ++x)
        ms[x] = calloc((size_t)rounds, sizeof(double));
    const clattn_multi_options opts = {split, NULL, {0}};
    for (int r = -1; r < rounds; ++r) /* round -1 builds kernels and measures speeds */
        for (int x = 0; x < NV; ++x) {
            if (x == 1 && !have_sub)
                continue;
            const double t0 = now_ms();
            if (x == 0)
                st = clattn_forward_host(one, &s.p, &h);
            else
                st = clattn_multi_forward_host(x == 1 ? pair_sub : pair_same, 2, &s.p, &h, &opts,
                                               &rep[x]);
            if (st != CLATTN_OK)
                die_st(x == 1 ? sub[0] : one, st, names[x]);
            if (r >= 0)
                ms[x][r] = now_ms() - t0;
        }
    const double base = median(ms[0], rounds);
    const double gflop = tool_shape_flops(&s) / 1e9;
    printf("%-8s %10s %8s %9s  %s\n", "variant", "median ms", "ratio", "GFLOP/s", "cut");
    for (int x = 0; x < NV; ++x) {
        if (x == 1 && !have_sub) {
            printf("%-8s %10s\n", names[x], "n/a");
            continue;
        }
        const double m = median(ms[x], rounds);
        char cut[96] = "";
        if (x > 0)
            snprintf(cut, sizeof cut, "%s %lld:%lld (speeds %.3g:%.3g)",
                     rep[x].split == CLATTN_SPLIT_ROWS   ? "rows"
                     : rep[x].split == CLATTN_SPLIT_KEYS ? "keys"
                                                         : "batch",
                     (long long)rep[x].share[0], (long long)rep[x].share[1], rep[x].weights[0],
                     rep[x].weights[1]);
        printf("%-8s %10.2f %8.2f %9.1f  %s\n", names[x], m, base / m, gflop / (m / 1e3), cut);
    }
    printf("ratio: one's median over the variant's (above 1 = faster than one device)\n");
    for (int x = 0; x < NV; ++x)
        free(ms[x]);
    free(q);
    free(k);
    free(v);
    free(o);
    clattn_context_destroy(one);
    clattn_context_destroy(same);
    for (int i = 0; i < 2; ++i) {
        clattn_context_destroy(sub[i]);
        if (subq[i])
            clReleaseCommandQueue(subq[i]);
        if (subctx[i])
            clReleaseContext(subctx[i]);
        if (have_sub)
            clReleaseDevice(parts[i]);
    }
    return 0;
}
