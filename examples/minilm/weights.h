/* The encoder's tensors from model.safetensors: each looked up by its
 * transformers name (with or without a "bert." prefix), checked to be F32
 * of the shape config.json implies, and handed out as bytes inside the file
 * (the format does not align them, so they are copied, never dereferenced
 * as floats). */
#ifndef MINILM_WEIGHTS_H
#define MINILM_WEIGHTS_H

#include <stddef.h>

#include "config.h"
#include "safetensors.h"

typedef const unsigned char *tensor_bytes;

typedef struct layer_tensors {
    tensor_bytes wq, bq, wk, bk, wv, bv; /* self-attention: Linear [hidden][hidden] */
    tensor_bytes wo, bo, ln1_g, ln1_b;   /* attention output projection, LayerNorm */
    tensor_bytes w1, b1;                 /* intermediate: Linear [inter][hidden] */
    tensor_bytes w2, b2, ln2_g, ln2_b;   /* output: Linear [hidden][inter], LayerNorm */
} layer_tensors;

typedef struct model_weights {
    unsigned char *file;
    size_t size;
    st_file st;
    tensor_bytes word, position, token_type, emb_ln_g, emb_ln_b;
    layer_tensors *layers;
} model_weights;

/* Dies with the file and the tensor's name when the file is unreadable or
 * corrupt, or a tensor is missing or of another dtype or shape. */
void weights_load(model_weights *w, const char *path, const minilm_config *c);
void weights_free(model_weights *w);

#endif
