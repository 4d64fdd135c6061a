/*
 * Fused attention with query rows in the vector lanes, for devices that
 * vectorise within a work-item (CPUs under PoCL) and blocks of at least
 * FL_LANES query rows. Each work-item owns FL_LANES consecutive rows of one
 * head, one per lane: its queries are kept transposed (a vector per head
 * dimension), and so are its output accumulators (a vector per value
 * dimension). A score is then a lane-wise FMA of a query vector with one K
 * element broadcast from global memory, and the P*V update a lane-wise FMA
 * of a probability vector with one V element broadcast: no horizontal
 * reductions, no local memory, no barrier, no transposing copy, and the
 * running maximum and sum are vectors too.
 *
 * Work per tile of FL_KEYS keys: scores in blocks of FL_KB keys (FL_KB
 * vector accumulators stay in registers while the head dimension streams
 * past), the score steps of cl/common.h, the visibility of each lane's key
 * range, a lazily moved maximum, the probabilities, then P*V in blocks of
 * FL_DB value dimensions (their accumulators in registers while the keys
 * stream past).
 *
 * Same arguments and outputs as attn_fwd_fused (including SPLIT_KV=1).
 * Grid: (ceil(seq_q / (FL_WG * FL_LANES)) * FL_WG, batch * heads, splits),
 * local (FL_WG, 1, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef FL_WG
#define FL_WG 1
#endif
#ifndef FL_LANES
#define FL_LANES 16
#endif
#ifndef FL_KEYS
#define FL_KEYS 16
#endif
#ifndef FL_KB
#define FL_KB 4
#endif
#ifndef FL_DB
#define FL_DB 4
#endif
#ifndef SPLIT_KV
#define SPLIT_KV 0
#endif

#if FL_LANES == 16
typedef float16 vec_t;
typedef int16 ivec_t;
#define VSTORE vstore16
#define LANES ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#elif FL_LANES == 8
typedef float8 vec_t;
typedef int8 ivec_t;
#define VSTORE vstore8
#define LANES ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#elif FL_LANES == 4
typedef float4 vec_t;
typedef int4 ivec_t;
#define VSTORE vstore4
#define LANES ((int4)(0, 1, 2, 3))
#else
#error "FL_LANES must be 4, 8 or 16"
#endif
#if FL_KEYS % FL_KB != 0 || HEAD_DIM_V % FL_DB != 0
#error "FL_KB must divide FL_KEYS and FL_DB HEAD_DIM_V (the host picks such blocks)"
#endif

#define exp2v CLATTN_CAT(clattn_exp2_, FL_LANES)
#define FL_STEP inline __attribute__((always_inline))
/* How far (log2 units) a lane's tile maximum may pass its running maximum
 * before it moves (see fused_vec.cl's row_probs). */
#define FL_LAZY_MAX 8.0f

/* Scores of keys n0 .. n0+FL_KEYS-1 (keys at or past hi are read as key
 * hi - 1, in bounds; the caller hides them), FL_KB keys at a time. */
FL_STEP void tile_scores(const clattn_call *cl, const clattn_seq *sq, global const kstore_t *k,
                         int n0, int hi, const vec_t qt[HEAD_DIM], vec_t s[FL_KEYS])
{
#if !CLATTN_KV_PLAIN
    /* Paged or converted storage: each key's row found once, each channel
     * dequantized once and shared by the lanes' rows. */
#pragma unroll
    for (int kb = 0; kb < FL_KEYS; kb += FL_KB) {
        clattn_kvrow kr[FL_KB];
        vec_t a[FL_KB];
        clattn_k_rows(cl, sq, n0 + kb, hi, FL_KB, kr);
#pragma unroll
        for (int t = 0; t < FL_KB; ++t)
            a[t] = (vec_t)(0.0f);
        for (int d = 0; d < HEAD_DIM; ++d) {
            const vec_t qd = qt[d];
#pragma unroll
            for (int t = 0; t < FL_KB; ++t)
                a[t] = fma(qd, (vec_t)(clattn_k1(cl, kr[t], d)), a[t]);
        }
#pragma unroll
        for (int t = 0; t < FL_KB; ++t)
            s[kb + t] = a[t];
    }
#else
    const long koff = sq->k, kss = cl->kss;
#pragma unroll
    for (int kb = 0; kb < FL_KEYS; kb += FL_KB) {
        long kr[FL_KB];
        vec_t a[FL_KB];
#pragma unroll
        for (int t = 0; t < FL_KB; ++t) {
            kr[t] = koff + (long)min(n0 + kb + t, hi - 1) * kss;
            a[t] = (vec_t)(0.0f);
        }
        /* One pointer walks the head dimension, the keys at fixed offsets
         * from it: with an index per key, LLVM batched the index adds into a
         * vector and extracted each address again (read in the haswell and
         * skylake-avx512 code, BENCHMARKS.md). */
        long ko[FL_KB];
#pragma unroll
        for (int t = 0; t < FL_KB; ++t)
            ko[t] = kr[t] - kr[0];
        global const store_t *kd = k + kr[0];
        for (int d = 0; d < HEAD_DIM; ++d, ++kd) {
            const vec_t qd = qt[d];
#pragma unroll
            for (int t = 0; t < FL_KB; ++t)
                a[t] = fma(qd, (vec_t)(LOAD(kd, ko[t])), a[t]);
        }
#pragma unroll
        for (int t = 0; t < FL_KB; ++t)
            s[kb + t] = a[t];
    }
#endif
}

/* P*V of the tile: FL_DB value dimensions at a time, their accumulators in
 * registers while the keys stream past. With `guarded` (some probability
 * is zero: a hidden key, an underflow), a key that no lane sees is skipped
 * and a key that some lanes do not see adds its product only in the lanes
 * that do (a select), so such a key adds nothing, not even a NaN from V.
 * Peaked scores (steep ALiBi slopes, padding masks) make whole keys zero,
 * which then cost nothing. */
FL_STEP void tile_pv(const clattn_call *cl, const clattn_seq *sq, global const vstore_t *v,
                     int n0, int hi, const vec_t p[FL_KEYS], bool guarded,
                     vec_t acc[HEAD_DIM_V])
{
#if CLATTN_KV_PLAIN
    const long voff = sq->v, vss = cl->vss;
    if (!guarded && n0 + FL_KEYS <= hi) {
        /* The usual tile: every key in range and seen by every lane, so a
         * straight line with one V pointer stepping from key to key (the
         * per-key offsets and kinds otherwise come back from the stack). */
        for (int d0 = 0; d0 < HEAD_DIM_V; d0 += FL_DB) {
            vec_t a[FL_DB];
#pragma unroll
            for (int u = 0; u < FL_DB; ++u)
                a[u] = acc[d0 + u];
            global const store_t *vp = v + voff + (long)n0 * vss + d0;
#pragma unroll
            for (int t = 0; t < FL_KEYS; ++t, vp += vss)
#pragma unroll
                for (int u = 0; u < FL_DB; ++u)
                    a[u] = fma(p[t], (vec_t)(LOAD(vp, u)), a[u]);
#pragma unroll
            for (int u = 0; u < FL_DB; ++u)
                acc[d0 + u] = a[u];
        }
        return;
    }
#define FL_V(t, d) LOAD(v, vr[t] + (d))
    long vr[FL_KEYS];
#else
#define FL_V(t, d) clattn_v1(cl, vr[t], (d))
    clattn_kvrow vr[FL_KEYS];
#endif
    ivec_t keep[FL_KEYS];
    int kind[FL_KEYS]; /* 0: no lane sees the key; 1: every lane; 2: some */
#if !CLATTN_KV_PLAIN
    clattn_v_rows(cl, sq, n0, hi, FL_KEYS, vr);
#endif
#pragma unroll
    for (int t = 0; t < FL_KEYS; ++t) {
#if CLATTN_KV_PLAIN
        vr[t] = voff + (long)min(n0 + t, hi - 1) * vss;
#endif
        keep[t] = p[t] != (vec_t)(0.0f);
        kind[t] = !guarded || all(keep[t]) ? 1 : any(keep[t]) ? 2 : 0;
    }
    for (int d0 = 0; d0 < HEAD_DIM_V; d0 += FL_DB) {
        vec_t a[FL_DB];
#pragma unroll
        for (int u = 0; u < FL_DB; ++u)
            a[u] = acc[d0 + u];
#pragma unroll
        for (int t = 0; t < FL_KEYS; ++t) {
            if (kind[t] == 1) {
#pragma unroll
                for (int u = 0; u < FL_DB; ++u)
                    a[u] = fma(p[t], (vec_t)(FL_V(t, d0 + u)), a[u]);
            } else if (kind[t] == 2) {
#pragma unroll
                for (int u = 0; u < FL_DB; ++u)
                    a[u] = select(a[u], fma(p[t], (vec_t)(FL_V(t, d0 + u)), a[u]),
                                  keep[t]);
            }
        }
#pragma unroll
        for (int u = 0; u < FL_DB; ++u)
            acc[d0 + u] = a[u];
    }
}

#undef FL_V

kernel CLATTN_WG_SIZE(FL_WG) void attn_fwd_fused_lanes(
    CLATTN_CALL_PARAMS, int keys_per_split, global float *part_o, global float *part_ml)
{
    const clattn_call call = CLATTN_CALL_INIT;
    const clattn_call *c = &call;
    const int b = get_group_id(1) / heads, h = get_group_id(1) - b * heads;
    const clattn_seq s = clattn_seq_of(c, b, h);
    const int i0 = (get_group_id(0) * FL_WG + get_local_id(0)) * FL_LANES;
    if (i0 >= s.sq)
        return; /* no barrier in this kernel: idle work-items may leave */
    const int last = min(i0 + FL_LANES, s.sq) - 1;

    /* Each lane's keys; rows grow with the lane, so the work-item's keys
     * run from its first row's lo to its last row's hi, and a tile is
     * visible to every lane past the last row's lo and before the first
     * row's hi. */
    int rlo_a[FL_LANES], rhi_a[FL_LANES];
    for (int r = 0; r < FL_LANES; ++r) {
        const int i = min(i0 + r, last);
        rlo_a[r] = clattn_key_lo(c, &s, i);
        rhi_a[r] = clattn_key_hi(c, &s, i);
    }
    int lo = rlo_a[0], hi = rhi_a[FL_LANES - 1];
    int all_lo = rlo_a[FL_LANES - 1], all_hi = rhi_a[0];
#if !SPLIT_KV
    const int split = 0, nsplit = 1;
#else
    const int split = get_group_id(2), nsplit = get_num_groups(2);
    clattn_split_range(split, keys_per_split, seq_kv, &lo, &hi);
    clattn_split_range(split, keys_per_split, seq_kv, &all_lo, &all_hi);
    for (int r = 0; r < FL_LANES; ++r)
        clattn_split_range(split, keys_per_split, seq_kv, &rlo_a[r], &rhi_a[r]);
#endif
    const ivec_t rlo = CLATTN_CAT(vload, FL_LANES)(0, rlo_a);
    const ivec_t rhi = CLATTN_CAT(vload, FL_LANES)(0, rhi_a);

    /* Queries, transposed and scaled into log2 units. */
    const float qscale = clattn_qscale(c, CLATTN_LOG2E);
    vec_t qt[HEAD_DIM];
    for (int d = 0; d < HEAD_DIM; ++d) {
        float t[FL_LANES];
        for (int r = 0; r < FL_LANES; ++r)
            t[r] = LOAD(q, s.q + (long)min(i0 + r, last) * qss + d) * qscale;
        qt[d] = CLATTN_CAT(vload, FL_LANES)(0, t);
    }
    vec_t acc[HEAD_DIM_V];
    for (int d = 0; d < HEAD_DIM_V; ++d)
        acc[d] = (vec_t)(0.0f);
    float m0, l0;
    clattn_softmax_init(&s, CLATTN_LOG2E, !SPLIT_KV, &m0, &l0);
    vec_t m = (vec_t)(m0), l = (vec_t)(l0);

    for (int n0 = lo; n0 < hi; n0 += FL_KEYS) {
        vec_t sc[FL_KEYS];
        tile_scores(c, &s, k, n0, hi, qt, sc);
#if CLATTN_SCORE_STEPS
#pragma unroll
        for (int t = 0; t < FL_KEYS; ++t)
            sc[t] = CLATTN_CAT(clattn_score_rows_v, FL_LANES)(c, &s, sc[t], i0, last,
                                                               min(n0 + t, hi - 1), CLATTN_LOG2E);
#endif
        if (!(n0 >= all_lo && n0 + FL_KEYS <= all_hi)) {
            /* a tile not every lane sees whole */
#pragma unroll
            for (int t = 0; t < FL_KEYS; ++t) {
                const ivec_t j = (ivec_t)(n0 + t);
                sc[t] = select((vec_t)(-INFINITY), sc[t], (j >= rlo) & (j < rhi));
            }
        }
        /* The lane-wise tile maximum skips NaN (a > b is false); a NaN
         * reaches its row through its probability and l. */
        vec_t tmax = sc[0];
#pragma unroll
        for (int t = 1; t < FL_KEYS; ++t)
            tmax = sc[t] > tmax ? sc[t] : tmax;
        /* The lazy maximum: only lanes whose tile maximum passes theirs by
         * more than FL_LAZY_MAX move; the others keep a factor of exactly 1
         * (a lane with m = -inf that does not move would otherwise compute
         * -inf - -inf = NaN). */
        const ivec_t moved = tmax > m + (vec_t)(FL_LAZY_MAX);
        if (any(moved)) {
            const vec_t m_new = select(m, tmax, moved);
            const vec_t corr = select((vec_t)(1.0f), exp2v(m - m_new), moved);
            m = m_new;
            l *= corr;
            for (int d = 0; d < HEAD_DIM_V; ++d)
                acc[d] *= corr;
        }
        /* A lane that has seen nothing (m = -inf) has only -inf scores:
         * against 0 they give probability 0, not NaN. */
        const vec_t mref = select(m, (vec_t)(0.0f), m == (vec_t)(-INFINITY));
        vec_t p[FL_KEYS];
        vec_t psum = (vec_t)(0.0f), pmin = (vec_t)(INFINITY);
#pragma unroll
        for (int t = 0; t < FL_KEYS; ++t) {
            p[t] = exp2v(sc[t] - mref);
            psum += p[t];
            pmin = fmin(pmin, p[t]);
        }
        l += psum;
        /* fmin skips NaN; a NaN probability needs no guard: l is NaN. */
        tile_pv(c, &s, v, n0, hi, p, any(pmin == (vec_t)(0.0f)), acc);
    }

    /* The epilogue, lane by lane: a NaN l (a NaN score) makes m NaN too,
     * so the combine does not take a NaN partition for an empty one. */
    float ma[FL_LANES], la[FL_LANES];
    VSTORE(select(m, (vec_t)(NAN), isnan(l)), 0, ma);
    VSTORE(l, 0, la);
    for (int r = 0; r < FL_LANES && i0 + r <= last; ++r) {
        const int i = i0 + r;
        float out[HEAD_DIM_V];
        for (int d = 0; d < HEAD_DIM_V; ++d) {
            float t[FL_LANES];
            VSTORE(acc[d], 0, t);
            out[d] = t[r];
        }
        /* A partition that saw nothing says so with m = -inf. */
        clattn_store_row(c, &s, b, h, i, split, nsplit, out, la[r] == 0.0f ? -INFINITY : ma[r],
                         la[r], o, lse, part_o, part_ml);
    }
}
