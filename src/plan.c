/* Path choice and built-in parameters per device class. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "blas.h"
#include "plan.h"

/* AUTO: split the keys when few query rows face a long KV (decoding), where
 * the fused kernel would leave most of the device idle; otherwise fused. The
 * three-stage path is never automatic: it needs O(seq_q * seq_kv) scratch. */
clattn_path clattn__auto_path(const clattn__shape *s)
{
    const clattn_problem *p = &s->p;
    if (p->seq_q <= 16 && p->seq_kv >= 256 && p->seq_kv >= 8 * p->seq_q)
        return CLATTN_PATH_SPLIT_KV;
    return CLATTN_PATH_FUSED;
}

size_t clattn__config_wg_size(const clattn__kernel_config *c)
{
    return (size_t)c->values[0];
}

size_t clattn__config_local_bytes(const clattn__kernel_config *c)
{
    const size_t f = sizeof(float);
    switch (c->id) {
    case CLATTN__K_QK:
        /* the K tile, transposed: QK_CV * QK_VEC keys */
        return f * (size_t)c->head_dim * (size_t)c->values[3] * (size_t)c->values[2];
    case CLATTN__K_SOFTMAX:
        return f * (size_t)c->values[0];
    case CLATTN__K_FUSED:
        return f * (size_t)c->values[1] * (size_t)(c->head_dim + c->head_dim_v);
    case CLATTN__K_FUSED_VEC: {
        /* K tile transposed, V tile padded to whole vectors; nothing when
         * the kernel reads K and V directly (FV_DIRECT) */
        if (c->values[5])
            return 0;
        const size_t vec = (size_t)c->values[2];
        const size_t dv_pad = ((size_t)c->head_dim_v + vec - 1) / vec * vec;
        return f * vec * ((size_t)c->head_dim + dv_pad);
    }
    default:
        return 0;
    }
}

static int halve(int *v)
{
    if (*v <= 1)
        return -1;
    *v /= 2;
    return 0;
}

int clattn__plan_shrink(clattn__kernel_config *c, int for_wg)
{
    int *v = c->values;
    switch (c->id) {
    case CLATTN__K_QK:
    case CLATTN__K_AV:
        /* values: work-items, rows, vector width (4, 8 or 16), vectors */
        if (for_wg)
            return halve(&v[0]);
        if (halve(&v[3]) == 0)
            return 0;
        return v[2] > 4 ? halve(&v[2]) : -1;
    case CLATTN__K_FUSED:
        /* values: BLOCK_M (work-items), BLOCK_N (keys in local memory) */
        if (for_wg)
            return halve(&v[0]);
        return halve(&v[1]);
    case CLATTN__K_FUSED_VEC:
        /* values: FV_WG (work-items), FV_ROWS, FV_VEC (4, 8 or 16 keys) */
        if (for_wg)
            return halve(&v[0]);
        return v[2] > 4 ? halve(&v[2]) : -1;
    default:
        return halve(&v[0]);
    }
}

static int next_pow2(int x)
{
    int p = 1;
    while (p < x && p < (1 << 30))
        p *= 2;
    return p;
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* Shrinks cfg until the device's limits can hold it; -1 if they never do. */
static int fit(const clattn__device_info *d, clattn__kernel_config *c)
{
    for (;;) {
        int wg_ok = clattn__config_wg_size(c) <= d->max_wg_size &&
                    (size_t)c->values[0] <= d->max_item_sizes[0];
        int lm_ok = clattn__config_local_bytes(c) <= d->local_mem_size;
        if (wg_ok && lm_ok)
            return 0;
        if (clattn__plan_shrink(c, !wg_ok) != 0)
            return -1;
    }
}

static clattn__kernel_config config(clattn__kernel_id id, const clattn__shape *s, int v0,
                                    int v1, int v2)
{
    clattn__kernel_config c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.dtype = s->p.dtype;
    c.head_dim = s->p.head_dim;
    c.head_dim_v = s->p.head_dim_v;
    c.features = clattn__shape_features(s);
    c.values[0] = v0;
    c.values[1] = v1;
    c.values[2] = v2;
    return c;
}

/* The vector widths OpenCL has: 4, 8 or 16. */
static int vec_width(int w) { return w >= 16 ? 16 : w >= 8 ? 8 : 4; }

/* Built-in three-stage tiles. CPUs (PoCL runs a work-group as a loop, one
 * core each): one work-item per group, and per work-item a block of rows x
 * vectors of keys (QK: 2 x 4 float16, the fastest measured on AVX-512, where
 * 8 x 1 spent its time on 8 row addresses) or of value dims (AV: 4 x 4)
 * that keeps 8 to 16 vector accumulators busy; softmax one row per
 * work-item in float16 vectors. GPUs: many work-items, narrow vectors. */
static void three_stage_defaults(clattn__plan *plan, const clattn__shape *s, int gpu)
{
    const clattn_problem *p = &s->p;
    const int dv = p->head_dim_v;
    plan->qk = config(CLATTN__K_QK, s, gpu ? 64 : 1, 2, gpu ? 4 : 16);
    /* no wider a tile of keys than there are keys */
    plan->qk.values[3] = gpu ? 1 : ceil_div(p->seq_kv, 16) < 4 ? ceil_div(p->seq_kv, 16) : 4;
    plan->softmax = config(CLATTN__K_SOFTMAX, s, gpu ? 128 : 1, gpu ? 4 : 16, 0);
    /* AV: the widest vector that divides head_dim_v (a partial last vector
     * is loaded element by element), and at most 256 floats of
     * accumulators a work-item. */
    const int w = gpu ? 4 : dv % 16 == 0 ? 16 : dv % 8 == 0 ? 8 : dv % 4 == 0 ? 4 : 16;
    const int rows = gpu ? 1 : 4;
    const int max_cv = gpu ? 1 : 256 / (rows * w);
    plan->av = config(CLATTN__K_AV, s, gpu ? 64 : 1, rows, w);
    plan->av.values[3] = ceil_div(dv, w) < max_cv ? ceil_div(dv, w) : max_cv;
    /* Fewer query rows than a block: no work-item computes idle rows. */
    if (p->seq_q < plan->qk.values[1])
        plan->qk.values[1] = p->seq_q;
    if (p->seq_q < plan->av.values[1])
        plan->av.values[1] = p->seq_q;
}

void clattn__tune_key_for(const clattn__shape *s, const char *unit, clattn__tune_key *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->kernel, sizeof k->kernel, "%s", unit);
    k->dtype = (int)s->p.dtype;
    k->head_dim = s->p.head_dim;
    k->head_dim_v = s->p.head_dim_v;
    k->causal = s->p.causal;
    k->windowed = s->p.windowed;
    k->has_mask = s->has_mask || s->p.bias.enabled;
    k->features = clattn__shape_features(s);
    k->group = s->group;
    k->sq_bucket = clattn__seq_bucket(s->p.seq_q);
    k->skv_bucket = clattn__seq_bucket(s->p.seq_kv);
}

/* The tuning layers' entry for unit, or NULL. */
static const clattn__tune_entry *tuned(struct clattn_context *ctx, const clattn__shape *s,
                                       const char *unit, int flags)
{
    if (flags & CLATTN__PLAN_NO_TUNED)
        return NULL;
    clattn__tune_key k;
    clattn__tune_key_for(s, unit, &k);
    int stale;
    return clattn__tuning_lookup(ctx, &k, &stale);
}

/* Sets every tunable of cfgs that e names (e may be NULL); a value below 1
 * is no tile size and is ignored. Plan-level tunables (NSPLIT, FUSED_VEC,
 * QK_BLAS, ...) are read from e with clattn__db_param. */
static void apply(const clattn__tune_entry *e, clattn__kernel_config *const *cfgs, int n)
{
    for (int i = 0; i < n && e; ++i) {
        int np;
        const char *const *names = clattn__kernel_params(cfgs[i]->id, &np);
        for (int j = 0; j < np; ++j) {
            int v = clattn__db_param(e, names[j], 0);
            if (v >= 1 && strcmp(names[j], "SPLIT_KV") != 0)
                cfgs[i]->values[j] = v;
        }
    }
}

/* CLATTN_PARAMS="NAME=value,..." forces tunables for experiments and tests
 * (any -D name of a kernel family and the plan-level ones), parsed into the
 * same form as a tuned entry. Values are still fitted to the device
 * afterwards. NULL when unset. */
static const clattn__tune_entry *overrides(int flags, clattn__tune_entry *e)
{
    const char *env = flags & CLATTN__PLAN_NO_OVERRIDES ? NULL : getenv("CLATTN_PARAMS");
    if (!env || !*env)
        return NULL;
    memset(e, 0, sizeof *e);
    for (const char *p = env; *p && e->nparams < CLATTN__DB_MAX_PARAMS;) {
        size_t len = strcspn(p, "=,");
        if (p[len] != '=' || len == 0 || len >= sizeof e->names[0]) {
            p += len + (p[len] != '\0');
            continue;
        }
        char *end;
        long v = strtol(p + len + 1, &end, 10);
        if (v >= 0 && v <= 4096) {
            memcpy(e->names[e->nparams], p, len);
            e->names[e->nparams][len] = '\0';
            e->values[e->nparams++] = (int)v;
        }
        p = end + strcspn(end, ",");
        if (*p == ',')
            ++p;
    }
    return e;
}

clattn_status clattn__plan_make(struct clattn_context *ctx, const clattn__shape *s,
                                size_t scratch_limit, int flags, clattn__plan *plan)
{
    const clattn__device_info *d = &ctx->dev;
    const clattn_problem *p = &s->p;
    const int gpu = d->dev_class == CLATTN__CLASS_GPU;
    memset(plan, 0, sizeof *plan);
    plan->path = p->path;
    if (plan->path == CLATTN_PATH_AUTO) {
        /* The measured best path for this bucket, where a tune found one. */
        clattn__tune_key k;
        clattn__tune_key_for(s, "path", &k);
        int stale;
        const clattn__tune_entry *e =
            flags & CLATTN__PLAN_NO_TUNED ? NULL : clattn__tuning_lookup(ctx, &k, &stale);
        int measured = e ? clattn__db_param(e, "PATH", 0) : 0;
        plan->path = measured >= CLATTN_PATH_FUSED && measured <= CLATTN_PATH_SPLIT_KV
                         ? (clattn_path)measured
                         : clattn__auto_path(s);
    }
    const int64_t bh = (int64_t)p->batch * p->heads;

    clattn__tune_entry ovr_storage;
    const clattn__tune_entry *ovr = overrides(flags, &ovr_storage);

    if (plan->path == CLATTN_PATH_THREE_STAGE) {
        three_stage_defaults(plan, s, gpu);
        clattn__kernel_config *cfgs[3] = {&plan->qk, &plan->softmax, &plan->av};
        const clattn__tune_entry *tq = tuned(ctx, s, "qk", flags);
        const clattn__tune_entry *ta = tuned(ctx, s, "av", flags);
        apply(tq, cfgs, 1);
        apply(tuned(ctx, s, "softmax", flags), cfgs + 1, 1);
        apply(ta, cfgs + 2, 1);
        apply(ovr, cfgs, 3);
        /* Ineligible problems (dtype, masking, queue) keep the own kernels. */
        plan->qk_blas = clattn__db_param(ovr, "QK_BLAS", clattn__db_param(tq, "QK_BLAS", 0)) &&
                        clattn__blas_qk_eligible(ctx, s);
        plan->av_blas = clattn__db_param(ovr, "AV_BLAS", clattn__db_param(ta, "AV_BLAS", 0)) &&
                        clattn__blas_av_eligible(ctx, s);
        if (plan->qk_blas || plan->av_blas)
            plan->blas_set = clattn__db_param(
                ovr, "CLBLAST_SET",
                clattn__db_param(tuned(ctx, s, "clblast", flags), "CLBLAST_SET", 0));
        /* The softmax reduction needs a power-of-two work-group. */
        while (plan->softmax.values[0] & (plan->softmax.values[0] - 1))
            plan->softmax.values[0] &= plan->softmax.values[0] - 1;
        plan->qk.values[2] = vec_width(plan->qk.values[2]);
        plan->softmax.values[1] = vec_width(plan->softmax.values[1]);
        plan->av.values[2] = vec_width(plan->av.values[2]);
        if (fit(d, &plan->qk) || fit(d, &plan->softmax) || fit(d, &plan->av))
            return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED,
                                "three-stage path: no tile size fits this device's limits");
        size_t limit = scratch_limit;
        if (limit == 0) {
            limit = (size_t)256 << 20;
            if (d->global_mem_size / 4 < limit)
                limit = (size_t)(d->global_mem_size / 4);
        }
        if (d->max_alloc < limit)
            limit = (size_t)d->max_alloc;
        const size_t row = (size_t)p->seq_kv * sizeof(float);
        const size_t head = row * (size_t)p->seq_q;
        if (row > limit)
            return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED,
                                "three-stage path: one score row (%zu bytes) exceeds the "
                                "scratch limit (%zu bytes)",
                                row, limit);
        if (head <= limit) {
            plan->chunk_rows = p->seq_q;
            size_t n = limit / head;
            plan->chunk_bh = (int)((int64_t)n < bh ? (int64_t)n : bh);
        } else {
            plan->chunk_bh = 1;
            plan->chunk_rows = (int)(limit / row);
        }
        plan->scratch_bytes[0] = (size_t)plan->chunk_bh * (size_t)plan->chunk_rows * row;
        return CLATTN_OK;
    }

    const int split = plan->path == CLATTN_PATH_SPLIT_KV;
    const char *unit = split ? "splitkv" : "fused";
    /* Two fused kernels: one row per work-item (GPUs), or rows x a vector of
     * keys per work-item for devices that vectorise inside a work-item
     * (CPUs); FUSED_VEC (tuned, or forced) picks. */
    const clattn__tune_entry *tf = tuned(ctx, s, unit, flags);
    const int vec =
        clattn__db_param(ovr, "FUSED_VEC", clattn__db_param(tf, "FUSED_VEC", !gpu)) != 0;
    plan->combine = config(CLATTN__K_COMBINE, s, 64, 0, 0);
    if (vec) {
        /* 16 rows a work-item (each staged K/V tile serves many rows; fewer
         * rows measured up to 2x slower on PoCL), 8 work-items a group;
         * fewer when there are fewer rows (decode), so no work-item idles,
         * and smaller groups where there would be too few to fill the
         * compute units. */
        const int vrows = p->seq_q * s->group; /* GQA: query heads' rows interleaved */
        int rows = vrows < 16 ? next_pow2(vrows) : 16;
        /* Past 256 dims (up to MLA's 576) sixteen rows of q and accumulators
         * are ~70 KiB a work-item: four keep them near the core. */
        if (p->head_dim + p->head_dim_v > 2 * 256 && rows > 4)
            rows = 4;
        int wg = ceil_div(vrows, rows) < 8 ? next_pow2(ceil_div(vrows, rows)) : 8;
        const int64_t heads_groups = (int64_t)p->batch * (s->group > 1 ? p->kv_heads : p->heads);
        const int64_t enough = 2 * (int64_t)(d->compute_units ? d->compute_units : 1);
        while (wg > 1 && (int64_t)ceil_div(vrows, rows * wg) * heads_groups < enough)
            wg /= 2;
        plan->fused = config(CLATTN__K_FUSED_VEC, s, wg, rows, 16);
        plan->fused.values[3] = split;
        plan->fused.values[4] = s->group > 1; /* a K/V tile serves the GQA group */
        /* A group of one work-item (decode) has no one to share a staged
         * tile with: reading K and V directly skips the scalar staging. */
        plan->fused.values[5] = wg == 1;
    } else {
        int block_m = gpu ? 64 : 16;
        if (split && p->seq_q < block_m)
            block_m = next_pow2(p->seq_q);
        plan->fused = config(CLATTN__K_FUSED, s, block_m, gpu ? 16 : 32, split);
    }
    clattn__kernel_config *cfgs[2] = {&plan->fused, &plan->combine};
    apply(tf, cfgs, 2);
    apply(ovr, cfgs, 2);
    const int forced_split =
        clattn__db_param(ovr, "NSPLIT", 0) > 0 ? clattn__db_param(ovr, "NSPLIT", 0)
                                                : clattn__db_param(tf, "NSPLIT", 0);
    plan->fused.values[plan->fused.id == CLATTN__K_FUSED_VEC ? 3 : 2] = split;
    if (plan->fused.id == CLATTN__K_FUSED_VEC) {
        /* The vector width must be one OpenCL has: 4, 8 or 16. */
        int *w = &plan->fused.values[2];
        *w = *w >= 16 ? 16 : *w >= 8 ? 8 : 4;
        plan->fused.values[4] = plan->fused.values[4] && s->group > 1;
    }
    if (fit(d, &plan->fused))
        return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED,
                            "fused kernel: head_dim %d + head_dim_v %d need more local memory "
                            "than this device has (%llu bytes) even with one key per tile",
                            p->head_dim, p->head_dim_v, (unsigned long long)d->local_mem_size);
    if (!split)
        return CLATTN_OK;

    if (fit(d, &plan->combine))
        return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED, "combine kernel does not fit");
    /* Enough partitions to give every compute unit a few groups. */
    size_t row_groups, head_groups;
    clattn__plan_fused_groups(plan, s, &row_groups, &head_groups);
    const int64_t groups = (int64_t)(row_groups * head_groups);
    const int64_t want = 4 * (int64_t)(d->compute_units ? d->compute_units : 1);
    int64_t nsplit = forced_split      ? forced_split
                     : groups >= want ? 1
                                      : (want + groups - 1) / groups;
    return clattn__plan_split(ctx, s, plan, (int)(nsplit < INT32_MAX ? nsplit : INT32_MAX));
}

clattn_status clattn__plan_split(struct clattn_context *ctx, const clattn__shape *s,
                                 clattn__plan *plan, int nsplit)
{
    const clattn__device_info *d = &ctx->dev;
    const clattn_problem *p = &s->p;
    const int64_t bh = (int64_t)p->batch * p->heads;
    const int block_n = clattn__plan_tile_keys(plan);
    const int max_split = ceil_div(p->seq_kv, block_n);
    if (nsplit > max_split)
        nsplit = max_split;
    if (nsplit < 1)
        nsplit = 1;
    for (;;) {
        /* Partitions are whole tiles of keys. */
        int kps = ceil_div(ceil_div(p->seq_kv, nsplit), block_n) * block_n;
        int n = ceil_div(p->seq_kv, kps);
        size_t rows = (size_t)bh * (size_t)n * (size_t)p->seq_q;
        size_t o_bytes = rows * (size_t)p->head_dim_v * sizeof(float);
        size_t ml_bytes = rows * 2 * sizeof(float);
        if (o_bytes <= d->max_alloc || n == 1) {
            if (o_bytes > d->max_alloc)
                return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED,
                                    "split-KV path: partial results (%zu bytes) exceed the "
                                    "device's largest allocation",
                                    o_bytes);
            plan->nsplit = n;
            plan->keys_per_split = kps;
            plan->scratch_bytes[0] = o_bytes;
            plan->scratch_bytes[1] = ml_bytes;
            return CLATTN_OK;
        }
        nsplit = n / 2;
    }
}

int clattn__plan_block_rows(const clattn__plan *plan)
{
    const int *v = plan->fused.values;
    return plan->fused.id == CLATTN__K_FUSED_VEC ? v[0] * v[1] : v[0];
}

void clattn__plan_fused_groups(const clattn__plan *plan, const clattn__shape *s,
                               size_t *row_groups, size_t *head_groups)
{
    /* The GQA-packed vector kernel: a group per KV head, its query heads'
     * rows interleaved. */
    const int gqa = plan->fused.id == CLATTN__K_FUSED_VEC && plan->fused.values[4];
    const size_t rows = (size_t)s->p.seq_q * (gqa ? (size_t)s->group : 1);
    const size_t per_group = (size_t)clattn__plan_block_rows(plan);
    const size_t bh = (size_t)s->p.batch * (size_t)s->p.heads;
    *row_groups = (rows + per_group - 1) / per_group;
    *head_groups = gqa ? bh / (size_t)s->group : bh;
}

int clattn__plan_tile_keys(const clattn__plan *plan)
{
    const int *v = plan->fused.values;
    return plan->fused.id == CLATTN__K_FUSED_VEC ? v[2] : v[1];
}
