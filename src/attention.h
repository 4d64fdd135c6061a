/* Enqueueing a planned path. */
#ifndef CLATTN_ATTENTION_H
#define CLATTN_ATTENTION_H

#include "plan.h"
#include "problem.h"
#include "program_cache.h"

struct clattn_context;

/* clattn_forward without taking the context lock. When probs_host is not
 * NULL the path must be three-stage: each chunk's probabilities are read back
 * into it ([batch][heads][seq_q][seq_kv]) and the call blocks. */
clattn_status clattn__forward_locked(struct clattn_context *ctx, const clattn__shape *s,
                                     const clattn_buffers *buf, cl_uint num_wait,
                                     const cl_event *wait, cl_event *done, float *probs_host);

/* Events of every kernel a call launched, for timing. */
typedef struct clattn__launch_record {
    cl_event *events; /* the kernel's, or a marker after a library call */
    cl_event *starts; /* NULL, or a marker before a library call (its end is the start) */
    clattn__kernel_id *ids;
    size_t count, capacity;
} clattn__launch_record;

void clattn__launch_record_release(clattn__launch_record *rec);

/* The built kernel for *cfg, shrinking cfg while the compiled kernel cannot
 * run it on this device. */
clattn_status clattn__get_kernel(struct clattn_context *ctx, clattn__kernel_config *cfg,
                                 const clattn__program_entry **out);

/* Enqueues a given plan (buffers already checked). When rec is not NULL every
 * launched kernel's event is recorded there (retained). */
clattn_status clattn__enqueue_plan(struct clattn_context *ctx, const clattn__shape *s,
                                  clattn__plan *plan, const clattn_buffers *buf,
                                  cl_uint num_wait, const cl_event *wait, cl_event *done,
                                  float *probs_host, clattn__launch_record *rec);

#endif
