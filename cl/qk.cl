/*
 * Three-stage path, stage 1: scores S = scale * Q * K^T + mask for a chunk of
 * nrows query rows (from row0) of nbh heads (from bh0), with every key a row
 * cannot see set to -inf. S is [nbh][nrows][seq_kv] fp32.
 *
 * A group computes a QK_TM x QK_TN tile of S, one element per work-item,
 * stepping over head_dim QK_TK at a time through local memory (zero padded
 * past head_dim). Tiles no row of the group can see skip the products.
 *
 * Grid: (ceil(seq_kv / QK_TN) * QK_TN, ceil(nrows / QK_TM) * QK_TM, nbh),
 * local (QK_TN, QK_TM, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef QK_TM
#define QK_TM 16
#endif
#ifndef QK_TN
#define QK_TN 16
#endif
#ifndef QK_TK
#define QK_TK 16
#endif

kernel __attribute__((reqd_work_group_size(QK_TN, QK_TM, 1))) void attn_qk(
    global const store_t *q, global const store_t *k, global const float *mask,
    global const int *kv_lens, global float *scores, int heads, int group, int seq_q,
    int seq_kv, int row0, int nrows, int bh0, float scale, int causal, int windowed, int wl,
    int wr, int has_mask, int has_kvl, long qsb, long qsh, long qss, long ksb, long ksh,
    long kss, long msb, long msh)
{
    /* +1 column: neighbouring work-items read different banks on GPUs. */
    local float qt[QK_TM][QK_TK + 1];
    local float kt[QK_TN][QK_TK + 1];

    const int tx = get_local_id(0), ty = get_local_id(1);
    const int j0 = get_group_id(0) * QK_TN, r0 = get_group_id(1) * QK_TM;
    const int j = j0 + tx, il = r0 + ty, i = row0 + il;
    const int bhl = get_group_id(2), bh = bh0 + bhl;
    const int b = bh / heads, h = bh - b * heads, kh = h / group;
    const int L = clattn_kv_len(kv_lens, has_kvl, b, seq_kv);
    const int r_last = min(r0 + QK_TM, nrows) - 1;

    const int lo = clattn_key_lo(row0 + r0, L, seq_q, windowed, wl);
    const int hi = clattn_key_hi(row0 + r_last, L, seq_q, causal, windowed, wr);
    const bool tile_seen = j0 < hi && j0 + QK_TN > lo;

    float acc = 0.0f;
    if (tile_seen) {
        const long qbase = b * qsb + h * qsh;
        const long kbase = b * ksb + kh * ksh;
        const int lin = ty * QK_TN + tx;
        for (int d0 = 0; d0 < HEAD_DIM; d0 += QK_TK) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int t = lin; t < QK_TM * QK_TK; t += QK_TM * QK_TN) {
                const int r = t / QK_TK, c = t - r * QK_TK;
                const int row = r0 + r;
                qt[r][c] = (row < nrows && d0 + c < HEAD_DIM)
                               ? LOAD(q, qbase + (long)(row0 + row) * qss + d0 + c)
                               : 0.0f;
            }
            for (int t = lin; t < QK_TN * QK_TK; t += QK_TM * QK_TN) {
                const int r = t / QK_TK, c = t - r * QK_TK;
                const int key = j0 + r;
                kt[r][c] = (key < seq_kv && d0 + c < HEAD_DIM)
                               ? LOAD(k, kbase + (long)key * kss + d0 + c)
                               : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int c = 0; c < QK_TK; ++c)
                acc = mad(qt[ty][c], kt[tx][c], acc);
        }
    }

    if (il >= nrows || j >= seq_kv)
        return;
    float s = -INFINITY;
    if (tile_seen && j >= clattn_key_lo(i, L, seq_q, windowed, wl) &&
        j < clattn_key_hi(i, L, seq_q, causal, windowed, wr)) {
        s = acc * scale;
        if (has_mask)
            s += mask[b * msb + h * msh + (long)i * seq_kv + j];
    }
    scores[((long)bhl * nrows + il) * seq_kv + j] = s;
}
