/* The cache directory itself:
 *   dir_refused: a root that is a file, a symlink, writable by group or
 *     others (or its programs directory), or owned by another user is
 *     refused with a warning (disk_cache_enabled == 0); the forward is right
 *     anyway and a context after the repair uses the disk again;
 *   unwritable_dir: a programs directory that cannot be written (as root,
 *     where permission bits stop nothing, in a child process that drops to
 *     the user nobody) or that is a file: the forward is right, a warning
 *     says why nothing was stored, and after the repair binaries are
 *     written and loaded again. */
#define _DEFAULT_SOURCE /* setgroups */
#include "cache_tests.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define NOBODY 65534

/* A context on root must refuse the disk (warning containing why), and
 * compute right. */
static void expect_refused(const char *root, const char *name, const char *why)
{
    clattn_problem p = ct_shape_prefill();
    ct_log log;
    clattn_context *ctx;
    clattn_stats st;
    char what[160];
    snprintf(what, sizeof what, "%s: forward without a disk cache", name);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, what);
    st = ct_stats(ctx);
    clattn_context_destroy(ctx);
    CHECK(st.disk_cache_enabled == 0, "%s: the disk cache was not refused", name);
    CHECK(st.programs_stored == 0 && st.programs_loaded == 0,
          "%s: stored %llu, loaded %llu with a refused directory", name,
          (unsigned long long)st.programs_stored, (unsigned long long)st.programs_loaded);
    CHECK(log.warnings == 1 && strstr(log.text, why) != NULL,
          "%s: expected one warning saying '%s', got %d:\n%s", name, why, log.warnings,
          log.text);
    NOTE("  %-36s refused: %.*s", name,
         (int)(strchr(log.text, '\n') ? strchr(log.text, '\n') - log.text : 0), log.text);
}

/* After the repair: the disk is used (a binary stored, then loaded). */
static void expect_healed(const char *root, const char *name)
{
    clattn_problem p = ct_shape_prefill();
    ct_log log;
    clattn_context *ctx;
    clattn_stats a, b;
    char what[160];
    snprintf(what, sizeof what, "%s: forward after the repair", name);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, what);
    a = ct_stats(ctx);
    clattn_context_destroy(ctx);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, what);
    b = ct_stats(ctx);
    clattn_context_destroy(ctx);
    CHECK(a.disk_cache_enabled && a.programs_built + a.programs_loaded >= 1 &&
              a.programs_stored + a.programs_loaded >= 1,
          "%s: after the repair: enabled %d, built %llu, stored %llu, loaded %llu", name,
          a.disk_cache_enabled, (unsigned long long)a.programs_built,
          (unsigned long long)a.programs_stored, (unsigned long long)a.programs_loaded);
    CHECK(b.programs_loaded >= 1 && b.programs_built == 0,
          "%s: the context after that: loaded %llu, built %llu", name,
          (unsigned long long)b.programs_loaded, (unsigned long long)b.programs_built);
    CHECK(log.warnings == 0, "%s: warnings after the repair:\n%s", name, log.text);
}

int test_dir_refused(int argc, char **argv)
{
    char root[PATH_MAX], real[PATH_MAX + 16], sub[PATH_MAX * 2];
    (void)argc;
    (void)argv;
    ct_fresh_dir("dir_refused", root, sizeof root);

    /* The root is a regular file. */
    rmdir(root);
    CHECK(ct_write(root, "not a directory\n", 16) == 0, "cannot write %s", root);
    expect_refused(root, "cache dir is a file", "not a directory");
    {
        size_t len;
        unsigned char *data = ct_read(root, &len);
        CHECK(data && len == 16 && memcmp(data, "not a directory\n", 16) == 0,
              "the file in place of the cache dir was changed");
        free(data);
    }
    unlink(root);
    expect_healed(root, "cache dir is a file");

    /* The root is a symlink to a good directory. */
    ct_remove_tree(root);
    snprintf(real, sizeof real, "%s.real", root);
    CHECK(mkdir(real, 0700) == 0 && symlink(real, root) == 0, "cannot make the symlink");
    expect_refused(root, "cache dir is a symlink", "symbolic link");
    snprintf(sub, sizeof sub, "%s/programs", real);
    CHECK(!ct_exists(sub), "something was written through the symlink (%s)", sub);
    unlink(root);
    ct_remove_tree(real);
    CHECK(mkdir(root, 0700) == 0, "mkdir %s", root);
    expect_healed(root, "cache dir is a symlink");

    /* Writable by group, by others, and a programs directory writable by
     * group. */
    CHECK(chmod(root, 0770) == 0, "chmod");
    expect_refused(root, "cache dir group-writable (0770)", "writable by group or others");
    CHECK(chmod(root, 0707) == 0, "chmod");
    expect_refused(root, "cache dir world-writable (0707)", "writable by group or others");
    CHECK(chmod(root, 0700) == 0, "chmod");
    snprintf(sub, sizeof sub, "%s/programs", root);
    CHECK(chmod(sub, 0770) == 0, "chmod %s", sub);
    expect_refused(root, "programs dir group-writable (0770)", "writable by group or others");
    CHECK(chmod(sub, 0700) == 0, "chmod");
    expect_healed(root, "group/world-writable");

    /* Owned by another user (only root can arrange that). */
    if (geteuid() == 0) {
        CHECK(chown(root, NOBODY, NOBODY) == 0, "chown");
        expect_refused(root, "cache dir owned by another user", "owned by another user");
        CHECK(chown(root, 0, 0) == 0, "chown");
        expect_healed(root, "owned by another user");
    } else {
        SKIP("  %-36s (needs root)", "cache dir owned by another user");
    }
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* The programs directory cannot be written to: a forward works, a warning
 * says the binary could not be stored; once writable again, binaries are
 * written and loaded. Runs as the current user. */
static void unwritable_programs(const char *root)
{
    char programs[PATH_MAX + 16];
    clattn_problem p = ct_shape_prefill();
    ct_log log;
    clattn_context *ctx;
    clattn_stats st;
    snprintf(programs, sizeof programs, "%s/programs", root);
    mkdir(programs, 0700);
    CHECK(chmod(programs, 0500) == 0, "chmod 0500 %s: %s", programs, strerror(errno));
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    ct_forward_ok(ctx, &p, "forward with a read-only programs directory");
    st = ct_stats(ctx);
    clattn_context_destroy(ctx);
    CHECK(st.disk_cache_enabled == 1, "a read-only programs directory is still a cache");
    CHECK(st.programs_built == 1 && st.programs_stored == 0,
          "read-only: built %llu, stored %llu, expected 1 0",
          (unsigned long long)st.programs_built, (unsigned long long)st.programs_stored);
    CHECK(log.warnings == 1 && strstr(log.text, "programs"),
          "read-only: expected one warning about the programs directory, got %d:\n%s",
          log.warnings, log.text);
    NOTE("  read-only programs dir reported: %.*s",
         (int)(strchr(log.text, '\n') ? strchr(log.text, '\n') - log.text : 0), log.text);
    CHECK(chmod(programs, 0700) == 0, "chmod 0700");
    expect_healed(root, "read-only programs dir");
}

int test_unwritable_dir(int argc, char **argv)
{
    char root[PATH_MAX], programs[PATH_MAX + 16];
    (void)argc;
    (void)argv;
    ct_fresh_dir("unwritable_dir", root, sizeof root);
    if (geteuid() != 0) {
        unwritable_programs(root);
    } else {
        /* Root writes through any mode bits: the check runs in a child that
         * becomes the user nobody, on a tree chowned to it (no OpenCL has
         * been touched in this process before the fork). Where the ancestors
         * of the build tree do not let nobody through, that part is skipped
         * (exit 77) and only the programs-dir-is-a-file case below runs. */
        char pocl[PATH_MAX + 16], home[PATH_MAX + 16];
        pid_t pid;
        snprintf(pocl, sizeof pocl, "%s/pocl", root);
        snprintf(home, sizeof home, "%s/home", root);
        snprintf(programs, sizeof programs, "%s/cache", root);
        mkdir(pocl, 0700);
        mkdir(home, 0700);
        mkdir(programs, 0700);
        CHECK(chown(root, NOBODY, NOBODY) == 0 && chown(pocl, NOBODY, NOBODY) == 0 &&
                  chown(home, NOBODY, NOBODY) == 0 && chown(programs, NOBODY, NOBODY) == 0,
              "chown to nobody: %s", strerror(errno));
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
            if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
                fprintf(stderr, "FAIL: cannot become nobody: %s\n", strerror(errno));
                _exit(1);
            }
            setenv("POCL_CACHE_DIR", pocl, 1);
            setenv("HOME", home, 1);
            if (access(programs, W_OK | X_OK) != 0) {
                NOTE("  user nobody cannot reach %s (%s): the read-only check is skipped",
                     programs, strerror(errno));
                _exit(77);
            }
            NOTE("  (running as uid %d: root ignores permission bits)", (int)getuid());
            unwritable_programs(programs);
            fflush(stdout);
            _exit(ct_failures ? 1 : 0);
        }
        {
            int rc = pid > 0 ? ct_wait(pid) : -1;
            CHECK(rc == 0 || rc == CT_SKIP_EXIT, "the check as user nobody failed (exit %d)", rc);
            if (rc == CT_SKIP_EXIT)
                SKIP("  the read-only programs dir as user nobody");
        }
    }

    /* The programs directory is a file: the context refuses the disk. */
    {
        char sub[PATH_MAX * 2], root2[PATH_MAX + 16];
        snprintf(root2, sizeof root2, "%s/second", root);
        mkdir(root2, 0700);
        snprintf(sub, sizeof sub, "%s/programs", root2);
        CHECK(ct_write(sub, "x", 1) == 0, "cannot write %s", sub);
        expect_refused(root2, "programs dir is a file", "not a directory");
        unlink(sub);
        expect_healed(root2, "programs dir is a file");
    }
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}
