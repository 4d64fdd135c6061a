/* Helpers of the on-disk cache tests: a fresh cache directory per test,
 * child processes (this executable re-invoked), a log that counts warnings,
 * a forward checked against the double reference, and file surgery. */
#ifndef CLATTN_CACHE_TESTS_UTIL_H
#define CLATTN_CACHE_TESTS_UTIL_H

#include "clattn.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Failures so far; each CHECK that fails prints where and why. */
extern int ct_failures;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            ct_failures++;                                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

/* Parts of the test that could not run here (they need root, or user
 * namespaces). With no failure the test exits 77, which CTest reports as a
 * skip, not a pass. A child process says "skipped" by exiting 77. */
extern int ct_skips;
#define CT_SKIP_EXIT 77
#define SKIP(...)                                                                         \
    do {                                                                                  \
        ct_skips++;                                                                       \
        printf("SKIP ");                                                                  \
        printf(__VA_ARGS__);                                                              \
        putchar('\n');                                                                    \
        fflush(stdout);                                                                   \
    } while (0)

#define NOTE(...)                                                                         \
    do {                                                                                  \
        printf(__VA_ARGS__);                                                              \
        putchar('\n');                                                                    \
        fflush(stdout);                                                                   \
    } while (0)

/* ---- directories --------------------------------------------------------- */

/* The base directory the tests were given (argv), set by main. */
extern const char *ct_base;

/* A fresh, empty directory base/name.PID (mode 0700) into buf; exits on
 * failure. */
void ct_fresh_dir(const char *name, char *buf, size_t size);

/* Removes a tree (no symlinks followed) unless CLATTN_TEST_KEEP is set. */
void ct_remove_tree(const char *path);

int ct_is_dir(const char *path);
int ct_exists(const char *path); /* lstat succeeds */

/* Names of regular files in dir ending in suffix: at most max, each
 * malloc'd into names; returns the count (0 when dir is missing). */
int ct_list(const char *dir, const char *suffix, char **names, int max);
void ct_free_list(char **names, int n);

/* Whole files. ct_read returns a malloc'd buffer (NUL-terminated) or NULL. */
unsigned char *ct_read(const char *path, size_t *len);
int ct_write(const char *path, const void *data, size_t len); /* 0 ok; mode 0600 */

/* ---- logging ------------------------------------------------------------- */

typedef struct ct_log {
    int warnings, errors;
    char text[4096]; /* every message, one a line (truncated) */
} ct_log;

void ct_log_fn(int level, const char *message, void *user_data);
void ct_log_reset(ct_log *log);

/* Options with cache_dir = root (may be NULL) and the log. */
void ct_options(clattn_options *opts, const char *root, ct_log *log);

/* Creates a context on root with the log; exits the test on failure. */
clattn_context *ct_context(const char *root, ct_log *log);

/* ---- attention ----------------------------------------------------------- */

/* The tiny shapes of these tests ("quick" in attn-tune). */
clattn_problem ct_shape_prefill(void); /* B1 H2 S64 D32 causal (bottom-right) */
clattn_problem ct_shape_decode(void);  /* B1 H2 Hkv1 Sq1 Skv256 D32 */

/* Runs p (any path) through clattn_forward_host on random inputs and compares
 * O and the LSE with the double reference. Returns 1 when within tolerance;
 * otherwise prints why (prefixed with what) and returns 0. */
int ct_forward_ok(clattn_context *ctx, const clattn_problem *p, const char *what);

/* Compares a run (go, gl, gp: O, LSE, probabilities; gp may be NULL) with the
 * reference (ro, rl, rp) by the test suite's tolerances for p's dtype: O
 * within the relative L2 and every element within its per-element bound,
 * each LSE and probability within its bound. Returns 1 when all are; else 0
 * with the first reason in msg. */
int ct_compare(const clattn_problem *p, const double *ro, const double *go, size_t no,
               const double *rl, const double *gl, size_t nl, const double *rp,
               const double *gp, size_t np, char *msg, size_t msg_size);

/* ct_now() when the last ct_forward_ok's clattn_forward_host returned (the
 * reference comparison after it is not part of a timing). */
extern double ct_forward_end;

clattn_stats ct_stats(clattn_context *ctx);

/* ---- processes ----------------------------------------------------------- */

/* Starts this executable with args (NULL-ended) and extra "NAME=value"
 * variables (NULL-ended, may be NULL) added to the environment. stdout of
 * the child goes to out_path when not NULL. Returns the pid, or -1. */
long ct_spawn_self(const char *const *args, const char *const *env_extra, const char *out_path);

/* Starts an arbitrary program the same way. */
long ct_spawn(const char *exe, const char *const *args, const char *const *env_extra,
              const char *out_path, const char *err_path);

/* Waits for pid; returns its exit status, or -1 when it did not exit
 * normally (the signal is printed). */
int ct_wait(long pid);

/* Whether pid has ended, without blocking; when it has, *rc is its exit
 * status (or -1) and pid is reaped. */
int ct_exited(long pid, int *rc);

/* A monotonic clock in seconds (for reports; no test asserts on time). */
double ct_now(void);

/* How many entry lines ("\nkernel=...") of a tuning db's text hold needle
 * ("" counts every entry). */
int ct_db_lines_with(const char *text, const char *needle);

#endif
