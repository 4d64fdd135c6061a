/* The blocking host-memory conveniences over clattn_forward. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "buffers.h"
#include "internal.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* Device copies of the caller's host arrays, in clattn_buffers' form. */
static void release_copies(clattn_buffers *d)
{
    cl_mem *m[] = {&d->q,     &d->k,         &d->v,        &d->o,
                   &d->mask,  &d->kv_lens,   &d->lse,      &d->bias,
                   &d->bool_mask, &d->sinks, &d->alibi_slopes, &d->kv_start,
                   &d->cu_seqlens_q, &d->cu_seqlens_kv, &d->block_table, &d->k_scales,
                   &d->v_scales};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; ++i)
        if (*m[i])
            clReleaseMemObject(*m[i]);
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

/* Uploads, runs and reads back; o may be NULL only when probs is given. */
static clattn_status run_host(clattn_context *ctx, const clattn__shape *s,
                              const clattn_host_buffers *h, float *probs)
{
    const clattn_problem *p = &s->p;
    const int64_t es = (int64_t)s->elem_size;
    const int64_t bias_es = p->bias.dtype == CLATTN_F32 ? 4 : 2;
    const int64_t cu_bytes = ((int64_t)p->batch + 1) * 4;
    clattn_buffers d;
    memset(&d, 0, sizeof d);
    const struct {
        cl_mem *dst;
        const void *src;
        int64_t bytes;
        const char *name;
    } ins[] = {
        {&d.q, h->q, s->q_extent * es, "q"},
        {&d.k, h->k, s->k_bytes, "k"},
        {&d.v, h->v, s->v_bytes, "v"},
        {&d.mask, h->mask, s->mask_extent * 4, "mask"},
        {&d.kv_lens, h->kv_lens, (int64_t)p->batch * 4, "kv_lens"},
        {&d.bias, h->bias, s->bias_extent * bias_es, "bias"},
        {&d.bool_mask, h->bool_mask, s->bmask_extent, "bool_mask"},
        {&d.sinks, h->sinks, (int64_t)p->heads * 4, "sinks"},
        {&d.alibi_slopes, h->alibi_slopes, (int64_t)p->heads * 4, "alibi_slopes"},
        {&d.kv_start, h->kv_start, (int64_t)p->batch * 4, "kv_start"},
        {&d.cu_seqlens_q, h->cu_seqlens_q, cu_bytes, "cu_seqlens_q"},
        {&d.cu_seqlens_kv, h->cu_seqlens_kv, cu_bytes, "cu_seqlens_kv"},
        {&d.block_table, h->block_table, s->table_elems * 4, "block_table"},
        {&d.k_scales, h->k_scales, s->k_scale_bytes, "k_scales"},
        {&d.v_scales, h->v_scales, s->v_scale_bytes, "v_scales"},
        {&d.o, h->o, s->o_extent * es, "o"},
    };
    clattn_status st = CLATTN_OK;
    for (size_t i = 0; i < sizeof ins / sizeof ins[0] && st == CLATTN_OK; ++i)
        if (ins[i].src)
            st = copy_in(ctx, ins[i].dst, ins[i].src, ins[i].bytes, ins[i].name);
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
        st = clattn__forward_locked(ctx, s, &d, 0, NULL, &done, probs);
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
        st = clattn__check_host_buffers(ctx, &s, buffers, NULL);
    if (st == CLATTN_OK && !buffers->o)
        st = BAD("buffers.o is NULL");
    if (st == CLATTN_OK)
        st = run_host(ctx, &s, buffers, NULL);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

clattn_status clattn_forward_tile_host(clattn_context *ctx, const clattn_problem *problem,
                                       const clattn_tile *tile, const clattn_host_buffers *buffers)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    clattn__shape s;
    clattn_status st = clattn__problem_normalize_tile(ctx, problem, tile, &s);
    if (st == CLATTN_OK)
        st = clattn__check_host_buffers(ctx, &s, buffers, NULL);
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
    if (st == CLATTN_OK && !probs)
        st = BAD("probs is NULL");
    if (st == CLATTN_OK)
        st = clattn__check_host_buffers(ctx, &s, in, probs);
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
