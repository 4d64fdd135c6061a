/* attn-tune over the cache (argv[2] is the attn-tune executable):
 *   cli_tune: tune --shapes quick --budget 30, then show lists the entries;
 *     export, clear (empties), import round trip; tune --json; a K/V cache
 *     shape (kv=int8 page=16) tuned and shown with its storage; bench (text,
 *     --json, --quick: peaks, baselines, per-peak columns);
 *   cli_shape_errors: a bad shape file line exits 2 naming file:line; valid
 *     files (comments, CRLF, tabs, K/V storage) parse to the canonical shapes;
 *     bench refuses K/V storage shapes. */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct run_out {
    int rc;
    char *out, *err;
} run_out;

static const char *g_exe;
static char g_env[PATH_MAX + 32];
static char g_out[PATH_MAX + 16], g_err[PATH_MAX + 16];

/* Runs attn-tune with args (NULL-ended) and CLATTN_CACHE_DIR = the test's. */
static run_out tool(const char *const *args)
{
    const char *env[] = {g_env, NULL};
    run_out r;
    size_t len;
    r.rc = ct_wait(ct_spawn(g_exe, args, env, g_out, g_err));
    r.out = (char *)ct_read(g_out, &len);
    r.err = (char *)ct_read(g_err, &len);
    if (!r.out) r.out = calloc(1, 1);
    if (!r.err) r.err = calloc(1, 1);
    return r;
}

static void run_free(run_out *r)
{
    free(r->out);
    free(r->err);
}

/* The entry count of 'attn-tune show' output: its summary line "N entries
 * (...)" or "1 entry (...)"; 0 when it says there are none; -1 if neither. */
static int show_count(const char *text)
{
    const char *s = text;
    if (strstr(text, "no tuning entries")) return 0;
    while ((s = strchr(s, '\n')) != NULL) {
        int n;
        char word[16];
        s++;
        if (sscanf(s, "%d %15s (", &n, word) == 2 &&
            (strcmp(word, "entries") == 0 || strcmp(word, "entry") == 0))
            return n;
    }
    return -1;
}

/* Entry lines of the table (between the header line and the summary). */
static int table_rows(const char *text)
{
    const char *s = strstr(text, "\nunit ");
    int n = 0;
    if (!s) return -1;
    s = strchr(s + 1, '\n');
    while (s && s[1] && s[1] != '\n') {
        n++;
        s = strchr(s + 1, '\n');
    }
    return n;
}

static void setup(const char *name, int argc, char **argv, char *root, size_t size)
{
    g_exe = argc > 2 ? argv[2] : "attn-tune";
    ct_fresh_dir(name, root, size);
    snprintf(g_env, sizeof g_env, "CLATTN_CACHE_DIR=%s", root);
    snprintf(g_out, sizeof g_out, "%s.stdout", root);
    snprintf(g_err, sizeof g_err, "%s.stderr", root);
}

static void teardown(const char *root)
{
    remove(g_out);
    remove(g_err);
    ct_remove_tree(root);
}

/* tune, then show (text and JSON) agree on the entries; returns how many. */
static int cli_tune_and_show(void)
{
    run_out r;
    int entries;
    {
        const char *args[] = {"tune", "--shapes", "quick", "--budget", "30", NULL};
        double t0 = ct_now();
        r = tool(args);
        NOTE("attn-tune tune --shapes quick --budget 30: exit %d in %.1f s", r.rc,
             ct_now() - t0);
        NOTE("%s", r.out);
        CHECK(r.rc == 0, "tune failed:\n%s", r.err);
        CHECK(strstr(r.out, "fused") && strstr(r.out, "shape(s) in"), "no results table");
        CHECK(strstr(r.err, "tune: [1/2]") != NULL, "no progress lines on stderr:\n%s", r.err);
        run_free(&r);
    }
    {
        const char *args[] = {"show", NULL};
        r = tool(args);
        entries = show_count(r.out);
        NOTE("%s", r.out);
        /* One entry at least: the budget ends the tune, and how many units
         * (and whether the second shape) fit in it depends on the machine. */
        CHECK(r.rc == 0 && entries >= 1 && table_rows(r.out) == entries,
              "show: exit %d, %d entries, %d rows:\n%s%s", r.rc, entries, table_rows(r.out),
              r.out, r.err);
        run_free(&r);
    }
    {
        const char *args[] = {"show", "--json", NULL};
        char want[64];
        r = tool(args);
        snprintf(want, sizeof want, "\"count\": %d,", entries);
        CHECK(r.rc == 0 && r.out[0] == '{' && strstr(r.out, want),
              "show --json: exit %d, no '%s':\n%s", r.rc, want, r.out);
        run_free(&r);
    }
    return entries;
}

/* export, clear (which names the cache and empties it), import brings the
 * entries back; import and export refuse what they cannot do. */
static void cli_export_clear_import(const char *root, const char *file, int entries)
{
    char sub[PATH_MAX + 16], *names[64];
    run_out r;
    int n;
    {
        const char *args[] = {"export", file, NULL};
        size_t len = 0;
        unsigned char *text;
        r = tool(args);
        text = ct_read(file, &len);
        CHECK(r.rc == 0 && text && len > 0, "export: exit %d:\n%s", r.rc, r.err);
        free(text);
        run_free(&r);
    }
    {
        const char *args[] = {"clear", NULL};
        r = tool(args);
        NOTE("attn-tune clear: %s", r.out);
        CHECK(r.rc == 0 && strstr(r.out, root), "clear: exit %d, does not name %s:\n%s%s",
              r.rc, root, r.out, r.err);
        run_free(&r);
        snprintf(sub, sizeof sub, "%s/programs", root);
        n = ct_list(sub, ".bin", names, 64);
        CHECK(n == 0, "%d program binaries left after clear", n);
        ct_free_list(names, n);
        snprintf(sub, sizeof sub, "%s/tuning", root);
        n = ct_list(sub, ".db", names, 64);
        CHECK(n == 0, "%d tuning dbs left after clear", n);
        ct_free_list(names, n);
    }
    {
        const char *args[] = {"show", NULL};
        r = tool(args);
        n = show_count(r.out);
        CHECK(r.rc == 0 && n == 0, "show after clear: exit %d, %d entries:\n%s", r.rc, n,
              r.out);
        run_free(&r);
    }
    {
        const char *args[] = {"import", file, NULL};
        const char *show[] = {"show", NULL};
        r = tool(args);
        CHECK(r.rc == 0, "import: exit %d:\n%s", r.rc, r.err);
        run_free(&r);
        r = tool(show);
        n = show_count(r.out);
        CHECK(r.rc == 0 && n == entries, "show after import: %d entries, %d exported", n,
              entries);
        run_free(&r);
    }
    {
        const char *missing[] = {"import", "/nonexistent/clattn-export.db", NULL};
        const char *nofile[] = {"export", NULL};
        r = tool(missing);
        CHECK(r.rc == 1, "import of a missing file: exit %d, expected 1", r.rc);
        run_free(&r);
        r = tool(nofile);
        CHECK(r.rc == 2, "export without FILE: exit %d, expected 2", r.rc);
        run_free(&r);
    }
}

/* tune --json, and a K/V cache shape tuned and listed with its storage. */
static void cli_tune_forms(void)
{
    run_out r;
    {
        const char *args[] = {"tune", "--json", "--shapes", "B1 H2 S16 D16", "--budget", "2",
                              NULL};
        r = tool(args);
        CHECK(r.rc == 0 && r.out[0] == '{' && strstr(r.out, "\"shapes\": [") &&
                  strstr(r.out, "\"unit\": \"fused\""),
              "tune --json: exit %d:\n%s", r.rc, r.out);
        run_free(&r);
    }
    {
        /* A K/V cache shape: tuned and listed with its storage. */
        const char *args[] = {"tune", "--shapes", "B1 H2 Hkv1 Sq1 Skv64 D32 kv=int8 page=16",
                              "--budget", "2", NULL};
        const char *show[] = {"show", NULL};
        const char *show_json[] = {"show", "--json", NULL};
        r = tool(args);
        CHECK(r.rc == 0 && strstr(r.out, "D32 kv=int8 page=16"), "tune of a kv= shape: exit "
              "%d:\n%s%s", r.rc, r.out, r.err);
        run_free(&r);
        r = tool(show);
        CHECK(r.rc == 0 && strstr(r.out, " kv ") && strstr(r.out, " int8,paged "),
              "show: no kv column or no int8,paged entry:\n%s", r.out);
        run_free(&r);
        r = tool(show_json);
        CHECK(r.rc == 0 && strstr(r.out, "\"kv\": \"int8,paged\", \"params\": \"") &&
                  strstr(r.out, "\"kv\": \"\", \"params\": \""),
              "show --json: no kv fields:\n%s", r.out);
        run_free(&r);
    }
}

/* bench as text (peaks, baselines, first call) and as JSON. */
static void cli_bench(void)
{
    run_out r;
    {
        const char *args[] = {"bench", "--shapes", "B1 H2 S16 D16,B1 H2 Sq1 Skv64 D16",
                              "--repeat", "2", "--first-call-runs", "1", NULL};
        r = tool(args);
        NOTE("%s", r.out);
        CHECK(r.rc == 0 && strstr(r.out, "untuned") && strstr(r.out, "SPLIT_KV") &&
                  strstr(r.out, "cold / clattn-warm"),
              "bench: exit %d:\n%s%s", r.rc, r.out, r.err);
        /* The peaks, the %-of-peak columns (GB/s for the decode shape only),
         * both baselines and AUTO's speed-up over them. */
        CHECK(strstr(r.out, "host sgemm: ") && strstr(r.out, "device read bandwidth: ") &&
                  strstr(r.out, "%sgemm") && strstr(r.out, "GB/s") &&
                  strstr(r.out, "%read") && strstr(r.out, "\n  naive ") &&
                  strstr(r.out, "\n  clblast-3stage ") && strstr(r.out, "AUTO speed-up:") &&
                  strstr(r.out, "memory-bound"),
              "bench: missing columns:\n%s", r.out);
        CHECK(!strstr(r.out, "read bandwidth: n/a"), "bench: no read bandwidth:\n%s", r.out);
        run_free(&r);
    }
    {
        /* The JSON document: a given sgemm rate is labelled so, the naive
         * baseline ran and matched AUTO's output, the goal list is there. */
        const char *args[] = {"bench", "--json", "--shapes", "B1 H4 Hkv2 S24 D16 causal",
                              "--repeat", "2", "--no-first-call", "--sgemm-gflops", "100",
                              NULL};
        const char *naive, *check;
        r = tool(args);
        naive = strstr(r.out, "{\"variant\": \"naive\", \"status\": \"ok\"");
        check = naive ? strstr(naive, "\"check_rel_l2\": ") : NULL;
        CHECK(r.rc == 0 && r.out[0] == '{' && strstr(r.out, "\"host_sgemm\": {\"gflops\": 100") &&
                  strstr(r.out, "\"source\": \"given\"") &&
                  strstr(r.out, "\"device_read\": {\"gbps\": ") &&
                  strstr(r.out, "\"memory_bound\": ") && strstr(r.out, "\"auto_speedup\": ") &&
                  strstr(r.out, "\"sgemm_fraction\": ") &&
                  strstr(r.out, "\"read_fraction\": ") && strstr(r.out, "\"gbps\": ") &&
                  strstr(r.out, "{\"variant\": \"clblast-3stage\"") &&
                  strstr(r.out, "\"goals\": [") && strstr(r.out, "\"first_call\": null"),
              "bench --json: exit %d:\n%s%s", r.rc, r.out, r.err);
        CHECK(check && check[16] != 'n', "bench --json: naive not run or not checked:\n%s",
              r.out);
        CHECK(!strstr(r.out, "\"device_read\": {\"gbps\": null"),
              "bench --json: no read bandwidth:\n%s", r.out);
        run_free(&r);
    }
}

/* bench --quick, and the first-call measurement alone. */
static void cli_bench_quick_and_first_call(void)
{
    run_out r;
    {
        const char *args[] = {"bench", "--quick", "--shapes", "B1 H2 S16 D16",
                              "--sgemm-gflops", "50", NULL};
        r = tool(args);
        CHECK(r.rc == 0 && strstr(r.out, "skipped (--no-baselines)") &&
                  strstr(r.out, "(given with --sgemm-gflops, not measured)") &&
                  !strstr(r.out, "cold / clattn-warm"),
              "bench --quick: exit %d:\n%s%s", r.rc, r.out, r.err);
        run_free(&r);
    }
    {
        /* The first-call measurement alone: the process with clattn's
         * binaries and an empty PoCL cache builds nothing. */
        const char *args[] = {"bench", "--first-call-only", "--first-call-runs", "1", "--json",
                              "--shapes", "B1 H2 S16 D16", NULL};
        r = tool(args);
        CHECK(r.rc == 0 && r.out[0] == '{' && strstr(r.out, "\"ok\": true") &&
                  strstr(r.out, "\"clattn_warm\": {") &&
                  strstr(r.out, "\"cold_over_clattn_warm\": ") &&
                  !strstr(r.out, "\"shapes\": ["),
              "bench --first-call-only --json: exit %d:\n%s%s", r.rc, r.out, r.err);
        {
            const char *w = strstr(r.out, "\"clattn_warm\": {");
            CHECK(w && strstr(w, "\"built\": 0, \"loaded\": ") && !strstr(w, "\"loaded\": 0,"),
                  "bench --first-call-only: the clattn-warm process built programs:\n%s",
                  r.out);
        }
        run_free(&r);
    }
}

int test_cli_tune(int argc, char **argv)
{
    char root[PATH_MAX], file[PATH_MAX + 16];
    setup("cli_tune", argc, argv, root, sizeof root);
    snprintf(file, sizeof file, "%s.export", root);
    const int entries = cli_tune_and_show();
    cli_export_clear_import(root, file, entries);
    cli_tune_forms();
    cli_bench();
    cli_bench_quick_and_first_call();
    remove(file);
    teardown(root);
    return ct_failures ? 1 : 0;
}

typedef struct bad_file {
    const char *text;
    size_t len; /* 0 = strlen */
    int line;   /* expected in the message; 0 = no line */
    const char *says;
} bad_file;

int test_cli_shape_errors(int argc, char **argv)
{
    char root[PATH_MAX], path[PATH_MAX + 16], want[PATH_MAX + 64], longline[2100];
    static const char nul[] = "H8 S64 D64\nH8 S64\0 D64\n";
    run_out r;
    setup("cli_shape_errors", argc, argv, root, sizeof root);
    memset(longline, 'B', sizeof longline - 2);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = '\0';
    {
        const bad_file cases[] = {
            {"B1 H8 S64 D64\n# a comment\nB1 H8 S64 D64 foo\n", 0, 3, "unknown token"},
            {"H8 S64\n", 0, 1, "missing D"},
            {"B1 H6 Hkv4 S64 D64\n", 0, 1, "not a multiple"},
            {"B1 B2 H8 S64 D64\n", 0, 1, "given twice"},
            {"H8 S64 D64 dtype=f64\n", 0, 1, "dtype must be"},
            {"H8 S64 D64 window=3\n", 0, 1, "window expects"},
            {"H8 S64 D64 window=1,x\n", 0, 1, "window expects"},
            {"\n\nH8 S99999999999 D64\n", 0, 3, "whole number"},
            {"H8 S64 D0\n", 0, 1, "from 1 to 256"},
            {"H8 S64 D300\n", 0, 1, "from 1 to 256"},
            {"H8 S64 D64 B-1\n", 0, 1, "whole number"},
            {"H8 S64 D+4\n", 0, 1, "D expects a whole number"},
            {"H8 S64 D64 Hkv\n", 0, 1, "unknown token"},
            {"H8 S64 Sq2 D64\n", 0, 1, "S sets both"},
            {"H8 Sq64 D64\n", 0, 1, "missing sequence"},
            {"H8 S64 D64 causal causal_tl\n", 0, 1, "causal given twice"},
            {"H8 S64 D64 =5\n", 0, 1, "unknown setting"},
            {"\xff\xfe H8\n", 0, 1, "\\xff\\xfe"},
            {"B4096 H4096 S1048576 D256\n", 0, 1, "too large"},
            {"H8 S64 D64 kv=int9\n", 0, 1, "K/V storage must be"},
            {"H8 S64 D64 kv=int8 k=int4\n", 0, 1, "format given twice"},
            {"H8 S64 D64 kv=int8 group=48\n", 0, 1, "group (channels per scale)"},
            {"H8 S64 D64 group=32\n", 0, 1, "group= is for int8"},
            {"H8 S64 D128 Dv32 kv=int8 group=64\n", 0, 1, "does not divide Dv32"},
            {"H8 S64 D64 kv=q8_0 scales=f16\n", 0, 1, "scales= is for"},
            {"H8 S64 D64 kv=int8 per_head\n", 0, 1, "per_head is for fp8"},
            {"H8 S64 D48 kv=q4_0\n", 0, 1, "multiple of 32"},
            {"H8 S64 D63 Dv64 k=int4\n", 0, 1, "even D"},
            {"H8 S64 D64 page=12\n", 0, 1, "power of two"},
            {"H8 S64 D64 page=16 page=16\n", 0, 1, "page given twice"},
            {nul, sizeof nul - 1, 2, "NUL byte"},
            {longline, 0, 1, "longer than"},
            {"\n# only a comment\n\n", 0, 0, "no shapes"},
            {"", 0, 0, "no shapes"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const bad_file *c = &cases[i];
            const char *args[] = {i % 2 ? "bench" : "tune", "--shapes", path, NULL};
            snprintf(path, sizeof path, "%s/bad%zu.shapes", root, i);
            ct_write(path, c->text, c->len ? c->len : strlen(c->text));
            if (c->line)
                snprintf(want, sizeof want, "%s:%d: ", path, c->line);
            else
                snprintf(want, sizeof want, "%s: ", path);
            r = tool(args);
            CHECK(r.rc == 2 && strstr(r.err, want) && strstr(r.err, c->says),
                  "case %zu: exit %d (expected 2), stderr lacks '%s' or '%s':\n%s", i, r.rc,
                  want, c->says, r.err);
            if (i < 3) NOTE("  %s", r.err);
            run_free(&r);
        }
    }
    {
        const char *inline_bad[] = {"tune", "--shapes", "B1 H8 S64 D64 frob", NULL};
        const char *missing[] = {"bench", "--shapes", "no-such-file.shapes", NULL};
        r = tool(inline_bad);
        CHECK(r.rc == 2 && strstr(r.err, "frob"), "inline shape: exit %d:\n%s", r.rc, r.err);
        run_free(&r);
        r = tool(missing);
        CHECK(r.rc == 2 && strstr(r.err, "no-such-file.shapes"), "missing file: exit %d:\n%s",
              r.rc, r.err);
        run_free(&r);
    }
    {
        static const char good[] =
            "# shapes\r\n"
            "B1 H8 Hkv2 Sq512 Skv512 D64 Dv64 causal dtype=f16   # trailing comment\r\n"
            "\tH4 S100 D128 causal_tl\n"
            "b2 h8 sq1 skv4096 d64 window=128,-1 dtype=BF16\n"
            "h4 s64 d64 page=16 KV=Int8 group=32 scales=F16\n"
            "H2 Hkv1 Sq1 Skv100 D32 per_head v=q8_0 k=e4m3\n"
            "   \n"
            "H1 Sq3 Skv5 D7 Dv9 window=-1,0 causal";
        static const char expect[] = "B1 H8 Hkv2 S512 D64 causal dtype=f16\n"
                                     "B1 H4 S100 D128 causal_tl\n"
                                     "B2 H8 Sq1 Skv4096 D64 window=128,-1 dtype=bf16\n"
                                     "B1 H4 S64 D64 kv=int8 group=32 scales=f16 page=16\n"
                                     "B1 H2 Hkv1 Sq1 Skv100 D32 k=fp8_e4m3 v=q8_0 per_head\n"
                                     "B1 H1 Sq3 Skv5 D7 Dv9 causal window=-1,0\n";
        const char *args[] = {"tune", "--shapes", path, "--list-shapes", NULL};
        snprintf(path, sizeof path, "%s/good.shapes", root);
        ct_write(path, good, strlen(good));
        r = tool(args);
        CHECK(r.rc == 0 && strcmp(r.out, expect) == 0, "good file: exit %d, got:\n%s%s", r.rc,
              r.out, r.err);
        run_free(&r);
    }
    {
        /* bench measures plain K/V only */
        const char *args[] = {"bench", "--shapes", "B1 H2 S16 D16 kv=int8", NULL};
        r = tool(args);
        CHECK(r.rc == 2 && strstr(r.err, "attn-kv-bench"), "bench of a kv= shape: exit %d:\n%s",
              r.rc, r.err);
        run_free(&r);
    }
    {
        const char *args[] = {"bench", "--shapes", "P1,d1, B2 H4 S8 D8", "--list-shapes", NULL};
        r = tool(args);
        CHECK(r.rc == 0 && strcmp(r.out, "P1 B1 H8 S1024 D64\nD1 B4 H32 Hkv8 Sq1 Skv4096 D128\n"
                                         "B2 H4 S8 D8\n") == 0,
              "named shapes: exit %d, got:\n%s%s", r.rc, r.out, r.err);
        run_free(&r);
    }
    teardown(root);
    return ct_failures ? 1 : 0;
}
