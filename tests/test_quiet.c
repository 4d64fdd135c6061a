/*
 * Quiet builds: compiling the kernels from source (clattn's and PoCL's
 * caches both empty) prints nothing on stderr or stdout, and produces no
 * compiler warning; a warning the compiler does give reaches the log
 * callback as a warning with the build log (checked with a kernel source
 * that has one planted, through CLATTN_KERNEL_DIR). PoCL's clang then also
 * prints its own "1 warning generated." summary on stderr, which no option
 * but -w (which would hide the warning from the log too) turns off: that
 * line, and only that, is allowed in the planted case.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cases.h"
#include "harness.h"

typedef struct collected {
    int warnings;
    char first[512];
} collected;

static void collect(int level, const char *msg, void *user)
{
    collected *c = user;
    if (level == CLATTN_LOG_WARNING && c->warnings++ == 0)
        snprintf(c->first, sizeof c->first, "%s", msg);
}

/* fds 1 and 2 into one temporary file while captured. */
typedef struct capture {
    int saved[2];
    FILE *file;
} capture;

static int capture_start(capture *c)
{
    fflush(stdout);
    fflush(stderr);
    c->file = tmpfile();
    if (!c->file)
        return -1;
    for (int fd = 1; fd <= 2; ++fd) {
        c->saved[fd - 1] = dup(fd);
        dup2(fileno(c->file), fd);
    }
    return 0;
}

/* Restores the fds; returns the bytes written meanwhile (first ones in buf). */
static long capture_end(capture *c, char *buf, size_t size)
{
    fflush(stdout);
    fflush(stderr);
    for (int fd = 1; fd <= 2; ++fd) {
        dup2(c->saved[fd - 1], fd);
        close(c->saved[fd - 1]);
    }
    long n = ftell(c->file);
    rewind(c->file);
    size_t got = fread(buf, 1, size - 1, c->file);
    buf[got] = '\0';
    fclose(c->file);
    return n;
}

/* Every line of out is clang's "N warning(s) generated." summary. */
static int only_summary(const char *out)
{
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        const size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int count = 0, used = 0;
        char word[16];
        if (sscanf(p, "%d %15s generated.%n", &count, word, &used) != 2 || used == 0 ||
            (size_t)used != len || strncmp(word, "warning", 7) != 0)
            return 0;
        p += len + (nl != NULL);
    }
    return 1;
}

static clattn_problem problem(int kind)
{
    clattn_problem p = {0};
    p.batch = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = kind == 2 ? 1 : 19;
    p.seq_kv = 37;
    p.head_dim = 64;
    p.dtype = (clattn_dtype)(kind % 3);
    if (kind == 1) {
        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p.softcap = 30.0f;
        p.path = CLATTN_PATH_THREE_STAGE;
    } else if (kind == 2) { /* decode from an int4 paged cache: split-KV */
        p.k_storage = (clattn_kv_storage){CLATTN_KV_INT4, 32, CLATTN_F16, 0};
        p.v_storage = (clattn_kv_storage){CLATTN_KV_Q8_0, 0, 0, 0};
        p.paged = (clattn_paging){1, 16, 6, 3};
        p.path = CLATTN_PATH_SPLIT_KV;
    } else if (kind == 3) { /* the rows-in-lanes kernel with the score features */
        p.seq_q = 40;
        p.sinks = 1;
        p.alibi = 1;
        p.bias = (clattn_mask_layout){1, CLATTN_F16, {37, 0, 0}};
        p.bool_mask = (clattn_mask_layout){1, 0, {0, 0, 37}};
        p.k_storage = (clattn_kv_storage){CLATTN_KV_FP8_E4M3, 0, CLATTN_F32, 1};
        p.path = CLATTN_PATH_FUSED;
    }
    return p;
}

/* Builds (clattn_supports) every kernel of four problems on a context with
 * a fresh cache, under capture; returns the captured byte count. */
static long build_all(const char *cache, collected *log, char *out, size_t size)
{
    clattn_options o;
    clattn_options_init(&o);
    o.cache_dir = cache;
    o.log = collect;
    o.log_user_data = log;
    capture cap;
    if (capture_start(&cap) != 0) {
        T_FAIL("tmpfile failed");
        return -1;
    }
    clattn_context *ctx = NULL;
    clattn_status st = clattn_context_create(&o, &ctx);
    clattn_status bad = CLATTN_OK;
    for (int kind = 0; kind < 4 && st == CLATTN_OK; ++kind) {
        const clattn_problem p = problem(kind);
        const clattn_status s = clattn_supports(ctx, &p);
        if (s != CLATTN_OK && bad == CLATTN_OK)
            bad = s;
    }
    clattn_context_destroy(ctx);
    const long n = capture_end(&cap, out, size);
    T_CHECK(st == CLATTN_OK, "clattn_context_create: %s", clattn_status_string(st));
    T_CHECK(bad == CLATTN_OK, "clattn_supports: %s", clattn_status_string(bad));
    return n;
}

void case_quiet_builds(void)
{
    /* PoCL's own cache off too, so every kernel is compiled by its clang. */
    setenv("POCL_KERNEL_CACHE", "0", 1);
    char dir[] = "/tmp/clattn-quiet-XXXXXX";
    if (!mkdtemp(dir)) {
        T_FAIL("mkdtemp failed");
        return;
    }
    char cache[64], out[2048];
    snprintf(cache, sizeof cache, "%s/a", dir);
    collected log = {0};
    long n = build_all(cache, &log, out, sizeof out);
    T_CHECK(n == 0, "building the kernels wrote %ld bytes to stdout/stderr: %s", n, out);
    T_CHECK(log.warnings == 0, "%d build warnings, the first: %s", log.warnings, log.first);

    /* A planted warning (an unused comparison in the split-KV combine) must
     * go to the log callback, not to stderr. */
    char kdir[64], cmd[512];
    snprintf(kdir, sizeof kdir, "%s/cl", dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s/cl' '%s' && printf '%s' >> '%s/combine.cl'",
             CLATTN_TEST_SOURCE_DIR, kdir,
             "\\nvoid clattn_planted_warning(int x) { x == 1; }\\n", kdir);
    T_CHECK(system(cmd) == 0, "could not prepare %s", kdir);
    setenv("CLATTN_KERNEL_DIR", kdir, 1);
    snprintf(cache, sizeof cache, "%s/b", dir);
    memset(&log, 0, sizeof log);
    n = build_all(cache, &log, out, sizeof out);
    unsetenv("CLATTN_KERNEL_DIR");
    T_CHECK(n == 0 || only_summary(out),
            "more than the compiler's summary reached stdout/stderr (%ld bytes): %s", n, out);
    T_CHECK(log.warnings >= 1 && strstr(log.first, "warning") &&
                strstr(log.first, "attn_splitkv_combine"),
            "the planted warning did not reach the log callback (%d warnings: %s)",
            log.warnings, log.first);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    T_CHECK(system(cmd) == 0, "could not remove %s", dir);
}
