/*
 * attn-feature-bench: what each score feature costs over the plain problem,
 * on one shape, measured in one interleaved run (speed lives in benchmarks,
 * never in tests). Every variant is timed round-robin, a few calls per
 * round, so all of them see the same machine load; printed are the median
 * over every timed call and the ratio to the plain problem's median.
 *
 *   attn-feature-bench [--shape "B1 H8 S1024 D64"] [--rounds N] [--calls N]
 *                      [--path fused|three_stage|split_kv|auto]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"

enum { MAX_VARIANTS = 16 };

typedef struct variant {
    const char *name;
    clattn_problem p;
    clattn_buffers b;
    double *ms;
    int n;
} variant;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static cl_mem buffer(cl_context c, size_t bytes, const void *init)
{
    cl_int err;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void *)init, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clCreateBuffer(%zu bytes) failed: %d\n", bytes, (int)err);
        exit(1);
    }
    return m;
}

static float *random_floats(size_t n, unsigned seed)
{
    float *f = malloc(n * sizeof *f);
    if (!f)
        exit(1);
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        f[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
    return f;
}

int main(int argc, char **argv)
{
    int B = 1, H = 8, S = 1024, D = 64, rounds = 7, calls = 3;
    clattn_path path = CLATTN_PATH_AUTO;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            if (sscanf(argv[++i], "B%d H%d S%d D%d", &B, &H, &S, &D) != 4) {
                fprintf(stderr, "--shape takes \"B<n> H<n> S<n> D<n>\"\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--calls") && i + 1 < argc) {
            calls = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            const char *v = argv[++i];
            path = !strcmp(v, "fused")         ? CLATTN_PATH_FUSED
                   : !strcmp(v, "three_stage") ? CLATTN_PATH_THREE_STAGE
                   : !strcmp(v, "split_kv")    ? CLATTN_PATH_SPLIT_KV
                                               : CLATTN_PATH_AUTO;
        } else {
            fprintf(stderr, "usage: %s [--shape \"B1 H8 S1024 D64\"] [--rounds N] [--calls N] "
                            "[--path fused|three_stage|split_kv|auto]\n",
                    argv[0]);
            return 2;
        }
    }
    if (B <= 0 || H <= 0 || S <= 0 || D <= 0 || rounds <= 0 || calls <= 0)
        return 2;

    const char *pinning = tool_pin_pocl_threads();
    clattn_context *ctx;
    if (clattn_context_create(NULL, &ctx) != CLATTN_OK) {
        fprintf(stderr, "no context\n");
        return 1;
    }
    cl_context cl;
    cl_command_queue queue;
    cl_device_id dev;
    clattn_context_get_cl(ctx, &cl, &queue, &dev);
    char dev_name[256] = "";
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof dev_name, dev_name, NULL);

    const size_t n = (size_t)B * H * S * D;
    float *host = random_floats(n, 1);
    cl_mem q = buffer(cl, n * 4, host), k = buffer(cl, n * 4, host), v = buffer(cl, n * 4, host);
    cl_mem o = buffer(cl, n * 4, NULL);
    free(host);
    float *sinks = random_floats((size_t)H, 7), slopes[1024];
    clattn_alibi_slopes(H < 1024 ? H : 1024, slopes);
    /* A padding mask as transformers hands it over: [B,1,1,S], the last
     * eighth of the keys hidden. */
    unsigned char *pad = malloc((size_t)B * S);
    float *padf = malloc((size_t)B * S * 4);
    for (int i = 0; i < B * S; ++i) {
        pad[i] = (unsigned char)(i % S < S - S / 8);
        padf[i] = pad[i] ? 0.0f : -INFINITY;
    }
    cl_mem sink_m = buffer(cl, (size_t)H * 4, sinks), slope_m = buffer(cl, (size_t)H * 4, slopes);
    cl_mem pad_m = buffer(cl, (size_t)B * S, pad), padf_m = buffer(cl, (size_t)B * S * 4, padf);
    free(sinks);
    free(pad);
    free(padf);

    const clattn_problem base = {.batch = B, .heads = H, .seq_q = S, .seq_kv = S, .head_dim = D,
                                 .path = path};
    const clattn_buffers bb = {.q = q, .k = k, .v = v, .o = o};
    variant vs[MAX_VARIANTS];
    int nv = 0;
#define ADD(NAME, SETUP)                                                                      \
    do {                                                                                      \
        variant *x = &vs[nv++];                                                               \
        memset(x, 0, sizeof *x);                                                              \
        x->name = NAME;                                                                       \
        x->p = base;                                                                          \
        x->b = bb;                                                                            \
        clattn_problem *p = &x->p;                                                            \
        clattn_buffers *b = &x->b;                                                            \
        (void)p;                                                                              \
        (void)b;                                                                              \
        SETUP;                                                                                \
    } while (0)
    const clattn_mask_strides bcast = {S, 0, 0};
    ADD("plain", (void)0);
    ADD("softcap 30", p->softcap = 30.0f);
    ADD("sinks", (p->sinks = 1, b->sinks = sink_m));
    ADD("alibi", (p->alibi = 1, b->alibi_slopes = slope_m));
    ADD("alibi symmetric",
        (p->alibi = 1, p->alibi_mode = CLATTN_ALIBI_SYMMETRIC, b->alibi_slopes = slope_m));
    ADD("bool mask [B,1,1,S]",
        (p->bool_mask.enabled = 1, p->bool_mask.strides = bcast, b->bool_mask = pad_m));
    ADD("f32 bias [B,1,1,S]",
        (p->bias.enabled = 1, p->bias.strides = bcast, b->bias = padf_m));
    ADD("causal", p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT);
    ADD("causal + chunk 128", (p->causal = 1, p->chunk_size = 128));
    ADD("causal + softcap + sinks",
        (p->causal = 1, p->softcap = 30.0f, p->sinks = 1, b->sinks = sink_m));
#undef ADD

    for (int i = 0; i < nv; ++i) {
        vs[i].ms = malloc(sizeof(double) * (size_t)rounds * (size_t)calls);
        /* Warm-up: builds the variant's kernels. */
        cl_event e;
        clattn_status st = clattn_forward(ctx, &vs[i].p, &vs[i].b, 0, NULL, &e);
        if (st != CLATTN_OK) {
            fprintf(stderr, "%s: %s: %s\n", vs[i].name, clattn_status_string(st),
                    clattn_last_error(ctx));
            return 1;
        }
        clWaitForEvents(1, &e);
        clReleaseEvent(e);
    }
    for (int r = 0; r < rounds; ++r)
        for (int i = 0; i < nv; ++i)
            for (int c = 0; c < calls; ++c) {
                cl_event e;
                const double t0 = now_ms();
                if (clattn_forward(ctx, &vs[i].p, &vs[i].b, 0, NULL, &e) != CLATTN_OK)
                    return 1;
                clWaitForEvents(1, &e);
                vs[i].ms[vs[i].n++] = now_ms() - t0;
                clReleaseEvent(e);
            }
    printf("attn-feature-bench: %s, B%d H%d S%d D%d fp32, path %d, %d rounds x %d calls "
           "interleaved\n",
           dev_name, B, H, S, D, (int)path, rounds, calls);
    printf("%s\n", pinning);
    printf("%-26s %10s %8s\n", "variant", "median ms", "vs plain");
    const double plain = median(vs[0].ms, vs[0].n);
    for (int i = 0; i < nv; ++i) {
        const double m = median(vs[i].ms, vs[i].n);
        printf("%-26s %10.3f %8.3f\n", vs[i].name, m, m / plain);
        free(vs[i].ms);
    }
    cl_mem all[] = {q, k, v, o, sink_m, slope_m, pad_m, padf_m};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        clReleaseMemObject(all[i]);
    clattn_context_destroy(ctx);
    return 0;
}
