/*
 * clattn_merge: partial attentions over disjoint key sets (O_p and its
 * natural-log LSE_p per row) merged into the attention over all their keys:
 *   m = max_p LSE_p,  w_p = exp(LSE_p - m),  O = sum_p w_p O_p / sum_p w_p,
 *   LSE = m + log(sum_p w_p).
 * Taking the weights from the largest LSE down keeps every w_p in [0, 1]
 * with at least one equal to 1, so nothing overflows and the sum is >= 1.
 *
 * A launch takes up to MERGE_PARTS parts in the problem's dtype (a kernel
 * cannot take a variable number of buffers) plus, from the second launch
 * of a long merge on, the fp32 result so far as one more part: then every
 * intermediate result stays in fp32, and only the last launch rounds to the
 * dtype. The running result lives in acc: O as [row][HEAD_DIM_V] (rows
 * packed, updated in place: each element is read and written by the same
 * work-item), and an LSE per row, read at acc + lse_in and written at
 * acc + lse_out, two arrays the host alternates: the lanes of a row read it
 * while lane 0 writes it, and nothing orders them.
 *
 * Grid: (MERGE_WG, seq_q, batch * heads), local (MERGE_WG, 1, 1): a group
 * per row, its lanes over the value dims, so GPU lanes read consecutive
 * elements and a CPU work-item walks a whole row.
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef MERGE_WG
#define MERGE_WG 64
#endif
#define MERGE_PARTS 8

#define MERGE_FOR_PARTS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define MERGE_PART_PARAMS(k) global const store_t *o##k, global const float *l##k,

/* The weight of a part of log-sum-exp x when the row's largest is m (finite
 * or +inf, never NaN). A part that saw no key (-inf) weighs exactly 0; one
 * at the maximum exactly 1, also when that maximum is +inf, where
 * exp(x - m) would be NaN. */
inline float clattn_merge_weight(float x, float m)
{
    if (x == -INFINITY)
        return 0.0f;
    return x == m ? 1.0f : exp(x - m);
}

kernel CLATTN_WG_SIZE(MERGE_WG) void attn_merge(
    MERGE_FOR_PARTS(MERGE_PART_PARAMS) int count, int heads, int seq_q, long osb, long osh,
    long oss, int has_acc, int to_acc, global float *acc, long lse_in, long lse_out,
    global store_t *o, global float *lse, int has_lse)
{
    const int lane = get_local_id(0);
    const int i = get_global_id(1);
    const int bh = get_global_id(2);
    const int b = bh / heads, h = bh - b * heads;
    const long row = (long)bh * seq_q + i;
    const long ooff = b * osb + h * osh + i * oss; /* the row in every O */
    const long aoff = row * HEAD_DIM_V;            /* the row in acc */

    float x[MERGE_PARTS];
    const float xa = has_acc ? acc[lse_in + row] : -INFINITY;
    float m = xa;
#define MERGE_READ_LSE(k)                                                                      \
    x[k] = -INFINITY;                                                                          \
    if (k < count)                                                                             \
        x[k] = l##k[row];                                                                      \
    m = clattn_max_nan(m, x[k]);
    MERGE_FOR_PARTS(MERGE_READ_LSE)

    /* NaN anywhere makes the row NaN; no key anywhere gives zeros and -inf
     * (no weights: 0 / 0 must not happen). */
    const int nan_row = isnan(m), empty = m == -INFINITY;
    float w[MERGE_PARTS], sum = 0.0f;
    const float wa = nan_row || empty ? 0.0f : clattn_merge_weight(xa, m);
    sum += wa;
#define MERGE_WEIGHT(k)                                                                        \
    w[k] = nan_row || empty ? 0.0f : clattn_merge_weight(x[k], m);                            \
    sum += w[k];
    MERGE_FOR_PARTS(MERGE_WEIGHT)

    for (int d = lane; d < HEAD_DIM_V; d += MERGE_WG) {
        float sum_o = 0.0f;
        /* Only parts of non-zero weight are read: an empty part's O is
         * whatever its producer left there, NaN included. */
        if (wa != 0.0f)
            sum_o += wa * acc[aoff + d];
#define MERGE_ACCUMULATE(k)                                                                    \
    if (w[k] != 0.0f)                                                                          \
        sum_o += w[k] * LOAD(o##k, ooff + d);
        MERGE_FOR_PARTS(MERGE_ACCUMULATE)
        const float out = nan_row ? m : empty ? 0.0f : sum_o / sum;
        if (to_acc)
            acc[aoff + d] = out;
        else
            STORE(o, ooff + d, out);
    }
    if (lane != 0)
        return;
    const float out_l = nan_row || empty ? m : m + log(sum);
    if (to_acc)
        acc[lse_out + row] = out_l;
    else if (has_lse)
        lse[row] = out_l;
}
