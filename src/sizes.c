/* clattn_buffer_sizes_of: the sizes clattn_forward checks buffers against
 * (buffers.c), from the same validated shape, so the two cannot disagree. */
#include <pthread.h>
#include <stdint.h>

#include "internal.h"
#include "problem.h"

/* a * b, or SIZE_MAX when it does not fit */
static size_t mul_sat(size_t a, size_t b)
{
    return a != 0 && b > SIZE_MAX / a ? SIZE_MAX : a * b;
}

void clattn__buffer_sizes(const clattn__shape *s, clattn_buffer_sizes *out)
{
    const clattn_problem *p = &s->p;
    const size_t es = s->elem_size, bias_es = p->bias.dtype == CLATTN_F32 ? 4 : 2;
    const size_t per_batch = (size_t)p->batch * 4, per_head = (size_t)p->heads * 4;
    const size_t rows = (size_t)p->batch * (size_t)p->heads * (size_t)p->seq_q;
    clattn_buffer_sizes z = {
        .q = (size_t)s->q_extent * es,
        .k = (size_t)s->k_bytes,
        .v = (size_t)s->v_bytes,
        .o = (size_t)s->o_extent * es,
        .lse = (size_t)s->lse_elems * 4,
        .mask = (size_t)s->mask_extent * 4,
        .kv_lens = per_batch,
        .bias = (size_t)s->bias_extent * bias_es,
        .bool_mask = (size_t)s->bmask_extent,
        .sinks = per_head,
        .alibi_slopes = per_head,
        .kv_start = per_batch,
        .cu_seqlens_q = per_batch + 4,
        .cu_seqlens_kv = per_batch + 4,
        .block_table = (size_t)s->table_elems * 4,
        .k_scales = (size_t)s->k_scale_bytes,
        .v_scales = (size_t)s->v_scale_bytes,
        .probs = mul_sat(mul_sat(rows, (size_t)p->seq_kv), 4),
    };
    *out = z;
}

clattn_status clattn_buffer_sizes_of(clattn_context *ctx, const clattn_problem *problem,
                                     clattn_buffer_sizes *sizes)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    clattn__shape s;
    pthread_mutex_lock(&ctx->lock); /* the last error belongs to the context */
    const clattn_status st = sizes ? clattn__problem_normalize(ctx, problem, &s)
                                   : clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, "sizes is NULL");
    pthread_mutex_unlock(&ctx->lock);
    if (st == CLATTN_OK)
        clattn__buffer_sizes(&s, sizes);
    return st;
}

clattn_status clattn_tile_buffer_sizes_of(clattn_context *ctx, const clattn_problem *problem,
                                          const clattn_tile *tile, clattn_buffer_sizes *sizes)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    clattn__shape s;
    pthread_mutex_lock(&ctx->lock);
    const clattn_status st =
        sizes ? clattn__problem_normalize_tile(ctx, problem, tile, &s)
              : clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, "sizes is NULL");
    pthread_mutex_unlock(&ctx->lock);
    if (st == CLATTN_OK)
        clattn__buffer_sizes(&s, sizes);
    return st;
}
