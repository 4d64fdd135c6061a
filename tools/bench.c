/* attn-tune bench: wall-clock time of clattn_forward on the benchmark shapes,
 * tuned AUTO against the untuned defaults, each explicit path and two
 * baselines outside the library (CLBlast three-stage, a naive kernel), set
 * against the host sgemm rate and the device read bandwidth measured in the
 * same run; and the first-call time of a new process with clattn's and
 * PoCL's caches cold or warm (first_call.c). */
#define _DEFAULT_SOURCE /* getloadavg */
#include "bench.h"
#include "reference.h"
#include "shapes.h"

#include <math.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char k_bench_usage[] =
    "usage: attn-tune bench [--device P:D] [--shapes NAMES|FILE] [--repeat N] [--quick]\n"
    "                       [--no-baselines] [--no-first-call] [--first-call-runs N]\n"
    "                       [--first-call-only] [--sgemm-gflops X] [--json]\n"
    "                       [--list-shapes]\n"
    "\n"
    "Times clattn_forward on device buffers with random inputs for each shape:\n"
    "  AUTO         the library's choice with the tuning db ('attn-tune tune')\n"
    "  untuned      AUTO on a second context with cache_dir \"off\": no user db,\n"
    "               the built-in defaults (a system-wide tuning file would still\n"
    "               apply)\n"
    "  FUSED, THREE_STAGE, SPLIT_KV   each path forced, on the tuned context\n"
    "and two baselines that are not clattn (fp32 only; their output is checked\n"
    "against AUTO's, relative L2 within 1e-3):\n"
    "  clblast-3stage  CLBlast SgemmStridedBatched for scale*Q*K^T, a softmax kernel\n"
    "               of attn-tune's, CLBlast again for P*V; called by attn-tune\n"
    "               directly, with CLBlast's own default parameters (they run\n"
    "               before any clattn forward, which may override CLBlast's\n"
    "               parameters for the whole process)\n"
    "  naive        one query row per work-item, scalar loops, a plain softmax in\n"
    "               two passes over the keys (slow: seconds per call on big shapes)\n"
    "Each variant runs once to warm up (kernel builds), then is timed call by call\n"
    "(enqueue to completion, monotonic clock): --repeat N runs, or by default until\n"
    "3 s of measurements (at least 3 and at most 30 runs). Before each timed call\n"
    "the device's cache is swept (a read of twice its global memory cache, not\n"
    "timed), so that a call reads its inputs from memory, as a model's layer does\n"
    "when its turn comes again (--warm: no sweep). Printed per variant:\n"
    "  median, min ms   of the timed calls\n"
    "  cpu ms          median CPU time of the process per call (all threads):\n"
    "                  on a shared machine it follows the work done, where wall\n"
    "                  time also counts other jobs' turns on the cores\n"
    "  GFLOP/s         from the median; useful FLOPs only: 2*(D+Dv) per visible\n"
    "                  query-key pair (4*B*H*Sq*Skv*D without masking), causal and\n"
    "                  window pairs counted exactly\n"
    "  %sgemm          GFLOP/s over the host's sgemm rate (below)\n"
    "  GB/s, %read     for memory-bound shapes (under 16 useful FLOPs per byte of\n"
    "                  Q, K, V and O, e.g. decode): those bytes, each counted once,\n"
    "                  over the median, and that over the device read bandwidth\n"
    "  vs AUTO         median over AUTO's (2.00x = twice AUTO's time); the 'AUTO\n"
    "                  speed-up' line restates it for untuned and the baselines\n"
    "\n"
    "Measured first, in the same run:\n"
    "  host sgemm      OpenBLAS cblas_sgemm 2048^3, all its threads, median of 5\n"
    "                  after a warm-up; n/a when attn-tune was built without\n"
    "                  OpenBLAS (Debian: apt install libopenblas-dev; reconfigure)\n"
    "  read bandwidth  a sum over 256 MiB of device memory (float4/float16 loads;\n"
    "                  one run per work-item or neighbours on neighbouring\n"
    "                  addresses; a few work-group shapes): the best of their\n"
    "                  medians of 5, each run on the next 256 MiB window of a\n"
    "                  buffer four times the device's cache, so no run is\n"
    "                  served by the cache\n"
    "Other work on the host skews every figure, the peaks included: the 1-minute\n"
    "load average is printed at the start and at the end.\n"
    "Then the goal lines of the named shapes present: AUTO on P1, P2, C1, G1 at 50%\n"
    "of sgemm, AUTO on D1 at 60% of the read bandwidth, THREE_STAGE on P1 at 25% of\n"
    "sgemm.\n"
    "\n"
    "Then the first-call time: a new process creates a context and runs one\n"
    "forward of the first shape to completion (filling its inputs in between is\n"
    "not timed), in three cache states: clattn's cache and PoCL's kernel cache\n"
    "(POCL_CACHE_DIR) both empty; clattn's binaries from that process with a new,\n"
    "empty PoCL cache (a new user, a container); both caches warm. Each round\n"
    "uses fresh directories; --first-call-runs N rounds (default 3), medians\n"
    "printed with the goal ratios (clattn-warm at least 20x faster than cold,\n"
    "within 2x of both-warm), the context creation alone, a second call (where\n"
    "a cold process writes its binaries) and the context destroy.\n"
    "--first-call-only measures just this, on the first shape.\n"
    "\n"
    "Named shapes:\n"
    "  P1  B1 H8 S1024 D64                 prefill\n"
    "  P2  B1 H8 S2048 D128 causal         long causal prefill\n"
    "  C1  B2 H8 Sq256 Skv1024 D64         cross-attention\n"
    "  G1  B1 H32 Hkv8 S512 D128 causal    GQA prefill\n"
    "  D1  B4 H32 Hkv8 Sq1 Skv4096 D128    GQA decode step\n"
    "\n"
    "Options:\n"
    "  --device P:D     the device (see 'attn-tune devices')\n"
    "  --shapes WHAT    comma-separated names and shapes (syntax: 'attn-tune tune\n"
    "                   --help'), or a shape file; default P1,P2,C1,G1,D1\n"
    "  --repeat N       exactly N timed runs per variant (1..10000)\n"
    "  --no-baselines   skip clblast-3stage and naive\n"
    "  --warm           do not sweep the cache before each timed call\n"
    "  --no-first-call  skip the first-call measurement\n"
    "  --quick          --no-baselines --no-first-call, and --repeat 3 unless given\n"
    "  --sgemm-gflops X quote X GFLOP/s as the host sgemm rate instead of measuring\n"
    "                   it (printed as given)\n"
    "  --json           one JSON document on stdout: the peaks, every shape's\n"
    "                   variants with all the figures above, the goals, the first\n"
    "                   call\n"
    "  --list-shapes    print the shapes as parsed, one a line, and exit\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 ok, 1 when a forward or a baseline failed (or its output was\n"
    "wrong), 2 on a usage error.\n";

#define MAX_RUNS 30
#define MIN_RUNS 3
#define MEASURE_S 3.0
/* Most a baseline's output may differ from AUTO's (relative L2, fp32). */
#define CHECK_TOLERANCE 1e-3

static const clattn_path k_vpath[V_COUNT] = {CLATTN_PATH_AUTO,        CLATTN_PATH_AUTO,
                                             CLATTN_PATH_FUSED,       CLATTN_PATH_THREE_STAGE,
                                             CLATTN_PATH_SPLIT_KV,    CLATTN_PATH_AUTO,
                                             CLATTN_PATH_AUTO};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* What one timed call runs: clattn_forward, or one of the baselines. */
typedef struct runner {
    int variant;
    clattn_context *ctx;
    const clattn_buffers *b;
    cl_program prog;
    int wg;
    cl_command_queue queue;
    cl_mem *scratch;
    size_t *scratch_bytes;
} runner;

/* One call to completion; returns milliseconds, or a negative value with
 * r->status and r->message set. */
static double run_once(const runner *rn, const clattn_problem *p, vresult *r)
{
    cl_event done = NULL;
    clattn_status st;
    double t0 = tool_now();
    if (rn->variant == V_NAIVE || rn->variant == V_CLBLAST) {
        bench_io io = {rn->b->q, rn->b->k, rn->b->v, rn->b->o};
        int got = rn->variant == V_NAIVE
                      ? bench_naive_run(rn->prog, rn->queue, p, &io, r->message,
                                        sizeof r->message)
                      : bench_clblast_run(rn->prog, rn->wg, rn->queue, p, &io, rn->scratch,
                                          rn->scratch_bytes, r->message, sizeof r->message);
        if (got == 0) return 1e3 * (tool_now() - t0);
        r->status = got == -1 ? RES_UNSUPPORTED : RES_FAILED;
        return -1;
    }
    st = clattn_forward(rn->ctx, p, rn->b, 0, NULL, &done);
    if (st == CLATTN_OK) {
        if (clWaitForEvents(1, &done) != CL_SUCCESS) st = CLATTN_ERR_OPENCL;
        clReleaseEvent(done);
    }
    if (st == CLATTN_OK) return 1e3 * (tool_now() - t0);
    r->status = st == CLATTN_ERR_UNSUPPORTED ? RES_UNSUPPORTED : RES_FAILED;
    snprintf(r->message, sizeof r->message, "%s: %s", clattn_status_string(st),
             clattn_last_error(rn->ctx));
    return -1;
}

/* CPU time of the whole process (the device's worker threads included): on
 * a machine shared with other jobs it tracks the work a call does better
 * than wall time, which also counts the time other jobs held the cores. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Times rn on prob; sw sweeps the cache before each timed call, a sweep's
 * time left out of the measuring budget too. */
static void time_variant(const runner *rn, const clattn_problem *prob, long repeat,
                         const bench_sweep *sw, vresult *r)
{
    clattn_problem p = *prob;
    double samples[10000], cpu[10000], start;
    int n = 0, cap = repeat > 0 ? (int)repeat : MAX_RUNS;
    memset(r, 0, sizeof *r);
    r->check = NAN;
    p.path = k_vpath[rn->variant];
    if (rn->ctx) {
        clattn_status st = clattn_supports(rn->ctx, &p);
        if (st != CLATTN_OK) {
            r->status = st == CLATTN_ERR_UNSUPPORTED ? RES_UNSUPPORTED : RES_FAILED;
            snprintf(r->message, sizeof r->message, "%s: %s", clattn_status_string(st),
                     clattn_last_error(rn->ctx));
            return;
        }
    }
    if (run_once(rn, &p, r) < 0) return; /* warm-up: builds the kernels */
    start = tool_now();
    while (n < cap) {
        if (repeat <= 0 && n >= MIN_RUNS && tool_now() - start >= MEASURE_S) break;
        const double s0 = tool_now();
        if (bench_sweep_run(sw) != CL_SUCCESS) {
            r->status = RES_FAILED;
            snprintf(r->message, sizeof r->message, "the cache sweep before a call failed");
            return;
        }
        start += tool_now() - s0;
        const double c0 = cpu_now();
        samples[n] = run_once(rn, &p, r);
        cpu[n] = 1e3 * (cpu_now() - c0);
        if (samples[n] < 0) return;
        n++;
    }
    qsort(samples, (size_t)n, sizeof samples[0], cmp_double);
    qsort(cpu, (size_t)n, sizeof cpu[0], cmp_double);
    r->cpu_ms = n % 2 ? cpu[n / 2] : 0.5 * (cpu[n / 2 - 1] + cpu[n / 2]);
    r->runs = n;
    r->min_ms = samples[0];
    r->median_ms = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

static cl_mem random_buffer(cl_context clctx, clattn_dtype t, int64_t n, uint64_t seed)
{
    size_t es = ref_dtype_size(t);
    void *host = malloc((size_t)n * es);
    cl_mem m = NULL;
    cl_int err;
    if (!host) return NULL;
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ref_store(host, t, i, (float)((double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0));
    }
    m = clCreateBuffer(clctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (size_t)n * es, host,
                       &err);
    free(host);
    return err == CL_SUCCESS ? m : NULL;
}

/* A "bench: VARIANT ..." note redrawn in place while a shape runs; only on a
 * terminal (plain stderr gets nothing). */
static int g_progress;

static void note(const char *what)
{
    if (!g_progress) return;
    fprintf(stderr, "\rbench: %s ...\033[K", what);
    fflush(stderr);
}

static void note_clear(void)
{
    if (!g_progress) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}


/* Other work on the host skews every figure here (the peaks too); the load
 * average is printed so a reader can tell a quiet run from a busy one. */
static double load_average(void)
{
    double la[1];
    return getloadavg(la, 1) == 1 ? la[0] : -1.0;
}

/* The shape's inputs (the same random values on every call) and an output. */
static int make_buffers(cl_context clctx, const tool_shape *s, clattn_buffers *b)
{
    int64_t nq, nk, nv, no;
    cl_int err;
    memset(b, 0, sizeof *b);
    tool_shape_elements(s, &nq, &nk, &nv, &no);
    b->q = random_buffer(clctx, s->p.dtype, nq, 1);
    b->k = random_buffer(clctx, s->p.dtype, nk, 2);
    b->v = random_buffer(clctx, s->p.dtype, nv, 3);
    b->o = clCreateBuffer(clctx, CL_MEM_READ_WRITE, (size_t)no * ref_dtype_size(s->p.dtype),
                          NULL, &err);
    return b->q && b->k && b->v && b->o;
}

static void free_buffers(clattn_buffers *b)
{
    if (b->q) clReleaseMemObject(b->q);
    if (b->k) clReleaseMemObject(b->k);
    if (b->v) clReleaseMemObject(b->v);
    if (b->o) clReleaseMemObject(b->o);
}

/* O as fp32 on the host (baselines are fp32 only); NULL on failure. */
static float *read_output(cl_command_queue queue, const tool_shape *s, cl_mem o)
{
    int64_t nq, nk, nv, no;
    float *host;
    tool_shape_elements(s, &nq, &nk, &nv, &no);
    host = malloc((size_t)no * sizeof *host);
    if (host && clEnqueueReadBuffer(queue, o, CL_TRUE, 0, (size_t)no * sizeof *host, host, 0,
                                    NULL, NULL) != CL_SUCCESS) {
        free(host);
        host = NULL;
    }
    return host;
}

/* Fills O with NaN so a baseline that writes nothing cannot pass its check
 * on what an earlier variant left there. */
static void poison_output(cl_command_queue queue, const tool_shape *s, cl_mem o)
{
    int64_t nq, nk, nv, no;
    float nan_value = NAN;
    tool_shape_elements(s, &nq, &nk, &nv, &no);
    clEnqueueFillBuffer(queue, o, &nan_value, sizeof nan_value, 0, (size_t)no * sizeof(float), 0,
                        NULL, NULL);
    clFinish(queue);
}

/* Relative L2 distance of x from ref (a NaN anywhere gives NaN). */
static double rel_l2(const float *ref, const float *x, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Records the baseline's check against AUTO's output (NULL: unchecked). */
static void check_baseline(vresult *r, const float *auto_out, const float *out, int64_t n)
{
    if (r->status != RES_OK || !auto_out || !out) return;
    r->check = rel_l2(auto_out, out, n);
    if (!(r->check <= CHECK_TOLERANCE)) {
        r->status = RES_FAILED;
        snprintf(r->message, sizeof r->message,
                 "output differs from AUTO's: relative L2 %.3g (tolerance %g)", r->check,
                 CHECK_TOLERANCE);
    }
}

static void baseline_off(const bench_env *env, const tool_shape *s, int v, vresult *r)
{
    memset(r, 0, sizeof *r);
    r->check = NAN;
    if (!env->baselines) {
        r->status = RES_SKIPPED;
        snprintf(r->message, sizeof r->message, "skipped (--no-baselines)");
    } else if (!env->prog) {
        r->status = RES_FAILED;
        snprintf(r->message, sizeof r->message, "%s", env->prog_message);
    } else if (v == V_CLBLAST && !bench_have_clblast()) {
        r->status = RES_UNSUPPORTED;
        snprintf(r->message, sizeof r->message, "attn-tune was built without CLBlast");
    } else if (s->p.dtype != CLATTN_F32) {
        r->status = RES_UNSUPPORTED;
        snprintf(r->message, sizeof r->message, "the baselines are fp32 only");
    } else {
        r->status = -1; /* runs */
    }
}

/* The CLBlast three-stage baseline of one shape. All of them run before any
 * clattn forward: clattn applies its tuned CLBlast parameter sets with
 * CLBlastOverrideParameters, which holds for the whole process, and this
 * baseline is meant to show CLBlast with its own defaults. */
static void bench_shape_clblast(bench_env *env, const tool_shape *s, shape_run *out)
{
    clattn_buffers b;
    runner rn = {V_CLBLAST, NULL, &b, env->prog, env->wg, env->queue, &env->scratch,
                 &env->scratch_bytes};
    vresult *r = &out->v[V_CLBLAST];
    baseline_off(env, s, V_CLBLAST, r);
    if (r->status != -1) return;
    if (clattn_supports(env->ctx, &s->p) == CLATTN_ERR_INVALID_ARGUMENT) {
        r->status = RES_SKIPPED; /* bench_shape says why */
        return;
    }
    if (!make_buffers(env->clctx, s, &b)) {
        r->status = RES_FAILED;
        snprintf(r->message, sizeof r->message, "cannot allocate the inputs");
    } else {
        note(bench_variant[V_CLBLAST]);
        poison_output(env->queue, s, b.o);
        time_variant(&rn, &s->p, env->repeat, &env->sweep, r);
        if (r->status == RES_OK) out->clblast_out = read_output(env->queue, s, b.o);
        note_clear();
    }
    free_buffers(&b);
}

static void bench_shape(bench_env *env, const tool_shape *s, shape_run *out)
{
    clattn_buffers b;
    clattn_status st;
    int64_t nq, nk, nv, no;
    float *auto_out = NULL, *naive_out = NULL;
    tool_shape_elements(s, &nq, &nk, &nv, &no);
    out->gflop = tool_shape_flops(s) * 1e-9;
    out->bytes = (double)(nq + nk + nv + no) * (double)ref_dtype_size(s->p.dtype);
    st = clattn_supports(env->ctx, &s->p);
    if (st == CLATTN_ERR_INVALID_ARGUMENT) {
        out->skipped = 1;
        snprintf(out->message, sizeof out->message, "invalid: %s", clattn_last_error(env->ctx));
        return;
    }
    if (!make_buffers(env->clctx, s, &b)) {
        out->skipped = 1;
        snprintf(out->message, sizeof out->message, "cannot allocate the inputs");
    }
    for (int v = 0; v < V_CLBLAST && !out->skipped; v++) {
        runner rn = {v, v == V_UNTUNED ? env->untuned : env->ctx, &b, NULL, 0, env->queue, NULL,
                     NULL};
        note(bench_variant[v]);
        time_variant(&rn, &s->p, env->repeat, &env->sweep, &out->v[v]);
        if (v == V_AUTO && out->v[v].status == RES_OK && s->p.dtype == CLATTN_F32 &&
            env->baselines)
            auto_out = read_output(env->queue, s, b.o);
    }
    if (!out->skipped) {
        runner rn = {V_NAIVE, NULL, &b, env->prog, env->wg, env->queue, NULL, NULL};
        vresult *r = &out->v[V_NAIVE];
        baseline_off(env, s, V_NAIVE, r);
        if (r->status == -1) {
            note(bench_variant[V_NAIVE]);
            poison_output(env->queue, s, b.o);
            time_variant(&rn, &s->p, env->repeat, &env->sweep, r);
            if (r->status == RES_OK) naive_out = read_output(env->queue, s, b.o);
        }
        check_baseline(r, auto_out, naive_out, no);
        check_baseline(&out->v[V_CLBLAST], auto_out, out->clblast_out, no);
    }
    note_clear();
    free(auto_out);
    free(naive_out);
    free(out->clblast_out);
    out->clblast_out = NULL;
    free_buffers(&b);
}

/* The first-call measurement on shape s, rounds times per cache state. */
static void first_call_of(clattn_context *ctx, const tool_shape *s, int json, int rounds,
                          first_call_report *fc)
{
    cl_device_id device = NULL;
    char where[32] = "", text[128];
    int p, d;
    tool_shape_format(s, text, sizeof text);
    if (clattn_context_get_cl(ctx, NULL, NULL, &device) == CLATTN_OK &&
        tool_device_index(device, &p, &d))
        snprintf(where, sizeof where, "%d:%d", p, d);
    note("first-call time (new processes)");
    bench_first_call(where, text, rounds, fc);
    note_clear();
    if (!json) {
        printf("\nfirst call, %s%s", s->name, s->name[0] ? " " : "");
        bench_print_first_call_text(fc);
    }
}

/* What the command line chose. */
typedef struct bench_options {
    tool_device dev;
    const char *shapes_arg;
    int json, do_first, list_only, quick, first_only;
    double given_sgemm;
    long fc_rounds;
} bench_options;

/* Returns -1 to go on, or the exit status (usage errors, --help). */
static int parse_bench_options(int argc, char **argv, bench_options *o, bench_env *env)
{
    *o = (bench_options){.dev = TOOL_DEVICE_DEFAULT, .shapes_arg = "P1,P2,C1,G1,D1",
                         .do_first = 1, .fc_rounds = 3};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int got;
        if ((got = tool_option_value(argc, argv, &i, "--device", &v)) != 0) {
            if (got < 0 || !tool_parse_device(v, &o->dev)) return TOOL_EXIT_USAGE;
        } else if ((got = tool_option_value(argc, argv, &i, "--shapes", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            o->shapes_arg = v;
        } else if ((got = tool_option_value(argc, argv, &i, "--repeat", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            if (!tool_parse_int(v, 1, 10000, &env->repeat)) {
                fprintf(stderr, "attn-tune bench: --repeat expects 1..10000, not '%s'\n", v);
                return TOOL_EXIT_USAGE;
            }
        } else if ((got = tool_option_value(argc, argv, &i, "--sgemm-gflops", &v)) != 0) {
            char *end = NULL;
            if (got < 0) return TOOL_EXIT_USAGE;
            o->given_sgemm = strtod(v, &end);
            if (end == v || *end || !(o->given_sgemm > 0 && o->given_sgemm < 1e9)) {
                fprintf(stderr, "attn-tune bench: --sgemm-gflops expects a positive rate, "
                                "not '%s'\n", v);
                return TOOL_EXIT_USAGE;
            }
        } else if ((got = tool_option_value(argc, argv, &i, "--first-call-runs", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            if (!tool_parse_int(v, 1, FC_MAX_ROUNDS, &o->fc_rounds)) {
                fprintf(stderr, "attn-tune bench: --first-call-runs expects 1..%d, not '%s'\n",
                        FC_MAX_ROUNDS, v);
                return TOOL_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--no-first-call") == 0) {
            o->do_first = 0;
        } else if (strcmp(argv[i], "--first-call-only") == 0) {
            o->first_only = 1;
        } else if (strcmp(argv[i], "--no-baselines") == 0) {
            env->baselines = 0;
        } else if (strcmp(argv[i], "--warm") == 0) {
            env->warm = 1;
        } else if (strcmp(argv[i], "--quick") == 0) {
            o->quick = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--list-shapes") == 0) {
            o->list_only = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(k_bench_usage, stdout);
            return TOOL_EXIT_OK;
        } else {
            fprintf(stderr, "attn-tune bench: unknown option '%s'\n\n%s", argv[i],
                    k_bench_usage);
            return TOOL_EXIT_USAGE;
        }
    }
    if (o->quick) {
        env->baselines = 0;
        o->do_first = 0;
        if (env->repeat == 0) env->repeat = 3;
    }
    return -1;
}

/* bench's buffers, baselines and first-call child are of plain K/V: 0 when
 * every shape is, else a usage message naming the first that is not. */
static int shapes_are_plain(const tool_shape_list *shapes)
{
    for (size_t i = 0; i < shapes->count; i++) {
        const clattn_problem *p = &shapes->items[i].p;
        if (p->k_storage.format || p->v_storage.format || p->paged.enabled) {
            char text[160];
            tool_shape_format(&shapes->items[i], text, sizeof text);
            fprintf(stderr, "attn-tune bench: shape %zu ('%s'): K/V storage and paging (kv=, "
                            "k=, v=, page=) are for 'attn-tune tune'; attn-kv-bench measures "
                            "K/V formats\n", i + 1, text);
            return 0;
        }
    }
    return 1;
}

/* --first-call-only: the first shape's first call in new processes. */
static int bench_first_call_only(const bench_options *o, const tool_shape_list *shapes)
{
    static first_call_report fc;
    clattn_context *ctx;
    char device[600];
    if (shapes->count == 0) return TOOL_EXIT_USAGE;
    tool_device dev = o->dev;
    const int rc = tool_open_context(&dev, &ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    tool_context_device(ctx, device, sizeof device);
    if (!o->json) printf("clattn %s, device %s\n", clattn_version(), device);
    first_call_of(ctx, &shapes->items[0], o->json, (int)o->fc_rounds, &fc);
    if (o->json) bench_print_first_call_json(device, &fc);
    clattn_context_destroy(ctx);
    return fc.ok ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

/* The host sgemm rate (measured first, while no OpenCL work competes for
 * the cores, unless given), the contexts (the baseline one shares the queue,
 * so the buffers, but no db) and bench's own kernels with the device's read
 * bandwidth. Returns TOOL_EXIT_OK or the exit status. */
static int bench_setup(const bench_options *o, bench_env *env)
{
    env->cores = sysconf(_SC_NPROCESSORS_ONLN);
    env->load_start = load_average();
    if (o->given_sgemm > 0) {
        env->peaks.sgemm_gflops = o->given_sgemm;
        env->peaks.sgemm_given = 1;
        snprintf(env->peaks.sgemm_note, sizeof env->peaks.sgemm_note,
                 "given with --sgemm-gflops, not measured");
    } else {
        note("host sgemm");
        bench_host_sgemm(&env->peaks);
        note_clear();
    }

    tool_device dev = o->dev;
    const int rc = tool_open_context(&dev, &env->ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    clattn_options off;
    clattn_options_init(&off);
    off.cache_dir = "off";
    off.log = tool_log;
    cl_device_id cldev;
    clattn_context_get_cl(env->ctx, &env->clctx, &env->queue, &cldev);
    if (clattn_context_create_from_queue(env->queue, &off, &env->untuned) != CLATTN_OK) {
        fprintf(stderr, "attn-tune bench: cannot create the untuned context\n");
        clattn_context_destroy(env->ctx);
        return TOOL_EXIT_FAILURE;
    }

    size_t max_wg = 1;
    clGetDeviceInfo(cldev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    for (env->wg = 64; env->wg > 1 && (size_t)env->wg > max_wg; env->wg /= 2) {}
    note("building bench kernels");
    env->prog = bench_build_kernels(env->clctx, cldev, env->wg, env->prog_message,
                                    sizeof env->prog_message);
    if (env->prog) {
        note("device read bandwidth");
        bench_read_bandwidth(env->clctx, env->queue, cldev, env->prog, &env->peaks);
        if (!env->warm) bench_sweep_init(&env->sweep, env->clctx, env->queue, cldev, env->prog);
    } else {
        snprintf(env->peaks.read_note, sizeof env->peaks.read_note, "%s", env->prog_message);
    }
    note_clear();
    return TOOL_EXIT_OK;
}

/* Every shape's baselines and variants, printed as they finish (text);
 * returns the number of failed runs. */
static int bench_shapes(bench_env *env, const tool_shape_list *shapes, shape_run *runs, int json)
{
    int failed = 0;
    /* Every CLBlast baseline before any clattn forward (see
     * bench_shape_clblast). */
    for (size_t i = 0; i < shapes->count; i++)
        bench_shape_clblast(env, &shapes->items[i], &runs[i]);
    for (size_t i = 0; i < shapes->count; i++) {
        bench_shape(env, &shapes->items[i], &runs[i]);
        for (int v = 0; v < V_COUNT; v++) failed += runs[i].v[v].status == RES_FAILED;
        if (!json) {
            bench_print_shape_text(&shapes->items[i], &runs[i], &env->peaks);
            fflush(stdout);
        }
    }
    return failed;
}

int cmd_bench(int argc, char **argv)
{
    static tool_shape_list shapes;
    static bench_env env;
    static first_call_report fc;
    bench_options o;
    char device[600];
    size_t entries = 0;
    const double t0 = tool_now();

    memset(&env, 0, sizeof env);
    env.baselines = 1;
    int rc = parse_bench_options(argc, argv, &o, &env);
    if (rc >= 0) return rc;
    shapes.count = 0;
    if (!tool_shapes_resolve(o.shapes_arg, 0, &shapes) || !shapes_are_plain(&shapes))
        return TOOL_EXIT_USAGE;
    if (o.list_only) return tool_list_shapes(&shapes);
    if (o.first_only) return bench_first_call_only(&o, &shapes);
    g_progress = isatty(STDERR_FILENO);

    const char *pinning = tool_pin_pocl_threads();
    rc = bench_setup(&o, &env);
    if (rc != TOOL_EXIT_OK) return rc;
    shape_run *runs = calloc(shapes.count ? shapes.count : 1, sizeof *runs);
    if (!runs) {
        clattn_context_destroy(env.untuned);
        if (env.prog) clReleaseProgram(env.prog);
        clattn_context_destroy(env.ctx);
        return TOOL_EXIT_FAILURE;
    }
    clattn_tuning_count(env.ctx, &entries);
    tool_context_device(env.ctx, device, sizeof device);
    if (!o.json) {
        printf("clattn %s, device %s; tuning db: %zu entr%s%s\n", clattn_version(), device,
               entries, entries == 1 ? "y" : "ies",
               entries ? "" : " (AUTO = untuned; 'attn-tune tune' makes some)");
        printf("host: %ld core(s), load average %.2f at the start; %s\n", env.cores,
               env.load_start, pinning);
        bench_print_peaks_text(&env.peaks);
        bench_print_sweep_text(&env.sweep, env.warm);
        printf("times: wall clock per call, enqueue to completion; vs AUTO = time / AUTO's "
               "time%s\n", env.baselines ? "" : "; baselines skipped");
        fflush(stdout);
    }
    const int failed = bench_shapes(&env, &shapes, runs, o.json);
    env.load_end = load_average();
    if (!o.json) {
        bench_print_goals_text(&shapes, runs, &env.peaks);
        printf("load average %.2f at the end (%ld core(s))\n", env.load_end, env.cores);
    }
    clattn_context_destroy(env.untuned);
    if (env.scratch) clReleaseMemObject(env.scratch);
    bench_sweep_release(&env.sweep);
    if (env.prog) clReleaseProgram(env.prog);
    const int first = o.do_first && shapes.count > 0;
    if (first)
        first_call_of(env.ctx, &shapes.items[0], o.json, (int)o.fc_rounds, &fc);
    if (o.json)
        bench_print_json(&shapes, runs, device, entries, &env, first ? &fc : NULL);
    else
        printf("\n%zu shape(s) in %.1f s\n", shapes.count, tool_now() - t0);
    free(runs);
    clattn_context_destroy(env.ctx);
    return failed ? TOOL_EXIT_FAILURE : TOOL_EXIT_OK;
}
