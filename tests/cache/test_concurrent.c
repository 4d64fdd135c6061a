/* concurrent_tuners: two processes started at once tune on one cache
 * directory, first both on the quick shapes, then each on one of them;
 * afterwards the db loads without a warning and holds the entries of both.
 * interrupted_tuner: a tuner killed after it appended an entry leaves a db
 * that loads cleanly with that entry, also when an earlier interrupted
 * append had left a partial last line; the next tuner gets the lock.
 * export_clear_import: a db exported, the cache cleared, the file imported:
 * the same entries apply again, from disk, in a new context; damaged or
 * foreign files are refused whole. */
#define _DEFAULT_SOURCE /* usleep */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

static clattn_problem shape_named(const char *name)
{
    clattn_problem p = ct_shape_prefill();
    if (strcmp(name, "decode") == 0) return ct_shape_decode();
    if (strcmp(name, "small") == 0) { /* B1 H2 S32 D16, tuned by nothing else */
        p.seq_q = p.seq_kv = 32;
        p.head_dim = 16;
        p.causal = 0;
    }
    return p;
}

/* Child: ROOT SHAPES BUDGET, SHAPES = prefill | decode | quick (both) |
 * small. Each shape is tuned by its own clattn_tune call with BUDGET
 * seconds. */
int child_tune(int argc, char **argv)
{
    const char *which;
    double budget;
    ct_log log;
    clattn_context *ctx;
    int n = 0;
    if (argc < 5) return 2;
    which = argv[3];
    budget = atof(argv[4]);
    ct_log_reset(&log);
    ctx = ct_context(argv[2], &log);
    for (int i = 0; i < 3; i++) {
        const char *name = i == 0 ? "prefill" : i == 1 ? "decode" : "small";
        clattn_problem p = shape_named(name);
        clattn_tune_options o;
        clattn_tune_result r[8];
        size_t nr = 0;
        clattn_status st;
        double t0 = ct_now();
        int in_quick = i < 2; /* the quick shapes: prefill and decode */
        if (!(strcmp(which, "quick") == 0 && in_quick) && strcmp(which, name) != 0) continue;
        memset(&o, 0, sizeof o);
        o.budget_seconds = budget;
        st = clattn_tune(ctx, &p, 1, &o, r, 8, &nr);
        CHECK(st == CLATTN_OK && nr >= 1, "pid %ld: clattn_tune(%s): %s", (long)getpid(),
              name, clattn_last_error(ctx));
        NOTE("  tuner %ld: %s: %zu results in %.1f s", (long)getpid(), name, nr,
             ct_now() - t0);
        n++;
    }
    CHECK(log.warnings == 0, "tuner %ld: warnings:\n%s", (long)getpid(), log.text);
    clattn_context_destroy(ctx);
    return n > 0 && !ct_failures ? 0 : 1;
}

/* Entries of the user db with seq_q bucket sq (any unit). */
static int entries_with(clattn_context *ctx, int sq, size_t *total)
{
    size_t count = 0;
    int n = 0;
    clattn_tuning_count(ctx, &count);
    *total = count;
    for (size_t i = 0; i < count; i++) {
        clattn_tuning_entry e;
        if (clattn_tuning_get(ctx, i, &e) == CLATTN_OK && e.layer == 0 && !e.stale &&
            e.seq_q_bucket == sq)
            n++;
    }
    return n;
}

static void no_temporaries(const char *root)
{
    static const char *const subs[] = {"programs", "tuning"};
    for (int s = 0; s < 2; s++) {
        char dir[PATH_MAX + 16], *names[256];
        int n, tmp = 0;
        snprintf(dir, sizeof dir, "%s/%s", root, subs[s]);
        n = ct_list(dir, "", names, 256);
        for (int i = 0; i < n; i++) tmp += strstr(names[i], ".tmp.") != NULL;
        CHECK(tmp == 0, "%d temporary files left in %s", tmp, dir);
        ct_free_list(names, n);
    }
}

/* Starts two tuners at once (on a_shapes and b_shapes, which together cover
 * both quick shapes) and checks the db they leave: no warning, entries of
 * both shapes, right results, no temporary files. */
static void two_tuners(const char *root, const char *a_shapes, const char *b_shapes)
{
    const char *a_args[] = {ct_base, "child_tune", root, a_shapes, "2", NULL};
    const char *b_args[] = {ct_base, "child_tune", root, b_shapes, "2", NULL};
    long a, b;
    int ra, rb, np, nd;
    size_t total;
    ct_log log;
    clattn_context *ctx;
    clattn_problem p = ct_shape_prefill(), d = ct_shape_decode();
    double t0 = ct_now();
    a = ct_spawn_self(a_args, NULL, NULL);
    b = ct_spawn_self(b_args, NULL, NULL);
    ra = ct_wait(a);
    rb = ct_wait(b);
    CHECK(ra == 0 && rb == 0, "tuners (%s, %s) exited %d and %d", a_shapes, b_shapes, ra, rb);
    NOTE("tuners on %s and %s done in %.1f s", a_shapes, b_shapes, ct_now() - t0);

    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    np = entries_with(ctx, 64, &total);
    nd = entries_with(ctx, 1, &total);
    NOTE("db after both: %zu entries (%d of the prefill shape, %d of the decode shape)", total,
         np, nd);
    CHECK(log.warnings == 0, "the db two tuners wrote loads with warnings:\n%s", log.text);
    CHECK(np >= 1, "the prefill shape's entries are missing from the db (tuners %s, %s)",
          a_shapes, b_shapes);
    CHECK(nd >= 1, "the decode shape's entries are missing from the db (tuners %s, %s)",
          a_shapes, b_shapes);
    ct_forward_ok(ctx, &p, "prefill after two tuners");
    ct_forward_ok(ctx, &d, "decode after two tuners");
    clattn_context_destroy(ctx);
    no_temporaries(root);
}

int test_concurrent_tuners(int argc, char **argv)
{
    char root[PATH_MAX];
    (void)argc;
    (void)argv;
    ct_fresh_dir("concurrent_tuners", root, sizeof root);
    two_tuners(root, "quick", "quick");
    ct_remove_tree(root);
    /* Each tuner measures what the other does not: neither may lose the
     * other's entries when it writes the db. */
    ct_fresh_dir("concurrent_tuners_disjoint", root, sizeof root);
    two_tuners(root, "prefill", "decode");
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* The db file of root (one device): its path into buf, 1 when found. */
static int db_path(const char *root, char *buf, size_t size)
{
    char dir[PATH_MAX + 16], *names[4];
    int n;
    snprintf(dir, sizeof dir, "%s/tuning", root);
    n = ct_list(dir, ".db", names, 4);
    if (n == 1) snprintf(buf, size, "%s/%s", dir, names[0]);
    ct_free_list(names, n);
    return n == 1;
}

/* Whether the db has grown past `before` bytes by a whole line and holds an
 * entry of head_dim 16 (the small shape's). */
static int appended_small(const char *db, size_t before)
{
    size_t len;
    char *text = (char *)ct_read(db, &len);
    int yes = text && len > before && text[len - 1] == '\n' && strstr(text, " d=16 ");
    free(text);
    return yes;
}

/* Starts a tuner of the small shape, waits until the db holds its entry, and
 * kills it. Returns 1 if killed after an append, 0 if the tuner ended
 * without appending. No clock decides: on a slow or loaded machine the
 * tuner appends later (it appends each unit as it finishes it), and a tuner
 * that neither appends nor ends is a hang that CTest's TIMEOUT reports. */
static int kill_after_append(const char *root, const char *db, size_t before)
{
    const char *args[] = {ct_base, "child_tune", root, "small", "60", NULL};
    long pid = ct_spawn_self(args, NULL, "/dev/null");
    double t0 = ct_now();
    int appended = 0, exited = pid <= 0, rc = -1;
    for (;;) {
        /* read once more after the exit: the last append may have just landed */
        appended = appended_small(db, before);
        if (appended || exited) break;
        exited = ct_exited(pid, &rc);
        if (!exited) usleep(20000);
    }
    if (!exited) {
        kill((pid_t)pid, SIGKILL);
        ct_wait(pid);
    }
    CHECK(appended, "the tuner ended (exit %d) without appending an entry", rc);
    if (appended)
        NOTE("tuner killed %.1f s after its start, after appending an entry", ct_now() - t0);
    return appended;
}

/* Entries of head_dim 16 (the small shape's). */
static int small_entries(const char *root, ct_log *log)
{
    clattn_context *ctx = ct_context(root, log);
    size_t count = 0;
    int n = 0;
    clattn_tuning_count(ctx, &count);
    for (size_t i = 0; i < count; i++) {
        clattn_tuning_entry e;
        if (clattn_tuning_get(ctx, i, &e) == CLATTN_OK && e.head_dim == 16) n++;
    }
    clattn_context_destroy(ctx);
    return n;
}

int test_interrupted_tuner(int argc, char **argv)
{
    char root[PATH_MAX], db[PATH_MAX * 2];
    clattn_problem p = ct_shape_prefill();
    clattn_tune_options o;
    ct_log log;
    clattn_context *ctx;
    size_t len = 0;
    unsigned char *text;
    int n;
    (void)argc;
    (void)argv;
    ct_fresh_dir("interrupted_tuner", root, sizeof root);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 1;
    CHECK(clattn_tune(ctx, &p, 1, &o, NULL, 0, NULL) == CLATTN_OK, "clattn_tune: %s",
          clattn_last_error(ctx));
    clattn_context_destroy(ctx);
    if (!db_path(root, db, sizeof db) || !(text = ct_read(db, &len))) {
        CHECK(0, "no db after the first tune");
        ct_remove_tree(root);
        return 1;
    }

    /* Killed after an append to a whole db. */
    if (kill_after_append(root, db, len)) {
        ct_log_reset(&log);
        n = small_entries(root, &log);
        CHECK(n >= 1 && log.warnings == 0, "after the kill: %d entries of the killed tuner, "
              "%d warnings:\n%s", n, log.warnings, log.text);
    }

    /* Killed after an append to a db whose last line an earlier kill cut
     * short: the new entry must not be glued to the partial line. */
    {
        size_t cut = len - 1;
        while (cut > 0 && text[cut - 1] != '\n') cut--;
        cut += (len - cut) / 2;
        ct_write(db, text, cut);
        if (kill_after_append(root, db, cut)) {
            ct_log_reset(&log);
            n = small_entries(root, &log);
            CHECK(n >= 1, "the entry appended after a partial line is lost (glued to it):\n%s",
                  log.text);
        }
    }
    free(text);

    /* The lock died with the tuner: a new one runs. */
    {
        double t0 = ct_now();
        ct_log_reset(&log);
        ctx = ct_context(root, &log);
        o.budget_seconds = 0.5;
        CHECK(clattn_tune(ctx, &p, 1, &o, NULL, 0, NULL) == CLATTN_OK, "tune after the kill");
        ct_forward_ok(ctx, &p, "forward after the kill");
        clattn_context_destroy(ctx);
        NOTE("a tuner after the kills ran in %.1f s", ct_now() - t0);
    }
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

typedef struct entry_list {
    clattn_tuning_entry e[64];
    size_t n;
} entry_list;

static void entries(clattn_context *ctx, entry_list *l)
{
    size_t count = 0;
    clattn_tuning_count(ctx, &count);
    l->n = 0;
    for (size_t i = 0; i < count && l->n < 64; i++)
        if (clattn_tuning_get(ctx, i, &l->e[l->n]) == CLATTN_OK) l->n++;
}

static int same_entries(const entry_list *a, const entry_list *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        int found = 0;
        for (size_t j = 0; j < b->n && !found; j++) {
            const clattn_tuning_entry *x = &a->e[i], *y = &b->e[j];
            found = strcmp(x->unit, y->unit) == 0 && x->dtype == y->dtype &&
                    x->head_dim == y->head_dim && x->head_dim_v == y->head_dim_v &&
                    x->causal == y->causal && x->windowed == y->windowed &&
                    x->has_mask == y->has_mask && x->group == y->group &&
                    x->seq_q_bucket == y->seq_q_bucket && x->seq_kv_bucket == y->seq_kv_bucket &&
                    strcmp(x->params, y->params) == 0 && x->stale == y->stale &&
                    x->layer == y->layer;
        }
        if (!found) return 0;
    }
    return 1;
}

int test_export_clear_import(int argc, char **argv)
{
    char root[PATH_MAX], file[PATH_MAX + 16], bad[PATH_MAX + 16], sub[PATH_MAX + 16];
    char *names[64];
    clattn_problem p = ct_shape_prefill();
    clattn_tune_options o;
    clattn_options opts;
    entry_list before, after;
    ct_log log;
    clattn_context *ctx;
    clattn_status st;
    size_t count = 0, len;
    unsigned char *text;
    int n;
    (void)argc;
    (void)argv;
    ct_fresh_dir("export_clear_import", root, sizeof root);
    snprintf(file, sizeof file, "%s.export", root);
    snprintf(bad, sizeof bad, "%s.bad-export", root);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 2.5;
    {
        double t0 = ct_now();
        st = clattn_tune(ctx, &p, 1, &o, NULL, 0, NULL);
        NOTE("clattn_tune with a budget of %.1f s took %.1f s", o.budget_seconds,
             ct_now() - t0);
    }
    CHECK(st == CLATTN_OK, "clattn_tune: %s", clattn_last_error(ctx));
    entries(ctx, &before);
    st = clattn_tuning_export(ctx, file);
    CHECK(st == CLATTN_OK, "export: %s", clattn_last_error(ctx));
    clattn_context_destroy(ctx);
    CHECK(before.n >= 1, "nothing tuned to export");
    NOTE("exported %zu entries to %s", before.n, file);

    ct_options(&opts, root, &log);
    CHECK(clattn_cache_clear(&opts) == CLATTN_OK, "clattn_cache_clear failed");
    snprintf(sub, sizeof sub, "%s/programs", root);
    n = ct_list(sub, ".bin", names, 64);
    CHECK(n == 0, "%d program binaries left after clattn_cache_clear", n);
    ct_free_list(names, n);
    snprintf(sub, sizeof sub, "%s/tuning", root);
    n = ct_list(sub, ".db", names, 64);
    CHECK(n == 0, "%d tuning dbs left after clattn_cache_clear", n);
    ct_free_list(names, n);

    ctx = ct_context(root, &log);
    clattn_tuning_count(ctx, &count);
    CHECK(count == 0, "%zu entries after clattn_cache_clear", count);
    st = clattn_tuning_import(ctx, file);
    CHECK(st == CLATTN_OK, "import: %s", clattn_last_error(ctx));
    entries(ctx, &after);
    CHECK(same_entries(&before, &after), "the imported entries differ (%zu, %zu before)",
          after.n, before.n);

    /* Refused whole: a file with a damaged line, and one of another model. */
    text = ct_read(file, &len);
    if (text) {
        char *fp = strstr((char *)text, "\nkernel=");
        if (fp) fp[3] = '#' == fp[3] ? '!' : '#'; /* "kernel=" -> "ke#nel=" */
        ct_write(bad, text, len);
        st = clattn_tuning_import(ctx, bad);
        CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "importing a damaged file: %s",
              clattn_status_string(st));
        free(text);
    }
    text = ct_read(file, &len);
    if (text) {
        char *dev = strstr((char *)text, "|device=");
        if (dev) dev[8] = dev[8] == 'Q' ? 'R' : 'Q';
        ct_write(bad, text, len);
        st = clattn_tuning_import(ctx, bad);
        CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "importing another model's db: %s",
              clattn_status_string(st));
        free(text);
    }
    entries(ctx, &after);
    CHECK(same_entries(&before, &after), "a refused import changed the entries");
    clattn_context_destroy(ctx);

    /* From disk, in a new context. */
    ctx = ct_context(root, &log);
    entries(ctx, &after);
    CHECK(same_entries(&before, &after), "a new context sees %zu entries, %zu exported",
          after.n, before.n);
    ct_forward_ok(ctx, &p, "forward with the imported db");
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 0, "warnings:\n%s", log.text);
    remove(file);
    remove(bad);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}
