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
    switch (c->id) {
    case CLATTN__K_QK:
    case CLATTN__K_AV:
        return (size_t)c->values[0] * (size_t)c->values[1];
    default:
        return (size_t)c->values[0];
    }
}

size_t clattn__config_local_bytes(const clattn__kernel_config *c)
{
    const size_t f = sizeof(float);
    switch (c->id) {
    case CLATTN__K_QK:
        return f * (size_t)(c->values[0] + c->values[1]) * (size_t)(c->values[2] + 1);
    case CLATTN__K_AV:
        return f * ((size_t)c->values[0] * (size_t)(c->values[2] + 1) +
                    (size_t)c->values[2] * (size_t)(c->values[1] + 1));
    case CLATTN__K_SOFTMAX:
        return f * (size_t)c->values[0];
    case CLATTN__K_FUSED:
        return f * (size_t)c->values[1] * (size_t)(c->head_dim + c->head_dim_v);
    case CLATTN__K_FUSED_VEC: {
        /* K tile transposed, V tile padded to whole vectors */
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
        /* values: rows (TM), cols (TN), depth (TK) */
        if (!for_wg && halve(&v[2]) == 0)
            return 0;
        return halve(v[0] >= v[1] ? &v[0] : &v[1]) == 0 ? 0 : halve(&v[0]);
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
        int dim0 = c->values[c->id == CLATTN__K_QK || c->id == CLATTN__K_AV ? 1 : 0];
        int dim1 = c->id == CLATTN__K_QK || c->id == CLATTN__K_AV ? c->values[0] : 1;
        int wg_ok = clattn__config_wg_size(c) <= d->max_wg_size &&
                    (size_t)dim0 <= d->max_item_sizes[0] && (size_t)dim1 <= d->max_item_sizes[1];
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
    c.values[0] = v0;
    c.values[1] = v1;
    c.values[2] = v2;
    return c;
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
    k->has_mask = s->has_mask;
    k->group = s->group;
    k->sq_bucket = clattn__seq_bucket(s->p.seq_q);
    k->skv_bucket = clattn__seq_bucket(s->p.seq_kv);
}

/* Applies what the tuning layers hold for unit to cfgs (by parameter name);
 * returns the entry's value of extra (a plan-level tunable such as NSPLIT),
 * 0 when it has none or nothing applies. */
static int apply_tuned(struct clattn_context *ctx, const clattn__shape *s, const char *unit,
                       clattn__kernel_config *const *cfgs, int n, int flags, const char *extra)
{
    if (flags & CLATTN__PLAN_NO_TUNED)
        return 0;
    clattn__tune_key k;
    clattn__tune_key_for(s, unit, &k);
    int stale;
    const clattn__tune_entry *e = clattn__tuning_lookup(ctx, &k, &stale);
    if (!e)
        return 0;
    for (int i = 0; i < n; ++i) {
        int np;
        const char *const *names = clattn__kernel_params(cfgs[i]->id, &np);
        for (int j = 0; j < np; ++j)
            if (strcmp(names[j], "SPLIT_KV") != 0)
                cfgs[i]->values[j] = clattn__db_param(e, names[j], cfgs[i]->values[j]);
    }
    return extra ? clattn__db_param(e, extra, 0) : 0;
}

/* A plan-level tunable from the tuning layers, or fallback. */
static int tuned_param(struct clattn_context *ctx, const clattn__shape *s, const char *unit,
                       const char *name, int flags, int fallback)
{
    if (flags & CLATTN__PLAN_NO_TUNED)
        return fallback;
    clattn__tune_key k;
    clattn__tune_key_for(s, unit, &k);
    int stale;
    const clattn__tune_entry *e = clattn__tuning_lookup(ctx, &k, &stale);
    return e ? clattn__db_param(e, name, fallback) : fallback;
}

/* CLATTN_PARAMS="NAME=value,..." forces tunables for experiments and tests
 * (any -D name of a kernel family, plus NSPLIT for split-KV and QK_BLAS /
 * AV_BLAS for the three-stage GEMMs). Values are still fitted to the device
 * afterwards. Returns the forced value of extra (0 = not forced; a forced 0
 * reads as -1). */
static int apply_overrides(clattn__kernel_config *const *cfgs, int n, int flags,
                           const char *extra)
{
    const char *env = flags & CLATTN__PLAN_NO_OVERRIDES ? NULL : getenv("CLATTN_PARAMS");
    if (!env || !*env)
        return 0;
    int nsplit = 0;
    const char *p = env;
    while (*p) {
        char name[32];
        size_t len = strcspn(p, "=,");
        if (p[len] != '=' || len == 0 || len >= sizeof name) {
            p += len + (p[len] != '\0');
            continue;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        char *end;
        long v = strtol(p + len + 1, &end, 10);
        if (extra && strcmp(name, extra) == 0 && v >= 0 && v <= 4096)
            nsplit = v ? (int)v : -1;
        if (v >= 1 && v <= 4096) {
            for (int i = 0; i < n; ++i) {
                int np;
                const char *const *names = clattn__kernel_params(cfgs[i]->id, &np);
                for (int j = 0; j < np; ++j)
                    if (strcmp(names[j], name) == 0 && strcmp(name, "SPLIT_KV") != 0)
                        cfgs[i]->values[j] = (int)v;
            }
        }
        p = end + strcspn(end, ",");
        if (*p == ',')
            ++p;
    }
    return nsplit;
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

    if (plan->path == CLATTN_PATH_THREE_STAGE) {
        plan->qk = config(CLATTN__K_QK, s, 16, 16, 16);
        plan->softmax = config(CLATTN__K_SOFTMAX, s, gpu ? 128 : 64, 0, 0);
        plan->av = config(CLATTN__K_AV, s, 16, 16, 16);
        clattn__kernel_config *cfgs[3] = {&plan->qk, &plan->softmax, &plan->av};
        int qk_blas = apply_tuned(ctx, s, "qk", cfgs, 1, flags, "QK_BLAS");
        apply_tuned(ctx, s, "softmax", cfgs + 1, 1, flags, NULL);
        int av_blas = apply_tuned(ctx, s, "av", cfgs + 2, 1, flags, "AV_BLAS");
        int forced = apply_overrides(cfgs, 3, flags, "QK_BLAS");
        if (forced)
            qk_blas = forced > 0;
        forced = apply_overrides(cfgs, 3, flags, "AV_BLAS");
        if (forced)
            av_blas = forced > 0;
        /* Ineligible problems (dtype, masking, queue) keep the own kernels. */
        plan->qk_blas = qk_blas && clattn__blas_qk_eligible(ctx, s);
        plan->av_blas = av_blas && clattn__blas_av_eligible(ctx, s);
        if (plan->qk_blas || plan->av_blas) {
            plan->blas_set = apply_tuned(ctx, s, "clblast", cfgs, 0, flags, "CLBLAST_SET");
            forced = apply_overrides(cfgs, 0, flags, "CLBLAST_SET");
            if (forced)
                plan->blas_set = forced > 0 ? forced : 0;
        }
        /* The softmax reduction needs a power-of-two work-group. */
        while (plan->softmax.values[0] & (plan->softmax.values[0] - 1))
            plan->softmax.values[0] &= plan->softmax.values[0] - 1;
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
    int vec = tuned_param(ctx, s, unit, "FUSED_VEC", flags, !gpu);
    plan->combine = config(CLATTN__K_COMBINE, s, 64, 0, 0);
    const int forced_vec = apply_overrides(NULL, 0, flags, "FUSED_VEC");
    if (forced_vec)
        vec = forced_vec > 0;
    if (vec) {
        /* 4 x 4 rows a group; fewer when there are fewer rows (decode), so
         * no work-item idles. */
        const int vrows = p->seq_q * s->group; /* GQA: query heads' rows interleaved */
        int rows = vrows < 4 ? next_pow2(vrows) : 4;
        int wg = ceil_div(vrows, rows) < 4 ? next_pow2(ceil_div(vrows, rows)) : 4;
        plan->fused = config(CLATTN__K_FUSED_VEC, s, wg, rows, 16);
        plan->fused.values[3] = split;
        plan->fused.values[4] = s->group > 1; /* a K/V tile serves the GQA group */
    } else {
        int block_m = gpu ? 64 : 16;
        if (split && p->seq_q < block_m)
            block_m = next_pow2(p->seq_q);
        plan->fused = config(CLATTN__K_FUSED, s, block_m, gpu ? 16 : 32, split);
    }
    clattn__kernel_config *cfgs[2] = {&plan->fused, &plan->combine};
    const int tuned_split = apply_tuned(ctx, s, unit, cfgs, 2, flags, "NSPLIT");
    const int overridden = apply_overrides(cfgs, 2, flags, "NSPLIT");
    const int forced_split = overridden > 0 ? overridden : tuned_split;
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
    const int gqa = plan->fused.id == CLATTN__K_FUSED_VEC && plan->fused.values[4];
    const int64_t groups = (gqa ? bh / s->group : bh) *
                           ceil_div(gqa ? p->seq_q * s->group : p->seq_q,
                                    clattn__plan_block_rows(plan));
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

int clattn__plan_tile_keys(const clattn__plan *plan)
{
    const int *v = plan->fused.values;
    return plan->fused.id == CLATTN__K_FUSED_VEC ? v[2] : v[1];
}
