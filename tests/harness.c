/* Shared test machinery; see harness.h. */
#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int t_failures;

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

int t_tensors_init(t_tensors *t, const clattn_problem *p, unsigned flags, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->p = *p;
    ref_normalize(p, &t->n);
    const clattn_problem *n = &t->n;
    t_rng r;
    t_rng_seed(&r, seed);
    t->esz = ref_dtype_size(n->dtype);
    t->q_n = ref_extent(&n->q_strides, n->batch, n->heads, n->seq_q, n->head_dim);
    t->k_n = ref_extent(&n->k_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim);
    t->v_n = ref_extent(&n->v_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim_v);
    t->o_n = ref_extent(&n->o_strides, n->batch, n->heads, n->seq_q, n->head_dim_v);
    t->o_alloc = t->o_n + T_GUARD;
    t->q = malloc((size_t)t->q_n * t->esz);
    t->k = malloc((size_t)t->k_n * t->esz);
    t->v = malloc((size_t)t->v_n * t->esz);
    t->o = malloc((size_t)t->o_alloc * t->esz);
    t->o_init = malloc((size_t)t->o_alloc * t->esz);
    t->lse_n = (int64_t)n->batch * n->heads * n->seq_q;
    if (flags & T_WITH_LSE)
        t->lse = malloc(sizeof(float) * (size_t)(t->lse_n + T_GUARD));
    if (flags & T_WITH_MASK) {
        t->mask_n = t_mask_extent(n);
        t->mask = malloc(sizeof(float) * (size_t)t->mask_n);
    }
    if (flags & (T_WITH_KV_LENS | T_NAN_BEYOND_LEN))
        t->kv_lens = malloc(sizeof(int32_t) * (size_t)n->batch);
    if (!t->q || !t->k || !t->v || !t->o || !t->o_init || ((flags & T_WITH_LSE) && !t->lse) ||
        ((flags & T_WITH_MASK) && !t->mask) ||
        ((flags & (T_WITH_KV_LENS | T_NAN_BEYOND_LEN)) && !t->kv_lens)) {
        T_FAIL("out of host memory for tensors");
        t_tensors_free(t);
        return -1;
    }

    /* gaps of the inputs hold NaN: reading one would poison the output */
    t_fill_poison(t->q, n->dtype, t->q_n);
    t_fill_poison(t->k, n->dtype, t->k_n);
    t_fill_poison(t->v, n->dtype, t->v_n);
    fill_view(t->q, n->dtype, &n->q_strides, n->batch, n->heads, n->seq_q, n->head_dim, &r);
    fill_view(t->k, n->dtype, &n->k_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim, &r);
    fill_view(t->v, n->dtype, &n->v_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim_v,
              &r);
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
    t_tensors_poison(t);
    return 0;
}

void t_tensors_nan_beyond_len(t_tensors *t)
{
    const clattn_problem *n = &t->n;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->kv_heads; h++)
            for (int j = t->kv_lens[b] < 0 ? 0 : t->kv_lens[b]; j < n->seq_kv; j++) {
                int64_t ko = b * n->k_strides.batch + h * n->k_strides.head + j * n->k_strides.seq;
                int64_t vo = b * n->v_strides.batch + h * n->v_strides.head + j * n->v_strides.seq;
                for (int d = 0; d < n->head_dim; d++)
                    ref_store(t->k, n->dtype, ko + d, NAN);
                for (int d = 0; d < n->head_dim_v; d++)
                    ref_store(t->v, n->dtype, vo + d, NAN);
            }
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
    memset(t, 0, sizeof *t);
}

clattn_host_buffers t_tensors_host(const t_tensors *t)
{
    clattn_host_buffers hb;
    hb.q = t->q;
    hb.k = t->k;
    hb.v = t->v;
    hb.o = t->o;
    hb.mask = t->mask;
    hb.kv_lens = t->kv_lens;
    hb.lse = t->lse;
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
    cl_mem all[7] = {b->q, b->k, b->v, b->o, b->mask, b->kv_lens, b->lse};
    for (int i = 0; i < 7; i++)
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

clattn_status t_run_host(clattn_context *ctx, t_tensors *t)
{
    clattn_host_buffers hb = t_tensors_host(t);
    return clattn_forward_host(ctx, &t->p, &hb);
}

/* ---- verification -------------------------------------------------------- */

t_tolerance t_tolerance_for(clattn_dtype t)
{
    t_tolerance tol = {1e-5, 1e-4, 1e-5};
    if (t == CLATTN_F16) {
        tol.rel_l2 = 2e-3;
        tol.probs_abs = 1e-4;
    } else if (t == CLATTN_BF16) {
        tol.rel_l2 = 1e-2;
        tol.probs_abs = 1e-4;
    }
    return tol;
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

t_result t_verify_raw(const char *label, const clattn_problem *p, const clattn_host_buffers *in,
                      const void *got_o, const void *o_init, int64_t o_alloc,
                      const float *got_lse, int64_t lse_alloc, t_tolerance tol)
{
    t_result res = {0, 0, 0, 0, 0, 0};
    vctx v = {label, p, in, 0, 0};
    clattn_problem n;
    ref_normalize(p, &n);
    const int B = n.batch, H = n.heads, Sq = n.seq_q, Dv = n.head_dim_v;
    const size_t rows = (size_t)B * H * Sq, on = rows * (size_t)Dv;
    const size_t esz = ref_dtype_size(n.dtype);
    double *o_ref = malloc(sizeof(double) * on);
    double *lse_ref = malloc(sizeof(double) * rows);
    double *got = malloc(sizeof(double) * on);
    unsigned char *in_view = calloc((size_t)o_alloc, 1);
    if (!o_ref || !lse_ref || !got || !in_view) {
        vfail(&v, "out of host memory in verification");
        goto out;
    }
    ref_attention(p, in, o_ref, lse_ref, NULL);
    res.rows = (long)rows;
    for (size_t r = 0; r < rows; r++)
        res.masked_rows += lse_ref[r] == -INFINITY;

    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Sq; i++) {
                int64_t off = b * n.o_strides.batch + h * n.o_strides.head + i * n.o_strides.seq;
                size_t row = ((size_t)b * H + h) * Sq + i;
                for (int d = 0; d < Dv; d++) {
                    got[row * Dv + d] = ref_load(got_o, n.dtype, off + d);
                    in_view[off + d] = 1;
                }
            }

    /* O against the reference */
    res.rel_l2 = ref_rel_l2(o_ref, got, on);
    if (!(res.rel_l2 <= tol.rel_l2)) {
        size_t worst = 0;
        double wd = -1.0;
        for (size_t e = 0; e < on; e++) {
            double d = fabs(got[e] - o_ref[e]);
            if (isnan(d))
                d = INFINITY;
            if (d > wd) {
                wd = d;
                worst = e;
            }
        }
        size_t row = worst / (size_t)Dv;
        vfail(&v,
              "O rel L2 %.3g > %.3g; worst |err| %.3g at b%zu h%zu i%zu d%zu (ref %.9g got %.9g)",
              res.rel_l2, tol.rel_l2, wd, row / ((size_t)H * Sq), (row / Sq) % H, row % Sq,
              worst % Dv, o_ref[worst], got[worst]);
    }
    /* no NaN or inf where the reference is finite; masked rows exactly 0 */
    size_t nonfinite = 0, first_nf = 0, masked_nonzero = 0, first_mn = 0;
    for (size_t e = 0; e < on; e++) {
        if (isfinite(o_ref[e]) && !isfinite(got[e]) && nonfinite++ == 0)
            first_nf = e;
        if (lse_ref[e / Dv] == -INFINITY && got[e] != 0.0 && masked_nonzero++ == 0)
            first_mn = e;
    }
    if (nonfinite)
        vfail(&v,
              "%zu of %zu O elements not finite where the reference is; first: row %zu d%zu = %g",
              nonfinite, on, first_nf / Dv, first_nf % Dv, got[first_nf]);
    if (masked_nonzero)
        vfail(&v, "%zu O elements of fully masked rows are not 0; first: row %zu d%zu = %g",
              masked_nonzero, first_mn / Dv, first_mn % Dv, got[first_mn]);
    /* gaps and the guard keep their contents */
    size_t changed = 0, first_ch = 0;
    for (int64_t e = 0; e < o_alloc; e++)
        if (!in_view[e] && memcmp((const char *)got_o + e * esz, (const char *)o_init + e * esz,
                                  esz) != 0 && changed++ == 0)
            first_ch = (size_t)e;
    if (changed)
        vfail(&v, "%zu O elements outside the view (gaps or guard) were written; first at element "
              "%zu (view extent %lld)", changed, first_ch,
              (long long)ref_extent(&n.o_strides, B, H, Sq, Dv));

    /* LSE */
    if (got_lse) {
        size_t bad = 0, first_bad = 0;
        for (size_t r = 0; r < rows; r++) {
            double g = got_lse[r], e = lse_ref[r], err;
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
            if (err > res.lse_err)
                res.lse_err = err;
            if (!ok && bad++ == 0)
                first_bad = r;
        }
        if (bad)
            vfail(&v, "%zu of %zu LSE values wrong; first: b%zu h%zu i%zu ref %.9g got %.9g", bad,
                  rows, first_bad / ((size_t)H * Sq), (first_bad / Sq) % H, first_bad % Sq,
                  lse_ref[first_bad], (double)got_lse[first_bad]);
        size_t guard_bad = 0;
        for (int64_t r = (int64_t)rows; r < lse_alloc; r++) {
            uint32_t bits;
            memcpy(&bits, &got_lse[r], sizeof bits);
            guard_bad += bits != T_LSE_POISON;
        }
        if (guard_bad)
            vfail(&v, "%zu LSE guard elements after the %zu rows were written", guard_bad, rows);
    }
out:
    free(o_ref);
    free(lse_ref);
    free(got);
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
    t_result res = {0, 0, 0, 0, 0, 0};
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
    ref_attention(p, in, NULL, NULL, ref);
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
        t_log("skip %s [%s]: unsupported on this device: %s", label, desc, clattn_last_error(ctx));
        return 0;
    }
    T_CHECK(sup == CLATTN_OK, "%s [%s]: clattn_supports -> %s: %s", label, desc,
            clattn_status_string(sup), clattn_last_error(ctx));
    t_tensors_poison(t);
    clattn_status st = use_host ? t_run_host(ctx, t) : t_run_device(ctx, t);
    t_result res = {0, 0, 0, 0, 0, 0};
    if (st != CLATTN_OK)
        T_FAIL("%s [%s]: %s -> %s: %s", label, desc,
               use_host ? "clattn_forward_host" : "clattn_forward", clattn_status_string(st),
               clattn_last_error(ctx));
    else
        res = t_verify(label, t, t_tolerance_for(t->p.dtype));
    t_log("%s %s (%s): relL2 %.2e lse %.1e masked %ld/%ld  [%s]",
          t_failures != before ? "BAD " : "ok  ", label, use_host ? "host" : "device", res.rel_l2,
          res.lse_err, res.masked_rows, res.rows, desc);
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
