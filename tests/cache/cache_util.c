/* Helpers of the on-disk cache tests (see cache_util.h). */
#define _XOPEN_SOURCE 700
#include "cache_util.h"

#include "harness.h"
#include "reference.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int ct_failures;
int ct_skips;
const char *ct_base = ".";
double ct_forward_end;

double ct_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, mode);
}

void ct_fresh_dir(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.%ld", ct_base, name, (long)getpid());
    if (ct_exists(buf)) ct_remove_tree(buf);
    mkdirs(ct_base, 0755);
    if (mkdir(buf, 0700) != 0 || chmod(buf, 0700) != 0) {
        fprintf(stderr, "FAIL: cannot create %s: %s\n", buf, strerror(errno));
        exit(1);
    }
}

static int open_up(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    /* A directory a test made unwritable or unreadable. */
    if (type == FTW_D || type == FTW_DNR) chmod(path, 0700);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP || type == FTW_DNR)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void ct_remove_tree(const char *path)
{
    const char *keep = getenv("CLATTN_TEST_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        NOTE("kept %s (CLATTN_TEST_KEEP)", path);
        return;
    }
    nftw(path, open_up, 16, FTW_PHYS);
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int ct_is_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ct_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ct_list(const char *dir, const char *suffix, char **names, int max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    size_t sl = strlen(suffix);
    if (!d) return 0;
    while ((de = readdir(d)) != NULL && n < max) {
        size_t nl = strlen(de->d_name);
        char path[PATH_MAX];
        struct stat st;
        if (nl <= sl || strcmp(de->d_name + nl - sl, suffix) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        names[n] = malloc(nl + 1);
        if (!names[n]) break;
        memcpy(names[n++], de->d_name, nl + 1);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    return n;
}

void ct_free_list(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
}

unsigned char *ct_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    *len = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

int ct_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const unsigned char *p = data;
    if (fd < 0) return -1;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

void ct_log_fn(int level, const char *message, void *user_data)
{
    ct_log *log = user_data;
    size_t used = strlen(log->text);
    if (level == CLATTN_LOG_WARNING) log->warnings++;
    if (level == CLATTN_LOG_ERROR) log->errors++;
    if (used + 2 < sizeof log->text)
        snprintf(log->text + used, sizeof log->text - used, "%s\n", message);
    if (getenv("CLATTN_TEST_VERBOSE")) fprintf(stderr, "  [clattn log %d] %s\n", level, message);
}

void ct_log_reset(ct_log *log)
{
    memset(log, 0, sizeof *log);
}

void ct_options(clattn_options *opts, const char *root, ct_log *log)
{
    clattn_options_init(opts);
    opts->cache_dir = root;
    opts->log = ct_log_fn;
    opts->log_user_data = log;
}

clattn_context *ct_context(const char *root, ct_log *log)
{
    clattn_options opts;
    clattn_context *ctx = NULL;
    clattn_status st;
    ct_options(&opts, root, log);
    st = clattn_context_create(&opts, &ctx);
    if (st != CLATTN_OK) {
        fprintf(stderr, "FAIL: clattn_context_create: %s (%s)\n", clattn_status_string(st),
                log->text);
        exit(1);
    }
    return ctx;
}

clattn_problem ct_shape_prefill(void)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.heads = 2;
    p.seq_q = p.seq_kv = 64;
    p.head_dim = 32;
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    return p;
}

clattn_problem ct_shape_decode(void)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.heads = 2;
    p.kv_heads = 1;
    p.seq_q = 1;
    p.seq_kv = 256;
    p.head_dim = 32;
    return p;
}

clattn_stats ct_stats(clattn_context *ctx)
{
    clattn_stats s;
    memset(&s, 0, sizeof s);
    CHECK(clattn_context_stats(ctx, &s) == CLATTN_OK, "clattn_context_stats failed");
    return s;
}

static uint64_t g_seed = 0x243F6A8885A308D3ull;

static float rnd(void)
{
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(g_seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

int ct_compare(const clattn_problem *p, const double *ro, const double *go, size_t no,
               const double *rl, const double *gl, size_t nl, const double *rp,
               const double *gp, size_t np, char *msg, size_t msg_size)
{
    const t_tolerance tol = t_tolerance_kv(p, t_tolerance_for(p->dtype));
    const double eo = ref_rel_l2(ro, go, no);
    double scale = 0.0;
    for (size_t i = 0; i < no; i++) scale = fmax(scale, fabs(ro[i]));
    if (!(eo <= tol.rel_l2)) {
        snprintf(msg, msg_size, "O rel. L2 error %.3g > %.3g", eo, tol.rel_l2);
        return 0;
    }
    for (size_t i = 0; i < no; i++)
        if (!(fabs(go[i] - ro[i]) <= t_elem_bound(&tol, p->dtype, ro[i], scale))) {
            snprintf(msg, msg_size, "O element %zu: ref %.9g got %.9g, beyond %g ulp + %g * %.3g",
                     i, ro[i], go[i], tol.elem_ulps, tol.elem_atol, scale);
            return 0;
        }
    for (size_t i = 0; i < nl; i++) {
        const int ok = rl[i] == -INFINITY ? gl[i] == -INFINITY
                                          : fabs(gl[i] - rl[i]) <= tol.lse_rel * fmax(1.0, fabs(rl[i]));
        if (!ok) {
            snprintf(msg, msg_size, "LSE %zu: ref %.9g got %.9g", i, rl[i], gl[i]);
            return 0;
        }
    }
    for (size_t i = 0; gp && i < np; i++)
        if (!(fabs(gp[i] - rp[i]) <= tol.probs_abs)) {
            snprintf(msg, msg_size, "probability %zu: ref %.9g got %.9g", i, rp[i], gp[i]);
            return 0;
        }
    return 1;
}

int ct_forward_ok(clattn_context *ctx, const clattn_problem *prob, const char *what)
{
    clattn_problem n;
    size_t nq, nk, nv, no, nl;
    float *q, *k, *v, *o, *lse;
    double *ro, *rl, *go, *gl;
    char why[256];
    clattn_host_buffers io;
    clattn_status st;
    int ok = 0;
    ref_normalize(prob, &n);
    nq = (size_t)n.batch * n.heads * n.seq_q * n.head_dim;
    nk = (size_t)n.batch * n.kv_heads * n.seq_kv * n.head_dim;
    nv = (size_t)n.batch * n.kv_heads * n.seq_kv * n.head_dim_v;
    no = (size_t)n.batch * n.heads * n.seq_q * n.head_dim_v;
    nl = (size_t)n.batch * n.heads * n.seq_q;
    q = malloc(nq * sizeof *q);
    k = malloc(nk * sizeof *k);
    v = malloc(nv * sizeof *v);
    o = malloc(no * sizeof *o);
    lse = malloc(nl * sizeof *lse);
    ro = malloc(no * sizeof *ro);
    go = malloc(no * sizeof *go);
    rl = malloc(nl * sizeof *rl);
    gl = malloc(nl * sizeof *gl);
    if (!q || !k || !v || !o || !lse || !ro || !go || !rl || !gl) {
        fprintf(stderr, "FAIL %s: out of memory\n", what);
        goto done;
    }
    for (size_t i = 0; i < nq; i++) q[i] = rnd();
    for (size_t i = 0; i < nk; i++) k[i] = rnd();
    for (size_t i = 0; i < nv; i++) v[i] = rnd();
    for (size_t i = 0; i < no; i++) o[i] = NAN;
    for (size_t i = 0; i < nl; i++) lse[i] = NAN;
    memset(&io, 0, sizeof io);
    io.q = q;
    io.k = k;
    io.v = v;
    io.o = o;
    io.lse = lse;
    st = clattn_forward_host(ctx, prob, &io);
    ct_forward_end = ct_now();
    if (st != CLATTN_OK) {
        fprintf(stderr, "FAIL %s: clattn_forward_host: %s: %s\n", what, clattn_status_string(st),
                clattn_last_error(ctx));
        goto done;
    }
    if (ref_attention(prob, &io, ro, rl, NULL) != 0) {
        fprintf(stderr, "FAIL %s: the reference ran out of memory\n", what);
        goto done;
    }
    for (size_t i = 0; i < no; i++) go[i] = o[i];
    for (size_t i = 0; i < nl; i++) gl[i] = lse[i];
    ok = ct_compare(prob, ro, go, no, rl, gl, nl, NULL, NULL, 0, why, sizeof why);
    if (!ok)
        fprintf(stderr, "FAIL %s: result differs from the reference: %s\n", what, why);
done:
    free(q);
    free(k);
    free(v);
    free(o);
    free(lse);
    free(ro);
    free(go);
    free(rl);
    free(gl);
    if (!ok) ct_failures++;
    return ok;
}

/* environ plus extras ("NAME=value" replaces NAME); a malloc'd array of
 * borrowed strings. */
static char **merged_env(const char *const *extra)
{
    size_t n = 0, m = 0, k = 0;
    char **env;
    while (environ[n]) n++;
    while (extra && extra[m]) m++;
    env = calloc(n + m + 1, sizeof *env);
    if (!env) return NULL;
    for (size_t i = 0; i < n; i++) {
        int replaced = 0;
        for (size_t j = 0; j < m && !replaced; j++) {
            const char *eq = strchr(extra[j], '=');
            size_t len = eq ? (size_t)(eq - extra[j]) + 1 : strlen(extra[j]);
            replaced = strncmp(environ[i], extra[j], len) == 0;
        }
        if (!replaced) env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++) env[k++] = (char *)extra[j];
    env[k] = NULL;
    return env;
}

long ct_spawn(const char *exe, const char *const *args, const char *const *env_extra,
              const char *out_path, const char *err_path)
{
    char *argv[64];
    int a = 0;
    char **env = merged_env(env_extra);
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc;
    if (!env) return -1;
    argv[a++] = (char *)exe;
    for (int i = 0; args && args[i] && a < 63; i++) argv[a++] = (char *)args[i];
    argv[a] = NULL;
    fflush(stdout);
    fflush(stderr);
    posix_spawn_file_actions_init(&fa);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (err_path)
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0600);
    rc = posix_spawn(&pid, exe, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc != 0) {
        fprintf(stderr, "FAIL: cannot run %s: %s\n", exe, strerror(rc));
        return -1;
    }
    return (long)pid;
}

long ct_spawn_self(const char *const *args, const char *const *env_extra, const char *out_path)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "FAIL: cannot find this executable (/proc/self/exe)\n");
        return -1;
    }
    exe[n] = '\0';
    return ct_spawn(exe, args, env_extra, out_path, NULL);
}

int ct_exited(long pid, int *rc)
{
    int status = 0;
    pid_t r;
    if (pid < 0) return 1;
    while ((r = waitpid((pid_t)pid, &status, WNOHANG)) < 0)
        if (errno != EINTR) return 1;
    if (r == 0) return 0;
    *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (WIFSIGNALED(status))
        fprintf(stderr, "child %ld was killed by signal %d\n", pid, WTERMSIG(status));
    return 1;
}

int ct_wait(long pid)
{
    int status = 0;
    if (pid < 0) return -1;
    while (waitpid((pid_t)pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        fprintf(stderr, "child %ld was killed by signal %d\n", pid, WTERMSIG(status));
    return -1;
}

int ct_db_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *s = text; (s = strstr(s, "\nkernel=")) != NULL; s++) {
        const char *end = strchr(s + 1, '\n');
        const char *hit = strstr(s + 1, needle);
        n += hit && (!end || hit < end);
    }
    return n;
}
