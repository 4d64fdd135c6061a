/* The KV cache of every layer in one storage format: contiguous
 * [batch][kv_heads][capacity][head_dim] per layer, or paged (one pool of
 * pages per layer and one block table that all layers share, as vLLM does). */
#ifndef DECODE_KV_CACHE_H
#define DECODE_KV_CACHE_H

#include "ops.h"

/* A storage format by its command-line name ("f32", "q8_0", ...); 0 when
 * the name is unknown. */
int kv_format_parse(const char *name, clattn_kv_storage *out);
/* The names kv_format_parse knows, separated by '|'. */
const char *kv_format_names(void);

typedef struct kv_cache {
    clattn_problem attn; /* one layer's attention; storage and paging set */
    int layers;
    cl_mem *k, *v, *k_scales, *v_scales; /* per layer; scales NULL where none */
    cl_mem block_table;                  /* paged: [batch][max_pages_per_seq] */
    clattn_buffer_sizes sizes;           /* of one layer, from clattn */
} kv_cache;

/* Allocates the cache for `attn` (shape, k_storage = v_storage, paged).
 * Paged caches get a pool of batch * max_pages_per_seq pages handed out in
 * shuffled order (seeded), so no sequence's pages are adjacent or in order.
 * FP8 needs its scales before the first append: fp8_bound[(layer * 2 +
 * {0: K, 1: V}) * kv_heads + head] is the largest magnitude that head can
 * ever hold, and the scale maps it to the format's largest finite value. */
void kv_cache_create(kv_cache *c, clattn_context *ctx, const ops *o, const clattn_problem *attn,
                     int layers, const float *fp8_bound, uint64_t seed);
void kv_cache_release(kv_cache *c);

/* Layer's cache buffers as clattn_kv_append and clattn_forward take them. */
void kv_cache_buffers(const kv_cache *c, int layer, clattn_buffers *b);

/* Bytes one token takes in the whole cache: K and V data and their per-row
 * scales, every layer and kv head. Per-tensor or per-head FP8 scales do not
 * grow with the tokens and are left out. */
size_t kv_cache_bytes_per_token(const kv_cache *c);

#endif
