/*
 * Double-precision reference for clattn and the dtype conversions it needs.
 * Shared by the test suite and attn-tune's verification; never part of the
 * library, and written from the semantics in clattn.h rather than from the
 * library's code, so that the two can disagree.
 */
#ifndef CLATTN_REFERENCE_H
#define CLATTN_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "clattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* IEEE binary16: round to nearest even, with infinities, NaN and subnormals. */
uint16_t ref_f32_to_f16(float x);
float ref_f16_to_f32(uint16_t h);

/* bfloat16 (top 16 bits of an fp32): round to nearest even; NaN stays NaN. */
uint16_t ref_f32_to_bf16(float x);
float ref_bf16_to_f32(uint16_t h);

/* Bytes per element of a storage type (0 for a value outside the enum). */
size_t ref_dtype_size(clattn_dtype t);

/* Element idx (not byte) of an array of type t, widened to / narrowed from fp32. */
float ref_load(const void *base, clattn_dtype t, int64_t idx);
void ref_store(void *base, clattn_dtype t, int64_t idx, float v);

/* *out = *in with every default filled: kv_heads (0 -> heads), head_dim_v
 * (0 -> head_dim), scale (0 -> 1/sqrt(head_dim)), all-zero strides -> packed
 * strides (q [B][H][Sq][D], k [B][Hkv][Skv][D], v [B][Hkv][Skv][Dv],
 * o [B][H][Sq][Dv]). in and out may be the same object. */
void ref_normalize(const clattn_problem *in, clattn_problem *out);

/* 1 + the largest element offset of a [n0][n1][n2][n3] view with strides s
 * (the last dimension contiguous); 0 when any n is 0. All-zero strides mean
 * packed, as in clattn.h. */
int64_t ref_extent(const clattn_strides *s, int n0, int n1, int n2, int n3);

/* Attention in double straight from clattn.h: visibility from kv_lens (an
 * entry is clamped to 0..seq_kv as the kernels do), both causal alignments,
 * the window (a negative side is unbounded) and the additive mask with its
 * strides. A row that sees nothing gets O = 0 and LSE = -inf; a key whose
 * probability is zero is skipped, so NaN in its V cannot leak. q, k, v are
 * read through the problem's strides and dtype. Outputs are packed:
 * o [B][H][Sq][Dv], lse [B][H][Sq], probs [B][H][Sq][Skv] (invisible keys 0);
 * any of them may be NULL. */
void ref_attention(const clattn_problem *p, const clattn_host_buffers *in, double *o,
                   double *lse, double *probs);

/* sqrt(sum (got-ref)^2 / sum ref^2) over n elements; when sum ref^2 == 0,
 * sqrt(sum got^2). A NaN in got gives INFINITY. */
double ref_rel_l2(const double *ref, const double *got, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* CLATTN_REFERENCE_H */
