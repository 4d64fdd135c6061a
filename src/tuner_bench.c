/* Buffers, checks and timings for the tuner. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "internal.h"
#include "kv_host.h"
#include "tuner_bench.h"

#define SAMPLE_MS 2.0

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double clattn__quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double pos = q * (n - 1);
    int lo = (int)pos;
    int hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

/* Runs plan reps times back to back; *ms is the mean device time per run of
 * the kernels in mask. */
static clattn_status run_timed(clattn__bench *t, clattn__plan *plan, unsigned mask, int reps,
                               double *ms)
{
    clattn_context *ctx = t->ctx;
    clattn__launch_record rec = {0};
    clattn_status st = CLATTN_OK;
    for (int r = 0; r < reps && st == CLATTN_OK; ++r)
        st = clattn__enqueue_plan(ctx, &t->s, plan, &t->buf, 0, NULL, NULL, NULL, &rec);
    if (st == CLATTN_OK) {
        cl_int err = clFinish(ctx->queue);
        if (err != CL_SUCCESS)
            st = clattn__cl_fail(ctx, err, "clFinish");
    }
    double total = 0;
    for (size_t i = 0; i < rec.count && st == CLATTN_OK; ++i) {
        if (!(mask & (1u << rec.ids[i])))
            continue;
        cl_ulong a = 0, b = 0;
        /* A library call (CLBlast) runs between two markers. */
        cl_event from = rec.starts[i] ? rec.starts[i] : rec.events[i];
        cl_profiling_info what = rec.starts[i] ? CL_PROFILING_COMMAND_END
                                               : CL_PROFILING_COMMAND_START;
        cl_int err = clGetEventProfilingInfo(from, what, sizeof a, &a, NULL);
        if (err == CL_SUCCESS)
            err = clGetEventProfilingInfo(rec.events[i], CL_PROFILING_COMMAND_END, sizeof b, &b,
                                          NULL);
        if (err != CL_SUCCESS)
            st = clattn__cl_fail(ctx, err, "clGetEventProfilingInfo");
        total += (double)(b - a) * 1e-6;
    }
    clattn__launch_record_release(&rec);
    *ms = total / reps;
    return st;
}

/* Poisons O, runs plan once, compares the sampled rows with the reference.
 * Returns CLATTN_OK and the error, or the failure of the run. */
clattn_status clattn__bench_check(clattn__bench *t, clattn__plan *plan, double *err)
{
    clattn_context *ctx = t->ctx;
    const cl_uchar poison = 0xff; /* NaN in every dtype */
    CLATTN_CL_TRY(ctx,
                  clEnqueueFillBuffer(ctx->queue, t->buf.o, &poison, 1, 0, t->o_bytes, 0, NULL,
                                      NULL),
                  "clEnqueueFillBuffer");
    CLATTN_TRY(clattn__enqueue_plan(ctx, &t->s, plan, &t->buf, 0, NULL, NULL, NULL, NULL));
    CLATTN_CL_TRY(ctx,
                  clEnqueueReadBuffer(ctx->queue, t->buf.o, CL_TRUE, 0, t->o_bytes, t->host_o, 0,
                                      NULL, NULL),
                  "clEnqueueReadBuffer");
    *err = clattn__ref_rows_error(&t->s, &t->ref, t->host_o);
    return CLATTN_OK;
}

/* Times plan: a warm-up run, then samples; stops early when the first
 * samples are all slower than cut_ms (0 = never). */
clattn_status clattn__bench_measure(clattn__bench *t, clattn__plan *plan, unsigned mask, int samples,
                             double cut_ms, clattn__timing *out)
{
    double one;
    out->ok = 0;
    CLATTN_TRY(run_timed(t, plan, mask, 1, &one));
    int reps = one > 0 ? (int)ceil(SAMPLE_MS / one) : 50;
    if (reps < 1)
        reps = 1;
    if (reps > 50)
        reps = 50;
    double v[16];
    int n = 0;
    for (; n < samples && n < 16; ++n) {
        CLATTN_TRY(run_timed(t, plan, mask, reps, &v[n]));
        if (cut_ms > 0 && n == 1 && v[0] > cut_ms && v[1] > cut_ms) {
            ++n;
            break;
        }
    }
    out->median = clattn__quantile(v, n, 0.5);
    out->p20 = clattn__quantile(v, n, 0.2);
    out->p80 = clattn__quantile(v, n, 0.8);
    out->ok = 1;
    return CLATTN_OK;
}

void clattn__bench_free(clattn__bench *t)
{
    cl_mem *m[10] = {&t->buf.q,     &t->buf.k,     &t->buf.v,           &t->buf.o,
                     &t->buf.lse,   &t->buf.sinks, &t->buf.alibi_slopes, &t->buf.block_table,
                     &t->buf.k_scales, &t->buf.v_scales};
    clFinish(t->ctx->queue);
    for (int i = 0; i < 10; ++i)
        if (*m[i]) {
            clReleaseMemObject(*m[i]);
            *m[i] = NULL;
        }
    free(t->host_o);
    t->host_o = NULL;
    clattn__ref_rows_free(&t->ref);
}

static clattn_status make_buffer(clattn__bench *t, cl_mem *out, const void *init, size_t bytes)
{
    cl_int err;
    *out = clCreateBuffer(t->ctx->cl_ctx,
                          CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                          (void *)init, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return clattn__cl_fail(t->ctx, err, "clCreateBuffer (tune)");
    }
    return CLATTN_OK;
}

/* A block table for a paged shape: each sequence's pages drawn from a
 * shuffled pool (pages in no order, as a cache allocator leaves them);
 * sequences share pages where the pool is smaller than all their pages. */
static void make_table(const clattn_problem *p, uint32_t seed, int32_t *table, int32_t *perm)
{
    const int n = p->paged.num_pages, cols = p->paged.max_pages_per_seq;
    const int used = (p->seq_kv + p->paged.page_size - 1) / p->paged.page_size;
    uint32_t x = seed * 2654435761u + 7u;
    for (int i = 0; i < n; ++i)
        perm[i] = i;
    for (int i = n - 1; i > 0; --i) {
        x = x * 1664525u + 1013904223u;
        const int k = (int)((x >> 8) % (uint32_t)(i + 1)), tmp = perm[i];
        perm[i] = perm[k];
        perm[k] = tmp;
    }
    for (int b = 0; b < p->batch; ++b)
        for (int c = 0; c < cols; ++c)
            table[(int64_t)b * cols + c] = perm[((int64_t)b * used + c) % n];
}

/* K and V in the problem's storage: random valid contents, scales and
 * block table, and their values decoded as the kernels see them, packed
 * [batch][kv_heads][seq_kv][dim] for the reference. */
typedef struct bench_kv {
    void *data[2], *scales[2];
    int32_t *table, *perm;
    float *dec[2];
} bench_kv;

static void bench_kv_free(bench_kv *kv)
{
    for (int i = 0; i < 2; ++i) {
        free(kv->data[i]);
        free(kv->scales[i]);
        free(kv->dec[i]);
    }
    free(kv->table);
    free(kv->perm);
}

static int bench_kv_make(const clattn__shape *s, uint32_t seed, bench_kv *kv)
{
    const clattn_problem *p = &s->p;
    const int64_t bytes[2] = {s->k_bytes, s->v_bytes},
                  sbytes[2] = {s->k_scale_bytes, s->v_scale_bytes};
    const int dims[2] = {p->head_dim, p->head_dim_v};
    memset(kv, 0, sizeof *kv);
    if (p->paged.enabled) {
        kv->table = malloc((size_t)s->table_elems * sizeof *kv->table);
        kv->perm = malloc((size_t)p->paged.num_pages * sizeof *kv->perm);
        if (!kv->table || !kv->perm)
            return -1;
        make_table(p, seed, kv->table, kv->perm);
    }
    for (int i = 0; i < 2; ++i) {
        const size_t rows = (size_t)p->batch * (size_t)p->kv_heads * (size_t)p->seq_kv;
        kv->data[i] = malloc((size_t)bytes[i]);
        kv->scales[i] = sbytes[i] ? malloc((size_t)sbytes[i]) : NULL;
        kv->dec[i] = malloc(rows * (size_t)dims[i] * sizeof(float));
        if (!kv->data[i] || (sbytes[i] && !kv->scales[i]) || !kv->dec[i])
            return -1;
        clattn__kv_host_fill(s, i, 2 + i + 3 * seed, kv->data[i], kv->scales[i]);
        for (int b = 0; b < p->batch; ++b)
            for (int h = 0; h < p->kv_heads; ++h)
                for (int j = 0; j < p->seq_kv; ++j)
                    clattn__kv_host_row(
                        s, i, kv->data[i], kv->scales[i], kv->table, b, h, j,
                        kv->dec[i] + (((size_t)b * p->kv_heads + h) * p->seq_kv + j) * dims[i]);
    }
    return 0;
}

clattn_status clattn__bench_setup(clattn_context *ctx, const clattn_problem *shape,
                                  uint32_t seed, clattn__bench *t)
{
    memset(t, 0, sizeof *t);
    t->ctx = ctx;
    clattn_problem p = *shape;
    memset(&p.q_strides, 0, sizeof p.q_strides);
    memset(&p.k_strides, 0, sizeof p.k_strides);
    memset(&p.v_strides, 0, sizeof p.v_strides);
    memset(&p.o_strides, 0, sizeof p.o_strides);
    p.mask_batch_stride = p.mask_head_stride = 0;
    CLATTN_TRY(clattn__problem_normalize(ctx, &p, &t->s));
    const size_t es = t->s.elem_size;
    const size_t nq = (size_t)t->s.q_extent;
    void *q = malloc(nq * es);
    bench_kv kv;
    t->o_bytes = (size_t)t->s.o_extent * es;
    t->host_o = malloc(t->o_bytes);
    clattn_status st = CLATTN_OK;
    if (bench_kv_make(&t->s, seed, &kv) != 0 || !q || !t->host_o)
        st = clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    if (st == CLATTN_OK) {
        clattn__fill_random(q, p.dtype, nq, 1 + 3 * seed);
        /* Sinks around the scores' range; ALiBi's standard slopes. */
        for (int h = 0; h < p.heads && h < CLATTN__TUNE_MAX_HEADS; ++h)
            t->sinks[h] = (float)(h % 5) * 0.5f - 1.0f;
        clattn_alibi_slopes(p.heads < CLATTN__TUNE_MAX_HEADS ? p.heads : CLATTN__TUNE_MAX_HEADS,
                            t->slopes);
        if (clattn__ref_rows_make(&t->s, q, kv.dec[0], kv.dec[1], t->sinks, t->slopes,
                                  &t->ref) != 0)
            st = clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    }
    if (st == CLATTN_OK)
        st = make_buffer(t, &t->buf.q, q, nq * es);
    if (st == CLATTN_OK)
        st = make_buffer(t, &t->buf.k, kv.data[0], (size_t)t->s.k_bytes);
    if (st == CLATTN_OK)
        st = make_buffer(t, &t->buf.v, kv.data[1], (size_t)t->s.v_bytes);
    if (st == CLATTN_OK && t->s.k_scale_bytes)
        st = make_buffer(t, &t->buf.k_scales, kv.scales[0], (size_t)t->s.k_scale_bytes);
    if (st == CLATTN_OK && t->s.v_scale_bytes)
        st = make_buffer(t, &t->buf.v_scales, kv.scales[1], (size_t)t->s.v_scale_bytes);
    if (st == CLATTN_OK && p.paged.enabled)
        st = make_buffer(t, &t->buf.block_table, kv.table,
                         (size_t)t->s.table_elems * sizeof(int32_t));
    if (st == CLATTN_OK)
        st = make_buffer(t, &t->buf.o, NULL, t->o_bytes);
    if (st == CLATTN_OK)
        st = make_buffer(t, &t->buf.lse, NULL, (size_t)t->s.lse_elems * sizeof(float));
    if (st == CLATTN_OK && p.heads > CLATTN__TUNE_MAX_HEADS && (p.sinks || p.alibi))
        st = clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                          "tuning with sinks or ALiBi takes at most %d heads",
                          CLATTN__TUNE_MAX_HEADS);
    if (st == CLATTN_OK && p.sinks)
        st = make_buffer(t, &t->buf.sinks, t->sinks, (size_t)p.heads * sizeof(float));
    if (st == CLATTN_OK && p.alibi)
        st = make_buffer(t, &t->buf.alibi_slopes, t->slopes, (size_t)p.heads * sizeof(float));
    free(q);
    bench_kv_free(&kv);
    return st;
}
