/* The blocking host-memory conveniences over clattn_forward. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "internal.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

typedef struct {
    cl_mem q, k, v, o, mask, kv_lens, lse;
} device_copies;

static void release_copies(device_copies *d)
{
    cl_mem *m = &d->q;
    for (int i = 0; i < 7; ++i)
        if (m[i])
            clReleaseMemObject(m[i]);
}

static clattn_status copy_in(clattn_context *ctx, cl_mem *out, const void *host, int64_t bytes,
                             const char *name)
{
    cl_int err;
    /* COPY_HOST_PTR for outputs too: gaps of a strided O keep their values. */
    *out = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (size_t)bytes,
                          (void *)host, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        char what[64];
        snprintf(what, sizeof what, "clCreateBuffer (%s)", name);
        return clattn__cl_fail(ctx, err, what);
    }
    return CLATTN_OK;
}

static clattn_status check_host(clattn_context *ctx, const clattn__shape *s,
                                const clattn_host_buffers *h)
{
    if (!h)
        return BAD("buffers is NULL");
    if (!h->q)
        return BAD("buffers.q is NULL");
    if (!h->k)
        return BAD("buffers.k is NULL");
    if (!h->v)
        return BAD("buffers.v is NULL");
    if (h->kv_lens)
        for (int b = 0; b < s->p.batch; ++b)
            if (h->kv_lens[b] < 0 || h->kv_lens[b] > s->p.seq_kv)
                return BAD("kv_lens[%d] = %d is outside 0..seq_kv (%d)", b, (int)h->kv_lens[b],
                           s->p.seq_kv);
    return CLATTN_OK;
}

/* Uploads, runs and reads back; o may be NULL only when probs is given. */
static clattn_status run_host(clattn_context *ctx, const clattn__shape *s,
                              const clattn_host_buffers *h, float *probs)
{
    const int64_t es = (int64_t)s->elem_size;
    device_copies d;
    memset(&d, 0, sizeof d);
    clattn_status st = copy_in(ctx, &d.q, h->q, s->q_extent * es, "q");
    if (st == CLATTN_OK)
        st = copy_in(ctx, &d.k, h->k, s->k_extent * es, "k");
    if (st == CLATTN_OK)
        st = copy_in(ctx, &d.v, h->v, s->v_extent * es, "v");
    if (st == CLATTN_OK && h->mask)
        st = copy_in(ctx, &d.mask, h->mask, s->mask_extent * 4, "mask");
    if (st == CLATTN_OK && h->kv_lens)
        st = copy_in(ctx, &d.kv_lens, h->kv_lens, (int64_t)s->p.batch * 4, "kv_lens");
    if (st == CLATTN_OK && h->o)
        st = copy_in(ctx, &d.o, h->o, s->o_extent * es, "o");
    if (st == CLATTN_OK && !h->o) {
        cl_int err;
        d.o = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, (size_t)(s->o_extent * es), NULL,
                             &err);
        if (err != CL_SUCCESS) {
            d.o = NULL;
            st = clattn__cl_fail(ctx, err, "clCreateBuffer (o)");
        }
    }
    if (st == CLATTN_OK && h->lse) {
        cl_int err;
        d.lse = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, (size_t)(s->lse_elems * 4), NULL,
                               &err);
        if (err != CL_SUCCESS) {
            d.lse = NULL;
            st = clattn__cl_fail(ctx, err, "clCreateBuffer (lse)");
        }
    }
    cl_event done = NULL;
    if (st == CLATTN_OK) {
        clattn_buffers b = {d.q, d.k, d.v, d.o, d.mask, d.kv_lens, d.lse};
        st = clattn__forward_locked(ctx, s, &b, 0, NULL, &done, probs);
    }
    /* The LSE comes back through a copy, so a failing read of either output
     * leaves both of the caller's arrays untouched. */
    float *lse = NULL;
    if (st == CLATTN_OK && h->lse) {
        lse = malloc((size_t)(s->lse_elems * 4));
        cl_int err = lse ? clEnqueueReadBuffer(ctx->queue, d.lse, CL_TRUE, 0,
                                               (size_t)(s->lse_elems * 4), lse, 1, &done, NULL)
                         : CL_SUCCESS;
        if (!lse)
            st = clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
        else if (err != CL_SUCCESS)
            st = clattn__cl_fail(ctx, err, "clEnqueueReadBuffer (lse)");
    }
    if (st == CLATTN_OK && h->o) {
        cl_int err = clEnqueueReadBuffer(ctx->queue, d.o, CL_TRUE, 0, (size_t)(s->o_extent * es),
                                         h->o, 1, &done, NULL);
        if (err != CL_SUCCESS)
            st = clattn__cl_fail(ctx, err, "clEnqueueReadBuffer (o)");
    }
    if (st == CLATTN_OK && lse)
        memcpy(h->lse, lse, (size_t)(s->lse_elems * 4));
    free(lse);
    if (done) {
        /* Do not free the buffers under a kernel that may still run. */
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    } else {
        clFinish(ctx->queue);
    }
    release_copies(&d);
    return st;
}

clattn_status clattn_forward_host(clattn_context *ctx, const clattn_problem *problem,
                                  const clattn_host_buffers *buffers)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    clattn__shape s;
    clattn_status st = clattn__problem_normalize(ctx, problem, &s);
    if (st == CLATTN_OK)
        st = check_host(ctx, &s, buffers);
    if (st == CLATTN_OK && !buffers->o)
        st = BAD("buffers.o is NULL");
    if (st == CLATTN_OK)
        st = run_host(ctx, &s, buffers, NULL);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

clattn_status clattn_attention_weights_host(clattn_context *ctx, const clattn_problem *problem,
                                            const clattn_host_buffers *in, float *probs)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    clattn__shape s;
    clattn_status st = clattn__problem_normalize(ctx, problem, &s);
    if (st == CLATTN_OK)
        st = check_host(ctx, &s, in);
    if (st == CLATTN_OK && !probs)
        st = BAD("probs is NULL");
    if (st == CLATTN_OK && s.p.path != CLATTN_PATH_AUTO && s.p.path != CLATTN_PATH_THREE_STAGE)
        st = BAD("attention weights come from the three-stage path (problem.path is %d)",
                 (int)s.p.path);
    if (st == CLATTN_OK) {
        s.p.path = CLATTN_PATH_THREE_STAGE;
        st = run_host(ctx, &s, in, probs);
    }
    pthread_mutex_unlock(&ctx->lock);
    return st;
}
