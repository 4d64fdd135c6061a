/* A tuning bench: one problem's device buffers with random inputs, its
 * reference rows, and the checks and timings of plans run on it. */
#ifndef CLATTN_TUNER_BENCH_H
#define CLATTN_TUNER_BENCH_H

#include "plan.h"
#include "tuner_check.h"

struct clattn_context;

typedef struct clattn__timing {
    double median, p20, p80;
    int ok;
} clattn__timing;

/* Heads a tuning shape with sinks or ALiBi may have (their made-up values). */
#define CLATTN__TUNE_MAX_HEADS 256

typedef struct clattn__bench {
    struct clattn_context *ctx;
    clattn__shape s;
    clattn_buffers buf;
    float sinks[CLATTN__TUNE_MAX_HEADS], slopes[CLATTN__TUNE_MAX_HEADS];
    void *host_o;
    size_t o_bytes;
    clattn__ref_rows ref;
} clattn__bench;

/* Packed buffers for shape (strides and mask ignored) with inputs drawn from
 * seed, and the reference of its sampled rows. K and V are in the shape's
 * storage (random valid codes and scales, kv_host.c) and, when paged, in a
 * pool of the shape's size reached through a shuffled block table; the
 * reference reads them decoded as the kernels decode them. */
clattn_status clattn__bench_setup(struct clattn_context *ctx, const clattn_problem *shape,
                                  uint32_t seed, clattn__bench *t);
void clattn__bench_free(clattn__bench *t);

/* Poisons O, runs plan once, and gives the relative error of the sampled
 * rows against the reference. */
clattn_status clattn__bench_check(clattn__bench *t, clattn__plan *plan, double *err);

/* Times plan with profiling events: a warm-up run, then samples of enough
 * back-to-back runs to last ~2 ms, of the kernels in mask (bit = kernel id);
 * stops early when the first two samples are both slower than cut_ms
 * (0 = never). */
clattn_status clattn__bench_measure(clattn__bench *t, clattn__plan *plan, unsigned mask,
                                    int samples, double cut_ms, clattn__timing *out);

/* The q-quantile of v[0..n) (sorts v). */
double clattn__quantile(double *v, int n, double q);

#endif
