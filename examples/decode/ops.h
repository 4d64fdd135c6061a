/* The OpenCL side of the example outside clattn: error exits, buffers, the
 * own kernels of decode_kernels.cl and CLBlast's GEMM, all on one in-order
 * queue shared with clattn. */
#ifndef DECODE_OPS_H
#define DECODE_OPS_H

#include <stddef.h>

#include <clattn.h>

/* Exit code of a run the device cannot do (CTest counts it as a skip). */
#define DECODE_EXIT_UNSUPPORTED 77

typedef struct ops {
    cl_context cl;
    cl_command_queue queue;
    cl_program program;
    cl_kernel embed, rms_norm, relu;
} ops;

/* An example's errors end the program with a message: there is nothing to
 * recover, and the OS releases what was held. */
void die(const char *fmt, ...);
void check_cl(cl_int err, const char *what);
void check_attn(const clattn_context *ctx, clattn_status st, const char *what);

/* Takes the context's OpenCL objects (borrowed, as clattn does) and builds
 * decode_kernels.cl. */
void ops_init(ops *o, clattn_context *ctx);
void ops_release(ops *o);

/* A device buffer, filled from init when it is not NULL. */
cl_mem ops_buffer(const ops *o, size_t bytes, const void *init);
void ops_write(const ops *o, cl_mem dst, size_t bytes, const void *src);

void ops_embed(const ops *o, cl_mem tokens, cl_mem table, cl_mem x, int rows, int d_model,
               int vocab);
void ops_rms_norm(const ops *o, cl_mem x, cl_mem y, int rows, int d_model);
void ops_relu(const ops *o, cl_mem x, size_t n);

/* Row-major c[m][n] = a[m][k] * b + beta * c[m][n], where b is [k][n], or
 * [n][k] read transposed when b_transposed (tied embeddings). */
void ops_gemm(const ops *o, int m, int n, int k, cl_mem a, cl_mem b, int b_transposed,
              float beta, cl_mem c);

#endif
