/* Problem validation: every check names the field it rejects. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "problem.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* a * b into *r; 0 on overflow. Operands are non-negative. */
static int mul_ok(int64_t a, int64_t b, int64_t *r)
{
    if (a != 0 && b > INT64_MAX / a)
        return 0;
    *r = a * b;
    return 1;
}

static int add_ok(int64_t a, int64_t b, int64_t *r)
{
    if (b > INT64_MAX - a)
        return 0;
    *r = a + b;
    return 1;
}

/* Packed strides of [n0][n1][n2][n3]; 0 if a product overflows. */
static int packed(int64_t n1, int64_t n2, int64_t n3, clattn_strides *s)
{
    s->seq = n3;
    return mul_ok(n2, n3, &s->head) && mul_ok(n1, s->head, &s->batch);
}

/* Validates a view [n0][n1][n2][n3] with strides s (dim stride 1): strides
 * non-negative, no two elements at one offset, extent within int64. */
static clattn_status check_view(struct clattn_context *ctx, const char *name,
                                const clattn_strides *s, int64_t n0, int64_t n1, int64_t n2,
                                int64_t n3, int64_t *extent)
{
    if (s->batch < 0 || s->head < 0 || s->seq < 0)
        return BAD("%s_strides: negative stride (batch %lld, head %lld, seq %lld)", name,
                   (long long)s->batch, (long long)s->head, (long long)s->seq);
    int64_t n[4] = {n3, n2, n1, n0};
    int64_t st[4] = {1, s->seq, s->head, s->batch};
    const char *dn[4] = {"dim", "seq", "head", "batch"};
    /* Sorted by stride, each dimension of extent > 1 must step past all the
     * offsets the smaller ones reach: then no two elements coincide. */
    int order[4] = {0, 1, 2, 3};
    for (int a = 1; a < 4; ++a)
        for (int b = a; b > 0 && st[order[b]] < st[order[b - 1]]; --b) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    int64_t span = 0; /* largest offset reached so far */
    for (int a = 0; a < 4; ++a) {
        int x = order[a];
        if (n[x] <= 1)
            continue;
        if (st[x] <= span)
            return BAD("%s_strides: the %s stride %lld overlaps the elements of the smaller "
                       "dimensions (needs > %lld)",
                       name, dn[x], (long long)st[x], (long long)span);
        int64_t step;
        if (!mul_ok(n[x] - 1, st[x], &step) || !add_ok(span, step, &span))
            return BAD("%s_strides: offsets overflow 64 bits", name);
    }
    if (!add_ok(span, 1, extent))
        return BAD("%s_strides: offsets overflow 64 bits", name);
    return CLATTN_OK;
}

clattn_status clattn__problem_normalize(struct clattn_context *ctx, const clattn_problem *in,
                                        clattn__shape *out)
{
    if (!in)
        return BAD("problem is NULL");
    memset(out, 0, sizeof *out);
    clattn_problem p = *in;

    if (p.batch <= 0)
        return BAD("batch must be positive (got %d)", p.batch);
    if (p.heads <= 0)
        return BAD("heads must be positive (got %d)", p.heads);
    if (p.kv_heads < 0)
        return BAD("kv_heads must be 0 (= heads) or positive (got %d)", p.kv_heads);
    if (p.kv_heads == 0)
        p.kv_heads = p.heads;
    if (p.heads % p.kv_heads != 0)
        return BAD("heads (%d) must be a multiple of kv_heads (%d)", p.heads, p.kv_heads);
    if (p.seq_q <= 0 || p.seq_q > CLATTN__MAX_SEQ)
        return BAD("seq_q must be in 1..%d (got %d)", CLATTN__MAX_SEQ, p.seq_q);
    if (p.seq_kv <= 0 || p.seq_kv > CLATTN__MAX_SEQ)
        return BAD("seq_kv must be in 1..%d (got %d)", CLATTN__MAX_SEQ, p.seq_kv);
    if (p.head_dim <= 0 || p.head_dim > CLATTN__MAX_HEAD_DIM)
        return BAD("head_dim must be in 1..%d (got %d)", CLATTN__MAX_HEAD_DIM, p.head_dim);
    if (p.head_dim_v < 0 || p.head_dim_v > CLATTN__MAX_HEAD_DIM)
        return BAD("head_dim_v must be 0 (= head_dim) or in 1..%d (got %d)",
                   CLATTN__MAX_HEAD_DIM, p.head_dim_v);
    if (p.head_dim_v == 0)
        p.head_dim_v = p.head_dim;
    if (p.dtype != CLATTN_F32 && p.dtype != CLATTN_F16 && p.dtype != CLATTN_BF16)
        return BAD("dtype %d is not a clattn_dtype", (int)p.dtype);
    if (p.path != CLATTN_PATH_AUTO && p.path != CLATTN_PATH_FUSED &&
        p.path != CLATTN_PATH_THREE_STAGE && p.path != CLATTN_PATH_SPLIT_KV)
        return BAD("path %d is not a clattn_path", (int)p.path);
    if (p.causal != CLATTN_CAUSAL_NONE && p.causal != CLATTN_CAUSAL_BOTTOM_RIGHT &&
        p.causal != CLATTN_CAUSAL_TOP_LEFT)
        return BAD("causal must be 0, 1 (bottom-right) or 2 (top-left) (got %d)", p.causal);
    if (!isfinite(p.scale))
        return BAD("scale must be finite (got %g)", (double)p.scale);
    if (p.scale == 0.0f)
        p.scale = (float)(1.0 / sqrt((double)p.head_dim));
    p.windowed = p.windowed != 0;
    if (p.mask_batch_stride < 0 || p.mask_head_stride < 0)
        return BAD("mask_batch_stride and mask_head_stride must be non-negative (got %lld, "
                   "%lld)",
                   (long long)p.mask_batch_stride, (long long)p.mask_head_stride);
    int64_t bh;
    if (!mul_ok(p.batch, p.heads, &bh) || bh > INT32_MAX)
        return BAD("batch * heads (%d * %d) must fit in 32 bits", p.batch, p.heads);

    struct {
        const char *name;
        clattn_strides *s;
        int64_t n1, n2, n3;
        int64_t *extent;
    } views[4] = {
        {"q", &p.q_strides, p.heads, p.seq_q, p.head_dim, &out->q_extent},
        {"k", &p.k_strides, p.kv_heads, p.seq_kv, p.head_dim, &out->k_extent},
        {"v", &p.v_strides, p.kv_heads, p.seq_kv, p.head_dim_v, &out->v_extent},
        {"o", &p.o_strides, p.heads, p.seq_q, p.head_dim_v, &out->o_extent},
    };
    for (int i = 0; i < 4; ++i) {
        clattn_strides *s = views[i].s;
        if (s->batch == 0 && s->head == 0 && s->seq == 0 &&
            !packed(views[i].n1, views[i].n2, views[i].n3, s))
            return BAD("%s: packed size overflows 64 bits", views[i].name);
        CLATTN_TRY(check_view(ctx, views[i].name, s, p.batch, views[i].n1, views[i].n2,
                              views[i].n3, views[i].extent));
    }

    /* Mask extent: (batch-1)*mbs + (heads-1)*mhs + seq_q*seq_kv. */
    int64_t a, b, c;
    if (!mul_ok(p.batch - 1, p.mask_batch_stride, &a) ||
        !mul_ok(p.heads - 1, p.mask_head_stride, &b) || !mul_ok(p.seq_q, p.seq_kv, &c) ||
        !add_ok(a, b, &a) || !add_ok(a, c, &out->mask_extent))
        return BAD("mask strides: offsets overflow 64 bits");
    int64_t lse;
    if (!mul_ok(bh, p.seq_q, &lse))
        return BAD("batch * heads * seq_q overflows 64 bits");
    out->lse_elems = lse;

    out->p = p;
    out->group = p.heads / p.kv_heads;
    out->elem_size = p.dtype == CLATTN_F32 ? 4 : 2;
    /* Byte sizes must fit too (clattn.h's limit is in bytes: 16-bit
     * tensors may have twice the elements of fp32 ones). */
    const int64_t lim = INT64_MAX / (int64_t)out->elem_size, lim32 = INT64_MAX / 4;
    if (out->q_extent > lim || out->k_extent > lim || out->v_extent > lim ||
        out->o_extent > lim || out->mask_extent > lim32 || out->lse_elems > lim32)
        return BAD("a tensor's size in bytes overflows 64 bits");
    return CLATTN_OK;
}
