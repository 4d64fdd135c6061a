/*
 * Three-stage path, stage 1: scores S = scale * Q * K^T + mask for a chunk of
 * nrows query rows (from row0) of nbh heads (from bh0), with every key a row
 * cannot see set to -inf. S is [nbh][nrows][seq_kv] fp32.
 *
 * Written for devices that vectorise inside a work-item (CPUs under PoCL):
 * a work-group owns a tile of QK_CV * QK_VEC keys of one head, holds it
 * transposed in local memory (one vector of keys per head-dim element), and
 * walks all the chunk's rows over it, so each K element is loaded and
 * transposed once per chunk rather than once per block of rows. Each
 * work-item computes QK_ROWS rows x QK_CV vectors of keys at a time: as many
 * independent vector accumulators, fed by one broadcast Q element per row
 * and one vector load per key vector. The QK_WG work-items of a group share
 * the tile and take turns over the row blocks.
 *
 * Grid: (ceil(seq_kv / (QK_CV * QK_VEC)) * QK_WG, 1, nbh), local (QK_WG, 1, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef QK_WG
#define QK_WG 1
#endif
#ifndef QK_ROWS
#define QK_ROWS 2
#endif
#ifndef QK_VEC
#define QK_VEC 16
#endif
#ifndef QK_CV
#define QK_CV 4
#endif

#if QK_VEC != 4 && QK_VEC != 8 && QK_VEC != 16
#error "QK_VEC must be 4, 8 or 16"
#endif
#define qvec_t CLATTN_CAT(float, QK_VEC)
#define QVLOAD CLATTN_CAT(vload, QK_VEC)
#define QVSTORE CLATTN_CAT(vstore, QK_VEC)
#define TILE_KEYS (QK_CV * QK_VEC)

#define qk_score_v CLATTN_CAT(clattn_score_v, QK_VEC)

kernel CLATTN_WG_SIZE(QK_WG) void attn_qk(
    CLATTN_CALL_PARAMS, global float *scores, int row0, int nrows, int bh0)
{
    local float kt[HEAD_DIM * TILE_KEYS]; /* kt[d * TILE_KEYS + key] */

    const clattn_call call = CLATTN_CALL_INIT;
    const clattn_call *c = &call;
    const int lid = get_local_id(0);
    const int j0 = get_group_id(0) * TILE_KEYS;
    const int bhl = get_group_id(2), bh = bh0 + bhl;
    const int b = bh / heads, h = bh - b * heads;
    const clattn_seq sq = clattn_seq_of(c, b, h);
    const clattn_seq *s = &sq;
    const int nkeys = min(TILE_KEYS, seq_kv - j0); /* of this tile that exist */
    /* Rows of the chunk that exist in this sequence (all but with VARLEN). */
    const int nreal = clamp(s->sq - row0, 0, nrows);

    /* Key bounds never fall as the row grows, so the chunk's first and last
     * rows bound which keys any of its rows sees. */
    const bool any_seen = nreal > 0 && j0 < clattn_key_hi(c, s, row0 + nreal - 1) &&
                          j0 + TILE_KEYS > clattn_key_lo(c, s, row0);
    if (any_seen) {
        /* Keys past the sequence's length are masked anyway and are not
         * read: with VARLEN the last sequence's lie past the packed K, and
         * paged ones may sit in pages the sequence never references. */
        const int nread = min(nkeys, s->L - j0);
        for (int t = lid; t < TILE_KEYS * HEAD_DIM; t += QK_WG) {
            const int key = t / HEAD_DIM, d = t - key * HEAD_DIM;
            kt[d * TILE_KEYS + key] =
                key < nread ? clattn_k1(c, clattn_k_row(c, s, j0 + key), d) : 0.0f;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    const float qscale = clattn_qscale(c, 1.0f);
    for (int r0 = lid * QK_ROWS; r0 < nrows; r0 += QK_WG * QK_ROWS) {
        const int r_last = min(r0 + QK_ROWS, nreal) - 1;
        /* Keys the block's rows see at most / all of them see. */
        const bool rows_real = r0 < nreal;
        const int lo_any = rows_real ? clattn_key_lo(c, s, row0 + r0) : 0;
        const int hi_any = rows_real ? clattn_key_hi(c, s, row0 + r_last) : 0;
        const int lo_all = rows_real ? clattn_key_lo(c, s, row0 + r_last) : 0;
        const int hi_all = rows_real ? clattn_key_hi(c, s, row0 + r0) : 0;
        const bool seen = any_seen && rows_real && j0 < hi_any && j0 + TILE_KEYS > lo_any;

        qvec_t acc[QK_ROWS][QK_CV];
#pragma unroll
        for (int r = 0; r < QK_ROWS; ++r)
#pragma unroll
            for (int cv = 0; cv < QK_CV; ++cv)
                acc[r][cv] = (qvec_t)(0.0f);
        if (seen) {
            long qoff[QK_ROWS]; /* rows past the real ones repeat the last, unstored */
#pragma unroll
            for (int r = 0; r < QK_ROWS; ++r)
                qoff[r] = s->q + (long)(row0 + min(r0 + r, r_last)) * qss;
            for (int d = 0; d < HEAD_DIM; ++d) {
                qvec_t kv[QK_CV];
#pragma unroll
                for (int cv = 0; cv < QK_CV; ++cv)
                    kv[cv] = QVLOAD(0, kt + d * TILE_KEYS + cv * QK_VEC);
#pragma unroll
                for (int r = 0; r < QK_ROWS; ++r) {
                    const qvec_t qd = (qvec_t)(LOAD(q, qoff[r] + d));
#pragma unroll
                    for (int cv = 0; cv < QK_CV; ++cv)
                        acc[r][cv] = fma(qd, kv[cv], acc[r][cv]);
                }
            }
        }
        /* Tiles every row of the block sees whole (and that exist whole) go
         * out as vectors; the rest element by element, hiding what a row
         * cannot see (including keys past kv_lens, whatever K holds there). */
        const bool whole = seen && lo_all <= j0 && j0 + TILE_KEYS <= hi_all && nkeys == TILE_KEYS;
        for (int r = 0; r < QK_ROWS && r0 + r < nrows; ++r) {
            const int i = row0 + r0 + r;
            global float *srow = scores + ((long)bhl * nrows + r0 + r) * seq_kv + j0;
            if (!seen || r0 + r >= nreal) {
                for (int e = 0; e < nkeys; ++e)
                    srow[e] = -INFINITY;
                continue;
            }
            qvec_t x[QK_CV];
            for (int cv = 0; cv < QK_CV; ++cv) {
                x[cv] = acc[r][cv] * qscale;
#if CLATTN_SCORE_STEPS
                x[cv] = qk_score_v(c, s, x[cv], i, j0 + cv * QK_VEC, s->L, 1.0f);
#endif
            }
            if (whole) {
                for (int cv = 0; cv < QK_CV; ++cv)
                    QVSTORE(x[cv], cv, srow);
            } else {
                const int lo = clattn_key_lo(c, s, i) - j0;
                const int hi = clattn_key_hi(c, s, i) - j0;
                float t[TILE_KEYS];
                for (int cv = 0; cv < QK_CV; ++cv)
                    QVSTORE(x[cv], cv, t);
                for (int e = 0; e < nkeys; ++e)
                    srow[e] = e < lo || e >= hi ? -INFINITY : t[e];
            }
        }
    }
}
