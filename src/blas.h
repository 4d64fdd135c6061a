/* CLBlast as an implementation of the three-stage path's two GEMMs, where
 * the library was built with it. */
#ifndef CLATTN_BLAS_H
#define CLATTN_BLAS_H

#include "problem.h"

struct clattn_context;

/* 1 when clattn was built with CLBlast. */
int clattn__blas_available(void);

/* Whether the GEMM stages of s may use CLBlast on this context: fp32
 * storage, an in-order queue (CLBlast orders its own kernels by the queue),
 * and for P*V a problem without any masking (a GEMM cannot skip keys, so a
 * NaN in V at a masked key would reach the row). */
int clattn__blas_qk_eligible(const struct clattn_context *ctx, const clattn__shape *s);
int clattn__blas_av_eligible(const struct clattn_context *ctx, const clattn__shape *s);

/* scores[bhl][r][j] = scale * q[bh0+bhl][row0+r] . k[kv head][j] for the
 * chunk (nothing masked: the softmax's raw mode does that). */
clattn_status clattn__blas_qk(struct clattn_context *ctx, const clattn__shape *s, cl_mem q,
                              cl_mem k, cl_mem scores, int bh0, int nbh, int row0, int nrows);

/* o[bh0+bhl][row0+r] = sum_j p[bhl][r][j] * v[kv head][j]. */
clattn_status clattn__blas_av(struct clattn_context *ctx, const clattn__shape *s, cl_mem p,
                              cl_mem v, cl_mem o, int bh0, int nbh, int row0, int nrows);

/* CLBlast's own GEMM parameters, tuned too: set 0 leaves CLBlast alone; set
 * 1 is CLBlast's generic default, sets 2..clattn__blas_num_sets() other
 * XgemmDirect configurations, applied with CLBlastOverrideParameters.
 * CLBlast keeps them per device for the whole process, so a tuned set also
 * reaches GEMMs the application itself makes through CLBlast on that
 * device. */
int clattn__blas_num_sets(void);

/* Drops CLBlast's cached programs (its cache is process-wide and would keep
 * a destroyed context's programs, and with them the cl_context, alive). */
void clattn__blas_release(void);
clattn_status clattn__blas_apply_set(struct clattn_context *ctx, int set);

#endif
