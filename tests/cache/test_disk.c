/* Disk faults under the cache (label `disk`). Each case checks the same
 * three things: the forward over the fault is right (double reference), the
 * fault is reported once through the log (messages counted), and the cache
 * heals (the next context finds valid entries and loads them, no rebuild).
 *
 *   disk_missing_dir: a root that does not exist (nor its parents) is
 *     created private; a root deleted between two calls of one context.
 *   disk_readonly: a populated cache made read-only (as user nobody when
 *     run as root, who ignores mode bits): loads work silently; new
 *     programs, a damaged entry and a tune each report once; writable
 *     again, it heals.
 *   disk_full: RLIMIT_FSIZE of 1 byte (SIGXFSZ ignored) in a child: PoCL
 *     itself writes ~1 MB files when it compiles, so under the limit only
 *     cached programs load and the repair of a damaged db fails (EFBIG): one
 *     message per process, the file left as it was, repaired once there is
 *     room. Then a real 64 KiB tmpfs in a user+mount namespace (ENOSPC): a
 *     binary never fits (nothing partial left), the db does; filled up, an
 *     append stops mid-line; grown by a remount, everything heals. Where no
 *     namespace can be made that part is a skip (the test exits 77).
 *   disk_replaced: the programs or tuning directory, or the root, replaced
 *     by a file or a symlink between two calls of one context and between
 *     two contexts.
 *   disk_truncate_binary: a real program binary truncated at every offset of
 *     its header and key, and at offsets spread over its payload (every
 *     offset with CLATTN_LONG=1); then one byte flipped at the same offsets.
 *   disk_foreign: entries of another library version or device fingerprint
 *     (binaries under our name and under theirs; db entries and dbs).
 *   disk_truncate_db: a real tuning db truncated, and one byte flipped, at
 *     every offset of its header, fingerprint and first two entries and ~60
 *     more (every offset with CLATTN_LONG=1); a damaged db while a tuner
 *     holds the lock.
 *
 * The split-KV decode shape is used for binaries: its combine program has
 * the shortest key (the prelude and combine.cl), so the every-offset loops are
 * affordable; the fused program it also needs must keep loading. */
#define _GNU_SOURCE /* unshare, setgroups */
#include "cache_tests.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534
#define HEADER 40

static int long_mode(void)
{
    const char *v = getenv("CLATTN_LONG");
    return v && *v && strcmp(v, "0") != 0;
}

static const char *first_line(const char *text, int *len)
{
    const char *nl = strchr(text, '\n');
    *len = nl ? (int)(nl - text) : (int)strlen(text);
    return text;
}

/* The first disk-cache warning of a log (else its first line). */
static const char *warning_line(const char *text, int *len)
{
    const char *s = strstr(text, "disk cache: ");
    if (!s) s = text;
    return first_line(s, len);
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A complete, self-consistent program file whose key is `key` (key_len
 * bytes). */
static int bin_valid(const char *path, const unsigned char *key, size_t key_len)
{
    size_t len;
    unsigned char *d = ct_read(path, &len);
    uint64_t kl, pl, h;
    int ok = 0;
    if (d && len > HEADER) {
        memcpy(&kl, d + 16, 8);
        memcpy(&pl, d + 24, 8);
        memcpy(&h, d + 32, 8);
        ok = memcmp(d, "CLATTNPB", 8) == 0 && kl == key_len && HEADER + kl + pl == len &&
             memcmp(d + HEADER, key, key_len) == 0 && fnv(d + HEADER + kl, pl) == h;
    }
    free(d);
    return ok;
}

/* Files of dir whose names contain ".tmp." */
static int temporaries(const char *dir)
{
    char *names[256];
    int n = ct_list(dir, "", names, 256), tmp = 0;
    for (int i = 0; i < n; i++) tmp += strstr(names[i], ".tmp.") != NULL;
    ct_free_list(names, n);
    return tmp;
}

static int count_files(const char *dir, const char *suffix)
{
    char *names[256];
    int n = ct_list(dir, suffix, names, 256);
    ct_free_list(names, n);
    return n;
}

/* One context: forward(s) checked, stats and the log returned. */
typedef struct run_result {
    clattn_stats st;
    ct_log log;
    int ok;
} run_result;

static run_result run_ctx(const char *root, const clattn_problem *shapes, int n,
                          const char *what)
{
    run_result r;
    clattn_context *ctx;
    ct_log_reset(&r.log);
    ctx = ct_context(root, &r.log);
    r.ok = 1;
    for (int i = 0; i < n; i++) r.ok &= ct_forward_ok(ctx, &shapes[i], what);
    r.st = ct_stats(ctx);
    clattn_context_destroy(ctx);
    return r;
}

static clattn_problem decode_splitkv(void)
{
    clattn_problem p = ct_shape_decode();
    p.path = CLATTN_PATH_SPLIT_KV;
    return p;
}

static clattn_problem prefill_fused(void)
{
    clattn_problem p = ct_shape_prefill();
    p.path = CLATTN_PATH_FUSED;
    return p;
}

/* A shape no other case of this file builds (another head_dim). */
static clattn_problem fresh_shape(int head_dim)
{
    clattn_problem p = ct_shape_prefill();
    p.head_dim = head_dim;
    p.path = CLATTN_PATH_FUSED;
    return p;
}

/* The next context on root loads `loaded` programs (at least), builds none
 * and says nothing. */
static void expect_clean_load(const char *root, const clattn_problem *p, int n, int loaded,
                              const char *what)
{
    run_result r = run_ctx(root, p, n, what);
    CHECK(r.log.warnings == 0 && r.log.errors == 0, "%s: the next context warns:\n%s", what,
          r.log.text);
    CHECK(r.st.programs_built == 0 && r.st.programs_loaded >= (uint64_t)loaded &&
              r.st.cache_rejected == 0 && r.st.disk_cache_enabled,
          "%s: next context: built %llu loaded %llu rejected %llu enabled %d (expected 0, "
          ">= %d, 0, 1)", what, (unsigned long long)r.st.programs_built,
          (unsigned long long)r.st.programs_loaded, (unsigned long long)r.st.cache_rejected,
          r.st.disk_cache_enabled, loaded);
}

/* ---- a child process as another user or in another namespace ------------ */

/* Runs fn(arg) in a forked child (no OpenCL was touched in this process
 * before: PoCL does not survive a fork). Returns its exit status; 77 means
 * skipped. */
static int in_child(int (*fn)(void *), void *arg)
{
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        int rc = fn(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(rc == 0 && ct_failures ? 1 : rc);
    }
    return pid > 0 ? ct_wait(pid) : -1;
}

/* As root, become nobody with a private PoCL cache and HOME under base
 * (chowned to nobody); otherwise permission bits already apply to us.
 * Returns 0, or 77 when nobody cannot reach the directory. */
static int drop_to_nobody(const char *base, const char *reach)
{
    char pocl[PATH_MAX + 16], home[PATH_MAX + 16];
    if (geteuid() != 0) return 0;
    snprintf(pocl, sizeof pocl, "%s/pocl", base);
    snprintf(home, sizeof home, "%s/home", base);
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
        fprintf(stderr, "FAIL: cannot become nobody: %s\n", strerror(errno));
        return 1;
    }
    setenv("POCL_CACHE_DIR", pocl, 1);
    setenv("HOME", home, 1);
    if (access(reach, X_OK) != 0) {
        NOTE("  user nobody cannot reach %s (%s): skipped", reach, strerror(errno));
        return 77;
    }
    return 0;
}

/* ---- disk_missing_dir ---------------------------------------------------- */

int test_disk_missing_dir(int argc, char **argv)
{
    char base[PATH_MAX], root[PATH_MAX + 32], programs[PATH_MAX + 48];
    clattn_problem p = prefill_fused(), q = fresh_shape(16);
    struct stat sb;
    run_result r;
    (void)argc;
    (void)argv;
    ct_fresh_dir("disk_missing_dir", base, sizeof base);
    snprintf(root, sizeof root, "%s/not/yet/there", base);
    snprintf(programs, sizeof programs, "%s/programs", root);
    r = run_ctx(root, &p, 1, "missing root");
    CHECK(r.log.warnings == 0 && r.st.disk_cache_enabled && r.st.programs_stored == 1,
          "missing root: enabled %d stored %llu warnings %d:\n%s", r.st.disk_cache_enabled,
          (unsigned long long)r.st.programs_stored, r.log.warnings, r.log.text);
    CHECK(lstat(root, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700,
          "the missing root was not created as a 0700 directory");
    CHECK(ct_is_dir(programs) && count_files(programs, ".bin") == 1,
          "no binary in the created programs directory");
    expect_clean_load(root, &p, 1, 1, "missing root, next context");
    NOTE("  missing root (3 levels): created 0700, binary stored, next context loads");

    /* Deleted under a live context: its next new program is not stored
     * (reported once), the computation is right, the next context makes the
     * tree again. */
    {
        ct_log log;
        clattn_context *ctx;
        clattn_stats st;
        ct_log_reset(&log);
        ctx = ct_context(root, &log);
        ct_forward_ok(ctx, &p, "before the root is deleted");
        ct_remove_tree(root);
        CHECK(!ct_exists(root), "the root is still there");
        ct_forward_ok(ctx, &q, "first call after the root was deleted");
        ct_forward_ok(ctx, &p, "second call after the root was deleted");
        st = ct_stats(ctx);
        clattn_context_destroy(ctx);
        CHECK(log.warnings == 1, "root deleted mid-run: %d warnings, expected one:\n%s",
              log.warnings, log.text);
        CHECK(st.programs_built == 1 && st.programs_loaded == 1 && st.programs_stored == 0,
              "root deleted mid-run: built %llu loaded %llu stored %llu, expected 1 1 0",
              (unsigned long long)st.programs_built, (unsigned long long)st.programs_loaded,
              (unsigned long long)st.programs_stored);
        CHECK(!ct_exists(root), "a context recreated the deleted root mid-run");
        {
            int l;
            const char *t = first_line(log.text, &l);
            NOTE("  root deleted between two calls: reported: %.*s", l, t);
        }
        r = run_ctx(root, &q, 1, "after the deletion");
        CHECK(r.log.warnings == 0 && r.st.programs_stored == 1,
              "after the deletion: stored %llu, warnings %d:\n%s",
              (unsigned long long)r.st.programs_stored, r.log.warnings, r.log.text);
        expect_clean_load(root, &q, 1, 1, "root deleted mid-run, healed");
    }
    ct_remove_tree(base);
    return ct_failures ? 1 : 0;
}

/* ---- disk_readonly ------------------------------------------------------- */

typedef struct ro_args {
    const char *base, *root;
    int phase;
} ro_args;

static void chmod_tree(const char *root, mode_t dirs, mode_t files)
{
    static const char *const subs[] = {"programs", "tuning"};
    chmod(root, dirs);
    for (int s = 0; s < 2; s++) {
        char dir[PATH_MAX + 16], path[PATH_MAX * 2], *names[256];
        int n;
        snprintf(dir, sizeof dir, "%s/%s", root, subs[s]);
        n = ct_list(dir, "", names, 256);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            chmod(path, files);
        }
        ct_free_list(names, n);
        chmod(dir, dirs);
    }
}

/* The tuning db of root: its path into buf, 1 when exactly one. */
static int db_file(const char *root, char *buf, size_t size)
{
    char dir[PATH_MAX + 16], *names[4];
    int n;
    snprintf(dir, sizeof dir, "%s/tuning", root);
    n = ct_list(dir, ".db", names, 4);
    if (n == 1) snprintf(buf, size, "%s/%s", dir, names[0]);
    ct_free_list(names, n);
    return n == 1;
}

static size_t user_entries(clattn_context *ctx)
{
    size_t count = 0, user = 0;
    clattn_tuning_count(ctx, &count);
    for (size_t i = 0; i < count; i++) {
        clattn_tuning_entry e;
        if (clattn_tuning_get(ctx, i, &e) == CLATTN_OK && e.layer == 0 && !e.stale) user++;
    }
    return user;
}

static int tune_small(clattn_context *ctx, double budget)
{
    clattn_problem p = ct_shape_prefill();
    clattn_tune_options o;
    memset(&o, 0, sizeof o);
    o.budget_seconds = budget;
    p.seq_q = p.seq_kv = 32;
    p.head_dim = 16;
    return clattn_tune(ctx, &p, 1, &o, NULL, 0, NULL) == CLATTN_OK;
}

static int readonly_child(void *arg)
{
    const ro_args *a = arg;
    clattn_problem p[2] = {prefill_fused(), decode_splitkv()};
    clattn_problem q = fresh_shape(24);
    int rc = drop_to_nobody(a->base, a->root);
    run_result r;
    if (rc) return rc;
    if (a->phase == 0) { /* populate, as the owner */
        ct_log log;
        clattn_context *ctx;
        ct_log_reset(&log);
        ctx = ct_context(a->root, &log);
        ct_forward_ok(ctx, &p[0], "populating");
        ct_forward_ok(ctx, &p[1], "populating");
        CHECK(tune_small(ctx, 0.5), "populating: tune: %s", clattn_last_error(ctx));
        clattn_context_destroy(ctx);
        CHECK(log.warnings == 0, "populating warned:\n%s", log.text);
        return 0;
    }
    if (a->phase == 1) { /* the tree is read-only now */
        char db[PATH_MAX * 2];
        size_t before = 0, after = 0;
        int l;
        const char *t;
        if (access(a->root, W_OK) == 0) {
            NOTE("  the read-only tree is writable to uid %d: skipped", (int)getuid());
            return 77;
        }
        NOTE("  (as uid %d; the tree is mode 0500, files 0400)", (int)getuid());
        r = run_ctx(a->root, p, 2, "read-only: cached shapes");
        CHECK(r.log.warnings == 0 && r.st.programs_built == 0 && r.st.programs_loaded == 3,
              "read-only: cached shapes: built %llu loaded %llu, %d warnings:\n%s",
              (unsigned long long)r.st.programs_built,
              (unsigned long long)r.st.programs_loaded, r.log.warnings, r.log.text);
        NOTE("  read-only, cached shapes: 3 programs loaded, nothing built, silent");
        r = run_ctx(a->root, &q, 1, "read-only: new shape");
        CHECK(r.log.warnings == 1 && r.st.programs_built == 1 && r.st.programs_stored == 0,
              "read-only: new shape: built %llu stored %llu, %d warnings:\n%s",
              (unsigned long long)r.st.programs_built,
              (unsigned long long)r.st.programs_stored, r.log.warnings, r.log.text);
        t = warning_line(r.log.text, &l);
        NOTE("  read-only, new shape: reported: %.*s", l, t);
        /* A tune: the results live in the context, the failure to keep
         * them is said once. */
        {
            ct_log log;
            clattn_context *ctx;
            ct_log_reset(&log);
            ctx = ct_context(a->root, &log);
            before = user_entries(ctx);
            CHECK(tune_small(ctx, 0.3) , "read-only: tune: %s", clattn_last_error(ctx));
            ct_forward_ok(ctx, &p[0], "read-only: after the tune");
            clattn_context_destroy(ctx);
            CHECK(log.warnings == 1, "read-only: tune: %d warnings:\n%s", log.warnings,
                  log.text);
            t = warning_line(log.text, &l);
            NOTE("  read-only, tune (%zu entries before): reported: %.*s", before, l, t);
        }
        if (db_file(a->root, db, sizeof db)) {
            ct_log log;
            clattn_context *ctx;
            ct_log_reset(&log);
            ctx = ct_context(a->root, &log);
            after = user_entries(ctx);
            clattn_context_destroy(ctx);
            CHECK(log.warnings == 0 && after == before,
                  "read-only: the db after the tune: %zu entries (%zu before), %d warnings",
                  after, before, log.warnings);
        } else {
            CHECK(0, "read-only: the db is gone");
        }
        return 0;
    }
    /* phase 2: writable again: a new shape is stored, then everything loads */
    r = run_ctx(a->root, &q, 1, "writable again");
    CHECK(r.log.warnings == 0 && r.st.programs_stored == 1,
          "writable again: stored %llu, %d warnings:\n%s",
          (unsigned long long)r.st.programs_stored, r.log.warnings, r.log.text);
    {
        clattn_problem all[3] = {p[0], p[1], q};
        expect_clean_load(a->root, all, 3, 4, "writable again");
    }
    return 0;
}

int test_disk_readonly(int argc, char **argv)
{
    char base[PATH_MAX], root[PATH_MAX + 16], sub[PATH_MAX + 16];
    ro_args a;
    int rc;
    (void)argc;
    (void)argv;
    ct_fresh_dir("disk_readonly", base, sizeof base);
    snprintf(root, sizeof root, "%s/cache", base);
    mkdir(root, 0700);
    if (geteuid() == 0) {
        static const char *const subs[] = {"", "/pocl", "/home", "/cache"};
        for (int i = 0; i < 4; i++) {
            snprintf(sub, sizeof sub, "%s%s", base, subs[i]);
            mkdir(sub, 0700);
            CHECK(chown(sub, NOBODY, NOBODY) == 0, "chown %s: %s", sub, strerror(errno));
        }
    }
    a.base = base;
    a.root = root;
    a.phase = 0;
    rc = in_child(readonly_child, &a);
    CHECK(rc == 0 || rc == CT_SKIP_EXIT, "populating as nobody: exit %d", rc);
    if (rc == CT_SKIP_EXIT)
        SKIP("  the read-only cache (populating it as nobody)");
    if (rc == 0) {
        chmod_tree(root, 0500, 0400);
        a.phase = 1;
        rc = in_child(readonly_child, &a);
        CHECK(rc == 0 || rc == CT_SKIP_EXIT, "the read-only checks: exit %d", rc);
        if (rc == CT_SKIP_EXIT)
            SKIP("  the read-only cache checks");
        chmod_tree(root, 0700, 0600);
        a.phase = 2;
        rc = in_child(readonly_child, &a);
        CHECK(rc == 0, "healing after read-only: exit %d", rc);
    }
    ct_remove_tree(base);
    return ct_failures ? 1 : 0;
}

/* ---- disk_full ----------------------------------------------------------- */

typedef struct full_args {
    const char *root, *mnt;
    int step;
} full_args;

/* Past the limit write() fails with EFBIG instead of killing us. */
static void limit_file_size(rlim_t bytes)
{
    struct rlimit rl;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = bytes;
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit: %s", strerror(errno));
}

static int write_map(const char *file, const char *text)
{
    int fd = open(file, O_WRONLY);
    ssize_t n = -1;
    if (fd >= 0) {
        n = write(fd, text, strlen(text));
        close(fd);
    }
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* In a new user and mount namespace (we are root there), a tmpfs of
 * `bytes` on dir. 0 on success. */
static int small_tmpfs(const char *dir, size_t bytes)
{
    char map[64], opts[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        NOTE("  unshare(CLONE_NEWUSER|CLONE_NEWNS): %s", strerror(errno));
        return -1;
    }
    write_map("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %d 1", (int)uid);
    if (write_map("/proc/self/uid_map", map) != 0) {
        NOTE("  uid_map: %s", strerror(errno));
        return -1;
    }
    snprintf(map, sizeof map, "0 %d 1", (int)gid);
    if (write_map("/proc/self/gid_map", map) != 0) {
        NOTE("  gid_map: %s", strerror(errno));
        return -1;
    }
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    snprintf(opts, sizeof opts, "size=%zu,mode=0700", bytes);
    if (mount("clattn-test", dir, "tmpfs", 0, opts) != 0) {
        NOTE("  mount tmpfs: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Fills the file system of dir: a file grown until ENOSPC. */
static void fill_up(const char *path)
{
    static char block[4096];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t chunk = sizeof block;
    if (fd < 0) return;
    while (chunk > 0) {
        if (write(fd, block, chunk) != (ssize_t)chunk) chunk /= 2;
    }
    close(fd);
}

/* RLIMIT_FSIZE: PoCL itself writes files of about 1 MB when it compiles,
 * so under a small limit only what needs no compile can run: programs
 * loaded from our cache, and the repair of a damaged db, whose rewrite
 * then fails (EFBIG). */
static int rlimit_child(void *arg)
{
    const full_args *a = arg;
    clattn_problem p = prefill_fused();
    ct_log log;
    clattn_context *ctx;
    char programs[PATH_MAX + 16], tuning[PATH_MAX + 16];
    int l;
    const char *t;
    snprintf(programs, sizeof programs, "%s/programs", a->root);
    snprintf(tuning, sizeof tuning, "%s/tuning", a->root);
    ct_log_reset(&log);
    if (a->step == 0) { /* populate */
        ctx = ct_context(a->root, &log);
        ct_forward_ok(ctx, &p, "populating");
        CHECK(tune_small(ctx, 0.5), "populating: tune: %s", clattn_last_error(ctx));
        clattn_context_destroy(ctx);
        CHECK(log.warnings == 0, "populating warned:\n%s", log.text);
        return 0;
    }
    if (a->step == 1) {
        /* The db's last line cut (an append interrupted earlier): each
         * context drops it, but cannot rewrite the file while full. */
        char db[PATH_MAX * 2];
        size_t len = 0;
        unsigned char *text = db_file(a->root, db, sizeof db) ? ct_read(db, &len) : NULL;
        CHECK(text && len > 10, "no db");
        if (text) ct_write(db, text, len - 10);
        free(text);
        limit_file_size(1);
        for (int i = 0; i < 2; i++) {
            run_result r = run_ctx(a->root, &p, 1, "RLIMIT_FSIZE: forward");
            CHECK(r.log.warnings == 1 && r.st.programs_built == 0 && r.st.programs_loaded == 1,
                  "RLIMIT_FSIZE 1 B: built %llu loaded %llu, %d warnings:\n%s",
                  (unsigned long long)r.st.programs_built,
                  (unsigned long long)r.st.programs_loaded, r.log.warnings, r.log.text);
            t = warning_line(r.log.text, &l);
            if (i == 0)
                NOTE("  RLIMIT_FSIZE 1 B (SIGXFSZ ignored), db repair: reported: %.*s", l, t);
        }
        CHECK(temporaries(tuning) == 0 && temporaries(programs) == 0,
              "RLIMIT_FSIZE: temporary files left");
        text = ct_read(db, &len);
        CHECK(text && len > 0 && text[len - 1] != '\n', "the db changed while writes failed");
        free(text);
        return 0;
    }
    if (a->step == 2) { /* room again: repaired once */
        run_result r = run_ctx(a->root, &p, 1, "after RLIMIT_FSIZE");
        CHECK(r.log.warnings == 1 && strstr(r.log.text, "damaged lines"),
              "after RLIMIT_FSIZE: %d warnings:\n%s", r.log.warnings, r.log.text);
        return 0;
    }
    {
        clattn_problem s = fresh_shape(16);
        s.seq_q = s.seq_kv = 32;
        s.causal = 0;
        expect_clean_load(a->root, &s, 1, 1, "after RLIMIT_FSIZE");
        expect_clean_load(a->root, &p, 1, 1, "after RLIMIT_FSIZE");
    }
    return 0;
}

/* A 64 KiB tmpfs: a binary (about 160 KB) never fits (ENOSPC), the db
 * does; then the fs is filled up so that an append to the db stops in the
 * middle of a line; grown again (remount), everything heals. */
static int tmpfs_child(void *arg)
{
    const full_args *a = arg;
    clattn_problem p = prefill_fused(), d = ct_shape_decode();
    char programs[PATH_MAX + 16], tuning[PATH_MAX + 16], filler[PATH_MAX + 16];
    char db[PATH_MAX * 2];
    ct_log log;
    clattn_context *ctx;
    run_result r;
    size_t n0, len;
    unsigned char *text;
    int l;
    const char *t;
    if (small_tmpfs(a->mnt, 64 * 1024) != 0) return 77;
    snprintf(programs, sizeof programs, "%s/programs", a->root);
    snprintf(tuning, sizeof tuning, "%s/tuning", a->root);
    snprintf(filler, sizeof filler, "%s/filler", a->mnt);

    r = run_ctx(a->root, &p, 1, "tmpfs: forward");
    CHECK(r.log.warnings == 1 && r.st.programs_built == 1 && r.st.programs_stored == 0,
          "tmpfs: forward: built %llu stored %llu, %d warnings:\n%s",
          (unsigned long long)r.st.programs_built, (unsigned long long)r.st.programs_stored,
          r.log.warnings, r.log.text);
    CHECK(count_files(programs, "") == 0, "tmpfs: %d files left in programs",
          count_files(programs, ""));
    t = warning_line(r.log.text, &l);
    NOTE("  64 KiB tmpfs, forward: reported: %.*s", l, t);

    ct_log_reset(&log);
    ctx = ct_context(a->root, &log);
    CHECK(tune_small(ctx, 0.5), "tmpfs: tune: %s", clattn_last_error(ctx));
    n0 = user_entries(ctx);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 1 && n0 >= 1, "tmpfs: tune: %zu entries, %d warnings:\n%s", n0,
          log.warnings, log.text);
    CHECK(temporaries(programs) == 0 && temporaries(tuning) == 0, "tmpfs: temporaries left");

    /* The db padded with comment lines to 100 bytes short of a page, the
     * file system filled: the next append stops 100 bytes into its line. */
    if (!db_file(a->root, db, sizeof db) || !(text = ct_read(db, &len))) {
        CHECK(0, "tmpfs: no db");
        return 1;
    }
    {
        size_t want = (len / 4096 + 1) * 4096 - 100;
        unsigned char *pad;
        if (want < len + 2) want += 4096;
        pad = malloc(want);
        memcpy(pad, text, len);
        memset(pad + len, 'x', want - len);
        /* comment lines of at most 64 bytes */
        for (size_t i = len; i < want; i += 64) pad[i] = '#';
        for (size_t i = len + 63; i < want; i += 64) pad[i] = '\n';
        if (want - len < 2 || pad[want - 2] == '\n') pad[want - 2] = '#';
        pad[want - 1] = '\n';
        CHECK(ct_write(db, pad, want) == 0, "tmpfs: padding the db");
        free(pad);
        free(text);
        fill_up(filler);
    }
    ct_log_reset(&log);
    ctx = ct_context(a->root, &log);
    {
        clattn_tune_options o;
        memset(&o, 0, sizeof o);
        o.budget_seconds = 0.5;
        CHECK(clattn_tune(ctx, &d, 1, &o, NULL, 0, NULL) == CLATTN_OK, "tmpfs full: tune: %s",
              clattn_last_error(ctx));
    }
    ct_forward_ok(ctx, &d, "tmpfs full: forward after the tune");
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 1, "tmpfs full: tune: %d warnings:\n%s", log.warnings, log.text);
    t = warning_line(log.text, &l);
    NOTE("  64 KiB tmpfs filled up, tune: reported: %.*s", l, t);
    text = ct_read(db, &len);
    CHECK(text && len > 0 && text[len - 1] != '\n',
          "tmpfs full: the db was expected to end in a partial line");
    free(text);

    /* Room again: the partial line is dropped (reported once), binaries
     * are stored; then everything loads silently. */
    unlink(filler);
    CHECK(mount(NULL, a->mnt, NULL, MS_REMOUNT, "size=8m,mode=0700") == 0, "remount: %s",
          strerror(errno));
    ct_log_reset(&log);
    ctx = ct_context(a->root, &log);
    CHECK(user_entries(ctx) == n0, "tmpfs after: %zu entries, %zu before", user_entries(ctx),
          n0);
    ct_forward_ok(ctx, &p, "tmpfs after");
    ct_forward_ok(ctx, &d, "tmpfs after");
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 1 && strstr(log.text, "damaged lines"),
          "tmpfs after: %d warnings:\n%s", log.warnings, log.text);
    {
        clattn_problem both[2] = {p, d};
        expect_clean_load(a->root, both, 2, 3, "tmpfs healed");
    }
    NOTE("  64 KiB tmpfs: partial db line dropped once; grown, binaries stored and loaded");
    return 0;
}

int test_disk_full(int argc, char **argv)
{
    char root[PATH_MAX], cache[PATH_MAX + 16];
    full_args a;
    int rc;
    (void)argc;
    (void)argv;
    /* No OpenCL in this process: every step is a child. */
    ct_fresh_dir("disk_full", root, sizeof root);
    memset(&a, 0, sizeof a);
    a.root = root;
    for (a.step = 0; a.step < 4; a.step++) {
        rc = in_child(rlimit_child, &a);
        CHECK(rc == 0, "RLIMIT_FSIZE step %d: exit %d", a.step, rc);
    }
    ct_remove_tree(root);

    ct_fresh_dir("disk_full_tmpfs", root, sizeof root);
    snprintf(cache, sizeof cache, "%s/cache", root);
    a.mnt = root;
    a.root = cache;
    rc = in_child(tmpfs_child, &a);
    CHECK(rc == 0 || rc == CT_SKIP_EXIT, "tmpfs child: exit %d", rc);
    if (rc == CT_SKIP_EXIT)
        SKIP("  a 64 KiB tmpfs cannot be mounted here (user namespaces)");
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* ---- disk_replaced ------------------------------------------------------- */

/* .bin files under dir (and under dir/programs). */
static int bins_under(const char *dir)
{
    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/programs", dir);
    return count_files(dir, ".bin") + count_files(sub, ".bin");
}

static ino_t inode_of_db(const char *dir)
{
    char sub[PATH_MAX + 16], *names[4], path[PATH_MAX * 2];
    struct stat sb;
    int n;
    ino_t ino = 0;
    snprintf(sub, sizeof sub, "%s/tuning", dir);
    n = ct_list(dir, ".db", names, 4);
    if (n == 1) {
        snprintf(path, sizeof path, "%s/%s", dir, names[0]);
        if (stat(path, &sb) == 0) ino = sb.st_ino;
    }
    ct_free_list(names, n);
    if (n != 1) {
        n = ct_list(sub, ".db", names, 4);
        if (n == 1) {
            snprintf(path, sizeof path, "%s/%s", sub, names[0]);
            if (stat(path, &sb) == 0) ino = sb.st_ino;
        }
        ct_free_list(names, n);
    }
    return ino;
}

/* sub of root ("" = root itself) moved aside to path.elsewhere and
 * replaced by a file or by a symlink to where it went. */
static void replace(const char *path, const char *other, int symlink_it, const char *what)
{
    CHECK(rename(path, other) == 0, "%s: rename: %s", what, strerror(errno));
    if (!symlink_it)
        CHECK(ct_write(path, "x", 1) == 0, "%s: write", what);
    else
        CHECK(symlink(other, path) == 0, "%s: symlink: %s", what, strerror(errno));
}

static void restore(const char *path, const char *other, const char *what)
{
    CHECK(unlink(path) == 0, "%s: unlink: %s", what, strerror(errno));
    CHECK(rename(other, path) == 0, "%s: rename back: %s", what, strerror(errno));
}

/* After the repair: a new context stores what is missing, the next loads. */
static void healed(const char *root, const clattn_problem *q, const char *what)
{
    run_result r = run_ctx(root, q, 1, what);
    CHECK(r.log.warnings == 0, "%s: after the repair: %d warnings:\n%s", what, r.log.warnings,
          r.log.text);
    expect_clean_load(root, q, 1, 1, what);
}

/* Within one context: after a first call, sub of root is replaced; a
 * second call needs a new program (and, for the tuning directory, a tune
 * writes the db). Right results, one warning, nothing written through a
 * symlink; after the repair the cache heals. */
static void replaced_mid_run(const char *root, const char *sub, int symlink_it, int head_dim)
{
    char path[PATH_MAX + 16], other[PATH_MAX + 32], what[128];
    clattn_problem p = prefill_fused(), q = fresh_shape(head_dim);
    ct_log log;
    clattn_context *ctx;
    int l, bins;
    ino_t ino;
    const char *t;
    snprintf(path, sizeof path, "%s%s%s", root, *sub ? "/" : "", sub);
    snprintf(other, sizeof other, "%s.elsewhere", path);
    snprintf(what, sizeof what, "%s -> %s between two calls", *sub ? sub : "root",
             symlink_it ? "symlink" : "file");
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, what);
    replace(path, other, symlink_it, what);
    bins = bins_under(other);
    ino = inode_of_db(other);
    ct_forward_ok(ctx, &q, what);
    if (strcmp(sub, "programs") != 0) CHECK(tune_small(ctx, 0.2), "%s: tune", what);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 1, "%s: %d warnings, expected one:\n%s", what, log.warnings,
          log.text);
    if (symlink_it) {
        CHECK(bins_under(other) == bins, "%s: a binary was written through the symlink", what);
        CHECK(inode_of_db(other) == ino, "%s: the db was rewritten through the symlink", what);
    }
    t = warning_line(log.text, &l);
    NOTE("  %-36s %d warning: %.*s", what, log.warnings, l, t);
    restore(path, other, what);
    healed(root, &q, what);
}

/* Between two contexts: the second one refuses the replaced directory
 * (programs: no disk cache; tuning: no db) with one warning and computes
 * right; after the repair the cache heals. */
static void replaced_between(const char *root, const char *sub, int symlink_it, int head_dim)
{
    char path[PATH_MAX + 16], other[PATH_MAX + 32], what[128];
    clattn_problem q = fresh_shape(head_dim);
    run_result r;
    int l, bins;
    const char *t;
    snprintf(path, sizeof path, "%s/%s", root, sub);
    snprintf(other, sizeof other, "%s.elsewhere", path);
    snprintf(what, sizeof what, "%s -> %s between two contexts", sub,
             symlink_it ? "symlink" : "file");
    replace(path, other, symlink_it, what);
    bins = bins_under(other);
    r = run_ctx(root, &q, 1, what);
    CHECK(r.log.warnings == 1, "%s: %d warnings, expected one:\n%s", what, r.log.warnings,
          r.log.text);
    CHECK(bins_under(other) == bins, "%s: a binary was written through the symlink", what);
    t = warning_line(r.log.text, &l);
    NOTE("  %-36s %d warning: %.*s", what, r.log.warnings, l, t);
    restore(path, other, what);
    healed(root, &q, what);
}

int test_disk_replaced(int argc, char **argv)
{
    char root[PATH_MAX];
    clattn_problem p = prefill_fused();
    (void)argc;
    (void)argv;
    ct_fresh_dir("disk_replaced", root, sizeof root);
    {
        run_result r = run_ctx(root, &p, 1, "priming");
        CHECK(r.ok && r.log.warnings == 0, "priming");
    }
    replaced_mid_run(root, "programs", 0, 8);
    replaced_mid_run(root, "programs", 1, 12);
    replaced_mid_run(root, "tuning", 0, 20);
    replaced_mid_run(root, "tuning", 1, 24);
    replaced_mid_run(root, "", 1, 40);
    replaced_between(root, "programs", 1, 48);
    replaced_between(root, "tuning", 0, 56);
    replaced_between(root, "tuning", 1, 64);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* ---- disk_truncate_binary ------------------------------------------------ */

typedef struct bin_target {
    char path[PATH_MAX * 2];
    unsigned char *data;
    size_t len, key_len, payload_len;
} bin_target;

static int find_program(const char *root, const char *kernel, bin_target *b)
{
    char dir[PATH_MAX], *names[32], want[96];
    int n, found = 0;
    snprintf(dir, sizeof dir, "%s/programs", root);
    snprintf(want, sizeof want, "\nkernel %s\n", kernel);
    n = ct_list(dir, ".bin", names, 32);
    memset(b, 0, sizeof *b);
    for (int i = 0; i < n && !found; i++) {
        size_t len;
        unsigned char *d;
        uint64_t kl, pl;
        snprintf(b->path, sizeof b->path, "%s/%s", dir, names[i]);
        d = ct_read(b->path, &len);
        if (d && len > HEADER && strstr((char *)d + HEADER, want)) {
            memcpy(&kl, d + 16, 8);
            memcpy(&pl, d + 24, 8);
            if (HEADER + kl + pl == len) {
                b->data = d;
                b->len = len;
                b->key_len = (size_t)kl;
                b->payload_len = (size_t)pl;
                found = 1;
                continue;
            }
        }
        free(d);
    }
    ct_free_list(names, n);
    return found;
}

typedef struct tally {
    int cases, reported, healed, full_heals;
} tally;

/* One damaged version of b in place: a context rejects it once, rebuilds,
 * computes right and rewrites a valid entry. Every `heal_every`-th case a
 * new context must also load it without rebuilding. */
static void damaged_binary_case(const char *root, const bin_target *b, const unsigned char *data,
                                size_t len, const char *what, int full_heal, tally *t)
{
    clattn_problem p = decode_splitkv();
    run_result r;
    unlink(b->path);
    if (ct_write(b->path, data, len) != 0) {
        CHECK(0, "%s: cannot write the damaged file", what);
        return;
    }
    r = run_ctx(root, &p, 1, what);
    t->cases++;
    if (r.log.warnings == 1 && r.st.cache_rejected == 1 && strstr(r.log.text, b->path))
        t->reported++;
    else
        CHECK(0, "%s: %d warnings, %llu rejected (expected one, naming the file):\n%s", what,
              r.log.warnings, (unsigned long long)r.st.cache_rejected, r.log.text);
    CHECK(r.st.programs_built == 1 && r.st.programs_stored == 1 && r.st.programs_loaded == 1,
          "%s: built %llu stored %llu loaded %llu, expected 1 1 1 (combine rebuilt, fused "
          "loaded)", what, (unsigned long long)r.st.programs_built,
          (unsigned long long)r.st.programs_stored, (unsigned long long)r.st.programs_loaded);
    if (bin_valid(b->path, b->data + HEADER, b->key_len))
        t->healed++;
    else
        CHECK(0, "%s: the entry was not rewritten whole", what);
    if (full_heal) {
        expect_clean_load(root, &p, 1, 2, what);
        t->full_heals++;
    }
}

/* The offsets to damage: all of them in long mode; otherwise every offset
 * of the header, the first `key_lines` bytes of the key (its text lines:
 * library, fingerprint, kernel, options), `spread` more over the rest of the
 * key and `spread` over the payload, and the boundaries. (Each case costs a
 * context, a rebuild and a store: about 20-80 ms on PoCL.) */
static size_t *damage_offsets(const bin_target *b, size_t key_lines, int spread, size_t *n)
{
    size_t hk = HEADER + b->key_len, k = 0;
    size_t *v = malloc((b->len + 4 * (size_t)spread + 16) * sizeof *v);
    if (!v) return NULL;
    if (long_mode()) {
        for (size_t i = 0; i < b->len; i++) v[k++] = i;
    } else {
        size_t dense = HEADER + (key_lines < b->key_len ? key_lines : b->key_len);
        for (size_t i = 0; i < dense; i++) v[k++] = i;
        for (int j = 0; j < spread; j++) {
            size_t off = dense + (size_t)((double)(hk - dense) * j / spread);
            if (off > v[k - 1]) v[k++] = off;
        }
        if (hk - 1 > v[k - 1]) v[k++] = hk - 1;
        v[k++] = hk;
        for (int j = 1; j < spread; j++) {
            size_t off = hk + (size_t)((double)b->payload_len * j / spread);
            if (off > v[k - 1] && off < b->len) v[k++] = off;
        }
        if (b->len - 1 > v[k - 1]) v[k++] = b->len - 1;
    }
    *n = k;
    return v;
}

int test_disk_truncate_binary(int argc, char **argv)
{
    char root[PATH_MAX], what[96];
    clattn_problem p = decode_splitkv();
    bin_target b;
    size_t n = 0, *offs;
    unsigned char *buf;
    double t0;
    (void)argc;
    (void)argv;
    ct_fresh_dir("disk_truncate_binary", root, sizeof root);
    {
        run_result r = run_ctx(root, &p, 1, "priming");
        CHECK(r.ok && r.log.warnings == 0 && r.st.programs_stored == 2, "priming: stored %llu",
              (unsigned long long)r.st.programs_stored);
    }
    if (!find_program(root, "attn_splitkv_combine", &b)) {
        CHECK(0, "no combine program in %s/programs", root);
        ct_remove_tree(root);
        return 1;
    }
    {
        /* The key's text lines, up to the kernel source. */
        const unsigned char *src = memmem(b.data + HEADER, b.key_len, "\nsource ", 8);
        size_t lines = src ? (size_t)(src - (b.data + HEADER)) + 8 : 256;
        offs = damage_offsets(&b, lines > 100 ? 100 : lines, 30, &n);
    }
    buf = malloc(b.len);
    NOTE("combine program: %zu bytes (header %d, key %zu, payload %zu); %zu offsets%s", b.len,
         HEADER, b.key_len, b.payload_len, n, long_mode() ? " (CLATTN_LONG: all)" : "");
    for (int kind = 0; kind < 2 && offs && buf; kind++) {
        tally t;
        int heal_every = long_mode() ? 97 : 23;
        memset(&t, 0, sizeof t);
        t0 = ct_now();
        for (size_t i = 0; i < n; i++) {
            size_t at = offs[i];
            memcpy(buf, b.data, b.len);
            if (kind == 1) buf[at] ^= 0xFF;
            snprintf(what, sizeof what, "%s at %zu", kind ? "flipped" : "truncated", at);
            damaged_binary_case(root, &b, buf, kind ? b.len : at, what,
                                i % (size_t)heal_every == 0 || i + 1 == n, &t);
            if (ct_failures > 20) {
                NOTE("too many failures: stopping");
                break;
            }
            if (long_mode() && (i + 1) % 2000 == 0)
                NOTE("    %s: %zu of %zu offsets done, %d failures, %.0f s",
                     kind ? "flipped" : "truncated", i + 1, n, ct_failures, ct_now() - t0);
        }
        NOTE("  %s: %d offsets, %d reported once, %d rewritten whole, %d loaded by a new "
             "context, in %.1f s", kind ? "one byte flipped" : "truncated", t.cases,
             t.reported, t.healed, t.full_heals, ct_now() - t0);
    }
    /* The pristine file back: loads, nothing said. */
    ct_write(b.path, b.data, b.len);
    expect_clean_load(root, &p, 1, 2, "pristine again");
    free(buf);
    free(offs);
    free(b.data);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* ---- disk_foreign -------------------------------------------------------- */

/* b's file with one line of the key ("library ", "fingerprint ") altered
 * (same length: the header stays consistent). */
static unsigned char *altered_key(const bin_target *b, const char *line)
{
    unsigned char *d = malloc(b->len);
    char *s;
    if (!d) return NULL;
    memcpy(d, b->data, b->len);
    s = memmem(d + HEADER, b->key_len, line, strlen(line));
    if (!s) {
        free(d);
        return NULL;
    }
    s += strlen(line);
    *s = *s == '9' ? '8' : '9';
    return d;
}

static uint64_t fnv_str(const unsigned char *p, size_t n)
{
    return fnv(p, n);
}

int test_disk_foreign(int argc, char **argv)
{
    char root[PATH_MAX], what[96];
    clattn_problem p = decode_splitkv();
    bin_target b;
    static const char *const lines[] = {"\nlibrary ", "\nfingerprint "};
    (void)argc;
    (void)argv;
    ct_fresh_dir("disk_foreign", root, sizeof root);
    run_ctx(root, &p, 1, "priming");
    if (!find_program(root, "attn_splitkv_combine", &b)) {
        CHECK(0, "no combine program");
        ct_remove_tree(root);
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        unsigned char *d = altered_key(&b, lines[i]);
        const char *name = i ? "another device fingerprint" : "another library version";
        tally t;
        memset(&t, 0, sizeof t);
        CHECK(d != NULL, "no '%s' line in the key", lines[i] + 1);
        if (!d) continue;
        /* Under our name (as if the name collided): rejected once. */
        snprintf(what, sizeof what, "binary of %s under our name", name);
        damaged_binary_case(root, &b, d, b.len, what, 1, &t);
        NOTE("  %-52s %s", what, t.reported == 1 ? "reported once, rebuilt, healed" : "FAILED");
        /* Under its own name (the usual case): never looked at, no word. */
        {
            char own[PATH_MAX * 2 + 32], dir[PATH_MAX + 16];
            run_result r;
            snprintf(dir, sizeof dir, "%s/programs", root);
            snprintf(own, sizeof own, "%s/%016llx.bin", dir,
                     (unsigned long long)fnv_str(d + HEADER, b.key_len));
            CHECK(ct_write(own, d, b.len) == 0, "write %s", own);
            r = run_ctx(root, &p, 1, name);
            CHECK(r.log.warnings == 0 && r.st.programs_loaded == 2 && r.st.programs_built == 0,
                  "%s under its own name: loaded %llu built %llu, %d warnings:\n%s", name,
                  (unsigned long long)r.st.programs_loaded,
                  (unsigned long long)r.st.programs_built, r.log.warnings, r.log.text);
            CHECK(ct_exists(own), "a foreign entry under its own name was removed");
            NOTE("  %-52s ignored, ours loaded", "binary of the same under its own name");
            unlink(own);
        }
        free(d);
    }

    /* Tuning entries of another library version: served as stale (not
     * damage, not reported), right results; a tune replaces them. */
    {
        char db[PATH_MAX * 2];
        size_t len, count = 0;
        unsigned char *text;
        ct_log log;
        clattn_context *ctx;
        int stale = 0, lines_changed = 0;
        ct_log_reset(&log);
        ctx = ct_context(root, &log);
        CHECK(tune_small(ctx, 0.5), "tune");
        clattn_context_destroy(ctx);
        if (db_file(root, db, sizeof db) && (text = ct_read(db, &len)) != NULL) {
            char *s = (char *)text;
            while ((s = strstr(s, "| lib=")) != NULL) {
                s += 6;
                *s = *s == '9' ? '8' : '9';
                lines_changed++;
            }
            ct_write(db, text, len);
            free(text);
        }
        CHECK(lines_changed > 0, "no entry line in the db");
        ct_log_reset(&log);
        ctx = ct_context(root, &log);
        clattn_tuning_count(ctx, &count);
        for (size_t i = 0; i < count; i++) {
            clattn_tuning_entry e;
            if (clattn_tuning_get(ctx, i, &e) == CLATTN_OK && e.stale) stale++;
        }
        ct_forward_ok(ctx, &p, "db of another library version");
        {
            clattn_problem s = ct_shape_prefill();
            s.seq_q = s.seq_kv = 32;
            s.head_dim = 16;
            ct_forward_ok(ctx, &s, "db of another library version (tuned shape)");
        }
        CHECK(stale == lines_changed && log.warnings == 0,
              "db of another library version: %d stale of %d changed lines, %d warnings:\n%s",
              stale, lines_changed, log.warnings, log.text);
        CHECK(tune_small(ctx, 0.3), "retune over stale entries");
        CHECK(user_entries(ctx) >= 1, "the tune did not replace the stale entries");
        clattn_context_destroy(ctx);
        NOTE("  db entries of another library version: %d served as stale, silently; "
             "a tune makes them current", stale);
    }
    free(b.data);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* ---- disk_truncate_db ---------------------------------------------------- */

/* A tuned db as written, and where its lines start (the entries begin after
 * the fingerprint line, which ends at fp_end). */
typedef struct db_layout {
    char root[PATH_MAX], db[PATH_MAX * 2], aside[PATH_MAX * 2 + 8];
    clattn_problem shapes[2];
    unsigned char *pristine;
    size_t len, n0, fp_end, *line_start, nlines;
} db_layout;

/* What damage at `at` (kind 0: the file cut there, 1: the byte flipped)
 * should do: one warning or none, the file set aside or not, how many
 * entries still apply. */
static void damage_expectation(const db_layout *d, int kind, size_t at, int *expect_warn,
                               int *aside_expected, size_t *expect_n)
{
    /* Entries wholly before the damage; whether `at` starts a line. */
    size_t line = 0;
    int at_line_start = 0;
    for (size_t k = 0; k < d->nlines; k++) {
        if (d->line_start[k] == at) at_line_start = 1;
        if (d->line_start[k] <= at) line = k;
    }
    const size_t whole = line >= 2 ? line - 2 : 0; /* entry lines fully before line `line` */
    *aside_expected = at < d->fp_end;
    if (kind == 0) {
        /* A cut at a line start past the fingerprint leaves a valid, shorter
         * db (nothing to notice); elsewhere the partial line or header is
         * damage. */
        *expect_warn = !(at_line_start && at >= d->fp_end);
        *expect_n = *aside_expected ? 0 : whole;
    } else {
        /* A flipped byte is never ASCII: the line it is in is damaged; a
         * flipped newline spoils two entry lines. */
        const int nl = d->pristine[at] == '\n';
        *expect_warn = 1;
        *expect_n = *aside_expected ? 0 : d->n0 - 1 - (nl && line + 1 < d->nlines - 1);
        if (!*aside_expected && nl && line == d->nlines - 2) *expect_n = d->n0 - 1;
    }
}

/* Writes the damaged db, opens a context on it (which must report it once,
 * or stay silent for a clean cut, and still forward correctly), then a
 * second one, which must find it healed. Counts into the totals. */
static void check_damaged_db(db_layout *d, int kind, size_t at, unsigned char *buf,
                             int *reported, int *silent, int *healed)
{
    int expect_warn, aside_expected;
    size_t expect_n;
    char what[96];
    ct_log l2;
    damage_expectation(d, kind, at, &expect_warn, &aside_expected, &expect_n);
    memcpy(buf, d->pristine, d->len);
    if (kind == 1) buf[at] ^= 0xFF;
    unlink(d->aside);
    ct_write(d->db, buf, kind ? d->len : at);
    snprintf(what, sizeof what, "db %s at %zu", kind ? "flipped" : "truncated", at);
    ct_log_reset(&l2);
    clattn_context *ctx = ct_context(d->root, &l2);
    size_t n = user_entries(ctx);
    ct_forward_ok(ctx, &d->shapes[at % 2], what);
    clattn_context_destroy(ctx);
    if (expect_warn) {
        if (l2.warnings == 1) (*reported)++;
        else
            CHECK(0, "%s: %d warnings, expected one:\n%s", what, l2.warnings, l2.text);
    } else {
        if (l2.warnings == 0) (*silent)++;
        else
            CHECK(0, "%s: %d warnings, expected none:\n%s", what, l2.warnings, l2.text);
    }
    CHECK(n == expect_n, "%s: %zu entries apply, expected %zu", what, n, expect_n);
    CHECK(!aside_expected || ct_exists(d->aside) || !ct_exists(d->db),
          "%s: the damaged db is still in place", what);
    /* Healed: the next context is silent and sees the same. */
    ct_log_reset(&l2);
    ctx = ct_context(d->root, &l2);
    n = user_entries(ctx);
    clattn_context_destroy(ctx);
    if (l2.warnings == 0 && n == expect_n) (*healed)++;
    else
        CHECK(0, "%s: the next context: %d warnings, %zu entries (expected %zu):\n%s", what,
              l2.warnings, n, expect_n, l2.text);
}

/* Every offset of the first two entry lines and the header, then (quick
 * mode) a sample of the rest, for one kind of damage. */
static void sweep_damage(db_layout *d, int kind, unsigned char *buf)
{
    int cases = 0, reported = 0, silent = 0, healed = 0;
    const double t0 = ct_now();
    for (size_t at = 0; at < d->len; at++) {
        check_damaged_db(d, kind, at, buf, &reported, &silent, &healed);
        cases++;
        if (ct_failures > 20) {
            NOTE("too many failures: stopping");
            break;
        }
        if (!long_mode() && at > d->fp_end + 2 * (d->line_start[3] - d->line_start[2]) &&
            at + 1 < d->len) {
            /* Past the first two entry lines, quick mode samples. */
            size_t step = (d->len - at) / 60 + 1;
            at += step - 1;
            if (at >= d->len - 1) at = d->len - 2;
        }
    }
    NOTE("  %s: %d offsets, %d reported once, %d silent (whole-line cuts), %d healed, "
         "in %.1f s", kind ? "one byte flipped" : "truncated", cases, reported, silent, healed,
         ct_now() - t0);
}

/* While a tuner holds the lock (it appends to the file), a context that
 * finds damage leaves the rewrite to it; once the lock is free the next
 * context rewrites. */
static void check_damage_under_lock(const db_layout *d)
{
    char lock[PATH_MAX * 2 + 8];
    size_t cut = d->line_start[d->nlines - 2] + 5, now;
    ct_log log;
    snprintf(lock, sizeof lock, "%s.lock", d->db);
    const int fd = open(lock, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0, "cannot take %s", lock);
    ct_write(d->db, d->pristine, cut);
    ct_log_reset(&log);
    clattn_context *ctx = ct_context(d->root, &log);
    clattn_context_destroy(ctx);
    unsigned char *text = ct_read(d->db, &now);
    CHECK(log.warnings == 1 && strstr(log.text, "not rewritten") && text && now == cut,
          "damage under a held lock: %d warnings, %zu bytes (%zu written):\n%s", log.warnings,
          now, cut, log.text);
    free(text);
    if (fd >= 0) close(fd);
    ct_log_reset(&log);
    ctx = ct_context(d->root, &log);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 1 && strstr(log.text, "file rewritten"),
          "damage after the lock was freed: %d warnings:\n%s", log.warnings, log.text);
    ct_log_reset(&log);
    ctx = ct_context(d->root, &log);
    CHECK(user_entries(ctx) == d->n0 - 1 && log.warnings == 0,
          "after the repair: %zu entries (expected %zu), %d warnings", user_entries(ctx),
          d->n0 - 1, log.warnings);
    clattn_context_destroy(ctx);
    NOTE("  damage while a tuner holds the lock: left to the tuner (reported once), "
         "rewritten by the first context after it");
}

/* Tunes two shapes into a fresh cache and reads the db back; 0 on success. */
static int make_tuned_db(db_layout *d)
{
    clattn_tune_options o;
    ct_log log;
    ct_fresh_dir("disk_truncate_db", d->root, sizeof d->root);
    d->shapes[0] = ct_shape_prefill();
    d->shapes[1] = ct_shape_decode();
    ct_log_reset(&log);
    clattn_context *ctx = ct_context(d->root, &log);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 1;
    for (int i = 0; i < 2; i++)
        CHECK(clattn_tune(ctx, &d->shapes[i], 1, &o, NULL, 0, NULL) == CLATTN_OK, "tune: %s",
              clattn_last_error(ctx));
    d->n0 = user_entries(ctx);
    clattn_context_destroy(ctx);
    if (!db_file(d->root, d->db, sizeof d->db) || !(d->pristine = ct_read(d->db, &d->len)) ||
        d->n0 < 2) {
        CHECK(0, "the tune left no db with two entries or more");
        return -1;
    }
    snprintf(d->aside, sizeof d->aside, "%s.bad", d->db);
    d->line_start = malloc((d->len + 1) * sizeof *d->line_start);
    d->nlines = 0;
    d->line_start[d->nlines++] = 0;
    for (size_t i = 0; i < d->len; i++)
        if (d->pristine[i] == '\n') d->line_start[d->nlines++] = i + 1;
    d->fp_end = d->line_start[2];
    return 0;
}

int test_disk_truncate_db(int argc, char **argv)
{
    static db_layout d;
    ct_log log;
    (void)argc;
    (void)argv;
    memset(&d, 0, sizeof d);
    if (make_tuned_db(&d) != 0) {
        free(d.pristine);
        ct_remove_tree(d.root);
        return 1;
    }
    NOTE("db: %zu bytes, %zu lines, %zu entries", d.len, d.nlines - 1, d.n0);
    unsigned char *buf = malloc(d.len);
    for (int kind = 0; kind < 2; kind++)
        sweep_damage(&d, kind, buf);
    unlink(d.aside);
    ct_write(d.db, d.pristine, d.len);
    ct_log_reset(&log);
    clattn_context *ctx = ct_context(d.root, &log);
    CHECK(user_entries(ctx) == d.n0 && log.warnings == 0, "the pristine db again");
    clattn_context_destroy(ctx);
    check_damage_under_lock(&d);
    free(d.line_start);
    free(buf);
    free(d.pristine);
    ct_remove_tree(d.root);
    return ct_failures ? 1 : 0;
}
