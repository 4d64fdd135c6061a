/* K and V storage on the host (clattn.h's clattn_kv_format): rows decoded
 * to fp32 exactly as cl/common.h's loaders decode them on the device, for
 * the tuner's reference, and random but valid contents of every format for
 * the tuner's inputs. No OpenCL. */
#ifndef CLATTN_KV_HOST_H
#define CLATTN_KV_HOST_H

#include <stdint.h>

#include "problem.h"

/* IEEE binary16 <-> fp32: exact widening; narrowing rounds to nearest even
 * (overflow to infinity, NaN stays NaN). */
float clattn__half_to_float(uint16_t h);
uint16_t clattn__float_to_half(float f);

/* The format K (is_v 0) or V (1) of a normalised shape is stored in, the
 * problem's dtype spelled out for CLATTN_KV_DEFAULT. */
clattn_kv_format clattn__kv_format_of(const clattn__shape *s, int is_v);

/* Channels 0..dims-1 of one row in format f into out. row: the row's first
 * byte; scales: its first scale (INT8: the row's first group's; INT4: its
 * first (scale, zero) pair; FP8: the tensor's or the kv head's), of type
 * sdt; group: channels per scale (INT8, INT4). Unused arguments may be 0. */
void clattn__kv_decode(clattn_kv_format f, int dims, int group, clattn_dtype sdt,
                       const unsigned char *row, const unsigned char *scales, float *out);

/* Key j of sequence b, kv head kvh, of K (is_v 0) or V (1) of a normalised
 * shape (not varlen), decoded into out (head_dim or head_dim_v floats):
 * data and scales are the tensor's buffers laid out as the shape says
 * (strides, paging), table the block table when paged. A table entry
 * outside the pool is clamped into it, as the kernels do. */
void clattn__kv_host_row(const clattn__shape *s, int is_v, const void *data, const void *scales,
                         const int32_t *table, int b, int kvh, int j, float *out);

/* Fills K (is_v 0) or V (1) of a normalised shape with packed strides
 * (data: its k_bytes / v_bytes, scales: its scale bytes) with reproducible
 * random contents drawn from seed: valid codes only (never an FP8 NaN or
 * infinity), values of magnitude up to about 1 after scaling (float
 * formats: uniform in [-1, 1), as clattn__fill_random), random scales. */
void clattn__kv_host_fill(const clattn__shape *s, int is_v, uint32_t seed, void *data,
                          void *scales);

#endif
