/* The decoder's own small kernels. The matmuls are CLBlast's and the
 * attention is clattn's; what is left is element-wise or one reduction per
 * row, too small to deserve a library. Valid OpenCL C 1.2 on its own. */

/* Work-items that share one row of RMSNorm; a power of two for the tree
 * reduction. */
#ifndef NORM_WG
#define NORM_WG 64
#endif

/* x[b] = table[tokens[b]]; ids outside the vocabulary read row 0 rather than
 * another buffer's memory. */
__kernel void embed_tokens(__global const int *tokens, __global const float *table,
                           __global float *x, int d_model, int vocab)
{
    const int c = get_global_id(0), b = get_global_id(1);
    int t = tokens[b];
    if (t < 0 || t >= vocab)
        t = 0;
    x[b * d_model + c] = table[t * d_model + c];
}

/* y = x / sqrt(mean(x^2) + eps) per row (RMSNorm, Zhang & Sennrich 2019)
 * without a gain vector: a random-weight model has nothing to learn there.
 * One work-group per row. */
__kernel __attribute__((reqd_work_group_size(NORM_WG, 1, 1)))
void rms_norm(__global const float *x, __global float *y, int d_model, float eps)
{
    __local float part[NORM_WG];
    const int lid = get_local_id(0);
    __global const float *xr = x + get_group_id(0) * d_model;
    __global float *yr = y + get_group_id(0) * d_model;
    float s = 0.0f;
    for (int c = lid; c < d_model; c += NORM_WG)
        s += xr[c] * xr[c];
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int n = NORM_WG / 2; n > 0; n /= 2) {
        if (lid < n)
            part[lid] += part[lid + n];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inv = 1.0f / sqrt(part[0] / d_model + eps);
    for (int c = lid; c < d_model; c += NORM_WG)
        yr[c] = xr[c] * inv;
}

__kernel void relu(__global float *x)
{
    const size_t i = get_global_id(0);
    x[i] = fmax(x[i], 0.0f);
}
