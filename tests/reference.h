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
 * o [B][H][Sq][Dv]; with varlen q [total_q][H][D], k [total_kv][Hkv][D],
 * v [total_kv][Hkv][Dv], o [total_q][H][Dv], batch stride 0). in and out may
 * be the same object. */
void ref_normalize(const clattn_problem *in, clattn_problem *out);

/* 1 + the largest element offset of a [n0][n1][n2][n3] view with strides s
 * (the last dimension contiguous); 0 when any n is 0. All-zero strides mean
 * packed [n0][n1][n2][n3] (not the varlen packing: normalize first). */
int64_t ref_extent(const clattn_strides *s, int n0, int n1, int n2, int n3);

/* The element extents of q, k, v and o of a problem (any pointer may be
 * NULL), varlen included (its tensors span total_q / total_kv tokens); K and
 * V in their storage's units, over the whole pool when paged. */
void ref_tensor_extents(const clattn_problem *p, int64_t *q, int64_t *k, int64_t *v,
                        int64_t *o);

/* Units of one K or V row of `dims` channels in storage f: elements of the
 * float formats, bytes of the others (clattn.h's clattn_kv_format). */
int64_t ref_kv_row_units(clattn_kv_format f, int dims);

/* Channel d of K (is_v 0) or V (1), kv head hk, key `key` of sequence b (a
 * token index with varlen) of a normalized problem, decoded from its storage
 * (paged through in->block_table; scales from in->k_scales / v_scales). */
double ref_kv_value(const clattn_problem *p, const clattn_host_buffers *in, int is_v, int b,
                    int hk, int64_t key, int d);

/* 1 + the largest element offset of a [batch][heads][seq_q][seq_kv] mask
 * laid out by s (clattn_mask_strides: zero strides broadcast); 0 when a size
 * is not positive. */
int64_t ref_mask_extent(const clattn_problem *p, const clattn_mask_strides *s);

/* The standard ALiBi slopes (Press et al.) of `heads` heads in double: for a
 * power of two n, 2^(-8 (h + 1) / n); otherwise, with m the largest power of
 * two below n, the m slopes of m followed by the slopes 0, 2, 4, ... of 2m
 * for the remaining n - m heads. Writes heads values. */
void ref_alibi_slopes(int heads, double *out);

/* Attention in double straight from clattn.h. A feature of the problem is
 * applied when the problem enables it and its host buffer is given (the
 * legacy fp32 mask whenever in->mask is given, as before 1.0).
 *  - scores, in clattn.h's order: s = scale * q.k; softcap > 0:
 *    s = softcap * tanh(s / softcap); alibi: s += slope[h] * (j - i')
 *    (alibi_mode CLATTN_ALIBI_SYMMETRIC: s -= slope[h] * |j - i'|);
 *    then the fp32 mask (row stride seq_kv, mask_batch/head_stride) or the
 *    bias (read with bias.dtype at bias.strides); -inf hides the key.
 *  - visibility: S <= j < L with L = kv_lens[b] and S = kv_start[b] (each
 *    clamped to 0..seq_kv as the kernels do), i' = i + L - seq_q, both causal
 *    alignments, the window (a negative side is unbounded), chunks
 *    floor((j - S) / C) == floor((i' - S) / C) (floor division, also for a
 *    negative i' - S), and bool_mask[..] != 0 at bool_mask.strides.
 *  - sinks: exp(sink[h]) joins the softmax denominator (and the LSE); a
 *    sink of -inf is no sink.
 *  - varlen: sequence b is rows cu_seqlens_q[b].. and keys cu_seqlens_kv[b]..
 *    (entries clamped to 0..total, lengths to 0..seq_q / seq_kv); q, o, k, v
 *    are indexed token * seq stride + head * head stride; masks by b and the
 *    row and key inside the sequence.
 * A row that sees nothing gets O = 0 and LSE = -inf, or LSE = sink[h] with a
 * sink; a key whose probability is zero is skipped, so NaN in its V cannot
 * leak. q, k, v are read through the problem's strides and dtype. Outputs are
 * packed: o [B][H][Sq][Dv], lse [B][H][Sq], probs [B][H][Sq][Skv] (invisible
 * keys 0); with varlen o [total_q][H][Dv], lse [H][total_q], probs
 * [B][H][seq_q][seq_kv] with the rows and keys past a sequence's lengths 0
 * (o and lse entries of tokens outside every sequence are not written). Any
 * output may be NULL. Returns 0, or -1 when its scratch memory could not be
 * allocated: then it says so on stderr and every output element is NaN. */
int ref_attention(const clattn_problem *p, const clattn_host_buffers *in, double *o,
                  double *lse, double *probs);

/* ref_attention, and in seen (laid out like lse; may be NULL) the number of
 * keys each row sees with a score above -inf: 0 marks the rows whose O must
 * be exactly 0 (-1 everywhere when out of memory). */
int ref_attention_ex(const clattn_problem *p, const clattn_host_buffers *in, double *o,
                     double *lse, double *probs, int *seen);

/* The tile (clattn.h's clattn_tile) of a problem: ref_attention_ex of the
 * whole problem (in holds its whole tensors) for the tile's rows, with every
 * key outside the tile's range invisible. Outputs packed over the tile:
 * o [B][H][tile.seq_q][Dv], lse and seen [B][H][tile.seq_q]. Not for varlen.
 * Returns 0, or -1 (outputs NaN, seen -1) when out of memory. */
int ref_attention_tile(const clattn_problem *p, const clattn_tile *tile,
                       const clattn_host_buffers *in, double *o, double *lse, int *seen);

/* The distance between t's neighbouring values around |x| (unit in the last
 * place): 2^(floor(log2 |x|) - mantissa bits), the subnormal step below the
 * smallest normal number and for 0; x must be finite for a meaningful result. */
double ref_ulp(clattn_dtype t, double x);
/* Explicit mantissa bits of t (f32 23, f16 10, bf16 7). */
int ref_mantissa_bits(clattn_dtype t);

/* sqrt(sum (got-ref)^2 / sum ref^2) over n elements; when sum ref^2 == 0,
 * sqrt(sum got^2). A NaN in got gives INFINITY. */
double ref_rel_l2(const double *ref, const double *got, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* CLATTN_REFERENCE_H */
