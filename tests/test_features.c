/*
 * The 1.0 features of clattn.h: logit softcap, attention sinks, ALiBi, the
 * typed additive bias, the boolean mask, kv_start, chunked attention, packed
 * variable-length batches and head_dim up to 512 / 576; the symmetric ALiBi
 * of 1.4.
 *   features_reference: the reference's new semantics on closed forms, and
 *     varlen / bias / bool_mask against equivalent plain problems.
 *   features_paths: each feature combination on every path and dtype, on
 *     shapes that are multiples of no tile, against the reference.
 *   features_numerics: the same features at the extremes (capped logits of
 *     1e30, ALiBi at positions near 10^6, masks of +-1e30 beside -inf, sinks
 *     of rows that see nothing).
 *   features_errors: every invalid combination refused, naming the field,
 *     with the outputs as they were.
 *   alibi_slopes: clattn_alibi_slopes against ref_alibi_slopes.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

static const clattn_dtype k_dtypes[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};

static clattn_mask_strides mstrides(int64_t batch, int64_t head, int64_t row)
{
    clattn_mask_strides s = {batch, head, row};
    return s;
}

/* A dense [B][H][Sq][Skv] mask layout. */
static clattn_mask_strides dense_mask(const clattn_problem *p)
{
    const int64_t plane = (int64_t)p->seq_q * p->seq_kv;
    return mstrides(p->heads * plane, plane, p->seq_kv);
}

/* Whether msg contains one of the '|'-separated words, case-insensitively
 * and bounded by characters that cannot belong to an identifier ('.' may:
 * "bias.strides" names bias). */
static int names_one_of(const char *msg, const char *words)
{
    const char *w = words;
    while (*w) {
        const char *end = strchr(w, '|');
        size_t len = end ? (size_t)(end - w) : strlen(w);
        for (const char *m = msg; *m; m++) {
            size_t i = 0;
            while (i < len && m[i] && tolower((unsigned char)m[i]) == tolower((unsigned char)w[i]))
                i++;
            if (i != len)
                continue;
            int before_ok = m == msg || !(isalnum((unsigned char)m[-1]) || m[-1] == '_');
            int after_ok = !(isalnum((unsigned char)m[len]) || m[len] == '_');
            if (before_ok && after_ok)
                return 1;
        }
        if (!end)
            break;
        w = end + 1;
    }
    return 0;
}

/* ==== features_reference ================================================== */

static int close_to(double got, double want, double tol)
{
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

/* A tiny F32 problem with head_dim 1: q = 1, k_j = score_j, v_j = value_j. */
static void tiny_problem(clattn_problem *p, int seq_q, int seq_kv)
{
    memset(p, 0, sizeof *p);
    p->batch = 1;
    p->heads = 1;
    p->seq_q = seq_q;
    p->seq_kv = seq_kv;
    p->head_dim = 1;
    p->scale = 1.0f;
}

static void ref_closed_forms(void)
{
    clattn_problem p;
    clattn_host_buffers in;
    float q[4] = {1, 1, 1, 1}, k[4], v[4];
    double o[4], lse[4];
    int seen[4];

    /* sinks: one key of score s, a sink of logit c */
    tiny_problem(&p, 1, 1);
    p.sinks = 1;
    float sink = 1.5f;
    k[0] = 0.25f;
    v[0] = 2.0f;
    memset(&in, 0, sizeof in);
    in.q = q, in.k = k, in.v = v, in.sinks = &sink;
    ref_attention(&p, &in, o, lse, NULL);
    double ps = exp(0.25) / (exp(0.25) + exp(1.5));
    T_CHECK(close_to(o[0], 2.0 * ps, 1e-14) && close_to(lse[0], log(exp(0.25) + exp(1.5)), 1e-14),
            "sink: O %.17g LSE %.17g, expected %.17g %.17g", o[0], lse[0], 2.0 * ps,
            log(exp(0.25) + exp(1.5)));
    /* a sink of -inf is no sink */
    sink = -INFINITY;
    ref_attention(&p, &in, o, lse, NULL);
    T_CHECK(o[0] == 2.0 && lse[0] == 0.25, "sink -inf: O %.17g LSE %.17g, expected 2 and 0.25",
            o[0], lse[0]);
    /* no key seen: O 0, LSE = sink (and -inf with a -inf sink) */
    p.bool_mask.enabled = 1;
    uint8_t none = 0;
    in.bool_mask = &none;
    sink = 1.5f;
    ref_attention_ex(&p, &in, o, lse, NULL, seen);
    T_CHECK(o[0] == 0.0 && lse[0] == 1.5 && seen[0] == 0,
            "sink, no key: O %g LSE %g seen %d, expected 0, 1.5, 0", o[0], lse[0], seen[0]);
    sink = -INFINITY;
    ref_attention(&p, &in, o, lse, NULL);
    T_CHECK(o[0] == 0.0 && lse[0] == -INFINITY, "-inf sink, no key: O %g LSE %g", o[0], lse[0]);

    /* softcap: scores +-100 with cap 1 become tanh(+-100) ~ +-1; then alibi */
    tiny_problem(&p, 1, 2);
    p.softcap = 1.0f;
    k[0] = 100.0f, k[1] = -100.0f;
    v[0] = 1.0f, v[1] = 0.0f;
    memset(&in, 0, sizeof in);
    in.q = q, in.k = k, in.v = v;
    ref_attention(&p, &in, o, lse, NULL);
    double e1 = exp(tanh(100.0)), e2 = exp(-tanh(100.0));
    T_CHECK(close_to(o[0], e1 / (e1 + e2), 1e-14), "softcap: O %.17g, expected %.17g", o[0],
            e1 / (e1 + e2));

    /* alibi after the cap: scores tanh(s) + slope * (j - i'), i' = 1 */
    p.alibi = 1;
    float slope = 0.75f;
    in.alibi_slopes = &slope;
    ref_attention(&p, &in, o, lse, NULL);
    e1 = exp(tanh(100.0) - 0.75), e2 = exp(-tanh(100.0));
    T_CHECK(close_to(o[0], e1 / (e1 + e2), 1e-14), "softcap+alibi: O %.17g, expected %.17g", o[0],
            e1 / (e1 + e2));

    /* symmetric ALiBi: equal scores, i' = i; row i weighs key j by
     * exp(-slope |j - i|) (the linear form would favour the later keys) */
    tiny_problem(&p, 3, 3);
    p.alibi = 1;
    p.alibi_mode = CLATTN_ALIBI_SYMMETRIC;
    k[0] = k[1] = k[2] = 0.0f;
    v[0] = 1.0f, v[1] = 2.0f, v[2] = 4.0f;
    slope = 0.5f;
    memset(&in, 0, sizeof in);
    in.q = q, in.k = k, in.v = v, in.alibi_slopes = &slope;
    ref_attention(&p, &in, o, lse, NULL);
    for (int i = 0; i < 3; i++) {
        double num = 0, den = 0;
        for (int j = 0; j < 3; j++) {
            const double w = exp(-0.5 * fabs((double)(j - i)));
            num += w * v[j];
            den += w;
        }
        T_CHECK(close_to(o[i], num / den, 1e-14) && close_to(lse[i], log(den), 1e-14),
                "symmetric alibi row %d: O %.17g LSE %.17g, expected %.17g %.17g", i, o[i], lse[i],
                num / den, log(den));
    }

    /* chunks with a negative i' - S: seq_q 4 over 2 keys, chunk 2. Rows 0 and
     * 1 (i' = -2, -1) lie in chunk -1 and see nothing; truncating division
     * would put row 1 in chunk 0. Rows 2, 3 (i' = 0, 1) see both keys. */
    tiny_problem(&p, 4, 2);
    p.chunk_size = 2;
    k[0] = 0.5f, k[1] = -0.5f;
    v[0] = 1.0f, v[1] = 3.0f;
    memset(&in, 0, sizeof in);
    in.q = q, in.k = k, in.v = v;
    ref_attention_ex(&p, &in, o, lse, NULL, seen);
    T_CHECK(seen[0] == 0 && seen[1] == 0 && seen[2] == 2 && seen[3] == 2,
            "chunk 2, seq_q 4 over 2 keys: rows see %d %d %d %d keys, expected 0 0 2 2", seen[0],
            seen[1], seen[2], seen[3]);

    /* kv_start with causal bottom-right: L = 3, S = 1, one row (i' = 2)
     * sees keys 1 and 2 only; key 0 holds NaN that must not leak */
    tiny_problem(&p, 1, 3);
    p.kv_start = 1;
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    int32_t start = 1;
    k[0] = NAN, k[1] = 0.0f, k[2] = 0.0f;
    v[0] = NAN, v[1] = 1.0f, v[2] = 3.0f;
    memset(&in, 0, sizeof in);
    in.q = q, in.k = k, in.v = v, in.kv_start = &start;
    ref_attention_ex(&p, &in, o, lse, NULL, seen);
    T_CHECK(o[0] == 2.0 && close_to(lse[0], log(2.0), 1e-15) && seen[0] == 2,
            "kv_start 1: O %.17g LSE %.17g seen %d, expected 2, log 2, 2", o[0], lse[0], seen[0]);
    /* kv_start entries are clamped to 0..seq_kv: 7 hides every key */
    start = 7;
    ref_attention_ex(&p, &in, o, lse, NULL, seen);
    T_CHECK(o[0] == 0.0 && lse[0] == -INFINITY && seen[0] == 0,
            "kv_start 7 of 3: O %g LSE %g seen %d", o[0], lse[0], seen[0]);
    t_log("ok   closed forms: sinks, softcap, alibi (both modes), chunks, kv_start");
}

static void ref_slopes_known(void)
{
    double s[8];
    ref_alibi_slopes(8, s);
    for (int h = 0; h < 8; h++)
        T_CHECK(s[h] == ldexp(1.0, -(h + 1)), "ref_alibi_slopes(8)[%d] = %.17g, expected 2^-%d", h,
                s[h], h + 1);
    /* Bloom's 6 heads: the slopes of 4, then slopes 0 and 2 of 8 */
    static const double six[6] = {0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
    ref_alibi_slopes(6, s);
    for (int h = 0; h < 6; h++)
        T_CHECK(s[h] == six[h], "ref_alibi_slopes(6)[%d] = %.17g, expected %.17g", h, s[h],
                six[h]);
    ref_alibi_slopes(1, s);
    T_CHECK(s[0] == 1.0 / 256.0, "ref_alibi_slopes(1)[0] = %.17g, expected 2^-8", s[0]);
    t_log("ok   ref_alibi_slopes: 8, 6 and 1 heads");
}

/* Copies sequence b of a varlen t into a plain problem of batch 1 and
 * compares the reference's outputs bit for bit. */
static void ref_varlen_vs_plain(void)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 4;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = 9;
    p.seq_kv = 13;
    p.head_dim = 5;
    p.dtype = CLATTN_F32;
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    p.sinks = 1;
    p.alibi = 1;
    p.softcap = 2.0f;
    p.bias.enabled = 1;
    p.bias.strides = dense_mask(&p);
    p.bool_mask.enabled = 1;
    p.bool_mask.strides = mstrides(p.seq_kv, 0, 0);
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_VARLEN | T_WITH_SINKS | T_WITH_ALIBI | T_WITH_BIAS |
                                   T_WITH_BOOL_MASK | T_WITH_LSE,
                       0xfea70001u) != 0)
        return;
    const clattn_problem *n = &t.n;
    const int H = n->heads, Hk = n->kv_heads, D = n->head_dim;
    const size_t on = (size_t)n->total_q * H * D, ln = (size_t)H * n->total_q;
    double *o = malloc(sizeof(double) * on), *lse = malloc(sizeof(double) * ln);
    double *po = malloc(sizeof(double) * (size_t)H * n->seq_q * D);
    double *pl = malloc(sizeof(double) * (size_t)H * n->seq_q);
    float *q = malloc(sizeof(float) * (size_t)H * n->seq_q * D);
    float *k = malloc(sizeof(float) * (size_t)Hk * n->seq_kv * D);
    float *v = malloc(sizeof(float) * (size_t)Hk * n->seq_kv * D);
    float *bias = malloc(sizeof(float) * (size_t)H * n->seq_q * n->seq_kv);
    uint8_t *bm = malloc((size_t)n->seq_kv);
    if (!o || !lse || !po || !pl || !q || !k || !v || !bias || !bm) {
        T_FAIL("out of host memory");
        goto out;
    }
    clattn_host_buffers hb = t_tensors_host(&t);
    ref_attention(&t.p, &hb, o, lse, NULL);
    int bad = 0;
    for (int b = 0; b < n->batch; b++) {
        const int q0 = t.cu_q[b], sq = t.cu_q[b + 1] - q0;
        const int k0 = t.cu_kv[b], skv = t.cu_kv[b + 1] - k0;
        if (sq == 0)
            continue;
        clattn_problem s = p;
        s.batch = 1;
        s.seq_q = sq;
        s.seq_kv = skv > 0 ? skv : 1; /* an empty sequence: one key, hidden below */
        s.varlen = 0;
        s.bias.strides = mstrides(0, (int64_t)sq * s.seq_kv, s.seq_kv);
        s.bool_mask.strides = mstrides(0, 0, 0);
        /* the plain problem's packed [1][H][S][D] tensors, copied token by token */
        for (int h = 0; h < H; h++)
            for (int i = 0; i < sq; i++)
                for (int d = 0; d < D; d++)
                    q[((size_t)h * sq + i) * D + d] =
                        ((const float *)t.q)[(q0 + i) * n->q_strides.seq + h * n->q_strides.head +
                                             d];
        for (int h = 0; h < Hk; h++)
            for (int j = 0; j < s.seq_kv; j++)
                for (int d = 0; d < D; d++) {
                    size_t at = ((size_t)h * s.seq_kv + j) * D + d;
                    k[at] = skv ? ((const float *)t.k)[(k0 + j) * n->k_strides.seq +
                                                        h * n->k_strides.head + d]
                                : 0.0f;
                    v[at] = skv ? ((const float *)t.v)[(k0 + j) * n->v_strides.seq +
                                                        h * n->v_strides.head + d]
                                : 0.0f;
                }
        for (int h = 0; h < H; h++)
            for (int i = 0; i < sq; i++)
                for (int j = 0; j < s.seq_kv; j++)
                    bias[((size_t)h * sq + i) * s.seq_kv + j] =
                        ((const float *)t.bias)[b * n->bias.strides.batch +
                                                h * n->bias.strides.head +
                                                i * n->bias.strides.row + j];
        for (int j = 0; j < s.seq_kv; j++)
            bm[j] = skv ? t.bool_mask[b * n->bool_mask.strides.batch + j] : 0;
        clattn_host_buffers in;
        memset(&in, 0, sizeof in);
        in.q = q, in.k = k, in.v = v, in.bias = bias, in.bool_mask = bm;
        in.sinks = t.sinks, in.alibi_slopes = t.alibi;
        ref_attention(&s, &in, po, pl, NULL);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < sq; i++) {
                double lv = lse[(size_t)h * n->total_q + q0 + i], lp = pl[(size_t)h * sq + i];
                int same = memcmp(&lv, &lp, sizeof lv) == 0;
                for (int d = 0; d < D; d++) {
                    double a = o[((size_t)(q0 + i) * H + h) * D + d];
                    double c = po[((size_t)h * sq + i) * D + d];
                    same &= memcmp(&a, &c, sizeof a) == 0;
                }
                if (!same && bad++ < 5)
                    T_FAIL("varlen sequence %d head %d row %d differs from the same plain "
                           "problem (LSE %.17g vs %.17g)", b, h, i, lv, lp);
            }
    }
    if (!bad)
        t_log("ok   varlen reference == per-sequence plain reference (bit for bit)");
out:
    free(o), free(lse), free(po), free(pl), free(q), free(k), free(v), free(bias), free(bm);
    t_tensors_free(&t);
}

/* bias in F32 at the legacy mask's strides equals the legacy mask, and a
 * zero in bool_mask equals -inf in the bias; bit for bit. */
static void ref_masks_agree(void)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 2;
    p.heads = 3;
    p.seq_q = 6;
    p.seq_kv = 11;
    p.head_dim = 7;
    p.dtype = CLATTN_BF16;
    p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv + 2;
    p.mask_batch_stride = 0;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_MASK | T_WITH_LSE, 0xfea70002u) != 0)
        return;
    const size_t rows = (size_t)p.batch * p.heads * p.seq_q, on = rows * (size_t)p.head_dim;
    double *o1 = malloc(sizeof(double) * on), *o2 = malloc(sizeof(double) * on);
    double *l1 = malloc(sizeof(double) * rows), *l2 = malloc(sizeof(double) * rows);
    float *bias = malloc(sizeof(float) * (size_t)t.mask_n);
    uint8_t *bm = malloc((size_t)t.mask_n);
    if (!o1 || !o2 || !l1 || !l2 || !bias || !bm) {
        T_FAIL("out of host memory");
        goto out;
    }
    clattn_host_buffers hb = t_tensors_host(&t);
    ref_attention(&p, &hb, o1, l1, NULL);

    clattn_problem pb = p;
    pb.mask_batch_stride = pb.mask_head_stride = 0;
    pb.bias.enabled = 1;
    pb.bias.dtype = CLATTN_F32;
    pb.bias.strides = mstrides(p.mask_batch_stride, p.mask_head_stride, p.seq_kv);
    pb.bool_mask.enabled = 1;
    pb.bool_mask.strides = pb.bias.strides;
    /* the -inf entries move to the boolean mask, the rest to the bias */
    for (int64_t e = 0; e < t.mask_n; e++) {
        bm[e] = t.mask[e] == -INFINITY ? 0 : (uint8_t)(1 + e % 200);
        bias[e] = t.mask[e] == -INFINITY ? 0.0f : t.mask[e];
    }
    clattn_host_buffers in = hb;
    in.mask = NULL;
    in.bias = bias;
    in.bool_mask = bm;
    ref_attention(&pb, &in, o2, l2, NULL);
    T_CHECK(memcmp(o1, o2, sizeof(double) * on) == 0 && memcmp(l1, l2, sizeof(double) * rows) == 0,
            "bias + bool_mask at the mask's strides differ from the fp32 mask");
    t_log("ok   bias + bool_mask == the fp32 mask (bit for bit)");
out:
    free(o1), free(o2), free(l1), free(l2), free(bias), free(bm);
    t_tensors_free(&t);
}

void case_features_reference(void)
{
    ref_closed_forms();
    ref_slopes_known();
    ref_varlen_vs_plain();
    ref_masks_agree();
}

/* ==== features_paths ====================================================== */

typedef enum {
    F_SOFTCAP,
    F_SOFTCAP_CAUSAL_KV_START,
    F_SINKS,
    F_SINKS_WINDOW_GQA,
    F_SINKS_ALL_MASKED,
    F_ALIBI_CAUSAL,
    F_VARLEN_CAUSAL_ALIBI,
    F_T5_BIAS_BOOL,
    F_BIAS_BCAST,
    F_BIAS_STATIC_CACHE,
    F_BIAS_F16,
    F_BIAS_BF16_GAPS,
    F_CHUNK_CAUSAL,
    F_KV_START_CAUSAL_KV_LENS,
    F_CHUNK_KV_START,
    F_CHUNK_SHORT_KV,
    F_VARLEN_MASKS_SINKS,
    F_VARLEN_STRIDED_TL,
    F_EVERYTHING,
    F_HD512,
    F_HD576,
    F_ALIBI_SYM_PAD,
    F_ALIBI_SYM_SOFTCAP_WINDOW,
    F_COUNT
} feature_combo;

static const char *const k_combo_names[F_COUNT] = {
    "softcap",           "softcap+causal+kv_start", "sinks",
    "sinks+window+gqa",  "sinks+all_masked",        "alibi+causal",
    "varlen+causal+alibi", "t5_bias+bool",          "bias_bcast",
    "bias_static_cache", "bias_f16",                "bias_bf16_gaps",
    "chunk+causal",      "kv_start+causal+kv_lens", "chunk+kv_start",
    "chunk+short_kv+causal_tl", "varlen+bias+bool+sinks", "varlen_strided+causal_tl", "everything",
    "head_dim_512",      "head_dim_576",            "alibi_sym+bool_pad",
    "alibi_sym+softcap+window+gqa"};

/* Shape of a combination: batch, heads, kv_heads, seq_q, seq_kv, head_dim, head_dim_v. */
static const int k_combo_shape[F_COUNT][7] = {
    {2, 4, 4, 33, 129, 64, 0},  /* softcap */
    {3, 6, 2, 7, 17, 17, 0},    /* softcap+causal+kv_start */
    {2, 4, 4, 33, 17, 80, 0},   /* sinks */
    {2, 6, 2, 100, 129, 64, 0}, /* sinks+window+gqa */
    {2, 3, 1, 7, 17, 17, 0},    /* sinks+all_masked (MQA) */
    {2, 6, 2, 33, 129, 64, 0},  /* alibi+causal */
    {3, 4, 2, 33, 129, 64, 0},  /* varlen+causal+alibi */
    {2, 4, 4, 7, 129, 64, 0},   /* t5 */
    {3, 6, 2, 33, 17, 17, 0},   /* bias_bcast */
    {2, 4, 4, 7, 100, 80, 0},   /* bias_static_cache */
    {2, 3, 3, 33, 129, 64, 0},  /* bias_f16 */
    {2, 4, 1, 7, 17, 17, 0},    /* bias_bf16_gaps (MQA) */
    {2, 4, 4, 100, 129, 64, 0}, /* chunk+causal */
    {3, 6, 2, 7, 129, 80, 0},   /* kv_start+causal+kv_lens */
    {2, 4, 2, 33, 129, 17, 0},  /* chunk+kv_start */
    {2, 4, 2, 33, 17, 64, 0},   /* chunk+short_kv+causal_tl */
    {3, 4, 4, 17, 33, 64, 0},   /* varlen+bias+bool+sinks */
    {3, 6, 3, 33, 17, 17, 0},   /* varlen_strided+causal_tl */
    {2, 6, 3, 33, 100, 64, 0},  /* everything */
    {1, 2, 1, 7, 33, 512, 0},   /* head_dim 512 */
    {1, 2, 2, 7, 17, 576, 512}, /* head_dim 576 / 512 */
    {3, 4, 4, 33, 33, 64, 0},   /* alibi_sym+bool_pad (an encoder) */
    {2, 6, 2, 33, 129, 80, 0},  /* alibi_sym+softcap+window+gqa */
};

/* The problem and tensor flags of one combination on one path and dtype.
 * split-KV gets a decode shape (seq_q 1..4, seq_kv >= 256) so that its real
 * partitioned kernels run. */
/* The combinations with masks or packed/strided layouts: their flags on
 * top of T_WITH_LSE (0 for a combination that is not one of them). */
static unsigned combo_masks(feature_combo c, clattn_problem *p)
{
    const int H = p->heads, Sq = p->seq_q, Skv = p->seq_kv, D = p->head_dim;
    unsigned flags = 0;
    switch (c) {
    case F_SINKS_ALL_MASKED:
        p->sinks = 1;
        p->bool_mask.enabled = 1;
        p->bool_mask.strides = mstrides(Skv, 0, 0);
        flags |= T_WITH_SINKS | T_WITH_BOOL_MASK;
        break;
    case F_T5_BIAS_BOOL: /* T5: unscaled, a per-head bias and a padding mask */
        p->scale = 1.0f;
        p->bias.enabled = 1;
        p->bias.strides = mstrides(0, (int64_t)Sq * Skv, Skv);
        p->bool_mask.enabled = 1;
        p->bool_mask.strides = mstrides(Skv, 0, 0);
        flags |= T_WITH_BIAS | T_WITH_BOOL_MASK;
        break;
    case F_BIAS_BCAST: /* [B,1,1,Skv] */
        p->bias.enabled = 1;
        p->bias.strides = mstrides(Skv, 0, 0);
        flags |= T_WITH_BIAS;
        break;
    case F_BIAS_STATIC_CACHE: { /* [B][H][Sq][max_len], max_len > seq_kv, kv_lens */
        const int64_t R = Skv + 27;
        p->bias.enabled = 1;
        p->bias.strides = mstrides(H * Sq * R, Sq * R, R);
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        flags |= T_WITH_BIAS | T_WITH_KV_LENS | T_NAN_BEYOND_LEN;
        break;
    }
    case F_BIAS_F16:
        p->bias.enabled = 1;
        p->bias.dtype = CLATTN_F16;
        p->bias.strides = dense_mask(p);
        flags |= T_WITH_BIAS;
        break;
    case F_BIAS_BF16_GAPS: { /* gaps after every row, head and batch */
        const int64_t R = Skv + 3, Hs = Sq * R + 5;
        p->bias.enabled = 1;
        p->bias.dtype = CLATTN_BF16;
        p->bias.strides = mstrides(H * Hs + 7, Hs, R);
        p->causal = CLATTN_CAUSAL_TOP_LEFT;
        flags |= T_WITH_BIAS;
        break;
    }
    case F_VARLEN_MASKS_SINKS: /* masks indexed by sequence, row and key inside it */
        p->varlen = 1;
        p->sinks = 1;
        p->bias.enabled = 1;
        p->bias.strides = dense_mask(p);
        p->bool_mask.enabled = 1;
        p->bool_mask.strides = mstrides((int64_t)Sq * Skv, 0, Skv);
        p->windowed = 1;
        p->window_left = 9;
        p->window_right = -1;
        flags |= T_WITH_VARLEN | T_WITH_SINKS | T_WITH_BIAS | T_WITH_BOOL_MASK;
        break;
    case F_VARLEN_STRIDED_TL: { /* [tokens][heads][dim] views with gaps */
        const int Hk = p->kv_heads, Dv = D;
        p->varlen = 1;
        p->causal = CLATTN_CAUSAL_TOP_LEFT;
        p->q_strides = (clattn_strides){0, D + 1, (int64_t)H * (D + 1) + 3};
        p->k_strides = (clattn_strides){0, D + 2, (int64_t)Hk * (D + 2)};
        p->v_strides = (clattn_strides){0, Dv, (int64_t)Hk * Dv + 5};
        p->o_strides = (clattn_strides){0, Dv + 4, (int64_t)H * (Dv + 4) + 1};
        flags |= T_WITH_VARLEN;
        break;
    }
    case F_EVERYTHING: /* every score step at once, with the fp32 mask */
        p->scale = 0.5f;
        p->softcap = 4.0f;
        p->alibi = 1;
        p->sinks = 1;
        p->causal = CLATTN_CAUSAL_TOP_LEFT;
        p->bool_mask.enabled = 1;
        p->bool_mask.strides = dense_mask(p);
        p->mask_head_stride = (int64_t)Sq * Skv;
        p->mask_batch_stride = 0;
        flags |= T_WITH_ALIBI | T_WITH_SINKS | T_WITH_BOOL_MASK | T_WITH_MASK;
        break;
    case F_ALIBI_SYM_PAD: /* jina-embeddings-v2: -slope |j - i|, a [B,1,1,S] padding mask */
        p->alibi = 1;
        p->alibi_mode = CLATTN_ALIBI_SYMMETRIC;
        p->bool_mask.enabled = 1;
        p->bool_mask.strides = mstrides(Skv, 0, 0);
        flags |= T_WITH_ALIBI | T_WITH_BOOL_MASK;
        break;
    default:
        break;
    }
    return flags;
}

static unsigned combo_problem(feature_combo c, clattn_path path, clattn_dtype dt,
                              clattn_problem *p)
{
    const int *s = k_combo_shape[c];
    memset(p, 0, sizeof *p);
    p->batch = s[0];
    p->heads = s[1];
    p->kv_heads = s[2];
    p->seq_q = s[3];
    p->seq_kv = s[4];
    p->head_dim = s[5];
    p->head_dim_v = s[6];
    p->dtype = dt;
    p->path = path;
    if (path == CLATTN_PATH_SPLIT_KV) {
        p->seq_q = p->seq_q > 4 ? 1 + p->seq_q % 4 : p->seq_q;
        p->seq_kv = p->seq_kv < 256 ? p->seq_kv + 257 : p->seq_kv;
    }
    unsigned flags = T_WITH_LSE | combo_masks(c, p);
    switch (c) {
    case F_SOFTCAP: /* q.k of a few units unscaled: the cap bends them */
        p->scale = 1.0f;
        p->softcap = 3.0f;
        break;
    case F_SOFTCAP_CAUSAL_KV_START:
        p->scale = 1.5f;
        p->softcap = 5.0f;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p->kv_start = 1;
        flags |= T_WITH_KV_START;
        break;
    case F_SINKS:
        p->sinks = 1;
        flags |= T_WITH_SINKS;
        break;
    case F_SINKS_WINDOW_GQA:
        p->sinks = 1;
        p->windowed = 1;
        p->window_left = 20;
        p->window_right = 3;
        flags |= T_WITH_SINKS;
        break;
    case F_ALIBI_CAUSAL:
        p->alibi = 1;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        flags |= T_WITH_ALIBI;
        break;
    case F_VARLEN_CAUSAL_ALIBI:
        p->varlen = 1;
        p->alibi = 1;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        flags |= T_WITH_VARLEN | T_WITH_ALIBI;
        break;
    case F_CHUNK_CAUSAL:
        p->chunk_size = 8;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        break;
    case F_KV_START_CAUSAL_KV_LENS:
        p->kv_start = 1;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        flags |= T_WITH_KV_START | T_WITH_KV_LENS | T_NAN_BEYOND_LEN;
        break;
    case F_CHUNK_KV_START: /* chunks counted from kv_start[b] */
        p->chunk_size = 16;
        p->kv_start = 1;
        flags |= T_WITH_KV_START;
        break;
    case F_CHUNK_SHORT_KV: /* i' < 0 in the top rows: chunk -1, -2 (floor, not 0) */
        p->chunk_size = 8;
        p->causal = CLATTN_CAUSAL_TOP_LEFT;
        break;
    case F_HD512:
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        break;
    case F_HD576:
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p->sinks = 1;
        flags |= T_WITH_SINKS;
        break;
    case F_ALIBI_SYM_SOFTCAP_WINDOW: /* keys on both sides of i', capped first */
        p->alibi = 1;
        p->alibi_mode = CLATTN_ALIBI_SYMMETRIC;
        p->softcap = 4.0f;
        p->windowed = 1;
        p->window_left = 40;
        p->window_right = 25;
        flags |= T_WITH_ALIBI;
        break;
    default:
        break;
    }
    return flags;
}

/* After F_SINKS_ALL_MASKED: the LSE of every row is exactly its head's sink
 * (-inf for a -inf sink), as clattn.h says. */
static void check_lse_is_sink(const char *label, const t_tensors *t)
{
    const clattn_problem *n = &t->n;
    int bad = 0;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++) {
                float got = t->lse[((size_t)b * n->heads + h) * n->seq_q + i];
                if (got != t->sinks[h] && bad++ < 3)
                    T_FAIL("%s: b%d h%d i%d sees no key: LSE %.9g, expected the sink %.9g", label,
                           b, h, i, (double)got, (double)t->sinks[h]);
            }
}

/* The probabilities of the three-stage path against the reference (not for
 * varlen: clattn.h does not say what the weights hold past a sequence). */
static void check_weights(clattn_context *ctx, const char *label, const t_tensors *t)
{
    const clattn_problem *n = &t->n;
    size_t np = (size_t)n->batch * n->heads * n->seq_q * n->seq_kv;
    float *probs = malloc(sizeof(float) * np);
    if (!probs) {
        T_FAIL("out of host memory");
        return;
    }
    for (size_t e = 0; e < np; e++)
        probs[e] = NAN;
    clattn_host_buffers hb = t_tensors_host(t);
    hb.o = NULL;
    hb.lse = NULL;
    clattn_status st = clattn_attention_weights_host(ctx, &t->p, &hb, probs);
    if (st != CLATTN_OK)
        T_FAIL("%s: clattn_attention_weights_host -> %s: %s", label, clattn_status_string(st),
               clattn_last_error(ctx));
    else
        t_verify_probs(label, &t->p, &hb, probs, t_tolerance_for(n->dtype));
    free(probs);
}

static void run_combo(clattn_context *ctx, feature_combo c, int pi, int di, int *failed)
{
    clattn_problem p;
    unsigned flags = combo_problem(c, t_all_paths[pi], k_dtypes[di], &p);
    t_tensors t;
    if (t_tensors_init(&t, &p, flags, 0xfea70000u + (uint64_t)c * 64 + pi * 4 + di) != 0)
        return;
    if (c == F_SINKS_ALL_MASKED) {
        memset(t.bool_mask, 0, (size_t)t.bool_n);
        t.sinks[1] = -INFINITY; /* no sink in one head: LSE -inf there */
        t.sinks[2] = 60.0f;     /* far above every score (there are none) */
    }
    char label[96];
    snprintf(label, sizeof label, "%s/%s/%s", k_combo_names[c], t_path_name(p.path),
             t_dtype_name(p.dtype));
    const int use_host = (c + pi + di) % 2;
    int before = t_failures;
    t_check_run(ctx, label, &t, use_host);
    if (t_failures == before && c == F_SINKS_ALL_MASKED)
        check_lse_is_sink(label, &t);
    if (t_failures == before && p.path == CLATTN_PATH_THREE_STAGE && !p.varlen)
        check_weights(ctx, label, &t);
    *failed += t_failures != before;
    t_tensors_free(&t);
}

static int long_run(void)
{
    const char *e = getenv("CLATTN_LONG");
    return e && *e && strcmp(e, "0") != 0;
}

/* Every combination on every path, each path with one dtype that rotates so
 * that each combination meets every dtype and each path every dtype: a
 * quarter of the full product, whose kernel builds take minutes on PoCL with
 * its cache empty. CLATTN_LONG=1 runs the full path x dtype x combination
 * product. */
void case_features_paths(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    const int full = long_run();
    int failed = 0, ran = 0;
    for (int c = 0; c < F_COUNT; c++)
        for (int pi = 0; pi < 4; pi++)
            for (int di = 0; di < 3; di++) {
                if (!full && di != (c + pi) % 3)
                    continue;
                run_combo(ctx, (feature_combo)c, pi, di, &failed);
                ran++;
            }
    clattn_stats st;
    memset(&st, 0, sizeof st);
    T_CHECK(clattn_context_stats(ctx, &st) == CLATTN_OK, "clattn_context_stats: %s",
            clattn_last_error(ctx));
    t_log("features_paths: %d of %d runs failed (%s product); programs built %llu, loaded "
          "from the disk cache %llu", failed, ran, full ? "full" : "covering",
          (unsigned long long)st.programs_built, (unsigned long long)st.programs_loaded);
    clattn_context_destroy(ctx);
}

/* ==== features_numerics =================================================== */

/* Logits of about 1e30 before the cap: tanh must saturate, not overflow. */
static void numerics_softcap_huge(clattn_context *ctx)
{
    for (int pi = 0; pi < 4; pi++)
        for (int di = 0; di < 3; di++)
            for (int big_q = 0; big_q < 2; big_q++) {
                /* f16 cannot hold 1e15: the huge q only in f32 and bf16 */
                if (big_q && k_dtypes[di] == CLATTN_F16)
                    continue;
                clattn_problem p;
                memset(&p, 0, sizeof p);
                p.batch = 1;
                p.heads = 2;
                p.seq_q = t_all_paths[pi] == CLATTN_PATH_SPLIT_KV ? 3 : 9;
                p.seq_kv = t_all_paths[pi] == CLATTN_PATH_SPLIT_KV ? 300 : 40;
                p.head_dim = 32;
                p.dtype = k_dtypes[di];
                p.path = t_all_paths[pi];
                p.softcap = 30.0f;
                p.scale = big_q ? 1.0f : 1e30f;
                t_tensors t;
                if (t_tensors_init(&t, &p, T_WITH_LSE, 0xfea71000u + pi * 8 + di * 2 + big_q) != 0)
                    return;
                if (big_q) /* |q.k| ~ 1e30 from the inputs, within fp32's range */
                    for (int64_t e = 0; e < t.q_n; e++)
                        ref_store(t.q, p.dtype, e, ref_load(t.q, p.dtype, e) * 1e15f);
                if (big_q)
                    for (int64_t e = 0; e < t.k_n; e++)
                        ref_store(t.k, p.dtype, e, ref_load(t.k, p.dtype, e) * 1e15f);
                char label[96];
                snprintf(label, sizeof label, "softcap_1e30_%s/%s/%s", big_q ? "inputs" : "scale",
                         t_path_name(p.path), t_dtype_name(p.dtype));
                t_check_run(ctx, label, &t, (pi + di) % 2);
                t_tensors_free(&t);
            }
}

/* ALiBi far from position 0: keys and rows near 10^6, where slope * j and
 * slope * i' apart would each lose the units (fp32 has 24 bits). One head
 * has slope 1, the other a slope that is no power of two. */
static void numerics_alibi_far(clattn_context *ctx)
{
    for (int pi = 0; pi < 4; pi++) {
        clattn_problem p;
        memset(&p, 0, sizeof p);
        p.batch = 2;
        p.heads = 2;
        p.kv_heads = 1;
        p.seq_q = 2;
        p.seq_kv = 1000003;
        p.head_dim = 4;
        p.dtype = CLATTN_F32;
        p.path = t_all_paths[pi];
        p.alibi = 1;
        p.kv_start = 1;
        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        t_tensors t;
        if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_ALIBI | T_WITH_KV_LENS, 0xfea72000u + pi) !=
            0)
            return;
        /* b0: the whole cache; b1: 999,001 keys of which the last 61 are visible */
        t.kv_lens[0] = p.seq_kv;
        t.kv_lens[1] = 999001;
        t.alibi[0] = 1.0f;
        t.alibi[1] = 0.7310586f;
        /* kv_start was not drawn by the harness (it needs kv_lens first) */
        int32_t *ks = malloc(sizeof(int32_t) * 2);
        if (!ks) {
            T_FAIL("out of host memory");
            t_tensors_free(&t);
            return;
        }
        ks[0] = 0;
        ks[1] = 999001 - 61;
        t.kv_start = ks;
        t_tensors_nan_before_start(&t);
        char label[64];
        snprintf(label, sizeof label, "alibi_far/%s", t_path_name(p.path));
        t_check_run(ctx, label, &t, pi % 2);
        t_tensors_free(&t);
    }
}

/* Masks of +-1e30 beside -inf, by row:
 *   0: all -inf (no key)               1: all -1e30 (uniform, LSE ~ -1e30)
 *   2: -1e30 and -inf mixed            3: one +1e30, the rest ordinary
 *   4: +1e30 twice, -1e30, -inf, ordinary   5: ordinary with -inf
 * Nothing but row 0 may give zeros, and nothing may give NaN. */
static float extreme_entry(int row_kind, int j, t_rng *r)
{
    switch (row_kind) {
    case 0: return -INFINITY;
    case 1: return -1e30f;
    case 2: return j % 3 ? -INFINITY : -1e30f;
    case 3: return j == 5 ? 1e30f : (float)t_rng_uniform(r, -1.0, 1.0);
    case 4: return j == 2 || j == 7 ? 1e30f : j % 3 == 0 ? -1e30f
                                    : j % 3 == 1         ? -INFINITY
                                                         : (float)t_rng_uniform(r, -1.0, 1.0);
    default: return j % 4 == 1 ? -INFINITY : (float)t_rng_uniform(r, -1.0, 1.0);
    }
}

static void numerics_mask_extremes(clattn_context *ctx)
{
    static const char *const kinds[3] = {"fp32_mask", "bias_f32", "bias_bf16"};
    for (int pi = 0; pi < 4; pi++)
        for (int kind = 0; kind < 3; kind++)
            for (int sinks = 0; sinks < 2; sinks++) {
                clattn_problem p;
                memset(&p, 0, sizeof p);
                p.batch = 2;
                p.heads = 2;
                p.seq_q = 6;
                p.seq_kv = t_all_paths[pi] == CLATTN_PATH_SPLIT_KV ? 270 : 40;
                p.head_dim = 16;
                p.dtype = CLATTN_F32;
                p.path = t_all_paths[pi];
                p.sinks = sinks;
                unsigned flags = T_WITH_LSE | (sinks ? T_WITH_SINKS : 0);
                const int64_t plane = (int64_t)p.seq_q * p.seq_kv;
                if (kind == 0) {
                    p.mask_head_stride = plane;
                    p.mask_batch_stride = 2 * plane;
                    flags |= T_WITH_MASK;
                } else {
                    p.bias.enabled = 1;
                    p.bias.dtype = kind == 1 ? CLATTN_F32 : CLATTN_BF16;
                    p.bias.strides = dense_mask(&p);
                    flags |= T_WITH_BIAS;
                }
                t_tensors t;
                if (t_tensors_init(&t, &p, flags, 0xfea73000u + pi * 8 + kind * 2 + sinks) != 0)
                    return;
                t_rng r;
                t_rng_seed(&r, 0xfea73100u + pi);
                for (int b = 0; b < 2; b++)
                    for (int h = 0; h < 2; h++)
                        for (int i = 0; i < p.seq_q; i++)
                            for (int j = 0; j < p.seq_kv; j++) {
                                float x = extreme_entry((i + b + h) % 6, j, &r);
                                int64_t at = b * 2 * plane + h * plane + (int64_t)i * p.seq_kv + j;
                                if (kind == 0)
                                    t.mask[at] = x;
                                else
                                    ref_store(t.bias, p.bias.dtype, at, x);
                            }
                char label[96];
                snprintf(label, sizeof label, "mask_extremes/%s%s/%s", kinds[kind],
                         sinks ? "+sinks" : "", t_path_name(p.path));
                t_check_run(ctx, label, &t, (pi + kind + sinks) % 2);
                t_tensors_free(&t);
            }
}

/* Sinks of rows that see no key, for every reason a row can see none:
 * kv_lens 0, the rows above a bottom-right diagonal, kv_start == kv_lens. */
static void numerics_sinks_no_key(clattn_context *ctx)
{
    static const clattn_dtype dts[2] = {CLATTN_F32, CLATTN_F16};
    for (int pi = 0; pi < 4; pi++)
        for (int di = 0; di < 2; di++) {
            clattn_problem p;
            memset(&p, 0, sizeof p);
            p.batch = 3;
            p.heads = 4;
            p.kv_heads = 2;
            p.seq_q = 9;
            p.seq_kv = 5;
            p.head_dim = 32;
            p.dtype = dts[di];
            p.path = t_all_paths[pi];
            p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
            p.sinks = 1;
            p.kv_start = 1;
            t_tensors t;
            /* kv_start is set below, not drawn: a drawn one would have put
             * NaN into rows these starts make visible */
            if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_SINKS | T_WITH_KV_LENS,
                               0xfea74000u + pi * 2 + di) != 0)
                return;
            static const int32_t lens[3] = {5, 0, 3}, starts[3] = {0, 0, 3};
            static const float sinks[4] = {-1.0f, 2.5f, -INFINITY, 0.0f};
            t.kv_start = malloc(sizeof starts);
            if (!t.kv_start) {
                T_FAIL("out of host memory");
                t_tensors_free(&t);
                return;
            }
            memcpy(t.kv_lens, lens, sizeof lens);
            memcpy(t.kv_start, starts, sizeof starts);
            memcpy(t.sinks, sinks, sizeof sinks);
            t_tensors_nan_beyond_len(&t);
            t_tensors_nan_before_start(&t);
            char label[64];
            snprintf(label, sizeof label, "sinks_no_key/%s/%s", t_path_name(p.path),
                     t_dtype_name(p.dtype));
            int before = t_failures;
            t_check_run(ctx, label, &t, (pi + di) % 2);
            if (t_failures != before) {
                t_tensors_free(&t);
                continue;
            }
            /* rows without a key: LSE exactly the sink (batches 1 and 2 whole,
             * and the top rows of batch 0, i' = i - 4 < 0) */
            clattn_host_buffers hb = t_tensors_host(&t);
            int *seen = malloc(sizeof(int) * (size_t)t.lse_n);
            if (!seen) {
                T_FAIL("out of host memory");
                t_tensors_free(&t);
                return;
            }
            ref_attention_ex(&t.p, &hb, NULL, NULL, NULL, seen);
            int bad = 0, empty = 0;
            for (int64_t r = 0; r < t.lse_n; r++) {
                if (seen[r])
                    continue;
                empty++;
                int h = (int)((r / p.seq_q) % p.heads);
                if (t.lse[r] != sinks[h] && bad++ < 3)
                    T_FAIL("%s: row %lld sees no key: LSE %.9g, expected the sink %.9g", label,
                           (long long)r, (double)t.lse[r], (double)sinks[h]);
            }
            T_CHECK(empty >= 2 * 4 * 9, "%s: only %d rows see no key", label, empty);
            free(seen);
            t_tensors_free(&t);
        }
}

void case_features_numerics(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    numerics_softcap_huge(ctx);
    numerics_alibi_far(ctx);
    numerics_mask_extremes(ctx);
    numerics_sinks_no_key(ctx);
    clattn_context_destroy(ctx);
}

/* ==== features_errors ===================================================== */

/* The valid baselines every invalid call starts from: a plain problem with
 * every 1.0 feature but varlen, and a varlen one. */
typedef struct fenv {
    clattn_context *ctx;
    cl_context c;
    cl_command_queue q;
    t_tensors plain, var;
    clattn_buffers plain_b, var_b;
    cl_mem extra[8];
    int n_extra;
} fenv;

static cl_mem fenv_buffer(fenv *e, size_t n)
{
    void *init = malloc(n + 4);
    if (!init) {
        T_FAIL("out of host memory");
        return NULL;
    }
    memset(init, 0x5a, n + 4);
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(e->c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n, init, &err);
    free(init);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu) -> %d", n, (int)err);
    if (m && e->n_extra < 8)
        e->extra[e->n_extra++] = m;
    else if (m) {
        T_FAIL("more than 8 extra buffers in one call");
        clReleaseMemObject(m);
        m = NULL;
    }
    return m;
}

static void fenv_release_extra(fenv *e)
{
    while (e->n_extra > 0)
        clReleaseMemObject(e->extra[--e->n_extra]);
}

/* Runs a baseline that must be accepted (device and host). */
static void fenv_baseline(fenv *e, const char *name, t_tensors *t, const clattn_buffers *b)
{
    cl_event done = NULL;
    clattn_status st = clattn_forward(e->ctx, &t->p, b, 0, NULL, &done);
    T_CHECK(st == CLATTN_OK, "baseline %s: clattn_forward -> %s: %s (the invalid calls below "
            "start from it)", name, clattn_status_string(st), clattn_last_error(e->ctx));
    if (done) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    clattn_host_buffers hb = t_tensors_host(t);
    st = clattn_forward_host(e->ctx, &t->p, &hb);
    T_CHECK(st == CLATTN_OK, "baseline %s: clattn_forward_host -> %s: %s", name,
            clattn_status_string(st), clattn_last_error(e->ctx));
    t_log("%s baseline %s", st == CLATTN_OK ? "ok  " : "BAD ", name);
}

static int fenv_init(fenv *e)
{
    memset(e, 0, sizeof *e);
    e->ctx = t_context();
    if (!e->ctx)
        return -1;
    e->c = t_cl_context(e->ctx);
    e->q = t_queue(e->ctx);
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = 5;
    p.seq_kv = 6;
    p.head_dim = 8;
    p.dtype = CLATTN_F32;
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    p.softcap = 20.0f;
    p.chunk_size = 4;
    p.sinks = 1;
    p.alibi = 1;
    p.kv_start = 1;
    p.bias.enabled = 1;
    p.bias.strides = dense_mask(&p);
    p.bool_mask.enabled = 1;
    p.bool_mask.strides = mstrides(p.seq_kv, 0, 0);
    if (t_tensors_init(&e->plain, &p, T_WITH_LSE | T_WITH_KV_LENS | T_WITH_SINKS | T_WITH_ALIBI |
                                          T_WITH_BIAS | T_WITH_BOOL_MASK | T_WITH_KV_START,
                       0xfea75001u) != 0)
        return -1;
    /* varlen: fixed lengths so that the host checks below can bend them */
    clattn_problem v;
    memset(&v, 0, sizeof v);
    v.batch = 3;
    v.heads = 4;
    v.kv_heads = 2;
    v.seq_q = 8;
    v.seq_kv = 6;
    v.head_dim = 8;
    v.dtype = CLATTN_F32;
    v.varlen = 1;
    v.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    v.total_q = 10;
    v.total_kv = 10;
    if (t_tensors_init(&e->var, &v, T_WITH_LSE, 0xfea75002u) != 0)
        return -1;
    static const int32_t cq[4] = {0, 2, 7, 10}, ckv[4] = {0, 6, 6, 10};
    e->var.cu_q = malloc(sizeof cq);
    e->var.cu_kv = malloc(sizeof ckv);
    if (!e->var.cu_q || !e->var.cu_kv) {
        T_FAIL("out of host memory");
        return -1;
    }
    memcpy(e->var.cu_q, cq, sizeof cq);
    memcpy(e->var.cu_kv, ckv, sizeof ckv);
    /* exact sizes, no guards: the size checks must accept exactly enough */
    e->plain.o_alloc = e->plain.o_n;
    e->var.o_alloc = e->var.o_n;
    cl_int err = t_dev_create(e->c, &e->plain, &e->plain_b);
    if (err == CL_SUCCESS)
        err = t_dev_create(e->c, &e->var, &e->var_b);
    T_CHECK(err == CL_SUCCESS, "creating the baseline buffers -> %d", (int)err);
    if (err != CL_SUCCESS)
        return -1;
    fenv_baseline(e, "every feature but varlen", &e->plain, &e->plain_b);
    fenv_baseline(e, "varlen", &e->var, &e->var_b);
    return 0;
}

static void fenv_free(fenv *e)
{
    fenv_release_extra(e);
    t_dev_release(&e->plain_b);
    t_dev_release(&e->var_b);
    t_tensors_free(&e->plain);
    t_tensors_free(&e->var);
    clattn_context_destroy(e->ctx);
}

/* Bytes of every buffer of a call, to compare after a refused call. */
typedef struct fsnap {
    cl_mem m[24];
    void *bytes[24];
    size_t size[24];
    int n;
} fsnap;

static void fsnap_take(fsnap *s, cl_command_queue q, const clattn_buffers *b)
{
    const cl_mem all[22] = {b->q,          b->k,        b->v,           b->o,
                            b->mask,       b->kv_lens,  b->lse,         b->bias,
                            b->bool_mask,  b->sinks,    b->alibi_slopes, b->kv_start,
                            b->cu_seqlens_q, b->cu_seqlens_kv, b->block_table, b->k_scales,
                            b->v_scales, b->reserved[0], b->reserved[1], b->reserved[2],
                            b->reserved[3], b->reserved[4]};
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 22; i++) {
        int dup = !all[i];
        for (int j = 0; j < s->n && !dup; j++)
            dup = s->m[j] == all[i];
        size_t size = 0;
        cl_context mc = NULL, qc = NULL;
        if (dup ||
            clGetMemObjectInfo(all[i], CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS ||
            clGetMemObjectInfo(all[i], CL_MEM_CONTEXT, sizeof mc, &mc, NULL) != CL_SUCCESS ||
            clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL) != CL_SUCCESS ||
            mc != qc)
            continue; /* another context's buffer: not readable through this queue */
        s->bytes[s->n] = malloc(size);
        if (!s->bytes[s->n])
            continue;
        T_CL(clEnqueueReadBuffer(q, all[i], CL_TRUE, 0, size, s->bytes[s->n], 0, NULL, NULL));
        s->m[s->n] = all[i];
        s->size[s->n++] = size;
    }
}

static int fsnap_changed(fsnap *s, cl_command_queue q)
{
    int changed = 0;
    for (int i = 0; i < s->n; i++) {
        void *now = malloc(s->size[i]);
        if (now) {
            T_CL(clEnqueueReadBuffer(q, s->m[i], CL_TRUE, 0, s->size[i], now, 0, NULL, NULL));
            changed += memcmp(now, s->bytes[i], s->size[i]) != 0;
            free(now);
        }
        free(s->bytes[i]);
    }
    s->n = 0;
    return changed;
}

/* The message of the last failure, copied (it lives until the next call). */
static const char *last_msg(clattn_context *ctx, char *buf, size_t size)
{
    const char *m = clattn_last_error(ctx);
    snprintf(buf, size, "%s", m ? m : "(NULL)");
    return buf;
}

/* One invalid clattn_forward: INVALID_ARGUMENT, a message naming one of
 * words, no buffer changed; problem_level: clattn_supports refuses it too. */
static void expect_refused(fenv *e, const char *name, const char *words, const clattn_problem *p,
                           const clattn_buffers *b, int problem_level)
{
    int before = t_failures;
    fsnap snap;
    fsnap_take(&snap, e->q, b);
    /* Not NULL, never an event: a refusal must set *done to NULL. */
    static char not_an_event;
    cl_event const sentinel = (cl_event)(void *)&not_an_event;
    cl_event done = sentinel;
    clattn_status st = clattn_forward(e->ctx, p, b, 0, NULL, &done);
    char msg[512];
    last_msg(e->ctx, msg, sizeof msg);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s: clattn_forward -> %s, expected %s; message "
            "\"%s\"", name, clattn_status_string(st),
            clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT), msg);
    T_CHECK(st == CLATTN_OK || done == NULL, "%s: a refused call left *done = %p (%s)", name,
            (void *)done, done == sentinel ? "untouched" : "an event");
    if (done == sentinel)
        done = NULL;
    if (done) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    if (st != CLATTN_OK)
        T_CHECK(names_one_of(msg, words), "%s: message \"%s\" names none of \"%s\"", name, msg,
                words);
    T_CL(clFinish(e->q));
    int changed = fsnap_changed(&snap, e->q);
    T_CHECK(changed == 0, "%s: %d buffers were modified by a refused call", name, changed);
    if (problem_level) {
        clattn_status ss = clattn_supports(e->ctx, p);
        char smsg[512];
        last_msg(e->ctx, smsg, sizeof smsg);
        T_CHECK(ss == CLATTN_ERR_INVALID_ARGUMENT, "%s: clattn_supports -> %s, expected %s", name,
                clattn_status_string(ss), clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT));
        if (ss == CLATTN_ERR_INVALID_ARGUMENT)
            T_CHECK(names_one_of(smsg, words), "%s: clattn_supports message \"%s\" names none "
                    "of \"%s\"", name, smsg, words);
    }
    t_log("%s %-34s -> %-18s \"%s\"", t_failures != before ? "BAD " : "ok  ", name,
          clattn_status_string(st), msg);
    fenv_release_extra(e);
}

/* One invalid clattn_forward_host: INVALID_ARGUMENT, the message, host O and
 * LSE as they were. */
static void expect_refused_host(fenv *e, const char *name, const char *words,
                                const clattn_problem *p, t_tensors *t,
                                const clattn_host_buffers *hb)
{
    int before = t_failures;
    t_tensors_poison(t);
    const size_t lb = sizeof(float) * (size_t)(t->lse_n + T_GUARD);
    float *lse0 = malloc(lb);
    if (!lse0) {
        T_FAIL("out of host memory");
        return;
    }
    memcpy(lse0, t->lse, lb);
    clattn_status st = clattn_forward_host(e->ctx, p, hb);
    char msg[512];
    last_msg(e->ctx, msg, sizeof msg);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s: clattn_forward_host -> %s, expected %s; "
            "message \"%s\"", name, clattn_status_string(st),
            clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT), msg);
    if (st != CLATTN_OK)
        T_CHECK(names_one_of(msg, words), "%s: message \"%s\" names none of \"%s\"", name, msg,
                words);
    T_CHECK(t_same_bytes(t->o, t->o_init, (size_t)t->o_alloc * t->esz),
            "%s: host O was modified by a refused call", name);
    T_CHECK(t_same_bytes(t->lse, lse0, lb), "%s: host LSE was modified by a refused call", name);
    free(lse0);
    t_log("%s %-34s -> %-18s \"%s\"", t_failures != before ? "BAD " : "ok  ", name,
          clattn_status_string(st), msg);
}

/* A buffer given without its feature, or the feature without its buffer. */
static void errors_flag_buffer_pairs(fenv *e)
{
    const t_tensors *t = &e->plain;
    for (int which = 0; which < 5; which++)
        for (int given = 0; given < 2; given++) {
            clattn_problem p = t->p;
            clattn_buffers b = e->plain_b;
            static const char *const nm[5] = {"sinks", "alibi", "kv_start", "bias", "bool_mask"};
            static const char *const words[5] = {"sinks", "alibi|alibi_slopes", "kv_start",
                                                 "bias", "bool_mask"};
            /* given: the buffer without the flag; else the flag without the buffer */
            switch (which) {
            case 0:
                if (given)
                    p.sinks = 0;
                else
                    b.sinks = NULL;
                break;
            case 1:
                if (given)
                    p.alibi = 0;
                else
                    b.alibi_slopes = NULL;
                break;
            case 2:
                if (given)
                    p.kv_start = 0;
                else
                    b.kv_start = NULL;
                break;
            case 3: /* the whole layout zero: only the buffer is left over */
                if (given)
                    memset(&p.bias, 0, sizeof p.bias);
                else
                    b.bias = NULL;
                break;
            default:
                if (given)
                    memset(&p.bool_mask, 0, sizeof p.bool_mask);
                else
                    b.bool_mask = NULL;
                break;
            }
            char name[64];
            snprintf(name, sizeof name, "%s_%s", nm[which],
                     given ? "buffer_without_flag" : "flag_without_buffer");
            expect_refused(e, name, words[which], &p, &b, 0);
        }
    /* cu_seqlens without varlen, varlen without cu_seqlens */
    {
        clattn_problem p = e->plain.p;
        clattn_buffers b = e->plain_b;
        b.cu_seqlens_q = e->var_b.cu_seqlens_q;
        b.cu_seqlens_kv = e->var_b.cu_seqlens_kv;
        expect_refused(e, "cu_seqlens_without_varlen",
                       "cu_seqlens_q|cu_seqlens_kv|cu_seqlens|varlen", &p, &b, 0);
        p = e->var.p;
        b = e->var_b;
        b.cu_seqlens_q = NULL;
        expect_refused(e, "varlen_without_cu_seqlens_q", "cu_seqlens_q|cu_seqlens", &p, &b, 0);
        b = e->var_b;
        b.cu_seqlens_kv = NULL;
        expect_refused(e, "varlen_without_cu_seqlens_kv", "cu_seqlens_kv|cu_seqlens", &p, &b, 0);
    }
}

/* Problem fields out of their ranges (clattn_supports refuses them too). */
static void errors_problem_fields(fenv *e)
{
    const clattn_problem base = e->plain.p;
    const int H = base.heads, Sq = base.seq_q, Skv = base.seq_kv;
    static const char *const names[] = {
        "head_dim_513",       "head_dim_v_513",     "head_dim_577",
        "head_dim_576_default_dv", "head_dim_0_dv_512", "softcap_negative",
        "softcap_nan",        "softcap_inf",        "chunk_size_negative",
        "reserved_problem_0", "reserved_problem_min", "bias_row_stride_1",
        "bias_heads_rows_overlap", "bias_negative_stride", "bias_dtype_3",
        "bool_row_stride_lt_seq_kv", "bool_mask_dtype_f16", "bool_mask_negative_stride",
        "bias_strides_overflow", "alibi_mode_2",   "alibi_mode_without_alibi",
        "alibi_mode_negative"};
    static const char *const words[] = {
        "head_dim",          "head_dim_v",         "head_dim",
        "head_dim_v|head_dim", "head_dim",         "softcap",
        "softcap",           "softcap",            "chunk_size",
        "reserved",          "reserved",           "bias|bias.strides|bias.strides.row",
        "bias|bias.strides|bias.strides.head", "bias|bias.strides", "bias|bias.dtype|dtype",
        "bool_mask|bool_mask.strides|bool_mask.strides.row", "bool_mask|bool_mask.dtype",
        "bool_mask|bool_mask.strides", "bias|bias.strides|overflow|overflows|size",
        "alibi_mode",        "alibi_mode",         "alibi_mode"};
    (void)sizeof(char[sizeof names / sizeof names[0] == sizeof words / sizeof words[0] ? 1 : -1]);
    const int n = (int)(sizeof names / sizeof names[0]);
    for (int i = 0; i < n; i++) {
        clattn_problem p = base;
        p.path = t_all_paths[i % 4]; /* validation must not depend on the path */
        switch (i) {
        case 0: p.head_dim = 513; break;
        case 1: p.head_dim_v = 513; break;
        case 2: p.head_dim = 577; p.head_dim_v = 512; break;
        case 3: p.head_dim = 576; p.head_dim_v = 0; break; /* head_dim_v 576 > 512 */
        case 4: p.head_dim = 0; p.head_dim_v = 512; break;
        case 5: p.softcap = -1.0f; break;
        case 6: p.softcap = NAN; break;
        case 7: p.softcap = INFINITY; break;
        case 8: p.chunk_size = -8; break;
        case 9: p.reserved[0] = 1; break;
        case 10: p.reserved[0] = INT64_MIN; break;
        case 11: p.bias.strides = mstrides((int64_t)H * Sq * Skv, (int64_t)Sq * Skv, 1); break;
        case 12: /* heads and rows collide: head h row i at (h + i) * Skv */
            p.bias.strides = mstrides((int64_t)(H + Sq) * Skv, Skv, Skv);
            break;
        case 13: p.bias.strides.head = -(int64_t)Sq * Skv; break;
        case 14: p.bias.dtype = (clattn_dtype)3; break;
        case 15: p.bool_mask.strides = mstrides(Skv, 0, Skv - 1); break;
        case 16: p.bool_mask.dtype = CLATTN_F16; break;
        case 17: p.bool_mask.strides.batch = -1; break;
        case 18: p.bias.strides.batch = INT64_MAX / 2; break;
        case 19: p.alibi_mode = 2; break;
        case 20: p.alibi = 0; p.alibi_mode = CLATTN_ALIBI_SYMMETRIC; break;
        case 21: p.alibi_mode = -1; break;
        }
        expect_refused(e, names[i], words[i], &p, &e->plain_b, 1);
    }
}

/* Buffers too small for what the problem reads, aliases with the outputs,
 * the fp32 mask beside the bias, a reserved buffer. */
static void errors_buffers(fenv *e)
{
    const t_tensors *t = &e->plain;
    const size_t hf = sizeof(float) * (size_t)t->n.heads, bi = sizeof(int32_t) * t->n.batch;
    const size_t big = (size_t)(t->o_n + t->bias_n + t->bool_n) * 4 + 4096;
    for (int i = 0; i < 13; i++) {
        clattn_problem p = t->p;
        clattn_buffers b = e->plain_b;
        const char *name = "", *words = "";
        cl_mem x;
        switch (i) {
        case 0:
            name = "bool_mask_too_small", words = "bool_mask";
            b.bool_mask = fenv_buffer(e, (size_t)t->bool_n - 1);
            break;
        case 1:
            name = "bias_too_small", words = "bias";
            b.bias = fenv_buffer(e, (size_t)t->bias_n * 4 - 2);
            break;
        case 2:
            name = "sinks_too_small", words = "sinks";
            b.sinks = fenv_buffer(e, hf - 4);
            break;
        case 3:
            name = "alibi_slopes_too_small", words = "alibi|alibi_slopes";
            b.alibi_slopes = fenv_buffer(e, hf - 1);
            break;
        case 4:
            name = "kv_start_too_small", words = "kv_start";
            b.kv_start = fenv_buffer(e, bi - 4);
            break;
        case 5: /* an f16 bias of bias_n elements needs 2 * bias_n bytes */
            name = "bias_f16_too_small", words = "bias";
            p.bias.dtype = CLATTN_F16;
            b.bias = fenv_buffer(e, (size_t)t->bias_n);
            break;
        case 6:
            name = "mask_and_bias", words = "mask|bias";
            p.mask_head_stride = (int64_t)t->n.seq_q * t->n.seq_kv;
            b.mask = fenv_buffer(e, (size_t)t->bias_n * 4);
            break;
        case 7:
            name = "reserved_buffer", words = "reserved";
            b.reserved[0] = fenv_buffer(e, 64);
            break;
        case 8:
            name = "o_is_bias", words = "o|alias|aliases|overlap|overlaps|bias";
            x = fenv_buffer(e, big);
            b.o = x, b.bias = x;
            break;
        case 9:
            name = "lse_is_bool_mask", words = "lse|alias|aliases|overlap|overlaps|bool_mask";
            x = fenv_buffer(e, big);
            b.lse = x, b.bool_mask = x;
            break;
        case 10:
            name = "o_is_sinks", words = "o|alias|aliases|overlap|overlaps|sinks";
            x = fenv_buffer(e, big);
            b.o = x, b.sinks = x;
            break;
        case 11:
            name = "lse_is_kv_start", words = "lse|alias|aliases|overlap|overlaps|kv_start";
            x = fenv_buffer(e, big);
            b.lse = x, b.kv_start = x;
            break;
        default: {
            /* a bool mask of another context */
            cl_device_id dev = NULL;
            clattn_context_get_cl(e->ctx, NULL, NULL, &dev);
            cl_int err = CL_SUCCESS;
            cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
            T_CHECK(err == CL_SUCCESS && other, "clCreateContext(other) -> %d", (int)err);
            if (!other)
                continue;
            cl_mem m = clCreateBuffer(other, CL_MEM_READ_ONLY, (size_t)t->bool_n, NULL, &err);
            T_CHECK(err == CL_SUCCESS, "clCreateBuffer(other context) -> %d", (int)err);
            b.bool_mask = m;
            /* the snapshot cannot read another context's buffer through this queue */
            expect_refused(e, "bool_mask_from_other_context", "bool_mask|context", &p, &b, 0);
            if (m)
                clReleaseMemObject(m);
            clReleaseContext(other);
            continue;
        }
        }
        expect_refused(e, name, words, &p, &b, 0);
    }
}

/* varlen's own rules: no batch stride, no kv_lens, no kv_start, counts. */
static void errors_varlen(fenv *e)
{
    const t_tensors *t = &e->var;
    const int H = t->n.heads, D = t->n.head_dim;
    for (int i = 0; i < 7; i++) {
        clattn_problem p = t->p;
        clattn_buffers b = e->var_b;
        const char *name = "", *words = "";
        int level = 1;
        switch (i) {
        case 0:
            name = "varlen_q_batch_stride", words = "q_strides|q_strides.batch|q|batch|varlen";
            p.q_strides = (clattn_strides){(int64_t)t->n.total_q * H * D, D, (int64_t)H * D};
            break;
        case 1:
            name = "varlen_o_batch_stride", words = "o_strides|o_strides.batch|o|batch|varlen";
            p.o_strides = (clattn_strides){1, D, (int64_t)H * D};
            break;
        case 2:
            name = "varlen_with_kv_lens", words = "kv_lens|varlen";
            b.kv_lens = fenv_buffer(e, sizeof(int32_t) * 3);
            level = 0;
            break;
        case 3:
            name = "varlen_with_kv_start", words = "kv_start|varlen";
            p.kv_start = 1;
            b.kv_start = fenv_buffer(e, sizeof(int32_t) * 3);
            break;
        case 4:
            name = "varlen_total_q_negative", words = "total_q|varlen";
            p.total_q = -1;
            break;
        case 5:
            name = "varlen_cu_seqlens_kv_too_small", words = "cu_seqlens_kv|cu_seqlens";
            b.cu_seqlens_kv = fenv_buffer(e, sizeof(int32_t) * 3);
            level = 0;
            break;
        default: /* [heads][total_q] */
            name = "varlen_lse_too_small", words = "lse";
            b.lse = fenv_buffer(e, sizeof(float) * ((size_t)H * t->n.total_q - 1));
            level = 0;
            break;
        }
        expect_refused(e, name, words, &p, &b, level);
    }
}

/* The host API refuses what the kernels would clamp. */
static void errors_host(fenv *e)
{
    t_tensors *v = &e->var;
    const int32_t cq0[4] = {0, 2, 7, 10}, ckv0[4] = {0, 6, 6, 10};
    for (int i = 0; i < 7; i++) {
        int32_t cq[4], ckv[4];
        memcpy(cq, cq0, sizeof cq);
        memcpy(ckv, ckv0, sizeof ckv);
        const char *name = "", *words = "";
        switch (i) {
        case 0:
            name = "host_cu_seqlens_q_not_from_0", words = "cu_seqlens_q|cu_seqlens";
            cq[0] = 1;
            break;
        case 1:
            name = "host_cu_seqlens_kv_not_from_0", words = "cu_seqlens_kv|cu_seqlens";
            ckv[0] = 2;
            break;
        case 2: /* lengths 5, -1, 6 */
            name = "host_cu_seqlens_q_decreasing", words = "cu_seqlens_q|cu_seqlens";
            cq[1] = 5, cq[2] = 4;
            break;
        case 3:
            name = "host_cu_seqlens_kv_decreasing", words = "cu_seqlens_kv|cu_seqlens";
            ckv[2] = 5;
            break;
        case 4: /* a sequence of 9 rows with seq_q 8 */
            name = "host_cu_seqlens_q_longer_than_seq_q", words = "cu_seqlens_q|cu_seqlens|seq_q";
            cq[1] = 0, cq[2] = 9;
            break;
        case 5: /* 7 keys with seq_kv 6 */
            name = "host_cu_seqlens_kv_longer_than_seq_kv",
            words = "cu_seqlens_kv|cu_seqlens|seq_kv";
            ckv[1] = 7, ckv[2] = 7;
            break;
        default:
            name = "host_cu_seqlens_kv_past_total", words = "cu_seqlens_kv|cu_seqlens|total_kv";
            ckv[3] = 11;
            break;
        }
        clattn_host_buffers hb = t_tensors_host(v);
        hb.cu_seqlens_q = cq;
        hb.cu_seqlens_kv = ckv;
        expect_refused_host(e, name, words, &v->p, v, &hb);
    }
    /* the plain baseline's host-only checks */
    t_tensors *t = &e->plain;
    for (int i = 0; i < 5; i++) {
        clattn_problem p = t->p;
        clattn_host_buffers hb = t_tensors_host(t);
        int32_t ks[2] = {t->kv_start[0], t->kv_start[1]};
        float fake = 0.0f;
        const char *name = "", *words = "";
        switch (i) {
        case 0:
            name = "host_kv_start_negative", words = "kv_start";
            ks[1] = -1;
            hb.kv_start = ks;
            break;
        case 1:
            name = "host_kv_start_above_seq_kv", words = "kv_start";
            ks[0] = p.seq_kv + 1;
            hb.kv_start = ks;
            break;
        case 2:
            name = "host_reserved_pointer", words = "reserved";
            hb.reserved[3] = &fake;
            break;
        case 3:
            name = "host_sinks_flag_without_buffer", words = "sinks";
            hb.sinks = NULL;
            break;
        default:
            name = "host_mask_and_bias", words = "mask|bias";
            hb.mask = t->bias; /* f32 bias at the dense layout: a valid mask by itself */
            p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
            p.mask_batch_stride = p.heads * p.mask_head_stride;
            break;
        }
        expect_refused_host(e, name, words, &p, t, &hb);
    }
}

void case_features_errors(void)
{
    fenv e;
    if (fenv_init(&e) != 0) {
        if (e.ctx)
            fenv_free(&e);
        return;
    }
    errors_flag_buffer_pairs(&e);
    errors_problem_fields(&e);
    errors_buffers(&e);
    errors_varlen(&e);
    errors_host(&e);
    fenv_free(&e);
}

/* ==== alibi_slopes ======================================================== */

void case_alibi_slopes(void)
{
    float got[64 + 4];
    double want[64];
    int bad = 0;
    for (int heads = 1; heads <= 64; heads++) {
        for (int h = 0; h < 64 + 4; h++)
            got[h] = NAN;
        clattn_status st = clattn_alibi_slopes(heads, got);
        T_CHECK(st == CLATTN_OK, "clattn_alibi_slopes(%d) -> %s", heads, clattn_status_string(st));
        if (st != CLATTN_OK)
            continue;
        ref_alibi_slopes(heads, want);
        for (int h = 0; h < heads; h++)
            if (got[h] != (float)want[h] && bad++ < 10)
                T_FAIL("clattn_alibi_slopes(%d)[%d] = %.9g, expected %.9g (the float of %.17g)",
                       heads, h, (double)got[h], (double)(float)want[h], want[h]);
        for (int h = heads; h < 64 + 4; h++)
            if (!isnan(got[h]) && bad++ < 10)
                T_FAIL("clattn_alibi_slopes(%d) wrote element %d", heads, h);
    }
    if (!bad)
        t_log("ok   clattn_alibi_slopes(1..64) == ref_alibi_slopes rounded to float");
    static const int invalid[3] = {0, -1, INT_MIN};
    for (int i = 0; i < 3; i++) {
        got[0] = NAN;
        clattn_status st = clattn_alibi_slopes(invalid[i], got);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "clattn_alibi_slopes(%d) -> %s, expected %s",
                invalid[i], clattn_status_string(st),
                clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT));
        T_CHECK(isnan(got[0]), "clattn_alibi_slopes(%d) wrote a slope", invalid[i]);
    }
    clattn_status st = clattn_alibi_slopes(8, NULL);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "clattn_alibi_slopes(8, NULL) -> %s, expected %s",
            clattn_status_string(st), clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT));
    t_log("ok   clattn_alibi_slopes refuses heads 0, -1, INT_MIN and NULL");
}
