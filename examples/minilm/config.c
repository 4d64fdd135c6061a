#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

#define MAX_JSON_BYTES ((size_t)16 << 20)

/* The parsed file (an object, or an array when want_array), or NULL when it
 * does not exist and is optional. */
static cJSON *load_json(const char *dir, const char *name, int optional, int want_array)
{
    char *path = path_join(dir, name);
    FILE *probe = fopen(path, "rb");
    if (!probe && optional) {
        free(path);
        return NULL;
    }
    if (probe)
        fclose(probe);
    size_t size;
    char *text = (char *)read_file(path, MAX_JSON_BYTES, &size);
    cJSON *root = cJSON_ParseWithLength(text, size);
    if (!root)
        die("%s: not valid JSON", path);
    if (want_array ? !cJSON_IsArray(root) : !cJSON_IsObject(root))
        die("%s: not a JSON %s", path, want_array ? "array" : "object");
    free(text);
    free(path);
    return root;
}

static int get_int(const cJSON *obj, const char *file, const char *key, int lo, int hi)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        die("%s: \"%s\" is missing or not an integer in %d..%d", file, key, lo, hi);
    return (int)v->valuedouble;
}

static const char *get_string(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* A boolean that is absent counts as dflt. */
static int get_bool(const cJSON *obj, const char *file, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return dflt;
    if (!cJSON_IsBool(v))
        die("%s: \"%s\" is not true or false", file, key);
    return cJSON_IsTrue(v);
}

static void load_bert(const char *dir, minilm_config *c)
{
    cJSON *j = load_json(dir, "config.json", 0, 0);
    const char *f = "config.json";
    const char *type = get_string(j, "model_type"), *act = get_string(j, "hidden_act");
    const char *pos = get_string(j, "position_embedding_type");
    if (!type || strcmp(type, "bert"))
        die("%s: model_type \"%s\": only BERT models are supported", f, type ? type : "");
    /* BERT's "gelu" is the erf form (the tanh approximation is "gelu_new"). */
    if (!act || strcmp(act, "gelu"))
        die("%s: hidden_act \"%s\": only \"gelu\" is supported", f, act ? act : "");
    if (pos && strcmp(pos, "absolute"))
        die("%s: position_embedding_type \"%s\": only \"absolute\" is supported", f, pos);
    c->vocab_size = get_int(j, f, "vocab_size", 1, 1 << 24);
    c->hidden = get_int(j, f, "hidden_size", 1, 8192);
    c->layers = get_int(j, f, "num_hidden_layers", 1, 1024);
    c->heads = get_int(j, f, "num_attention_heads", 1, 1024);
    c->intermediate = get_int(j, f, "intermediate_size", 1, 65536);
    c->max_positions = get_int(j, f, "max_position_embeddings", 2, 1 << 20);
    c->type_vocab = get_int(j, f, "type_vocab_size", 1, 1 << 20);
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_eps");
    if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0.0 && eps->valuedouble < 1.0))
        die("%s: \"layer_norm_eps\" is missing or not in (0, 1)", f);
    c->layer_norm_eps = (float)eps->valuedouble;
    if (c->hidden % c->heads || c->hidden / c->heads > 512)
        die("%s: hidden_size %d does not split into %d heads of at most 512", f, c->hidden,
            c->heads);
    cJSON_Delete(j);
}

/* sentence-transformers' own limit; the tokenizer's model_max_length (512)
 * is not what it truncates to. */
static void load_sentence_config(const char *dir, minilm_config *c)
{
    cJSON *j = load_json(dir, "sentence_bert_config.json", 0, 0);
    c->max_seq_length =
        get_int(j, "sentence_bert_config.json", "max_seq_length", 3, 1 << 20);
    if (c->max_seq_length > c->max_positions)
        c->max_seq_length = c->max_positions;
    cJSON_Delete(j);
}

static void load_pipeline(const char *dir, minilm_config *c)
{
    cJSON *j = load_json(dir, "1_Pooling/config.json", 0, 0);
    const char *f = "1_Pooling/config.json";
    if (!get_bool(j, f, "pooling_mode_mean_tokens", 0) ||
        get_bool(j, f, "pooling_mode_cls_token", 0) ||
        get_bool(j, f, "pooling_mode_max_tokens", 0) ||
        get_bool(j, f, "pooling_mode_mean_sqrt_len_tokens", 0))
        die("%s: only mean pooling is supported", f);
    cJSON_Delete(j);

    j = load_json(dir, "tokenizer_config.json", 1, 0);
    if (j && !get_bool(j, "tokenizer_config.json", "do_lower_case", 1))
        die("tokenizer_config.json: a cased tokenizer; this example's WordPiece is uncased");
    cJSON_Delete(j);

    c->normalize = 0;
    j = load_json(dir, "modules.json", 1, 1);
    const cJSON *m;
    cJSON_ArrayForEach(m, j)
    {
        const char *type = get_string(m, "type");
        const char *tail = type ? strrchr(type, '.') : NULL;
        if (tail && !strcmp(tail, ".Normalize"))
            c->normalize = 1;
    }
    cJSON_Delete(j);
}

void config_load(const char *model_dir, minilm_config *c)
{
    memset(c, 0, sizeof *c);
    load_bert(model_dir, c);
    load_sentence_config(model_dir, c);
    load_pipeline(model_dir, c);
}
