/* One layer's queries and keys of one sentence, for attn-view --layer-dump:
 * DIR/q.npy and DIR/k.npy (float32 [heads][seq][head_dim], bias included:
 * what the attention reads) and DIR/tokens.txt (one piece per line). */
#ifndef MINILM_DUMP_H
#define MINILM_DUMP_H

#include <stdint.h>

/* q, k: [seq][heads][dim] as the projections lay them out. Dies on I/O
 * errors naming the file. */
void dump_layer_qk(const char *dir, const float *q, const float *k, int seq, int heads, int dim,
                   char *const *pieces, const int32_t *ids);

#endif
