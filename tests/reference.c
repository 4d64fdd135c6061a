/* Double-precision reference; see reference.h. */
#include "reference.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t ref_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    int exp = (int)((u >> 23) & 0xffu);
    uint32_t man = u & 0x7fffffu;

    if (exp == 0xff) /* inf, or NaN kept quiet with the top payload bits */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x0200u | (man >> 13) : 0u));

    int e = exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        /* Result is subnormal (or rounds up to the smallest normal). Values
         * below 2^-25 round to zero; fp32 subnormals are far below that. */
        if (e < -10)
            return sign;
        man |= 0x800000u;
        int shift = 14 - e; /* units of 2^-24 */
        uint32_t h = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    /* A carry out of the mantissa bumps the exponent, up to infinity: right. */
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

float ref_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in fp32 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

uint16_t ref_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: truncating could give inf */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float ref_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

size_t ref_dtype_size(clattn_dtype t)
{
    switch (t) {
    case CLATTN_F32:
        return 4;
    case CLATTN_F16:
    case CLATTN_BF16:
        return 2;
    }
    return 0;
}

float ref_load(const void *base, clattn_dtype t, int64_t idx)
{
    switch (t) {
    case CLATTN_F32:
        return ((const float *)base)[idx];
    case CLATTN_F16:
        return ref_f16_to_f32(((const uint16_t *)base)[idx]);
    case CLATTN_BF16:
        return ref_bf16_to_f32(((const uint16_t *)base)[idx]);
    }
    return NAN;
}

void ref_store(void *base, clattn_dtype t, int64_t idx, float v)
{
    switch (t) {
    case CLATTN_F32:
        ((float *)base)[idx] = v;
        break;
    case CLATTN_F16:
        ((uint16_t *)base)[idx] = ref_f32_to_f16(v);
        break;
    case CLATTN_BF16:
        ((uint16_t *)base)[idx] = ref_f32_to_bf16(v);
        break;
    }
}

static void packed_strides(clattn_strides *s, int heads, int seq, int dim)
{
    if (s->batch == 0 && s->head == 0 && s->seq == 0) {
        s->seq = dim;
        s->head = (int64_t)seq * dim;
        s->batch = (int64_t)heads * s->head;
    }
}

/* varlen tensors are [tokens][heads][dim]: no batch dimension */
static void packed_strides_varlen(clattn_strides *s, int heads, int dim)
{
    if (s->batch == 0 && s->head == 0 && s->seq == 0) {
        s->seq = (int64_t)heads * dim;
        s->head = dim;
    }
}

int64_t ref_kv_row_units(clattn_kv_format f, int dims)
{
    switch (f) {
    case CLATTN_KV_INT4:
        return dims / 2;
    case CLATTN_KV_Q8_0:
        return (int64_t)(dims / 32) * 34;
    case CLATTN_KV_Q4_0:
        return (int64_t)(dims / 32) * 18;
    default:
        return dims;
    }
}

/* The packed layout of K or V: paged pools are [pages][kv_heads][page][row],
 * quantized rows count bytes. */
static void kv_strides(const clattn_problem *p, const clattn_kv_storage *st, int dims,
                       clattn_strides *s)
{
    const int64_t row = ref_kv_row_units(st->format, dims);
    if (s->batch || s->head || s->seq)
        return;
    if (p->varlen) {
        s->head = row;
        s->seq = p->kv_heads * row;
        return;
    }
    const int64_t n2 = p->paged.enabled ? p->paged.page_size : p->seq_kv;
    s->seq = row;
    s->head = n2 * row;
    s->batch = (int64_t)p->kv_heads * s->head;
}

void ref_normalize(const clattn_problem *in, clattn_problem *out)
{
    clattn_problem p = *in;
    if (p.kv_heads == 0)
        p.kv_heads = p.heads;
    if (p.head_dim_v == 0)
        p.head_dim_v = p.head_dim;
    if (p.scale == 0.0f)
        p.scale = (float)(1.0 / sqrt((double)p.head_dim));
    if (p.varlen) {
        packed_strides_varlen(&p.q_strides, p.heads, p.head_dim);
        packed_strides_varlen(&p.o_strides, p.heads, p.head_dim_v);
    } else {
        packed_strides(&p.q_strides, p.heads, p.seq_q, p.head_dim);
        packed_strides(&p.o_strides, p.heads, p.seq_q, p.head_dim_v);
    }
    kv_strides(&p, &p.k_storage, p.head_dim, &p.k_strides);
    kv_strides(&p, &p.v_storage, p.head_dim_v, &p.v_strides);
    *out = p;
}

int64_t ref_extent(const clattn_strides *s, int n0, int n1, int n2, int n3)
{
    if (n0 <= 0 || n1 <= 0 || n2 <= 0 || n3 <= 0)
        return 0;
    clattn_strides st = *s;
    packed_strides(&st, n1, n2, n3);
    int64_t last = n3 - 1;
    /* the largest offset takes the far end of each positively strided dim */
    if (st.batch > 0)
        last += (int64_t)(n0 - 1) * st.batch;
    if (st.head > 0)
        last += (int64_t)(n1 - 1) * st.head;
    if (st.seq > 0)
        last += (int64_t)(n2 - 1) * st.seq;
    return last + 1;
}

void ref_tensor_extents(const clattn_problem *problem, int64_t *q, int64_t *k, int64_t *v,
                        int64_t *o)
{
    clattn_problem n;
    ref_normalize(problem, &n);
    /* varlen: one "batch" of total tokens; the normalized strides are never all zero */
    const int B = n.varlen ? 1 : n.batch;
    const int Sq = n.varlen ? n.total_q : n.seq_q, Skv = n.varlen ? n.total_kv : n.seq_kv;
    if (q)
        *q = ref_extent(&n.q_strides, B, n.heads, Sq, n.head_dim);
    /* K and V: in their storage's units, over the pool when paged */
    const int KB = n.paged.enabled ? n.paged.num_pages : B;
    const int KS = n.paged.enabled ? n.paged.page_size : Skv;
    if (k)
        *k = ref_extent(&n.k_strides, KB, n.kv_heads, KS,
                        (int)ref_kv_row_units(n.k_storage.format, n.head_dim));
    if (v)
        *v = ref_extent(&n.v_strides, KB, n.kv_heads, KS,
                        (int)ref_kv_row_units(n.v_storage.format, n.head_dim_v));
    if (o)
        *o = ref_extent(&n.o_strides, B, n.heads, Sq, n.head_dim_v);
}

int64_t ref_mask_extent(const clattn_problem *problem, const clattn_mask_strides *s)
{
    clattn_problem n;
    ref_normalize(problem, &n);
    if (n.batch <= 0 || n.heads <= 0 || n.seq_q <= 0 || n.seq_kv <= 0)
        return 0;
    return (int64_t)(n.batch - 1) * s->batch + (int64_t)(n.heads - 1) * s->head +
           (int64_t)(n.seq_q - 1) * s->row + n.seq_kv;
}

void ref_alibi_slopes(int heads, double *out)
{
    if (heads <= 0 || !out)
        return;
    int m = 1;
    while (m * 2 <= heads)
        m *= 2;
    /* the power of two m: 2^(-8 (h + 1) / m) */
    for (int h = 0; h < m; h++)
        out[h] = pow(2.0, -8.0 * (h + 1) / m);
    /* the rest: slopes 0, 2, 4, ... of 2m, i.e. 2^(-8 (2t + 1) / (2m)) */
    for (int t = 0; m + t < heads; t++)
        out[m + t] = pow(2.0, -8.0 * (2 * t + 1) / (2.0 * m));
}

static int clamp_int(int x, int lo, int hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* floor(a / c) for c > 0, also for negative a (C's / truncates toward 0) */
static int64_t floor_div(int64_t a, int64_t c)
{
    int64_t q = a / c;
    if (a % c != 0 && a < 0)
        q--;
    return q;
}

/* One sequence as the reference walks it: batch entry b of a plain problem,
 * or sequence b of a varlen one. */
/* ---- K and V in their storage ---------------------------------------------- */

/* An OCP 8-bit float: sign, e exponent bits with bias, m mantissa bits. */
static double fp8_value(unsigned b, int e_bits, int m_bits)
{
    const int bias = (1 << (e_bits - 1)) - 1;
    const unsigned mag = b & 0x7fu, e = mag >> m_bits, m = mag & ((1u << m_bits) - 1);
    const double sign = (b & 0x80u) ? -1.0 : 1.0;
    if (e_bits == 4 && mag == 0x7fu)
        return NAN; /* E4M3 has no infinities: only S.1111.111 is special */
    if (e_bits == 5 && e == 31)
        return m ? NAN : sign * INFINITY;
    if (e == 0)
        return sign * ldexp((double)m, 1 - bias - m_bits);
    return sign * ldexp(1.0 + (double)m / (double)(1u << m_bits), (int)e - bias);
}

static double scale_at(const void *scales, clattn_dtype t, int64_t i)
{
    return (double)ref_load(scales, t, i);
}

/* Channel d of K (is_v 0) or V (1) for kv head hk of key `key` of sequence
 * b (a token with varlen): found through the block table when paged, then
 * decoded from its storage as clattn.h describes each format. The
 * dequantized value is formed in fp32 (the storage's value times its
 * scale, rounded once), as a kernel holding it in a float register would. */
double ref_kv_value(const clattn_problem *p, const clattn_host_buffers *in, int is_v, int b,
                    int hk, int64_t key, int d)
{
    const clattn_kv_storage *st = is_v ? &p->v_storage : &p->k_storage;
    const clattn_strides *sd = is_v ? &p->v_strides : &p->k_strides;
    const int dims = is_v ? p->head_dim_v : p->head_dim;
    const void *base = is_v ? in->v : in->k;
    const void *sc = is_v ? in->v_scales : in->k_scales;
    int64_t off, row;
    if (p->paged.enabled) {
        const int ps = p->paged.page_size;
        int page = in->block_table[(int64_t)b * p->paged.max_pages_per_seq + key / ps];
        page = clamp_int(page, 0, p->paged.num_pages - 1);
        const int64_t slot = key % ps;
        off = page * sd->batch + hk * sd->head + slot * sd->seq;
        row = ((int64_t)page * p->kv_heads + hk) * ps + slot;
    } else if (p->varlen) {
        off = hk * sd->head + key * sd->seq;
        row = key * p->kv_heads + hk;
    } else {
        off = b * sd->batch + hk * sd->head + key * sd->seq;
        row = ((int64_t)b * p->kv_heads + hk) * p->seq_kv + key;
    }
    const unsigned char *u = (const unsigned char *)base + off; /* packed formats */
    const int group = st->group ? st->group : dims;
    const int64_t groups = dims / group;
    switch (st->format) {
    case CLATTN_KV_DEFAULT:
        return (double)ref_load(base, p->dtype, off + d);
    case CLATTN_KV_F32:
        return (double)ref_load(base, CLATTN_F32, off + d);
    case CLATTN_KV_F16:
        return (double)ref_load(base, CLATTN_F16, off + d);
    case CLATTN_KV_BF16:
        return (double)ref_load(base, CLATTN_BF16, off + d);
    case CLATTN_KV_INT8:
        return (double)((float)(signed char)u[d] *
                        (float)scale_at(sc, st->scale_dtype, row * groups + d / group));
    case CLATTN_KV_INT4: {
        const int q = (d % 2) ? u[d / 2] >> 4 : u[d / 2] & 15;
        const int64_t g = (row * groups + d / group) * 2;
        const float s = (float)scale_at(sc, st->scale_dtype, g);
        const float z = (float)scale_at(sc, st->scale_dtype, g + 1);
        return (double)(((float)q - z) * s);
    }
    case CLATTN_KV_Q8_0: {
        const unsigned char *blk = u + (d / 32) * 34;
        const float dd = ref_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        return (double)((float)(signed char)blk[2 + d % 32] * dd);
    }
    case CLATTN_KV_Q4_0: {
        const unsigned char *blk = u + (d / 32) * 18;
        const float dd = ref_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        const int c = d % 32;
        const int q = c < 16 ? blk[2 + c] & 15 : blk[2 + c - 16] >> 4;
        return (double)((float)(q - 8) * dd);
    }
    case CLATTN_KV_FP8_E4M3:
    case CLATTN_KV_FP8_E5M2: {
        const int e5 = st->format == CLATTN_KV_FP8_E5M2;
        const float x = (float)fp8_value(u[d], e5 ? 5 : 4, e5 ? 2 : 3);
        const float s = (float)scale_at(sc, st->scale_dtype, st->per_head ? hk : 0);
        return (double)(x * s);
    }
    }
    return NAN;
}

typedef struct ref_seq {
    int b;
    int64_t q0, k0; /* first query / key token (varlen); 0 otherwise */
    int sq, skv;    /* rows and keys (seq_q, seq_kv or the sequence's lengths) */
    int L, S;       /* keys S <= j < L can be visible */
} ref_seq;

static ref_seq seq_of(const clattn_problem *p, const clattn_host_buffers *in, int b)
{
    ref_seq s = {b, 0, 0, p->seq_q, p->seq_kv, p->seq_kv, 0};
    if (p->varlen && in->cu_seqlens_q && in->cu_seqlens_kv) {
        /* entries clamped to 0..total, lengths to 0..max, as the kernels do */
        int q0 = clamp_int(in->cu_seqlens_q[b], 0, p->total_q);
        int q1 = clamp_int(in->cu_seqlens_q[b + 1], 0, p->total_q);
        int k0 = clamp_int(in->cu_seqlens_kv[b], 0, p->total_kv);
        int k1 = clamp_int(in->cu_seqlens_kv[b + 1], 0, p->total_kv);
        s.q0 = q0;
        s.k0 = k0;
        s.sq = clamp_int(q1 - q0, 0, p->seq_q);
        s.skv = clamp_int(k1 - k0, 0, p->seq_kv);
        s.L = s.skv;
        return s;
    }
    if (in->kv_lens)
        s.L = clamp_int(in->kv_lens[b], 0, p->seq_kv);
    if (p->kv_start && in->kv_start)
        s.S = clamp_int(in->kv_start[b], 0, p->seq_kv);
    return s;
}

/* Whether key j is visible to query row i of sequence s, masks aside. */
static int visible(const clattn_problem *p, const ref_seq *s, int i, int j)
{
    const int L = s->L;
    int64_t ip = (int64_t)i + L - s->sq;
    if (j >= L)
        return 0;
    if (j < s->S)
        return 0;
    if (p->causal == CLATTN_CAUSAL_BOTTOM_RIGHT && j > ip)
        return 0;
    if (p->causal == CLATTN_CAUSAL_TOP_LEFT && j > i)
        return 0;
    if (p->windowed) {
        if (p->window_left >= 0 && j < ip - p->window_left)
            return 0;
        if (p->window_right >= 0 && j > ip + p->window_right)
            return 0;
    }
    if (p->chunk_size > 0 &&
        floor_div((int64_t)j - s->S, p->chunk_size) != floor_div(ip - s->S, p->chunk_size))
        return 0;
    return 1;
}

static int64_t mask_at(const clattn_mask_strides *st, int b, int h, int i, int j)
{
    return b * st->batch + h * st->head + i * st->row + j;
}

/* Where row i of head h of sequence s goes in the packed outputs. */
static void out_index(const clattn_problem *p, const ref_seq *s, int h, int i, int64_t *o_row,
                      int64_t *lse_row, int64_t *probs_row)
{
    const int64_t plain = ((int64_t)s->b * p->heads + h) * p->seq_q + i;
    *probs_row = plain;
    if (p->varlen) {
        *o_row = (s->q0 + i) * p->heads + h;
        *lse_row = (int64_t)h * p->total_q + s->q0 + i;
    } else {
        *o_row = plain;
        *lse_row = plain;
    }
}

int ref_attention(const clattn_problem *problem, const clattn_host_buffers *in, double *o,
                  double *lse, double *probs)
{
    return ref_attention_ex(problem, in, o, lse, probs, NULL);
}

/* Without its scratch rows the reference has no answer: every output gets
 * NaN (and seen -1), so a caller that ignores the status cannot pass a
 * comparison against uninitialised memory. */
static int out_of_memory(const clattn_problem *p, double *o, double *lse, double *probs,
                         int *seen)
{
    const size_t rows = p->varlen ? (size_t)p->heads * (size_t)p->total_q
                                  : (size_t)p->batch * p->heads * p->seq_q;
    const size_t prob_rows = (size_t)p->batch * p->heads * p->seq_q;
    for (size_t i = 0; o && i < rows * (size_t)p->head_dim_v; i++)
        o[i] = NAN;
    for (size_t i = 0; lse && i < rows; i++)
        lse[i] = NAN;
    for (size_t i = 0; probs && i < prob_rows * (size_t)p->seq_kv; i++)
        probs[i] = NAN;
    for (size_t i = 0; seen && i < rows; i++)
        seen[i] = -1;
    fprintf(stderr, "ref_attention: out of host memory for %d keys of scratch\n", p->seq_kv);
    return -1;
}

/* The rows [r0, r1) and keys [k0, k1) of every sequence that ref_core
 * computes (the whole problem: 0, INT_MAX). */
typedef struct ref_range {
    int r0, r1, k0, k1;
} ref_range;

static int ref_core(const clattn_problem *problem, const clattn_host_buffers *in,
                    const ref_range *rg, double *o, double *lse, double *probs, int *seen);

int ref_attention_ex(const clattn_problem *problem, const clattn_host_buffers *in, double *o,
                     double *lse, double *probs, int *seen)
{
    const ref_range all = {0, INT_MAX, 0, INT_MAX};
    return ref_core(problem, in, &all, o, lse, probs, seen);
}

int ref_attention_tile(const clattn_problem *problem, const clattn_tile *tile,
                       const clattn_host_buffers *in, double *o, double *lse, int *seen)
{
    clattn_problem p;
    ref_normalize(problem, &p);
    const size_t rows = (size_t)p.batch * (size_t)p.heads * (size_t)p.seq_q;
    double *wo = malloc(sizeof(double) * rows * (size_t)p.head_dim_v);
    double *wl = malloc(sizeof(double) * rows);
    int *ws = malloc(sizeof(int) * rows);
    const ref_range rg = {tile->q_offset, tile->q_offset + tile->seq_q, tile->kv_offset,
                          tile->kv_offset + tile->seq_kv};
    int rc = -1;
    if (wo && wl && ws)
        rc = ref_core(&p, in, &rg, wo, wl, NULL, ws);
    for (size_t bh = 0; bh < (size_t)p.batch * (size_t)p.heads; ++bh)
        for (int i = 0; i < tile->seq_q; ++i) {
            const size_t w = bh * (size_t)p.seq_q + (size_t)(tile->q_offset + i);
            const size_t t = bh * (size_t)tile->seq_q + (size_t)i;
            for (int d = 0; o && d < p.head_dim_v; ++d)
                o[t * (size_t)p.head_dim_v + d] = rc == 0 ? wo[w * (size_t)p.head_dim_v + d] : NAN;
            if (lse)
                lse[t] = rc == 0 ? wl[w] : NAN;
            if (seen)
                seen[t] = rc == 0 ? ws[w] : -1;
        }
    free(wo);
    free(wl);
    free(ws);
    return rc;
}

static int ref_core(const clattn_problem *problem, const clattn_host_buffers *in,
                    const ref_range *rg, double *o, double *lse, double *probs, int *seen)
{
    clattn_problem p;
    ref_normalize(problem, &p);
    const int B = p.batch, H = p.heads, Sq = p.seq_q, Skv = p.seq_kv;
    const int D = p.head_dim, Dv = p.head_dim_v, group = p.heads / p.kv_heads;
    const double scale = (double)p.scale;
    const int softcap = p.softcap > 0.0f;
    const double cap = (double)p.softcap;
    const float *slopes = p.alibi ? in->alibi_slopes : NULL;
    const float *sinks = p.sinks ? in->sinks : NULL;
    const void *bias = p.bias.enabled ? in->bias : NULL;
    const uint8_t *bmask = p.bool_mask.enabled ? in->bool_mask : NULL;
    double *s = malloc(sizeof(double) * (size_t)(Skv > 0 ? Skv : 1));
    unsigned char *vis = malloc((size_t)(Skv > 0 ? Skv : 1));
    double *acc = malloc(sizeof(double) * (size_t)(Dv > 0 ? Dv : 1));
    if (!s || !vis || !acc) {
        free(s);
        free(vis);
        free(acc);
        return out_of_memory(&p, o, lse, probs, seen);
    }
    /* varlen: rows and keys past a sequence's length are no part of it */
    if (probs && p.varlen)
        memset(probs, 0, sizeof(double) * (size_t)B * H * Sq * Skv);

    for (int b = 0; b < B; b++) {
        const ref_seq sq = seq_of(&p, in, b);
        /* plain tensors step batches by the batch stride, varlen ones by tokens */
        const int64_t qb = p.varlen ? 0 : b * p.q_strides.batch;
        for (int h = 0; h < H; h++) {
            const int hk = h / group;
            const double sink = sinks ? (double)sinks[h] : -INFINITY;
            for (int i = 0; i < sq.sq; i++) {
                if (i < rg->r0 || i >= rg->r1)
                    continue;
                const int64_t qoff = qb + h * p.q_strides.head + (sq.q0 + i) * p.q_strides.seq;
                const int64_t ip = (int64_t)i + sq.L - sq.sq;
                int64_t o_row, lse_row, probs_row;
                out_index(&p, &sq, h, i, &o_row, &lse_row, &probs_row);
                double m = -INFINITY;
                int nseen = 0;
                for (int j = 0; j < sq.skv; j++) {
                    vis[j] = (unsigned char)(j >= rg->k0 && j < rg->k1 && visible(&p, &sq, i, j));
                    if (vis[j] && bmask && bmask[mask_at(&p.bool_mask.strides, b, h, i, j)] == 0)
                        vis[j] = 0;
                    if (!vis[j])
                        continue;
                    double dot = 0.0;
                    for (int d = 0; d < D; d++)
                        dot += (double)ref_load(in->q, p.dtype, qoff + d) *
                               ref_kv_value(&p, in, 0, b, hk, sq.k0 + j, d);
                    /* the score pipeline of clattn.h, steps 1-4 in order */
                    double sc = scale * dot;
                    if (softcap)
                        sc = cap * tanh(sc / cap);
                    if (slopes) {
                        const double dist = (double)((int64_t)j - ip);
                        sc += (double)slopes[h] *
                              (p.alibi_mode == CLATTN_ALIBI_SYMMETRIC ? -fabs(dist) : dist);
                    }
                    if (in->mask)
                        sc += (double)in->mask[b * p.mask_batch_stride + h * p.mask_head_stride +
                                               (int64_t)i * Skv + j];
                    if (bias)
                        sc += (double)ref_load(bias, p.bias.dtype,
                                               mask_at(&p.bias.strides, b, h, i, j));
                    if (sc == -INFINITY) {
                        vis[j] = 0;
                        continue;
                    }
                    nseen++;
                    s[j] = sc;
                    if (sc > m || isnan(sc))
                        m = sc;
                }

                /* the sink joins the max and the denominator, never the values */
                double mx = m;
                if (sink > mx)
                    mx = sink;
                double sum = 0.0;
                for (int j = 0; j < sq.skv; j++) {
                    if (!vis[j])
                        continue;
                    s[j] = exp(s[j] - mx);
                    sum += s[j];
                }
                if (sink != -INFINITY)
                    sum += exp(sink - mx);
                for (int d = 0; d < Dv; d++)
                    acc[d] = 0.0;
                const int any = m != -INFINITY;
                for (int j = 0; j < Skv; j++) {
                    double pj = (any && j < sq.skv && vis[j]) ? s[j] / sum : 0.0;
                    if (probs)
                        probs[probs_row * Skv + j] = pj;
                    if (pj == 0.0)
                        continue;
                    for (int d = 0; d < Dv; d++)
                        acc[d] += pj * ref_kv_value(&p, in, 1, b, hk, sq.k0 + j, d);
                }
                if (o)
                    for (int d = 0; d < Dv; d++)
                        o[o_row * Dv + d] = acc[d];
                /* no key: -inf, or exactly the sink (mx == sink, sum == 1) */
                if (lse)
                    lse[lse_row] = (any || sink != -INFINITY) ? mx + log(sum) : -INFINITY;
                if (seen)
                    seen[lse_row] = nseen;
            }
        }
    }
    free(s);
    free(vis);
    free(acc);
    return 0;
}

int ref_mantissa_bits(clattn_dtype t)
{
    return t == CLATTN_F16 ? 10 : t == CLATTN_BF16 ? 7 : 23;
}

double ref_ulp(clattn_dtype t, double x)
{
    /* mantissa bits and the exponent of the smallest normal number */
    int mbits = 23, emin = -126;
    if (t == CLATTN_F16)
        mbits = 10, emin = -14;
    else if (t == CLATTN_BF16)
        mbits = 7;
    int e = emin;
    if (isfinite(x) && x != 0.0) {
        frexp(x, &e); /* |x| = m * 2^e, 0.5 <= m < 1 */
        e -= 1;
        if (e < emin)
            e = emin;
    }
    return ldexp(1.0, e - mbits);
}

double ref_rel_l2(const double *ref, const double *got, size_t n)
{
    double num = 0.0, den = 0.0, norm_got = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]))
            return INFINITY;
        double d = got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
        norm_got += got[i] * got[i];
    }
    if (den == 0.0)
        return sqrt(norm_got);
    return sqrt(num / den);
}
