/*
 * Three-stage path, stage 2: softmax of each score row in place (S becomes
 * P), and the row's natural-log log-sum-exp; with raw=1 it first applies the
 * masking to scores a GEMM library produced. One work-group per row; the
 * SM_WG work-items stride over the keys SM_VEC at a time as one vector (so
 * the exponentials are vector operations on CPUs, where PoCL does not
 * vectorise a per-work-item loop across work-items) and reduce through local
 * memory. Each exponential is computed once, stored, then scaled.
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
#ifndef SM_VEC
#define SM_VEC 16
#endif

#if SM_VEC != 4 && SM_VEC != 8 && SM_VEC != 16
#error "SM_VEC must be 4, 8 or 16"
#endif
#define svec_t CLATTN_CAT(float, SM_VEC)
#define SVLOAD CLATTN_CAT(vload, SM_VEC)
#define SVSTORE CLATTN_CAT(vstore, SM_VEC)

#define sm_hmax CLATTN_CAT(clattn_hmax, SM_VEC)
#define sm_hsum CLATTN_CAT(clattn_hsum, SM_VEC)
#define sm_exp2 CLATTN_CAT(clattn_exp2_, SM_VEC) /* arguments <= 0 here */

kernel CLATTN_WG_SIZE(SM_WG) void attn_softmax(
    CLATTN_CALL_PARAMS, global float *scores, int row0, int nrows, int bh0, int raw)
{
    local float red[SM_WG];
    const clattn_call call = CLATTN_CALL_INIT;
    const int t = get_local_id(0);
    const int il = get_group_id(1), bhl = get_group_id(2);
    const int bh = bh0 + bhl, b = bh / heads, h = bh - b * heads, i = row0 + il;
    const clattn_seq s = clattn_seq_of(&call, b, h);
    global float *row = scores + ((long)bhl * nrows + il) * seq_kv;
    /* Work-item t owns the vectors t, t + SM_WG, ... and the scalar tail
     * keys nvec * SM_VEC + t, + SM_WG, ...: the same keys in every pass, so
     * the passes need no barrier of their own. */
    const int nvec = seq_kv / SM_VEC;
    const int tail0 = nvec * SM_VEC;

    /* raw: the scores came from a GEMM (scaled, nothing masked yet); apply
     * the visibility rule and the score steps here, once, in place. (The
     * plan gives GEMMs only problems whose steps do not include softcap.) */
    if (raw) {
        const bool real = i < s.sq;
        const int lo = real ? clattn_key_lo(&call, &s, i) : 0;
        const int hi = real ? clattn_key_hi(&call, &s, i) : 0;
        for (int j = t; j < seq_kv; j += SM_WG)
            row[j] = j < lo || j >= hi ? -INFINITY : clattn_score(&call, &s, row[j], i, j, 1.0f);
        /* The vector passes below read other work-items' keys. */
        barrier(CLK_GLOBAL_MEM_FENCE);
    }

    /* fmax drops NaN: a NaN score the row sees must make the row NaN. */
    svec_t vmx = (svec_t)(-INFINITY);
    int nan_seen = 0;
    for (int c = t; c < nvec; c += SM_WG) {
        const svec_t x = SVLOAD(c, row);
        nan_seen |= any(isnan(x));
        vmx = fmax(vmx, x);
    }
    float mx = nan_seen ? NAN : sm_hmax(vmx);
    for (int j = tail0 + t; j < seq_kv; j += SM_WG)
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
    /* A sink joins the denominator (with its own term below); it adds no
     * probability to any key. */
    float m_sink, l_sink;
    clattn_softmax_init(&s, 1.0f, 1, &m_sink, &l_sink);
    mx = clattn_max_nan(mx, m_sink);

    float sum = 0.0f;
    if (mx != -INFINITY) {
        svec_t vs = (svec_t)(0.0f);
        /* A masked key (-inf) stays exactly 0, even in a NaN row where
         * -inf - mx would be NaN. */
        for (int c = t; c < nvec; c += SM_WG) {
            const svec_t x = SVLOAD(c, row);
            const svec_t e = select(sm_exp2((x - mx) * CLATTN_LOG2E), (svec_t)(0.0f),
                                    isequal(x, (svec_t)(-INFINITY)));
            SVSTORE(e, c, row);
            vs += e;
        }
        sum = sm_hsum(vs);
        for (int j = tail0 + t; j < seq_kv; j += SM_WG) {
            const float e = row[j] == -INFINITY ? 0.0f : exp2((row[j] - mx) * CLATTN_LOG2E);
            row[j] = e;
            sum += e;
        }
    }
    red[t] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = SM_WG / 2; w > 0; w /= 2) {
        if (t < w)
            red[t] += red[t + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    sum = red[0];
    if (l_sink != 0.0f)
        sum += exp2((m_sink - mx) * CLATTN_LOG2E);

    /* No visible key: the scores were never exponentiated; all become 0. */
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    /* Zeros stay zeros (masked keys of a NaN row, where inv is NaN). */
    for (int c = t; c < nvec; c += SM_WG) {
        const svec_t e = SVLOAD(c, row);
        SVSTORE(sum == 0.0f ? (svec_t)(0.0f) : select(e * inv, (svec_t)(0.0f), isequal(e, (svec_t)(0.0f))),
                c, row);
    }
    for (int j = tail0 + t; j < seq_kv; j += SM_WG)
        row[j] = sum == 0.0f || row[j] == 0.0f ? 0.0f : row[j] * inv;
    if (has_lse && t == 0 && i < s.sq)
        lse[s.lse + i] = sum == 0.0f ? -INFINITY : mx + log(sum);
}
