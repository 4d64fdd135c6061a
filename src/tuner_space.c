/* The tuned units' search spaces and their constraints. */
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "internal.h"
#include "tuner_space.h"

#define K(id) (1u << (id))

const clattn__space clattn__spaces[] = {
    /* FUSED_VEC picks the kernel: BLOCK_* tune the row-per-work-item one,
     * FV_* the vector one (a point sets only its own kernel's tunables). */
    {"fused",
     CLATTN_PATH_FUSED,
     K(CLATTN__K_FUSED) | K(CLATTN__K_FUSED_VEC),
     8,
     {{"FUSED_VEC", 2, {0, 1}},
      {"BLOCK_M", 7, {1, 2, 4, 8, 16, 32, 64}},
      {"BLOCK_N", 5, {4, 8, 16, 32, 64}},
      {"FV_ROWS", 5, {1, 2, 4, 8, 16}},
      {"FV_WG", 5, {1, 2, 4, 8, 16}},
      {"FV_VEC", 3, {4, 8, 16}},
      {"FV_GQA", 2, {0, 1}},
      {"FV_DIRECT", 2, {0, 1}}}},
    {"splitkv",
     CLATTN_PATH_SPLIT_KV,
     K(CLATTN__K_FUSED) | K(CLATTN__K_FUSED_VEC) | K(CLATTN__K_COMBINE),
     10,
     {{"FUSED_VEC", 2, {0, 1}},
      {"BLOCK_M", 5, {1, 2, 4, 8, 16}},
      {"BLOCK_N", 4, {8, 16, 32, 64}},
      {"NSPLIT", 7, {1, 2, 4, 8, 16, 32, 64}},
      {"COMBINE_WG", 3, {16, 64, 128}},
      {"FV_ROWS", 4, {1, 2, 4, 8}},
      {"FV_WG", 4, {1, 2, 4, 8}},
      {"FV_VEC", 3, {4, 8, 16}},
      {"FV_GQA", 2, {0, 1}},
      {"FV_DIRECT", 2, {0, 1}}}},
    {"qk",
     CLATTN_PATH_THREE_STAGE,
     K(CLATTN__K_QK),
     5,
     {{"QK_WG", 4, {1, 2, 4, 8}},
      {"QK_ROWS", 6, {1, 2, 4, 8, 12, 16}},
      {"QK_VEC", 3, {4, 8, 16}},
      {"QK_CV", 3, {1, 2, 4}},
      {"QK_BLAS", 2, {0, 1}}}},
    {"softmax",
     CLATTN_PATH_THREE_STAGE,
     K(CLATTN__K_SOFTMAX),
     2,
     {{"SM_WG", 6, {1, 4, 16, 64, 128, 256}},
      {"SM_VEC", 3, {4, 8, 16}}}},
    {"av",
     CLATTN_PATH_THREE_STAGE,
     K(CLATTN__K_AV),
     5,
     {{"AV_WG", 4, {1, 2, 4, 8}},
      {"AV_ROWS", 6, {1, 2, 4, 6, 8, 12}},
      {"AV_VEC", 3, {4, 8, 16}},
      {"AV_CV", 5, {1, 2, 4, 8, 16}},
      {"AV_BLAS", 2, {0, 1}}}},
    /* CLBlast's own parameters, for the GEMMs the qk/av units gave it. */
    {"clblast",
     CLATTN_PATH_THREE_STAGE,
     K(CLATTN__K_QK) | K(CLATTN__K_AV),
     1,
     {{"CLBLAST_SET", 6, {1, 2, 3, 4, 5, 6}}}},
    {NULL, CLATTN_PATH_AUTO, 0, 0, {{NULL, 0, {0}}}},
};

int clattn__space_size(const clattn__space *sp)
{
    int n = 1;
    for (int i = 0; i < sp->count; ++i)
        n *= sp->t[i].count;
    return n;
}

static int value(const clattn__space *sp, const clattn__point *pt, const char *name, int dflt)
{
    for (int i = 0; i < sp->count; ++i)
        if (strcmp(sp->t[i].name, name) == 0)
            return sp->t[i].values[pt->idx[i]];
    return dflt;
}

/* The kernel configs a unit's tunables live in. */
static int configs(const clattn__space *sp, clattn__plan *plan, clattn__kernel_config **cfgs)
{
    if (!strcmp(sp->unit, "clblast"))
        return 0;
    if (!strcmp(sp->unit, "fused"))
        return cfgs[0] = &plan->fused, 1;
    if (!strcmp(sp->unit, "splitkv"))
        return cfgs[0] = &plan->fused, cfgs[1] = &plan->combine, 2;
    if (!strcmp(sp->unit, "qk"))
        return cfgs[0] = &plan->qk, 1;
    if (!strcmp(sp->unit, "softmax"))
        return cfgs[0] = &plan->softmax, 1;
    return cfgs[0] = &plan->av, 1;
}

/* Makes cfg the given fused kernel, from its family's defaults when it
 * changes; the point's values follow. */
static void set_fused_kernel(clattn__kernel_config *cfg, int vec)
{
    const clattn__kernel_id want = vec ? CLATTN__K_FUSED_VEC : CLATTN__K_FUSED;
    if (cfg->id == want)
        return;
    const int split = cfg->values[cfg->id == CLATTN__K_FUSED_VEC ? 3 : 2];
    cfg->id = want;
    const int dflt[2][6] = {{16, 32, split, 0, 0, 0}, {4, 4, 16, split, 0, 0}};
    for (int i = 0; i < 6; ++i)
        cfg->values[i] = dflt[vec][i];
}

clattn_status clattn__space_apply(struct clattn_context *ctx, const clattn__space *sp,
                                  const clattn__point *pt, const clattn__shape *s,
                                  clattn__plan *plan)
{
    if (!strcmp(sp->unit, "fused") || !strcmp(sp->unit, "splitkv"))
        set_fused_kernel(&plan->fused, value(sp, pt, "FUSED_VEC", 0));
    clattn__kernel_config *cfgs[2];
    int n = configs(sp, plan, cfgs);
    for (int c = 0; c < n; ++c) {
        int np;
        const char *const *names = clattn__kernel_params(cfgs[c]->id, &np);
        for (int j = 0; j < np; ++j)
            cfgs[c]->values[j] = value(sp, pt, names[j], cfgs[c]->values[j]);
    }
    plan->blas_set = value(sp, pt, "CLBLAST_SET", plan->blas_set);
    plan->qk_blas = value(sp, pt, "QK_BLAS", plan->qk_blas);
    plan->av_blas = value(sp, pt, "AV_BLAS", plan->av_blas);
    if (!strcmp(sp->unit, "splitkv"))
        return clattn__plan_split(ctx, s, plan, value(sp, pt, "NSPLIT", plan->nsplit));
    return CLATTN_OK;
}

void clattn__space_point_of(const clattn__space *sp, const clattn__plan *plan,
                            clattn__point *pt, int *raw)
{
    clattn__kernel_config *cfgs[2];
    clattn__plan copy = *plan;
    int n = configs(sp, &copy, cfgs);
    memset(pt, 0, sizeof *pt);
    for (int i = 0; i < sp->count; ++i) {
        int cur = !strcmp(sp->t[i].name, "FUSED_VEC") ? plan->fused.id == CLATTN__K_FUSED_VEC
                  : !strcmp(sp->t[i].name, "CLBLAST_SET") ? plan->blas_set
                  : !strcmp(sp->t[i].name, "NSPLIT")    ? plan->nsplit
                  : !strcmp(sp->t[i].name, "QK_BLAS") ? plan->qk_blas
                  : !strcmp(sp->t[i].name, "AV_BLAS") ? plan->av_blas
                                                      : -1;
        for (int c = 0; c < n && cur < 0; ++c) {
            int np;
            const char *const *names = clattn__kernel_params(cfgs[c]->id, &np);
            for (int j = 0; j < np; ++j)
                if (!strcmp(names[j], sp->t[i].name))
                    cur = cfgs[c]->values[j];
        }
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
static int fits_extent(const clattn__space *sp, const char *name, int v, int extent)
{
    for (int i = 0; i < sp->count; ++i)
        if (strcmp(sp->t[i].name, name) == 0 && v == sp->t[i].values[0])
            return 1;
    return v <= pow2_at_least(extent);
}

int clattn__space_valid(const clattn__space *sp, const clattn__point *pt,
                        const struct clattn_context *ctx, const clattn__shape *s)
{
    const clattn__device_info *d = &ctx->dev;
    const char *blas = !strcmp(sp->unit, "qk") ? "QK_BLAS" : !strcmp(sp->unit, "av") ? "AV_BLAS"
                                                                                     : NULL;
    if (blas && value(sp, pt, blas, 0)) {
        for (int i = 0; i < sp->count; ++i)
            if (strcmp(sp->t[i].name, blas) != 0 && pt->idx[i] != 0)
                return 0;
        return !strcmp(blas, "QK_BLAS") ? clattn__blas_qk_eligible(ctx, s)
                                        : clattn__blas_av_eligible(ctx, s);
    }
    const clattn_problem *p = &s->p;
    const size_t f = sizeof(float);
    if (!strcmp(sp->unit, "fused") || !strcmp(sp->unit, "splitkv")) {
        /* Only the chosen kernel's tunables may move off their first value. */
        const int vec = value(sp, pt, "FUSED_VEC", 0);
        for (int i = 0; i < sp->count; ++i) {
            const char *n = sp->t[i].name;
            const int mine = vec ? !strncmp(n, "FV_", 3) : !strncmp(n, "BLOCK_", 6);
            const int shared = !mine && strncmp(n, "FV_", 3) && strncmp(n, "BLOCK_", 6);
            if (!mine && !shared && pt->idx[i] != 0)
                return 0;
        }
        if (vec) {
            if (value(sp, pt, "FV_GQA", 0) && s->group == 1)
                return 0; /* nothing to share: the same kernel as FV_GQA=0 */
            int rows = value(sp, pt, "FV_ROWS", 1), wg = value(sp, pt, "FV_WG", 1);
            int w = value(sp, pt, "FV_VEC", 16);
            const int vrows = p->seq_q * (value(sp, pt, "FV_GQA", 0) ? s->group : 1);
            size_t dv_pad = ((size_t)p->head_dim_v + (size_t)w - 1) / (size_t)w * (size_t)w;
            if (!fits_extent(sp, "FV_ROWS", rows, vrows) ||
                !fits_extent(sp, "FV_WG", wg, (vrows + rows - 1) / rows) ||
                !fits_extent(sp, "FV_VEC", w, p->seq_kv) || (size_t)wg > d->max_wg_size ||
                (size_t)wg > d->max_item_sizes[0] ||
                f * (size_t)w * ((size_t)p->head_dim + dv_pad) > d->local_mem_size)
                return 0;
            if (!strcmp(sp->unit, "splitkv")) {
                int ns = value(sp, pt, "NSPLIT", 1), cw = value(sp, pt, "COMBINE_WG", 64);
                if ((int64_t)ns * w > 2 * (int64_t)pow2_at_least(p->seq_kv) ||
                    (size_t)cw > d->max_wg_size)
                    return 0;
            }
            return 1;
        }
        int bm = value(sp, pt, "BLOCK_M", 1), bn = value(sp, pt, "BLOCK_N", 1);
        /* Tiles far beyond the problem only add idle work-items / padding. */
        if (!fits_extent(sp, "BLOCK_M", bm, p->seq_q) ||
            !fits_extent(sp, "BLOCK_N", bn, p->seq_kv))
            return 0;
        if ((size_t)bm > d->max_wg_size || (size_t)bm > d->max_item_sizes[0])
            return 0;
        if (f * (size_t)bn * (size_t)(p->head_dim + p->head_dim_v) > d->local_mem_size)
            return 0;
        if (!strcmp(sp->unit, "splitkv")) {
            int ns = value(sp, pt, "NSPLIT", 1), cw = value(sp, pt, "COMBINE_WG", 64);
            if ((int64_t)ns * bn > 2 * (int64_t)pow2_at_least(p->seq_kv) ||
                (size_t)cw > d->max_wg_size)
                return 0;
        }
        return 1;
    }
    if (!strcmp(sp->unit, "clblast"))
        return value(sp, pt, "CLBLAST_SET", 0) <= clattn__blas_num_sets();
    if (!strcmp(sp->unit, "softmax")) {
        int wg = value(sp, pt, "SM_WG", 64), w = value(sp, pt, "SM_VEC", 16);
        return (size_t)wg <= d->max_wg_size && (size_t)wg <= d->max_item_sizes[0] &&
               fits_extent(sp, "SM_WG", wg, (p->seq_kv + w - 1) / w) &&
               fits_extent(sp, "SM_VEC", w, p->seq_kv);
    }
    /* qk: rows x vectors of keys; av: rows x vectors of value dims. */
    const int qk = !strcmp(sp->unit, "qk");
    int wg = value(sp, pt, qk ? "QK_WG" : "AV_WG", 1);
    int rows = value(sp, pt, qk ? "QK_ROWS" : "AV_ROWS", 1);
    int w = value(sp, pt, qk ? "QK_VEC" : "AV_VEC", 16);
    int cv = value(sp, pt, qk ? "QK_CV" : "AV_CV", 1);
    const int extent = qk ? p->seq_kv : p->head_dim_v;
    size_t local = qk ? f * (size_t)p->head_dim * (size_t)w * (size_t)cv : 0;
    /* More accumulators than a CPU has vector registers only spill. */
    return (size_t)wg <= d->max_wg_size && (size_t)wg <= d->max_item_sizes[0] &&
           local <= d->local_mem_size && rows * cv * w <= 512 &&
           fits_extent(sp, qk ? "QK_ROWS" : "AV_ROWS", rows, p->seq_q) &&
           fits_extent(sp, qk ? "QK_WG" : "AV_WG", wg, (p->seq_q + rows - 1) / rows) &&
           fits_extent(sp, qk ? "QK_VEC" : "AV_VEC", w, extent) &&
           (cv == 1 || w * cv <= pow2_at_least(extent));
}

int clattn__space_applies(const clattn__space *sp, const clattn__point *pt, int i)
{
    const char *n = sp->t[i].name;
    const int vec = value(sp, pt, "FUSED_VEC", -1);
    if (vec < 0)
        return 1;
    if (!strncmp(n, "FV_", 3))
        return vec == 1;
    if (!strncmp(n, "BLOCK_", 6))
        return vec == 0;
    return 1;
}

void clattn__space_describe(const clattn__space *sp, const clattn__point *pt, char *buf,
                            size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < sp->count && used < size; ++i) {
        if (!clattn__space_applies(sp, pt, i))
            continue;
        int n = snprintf(buf + used, size - used, "%s%s=%d", used ? " " : "", sp->t[i].name,
                         sp->t[i].values[pt->idx[i]]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}
