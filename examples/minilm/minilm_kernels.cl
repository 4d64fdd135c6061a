/* The encoder's own small kernels. The matmuls are CLBlast's and the
 * attention is clattn's; what is left is element-wise, or a reduction over
 * one row. Valid OpenCL C 1.2 on its own; the host sets HIDDEN (the model
 * width) and ROW_WG. Rows are tokens: row r of a batch padded to seq tokens
 * is token r % seq of sentence r / seq. */

#ifndef HIDDEN
#define HIDDEN 384
#endif
/* Work-items sharing one row; a power of two for the tree reduction. */
#ifndef ROW_WG
#define ROW_WG 64
#endif

/* The sum of v over the work-group, returned to every work-item. */
static float group_sum(float v, __local float *part)
{
    const int lid = get_local_id(0);
    part[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int n = ROW_WG / 2; n > 0; n /= 2) {
        if (lid < n)
            part[lid] += part[lid + n];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float s = part[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* part is reused by the next call */
    return s;
}

/* out = (row - mean) / sqrt(var + eps) * gamma + beta over the HIDDEN values
 * in row (local), the biased variance as in torch.nn.LayerNorm, computed
 * from the centred values (two passes) for accuracy. */
static void layer_norm_row(__local float *row, __local float *part, __global const float *gamma,
                           __global const float *beta, float eps, __global float *out)
{
    const int lid = get_local_id(0);
    float s = 0.0f;
    for (int c = lid; c < HIDDEN; c += ROW_WG)
        s += row[c];
    const float mean = group_sum(s, part) / HIDDEN;
    float q = 0.0f;
    for (int c = lid; c < HIDDEN; c += ROW_WG) {
        const float d = row[c] - mean;
        q += d * d;
    }
    const float inv = rsqrt(group_sum(q, part) / HIDDEN + eps);
    for (int c = lid; c < HIDDEN; c += ROW_WG)
        out[c] = (row[c] - mean) * inv * gamma[c] + beta[c];
}

/* x[r] = LayerNorm(word[ids[r]] + position[r % seq] + token_type[0]): BERT's
 * embeddings of a single-segment input. Ids outside the vocabulary read row
 * 0 rather than another buffer's memory. One work-group per row. */
__kernel __attribute__((reqd_work_group_size(ROW_WG, 1, 1)))
void embed_layer_norm(__global const int *ids, __global const float *word,
                      __global const float *position, __global const float *token_type,
                      __global const float *gamma, __global const float *beta, float eps,
                      int seq, int vocab, __global float *x)
{
    __local float row[HIDDEN], part[ROW_WG];
    const int r = get_group_id(0), lid = get_local_id(0);
    int id = ids[r];
    if (id < 0 || id >= vocab)
        id = 0;
    __global const float *w = word + (size_t)id * HIDDEN;
    __global const float *p = position + (size_t)(r % seq) * HIDDEN;
    for (int c = lid; c < HIDDEN; c += ROW_WG)
        row[c] = w[c] + p[c] + token_type[c];
    barrier(CLK_LOCAL_MEM_FENCE);
    layer_norm_row(row, part, gamma, beta, eps, x + (size_t)r * HIDDEN);
}

/* x[r] = LayerNorm(y[r] + bias + x[r]): a sub-layer's output projection
 * (without its bias, as the GEMM leaves it) added to the residual stream,
 * then BERT's post-sub-layer norm. One work-group per row; x is read whole
 * before it is written. */
__kernel __attribute__((reqd_work_group_size(ROW_WG, 1, 1)))
void add_layer_norm(__global const float *y, __global const float *bias,
                    __global const float *gamma, __global const float *beta, float eps,
                    __global float *x)
{
    __local float row[HIDDEN], part[ROW_WG];
    const size_t base = (size_t)get_group_id(0) * HIDDEN;
    const int lid = get_local_id(0);
    for (int c = lid; c < HIDDEN; c += ROW_WG)
        row[c] = y[base + c] + bias[c] + x[base + c];
    barrier(CLK_LOCAL_MEM_FENCE);
    layer_norm_row(row, part, gamma, beta, eps, x + base);
}

/* The fused projection's [rows][3 * HIDDEN] output plus its bias, split
 * into q, k and v of [rows][HIDDEN] each: per row [heads][head_dim], which
 * is the BSHD layout clattn reads through strides. */
__kernel void split_qkv(__global const float *qkv, __global const float *bias,
                        __global float *q, __global float *k, __global float *v)
{
    const int c = get_global_id(0), r = get_global_id(1);
    const float val = qkv[(size_t)r * 3 * HIDDEN + c] + bias[c];
    const int part = c / HIDDEN, col = c - part * HIDDEN;
    __global float *dst = part == 0 ? q : part == 1 ? k : v;
    dst[(size_t)r * HIDDEN + col] = val;
}

/* erf(x) by Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7 (about float's
 * rounding of 1 + erf(x), which is what GELU adds it to). PoCL's erf() took
 * 12-15 times as long as this on the MLP's activations. */
static float erf_as(float x)
{
    const float z = fabs(x), t = 1.0f / (1.0f + 0.3275911f * z);
    const float poly =
        ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
         0.254829592f) * t;
    return copysign(1.0f - poly * exp(-z * z), x);
}

/* h = gelu(h + bias) = a * Phi(a): the exact (erf) GELU of BERT's "gelu",
 * not the tanh approximation. */
__kernel void bias_gelu(__global float *h, __global const float *bias, int width)
{
    const int c = get_global_id(0), r = get_global_id(1);
    const size_t i = (size_t)r * width + c;
    const float a = h[i] + bias[c];
    h[i] = 0.5f * a * (1.0f + erf_as(a * 0.70710678118654752f));
}

/* out[b] = mean of x over the len[b] valid tokens of sentence b (padding
 * excluded), then divided by its L2 norm (at least 1e-12, as
 * torch.nn.functional.normalize) when normalize is set. One work-group per
 * sentence. */
__kernel __attribute__((reqd_work_group_size(ROW_WG, 1, 1)))
void mean_pool(__global const float *x, __global const int *len, int seq, int normalize,
               __global float *out)
{
    __local float row[HIDDEN], part[ROW_WG];
    const int b = get_group_id(0), lid = get_local_id(0);
    const int n = clamp(len[b], 1, seq);
    __global const float *xs = x + (size_t)b * seq * HIDDEN;
    float sq = 0.0f;
    for (int c = lid; c < HIDDEN; c += ROW_WG) {
        float s = 0.0f;
        for (int t = 0; t < n; ++t)
            s += xs[(size_t)t * HIDDEN + c];
        s /= n;
        row[c] = s;
        sq += s * s;
    }
    const float norm = group_sum(sq, part);
    const float scale = normalize ? 1.0f / fmax(sqrt(norm), 1e-12f) : 1.0f;
    for (int c = lid; c < HIDDEN; c += ROW_WG)
        out[(size_t)b * HIDDEN + c] = row[c] * scale;
}
