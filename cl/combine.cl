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

kernel __attribute__((reqd_work_group_size(COMBINE_WG, 1, 1))) void attn_splitkv_combine(
    global const float *part_o, global const float *part_ml, global store_t *o, global float *lse,
    int heads, int seq_q, int nsplit, int has_lse, long osb, long osh, long oss)
{
    const int i = get_global_id(0);
    const int bh = get_global_id(1);
    if (i >= seq_q)
        return;
    const int b = bh / heads, h = bh - b * heads;
    const long base = (long)bh * nsplit * seq_q + i; /* partial row of split 0 */

    float m = -INFINITY;
    for (int s = 0; s < nsplit; ++s)
        m = clattn_max_nan(m, part_ml[2 * (base + (long)s * seq_q)]);
    float l = 0.0f;
    if (m != -INFINITY)
        for (int s = 0; s < nsplit; ++s) {
            const long r = base + (long)s * seq_q;
            l += part_ml[2 * r + 1] * exp2(part_ml[2 * r] - m);
        }

    const long ooff = b * osb + h * osh + (long)i * oss;
    const float inv = l == 0.0f ? 0.0f : 1.0f / l;
    for (int d = 0; d < HEAD_DIM_V; ++d) {
        float acc = 0.0f;
        if (l != 0.0f)
            for (int s = 0; s < nsplit; ++s) {
                const long r = base + (long)s * seq_q;
                const float w = exp2(part_ml[2 * r] - m);
                if (w != 0.0f)
                    acc = mad(w, part_o[r * HEAD_DIM_V + d], acc);
            }
        STORE(o, ooff + d, acc * inv);
    }
    if (has_lse)
        lse[(long)bh * seq_q + i] = l == 0.0f ? -INFINITY : (m + log2(l)) * CLATTN_LN2;
}
