/* Program cache: per context in memory, and across processes on disk as
 * driver binaries (clGetProgramInfo(CL_PROGRAM_BINARIES)). A disk entry is
 * only used when its full key text matches: device fingerprint, library
 * version, kernel, complete build options and the complete source.
 *
 * When a binary is written matters. PoCL's CPU driver compiles a kernel's
 * work-group function for each local size (and grid class) when a launch
 * first needs it, into its own kernel cache; its program binary packs
 * program.bc and whatever that cache holds for the program *at the moment
 * of the first CL_PROGRAM_BINARY_SIZES/BINARIES query*, and answers every
 * later query with those same bytes (PoCL 3.1, lib/CL/pocl_binary.c). A
 * binary taken right after clBuildProgram therefore carries only the generic
 * work-group function, and a process that loads it with PoCL's own cache
 * empty compiles the launch-specific one again (about 0.5 s per kernel on
 * two cores). So a program built from source is written after its kernel's
 * first launch has finished: the one query then includes the code that
 * launch generated. Programs created from a cached binary are never
 * rewritten (PoCL would return the loaded bytes unchanged; other drivers
 * have nothing to add), and a program that never ran is not written. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_fs.h"
#include "internal.h"
#include "program_cache.h"
#include "program_file.h"

#define BIN_MAX_BYTES ((uint64_t)1 << 30)

/* The program's build log (malloc'ed, NUL-ended), or NULL. */
static char *build_log(struct clattn_context *ctx, cl_program prog)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) ==
            CL_SUCCESS &&
        n > 0 && (log = malloc(n + 1)) &&
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) ==
            CL_SUCCESS)
        log[n] = '\0';
    else if (log)
        log[0] = '\0';
    return log;
}

/* A successful build's log goes to the log callback, never to stderr: as a
 * warning when the compiler warned (our kernels are meant to build without
 * any), else, when it said anything at all, at debug level. */
static void report_build_log(struct clattn_context *ctx, cl_program prog,
                             const clattn__kernel_config *cfg, const char *options)
{
    char *log = build_log(ctx, prog);
    const char *p = log;
    while (p && *p && isspace((unsigned char)*p))
        ++p;
    if (p && *p) {
        const int warned = strstr(p, "warning") != NULL;
        clattn__log(ctx, warned ? CLATTN_LOG_WARNING : CLATTN_LOG_DEBUG,
                    "%s built with %s:\noptions: %s\n%s", clattn__kernel_name(cfg->id),
                    warned ? "compiler warnings" : "a build log", options, p);
    }
    free(log);
}

static clattn_status build_failure(struct clattn_context *ctx, cl_program prog, cl_int err,
                                   const char *options)
{
    char *log = build_log(ctx, prog);
    clattn_status st =
        clattn__fail(ctx, CLATTN_ERR_BUILD, "clBuildProgram failed: %s (%d)\noptions: %s\n%s",
                     clattn__cl_error_name(err), (int)err, options, log ? log : "");
    free(log);
    return st;
}

/* Kernel object and its limits for a built program. */
static clattn_status finish(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                            cl_program prog, clattn__program_entry *e)
{
    cl_int err;
    cl_kernel k = clCreateKernel(prog, clattn__kernel_name(cfg->id), &err);
    if (err != CL_SUCCESS)
        return clattn__cl_fail(ctx, err, "clCreateKernel");
    e->program = prog;
    e->kernel = k;
    e->kernel_wg_size = 0;
    e->kernel_local_mem = 0;
    clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                             sizeof e->kernel_wg_size, &e->kernel_wg_size, NULL);
    clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE,
                             sizeof e->kernel_local_mem, &e->kernel_local_mem, NULL);
    return CLATTN_OK;
}

static clattn_status build_from_source(struct clattn_context *ctx,
                                       const clattn__kernel_config *cfg, const char *src,
                                       const char *options, clattn__program_entry *e)
{
    cl_int err;
    const char *srcs[1] = {src};
    cl_program prog = clCreateProgramWithSource(ctx->cl_ctx, 1, srcs, NULL, &err);
    if (err != CL_SUCCESS)
        return clattn__cl_fail(ctx, err, "clCreateProgramWithSource");
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        clattn_status st = err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS
                               ? build_failure(ctx, prog, err, options)
                               : clattn__cl_fail(ctx, err, "clBuildProgram");
        clReleaseProgram(prog);
        return st;
    }
    report_build_log(ctx, prog, cfg, options);
    clattn_status st = finish(ctx, cfg, prog, e);
    if (st != CLATTN_OK)
        clReleaseProgram(prog);
    else
        ctx->stats.programs_built++;
    return st;
}

static char *key_text(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                      const char *options, const char *src)
{
    const char *fmt = "clattn program binary\nlibrary %s\nfingerprint %s\nkernel %s\n"
                      "options %s\nsource %zu\n";
    size_t slen = strlen(src);
    int n = snprintf(NULL, 0, fmt, clattn_version(), ctx->fingerprint,
                     clattn__kernel_name(cfg->id), options, slen);
    if (n < 0)
        return NULL;
    char *key = malloc((size_t)n + slen + 1);
    if (!key)
        return NULL;
    snprintf(key, (size_t)n + 1, fmt, clattn_version(), ctx->fingerprint,
             clattn__kernel_name(cfg->id), options, slen);
    memcpy(key + n, src, slen + 1);
    return key;
}

static int file_path(struct clattn_context *ctx, const char *key, char *path, size_t size)
{
    uint64_t h = clattn__fnv1a(CLATTN__FNV_INIT, key, strlen(key));
    int n = snprintf(path, size, "%s/%016llx.bin", ctx->program_dir, (unsigned long long)h);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* A bad entry: reported once, removed, counted. */
static void reject(struct clattn_context *ctx, const char *path, const char *why)
{
    char msg[CLATTN__PATH_MAX + 256];
    snprintf(msg, sizeof msg, "%s: %s; removed, rebuilding from source", path, why);
    clattn__cache_warn(ctx, msg);
    unlink(path);
    ctx->stats.cache_rejected++;
}

/* 1 when the program was created from a cached binary, 0 on a miss. */
static int load_binary(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                       const char *key, const char *path, const char *options,
                       clattn__program_entry *e)
{
    unsigned char *data;
    size_t len;
    char msg[CLATTN__PATH_MAX + 128];
    int rc = clattn__cache_read(path, BIN_MAX_BYTES, &data, &len, msg, sizeof msg);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        clattn__cache_warn(ctx, msg);
        return 0;
    }
    const unsigned char *bin = NULL;
    size_t bin_len = 0;
    const char *why = clattn__bin_check(data, len, key, strlen(key), &bin, &bin_len);
    if (why) {
        free(data);
        reject(ctx, path, why);
        return 0;
    }
    cl_int status = CL_SUCCESS, err;
    cl_program prog = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->device, &bin_len, &bin,
                                                &status, &err);
    free(data);
    if (err == CL_SUCCESS && status == CL_SUCCESS)
        err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    else if (err == CL_SUCCESS)
        err = status;
    if (err == CL_SUCCESS && finish(ctx, cfg, prog, e) == CLATTN_OK) {
        clattn__cache_touch(path);
        ctx->stats.programs_loaded++;
        return 1;
    }
    if (prog)
        clReleaseProgram(prog);
    /* finish() may have recorded a message; this is a miss, not a failure. */
    reject(ctx, path, "the driver rejected the binary");
    return 0;
}

static void store_binary(struct clattn_context *ctx, const char *key, const char *path,
                         cl_program prog)
{
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) !=
            CL_SUCCESS ||
        size == 0 || size > BIN_MAX_BYTES)
        return; /* some drivers give no binary: nothing to keep */
    unsigned char *bin = malloc(size);
    if (!bin)
        return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        size_t klen = strlen(key);
        size_t head_len = sizeof(clattn__bin_header) + klen;
        unsigned char *head = malloc(head_len);
        if (head) {
            clattn__bin_header h;
            clattn__bin_header_make(&h, klen, bin, size);
            memcpy(head, &h, sizeof h);
            memcpy(head + sizeof h, key, klen);
            char msg[CLATTN__PATH_MAX + 128];
            if (clattn__cache_write(path, head, head_len, bin, size, msg, sizeof msg) == 0) {
                ctx->stats.programs_stored++;
                clattn__cache_evict(ctx->program_dir, ".bin", ctx->cache_max_bytes);
            } else {
                clattn__cache_warn(ctx, msg);
            }
            free(head);
        }
    }
    free(bin);
}

/* The root and programs directory were checked when the context was made;
 * they may have been removed or replaced (by a file or a symlink) since.
 * Never read or write through such a replacement: check again before each
 * disk access (a build is rare; two lstat calls are nothing beside it). */
static int program_dir_ok(struct clattn_context *ctx)
{
    char root[CLATTN__PATH_MAX], msg[CLATTN__PATH_MAX + 128];
    snprintf(root, sizeof root, "%s", ctx->program_dir);
    char *slash = strrchr(root, '/');
    if (slash && slash != root)
        *slash = '\0';
    if (clattn__cache_check_dir(root, msg, sizeof msg) == 0 &&
        clattn__cache_check_dir(ctx->program_dir, msg, sizeof msg) == 0)
        return 1;
    clattn__cache_warn(ctx, msg);
    return 0;
}

static clattn_status build(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                           const char *options, clattn__program_entry *e)
{
    char msg[512];
    char *src = NULL;
    if (clattn__kernel_source(cfg->id, &src, msg, sizeof msg) != 0)
        return clattn__fail(ctx, CLATTN_ERR_IO, "%s", msg);
    char *key = ctx->program_dir[0] ? key_text(ctx, cfg, options, src) : NULL;
    char path[CLATTN__PATH_MAX];
    int disk = key && file_path(ctx, key, path, sizeof path) == 0 && program_dir_ok(ctx);
    clattn_status st = CLATTN_OK;
    if (!disk || !load_binary(ctx, cfg, key, path, options, e)) {
        st = build_from_source(ctx, cfg, src, options, e);
        if (st == CLATTN_OK && disk && (e->store_path = strdup(path)) != NULL) {
            e->store_key = key; /* written by clattn__program_cache_flush */
            key = NULL;
        }
    }
    free(key);
    free(src);
    return st;
}

clattn_status clattn__program_get(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                                  const clattn__program_entry **out)
{
    clattn__program_cache_flush(ctx);
    char options[1024];
    if (clattn__build_options(&ctx->dev, cfg, options, sizeof options) != 0)
        return clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                            "build options too long (check CLATTN_BUILD_OPTIONS)");
    const char *name = clattn__kernel_name(cfg->id);
    size_t klen = strlen(name) + 1 + strlen(options) + 1;
    char *key = malloc(klen);
    if (!key)
        return clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    snprintf(key, klen, "%s %s", name, options);

    clattn__program_cache *c = &ctx->programs;
    for (size_t i = 0; i < c->count; ++i)
        if (strcmp(c->entries[i]->key, key) == 0) {
            free(key);
            *out = c->entries[i];
            return CLATTN_OK;
        }
    if (c->count == c->capacity) {
        size_t cap = c->capacity ? 2 * c->capacity : 16;
        clattn__program_entry **grown = realloc(c->entries, cap * sizeof *grown);
        if (!grown) {
            free(key);
            return clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
        }
        c->entries = grown;
        c->capacity = cap;
    }
    clattn__program_entry *e = calloc(1, sizeof *e);
    clattn_status st = e ? build(ctx, cfg, options, e)
                         : clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    if (st != CLATTN_OK) {
        free(e);
        free(key);
        return st;
    }
    e->key = key;
    c->entries[c->count++] = e;
    if (e->store_key)
        c->awaiting_launch++;
    *out = e;
    return CLATTN_OK;
}

void clattn__program_launched(struct clattn_context *ctx, cl_kernel k, cl_event ev)
{
    clattn__program_cache *c = &ctx->programs;
    if (c->awaiting_launch == 0)
        return;
    for (size_t i = 0; i < c->count; ++i) {
        clattn__program_entry *e = c->entries[i];
        if (e->kernel != k)
            continue;
        if (e->store_key && !e->store_after && clRetainEvent(ev) == CL_SUCCESS) {
            e->store_after = ev;
            c->awaiting_launch--;
            c->awaiting_finish++;
        }
        return;
    }
}

/* The entry will not be written (again) in this process. */
static void store_done(clattn__program_cache *c, clattn__program_entry *e)
{
    if (e->store_after) {
        clReleaseEvent(e->store_after);
        c->awaiting_finish--;
    } else if (e->store_key) {
        c->awaiting_launch--;
    }
    free(e->store_key);
    free(e->store_path);
    e->store_key = e->store_path = NULL;
    e->store_after = NULL;
}

void clattn__program_cache_flush(struct clattn_context *ctx)
{
    clattn__program_cache *c = &ctx->programs;
    for (size_t i = 0; i < c->count && c->awaiting_finish > 0; ++i) {
        clattn__program_entry *e = c->entries[i];
        if (!e->store_after)
            continue;
        cl_int status;
        if (clGetEventInfo(e->store_after, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status,
                           &status, NULL) != CL_SUCCESS)
            status = CL_INVALID_EVENT;
        if (status > CL_COMPLETE)
            continue; /* still queued or running: a later call looks again */
        /* A launch that failed proves nothing about the binary: keep it off
         * the disk, as a build failure would be. */
        if (status == CL_COMPLETE && program_dir_ok(ctx))
            store_binary(ctx, e->store_key, e->store_path, e->program);
        store_done(c, e);
    }
}

void clattn__program_cache_release(clattn__program_cache *c)
{
    for (size_t i = 0; i < c->count; ++i) {
        store_done(c, c->entries[i]);
        clReleaseKernel(c->entries[i]->kernel);
        clReleaseProgram(c->entries[i]->program);
        free(c->entries[i]->key);
        free(c->entries[i]);
    }
    free(c->entries);
    memset(c, 0, sizeof *c);
}
