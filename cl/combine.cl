/*
 * Split-KV combine: merges the partial (max, sum, unnormalised O) of every
 * key partition of a row into the final O and LSE. Maxima and sums are in
 * log2 units, as attn_fwd_fused(SPLIT_KV=1) writes them.
 *
 * Grid: (ceil(seq_q / COMBINE_WG) * COMBINE_WG, batch * heads),
 * local (COMBINE_WG, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef COMBINE_WG
#define COMBINE_WG 64
#endif

kernel CLATTN_WG_SIZE(COMBINE_WG) void attn_splitkv_combine(
    CLATTN_CALL_PARAMS, int nsplit, global const float *part_o, global const float *part_ml)
{
    const clattn_call call = CLATTN_CALL_INIT;
    const int i = get_global_id(0);
    const int bh = get_global_id(1);
    const int b = bh / heads, h = bh - b * heads;
    const clattn_seq s = clattn_seq_of(&call, b, h);
    if (i >= s.sq)
        return;
    const long base = (long)bh * nsplit * seq_q + i; /* partial row of split 0 */

    /* The sink joins here, once, not in every partition. */
    float m, l;
    clattn_softmax_init(&s, CLATTN_LOG2E, 1, &m, &l);
    const float m0 = m;
    for (int p = 0; p < nsplit; ++p)
        m = clattn_max_nan(m, part_ml[2 * (base + (long)p * seq_q)]);
    if (m != -INFINITY) {
        l *= exp2(m0 - m);
        for (int p = 0; p < nsplit; ++p) {
            const long r = base + (long)p * seq_q;
            l += part_ml[2 * r + 1] * exp2(part_ml[2 * r] - m);
        }
    }

    const long ooff = s.o + (long)i * oss;
    const float inv = clattn_row_inv(l);
    for (int d = 0; d < HEAD_DIM_V; ++d) {
        float acc = 0.0f;
        if (l != 0.0f)
            for (int p = 0; p < nsplit; ++p) {
                const long r = base + (long)p * seq_q;
                const float w = exp2(part_ml[2 * r] - m);
                if (w != 0.0f)
                    acc = mad(w, part_o[r * HEAD_DIM_V + d], acc);
            }
        STORE(o, ooff + d, acc * inv);
    }
    if (has_lse)
        lse[s.lse + i] = clattn_row_lse2(&s, m, l);
}
