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

kernel __attribute__((reqd_work_group_size(BLOCK_M, 1, 1))) void attn_fwd_fused(
    global const store_t *q, global const store_t *k, global const store_t *v, global store_t *o,
    global const float *mask, global const int *kv_lens, global float *lse, int heads, int group,
    int seq_q, int seq_kv, float scale, int causal, int windowed, int wl, int wr, int has_mask,
    int has_kvl, int has_lse, long qsb, long qsh, long qss, long ksb, long ksh, long kss, long vsb,
    long vsh, long vss, long osb, long osh, long oss, long msb, long msh, int keys_per_split,
    global float *part_o, global float *part_ml)
{
    local float ks[BLOCK_N][HEAD_DIM];
    local float vs[BLOCK_N][HEAD_DIM_V];

    const int lid = get_local_id(0);
    const int i0 = get_group_id(0) * BLOCK_M;
    const int i = i0 + lid;
    const int bh = get_group_id(1);
    const int b = bh / heads, h = bh - b * heads, kh = h / group;
    const int L = clattn_kv_len(kv_lens, has_kvl, b, seq_kv);
    const int i_last = min(i0 + BLOCK_M, seq_q) - 1;
    const bool row_ok = i < seq_q;

    /* Keys any row of the group may see: tiles outside are never loaded. */
    int lo = clattn_key_lo(i0, L, seq_q, windowed, wl);
    int hi = clattn_key_hi(i_last, L, seq_q, causal, windowed, wr);
    int my_lo = row_ok ? clattn_key_lo(i, L, seq_q, windowed, wl) : 0;
    int my_hi = row_ok ? clattn_key_hi(i, L, seq_q, causal, windowed, wr) : 0;
#if SPLIT_KV
    const int split = get_group_id(2), nsplit = get_num_groups(2);
    const int s0 = split * keys_per_split;
    const int s1 = (int)min((long)s0 + keys_per_split, (long)seq_kv);
    lo = max(lo, s0);
    hi = min(hi, s1);
    my_lo = max(my_lo, s0);
    my_hi = min(my_hi, s1);
#endif

    const long qoff = b * qsb + h * qsh + (long)min(i, seq_q - 1) * qss;
    const long koff = b * ksb + kh * ksh;
    const long voff = b * vsb + kh * vsh;
    const long moff = b * msb + h * msh + (long)min(i, seq_q - 1) * seq_kv;
    const float qscale = scale * CLATTN_LOG2E;

    float qr[HEAD_DIM];
    for (int d = 0; d < HEAD_DIM; ++d)
        qr[d] = row_ok ? LOAD(q, qoff + d) * qscale : 0.0f;
    float acc[HEAD_DIM_V];
    for (int d = 0; d < HEAD_DIM_V; ++d)
        acc[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    for (int n0 = lo; n0 < hi; n0 += BLOCK_N) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = lid; t < BLOCK_N * HEAD_DIM; t += BLOCK_M) {
            const int jj = t / HEAD_DIM, d = t - jj * HEAD_DIM;
            ks[jj][d] = n0 + jj < hi ? LOAD(k, koff + (long)(n0 + jj) * kss + d) : 0.0f;
        }
        for (int t = lid; t < BLOCK_N * HEAD_DIM_V; t += BLOCK_M) {
            const int jj = t / HEAD_DIM_V, d = t - jj * HEAD_DIM_V;
            vs[jj][d] = n0 + jj < hi ? LOAD(v, voff + (long)(n0 + jj) * vss + d) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        float s[BLOCK_N];
        float tmax = -INFINITY;
        for (int jj = 0; jj < BLOCK_N; ++jj) {
            const int j = n0 + jj;
            float x = -INFINITY;
            if (j >= my_lo && j < my_hi) {
                float dot = 0.0f;
                for (int d = 0; d < HEAD_DIM; ++d)
                    dot = mad(qr[d], ks[jj][d], dot);
                x = has_mask ? mad(mask[moff + j], CLATTN_LOG2E, dot) : dot;
            }
            s[jj] = x;
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
                const float p = exp2(s[jj] - m_new);
                l += p;
                /* A key of probability 0 contributes nothing, even a NaN V. */
                if (p != 0.0f)
                    for (int d = 0; d < HEAD_DIM_V; ++d)
                        acc[d] = mad(p, vs[jj][d], acc[d]);
            }
            m = m_new;
        }
    }

    if (!row_ok)
        return;
#if SPLIT_KV
    const long prow = ((long)bh * nsplit + split) * seq_q + i;
    for (int d = 0; d < HEAD_DIM_V; ++d)
        part_o[prow * HEAD_DIM_V + d] = acc[d];
    part_ml[2 * prow] = m;
    part_ml[2 * prow + 1] = l;
#else
    /* l == 0: the row saw no key; zeros and -inf, never 0/0. */
    const float inv = l == 0.0f ? 0.0f : 1.0f / l;
    const long ooff = b * osb + h * osh + (long)i * oss;
    for (int d = 0; d < HEAD_DIM_V; ++d)
        STORE(o, ooff + d, acc[d] * inv);
    if (has_lse)
        lse[(long)bh * seq_q + i] = l == 0.0f ? -INFINITY : (m + log2(l)) * CLATTN_LN2;
#endif
}
