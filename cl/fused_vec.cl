/*
 * Fused attention for devices that vectorise within a work-item (CPUs under
 * PoCL): the same online softmax as attn_fwd_fused, but each work-item owns
 * FV_ROWS query rows and handles FV_VEC keys at a time as one vector, so the
 * scores, their exponentials and the P*V update are vector operations with
 * FV_ROWS independent chains in flight. The K tile sits transposed in local
 * memory (one vector of FV_VEC keys per head-dim element), the V tile as
 * rows padded to a whole number of vectors.
 *
 * Same arguments and outputs as attn_fwd_fused (including SPLIT_KV=1).
 * Grid: (ceil(seq_q / (FV_WG * FV_ROWS)) * FV_WG, batch * heads, splits),
 * local (FV_WG, 1, 1).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef FV_WG
#define FV_WG 4
#endif
#ifndef FV_ROWS
#define FV_ROWS 4
#endif
#ifndef FV_VEC
#define FV_VEC 16
#endif
#ifndef SPLIT_KV
#define SPLIT_KV 0
#endif

#if FV_VEC == 16
typedef float16 vec_t;
typedef int16 ivec_t;
#define VLOAD vload16
#define VSTORE vstore16
#define LANES ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#elif FV_VEC == 8
typedef float8 vec_t;
typedef int8 ivec_t;
#define VLOAD vload8
#define VSTORE vstore8
#define LANES ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#elif FV_VEC == 4
typedef float4 vec_t;
typedef int4 ivec_t;
#define VLOAD vload4
#define VSTORE vstore4
#define LANES ((int4)(0, 1, 2, 3))
#else
#error "FV_VEC must be 4, 8 or 16"
#endif

#define DV_VECS ((HEAD_DIM_V + FV_VEC - 1) / FV_VEC)
#define DV_PAD (DV_VECS * FV_VEC)
#define BLOCK_ROWS (FV_WG * FV_ROWS)

inline float hmax(vec_t v)
{
#if FV_VEC == 16
    float8 a = fmax(v.lo, v.hi);
    float4 b = fmax(a.lo, a.hi);
#elif FV_VEC == 8
    float4 b = fmax(v.lo, v.hi);
#else
    float4 b = v;
#endif
    float2 c = fmax(b.lo, b.hi);
    return fmax(c.x, c.y);
}

inline float hsum(vec_t v)
{
#if FV_VEC == 16
    float8 a = v.lo + v.hi;
    float4 b = a.lo + a.hi;
#elif FV_VEC == 8
    float4 b = v.lo + v.hi;
#else
    float4 b = v;
#endif
    float2 c = b.lo + b.hi;
    return c.x + c.y;
}

kernel __attribute__((reqd_work_group_size(FV_WG, 1, 1))) void attn_fwd_fused_vec(
    global const store_t *q, global const store_t *k, global const store_t *v, global store_t *o,
    global const float *mask, global const int *kv_lens, global float *lse, int heads, int group,
    int seq_q, int seq_kv, float scale, int causal, int windowed, int wl, int wr, int has_mask,
    int has_kvl, int has_lse, long qsb, long qsh, long qss, long ksb, long ksh, long kss, long vsb,
    long vsh, long vss, long osb, long osh, long oss, long msb, long msh, int keys_per_split,
    global float *part_o, global float *part_ml)
{
    local float kt[HEAD_DIM * FV_VEC]; /* kt[d * FV_VEC + key] */
    local float vt[FV_VEC * DV_PAD];   /* vt[key * DV_PAD + dv] */

    const int lid = get_local_id(0);
    const int g0 = get_group_id(0) * BLOCK_ROWS;
    const int row0 = g0 + lid * FV_ROWS; /* this work-item's rows: row0 .. row0+FV_ROWS-1 */
    const int bh = get_group_id(1);
    const int b = bh / heads, h = bh - b * heads, kh = h / group;
    const int L = clattn_kv_len(kv_lens, has_kvl, b, seq_kv);
    const int g_last = min(g0 + BLOCK_ROWS, seq_q) - 1;

    int lo = clattn_key_lo(g0, L, seq_q, windowed, wl);
    int hi = clattn_key_hi(g_last, L, seq_q, causal, windowed, wr);
#if SPLIT_KV
    const int split = get_group_id(2), nsplit = get_num_groups(2);
    const int s0 = split * keys_per_split;
    const int s1 = (int)min((long)s0 + keys_per_split, (long)seq_kv);
    lo = max(lo, s0);
    hi = min(hi, s1);
#endif

    const float qscale = scale * CLATTN_LOG2E;
    float qr[FV_ROWS][HEAD_DIM];
    vec_t acc[FV_ROWS][DV_VECS];
    float m[FV_ROWS], l[FV_ROWS];
    int rlo[FV_ROWS], rhi[FV_ROWS];
    for (int r = 0; r < FV_ROWS; ++r) {
        const int i = row0 + r;
        const bool ok = i < seq_q;
        rlo[r] = ok ? clattn_key_lo(i, L, seq_q, windowed, wl) : 0;
        rhi[r] = ok ? clattn_key_hi(i, L, seq_q, causal, windowed, wr) : 0;
#if SPLIT_KV
        rlo[r] = max(rlo[r], s0);
        rhi[r] = min(rhi[r], s1);
#endif
        const long qoff = b * qsb + h * qsh + (long)min(i, seq_q - 1) * qss;
        for (int d = 0; d < HEAD_DIM; ++d)
            qr[r][d] = ok ? LOAD(q, qoff + d) * qscale : 0.0f;
        for (int c = 0; c < DV_VECS; ++c)
            acc[r][c] = (vec_t)(0.0f);
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }

    const long koff = b * ksb + kh * ksh;
    const long voff = b * vsb + kh * vsh;
    for (int n0 = lo; n0 < hi; n0 += FV_VEC) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int jj = lid; jj < FV_VEC; jj += FV_WG) {
            const bool in = n0 + jj < hi;
            const long kr = koff + (long)(n0 + jj) * kss;
            const long vr = voff + (long)(n0 + jj) * vss;
            for (int d = 0; d < HEAD_DIM; ++d)
                kt[d * FV_VEC + jj] = in ? LOAD(k, kr + d) : 0.0f;
            for (int d = 0; d < DV_PAD; ++d)
                vt[jj * DV_PAD + d] = in && d < HEAD_DIM_V ? LOAD(v, vr + d) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        vec_t s[FV_ROWS];
        for (int r = 0; r < FV_ROWS; ++r)
            s[r] = (vec_t)(0.0f);
        for (int d = 0; d < HEAD_DIM; ++d) {
            const vec_t kv = VLOAD(d, kt);
            for (int r = 0; r < FV_ROWS; ++r)
                s[r] = mad((vec_t)(qr[r][d]), kv, s[r]);
        }

        const ivec_t j = (ivec_t)(n0) + LANES;
        for (int r = 0; r < FV_ROWS; ++r) {
            if (rlo[r] >= rhi[r] || n0 >= rhi[r] || n0 + FV_VEC <= rlo[r])
                continue; /* nothing of this tile is visible to the row */
            vec_t x = s[r];
            if (has_mask) {
                float mt[FV_VEC];
                const long moff = b * msb + h * msh + (long)(row0 + r) * seq_kv;
                for (int e = 0; e < FV_VEC; ++e)
                    mt[e] = n0 + e < seq_kv ? mask[moff + n0 + e] : 0.0f;
                x = mad(VLOAD(0, mt), (vec_t)(CLATTN_LOG2E), x);
            }
            const ivec_t seen = (j >= (ivec_t)(rlo[r])) & (j < (ivec_t)(rhi[r]));
            x = select((vec_t)(-INFINITY), x, seen);
            const float m_new = fmax(m[r], hmax(x));
            if (m_new == -INFINITY)
                continue;
            const float corr = exp2(m[r] - m_new);
            const vec_t p = exp2(x - (vec_t)(m_new));
            l[r] = l[r] * corr + hsum(p);
            m[r] = m_new;
            for (int c = 0; c < DV_VECS; ++c)
                acc[r][c] *= (vec_t)(corr);
            float pj[FV_VEC];
            VSTORE(p, 0, pj);
            for (int e = 0; e < FV_VEC; ++e) {
                /* A key of probability 0 contributes nothing, even a NaN V. */
                if (pj[e] != 0.0f)
                    for (int c = 0; c < DV_VECS; ++c)
                        acc[r][c] = mad((vec_t)(pj[e]), VLOAD(c, vt + e * DV_PAD), acc[r][c]);
            }
        }
    }

    for (int r = 0; r < FV_ROWS; ++r) {
        const int i = row0 + r;
        if (i >= seq_q)
            break;
        float out[DV_PAD];
        for (int c = 0; c < DV_VECS; ++c)
            VSTORE(acc[r][c], c, out);
#if SPLIT_KV
        const long prow = ((long)bh * nsplit + split) * seq_q + i;
        for (int d = 0; d < HEAD_DIM_V; ++d)
            part_o[prow * HEAD_DIM_V + d] = out[d];
        part_ml[2 * prow] = m[r];
        part_ml[2 * prow + 1] = l[r];
#else
        const float inv = l[r] == 0.0f ? 0.0f : 1.0f / l[r];
        const long ooff = b * osb + h * osh + (long)i * oss;
        for (int d = 0; d < HEAD_DIM_V; ++d)
            STORE(o, ooff + d, out[d] * inv);
        if (has_lse)
            lse[(long)bh * seq_q + i] = l[r] == 0.0f ? -INFINITY : (m[r] + log2(l[r])) * CLATTN_LN2;
#endif
    }
}
