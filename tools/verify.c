/* attn-tune verify: every path x dtype x mask kind on a few shapes, against
 * the double-precision reference, one line per case. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "attn_tune.h"
#include "verify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char k_verify_usage[] =
    "usage: attn-tune verify [--device P:D] [--quick] [--json]\n"
    "\n"
    "Runs every path (FUSED, THREE_STAGE, SPLIT_KV, AUTO) with every storage type\n"
    "(F32, F16, BF16) and mask kind (none, causal-br = bottom-right causal,\n"
    "causal-tl = top-left causal, window = 24 keys back and 8 ahead, mask =\n"
    "additive fp32 mask with -inf entries, kv_lens = per-batch KV lengths,\n"
    "sliding = causal-br with a 24-key window, kv+causal = kv_lens with causal-br)\n"
    "on a few shapes with random inputs, and compares O and the LSE with a\n"
    "double-precision reference.\n"
    "\n"
    "Each line shows the relative L2 error of O and of the LSE; a case passes when\n"
    "both are within the tolerance of its dtype (F32 1e-5, F16 2e-3, BF16 1e-2)\n"
    "and nothing outside O's view was written. Shapes: B batch, H heads/kv_heads,\n"
    "Sq and Skv sequence lengths, D head_dim (D/Dv when V's width differs).\n"
    "A case the device cannot run (clattn_supports says unsupported) is skipped.\n"
    "\n"
    "Options:\n"
    "  --device P:D  the device to check (see 'attn-tune devices'); default:\n"
    "                clattn's choice\n"
    "  --quick       two shapes only (for a check in a few seconds)\n"
    "  --json        one JSON document on stdout instead of lines (the summary\n"
    "                line goes to stderr)\n"
    "  -h, --help    this text\n"
    "\n"
    "The last line reads 'N passed, N failed' (', N skipped' follows when cases\n"
    "were skipped). Exit status: 0 when no case failed and at least one passed,\n"
    "1 otherwise, 2 on a usage error.\n";

static const clattn_path k_paths[] = {CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                      CLATTN_PATH_SPLIT_KV, CLATTN_PATH_AUTO};
static const clattn_dtype k_dtypes[] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};

static double tolerance(clattn_dtype t)
{
    switch (t) {
    case CLATTN_F32: return 1e-5;
    case CLATTN_F16: return 2e-3;
    case CLATTN_BF16: return 1e-2;
    }
    return 0.0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { RESULT_OK, RESULT_FAIL, RESULT_SKIP };
static const char *const k_result_names[] = {"ok", "FAIL", "skip"};

typedef struct vcase {
    const vshape *shape;
    vmask mask;
    clattn_dtype dtype;
    clattn_path path;
    vcheck check;
    int result;
    double seconds;
    char message[4096]; /* why it failed or was skipped */
} vcase;

typedef struct vrun {
    int json;
    int passed, failed, skipped, count;
    /* Library messages already printed in full: a broken kernel fails many
     * cases with one message, which is shown once. */
    char *seen[64];
    char seen_name[64][96];
    int seen_count;
} vrun;

static void append_failure(vcase *c, const char *what)
{
    size_t len = strlen(c->message);
    c->result = RESULT_FAIL;
    snprintf(c->message + len, sizeof c->message - len, "%s%s", len ? "; " : "", what);
}

static void run_case(clattn_context *ctx, vdata *d, vcase *c)
{
    double t0 = now_seconds();
    double tol = tolerance(c->dtype);
    clattn_status st;
    c->message[0] = '\0';
    c->check.o_err = c->check.lse_err = NAN;
    vdata_set_path(d, c->path);
    vdata_poison_outputs(d);
    st = clattn_supports(ctx, &d->problem);
    if (st == CLATTN_OK) st = clattn_forward_host(ctx, &d->problem, &d->host);
    c->seconds = now_seconds() - t0;
    if (st != CLATTN_OK) {
        snprintf(c->message, sizeof c->message, "%s: %s", clattn_status_string(st),
                 clattn_last_error(ctx));
        c->result = st == CLATTN_ERR_UNSUPPORTED ? RESULT_SKIP : RESULT_FAIL;
        return;
    }
    vdata_check(d, &c->check);
    c->result = RESULT_OK;
    if (!(c->check.o_err <= tol)) append_failure(c, c->check.worst);
    if (!(c->check.lse_err <= tol)) append_failure(c, c->check.lse_worst);
    if (!c->check.guard_ok)
        append_failure(c, "wrote outside O's view (into its gaps or past its end)");
}

static void format_dims(const vshape *s, char *buf, size_t size)
{
    char dv[16] = "";
    if (s->head_dim_v != s->head_dim) snprintf(dv, sizeof dv, "/%d", s->head_dim_v);
    snprintf(buf, size, "B%d H%d/%d Sq%d Skv%d D%d%s", s->batch, s->heads, s->kv_heads,
             s->seq_q, s->seq_kv, s->head_dim, dv);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void json_number(double x)
{
    if (isfinite(x))
        printf("%.3e", x);
    else
        fputs("null", stdout);
}

static void print_case_json(const vrun *run, const vcase *c)
{
    const vshape *s = c->shape;
    printf("%s\n    {\"path\": \"%s\", \"dtype\": \"%s\", \"shape\": \"%s\", ", run->count ? "," : "",
           tool_path_name(c->path), tool_dtype_name(c->dtype), s->name);
    printf("\"batch\": %d, \"heads\": %d, \"kv_heads\": %d, \"seq_q\": %d, \"seq_kv\": %d, "
           "\"head_dim\": %d, \"head_dim_v\": %d, \"layout\": \"%s\", \"mask\": \"%s\", ",
           s->batch, s->heads, s->kv_heads, s->seq_q, s->seq_kv, s->head_dim, s->head_dim_v,
           verify_layout_name(s->layout), verify_mask_name(c->mask));
    fputs("\"o_error\": ", stdout);
    json_number(c->check.o_err);
    fputs(", \"lse_error\": ", stdout);
    json_number(c->check.lse_err);
    printf(", \"tolerance\": %.0e, \"seconds\": %.3f, \"result\": \"%s\", \"message\": ",
           tolerance(c->dtype), c->seconds, k_result_names[c->result]);
    json_string(c->message);
    putchar('}');
}

/* A library message may span lines (a build log): indent every line. */
static void print_indented(const char *text)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        printf("    %.*s\n", len, text);
        text += len + (nl ? 1 : 0);
    }
}

static void print_case_text(vrun *run, const vcase *c)
{
    char dims[64], err[64];
    format_dims(c->shape, dims, sizeof dims);
    if (c->check.o_err == c->check.o_err || c->check.lse_err == c->check.lse_err)
        snprintf(err, sizeof err, "%9.2e %9.2e", c->check.o_err, c->check.lse_err);
    else
        snprintf(err, sizeof err, "%9s %9s", "-", "-");
    printf("%-11s %-4s %-10s %-26s %-9s %s  %s\n", tool_path_name(c->path),
           tool_dtype_name(c->dtype), c->shape->name, dims, verify_mask_name(c->mask), err,
           k_result_names[c->result]);
    if (!c->message[0]) return;
    for (int i = 0; i < run->seen_count; i++) {
        if (strcmp(run->seen[i], c->message) == 0) {
            printf("    same message as %s above\n", run->seen_name[i]);
            return;
        }
    }
    print_indented(c->message);
    if (run->seen_count < 64) {
        size_t len = strlen(c->message) + 1;
        char *copy = malloc(len);
        if (!copy) return;
        memcpy(copy, c->message, len);
        run->seen[run->seen_count] = copy;
        snprintf(run->seen_name[run->seen_count], sizeof run->seen_name[0], "%s %s %s %s",
                 tool_path_name(c->path), tool_dtype_name(c->dtype), c->shape->name,
                 verify_mask_name(c->mask));
        run->seen_count++;
    }
}

static void record(vrun *run, const vcase *c)
{
    if (run->json)
        print_case_json(run, c);
    else
        print_case_text(run, c);
    fflush(stdout);
    run->count++;
    if (c->result == RESULT_OK) run->passed++;
    if (c->result == RESULT_FAIL) run->failed++;
    if (c->result == RESULT_SKIP) run->skipped++;
}

static void print_header(const vrun *run, clattn_context *ctx, int quick)
{
    tool_device_names n;
    tool_context_device_parts(ctx, &n);
    const char *where = n.where, *name = n.name, *platform_name = n.platform;
    if (run->json) {
        fputs("{\n  \"clattn_version\": ", stdout);
        json_string(clattn_version());
        printf(",\n  \"device_index\": \"%s\",\n  \"device\": ", where);
        json_string(name);
        fputs(",\n  \"platform\": ", stdout);
        json_string(platform_name);
        printf(",\n  \"quick\": %s,\n  \"cases\": [", quick ? "true" : "false");
        return;
    }
    printf("clattn %s, device %s: %s (%s)\n", clattn_version(), where, name, platform_name);
    printf("relative L2 error of O and LSE against a double reference; tolerance F32 1e-5, "
           "F16 2e-3, BF16 1e-2\n\n");
    printf("%-11s %-4s %-10s %-26s %-9s %9s %9s  %s\n", "path", "type", "shape", "dims", "mask",
           "err O", "err LSE", "result");
}

int cmd_verify(int argc, char **argv)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    clattn_context *ctx = NULL;
    vrun run;
    vcase *c;
    int quick = 0, rc;
    double t0;

    memset(&run, 0, sizeof run);
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int got = tool_option_value(argc, argv, &i, "--device", &value);
        if (got < 0) return TOOL_EXIT_USAGE;
        if (got > 0) {
            if (!tool_parse_device(value, &dev)) return TOOL_EXIT_USAGE;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            run.json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(k_verify_usage, stdout);
            return TOOL_EXIT_OK;
        } else {
            fprintf(stderr, "attn-tune verify: unknown option '%s'\n\n%s", argv[i],
                    k_verify_usage);
            return TOOL_EXIT_USAGE;
        }
    }

    rc = tool_open_context(&dev, &ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    c = malloc(sizeof *c);
    if (!c) {
        fprintf(stderr, "attn-tune verify: out of memory\n");
        clattn_context_destroy(ctx);
        return TOOL_EXIT_FAILURE;
    }
    print_header(&run, ctx, quick);
    t0 = now_seconds();

    for (size_t si = 0; si < verify_shape_count; si++) {
        const vshape *s = &verify_shapes[si];
        if (quick && !s->quick) continue;
        for (int m = 0; m < VMASK_COUNT; m++) {
            for (size_t ti = 0; ti < sizeof k_dtypes / sizeof k_dtypes[0]; ti++) {
                vdata d;
                uint64_t seed = 0x5EEDull + 1000u * si + 10u * (unsigned)m + ti;
                int made = vdata_make(&d, s, (vmask)m, k_dtypes[ti], seed);
                for (size_t pi = 0; pi < sizeof k_paths / sizeof k_paths[0]; pi++) {
                    memset(c, 0, sizeof *c);
                    c->shape = s;
                    c->mask = (vmask)m;
                    c->dtype = k_dtypes[ti];
                    c->path = k_paths[pi];
                    if (made) {
                        run_case(ctx, &d, c);
                    } else {
                        c->result = RESULT_FAIL;
                        c->check.o_err = c->check.lse_err = NAN;
                        snprintf(c->message, sizeof c->message,
                                 "out of host memory for the inputs");
                    }
                    record(&run, c);
                }
                vdata_free(&d);
            }
        }
    }

    if (run.json) {
        printf("\n  ],\n  \"seconds\": %.1f,\n", now_seconds() - t0);
        printf("  \"passed\": %d,\n  \"failed\": %d,\n  \"skipped\": %d\n}\n", run.passed,
               run.failed, run.skipped);
    } else {
        printf("\n%d cases in %.1f s\n", run.count, now_seconds() - t0);
        if (run.passed == 0)
            printf("nothing could be verified on this device: every case was skipped\n");
    }
    {
        FILE *summary = run.json ? stderr : stdout;
        if (run.skipped)
            fprintf(summary, "%d passed, %d failed, %d skipped\n", run.passed, run.failed,
                    run.skipped);
        else
            fprintf(summary, "%d passed, %d failed\n", run.passed, run.failed);
    }
    for (int i = 0; i < run.seen_count; i++) free(run.seen[i]);
    free(c);
    clattn_context_destroy(ctx);
    /* A device on which nothing runs has not passed. */
    return run.failed || run.passed == 0 ? TOOL_EXIT_FAILURE : TOOL_EXIT_OK;
}
