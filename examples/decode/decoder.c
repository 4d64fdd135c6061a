#include "decoder.h"

#include <stdlib.h>
#include <string.h>

static cl_mem upload(const decoder *d, const float *w, int rows, int cols)
{
    return ops_buffer(d->o, (size_t)rows * (size_t)cols * sizeof *w, w);
}

static void upload_layer(decoder *d, const host_layer *h, layer_weights *w)
{
    const decoder_shape *s = &d->s;
    const int kv_dim = s->kv_heads * s->head_dim, q_dim = s->heads * s->head_dim;
    w->wq = upload(d, h->wq, s->d_model, q_dim);
    w->wk = upload(d, h->wk, s->d_model, kv_dim);
    w->wv = upload(d, h->wv, s->d_model, kv_dim);
    w->wo = upload(d, h->wo, q_dim, s->d_model);
    w->w1 = upload(d, h->w1, s->d_model, s->hidden);
    w->w2 = upload(d, h->w2, s->hidden, s->d_model);
}

static cl_mem activation(const decoder *d, int width, size_t elem)
{
    return ops_buffer(d->o, (size_t)d->s.batch * (size_t)width * elem, NULL);
}

void decoder_create(decoder *d, const model_weights *w, const ops *o, clattn_context *ctx)
{
    memset(d, 0, sizeof *d);
    const decoder_shape *s = &w->s;
    d->s = *s;
    d->o = o;
    d->ctx = ctx;
    d->layers = calloc((size_t)s->layers, sizeof *d->layers);
    if (!d->layers)
        die("out of memory");
    d->embed = upload(d, w->embed, s->vocab, s->d_model);
    for (int l = 0; l < s->layers; ++l)
        upload_layer(d, &w->layers[l], &d->layers[l]);

    const int q_dim = s->heads * s->head_dim, kv_dim = s->kv_heads * s->head_dim;
    d->x = activation(d, s->d_model, sizeof(float));
    d->h = activation(d, s->d_model, sizeof(float));
    d->q = activation(d, q_dim, sizeof(float));
    d->k_new = activation(d, kv_dim, sizeof(float));
    d->v_new = activation(d, kv_dim, sizeof(float));
    d->attn_out = activation(d, q_dim, sizeof(float));
    d->mlp = activation(d, s->hidden, sizeof(float));
    d->logits = activation(d, s->vocab, sizeof(float));
    d->tokens = activation(d, 1, sizeof(int32_t));
    d->positions = activation(d, 1, sizeof(int32_t));
    d->kv_lens = activation(d, 1, sizeof(int32_t));

    float slopes[256];
    if (s->heads > 256)
        die("heads %d: at most 256 supported here", s->heads);
    check_attn(ctx, clattn_alibi_slopes(s->heads, slopes), "clattn_alibi_slopes");
    d->alibi_slopes = ops_buffer(o, (size_t)s->heads * sizeof slopes[0], slopes);
}

void decoder_release(decoder *d)
{
    cl_mem all[] = {d->embed,  d->x,      d->h,      d->q,         d->k_new,
                    d->v_new,  d->attn_out, d->mlp,  d->logits,    d->tokens,
                    d->positions, d->kv_lens, d->alibi_slopes};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        clReleaseMemObject(all[i]);
    for (int l = 0; l < d->s.layers; ++l) {
        const layer_weights *w = &d->layers[l];
        cl_mem lw[] = {w->wq, w->wk, w->wv, w->wo, w->w1, w->w2};
        for (size_t i = 0; i < sizeof lw / sizeof lw[0]; ++i)
            clReleaseMemObject(lw[i]);
    }
    free(d->layers);
}

clattn_problem decoder_attention(const decoder *d, const clattn_kv_storage *st, int capacity,
                                 int page_size)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = d->s.batch;
    p.heads = d->s.heads;
    p.kv_heads = d->s.kv_heads;
    p.seq_q = 1;
    p.seq_kv = capacity;
    p.head_dim = d->s.head_dim;
    p.dtype = CLATTN_F32;
    /* With one query row the causal mask hides nothing kv_lens does not;
     * it states what the model is, and costs nothing. */
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    p.alibi = 1;
    p.k_storage = *st;
    p.v_storage = *st;
    if (page_size > 0) {
        p.paged.enabled = 1;
        p.paged.page_size = page_size;
        p.paged.max_pages_per_seq = capacity / page_size;
        p.paged.num_pages = p.batch * p.paged.max_pages_per_seq;
    }
    return p;
}

/* q, k, v projections, the new token's K/V into the cache, attention over
 * the cache, and the output projection added to the residual stream. */
static void attention_block(decoder *d, const kv_cache *c, int l)
{
    const decoder_shape *s = &d->s;
    const layer_weights *w = &d->layers[l];
    const int b = s->batch, q_dim = s->heads * s->head_dim, kv_dim = s->kv_heads * s->head_dim;
    ops_rms_norm(d->o, d->x, d->h, b, s->d_model);
    /* Row b of h * W is [heads][head_dim] already: the packed
     * [batch][heads][1][head_dim] that clattn reads, no transpose needed. */
    ops_gemm(d->o, b, q_dim, s->d_model, d->h, w->wq, 0, 0.0f, d->q);
    ops_gemm(d->o, b, kv_dim, s->d_model, d->h, w->wk, 0, 0.0f, d->k_new);
    ops_gemm(d->o, b, kv_dim, s->d_model, d->h, w->wv, 0, 0.0f, d->v_new);

    clattn_buffers cache;
    kv_cache_buffers(c, l, &cache);
    check_attn(d->ctx,
               clattn_kv_append(d->ctx, &c->attn, 1, d->k_new, d->v_new, d->positions, &cache,
                                0, NULL, NULL),
               "clattn_kv_append");
    clattn_buffers fwd = cache;
    fwd.q = d->q;
    fwd.o = d->attn_out;
    fwd.kv_lens = d->kv_lens;
    fwd.alibi_slopes = d->alibi_slopes;
    check_attn(d->ctx, clattn_forward(d->ctx, &c->attn, &fwd, 0, NULL, NULL), "clattn_forward");
    /* beta = 1 adds the projection onto x: the residual needs no kernel. */
    ops_gemm(d->o, b, s->d_model, q_dim, d->attn_out, w->wo, 0, 1.0f, d->x);
}

static void mlp_block(decoder *d, int l)
{
    const decoder_shape *s = &d->s;
    const layer_weights *w = &d->layers[l];
    ops_rms_norm(d->o, d->x, d->h, s->batch, s->d_model);
    ops_gemm(d->o, s->batch, s->hidden, s->d_model, d->h, w->w1, 0, 0.0f, d->mlp);
    ops_relu(d->o, d->mlp, (size_t)s->batch * (size_t)s->hidden);
    ops_gemm(d->o, s->batch, s->d_model, s->hidden, d->mlp, w->w2, 0, 1.0f, d->x);
}

void decoder_step(decoder *d, const kv_cache *c, const int32_t *tokens,
                  const int32_t *positions, float *logits)
{
    const decoder_shape *s = &d->s;
    const size_t ints = (size_t)s->batch * sizeof(int32_t);
    int32_t kv_lens[256];
    if (s->batch > 256)
        die("batch %d: at most 256 supported here", s->batch);
    /* An idle slot's position -1 is outside the cache, so clattn_kv_append
     * skips it, and its length 0 makes its attention row all zeros. */
    for (int b = 0; b < s->batch; ++b)
        kv_lens[b] = positions[b] + 1;
    ops_write(d->o, d->tokens, ints, tokens);
    ops_write(d->o, d->positions, ints, positions);
    ops_write(d->o, d->kv_lens, ints, kv_lens);

    ops_embed(d->o, d->tokens, d->embed, d->x, s->batch, s->d_model, s->vocab);
    for (int l = 0; l < s->layers; ++l) {
        attention_block(d, c, l);
        mlp_block(d, l);
    }
    ops_rms_norm(d->o, d->x, d->h, s->batch, s->d_model);
    ops_gemm(d->o, s->batch, s->vocab, s->d_model, d->h, d->embed, 1, 0.0f, d->logits);
    check_cl(clEnqueueReadBuffer(d->o->queue, d->logits, CL_TRUE, 0,
                                 (size_t)s->batch * (size_t)s->vocab * sizeof(float), logits, 0,
                                 NULL, NULL),
             "reading the logits");
}
