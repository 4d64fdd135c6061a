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

kernel __attribute__((reqd_work_group_size(QK_WG, 1, 1))) void attn_qk(
    global const store_t *q, global const store_t *k, global const float *mask,
    global const int *kv_lens, global float *scores, int heads, int group, int seq_q,
    int seq_kv, int row0, int nrows, int bh0, float scale, int causal, int windowed, int wl,
    int wr, int has_mask, int has_kvl, long qsb, long qsh, long qss, long ksb, long ksh,
    long kss, long msb, long msh)
{
    local float kt[HEAD_DIM * TILE_KEYS]; /* kt[d * TILE_KEYS + key] */

    const int lid = get_local_id(0);
    const int j0 = get_group_id(0) * TILE_KEYS;
    const int bhl = get_group_id(2), bh = bh0 + bhl;
    const int b = bh / heads, h = bh - b * heads, kh = h / group;
    const int L = clattn_kv_len(kv_lens, has_kvl, b, seq_kv);
    const int nkeys = min(TILE_KEYS, seq_kv - j0); /* of this tile that exist */

    /* Key bounds never fall as the row grows, so the chunk's first and last
     * rows bound which keys any of its rows sees. */
    const bool any_seen = j0 < clattn_key_hi(row0 + nrows - 1, L, seq_q, causal, windowed, wr) &&
                          j0 + TILE_KEYS > clattn_key_lo(row0, L, seq_q, windowed, wl);
    if (any_seen) {
        const long kbase = b * ksb + kh * ksh + (long)j0 * kss;
        for (int t = lid; t < TILE_KEYS * HEAD_DIM; t += QK_WG) {
            const int key = t / HEAD_DIM, d = t - key * HEAD_DIM;
            kt[d * TILE_KEYS + key] = key < nkeys ? LOAD(k, kbase + (long)key * kss + d) : 0.0f;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    const long qbase = b * qsb + h * qsh;
    for (int r0 = lid * QK_ROWS; r0 < nrows; r0 += QK_WG * QK_ROWS) {
        const int r_last = min(r0 + QK_ROWS, nrows) - 1;
        /* Keys the block's rows see at most / all of them see. */
        const int lo_any = clattn_key_lo(row0 + r0, L, seq_q, windowed, wl);
        const int hi_any = clattn_key_hi(row0 + r_last, L, seq_q, causal, windowed, wr);
        const int lo_all = clattn_key_lo(row0 + r_last, L, seq_q, windowed, wl);
        const int hi_all = clattn_key_hi(row0 + r0, L, seq_q, causal, windowed, wr);
        const bool seen = any_seen && j0 < hi_any && j0 + TILE_KEYS > lo_any;

        qvec_t acc[QK_ROWS][QK_CV];
#pragma unroll
        for (int r = 0; r < QK_ROWS; ++r)
#pragma unroll
            for (int c = 0; c < QK_CV; ++c)
                acc[r][c] = (qvec_t)(0.0f);
        if (seen) {
            long qoff[QK_ROWS]; /* rows past the chunk repeat its last row, unstored */
#pragma unroll
            for (int r = 0; r < QK_ROWS; ++r)
                qoff[r] = qbase + (long)(row0 + min(r0 + r, nrows - 1)) * qss;
            for (int d = 0; d < HEAD_DIM; ++d) {
                qvec_t kv[QK_CV];
#pragma unroll
                for (int c = 0; c < QK_CV; ++c)
                    kv[c] = QVLOAD(0, kt + d * TILE_KEYS + c * QK_VEC);
#pragma unroll
                for (int r = 0; r < QK_ROWS; ++r) {
                    const qvec_t qd = (qvec_t)(LOAD(q, qoff[r] + d));
#pragma unroll
                    for (int c = 0; c < QK_CV; ++c)
                        acc[r][c] = fma(qd, kv[c], acc[r][c]);
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
            global const float *mrow = mask + b * msb + h * msh + (long)i * seq_kv + j0;
            if (whole) {
                for (int c = 0; c < QK_CV; ++c) {
                    qvec_t s = acc[r][c] * scale;
                    if (has_mask)
                        s += QVLOAD(c, mrow);
                    QVSTORE(s, c, srow);
                }
            } else if (!seen) {
                for (int e = 0; e < nkeys; ++e)
                    srow[e] = -INFINITY;
            } else {
                const int lo = clattn_key_lo(i, L, seq_q, windowed, wl) - j0;
                const int hi = clattn_key_hi(i, L, seq_q, causal, windowed, wr) - j0;
                float s[TILE_KEYS];
                for (int c = 0; c < QK_CV; ++c)
                    QVSTORE(acc[r][c] * scale, c, s);
                for (int e = 0; e < nkeys; ++e)
                    srow[e] = e < lo || e >= hi ? -INFINITY : has_mask ? s[e] + mrow[e] : s[e];
            }
        }
    }
}
