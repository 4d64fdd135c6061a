#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A 32-bit size_t cannot hold larger models anyway. */
#define MAX_FILE_BYTES ((size_t)-1 / 2)

typedef struct lookup {
    const model_weights *w;
    const char *path, *prefix;
} lookup;

static void shape_text(char *out, size_t len, const uint64_t *dims, int ndim)
{
    size_t at = (size_t)snprintf(out, len, "[");
    for (int i = 0; i < ndim && at < len; ++i)
        at += (size_t)snprintf(out + at, len - at, "%s%llu", i ? ", " : "",
                               (unsigned long long)dims[i]);
    if (at < len)
        snprintf(out + at, len - at, "]");
}

/* The tensor prefix + name, of dtype F32 and shape [d0] or [d0][d1]
 * (d1 0 for a vector). */
static tensor_bytes get(const lookup *l, const char *name, int d0, int d1)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", l->prefix, name);
    const st_tensor *t = st_find(&l->w->st, full);
    if (!t)
        die("%s: tensor \"%s\" is missing", l->path, full);
    if (t->dtype != ST_F32)
        die("%s: tensor \"%s\" is %s; this example reads F32 weights", l->path, full,
            st_dtype_name(t->dtype));
    const uint64_t want[2] = {(uint64_t)d0, (uint64_t)d1};
    const int ndim = d1 ? 2 : 1;
    if (t->ndim != ndim || t->shape[0] != want[0] || (ndim == 2 && t->shape[1] != want[1])) {
        char got[128], exp[64];
        shape_text(got, sizeof got, t->shape, t->ndim);
        shape_text(exp, sizeof exp, want, ndim);
        die("%s: tensor \"%s\" has shape %s; config.json implies %s", l->path, full, got, exp);
    }
    return l->w->file + t->offset;
}

static void load_layer(const lookup *l, const minilm_config *c, int i, layer_tensors *t)
{
    const int h = c->hidden, m = c->intermediate;
    char n[128];
#define LAYER(field, suffix, d0, d1)                                                 \
    snprintf(n, sizeof n, "encoder.layer.%d.%s", i, suffix);                         \
    t->field = get(l, n, d0, d1)
    LAYER(wq, "attention.self.query.weight", h, h);
    LAYER(bq, "attention.self.query.bias", h, 0);
    LAYER(wk, "attention.self.key.weight", h, h);
    LAYER(bk, "attention.self.key.bias", h, 0);
    LAYER(wv, "attention.self.value.weight", h, h);
    LAYER(bv, "attention.self.value.bias", h, 0);
    LAYER(wo, "attention.output.dense.weight", h, h);
    LAYER(bo, "attention.output.dense.bias", h, 0);
    LAYER(ln1_g, "attention.output.LayerNorm.weight", h, 0);
    LAYER(ln1_b, "attention.output.LayerNorm.bias", h, 0);
    LAYER(w1, "intermediate.dense.weight", m, h);
    LAYER(b1, "intermediate.dense.bias", m, 0);
    LAYER(w2, "output.dense.weight", h, m);
    LAYER(b2, "output.dense.bias", h, 0);
    LAYER(ln2_g, "output.LayerNorm.weight", h, 0);
    LAYER(ln2_b, "output.LayerNorm.bias", h, 0);
#undef LAYER
}

void weights_load(model_weights *w, const char *path, const minilm_config *c)
{
    memset(w, 0, sizeof *w);
    w->file = read_file(path, MAX_FILE_BYTES, &w->size);
    char err[512];
    if (st_parse(w->file, w->size, &w->st, err, sizeof err))
        die("%s: not a valid safetensors file: %s", path, err);
    /* BertModel checkpoints name their tensors plainly; those saved from a
     * task model (BertForMaskedLM, ...) prefix them with "bert.". */
    lookup l = {w, path, ""};
    if (!st_find(&w->st, "embeddings.word_embeddings.weight") &&
        st_find(&w->st, "bert.embeddings.word_embeddings.weight"))
        l.prefix = "bert.";
    const int h = c->hidden;
    w->word = get(&l, "embeddings.word_embeddings.weight", c->vocab_size, h);
    w->position = get(&l, "embeddings.position_embeddings.weight", c->max_positions, h);
    w->token_type = get(&l, "embeddings.token_type_embeddings.weight", c->type_vocab, h);
    w->emb_ln_g = get(&l, "embeddings.LayerNorm.weight", h, 0);
    w->emb_ln_b = get(&l, "embeddings.LayerNorm.bias", h, 0);
    w->layers = xmalloc((size_t)c->layers * sizeof *w->layers);
    for (int i = 0; i < c->layers; ++i)
        load_layer(&l, c, i, &w->layers[i]);
}

void weights_free(model_weights *w)
{
    st_free(&w->st);
    free(w->layers);
    free(w->file);
    memset(w, 0, sizeof *w);
}
