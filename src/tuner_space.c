/* The tuned units' search spaces and their constraints. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "internal.h"
#include "tuner_space.h"

int clattn__space_size(const clattn__space *sp)
{
    int n = 1;
    for (int i = 0; i < sp->count; ++i)
        n *= sp->t[i].count;
    return n;
}

/* The point's value of tunable id, or dflt when the unit does not search it. */
static int value(const clattn__space *sp, const clattn__point *pt, clattn__tunable_id id,
                 int dflt)
{
    for (int i = 0; i < sp->count; ++i)
        if (sp->t[i].id == id)
            return sp->t[i].values[pt->idx[i]];
    return dflt;
}

static int searches(const clattn__space *sp, clattn__tunable_id id)
{
    for (int i = 0; i < sp->count; ++i)
        if (sp->t[i].id == id)
            return 1;
    return 0;
}

/* The kernel configs a unit's tunables live in. */
static int configs(const clattn__space *sp, clattn__plan *plan, clattn__kernel_config **cfgs)
{
    if (!strcmp(sp->unit, "fused"))
        return cfgs[0] = &plan->fused, 1;
    if (!strcmp(sp->unit, "splitkv"))
        return cfgs[0] = &plan->fused, cfgs[1] = &plan->combine, 2;
    if (!strcmp(sp->unit, "qk"))
        return cfgs[0] = &plan->qk, 1;
    if (!strcmp(sp->unit, "softmax"))
        return cfgs[0] = &plan->softmax, 1;
    if (!strcmp(sp->unit, "av"))
        return cfgs[0] = &plan->av, 1;
    return 0; /* clblast, path: the plan's own tunables only */
}

/* The plan-level tunables, where the plan keeps them. */
static int *plan_field(clattn__plan *plan, clattn__tunable_id id)
{
    switch (id) {
    case CLATTN__T_NSPLIT:
        return &plan->nsplit;
    case CLATTN__T_QK_BLAS:
        return &plan->qk_blas;
    case CLATTN__T_AV_BLAS:
        return &plan->av_blas;
    case CLATTN__T_CLBLAST_SET:
        return &plan->blas_set;
    default:
        return NULL;
    }
}

/* Makes cfg the given fused kernel, from the table's defaults when it
 * changes; the point's values follow. */
static void set_fused_kernel(clattn__kernel_config *cfg, int kind, clattn__device_class cls)
{
    const clattn__kernel_id want = clattn__fused_kernel(kind);
    if (cfg->id == want)
        return;
    const int split = clattn__cfg_get(cfg, clattn__split_tunable(cfg->id));
    clattn__cfg_defaults(cfg, want, cls);
    clattn__cfg_set(cfg, clattn__split_tunable(want), split);
}

clattn_status clattn__space_apply(struct clattn_context *ctx, const clattn__space *sp,
                                  const clattn__point *pt, const clattn__shape *s,
                                  clattn__plan *plan)
{
    if (searches(sp, CLATTN__T_FUSED_VEC))
        set_fused_kernel(&plan->fused, value(sp, pt, CLATTN__T_FUSED_VEC, 0),
                         ctx->dev.dev_class);
    clattn__kernel_config *cfgs[2];
    const int n = configs(sp, plan, cfgs);
    for (int i = 0; i < sp->count; ++i) {
        const clattn__tunable_id id = sp->t[i].id;
        for (int c = 0; c < n; ++c)
            if (clattn__cfg_has(cfgs[c], id))
                clattn__cfg_set(cfgs[c], id, sp->t[i].values[pt->idx[i]]);
        int *field = plan_field(plan, id);
        if (field && id != CLATTN__T_NSPLIT)
            *field = sp->t[i].values[pt->idx[i]];
    }
    if (searches(sp, CLATTN__T_NSPLIT))
        return clattn__plan_split(ctx, s, plan, value(sp, pt, CLATTN__T_NSPLIT, plan->nsplit));
    return CLATTN_OK;
}

/* The plan's current value of a searched tunable; -1 when the plan's
 * kernels do not have it (the other fused kernel's). */
static int current(const clattn__space *sp, const clattn__plan *plan, clattn__tunable_id id)
{
    clattn__plan copy = *plan;
    if (id == CLATTN__T_FUSED_VEC)
        return clattn__fused_kind(plan->fused.id);
    int *field = plan_field(&copy, id);
    if (field)
        return *field;
    clattn__kernel_config *cfgs[2];
    const int n = configs(sp, &copy, cfgs);
    for (int c = 0; c < n; ++c)
        if (clattn__cfg_has(cfgs[c], id))
            return clattn__cfg_get(cfgs[c], id);
    return -1;
}

void clattn__space_point_of(const clattn__space *sp, const clattn__plan *plan,
                            clattn__point *pt, int *raw)
{
    memset(pt, 0, sizeof *pt);
    for (int i = 0; i < sp->count; ++i) {
        const int cur = current(sp, plan, sp->t[i].id);
        if (raw)
            raw[i] = cur;
        /* nearest listed value */
        int best = 0;
        for (int v = 1; v < sp->t[i].count; ++v) {
            int dv = sp->t[i].values[v] - cur, db = sp->t[i].values[best] - cur;
            if ((dv < 0 ? -dv : dv) < (db < 0 ? -db : db))
                best = v;
        }
        pt->idx[i] = best;
    }
}

static int pow2_at_least(int x)
{
    int p = 1;
    while (p < x && p < (1 << 30))
        p *= 2;
    return p;
}

/* A tile may exceed the problem's extent only as the smallest choice. */
static int fits_extent(const clattn__space *sp, clattn__tunable_id id, int v, int extent)
{
    for (int i = 0; i < sp->count; ++i)
        if (sp->t[i].id == id && v == sp->t[i].values[0])
            return 1;
    return v <= pow2_at_least(extent);
}

/* Which fused kernel a tunable belongs to (its FUSED_VEC value), -1 for
 * none. */
static int fused_family(clattn__tunable_id id)
{
    const int k = clattn__tunables[id].kernel;
    return k == CLATTN__K_FUSED || k == CLATTN__K_FUSED_VEC || k == CLATTN__K_FUSED_LANES
               ? clattn__fused_kind((clattn__kernel_id)k)
               : -1;
}

/* More accumulators than a CPU has vector registers only spill: rows x
 * vectors x width floats a work-item at most. */
#define ACCUMULATORS_MAX 512

/* The split-KV constraints both fused kernels share: no more partitions
 * than twice the (power-of-two) keys allow in tiles, a combine group the
 * device can run. */
static int split_valid(const clattn__space *sp, const clattn__point *pt,
                       const clattn__device_info *d, const clattn_problem *p, int tile_keys)
{
    if (strcmp(sp->unit, "splitkv") != 0)
        return 1;
    const int ns = value(sp, pt, CLATTN__T_NSPLIT, 1);
    const int cw = value(sp, pt, CLATTN__T_COMBINE_WG, 64);
    return (int64_t)ns * tile_keys <= 2 * (int64_t)pow2_at_least(p->seq_kv) &&
           (size_t)cw <= d->max_wg_size;
}

static int fused_valid(const clattn__space *sp, const clattn__point *pt,
                       const struct clattn_context *ctx, const clattn__shape *s)
{
    const clattn__device_info *d = &ctx->dev;
    const clattn_problem *p = &s->p;
    const size_t f = sizeof(float);
    /* Only the chosen kernel's tunables may move off their first value. */
    const int vec = value(sp, pt, CLATTN__T_FUSED_VEC, 0);
    for (int i = 0; i < sp->count; ++i) {
        const int fam = fused_family(sp->t[i].id);
        if (fam >= 0 && fam != vec && pt->idx[i] != 0)
            return 0;
    }
    if (vec == 2) {
        /* rows in lanes: whole blocks, enough rows, dims within reach */
        const int lanes = value(sp, pt, CLATTN__T_FL_LANES, 16);
        const int wg = value(sp, pt, CLATTN__T_FL_WG, 1);
        const int keys = value(sp, pt, CLATTN__T_FL_KEYS, 16);
        const int kb = value(sp, pt, CLATTN__T_FL_KB, 4), db = value(sp, pt, CLATTN__T_FL_DB, 4);
        return p->seq_q >= lanes / 2 && p->head_dim + p->head_dim_v <= 512 && keys % kb == 0 &&
               p->head_dim_v % db == 0 && (size_t)wg <= d->max_wg_size &&
               fits_extent(sp, CLATTN__T_FL_WG, wg, (p->seq_q + lanes - 1) / lanes) &&
               split_valid(sp, pt, d, p, keys);
    }
    if (vec) {
        const int gqa = value(sp, pt, CLATTN__T_FV_GQA, 0);
        if (gqa && s->group == 1)
            return 0; /* nothing to share: the same kernel as FV_GQA=0 */
        const int rows = value(sp, pt, CLATTN__T_FV_ROWS, 1);
        const int wg = value(sp, pt, CLATTN__T_FV_WG, 1);
        const int w = value(sp, pt, CLATTN__T_FV_VEC, 16);
        const int vrows = p->seq_q * (gqa ? s->group : 1);
        const size_t dv_pad = ((size_t)p->head_dim_v + (size_t)w - 1) / (size_t)w * (size_t)w;
        return fits_extent(sp, CLATTN__T_FV_ROWS, rows, vrows) &&
               fits_extent(sp, CLATTN__T_FV_WG, wg, (vrows + rows - 1) / rows) &&
               fits_extent(sp, CLATTN__T_FV_VEC, w, p->seq_kv) && (size_t)wg <= d->max_wg_size &&
               (size_t)wg <= d->max_item_sizes[0] &&
               f * (size_t)w * ((size_t)p->head_dim + dv_pad) <= d->local_mem_size &&
               split_valid(sp, pt, d, p, w);
    }
    const int bm = value(sp, pt, CLATTN__T_BLOCK_M, 1), bn = value(sp, pt, CLATTN__T_BLOCK_N, 1);
    /* Tiles far beyond the problem only add idle work-items / padding. */
    return fits_extent(sp, CLATTN__T_BLOCK_M, bm, p->seq_q) &&
           fits_extent(sp, CLATTN__T_BLOCK_N, bn, p->seq_kv) && (size_t)bm <= d->max_wg_size &&
           (size_t)bm <= d->max_item_sizes[0] &&
           f * (size_t)bn * (size_t)(p->head_dim + p->head_dim_v) <= d->local_mem_size &&
           split_valid(sp, pt, d, p, bn);
}

/* qk: rows x vectors of keys a work-item; av: rows x vectors of value dims. */
static int gemm_like_valid(const clattn__space *sp, const clattn__point *pt,
                           const clattn__device_info *d, const clattn_problem *p, int qk)
{
    const clattn__tunable_id t_wg = qk ? CLATTN__T_QK_WG : CLATTN__T_AV_WG;
    const clattn__tunable_id t_rows = qk ? CLATTN__T_QK_ROWS : CLATTN__T_AV_ROWS;
    const clattn__tunable_id t_vec = qk ? CLATTN__T_QK_VEC : CLATTN__T_AV_VEC;
    const int wg = value(sp, pt, t_wg, 1), rows = value(sp, pt, t_rows, 1);
    const int w = value(sp, pt, t_vec, 16);
    const int cv = value(sp, pt, qk ? CLATTN__T_QK_CV : CLATTN__T_AV_CV, 1);
    const int extent = qk ? p->seq_kv : p->head_dim_v;
    const size_t local = qk ? sizeof(float) * (size_t)p->head_dim * (size_t)w * (size_t)cv : 0;
    return (size_t)wg <= d->max_wg_size && (size_t)wg <= d->max_item_sizes[0] &&
           local <= d->local_mem_size && rows * cv * w <= ACCUMULATORS_MAX &&
           fits_extent(sp, t_rows, rows, p->seq_q) &&
           fits_extent(sp, t_wg, wg, (p->seq_q + rows - 1) / rows) &&
           fits_extent(sp, t_vec, w, extent) && (cv == 1 || w * cv <= pow2_at_least(extent));
}

int clattn__space_valid(const clattn__space *sp, const clattn__point *pt,
                        const struct clattn_context *ctx, const clattn__shape *s)
{
    const clattn__device_info *d = &ctx->dev;
    const clattn_problem *p = &s->p;
    /* A GEMM given to CLBlast is one point: the own kernel's tiles stay at
     * their first values. */
    const clattn__tunable_id blas = !strcmp(sp->unit, "qk")   ? CLATTN__T_QK_BLAS
                                    : !strcmp(sp->unit, "av") ? CLATTN__T_AV_BLAS
                                                              : CLATTN__T_COUNT;
    if (blas != CLATTN__T_COUNT && value(sp, pt, blas, 0)) {
        for (int i = 0; i < sp->count; ++i)
            if (sp->t[i].id != blas && pt->idx[i] != 0)
                return 0;
        return blas == CLATTN__T_QK_BLAS ? clattn__blas_qk_eligible(ctx, s)
                                         : clattn__blas_av_eligible(ctx, s);
    }
    if (searches(sp, CLATTN__T_FUSED_VEC))
        return fused_valid(sp, pt, ctx, s);
    if (!strcmp(sp->unit, "clblast"))
        return value(sp, pt, CLATTN__T_CLBLAST_SET, 0) <= clattn__blas_num_sets();
    if (!strcmp(sp->unit, "softmax")) {
        const int wg = value(sp, pt, CLATTN__T_SM_WG, 64), w = value(sp, pt, CLATTN__T_SM_VEC, 16);
        return (size_t)wg <= d->max_wg_size && (size_t)wg <= d->max_item_sizes[0] &&
               fits_extent(sp, CLATTN__T_SM_WG, wg, (p->seq_kv + w - 1) / w) &&
               fits_extent(sp, CLATTN__T_SM_VEC, w, p->seq_kv);
    }
    if (!strcmp(sp->unit, "qk") || !strcmp(sp->unit, "av"))
        return gemm_like_valid(sp, pt, d, p, !strcmp(sp->unit, "qk"));
    return sp->count > 0;
}

int clattn__space_applies(const clattn__space *sp, const clattn__point *pt, int i)
{
    const int vec = value(sp, pt, CLATTN__T_FUSED_VEC, -1);
    const int fam = fused_family(sp->t[i].id);
    return vec < 0 || fam < 0 || fam == vec;
}

void clattn__space_describe(const clattn__space *sp, const clattn__point *pt, char *buf,
                            size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < sp->count && used < size; ++i) {
        if (!clattn__space_applies(sp, pt, i))
            continue;
        int n = snprintf(buf + used, size - used, "%s%s=%d", used ? " " : "",
                         CLATTN__SP_NAME(sp, i), sp->t[i].values[pt->idx[i]]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}
