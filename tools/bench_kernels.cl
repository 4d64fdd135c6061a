/* attn-tune bench's own kernels: yardsticks for clattn, not part of it.
 * Valid OpenCL C 1.2 on its own; embedded into attn-tune at build time.
 *
 * Tensors are packed fp32 [batch][heads][seq][dim]; query head h reads kv
 * head h / group. Visibility follows clattn.h: with shift = skv - sq, row i
 * sees key j when j <= i + shift (causal 1, bottom-right), j <= i (causal 2,
 * top-left), and, when windowed, i + shift - wl <= j <= i + shift + wr (a
 * negative bound is unbounded). */

/* First and last visible key of row i (last < first: none). */
static int2 visible_keys(int i, int sq, int skv, int causal, int windowed, int wl, int wr)
{
    int diag = i + skv - sq;
    int lo = 0, hi = skv - 1;
    if (causal == 1) hi = min(hi, diag);
    if (causal == 2) hi = min(hi, i);
    if (windowed) {
        if (wl >= 0) lo = max(lo, diag - wl);
        if (wr >= 0) hi = min(hi, diag + wr);
    }
    return (int2)(lo, hi);
}

/* The naive baseline: one query row per work-item, scalar loops, a plain
 * softmax over two passes of the keys (the row maximum, then the exponent
 * sums with O accumulated in place), no tiling, no local memory. */
__kernel void naive_attention(__global const float *q, __global const float *k,
                              __global const float *v, __global float *o, int rows, int heads,
                              int group, int sq, int skv, int d, int dv, float scale,
                              int causal, int windowed, int wl, int wr)
{
    int r = (int)get_global_id(0);
    if (r >= rows) return;
    int i = r % sq, bh = r / sq;
    int b = bh / heads, h = bh % heads;
    long kvh = (long)b * (heads / group) + h / group;
    __global const float *qr = q + (long)r * d;
    __global const float *kh = k + kvh * skv * d;
    __global const float *vh = v + kvh * skv * dv;
    __global float *orow = o + (long)r * dv;
    int2 vis = visible_keys(i, sq, skv, causal, windowed, wl, wr);

    float m = -INFINITY;
    for (int j = vis.x; j <= vis.y; j++) {
        float s = 0.0f;
        for (int c = 0; c < d; c++) s += qr[c] * kh[(long)j * d + c];
        m = fmax(m, s * scale);
    }
    for (int c = 0; c < dv; c++) orow[c] = 0.0f;
    float l = 0.0f;
    for (int j = vis.x; j <= vis.y; j++) {
        float s = 0.0f;
        for (int c = 0; c < d; c++) s += qr[c] * kh[(long)j * d + c];
        float p = exp(s * scale - m);
        l += p;
        for (int c = 0; c < dv; c++) orow[c] += p * vh[(long)j * dv + c];
    }
    float inv = l > 0.0f ? 1.0f / l : 0.0f; /* a row without keys gives zeros */
    for (int c = 0; c < dv; c++) orow[c] *= inv;
}

/* The middle stage of the CLBlast three-stage baseline: scaled scores in,
 * probabilities out, in place. One work-group of WG (a power of two)
 * work-items per row; keys a row cannot see get probability 0. */
#ifndef WG
#define WG 64
#endif
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
softmax_rows(__global float *scores, int sq, int skv, int causal, int windowed, int wl, int wr)
{
    __local float red[WG];
    int row = (int)get_group_id(0), t = (int)get_local_id(0);
    __global float *s = scores + (long)row * skv;
    int2 vis = visible_keys(row % sq, sq, skv, causal, windowed, wl, wr);

    float m = -INFINITY;
    for (int j = vis.x + t; j <= vis.y; j += WG) m = fmax(m, s[j]);
    red[t] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = WG / 2; w > 0; w /= 2) {
        if (t < w) red[t] = fmax(red[t], red[t + w]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    m = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);

    float l = 0.0f;
    for (int j = vis.x + t; j <= vis.y; j += WG) l += exp(s[j] - m);
    red[t] = l;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = WG / 2; w > 0; w /= 2) {
        if (t < w) red[t] += red[t + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float inv = red[0] > 0.0f ? 1.0f / red[0] : 0.0f;
    for (int j = t; j < skv; j += WG)
        s[j] = j >= vis.x && j <= vis.y ? exp(s[j] - m) * inv : 0.0f;
}

/* Device read bandwidth: every work-item sums its share of the buffer and
 * writes the sum, so no load can be dropped. "strided": work-item g reads
 * vectors g, g + G, g + 2G, ... (neighbours read neighbouring addresses);
 * "chunk": each work-item reads one contiguous run. n is in vectors. */
__kernel void read_strided4(__global const float4 *in, long n, __global float *out)
{
    long g = get_global_id(0), G = get_global_size(0);
    float4 acc = (float4)(0.0f);
    for (long i = g; i < n; i += G) acc += in[i];
    out[g] = acc.x + acc.y + acc.z + acc.w;
}

__kernel void read_strided16(__global const float16 *in, long n, __global float *out)
{
    long g = get_global_id(0), G = get_global_size(0);
    float16 acc = (float16)(0.0f);
    for (long i = g; i < n; i += G) acc += in[i];
    float8 a8 = acc.lo + acc.hi;
    float4 a4 = a8.lo + a8.hi;
    out[g] = a4.x + a4.y + a4.z + a4.w;
}

__kernel void read_chunk4(__global const float4 *in, long n, __global float *out)
{
    long g = get_global_id(0), G = get_global_size(0);
    long per = (n + G - 1) / G, lo = g * per, hi = min(n, lo + per);
    float4 acc = (float4)(0.0f);
    for (long i = lo; i < hi; i++) acc += in[i];
    out[g] = acc.x + acc.y + acc.z + acc.w;
}

__kernel void read_chunk16(__global const float16 *in, long n, __global float *out)
{
    long g = get_global_id(0), G = get_global_size(0);
    long per = (n + G - 1) / G, lo = g * per, hi = min(n, lo + per);
    float16 acc = (float16)(0.0f);
    for (long i = lo; i < hi; i++) acc += in[i];
    float8 a8 = acc.lo + acc.hi;
    float4 a4 = a8.lo + a8.hi;
    out[g] = a4.x + a4.y + a4.z + a4.w;
}

/* As read_chunk16 with four independent sums, so a long add latency does
 * not limit a core's loads. */
__kernel void read_chunk16x4(__global const float16 *in, long n, __global float *out)
{
    long g = get_global_id(0), G = get_global_size(0);
    long per = ((n + G - 1) / G + 3) & ~3L, lo = min(n, g * per), hi = min(n, lo + per);
    float16 a0 = (float16)(0.0f), a1 = a0, a2 = a0, a3 = a0;
    long i = lo;
    for (; i + 4 <= hi; i += 4) {
        a0 += in[i];
        a1 += in[i + 1];
        a2 += in[i + 2];
        a3 += in[i + 3];
    }
    for (; i < hi; i++) a0 += in[i];
    float16 acc = (a0 + a1) + (a2 + a3);
    float8 a8 = acc.lo + acc.hi;
    float4 a4 = a8.lo + a8.hi;
    out[g] = a4.x + a4.y + a4.z + a4.w;
}
