/*
 * Three-stage path, stage 3: O = P * V for a chunk of rows, written to O in
 * the caller's dtype and strides. A group computes an AV_TM x AV_TN tile of
 * O (rows x value dims), one element per work-item, stepping over the keys
 * AV_TK at a time through local memory. Only the keys some row of the group
 * can see are visited, so V past kv_lens[b] is never read.
 *
 * Grid: (ceil(head_dim_v / AV_TN) * AV_TN, ceil(nrows / AV_TM) * AV_TM, nbh),
 * local (AV_TN, AV_TM, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef AV_TM
#define AV_TM 16
#endif
#ifndef AV_TN
#define AV_TN 16
#endif
#ifndef AV_TK
#define AV_TK 16
#endif

kernel __attribute__((reqd_work_group_size(AV_TN, AV_TM, 1))) void attn_av(
    global const float *probs, global const store_t *v, global store_t *o,
    global const int *kv_lens, int heads, int group, int seq_q, int seq_kv, int row0,
    int nrows, int bh0, int causal, int windowed, int wl, int wr, int has_kvl, long vsb,
    long vsh, long vss, long osb, long osh, long oss)
{
    local float pt[AV_TM][AV_TK + 1];
    local float vt[AV_TK][AV_TN + 1];

    const int tx = get_local_id(0), ty = get_local_id(1);
    const int d0 = get_group_id(0) * AV_TN, r0 = get_group_id(1) * AV_TM;
    const int d = d0 + tx, il = r0 + ty;
    const int bhl = get_group_id(2), bh = bh0 + bhl;
    const int b = bh / heads, h = bh - b * heads, kh = h / group;
    const int L = clattn_kv_len(kv_lens, has_kvl, b, seq_kv);
    const int r_last = min(r0 + AV_TM, nrows) - 1;
    const int lo = clattn_key_lo(row0 + r0, L, seq_q, windowed, wl);
    const int hi = clattn_key_hi(row0 + r_last, L, seq_q, causal, windowed, wr);

    const long vbase = b * vsb + kh * vsh;
    const int lin = ty * AV_TN + tx;
    float acc = 0.0f;
    for (int k0 = lo; k0 < hi; k0 += AV_TK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = lin; t < AV_TM * AV_TK; t += AV_TM * AV_TN) {
            const int r = t / AV_TK, c = t - r * AV_TK;
            pt[r][c] = (r0 + r < nrows && k0 + c < hi)
                           ? probs[((long)bhl * nrows + r0 + r) * seq_kv + k0 + c]
                           : 0.0f;
        }
        for (int t = lin; t < AV_TK * AV_TN; t += AV_TM * AV_TN) {
            const int r = t / AV_TN, c = t - r * AV_TN;
            vt[r][c] = (k0 + r < hi && d0 + c < HEAD_DIM_V)
                           ? LOAD(v, vbase + (long)(k0 + r) * vss + d0 + c)
                           : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int c = 0; c < AV_TK; ++c) {
            const float p = pt[ty][c];
            /* A key of probability 0 contributes nothing, even a NaN V. */
            acc += p != 0.0f ? p * vt[c][tx] : 0.0f;
        }
    }

    if (il < nrows && d < HEAD_DIM_V)
        STORE(o, b * osb + h * osh + (long)(row0 + il) * oss + d, acc);
}
