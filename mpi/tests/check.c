/* Inputs, the single-process reference and the comparison of one rank's
 * rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_test.h"
#include "reference.h"

struct mt_data {
    clattn_problem p;
    clattn_mpi_shard shard;
    clattn_mpi_segments me;
    /* whole-sequence host inputs in storage form, and the reference outputs */
    void *q, *k, *v, *o_ref, *bias;
    float *lse_ref, *sinks, *slopes;
    int32_t *kv_lens, *kv_start;
    uint8_t *bool_mask;
    clattn_buffer_sizes whole;
    /* this rank's device buffers */
    clattn_buffers local;
    size_t o_bytes, lse_bytes;
    cl_command_queue queue;
};

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), never zero: a zero input could hide a missed tile. */
static float next_f(uint64_t *s)
{
    const float x = (float)((double)(next_u64(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
    return x == 0.0f ? 0.5f : x;
}

static void *random_tensor(clattn_dtype t, size_t elems, uint64_t *s)
{
    void *a = malloc(elems * ref_dtype_size(t) + 1);
    if (a)
        for (size_t i = 0; i < elems; ++i)
            ref_store(a, t, (int64_t)i, next_f(s));
    return a;
}

static cl_mem device_copy(cl_context cl, cl_command_queue q, const void *src, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
    if (m && bytes && src &&
        clEnqueueWriteBuffer(q, m, CL_TRUE, 0, bytes, src, 0, NULL, NULL) != CL_SUCCESS) {
        clReleaseMemObject(m);
        m = NULL;
    }
    return m;
}

/* Rows of this rank's runs out of a whole [outer][N][row] tensor. */
static void *gather_rows(const void *whole, int64_t outer, int n, size_t row_bytes,
                         const clattn_mpi_segments *g)
{
    unsigned char *out = malloc((size_t)(outer * g->n_local) * row_bytes + 1);
    if (!out)
        return NULL;
    unsigned char *at = out;
    for (int64_t o = 0; o < outer; ++o)
        for (int i = 0; i < g->count; ++i) {
            const size_t bytes = (size_t)g->length[i] * row_bytes;
            memcpy(at, (const unsigned char *)whole + ((size_t)(o * n) + g->offset[i]) * row_bytes,
                   bytes);
            at += bytes;
        }
    return out;
}

const clattn_problem *mt_problem(const mt_data *d)
{
    return &d->p;
}
const clattn_mpi_shard *mt_shard(const mt_data *d)
{
    return &d->shard;
}
const clattn_buffers *mt_local(const mt_data *d)
{
    return &d->local;
}

void mt_free(mt_data *d)
{
    if (!d)
        return;
    cl_mem *mems = &d->local.q;
    for (size_t i = 0; i < sizeof d->local / sizeof(cl_mem); ++i)
        if (mems[i])
            clReleaseMemObject(mems[i]);
    free(d->q);
    free(d->k);
    free(d->v);
    free(d->o_ref);
    free(d->bias);
    free(d->lse_ref);
    free(d->sinks);
    free(d->slopes);
    free(d->kv_lens);
    free(d->kv_start);
    free(d->bool_mask);
    free(d);
}

int mt_poison(mt_data *d)
{
    cl_command_queue q = d->queue;
    if (d->me.n_local == 0)
        return 0;
    unsigned char *nan = malloc(d->o_bytes > d->lse_bytes ? d->o_bytes : d->lse_bytes);
    if (!nan)
        return -1;
    const int64_t n_o = (int64_t)(d->o_bytes / ref_dtype_size(d->p.dtype));
    for (int64_t i = 0; i < n_o; ++i)
        ref_store(nan, d->p.dtype, i, NAN);
    int bad = clEnqueueWriteBuffer(q, d->local.o, CL_TRUE, 0, d->o_bytes, nan, 0, NULL, NULL) !=
              CL_SUCCESS;
    for (size_t i = 0; i < d->lse_bytes / 4; ++i)
        ((float *)(void *)nan)[i] = NAN;
    bad |= clEnqueueWriteBuffer(q, d->local.lse, CL_TRUE, 0, d->lse_bytes, nan, 0, NULL, NULL) !=
           CL_SUCCESS;
    free(nan);
    return bad ? -1 : 0;
}

static int setup_into(const mt_env *e, const mt_case *c, unsigned seed, mt_data *d)
{
    cl_context cl;
    cl_command_queue queue;
    clattn_context_get_cl(e->ctx, &cl, &queue, NULL);
    d->queue = queue;
    d->p = c->p;
    clattn_problem *p = &d->p;
    if (!p->kv_heads)
        p->kv_heads = p->heads;
    if (!p->head_dim_v)
        p->head_dim_v = p->head_dim;
    d->shard.layout = c->layout;
    d->shard.counts = c->counts;
    if (clattn_mpi_shard_segments(&d->shard, p->seq_q, e->nranks, e->rank, &d->me) != CLATTN_OK) {
        fprintf(stderr, "rank %d: clattn_mpi_shard_segments refused the case\n", e->rank);
        return -1;
    }
    if (clattn_buffer_sizes_of(e->ctx, p, &d->whole) != CLATTN_OK) {
        fprintf(stderr, "rank %d: %s\n", e->rank, clattn_last_error(e->ctx));
        return -1;
    }
    const int B = p->batch, H = p->heads, Hkv = p->kv_heads, N = p->seq_q;
    const size_t es = ref_dtype_size(p->dtype);
    uint64_t s = 0x5eed0000ull + seed;
    d->q = random_tensor(p->dtype, d->whole.q / es, &s);
    d->k = random_tensor(p->dtype, d->whole.k / es, &s);
    d->v = random_tensor(p->dtype, d->whole.v / es, &s);
    d->o_ref = malloc(d->whole.o);
    d->lse_ref = malloc(d->whole.lse);
    if (!d->q || !d->k || !d->v || !d->o_ref || !d->lse_ref)
        return -1;
    clattn_host_buffers hb;
    memset(&hb, 0, sizeof hb);
    hb.q = d->q;
    hb.k = d->k;
    hb.v = d->v;
    hb.o = d->o_ref;
    hb.lse = d->lse_ref;
    hb.sizes = &d->whole;
    if (c->kv_lens) {
        d->kv_lens = malloc(sizeof(int32_t) * (size_t)B);
        for (int b = 0; b < B; ++b)
            d->kv_lens[b] = N - 1 - 5 * b; /* shorter than N: i' moves */
        hb.kv_lens = d->kv_lens;
    }
    if (c->kv_start) {
        d->kv_start = malloc(sizeof(int32_t) * (size_t)B);
        for (int b = 0; b < B; ++b)
            d->kv_start[b] = 2 + 3 * b;
        hb.kv_start = d->kv_start;
    }
    if (p->sinks) {
        d->sinks = malloc(sizeof(float) * (size_t)H);
        for (int h = 0; h < H; ++h)
            d->sinks[h] = 2.0f * next_f(&s);
        hb.sinks = d->sinks;
    }
    if (p->alibi) {
        d->slopes = malloc(sizeof(float) * (size_t)H);
        clattn_alibi_slopes(H, d->slopes);
        hb.alibi_slopes = d->slopes;
    }
    if (p->bias.enabled) {
        d->bias = random_tensor(p->bias.dtype, d->whole.bias / ref_dtype_size(p->bias.dtype), &s);
        hb.bias = d->bias;
    }
    if (p->bool_mask.enabled) {
        d->bool_mask = malloc(d->whole.bool_mask);
        for (size_t i = 0; i < d->whole.bool_mask; ++i)
            d->bool_mask[i] = (next_u64(&s) % 5) != 0; /* a fifth of the keys hidden */
        hb.bool_mask = d->bool_mask;
    }
    const clattn_status st = clattn_forward_host(e->ctx, p, &hb);
    if (st != CLATTN_OK) {
        fprintf(stderr, "rank %d: reference clattn_forward_host: %s\n", e->rank,
                clattn_last_error(e->ctx));
        return -1;
    }
    /* The whole problem's extra inputs, on every rank. */
    clattn_buffers *L = &d->local;
    if (hb.kv_lens && !(L->kv_lens = device_copy(cl, queue, hb.kv_lens, d->whole.kv_lens)))
        return -1;
    if (hb.kv_start && !(L->kv_start = device_copy(cl, queue, hb.kv_start, d->whole.kv_start)))
        return -1;
    if (hb.sinks && !(L->sinks = device_copy(cl, queue, hb.sinks, d->whole.sinks)))
        return -1;
    if (hb.alibi_slopes &&
        !(L->alibi_slopes = device_copy(cl, queue, hb.alibi_slopes, d->whole.alibi_slopes)))
        return -1;
    if (hb.bias && !(L->bias = device_copy(cl, queue, hb.bias, d->whole.bias)))
        return -1;
    if (hb.bool_mask && !(L->bool_mask = device_copy(cl, queue, hb.bool_mask, d->whole.bool_mask)))
        return -1;
    if (d->me.n_local == 0)
        return 0; /* an empty rank passes no q, k, v, o, lse */
    void *lq = gather_rows(d->q, (int64_t)B * H, N, (size_t)p->head_dim * es, &d->me);
    void *lk = gather_rows(d->k, (int64_t)B * Hkv, N, (size_t)p->head_dim * es, &d->me);
    void *lv = gather_rows(d->v, (int64_t)B * Hkv, N, (size_t)p->head_dim_v * es, &d->me);
    const int64_t n = d->me.n_local;
    d->o_bytes = (size_t)((int64_t)B * H * n * p->head_dim_v) * es;
    d->lse_bytes = (size_t)((int64_t)B * H * n) * 4;
    int bad = !lq || !lk || !lv;
    if (!bad) {
        L->q = device_copy(cl, queue, lq, (size_t)((int64_t)B * H * n * p->head_dim) * es);
        L->k = device_copy(cl, queue, lk, (size_t)((int64_t)B * Hkv * n * p->head_dim) * es);
        L->v = device_copy(cl, queue, lv, (size_t)((int64_t)B * Hkv * n * p->head_dim_v) * es);
        L->o = device_copy(cl, queue, NULL, d->o_bytes);
        L->lse = device_copy(cl, queue, NULL, d->lse_bytes);
        bad = !L->q || !L->k || !L->v || !L->o || !L->lse;
    }
    free(lq);
    free(lk);
    free(lv);
    if (bad)
        return -1;
    return mt_poison(d);
}

mt_data *mt_setup(const mt_env *e, const mt_case *c, unsigned seed)
{
    mt_data *d = calloc(1, sizeof *d);
    if (d && setup_into(e, c, seed, d) != 0) {
        fprintf(stderr, "rank %d: setting up the case failed\n", e->rank);
        mt_free(d);
        return NULL;
    }
    return d;
}

int mt_compare(const mt_env *e, mt_data *d, const char *name, double tol_o, double tol_lse)
{
    const clattn_problem *p = &d->p;
    const int64_t BH = (int64_t)p->batch * p->heads, n = d->me.n_local, Dv = p->head_dim_v;
    if (n == 0) {
        printf("rank %d: %s: no rows (empty shard), ok\n", e->rank, name);
        return 0;
    }
    cl_command_queue queue;
    clattn_context_get_cl(e->ctx, NULL, &queue, NULL);
    void *o = malloc(d->o_bytes);
    float *lse = malloc(d->lse_bytes);
    double *got = malloc(sizeof(double) * (size_t)(BH * n * Dv));
    double *want = malloc(sizeof(double) * (size_t)(BH * n * Dv));
    int fail = !o || !lse || !got || !want;
    if (!fail)
        fail = clEnqueueReadBuffer(queue, d->local.o, CL_TRUE, 0, d->o_bytes, o, 0, NULL, NULL) !=
                   CL_SUCCESS ||
               clEnqueueReadBuffer(queue, d->local.lse, CL_TRUE, 0, d->lse_bytes, lse, 0, NULL,
                                   NULL) != CL_SUCCESS;
    double lse_err = 0.0;
    int lse_bad = 0, neg_inf_rows = 0;
    if (!fail) {
        int64_t idx = 0, row = 0;
        for (int64_t bh = 0; bh < BH; ++bh)
            for (int i = 0; i < d->me.count; ++i)
                for (int r = 0; r < d->me.length[i]; ++r, ++row) {
                    const int64_t g = bh * p->seq_q + d->me.offset[i] + r;
                    for (int64_t c = 0; c < Dv; ++c, ++idx) {
                        got[idx] = ref_load(o, p->dtype, row * Dv + c);
                        want[idx] = ref_load(d->o_ref, p->dtype, g * Dv + c);
                    }
                    const double a = lse[row], b = d->lse_ref[g];
                    if (isinf(b) && b < 0) {
                        neg_inf_rows++;
                        lse_bad |= !(isinf(a) && a < 0);
                        continue;
                    }
                    const double err = fabs(a - b) / fmax(1.0, fabs(b));
                    if (!(err <= tol_lse))
                        lse_bad = 1;
                    if (!(err <= lse_err))
                        lse_err = isnan(err) ? INFINITY : err;
                }
    }
    const double rel = fail ? INFINITY : ref_rel_l2(want, got, (size_t)(BH * n * Dv));
    fail = fail || !(rel <= tol_o) || lse_bad;
    printf("rank %d: %s: %lld rows in %d run(s), O rel L2 %.3g (tol %.1g), LSE max rel err "
           "%.3g (tol %.1g), %d rows see nothing: %s\n",
           e->rank, name, (long long)n, d->me.count, rel, tol_o, lse_err, tol_lse, neg_inf_rows,
           fail ? "FAIL" : "ok");
    free(o);
    free(lse);
    free(got);
    free(want);
    return fail;
}

int mt_run_ring(const mt_env *e, const mt_case *c, const char *name, unsigned seed)
{
    mt_data *d = mt_setup(e, c, seed);
    int bad = d == NULL;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, e->comm);
    if (bad) {
        mt_free(d);
        return 1;
    }
    char err[1024];
    clattn_mpi_report rep;
    clattn_mpi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.error = err;
    opts.error_size = sizeof err;
    opts.report = &rep;
    const clattn_status st = clattn_mpi_forward(e->comm, e->ctx, &d->p, &d->shard, &d->local,
                                                &opts);
    int fail;
    if (st != CLATTN_OK) {
        printf("rank %d: %s: clattn_mpi_forward: %s: %s\n", e->rank, name,
               clattn_status_string(st), err);
        fail = 1;
    } else {
        fail = mt_compare(e, d, name, c->tol_o, c->tol_lse);
        printf("rank %d: %s: %d steps, %d tiles computed, %d skipped, %.1f ms\n", e->rank, name,
               rep.steps, rep.tiles_computed, rep.tiles_skipped, rep.total_ms);
    }
    mt_free(d);
    return fail;
}
