/* attn-tune verify: the cases, their inputs and the comparison with the
 * double-precision reference of the tests (tests/reference.h). */
#include "verify.h"

#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each shape stresses something the others do not: GQA with seq_q != seq_kv
 * and sizes that fill no tile evenly; a decode step (one query row, few
 * heads) where split-KV is the natural path; several query blocks; head_dim
 * 128 in the [batch][seq][heads][dim] layout; an odd head_dim with a
 * different V width, a non-default scale, MQA and gaps in every tensor; a
 * single head over a long KV, which split-KV cuts into several partitions
 * on any device (it splits only while the other dimensions leave compute
 * units idle). */
const vshape verify_shapes[] = {
    /* name        B  H  KVH  Sq  Skv    D   Dv  scale  layout        quick */
    {"small", 2, 4, 2, 33, 47, 64, 64, 0.0f, VLAYOUT_PACKED, 1},
    {"decode", 3, 2, 1, 1, 300, 64, 64, 0.0f, VLAYOUT_PACKED, 1},
    {"square", 2, 2, 2, 150, 150, 64, 64, 0.0f, VLAYOUT_PACKED, 0},
    {"gqa-bshd", 1, 8, 2, 37, 211, 128, 128, 0.0f, VLAYOUT_BSHD, 0},
    {"odd-padded", 2, 3, 1, 19, 77, 33, 20, 0.3f, VLAYOUT_PADDED, 0},
    {"long-kv", 1, 1, 1, 4, 1000, 128, 128, 0.0f, VLAYOUT_PACKED, 0},
};
const size_t verify_shape_count = sizeof verify_shapes / sizeof verify_shapes[0];

/* The window: 24 keys back and 8 ahead of a row's diagonal. */
#define WINDOW_LEFT 24
#define WINDOW_RIGHT 8
/* Share of additive-mask entries that are -inf. */
#define MASK_NEG_INF_SHARE 0.15
/* Bytes written into O's gaps and tail; must survive the run. */
#define GUARD_BYTE 0xA5
#define GUARD_TAIL_ELEMS 16

const char *verify_mask_name(vmask m)
{
    switch (m) {
    case VMASK_NONE: return "none";
    case VMASK_CAUSAL_BR: return "causal-br";
    case VMASK_CAUSAL_TL: return "causal-tl";
    case VMASK_WINDOW: return "window";
    case VMASK_ADDITIVE: return "mask";
    case VMASK_KV_LENS: return "kv_lens";
    case VMASK_SLIDING: return "sliding";
    case VMASK_KV_CAUSAL: return "kv+causal";
    case VMASK_COUNT: break;
    }
    return "?";
}

const char *verify_layout_name(vlayout l)
{
    switch (l) {
    case VLAYOUT_PACKED: return "packed";
    case VLAYOUT_BSHD: return "bshd";
    case VLAYOUT_PADDED: return "padded";
    }
    return "?";
}

/* splitmix64: small, and the same numbers on every platform. */
static double rng_uniform(uint64_t *state, double lo, double hi)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * ((double)(z >> 11) * (1.0 / 9007199254740992.0));
}

static clattn_strides layout_strides(vlayout l, int heads, int seq, int dim)
{
    clattn_strides s = {0, 0, 0};
    switch (l) {
    case VLAYOUT_PACKED: break;
    case VLAYOUT_BSHD:
        s.seq = (int64_t)heads * dim;
        s.head = dim;
        s.batch = (int64_t)seq * heads * dim;
        break;
    case VLAYOUT_PADDED:
        s.seq = dim + 3;
        s.head = (int64_t)seq * s.seq + 5;
        s.batch = heads * s.head + 7;
        break;
    }
    return s;
}

static int64_t offset(const clattn_strides *s, int b, int h, int i, int d)
{
    return b * s->batch + h * s->head + i * s->seq + d;
}

/* A tensor whose every element, gaps included, is NaN until filled. */
static void *alloc_nan(clattn_dtype t, int64_t elems)
{
    void *p = malloc((size_t)elems * ref_dtype_size(t));
    if (p)
        for (int64_t e = 0; e < elems; e++) ref_store(p, t, e, NAN);
    return p;
}

static void fill_view(void *base, clattn_dtype t, const clattn_strides *s, int nb, int nh,
                      int ns, int nd, uint64_t *rng, double lo, double hi)
{
    for (int b = 0; b < nb; b++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < ns; i++)
                for (int d = 0; d < nd; d++)
                    ref_store(base, t, offset(s, b, h, i, d), (float)rng_uniform(rng, lo, hi));
}

static clattn_problem make_problem(const vshape *s, vmask m, clattn_dtype dtype)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = s->batch;
    p.heads = s->heads;
    p.kv_heads = s->kv_heads;
    p.seq_q = s->seq_q;
    p.seq_kv = s->seq_kv;
    p.head_dim = s->head_dim;
    p.head_dim_v = s->head_dim_v;
    p.dtype = dtype;
    p.scale = s->scale;
    p.q_strides = layout_strides(s->layout, s->heads, s->seq_q, s->head_dim);
    p.k_strides = layout_strides(s->layout, s->kv_heads, s->seq_kv, s->head_dim);
    p.v_strides = layout_strides(s->layout, s->kv_heads, s->seq_kv, s->head_dim_v);
    p.o_strides = layout_strides(s->layout, s->heads, s->seq_q, s->head_dim_v);
    switch (m) {
    case VMASK_CAUSAL_BR:
    case VMASK_KV_CAUSAL: p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT; break;
    case VMASK_CAUSAL_TL: p.causal = CLATTN_CAUSAL_TOP_LEFT; break;
    case VMASK_WINDOW:
        p.windowed = 1;
        p.window_left = WINDOW_LEFT;
        p.window_right = WINDOW_RIGHT;
        break;
    case VMASK_SLIDING:
        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p.windowed = 1;
        p.window_left = WINDOW_LEFT;
        p.window_right = -1; /* unbounded, left to the causal limit */
        break;
    case VMASK_ADDITIVE:
        /* Packed shapes broadcast one mask per batch entry over the heads;
         * the others have one per head. */
        p.mask_head_stride = s->layout == VLAYOUT_PACKED ? 0 : (int64_t)s->seq_q * s->seq_kv;
        p.mask_batch_stride = s->layout == VLAYOUT_PACKED ? (int64_t)s->seq_q * s->seq_kv
                                                         : s->heads * p.mask_head_stride;
        break;
    default: break;
    }
    return p;
}

/* The additive mask: random score offsets, some keys masked with -inf, and
 * the first row of batch 0 (head 0) masked whole (it must come out as zeros
 * and an LSE of -inf). */
static float *make_mask(const clattn_problem *p, uint64_t *rng)
{
    size_t n = (size_t)((p->batch - 1) * p->mask_batch_stride +
                        (p->heads - 1) * p->mask_head_stride) +
               (size_t)p->seq_q * p->seq_kv;
    float *mask = malloc(n * sizeof *mask);
    if (!mask) return NULL;
    for (size_t e = 0; e < n; e++) {
        mask[e] = rng_uniform(rng, 0.0, 1.0) < MASK_NEG_INF_SHARE
                      ? -INFINITY
                      : (float)rng_uniform(rng, -3.0, 1.0);
    }
    for (int j = 0; j < p->seq_kv; j++) mask[j] = -INFINITY;
    return mask;
}

/* Lengths cycle through two thirds of the keys, all of them, and none. */
static int32_t *make_kv_lens(const clattn_problem *p)
{
    int32_t *lens = malloc((size_t)p->batch * sizeof *lens);
    if (!lens) return NULL;
    for (int b = 0; b < p->batch; b++) {
        switch (b % 3) {
        case 0: lens[b] = p->batch == 1 ? p->seq_kv / 2 + 1 : p->seq_kv - p->seq_kv / 3; break;
        case 1: lens[b] = p->seq_kv; break;
        default: lens[b] = 0; break;
        }
    }
    return lens;
}

int vdata_make(vdata *d, const vshape *s, vmask m, clattn_dtype dtype, uint64_t seed)
{
    const clattn_problem *n = &d->norm;
    uint64_t rng = seed;
    int64_t q_ext, k_ext, v_ext, o_ext;

    memset(d, 0, sizeof *d);
    d->problem = make_problem(s, m, dtype);
    ref_normalize(&d->problem, &d->norm);
    q_ext = ref_extent(&n->q_strides, n->batch, n->heads, n->seq_q, n->head_dim);
    k_ext = ref_extent(&n->k_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim);
    v_ext = ref_extent(&n->v_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim_v);
    o_ext = ref_extent(&n->o_strides, n->batch, n->heads, n->seq_q, n->head_dim_v);

    d->q = alloc_nan(dtype, q_ext);
    d->k = alloc_nan(dtype, k_ext);
    d->v = alloc_nan(dtype, v_ext);
    d->o_elems = (size_t)o_ext + GUARD_TAIL_ELEMS;
    d->o = malloc(d->o_elems * ref_dtype_size(dtype));
    d->o_in_view = calloc(d->o_elems, 1);
    d->o_count = (size_t)n->batch * n->heads * n->seq_q * n->head_dim_v;
    d->lse_count = (size_t)n->batch * n->heads * n->seq_q;
    d->lse = malloc(d->lse_count * sizeof *d->lse);
    d->ref_o = malloc(d->o_count * sizeof *d->ref_o);
    d->got_o = malloc(d->o_count * sizeof *d->got_o);
    d->ref_lse = malloc(d->lse_count * sizeof *d->ref_lse);
    if (!d->q || !d->k || !d->v || !d->o || !d->o_in_view || !d->lse || !d->ref_o ||
        !d->got_o || !d->ref_lse)
        return 0;

    /* Scores of standard deviation about 1.3 after the default scale: peaked
     * enough that a wrong key shows, flat enough that many keys count. */
    fill_view(d->q, dtype, &n->q_strides, n->batch, n->heads, n->seq_q, n->head_dim, &rng,
              -2.0, 2.0);
    fill_view(d->k, dtype, &n->k_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim, &rng,
              -2.0, 2.0);
    fill_view(d->v, dtype, &n->v_strides, n->batch, n->kv_heads, n->seq_kv, n->head_dim_v,
              &rng, -1.0, 1.0);
    if (m == VMASK_ADDITIVE && !(d->mask = make_mask(n, &rng))) return 0;
    if (m == VMASK_KV_LENS || m == VMASK_KV_CAUSAL) {
        if (!(d->kv_lens = make_kv_lens(n))) return 0;
        /* Past its length a KV cache holds garbage; its probability is zero,
         * so even NaN there must not reach O. */
        for (int b = 0; b < n->batch; b++)
            for (int h = 0; h < n->kv_heads; h++)
                for (int j = d->kv_lens[b]; j < n->seq_kv; j++)
                    for (int e = 0; e < n->head_dim_v; e++)
                        ref_store(d->v, dtype, offset(&n->v_strides, b, h, j, e), NAN);
    }
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++)
                for (int e = 0; e < n->head_dim_v; e++)
                    d->o_in_view[offset(&n->o_strides, b, h, i, e)] = 1;

    d->host.q = d->q;
    d->host.k = d->k;
    d->host.v = d->v;
    d->host.o = d->o;
    d->host.mask = d->mask;
    d->host.kv_lens = d->kv_lens;
    d->host.lse = d->lse;
    ref_attention(&d->problem, &d->host, d->ref_o, d->ref_lse, NULL);
    return 1;
}

void vdata_set_path(vdata *d, clattn_path path)
{
    d->problem.path = path;
}

void vdata_poison_outputs(vdata *d)
{
    memset(d->o, GUARD_BYTE, d->o_elems * ref_dtype_size(d->problem.dtype));
    for (size_t e = 0; e < d->o_elems; e++)
        if (d->o_in_view[e]) ref_store(d->o, d->problem.dtype, (int64_t)e, NAN);
    for (size_t e = 0; e < d->lse_count; e++) d->lse[e] = NAN;
}

void vdata_free(vdata *d)
{
    free(d->q);
    free(d->k);
    free(d->v);
    free(d->o);
    free(d->mask);
    free(d->lse);
    free(d->kv_lens);
    free(d->o_in_view);
    free(d->ref_o);
    free(d->ref_lse);
    free(d->got_o);
    memset(d, 0, sizeof *d);
}

/* Relative L2 over the rows that see some key; a row the reference gives
 * -inf must be -inf too, or the error is infinite. Names the worst row. */
static double lse_error(const vdata *d, char *worst, size_t size)
{
    double num = 0.0, den = 0.0, worst_diff = -1.0;
    int mismatch = 0;
    for (size_t e = 0; e < d->lse_count; e++) {
        double r = d->ref_lse[e], g = d->lse[e], diff;
        int ninf = isinf(r) && r < 0;
        if (ninf ? !(isinf(g) && g < 0) : !isfinite(g)) {
            diff = INFINITY;
            mismatch = 1;
        } else {
            diff = ninf ? 0.0 : fabs(g - r);
            if (!ninf) {
                num += (g - r) * (g - r);
                den += r * r;
            }
        }
        if (diff > worst_diff) {
            int i = (int)(e % (size_t)d->norm.seq_q);
            int h = (int)(e / (size_t)d->norm.seq_q % (size_t)d->norm.heads);
            int b = (int)(e / ((size_t)d->norm.seq_q * (size_t)d->norm.heads));
            worst_diff = diff;
            snprintf(worst, size, "worst lse[b=%d][h=%d][i=%d] = %.6g, reference %.6g", b, h, i,
                     g, r);
        }
    }
    if (mismatch) return INFINITY;
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static int guard_intact(const vdata *d)
{
    size_t es = ref_dtype_size(d->problem.dtype);
    const unsigned char *bytes = d->o;
    for (size_t e = 0; e < d->o_elems; e++) {
        if (d->o_in_view[e]) continue;
        for (size_t k = 0; k < es; k++)
            if (bytes[e * es + k] != GUARD_BYTE) return 0;
    }
    return 1;
}

void vdata_check(vdata *d, vcheck *c)
{
    const clattn_problem *n = &d->norm;
    double worst = -1.0;
    size_t at = 0;
    c->worst[0] = '\0';
    c->lse_worst[0] = '\0';
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++)
                for (int e = 0; e < n->head_dim_v; e++) {
                    double got = ref_load(d->o, n->dtype, offset(&n->o_strides, b, h, i, e));
                    double diff = fabs(got - d->ref_o[at]);
                    d->got_o[at++] = got;
                    if (isnan(got)) diff = INFINITY;
                    if (diff > worst) {
                        worst = diff;
                        snprintf(c->worst, sizeof c->worst,
                                 "worst o[b=%d][h=%d][i=%d][%d] = %.6g, reference %.6g", b, h,
                                 i, e, got, d->ref_o[at - 1]);
                    }
                }
    c->o_err = ref_rel_l2(d->ref_o, d->got_o, d->o_count);
    c->lse_err = lse_error(d, c->lse_worst, sizeof c->lse_worst);
    c->guard_ok = guard_intact(d);
}
