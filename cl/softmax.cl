/*
 * Three-stage path, stage 2: softmax of each score row in place (S becomes
 * P), and the row's natural-log log-sum-exp; with raw=1 it first applies the
 * masking to scores a GEMM library produced. One work-group per row; the
 * SM_WG work-items stride over the keys and reduce through local memory.
 * A row with no visible key (max -inf) becomes zeros with LSE -inf.
 *
 * Grid: (SM_WG, nrows, nbh), local (SM_WG, 1, 1). SM_WG is a power of two.
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef SM_WG
#define SM_WG 64
#endif

kernel __attribute__((reqd_work_group_size(SM_WG, 1, 1))) void attn_softmax(
    global float *scores, global float *lse, int heads, int seq_q, int seq_kv, int row0,
    int nrows, int bh0, int has_lse, int raw, global const float *mask,
    global const int *kv_lens, int causal, int windowed, int wl, int wr, int has_mask,
    int has_kvl, long msb, long msh)
{
    local float red[SM_WG];
    const int t = get_local_id(0);
    const int il = get_group_id(1), bhl = get_group_id(2);
    global float *row = scores + ((long)bhl * nrows + il) * seq_kv;

    /* raw: the scores came from a GEMM (scaled, nothing masked yet); apply
     * the visibility rule and the additive mask here, once, in place. Each
     * work-item owns the same keys in every pass, so no barrier is needed. */
    if (raw) {
        const int bh = bh0 + bhl, b = bh / heads, h = bh - b * heads, i = row0 + il;
        const int L = clattn_kv_len(kv_lens, has_kvl, b, seq_kv);
        const int lo = clattn_key_lo(i, L, seq_q, windowed, wl);
        const int hi = clattn_key_hi(i, L, seq_q, causal, windowed, wr);
        const long moff = b * msb + h * msh + (long)i * seq_kv;
        for (int j = t; j < seq_kv; j += SM_WG)
            row[j] = j < lo || j >= hi ? -INFINITY : has_mask ? row[j] + mask[moff + j] : row[j];
    }

    float mx = -INFINITY;
    for (int j = t; j < seq_kv; j += SM_WG)
        mx = clattn_max_nan(mx, row[j]);
    red[t] = mx;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = SM_WG / 2; w > 0; w /= 2) {
        if (t < w)
            red[t] = clattn_max_nan(red[t], red[t + w]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    mx = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);

    float sum = 0.0f;
    if (mx != -INFINITY)
        for (int j = t; j < seq_kv; j += SM_WG)
            sum += exp2((row[j] - mx) * CLATTN_LOG2E);
    red[t] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = SM_WG / 2; w > 0; w /= 2) {
        if (t < w)
            red[t] += red[t + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    sum = red[0];

    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    /* A masked key stays exactly 0 even in a NaN row (where -inf - mx is NaN). */
    for (int j = t; j < seq_kv; j += SM_WG)
        row[j] = sum == 0.0f || row[j] == -INFINITY ? 0.0f
                                                    : exp2((row[j] - mx) * CLATTN_LOG2E) * inv;
    if (has_lse && t == 0)
        lse[(long)(bh0 + bhl) * seq_q + row0 + il] = sum == 0.0f ? -INFINITY : mx + log(sum);
}
