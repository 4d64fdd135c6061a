/* The first-call time of a new process: context creation, the first forward
 * and its completion, in three cache states (both caches empty; clattn's
 * binaries on disk but PoCL's kernel cache empty, as for a new user or a
 * container; both warm), each run several times in fresh directories.
 * bench_first_call (the parent side) starts this same executable as
 * 'attn-tune __first-call' in a child process for each measurement. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"
#include "shapes.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int forward_and_finish(clattn_context *ctx, const tool_shape *s, const clattn_buffers *b,
                              cl_command_queue queue)
{
    clattn_status st = clattn_forward(ctx, &s->p, b, 0, NULL, NULL);
    if (st == CLATTN_OK && clFinish(queue) != CL_SUCCESS) st = CLATTN_ERR_OPENCL;
    return st;
}

/* Child: attn-tune __first-call [--device P:D] --shape SHAPE. Prints one line
 * "first_call_ms=... create_ms=... second_ms=... destroy_ms=... built=...
 * loaded=... stored=... rejected=...": the first call (context creation
 * plus the first forward to completion; filling the inputs in between is
 * the caller's work, not timed), the context creation alone, a second
 * forward to completion (where binaries of the first call's programs are
 * written), clattn_context_destroy, and the counters after the second
 * call. */
int cmd_first_call(int argc, char **argv)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    const char *shape_text = NULL;
    tool_shape s;
    char err[400];
    clattn_context *ctx = NULL;
    clattn_buffers b;
    cl_context clctx;
    cl_command_queue queue;
    clattn_stats stats;
    cl_int e1, e2, e3, e4;
    int64_t nq, nk, nv, no;
    double t0, t1, t2, t3, ms, create_ms, second_ms;
    clattn_status st;
    size_t es;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int got;
        if ((got = tool_option_value(argc, argv, &i, "--device", &v)) != 0) {
            if (got < 0 || !tool_parse_device(v, &dev)) return TOOL_EXIT_USAGE;
        } else if ((got = tool_option_value(argc, argv, &i, "--shape", &v)) != 0) {
            if (got < 0) return TOOL_EXIT_USAGE;
            shape_text = v;
        } else {
            fprintf(stderr, "attn-tune __first-call: unexpected argument '%s'\n", argv[i]);
            return TOOL_EXIT_USAGE;
        }
    }
    if (!shape_text || tool_shape_parse(shape_text, &s, err, sizeof err) != 1) {
        fprintf(stderr, "attn-tune __first-call: --shape: %s\n", shape_text ? err : "missing");
        return TOOL_EXIT_USAGE;
    }
    tool_shape_elements(&s, &nq, &nk, &nv, &no);
    es = s.p.dtype == CLATTN_F32 ? 4 : 2;

    t0 = tool_now();
    if (tool_open_context(&dev, &ctx) != TOOL_EXIT_OK) return TOOL_EXIT_FAILURE;
    create_ms = 1e3 * (tool_now() - t0);
    clattn_context_get_cl(ctx, &clctx, &queue, NULL);
    memset(&b, 0, sizeof b);
    /* Contents do not matter for the time; zeros are valid inputs. */
    b.q = clCreateBuffer(clctx, CL_MEM_READ_WRITE, (size_t)nq * es, NULL, &e1);
    b.k = clCreateBuffer(clctx, CL_MEM_READ_WRITE, (size_t)nk * es, NULL, &e2);
    b.v = clCreateBuffer(clctx, CL_MEM_READ_WRITE, (size_t)nv * es, NULL, &e3);
    b.o = clCreateBuffer(clctx, CL_MEM_READ_WRITE, (size_t)no * es, NULL, &e4);
    st = e1 || e2 || e3 || e4 ? CLATTN_ERR_OUT_OF_RESOURCES : CLATTN_OK;
    if (st == CLATTN_OK) {
        const cl_uchar zero = 0;
        cl_mem m[3] = {b.q, b.k, b.v};
        size_t n[3] = {(size_t)nq * es, (size_t)nk * es, (size_t)nv * es};
        for (int i = 0; i < 3; i++)
            clEnqueueFillBuffer(queue, m[i], &zero, 1, 0, n[i], 0, NULL, NULL);
        if (clFinish(queue) != CL_SUCCESS) st = CLATTN_ERR_OPENCL;
    }
    t0 = tool_now();
    if (st == CLATTN_OK) st = forward_and_finish(ctx, &s, &b, queue);
    t1 = tool_now();
    ms = create_ms + 1e3 * (t1 - t0);
    if (st == CLATTN_OK) st = forward_and_finish(ctx, &s, &b, queue);
    t2 = tool_now();
    second_ms = 1e3 * (t2 - t1);
    if (st != CLATTN_OK)
        tool_print_error(ctx, st, "forward");
    else if (clattn_context_stats(ctx, &stats) != CLATTN_OK)
        st = CLATTN_ERR_INVALID_ARGUMENT;
    if (b.q) clReleaseMemObject(b.q);
    if (b.k) clReleaseMemObject(b.k);
    if (b.v) clReleaseMemObject(b.v);
    if (b.o) clReleaseMemObject(b.o);
    t2 = tool_now();
    clattn_context_destroy(ctx);
    t3 = tool_now();
    if (st == CLATTN_OK)
        printf("first_call_ms=%.3f create_ms=%.3f second_ms=%.3f destroy_ms=%.3f built=%llu "
               "loaded=%llu stored=%llu rejected=%llu\n",
               ms, create_ms, second_ms, 1e3 * (t3 - t2),
               (unsigned long long)stats.programs_built,
               (unsigned long long)stats.programs_loaded,
               (unsigned long long)stats.programs_stored,
               (unsigned long long)stats.cache_rejected);
    return st == CLATTN_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

static int is_var(const char *entry, const char *name)
{
    size_t n = strlen(name);
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static char *make_var(const char *name, const char *value)
{
    char *v = malloc(strlen(name) + strlen(value) + 2);
    if (v) sprintf(v, "%s=%s", name, value);
    return v;
}

/* The environment of a child: ours with clattn's and PoCL's cache
 * directories replaced, and PoCL's kernel cache at its default (on): the
 * "both warm" case needs it. NULL when out of memory; free with free_env. */
static char **child_env(const char *clattn_dir, const char *pocl_dir, char **owned)
{
    size_t n = 0, k = 0;
    char **env;
    while (environ[n]) n++;
    env = calloc(n + 3, sizeof *env);
    owned[0] = make_var("CLATTN_CACHE_DIR", clattn_dir);
    owned[1] = make_var("POCL_CACHE_DIR", pocl_dir);
    if (!env || !owned[0] || !owned[1]) {
        free(env);
        free(owned[0]);
        free(owned[1]);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!is_var(environ[i], "CLATTN_CACHE_DIR") && !is_var(environ[i], "POCL_CACHE_DIR") &&
            !is_var(environ[i], "POCL_KERNEL_CACHE"))
            env[k++] = environ[i];
    env[k++] = owned[0];
    env[k++] = owned[1];
    env[k] = NULL;
    return env;
}

static void run_child(const char *exe, const char *device, const char *shape_text,
                      const char *clattn_dir, const char *pocl_dir, first_call *out)
{
    char *args[8], *owned[2] = {NULL, NULL};
    int a = 0, fds[2], status = 0;
    char **env = child_env(clattn_dir, pocl_dir, owned);
    posix_spawn_file_actions_t fa;
    pid_t pid;
    char buf[512];
    size_t got = 0;
    ssize_t r;
    memset(out, 0, sizeof *out);
    if (!env || pipe(fds) != 0) {
        snprintf(out->message, sizeof out->message, "cannot start a child process");
        if (env) {
            free(env);
            free(owned[0]);
            free(owned[1]);
        }
        return;
    }
    args[a++] = (char *)exe;
    args[a++] = (char *)"__first-call";
    if (device[0]) {
        args[a++] = (char *)"--device";
        args[a++] = (char *)device;
    }
    args[a++] = (char *)"--shape";
    args[a++] = (char *)shape_text;
    args[a] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    if (posix_spawn(&pid, exe, &fa, NULL, args, env) != 0) {
        snprintf(out->message, sizeof out->message, "cannot run %s: %s", exe, strerror(errno));
        pid = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    while (got + 1 < sizeof buf && (r = read(fds[0], buf + got, sizeof buf - 1 - got)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    close(fds[0]);
    free(env);
    free(owned[0]);
    free(owned[1]);
    if (pid < 0) return;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(out->message, sizeof out->message, "the child process failed (status %d)",
                 status);
        return;
    }
    if (sscanf(buf,
               "first_call_ms=%lf create_ms=%lf second_ms=%lf destroy_ms=%lf built=%llu "
               "loaded=%llu stored=%llu rejected=%llu",
               &out->ms, &out->create_ms, &out->second_ms, &out->destroy_ms, &out->built,
               &out->loaded, &out->stored, &out->rejected) != 8) {
        snprintf(out->message, sizeof out->message, "unexpected child output");
        return;
    }
    out->ok = 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Total size of the binaries clattn keeps in dir. */
static unsigned long long dir_bytes(const char *dir)
{
    char path[PATH_MAX * 2];
    unsigned long long total = 0;
    struct dirent *e;
    struct stat st;
    DIR *d = opendir(dir);
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".bin") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) total += (unsigned long long)st.st_size;
    }
    closedir(d);
    return total;
}

int bench_first_call(const char *device, const char *shape_text, int rounds,
                     first_call_report *out)
{
    char exe[PATH_MAX];
    double v[FC_CASES][4][FC_MAX_ROUNDS];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    memset(out, 0, sizeof *out);
    snprintf(out->shape, sizeof out->shape, "%s", shape_text);
    if (rounds < 1) rounds = 1;
    if (rounds > FC_MAX_ROUNDS) rounds = FC_MAX_ROUNDS;
    if (n <= 0) {
        snprintf(out->message, sizeof out->message, "cannot find this executable");
        return 0;
    }
    exe[n] = '\0';
    for (int r = 0; r < rounds; r++) {
        char tmpl[] = "/tmp/attn-tune-first-call.XXXXXX", clattn[PATH_MAX], programs[PATH_MAX];
        char pocl_cold[PATH_MAX], pocl_fresh[PATH_MAX];
        first_call fc[FC_CASES];
        if (!mkdtemp(tmpl)) {
            snprintf(out->message, sizeof out->message, "mkdtemp: %s", strerror(errno));
            return 0;
        }
        snprintf(clattn, sizeof clattn, "%s/clattn", tmpl);
        snprintf(programs, sizeof programs, "%s/clattn/programs", tmpl);
        snprintf(pocl_cold, sizeof pocl_cold, "%s/pocl-cold", tmpl);
        snprintf(pocl_fresh, sizeof pocl_fresh, "%s/pocl-fresh", tmpl);
        /* cold: both empty; then clattn's binaries with a PoCL cache nobody
         * has used; then both as the previous process left them. */
        run_child(exe, device, shape_text, clattn, pocl_cold, &fc[FC_COLD]);
        if (fc[FC_COLD].ok) out->binary_bytes = dir_bytes(programs);
        if (fc[FC_COLD].ok)
            run_child(exe, device, shape_text, clattn, pocl_fresh, &fc[FC_CLATTN_WARM]);
        if (fc[FC_COLD].ok && fc[FC_CLATTN_WARM].ok)
            run_child(exe, device, shape_text, clattn, pocl_fresh, &fc[FC_BOTH_WARM]);
        tool_remove_tree(tmpl);
        for (int c = 0; c < FC_CASES; c++) {
            if (!fc[c].ok) {
                snprintf(out->message, sizeof out->message, "%s", fc[c].message);
                return 0;
            }
            v[c][0][r] = fc[c].ms;
            v[c][1][r] = fc[c].create_ms;
            v[c][2][r] = fc[c].second_ms;
            v[c][3][r] = fc[c].destroy_ms;
            out->last[c] = fc[c];
        }
        out->rounds = r + 1;
    }
    for (int c = 0; c < FC_CASES; c++) {
        out->ms[c] = median(v[c][0], out->rounds);
        out->create_ms[c] = median(v[c][1], out->rounds);
        out->second_ms[c] = median(v[c][2], out->rounds);
        out->destroy_ms[c] = median(v[c][3], out->rounds);
    }
    out->ok = 1;
    return 1;
}
