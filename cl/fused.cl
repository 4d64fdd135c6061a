/*
 * Fused attention: FlashAttention-style online softmax in one kernel, O(seq)
 * memory. One work-item owns one query row; the BLOCK_M work-items of a group
 * load each tile of BLOCK_N keys (K and V, widened to fp32) into local memory
 * together and share it. Scores are kept in log2 units (q pre-scaled by
 * scale*log2(e)) so the exponentials are exp2.
 *
 * With SPLIT_KV=1 the same kernel computes one partition of the keys
 * (grid dimension 2) and writes the unnormalised accumulator with its row max
 * and sum to part_o / part_ml for attn_splitkv_combine.
 *
 * Grid: (ceil(seq_q / BLOCK_M) * BLOCK_M, batch * heads, splits),
 * local (BLOCK_M, 1, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef BLOCK_M
#define BLOCK_M 16
#endif
#ifndef BLOCK_N
#define BLOCK_N 16
#endif
#ifndef SPLIT_KV
#define SPLIT_KV 0
#endif

kernel CLATTN_WG_SIZE(BLOCK_M) void attn_fwd_fused(
    CLATTN_CALL_PARAMS, int keys_per_split, global float *part_o, global float *part_ml)
{
    local float ks[BLOCK_N][HEAD_DIM];
    local float vs[BLOCK_N][HEAD_DIM_V];

    const clattn_call call = CLATTN_CALL_INIT;
    const clattn_call *c = &call;
    const int lid = get_local_id(0);
    const int i0 = get_group_id(0) * BLOCK_M;
    const int i = i0 + lid;
    const int bh = get_group_id(1);
    const int b = bh / heads, h = bh - b * heads;
    const clattn_seq sq = clattn_seq_of(c, b, h);
    const clattn_seq *s = &sq;
    const bool row_ok = i < s->sq;
    const int i_last = min(i0 + BLOCK_M, s->sq) - 1;

    /* Keys any row of the group may see: tiles outside are never loaded. */
    int lo = i0 < s->sq ? clattn_key_lo(c, s, i0) : 0;
    int hi = i0 < s->sq ? clattn_key_hi(c, s, i_last) : 0;
    int my_lo = row_ok ? clattn_key_lo(c, s, i) : 0;
    int my_hi = row_ok ? clattn_key_hi(c, s, i) : 0;
#if SPLIT_KV
    const int split = get_group_id(2), nsplit = get_num_groups(2);
    clattn_split_range(split, keys_per_split, seq_kv, &lo, &hi);
    clattn_split_range(split, keys_per_split, seq_kv, &my_lo, &my_hi);
#else
    const int split = 0, nsplit = 1;
#endif

    const int ir = row_ok ? i : 0; /* rows past the end read row 0, unstored */
    const long qoff = s->q + (long)ir * qss;
    const float qscale = clattn_qscale(c, CLATTN_LOG2E);

    float qr[HEAD_DIM];
    for (int d = 0; d < HEAD_DIM; ++d)
        qr[d] = row_ok ? LOAD(q, qoff + d) * qscale : 0.0f;
    float acc[HEAD_DIM_V];
    for (int d = 0; d < HEAD_DIM_V; ++d)
        acc[d] = 0.0f;
    float m, l;
    clattn_softmax_init(s, CLATTN_LOG2E, !SPLIT_KV, &m, &l);

    for (int n0 = lo; n0 < hi; n0 += BLOCK_N) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = lid; t < BLOCK_N * HEAD_DIM; t += BLOCK_M) {
            const int jj = t / HEAD_DIM, d = t - jj * HEAD_DIM;
            ks[jj][d] = n0 + jj < hi ? clattn_k1(c, clattn_k_row(c, s, n0 + jj), d) : 0.0f;
        }
        for (int t = lid; t < BLOCK_N * HEAD_DIM_V; t += BLOCK_M) {
            const int jj = t / HEAD_DIM_V, d = t - jj * HEAD_DIM_V;
            vs[jj][d] = n0 + jj < hi ? clattn_v1(c, clattn_v_row(c, s, n0 + jj), d) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        float sc[BLOCK_N];
        float tmax = -INFINITY;
        for (int jj = 0; jj < BLOCK_N; ++jj) {
            const int j = n0 + jj;
            float x = -INFINITY;
            if (j >= my_lo && j < my_hi) {
                float dot = 0.0f;
                for (int d = 0; d < HEAD_DIM; ++d)
                    dot = mad(qr[d], ks[jj][d], dot);
                x = clattn_score(c, s, dot, ir, j, CLATTN_LOG2E);
            }
            sc[jj] = x;
            tmax = clattn_max_nan(tmax, x);
        }
        const float m_new = clattn_max_nan(m, tmax);
        if (m_new != -INFINITY) {
            /* m == -inf (nothing seen yet) gives a factor of exactly 0. */
            const float corr = exp2(m - m_new);
            l *= corr;
            for (int d = 0; d < HEAD_DIM_V; ++d)
                acc[d] *= corr;
            for (int jj = 0; jj < BLOCK_N; ++jj) {
                const float p = exp2(sc[jj] - m_new);
                l += p;
                /* A key of probability 0 contributes nothing, even a NaN V. */
                if (p != 0.0f)
                    for (int d = 0; d < HEAD_DIM_V; ++d)
                        acc[d] = mad(p, vs[jj][d], acc[d]);
            }
            m = m_new;
        }
    }

    if (row_ok)
        clattn_store_row(c, s, b, h, i, split, nsplit, acc, m, l, o, lse, part_o, part_ml);
}
