/* attn-tune bench: wall-clock time of clattn_forward on the benchmark shapes,
 * tuned AUTO against the untuned defaults and each explicit path, and the
 * first-call time of a new process with a cold and a warm program cache. */
#include "bench.h"
#include "reference.h"
#include "shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char k_bench_usage[] =
    "usage: attn-tune bench [--device P:D] [--shapes NAMES|FILE] [--repeat N]\n"
    "                       [--no-first-call] [--json] [--list-shapes]\n"
    "\n"
    "Times clattn_forward on device buffers with random inputs for each shape:\n"
    "  AUTO         the library's choice with the tuning db ('attn-tune tune')\n"
    "  untuned      AUTO on a second context with cache_dir \"off\": no user db,\n"
    "               the built-in defaults (a system-wide tuning file would still\n"
    "               apply)\n"
    "  FUSED, THREE_STAGE, SPLIT_KV   each path forced, on the tuned context\n"
    "Each variant runs once to warm up (kernel builds), then is timed call by call\n"
    "(enqueue to completion, monotonic clock): --repeat N runs, or by default until\n"
    "3 s of measurements (at least 3 and at most 30 runs). Printed: median and\n"
    "minimum ms, GFLOP/s from the median (useful FLOPs: 2*(D+Dv) per visible\n"
    "query-key pair, causal and window pairs counted exactly), and each variant's\n"
    "median relative to AUTO's (2.00x = twice AUTO's time).\n"
    "\n"
    "Then the first-call time: a new process creates a context and runs one\n"
    "forward of the first shape to completion, once with an empty cache directory\n"
    "(kernels compiled) and once more on the same directory (binaries loaded);\n"
    "both with POCL_KERNEL_CACHE=0 so PoCL's own cache hides nothing.\n"
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
    "  --no-first-call  skip the first-call measurement\n"
    "  --json           one JSON document on stdout\n"
    "  --list-shapes    print the shapes as parsed, one a line, and exit\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 ok, 1 when a forward failed, 2 on a usage error.\n";

#define MAX_RUNS 30
#define MIN_RUNS 3
#define MEASURE_S 3.0

enum { V_AUTO, V_UNTUNED, V_FUSED, V_THREE, V_SPLIT, V_COUNT };
static const char *const k_variant[V_COUNT] = {"AUTO", "untuned", "FUSED", "THREE_STAGE",
                                               "SPLIT_KV"};
static const clattn_path k_vpath[V_COUNT] = {CLATTN_PATH_AUTO, CLATTN_PATH_AUTO,
                                             CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                             CLATTN_PATH_SPLIT_KV};

enum { RES_OK, RES_UNSUPPORTED, RES_FAILED };

typedef struct vresult {
    int status;
    char message[300];
    double median_ms, min_ms;
    int runs;
} vresult;

typedef struct shape_run {
    double gflop;
    vresult v[V_COUNT];
    int skipped; /* invalid, or inputs could not be allocated */
    char message[300];
} shape_run;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One forward to completion; returns milliseconds or a negative value. */
static double run_once(clattn_context *ctx, const clattn_problem *p, const clattn_buffers *b,
                       clattn_status *st)
{
    cl_event done = NULL;
    double t0 = tool_now();
    *st = clattn_forward(ctx, p, b, 0, NULL, &done);
    if (*st != CLATTN_OK) return -1;
    if (clWaitForEvents(1, &done) != CL_SUCCESS) *st = CLATTN_ERR_OPENCL;
    clReleaseEvent(done);
    return *st == CLATTN_OK ? 1e3 * (tool_now() - t0) : -1;
}

static void time_variant(clattn_context *ctx, const clattn_problem *prob, clattn_path path,
                         const clattn_buffers *b, long repeat, vresult *r)
{
    clattn_problem p = *prob;
    double samples[10000], start;
    int n = 0, cap = repeat > 0 ? (int)repeat : MAX_RUNS;
    clattn_status st;
    memset(r, 0, sizeof *r);
    p.path = path;
    st = clattn_supports(ctx, &p);
    if (st == CLATTN_OK) run_once(ctx, &p, b, &st); /* warm-up: builds the kernels */
    start = tool_now();
    while (st == CLATTN_OK && n < cap) {
        if (repeat <= 0 && n >= MIN_RUNS && tool_now() - start >= MEASURE_S) break;
        samples[n] = run_once(ctx, &p, b, &st);
        if (st == CLATTN_OK) n++;
    }
    if (st != CLATTN_OK) {
        r->status = st == CLATTN_ERR_UNSUPPORTED ? RES_UNSUPPORTED : RES_FAILED;
        snprintf(r->message, sizeof r->message, "%s: %s", clattn_status_string(st),
                 clattn_last_error(ctx));
        return;
    }
    qsort(samples, (size_t)n, sizeof samples[0], cmp_double);
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

static void bench_shape(clattn_context *ctx, clattn_context *untuned, const tool_shape *s,
                        long repeat, shape_run *out)
{
    cl_context clctx;
    clattn_buffers b;
    int64_t nq, nk, nv, no;
    cl_int err;
    clattn_status st;
    memset(&b, 0, sizeof b);
    out->gflop = tool_shape_flops(s) * 1e-9;
    st = clattn_supports(ctx, &s->p);
    if (st == CLATTN_ERR_INVALID_ARGUMENT) {
        out->skipped = 1;
        snprintf(out->message, sizeof out->message, "invalid: %s", clattn_last_error(ctx));
        return;
    }
    clattn_context_get_cl(ctx, &clctx, NULL, NULL);
    tool_shape_elements(s, &nq, &nk, &nv, &no);
    b.q = random_buffer(clctx, s->p.dtype, nq, 1);
    b.k = random_buffer(clctx, s->p.dtype, nk, 2);
    b.v = random_buffer(clctx, s->p.dtype, nv, 3);
    b.o = clCreateBuffer(clctx, CL_MEM_READ_WRITE, (size_t)no * ref_dtype_size(s->p.dtype),
                         NULL, &err);
    if (!b.q || !b.k || !b.v || !b.o) {
        out->skipped = 1;
        snprintf(out->message, sizeof out->message, "cannot allocate the inputs");
    }
    for (int v = 0; v < V_COUNT && !out->skipped; v++) {
        note(k_variant[v]);
        time_variant(v == V_UNTUNED ? untuned : ctx, &s->p, k_vpath[v], &b, repeat, &out->v[v]);
    }
    note_clear();
    if (b.q) clReleaseMemObject(b.q);
    if (b.k) clReleaseMemObject(b.k);
    if (b.v) clReleaseMemObject(b.v);
    if (b.o) clReleaseMemObject(b.o);
}

static double ratio(const shape_run *r, int v)
{
    const vresult *a = &r->v[V_AUTO];
    if (r->v[v].status != RES_OK || a->status != RES_OK || a->median_ms <= 0) return NAN;
    return r->v[v].median_ms / a->median_ms;
}

static void print_shape_text(const tool_shape *s, const shape_run *r)
{
    char text[128];
    tool_shape_format(s, text, sizeof text);
    printf("\n%s%s%s  (%.3g GFLOP)\n", s->name, s->name[0] ? "  " : "", text, r->gflop);
    if (r->skipped) {
        printf("  skipped: %s\n", r->message);
        return;
    }
    printf("  %-12s %10s %10s %9s %8s %5s\n", "variant", "median ms", "min ms", "GFLOP/s",
           "vs AUTO", "runs");
    for (int v = 0; v < V_COUNT; v++) {
        const vresult *x = &r->v[v];
        if (x->status != RES_OK) {
            printf("  %-12s %s\n", k_variant[v], x->status == RES_UNSUPPORTED ? "unsupported"
                                                                            : x->message);
            continue;
        }
        printf("  %-12s %10.3f %10.3f %9.2f %7.2fx %5d\n", k_variant[v], x->median_ms,
               x->min_ms, r->gflop / (x->median_ms * 1e-3), ratio(r, v), x->runs);
    }
}

static void print_json(const tool_shape_list *shapes, const shape_run *runs,
                       const char *device, size_t entries, const first_call *fc, int fc_ran)
{
    printf("{\n  \"clattn_version\": ");
    tool_json_string(stdout, clattn_version());
    printf(",\n  \"device\": ");
    tool_json_string(stdout, device);
    printf(",\n  \"tuning_entries\": %zu,\n  \"shapes\": [", entries);
    for (size_t i = 0; i < shapes->count; i++) {
        const shape_run *r = &runs[i];
        char text[128];
        tool_shape_format(&shapes->items[i], text, sizeof text);
        printf("%s\n    {\"name\": ", i ? "," : "");
        tool_json_string(stdout, shapes->items[i].name);
        printf(", \"shape\": ");
        tool_json_string(stdout, text);
        printf(", \"gflop\": ");
        tool_json_number(stdout, r->gflop);
        printf(", \"skipped\": %s, \"message\": ", r->skipped ? "true" : "false");
        tool_json_string(stdout, r->message);
        printf(", \"variants\": [");
        for (int v = 0; v < V_COUNT && !r->skipped; v++) {
            const vresult *x = &r->v[v];
            int ok = x->status == RES_OK;
            printf("%s\n      {\"variant\": \"%s\", \"status\": \"%s\", \"message\": ",
                   v ? "," : "", k_variant[v],
                   ok ? "ok" : x->status == RES_UNSUPPORTED ? "unsupported" : "failed");
            tool_json_string(stdout, x->message);
            printf(", \"median_ms\": ");
            tool_json_number(stdout, ok ? x->median_ms : NAN);
            printf(", \"min_ms\": ");
            tool_json_number(stdout, ok ? x->min_ms : NAN);
            printf(", \"gflops\": ");
            tool_json_number(stdout, ok ? r->gflop / (x->median_ms * 1e-3) : NAN);
            printf(", \"vs_auto\": ");
            tool_json_number(stdout, ratio(r, v));
            printf(", \"runs\": %d}", x->runs);
        }
        printf("%s]}", r->skipped ? "" : "\n    ");
    }
    printf("\n  ],\n  \"first_call\": ");
    if (!fc_ran) {
        printf("null\n}\n");
        return;
    }
    printf("{\"shape\": ");
    tool_json_string(stdout, fc[2].message);
    printf(", \"ok\": %s, \"message\": ", fc[0].ok && fc[1].ok ? "true" : "false");
    tool_json_string(stdout, fc[0].ok ? fc[1].message : fc[0].message);
    printf(", \"cold_ms\": ");
    tool_json_number(stdout, fc[0].ok ? fc[0].ms : NAN);
    printf(", \"warm_ms\": ");
    tool_json_number(stdout, fc[1].ok ? fc[1].ms : NAN);
    printf(", \"ratio\": ");
    tool_json_number(stdout, fc[0].ok && fc[1].ok && fc[1].ms > 0 ? fc[0].ms / fc[1].ms : NAN);
    printf(", \"cold_built\": %llu, \"cold_stored\": %llu, \"warm_built\": %llu, "
           "\"warm_loaded\": %llu}\n}\n",
           fc[0].built, fc[0].stored, fc[1].built, fc[1].loaded);
}

/* The first-call measurement on shape s; fc[2].message receives its text. */
static void first_call_of(clattn_context *ctx, const tool_shape *s, int json, first_call fc[3])
{
    cl_device_id device = NULL;
    char where[32] = "";
    int p, d;
    memset(fc, 0, 3 * sizeof *fc);
    tool_shape_format(s, fc[2].message, sizeof fc[2].message);
    if (clattn_context_get_cl(ctx, NULL, NULL, &device) == CLATTN_OK &&
        tool_device_index(device, &p, &d))
        snprintf(where, sizeof where, "%d:%d", p, d);
    note("first-call time (two new processes)");
    bench_first_call(where, fc[2].message, &fc[0], &fc[1]);
    note_clear();
    if (json) return;
    printf("\nfirst call (new process: context create + first forward + finish, "
           "POCL_KERNEL_CACHE=0), %s%s%s:\n",
           s->name, s->name[0] ? " " : "", fc[2].message);
    if (!fc[0].ok || !fc[1].ok) {
        printf("  not measured: %s\n", fc[0].ok ? fc[1].message : fc[0].message);
        return;
    }
    printf("  cold program cache %9.1f ms  (%llu built, %llu stored)\n", fc[0].ms, fc[0].built,
           fc[0].stored);
    printf("  warm program cache %9.1f ms  (%llu loaded, %llu built)\n", fc[1].ms, fc[1].loaded,
           fc[1].built);
    printf("  cold / warm        %9.2fx\n", fc[1].ms > 0 ? fc[0].ms / fc[1].ms : 0.0);
}

int cmd_bench(int argc, char **argv)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    const char *shapes_arg = "P1,P2,C1,G1,D1";
    long repeat = 0;
    int json = 0, do_first = 1, list_only = 0, rc, failed = 0;
    static tool_shape_list shapes;
    clattn_context *ctx = NULL, *untuned = NULL;
    clattn_options off;
    cl_command_queue queue;
    shape_run *runs;
    size_t entries = 0;
    char device[600];
    first_call fc[3];
    double t0 = tool_now();

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int got;
        if ((got = tool_option_value(argc, argv, &i, "--device", &v)) != 0) {
            if (got < 0 || !tool_parse_device(v, &dev)) return TOOL_EXIT_USAGE;
        } else if ((got = tool_option_value(argc, argv, &i, "--shapes", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            shapes_arg = v;
        } else if ((got = tool_option_value(argc, argv, &i, "--repeat", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            if (!tool_parse_int(v, 1, 10000, &repeat)) {
                fprintf(stderr, "attn-tune bench: --repeat expects 1..10000, not '%s'\n", v);
                return TOOL_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--no-first-call") == 0) {
            do_first = 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--list-shapes") == 0) {
            list_only = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(k_bench_usage, stdout);
            return TOOL_EXIT_OK;
        } else {
            fprintf(stderr, "attn-tune bench: unknown option '%s'\n\n%s", argv[i],
                    k_bench_usage);
            return TOOL_EXIT_USAGE;
        }
    }
    shapes.count = 0;
    if (!tool_shapes_resolve(shapes_arg, 0, &shapes)) return TOOL_EXIT_USAGE;
    if (list_only) return tool_list_shapes(&shapes);
    g_progress = isatty(STDERR_FILENO);
    rc = tool_open_context(&dev, &ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    /* The baseline context shares the queue (so the buffers) but no db. */
    clattn_options_init(&off);
    off.cache_dir = "off";
    off.log = tool_log;
    clattn_context_get_cl(ctx, NULL, &queue, NULL);
    if (clattn_context_create_from_queue(queue, &off, &untuned) != CLATTN_OK) {
        fprintf(stderr, "attn-tune bench: cannot create the untuned context\n");
        clattn_context_destroy(ctx);
        return TOOL_EXIT_FAILURE;
    }
    runs = calloc(shapes.count, sizeof *runs);
    if (!runs) {
        clattn_context_destroy(untuned);
        clattn_context_destroy(ctx);
        return TOOL_EXIT_FAILURE;
    }
    clattn_tuning_count(ctx, &entries);
    tool_context_device(ctx, device, sizeof device);
    if (!json) {
        printf("clattn %s, device %s; tuning db: %zu entr%s%s\n", clattn_version(), device,
               entries, entries == 1 ? "y" : "ies",
               entries ? "" : " (AUTO = untuned; 'attn-tune tune' makes some)");
        printf("times: wall clock per call, enqueue to completion; vs AUTO = time / AUTO's "
               "time\n");
        fflush(stdout);
    }
    for (size_t i = 0; i < shapes.count; i++) {
        bench_shape(ctx, untuned, &shapes.items[i], repeat, &runs[i]);
        for (int v = 0; v < V_COUNT; v++) failed += runs[i].v[v].status == RES_FAILED;
        if (!json) {
            print_shape_text(&shapes.items[i], &runs[i]);
            fflush(stdout);
        }
    }
    clattn_context_destroy(untuned);
    if (do_first && shapes.count > 0) first_call_of(ctx, &shapes.items[0], json, fc);
    if (json)
        print_json(&shapes, runs, device, entries, fc, do_first && shapes.count > 0);
    else
        printf("\n%zu shape(s) in %.1f s\n", shapes.count, tool_now() - t0);
    free(runs);
    clattn_context_destroy(ctx);
    return failed ? TOOL_EXIT_FAILURE : TOOL_EXIT_OK;
}
