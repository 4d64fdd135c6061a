/* Path choice and built-in parameters per device class. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "feature_table.h"
#include "internal.h"
#include "plan.h"
#include "plan_defaults.h"

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

/* The tunable that is a kernel's work-group size (its first dimension). */
static clattn__tunable_id wg_tunable(clattn__kernel_id id)
{
    switch (id) {
    case CLATTN__K_QK:
        return CLATTN__T_QK_WG;
    case CLATTN__K_SOFTMAX:
        return CLATTN__T_SM_WG;
    case CLATTN__K_AV:
        return CLATTN__T_AV_WG;
    case CLATTN__K_FUSED:
        return CLATTN__T_BLOCK_M; /* a work-item per query row */
    case CLATTN__K_COMBINE:
        return CLATTN__T_COMBINE_WG;
    case CLATTN__K_FUSED_LANES:
        return CLATTN__T_FL_WG;
    case CLATTN__K_MERGE:
        return CLATTN__T_MERGE_WG;
    case CLATTN__K_KV_APPEND:
        return CLATTN__T_APPEND_WG;
    default:
        return CLATTN__T_FV_WG;
    }
}

size_t clattn__config_wg_size(const clattn__kernel_config *c)
{
    return (size_t)clattn__cfg_get(c, wg_tunable(c->id));
}

/* Rounds n up to a whole number of vectors of w. */
static size_t pad_to(size_t n, size_t w) { return (n + w - 1) / w * w; }

size_t clattn__config_local_bytes(const clattn__kernel_config *c)
{
    const size_t f = sizeof(float);
    const size_t d = (size_t)c->head_dim, dv = (size_t)c->head_dim_v;
    switch (c->id) {
    case CLATTN__K_QK:
        /* the K tile, transposed: QK_CV * QK_VEC keys */
        return f * d * (size_t)clattn__cfg_get(c, CLATTN__T_QK_CV) *
               (size_t)clattn__cfg_get(c, CLATTN__T_QK_VEC);
    case CLATTN__K_SOFTMAX:
        return f * (size_t)clattn__cfg_get(c, CLATTN__T_SM_WG);
    case CLATTN__K_FUSED:
        return f * (size_t)clattn__cfg_get(c, CLATTN__T_BLOCK_N) * (d + dv);
    case CLATTN__K_FUSED_VEC: {
        /* K tile transposed, V tile padded to whole vectors; nothing when
         * the kernel reads K and V directly (FV_DIRECT) */
        if (clattn__cfg_get(c, CLATTN__T_FV_DIRECT))
            return 0;
        const size_t vec = (size_t)clattn__cfg_get(c, CLATTN__T_FV_VEC);
        return f * vec * (d + pad_to(dv, vec));
    }
    default:
        return 0;
    }
}

/* The narrowest OpenCL vector the kernels use. */
#define VEC_MIN 4

/* Halves tunable t of c; -1 when it is already at its floor. */
static int halve(clattn__kernel_config *c, clattn__tunable_id t, int floor)
{
    const int v = clattn__cfg_get(c, t);
    if (v <= floor)
        return -1;
    clattn__cfg_set(c, t, v / 2);
    return 0;
}

int clattn__plan_shrink(clattn__kernel_config *c, int for_wg)
{
    if (for_wg)
        return halve(c, wg_tunable(c->id), 1);
    switch (c->id) {
    case CLATTN__K_QK:
        if (halve(c, CLATTN__T_QK_CV, 1) == 0)
            return 0;
        return halve(c, CLATTN__T_QK_VEC, VEC_MIN);
    case CLATTN__K_AV:
        if (halve(c, CLATTN__T_AV_CV, 1) == 0)
            return 0;
        return halve(c, CLATTN__T_AV_VEC, VEC_MIN);
    case CLATTN__K_FUSED:
        return halve(c, CLATTN__T_BLOCK_N, 1);
    case CLATTN__K_FUSED_VEC:
        return halve(c, CLATTN__T_FV_VEC, VEC_MIN);
    default:
        return halve(c, wg_tunable(c->id), 1);
    }
}

/* Shrinks cfg until the device's limits can hold it; -1 if they never do. */
static int fit(const clattn__device_info *d, clattn__kernel_config *c)
{
    for (;;) {
        const size_t wg = clattn__config_wg_size(c);
        const int wg_ok = wg <= d->max_wg_size && wg <= d->max_item_sizes[0];
        const int lm_ok = clattn__config_local_bytes(c) <= d->local_mem_size;
        if (wg_ok && lm_ok)
            return 0;
        if (clattn__plan_shrink(c, !wg_ok) != 0)
            return -1;
    }
}

/* A kernel of the shape's dtype, dims and features, with the table's
 * defaults for the device class. */
static clattn__kernel_config config(clattn__kernel_id id, const clattn__shape *s,
                                    clattn__device_class cls)
{
    clattn__kernel_config c;
    memset(&c, 0, sizeof c);
    c.dtype = s->p.dtype;
    c.head_dim = s->p.head_dim;
    c.head_dim_v = s->p.head_dim_v;
    c.features = clattn__shape_features(s);
    /* Only kernels that read K or V depend on its storage: softmax and the
     * split-KV combine stay one build for every storage. */
    if (id != CLATTN__K_SOFTMAX && id != CLATTN__K_COMBINE)
        c.kv = s->kv;
    clattn__cfg_defaults(&c, id, cls);
    return c;
}

/* The key's kv code (tuning_db.h) of the shape's K/V layout: what the
 * kernels are built for, so two problems the same kernels serve share it
 * (a group of the whole row is 0 whether given as 0 or as the row). The
 * page size is a kernel argument, not part of it. */
static unsigned kv_key(const clattn__shape *s)
{
    const clattn__kv_layout *kv = &s->kv;
    const int group[2] = {kv->k_group, kv->v_group}, dims[2] = {s->p.head_dim, s->p.head_dim_v};
    unsigned g[2];
    for (int i = 0; i < 2; ++i)
        g[i] = group[i] == 0 || group[i] == dims[i] ? 0u
               : group[i] == 32                     ? 1u
               : group[i] == 64                     ? 2u
                                                    : 3u;
    return (unsigned)kv->k_fmt << CLATTN__KV_K_FMT_SHIFT |
           (unsigned)kv->v_fmt << CLATTN__KV_V_FMT_SHIFT | g[0] << CLATTN__KV_K_GROUP_SHIFT |
           g[1] << CLATTN__KV_V_GROUP_SHIFT |
           (kv->k_sdt == CLATTN_F16 ? CLATTN__KV_K_F16_SCALES : 0u) |
           (kv->v_sdt == CLATTN_F16 ? CLATTN__KV_V_F16_SCALES : 0u) |
           (kv->k_ph ? CLATTN__KV_K_PER_HEAD : 0u) | (kv->v_ph ? CLATTN__KV_V_PER_HEAD : 0u) |
           (kv->paged ? CLATTN__KV_PAGED : 0u);
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
    k->kv = kv_key(s);
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

/* Sets every tunable of cfgs that e names (e may be NULL) and the table
 * lets it set; values outside the table's range (a db written by another
 * version) are ignored. Plan-level tunables (NSPLIT, FUSED_VEC, QK_BLAS,
 * ...) are read from e with clattn__db_param. */
static void apply(const clattn__tune_entry *e, clattn__kernel_config *const *cfgs, int n)
{
    for (int i = 0; i < n && e; ++i) {
        clattn__tunable_id ids[CLATTN__MAX_PARAMS];
        const int np = clattn__kernel_tunables(cfgs[i]->id, ids);
        for (int j = 0; j < np; ++j) {
            const clattn__tunable_def *t = &clattn__tunables[ids[j]];
            const int v = clattn__db_param(e, t->name, t->lo - 1);
            if (t->forcible && v >= t->lo && v <= t->hi)
                clattn__cfg_set(cfgs[i], ids[j], v);
        }
    }
}

/* CLATTN_PARAMS="NAME=value,..." forces tunables for experiments and tests,
 * parsed into the same form as a tuned entry; values are still fitted to
 * the device afterwards. A name the table does not have, one that cannot be
 * forced, a value outside its range or text that does not parse is an
 * error: a misspelt or renamed tunable must not turn a forced run into a
 * default one. *out is NULL when the variable is unset or empty. */
static clattn_status overrides(clattn_context *ctx, int flags, clattn__tune_entry *e,
                               const clattn__tune_entry **out)
{
    *out = NULL;
    const char *env = flags & CLATTN__PLAN_NO_OVERRIDES ? NULL : getenv("CLATTN_PARAMS");
    if (!env || !*env)
        return CLATTN_OK;
    memset(e, 0, sizeof *e);
    for (const char *p = env; *p;) {
        const size_t len = strcspn(p, "=,");
        char name[CLATTN__DB_NAME];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
        const int id = len < sizeof name ? clattn__tunable_find(name) : -1;
        if (p[len] != '=' || len == 0)
            return clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                                "CLATTN_PARAMS: '%.*s' is not NAME=value", (int)strcspn(p, ","),
                                p);
        if (id < 0 || !clattn__tunables[id].forcible)
            return clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                                "CLATTN_PARAMS: %s '%.*s' (README.md lists the names)",
                                id < 0 ? "unknown tunable" : "cannot force", (int)len, p);
        const clattn__tunable_def *t = &clattn__tunables[id];
        char *end;
        errno = 0;
        const long v = strtol(p + len + 1, &end, 10);
        if (end == p + len + 1 || (*end && *end != ',') || errno || v < t->lo || v > t->hi)
            return clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                                "CLATTN_PARAMS: %s must be a whole number in %d..%d", t->name,
                                t->lo, t->hi);
        if (e->nparams == CLATTN__DB_MAX_PARAMS)
            return clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                                "CLATTN_PARAMS: more than %d settings", CLATTN__DB_MAX_PARAMS);
        snprintf(e->names[e->nparams], sizeof e->names[0], "%s", t->name);
        e->values[e->nparams++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    *out = e;
    return CLATTN_OK;
}

/* The path the plan takes: the problem's, or for AUTO the measured best for
 * this bucket where a tune found one, else the rule's. */
static clattn_path choose_path(clattn_context *ctx, const clattn__shape *s, int flags)
{
    if (s->p.path != CLATTN_PATH_AUTO)
        return s->p.path;
    const clattn__tune_entry *e = tuned(ctx, s, "path", flags);
    const int measured = clattn__db_param(e, "PATH", 0);
    return measured >= CLATTN_PATH_FUSED && measured <= CLATTN_PATH_SPLIT_KV
               ? (clattn_path)measured
               : clattn__auto_path(s);
}

/* Bytes of score scratch the three-stage path may hold at once. */
#define SCRATCH_DEFAULT ((size_t)256 << 20)

/* Heads and rows per chunk of three-stage scratch, within the limit. */
static clattn_status three_stage_chunks(clattn_context *ctx, const clattn__shape *s,
                                        size_t scratch_limit, clattn__plan *plan)
{
    const clattn__device_info *d = &ctx->dev;
    const clattn_problem *p = &s->p;
    const int64_t bh = (int64_t)p->batch * p->heads;
    size_t limit = scratch_limit;
    if (limit == 0) {
        limit = SCRATCH_DEFAULT;
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
        const size_t n = limit / head;
        plan->chunk_bh = (int)((int64_t)n < bh ? (int64_t)n : bh);
    } else {
        plan->chunk_bh = 1;
        plan->chunk_rows = (int)(limit / row);
    }
    plan->scratch_bytes[0] = (size_t)plan->chunk_bh * (size_t)plan->chunk_rows * row;
    return CLATTN_OK;
}

static clattn_status plan_three_stage(clattn_context *ctx, const clattn__shape *s,
                                      size_t scratch_limit, int flags,
                                      const clattn__tune_entry *ovr, clattn__plan *plan)
{
    const clattn__device_info *d = &ctx->dev;
    plan->qk = config(CLATTN__K_QK, s, d->dev_class);
    plan->softmax = config(CLATTN__K_SOFTMAX, s, d->dev_class);
    plan->av = config(CLATTN__K_AV, s, d->dev_class);
    clattn__three_stage_defaults(d, s, plan);
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
    int sm_wg = clattn__cfg_get(&plan->softmax, CLATTN__T_SM_WG);
    while (sm_wg & (sm_wg - 1))
        sm_wg &= sm_wg - 1;
    clattn__cfg_set(&plan->softmax, CLATTN__T_SM_WG, sm_wg);
    const clattn__tunable_id vecs[3] = {CLATTN__T_QK_VEC, CLATTN__T_SM_VEC, CLATTN__T_AV_VEC};
    for (int i = 0; i < 3; ++i)
        clattn__cfg_set(cfgs[i], vecs[i], clattn__vec_width(clattn__cfg_get(cfgs[i], vecs[i])));
    if (fit(d, &plan->qk) || fit(d, &plan->softmax) || fit(d, &plan->av))
        return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED,
                            "three-stage path: no tile size fits this device's limits");
    return three_stage_chunks(ctx, s, scratch_limit, plan);
}

/* Split-KV partitions by default: enough for this many groups a compute
 * unit. */
#define SPLIT_GROUPS_PER_CU 4

static clattn_status plan_fused(clattn_context *ctx, const clattn__shape *s, int flags,
                                const clattn__tune_entry *ovr, clattn__plan *plan)
{
    const clattn__device_info *d = &ctx->dev;
    const clattn_problem *p = &s->p;
    const int split = plan->path == CLATTN_PATH_SPLIT_KV;
    /* Three fused kernels: one row per work-item (GPUs); for devices that
     * vectorise inside a work-item (CPUs), rows in the vector lanes where
     * there are enough rows, else rows x a vector of keys a work-item
     * (decode). FUSED_VEC (tuned, or forced) picks. */
    const clattn__tune_entry *tf = tuned(ctx, s, split ? "splitkv" : "fused", flags);
    const int col = d->dev_class == CLATTN__CLASS_GPU ? CLATTN__DFLT_GPU : CLATTN__DFLT_CPU;
    int dflt = clattn__tunables[CLATTN__T_FUSED_VEC].dflt[col];
    if (dflt == 1 && !split && clattn__fused_lanes_fits(s))
        dflt = 2;
    const int kind = clattn__db_param(ovr, "FUSED_VEC", clattn__db_param(tf, "FUSED_VEC", dflt));
    plan->combine = config(CLATTN__K_COMBINE, s, d->dev_class);
    plan->fused = config(clattn__fused_kernel(kind), s, d->dev_class);
    if (plan->fused.id == CLATTN__K_FUSED_VEC)
        clattn__fused_vec_defaults(d, s, &plan->fused);
    else if (plan->fused.id == CLATTN__K_FUSED_LANES)
        clattn__fused_lanes_defaults(d, s, &plan->fused);
    else if (split && p->seq_q < clattn__cfg_get(&plan->fused, CLATTN__T_BLOCK_M))
        clattn__cfg_set(&plan->fused, CLATTN__T_BLOCK_M, clattn__next_pow2(p->seq_q));
    clattn__kernel_config *cfgs[2] = {&plan->fused, &plan->combine};
    apply(tf, cfgs, 2);
    apply(ovr, cfgs, 2);
    clattn__cfg_set(&plan->fused, clattn__split_tunable(plan->fused.id), split);
    if (plan->fused.id == CLATTN__K_FUSED_VEC) {
        clattn__cfg_set(&plan->fused, CLATTN__T_FV_VEC,
                        clattn__vec_width(clattn__cfg_get(&plan->fused, CLATTN__T_FV_VEC)));
        clattn__cfg_set(&plan->fused, CLATTN__T_FV_GQA,
                        clattn__cfg_get(&plan->fused, CLATTN__T_FV_GQA) && s->group > 1);
    } else if (plan->fused.id == CLATTN__K_FUSED_LANES) {
        clattn__fused_lanes_fix(s, &plan->fused);
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
    const int forced = clattn__db_param(ovr, "NSPLIT", clattn__db_param(tf, "NSPLIT", 0));
    size_t row_groups, head_groups;
    clattn__plan_fused_groups(plan, s, &row_groups, &head_groups);
    const int64_t groups = (int64_t)(row_groups * head_groups);
    const int64_t want = SPLIT_GROUPS_PER_CU * (int64_t)(d->compute_units ? d->compute_units : 1);
    const int64_t nsplit = forced > 0        ? forced
                           : groups >= want ? 1
                                            : (want + groups - 1) / groups;
    CLATTN_TRY(clattn__plan_split(ctx, s, plan, (int)(nsplit < INT32_MAX ? nsplit : INT32_MAX)));
    /* One partition, where AUTO chose the split (decode with enough
     * groups to fill the device, e.g. D1 on two cores): the fused kernel
     * writes O and LSE itself, with the same configuration, and the
     * combine pass, a launch that only copied them, goes. A path the
     * caller asked for is kept as asked (tests run the combine that way). */
    if (s->p.path == CLATTN_PATH_AUTO && plan->nsplit == 1) {
        plan->path = CLATTN_PATH_FUSED;
        clattn__cfg_set(&plan->fused, clattn__split_tunable(plan->fused.id), 0);
        plan->nsplit = 0;
        plan->keys_per_split = 0;
        plan->scratch_bytes[0] = plan->scratch_bytes[1] = 0;
    }
    return CLATTN_OK;
}

clattn_status clattn__plan_make(struct clattn_context *ctx, const clattn__shape *s,
                                size_t scratch_limit, int flags, clattn__plan *plan)
{
    memset(plan, 0, sizeof *plan);
    clattn__tune_entry ovr_storage;
    const clattn__tune_entry *ovr;
    CLATTN_TRY(overrides(ctx, flags, &ovr_storage, &ovr));
    plan->path = choose_path(ctx, s, flags);
    if (plan->path == CLATTN_PATH_THREE_STAGE)
        return plan_three_stage(ctx, s, scratch_limit, flags, ovr, plan);
    return plan_fused(ctx, s, flags, ovr, plan);
}

clattn_status clattn__plan_standalone(struct clattn_context *ctx, clattn__kernel_id id,
                                      clattn__kernel_config *cfg)
{
    clattn__cfg_defaults(cfg, id, ctx->dev.dev_class);
    clattn__tune_entry ovr_storage;
    const clattn__tune_entry *ovr;
    CLATTN_TRY(overrides(ctx, 0, &ovr_storage, &ovr));
    apply(ovr, &cfg, 1);
    if (fit(&ctx->dev, cfg))
        return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED, "%s: no configuration fits this device",
                            clattn__kernel_name(id));
    return CLATTN_OK;
}

clattn_status clattn__plan_split(struct clattn_context *ctx, const clattn__shape *s,
                                 clattn__plan *plan, int nsplit)
{
    const clattn__device_info *d = &ctx->dev;
    const clattn_problem *p = &s->p;
    const int64_t bh = (int64_t)p->batch * p->heads;
    const int block_n = clattn__plan_tile_keys(plan);
    const int max_split = clattn__ceil_div(p->seq_kv, block_n);
    if (nsplit > max_split)
        nsplit = max_split;
    if (nsplit < 1)
        nsplit = 1;
    for (;;) {
        /* Partitions are whole tiles of keys. */
        int kps = clattn__ceil_div(clattn__ceil_div(p->seq_kv, nsplit), block_n) * block_n;
        int n = clattn__ceil_div(p->seq_kv, kps);
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
    const clattn__kernel_config *c = &plan->fused;
    switch (c->id) {
    case CLATTN__K_FUSED_VEC:
        return clattn__cfg_get(c, CLATTN__T_FV_WG) * clattn__cfg_get(c, CLATTN__T_FV_ROWS);
    case CLATTN__K_FUSED_LANES:
        return clattn__cfg_get(c, CLATTN__T_FL_WG) * clattn__cfg_get(c, CLATTN__T_FL_LANES);
    default:
        return clattn__cfg_get(c, CLATTN__T_BLOCK_M);
    }
}

void clattn__plan_fused_groups(const clattn__plan *plan, const clattn__shape *s,
                               size_t *row_groups, size_t *head_groups)
{
    /* The GQA-packed vector kernel: a group per KV head, its query heads'
     * rows interleaved. */
    const int gqa = plan->fused.id == CLATTN__K_FUSED_VEC &&
                    clattn__cfg_get(&plan->fused, CLATTN__T_FV_GQA);
    const size_t rows = (size_t)s->p.seq_q * (gqa ? (size_t)s->group : 1);
    const size_t per_group = (size_t)clattn__plan_block_rows(plan);
    const size_t bh = (size_t)s->p.batch * (size_t)s->p.heads;
    *row_groups = (rows + per_group - 1) / per_group;
    *head_groups = gqa ? bh / (size_t)s->group : bh;
}

int clattn__plan_tile_keys(const clattn__plan *plan)
{
    const clattn__kernel_config *c = &plan->fused;
    return clattn__cfg_get(c, c->id == CLATTN__K_FUSED_VEC     ? CLATTN__T_FV_VEC
                              : c->id == CLATTN__K_FUSED_LANES ? CLATTN__T_FL_KEYS
                                                               : CLATTN__T_BLOCK_N);
}
