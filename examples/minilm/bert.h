/* The BERT encoder on the device: embeddings and their LayerNorm, the
 * post-norm encoder layers (fused QKV projection, clattn's attention with
 * the padding given as kv_lens, output projection, GELU MLP), then mean
 * pooling over each sentence's tokens and L2 normalisation. */
#ifndef MINILM_BERT_H
#define MINILM_BERT_H

#include <stdint.h>

#include "config.h"
#include "ops.h"
#include "weights.h"

typedef struct device_layer {
    cl_mem wqkv, bqkv; /* query, key and value stacked: [3 * hidden][hidden] */
    cl_mem wo, bo, ln1_g, ln1_b, w1, b1, w2, b2, ln2_g, ln2_b;
} device_layer;

typedef struct bert {
    minilm_config cfg;
    ops *o;
    clattn_context *ctx;
    cl_mem word, position, token_type, emb_ln_g, emb_ln_b;
    device_layer *layers;
    /* Activations, for up to max_rows tokens of max_batch sentences. */
    size_t max_rows;
    int max_batch;
    cl_mem ids, lens, x, qkv, q, k, v, attn, y, h, out;
    /* Set dump_layer (>= 0) and dump_q / dump_k (rows * hidden floats each)
     * to have that layer's queries and keys copied out by bert_encode;
     * bert_create sets dump_layer to -1. */
    int dump_layer;
    float *dump_q, *dump_k;
} bert;

/* Copies the weights to the device (w may be freed afterwards). */
void bert_create(bert *m, const minilm_config *c, const model_weights *w, ops *o,
                 clattn_context *ctx);
void bert_release(bert *m);

/* Embeds batch sentences padded to seq tokens: ids [batch][seq] (padding
 * any valid id), lens [batch] each in 1..seq. Writes out [batch][hidden]. */
void bert_encode(bert *m, const int32_t *ids, const int32_t *lens, int batch, int seq,
                 float *out);

#endif
