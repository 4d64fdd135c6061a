/* Validation of a call's buffers against its validated problem. */
#ifndef CLATTN_BUFFERS_H
#define CLATTN_BUFFERS_H

#include "problem.h"

struct clattn_context;

/* Device buffers: every required one given, optional ones exactly as the
 * problem declares them, each in the context's cl_context and large enough,
 * and the outputs sharing no bytes with anything else the call touches. */
clattn_status clattn__check_buffers(struct clattn_context *ctx, const clattn__shape *s,
                                    const clattn_buffers *buf);

/* Host arrays of the blocking conveniences: presence as above, their sizes
 * when h->sizes gives them (probs: clattn_attention_weights_host's output,
 * else NULL), and the index arrays (kv_lens, kv_start, cu_seqlens, block
 * table) read and range-checked. */
clattn_status clattn__check_host_buffers(struct clattn_context *ctx, const clattn__shape *s,
                                         const clattn_host_buffers *h, const float *probs);

#endif
