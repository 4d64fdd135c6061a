/* launch_code: the binaries clattn stores carry what the driver generated
 * for the kernels' launches, so a new process whose driver cache is empty
 * does not compile them again.
 *
 * PoCL's CPU driver compiles a work-group function per local size and grid
 * class at a kernel's first launch, into its kernel cache (under
 * POCL_CACHE_DIR: <program hash>/<kernel>/<local size>[-goffs0][-smallgrid]/
 * <kernel>.so; "0-0-0" holds the generic one compiled for the program
 * binary), and only compiles one that is missing there. Process A runs on an
 * empty clattn cache and an empty PoCL cache; every launch-specific
 * work-group function it left in its PoCL cache must be packed in a binary
 * clattn stored (PoCL names each file inside its binary). Process B runs on
 * A's clattn cache with a new, empty PoCL cache: it must load every program
 * (none built, none rewritten) and get correct results, and every
 * launch-specific work-group function in its PoCL cache must be one of
 * those packed in the binaries, i.e. unpacked rather than compiled. On
 * another driver only the counters and results are checked (a skip). */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_FUNCS = 64, MAX_BINS = 64 };

typedef struct counters {
    unsigned long long built, loaded, stored, rejected;
    int warnings;
} counters;

static const char *last_part(const char *path, size_t end, size_t *start)
{
    size_t i = end;
    while (i > 0 && path[i - 1] != '/') i--;
    *start = i;
    return path + i;
}

/* Adds "<kernel>/<variant>/<file>" of each launch-specific work-group
 * function under dir (recursively) to names; returns the new count. */
static int collect(const char *dir, int depth, char **names, int n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return n;
    while ((e = readdir(d)) != NULL && n < MAX_FUNCS) {
        char path[PATH_MAX];
        struct stat st;
        size_t len = strlen(e->d_name), file0, var0, ker0;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 8) n = collect(path, depth + 1, names, n);
            continue;
        }
        if (!S_ISREG(st.st_mode) || len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        last_part(path, strlen(path), &file0);
        if (file0 < 2) continue;
        last_part(path, file0 - 1, &var0);
        if (var0 < 2) continue;
        last_part(path, var0 - 1, &ker0);
        if (strncmp(path + var0, "0-0-0/", 6) == 0) continue; /* the generic one */
        names[n] = malloc(strlen(path + ker0) + 1);
        if (names[n]) strcpy(names[n++], path + ker0);
    }
    closedir(d);
    return n;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
}

/* The program files of root/programs, whole. */
typedef struct bins {
    int n;
    char *name[MAX_BINS];
    unsigned char *data[MAX_BINS];
    size_t len[MAX_BINS];
} bins;

static void read_bins(const char *root, bins *b)
{
    char dir[PATH_MAX], path[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s/programs", root);
    b->n = ct_list(dir, ".bin", b->name, MAX_BINS);
    for (int i = 0; i < b->n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, b->name[i]);
        b->data[i] = ct_read(path, &b->len[i]);
        CHECK(b->data[i] != NULL, "cannot read %s", path);
    }
}

static void free_bins(bins *b)
{
    for (int i = 0; i < b->n; i++) free(b->data[i]);
    ct_free_list(b->name, b->n);
    b->n = 0;
}

static int in_bins(const bins *b, const char *text)
{
    size_t k = strlen(text);
    for (int i = 0; i < b->n; i++)
        for (size_t j = 0; b->data[i] && j + k <= b->len[i]; j++)
            if (b->data[i][j] == (unsigned char)text[0] && memcmp(b->data[i] + j, text, k) == 0)
                return 1;
    return 0;
}

static int same_bins(const bins *a, const bins *b)
{
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        int found = 0;
        for (int j = 0; j < b->n && !found; j++)
            found = strcmp(a->name[i], b->name[j]) == 0 && a->len[i] == b->len[j] &&
                    a->data[i] && b->data[j] && memcmp(a->data[i], b->data[j], a->len[i]) == 0;
        if (!found) return 0;
    }
    return 1;
}

static int run_child(const char *root, const char *pocl_dir, const char *out, counters *c)
{
    char pocl_env[PATH_MAX + 32];
    const char *args[] = {ct_base, "child_launch_code", root, NULL};
    const char *env[] = {pocl_env, "POCL_KERNEL_CACHE=1", NULL};
    int rc, ok;
    size_t len;
    char *text;
    snprintf(pocl_env, sizeof pocl_env, "POCL_CACHE_DIR=%s", pocl_dir);
    rc = ct_wait(ct_spawn_self(args, env, out));
    text = (char *)ct_read(out, &len);
    ok = rc == 0 && text &&
         sscanf(text, "built=%llu loaded=%llu stored=%llu rejected=%llu warnings=%d", &c->built,
                &c->loaded, &c->stored, &c->rejected, &c->warnings) == 5;
    CHECK(ok, "child on PoCL cache %s: exit %d, output '%s'", pocl_dir, rc, text ? text : "");
    free(text);
    return ok;
}

int test_launch_code(int argc, char **argv)
{
    char root[PATH_MAX], pocl_a[PATH_MAX + 16], pocl_b[PATH_MAX + 16], out[PATH_MAX + 16];
    char *funcs_a[MAX_FUNCS], *funcs_b[MAX_FUNCS];
    int na = 0, nb = 0;
    counters a, b;
    bins before = {0}, after = {0};
    (void)argc;
    (void)argv;
    ct_fresh_dir("launch_code", root, sizeof root);
    snprintf(pocl_a, sizeof pocl_a, "%s/pocl-a", root);
    snprintf(pocl_b, sizeof pocl_b, "%s/pocl-b", root);
    snprintf(out, sizeof out, "%s.out", root);

    if (!run_child(root, pocl_a, out, &a)) goto done;
    NOTE("process A (both caches empty): %llu built, %llu stored", a.built, a.stored);
    CHECK(a.built > 0 && a.stored == a.built && a.loaded == 0 && a.warnings == 0,
          "process A: built %llu, stored %llu, loaded %llu, %d warnings", a.built, a.stored,
          a.loaded, a.warnings);
    read_bins(root, &before);
    CHECK((unsigned long long)before.n == a.built, "%d program files after process A, which "
          "built %llu programs", before.n, a.built);
    na = collect(pocl_a, 0, funcs_a, 0);
    if (na == 0)
        SKIP("no launch-specific work-group functions under %s (not PoCL's CPU driver?): "
             "only counters and results are checked", pocl_a);
    for (int i = 0; i < na; i++) {
        NOTE("  process A's launches compiled %s", funcs_a[i]);
        CHECK(in_bins(&before, funcs_a[i]),
              "no stored binary carries %s, which process A's launches compiled", funcs_a[i]);
    }

    if (!run_child(root, pocl_b, out, &b)) goto done;
    NOTE("process B (clattn cache warm, PoCL cache empty): %llu loaded, %llu built, %llu "
         "stored", b.loaded, b.built, b.stored);
    CHECK(b.loaded == a.built && b.built == 0 && b.stored == 0 && b.rejected == 0 &&
              b.warnings == 0,
          "process B: loaded %llu (A built %llu), built %llu, stored %llu, rejected %llu, %d "
          "warnings", b.loaded, a.built, b.built, b.stored, b.rejected, b.warnings);
    read_bins(root, &after);
    CHECK(same_bins(&before, &after), "process B changed the program files");
    nb = collect(pocl_b, 0, funcs_b, 0);
    for (int i = 0; i < nb; i++)
        CHECK(in_bins(&before, funcs_b[i]),
              "process B compiled %s: the stored binaries lack it", funcs_b[i]);
    CHECK(na == 0 || nb == na,
          "process B's PoCL cache holds %d launch-specific work-group functions, A's %d", nb,
          na);
    if (na > 0 && ct_failures == 0)
        NOTE("%d launch-specific work-group function(s) came from clattn's binaries", nb);

done:
    free_names(funcs_a, na);
    free_names(funcs_b, nb);
    free_bins(&before);
    free_bins(&after);
    remove(out);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* Child: ROOT. Correct forwards of the prefill and decode shapes (fused,
 * split-KV and combine kernels), then the counters. */
int child_launch_code(int argc, char **argv)
{
    clattn_problem p = ct_shape_prefill(), d = ct_shape_decode();
    ct_log log;
    clattn_context *ctx;
    clattn_stats st;
    if (argc < 3) return 2;
    ct_log_reset(&log);
    ctx = ct_context(argv[2], &log);
    ct_forward_ok(ctx, &p, "forward (prefill)");
    ct_forward_ok(ctx, &d, "forward (decode)");
    st = ct_stats(ctx);
    clattn_context_destroy(ctx);
    printf("built=%llu loaded=%llu stored=%llu rejected=%llu warnings=%d\n",
           (unsigned long long)st.programs_built, (unsigned long long)st.programs_loaded,
           (unsigned long long)st.programs_stored, (unsigned long long)st.cache_rejected,
           log.warnings);
    if (log.warnings) fprintf(stderr, "%s", log.text);
    return ct_failures ? 1 : 0;
}
