/*
 * attn-kv-bench: decode speed with each K/V storage format, contiguous and
 * paged, against fp32 K/V on the same shape in the same run (speed lives in
 * benchmarks, never in tests). Variants are timed round-robin, a few calls
 * per round, so all see the same machine load. Printed per variant: the
 * median over every timed call, its ratio to fp32 contiguous (speed-up =
 * fp32 / variant), and the rate of the K/V bytes the call reads (data and
 * scales of every visible key) against the device's read bandwidth measured
 * in the same run.
 *
 *   attn-kv-bench [--shape "B4 H32 Hkv8 Sq1 Skv4096 D128"] [--rounds N]
 *                 [--calls N] [--page N] [--in-order] [--resident N]
 *                 [--warm] [--contiguous] [--only fp32,int8,...]
 *                 [--path split_kv|fused|auto]
 *
 * Paged variants use one pool with each sequence's pages in shuffled order
 * (--in-order: in order, to tell the cost of the scattered reads from the
 * cost of the lookups). --resident N points every table entry at one of N
 * pages, so the paged variants do all their arithmetic on K/V that stays in
 * cache: the time a call would take if reading memory cost nothing, to
 * tell a compute-bound format from a memory-bound one.
 *
 * Before every timed call the device's cache is swept (a read of twice its
 * global memory cache size), as in a decode loop, where a layer's K/V comes
 * back round only after every other layer's: on a host whose last-level
 * cache holds one variant's K/V (a 480 MiB L3 held int8's and fp16's), the
 * calls after the first read it from cache, and a paged variant after the
 * contiguous one that shares its buffers read it warm, which made paged
 * look 1.1-1.4x faster than contiguous on identical addresses
 * (BENCHMARKS.md, 2026-12-04). --warm skips the sweep.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clattn.h"
#include "tool.h"

typedef struct variant {
    char name[48];
    clattn_problem p;
    clattn_buffers b;
    double kv_bytes; /* K and V bytes one call reads */
    double *ms;
    int n;
} variant;

static const struct {
    const char *name;
    clattn_kv_storage st;
} k_formats[] = {
    {"fp32", {CLATTN_KV_DEFAULT, 0, 0, 0}},
    {"fp16", {CLATTN_KV_F16, 0, 0, 0}},
    {"bf16", {CLATTN_KV_BF16, 0, 0, 0}},
    {"int8 per token", {CLATTN_KV_INT8, 0, CLATTN_F32, 0}},
    {"int8 g32", {CLATTN_KV_INT8, 32, CLATTN_F16, 0}},
    {"int4 g32", {CLATTN_KV_INT4, 32, CLATTN_F16, 0}},
    {"q8_0", {CLATTN_KV_Q8_0, 0, 0, 0}},
    {"q4_0", {CLATTN_KV_Q4_0, 0, 0, 0}},
    {"fp8 e4m3", {CLATTN_KV_FP8_E4M3, 0, CLATTN_F32, 0}},
    {"fp8 e5m2", {CLATTN_KV_FP8_E5M2, 0, CLATTN_F32, 0}},
};
#define N_FORMATS ((int)(sizeof k_formats / sizeof k_formats[0]))

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

static unsigned next(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
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

/* Bytes of a row of `dims` channels and of its scales (per row). */
static size_t row_bytes(const clattn_kv_storage *st, int dims)
{
    switch (st->format) {
    case CLATTN_KV_DEFAULT:
        return (size_t)dims * 4;
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        return (size_t)dims * 2;
    case CLATTN_KV_INT4:
        return (size_t)dims / 2;
    case CLATTN_KV_Q8_0:
        return (size_t)dims / 32 * 34;
    case CLATTN_KV_Q4_0:
        return (size_t)dims / 32 * 18;
    default:
        return (size_t)dims;
    }
}

static size_t scale_row_bytes(const clattn_kv_storage *st, int dims)
{
    const size_t s = st->scale_dtype == CLATTN_F16 ? 2 : 4;
    const size_t groups = st->group ? (size_t)(dims / st->group) : 1;
    return st->format == CLATTN_KV_INT8 ? groups * s : st->format == CLATTN_KV_INT4 ? 2 * groups * s : 0;
}

/* Valid random contents of `rows` rows in format st (finite values of
 * magnitude about 1 and below, never NaN codes). */
static void fill(const clattn_kv_storage *st, int dims, size_t rows, unsigned char *data,
                 unsigned char *scales, unsigned *seed)
{
    const size_t rb = row_bytes(st, dims);
    for (size_t i = 0; i < rows * rb; ++i)
        data[i] = (unsigned char)next(seed);
    if (st->format == CLATTN_KV_DEFAULT)
        for (size_t i = 0; i < rows * (size_t)dims; ++i)
            ((float *)data)[i] = (float)(next(seed) % 2001) / 1000.0f - 1.0f;
    if (st->format == CLATTN_KV_F16 || st->format == CLATTN_KV_BF16)
        for (size_t i = 0; i < rows * (size_t)dims; ++i) /* exponents 2^-8..2^-1 */
            ((unsigned short *)data)[i] =
                (unsigned short)((st->format == CLATTN_KV_F16 ? 0x2000 : 0x3b80) |
                                 (next(seed) & 0x83ff));
    if (st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2)
        for (size_t i = 0; i < rows * rb; ++i)
            data[i] &= 0xbf;
    if (st->format == CLATTN_KV_Q8_0 || st->format == CLATTN_KV_Q4_0)
        for (size_t r = 0; r < rows; ++r)
            for (int b = 0; b < dims / 32; ++b) { /* fp16 scale 1/64 */
                unsigned char *blk = data + r * rb + (size_t)b * (rb / (size_t)(dims / 32));
                blk[0] = 0x00;
                blk[1] = 0x24;
            }
    const size_t sb = scale_row_bytes(st, dims);
    if (scales && sb) {
        const size_t n = rows * sb / (st->scale_dtype == CLATTN_F16 ? 2 : 4);
        for (size_t i = 0; i < n; ++i) {
            if (st->scale_dtype == CLATTN_F16)
                ((unsigned short *)scales)[i] = 0x2000; /* 2^-7 */
            else
                ((float *)scales)[i] = 1.0f / 128.0f;
        }
    } else if (scales) {
        ((float *)scales)[0] = 1.0f / 64.0f;
    }
}

/* Warms every variant up (its kernels build), then times them round-robin:
 * rounds x calls forwards each, interleaved so all see the same load, the
 * cache swept before each (sw). Returns 0, or 1 when a forward fails. */
static int time_variants(clattn_context *ctx, variant *vs, int nv, int rounds, int calls,
                         const bench_sweep *sw)
{
    for (int i = 0; i < nv; ++i) {
        vs[i].ms = malloc(sizeof(double) * (size_t)rounds * (size_t)calls);
        cl_event e; /* warm-up: builds the variant's kernels */
        const clattn_status st = clattn_forward(ctx, &vs[i].p, &vs[i].b, 0, NULL, &e);
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
                if (bench_sweep_run(sw) != CL_SUCCESS) {
                    fprintf(stderr, "the cache sweep before a timed call failed\n");
                    return 1;
                }
                const double t0 = tool_now();
                if (clattn_forward(ctx, &vs[i].p, &vs[i].b, 0, NULL, &e) != CLATTN_OK)
                    return 1;
                clWaitForEvents(1, &e);
                vs[i].ms[vs[i].n++] = (tool_now() - t0) * 1e3;
                clReleaseEvent(e);
            }
    return 0;
}

/* What the command line chose. */
typedef struct options {
    int B, H, Hkv, Sq, Skv, D, rounds, calls, page;
    int shuffle, contiguous_only, resident, warm;
    const char *only;
    clattn_path path;
} options;

/* Returns 0, or 2 after a usage message. */
static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.B = 4, .H = 32, .Hkv = 8, .Sq = 1, .Skv = 4096, .D = 128, .rounds = 7,
                   .calls = 3, .page = 16, .shuffle = 1, .path = CLATTN_PATH_AUTO};
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            if (sscanf(argv[++i], "B%d H%d Hkv%d Sq%d Skv%d D%d", &o->B, &o->H, &o->Hkv, &o->Sq,
                       &o->Skv, &o->D) != 6) {
                fprintf(stderr, "--shape takes \"B<n> H<n> Hkv<n> Sq<n> Skv<n> D<n>\"\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            o->rounds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--calls") && i + 1 < argc) {
            o->calls = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            o->only = argv[++i];
        } else if (!strcmp(argv[i], "--contiguous")) {
            o->contiguous_only = 1;
        } else if (!strcmp(argv[i], "--warm")) {
            o->warm = 1;
        } else if (!strcmp(argv[i], "--in-order")) {
            o->shuffle = 0;
        } else if (!strcmp(argv[i], "--resident") && i + 1 < argc) {
            o->resident = atoi(argv[++i]);
            if (o->resident <= 0) {
                fprintf(stderr, "--resident takes a number of pages, at least 1\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--page") && i + 1 < argc) {
            o->page = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            const char *v = argv[++i];
            o->path = !strcmp(v, "fused")      ? CLATTN_PATH_FUSED
                      : !strcmp(v, "split_kv") ? CLATTN_PATH_SPLIT_KV
                                               : CLATTN_PATH_AUTO;
        } else {
            fprintf(stderr,
                    "usage: %s [--shape \"B4 H32 Hkv8 Sq1 Skv4096 D128\"] [--rounds N] "
                    "[--calls N] [--page N] [--in-order] [--resident N] [--warm] [--contiguous] "
                    "[--only fp32,int8,...] "
                    "[--path split_kv|fused|auto]\n",
                    argv[0]);
            return 2;
        }
    }
    if (o->B <= 0 || o->H <= 0 || o->Hkv <= 0 || o->H % o->Hkv || o->Sq <= 0 || o->Skv <= 0 ||
        o->D <= 0 || o->D % 32 || o->rounds <= 0 || o->calls <= 0 || o->page <= 0 ||
        (o->page & (o->page - 1)) || o->page > 256) {
        fprintf(stderr, "%s: a count is not positive, H is not a multiple of Hkv, D not of 32, "
                        "or the page not a power of two up to 256\n", argv[0]);
        return 2;
    }
    return 0;
}

/* --only keeps a format whose name starts with one of its entries; fp32,
 * the baseline, is always kept. */
static int format_selected(const options *o, int f)
{
    if (f == 0 || !o->only)
        return 1;
    char list[256];
    snprintf(list, sizeof list, "%s", o->only);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!strncmp(k_formats[f].name, t, strlen(t)))
            return 1;
    return 0;
}

/* The buffers every variant shares: Q, O and the block table of a pool with
 * each sequence's pages (shuffled unless --in-order). */
typedef struct shared_buffers {
    cl_mem q, o, table;
    int mp, npages; /* pages per sequence, in the pool */
} shared_buffers;

static void make_shared(cl_context cl, const options *op, unsigned *seed, shared_buffers *sh)
{
    const size_t nq = (size_t)op->B * op->H * op->Sq * op->D;
    float *qh = malloc(nq * 4);
    for (size_t i = 0; i < nq; ++i)
        qh[i] = (float)(next(seed) % 2001) / 1000.0f - 1.0f;
    sh->q = buffer(cl, nq * 4, qh);
    sh->o = buffer(cl, nq * 4, NULL);
    free(qh);

    sh->mp = (op->Skv + op->page - 1) / op->page;
    sh->npages = op->B * sh->mp;
    int32_t *table = malloc(sizeof *table * (size_t)sh->npages);
    for (int i = 0; i < sh->npages; ++i)
        table[i] = i;
    for (int i = sh->npages - 1; op->shuffle && i > 0; --i) {
        const int j = (int)(next(seed) % (unsigned)(i + 1)), t = table[i];
        table[i] = table[j];
        table[j] = t;
    }
    for (int i = 0; op->resident && i < sh->npages; ++i)
        table[i] %= op->resident;
    sh->table = buffer(cl, sizeof *table * (size_t)sh->npages, table);
    free(table);
}

/* Format f's K/V data (one set of rows serves contiguous and paged, which
 * hold the same number of rows) and its variants; the buffers made go to
 * owned. Returns the number of variants added. */
static int add_format_variants(cl_context cl, const options *op, const shared_buffers *sh, int f,
                               unsigned *seed, variant *out, cl_mem *owned, int *nowned)
{
    const clattn_kv_storage *st = &k_formats[f].st;
    const size_t rows = (size_t)op->B * op->Hkv * (size_t)sh->mp * op->page;
    const size_t rb = row_bytes(st, op->D), sb = scale_row_bytes(st, op->D);
    unsigned char *data = malloc(rows * rb);
    unsigned char *sc = malloc(sb ? rows * sb : 4);
    fill(st, op->D, rows, data, sc, seed);
    const int fp8 = st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2;
    cl_mem kd = buffer(cl, rows * rb, data), vd = buffer(cl, rows * rb, data);
    cl_mem ks = sb || fp8 ? buffer(cl, sb ? rows * sb : 4, sc) : NULL;
    free(data);
    free(sc);
    owned[(*nowned)++] = kd;
    owned[(*nowned)++] = vd;
    if (ks)
        owned[(*nowned)++] = ks;
    const clattn_problem base = {.batch = op->B, .heads = op->H, .kv_heads = op->Hkv,
                                 .seq_q = op->Sq, .seq_kv = op->Skv, .head_dim = op->D,
                                 .path = op->path};
    int n = 0;
    for (int paged = 0; paged < 2 - op->contiguous_only; ++paged) {
        variant *x = &out[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s%s", k_formats[f].name, paged ? " paged" : "");
        x->p = base;
        x->p.k_storage = x->p.v_storage = *st;
        x->p.k_strides.seq = x->p.v_strides.seq = 0;
        if (paged) {
            x->p.paged.enabled = 1;
            x->p.paged.page_size = op->page;
            x->p.paged.num_pages = sh->npages;
            x->p.paged.max_pages_per_seq = sh->mp;
        }
        x->b.q = sh->q;
        x->b.o = sh->o;
        x->b.k = kd;
        x->b.v = vd;
        x->b.k_scales = x->b.v_scales = ks;
        x->b.block_table = paged ? sh->table : NULL;
        x->kv_bytes = 2.0 * op->B * op->Hkv * (double)op->Skv * (double)(rb + sb);
    }
    return n;
}

static void print_report(const options *op, const char *dev_name, const char *pinning,
                         const bench_peaks *pk, const bench_sweep *sw, variant *vs, int nv)
{
    printf("attn-kv-bench: %s, B%d H%d Hkv%d Sq%d Skv%d D%d, fp32 queries, path %d, "
           "page %d, %d rounds x %d calls interleaved\n",
           dev_name, op->B, op->H, op->Hkv, op->Sq, op->Skv, op->D, (int)op->path, op->page,
           op->rounds, op->calls);
    printf("%s\n", pinning);
    if (op->resident)
        printf("paged variants read %d page%s over and over (--resident): in cache if they fit\n",
               op->resident, op->resident == 1 ? "" : "s");
    bench_print_sweep_text(sw, op->warm);
    printf("device read bandwidth: %.1f GB/s (%s)\n", pk->read_gbps, pk->read_note);
    printf("%-22s %10s %9s %10s %9s %8s\n", "K/V storage", "median ms", "speed-up",
           "KV MB/call", "KV GB/s", "% read");
    const double base_ms = median(vs[0].ms, vs[0].n);
    for (int i = 0; i < nv; ++i) {
        const double m = median(vs[i].ms, vs[i].n);
        const double gbps = vs[i].kv_bytes / (m * 1e-3) * 1e-9;
        printf("%-22s %10.3f %9.2f %10.1f %9.1f %8.0f\n", vs[i].name, m, base_ms / m,
               vs[i].kv_bytes * 1e-6, gbps,
               pk->read_gbps > 0 ? 100.0 * gbps / pk->read_gbps : 0.0);
    }
}

int main(int argc, char **argv)
{
    options op;
    if (parse_options(argc, argv, &op) != 0)
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

    /* The device's read bandwidth, measured now, as attn-tune bench does. */
    bench_peaks pk;
    memset(&pk, 0, sizeof pk);
    char msg[4096];
    cl_program prog = bench_build_kernels(cl, dev, 64, msg, sizeof msg);
    bench_sweep sw;
    memset(&sw, 0, sizeof sw);
    if (prog) {
        bench_read_bandwidth(cl, queue, dev, prog, &pk);
        if (!op.warm)
            bench_sweep_init(&sw, cl, queue, dev, prog);
        clReleaseProgram(prog);
    }

    unsigned seed = 1;
    shared_buffers sh;
    make_shared(cl, &op, &seed, &sh);
    variant vs[2 * N_FORMATS];
    cl_mem owned[3 * N_FORMATS];
    int nv = 0, nowned = 0;
    for (int f = 0; f < N_FORMATS; ++f)
        if (format_selected(&op, f))
            nv += add_format_variants(cl, &op, &sh, f, &seed, vs + nv, owned, &nowned);

    const int failed = time_variants(ctx, vs, nv, op.rounds, op.calls, &sw) != 0;
    if (!failed)
        print_report(&op, dev_name, pinning, &pk, &sw, vs, nv);
    bench_sweep_release(&sw);
    for (int i = 0; i < nv; ++i)
        free(vs[i].ms);
    for (int i = 0; i < nowned; ++i)
        clReleaseMemObject(owned[i]);
    clReleaseMemObject(sh.q);
    clReleaseMemObject(sh.o);
    clReleaseMemObject(sh.table);
    clattn_context_destroy(ctx);
    return failed;
}
