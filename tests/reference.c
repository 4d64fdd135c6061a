/* Double-precision reference; see reference.h. */
#include "reference.h"

#include <math.h>
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

void ref_normalize(const clattn_problem *in, clattn_problem *out)
{
    clattn_problem p = *in;
    if (p.kv_heads == 0)
        p.kv_heads = p.heads;
    if (p.head_dim_v == 0)
        p.head_dim_v = p.head_dim;
    if (p.scale == 0.0f)
        p.scale = (float)(1.0 / sqrt((double)p.head_dim));
    packed_strides(&p.q_strides, p.heads, p.seq_q, p.head_dim);
    packed_strides(&p.k_strides, p.kv_heads, p.seq_kv, p.head_dim);
    packed_strides(&p.v_strides, p.kv_heads, p.seq_kv, p.head_dim_v);
    packed_strides(&p.o_strides, p.heads, p.seq_q, p.head_dim_v);
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

/* Whether key j is visible to query row i (kv length L), mask aside. */
static int visible(const clattn_problem *p, int L, int i, int j)
{
    int64_t ip = (int64_t)i + L - p->seq_q;
    if (j >= L)
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
    return 1;
}

void ref_attention(const clattn_problem *problem, const clattn_host_buffers *in, double *o,
                   double *lse, double *probs)
{
    clattn_problem p;
    ref_normalize(problem, &p);
    const int B = p.batch, H = p.heads, Sq = p.seq_q, Skv = p.seq_kv;
    const int D = p.head_dim, Dv = p.head_dim_v, group = p.heads / p.kv_heads;
    const double scale = (double)p.scale;
    double *s = malloc(sizeof(double) * (size_t)(Skv > 0 ? Skv : 1));
    unsigned char *vis = malloc((size_t)(Skv > 0 ? Skv : 1));
    double *acc = malloc(sizeof(double) * (size_t)(Dv > 0 ? Dv : 1));
    if (!s || !vis || !acc) {
        free(s);
        free(vis);
        free(acc);
        return;
    }

    for (int b = 0; b < B; b++) {
        int L = Skv;
        if (in->kv_lens) {
            L = in->kv_lens[b];
            L = L < 0 ? 0 : (L > Skv ? Skv : L);
        }
        for (int h = 0; h < H; h++) {
            const int hk = h / group;
            for (int i = 0; i < Sq; i++) {
                const int64_t qoff =
                    b * p.q_strides.batch + h * p.q_strides.head + i * p.q_strides.seq;
                const int64_t row = ((int64_t)b * H + h) * Sq + i;
                double m = -INFINITY;
                for (int j = 0; j < Skv; j++) {
                    vis[j] = (unsigned char)visible(&p, L, i, j);
                    if (!vis[j])
                        continue;
                    const int64_t koff =
                        b * p.k_strides.batch + hk * p.k_strides.head + j * p.k_strides.seq;
                    double dot = 0.0;
                    for (int d = 0; d < D; d++)
                        dot += (double)ref_load(in->q, p.dtype, qoff + d) *
                               (double)ref_load(in->k, p.dtype, koff + d);
                    double sc = scale * dot;
                    if (in->mask)
                        sc += (double)in->mask[b * p.mask_batch_stride + h * p.mask_head_stride +
                                               (int64_t)i * Skv + j];
                    if (sc == -INFINITY) {
                        vis[j] = 0;
                        continue;
                    }
                    s[j] = sc;
                    if (sc > m || isnan(sc))
                        m = sc;
                }

                double sum = 0.0;
                for (int j = 0; j < Skv; j++) {
                    if (!vis[j])
                        continue;
                    s[j] = exp(s[j] - m);
                    sum += s[j];
                }
                for (int d = 0; d < Dv; d++)
                    acc[d] = 0.0;
                const int any = m != -INFINITY;
                for (int j = 0; j < Skv; j++) {
                    double pj = (any && vis[j]) ? s[j] / sum : 0.0;
                    if (probs)
                        probs[row * Skv + j] = pj;
                    if (pj == 0.0)
                        continue;
                    const int64_t voff =
                        b * p.v_strides.batch + hk * p.v_strides.head + j * p.v_strides.seq;
                    for (int d = 0; d < Dv; d++)
                        acc[d] += pj * (double)ref_load(in->v, p.dtype, voff + d);
                }
                if (o)
                    for (int d = 0; d < Dv; d++)
                        o[row * Dv + d] = acc[d];
                if (lse)
                    lse[row] = any ? m + log(sum) : -INFINITY;
            }
        }
    }
    free(s);
    free(vis);
    free(acc);
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
