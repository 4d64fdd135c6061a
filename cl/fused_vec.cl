/*
 * Fused attention for devices that vectorise within a work-item (CPUs under
 * PoCL): the same online softmax as attn_fwd_fused, but each work-item owns
 * FV_ROWS query rows and handles FV_VEC keys at a time as one vector, so the
 * scores, their exponentials and the P*V update are vector operations with
 * FV_ROWS independent chains in flight. The K tile sits transposed in local
 * memory (one vector of FV_VEC keys per head-dim element), the V tile as
 * rows padded to a whole number of vectors.
 *
 * With FV_DIRECT=1 nothing is staged in local memory: each work-item reads
 * K and V rows straight from global memory as vectors along the head
 * dimension and reduces each score horizontally. That suits groups with a
 * single work-item (decode: a GQA group's rows fit one work-item), where
 * staging is pure overhead: the transposing copy is scalar and costs more
 * than the arithmetic it feeds.
 *
 * With FV_GQA=1 a group works for one KV head and the rows of all its query
 * heads, interleaved head-minor (row v is query row v / group of query head
 * kh * group + v % group), so every K/V tile loaded serves the whole GQA
 * group.
 *
 * Same arguments and outputs as attn_fwd_fused (including SPLIT_KV=1).
 * Grid: (ceil(rows / (FV_WG * FV_ROWS)) * FV_WG, batch * (FV_GQA ? kv_heads
 * : heads), splits), local (FV_WG, 1, 1), rows = seq_q (* group with FV_GQA).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef FV_WG
#define FV_WG 4
#endif
#ifndef FV_ROWS
#define FV_ROWS 4
#endif
#ifndef FV_VEC
#define FV_VEC 16
#endif
#ifndef SPLIT_KV
#define SPLIT_KV 0
#endif
#ifndef FV_GQA
#define FV_GQA 0
#endif
#ifndef FV_DIRECT
#define FV_DIRECT 0
#endif

#if FV_VEC == 16
typedef float16 vec_t;
typedef int16 ivec_t;
#define VLOAD vload16
#define VSTORE vstore16
#define AS_VEC as_float16
#define CONVERT_UVEC convert_uint16
#define LANES ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#define EVENS ((uint16)(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30))
#define ODDS ((uint16)(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31))
#define LOG_VEC 4
#elif FV_VEC == 8
typedef float8 vec_t;
typedef int8 ivec_t;
#define VLOAD vload8
#define VSTORE vstore8
#define AS_VEC as_float8
#define CONVERT_UVEC convert_uint8
#define LANES ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#define EVENS ((uint8)(0, 2, 4, 6, 8, 10, 12, 14))
#define ODDS ((uint8)(1, 3, 5, 7, 9, 11, 13, 15))
#define LOG_VEC 3
#elif FV_VEC == 4
typedef float4 vec_t;
typedef int4 ivec_t;
#define VLOAD vload4
#define VSTORE vstore4
#define AS_VEC as_float4
#define CONVERT_UVEC convert_uint4
#define LANES ((int4)(0, 1, 2, 3))
#define EVENS ((uint4)(0, 2, 4, 6))
#define ODDS ((uint4)(1, 3, 5, 7))
#define LOG_VEC 2
#else
#error "FV_VEC must be 4, 8 or 16"
#endif

/* The direct path reads INT4 K and V in split order (kv_read.h): the
 * queries are loaded in K's order, the output is put back from V's.
 * Measured on D1 with int4 K/V (AVX-512 Xeon): BENCHMARKS.md, 2026-12-03. */
#if FV_DIRECT
#define K_SPLIT CLATTN_KV_SPLIT(K_FMT, K_GROUP, HEAD_DIM, FV_VEC)
#define V_SPLIT CLATTN_KV_SPLIT(V_FMT, V_GROUP, HEAD_DIM_V, FV_VEC)
#else
#define K_SPLIT 0
#define V_SPLIT 0
#endif
/* Vector i (0-based, FV_VEC channels) of a K row, in the kernel's order. */
#define K_VEC(kr, i)                                                                           \
    (K_SPLIT ? CLATTN_CAT(clattn_int4_split_v, FV_VEC)(k, cl->ksc, (kr), (i), K_GROUP, K_SDT,   \
                                                       HEAD_DIM)                                \
             : clattn_k_vec_raw(FV_VEC, cl, (kr), (i)*FV_VEC, HEAD_DIM - (i)*FV_VEC))

/* Quantized K/V with scales per group (kv_read.h, CLATTN_KV_TABBED): the
 * direct scores and P*V read the tile's rows' scales (and offsets) once, into
 * private tables of FV_VEC rows (KV_TABLE), and dequantize each vector with
 * one FMA or multiply from them, instead of reading and converting a group's
 * fp16 scale at each vector: for int4 the conversions and shuffles were a
 * quarter of the decode's vector instructions (measured, BENCHMARKS.md
 * 2026-12-03). */
#if FV_DIRECT
#define K_TAB CLATTN_KV_TABBED(K_FMT, K_GROUP, HEAD_DIM, FV_VEC)
#define V_TAB CLATTN_KV_TABBED(V_FMT, V_GROUP, HEAD_DIM_V, FV_VEC)
#else
#define K_TAB 0
#define V_TAB 0
#endif
#define K_NG (K_TAB ? HEAD_DIM / CLATTN_KV_TAB_GROUP(K_FMT, K_GROUP) : 1)
#define V_NG (V_TAB ? HEAD_DIM_V / CLATTN_KV_TAB_GROUP(V_FMT, V_GROUP) : 1)
/* Vector i of key e's K row kr, from the table (ksa, kza) where K has one. */
#define K_VEC_T(e, kr, i)                                                                      \
    (K_TAB ? clattn_kv_tab_deq(K_FMT, CLATTN_CAT(clattn_kv_codes, FV_VEC)(k, (kr), (i), K_FMT), \
                               (vec_t)(ksa[e][clattn_kv_tab_g(K_FMT, K_GROUP, i, FV_VEC)]),     \
                               (vec_t)(kza[e][clattn_kv_tab_g(K_FMT, K_GROUP, i, FV_VEC)]))     \
           : K_VEC(kr, i))

/* Declares the table s, z of the tile's rows and fills it where tab:
 * rowof(e_) is row e_. */
#define KV_TABLE(tab, fmt, p, sc, sdt, ng, rowof, s, z)                                        \
    float s[tab ? FV_VEC : 1][ng], z[tab ? FV_VEC : 1][ng];                                    \
    if (tab)                                                                                   \
        for (int e_ = 0; e_ < FV_VEC; ++e_) {                                                  \
            const clattn_kvrow r_ = (rowof);                                                   \
            for (int g_ = 0; g_ < (ng); ++g_) {                                                \
                const float2 t_ = clattn_kv_tab_entry((p), (sc), (sdt), r_, g_, (fmt));        \
                s[e_][g_] = t_.x;                                                              \
                z[e_][g_] = t_.y;                                                              \
            }                                                                                  \
        }

#define DV_VECS ((HEAD_DIM_V + FV_VEC - 1) / FV_VEC)
#define DV_PAD (DV_VECS * FV_VEC)
/* Rows updated together in P*V: enough accumulator chains to hide the FMA
 * latency while they still fit the registers. */
#ifndef PV_ROWS
#define PV_ROWS (DV_VECS <= 4 ? 4 : 2)
#endif
#define DK_VECS ((HEAD_DIM + FV_VEC - 1) / FV_VEC)
#define DK_PAD (DK_VECS * FV_VEC)
#define BLOCK_ROWS (FV_WG * FV_ROWS)
/* How far (log2 units) a tile's maximum may pass the running maximum
 * before it moves (row_probs). */
#define FV_LAZY_MAX 8.0f

#define hmax CLATTN_CAT(clattn_hmax, FV_VEC)
#define hany CLATTN_CAT(clattn_hany, FV_VEC)
#define hsum CLATTN_CAT(clattn_hsum, FV_VEC)
#define exp2v CLATTN_CAT(clattn_exp2_, FV_VEC)

#define score_v CLATTN_CAT(clattn_score_v, FV_VEC)

/* int8 K with one scale a row (K_IDOT, chosen by the host's FV_IDOT, on by
 * default on CPUs): the scores are integer dot products. Each query row is
 * rounded once to 16-bit integers (its largest |q| to 32767, so within
 * 2^-16 of it), and multiplied with K's codes widened to 16 bits, pairs of
 * channels summed into 32-bit lanes: one instruction (pmaddwd) does the
 * work of two FMAs, and the sums are exact (|q| <= 32767, |k| <= 128 and at
 * most 256 channels stay below 2^31). The widening takes one shuffle for
 * 2 FV_VEC channels, where the fp32 decode took a widening and a conversion
 * for FV_VEC. The row's scale and the query's step multiply the folded
 * scores. Measured on D1 (AVX-512 Xeon): int8 per-token decode 1.12-1.18x
 * faster in cache, 1.07-1.15x streamed, BENCHMARKS.md 2026-12-03. Vectors of 32 shorts need clang's
 * ext_vector_type (PoCL); other compilers keep the fp32 scores at FV_VEC 16. */
#ifndef FV_IDOT
#define FV_IDOT 0
#endif
#if FV_IDOT && FV_DIRECT && K_FMT == CLATTN_KV_INT8 && K_ROW_SCALED &&                         \
    HEAD_DIM % (2 * FV_VEC) == 0 && HEAD_DIM <= 256 && (FV_VEC != 16 || defined(__clang__))
#define K_IDOT 1
#define IQ_VECS (HEAD_DIM / (2 * FV_VEC))
#if FV_VEC == 16
typedef short fv_sw __attribute__((ext_vector_type(32)));
#define FV_CAT32(a, b)                                                                         \
    __builtin_shufflevector((a), (b), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, \
                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31)
#elif FV_VEC == 8
typedef short16 fv_sw;
#else
typedef short8 fv_sw;
#endif
/* 2 FV_VEC int8 codes from p, widened. */
inline __attribute__((always_inline)) fv_sw fv_k_words(global const char *p)
{
#if FV_VEC == 16
    return __builtin_convertvector(FV_CAT32(vload16(0, p), vload16(1, p)), fv_sw);
#elif FV_VEC == 8
    return convert_short16(vload16(0, p));
#else
    return convert_short8(vload8(0, p));
#endif
}
/* 2 FV_VEC values of q, times 2^x f, rounded to 16-bit integers. */
inline __attribute__((always_inline)) fv_sw fv_q_words(const float *q, int x, float f)
{
    short t[2 * FV_VEC];
    for (int e = 0; e < 2 * FV_VEC; ++e)
        t[e] = convert_short_sat_rte(ldexp(q[e], x) * f);
#if FV_VEC == 16
    return FV_CAT32(vload16(0, t), vload16(1, t));
#elif FV_VEC == 8
    return vload16(0, t);
#else
    return vload8(0, t);
#endif
}
/* x = m 2^e with m in [0.5, 1), for a finite x > 0: frexp, from the bits
 * (Oclgrind 21.10's frexp corrupted the results of the kernel that called
 * it). Subnormals are first scaled into the normal range. */
inline __attribute__((always_inline)) float fv_frexp(float x, int *e)
{
    const int sub = x < 0x1p-126f;
    const uint b = as_uint(sub ? x * 0x1p64f : x);
    *e = (int)((b >> 23) & 0xffu) - 126 - (sub ? 64 : 0);
    return as_float((b & 0x007fffffu) | 0x3f000000u);
}
/* Lane i: a[2i] * b[2i] + a[2i+1] * b[2i+1]. The x86 builtins, because
 * LLVM hoisted the widening of the (loop-invariant) query out of the plain
 * expression and lost the pmaddwd it matches: 32-bit multiplies instead,
 * measured slower than the fp32 scores. */
inline __attribute__((always_inline)) ivec_t fv_idot(fv_sw a, fv_sw b)
{
#if FV_VEC == 16 && defined(__AVX512BW__)
    typedef short v_ __attribute__((vector_size(64)));
    return __builtin_bit_cast(ivec_t, __builtin_ia32_pmaddwd512((v_)a, (v_)b));
#elif FV_VEC == 8 && defined(__AVX2__) && defined(__clang__)
    typedef short v_ __attribute__((vector_size(32)));
    return __builtin_bit_cast(ivec_t, __builtin_ia32_pmaddwd256((v_)a, (v_)b));
#elif FV_VEC == 4 && defined(__SSE2__) && defined(__clang__)
    typedef short v_ __attribute__((vector_size(16)));
    return __builtin_bit_cast(ivec_t, __builtin_ia32_pmaddwd128((v_)a, (v_)b));
#else
    return CLATTN_CAT(convert_int, FV_VEC)(a.even) * CLATTN_CAT(convert_int, FV_VEC)(b.even) +
           CLATTN_CAT(convert_int, FV_VEC)(a.odd) * CLATTN_CAT(convert_int, FV_VEC)(b.odd);
#endif
}
#else
#define K_IDOT 0
#endif
/* A work-item's query rows as 16-bit integers (qq) and their steps (qd). */
#if K_IDOT
#define IQ_PARAM , const fv_sw qq[FV_ROWS][IQ_VECS], const float qd[FV_ROWS]
#define IQ_ARG , qq, qd
#else
#define IQ_PARAM
#define IQ_ARG
#endif

/* The steps of attn_fwd_fused_vec. Each takes the work-item's rows as
 * private arrays; they must be inlined, so the arrays stay in registers
 * (the loops over rows are unrolled for that reason: PoCL did not unroll
 * loops over private arrays by itself, measured). A plain inline is not
 * enough: PoCL's inliner left these calls (measured 1.2-1.7x slower). */
#define FV_STEP inline __attribute__((always_inline))

/* Pairwise sums of two vectors' neighbouring lanes: a's in the low half of
 * the result, b's in the high half. log2(FV_VEC) rounds of it turn FV_VEC
 * vectors (one per key) into one vector of their sums, key e in lane e: a
 * few shuffles per key instead of a horizontal sum per key and row. */
#define fold(a, b) (shuffle2((a), (b), EVENS) + shuffle2((a), (b), ODDS))

#if PAGED
/* Scores of a tile that spans pages or ends past hi, key by key, each
 * reduced horizontally: the folded version below, unrolled over keys whose
 * rows come from the page table one by one, measured 1.2-1.3x slower (D1,
 * page 16). Lanes past hi score key hi - 1 again (in bounds); the caller's
 * visibility select discards them. */
FV_STEP void scores_direct_keys(const clattn_call *cl, const clattn_seq *s0,
                               global const kstore_t *k, int n0, int hi,
                               const float qr[FV_ROWS][DK_PAD], vec_t s[FV_ROWS])
{
    float sc[FV_ROWS][FV_VEC];
    /* one table lookup per page, not per key */
    clattn_kvrow krow[FV_VEC];
    clattn_k_rows(cl, s0, n0, hi, FV_VEC, krow);
    for (int e = 0; e < FV_VEC; ++e) {
        const clattn_kvrow kr = krow[e];
        vec_t part[FV_ROWS];
        for (int r = 0; r < FV_ROWS; ++r)
            part[r] = (vec_t)(0.0f);
#pragma unroll
        for (int c = 0; c < DK_VECS; ++c) {
            const vec_t kv = K_VEC(kr, c);
#pragma unroll
            for (int r = 0; r < FV_ROWS; ++r)
                part[r] = fma(VLOAD(c, qr[r]), kv, part[r]);
        }
        const float ks = clattn_k_row_scale(cl, kr);
#pragma unroll
        for (int r = 0; r < FV_ROWS; ++r)
            sc[r][e] = hsum(part[r]) * ks;
    }
    for (int r = 0; r < FV_ROWS; ++r)
        s[r] = VLOAD(0, sc[r]);
}
#endif

#if PAGED
/* A tile inside one page: key e's row follows the first key's (kb). Keys
 * past hi are clamped as in a contiguous K, which keeps the generated code
 * the same as there: without the clamp (a tile known to be whole) LLVM
 * scheduled every K load of the tile first and spilled ~800 vectors a tile
 * at eight rows a work-item, 2x slower (one KV head, pages of 16). */
#define K_TILE_ROW(e) clattn_k_page_next(cl, kb, min(n0 + (e), hi - 1) - n0)
#else
#define K_TILE_ROW(e) clattn_k_row(cl, s0, min(n0 + (e), hi - 1))
#endif

#if CLATTN_HAS_PREFETCH
/* How many tiles ahead of the one it computes a work-item prefetches: 2
 * and 4 measured alike on D1 with pages of 16, 1 was 1.1-1.35x slower.
 * Contiguous K/V too: on a Xeon (pthread-skylake-avx512) its hardware
 * prefetchers left D1 1.02-1.4x slower than with these (BENCHMARKS.md,
 * 2026-12-03). */
#define FV_PREFETCH 2

/* The rows of the tile FV_PREFETCH ahead: n keys from kp and vp, rows ks
 * and vs bytes apart (n 0: nothing to prefetch). */
typedef struct {
    global const char *kp, *vp;
    long ks, vs;
    int n;
} fv_ahead;

/* Prefetches key e's K and V rows of the tile ahead. The scores call it at
 * each of their keys, so the prefetches are spread over the tile: issued in
 * one burst after it they ran out of the core's miss slots and stalled it
 * (a fifth of int8 decode's samples), 1.1-1.4x slower on D1 on a Xeon
 * (BENCHMARKS.md, 2026-12-03). Rolled loops: unrolled, prefetches change the
 * scheduling of the whole tile (5-10x more spills, measured). */
FV_STEP void prefetch_key(const fv_ahead *pf, int e)
{
    if (e >= pf->n)
        return;
    const int kbytes = CLATTN_KV_ROW_BYTES(K_FMT, HEAD_DIM, (int)sizeof(kstore_t));
    const int vbytes = CLATTN_KV_ROW_BYTES(V_FMT, HEAD_DIM_V, (int)sizeof(vstore_t));
    global const char *kp = pf->kp + e * pf->ks;
    global const char *vp = pf->vp + e * pf->vs;
#pragma unroll 1
    for (int b = 0; b < kbytes; b += 64)
        CLATTN_PREFETCH(kp + b);
#pragma unroll 1
    for (int b = 0; b < vbytes; b += 64)
        CLATTN_PREFETCH(vp + b);
}
#define PF_PARAM , const fv_ahead *pf
#define PF_ARG , &pf
#else
#define PF_PARAM
#define PF_ARG
#endif

/* Scores of keys n0 .. n0+FV_VEC-1 for every row, read straight from
 * global memory (FV_DIRECT): each key's K row is read (and dequantized)
 * once, as vectors along the head dimension, for all the rows, and the
 * per-key partial vectors are folded into key-per-lane scores as they come
 * (a binary counter of pending folds, all resolved at compile time), so at
 * most log2(FV_VEC) partial vectors a row are live. Lanes past hi score key
 * hi - 1 again (in bounds); the caller's visibility select discards them. */
FV_STEP void scores_direct(const clattn_call *cl, const clattn_seq *s0, global const kstore_t *k,
                          int n0, int hi, const clattn_kvrow kb,
                          const float qr[FV_ROWS][DK_PAD], vec_t s[FV_ROWS] PF_PARAM IQ_PARAM)
{
#if K_IDOT
    /* the same order of keys and folds, on 32-bit integer lanes */
    typedef ivec_t part_t;
    (void)qr;
#else
    typedef vec_t part_t;
#endif
    part_t pend[LOG_VEC][FV_ROWS];
    /* A row-scaled K's scales, applied to the folded scores: one multiply
     * a row and tile, not one a row and key. */
    float ksc[K_ROW_SCALED ? FV_VEC : 1];
    KV_TABLE(K_TAB, K_FMT, k, cl->ksc, K_SDT, K_NG, K_TILE_ROW(e_), ksa, kza);
#pragma unroll
    for (int e2 = 0; e2 < FV_VEC; e2 += 2) {
        part_t part[2][FV_ROWS];
#pragma unroll
        for (int u = 0; u < 2; ++u) {
            /* computed in place: an array of rows cost 8% on decode (measured) */
            const clattn_kvrow kr = K_TILE_ROW(e2 + u);
#if CLATTN_HAS_PREFETCH
            prefetch_key(pf, e2 + u);
#endif
#pragma unroll
            for (int r = 0; r < FV_ROWS; ++r)
                part[u][r] = (part_t)(0);
#if K_IDOT
#pragma unroll
            for (int c = 0; c < IQ_VECS; ++c) {
                const fv_sw kw = fv_k_words((global const char *)k + kr.off + c * 2 * FV_VEC);
#pragma unroll
                for (int r = 0; r < FV_ROWS; ++r)
                    part[u][r] += fv_idot(qq[r][c], kw);
            }
#else
#pragma unroll
            for (int c = 0; c < DK_VECS; ++c) {
                const vec_t kv = K_VEC_T(e2 + u, kr, c);
#pragma unroll
                for (int r = 0; r < FV_ROWS; ++r)
                    part[u][r] = fma(VLOAD(c, qr[r]), kv, part[u][r]);
            }
#endif
            if (K_ROW_SCALED)
                ksc[e2 + u] = clattn_k_row_scale(cl, kr);
        }
        part_t t[FV_ROWS];
#pragma unroll
        for (int r = 0; r < FV_ROWS; ++r)
            t[r] = fold(part[0][r], part[1][r]);
        /* pair e2 / 2 done: fold with the pending partial sums of the keys
         * before it, as a binary counter carries */
        int lev = 0;
#pragma unroll
        for (; lev < LOG_VEC - 1 && ((e2 / 2) >> lev) & 1; ++lev)
#pragma unroll
            for (int r = 0; r < FV_ROWS; ++r)
                t[r] = fold(pend[lev][r], t[r]);
#pragma unroll
        for (int r = 0; r < FV_ROWS; ++r)
            pend[lev][r] = t[r];
    }
#pragma unroll
    for (int r = 0; r < FV_ROWS; ++r)
#if K_IDOT
        s[r] = CLATTN_CAT(convert_float, FV_VEC)(pend[LOG_VEC - 1][r]) * (VLOAD(0, ksc) * qd[r]);
#else
        s[r] = K_ROW_SCALED ? pend[LOG_VEC - 1][r] * VLOAD(0, ksc) : pend[LOG_VEC - 1][r];
#endif
}

#if !FV_DIRECT
/* Stages keys n0 .. n0+FV_VEC-1 in local memory: K transposed (one vector
 * of keys per head-dim element), V as rows padded to whole vectors; keys
 * at or past hi are zero. Vector loads; only the transposing K stores are
 * scalar. */
FV_STEP void stage_tile(const clattn_call *cl, const clattn_seq *s0, global const kstore_t *k,
                       global const vstore_t *v, int n0, int hi, int lid, local float *kt,
                       local float *vt)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int jj = lid; jj < FV_VEC; jj += FV_WG) {
        const bool in = n0 + jj < hi;
        const int j = min(n0 + jj, hi - 1); /* a key the sequence has */
        const clattn_kvrow kr = clattn_k_row(cl, s0, j);
        const clattn_kvrow vr = clattn_v_row(cl, s0, j);
        for (int c = 0; c < DK_VECS; ++c) {
            float kd[FV_VEC];
            VSTORE(in ? clattn_k_vec(FV_VEC, cl, kr, c * FV_VEC, HEAD_DIM - c * FV_VEC)
                      : (vec_t)(0.0f),
                   0, kd);
            for (int t = 0; t < FV_VEC && c * FV_VEC + t < HEAD_DIM; ++t)
                kt[(c * FV_VEC + t) * FV_VEC + jj] = kd[t];
        }
        for (int c = 0; c < DV_VECS; ++c)
            VSTORE(in ? clattn_v_vec(FV_VEC, cl, vr, c * FV_VEC, HEAD_DIM_V - c * FV_VEC)
                      : (vec_t)(0.0f),
                   c, vt + jj * DV_PAD);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* Scores of the staged tile for every row. */
FV_STEP void scores_staged(local const float *kt, const float qr[FV_ROWS][DK_PAD],
                          vec_t s[FV_ROWS])
{
    for (int r = 0; r < FV_ROWS; ++r)
        s[r] = (vec_t)(0.0f);
    for (int d = 0; d < HEAD_DIM; ++d) {
        const vec_t kv = VLOAD(d, kt);
#pragma unroll
        for (int r = 0; r < FV_ROWS; ++r)
            s[r] = fma((vec_t)(qr[r][d]), kv, s[r]);
    }
}
#endif

/* One row's online-softmax step over the tile: the score pipeline, the
 * visibility of keys rlo..rhi-1, the running maximum and sum, the rescaled
 * accumulators; the probabilities go to pj. The sum l is kept per lane
 * (the caller adds its lanes up at the end): a horizontal sum a tile and
 * row was a chain of dependent shuffles and adds for nothing. Returns 0
 * when the row adds nothing, 1 when no probability is zero, 2 when some
 * are. */
FV_STEP int row_probs(const clattn_call *c, const clattn_seq *rs, vec_t x, int i, int n0,
                     int L, int rlo, int rhi, float *m, vec_t *l, vec_t acc[DV_VECS],
                     float pj[FV_VEC])
{
    if (rlo >= rhi || n0 >= rhi || n0 + FV_VEC <= rlo)
        return 0; /* nothing of this tile is visible to the row */
#if CLATTN_SCORE_STEPS
    x = score_v(c, rs, x, i, n0, L, CLATTN_LOG2E);
#endif
    if (n0 < rlo || n0 + FV_VEC > rhi) { /* a partly visible tile */
        const ivec_t j = (ivec_t)(n0) + LANES;
        const ivec_t seen = (j >= (ivec_t)(rlo)) & (j < (ivec_t)(rhi));
        x = select((vec_t)(-INFINITY), x, seen);
    }
    /* A NaN score the row sees must make the row NaN. Where the maximum
     * is above -inf, a NaN lane's probability is NaN and so are the row's
     * sum and accumulators (pv_update keeps NaN probabilities); only a
     * NaN among -inf lanes needs looking for, or the tile would be
     * skipped as empty. */
    float tile_max = hmax(x);
    if (tile_max == -INFINITY && hany(isnan(x)))
        tile_max = NAN;
    if (tile_max == -INFINITY && *m == -INFINITY)
        return 0;
    /* The running maximum moves lazily: only when the tile's passes it by
     * more than FV_LAZY_MAX (log2 units). Probabilities stay below
     * 2^FV_LAZY_MAX, far from overflow, and the sum and accumulators keep
     * one common reference, which is all the final 1/l and the LSE need.
     * Scores that keep growing along the keys (ALiBi, non-causal) would
     * otherwise pay a scalar exp2 and a rescale of the accumulators on
     * almost every tile. */
    if (!(tile_max <= *m + FV_LAZY_MAX)) {
        const float m_new = clattn_max_nan(*m, tile_max);
        const float corr = exp2(*m - m_new);
        *l *= (vec_t)(corr);
#pragma unroll
        for (int cc = 0; cc < DV_VECS; ++cc)
            acc[cc] *= (vec_t)(corr);
        *m = m_new;
    }
    const vec_t p = exp2v(x - (vec_t)(*m));
    *l += p;
    VSTORE(p, 0, pj);
    return hany(p == (vec_t)(0.0f)) ? 2 : 1;
}

#if FV_DIRECT
/* Keys at or past hi are read as key hi - 1 (in bounds); their probability
 * is 0, and the guarded update below keeps them out. With pages, a tile
 * inside one page (vlin) finds its rows from the first one's (vb), any
 * other tile in vrow. */
#if PAGED
#define V_ROWOF(e) (vlin ? clattn_v_page_next(cl, vb, min(n0 + (e), hi - 1) - n0) : vrow[e])
#else
#define V_ROWOF(e) clattn_v_row(cl, s0, min(n0 + (e), hi - 1))
#endif
#define V_ROW(e, c)                                                                            \
    (V_TAB ? clattn_kv_tab_deq(V_FMT, CLATTN_CAT(clattn_kv_codes, FV_VEC)(v, V_ROWOF(e), (c), V_FMT), \
                               (vec_t)(vsa[e][clattn_kv_tab_g(V_FMT, V_GROUP, c, FV_VEC)]),     \
                               (vec_t)(vza[e][clattn_kv_tab_g(V_FMT, V_GROUP, c, FV_VEC)]))     \
           : clattn_v_vec_raw(FV_VEC, cl, V_ROWOF(e), (c)*FV_VEC, HEAD_DIM_V - (c)*FV_VEC))
/* V's table of the tile, in each P*V. */
#define V_TABLE KV_TABLE(V_TAB, V_FMT, v, cl->vsc, V_SDT, V_NG, V_ROWOF(e_), vsa, vza)
/* A row-scaled V's scale goes into the weight of its key (V_ROW reads it
 * unscaled). */
#define V_SCALE(e) clattn_v_row_scale(cl, V_ROWOF(e))
#define V_SRC                                                                                 \
    const clattn_call *cl, const clattn_seq *s0, global const vstore_t *v, int hi,          \
        const int vlin, const clattn_kvrow vb, const clattn_kvrow vrow[FV_VEC]
#define V_ARGS c, s0, v, hi, lin, vb, vrow
#else
#define V_ROW(e, c) VLOAD((c), vt + (e) * DV_PAD)
#define V_TABLE
#define V_SCALE(e) 1.0f
#define V_SRC local const float *vt
#define V_ARGS vt
#endif

/* Whether V's values need decoding (anything but fp32 storage). */
#define V_DECODED (!(V_FMT == CLATTN_KV_F32 || (V_FMT == CLATTN_KV_DTYPE && DTYPE == 0)))

#if FV_DIRECT && V_DECODED
/* Channels of V updated together in the direct P*V of a V that needs
 * decoding: every row of the work-item takes each V vector read, so it is
 * decoded once per key, not once per row or pair of rows; PV_CB vectors of
 * each row's accumulators (FV_ROWS * PV_CB of them, 16 by default) stay in
 * registers over the tile's keys. An fp32 V keeps the pairs of rows below:
 * its loads fold into the FMAs, and reading a tile's V rows in channel
 * blocks measured 1.25x slower on D1 (each row's stream read twice). */
#ifndef PV_CB
#define PV_CB (16 / FV_ROWS < 1 ? 1 : 16 / FV_ROWS > DV_VECS ? DV_VECS : 16 / FV_ROWS)
#endif

/* The P*V update of the tile, PV_CB channel vectors at a time for all rows
 * (see pv_update below for the zero-probability rule). */
FV_STEP void pv_update(V_SRC, int n0, const int kind[FV_ROWS], const float pj[FV_ROWS][FV_VEC],
                       vec_t acc[FV_ROWS][DV_VECS])
{
    bool fast = true, any = false;
#pragma unroll
    for (int r = 0; r < FV_ROWS; ++r) {
        fast = fast && kind[r] == 1;
        any = any || kind[r] != 0;
    }
    if (!any)
        return;
    V_TABLE;
    /* A row-scaled V's scales go into the weights once a tile, as vectors
     * of the tile's keys: P*V then broadcasts each weight straight from
     * memory, where a multiply and a register broadcast per row, key and
     * channel block were a sixth of int8 decode's vector instructions. Rows
     * that add nothing have no probabilities: their weights are zeros. */
    float pw[V_ROW_SCALED ? FV_ROWS : 1][FV_VEC];
    if (V_ROW_SCALED) {
        float vsc[FV_VEC];
        for (int e = 0; e < FV_VEC; ++e)
            vsc[e] = V_SCALE(e);
        const vec_t vs = VLOAD(0, vsc);
#pragma unroll
        for (int r = 0; r < FV_ROWS; ++r)
            VSTORE(kind[r] ? VLOAD(0, pj[r]) * vs : (vec_t)(0.0f), 0, pw[V_ROW_SCALED ? r : 0]);
    }
#define PV_W(r, e) (V_ROW_SCALED ? pw[V_ROW_SCALED ? (r) : 0][e] : pj[r][e])
#pragma unroll
    for (int c0 = 0; c0 < DV_VECS; c0 += PV_CB) {
        if (fast) {
            for (int e = 0; e < FV_VEC; ++e) {
#pragma unroll
                for (int c = c0; c < c0 + PV_CB && c < DV_VECS; ++c) {
                    const vec_t vv = V_ROW(e, c);
#pragma unroll
                    for (int r = 0; r < FV_ROWS; ++r)
                        acc[r][c] = fma((vec_t)(PV_W(r, e)), vv, acc[r][c]);
                }
            }
        } else {
            for (int e = 0; e < FV_VEC; ++e) {
                float w[FV_ROWS];
                bool keep[FV_ROWS];
#pragma unroll
                for (int r = 0; r < FV_ROWS; ++r) {
                    keep[r] = kind[r] != 0 && pj[r][e] != 0.0f;
                    w[r] = keep[r] ? PV_W(r, e) : 0.0f;
                }
#pragma unroll
                for (int c = c0; c < c0 + PV_CB && c < DV_VECS; ++c) {
                    const vec_t vv = V_ROW(e, c);
#pragma unroll
                    for (int r = 0; r < FV_ROWS; ++r)
                        acc[r][c] = keep[r] ? fma((vec_t)(w[r]), vv, acc[r][c]) : acc[r][c];
                }
            }
        }
    }
}
#else
/* The P*V update of the tile, PV_ROWS rows at a time: each V vector loaded
 * serves them all, and more independent accumulator chains hide the FMA
 * latency (with head_dim_v 64 one row has only four). Where a row of the
 * group has a zero probability (a hidden key, an underflow: common with
 * peaked scores such as steep ALiBi slopes) each product is kept only where
 * the probability is not zero, by a select rather than a branch per key, so
 * the loop still unrolls: a key of probability 0 adds nothing, not even a
 * NaN from V. Rows that add nothing (kind 0) have no probabilities. */
FV_STEP void pv_update(V_SRC, int n0, const int kind[FV_ROWS], const float pj[FV_ROWS][FV_VEC],
                       vec_t acc[FV_ROWS][DV_VECS])
{
    V_TABLE;
#pragma unroll
    for (int r = 0; r < FV_ROWS; r += PV_ROWS) {
        bool fast = true, any = false;
#pragma unroll
        for (int g = 0; g < PV_ROWS; ++g) {
            fast = fast && r + g < FV_ROWS && kind[r + g] == 1;
            any = any || (r + g < FV_ROWS && kind[r + g] != 0);
        }
        if (fast) {
            for (int e = 0; e < FV_VEC; ++e)
#pragma unroll
                for (int c = 0; c < DV_VECS; ++c) {
                    const vec_t vv = V_ROW(e, c);
#pragma unroll
                    for (int g = 0; g < PV_ROWS; ++g)
                        acc[r + g][c] = fma((vec_t)(pj[r + g][e] * V_SCALE(e)), vv, acc[r + g][c]);
                }
        } else if (any) {
            for (int e = 0; e < FV_VEC; ++e) {
                float w[PV_ROWS];
                bool keep[PV_ROWS];
#pragma unroll
                for (int g = 0; g < PV_ROWS; ++g) {
                    keep[g] = r + g < FV_ROWS && kind[r + g] != 0 && pj[r + g][e] != 0.0f;
                    w[g] = keep[g] ? pj[r + g][e] * V_SCALE(e) : 0.0f;
                }
#pragma unroll
                for (int c = 0; c < DV_VECS; ++c) {
                    const vec_t vv = V_ROW(e, c);
#pragma unroll
                    for (int g = 0; g < PV_ROWS; ++g)
                        if (r + g < FV_ROWS)
                            acc[r + g][c] =
                                keep[g] ? fma((vec_t)(w[g]), vv, acc[r + g][c]) : acc[r + g][c];
                }
            }
        }
    }
}

#endif

#if FV_DIRECT
/* The scores of the tile at keys n0 .. n0+FV_VEC-1, read straight from
 * global memory. With pages, lin (a literal at each call, so each gets its
 * own copy) says the tile lies inside one page: its rows then follow the
 * first key's as in a contiguous K, one table lookup for the tile. */
FV_STEP void tile_scores(const clattn_call *c, const clattn_seq *s0, global const kstore_t *k,
                        global const vstore_t *v, int n0, int hi, const int lin,
                        const float qr[FV_ROWS][DK_PAD], vec_t s[FV_ROWS] IQ_PARAM)
{
    clattn_kvrow kb = {0, 0};
#if CLATTN_HAS_PREFETCH
    /* The tile FV_PREFETCH ahead (inside one page, with pages), whose rows
     * the scores prefetch key by key; its first scale lines here. */
    const int ahead = n0 + FV_PREFETCH * FV_VEC;
    fv_ahead pf = {0, 0, 0, 0, 0};
#if PAGED
    if (lin && ahead < hi) /* not in pages of fewer than FV_VEC keys */
#else
    if (ahead < hi)
#endif
    {
        const clattn_kvrow kn = clattn_k_row(c, s0, ahead), vn = clattn_v_row(c, s0, ahead);
        pf.kp = (global const char *)(k + kn.off);
        pf.vp = (global const char *)(v + vn.off);
        pf.ks = c->kss * (long)sizeof(kstore_t);
        pf.vs = c->vss * (long)sizeof(vstore_t);
        pf.n = min(FV_VEC, hi - ahead);
#if K_FMT == CLATTN_KV_INT8 || K_FMT == CLATTN_KV_INT4
        CLATTN_PREFETCH(c->ksc + kn.sc * (K_SDT ? 2 : 4));
#endif
#if V_FMT == CLATTN_KV_INT8 || V_FMT == CLATTN_KV_INT4
        CLATTN_PREFETCH(c->vsc + vn.sc * (V_SDT ? 2 : 4));
#endif
    }
#endif
#if PAGED
    if (lin) {
        kb = clattn_k_row(c, s0, n0);
        scores_direct(c, s0, k, n0, hi, kb, qr, s PF_ARG IQ_ARG);
    } else {
        scores_direct_keys(c, s0, k, n0, hi, qr, s);
    }
#else
    scores_direct(c, s0, k, n0, hi, kb, qr, s PF_ARG IQ_ARG);
#endif
}

/* One step of the direct loop, software-pipelined: each row's softmax step
 * over the tile at n0 (row r is query row qi[r]; its scores in s, from the
 * step before), then the scores of the next tile into s, then the tile's
 * P*V. The next tile's scores do not depend on this tile's softmax, so the
 * core runs them while the softmax's long chains of horizontal reductions
 * and exp2 (and the P*V waiting on them) complete: in the order scores,
 * softmax, P*V those chains stalled every tile. The step before the first
 * tile (n0 < first) only computes scores. */
FV_STEP void tile_step(const clattn_call *c, const clattn_seq *s0, global const kstore_t *k,
                      global const vstore_t *v, int n0, int first, int hi, const int lin,
                      const float qr[FV_ROWS][DK_PAD], vec_t s[FV_ROWS],
                      const clattn_seq rs[FV_ROWS], const int qi[FV_ROWS],
                      const int rlo[FV_ROWS], const int rhi[FV_ROWS], float m[FV_ROWS],
                      vec_t l[FV_ROWS], vec_t acc[FV_ROWS][DV_VECS] IQ_PARAM)
{
    const bool now = n0 >= first;
    float pj[FV_ROWS][FV_VEC];
    int kind[FV_ROWS];
    for (int r = 0; r < FV_ROWS; ++r)
        kind[r] = now ? row_probs(c, &rs[r], s[r], qi[r], n0, s0->L, rlo[r], rhi[r], &m[r],
                                  &l[r], acc[r], pj[r])
                      : 0;
    if (n0 + FV_VEC < hi)
        tile_scores(c, s0, k, v, n0 + FV_VEC, hi, lin, qr, s IQ_ARG);
    if (!now)
        return;
    clattn_kvrow vb = {0, 0};
    clattn_kvrow vrow[FV_VEC];
#if PAGED
    if (lin)
        vb = clattn_v_row(c, s0, n0);
    else
        clattn_v_rows(c, s0, n0, hi, FV_VEC, vrow);
#endif
    pv_update(V_ARGS, n0, kind, pj, acc);
}
#endif

kernel CLATTN_WG_SIZE(FV_WG) void attn_fwd_fused_vec(
    CLATTN_CALL_PARAMS, int keys_per_split, global float *part_o, global float *part_ml)
{
#if !FV_DIRECT
    local float kt[HEAD_DIM * FV_VEC]; /* kt[d * FV_VEC + key] */
    local float vt[FV_VEC * DV_PAD];   /* vt[key * DV_PAD + dv] */
#endif

    const clattn_call call = CLATTN_CALL_INIT;
    const clattn_call *c = &call;
    const int lid = get_local_id(0);
    const int g0 = get_group_id(0) * BLOCK_ROWS;
    const int row0 = g0 + lid * FV_ROWS; /* this work-item's rows: row0 .. row0+FV_ROWS-1 */
#if FV_GQA
    const int kv_heads = heads / group;
    const int b = get_group_id(1) / kv_heads, kh = get_group_id(1) - b * kv_heads;
#define QROW(v) ((v) / group)                  /* query row of virtual row v */
/* v - QROW(v) * group, not v % group: a div/rem pair becomes LLVM's freeze,
 * which Oclgrind 21.10 cannot interpret. */
#define QHEAD(v) (kh * group + (v) - QROW(v) * group) /* its query head */
    const int h0 = kh * group;
#else
    const int b = get_group_id(1) / heads, h = get_group_id(1) - b * heads;
#define QROW(v) (v)
#define QHEAD(v) (h)
    const int h0 = h;
#endif
    /* Lengths and K/V offsets are the same for every head of the group. */
    const clattn_seq s0 = clattn_seq_of(c, b, h0);
    const int nrows = s0.sq * (FV_GQA ? group : 1);
    const int g_last = min(g0 + BLOCK_ROWS, nrows) - 1;

    /* Query rows grow with the virtual row, so the group's keys are bounded
     * by its first and last rows. */
    int lo = g0 < nrows ? clattn_key_lo(c, &s0, QROW(g0)) : 0;
    int hi = g0 < nrows ? clattn_key_hi(c, &s0, QROW(g_last)) : 0;
#if SPLIT_KV
    const int split = get_group_id(2), nsplit = get_num_groups(2);
    clattn_split_range(split, keys_per_split, seq_kv, &lo, &hi);
#else
    const int split = 0, nsplit = 1;
#endif

    /* Each row: its head, visible keys, scaled query (zero past HEAD_DIM),
     * accumulators and softmax state. */
    const float qscale = clattn_qscale(c, CLATTN_LOG2E);
    float qr[FV_ROWS][DK_PAD];
    vec_t acc[FV_ROWS][DV_VECS];
    float m[FV_ROWS];
    vec_t l[FV_ROWS]; /* each row's sum, spread over the lanes (row_probs) */
    int rlo[FV_ROWS], rhi[FV_ROWS], qi[FV_ROWS];
    clattn_seq rs[FV_ROWS];
    for (int r = 0; r < FV_ROWS; ++r) {
        const bool ok = row0 + r < nrows;
        const int vr = ok ? row0 + r : 0;
        const int i = QROW(vr);
        qi[r] = QROW(row0 + r);
        rs[r] = FV_GQA ? clattn_seq_of(c, b, QHEAD(vr)) : s0;
        rlo[r] = ok ? clattn_key_lo(c, &s0, i) : 0;
        rhi[r] = ok ? clattn_key_hi(c, &s0, i) : 0;
#if SPLIT_KV
        clattn_split_range(split, keys_per_split, seq_kv, &rlo[r], &rhi[r]);
#endif
        const long qoff = rs[r].q + (long)i * qss;
        for (int d = 0; d < DK_PAD; ++d)
            qr[r][K_SPLIT ? clattn_split_pos(d, FV_VEC) : d] =
                ok && d < HEAD_DIM ? LOAD(q, qoff + d) * qscale : 0.0f;
        for (int cc = 0; cc < DV_VECS; ++cc)
            acc[r][cc] = (vec_t)(0.0f);
        float l0;
        clattn_softmax_init(&rs[r], CLATTN_LOG2E, !SPLIT_KV, &m[r], &l0);
        l[r] = (vec_t)(0.0f);
        l[r].s0 = l0;
    }

#if K_IDOT
    /* The rows as 16-bit integers: q ~ qd * qq, the largest |q| of the row
     * at 32767 (written as m 2^e, so no step overflows or divides by a
     * subnormal). A row with a NaN or an infinity gets a NaN step: its
     * scores are NaN, as the fp32 products would make them. */
    fv_sw qq[FV_ROWS][IQ_VECS];
    float qd[FV_ROWS];
    for (int r = 0; r < FV_ROWS; ++r) {
        float mx = 0.0f, z = 0.0f;
        for (int d = 0; d < HEAD_DIM; ++d) {
            mx = fmax(mx, fabs(qr[r][d]));
            z += qr[r][d] * 0.0f;
        }
        int e = 0;
        const float mant = mx > 0.0f && z == 0.0f ? fv_frexp(mx, &e) : 1.0f;
        for (int c2 = 0; c2 < IQ_VECS; ++c2)
            qq[r][c2] = fv_q_words(qr[r] + c2 * 2 * FV_VEC, -e, 32767.0f / mant);
        qd[r] = ldexp(mant / 32767.0f, e) + z;
    }
#endif
#if FV_DIRECT
    vec_t s[FV_ROWS]; /* the scores of the tile ahead (tile_step) */
#if PAGED
    /* Where a page holds FV_VEC keys or more, every tile aligned to FV_VEC
     * keys lies inside one page, the last one's clamped keys too. The keys
     * before lo the alignment adds are in lo's page and hidden from every
     * row. */
    if (c->pshift >= LOG_VEC) {
        const int first = lo < hi ? lo & ~(FV_VEC - 1) : lo;
        for (int n0 = first - FV_VEC; n0 < hi; n0 += FV_VEC)
            tile_step(c, &s0, k, v, n0, first, hi, 1, qr, s, rs, qi, rlo, rhi, m, l, acc IQ_ARG);
    } else
#endif
        for (int n0 = lo - FV_VEC; n0 < hi; n0 += FV_VEC)
            tile_step(c, &s0, k, v, n0, lo, hi, 0, qr, s, rs, qi, rlo, rhi, m, l, acc IQ_ARG);
#else
    for (int n0 = lo; n0 < hi; n0 += FV_VEC) {
        vec_t s[FV_ROWS];
        stage_tile(c, &s0, k, v, n0, hi, lid, kt, vt);
        scores_staged(kt, qr, s);
        float pj[FV_ROWS][FV_VEC];
        int kind[FV_ROWS];
        for (int r = 0; r < FV_ROWS; ++r)
            kind[r] = row_probs(c, &rs[r], s[r], qi[r], n0, s0.L, rlo[r], rhi[r], &m[r], &l[r],
                                acc[r], pj[r]);
        pv_update(V_ARGS, n0, kind, pj, acc);
    }
#endif

    for (int r = 0; r < FV_ROWS && row0 + r < nrows; ++r) {
        float out[DV_PAD];
#if V_SPLIT /* the accumulators hold V's split order */
        float held[DV_PAD];
        for (int cc = 0; cc < DV_VECS; ++cc)
            VSTORE(acc[r][cc], cc, held);
        for (int d = 0; d < DV_PAD; ++d)
            out[d] = held[clattn_split_pos(d, FV_VEC)];
#else
        for (int cc = 0; cc < DV_VECS; ++cc)
            VSTORE(acc[r][cc], cc, out);
#endif
        clattn_store_row(c, &rs[r], b, QHEAD(row0 + r), QROW(row0 + r), split, nsplit, out, m[r],
                         hsum(l[r]), o, lse, part_o, part_ml);
    }
}
