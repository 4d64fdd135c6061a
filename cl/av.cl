/*
 * Three-stage path, stage 3: O = P * V for a chunk of rows, written to O in
 * the caller's dtype and strides.
 *
 * Written for devices that vectorise inside a work-item (CPUs under PoCL):
 * each work-item computes AV_ROWS rows x AV_CV vectors of AV_VEC value
 * dimensions, as many independent vector accumulators, fed per key by one
 * broadcast probability per row and one vector load of V per vector of
 * dimensions. V rows are contiguous along the value dimensions, so they are
 * read straight from global memory (no tile, no barrier). Only the keys some
 * row of the block can see are visited, so V past kv_lens[b] is never read.
 * The AV_WG work-items of a group take consecutive row blocks.
 *
 * Grid: (ceil(nrows / (AV_WG * AV_ROWS)) * AV_WG,
 *        ceil(head_dim_v / (AV_CV * AV_VEC)), nbh), local (AV_WG, 1, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef AV_WG
#define AV_WG 1
#endif
#ifndef AV_ROWS
#define AV_ROWS 4
#endif
#ifndef AV_VEC
#define AV_VEC 16
#endif
#ifndef AV_CV
#define AV_CV 4
#endif

#if AV_VEC != 4 && AV_VEC != 8 && AV_VEC != 16
#error "AV_VEC must be 4, 8 or 16"
#endif
#define avec_t CLATTN_CAT(float, AV_VEC)
#define AVSTORE CLATTN_CAT(vstore, AV_VEC)
#define BLOCK_DV (AV_CV * AV_VEC)

/* AV_VEC consecutive elements of V from element i on, as fp32. */
inline avec_t load_v(global const store_t *v, long i)
{
#if DTYPE == 0
    return CLATTN_CAT(vload, AV_VEC)(0, v + i);
#elif DTYPE == 1
    return CLATTN_CAT(clattn_half_at, AV_VEC)((global const ushort *)v + i);
#else
    return CLATTN_CAT(as_float, AV_VEC)(CLATTN_CAT(convert_uint, AV_VEC)(CLATTN_CAT(vload, AV_VEC)(0, v + i))
                                     << 16);
#endif
}

/* The same for the last, partial vector of a row: elements from n on are 0. */
inline avec_t load_v_part(global const store_t *v, long i, int n)
{
    float t[AV_VEC];
    for (int e = 0; e < AV_VEC; ++e)
        t[e] = e < n ? LOAD(v, i + e) : 0.0f;
    return CLATTN_CAT(vload, AV_VEC)(0, t);
}

/* acc += P[rows][lo..hi) * V[lo..hi)[the block's dims], with nfull whole
 * vectors and a partial one of tail dims; called with constants for the
 * common case so that copy keeps V in registers. */
__attribute__((always_inline)) inline void accumulate(
    avec_t acc[AV_ROWS][AV_CV], global const float *const *pr, const clattn_call *cl,
    const clattn_seq *s, global const vstore_t *v, int dv0, int lo, int hi, int nfull, int tail)
{
#if CLATTN_KV_PLAIN
    global const store_t *vp = v + s->v + dv0;
#endif
    for (int j = lo; j < hi; ++j) {
        float p[AV_ROWS];
        bool all = true;
#pragma unroll
        for (int r = 0; r < AV_ROWS; ++r) {
            p[r] = pr[r][j];
            all = all && p[r] != 0.0f;
        }
        avec_t vv[AV_CV];
#if CLATTN_KV_PLAIN
        const long vj = (long)j * cl->vss;
#pragma unroll
        for (int c = 0; c < AV_CV; ++c)
            vv[c] = c < nfull                ? load_v(vp, vj + c * AV_VEC)
                    : c == nfull && tail > 0 ? load_v_part(vp, vj + c * AV_VEC, tail)
                                             : (avec_t)(0.0f);
#else
        /* Paged or converted storage: the row's place and scales per key. */
        const clattn_kvrow vr = clattn_v_row(cl, s, j);
#pragma unroll
        for (int c = 0; c < AV_CV; ++c)
            vv[c] = c < nfull || (c == nfull && tail > 0)
                        ? clattn_v_vec(AV_VEC, cl, vr, dv0 + c * AV_VEC, c < nfull ? AV_VEC : tail)
                        : (avec_t)(0.0f);
#endif
        if (all) {
#pragma unroll
            for (int r = 0; r < AV_ROWS; ++r)
#pragma unroll
                for (int c = 0; c < AV_CV; ++c)
                    acc[r][c] = fma((avec_t)(p[r]), vv[c], acc[r][c]);
        } else {
            /* A key of probability 0 contributes nothing, even a NaN V. */
#pragma unroll
            for (int r = 0; r < AV_ROWS; ++r)
                if (p[r] != 0.0f)
#pragma unroll
                    for (int c = 0; c < AV_CV; ++c)
                        acc[r][c] = fma((avec_t)(p[r]), vv[c], acc[r][c]);
        }
    }
}

kernel CLATTN_WG_SIZE(AV_WG) void attn_av(
    CLATTN_CALL_PARAMS, global const float *probs, int row0, int nrows, int bh0)
{
    const clattn_call call = CLATTN_CALL_INIT;
    const int r0 = get_global_id(0) * AV_ROWS;
    const int dv0 = get_group_id(1) * BLOCK_DV;
    const int bhl = get_group_id(2), bh = bh0 + bhl;
    const int b = bh / heads, h = bh - b * heads;
    const clattn_seq s = clattn_seq_of(&call, b, h);
    /* Rows of the chunk that exist in this sequence (all but with VARLEN). */
    const int nreal = clamp(s.sq - row0, 0, nrows);
    if (r0 >= nreal)
        return;
    const int r_last = min(r0 + AV_ROWS, nreal) - 1;
    const int lo = clattn_key_lo(&call, &s, row0 + r0);
    const int hi = clattn_key_hi(&call, &s, row0 + r_last);

    global const float *pr[AV_ROWS]; /* rows past the chunk repeat its last row, unstored */
#pragma unroll
    for (int r = 0; r < AV_ROWS; ++r)
        pr[r] = probs + ((long)bhl * nrows + min(r0 + r, r_last)) * seq_kv;
    /* Vectors of the block wholly inside head_dim_v; past them one partial. */
    const int nfull = min(AV_CV, (HEAD_DIM_V - dv0) / AV_VEC);
    const int tail = HEAD_DIM_V - dv0 - nfull * AV_VEC;

    avec_t acc[AV_ROWS][AV_CV];
#pragma unroll
    for (int r = 0; r < AV_ROWS; ++r)
#pragma unroll
        for (int c = 0; c < AV_CV; ++c)
            acc[r][c] = (avec_t)(0.0f);

    if (nfull == AV_CV)
        accumulate(acc, pr, &call, &s, v, dv0, lo, hi, AV_CV, 0);
    else
        accumulate(acc, pr, &call, &s, v, dv0, lo, hi, nfull, tail);

    for (int r = 0; r < AV_ROWS && r0 + r <= r_last; ++r) {
        float out[BLOCK_DV];
        for (int c = 0; c < AV_CV; ++c)
            AVSTORE(acc[r][c], c, out);
        const long ooff = s.o + (long)(row0 + r0 + r) * oss + dv0;
        for (int e = 0; e < BLOCK_DV && dv0 + e < HEAD_DIM_V; ++e)
            STORE(o, ooff + e, out[e]);
    }
}
