/* clattn_tune: search, verification and timing of kernel configurations.
 *
 * Per shape and tuned unit (fused, splitkv, qk, softmax, av):
 *   1. the built-in default configuration is checked and timed;
 *   2. candidates: the whole space when it has at most EXHAUSTIVE_MAX points,
 *      else RANDOM_SAMPLE random points and then a local search (one tunable
 *      one step up or down) around the best until nothing improves; each is
 *      pruned by the space's static constraints, compiled once (program
 *      cache), checked against the double reference on sampled rows, and
 *      timed: warm-up, then samples of enough back-to-back launches to last
 *      ~2 ms, median kept with p20/p80; a candidate whose first samples are
 *      clearly slower than the best so far is cut;
 *   3. confirmation: the best few and the default, interleaved, more samples;
 *      a winner is stored only when it beats the default by more than the
 *      measured spread, else the default is recorded as best.
 * Finally the paths themselves are timed with their best configurations and
 * the fastest is recorded for AUTO. Entries are appended to the user db as
 * they are measured, so an interrupted tune keeps its work. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "attention.h"
#include "cache_fs.h"
#include "feature_table.h"
#include "internal.h"
#include "tuner_bench.h"
#include "tuner_space.h"

#define EXHAUSTIVE_MAX 30
#define RANDOM_SAMPLE 12
#define LOCAL_STEPS_MAX 12
#define SAMPLES 5
#define CONFIRM_TOP 3
#define CONFIRM_ROUNDS 5
#define CUT_FACTOR 1.3
#define MIN_NOISE 0.03

typedef clattn__timing timing;

typedef struct {
    clattn_context *ctx;
    const clattn_tune_options *opts;
    double t0;
    size_t shape, num_shapes;
    clattn__bench b; /* the shape being tuned */
    clattn_tune_result *results;
    size_t max_results, num_results;
    clattn_tune_result sink; /* where results past max_results go */
    uint32_t rng;
} tuner;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int over_budget(const tuner *t)
{
    return t->opts->budget_seconds > 0 && now_s() - t->t0 > t->opts->budget_seconds;
}

/* Units stop at 80% of the budget: the path comparison, which decides what
 * AUTO runs, gets the rest. */
static int units_over_budget(const tuner *t)
{
    return t->opts->budget_seconds > 0 && now_s() - t->t0 > 0.8 * t->opts->budget_seconds;
}

static void progress(tuner *t, const char *unit, int cand, int ncand, double best,
                     double dflt)
{
    if (!t->opts->progress)
        return;
    clattn_tune_progress p = {t->shape,
                              t->num_shapes,
                              unit,
                              cand,
                              ncand,
                              best,
                              dflt,
                              now_s() - t->t0,
                              t->opts->budget_seconds,
                              clattn__unit_index(unit),
                              clattn__unit_count()};
    t->opts->progress(&p, t->opts->progress_user_data);
}






typedef struct {
    clattn__point pt;
    clattn__plan plan;
    timing tm;
    double samples[CONFIRM_ROUNDS];
} candidate;

static int same_point(const clattn__space *sp, const clattn__point *a, const clattn__point *b)
{
    for (int i = 0; i < sp->count; ++i)
        if (a->idx[i] != b->idx[i])
            return 0;
    return 1;
}

static clattn_tune_result *new_result(tuner *t, const char *unit)
{
    clattn_tune_result *r = t->num_results < t->max_results ? &t->results[t->num_results++]
                                                            : &t->sink;
    memset(r, 0, sizeof *r);
    r->shape = t->shape;
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    return r;
}

static void reject(clattn_tune_result *r, const char *params, const char *why)
{
    r->rejected++;
    if (!r->rejected_reason[0])
        snprintf(r->rejected_reason, sizeof r->rejected_reason, "%.50s: %.100s", params, why);
}

static void fill_entry(tuner *t, const char *unit, const char *const *names, const int *values,
                       int n, const timing *tm, double default_ms, clattn__tune_entry *e)
{
    memset(e, 0, sizeof *e);
    clattn__tune_key_for(&t->b.s, unit, &e->key);
    for (int i = 0; i < n && i < CLATTN__DB_MAX_PARAMS; ++i) {
        snprintf(e->names[i], sizeof e->names[i], "%s", names[i]);
        e->values[i] = values[i];
    }
    e->nparams = n < CLATTN__DB_MAX_PARAMS ? n : CLATTN__DB_MAX_PARAMS;
    e->median_ms = tm->median;
    e->p20_ms = tm->p20;
    e->p80_ms = tm->p80;
    e->default_ms = default_ms;
    snprintf(e->lib, sizeof e->lib, "%s", clattn_version());
    e->src_hash = clattn__unit_hash(t->ctx, unit);
}

static double spread(const timing *tm)
{
    return tm->median > 0 ? (tm->p80 - tm->p20) / tm->median : 0;
}

static void params_text(char *buf, size_t size, const char (*names)[CLATTN__DB_NAME],
                        const char *const *cnames, const int *values, int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < size; ++i) {
        int k = snprintf(buf + used, size - used, "%s%s=%d", i ? " " : "",
                         names ? names[i] : cnames[i], values[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* A db entry that is current for the unit: its values go into the plan the
 * later units build on, and into the result as it was measured. */
static void keep_entry(tuner *t, const clattn__space *sp, const clattn__tune_entry *have,
                       const clattn__plan *base, clattn__plan *best, clattn_tune_result *r)
{
    clattn__point pt;
    clattn__space_point_of(sp, base, &pt, NULL);
    for (int i = 0; i < sp->count; ++i)
        for (int v = 0; v < sp->t[i].count; ++v)
            if (sp->t[i].values[v] == clattn__db_param(have, CLATTN__SP_NAME(sp, i), -1))
                pt.idx[i] = v;
    if (clattn__space_apply(t->ctx, sp, &pt, &t->b.s, best) != CLATTN_OK)
        *best = *base;
    r->from_db = 1;
    r->median_ms = have->median_ms;
    r->p20_ms = have->p20_ms;
    r->p80_ms = have->p80_ms;
    r->default_ms = have->default_ms;
    r->tuned = have->median_ms < have->default_ms;
    params_text(r->params, sizeof r->params, have->names, NULL, have->values, have->nparams);
}

/* The default, exactly as the library would run it without tuning: checked
 * (its failing is an error, not a rejected candidate) and timed. raw gets
 * the plan's exact values of the unit's tunables. */
static clattn_status measure_default(tuner *t, const clattn__space *sp, const clattn__plan *base,
                                     candidate *dflt, int *raw)
{
    memset(dflt, 0, sizeof *dflt);
    dflt->plan = *base;
    clattn__space_point_of(sp, base, &dflt->pt, raw);
    double err;
    CLATTN_TRY(clattn__bench_check(&t->b, &dflt->plan, &err));
    if (!(err <= clattn__ref_tolerance(t->b.s.p.dtype)))
        return clattn__fail(t->ctx, CLATTN_ERR_OPENCL,
                            "tune: the default %s configuration is wrong on this device "
                            "(relative error %g)",
                            sp->unit, err);
    CLATTN_TRY(clattn__bench_measure(&t->b, &dflt->plan, sp->kernels, SAMPLES, 0, &dflt->tm));
    clattn__log(t->ctx, CLATTN_LOG_DEBUG, "tune %s default: %.4g ms (p20 %.4g, p80 %.4g)",
                sp->unit, dflt->tm.median, dflt->tm.p20, dflt->tm.p80);
    return CLATTN_OK;
}

static void point_of_index(const clattn__space *sp, int lin, clattn__point *pt)
{
    for (int i = 0; i < sp->count; ++i) {
        pt->idx[i] = lin % sp->t[i].count;
        lin /= sp->t[i].count;
    }
}

static int index_of_point(const clattn__space *sp, const clattn__point *pt)
{
    int lin = 0;
    for (int j = sp->count - 1; j >= 0; --j)
        lin = lin * sp->t[j].count + pt->idx[j];
    return lin;
}

/* The search over one unit's space: the points that pass the static
 * constraints (cheap, nothing compiled), which of them were seen, and the
 * candidates measured so far. */
typedef struct {
    const clattn__space *sp;
    int *valid, nvalid;
    char *seen;
    int exhaustive, max_cands;
    candidate *cands;
    int ncand, best_i, visited, local_steps;
    double best_ms;
} search;

static void search_free(search *x)
{
    free(x->valid);
    free(x->seen);
    free(x->cands);
}

static clattn_status search_init(tuner *t, const clattn__space *sp, const candidate *dflt,
                                 search *x)
{
    memset(x, 0, sizeof *x);
    x->sp = sp;
    const int total = clattn__space_size(sp);
    x->valid = malloc((size_t)total * sizeof *x->valid);
    x->seen = calloc((size_t)total, 1);
    for (int lin = 0; x->valid && lin < total; ++lin) {
        clattn__point pt;
        point_of_index(sp, lin, &pt);
        if (!same_point(sp, &pt, &dflt->pt) && clattn__space_valid(sp, &pt, t->ctx, &t->b.s))
            x->valid[x->nvalid++] = lin;
    }
    x->exhaustive = x->nvalid <= EXHAUSTIVE_MAX;
    x->max_cands = x->exhaustive ? x->nvalid : RANDOM_SAMPLE + LOCAL_STEPS_MAX;
    /* one more: the default joins the candidates for confirmation */
    x->cands = calloc((size_t)x->max_cands + 1, sizeof *x->cands);
    x->best_i = -1;
    x->best_ms = dflt->tm.median;
    if (!x->cands || !x->seen || !x->valid) {
        search_free(x);
        return clattn__fail(t->ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    }
    return CLATTN_OK;
}

/* The next point to visit at this step, as a linear index: every valid
 * point when there are few; else a random sample (the GEMM library first:
 * it is a single point of its own), then a local search that moves one
 * tunable one step from the best. -1 when the search is over. */
static int next_index(tuner *t, search *x, const candidate *dflt, int step)
{
    const clattn__space *sp = x->sp;
    if (x->exhaustive)
        return step < x->nvalid ? x->valid[step] : -1;
    if (x->visited < RANDOM_SAMPLE && step < 50 * RANDOM_SAMPLE) {
        t->rng = t->rng * 1664525u + 1013904223u;
        int lin = x->valid[(t->rng >> 8) % (uint32_t)x->nvalid];
        const int last = sp->count - 1;
        if (step == 0 &&
            (sp->t[last].id == CLATTN__T_QK_BLAS || sp->t[last].id == CLATTN__T_AV_BLAS)) {
            int blas = 1;
            for (int j = 0; j < last; ++j)
                blas *= sp->t[j].count;
            for (int v = 0; v < x->nvalid; ++v)
                if (x->valid[v] == blas)
                    lin = blas;
        }
        return lin;
    }
    const clattn__point *centre = x->best_i >= 0 ? &x->cands[x->best_i].pt : &dflt->pt;
    for (int i = 0; i < sp->count; ++i)
        for (int dir = -1; dir <= 1; dir += 2) {
            clattn__point nb = *centre;
            nb.idx[i] += dir;
            if (nb.idx[i] < 0 || nb.idx[i] >= sp->t[i].count)
                continue;
            const int l = index_of_point(sp, &nb);
            if (!x->seen[l])
                return ++x->local_steps > LOCAL_STEPS_MAX ? -1 : l;
        }
    return -1;
}

/* Applies, checks and times one point; a failure rejects the point (with
 * its reason in r), never the tune. Returns 1 when c was measured. */
static int try_point(tuner *t, search *x, const clattn__plan *base, const clattn__point *pt,
                     candidate *c, clattn_tune_result *r)
{
    clattn_context *ctx = t->ctx;
    const clattn__space *sp = x->sp;
    c->pt = *pt;
    c->plan = *base;
    char params[160];
    clattn__space_describe(sp, pt, params, sizeof params);
    r->tried++;
    double err;
    clattn_status st = clattn__space_apply(ctx, sp, pt, &t->b.s, &c->plan);
    const clattn__plan applied = c->plan;
    if (st == CLATTN_OK)
        st = clattn__bench_check(&t->b, &c->plan, &err);
    if (st != CLATTN_OK) {
        reject(r, params, ctx->last_error ? ctx->last_error : ""); /* lock held */
        return 0;
    }
    if (memcmp(&applied, &c->plan, sizeof applied) != 0) {
        reject(r, params, "does not fit the compiled kernel's limits");
        return 0;
    }
    if (!(err <= clattn__ref_tolerance(t->b.s.p.dtype))) {
        char why[64];
        snprintf(why, sizeof why, "wrong result (relative error %.3g)", err);
        reject(r, params, why);
        return 0;
    }
    st = clattn__bench_measure(&t->b, &c->plan, sp->kernels, SAMPLES, CUT_FACTOR * x->best_ms,
                               &c->tm);
    if (st != CLATTN_OK) {
        reject(r, params, ctx->last_error ? ctx->last_error : ""); /* lock held */
        return 0;
    }
    clattn__log(ctx, CLATTN_LOG_DEBUG, "tune %s [%s]: %.4g ms (p20 %.4g, p80 %.4g)", sp->unit,
                params, c->tm.median, c->tm.p20, c->tm.p80);
    return 1;
}

/* Confirmation: the top few candidates and the default (at cands[ncand]),
 * interleaved, more samples. *win receives the winner's index; a "win"
 * inside the measured noise is no win (the default's index). */
static clattn_status confirm(tuner *t, search *x, const candidate *dflt, int *win)
{
    candidate *cands = x->cands;
    const int ncand = x->ncand;
    int top[CONFIRM_TOP + 1], ntop = 0;
    for (int k = 0; k < CONFIRM_TOP; ++k) {
        int pick = -1;
        for (int i = 0; i < ncand; ++i) {
            int used = 0;
            for (int j = 0; j < ntop; ++j)
                used |= top[j] == i;
            if (!used && (pick < 0 || cands[i].tm.median < cands[pick].tm.median))
                pick = i;
        }
        if (pick >= 0)
            top[ntop++] = pick;
    }
    cands[ncand] = *dflt;
    top[ntop++] = ncand;
    for (int round = 0; round < CONFIRM_ROUNDS; ++round)
        for (int j = 0; j < ntop; ++j) {
            timing tm;
            CLATTN_TRY(
                clattn__bench_measure(&t->b, &cands[top[j]].plan, x->sp->kernels, 1, 0, &tm));
            cands[top[j]].samples[round] = tm.median;
        }
    *win = ncand;
    for (int j = 0; j < ntop; ++j) {
        candidate *c = &cands[top[j]];
        c->tm.median = clattn__quantile(c->samples, CONFIRM_ROUNDS, 0.5);
        c->tm.p20 = clattn__quantile(c->samples, CONFIRM_ROUNDS, 0.2);
        c->tm.p80 = clattn__quantile(c->samples, CONFIRM_ROUNDS, 0.8);
        if (c->tm.median < cands[*win].tm.median)
            *win = top[j];
    }
    const candidate *d = &cands[ncand];
    double noise = spread(&d->tm);
    if (spread(&cands[*win].tm) > noise)
        noise = spread(&cands[*win].tm);
    if (noise < MIN_NOISE)
        noise = MIN_NOISE;
    if (*win != ncand && !(cands[*win].tm.median < d->tm.median * (1.0 - noise)))
        *win = ncand;
    return CLATTN_OK;
}

/* Stores the winner (or the default's exact values) in the db and r. */
static clattn_status record_winner(tuner *t, const search *x, int win, const int *raw,
                                   clattn_tune_result *r)
{
    const clattn__space *sp = x->sp;
    const candidate *w = &x->cands[win], *d = &x->cands[x->ncand];
    const int is_default = win == x->ncand;
    int vals[CLATTN__MAX_TUNABLES];
    const char *names[CLATTN__MAX_TUNABLES];
    int nvals = 0;
    for (int i = 0; i < sp->count; ++i) {
        /* Only what applies to the chosen kernel: the other fused kernel's
         * tunables have no value in the plan. */
        int value = !is_default ? (clattn__space_applies(sp, &w->pt, i)
                                       ? sp->t[i].values[w->pt.idx[i]]
                                       : -1)
                                : raw[i];
        if (sp->t[i].id == CLATTN__T_NSPLIT && value >= 0)
            value = w->plan.nsplit; /* the count the plan really uses */
        if (value < 0)
            continue;
        names[nvals] = CLATTN__SP_NAME(sp, i);
        vals[nvals++] = value;
    }
    clattn__tune_entry e;
    fill_entry(t, sp->unit, names, vals, nvals, &w->tm, d->tm.median, &e);
    if (clattn__tuning_record(t->ctx, &e) != 0)
        return clattn__fail(t->ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    r->tuned = !is_default;
    r->median_ms = w->tm.median;
    r->p20_ms = w->tm.p20;
    r->p80_ms = w->tm.p80;
    r->default_ms = d->tm.median;
    params_text(r->params, sizeof r->params, NULL, names, vals, nvals);
    return CLATTN_OK;
}

/* Tunes one unit of the current shape; *best receives the plan to use. */
static clattn_status tune_unit(tuner *t, const clattn__space *sp, clattn__plan *base,
                               clattn__plan *best)
{
    clattn_tune_result *r = new_result(t, sp->unit);
    *best = *base;
    clattn__tune_key key;
    clattn__tune_key_for(&t->b.s, sp->unit, &key);
    const clattn__tune_entry *have = clattn__tuning_current(t->ctx, &key);
    if (have && !t->opts->retune) {
        keep_entry(t, sp, have, base, best, r);
        return CLATTN_OK;
    }
    candidate dflt;
    int raw[CLATTN__MAX_TUNABLES];
    CLATTN_TRY(measure_default(t, sp, base, &dflt, raw));
    r->default_ms = dflt.tm.median;
    search x;
    CLATTN_TRY(search_init(t, sp, &dflt, &x));
    for (int step = 0; !units_over_budget(t) && x.visited < x.max_cands; ++step) {
        const int lin = next_index(t, &x, &dflt, step);
        if (lin < 0)
            break;
        if (x.seen[lin])
            continue;
        x.seen[lin] = 1;
        clattn__point pt;
        point_of_index(sp, lin, &pt);
        if (same_point(sp, &pt, &dflt.pt) || !clattn__space_valid(sp, &pt, t->ctx, &t->b.s))
            continue;
        ++x.visited;
        progress(t, sp->unit, x.visited, x.max_cands, x.best_ms, dflt.tm.median);
        candidate *c = &x.cands[x.ncand];
        if (!try_point(t, &x, base, &pt, c, r))
            continue;
        if (c->tm.median < x.best_ms) {
            x.best_ms = c->tm.median;
            x.best_i = x.ncand;
        }
        ++x.ncand;
    }
    int win;
    clattn_status st = confirm(t, &x, &dflt, &win);
    if (st == CLATTN_OK)
        st = record_winner(t, &x, win, raw, r);
    if (st == CLATTN_OK)
        *best = x.cands[win].plan;
    search_free(&x);
    return st;
}

/* Times each path with its tuned plan and records the fastest for AUTO. */
static clattn_status tune_paths(tuner *t, clattn__plan *plans, const int *have, int n)
{
    clattn_context *ctx = t->ctx;
    clattn_tune_result *r = new_result(t, "path");
    double samples[3][CONFIRM_ROUNDS];
    const unsigned all = ~0u;
    for (int round = 0; round < CONFIRM_ROUNDS; ++round)
        for (int i = 0; i < n; ++i) {
            if (!have[i])
                continue;
            timing tm;
            CLATTN_TRY(clattn__bench_measure(&t->b, &plans[i], all, 1, 0, &tm));
            samples[i][round] = tm.median;
        }
    timing tms[3];
    int best = -1;
    for (int i = 0; i < n; ++i) {
        if (!have[i])
            continue;
        tms[i].median = clattn__quantile(samples[i], CONFIRM_ROUNDS, 0.5);
        tms[i].p20 = clattn__quantile(samples[i], CONFIRM_ROUNDS, 0.2);
        tms[i].p80 = clattn__quantile(samples[i], CONFIRM_ROUNDS, 0.8);
        if (best < 0 || tms[i].median < tms[best].median)
            best = i;
    }
    /* The rule's choice is the default; another path must beat it clearly. */
    const clattn_path rule = clattn__auto_path(&t->b.s);
    int dflt = -1;
    for (int i = 0; i < n; ++i)
        if (have[i] && plans[i].path == rule)
            dflt = i;
    if (dflt >= 0 && best != dflt) {
        double noise = spread(&tms[dflt]) > MIN_NOISE ? spread(&tms[dflt]) : MIN_NOISE;
        if (!(tms[best].median < tms[dflt].median * (1.0 - noise)))
            best = dflt;
    }
    const char *names[1] = {"PATH"};
    int vals[1] = {(int)plans[best].path};
    clattn__tune_entry e;
    fill_entry(t, "path", names, vals, 1, &tms[best], dflt >= 0 ? tms[dflt].median : 0, &e);
    if (clattn__tuning_record(ctx, &e) != 0)
        return clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    r->tuned = best != dflt;
    r->median_ms = tms[best].median;
    r->p20_ms = tms[best].p20;
    r->p80_ms = tms[best].p80;
    r->default_ms = e.default_ms;
    r->tried = n;
    snprintf(r->params, sizeof r->params, "PATH=%s",
             plans[best].path == CLATTN_PATH_FUSED         ? "fused"
             : plans[best].path == CLATTN_PATH_SPLIT_KV    ? "split_kv"
                                                           : "three_stage");
    return CLATTN_OK;
}




static clattn_status tune_shape(tuner *t, const clattn_problem *shape)
{
    clattn_context *ctx = t->ctx;
    clattn_status st = clattn__bench_setup(t->ctx, shape, (uint32_t)t->shape, &t->b);
    /* The paths AUTO may pick first; three-stage, never the rule's choice,
     * last, so a short budget is spent where it matters most. */
    clattn__plan plans[3];
    int have[3] = {0, 0, 0};
    const clattn_path paths[3] = {CLATTN_PATH_FUSED, CLATTN_PATH_SPLIT_KV,
                                  CLATTN_PATH_THREE_STAGE};
    for (int i = 0; i < 3 && st == CLATTN_OK; ++i) {
        /* Split-KV is for few query rows; elsewhere it is fused with extra work. */
        if (paths[i] == CLATTN_PATH_SPLIT_KV && t->b.s.p.seq_q > 64)
            continue;
        clattn__shape s = t->b.s;
        s.p.path = paths[i];
        clattn__plan base;
        st = clattn__plan_make(ctx, &s, ctx->max_scratch_bytes,
                               CLATTN__PLAN_NO_TUNED | CLATTN__PLAN_NO_OVERRIDES, &base);
        if (st == CLATTN_ERR_UNSUPPORTED) {
            st = CLATTN_OK; /* e.g. no room for three-stage scratch: just skip it */
            continue;
        }
        for (const clattn__space *sp = clattn__spaces; sp->unit && st == CLATTN_OK; ++sp) {
            if (!strcmp(sp->unit, "clblast")) {
                /* Only where the qk/av units gave a GEMM to CLBlast; its
                 * generic defaults (set 1) are the baseline. */
                if (!base.qk_blas && !base.av_blas)
                    continue;
                base.blas_set = 1;
            }
            if (sp->path == paths[i] && !units_over_budget(t)) {
                clattn__plan best;
                st = tune_unit(t, sp, &base, &best);
                if (st == CLATTN_OK)
                    base = best;
            }
        }
        plans[i] = base;
        have[i] = st == CLATTN_OK;
    }
    if (st == CLATTN_OK && !over_budget(t))
        st = tune_paths(t, plans, have, 3);
    clattn__bench_free(&t->b);
    return st;
}

clattn_status clattn_tune(clattn_context *ctx, const clattn_problem *shapes, size_t num_shapes,
                          const clattn_tune_options *opts, clattn_tune_result *results,
                          size_t max_results, size_t *num_results)
{
    if (num_results)
        *num_results = 0;
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    clattn_tune_options defaults;
    memset(&defaults, 0, sizeof defaults);
    if (!opts)
        opts = &defaults;
    pthread_mutex_lock(&ctx->lock);
    clattn_status st = CLATTN_OK;
    if (num_shapes > 0 && !shapes)
        st = clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, "shapes is NULL");
    else if (max_results > 0 && !results)
        st = clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, "results is NULL");
    else if (!(opts->budget_seconds >= 0))
        st = clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, "budget_seconds must be >= 0");
    for (size_t i = 0; i < num_shapes && st == CLATTN_OK; ++i) {
        clattn__shape s;
        st = clattn__problem_normalize(ctx, &shapes[i], &s);
        /* The tuner makes up its inputs; masks, left padding and packed
         * sequences have layouts it does not invent (their problems use the
         * plain problem's entries). */
        const clattn__feature *f =
            st == CLATTN_OK ? clattn__features_lacking(clattn__shape_features(&s),
                                                       CLATTN__FT_TUNABLE)
                            : NULL;
        if (f)
            st = clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                              "shapes[%zu]: tuning does not take %s (such problems use the "
                              "entries of the same problem without it)",
                              i, f->field);
    }
    if (st != CLATTN_OK) {
        pthread_mutex_unlock(&ctx->lock);
        return st;
    }

    /* Timing needs a profiling queue: use the context's if it has one. */
    cl_command_queue saved = ctx->queue, tq = NULL;
    cl_command_queue_properties props = 0;
    clGetCommandQueueInfo(ctx->queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    if (!(props & CL_QUEUE_PROFILING_ENABLE)) {
        cl_int err;
        tq = clCreateCommandQueue(ctx->cl_ctx, ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
        if (err != CL_SUCCESS) {
            st = clattn__cl_fail(ctx, err, "clCreateCommandQueue (tuning)");
            pthread_mutex_unlock(&ctx->lock);
            return st;
        }
        clFinish(saved);
        ctx->queue = tq;
    }
    int lock_fd = clattn__tuning_lock(ctx);

    tuner t;
    memset(&t, 0, sizeof t);
    t.ctx = ctx;
    t.opts = opts;
    t.t0 = now_s();
    t.num_shapes = num_shapes;
    t.results = results;
    t.max_results = max_results;
    t.rng = 12345u;
    for (size_t i = 0; i < num_shapes && st == CLATTN_OK && !over_budget(&t); ++i) {
        t.shape = i;
        st = tune_shape(&t, &shapes[i]);
    }
    char msg[CLATTN__PATH_MAX + 128];
    if (clattn__tuning_save(ctx, msg, sizeof msg) != 0)
        clattn__cache_warn(ctx, msg);
    if (lock_fd >= 0)
        close(lock_fd); /* releases the lock */
    if (tq) {
        clFinish(tq);
        ctx->queue = saved;
        clReleaseCommandQueue(tq);
    }
    if (num_results)
        *num_results = t.num_results;
    pthread_mutex_unlock(&ctx->lock);
    return st;
}
