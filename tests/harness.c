/* Shared test machinery; see harness.h. */
#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int t_failures;
int t_skips;

void t_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    t_failures++;
    if (file)
        fprintf(stdout, "FAIL %s:%d: ", file, line);
    else
        fprintf(stdout, "FAIL ");
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void t_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void t_skip(const char *fmt, ...)
{
    va_list ap;
    t_skips++;
    fputs("SKIP ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* ---- PRNG ---------------------------------------------------------------- */

void t_rng_seed(t_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x6a09e667f3bcc909ull;
}

uint64_t t_rng_next(t_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double t_rng_uniform(t_rng *r, double lo, double hi)
{
    double u = (double)(t_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return lo + (hi - lo) * u;
}

int t_rng_int(t_rng *r, int lo, int hi)
{
    uint64_t span = (uint64_t)((int64_t)hi - lo + 1);
    return lo + (int)(t_rng_next(r) % span);
}

/* ---- contexts ------------------------------------------------------------ */

clattn_context *t_context(void)
{
    clattn_context *ctx = NULL;
    clattn_status st = clattn_context_create(NULL, &ctx);
    if (st != CLATTN_OK || !ctx) {
        T_FAIL("clattn_context_create(NULL) -> %d (%s), ctx %p", (int)st,
               clattn_status_string(st), (void *)ctx);
        return NULL;
    }
    return ctx;
}

int t_context_between_runs(clattn_context **ctx)
{
    const char *fresh = getenv("CLATTN_SWEEP_FRESH");
    if (!fresh || strcmp(fresh, "1") != 0)
        return 0;
    clattn_context_destroy(*ctx);
    *ctx = t_context();
    return *ctx ? 0 : -1;
}

cl_command_queue t_queue(clattn_context *ctx)
{
    cl_command_queue q = NULL;
    clattn_status st = clattn_context_get_cl(ctx, NULL, &q, NULL);
    T_CHECK(st == CLATTN_OK && q, "clattn_context_get_cl(queue) -> %d, queue %p", (int)st,
            (void *)q);
    return q;
}

cl_context t_cl_context(clattn_context *ctx)
{
    cl_context c = NULL;
    clattn_status st = clattn_context_get_cl(ctx, &c, NULL, NULL);
    T_CHECK(st == CLATTN_OK && c, "clattn_context_get_cl(context) -> %d, context %p", (int)st,
            (void *)c);
    return c;
}

/* ---- tensors ------------------------------------------------------------- */

#define T_LSE_POISON 0x7fc1a5a5u

uint16_t t_poison16(clattn_dtype t)
{
    return t == CLATTN_F16 ? 0x7e5a : 0x7fda;
}

void t_fill_poison(void *base, clattn_dtype t, int64_t n)
{
    if (t == CLATTN_F32) {
        uint32_t *u = base, bits = 0x7fc0deadu;
        for (int64_t i = 0; i < n; i++)
            u[i] = bits;
    } else {
        uint16_t *u = base, bits = t_poison16(t);
        for (int64_t i = 0; i < n; i++)
            u[i] = bits;
    }
}

static void fill_lse_poison(float *lse, int64_t n)
{
    uint32_t bits = T_LSE_POISON;
    for (int64_t i = 0; i < n; i++)
        memcpy(&lse[i], &bits, sizeof bits);
}

int64_t t_mask_extent(const clattn_problem *n)
{
    return (int64_t)(n->batch - 1) * n->mask_batch_stride +
           (int64_t)(n->heads - 1) * n->mask_head_stride + (int64_t)n->seq_q * n->seq_kv;
}

static void fill_view(void *base, clattn_dtype dt, const clattn_strides *s, int n0, int n1,
                      int n2, int n3, t_rng *r)
{
    for (int a = 0; a < n0; a++)
        for (int b = 0; b < n1; b++)
            for (int c = 0; c < n2; c++) {
                int64_t off = a * s->batch + b * s->head + c * s->seq;
                for (int d = 0; d < n3; d++)
                    ref_store(base, dt, off + d, (float)t_rng_uniform(r, -1.0, 1.0));
            }
}

/* ~N(0,1) by Box-Muller: a bias like a learned one, with outliers */
static double rng_normal(t_rng *r)
{
    double u1 = t_rng_uniform(r, 1e-300, 1.0), u2 = t_rng_uniform(r, 0.0, 1.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Random cu_seqlens; sets total_q and total_kv. With batch >= 2 the first
 * sequence has the largest lengths and the last fewer keys than seq_kv, so
 * that a kernel which reads a whole seq_kv of keys from the last sequence's
 * start reads past the packed K and V (Oclgrind and ASan see it); with
 * batch >= 3 the second sees no key. */
static void draw_cu_seqlens(t_tensors *t, t_rng *r)
{
    const clattn_problem *p = &t->p;
    const int B = p->batch;
    t->cu_q[0] = 0;
    t->cu_kv[0] = 0;
    for (int b = 0; b < B; b++) {
        int lq = t_rng_int(r, B == 1 ? 1 : 0, p->seq_q);
        int lk = t_rng_int(r, B == 1 ? 1 : 0, p->seq_kv);
        if (B >= 2 && b == 0) {
            lq = p->seq_q;
            lk = p->seq_kv;
        }
        if (B >= 2 && b == B - 1 && p->seq_kv >= 2)
            lk = t_rng_int(r, 1, p->seq_kv - 1);
        if (B >= 3 && b == 1)
            lk = 0;
        t->cu_q[b + 1] = t->cu_q[b] + lq;
        t->cu_kv[b + 1] = t->cu_kv[b] + lk;
    }
    t->p.varlen = 1;
    t->p.total_q = t->cu_q[B];
    t->p.total_kv = t->cu_kv[B];
}

static void fill_bias(t_tensors *t, t_rng *r)
{
    const clattn_problem *n = &t->n;
    const clattn_mask_strides *s = &n->bias.strides;
    t_fill_poison(t->bias, n->bias.dtype, t->bias_n);
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++)
                for (int j = 0; j < n->seq_kv; j++) {
                    double x = t_rng_uniform(r, 0.0, 1.0) < 0.1 ? -INFINITY : rng_normal(r);
                    ref_store(t->bias, n->bias.dtype,
                              b * s->batch + h * s->head + i * s->row + j, (float)x);
                }
}

static void fill_bool_mask(t_tensors *t, t_rng *r)
{
    const clattn_problem *n = &t->n;
    const clattn_mask_strides *s = &n->bool_mask.strides;
    memset(t->bool_mask, 0, (size_t)t->bool_n);
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++)
                for (int j = 0; j < n->seq_kv; j++) {
                    int v = t_rng_uniform(r, 0.0, 1.0) < 0.2 ? 0 : t_rng_int(r, 1, 255);
                    t->bool_mask[b * s->batch + h * s->head + i * s->row + j] = (uint8_t)v;
                }
}

/* The 1.0 inputs; from their own stream so the older inputs of a seed stay. */
static void fill_features(t_tensors *t, t_rng *r)
{
    const clattn_problem *n = &t->n;
    if (t->sinks) {
        for (int h = 0; h < n->heads; h++)
            t->sinks[h] = (float)t_rng_uniform(r, -2.0, 4.0);
        if (n->heads >= 2 && t_rng_uniform(r, 0.0, 1.0) < 0.5)
            t->sinks[t_rng_int(r, 0, n->heads - 1)] = -INFINITY;
    }
    if (t->alibi) {
        double *sl = malloc(sizeof(double) * (size_t)n->heads);
        for (int h = 0; sl && h < n->heads; h++)
            sl[h] = 0.0;
        if (sl)
            ref_alibi_slopes(n->heads, sl);
        for (int h = 0; h < n->heads; h++)
            t->alibi[h] = sl ? (float)sl[h] : 0.5f;
        free(sl);
    }
    if (t->bias)
        fill_bias(t, r);
    if (t->bool_mask)
        fill_bool_mask(t, r);
    if (t->kv_start) {
        for (int b = 0; b < n->batch; b++) {
            int L = t->kv_lens ? t->kv_lens[b] : n->seq_kv;
            L = L < 0 ? 0 : (L > n->seq_kv ? n->seq_kv : L);
            t->kv_start[b] = t_rng_int(r, 0, L);
        }
        if (n->batch >= 2)
            t->kv_start[0] = 0;
    }
}

int t_tensors_init(t_tensors *t, const clattn_problem *p, unsigned flags, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->p = *p;
    t_rng r, r2;
    t_rng_seed(&r, seed);
    t_rng_seed(&r2, seed ^ 0x1f0a7e5u);
    const int B0 = p->batch > 0 ? p->batch : 0, H0 = p->heads > 0 ? p->heads : 0;
    if (flags & T_WITH_VARLEN) {
        t->cu_q = malloc(sizeof(int32_t) * (size_t)(B0 + 1));
        t->cu_kv = malloc(sizeof(int32_t) * (size_t)(B0 + 1));
        if (!t->cu_q || !t->cu_kv) {
            T_FAIL("out of host memory for cu_seqlens");
            t_tensors_free(t);
            return -1;
        }
        draw_cu_seqlens(t, &r2);
    }
    ref_normalize(&t->p, &t->n);
    const clattn_problem *n = &t->n;
    t->esz = ref_dtype_size(n->dtype);
    ref_tensor_extents(n, &t->q_n, &t->k_n, &t->v_n, &t->o_n);
    t->o_alloc = t->o_n + T_GUARD;
    t->q = malloc((size_t)t->q_n * t->esz);
    t->k = malloc((size_t)t->k_n * t->esz);
    t->v = malloc((size_t)t->v_n * t->esz);
    t->o = malloc((size_t)t->o_alloc * t->esz);
    t->o_init = malloc((size_t)t->o_alloc * t->esz);
    t->lse_n = n->varlen ? (int64_t)n->heads * n->total_q : (int64_t)n->batch * n->heads * n->seq_q;
    int bad = !t->q || !t->k || !t->v || !t->o || !t->o_init;
#define T_ALLOC(flag, field, bytes)                                             \
    do {                                                                        \
        if (flags & (flag)) {                                                   \
            t->field = malloc(bytes);                                           \
            bad |= t->field == NULL;                                            \
        }                                                                       \
    } while (0)
    T_ALLOC(T_WITH_LSE, lse, sizeof(float) * (size_t)(t->lse_n + T_GUARD));
    if (flags & T_WITH_MASK)
        t->mask_n = t_mask_extent(n);
    T_ALLOC(T_WITH_MASK, mask, sizeof(float) * (size_t)t->mask_n);
    T_ALLOC(T_WITH_KV_LENS | T_NAN_BEYOND_LEN, kv_lens, sizeof(int32_t) * (size_t)B0);
    T_ALLOC(T_WITH_SINKS, sinks, sizeof(float) * (size_t)H0);
    T_ALLOC(T_WITH_ALIBI, alibi, sizeof(float) * (size_t)H0);
    if (flags & T_WITH_BIAS)
        t->bias_n = ref_mask_extent(n, &n->bias.strides);
    T_ALLOC(T_WITH_BIAS, bias, (size_t)t->bias_n * ref_dtype_size(n->bias.dtype));
    if (flags & T_WITH_BOOL_MASK)
        t->bool_n = ref_mask_extent(n, &n->bool_mask.strides);
    T_ALLOC(T_WITH_BOOL_MASK, bool_mask, (size_t)t->bool_n);
    T_ALLOC(T_WITH_KV_START, kv_start, sizeof(int32_t) * (size_t)B0);
#undef T_ALLOC
    if (bad) {
        T_FAIL("out of host memory for tensors");
        t_tensors_free(t);
        return -1;
    }

    /* gaps of the inputs hold NaN: reading one would poison the output */
    t_fill_poison(t->q, n->dtype, t->q_n);
    t_fill_poison(t->k, n->dtype, t->k_n);
    t_fill_poison(t->v, n->dtype, t->v_n);
    /* varlen: one "batch" of total tokens (the normalized batch stride is 0) */
    const int vb = n->varlen ? 1 : n->batch;
    const int sq = n->varlen ? n->total_q : n->seq_q, skv = n->varlen ? n->total_kv : n->seq_kv;
    fill_view(t->q, n->dtype, &n->q_strides, vb, n->heads, sq, n->head_dim, &r);
    fill_view(t->k, n->dtype, &n->k_strides, vb, n->kv_heads, skv, n->head_dim, &r);
    fill_view(t->v, n->dtype, &n->v_strides, vb, n->kv_heads, skv, n->head_dim_v, &r);
    if (t->mask)
        for (int64_t i = 0; i < t->mask_n; i++)
            t->mask[i] = t_rng_uniform(&r, 0.0, 1.0) < 0.1 ? -INFINITY
                                                             : (float)t_rng_uniform(&r, -1.0, 1.0);
    if (t->kv_lens) {
        /* spread over the range; with batch >= 2 one full, with 3 one empty */
        for (int b = 0; b < n->batch; b++)
            t->kv_lens[b] = t_rng_int(&r, n->batch == 1 ? 1 : 0, n->seq_kv);
        if (n->batch >= 2)
            t->kv_lens[n->batch - 1] = n->seq_kv;
        if (n->batch >= 3)
            t->kv_lens[1] = 0;
    }
    if (flags & T_NAN_BEYOND_LEN)
        t_tensors_nan_beyond_len(t);
    fill_features(t, &r2);
    /* the cache before kv_start[b] is garbage the rows must never see */
    if (t->kv_start)
        t_tensors_nan_before_start(t);
    t_tensors_poison(t);
    return 0;
}

/* NaN into K and V rows [j0, j1) of batch b, every kv head. */
static void nan_rows(t_tensors *t, int b, int j0, int j1)
{
    const clattn_problem *n = &t->n;
    for (int h = 0; h < n->kv_heads; h++)
        for (int j = j0 < 0 ? 0 : j0; j < j1 && j < n->seq_kv; j++) {
            int64_t ko = b * n->k_strides.batch + h * n->k_strides.head + j * n->k_strides.seq;
            int64_t vo = b * n->v_strides.batch + h * n->v_strides.head + j * n->v_strides.seq;
            for (int d = 0; d < n->head_dim; d++)
                ref_store(t->k, n->dtype, ko + d, NAN);
            for (int d = 0; d < n->head_dim_v; d++)
                ref_store(t->v, n->dtype, vo + d, NAN);
        }
}

void t_tensors_nan_beyond_len(t_tensors *t)
{
    for (int b = 0; b < t->n.batch; b++)
        nan_rows(t, b, t->kv_lens[b], t->n.seq_kv);
}

void t_tensors_nan_before_start(t_tensors *t)
{
    for (int b = 0; b < t->n.batch; b++)
        nan_rows(t, b, 0, t->kv_start[b]);
}

void t_tensors_poison(t_tensors *t)
{
    t_fill_poison(t->o, t->n.dtype, t->o_alloc);
    memcpy(t->o_init, t->o, (size_t)t->o_alloc * t->esz);
    if (t->lse)
        fill_lse_poison(t->lse, t->lse_n + T_GUARD);
}

void t_tensors_free(t_tensors *t)
{
    free(t->q);
    free(t->k);
    free(t->v);
    free(t->o);
    free(t->o_init);
    free(t->mask);
    free(t->kv_lens);
    free(t->lse);
    free(t->sinks);
    free(t->alibi);
    free(t->bias);
    free(t->bool_mask);
    free(t->kv_start);
    free(t->cu_q);
    free(t->cu_kv);
    memset(t, 0, sizeof *t);
}

clattn_host_buffers t_tensors_host(const t_tensors *t)
{
    clattn_host_buffers hb;
    /* the reserved block and every feature left out must be NULL */
    memset(&hb, 0, sizeof hb);
    hb.q = t->q;
    hb.k = t->k;
    hb.v = t->v;
    hb.o = t->o;
    hb.mask = t->mask;
    hb.kv_lens = t->kv_lens;
    hb.lse = t->lse;
    hb.bias = t->bias;
    hb.bool_mask = t->bool_mask;
    hb.sinks = t->sinks;
    hb.alibi_slopes = t->alibi;
    hb.kv_start = t->kv_start;
    hb.cu_seqlens_q = t->cu_q;
    hb.cu_seqlens_kv = t->cu_kv;
    return hb;
}

/* ---- runs ---------------------------------------------------------------- */

static cl_mem make_buffer(cl_context c, cl_mem_flags flags, size_t size, void *host,
                          cl_int *err)
{
    cl_mem m = clCreateBuffer(c, flags | CL_MEM_COPY_HOST_PTR, size, host, err);
    return *err == CL_SUCCESS ? m : NULL;
}

cl_int t_dev_create(cl_context c, const t_tensors *t, clattn_buffers *b)
{
    cl_int err = CL_SUCCESS, first = CL_SUCCESS;
    memset(b, 0, sizeof *b);
#define T_MAKE(field, flags, size, host)                                        \
    do {                                                                        \
        b->field = make_buffer(c, flags, size, host, &err);                     \
        if (err != CL_SUCCESS && first == CL_SUCCESS)                           \
            first = err;                                                        \
    } while (0)
    T_MAKE(q, CL_MEM_READ_ONLY, (size_t)t->q_n * t->esz, t->q);
    T_MAKE(k, CL_MEM_READ_ONLY, (size_t)t->k_n * t->esz, t->k);
    T_MAKE(v, CL_MEM_READ_ONLY, (size_t)t->v_n * t->esz, t->v);
    T_MAKE(o, CL_MEM_READ_WRITE, (size_t)t->o_alloc * t->esz, t->o);
    if (t->mask)
        T_MAKE(mask, CL_MEM_READ_ONLY, sizeof(float) * (size_t)t->mask_n, t->mask);
    if (t->kv_lens)
        T_MAKE(kv_lens, CL_MEM_READ_ONLY, sizeof(int32_t) * (size_t)t->n.batch, t->kv_lens);
    if (t->lse)
        T_MAKE(lse, CL_MEM_READ_WRITE, sizeof(float) * (size_t)(t->lse_n + T_GUARD), t->lse);
    const size_t hf = sizeof(float) * (size_t)t->n.heads;
    const size_t bi = sizeof(int32_t) * (size_t)t->n.batch;
    if (t->bias)
        T_MAKE(bias, CL_MEM_READ_ONLY, (size_t)t->bias_n * ref_dtype_size(t->n.bias.dtype),
               t->bias);
    if (t->bool_mask)
        T_MAKE(bool_mask, CL_MEM_READ_ONLY, (size_t)t->bool_n, t->bool_mask);
    if (t->sinks)
        T_MAKE(sinks, CL_MEM_READ_ONLY, hf, t->sinks);
    if (t->alibi)
        T_MAKE(alibi_slopes, CL_MEM_READ_ONLY, hf, t->alibi);
    if (t->kv_start)
        T_MAKE(kv_start, CL_MEM_READ_ONLY, bi, t->kv_start);
    if (t->cu_q)
        T_MAKE(cu_seqlens_q, CL_MEM_READ_ONLY, bi + sizeof(int32_t), t->cu_q);
    if (t->cu_kv)
        T_MAKE(cu_seqlens_kv, CL_MEM_READ_ONLY, bi + sizeof(int32_t), t->cu_kv);
#undef T_MAKE
    if (first != CL_SUCCESS)
        t_dev_release(b);
    return first;
}

cl_int t_dev_read(cl_command_queue q, const clattn_buffers *b, t_tensors *t)
{
    cl_int err = clEnqueueReadBuffer(q, b->o, CL_TRUE, 0, (size_t)t->o_alloc * t->esz, t->o, 0,
                                     NULL, NULL);
    if (err == CL_SUCCESS && t->lse)
        err = clEnqueueReadBuffer(q, b->lse, CL_TRUE, 0,
                                  sizeof(float) * (size_t)(t->lse_n + T_GUARD), t->lse, 0, NULL,
                                  NULL);
    return err;
}

void t_dev_release(clattn_buffers *b)
{
    cl_mem all[14] = {b->q,         b->k,        b->v,         b->o,
                      b->mask,      b->kv_lens,  b->lse,       b->bias,
                      b->bool_mask, b->sinks,    b->alibi_slopes, b->kv_start,
                      b->cu_seqlens_q, b->cu_seqlens_kv};
    for (int i = 0; i < 14; i++)
        if (all[i])
            clReleaseMemObject(all[i]);
    memset(b, 0, sizeof *b);
}

clattn_status t_run_device(clattn_context *ctx, t_tensors *t)
{
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    if (!c || !q)
        return CLATTN_ERR_OPENCL;
    clattn_buffers b;
    cl_int err = t_dev_create(c, t, &b);
    if (err != CL_SUCCESS) {
        T_FAIL("creating the device buffers: clCreateBuffer -> %d", (int)err);
        return CLATTN_ERR_OPENCL;
    }
    cl_event done = NULL;
    clattn_status st = clattn_forward(ctx, &t->p, &b, 0, NULL, &done);
    if (st == CLATTN_OK) {
        T_CHECK(done != NULL, "clattn_forward returned OK without a done event");
        if (done) {
            T_CL(clWaitForEvents(1, &done));
            cl_int es = 0;
            T_CL(clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof es, &es, NULL));
            T_CHECK(es == CL_COMPLETE, "done event status %d after wait", (int)es);
            clReleaseEvent(done);
        }
    }
    T_CL(t_dev_read(q, &b, t));
    t_dev_release(&b);
    return st;
}

void t_tensors_sizes(const t_tensors *t, clattn_buffer_sizes *z)
{
    const clattn_problem *n = &t->n;
    memset(z, 0, sizeof *z);
    z->q = (size_t)t->q_n * t->esz;
    z->k = (size_t)t->k_n * t->esz;
    z->v = (size_t)t->v_n * t->esz;
    z->o = (size_t)t->o_n * t->esz;
    z->lse = (size_t)t->lse_n * sizeof(float);
    z->mask = (size_t)t->mask_n * sizeof(float);
    z->kv_lens = z->kv_start = (size_t)n->batch * sizeof(int32_t);
    z->cu_seqlens_q = z->cu_seqlens_kv = ((size_t)n->batch + 1) * sizeof(int32_t);
    z->sinks = z->alibi_slopes = (size_t)n->heads * sizeof(float);
    z->bias = (size_t)t->bias_n * ref_dtype_size(n->bias.dtype);
    z->bool_mask = (size_t)t->bool_n;
}

clattn_status t_run_host(clattn_context *ctx, t_tensors *t)
{
    /* The sized form: the sizes are what the harness allocated, worked out
     * from clattn.h here, so a library that expects more refuses the call. */
    clattn_host_buffers hb = t_tensors_host(t);
    clattn_buffer_sizes z;
    t_tensors_sizes(t, &z);
    hb.sizes = &z;
    return clattn_forward_host(ctx, &t->p, &hb);
}

/* ---- verification -------------------------------------------------------- */

/* From the largest errors the suite measured on PoCL (RELIABILITY.md,
 * "Tolerances"): every kernel computes in fp32, so the error before the
 * final store is the same for all storage types, at most 2.3e-6 of the
 * output's scale (7.3e-7 with the default scale); the store then rounds to
 * nearest, at most 0.5 ulp of a 16-bit type. Hence k = 0.5 for fp16 and
 * bf16 (a truncating store, up to 1 ulp, fails) and atol = 5e-6 for all.
 * The relative L2 bounds sit at 5x (f32) and 4x (f16, bf16) the largest
 * measured (6.2e-7, 2.5e-4, 2.0e-3) and at twice what correct rounding alone
 * gives a one-element output (2^-11, 2^-8). LSE (worst 1.5e-6 relative) and
 * probabilities (worst 3.3e-7, any dtype: they are fp32) keep about 6x. */
t_tolerance t_tolerance_for(clattn_dtype t)
{
    t_tolerance tol = {3e-6, 1e-5, 2e-6, 2.0, 5e-6};
    if (t == CLATTN_F16) {
        tol.rel_l2 = 1e-3;
        tol.elem_ulps = 0.5;
    } else if (t == CLATTN_BF16) {
        tol.rel_l2 = 8e-3;
        tol.elem_ulps = 0.5;
    }
    return tol;
}

double t_elem_bound(const t_tolerance *tol, clattn_dtype t, double ref, double scale)
{
    return tol->elem_ulps * ref_ulp(t, ref) + tol->elem_atol * scale;
}

const char *t_dtype_name(clattn_dtype t)
{
    switch (t) {
    case CLATTN_F32:
        return "f32";
    case CLATTN_F16:
        return "f16";
    case CLATTN_BF16:
        return "bf16";
    }
    return "dtype?";
}

const char *t_path_name(clattn_path p)
{
    switch (p) {
    case CLATTN_PATH_AUTO:
        return "auto";
    case CLATTN_PATH_FUSED:
        return "fused";
    case CLATTN_PATH_THREE_STAGE:
        return "three_stage";
    case CLATTN_PATH_SPLIT_KV:
        return "split_kv";
    }
    return "path?";
}

static int strides_set(const clattn_strides *s)
{
    return s->batch || s->head || s->seq;
}

void t_describe(const clattn_problem *p, const clattn_host_buffers *in, char *buf, size_t size)
{
    size_t used = 0;
#define T_APPEND(...)                                                              \
    do {                                                                           \
        int n_ = snprintf(buf + used, used < size ? size - used : 0, __VA_ARGS__); \
        if (n_ > 0)                                                                \
            used += (size_t)n_;                                                    \
    } while (0)
    T_APPEND("B%d H%d/%d Sq%d Skv%d D%d/%d %s", p->batch, p->heads, p->kv_heads, p->seq_q,
             p->seq_kv, p->head_dim, p->head_dim_v, t_dtype_name(p->dtype));
    if (p->scale != 0.0f)
        T_APPEND(" scale=%g", (double)p->scale);
    if (p->causal)
        T_APPEND(" causal=%s", p->causal == CLATTN_CAUSAL_BOTTOM_RIGHT ? "br"
                               : p->causal == CLATTN_CAUSAL_TOP_LEFT  ? "tl"
                                                                      : "?");
    if (p->windowed)
        T_APPEND(" window=(%d,%d)", p->window_left, p->window_right);
    if (in && in->mask)
        T_APPEND(" mask(strides %lld,%lld)", (long long)p->mask_batch_stride,
                 (long long)p->mask_head_stride);
    if (in && in->kv_lens) {
        T_APPEND(" kv_lens=[");
        for (int b = 0; b < p->batch; b++)
            T_APPEND("%s%d", b ? "," : "", (int)in->kv_lens[b]);
        T_APPEND("]");
    }
    if (p->softcap != 0.0f)
        T_APPEND(" softcap=%g", (double)p->softcap);
    if (p->chunk_size)
        T_APPEND(" chunk=%d", p->chunk_size);
    if (p->sinks) {
        T_APPEND(" sinks");
        if (in && in->sinks) {
            T_APPEND("=[");
            for (int h = 0; h < p->heads && h < 8; h++)
                T_APPEND("%s%.3g", h ? "," : "", (double)in->sinks[h]);
            T_APPEND("%s]", p->heads > 8 ? ",..." : "");
        }
    }
    if (p->alibi)
        T_APPEND(" alibi");
    const clattn_mask_layout *ml[2] = {&p->bias, &p->bool_mask};
    for (int m = 0; m < 2; m++)
        if (ml[m]->enabled || ml[m]->dtype || ml[m]->strides.batch || ml[m]->strides.head ||
            ml[m]->strides.row)
            T_APPEND(" %s%s(%s %lld,%lld,%lld)", m ? "bool" : "bias", ml[m]->enabled ? "" : "-off",
                     m && ml[m]->dtype == 0 ? "u8" : t_dtype_name(ml[m]->dtype),
                     (long long)ml[m]->strides.batch,
                     (long long)ml[m]->strides.head, (long long)ml[m]->strides.row);
    if (p->kv_start) {
        T_APPEND(" kv_start");
        if (in && in->kv_start) {
            T_APPEND("=[");
            for (int b = 0; b < p->batch; b++)
                T_APPEND("%s%d", b ? "," : "", (int)in->kv_start[b]);
            T_APPEND("]");
        }
    }
    if (p->varlen || p->total_q || p->total_kv) {
        T_APPEND(" varlen=%d total=%d/%d", p->varlen, p->total_q, p->total_kv);
        const int32_t *cu[2] = {in ? in->cu_seqlens_q : NULL, in ? in->cu_seqlens_kv : NULL};
        for (int c = 0; c < 2; c++)
            if (cu[c]) {
                T_APPEND(" cu_%s=[", c ? "kv" : "q");
                for (int b = 0; b <= p->batch && b < 12; b++)
                    T_APPEND("%s%d", b ? "," : "", (int)cu[c][b]);
                T_APPEND("%s]", p->batch >= 12 ? ",..." : "");
            }
    }
    const clattn_strides *st[4] = {&p->q_strides, &p->k_strides, &p->v_strides, &p->o_strides};
    const char *nm = "qkvo";
    for (int i = 0; i < 4; i++)
        if (strides_set(st[i]))
            T_APPEND(" %c_strides=(%lld,%lld,%lld)", nm[i], (long long)st[i]->batch,
                     (long long)st[i]->head, (long long)st[i]->seq);
    if (in && in->lse)
        T_APPEND(" lse");
    T_APPEND(" path=%s", t_path_name(p->path));
#undef T_APPEND
}

/* Prints the heading of a failing verification once, then the detail. */
typedef struct vctx {
    const char *label;
    const clattn_problem *p;
    const clattn_host_buffers *in;
    int headed;
    int fails;
} vctx;

static void vfail(vctx *v, const char *fmt, ...) T_PRINTF(2, 3);
static void vfail(vctx *v, const char *fmt, ...)
{
    if (!v->headed) {
        char desc[512];
        t_describe(v->p, v->in, desc, sizeof desc);
        t_fail_at(NULL, 0, "%s [%s]", v->label, desc);
        v->headed = 1;
    } else {
        t_failures++;
    }
    v->fails++;
    va_list ap;
    fputs("     ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

int t_same_bytes(const void *a, const void *b, size_t n)
{
    return memcmp(a, b, n) == 0;
}

/* One output row: where the run wrote it, where the reference did. */
typedef struct vrow {
    int64_t got;  /* element offset of the row in the run's O */
    int64_t ref;  /* row index of the reference's packed O */
    int64_t lse;  /* index in both LSEs (and in seen) */
    int b, h, i;
} vrow;

/* Every row of the problem (for varlen, the rows of each sequence, with the
 * clamping ref_attention applies); returns how many were written. */
static size_t verify_rows(const clattn_problem *n, const clattn_host_buffers *in, vrow *rows)
{
    size_t k = 0;
    for (int b = 0; b < n->batch; b++) {
        int q0 = 0, len = n->seq_q;
        if (n->varlen) {
            if (!in->cu_seqlens_q)
                return 0;
            int a = in->cu_seqlens_q[b], e = in->cu_seqlens_q[b + 1];
            a = a < 0 ? 0 : (a > n->total_q ? n->total_q : a);
            e = e < 0 ? 0 : (e > n->total_q ? n->total_q : e);
            q0 = a;
            len = e - a < 0 ? 0 : (e - a > n->seq_q ? n->seq_q : e - a);
        }
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < len; i++) {
                vrow *r = &rows[k++];
                r->b = b, r->h = h, r->i = i;
                if (n->varlen) {
                    r->got = (int64_t)(q0 + i) * n->o_strides.seq + h * n->o_strides.head;
                    r->ref = (int64_t)(q0 + i) * n->heads + h;
                    r->lse = (int64_t)h * n->total_q + q0 + i;
                } else {
                    r->got = b * n->o_strides.batch + h * n->o_strides.head +
                             i * n->o_strides.seq;
                    r->ref = ((int64_t)b * n->heads + h) * n->seq_q + i;
                    r->lse = r->ref;
                }
            }
    }
    return k;
}

/* What the checks of one verification share: the rows in the view and O
 * gathered from the run (got) and the reference (want), row by row. */
typedef struct vdata {
    vctx *v;
    const clattn_problem *n; /* normalized */
    const vrow *rows;
    const double *want, *got;
    const int *seen; /* per LSE index: keys the row sees (0: none) */
    size_t on;       /* elements: rows * Dv */
    int Dv;
} vdata;

/* O against the reference in relative L2. Outputs in the storage type's
 * subnormal range are rounded to an absolute step (f16: 2^-24), so their
 * relative error is not bounded by the type's precision: the L2 bound grows
 * by twice the error correct rounding alone gives those elements (0 when
 * none is subnormal). The per-element bound stays as strict. */
static void check_o_l2(const vdata *d, t_tolerance tol, t_result *res)
{
    const double *want = d->want, *got = d->got;
    res->rel_l2 = ref_rel_l2(want, got, d->on);
    const double step = ref_ulp(d->n->dtype, 0.0); /* the subnormal step */
    const double smallest_normal = ldexp(step, ref_mantissa_bits(d->n->dtype));
    double sub2 = 0.0, norm2 = 0.0;
    for (size_t e = 0; e < d->on; e++)
        if (isfinite(want[e])) {
            norm2 += want[e] * want[e];
            if (fabs(want[e]) < smallest_normal)
                sub2 += 0.25 * step * step;
        }
    const double l2_bound = tol.rel_l2 + (norm2 > 0.0 ? 2.0 * sqrt(sub2 / norm2) : 0.0);
    if (res->rel_l2 <= l2_bound)
        return;
    size_t worst = 0;
    double wd = -1.0;
    for (size_t e = 0; e < d->on; e++) {
        double diff = fabs(got[e] - want[e]);
        if (isnan(diff))
            diff = INFINITY;
        if (diff > wd) {
            wd = diff;
            worst = e;
        }
    }
    const vrow *w = &d->rows[worst / (size_t)d->Dv];
    vfail(d->v, "O rel L2 %.3g > %.3g; worst |err| %.3g at b%d h%d i%d d%zu (ref %.9g got %.9g)",
          res->rel_l2, l2_bound, wd, w->b, w->h, w->i, worst % d->Dv, want[worst], got[worst]);
}

/* Every element within its own bound (elements not finite on either side
 * are check_o_special's). */
static void check_o_elements(const vdata *d, t_tolerance tol, t_result *res)
{
    const double *want = d->want, *got = d->got;
    double scale = 0.0;
    for (size_t e = 0; e < d->on; e++)
        if (isfinite(want[e]))
            scale = fmax(scale, fabs(want[e]));
    size_t elem_bad = 0, elem_worst = 0;
    for (size_t e = 0; e < d->on; e++) {
        if (!isfinite(want[e]) || !isfinite(got[e]))
            continue;
        const double err = fabs(got[e] - want[e]);
        const double bound = t_elem_bound(&tol, d->n->dtype, want[e], scale);
        if (err > res->elem_use * bound) {
            res->elem_use = err / bound;
            elem_worst = e;
        }
        elem_bad += !(err <= bound);
    }
    if (elem_bad) {
        const size_t e = elem_worst;
        const vrow *w = &d->rows[e / (size_t)d->Dv];
        vfail(d->v, "%zu of %zu O elements beyond %g ulp + %g * %.3g; worst b%d h%d i%d d%zu: ref "
              "%.9g got %.9g (|err| %.3g = %.3g ulp)", elem_bad, d->on, tol.elem_ulps,
              tol.elem_atol, scale, w->b, w->h, w->i, e % d->Dv, want[e], got[e],
              fabs(got[e] - want[e]), fabs(got[e] - want[e]) / ref_ulp(d->n->dtype, want[e]));
    }
}

/* No NaN or inf where the reference is finite; rows that see no key exactly 0. */
static void check_o_special(const vdata *d)
{
    const double *want = d->want, *got = d->got;
    const int Dv = d->Dv;
    size_t nonfinite = 0, first_nf = 0, masked_nonzero = 0, first_mn = 0;
    for (size_t e = 0; e < d->on; e++) {
        if (isfinite(want[e]) && !isfinite(got[e]) && nonfinite++ == 0)
            first_nf = e;
        if (d->seen[d->rows[e / Dv].lse] == 0 && got[e] != 0.0 && masked_nonzero++ == 0)
            first_mn = e;
    }
    if (nonfinite) {
        const vrow *w = &d->rows[first_nf / Dv];
        vfail(d->v, "%zu of %zu O elements not finite where the reference is; first: b%d h%d i%d "
              "d%zu = %g", nonfinite, d->on, w->b, w->h, w->i, first_nf % Dv, got[first_nf]);
    }
    if (masked_nonzero) {
        const vrow *w = &d->rows[first_mn / Dv];
        vfail(d->v, "%zu O elements of rows that see no key are not 0; first: b%d h%d i%d d%zu = %g",
              masked_nonzero, w->b, w->h, w->i, first_mn % Dv, got[first_mn]);
    }
}

/* The gaps of O's view and the guard after it keep their contents. */
static void check_o_outside(vctx *v, const clattn_problem *n, const void *got_o,
                            const void *o_init, int64_t o_alloc, const unsigned char *in_view)
{
    const size_t esz = ref_dtype_size(n->dtype);
    size_t changed = 0, first_ch = 0;
    for (int64_t e = 0; e < o_alloc; e++)
        if (!in_view[e] && memcmp((const char *)got_o + e * esz, (const char *)o_init + e * esz,
                                  esz) != 0 && changed++ == 0)
            first_ch = (size_t)e;
    if (changed) {
        int64_t ext = 0;
        ref_tensor_extents(n, NULL, NULL, NULL, &ext);
        vfail(v, "%zu O elements outside the view (gaps or guard) were written; first at element "
              "%zu (view extent %lld)", changed, first_ch, (long long)ext);
    }
}

/* The LSE of every row, and its guard untouched. */
static void check_lse(const vdata *d, size_t nrows, const float *got_lse, const double *lse_ref,
                      size_t lse_count, int64_t lse_alloc, t_tolerance tol, t_result *res)
{
    size_t bad = 0, first_bad = 0;
    for (size_t r = 0; r < nrows; r++) {
        const int64_t x = d->rows[r].lse;
        double g = got_lse[x], e = lse_ref[x], err;
        int ok;
        if (e == -INFINITY) {
            ok = g == -INFINITY;
            err = ok ? 0.0 : INFINITY;
        } else {
            err = fabs(g - e);
            ok = isfinite(g) && err <= tol.lse_rel * fmax(1.0, fabs(e));
            if (isnan(err))
                err = INFINITY;
        }
        if (err > res->lse_err)
            res->lse_err = err;
        if (!ok && bad++ == 0)
            first_bad = r;
    }
    if (bad) {
        const vrow *w = &d->rows[first_bad];
        vfail(d->v, "%zu of %zu LSE values wrong; first: b%d h%d i%d ref %.9g got %.9g", bad,
              nrows, w->b, w->h, w->i, lse_ref[w->lse], (double)got_lse[w->lse]);
    }
    size_t guard_bad = 0;
    for (int64_t r = (int64_t)lse_count; r < lse_alloc; r++) {
        uint32_t bits;
        memcpy(&bits, &got_lse[r], sizeof bits);
        guard_bad += bits != T_LSE_POISON;
    }
    if (guard_bad)
        vfail(d->v, "%zu LSE guard elements after the %zu rows were written", guard_bad,
              lse_count);
}

/* int8 K with one scale a row: the CPU decode kernel scores it with integer
 * dot products, each query row rounded to 16 bits, within 2^-16 of its
 * largest |q| (cl/fused_vec.cl, K_IDOT). In fp32 that measured up to ~1.5x
 * the fp32 bounds (relL2 4e-6), so those bounds get 5x; the rounding of K
 * to int8 that the reference leaves out is ~250x larger still. */
t_tolerance t_tolerance_kv(const clattn_problem *p, t_tolerance tol)
{
    const clattn_kv_storage *k = &p->k_storage;
    if (k->format == CLATTN_KV_INT8 && (k->group == 0 || k->group >= p->head_dim)) {
        tol.rel_l2 = fmax(tol.rel_l2, 2e-5);
        tol.elem_atol = fmax(tol.elem_atol, 2.5e-5);
        tol.lse_rel = fmax(tol.lse_rel, 5e-5);
    }
    return tol;
}

t_result t_verify_raw(const char *label, const clattn_problem *p, const clattn_host_buffers *in,
                      const void *got_o, const void *o_init, int64_t o_alloc,
                      const float *got_lse, int64_t lse_alloc, t_tolerance tol)
{
    t_result res = {0};
    tol = t_tolerance_kv(p, tol);
    vctx v = {label, p, in, 0, 0};
    clattn_problem n;
    ref_normalize(p, &n);
    const int Dv = n.head_dim_v;
    /* the reference's packed outputs, and the LSE as the library lays it out */
    const size_t lse_count = n.varlen ? (size_t)n.heads * (size_t)n.total_q
                                      : (size_t)n.batch * n.heads * n.seq_q;
    const size_t ref_rows = lse_count;
    double *o_ref = malloc(sizeof(double) * (ref_rows * (size_t)Dv + 1));
    double *lse_ref = malloc(sizeof(double) * (lse_count + 1));
    int *seen = malloc(sizeof(int) * (lse_count + 1));
    vrow *rows = malloc(sizeof(vrow) * (ref_rows + 1));
    double *got = malloc(sizeof(double) * (ref_rows * (size_t)Dv + 1));
    double *want = malloc(sizeof(double) * (ref_rows * (size_t)Dv + 1));
    unsigned char *in_view = calloc((size_t)o_alloc, 1);
    if (!o_ref || !lse_ref || !seen || !rows || !got || !want || !in_view) {
        vfail(&v, "out of host memory in verification");
        goto out;
    }
    if (ref_attention_ex(p, in, o_ref, lse_ref, NULL, seen) != 0) {
        vfail(&v, "the reference ran out of host memory");
        goto out;
    }
    const size_t nrows = verify_rows(&n, in, rows), on = nrows * (size_t)Dv;
    res.rows = (long)nrows;
    for (size_t r = 0; r < nrows; r++)
        res.masked_rows += seen[rows[r].lse] == 0;

    for (size_t r = 0; r < nrows; r++)
        for (int d = 0; d < Dv; d++) {
            got[r * Dv + d] = ref_load(got_o, n.dtype, rows[r].got + d);
            want[r * Dv + d] = o_ref[rows[r].ref * Dv + d];
            in_view[rows[r].got + d] = 1;
        }

    const vdata d = {&v, &n, rows, want, got, seen, on, Dv};
    check_o_l2(&d, tol, &res);
    check_o_elements(&d, tol, &res);
    check_o_special(&d);
    check_o_outside(&v, &n, got_o, o_init, o_alloc, in_view);
    if (got_lse)
        check_lse(&d, nrows, got_lse, lse_ref, lse_count, lse_alloc, tol, &res);
out:
    free(o_ref);
    free(lse_ref);
    free(seen);
    free(rows);
    free(got);
    free(want);
    free(in_view);
    res.fails = v.fails;
    return res;
}

t_result t_verify(const char *label, const t_tensors *t, t_tolerance tol)
{
    clattn_host_buffers hb = t_tensors_host(t);
    hb.o = NULL;
    hb.lse = NULL;
    return t_verify_raw(label, &t->p, &hb, t->o, t->o_init, t->o_alloc, t->lse,
                        t->lse_n + T_GUARD, tol);
}

t_result t_verify_probs(const char *label, const clattn_problem *p, const clattn_host_buffers *in,
                        const float *probs, t_tolerance tol)
{
    t_result res = {0};
    vctx v = {label, p, in, 0, 0};
    clattn_problem n;
    ref_normalize(p, &n);
    size_t total = (size_t)n.batch * n.heads * n.seq_q * n.seq_kv;
    double *ref = malloc(sizeof(double) * total);
    if (!ref) {
        vfail(&v, "out of host memory in verification");
        res.fails = v.fails;
        return res;
    }
    if (ref_attention(p, in, NULL, NULL, ref) != 0) {
        vfail(&v, "the reference ran out of host memory");
        free(ref);
        res.fails = v.fails;
        return res;
    }
    size_t worst = 0, bad = 0;
    for (size_t e = 0; e < total; e++) {
        double err = fabs((double)probs[e] - ref[e]);
        if (isnan(err))
            err = INFINITY;
        if (err > res.probs_err) {
            res.probs_err = err;
            worst = e;
        }
        bad += !(err <= tol.probs_abs);
    }
    if (bad) {
        size_t row = worst / (size_t)n.seq_kv;
        vfail(&v, "%zu of %zu probabilities off by more than %.3g; worst %.3g at row %zu key %zu "
              "(ref %.9g got %.9g)", bad, total, tol.probs_abs, res.probs_err, row,
              worst % (size_t)n.seq_kv, ref[worst], (double)probs[worst]);
    }
    free(ref);
    res.fails = v.fails;
    return res;
}

int t_check_run(clattn_context *ctx, const char *label, t_tensors *t, int use_host)
{
    int before = t_failures;
    char desc[512];
    clattn_host_buffers hb = t_tensors_host(t);
    t_describe(&t->p, &hb, desc, sizeof desc);
    clattn_status sup = clattn_supports(ctx, &t->p);
    if (sup == CLATTN_ERR_UNSUPPORTED) {
        t_skip("%s [%s]: unsupported on this device: %s", label, desc, clattn_last_error(ctx));
        return -1;
    }
    T_CHECK(sup == CLATTN_OK, "%s [%s]: clattn_supports -> %s: %s", label, desc,
            clattn_status_string(sup), clattn_last_error(ctx));
    t_tensors_poison(t);
    clattn_status st = use_host ? t_run_host(ctx, t) : t_run_device(ctx, t);
    t_result res = {0};
    if (st != CLATTN_OK)
        T_FAIL("%s [%s]: %s -> %s: %s", label, desc,
               use_host ? "clattn_forward_host" : "clattn_forward", clattn_status_string(st),
               clattn_last_error(ctx));
    else
        res = t_verify(label, t, t_tolerance_for(t->p.dtype));
    t_log("%s %s (%s): relL2 %.2e elem %.2f lse %.1e masked %ld/%ld  [%s]",
          t_failures != before ? "BAD " : "ok  ", label, use_host ? "host" : "device", res.rel_l2,
          res.elem_use, res.lse_err, res.masked_rows, res.rows, desc);
    return t_failures - before;
}

void t_set_key(t_tensors *t, int j, float value, int in_k, int in_v)
{
    const clattn_problem *n = &t->n;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->kv_heads; h++) {
            int64_t ko = b * n->k_strides.batch + h * n->k_strides.head + j * n->k_strides.seq;
            int64_t vo = b * n->v_strides.batch + h * n->v_strides.head + j * n->v_strides.seq;
            for (int d = 0; in_k && d < n->head_dim; d++)
                ref_store(t->k, n->dtype, ko + d, value);
            for (int d = 0; in_v && d < n->head_dim_v; d++)
                ref_store(t->v, n->dtype, vo + d, value);
        }
}

const clattn_path t_all_paths[4] = {CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                    CLATTN_PATH_SPLIT_KV, CLATTN_PATH_AUTO};

enum { T_KEPT_MAX = 1024 };
static cl_mem t_kept[T_KEPT_MAX];
static int t_nkept;

void t_keep_until_end(cl_mem *m)
{
    if (*m && t_nkept < T_KEPT_MAX)
        t_kept[t_nkept++] = *m;
    else if (*m)
        clReleaseMemObject(*m);
    *m = NULL;
}

void t_release_kept(void)
{
    while (t_nkept > 0)
        clReleaseMemObject(t_kept[--t_nkept]);
}
