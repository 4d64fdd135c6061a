/* The OpenCL side of the example outside clattn: buffers, the kernels of
 * minilm_kernels.cl and CLBlast's GEMM, all on clattn's in-order queue. */
#ifndef MINILM_OPS_H
#define MINILM_OPS_H

#include <stddef.h>

#include <clattn.h>

#include "gemm_params.h"

typedef struct ops {
    cl_context cl;
    cl_command_queue queue;
    cl_program program;
    cl_kernel embed_layer_norm, add_layer_norm, split_qkv, bias_gelu, mean_pool;
    cl_device_id device;
    int hidden;
    int cpu_gemm; /* a CPU device: CLBlast gets the GEMM parameters of ops.c */
    const size_t *gemm_set; /* the parameters last given to CLBlast, or NULL */
    int row_wg;             /* work-items sharing a row in the row kernels */
} ops;

void check_cl(cl_int err, const char *what);
/* Exits with MINILM_EXIT_UNSUPPORTED when the device cannot run it. */
void check_attn(const clattn_context *ctx, clattn_status st, const char *what);

/* Takes the context's OpenCL objects (borrowed, as clattn does) and builds
 * minilm_kernels.cl for rows of `hidden` floats. */
void ops_init(ops *o, clattn_context *ctx, int hidden);
/* Also empties CLBlast's program cache: call it before the clattn context
 * (and with it the cl_context) is destroyed. */
void ops_release(ops *o);

/* A device buffer of bytes, filled from init when it is not NULL. */
cl_mem ops_buffer(const ops *o, size_t bytes, const void *init);
void ops_write(const ops *o, cl_mem dst, size_t bytes, const void *src);
void ops_read(const ops *o, cl_mem src, size_t bytes, void *dst);

void ops_embed_layer_norm(const ops *o, cl_mem ids, cl_mem word, cl_mem position,
                          cl_mem token_type, cl_mem gamma, cl_mem beta, float eps, int rows,
                          int seq, int vocab, cl_mem x);
void ops_add_layer_norm(const ops *o, cl_mem y, cl_mem bias, cl_mem gamma, cl_mem beta,
                        float eps, int rows, cl_mem x);
void ops_split_qkv(const ops *o, cl_mem qkv, cl_mem bias, int rows, cl_mem q, cl_mem k,
                   cl_mem v);
void ops_bias_gelu(const ops *o, cl_mem h, cl_mem bias, int rows, int width);
void ops_mean_pool(const ops *o, cl_mem x, cl_mem lens, int batch, int seq, int normalize,
                   cl_mem out);

int ops_gemm_rows(int rows);

/* Row-major c[m][n] = a[m][k] * wt[k][n], wt a torch.nn.Linear weight
 * transposed (ops_transpose); m from ops_gemm_rows, so that CLBlast
 * multiplies the buffers as they are (on CPU devices; ops.c). */
void ops_linear(ops *o, int m, int n, int k, cl_mem a, cl_mem wt, cl_mem c);

/* dst[cols][rows] = src[rows][cols]^T, on the host. */
void ops_transpose(float *dst, const float *src, size_t rows, size_t cols);

#endif
