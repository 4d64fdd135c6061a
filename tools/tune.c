/* attn-tune tune: clattn_tune over a preset or a shape file, with a progress
 * display and a results table (or JSON). */
#include "attn_tune.h"
#include "shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char k_tune_usage[] =
    "usage: attn-tune tune [--device P:D] [--shapes PRESET|FILE|LIST] [--budget SECONDS]\n"
    "                      [--retune] [--json] [--list-shapes]\n"
    "\n"
    "Measures, for each shape, every kernel configuration of clattn's search space\n"
    "(fused, split-KV and three-stage units, then the paths themselves), checks\n"
    "each against a double-precision reference, and stores the winners in the\n"
    "user tuning db of the device under the cache root. Later contexts on the\n"
    "device use them. A winner is kept only when it beats the default\n"
    "configuration by more than the measured noise.\n"
    "\n"
    "Options:\n"
    "  --device P:D      the device to tune (see 'attn-tune devices')\n"
    "  --shapes WHAT     a preset: default (prefill, cross-attention, GQA and decode\n"
    "                    at head dims 64 and 128; the default), quick (two tiny\n"
    "                    shapes) or bench (P1 P2 C1 G1 D1); or a shape file; or a\n"
    "                    comma-separated list of presets, names and shapes\n"
    "  --budget SECONDS  limit of the whole run, shared out among the shapes still\n"
    "                    to tune (default 240; 0 = no limit)\n"
    "  --retune          measure again where the db already has a current entry\n"
    "  --json            the results as one JSON document on stdout\n"
    "  --list-shapes     print the shapes as parsed, one a line, and exit\n"
    "  -h, --help        this text\n"
    "\n"
    "Shape syntax (one shape per line in a file, '#' starts a comment):\n"
    "  B1 H8 Hkv2 Sq512 Skv512 D64 Dv64 causal|causal_tl|window=L,R dtype=f32|f16|bf16\n"
    "  B batch (default 1), H query heads, Hkv KV heads (default H), S for\n"
    "  Sq = Skv, D head_dim (1..256), Dv V width (default D); causal is\n"
    "  bottom-right aligned, causal_tl top-left; window=L,R keys back and ahead\n"
    "  (-1 = unbounded). K/V caches: kv=F (or k=F v=F) stores K and V as F =\n"
    "  f32|f16|bf16|int8|int4|q8_0|q4_0|fp8_e4m3|fp8_e5m2, with group=32|64|128\n"
    "  (int8/int4 channels per scale), scales=f32|f16, per_head (fp8), and\n"
    "  page=N pages them, N keys a page:\n"
    "    B4 H32 Hkv8 Sq1 Skv4096 D128 kv=int8 page=16\n"
    "  Each storage is tuned and stored apart: a problem uses only the entries\n"
    "  of its own K/V storage and paging. A bad line is reported as FILE:LINE\n"
    "  and exits 2.\n"
    "\n"
    "Progress goes to stderr: a bar on a terminal, else one line per unit and per\n"
    "ten candidates. The table lists per shape and unit the chosen parameters,\n"
    "the median time of the choice and of the default, the speed-up, whether a\n"
    "winner was stored (tuned), the default kept (default) or a current db entry\n"
    "kept (db), and how many candidates were tried and rejected (with the first\n"
    "rejection's reason).\n"
    "\n"
    "Exit status: 0 when every shape was tuned or skipped (unsupported, or the\n"
    "budget ran out), 1 when tuning failed, 2 on a usage error.\n";

#define MAX_UNITS 8 /* results one shape can give: 5 units and the path */

enum { OUT_TUNED, OUT_BUDGET, OUT_UNSUPPORTED, OUT_FAILED };
static const char *const k_outcome[] = {"tuned", "skipped (budget spent)", "unsupported",
                                        "failed"};

typedef struct shape_outcome {
    int status;
    char message[512];
    size_t first, count; /* its results */
    double seconds;
} shape_outcome;

typedef struct tune_ui {
    int tty;
    size_t shape, num_shapes;
    char shape_text[160];
    double t0, budget;
    char unit[24];
    int last_printed;
    int bar_shown;
} tune_ui;

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
    return 80;
}

/* Where the tuner is within a shape, 0..1, from the unit's place in the
 * tuner's order (approximate: a shape may skip units). */
static double shape_fraction(const clattn_tune_progress *p)
{
    double in_unit = p->num_candidates > 0 ? (double)p->candidate / p->num_candidates : 0;
    if (in_unit > 1) in_unit = 1;
    if (p->num_units <= 0 || p->unit_index < 0) return 0;
    return (p->unit_index + in_unit) / p->num_units;
}

static void draw_bar(tune_ui *ui, const clattn_tune_progress *p)
{
    char line[512], bar[32];
    const int width = 24;
    double frac = (ui->shape + shape_fraction(p)) / (double)ui->num_shapes;
    int fill = (int)(frac * width), cols = terminal_width() - 1, n;
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    /* Most useful first: the end is cut to the terminal's width. */
    n = snprintf(line, sizeof line, "[%s] %3.0f%% shape %zu/%zu %s %d/%d", bar, 100 * frac,
                 ui->shape + 1, ui->num_shapes, p->unit, p->candidate, p->num_candidates);
    if (n > 0 && (size_t)n < sizeof line) {
        if (ui->budget > 0)
            n += snprintf(line + n, sizeof line - (size_t)n, " %.0f/%.0f s",
                          tool_now() - ui->t0, ui->budget);
        else
            n += snprintf(line + n, sizeof line - (size_t)n, " %.0f s", tool_now() - ui->t0);
    }
    if (p->best_ms > 0 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " best %.3g ms (default %.3g)",
                      p->best_ms, p->default_ms);
    if (n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, " | %s", ui->shape_text);
    if (cols < (int)sizeof line) line[cols] = '\0';
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    ui->bar_shown = 1;
}

static void on_progress(const clattn_tune_progress *p, void *user)
{
    tune_ui *ui = user;
    int new_unit = strcmp(ui->unit, p->unit) != 0;
    if (new_unit) {
        snprintf(ui->unit, sizeof ui->unit, "%s", p->unit);
        ui->last_printed = 0;
    }
    if (ui->tty) {
        draw_bar(ui, p);
        return;
    }
    /* Plain lines: one when a unit starts, then one per ten candidates. */
    if (!new_unit && p->candidate < ui->last_printed + 10) return;
    ui->last_printed = p->candidate;
    fprintf(stderr, "tune: [%zu/%zu] %s: %s candidate %d/%d", ui->shape + 1, ui->num_shapes,
            ui->shape_text, p->unit, p->candidate, p->num_candidates);
    if (p->best_ms > 0) fprintf(stderr, ", best %.3g ms", p->best_ms);
    if (p->default_ms > 0) fprintf(stderr, ", default %.3g ms", p->default_ms);
    fprintf(stderr, " (%.1f s)\n", tool_now() - ui->t0);
}

static void clear_bar(tune_ui *ui)
{
    if (ui->bar_shown) fputs("\r\033[K", stderr);
    ui->bar_shown = 0;
}

static const char *result_kind(const clattn_tune_result *r)
{
    return r->from_db ? "db" : r->tuned ? "tuned" : "default";
}

static double speedup(const clattn_tune_result *r)
{
    return r->median_ms > 0 && r->default_ms > 0 ? r->default_ms / r->median_ms : 0;
}

static void print_table(const tool_shape_list *shapes, const shape_outcome *out,
                        const clattn_tune_result *res)
{
    printf("\n%-30s %-8s %-44s %9s %10s %8s %-8s %9s  %s\n", "shape", "unit", "params",
           "median ms", "default ms", "speed-up", "result", "tried/rej", "first rejection");
    for (size_t i = 0; i < shapes->count; i++) {
        char text[160];
        tool_shape_format(&shapes->items[i], text, sizeof text);
        if (out[i].status != OUT_TUNED || out[i].count == 0) {
            printf("%-30s %s%s%s\n", text, k_outcome[out[i].status],
                   out[i].message[0] ? ": " : "", out[i].message);
            continue;
        }
        for (size_t k = 0; k < out[i].count; k++) {
            const clattn_tune_result *r = &res[out[i].first + k];
            char tried[24], sp[16];
            snprintf(tried, sizeof tried, "%d/%d", r->tried, r->rejected);
            if (speedup(r) > 0)
                snprintf(sp, sizeof sp, "%.2fx", speedup(r));
            else
                snprintf(sp, sizeof sp, "-");
            printf("%-30s %-8s %-44s %9.4g %10.4g %8s %-8s %9s  %s\n", k == 0 ? text : "",
                   r->unit, r->params, r->median_ms, r->default_ms, sp, result_kind(r), tried,
                   r->rejected_reason);
        }
        if (out[i].message[0]) printf("%-30s note: %s\n", "", out[i].message);
    }
}

static void print_json(const tool_shape_list *shapes, const shape_outcome *out,
                       const clattn_tune_result *res, const char *device, double budget,
                       double seconds, int disk)
{
    printf("{\n  \"clattn_version\": ");
    tool_json_string(stdout, clattn_version());
    printf(",\n  \"device\": ");
    tool_json_string(stdout, device);
    printf(",\n  \"budget_s\": ");
    tool_json_number(stdout, budget);
    printf(",\n  \"seconds\": %.2f,\n  \"disk_cache\": %s,\n  \"shapes\": [", seconds,
           disk ? "true" : "false");
    for (size_t i = 0; i < shapes->count; i++) {
        char text[160];
        tool_shape_format(&shapes->items[i], text, sizeof text);
        printf("%s\n    {\"shape\": ", i ? "," : "");
        tool_json_string(stdout, text);
        printf(", \"status\": \"%s\", \"message\": ",
               out[i].status == OUT_TUNED     ? "tuned"
               : out[i].status == OUT_BUDGET  ? "skipped"
               : out[i].status == OUT_FAILED  ? "failed"
                                              : "unsupported");
        tool_json_string(stdout, out[i].message);
        printf(", \"seconds\": %.2f, \"results\": [", out[i].seconds);
        for (size_t k = 0; k < out[i].count; k++) {
            const clattn_tune_result *r = &res[out[i].first + k];
            printf("%s\n      {\"unit\": ", k ? "," : "");
            tool_json_string(stdout, r->unit);
            printf(", \"params\": ");
            tool_json_string(stdout, r->params);
            printf(", \"median_ms\": ");
            tool_json_number(stdout, r->median_ms);
            printf(", \"p20_ms\": ");
            tool_json_number(stdout, r->p20_ms);
            printf(", \"p80_ms\": ");
            tool_json_number(stdout, r->p80_ms);
            printf(", \"default_ms\": ");
            tool_json_number(stdout, r->default_ms);
            printf(", \"speedup\": ");
            tool_json_number(stdout, speedup(r) > 0 ? speedup(r) : NAN);
            printf(", \"tuned\": %s, \"from_db\": %s, \"tried\": %d, \"rejected\": %d, "
                   "\"rejected_reason\": ",
                   r->tuned ? "true" : "false", r->from_db ? "true" : "false", r->tried,
                   r->rejected);
            tool_json_string(stdout, r->rejected_reason);
            putchar('}');
        }
        printf("%s]}", out[i].count ? "\n    " : "");
    }
    printf("\n  ]\n}\n");
}

/* Tunes shape i with its share of what is left of the budget. */
static void tune_one(clattn_context *ctx, tune_ui *ui, const tool_shape *s, int retune,
                     clattn_tune_result *res, shape_outcome *o)
{
    clattn_tune_options opts;
    size_t got = 0;
    double t0 = tool_now(), left = ui->budget - (t0 - ui->t0);
    clattn_status st = clattn_supports(ctx, &s->p);
    if (st != CLATTN_OK) {
        o->status = st == CLATTN_ERR_UNSUPPORTED ? OUT_UNSUPPORTED : OUT_FAILED;
        snprintf(o->message, sizeof o->message, "%s: %s", clattn_status_string(st),
                 clattn_last_error(ctx));
        return;
    }
    if (ui->budget > 0 && left < 0.5) {
        o->status = OUT_BUDGET;
        return;
    }
    memset(&opts, 0, sizeof opts);
    opts.budget_seconds = ui->budget > 0 ? left / (double)(ui->num_shapes - ui->shape) : 0;
    opts.retune = retune;
    opts.progress = on_progress;
    opts.progress_user_data = ui;
    if (!ui->tty)
        fprintf(stderr, "tune: [%zu/%zu] %s: started%s", ui->shape + 1, ui->num_shapes,
                ui->shape_text, opts.budget_seconds > 0 ? "" : "\n");
    if (!ui->tty && opts.budget_seconds > 0)
        fprintf(stderr, ", budget %.3g s\n", opts.budget_seconds);
    ui->unit[0] = '\0';
    st = clattn_tune(ctx, &s->p, 1, &opts, res, MAX_UNITS, &got);
    o->count = got;
    o->seconds = tool_now() - t0;
    if (st != CLATTN_OK) {
        o->status = OUT_FAILED;
        snprintf(o->message, sizeof o->message, "%s: %s", clattn_status_string(st),
                 clattn_last_error(ctx));
    } else if (opts.budget_seconds > 0) {
        /* The library compares the paths last: no "path" result means the
         * share ran out first (AUTO then keeps its built-in rule here). */
        int has_path = 0;
        for (size_t k = 0; k < got; k++) has_path |= strcmp(res[k].unit, "path") == 0;
        if (!has_path)
            snprintf(o->message, sizeof o->message,
                     "its budget share (%.3g s) ran out before every unit was tuned and the "
                     "paths compared",
                     opts.budget_seconds);
    }
    clear_bar(ui);
    if (!ui->tty)
        fprintf(stderr, "tune: [%zu/%zu] %s: %s in %.1f s (%zu units)\n", ui->shape + 1,
                ui->num_shapes, ui->shape_text, o->status == OUT_FAILED ? "failed" : "done",
                o->seconds, got);
    if (o->status == OUT_FAILED) fprintf(stderr, "attn-tune: tune: %s\n", o->message);
}

int cmd_tune(int argc, char **argv)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    const char *shapes_arg = "default";
    double budget = 240;
    int retune = 0, json = 0, list_only = 0, rc, failed = 0;
    static tool_shape_list shapes;
    clattn_context *ctx = NULL;
    clattn_tune_result *res;
    shape_outcome *out;
    clattn_stats stats;
    tune_ui ui;
    size_t used = 0;
    char device[600];

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int got;
        if ((got = tool_option_value(argc, argv, &i, "--device", &v)) != 0) {
            if (got < 0 || !tool_parse_device(v, &dev)) return TOOL_EXIT_USAGE;
        } else if ((got = tool_option_value(argc, argv, &i, "--shapes", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            shapes_arg = v;
        } else if ((got = tool_option_value(argc, argv, &i, "--budget", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            if (!tool_parse_seconds(v, 1, &budget)) {
                fprintf(stderr, "attn-tune tune: --budget expects seconds (0 = no limit), "
                                "not '%s'\n", v);
                return TOOL_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--retune") == 0) {
            retune = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--list-shapes") == 0) {
            list_only = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(k_tune_usage, stdout);
            return TOOL_EXIT_OK;
        } else {
            fprintf(stderr, "attn-tune tune: unknown option '%s'\n\n%s", argv[i], k_tune_usage);
            return TOOL_EXIT_USAGE;
        }
    }
    shapes.count = 0;
    if (!tool_shapes_resolve(shapes_arg, 1, &shapes)) return TOOL_EXIT_USAGE;
    if (list_only) return tool_list_shapes(&shapes);
    const char *pinning = tool_pin_pocl_threads();
    rc = tool_open_context(&dev, &ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    res = calloc(shapes.count * MAX_UNITS, sizeof *res);
    out = calloc(shapes.count, sizeof *out);
    if (!res || !out) {
        fprintf(stderr, "attn-tune tune: out of memory\n");
        free(res);
        free(out);
        clattn_context_destroy(ctx);
        return TOOL_EXIT_FAILURE;
    }
    tool_context_device(ctx, device, sizeof device);
    if (clattn_context_stats(ctx, &stats) != CLATTN_OK) memset(&stats, 0, sizeof stats);
    {
        char btext[32] = "unlimited";
        if (budget > 0) snprintf(btext, sizeof btext, "%.0f s", budget);
        fprintf(json ? stderr : stdout, "clattn %s, device %s; %zu shape(s), budget %s\n%s\n",
                clattn_version(), device, shapes.count, btext, pinning);
    }
    if (!stats.disk_cache_enabled)
        fprintf(stderr, "attn-tune tune: the disk cache is off or refused: results apply to "
                        "this process only\n");
    fflush(stdout);

    memset(&ui, 0, sizeof ui);
    ui.tty = isatty(STDERR_FILENO);
    ui.num_shapes = shapes.count;
    ui.t0 = tool_now();
    ui.budget = budget;
    for (size_t i = 0; i < shapes.count; i++) {
        ui.shape = i;
        tool_shape_format(&shapes.items[i], ui.shape_text, sizeof ui.shape_text);
        out[i].first = used;
        tune_one(ctx, &ui, &shapes.items[i], retune, res + used, &out[i]);
        used += out[i].count;
        failed += out[i].status == OUT_FAILED;
    }
    clear_bar(&ui);
    if (json)
        print_json(&shapes, out, res, device, budget, tool_now() - ui.t0,
                   stats.disk_cache_enabled);
    else {
        print_table(&shapes, out, res);
        printf("\n%zu shape(s) in %.1f s; %s\n", shapes.count, tool_now() - ui.t0,
               stats.disk_cache_enabled ? "stored in the user tuning db ('attn-tune show' "
                                          "lists it)"
                                        : "nothing stored (no disk cache)");
    }
    free(res);
    free(out);
    clattn_context_destroy(ctx);
    return failed ? TOOL_EXIT_FAILURE : TOOL_EXIT_OK;
}
