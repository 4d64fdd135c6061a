/* clattn_multi_forward_host: one attention cut into parts sized by each
 * context's speed, run on a thread per context, merged (KEYS) and written
 * into the caller's outputs only when every part succeeded. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffers.h"
#include "internal.h"
#include "multi.h"
#include "plan.h"
#include "tuning_store.h"

#define BAD(...) clattn__fail(ctx0, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* clattn__fail under the context's lock (for failures found outside it). */
#define FAIL_LOCKED(st, ctx, ...)                                                          \
    do {                                                                                   \
        pthread_mutex_lock(&(ctx)->lock);                                                  \
        (st) = clattn__fail((ctx), __VA_ARGS__);                                           \
        pthread_mutex_unlock(&(ctx)->lock);                                                \
    } while (0)

/* AUTO takes KEYS below this many query rows per context, when each
 * context gets at least KEYS_MIN_PER_CTX keys (clattn.h). */
#define KEYS_MAX_ROWS_PER_CTX 4
#define KEYS_MIN_PER_CTX 256
/* The least slice a context's speed is measured on: rows of a ROWS split,
 * keys of a KEYS split, a sequence of a BATCH split. */
#define PROBE_ROWS 64
#define PROBE_KEYS 2048
#define PROBE_RUNS 3
#define PROBE_SHARE 0.25

/* ---- the call ------------------------------------------------------------------ */

static clattn_status check_args(clattn_context *ctx0, clattn_context *const *ctxs, int n,
                                const clattn_multi_options *o)
{
    if (n < 1 || n > CLATTN_MULTI_MAX)
        return BAD("num_ctxs must be in 1..%d (got %d)", CLATTN_MULTI_MAX, n);
    for (int i = 0; i < n; ++i) {
        if (!ctxs[i])
            return BAD("ctxs[%d] is NULL", i);
        for (int k = 0; k < i; ++k)
            if (ctxs[k] == ctxs[i])
                return BAD("ctxs[%d] and ctxs[%d] are the same context (each part runs on a "
                           "context of its own)",
                           k, i);
    }
    if (!o)
        return CLATTN_OK;
    if (o->split < CLATTN_SPLIT_AUTO || o->split > CLATTN_SPLIT_BATCH)
        return BAD("opts.split %d is not a CLATTN_SPLIT_* value", o->split);
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; ++i)
        if (o->reserved[i])
            return BAD("opts.reserved[%zu] must be zero", i);
    for (int i = 0; o->weights && i < n; ++i)
        if (!(o->weights[i] > 0.0) || !isfinite(o->weights[i]))
            return BAD("opts.weights[%d] must be positive and finite (got %g)", i,
                       o->weights[i]);
    return CLATTN_OK;
}

/* The job of a call: the whole problem validated on ctxs[0] with the
 * caller's arrays, its split and units. */
static clattn_status make_job(clattn_context *ctx0, const clattn_problem *problem,
                              const clattn_host_buffers *h, int split, int nctx,
                              clattn__multi_job *j)
{
    memset(j, 0, sizeof *j);
    CLATTN_TRY(clattn__problem_normalize(ctx0, problem, &j->s));
    CLATTN_TRY(clattn__check_host_buffers(ctx0, &j->s, h, NULL));
    if (!h->o)
        return BAD("buffers.o is NULL");
    j->p = j->s.p;
    j->h = *h;
    clattn__shape_set_mask(&j->s, h->mask != NULL, h->kv_lens != NULL);
    clattn__buffer_sizes(&j->s, &j->z);
    if (h->sizes)
        j->z = *h->sizes;
    const clattn_problem *p = &j->p;
    const int whole_seqs = p->varlen || p->paged.enabled;
    if (split == CLATTN_SPLIT_AUTO)
        split = whole_seqs ? CLATTN_SPLIT_BATCH
                : (p->seq_q < KEYS_MAX_ROWS_PER_CTX * nctx &&
                   p->seq_kv >= KEYS_MIN_PER_CTX * nctx)
                    ? CLATTN_SPLIT_KEYS
                    : CLATTN_SPLIT_ROWS;
    if (whole_seqs && split != CLATTN_SPLIT_BATCH)
        return BAD("a %s problem is split by whole sequences only (opts.split BATCH or AUTO)",
                   p->varlen ? "varlen" : "paged");
    j->split = split;
    j->units = split == CLATTN_SPLIT_ROWS ? p->seq_q
               : split == CLATTN_SPLIT_KEYS ? p->seq_kv
                                            : p->batch;
    return CLATTN_OK;
}

/* ---- speeds -------------------------------------------------------------------- */

/* Relative speed of ctx on the job from its tuning: problem size of the
 * tuned bucket over its tuned time. 0 when nothing is tuned for it. */
static double tuned_speed(clattn_context *ctx, const clattn__multi_job *j)
{
    clattn__tune_key k;
    clattn__tune_key_for(&j->s, j->split == CLATTN_SPLIT_KEYS ? "splitkv" : "fused", &k);
    int stale = 0;
    pthread_mutex_lock(&ctx->lock);
    const clattn__tune_entry *e = clattn__tuning_lookup(ctx, &k, &stale);
    const double speed = e && e->median_ms > 0.0
                             ? (double)e->key.sq_bucket * e->key.skv_bucket / e->median_ms
                             : 0.0;
    pthread_mutex_unlock(&ctx->lock);
    return speed;
}

/* The speed measured earlier on this context for a job of this kind, or 0. */
static double remembered_speed(clattn_context *ctx, const clattn__tune_key *k, int split)
{
    double v = 0.0;
    pthread_mutex_lock(&ctx->lock);
    for (int i = 0; i < CLATTN__MULTI_SPEEDS; ++i)
        if (ctx->multi_speed[i].split == split &&
            !memcmp(&ctx->multi_speed[i].key, k, sizeof *k))
            v = ctx->multi_speed[i].speed;
    pthread_mutex_unlock(&ctx->lock);
    return v;
}

static void remember_speed(clattn_context *ctx, const clattn__tune_key *k, int split, double v)
{
    pthread_mutex_lock(&ctx->lock);
    const int slot = ctx->multi_speed_next++ % CLATTN__MULTI_SPEEDS;
    ctx->multi_speed[slot].key = *k;
    ctx->multi_speed[slot].split = split;
    ctx->multi_speed[slot].speed = v;
    pthread_mutex_unlock(&ctx->lock);
}

/* The units of the slice a speed is measured on: at least PROBE_SHARE of
 * the cost one of nctx contexts will get, so that fixed costs (copies,
 * launches) do not decide the speed. */
static int64_t probe_units(const clattn__multi_job *j, const double *cost, int nctx)
{
    const int64_t least = j->split == CLATTN_SPLIT_ROWS   ? PROBE_ROWS
                          : j->split == CLATTN_SPLIT_KEYS ? PROBE_KEYS
                                                          : 1;
    int64_t u = least < j->units ? least : j->units;
    while (u < j->units && cost[u] < PROBE_SHARE * cost[j->units] / nctx)
        ++u;
    return u;
}

/* Times the slice on each context whose w[i] is 0: once to build its
 * kernels, then PROBE_RUNS rounds that visit every such context in turn, so
 * that a change of load falls on all of them alike. The best time of each
 * gives its speed in cost units per millisecond (left 0 when a run failed). */
static void measure(clattn_context *const *ctxs, int n, const clattn__multi_job *j,
                    const double *cost, double *w)
{
    clattn__multi_part probe[CLATTN_MULTI_MAX];
    double best[CLATTN_MULTI_MAX];
    int todo[CLATTN_MULTI_MAX];
    const int64_t u = probe_units(j, cost, n);
    for (int i = 0; i < n; ++i) {
        probe[i] = (clattn__multi_part){.job = j, .ctx = ctxs[i], .u1 = u};
        best[i] = INFINITY;
        todo[i] = w[i] <= 0.0;
    }
    for (int r = 0; r <= PROBE_RUNS; ++r)
        for (int i = 0; i < n; ++i) {
            if (!todo[i])
                continue;
            clattn__multi_part_run(&probe[i]);
            clattn__multi_part_free(&probe[i]);
            if (probe[i].st != CLATTN_OK)
                todo[i] = 0; /* stays 0: the real run will say what failed */
            else if (r > 0 && probe[i].ms < best[i])
                best[i] = probe[i].ms;
        }
    for (int i = 0; i < n; ++i)
        if (w[i] <= 0.0 && probe[i].st == CLATTN_OK && isfinite(best[i]))
            w[i] = cost[u] / (best[i] > 1e-3 ? best[i] : 1e-3);
}

/* weights[i] of every context: the caller's, else all from tuning, else
 * measured (remembered per context and kind of problem). */
static void speeds(clattn_context *const *ctxs, int n, const clattn_multi_options *o,
                   const clattn__multi_job *j, const double *cost, double *w)
{
    if (o && o->weights) {
        for (int i = 0; i < n; ++i)
            w[i] = o->weights[i];
        return;
    }
    int all_tuned = 1;
    for (int i = 0; i < n; ++i) {
        w[i] = tuned_speed(ctxs[i], j);
        all_tuned &= w[i] > 0.0;
    }
    if (all_tuned)
        return;
    clattn__tune_key k;
    clattn__tune_key_for(&j->s, "multi", &k);
    int need = 0, fresh[CLATTN_MULTI_MAX];
    for (int i = 0; i < n; ++i) {
        w[i] = remembered_speed(ctxs[i], &k, j->split);
        need += fresh[i] = w[i] <= 0.0;
    }
    if (need)
        measure(ctxs, n, j, cost, w);
    for (int i = 0; i < n; ++i) {
        if (fresh[i] && w[i] > 0.0)
            remember_speed(ctxs[i], &k, j->split, w[i]);
        else if (w[i] <= 0.0)
            w[i] = 1.0; /* the run below reports what failed */
    }
}

/* Cuts units into n consecutive ranges whose costs follow the weights. */
static void cut(const double *cost, int64_t units, const double *w, int n, int64_t *bounds)
{
    double total_w = 0.0, acc = 0.0;
    for (int i = 0; i < n; ++i)
        total_w += w[i];
    bounds[0] = 0;
    int64_t u = 0;
    for (int i = 0; i < n - 1; ++i) {
        acc += w[i];
        const double target = cost[units] * acc / total_w;
        while (u < units && cost[u] + 0.5 * (cost[u + 1] - cost[u]) < target)
            ++u;
        bounds[i + 1] = u;
    }
    bounds[n] = units;
}

/* ---- running ------------------------------------------------------------------- */

static void *part_thread(void *arg)
{
    clattn__multi_part_run(arg);
    return NULL;
}

/* Runs the parts with work at once, one thread each (the first on this
 * thread). */
static void run_parts(clattn__multi_part *parts, int n)
{
    pthread_t th[CLATTN_MULTI_MAX];
    int started[CLATTN_MULTI_MAX] = {0};
    for (int i = 1; i < n; ++i)
        if (parts[i].u1 > parts[i].u0)
            started[i] = pthread_create(&th[i], NULL, part_thread, &parts[i]) == 0;
    for (int i = 0; i < n; ++i)
        if (parts[i].u1 > parts[i].u0 && (i == 0 || !started[i]))
            clattn__multi_part_run(&parts[i]);
    for (int i = 1; i < n; ++i)
        if (started[i])
            pthread_join(th[i], NULL);
}

/* KEYS: the parts' (O, LSE) merged by clattn_merge on ctx0 into merged. */
static clattn_status merge_parts(clattn_context *ctx0, const clattn__multi_job *j,
                                 clattn__multi_part *parts, int n, clattn__multi_part *merged)
{
    const clattn_problem *p = &j->p;
    cl_mem o[CLATTN_MULTI_MAX] = {0}, l[CLATTN_MULTI_MAX] = {0}, mo = NULL, ml = NULL;
    int np = 0;
    clattn_status st = CLATTN_OK;
    cl_int err = CL_SUCCESS;
    const size_t rows = (size_t)p->batch * p->heads * (size_t)p->seq_q;
    merged->o_bytes = rows * (size_t)p->head_dim_v * j->s.elem_size;
    merged->lse_n = rows;
    merged->o = malloc(merged->o_bytes);
    merged->lse = malloc(rows * sizeof(float));
    if (!merged->o || !merged->lse) {
        FAIL_LOCKED(st, ctx0, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
        return st;
    }
    for (int i = 0; i < n && err == CL_SUCCESS; ++i) {
        if (parts[i].u1 <= parts[i].u0)
            continue;
        o[np] = clCreateBuffer(ctx0->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               parts[i].o_bytes, parts[i].o, &err);
        if (err == CL_SUCCESS)
            l[np] = clCreateBuffer(ctx0->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                   rows * sizeof(float), parts[i].lse, &err);
        ++np;
    }
    if (err == CL_SUCCESS)
        mo = clCreateBuffer(ctx0->cl_ctx, CL_MEM_READ_WRITE, merged->o_bytes, NULL, &err);
    if (err == CL_SUCCESS)
        ml = clCreateBuffer(ctx0->cl_ctx, CL_MEM_READ_WRITE, rows * sizeof(float), NULL, &err);
    if (err != CL_SUCCESS)
        FAIL_LOCKED(st, ctx0, CLATTN_ERR_OUT_OF_RESOURCES,
                    "clCreateBuffer (the parts to merge) failed: %s", clattn__cl_error_name(err));
    cl_event done = NULL;
    if (st == CLATTN_OK) {
        const clattn_merge_problem mp = {p->batch, p->heads, p->seq_q, p->head_dim_v,
                                         p->dtype, np, {0, 0, 0}, {0}};
        st = clattn_merge(ctx0, &mp, o, l, mo, ml, 0, NULL, &done);
    }
    cl_command_queue q = ctx0->queue;
    if (st == CLATTN_OK) {
        err = clEnqueueReadBuffer(q, mo, CL_TRUE, 0, merged->o_bytes, merged->o, 1, &done, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueReadBuffer(q, ml, CL_TRUE, 0, rows * sizeof(float), merged->lse, 0,
                                      NULL, NULL);
        if (err != CL_SUCCESS)
            FAIL_LOCKED(st, ctx0, CLATTN_ERR_OPENCL,
                        "clEnqueueReadBuffer (the merged parts) failed: %s",
                        clattn__cl_error_name(err));
    }
    if (done)
        clReleaseEvent(done);
    clFinish(q);
    for (int i = 0; i < np; ++i) {
        if (o[i])
            clReleaseMemObject(o[i]);
        if (l[i])
            clReleaseMemObject(l[i]);
    }
    if (mo)
        clReleaseMemObject(mo);
    if (ml)
        clReleaseMemObject(ml);
    return st;
}

clattn_status clattn_multi_forward_host(clattn_context *const *ctxs, int num_ctxs,
                                        const clattn_problem *problem,
                                        const clattn_host_buffers *buffers,
                                        const clattn_multi_options *opts,
                                        clattn_multi_report *report)
{
    if (!ctxs || !ctxs[0])
        return CLATTN_ERR_INVALID_ARGUMENT;
    clattn_context *ctx0 = ctxs[0];
    clattn__multi_job *j = malloc(sizeof *j);
    if (!j)
        return CLATTN_ERR_OUT_OF_RESOURCES;
    pthread_mutex_lock(&ctx0->lock);
    clattn_status st = check_args(ctx0, ctxs, num_ctxs, opts);
    if (st == CLATTN_OK)
        st = make_job(ctx0, problem, buffers, opts ? opts->split : CLATTN_SPLIT_AUTO, num_ctxs,
                      j);
    pthread_mutex_unlock(&ctx0->lock);
    double *cost = st == CLATTN_OK ? clattn__multi_costs(j) : NULL;
    if (st == CLATTN_OK && !cost)
        FAIL_LOCKED(st, ctx0, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    if (st != CLATTN_OK) {
        free(j);
        free(cost);
        return st;
    }
    double w[CLATTN_MULTI_MAX];
    int64_t bounds[CLATTN_MULTI_MAX + 1];
    speeds(ctxs, num_ctxs, opts, j, cost, w);
    cut(cost, j->units, w, num_ctxs, bounds);
    clattn__multi_part parts[CLATTN_MULTI_MAX];
    memset(parts, 0, sizeof parts);
    for (int i = 0; i < num_ctxs; ++i) {
        parts[i].job = j;
        parts[i].ctx = ctxs[i];
        parts[i].u0 = bounds[i];
        parts[i].u1 = bounds[i + 1];
    }
    run_parts(parts, num_ctxs);
    for (int i = 0; i < num_ctxs && st == CLATTN_OK; ++i)
        if (parts[i].u1 > parts[i].u0 && parts[i].st != CLATTN_OK)
            FAIL_LOCKED(st, ctx0, parts[i].st, "ctxs[%d] (units %lld..%lld): %s", i,
                        (long long)parts[i].u0, (long long)parts[i].u1 - 1, parts[i].err);
    clattn__multi_part merged = {.job = j, .ctx = ctx0, .u1 = j->units};
    if (st == CLATTN_OK && j->split == CLATTN_SPLIT_KEYS)
        st = merge_parts(ctx0, j, parts, num_ctxs, &merged);
    if (st == CLATTN_OK)
        clattn__multi_scatter(j, j->split == CLATTN_SPLIT_KEYS ? &merged : parts, num_ctxs);
    if (st == CLATTN_OK && report) {
        memset(report, 0, sizeof *report);
        report->split = j->split;
        for (int i = 0; i < num_ctxs; ++i) {
            report->weights[i] = w[i];
            report->share[i] = parts[i].u1 - parts[i].u0;
            report->ms[i] = parts[i].ms;
            report->used += report->share[i] > 0;
        }
    }
    clattn__multi_part_free(&merged);
    for (int i = 0; i < num_ctxs; ++i)
        clattn__multi_part_free(&parts[i]);
    free(cost);
    free(j);
    return st;
}
