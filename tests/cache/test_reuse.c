/* What the disk cache is for, across processes:
 *   tuned_new_process: a winner clattn_tune stores is listed and used by a
 *     context in a new process (and its kernels carry the tuned values);
 *   binary_reuse: a second process loads the program binaries the first
 *     stored instead of compiling, and its first call is faster. */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int test_tuned_new_process(int argc, char **argv)
{
    char root[PATH_MAX], copy[PATH_MAX], dir[PATH_MAX + 16], *dbs[4];
    clattn_problem p = ct_shape_prefill();
    clattn_tune_options o;
    clattn_tune_result r[8];
    size_t nr = 0, count = 0, fused = 8;
    ct_log log;
    clattn_context *ctx;
    clattn_status st;
    int ndb;
    (void)argc;
    (void)argv;
    ct_fresh_dir("tuned_new_process", root, sizeof root);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 4;
    st = clattn_tune(ctx, &p, 1, &o, r, 8, &nr);
    CHECK(st == CLATTN_OK, "clattn_tune: %s: %s", clattn_status_string(st),
          clattn_last_error(ctx));
    CHECK(nr >= 1, "clattn_tune gave no result");
    for (size_t i = 0; i < nr; i++) {
        NOTE("tuned %s: %s (%.4f ms, default %.4f ms, %s, %d tried)", r[i].unit, r[i].params,
             r[i].median_ms, r[i].default_ms, r[i].tuned ? "winner stored" : "default kept",
             r[i].tried);
        if (strcmp(r[i].unit, "fused") == 0 && fused == 8) fused = i;
    }
    CHECK(clattn_tuning_count(ctx, &count) == CLATTN_OK && count >= 1,
          "the tuning context lists %zu entries", count);
    CHECK(log.warnings == 0, "warnings while tuning:\n%s", log.text);
    clattn_context_destroy(ctx);
    if (fused == 8) {
        CHECK(0, "no result for the fused unit");
        ct_remove_tree(root);
        return 1;
    }

    /* A new process on the same cache directory. */
    {
        const char *args[] = {ct_base, "child_tuned", root, r[fused].params, NULL};
        int rc = ct_wait(ct_spawn_self(args, NULL, NULL));
        CHECK(rc == 0, "the child on the same cache directory failed (exit %d)", rc);
    }

    /* A new process on a fresh root holding only the db: the kernel it
     * compiles must carry the tuned parameters. */
    ct_fresh_dir("tuned_new_process_db_only", copy, sizeof copy);
    snprintf(dir, sizeof dir, "%s/tuning", root);
    ndb = ct_list(dir, ".db", dbs, 4);
    CHECK(ndb == 1, "%d tuning db files in %s, expected 1", ndb, dir);
    if (ndb >= 1) {
        char from[PATH_MAX * 2], to[PATH_MAX * 2];
        size_t len;
        unsigned char *data;
        snprintf(from, sizeof from, "%s/%s", dir, dbs[0]);
        snprintf(to, sizeof to, "%s/tuning", copy);
        mkdir(to, 0700);
        snprintf(to, sizeof to, "%s/tuning/%s", copy, dbs[0]);
        data = ct_read(from, &len);
        CHECK(data && ct_write(to, data, len) == 0, "cannot copy %s", from);
        free(data);
        {
            const char *args[] = {ct_base, "child_tuned_options", copy, r[fused].params, NULL};
            int rc = ct_wait(ct_spawn_self(args, NULL, NULL));
            CHECK(rc == 0, "the child with only the db failed (exit %d)", rc);
        }
    }
    ct_free_list(dbs, ndb);
    ct_remove_tree(copy);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* Child: ROOT PARAMS. The entry is listed, current, and serves a correct
 * forward whose kernel comes from the binaries the tuner stored. */
int child_tuned(int argc, char **argv)
{
    const char *root, *params;
    clattn_problem p = ct_shape_prefill();
    size_t count = 0, found = 0;
    ct_log log;
    clattn_context *ctx;
    clattn_stats st;
    if (argc < 4) return 2;
    root = argv[2];
    params = argv[3];
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    CHECK(clattn_tuning_count(ctx, &count) == CLATTN_OK, "clattn_tuning_count failed");
    CHECK(count > 0, "a new process sees no tuning entries in %s", root);
    for (size_t i = 0; i < count; i++) {
        clattn_tuning_entry e;
        CHECK(clattn_tuning_get(ctx, i, &e) == CLATTN_OK, "clattn_tuning_get(%zu)", i);
        NOTE("  entry %zu: %s %s D%d/%d causal=%d group=%d Sq%d Skv%d: %s (%.4f ms, default "
             "%.4f ms)%s%s",
             i, e.unit, e.dtype == CLATTN_F32 ? "F32" : "F16/BF16", e.head_dim, e.head_dim_v,
             e.causal, e.group, e.seq_q_bucket, e.seq_kv_bucket, e.params, e.median_ms,
             e.default_ms, e.stale ? " stale" : "", e.layer ? " system" : "");
        if (strcmp(e.unit, "fused") == 0 && strcmp(e.params, params) == 0 &&
            e.dtype == CLATTN_F32 && e.head_dim == 32 && e.head_dim_v == 32 &&
            e.causal == CLATTN_CAUSAL_BOTTOM_RIGHT && e.windowed == 0 && e.has_mask == 0 &&
            e.group == 1 && e.seq_q_bucket == 64 && e.seq_kv_bucket == 64 && !e.stale &&
            e.layer == 0 && e.median_ms > 0 && e.default_ms > 0)
            found++;
    }
    CHECK(found == 1, "the tuned fused entry '%s' is not listed (exactly once) as current",
          params);
    ct_forward_ok(ctx, &p, "forward in a new process with the tuned db");
    st = ct_stats(ctx);
    CHECK(st.programs_built == 0 && st.programs_loaded >= 1,
          "the tuned kernel should come from the binaries the tuner stored: built %llu, "
          "loaded %llu",
          (unsigned long long)st.programs_built, (unsigned long long)st.programs_loaded);
    CHECK(log.warnings == 0, "warnings:\n%s", log.text);
    clattn_context_destroy(ctx);
    return ct_failures ? 1 : 0;
}

/* Child: ROOT PARAMS, where ROOT holds the db only. The fused kernel the
 * forward compiles has every NAME=value of PARAMS in its build options (the
 * key text of the binary it stores says which). */
int child_tuned_options(int argc, char **argv)
{
    const char *root, *params;
    clattn_problem p = ct_shape_prefill();
    char dir[PATH_MAX], *bins[16];
    int n, checked = 0;
    ct_log log;
    clattn_context *ctx;
    if (argc < 4) return 2;
    root = argv[2];
    params = argv[3];
    /* The fused path whatever the db says AUTO should take: its kernel is
     * the tuned one. */
    p.path = CLATTN_PATH_FUSED;
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, "forward with only the tuned db");
    CHECK(log.warnings == 0, "warnings:\n%s", log.text);
    clattn_context_destroy(ctx);
    snprintf(dir, sizeof dir, "%s/programs", root);
    n = ct_list(dir, ".bin", bins, 16);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX * 2];
        size_t len;
        unsigned char *data;
        snprintf(path, sizeof path, "%s/%s", dir, bins[i]);
        data = ct_read(path, &len);
        /* The key text follows the 40-byte header; it names the kernel and
         * the complete build options (src/program_cache.c). */
        /* Either fused kernel (row per work-item, or vector) is the tuned one. */
        if (data && len > 40 && strstr((char *)data + 40, "kernel attn_fwd_fused")) {
            const char *opt = strstr((char *)data + 40, "\noptions ");
            const char *end = opt ? strchr(opt + 1, '\n') : NULL;
            char want[64], line[1024];
            const char *s = params;
            CHECK(opt && end, "no options line in %s", path);
            if (opt && end && end - opt < (long)sizeof line - 2) {
                memcpy(line, opt + 1, (size_t)(end - opt - 1));
                strcpy(line + (end - opt - 1), " ");
                NOTE("  fused kernel built with: %s", line);
                while (*s) {
                    size_t k = strcspn(s, " ");
                    /* FUSED_VEC picks the kernel; it is not a build option. */
                    if (strncmp(s, "FUSED_VEC=", 10) != 0) {
                        snprintf(want, sizeof want, " -D%.*s ", (int)k, s);
                        CHECK(strstr(line, want) != NULL, "the kernel was not built with "
                              "the tuned %.*s (options: %s)", (int)k, s, line);
                    }
                    s += k + (s[k] == ' ');
                }
                checked++;
            }
        }
        free(data);
    }
    ct_free_list(bins, n);
    CHECK(checked == 1, "%d fused binaries found in %s, expected 1", checked, dir);
    return ct_failures ? 1 : 0;
}

typedef struct first_call {
    double ms;
    unsigned long long built, loaded, stored, rejected;
    int warnings;
} first_call;

static int run_first_call(const char *root, const char *out, first_call *fc)
{
    const char *args[] = {ct_base, "child_first_call", root, NULL};
    const char *env[] = {"POCL_KERNEL_CACHE=0", NULL};
    int rc = ct_wait(ct_spawn_self(args, env, out));
    size_t len;
    char *text = (char *)ct_read(out, &len);
    int ok = rc == 0 && text &&
             sscanf(text, "first_call_ms=%lf built=%llu loaded=%llu stored=%llu rejected=%llu "
                          "warnings=%d",
                    &fc->ms, &fc->built, &fc->loaded, &fc->stored, &fc->rejected,
                    &fc->warnings) == 6;
    CHECK(ok, "first-call child: exit %d, output '%s'", rc, text ? text : "");
    free(text);
    return ok;
}

int test_binary_reuse(int argc, char **argv)
{
    char root[PATH_MAX], out[PATH_MAX + 16];
    first_call a, b;
    (void)argc;
    (void)argv;
    ct_fresh_dir("binary_reuse", root, sizeof root);
    snprintf(out, sizeof out, "%s.out", root);
    if (run_first_call(root, out, &a) && run_first_call(root, out, &b)) {
        NOTE("process A (empty cache): %.1f ms, %llu built, %llu stored, %llu loaded", a.ms,
             a.built, a.stored, a.loaded);
        NOTE("process B (same cache):  %.1f ms, %llu loaded, %llu built, %llu stored", b.ms,
             b.loaded, b.built, b.stored);
        NOTE("first-call time (context create + first forward + finish, POCL_KERNEL_CACHE=0): "
             "cold/warm = %.2fx",
             b.ms > 0 ? a.ms / b.ms : 0.0);
        CHECK(a.built > 0 && a.stored > 0 && a.loaded == 0,
              "process A: built %llu, stored %llu, loaded %llu", a.built, a.stored, a.loaded);
        CHECK(b.loaded > 0 && b.built == 0 && b.stored == 0 && b.rejected == 0,
              "process B: loaded %llu, built %llu, stored %llu, rejected %llu", b.loaded,
              b.built, b.stored, b.rejected);
        CHECK(b.loaded == a.built, "process B loaded %llu programs, A built %llu", b.loaded,
              a.built);
        CHECK(a.warnings == 0 && b.warnings == 0, "warnings: A %d, B %d", a.warnings,
              b.warnings);
    }
    remove(out);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* Child: ROOT. Times context creation + the first forward (AUTO on the
 * prefill and decode shapes: fused, split-KV and combine kernels) to its
 * end, then checks the results and prints the counters. */
int child_first_call(int argc, char **argv)
{
    clattn_problem p = ct_shape_prefill(), d = ct_shape_decode();
    double t0, ms;
    ct_log log;
    clattn_context *ctx;
    clattn_stats st;
    if (argc < 3) return 2;
    ct_log_reset(&log);
    t0 = ct_now();
    ctx = ct_context(argv[2], &log);
    ct_forward_ok(ctx, &p, "first forward (prefill)");
    ms = 1e3 * (ct_forward_end - t0);
    t0 = ct_now();
    ct_forward_ok(ctx, &d, "first forward (decode)");
    ms += 1e3 * (ct_forward_end - t0);
    st = ct_stats(ctx);
    clattn_context_destroy(ctx);
    printf("first_call_ms=%.3f built=%llu loaded=%llu stored=%llu rejected=%llu warnings=%d\n",
           ms, (unsigned long long)st.programs_built, (unsigned long long)st.programs_loaded,
           (unsigned long long)st.programs_stored, (unsigned long long)st.cache_rejected,
           log.warnings);
    if (log.warnings) fprintf(stderr, "%s", log.text);
    return ct_failures ? 1 : 0;
}
