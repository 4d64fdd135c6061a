/*
 * Visibility, the score pipeline, the softmax state and a row's epilogue.
 * Part of the kernels' shared prelude: common.h, kv_read.h, score.h, joined
 * by the host in that order ahead of each kernel file.
 */
#ifndef CLATTN_SCORE_INCLUDED
#define CLATTN_SCORE_INCLUDED
#ifndef CLATTN_COMMON_INCLUDED
#include "common.h"
#endif

/* ---- visibility ---------------------------------------------------------------
 * The rule of clattn.h: query row i (< sq) sees keys j with
 * clattn_key_lo(i) <= j < clattn_key_hi(i) (and, with BMASK, where its mask
 * entry is nonzero). Both bounds are monotone non-decreasing in i, so a block
 * of rows [i0, i1] sees at most the keys [key_lo(i0), key_hi(i1)); kernels
 * use that to skip whole tiles. */

/* The query's position among the keys: the last row faces the last key
 * (of the whole problem, when the call is a tile of one). */
inline long clattn_ip(const clattn_seq *s, int i) { return (long)i + s->ip0; }

/* floor(a / b) for b > 0, also for negative a. */
inline long clattn_floor_div(long a, long b) { return (a >= 0 ? a : a - b + 1) / b; }

inline int clattn_key_lo(const clattn_call *c, const clattn_seq *s, int i)
{
    long lo = s->S;
    if (c->windowed && c->wl >= 0)
        lo = max(lo, clattn_ip(s, i) - c->wl);
#if CHUNK
    lo = max(lo, s->cs0 + clattn_floor_div(clattn_ip(s, i) - s->cs0, c->chunk) * c->chunk);
#endif
    return (int)min(lo, (long)s->L);
}

inline int clattn_key_hi(const clattn_call *c, const clattn_seq *s, int i)
{
    long hi = s->L;
    const long ip = clattn_ip(s, i);
    if (c->causal == 1)
        hi = min(hi, ip + 1);
    else if (c->causal == 2)
        hi = min(hi, (long)i + s->tl0 + 1);
    if (c->windowed && c->wr >= 0)
        hi = min(hi, ip + c->wr + 1);
#if CHUNK
    hi = min(hi, s->cs0 + (clattn_floor_div(ip - s->cs0, c->chunk) + 1) * c->chunk);
#endif
    return (int)max(hi, 0L);
}

/* ---- a short vector exp2 ----------------------------------------------------
 * exp2 on W lanes for the hot loops: round to the nearest integer n with
 * the 1.5*2^23 trick (PoCL's rint is a long software sequence), a degree-6
 * polynomial for 2^f on f in [-0.5, 0.5] (about 1e-7 relative error, a few
 * ulp at most), and 2^n built in the exponent bits. Arguments are clamped to
 * [-127, 127] by comparisons, so NaN passes through; 2^-127 is built as
 * exactly 0, so -inf (a hidden key) gives exactly 0 and 0 gives exactly 1.
 * Above 127 it gives 2^127, not inf: callers only pass x <= 8 (softmax,
 * lazy maximum) or use the result where any huge value is as good (tanh). */
#define CLATTN_EXP2_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define CLATTN_DEFINE_EXP2(W)                                                                  \
    inline CLATTN_CAT(float, W) CLATTN_CAT(clattn_exp2_, W)(CLATTN_CAT(float, W) x)            \
    {                                                                                          \
        typedef CLATTN_CAT(float, W) T;                                                        \
        x = select(x, (T)(-127.0f), x < (T)(-127.0f));                                         \
        x = select(x, (T)(127.0f), x > (T)(127.0f));                                           \
        const T t = x + (T)(CLATTN_EXP2_MAGIC);                                                \
        const T f = x - (t - (T)(CLATTN_EXP2_MAGIC));                                          \
        T p = (T)(1.5353362e-4f);                                                              \
        p = fma(p, f, (T)(1.3398874e-3f));                                                     \
        p = fma(p, f, (T)(9.6180082e-3f));                                                     \
        p = fma(p, f, (T)(5.5503406e-2f));                                                     \
        p = fma(p, f, (T)(0.24022652f));                                                       \
        p = fma(p, f, (T)(0.69314718f));                                                       \
        p = fma(p, f, (T)(1.0f));                                                              \
        /* t's low mantissa bits hold n: n + 127 shifted into the exponent */                 \
        const CLATTN_CAT(int, W) e =                                                           \
            (CLATTN_CAT(as_int, W)(t) - (CLATTN_CAT(int, W))(0x4B400000 - 127)) << 23;         \
        return p * CLATTN_CAT(as_float, W)(e);                                                 \
    }
CLATTN_DEFINE_EXP2(4)
CLATTN_DEFINE_EXP2(8)
CLATTN_DEFINE_EXP2(16)

/* ---- the score pipeline --------------------------------------------------------
 * Kernels multiply q by clattn_qscale once; the dot product with a key then
 * goes through clattn_score (scalar), clattn_score_vW (W consecutive keys
 * in the lanes of a vector) or clattn_score_rows_vW (one key, W query rows
 * in the lanes), which apply the steps of clattn.h after the scaling:
 * softcap, ALiBi, the additive mask, the boolean mask. A new step is a
 * -D switch (0 when absent) and its code in each of the three forms, here;
 * its row in src/feature_table.c turns it on. Scores come
 * out in units of U natural-log units: U = log2(e) for kernels that
 * exponentiate with exp2, 1 for natural units. Causal, window, lengths and
 * chunks are the key bounds above, applied by the caller. */
/* tanh through one exp2 (any vector type): PoCL's tanh is a longer
 * polynomial per lane. The absolute error stays at fp32 rounding (tanh's
 * result is multiplied back by the cap, so a small relative error of tiny
 * arguments does not matter), and +-inf and NaN come out as tanh's. */
#define CLATTN_TANH_FAST(x, EXP2)                                                              \
    copysign(1.0f - 2.0f / (EXP2(fabs(x) * (2.0f * CLATTN_LOG2E)) + 1.0f), (x))
/* Near 0 that form keeps only absolute accuracy, which the cap multiplies
 * back into the score (a cap of 1e4 lost three digits): below
 * CLATTN_TANH_SMALL the odd series to x^9 takes over, whose next term is
 * under 1e-7 of the result there. */
#define CLATTN_TANH_SMALL 0.3f
#define CLATTN_TANH_POLY(x)                                                                    \
    ((x) * (1.0f + (x) * (x) *                                                                 \
                       (-0.33333334f +                                                         \
                        (x) * (x) * (0.13333334f + (x) * (x) * (-0.053968254f +                \
                                                                (x) * (x) * 0.021869488f)))))
#define CLATTN_TANH(x)                                                                         \
    (fabs(x) < CLATTN_TANH_SMALL ? CLATTN_TANH_POLY(x) : CLATTN_TANH_FAST((x), exp2))
/* The same on W lanes with the short exp2 (whose 2^127 for huge arguments
 * still makes tanh exactly +-1). */
#define CLATTN_VTANH(W, x)                                                                     \
    select(CLATTN_TANH_FAST((x), CLATTN_CAT(clattn_exp2_, W)), CLATTN_TANH_POLY(x),            \
           fabs(x) < (CLATTN_CAT(float, W))(CLATTN_TANH_SMALL))

/* ALiBi's distance j - i'; with ALIBI_SYM (clattn.h's alibi_mode
 * CLATTN_ALIBI_SYMMETRIC) -|j - i'|. */
#ifndef ALIBI_SYM
#define ALIBI_SYM 0
#endif
#if ALIBI_SYM
#define CLATTN_ALIBI_DIST(d) (-fabs(d))
#else
#define CLATTN_ALIBI_DIST(d) (d)
#endif

inline float clattn_qscale(const clattn_call *c, float U)
{
#if SOFTCAP
    return c->scale / c->softcap; /* tanh takes s / softcap */
#else
    return c->scale * U;
#endif
}

inline float clattn_score(const clattn_call *c, const clattn_seq *s, float x, int i, int j,
                          float U)
{
#if SOFTCAP
    x = c->softcap * U * CLATTN_TANH(x);
#endif
#if ALIBI
    x += U * s->slope * CLATTN_ALIBI_DIST((float)((long)j - clattn_ip(s, i)));
#endif
#if BIAS
    x += U * LOAD_BIAS(c->bias, s->bias + i * c->bsr + j);
#endif
#if BMASK
    x = c->bmask[s->bmask + i * c->msr + j] ? x : -INFINITY;
#endif
    return x;
}

/* Lanes e of a vector hold keys j0 + e; only keys below n exist in the masks
 * (the rest get no mask term: callers hide them). */
#define CLATTN_DEFINE_SCORE_VEC(W)                                                             \
    inline CLATTN_CAT(float, W) CLATTN_CAT(clattn_score_v, W)(                                 \
        const clattn_call *c, const clattn_seq *s, CLATTN_CAT(float, W) x, int i, int j0, int n, \
        float U)                                                                               \
    {                                                                                          \
        CLATTN_SCORE_VEC_BODY(W)                                                               \
        return x;                                                                              \
    }

#if SOFTCAP
#define CLATTN_VSOFTCAP(W) x = (c->softcap * U) * CLATTN_VTANH(W, x);
#else
#define CLATTN_VSOFTCAP(W)
#endif
#define CLATTN_LANES4 (float4)(0, 1, 2, 3)
#define CLATTN_LANES8 (float8)(0, 1, 2, 3, 4, 5, 6, 7)
#define CLATTN_LANES16 (float16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#if ALIBI
/* j - i' is exact in fp32 up to 2^24 positions. */
#define CLATTN_VALIBI(W)                                                                       \
    x += (U * s->slope) *                                                                      \
         CLATTN_ALIBI_DIST(CLATTN_CAT(CLATTN_LANES, W) + (float)((long)j0 - clattn_ip(s, i)));
#else
#define CLATTN_VALIBI(W)
#endif
#if BIAS
/* Whole vectors load as vectors (fp16 as bits: PoCL 3.1 compiles
 * vload_halfN from global memory to an aligned load). */
#if BIAS_DTYPE == 0
#define CLATTN_VBIAS_WHOLE(W, p) CLATTN_CAT(vload, W)(0, p)
#elif BIAS_DTYPE == 1
#define CLATTN_VBIAS_WHOLE(W, p) CLATTN_CAT(clattn_half_at, W)((global const ushort *)(p))
#elif BIAS_DTYPE == 2
#define CLATTN_VBIAS_WHOLE(W, p)                                                               \
    CLATTN_CAT(as_float, W)(CLATTN_CAT(convert_uint, W)(CLATTN_CAT(vload, W)(0, p)) << 16)
#endif
#ifdef CLATTN_VBIAS_WHOLE
#define CLATTN_VBIAS_FAST(W)                                                                   \
    if (j0 + W <= n) {                                                                         \
        x += U * CLATTN_VBIAS_WHOLE(W, c->bias + off);                                         \
    } else
#else
#define CLATTN_VBIAS_FAST(W)
#endif
#define CLATTN_VBIAS(W)                                                                        \
    {                                                                                          \
        const long off = s->bias + i * c->bsr + j0;                                            \
        CLATTN_VBIAS_FAST(W)                                                                   \
        {                                                                                      \
            float t[W];                                                                        \
            for (int e = 0; e < W; ++e)                                                        \
                t[e] = j0 + e < n ? LOAD_BIAS(c->bias, off + e) : 0.0f;                        \
            x += U * CLATTN_CAT(vload, W)(0, t);                                               \
        }                                                                                      \
    }
#else
#define CLATTN_VBIAS(W)
#endif
#if BMASK
#define CLATTN_VBMASK(W)                                                                       \
    {                                                                                          \
        const long off = s->bmask + i * c->msr + j0;                                           \
        CLATTN_CAT(int, W) hide;                                                               \
        if (j0 + W <= n) {                                                                     \
            hide = CLATTN_CAT(convert_int, W)(CLATTN_CAT(vload, W)(0, c->bmask + off)) ==      \
                   (CLATTN_CAT(int, W))(0);                                                    \
        } else {                                                                               \
            int t[W];                                                                          \
            for (int e = 0; e < W; ++e)                                                        \
                t[e] = j0 + e < n && c->bmask[off + e] != 0 ? 0 : -1;                          \
            hide = CLATTN_CAT(vload, W)(0, t);                                                 \
        }                                                                                      \
        x = select(x, (CLATTN_CAT(float, W))(-INFINITY), hide);                                \
    }
#else
#define CLATTN_VBMASK(W)
#endif
#define CLATTN_SCORE_VEC_BODY(W) CLATTN_VSOFTCAP(W) CLATTN_VALIBI(W) CLATTN_VBIAS(W) CLATTN_VBMASK(W)
CLATTN_DEFINE_SCORE_VEC(4)
CLATTN_DEFINE_SCORE_VEC(8)
CLATTN_DEFINE_SCORE_VEC(16)

/* The same steps for one key j and W query rows in the lanes (lane r is
 * row i0 + r, clamped to row `last` so that every read stays in bounds):
 * softcap and ALiBi are lane-wise; a mask is one load broadcast when its row
 * stride is 0 ([B,1,1,S] padding masks), else a gather, lane by lane. */
#define CLATTN_DEFINE_SCORE_ROWS(W)                                                            \
    inline __attribute__((always_inline)) CLATTN_CAT(float, W)                                 \
        CLATTN_CAT(clattn_score_rows_v, W)(const clattn_call *c, const clattn_seq *s,           \
                                           CLATTN_CAT(float, W) x, int i0, int last, int j,     \
                                           float U)                                             \
    {                                                                                          \
        CLATTN_SCORE_ROWS_BODY(W)                                                              \
        return x;                                                                              \
    }
#if ALIBI
#define CLATTN_RALIBI(W)                                                                       \
    x += (U * s->slope) *                                                                      \
         CLATTN_ALIBI_DIST((float)((long)j - clattn_ip(s, i0)) - CLATTN_CAT(CLATTN_LANES, W));
#else
#define CLATTN_RALIBI(W)
#endif
#if BIAS
#define CLATTN_RBIAS(W)                                                                        \
    if (c->bsr == 0) { /* every row the same: one load */                                      \
        x += (CLATTN_CAT(float, W))(U * LOAD_BIAS(c->bias, s->bias + j));                      \
    } else {                                                                                   \
        float t[W];                                                                            \
        for (int r = 0; r < W; ++r)                                                            \
            t[r] = LOAD_BIAS(c->bias, s->bias + min(i0 + r, last) * c->bsr + j);               \
        x += U * CLATTN_CAT(vload, W)(0, t);                                                   \
    }
#else
#define CLATTN_RBIAS(W)
#endif
#if BMASK
#define CLATTN_RBMASK(W)                                                                       \
    if (c->msr == 0) {                                                                         \
        if (!c->bmask[s->bmask + j])                                                           \
            x = (CLATTN_CAT(float, W))(-INFINITY);                                             \
    } else {                                                                                   \
        int t[W];                                                                              \
        for (int r = 0; r < W; ++r)                                                            \
            t[r] = c->bmask[s->bmask + min(i0 + r, last) * c->msr + j] ? 0 : -1;               \
        x = select(x, (CLATTN_CAT(float, W))(-INFINITY), CLATTN_CAT(vload, W)(0, t));          \
    }
#else
#define CLATTN_RBMASK(W)
#endif
#define CLATTN_SCORE_ROWS_BODY(W) CLATTN_VSOFTCAP(W) CLATTN_RALIBI(W) CLATTN_RBIAS(W) CLATTN_RBMASK(W)
CLATTN_DEFINE_SCORE_ROWS(4)
CLATTN_DEFINE_SCORE_ROWS(8)
CLATTN_DEFINE_SCORE_ROWS(16)

/* 1 when a score step reads per-key data or may hide a key inside the key
 * bounds, so that a tile cannot take a shortcut that skips clattn_score. */
#define CLATTN_SCORE_STEPS (SOFTCAP || ALIBI || BIAS || BMASK)

/* ---- softmax state and the row epilogue ----------------------------------------
 * The online softmax of a row keeps its running maximum m and sum l in units
 * of U; a sink starts them at (sink, 1): it joins the denominator and adds
 * no value. Split-KV partitions start empty; the combine adds the sink. */
inline void clattn_softmax_init(const clattn_seq *s, float U, int with_sink, float *m, float *l)
{
    *m = -INFINITY;
    *l = 0.0f;
#if SINKS
    if (with_sink && s->sink != -INFINITY) {
        *m = s->sink * U;
        *l = 1.0f;
    }
#endif
}

/* 1/l, or 0 for a row that saw nothing (l == 0): zeros, never 0/0. */
inline float clattn_row_inv(float l) { return l == 0.0f ? 0.0f : 1.0f / l; }

/* The natural-log LSE of a row from its log2-unit state; a row whose state
 * is still its sink's (it saw no key, or only keys of probability 0) gives
 * the sink exactly, not the sink through log2 units and back. */
inline float clattn_row_lse2(const clattn_seq *s, float m, float l)
{
    if (l == 0.0f)
        return -INFINITY;
#if SINKS
    if (l == 1.0f && m == s->sink * CLATTN_LOG2E)
        return s->sink;
#endif
    return (m + log2(l)) * CLATTN_LN2;
}

/* Writes a finished row i of (b, query head h) from its unnormalised
 * accumulators out[HEAD_DIM_V] and log2-unit state (m, l): O and the LSE,
 * or with SPLIT_KV the partition's partials for the combine. */
inline void clattn_store_row(const clattn_call *c, const clattn_seq *s, int b, int h, int i,
                             int split, int nsplit, const float *out, float m, float l,
                             global store_t *o, global float *lse, global float *part_o,
                             global float *part_ml)
{
#if SPLIT_KV
    const long prow = (((long)b * c->heads + h) * nsplit + split) * c->seq_q + i;
    for (int d = 0; d < HEAD_DIM_V; ++d)
        part_o[prow * HEAD_DIM_V + d] = out[d];
    part_ml[2 * prow] = m;
    part_ml[2 * prow + 1] = l;
#else
    const float inv = clattn_row_inv(l);
    const long ooff = s->o + (long)i * c->oss;
    for (int d = 0; d < HEAD_DIM_V; ++d)
        STORE(o, ooff + d, out[d] * inv);
    if (c->has_lse)
        lse[s->lse + i] = clattn_row_lse2(s, m, l);
#endif
}

/* Keys [*lo, *hi) of split-KV partition `split`, intersected with the given
 * bounds. */
inline void clattn_split_range(int split, int keys_per_split, int seq_kv, int *lo, int *hi)
{
    const int s0 = split * keys_per_split;
    const int s1 = (int)min((long)s0 + keys_per_split, (long)seq_kv);
    *lo = max(*lo, s0);
    *hi = min(*hi, s1);
}


#endif /* CLATTN_SCORE_INCLUDED */
