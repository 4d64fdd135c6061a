/* The model's shape and its weights on the host, drawn from a seed: the same
 * model on every run and machine. The device copy (decoder.c) and the fp64
 * reference (reference.c) both start from here. */
#ifndef DECODE_WEIGHTS_H
#define DECODE_WEIGHTS_H

#include <stdint.h>

typedef struct decoder_shape {
    int vocab, d_model, layers, heads, kv_heads, head_dim, hidden;
    int batch;
} decoder_shape;

typedef struct host_layer {
    float *wq, *wk, *wv, *wo, *w1, *w2; /* [in][out], row-major */
} host_layer;

typedef struct model_weights {
    decoder_shape s;
    float *embed; /* [vocab][d_model]; the output projection too (tied) */
    host_layer *layers;
    /* kv_bound[(layer * 2 + {0: K, 1: V}) * kv_heads + head]: no token's k
     * or v in that head can exceed it in magnitude (see weights.c). */
    float *kv_bound;
} model_weights;

void weights_create(model_weights *w, const decoder_shape *s, uint64_t seed);
void weights_release(model_weights *w);

#endif
