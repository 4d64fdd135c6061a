/* Validating buffers and enqueueing a planned path. */
#ifndef CLATTN_ATTENTION_H
#define CLATTN_ATTENTION_H

#include "plan.h"
#include "problem.h"

struct clattn_context;

/* clattn_forward without taking the context lock. When probs_host is not
 * NULL the path must be three-stage: each chunk's probabilities are read back
 * into it ([batch][heads][seq_q][seq_kv]) and the call blocks. */
clattn_status clattn__forward_locked(struct clattn_context *ctx, const clattn__shape *s,
                                     const clattn_buffers *buf, cl_uint num_wait,
                                     const cl_event *wait, cl_event *done, float *probs_host);

#endif
