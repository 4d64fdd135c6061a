/* The first-call time of a new process: context creation, the first forward
 * and its completion, with an empty program cache and with a warm one.
 * bench_first_call (the parent side) starts this same executable as
 * 'attn-tune __first-call' in a child process for each measurement. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"
#include "shapes.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Child: attn-tune __first-call [--device P:D] --shape SHAPE. Prints one line
 * "first_call_ms=... built=... loaded=... stored=... rejected=...". */
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
    double t0, ms;
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
        st = clattn_forward(ctx, &s.p, &b, 0, NULL, NULL);
    }
    if (st == CLATTN_OK && clFinish(queue) != CL_SUCCESS) st = CLATTN_ERR_OPENCL;
    ms = 1e3 * (tool_now() - t0);
    if (st != CLATTN_OK)
        tool_print_error(ctx, st, "first forward");
    else if (clattn_context_stats(ctx, &stats) == CLATTN_OK)
        printf("first_call_ms=%.3f built=%llu loaded=%llu stored=%llu rejected=%llu\n", ms,
               (unsigned long long)stats.programs_built,
               (unsigned long long)stats.programs_loaded,
               (unsigned long long)stats.programs_stored,
               (unsigned long long)stats.cache_rejected);
    if (b.q) clReleaseMemObject(b.q);
    if (b.k) clReleaseMemObject(b.k);
    if (b.v) clReleaseMemObject(b.v);
    if (b.o) clReleaseMemObject(b.o);
    clattn_context_destroy(ctx);
    return st == CLATTN_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

/* The environment of a child: ours without CLATTN_CACHE_DIR and
 * POCL_KERNEL_CACHE, plus both set as we want them. NULL when out of memory. */
static char **child_env(const char *cache_dir)
{
    size_t n = 0, k = 0;
    char **env;
    while (environ[n]) n++;
    env = calloc(n + 3, sizeof *env);
    if (!env) return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CLATTN_CACHE_DIR=", 17) != 0 &&
            strncmp(environ[i], "POCL_KERNEL_CACHE=", 18) != 0)
            env[k++] = environ[i];
    env[k] = malloc(strlen(cache_dir) + 18);
    if (!env[k]) {
        free(env);
        return NULL;
    }
    sprintf(env[k++], "CLATTN_CACHE_DIR=%s", cache_dir);
    env[k++] = (char *)"POCL_KERNEL_CACHE=0";
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    /* The one variable we allocated is the CLATTN_CACHE_DIR entry. */
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], "CLATTN_CACHE_DIR=", 17) == 0) free(env[i]);
    free(env);
}

static void run_child(const char *exe, const char *device, const char *shape_text,
                      const char *cache_dir, first_call *out)
{
    char *args[8];
    int a = 0, fds[2], status = 0;
    char **env = child_env(cache_dir);
    posix_spawn_file_actions_t fa;
    pid_t pid;
    char buf[512];
    size_t got = 0;
    ssize_t r;
    memset(out, 0, sizeof *out);
    if (!env || pipe(fds) != 0) {
        snprintf(out->message, sizeof out->message, "cannot start a child process");
        free_env(env);
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
    free_env(env);
    if (pid < 0) return;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(out->message, sizeof out->message, "the child process failed (status %d)",
                 status);
        return;
    }
    if (sscanf(buf, "first_call_ms=%lf built=%llu loaded=%llu stored=%llu rejected=%llu",
               &out->ms, &out->built, &out->loaded, &out->stored, &out->rejected) != 5) {
        snprintf(out->message, sizeof out->message, "unexpected child output");
        return;
    }
    out->ok = 1;
}

int bench_first_call(const char *device, const char *shape_text, first_call *cold,
                     first_call *warm)
{
    char exe[PATH_MAX], tmpl[] = "/tmp/attn-tune-first-call.XXXXXX", cache[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    memset(cold, 0, sizeof *cold);
    memset(warm, 0, sizeof *warm);
    if (n <= 0) {
        snprintf(cold->message, sizeof cold->message, "cannot find this executable");
        return 0;
    }
    exe[n] = '\0';
    if (!mkdtemp(tmpl)) {
        snprintf(cold->message, sizeof cold->message, "mkdtemp: %s", strerror(errno));
        return 0;
    }
    snprintf(cache, sizeof cache, "%s/cache", tmpl);
    run_child(exe, device, shape_text, cache, cold);
    if (cold->ok) run_child(exe, device, shape_text, cache, warm);
    tool_remove_tree(tmpl);
    return cold->ok && warm->ok;
}
