/* Choosing the path and the kernel parameters of a problem on a device. */
#ifndef CLATTN_PLAN_H
#define CLATTN_PLAN_H

#include "kernels.h"
#include "problem.h"
#include "tuning_db.h"

typedef struct clattn__plan {
    clattn_path path; /* never AUTO */
    /* fused, or the partial kernel of split-KV (SPLIT_KV=1) */
    clattn__kernel_config fused, combine;
    int nsplit, keys_per_split;
    clattn__kernel_config qk, softmax, av;
    int chunk_bh, chunk_rows; /* three-stage: heads and rows per scratch chunk */
    int qk_blas, av_blas;     /* three-stage GEMMs through CLBlast */
    int blas_set;             /* CLBlast parameter set (0 = CLBlast's own) */
    size_t scratch_bytes[2];  /* per scratch buffer the path needs */
} clattn__plan;

struct clattn_context;

/* The path AUTO picks by rule when nothing was measured (README.md,
 * "Choosing a path"). */
clattn_path clattn__auto_path(const clattn__shape *s);

/* The tuning-db key of a tuned unit for a problem. */
void clattn__tune_key_for(const clattn__shape *s, const char *unit, clattn__tune_key *key);

/* Fills *plan for s on the context's device: path, tuned or built-in
 * parameters for the device class, fitted to its limits, and the chunking
 * and split counts. Returns CLATTN_ERR_UNSUPPORTED with a message when the
 * device cannot hold even the smallest configuration. */
clattn_status clattn__plan_make(struct clattn_context *ctx, const clattn__shape *s,
                                size_t scratch_limit, int flags, clattn__plan *plan);

/* plan_make flags: the tuner wants the built-in defaults, untouched. */
#define CLATTN__PLAN_NO_TUNED 1     /* ignore the tuning db */
#define CLATTN__PLAN_NO_OVERRIDES 2 /* ignore CLATTN_PARAMS */

/* The configuration of a kernel outside the paths (clattn_merge,
 * clattn_kv_append): cfg's dtype and dims kept, the table's defaults for the
 * device class, CLATTN_PARAMS applied, fitted to the device. */
clattn_status clattn__plan_standalone(struct clattn_context *ctx, clattn__kernel_id id,
                                      clattn__kernel_config *cfg);

/* Query rows a work-group of the plan's fused kernel covers, and the keys
 * of one of its tiles (split-KV partitions are whole tiles). */
int clattn__plan_block_rows(const clattn__plan *plan);
int clattn__plan_tile_keys(const clattn__plan *plan);

/* The fused kernel's work-groups: along the (possibly GQA-interleaved)
 * query rows, and along batch x heads (x kv heads when GQA-packed). */
void clattn__plan_fused_groups(const clattn__plan *plan, const clattn__shape *s,
                               size_t *row_groups, size_t *head_groups);

/* Sets the split-KV partition count (clamped to whole tiles of keys and to
 * the device's largest allocation) and the scratch it needs. */
clattn_status clattn__plan_split(struct clattn_context *ctx, const clattn__shape *s,
                                 clattn__plan *plan, int nsplit);

/* Halves a tile size of cfg: one that sets the work-group size when for_wg,
 * else one that sets the local-memory footprint. Returns 0 if it shrank, -1
 * when there is nothing left to shrink. */
int clattn__plan_shrink(clattn__kernel_config *cfg, int for_wg);

/* Work-group size and local-memory bytes cfg needs. */
size_t clattn__config_wg_size(const clattn__kernel_config *cfg);
size_t clattn__config_local_bytes(const clattn__kernel_config *cfg);

#endif
