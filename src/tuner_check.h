/* The tuner's correctness check: a double-precision reference on a sample of
 * rows, computed on the host once per shape. */
#ifndef CLATTN_TUNER_CHECK_H
#define CLATTN_TUNER_CHECK_H

#include "problem.h"

typedef struct clattn__ref_rows {
    int count;
    int64_t bh[64];
    int row[64];
    double *o; /* count * head_dim_v */
} clattn__ref_rows;

/* Fills n values of type t with reproducible values in [-1, 1). */
void clattn__fill_random(void *data, clattn_dtype t, size_t n, uint32_t seed);

/* Chooses sample rows of s and computes their reference output from the
 * packed host inputs (q in the dtype; k and v fp32 [batch][kv_heads][seq_kv]
 * [dim], decoded from whatever storage and paging the problem has), with the
 * problem's softcap and chunks, and its sinks and ALiBi slopes (per head;
 * read only when the problem enables them). Returns 0, or -1 when out of
 * memory. */
int clattn__ref_rows_make(const clattn__shape *s, const void *q, const float *k, const float *v,
                          const float *sinks, const float *slopes, clattn__ref_rows *ref);
void clattn__ref_rows_free(clattn__ref_rows *ref);

/* Relative L2 error of the sampled rows of o (packed host copy of the
 * output, dtype storage) against the reference; INFINITY on NaN. */
double clattn__ref_rows_error(const clattn__shape *s, const clattn__ref_rows *ref,
                              const void *o);

/* The tolerance a tuning candidate must meet for a dtype. */
double clattn__ref_tolerance(clattn_dtype t);

#endif
