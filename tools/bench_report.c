/* attn-tune bench's report: each variant's figures against AUTO and the
 * peaks, the text tables, the goal lines of the performance issue, and the
 * JSON document. The measuring is in bench.c. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const bench_variant[V_COUNT] = {"AUTO",     "untuned",        "FUSED", "THREE_STAGE",
                                            "SPLIT_KV", "clblast-3stage", "naive"};

/* Below this many useful FLOPs per byte of Q, K, V and O a forward cannot
 * keep the arithmetic units busy on any current device: such shapes are
 * judged by bandwidth (decode steps are near 2). */
#define MEMORY_BOUND_INTENSITY 16.0

/* A variant's median over AUTO's (2.00 = twice AUTO's time). */
static double ratio(const shape_run *r, int v)
{
    const vresult *a = &r->v[V_AUTO];
    if (r->v[v].status != RES_OK || a->status != RES_OK || a->median_ms <= 0) return NAN;
    return r->v[v].median_ms / a->median_ms;
}

static double gflops_of(const shape_run *r, int v)
{
    return r->v[v].status == RES_OK ? r->gflop / (r->v[v].median_ms * 1e-3) : NAN;
}

static double gbps_of(const shape_run *r, int v)
{
    return r->v[v].status == RES_OK ? r->bytes * 1e-9 / (r->v[v].median_ms * 1e-3) : NAN;
}

static int memory_bound(const shape_run *r)
{
    return r->bytes > 0 && r->gflop * 1e9 / r->bytes < MEMORY_BOUND_INTENSITY;
}

/* Fractions of the peaks; NAN where a figure is missing. */
static double of_sgemm(const bench_peaks *pk, const shape_run *r, int v)
{
    return pk->sgemm_gflops > 0 ? gflops_of(r, v) / pk->sgemm_gflops : NAN;
}

static double of_read(const bench_peaks *pk, const shape_run *r, int v)
{
    return pk->read_gbps > 0 ? gbps_of(r, v) / pk->read_gbps : NAN;
}

static const char *status_word(int status)
{
    return status == RES_OK            ? "ok"
           : status == RES_UNSUPPORTED ? "unsupported"
           : status == RES_SKIPPED     ? "skipped"
                                       : "failed";
}

static void print_percent(double fraction, int width)
{
    if (isfinite(fraction))
        printf(" %*.1f%%", width - 1, 100.0 * fraction);
    else
        printf(" %*s", width, "n/a");
}

void bench_print_shape_text(const tool_shape *s, const shape_run *r, const bench_peaks *pk)
{
    char text[128];
    const int mem = memory_bound(r);
    tool_shape_format(s, text, sizeof text);
    printf("\n%s%s%s  (%.3g GFLOP, %.3g MB of Q+K+V+O, %.1f FLOP/B: %s)\n", s->name,
           s->name[0] ? "  " : "", text, r->gflop, r->bytes * 1e-6,
           r->bytes > 0 ? r->gflop * 1e9 / r->bytes : 0.0,
           mem ? "memory-bound" : "compute-bound");
    if (r->skipped) {
        printf("  skipped: %s\n", r->message);
        return;
    }
    printf("  %-14s %10s %10s %9s %9s %7s", "variant", "median ms", "min ms", "cpu ms", "GFLOP/s",
           "%sgemm");
    if (mem) printf(" %8s %6s", "GB/s", "%read");
    printf(" %8s %5s\n", "vs AUTO", "runs");
    for (int v = 0; v < V_COUNT; v++) {
        const vresult *x = &r->v[v];
        if (x->status != RES_OK) {
            printf("  %-14s %s\n", bench_variant[v],
                   x->status == RES_UNSUPPORTED && !x->message[0] ? "unsupported" : x->message);
            continue;
        }
        printf("  %-14s %10.3f %10.3f %9.2f %9.2f", bench_variant[v], x->median_ms, x->min_ms,
               x->cpu_ms, gflops_of(r, v));
        print_percent(of_sgemm(pk, r, v), 7);
        if (mem) {
            printf(" %8.2f", gbps_of(r, v));
            print_percent(of_read(pk, r, v), 6);
        }
        printf(" %7.2fx %5d\n", ratio(r, v), x->runs);
    }
    if (r->v[V_AUTO].status == RES_OK) {
        static const int base[] = {V_UNTUNED, V_CLBLAST, V_NAIVE};
        printf("  AUTO speed-up:");
        for (int i = 0; i < 3; i++) {
            double x = ratio(r, base[i]);
            if (isfinite(x))
                printf(" %.2fx vs %s%s", x, bench_variant[base[i]], i < 2 ? "," : "");
            else
                printf(" n/a vs %s%s", bench_variant[base[i]], i < 2 ? "," : "");
        }
        printf("\n");
    }
}

/* The goals of issue 5, for the named shapes present. */
typedef struct goal {
    const char *shape, *variant, *measure; /* measure: "sgemm" or "read" */
    double goal;
} goal;

static const goal k_goals[] = {
    {"P1", "AUTO", "sgemm", 0.50},        {"P2", "AUTO", "sgemm", 0.50},
    {"C1", "AUTO", "sgemm", 0.50},        {"G1", "AUTO", "sgemm", 0.50},
    {"D1", "AUTO", "read", 0.60},         {"P1", "THREE_STAGE", "sgemm", 0.25},
};
#define NUM_GOALS (sizeof k_goals / sizeof k_goals[0])

static int variant_index(const char *name)
{
    for (int v = 0; v < V_COUNT; v++)
        if (strcmp(bench_variant[v], name) == 0) return v;
    return 0;
}

/* The shape a goal names among the benched ones, or -1. */
static long goal_shape(const goal *g, const tool_shape_list *shapes)
{
    for (size_t i = 0; i < shapes->count; i++)
        if (strcmp(shapes->items[i].name, g->shape) == 0) return (long)i;
    return -1;
}

static double goal_value(const goal *g, const shape_run *r, const bench_peaks *pk)
{
    int v = variant_index(g->variant);
    return strcmp(g->measure, "sgemm") == 0 ? of_sgemm(pk, r, v) : of_read(pk, r, v);
}

void bench_print_peaks_text(const bench_peaks *pk)
{
    if (pk->sgemm_gflops > 0)
        printf("host sgemm: %.1f GFLOP/s (%s)\n", pk->sgemm_gflops, pk->sgemm_note);
    else
        printf("host sgemm: n/a (%s)\n", pk->sgemm_note);
    if (pk->read_gbps > 0)
        printf("device read bandwidth: %.1f GB/s (%s)\n", pk->read_gbps, pk->read_note);
    else
        printf("device read bandwidth: n/a (%s)\n", pk->read_note);
}

void bench_print_goals_text(const tool_shape_list *shapes, const shape_run *runs,
                             const bench_peaks *pk)
{
    int any = 0;
    for (size_t i = 0; i < NUM_GOALS; i++) {
        const goal *g = &k_goals[i];
        long si = goal_shape(g, shapes);
        double x;
        if (si < 0) continue;
        if (!any++) printf("\ngoals (medians; %% of the figures above):\n");
        x = runs[si].skipped ? NAN : goal_value(g, &runs[si], pk);
        printf("  %-3s %-12s ", g->shape, g->variant);
        if (isfinite(x))
            printf("%5.1f%% of %-14s (goal %2.0f%%)  %s\n", 100.0 * x,
                   g->measure[0] == 's' ? "sgemm" : "read bandwidth", 100.0 * g->goal,
                   x >= g->goal ? "met" : "not met");
        else
            printf("  n/a  of %-14s (goal %2.0f%%)\n",
                   g->measure[0] == 's' ? "sgemm" : "read bandwidth", 100.0 * g->goal);
    }
}

/* ---- first call ---------------------------------------------------------- */

static const char *const k_fc_case[FC_CASES] = {
    "fully cold (clattn cache and PoCL cache empty)",
    "clattn cache warm, PoCL cache empty",
    "both caches warm",
};
static const char *const k_fc_key[FC_CASES] = {"cold", "clattn_warm", "both_warm"};

/* The goals of the program cache: a first call with clattn's binaries and
 * an empty PoCL cache at least 20x faster than a cold one, and within 2x of
 * one with both caches warm. */
#define FC_GOAL_VS_COLD 20.0
#define FC_GOAL_VS_WARM 2.0

static double safe_ratio(double a, double b) { return b > 0 ? a / b : NAN; }

void bench_print_first_call_text(const first_call_report *fc)
{
    printf("%s: new processes, context create + first forward to completion (inputs "
           "filled in between, not timed); median of %d round(s), fresh directories each "
           "round:\n",
           fc->shape, fc->rounds);
    if (!fc->ok) {
        printf("  not measured: %s\n", fc->message);
        return;
    }
    for (int c = 0; c < FC_CASES; c++) {
        const first_call *x = &fc->last[c];
        printf("  %-48s %9.1f ms  (%llu built, %llu loaded)\n", k_fc_case[c], fc->ms[c],
               x->built, x->loaded);
    }
    double vs_cold = safe_ratio(fc->ms[FC_COLD], fc->ms[FC_CLATTN_WARM]);
    double vs_warm = safe_ratio(fc->ms[FC_CLATTN_WARM], fc->ms[FC_BOTH_WARM]);
    printf("  cold / clattn-warm %9.2fx   (goal >= %.0fx: %s)\n", vs_cold, FC_GOAL_VS_COLD,
           vs_cold >= FC_GOAL_VS_COLD ? "met" : "not met");
    printf("  clattn-warm / both-warm %4.2fx   (goal <= %.0fx: %s)\n", vs_warm,
           FC_GOAL_VS_WARM, vs_warm <= FC_GOAL_VS_WARM ? "met" : "not met");
    printf("  context create alone: %.1f / %.1f / %.1f ms\n", fc->create_ms[FC_COLD],
           fc->create_ms[FC_CLATTN_WARM], fc->create_ms[FC_BOTH_WARM]);
    printf("  second call: %.1f / %.1f / %.1f ms; context destroy: %.1f / %.1f / %.1f ms\n"
           "  (the cold process writes its binaries at its second call, %llu stored, "
           "%llu bytes)\n",
           fc->second_ms[FC_COLD], fc->second_ms[FC_CLATTN_WARM], fc->second_ms[FC_BOTH_WARM],
           fc->destroy_ms[FC_COLD], fc->destroy_ms[FC_CLATTN_WARM],
           fc->destroy_ms[FC_BOTH_WARM], fc->last[FC_COLD].stored, fc->binary_bytes);
}

static void print_first_call_json(const first_call_report *fc)
{
    printf("{\"shape\": ");
    tool_json_string(stdout, fc->shape);
    printf(", \"ok\": %s, \"rounds\": %d, \"message\": ", fc->ok ? "true" : "false",
           fc->rounds);
    tool_json_string(stdout, fc->message);
    for (int c = 0; c < FC_CASES; c++) {
        const first_call *x = &fc->last[c];
        printf(",\n    \"%s\": {\"first_call_ms\": ", k_fc_key[c]);
        tool_json_number(stdout, fc->ok ? fc->ms[c] : NAN);
        printf(", \"create_ms\": ");
        tool_json_number(stdout, fc->ok ? fc->create_ms[c] : NAN);
        printf(", \"second_call_ms\": ");
        tool_json_number(stdout, fc->ok ? fc->second_ms[c] : NAN);
        printf(", \"destroy_ms\": ");
        tool_json_number(stdout, fc->ok ? fc->destroy_ms[c] : NAN);
        printf(", \"built\": %llu, \"loaded\": %llu, \"stored\": %llu, \"rejected\": %llu}",
               x->built, x->loaded, x->stored, x->rejected);
    }
    printf(",\n    \"binary_bytes\": %llu, \"cold_over_clattn_warm\": ", fc->binary_bytes);
    tool_json_number(stdout,
                     fc->ok ? safe_ratio(fc->ms[FC_COLD], fc->ms[FC_CLATTN_WARM]) : NAN);
    printf(", \"clattn_warm_over_both_warm\": ");
    tool_json_number(stdout,
                     fc->ok ? safe_ratio(fc->ms[FC_CLATTN_WARM], fc->ms[FC_BOTH_WARM]) : NAN);
    printf("}");
}

void bench_print_first_call_json(const char *device, const first_call_report *fc)
{
    printf("{\n  \"clattn_version\": ");
    tool_json_string(stdout, clattn_version());
    printf(",\n  \"device\": ");
    tool_json_string(stdout, device);
    printf(",\n  \"first_call\": ");
    print_first_call_json(fc);
    printf("\n}\n");
}

void bench_print_json(const tool_shape_list *shapes, const shape_run *runs,
                       const char *device, size_t entries, const bench_env *env,
                       const first_call_report *fc)
{
    const bench_peaks *pk = &env->peaks;
    const int baselines = env->baselines;
    printf("{\n  \"clattn_version\": ");
    tool_json_string(stdout, clattn_version());
    printf(",\n  \"device\": ");
    tool_json_string(stdout, device);
    printf(",\n  \"tuning_entries\": %zu,\n  \"baselines\": %s,", entries,
           baselines ? "true" : "false");
    printf("\n  \"cache_sweep_mib\": ");
    tool_json_number(stdout, env->sweep.k ? (double)env->sweep.bytes / 1048576.0 : 0.0);
    printf(",");
    printf("\n  \"host\": {\"cores\": %ld, \"load_start\": ", env->cores);
    tool_json_number(stdout, env->load_start >= 0 ? env->load_start : NAN);
    printf(", \"load_end\": ");
    tool_json_number(stdout, env->load_end >= 0 ? env->load_end : NAN);
    printf("},");
    printf("\n  \"host_sgemm\": {\"gflops\": ");
    tool_json_number(stdout, pk->sgemm_gflops > 0 ? pk->sgemm_gflops : NAN);
    printf(", \"source\": \"%s\", \"n\": %d, \"threads\": %d, \"runs\": %d, \"note\": ",
           pk->sgemm_given ? "given" : pk->sgemm_gflops > 0 ? "measured" : "none", pk->sgemm_n,
           pk->sgemm_threads, pk->sgemm_runs);
    tool_json_string(stdout, pk->sgemm_note);
    printf("},\n  \"device_read\": {\"gbps\": ");
    tool_json_number(stdout, pk->read_gbps > 0 ? pk->read_gbps : NAN);
    printf(", \"buffer_mib\": ");
    tool_json_number(stdout, pk->read_mib);
    printf(", \"kernel\": ");
    tool_json_string(stdout, pk->read_kernel);
    printf(", \"note\": ");
    tool_json_string(stdout, pk->read_note);
    printf("},\n  \"shapes\": [");
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
        printf(", \"bytes\": ");
        tool_json_number(stdout, r->bytes);
        printf(", \"memory_bound\": %s", memory_bound(r) ? "true" : "false");
        printf(", \"skipped\": %s, \"message\": ", r->skipped ? "true" : "false");
        tool_json_string(stdout, r->message);
        printf(", \"auto_speedup\": {\"untuned\": ");
        tool_json_number(stdout, r->skipped ? NAN : ratio(r, V_UNTUNED));
        printf(", \"clblast-3stage\": ");
        tool_json_number(stdout, r->skipped ? NAN : ratio(r, V_CLBLAST));
        printf(", \"naive\": ");
        tool_json_number(stdout, r->skipped ? NAN : ratio(r, V_NAIVE));
        printf("}, \"variants\": [");
        for (int v = 0; v < V_COUNT && !r->skipped; v++) {
            const vresult *x = &r->v[v];
            int ok = x->status == RES_OK;
            printf("%s\n      {\"variant\": \"%s\", \"status\": \"%s\", \"message\": ",
                   v ? "," : "", bench_variant[v], status_word(x->status));
            tool_json_string(stdout, x->message);
            printf(", \"median_ms\": ");
            tool_json_number(stdout, ok ? x->median_ms : NAN);
            printf(", \"min_ms\": ");
            tool_json_number(stdout, ok ? x->min_ms : NAN);
            printf(", \"cpu_ms\": ");
            tool_json_number(stdout, ok ? x->cpu_ms : NAN);
            printf(", \"gflops\": ");
            tool_json_number(stdout, gflops_of(r, v));
            printf(", \"sgemm_fraction\": ");
            tool_json_number(stdout, of_sgemm(pk, r, v));
            printf(", \"gbps\": ");
            tool_json_number(stdout, gbps_of(r, v));
            printf(", \"read_fraction\": ");
            tool_json_number(stdout, of_read(pk, r, v));
            printf(", \"vs_auto\": ");
            tool_json_number(stdout, ratio(r, v));
            if (v >= V_CLBLAST) {
                printf(", \"check_rel_l2\": ");
                tool_json_number(stdout, x->check);
            }
            printf(", \"runs\": %d}", x->runs);
        }
        printf("%s]}", r->skipped ? "" : "\n    ");
    }
    printf("\n  ],\n  \"goals\": [");
    {
        int n = 0;
        for (size_t i = 0; i < NUM_GOALS; i++) {
            const goal *g = &k_goals[i];
            long si = goal_shape(g, shapes);
            double x;
            if (si < 0) continue;
            x = runs[si].skipped ? NAN : goal_value(g, &runs[si], pk);
            printf("%s\n    {\"shape\": \"%s\", \"variant\": \"%s\", \"measure\": \"%s\", "
                   "\"fraction\": ",
                   n++ ? "," : "", g->shape, g->variant,
                   g->measure[0] == 's' ? "sgemm" : "read_bandwidth");
            tool_json_number(stdout, x);
            printf(", \"goal\": %.2f, \"met\": %s}", g->goal,
                   !isfinite(x) ? "null" : x >= g->goal ? "true" : "false");
        }
        printf("%s],\n  \"first_call\": ", n ? "\n  " : "");
    }
    if (!fc) {
        printf("null\n}\n");
        return;
    }
    print_first_call_json(fc);
    printf("\n}\n");
}
