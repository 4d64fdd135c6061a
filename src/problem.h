/* Validation and normalisation of a problem; no OpenCL calls. */
#ifndef CLATTN_PROBLEM_H
#define CLATTN_PROBLEM_H

#include "clattn.h"

/* Largest sequence length: keeps every row/tile index of the kernels in int. */
#define CLATTN__MAX_SEQ (1 << 30)
#define CLATTN__MAX_HEAD_DIM 256

/* A validated problem with every default filled in. Extents are in elements:
 * one more than the largest offset a view touches. */
typedef struct clattn__shape {
    clattn_problem p;
    int group; /* heads / kv_heads */
    size_t elem_size;
    int64_t q_extent, k_extent, v_extent, o_extent;
    int64_t mask_extent; /* when a mask is given */
    int64_t lse_elems;   /* batch * heads * seq_q */
    int has_mask, has_kv_lens; /* set by the caller once buffers are known */
} clattn__shape;

struct clattn_context;

/* Checks every field of *in and fills *out. On failure records a message
 * naming the field on ctx and returns CLATTN_ERR_INVALID_ARGUMENT. */
clattn_status clattn__problem_normalize(struct clattn_context *ctx, const clattn_problem *in,
                                        clattn__shape *out);

#endif
