/* attn-tune show, export, import and clear: the tuning db and the disk cache
 * through clattn's public API. */
#define _POSIX_C_SOURCE 200809L
#include "attn_tune.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char k_show_usage[] =
    "usage: attn-tune show [--device P:D] [--json]\n"
    "\n"
    "Lists every tuning entry that applies to the device: the user db (written by\n"
    "'attn-tune tune' under the cache root), entries of the same device model\n"
    "tuned with another driver or library version (stale: they serve until the\n"
    "next tune), and the system-wide file installed with clattn (layer 'system').\n"
    "Each entry: the tuned unit (fused, splitkv, qk, softmax, av, or path = the\n"
    "path AUTO takes), storage type, head dims, causal (br = bottom-right,\n"
    "tl = top-left), window, mask, GQA group, the power-of-two buckets of seq_q\n"
    "and seq_kv it was measured at, the K/V storage ('-' for the storage type\n"
    "itself, contiguous; else the format with /gN channels per scale, /f16s fp16\n"
    "scales, /head per-head fp8 scales, K's and V's apart when they differ, and\n"
    "paged), the parameters, and the median time of the choice and of the\n"
    "default configuration with the speed-up. Entries apply only to problems of\n"
    "their own K/V storage.\n"
    "\n"
    "Options:\n"
    "  --device P:D  the device (see 'attn-tune devices')\n"
    "  --json        one JSON document on stdout\n"
    "  -h, --help    this text\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

static const char k_export_usage[] =
    "usage: attn-tune export FILE [--device P:D]\n"
    "\n"
    "Writes the device's user tuning db to FILE (a text file), to be imported on\n"
    "another machine with the same device model ('attn-tune import FILE').\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

static const char k_import_usage[] =
    "usage: attn-tune import FILE [--device P:D]\n"
    "\n"
    "Merges a tuning db written by 'attn-tune export' on a machine with the same\n"
    "device model into the device's user db; imported entries replace entries\n"
    "with the same key. A file of another device model, or with a line that does\n"
    "not parse, is refused whole.\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

static const char k_clear_usage[] =
    "usage: attn-tune clear\n"
    "\n"
    "Empties the on-disk cache under the default cache root ($CLATTN_CACHE_DIR,\n"
    "else $XDG_CACHE_HOME/clattn, else ~/.cache/clattn): the program binaries and\n"
    "the tuning dbs of every device. Other files there are left alone.\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

/* The common options: --device, --json (when json is not NULL), -h, and one
 * positional FILE (when file is not NULL). Returns -1 to go on, else an exit
 * code. */
static int parse_common(int argc, char **argv, const char *usage, tool_device *dev, int *json,
                        const char **file)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int got = tool_option_value(argc, argv, &i, "--device", &v);
        if (got != 0) {
            if (got < 0 || !tool_parse_device(v, dev)) return TOOL_EXIT_USAGE;
        } else if (json && strcmp(argv[i], "--json") == 0) {
            *json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return TOOL_EXIT_OK;
        } else if (file && !*file && argv[i][0] != '-' && argv[i][0]) {
            *file = argv[i];
        } else {
            fprintf(stderr, "attn-tune %s: unexpected argument '%s'\n\n%s", argv[0], argv[i],
                    usage);
            return TOOL_EXIT_USAGE;
        }
    }
    if (file && !*file) {
        fprintf(stderr, "attn-tune %s: a FILE is needed\n\n%s", argv[0], usage);
        return TOOL_EXIT_USAGE;
    }
    return -1;
}

static const char *causal_name(int causal)
{
    return causal == CLATTN_CAUSAL_BOTTOM_RIGHT ? "br"
           : causal == CLATTN_CAUSAL_TOP_LEFT  ? "tl"
           : causal == 0                       ? "-"
                                               : "?";
}

/* The K/V storage the library appends to an entry's params (" kv=DESC",
 * clattn.h) apart from the parameters: kv gets DESC ("" for plain entries),
 * rest the parameters. */
static void split_kv(const char *params, char *rest, size_t rest_size, char *kv, size_t kv_size)
{
    const char *at = strncmp(params, "kv=", 3) == 0 ? params : strstr(params, " kv=");
    size_t n = at ? (size_t)(at - params) : strlen(params);
    snprintf(rest, rest_size, "%.*s", (int)n, params);
    snprintf(kv, kv_size, "%s", at ? strchr(at, '=') + 1 : "");
}

static void print_entry_json(const clattn_tuning_entry *e, int first)
{
    char params[160], kv[160];
    split_kv(e->params, params, sizeof params, kv, sizeof kv);
    printf("%s\n    {\"unit\": ", first ? "" : ",");
    tool_json_string(stdout, e->unit);
    printf(", \"dtype\": \"%s\", \"head_dim\": %d, \"head_dim_v\": %d, \"causal\": %d, "
           "\"windowed\": %d, \"has_mask\": %d, \"group\": %d, \"seq_q_bucket\": %d, "
           "\"seq_kv_bucket\": %d, \"kv\": ",
           tool_dtype_name(e->dtype), e->head_dim, e->head_dim_v, e->causal, e->windowed,
           e->has_mask, e->group, e->seq_q_bucket, e->seq_kv_bucket);
    tool_json_string(stdout, kv);
    printf(", \"params\": ");
    tool_json_string(stdout, params);
    printf(", \"median_ms\": ");
    tool_json_number(stdout, e->median_ms);
    printf(", \"p20_ms\": ");
    tool_json_number(stdout, e->p20_ms);
    printf(", \"p80_ms\": ");
    tool_json_number(stdout, e->p80_ms);
    printf(", \"default_ms\": ");
    tool_json_number(stdout, e->default_ms);
    printf(", \"speedup\": ");
    tool_json_number(stdout,
                     e->median_ms > 0 && e->default_ms > 0 ? e->default_ms / e->median_ms : NAN);
    printf(", \"stale\": %s, \"layer\": \"%s\"}", e->stale ? "true" : "false",
           e->layer ? "system" : "user");
}

/* "PATH=1" as "PATH=1 (fused)": the path entry names a clattn_path. */
static void readable_params(const clattn_tuning_entry *e, const char *params, char *buf,
                            size_t size)
{
    int path;
    if (strcmp(e->unit, "path") == 0 && sscanf(params, "PATH=%d", &path) == 1 &&
        path >= CLATTN_PATH_FUSED && path <= CLATTN_PATH_SPLIT_KV)
        snprintf(buf, size, "%s (%s)", params, tool_path_name((clattn_path)path));
    else
        snprintf(buf, size, "%s", params);
}

static void print_entry_text(const clattn_tuning_entry *e)
{
    char dims[24], speed[16], flags[32] = "", params[200], rest[160], kv[160];
    split_kv(e->params, rest, sizeof rest, kv, sizeof kv);
    snprintf(dims, sizeof dims, "%d/%d", e->head_dim, e->head_dim_v);
    if (e->median_ms > 0 && e->default_ms > 0)
        snprintf(speed, sizeof speed, "%.2fx", e->default_ms / e->median_ms);
    else
        snprintf(speed, sizeof speed, "-");
    if (e->stale) strcat(flags, "stale ");
    strcat(flags, e->layer ? "system" : "user");
    readable_params(e, rest, params, sizeof params);
    printf("%-8s %-4s %-7s %-6s %-6s %-4s %5d %7d %7d  %-14s %-44s %9.4g %10.4g %8s  %s\n",
           e->unit, tool_dtype_name(e->dtype), dims, causal_name(e->causal),
           e->windowed ? "yes" : "-", e->has_mask ? "yes" : "-", e->group, e->seq_q_bucket,
           e->seq_kv_bucket, kv[0] ? kv : "-", params, e->median_ms, e->default_ms, speed,
           flags);
}

int cmd_show(int argc, char **argv)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    clattn_context *ctx = NULL;
    clattn_stats stats;
    size_t count = 0, stale = 0, system = 0;
    int json = 0, rc = parse_common(argc, argv, k_show_usage, &dev, &json, NULL);
    char device[600], root[4096];
    clattn_status st;
    if (rc >= 0) return rc;
    rc = tool_open_context(&dev, &ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    st = clattn_tuning_count(ctx, &count);
    if (st != CLATTN_OK) {
        tool_print_error(ctx, st, "clattn_tuning_count");
        clattn_context_destroy(ctx);
        return TOOL_EXIT_FAILURE;
    }
    tool_context_device(ctx, device, sizeof device);
    if (clattn_context_stats(ctx, &stats) != CLATTN_OK) memset(&stats, 0, sizeof stats);
    if (tool_cache_root(root, sizeof root) != 1) snprintf(root, sizeof root, "(none)");
    if (json) {
        printf("{\n  \"clattn_version\": ");
        tool_json_string(stdout, clattn_version());
        printf(",\n  \"device\": ");
        tool_json_string(stdout, device);
        printf(",\n  \"cache_root\": ");
        tool_json_string(stdout, root);
        printf(",\n  \"disk_cache\": %s,\n  \"entries\": [",
               stats.disk_cache_enabled ? "true" : "false");
    } else {
        printf("clattn %s, device %s\ncache root %s%s\n\n", clattn_version(), device, root,
               stats.disk_cache_enabled ? "" : " (disk cache off or refused: no user db)");
        printf("%-8s %-4s %-7s %-6s %-6s %-4s %5s %7s %7s  %-14s %-44s %9s %10s %8s  %s\n",
               "unit", "type", "D/Dv", "causal", "window", "mask", "group", "Sq", "Skv", "kv",
               "params", "median ms", "default ms", "speed-up", "layer");
    }
    for (size_t i = 0; i < count; i++) {
        clattn_tuning_entry e;
        st = clattn_tuning_get(ctx, i, &e);
        if (st != CLATTN_OK) {
            if (json) printf("\n  ]\n}\n");
            tool_print_error(ctx, st, "clattn_tuning_get");
            clattn_context_destroy(ctx);
            return TOOL_EXIT_FAILURE;
        }
        stale += e.stale != 0;
        system += e.layer != 0;
        if (json)
            print_entry_json(&e, i == 0);
        else
            print_entry_text(&e);
    }
    if (json)
        printf("%s],\n  \"count\": %zu,\n  \"stale\": %zu,\n  \"system\": %zu\n}\n",
               count ? "\n  " : "", count, stale, system);
    else if (count == 0)
        printf("(no tuning entries for this device: 'attn-tune tune' makes some)\n");
    else
        printf("\n%zu entr%s (%zu stale, %zu system-wide)\n", count, count == 1 ? "y" : "ies",
               stale, system);
    clattn_context_destroy(ctx);
    return TOOL_EXIT_OK;
}

int cmd_export(int argc, char **argv)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    clattn_context *ctx = NULL;
    const char *file = NULL;
    int rc = parse_common(argc, argv, k_export_usage, &dev, NULL, &file);
    char device[600];
    clattn_status st;
    if (rc >= 0) return rc;
    rc = tool_open_context(&dev, &ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    st = clattn_tuning_export(ctx, file);
    if (st != CLATTN_OK) {
        tool_print_error(ctx, st, "export");
        clattn_context_destroy(ctx);
        return TOOL_EXIT_FAILURE;
    }
    tool_context_device(ctx, device, sizeof device);
    printf("exported the user tuning db of %s to %s\n", device, file);
    clattn_context_destroy(ctx);
    return TOOL_EXIT_OK;
}

int cmd_import(int argc, char **argv)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    clattn_context *ctx = NULL;
    const char *file = NULL;
    size_t before = 0, after = 0;
    int rc = parse_common(argc, argv, k_import_usage, &dev, NULL, &file);
    clattn_stats stats;
    clattn_status st;
    if (rc >= 0) return rc;
    rc = tool_open_context(&dev, &ctx);
    if (rc != TOOL_EXIT_OK) return rc;
    clattn_tuning_count(ctx, &before);
    st = clattn_tuning_import(ctx, file);
    if (st != CLATTN_OK) {
        tool_print_error(ctx, st, "import");
        clattn_context_destroy(ctx);
        return TOOL_EXIT_FAILURE;
    }
    clattn_tuning_count(ctx, &after);
    if (clattn_context_stats(ctx, &stats) != CLATTN_OK) memset(&stats, 0, sizeof stats);
    printf("imported %s: %zu tuning entr%s now apply (%zu before)\n", file, after,
           after == 1 ? "y" : "ies", before);
    if (!stats.disk_cache_enabled)
        printf("note: the disk cache is off or refused, so nothing was stored\n");
    clattn_context_destroy(ctx);
    return TOOL_EXIT_OK;
}

/* Files in dir whose names end in suffix (0 when dir is missing). */
static int count_files(const char *root, const char *sub, const char *suffix)
{
    char dir[4200];
    DIR *d;
    struct dirent *de;
    int n = 0;
    size_t sl = strlen(suffix);
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    if (!(d = opendir(dir))) return 0;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        n += nl > sl && strcmp(de->d_name + nl - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

int cmd_clear(int argc, char **argv)
{
    char root[4096];
    int bins, dbs, rc;
    clattn_options opts;
    clattn_status st;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(k_clear_usage, stdout);
            return TOOL_EXIT_OK;
        }
        fprintf(stderr, "attn-tune clear: unexpected argument '%s'\n\n%s", argv[i],
                k_clear_usage);
        return TOOL_EXIT_USAGE;
    }
    rc = tool_cache_root(root, sizeof root);
    if (rc == 0) {
        printf("the disk cache is off (CLATTN_CACHE_DIR=off): nothing to clear\n");
        return TOOL_EXIT_OK;
    }
    if (rc < 0) {
        fprintf(stderr, "attn-tune clear: no cache directory: set CLATTN_CACHE_DIR, "
                        "XDG_CACHE_HOME or HOME\n");
        return TOOL_EXIT_FAILURE;
    }
    {
        /* clattn refuses to use a cache root that is a symlink; do not empty
         * whatever it points at either. */
        struct stat sb;
        if (lstat(root, &sb) == 0 && S_ISLNK(sb.st_mode)) {
            fprintf(stderr, "attn-tune clear: the cache root %s is a symbolic link, which "
                            "clattn does not use; not clearing what it points to\n", root);
            return TOOL_EXIT_FAILURE;
        }
    }
    bins = count_files(root, "programs", ".bin");
    dbs = count_files(root, "tuning", ".db");
    clattn_options_init(&opts);
    opts.log = tool_log;
    st = clattn_cache_clear(&opts);
    if (st != CLATTN_OK) {
        fprintf(stderr, "attn-tune clear: %s: %s\n", root, clattn_status_string(st));
        return TOOL_EXIT_FAILURE;
    }
    bins -= count_files(root, "programs", ".bin");
    dbs -= count_files(root, "tuning", ".db");
    printf("cleared %s: removed %d program binar%s and %d tuning db%s\n", root, bins,
           bins == 1 ? "y" : "ies", dbs, dbs == 1 ? "" : "s");
    return TOOL_EXIT_OK;
}
