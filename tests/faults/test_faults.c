/*
 * Fault injection: a scenario (context create, a forward or a tune and the
 * statistics call that writes due binaries, a second forward, destroy) is
 * run once to count the injectable OpenCL calls it makes, then again once
 * per chosen call with that call failing. Every run must end cleanly: a
 * failing status with a message naming the call, or (where the library has
 * a fallback) a correct result; the next forward on the same context
 * correct; after destroy the live OpenCL references per type exactly as
 * before create, and nothing of the caller's released. The caller's O (a
 * strided view) and LSE: their gaps and guards are never written, and a
 * fault before the first kernel was enqueued leaves them wholly untouched.
 *
 * Every planned fault must be reached. A tune decides by timings, so the
 * tune scenarios run with the layer's fixed profiling times and a budget
 * that the test ends by moving libclattn's clock at a chosen candidate: the
 * same calls in the same order every run, on any machine.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"

typedef enum { CACHE_COLD, CACHE_WARM } cache_kind;

typedef struct scenario {
    const char *name;
    clattn_path path;
    clattn_dtype dtype;
    int blas;          /* CLATTN_PARAMS=QK_BLAS=1,AV_BLAS=1 */
    fx_api api;
    cache_kind cache;
    int caller_queue;  /* 0 own, 1 in-order caller queue, 2 out-of-order */
    int tune;          /* the faulted call is clattn_tune, not a forward */
} scenario;

/* Tallies over a whole case, for the report. */
typedef struct tally {
    long runs, injected, failed_clean, absorbed, not_reached, create_failed;
    long outputs_touched; /* failed device-API calls that had written O or LSE */
    long before_enqueue;  /* failed device-API calls whose fault came before the first kernel */
    long per_fn[FL_NFN];
} tally;

/* The tune's budget never runs out by itself; the progress callback moves
 * libclattn's clock past it when this candidate starts. */
#define TUNE_BUDGET_S 1000.0
#define TUNE_STOP_AT_CANDIDATE 3

/* O as rows padded by 3 elements and heads by 5 more: gaps the library
 * must never write. */
static void padded_o(clattn_problem *p)
{
    const int dv = p->head_dim_v ? p->head_dim_v : p->head_dim;
    p->o_strides.seq = dv + 3;
    p->o_strides.head = (int64_t)p->seq_q * p->o_strides.seq + 5;
    p->o_strides.batch = (int64_t)p->heads * p->o_strides.head;
}

static clattn_problem shape_for(const scenario *s, unsigned *flags)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.dtype = s->dtype;
    p.path = s->path;
    *flags = T_WITH_LSE;
    switch (s->path) {
    case CLATTN_PATH_FUSED:
        p.batch = 1, p.heads = 2, p.seq_q = 9, p.seq_kv = 13, p.head_dim = 16;
        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        *flags |= T_WITH_MASK;
        break;
    case CLATTN_PATH_THREE_STAGE:
        p.batch = 2, p.heads = 2, p.seq_q = 7, p.seq_kv = 11, p.head_dim = 8;
        if (!s->blas)
            *flags |= T_WITH_MASK | T_WITH_KV_LENS;
        break;
    case CLATTN_PATH_SPLIT_KV:
        p.batch = 1, p.heads = 2, p.kv_heads = 1, p.seq_q = 2, p.seq_kv = 40, p.head_dim = 16;
        *flags |= T_WITH_KV_LENS;
        break;
    default:
        p.batch = 1, p.heads = 2, p.seq_q = 1, p.seq_kv = 64, p.head_dim = 16;
        break;
    }
    padded_o(&p);
    return p;
}

/* What the library is expected to return for an OpenCL error it saw. */
static int status_fits(clattn_status st, cl_int code)
{
    if (code == CL_OUT_OF_RESOURCES || code == CL_OUT_OF_HOST_MEMORY ||
        code == CL_MEM_OBJECT_ALLOCATION_FAILURE)
        return st == CLATTN_ERR_OUT_OF_RESOURCES;
    if (code == CL_BUILD_PROGRAM_FAILURE)
        return st == CLATTN_ERR_BUILD;
    return st == CLATTN_ERR_OPENCL || st == CLATTN_ERR_BUILD;
}

static int from_library(const fl_fault *f)
{
    return strstr(f->caller, "libclattn") != NULL || !strstr(f->caller, ".so");
}

/* Checks the message of a failure caused by fault f. */
static void check_message(const char *label, const fl_fault *f, clattn_status st,
                          const char *msg)
{
    T_CHECK(msg && *msg, "%s: %s failed without a message", label, clattn_status_string(st));
    if (!msg)
        return;
    if (from_library(f)) {
        T_CHECK(strstr(msg, fl_fn_name(f->fn)) != NULL,
                "%s: message does not name %s: %.300s", label, fl_fn_name(f->fn), msg);
        T_CHECK(strstr(msg, fl_cl_error_name(f->code)) != NULL,
                "%s: message does not name %s: %.300s", label, fl_cl_error_name(f->code), msg);
        T_CHECK(status_fits(st, f->code), "%s: status %s for %s", label,
                clattn_status_string(st), fl_cl_error_name(f->code));
    } else {
        /* Inside CLBlast the OpenCL call is CLBlast's; its status is named. */
        T_CHECK(strstr(msg, "CLBlast") != NULL, "%s: message does not name CLBlast: %.300s",
                label, msg);
    }
}

typedef struct run_env {
    const scenario *s;
    char warm_dir[1024];
    fx_cl cl; /* caller objects when s->caller_queue */
    clattn_problem p;
    unsigned flags;
    clattn_problem tune_shape;
    long stored; /* binaries the counting run stored in its faultable part */
} run_env;

static clattn_status create(run_env *e, const char *dir, fx_log *log, clattn_context **ctx)
{
    clattn_options o = CLATTN_OPTIONS_INIT;
    o.cache_dir = dir;
    o.log = fx_log_fn;
    o.log_user_data = log;
    fl_arm(1);
    clattn_status st = e->s->caller_queue ? clattn_context_create_from_queue(e->cl.queue, &o, ctx)
                                          : clattn_context_create(&o, ctx);
    fl_arm(0);
    return st;
}

static void destroy(clattn_context *ctx)
{
    fl_arm(1);
    clattn_context_destroy(ctx);
    fl_arm(0);
}

static void stop_tune(const clattn_tune_progress *p, void *user_data)
{
    int *seen = user_data;
    (void)p;
    if (++*seen == TUNE_STOP_AT_CANDIDATE)
        fl_clock_jump(2 * TUNE_BUDGET_S);
}

static clattn_status do_tune(clattn_context *ctx, const run_env *e, int *rejected)
{
    clattn_tune_options o;
    int seen = 0;
    memset(&o, 0, sizeof o);
    o.budget_seconds = TUNE_BUDGET_S;
    o.retune = 1;
    o.progress = stop_tune;
    o.progress_user_data = &seen;
    clattn_tune_result res[8];
    size_t n = 0;
    fl_arm(1);
    clattn_status st = clattn_tune(ctx, &e->tune_shape, 1, &o, res, 8, &n);
    fl_arm(0);
    *rejected = 0;
    for (size_t i = 0; i < n && i < 8; ++i)
        *rejected += res[i].rejected;
    return st;
}

/* One run of the scenario with the planned fault (fn, nth); fills *t. */
static void run_one(run_env *e, int fn, unsigned long nth, int variant, tally *tl,
                    unsigned long *calls_out, unsigned long *per_fn_out)
{
    const scenario *s = e->s;
    char label[256];
    snprintf(label, sizeof label, "%s %s#%lu/v%d", s->name, fl_fn_name(fn), nth, variant);
    char cold[1024];
    const char *dir = e->warm_dir;
    if (s->cache == CACHE_COLD) {
        fx_fresh_dir("cold", cold, sizeof cold);
        dir = cold;
    }
    t_tensors t;
    if (t_tensors_init(&t, &e->p, e->flags, 1000 + nth) != 0)
        return;
    fl_counts before, after;
    const long bad0 = fl_bad_releases();
    fl_counts_get(&before);
    fl_reset();
    if (nth)
        fl_plan(fn, nth, variant);
    tl->runs++;

    fx_log log;
    memset(&log, 0, sizeof log);
    clattn_context *ctx = NULL;
    clattn_status st = create(e, dir, &log, &ctx);
    fl_fault f = fl_fired();
    if (st != CLATTN_OK) {
        T_CHECK(f.fired, "%s: context create failed with no fault injected: %s", label,
                log.last);
        T_CHECK(ctx == NULL, "%s: failed create left a context", label);
        T_CHECK(strstr(log.last, fl_fn_name(f.fn)) != NULL,
                "%s: create failure log does not name %s: %s", label, fl_fn_name(f.fn), log.last);
        fl_plan(FL_ANY, 0, 0);
        tl->create_failed++;
        tl->injected++;
        tl->per_fn[f.fn]++;
        /* The next attempt works. */
        st = create(e, dir, &log, &ctx);
        T_CHECK(st == CLATTN_OK, "%s: create after a failed create -> %s", label,
                clattn_status_string(st));
        if (st == CLATTN_OK)
            fx_forward_ok(ctx, &t, s->api, label);
    } else {
        clattn_stats st0, st1;
        T_CHECK(clattn_context_stats(ctx, &st0) == CLATTN_OK, "%s: clattn_context_stats", label);
        fx_touched touched = {0, 0};
        int rejected = 0;
        clattn_status fst = s->tune ? do_tune(ctx, e, &rejected)
                                    : fx_forward(ctx, &t, s->api, &touched);
        /* The statistics call writes the binaries now due (their first
         * launch has finished): inside the faultable part, so that the
         * binary fetch (clGetProgramInfo) can fail too. */
        fl_arm(1);
        const clattn_status sst = clattn_context_stats(ctx, &st1);
        fl_arm(0);
        f = fl_fired();
        /* Only the create, this call and the statistics are counted and may
         * be faulted. */
        if (calls_out) {
            *calls_out = fl_calls(FL_ANY);
            for (int i = 0; i < FL_NFN; ++i)
                per_fn_out[i] = fl_calls(i);
            e->stored = (long)(st1.programs_stored - st0.programs_stored);
#ifdef FAULTS_HAVE_CLBLAST
            /* the forced GEMMs must have reached CLBlast, or the scenario
             * only repeats the plain three-stage one */
            T_CHECK(!s->blas || fl_callers_get().clblast > 0,
                    "%s: QK_BLAS=1,AV_BLAS=1 forced, yet CLBlast made no OpenCL call", label);
#endif
        }
        fl_plan(FL_ANY, 0, 0);
        T_CHECK(sst == CLATTN_OK, "%s: clattn_context_stats -> %s", label,
                clattn_status_string(sst));
        if (f.fired) {
            tl->injected++;
            tl->per_fn[f.fn]++;
        }
        T_CHECK(touched.outside == 0, "%s: %ld elements of O's gaps or guard or of LSE's guard "
                "were written", label, touched.outside);
        if (f.fired && fst != CLATTN_OK) {
            tl->failed_clean++;
            check_message(label, &f, fst, clattn_last_error(ctx));
            if (!s->tune && s->api == FX_HOST)
                T_CHECK(!touched.outputs, "%s: failed host call wrote the caller's O/LSE", label);
            if (!s->tune && s->api == FX_DEVICE && f.kernels_before == 0) {
                tl->before_enqueue++;
                T_CHECK(!touched.outputs, "%s: %s failed before the first kernel was enqueued, "
                        "yet O or the LSE changed", label, fl_fn_name(f.fn));
            }
            tl->outputs_touched += touched.outputs;
        } else if (f.fired) {
            /* Only a fallback may absorb a fault: a rejected cached binary
             * (rebuilt from source), a rejected tuning candidate, a binary
             * left unstored (its fetch failed: the cache is an optimisation),
             * or a wait whose commands had finished anyway (the result must
             * be right, below). */
            const int fallback =
                st1.cache_rejected > st0.cache_rejected || (s->tune && rejected) ||
                (f.fn == FL_clGetProgramInfo &&
                 (long)(st1.programs_stored - st0.programs_stored) < e->stored) ||
                f.fn == FL_clFinish || f.fn == FL_clWaitForEvents;
            T_CHECK(fallback, "%s: %s (%s) absorbed without a fallback", label, fl_fn_name(f.fn),
                    fl_cl_error_name(f.code));
            tl->absorbed++;
            if (!s->tune)
                t_verify(label, &t, t_tolerance_for(t.p.dtype));
        } else {
            /* The counting run saw this call: same inputs, same calls. */
            T_CHECK(nth == 0, "%s: planned fault not reached", label);
            tl->not_reached += nth != 0;
            T_CHECK(fst == CLATTN_OK, "%s: no fault but -> %s: %s", label,
                    clattn_status_string(fst), clattn_last_error(ctx));
            if (fst == CLATTN_OK && !s->tune)
                t_verify(label, &t, t_tolerance_for(t.p.dtype));
        }
        /* The next call on the same context succeeds, correctly. */
        fx_forward_ok(ctx, &t, s->api, label);
    }
    destroy(ctx);
    fl_counts_get(&after);
    char diff[256];
    T_CHECK(fl_counts_same(&before, &after, diff, sizeof diff), "%s: leaked references: %s",
            label, diff);
    T_CHECK(fl_bad_releases() == bad0, "%s: %ld releases of objects not held", label,
            fl_bad_releases() - bad0);
    if (s->caller_queue) {
        T_CHECK(fl_refs(e->cl.queue) == 1 && fl_refs(e->cl.ctx) == 1,
                "%s: caller's queue/context references %ld/%ld (want 1/1)", label,
                fl_refs(e->cl.queue), fl_refs(e->cl.ctx));
    }
    if (s->cache == CACHE_COLD)
        fx_remove_tree(cold);
    t_tensors_free(&t);
}

/* Counts, then sweeps. Returns the number of runs. */
static void sweep(const scenario *s, tally *total)
{
    run_env e;
    memset(&e, 0, sizeof e);
    e.s = s;
    e.p = shape_for(s, &e.flags);
    memset(&e.tune_shape, 0, sizeof e.tune_shape);
    e.tune_shape.batch = 1, e.tune_shape.heads = 2, e.tune_shape.seq_q = 16;
    e.tune_shape.seq_kv = 16, e.tune_shape.head_dim = 16, e.tune_shape.dtype = s->dtype;
    e.tune_shape.path = s->path;
    if (s->blas)
        setenv("CLATTN_PARAMS", "QK_BLAS=1,AV_BLAS=1", 1);
    else
        unsetenv("CLATTN_PARAMS");
    fl_fake_profiling(s->tune);
    if (s->caller_queue && fx_cl_create(&e.cl, s->caller_queue == 2) != 0) {
        T_FAIL("%s: cannot create the caller's queue", s->name);
        return;
    }
    char wname[128];
    snprintf(wname, sizeof wname, "warm-%s", s->name);
    fx_fresh_dir(wname, e.warm_dir, sizeof e.warm_dir);
    const int full = fx_long();
    fl_set_any_set(full ? ~0ull : fl_default_any_set());

    double t0 = fx_now();
    tally tl;
    memset(&tl, 0, sizeof tl);
    /* Counting run (it also warms the warm scenarios' directory). */
    unsigned long m = 0;
    unsigned long per_fn[FL_NFN] = {0};
    if (s->cache == CACHE_WARM)
        run_one(&e, FL_ANY, 0, 0, &tl, NULL, NULL);
    run_one(&e, FL_ANY, 0, 0, &tl, &m, per_fn);
    char counts[1024];
    size_t n = 0;
    counts[0] = '\0';
    for (int f = 0; f < FL_NFN; ++f)
        if (per_fn[f] && n < sizeof counts)
            n += (size_t)snprintf(counts + n, sizeof counts - n, " %s:%lu", fl_fn_name(f),
                                  per_fn[f]);
    t_log("%s: %lu injectable calls (%s )", s->name, m, counts);

    if (full && !s->tune) {
        /* Every call (clSetKernelArg's too) with each of its error codes. */
        for (unsigned long nth = 1; nth <= m; ++nth)
            for (int v = 0; v < 3; ++v)
                run_one(&e, FL_ANY, nth, v, &tl, NULL, NULL);
    } else if (full) {
        /* A tune's thousands of timing launches repeat one pattern: every
         * call of each function up to 40, then 40 spread over the rest. */
        for (int f = 0; f < FL_NFN; ++f) {
            const unsigned long c = per_fn[f];
            const unsigned long step = c <= 40 ? 1 : (c - 40 + 39) / 40;
            for (unsigned long k = 1; k <= c; k += k < 40 ? 1 : step)
                run_one(&e, f, k, (int)k, &tl, NULL, NULL);
        }
    } else if (!s->tune) {
        /* Every call but clSetKernelArg's, the codes rotating; of those
         * (dozens per launch, all alike) the first and the last. */
        for (unsigned long nth = 1; nth <= m; ++nth)
            run_one(&e, FL_ANY, nth, (int)nth, &tl, NULL, NULL);
        if (per_fn[FL_clSetKernelArg]) {
            run_one(&e, FL_clSetKernelArg, 1, 0, &tl, NULL, NULL);
            run_one(&e, FL_clSetKernelArg, per_fn[FL_clSetKernelArg], 1, &tl, NULL, NULL);
        }
    } else {
        /* A tune makes many calls: each function's first, middle and last. */
        for (int f = 0; f < FL_NFN; ++f) {
            if (!per_fn[f] || !((fl_default_any_set() >> f) & 1))
                continue;
            run_one(&e, f, 1, 0, &tl, NULL, NULL);
            if (per_fn[f] > 2)
                run_one(&e, f, (per_fn[f] + 1) / 2, 1, &tl, NULL, NULL);
            if (per_fn[f] > 1)
                run_one(&e, f, per_fn[f], 2, &tl, NULL, NULL);
        }
    }
    t_log("%s: %ld runs, %ld faults injected: %ld failed cleanly, %ld absorbed by a fallback, "
          "%ld in context create, %ld not reached; %ld failed device calls had written "
          "outputs, %ld failed before the first kernel (outputs checked untouched) (%.1f s)",
          s->name, tl.runs, tl.injected, tl.failed_clean, tl.absorbed, tl.create_failed,
          tl.not_reached, tl.outputs_touched, tl.before_enqueue, fx_now() - t0);
    total->runs += tl.runs;
    total->injected += tl.injected;
    total->failed_clean += tl.failed_clean;
    total->absorbed += tl.absorbed;
    total->create_failed += tl.create_failed;
    total->not_reached += tl.not_reached;
    total->outputs_touched += tl.outputs_touched;
    total->before_enqueue += tl.before_enqueue;
    for (int f = 0; f < FL_NFN; ++f)
        total->per_fn[f] += tl.per_fn[f];
    if (s->caller_queue)
        fx_cl_release(&e.cl);
    fx_remove_tree(e.warm_dir);
    unsetenv("CLATTN_PARAMS");
    fl_fake_profiling(0);
}

static void report(const char *what, const tally *tl)
{
    char fns[2048];
    size_t n = 0;
    fns[0] = '\0';
    for (int f = 0; f < FL_NFN; ++f)
        if (tl->per_fn[f] && n < sizeof fns)
            n += (size_t)snprintf(fns + n, sizeof fns - n, " %s:%ld", fl_fn_name(f),
                                  tl->per_fn[f]);
    t_log("%s total: %ld runs, %ld faults injected (%s ): %ld failed cleanly, %ld absorbed, "
          "%ld in create, %ld not reached, %ld failed device calls had written outputs, %ld "
          "failed before the first kernel",
          what, tl->runs, tl->injected, fns, tl->failed_clean, tl->absorbed, tl->create_failed,
          tl->not_reached, tl->outputs_touched, tl->before_enqueue);
}

static void run_list(const char *what, const scenario *list, size_t n)
{
    tally total;
    memset(&total, 0, sizeof total);
    for (size_t i = 0; i < n; ++i)
        sweep(&list[i], &total);
    report(what, &total);
    T_CHECK(total.injected > 0, "%s: no fault was injected", what);
}

/* The quick list covers each path, both dtypes, both APIs, both cache
 * states, both queue kinds and CLBlast; the long one crosses them. */
void case_faults_forward(void)
{
    static const scenario quick[] = {
        {"fused-f32-device-cold", CLATTN_PATH_FUSED, CLATTN_F32, 0, FX_DEVICE, CACHE_COLD, 0, 0},
        {"three-f16-host-warm", CLATTN_PATH_THREE_STAGE, CLATTN_F16, 0, FX_HOST, CACHE_WARM, 0, 0},
        {"split-f32-device-warm-callerq", CLATTN_PATH_SPLIT_KV, CLATTN_F32, 0, FX_DEVICE,
         CACHE_WARM, 2, 0},
        {"auto-f16-host-cold-callerq", CLATTN_PATH_AUTO, CLATTN_F16, 0, FX_HOST, CACHE_COLD, 1,
         0},
#ifdef FAULTS_HAVE_CLBLAST
        {"three-f32-clblast-device-warm", CLATTN_PATH_THREE_STAGE, CLATTN_F32, 1, FX_DEVICE,
         CACHE_WARM, 0, 0},
#endif
    };
    if (!fx_long()) {
        run_list("faults_forward (quick)", quick, sizeof quick / sizeof quick[0]);
        return;
    }
    static const clattn_path paths[4] = {CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                         CLATTN_PATH_SPLIT_KV, CLATTN_PATH_AUTO};
    static const char *pn[4] = {"fused", "three", "split", "auto"};
#ifdef FAULTS_HAVE_CLBLAST
    const int have_clblast = 1;
#else
    const int have_clblast = 0;
#endif
    scenario list[64];
    static char names[64][96];
    size_t n = 0;
    for (int pi = 0; pi < 4; ++pi)
        for (int dt = 0; dt < 2; ++dt)
            for (int blas = 0; blas <= (have_clblast && paths[pi] == CLATTN_PATH_THREE_STAGE &&
                                        dt == 0);
                 ++blas)
                for (int cache = 0; cache < 2; ++cache) {
                    scenario *s = &list[n];
                    /* API and queue kind alternate so each path meets each. */
                    s->path = paths[pi];
                    s->dtype = dt ? CLATTN_F16 : CLATTN_F32;
                    s->blas = blas;
                    s->cache = cache ? CACHE_WARM : CACHE_COLD;
                    s->api = ((n + n / 2) % 2) ? FX_HOST : FX_DEVICE;
                    s->caller_queue = (int)(n % 3);
                    s->tune = 0;
                    snprintf(names[n], sizeof names[n], "%s-%s%s-%s-%s-q%d", pn[pi],
                             dt ? "f16" : "f32", blas ? "-clblast" : "",
                             s->api == FX_HOST ? "host" : "device", cache ? "warm" : "cold",
                             s->caller_queue);
                    s->name = names[n];
                    n++;
                }
    run_list("faults_forward (long)", list, n);
}

void case_faults_tune(void)
{
    static const scenario quick[] = {
        {"tune-fused-f32-cold", CLATTN_PATH_FUSED, CLATTN_F32, 0, FX_HOST, CACHE_COLD, 0, 1},
    };
    static const scenario full[] = {
        {"tune-fused-f32-cold", CLATTN_PATH_FUSED, CLATTN_F32, 0, FX_HOST, CACHE_COLD, 0, 1},
        {"tune-three-f16-warm-callerq", CLATTN_PATH_THREE_STAGE, CLATTN_F16, 0, FX_DEVICE,
         CACHE_WARM, 1, 1},
        {"tune-split-f32-warm", CLATTN_PATH_SPLIT_KV, CLATTN_F32, 0, FX_HOST, CACHE_WARM, 0, 1},
    };
    if (fx_long())
        run_list("faults_tune (long)", full, sizeof full / sizeof full[0]);
    else
        run_list("faults_tune (quick)", quick, sizeof quick / sizeof quick[0]);
}
