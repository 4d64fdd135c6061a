/* Validation and normalisation of a problem; no OpenCL calls. */
#ifndef CLATTN_PROBLEM_H
#define CLATTN_PROBLEM_H

#include "clattn.h"
#include "kernels.h"

/* Largest sequence length: keeps every row/tile index of the kernels in int. */
#define CLATTN__MAX_SEQ (1 << 30)
#define CLATTN__MAX_HEAD_DIM 512
#define CLATTN__MLA_HEAD_DIM 576 /* the one head_dim above the limit: MLA, absorbed */
#define CLATTN__MAX_HEAD_DIM_V 512

/* A validated problem with every default filled in. Extents are in elements:
 * one more than the largest offset a view touches. */
typedef struct clattn__shape {
    clattn_problem p;
    int group; /* heads / kv_heads */
    size_t elem_size;
    int64_t q_extent, k_extent, v_extent, o_extent; /* K, V: in their storage's units */
    /* K and V in their storage (clattn_kv_format): bytes of the data (whose
     * extents count elements of float formats, bytes of the others), of
     * their scales, and the block table's entries (paged). */
    int64_t k_bytes, v_bytes, k_scale_bytes, v_scale_bytes, table_elems;
    clattn__kv_layout kv;
    int64_t mask_extent; /* elements of the 0.1 fp32 mask, when one is given */
    int64_t bias_extent, bmask_extent; /* elements of problem.bias / bool_mask */
    int64_t lse_elems;   /* batch * heads * seq_q (varlen: heads * total_q) */
    int has_mask, has_kv_lens; /* set by the caller once buffers are known */
    /* The additive mask the kernels read (the 0.1 mask mapped onto it when
     * given): storage type and strides, in elements. */
    clattn_dtype bias_dtype;
    clattn_mask_strides bias_strides;
    /* A tile of a larger problem (clattn_forward_tile): p's seq_q and seq_kv
     * are the tile's, the masks' extents the whole's. Off: offsets 0 and the
     * whole sizes equal to p's. */
    struct {
        int on, q_offset, kv_offset, whole_seq_q, whole_seq_kv;
    } tile;
} clattn__shape;

/* Bytes of one unit of a K or V stride in storage f: an element of a float
 * format (DEFAULT: the problem's dtype), a byte of the others. */
int clattn__kv_unit_bytes(clattn_kv_format f, clattn_dtype dtype);

/* Bytes of the scales of one K or V row of `dims` channels: INT8 a scale
 * per group, INT4 a scale and a zero per group (group 0: the whole row);
 * 0 for formats without per-row scales. */
int64_t clattn__kv_scale_row_bytes(const clattn_kv_storage *st, int dims);

/* Units of one K or V row of `dims` channels in storage f: elements of the
 * float formats, bytes of the others. */
int64_t clattn__kv_row_units(clattn_kv_format f, int dims);

/* The bytes each buffer of a validated shape spans (clattn_buffer_sizes_of;
 * sizes.c): what clattn_forward checks device buffers against, and host
 * arrays when their sizes are given. */
void clattn__buffer_sizes(const clattn__shape *s, clattn_buffer_sizes *out);

/* Takes the buffers' presence into account: records has_mask/has_kv_lens
 * and maps the 0.1 fp32 mask onto the additive mask the kernels read. */
void clattn__shape_set_mask(clattn__shape *s, int has_mask, int has_kv_lens);

struct clattn_context;

/* Checks every field of *in and fills *out. On failure records a message
 * naming the field on ctx and returns CLATTN_ERR_INVALID_ARGUMENT. */
clattn_status clattn__problem_normalize(struct clattn_context *ctx, const clattn_problem *in,
                                        clattn__shape *out);

/* clattn__problem_normalize of a tile of *in (clattn.h's clattn_tile). */
clattn_status clattn__problem_normalize_tile(struct clattn_context *ctx, const clattn_problem *in,
                                             const clattn_tile *tile, clattn__shape *out);


#endif
