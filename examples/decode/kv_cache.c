#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    clattn_kv_storage st;
} k_formats[] = {
    {"f32", {CLATTN_KV_F32, 0, 0, 0}},
    {"f16", {CLATTN_KV_F16, 0, 0, 0}},
    {"bf16", {CLATTN_KV_BF16, 0, 0, 0}},
    /* fp16 scales: their 11-bit precision is far below the quantization
     * step, and they halve what the scales cost. */
    {"int8", {CLATTN_KV_INT8, 0, CLATTN_F16, 0}},
    {"int8-g32", {CLATTN_KV_INT8, 32, CLATTN_F16, 0}},
    /* A whole-row int4 scale would spend 16 levels on the row's largest
     * value; groups of 32 match q4_0's blocks. */
    {"int4", {CLATTN_KV_INT4, 32, CLATTN_F16, 0}},
    {"q8_0", {CLATTN_KV_Q8_0, 0, 0, 0}},
    {"q4_0", {CLATTN_KV_Q4_0, 0, 0, 0}},
    {"e4m3", {CLATTN_KV_FP8_E4M3, 0, CLATTN_F32, 1}},
    {"e5m2", {CLATTN_KV_FP8_E5M2, 0, CLATTN_F32, 1}},
};
#define N_FORMATS (sizeof k_formats / sizeof k_formats[0])

int kv_format_parse(const char *name, clattn_kv_storage *out)
{
    for (size_t i = 0; i < N_FORMATS; ++i)
        if (!strcmp(name, k_formats[i].name)) {
            *out = k_formats[i].st;
            return 1;
        }
    return 0;
}

const char *kv_format_names(void)
{
    static char names[256];
    if (!names[0])
        for (size_t i = 0; i < N_FORMATS; ++i) {
            if (i)
                strcat(names, "|");
            strcat(names, k_formats[i].name);
        }
    return names;
}

/* Token slots of one layer's pool (every kv head has one per slot). */
static size_t slots(const clattn_problem *p)
{
    if (p->paged.enabled)
        return (size_t)p->paged.num_pages * (size_t)p->paged.page_size;
    return (size_t)p->batch * (size_t)p->seq_kv;
}

static int is_fp8(const clattn_kv_storage *st)
{
    return st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2;
}

/* OCP FP8: E4M3's largest finite value is 1.75 * 2^8, E5M2's 1.75 * 2^15. */
static float fp8_max(const clattn_kv_storage *st)
{
    return st->format == CLATTN_KV_FP8_E4M3 ? 448.0f : 57344.0f;
}

/* Mapping the bound (not a sample's maximum) to the largest finite value
 * means no token can ever saturate; FP8's precision is relative, so values
 * well below the bound keep their 3 (E4M3) or 2 (E5M2) mantissa bits as long
 * as they stay above the smallest normal, 2^-6 or 2^-14 of the scale. */
static cl_mem fp8_scales(const ops *o, const clattn_kv_storage *st, const float *bound,
                         int kv_heads)
{
    float s[64];
    for (int h = 0; h < kv_heads; ++h)
        s[h] = bound[h] / fp8_max(st);
    return ops_buffer(o, (size_t)kv_heads * sizeof s[0], s);
}

static void shuffled_table(kv_cache *c, const ops *o, uint64_t seed)
{
    const clattn_paging *g = &c->attn.paged;
    const int n = c->attn.batch * g->max_pages_per_seq;
    int32_t *table = malloc((size_t)n * sizeof *table);
    if (!table)
        die("out of memory");
    for (int i = 0; i < n; ++i)
        table[i] = i;
    for (int i = n - 1; i > 0; --i) { /* Fisher-Yates with an LCG */
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const int j = (int)((seed >> 33) % (uint64_t)(i + 1));
        const int32_t t = table[i];
        table[i] = table[j];
        table[j] = t;
    }
    c->block_table = ops_buffer(o, (size_t)n * sizeof *table, table);
    free(table);
}

static cl_mem *layer_array(int layers)
{
    cl_mem *a = calloc((size_t)layers, sizeof *a);
    if (!a)
        die("out of memory");
    return a;
}

void kv_cache_create(kv_cache *c, clattn_context *ctx, const ops *o, const clattn_problem *attn,
                     int layers, const float *fp8_bound, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->attn = *attn;
    c->layers = layers;
    if (attn->kv_heads > 64)
        die("kv_heads %d: at most 64 supported here", attn->kv_heads);
    c->k = layer_array(layers);
    c->v = layer_array(layers);
    c->k_scales = layer_array(layers);
    c->v_scales = layer_array(layers);
    const clattn_kv_storage *ks = &attn->k_storage, *vs = &attn->v_storage;
    /* The pool's sizes in every format come from the library, which knows
     * clattn.h's layouts; FP8's per-head scales are filled here. */
    check_attn(ctx, clattn_buffer_sizes_of(ctx, attn, &c->sizes), "clattn_buffer_sizes_of");
    for (int l = 0; l < layers; ++l) {
        c->k[l] = ops_buffer(o, c->sizes.k, NULL);
        c->v[l] = ops_buffer(o, c->sizes.v, NULL);
        if (c->sizes.k_scales && !is_fp8(ks))
            c->k_scales[l] = ops_buffer(o, c->sizes.k_scales, NULL);
        if (c->sizes.v_scales && !is_fp8(vs))
            c->v_scales[l] = ops_buffer(o, c->sizes.v_scales, NULL);
        if (is_fp8(ks))
            c->k_scales[l] = fp8_scales(o, ks, fp8_bound + (l * 2) * attn->kv_heads,
                                        attn->kv_heads);
        if (is_fp8(vs))
            c->v_scales[l] = fp8_scales(o, vs, fp8_bound + (l * 2 + 1) * attn->kv_heads,
                                        attn->kv_heads);
    }
    if (attn->paged.enabled)
        shuffled_table(c, o, seed);
}

static void release_all(cl_mem *a, int n)
{
    for (int i = 0; i < n; ++i)
        if (a[i])
            clReleaseMemObject(a[i]);
    free(a);
}

void kv_cache_release(kv_cache *c)
{
    release_all(c->k, c->layers);
    release_all(c->v, c->layers);
    release_all(c->k_scales, c->layers);
    release_all(c->v_scales, c->layers);
    if (c->block_table)
        clReleaseMemObject(c->block_table);
}

void kv_cache_buffers(const kv_cache *c, int layer, clattn_buffers *b)
{
    memset(b, 0, sizeof *b);
    b->k = c->k[layer];
    b->v = c->v[layer];
    b->k_scales = c->k_scales[layer];
    b->v_scales = c->v_scales[layer];
    b->block_table = c->block_table;
}

size_t kv_cache_bytes_per_token(const kv_cache *c)
{
    const clattn_problem *p = &c->attn;
    size_t pool = c->sizes.k + c->sizes.v;
    if (!is_fp8(&p->k_storage))
        pool += c->sizes.k_scales;
    if (!is_fp8(&p->v_storage))
        pool += c->sizes.v_scales;
    return pool / slots(p) * (size_t)c->layers;
}
