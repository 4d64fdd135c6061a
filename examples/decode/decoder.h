/* A small random-weight decoder-only transformer on the device: pre-norm
 * blocks of GQA attention with ALiBi (clattn) and a ReLU MLP, tied
 * embeddings. One call of decoder_step advances every sequence of the batch
 * by one token. */
#ifndef DECODE_DECODER_H
#define DECODE_DECODER_H

#include "kv_cache.h"
#include "weights.h"

typedef struct layer_weights {
    cl_mem wq, wk, wv, wo, w1, w2; /* [in][out], row-major */
} layer_weights;

typedef struct decoder {
    decoder_shape s;
    const ops *o;
    clattn_context *ctx;
    cl_mem embed; /* [vocab][d_model]; the output projection too (tied) */
    layer_weights *layers;
    /* Activations of one step, [batch][...]. */
    cl_mem x, h, q, k_new, v_new, attn_out, mlp, logits;
    cl_mem tokens, positions, kv_lens, alibi_slopes;
} decoder;

/* Uploads the weights; w may be released afterwards. */
void decoder_create(decoder *d, const model_weights *w, const ops *o, clattn_context *ctx);
void decoder_release(decoder *d);

/* The attention problem of one layer for a cache of `capacity` keys per
 * sequence (page_size > 0: paged, capacity a multiple of it). */
clattn_problem decoder_attention(const decoder *d, const clattn_kv_storage *st, int capacity,
                                 int page_size);

/* Feeds tokens[b] at positions[b] (-1: slot b idles this step: nothing is
 * appended and its attention sees no key) and writes the next-token logits,
 * [batch][vocab], to logits. Blocks until they are on the host. */
void decoder_step(decoder *d, const kv_cache *c, const int32_t *tokens,
                  const int32_t *positions, float *logits);

#endif
