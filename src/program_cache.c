/* In-memory program cache: build from source once per configuration. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "program_cache.h"

static clattn_status build_failure(struct clattn_context *ctx, cl_program prog, cl_int err,
                                   const char *options)
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
    clattn_status st =
        clattn__fail(ctx, CLATTN_ERR_BUILD, "clBuildProgram failed: %s (%d)\noptions: %s\n%s",
                     clattn__cl_error_name(err), (int)err, options, log ? log : "");
    free(log);
    return st;
}

static clattn_status build(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                           const char *options, clattn__program_entry *e)
{
    char msg[512];
    char *src = NULL;
    if (clattn__kernel_source(cfg->id, &src, msg, sizeof msg) != 0)
        return clattn__fail(ctx, CLATTN_ERR_IO, "%s", msg);
    cl_int err;
    const char *srcs[1] = {src};
    cl_program prog = clCreateProgramWithSource(ctx->cl_ctx, 1, srcs, NULL, &err);
    free(src);
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
    cl_kernel k = clCreateKernel(prog, clattn__kernel_name(cfg->id), &err);
    if (err != CL_SUCCESS) {
        clReleaseProgram(prog);
        return clattn__cl_fail(ctx, err, "clCreateKernel");
    }
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

clattn_status clattn__program_get(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                                  const clattn__program_entry **out)
{
    char options[1024];
    if (clattn__build_options(&ctx->dev, cfg, options, sizeof options) != 0)
        return clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                            "build options too long (check CLATTN_BUILD_OPTIONS)");
    const char *name = clattn__kernel_name(cfg->id);
    size_t klen = strlen(name) + 1 + strlen(options) + 1;
    char *key = malloc(klen);
    if (!key)
        return clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    strcpy(key, name);
    strcat(key, " ");
    strcat(key, options);

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
    *out = e;
    return CLATTN_OK;
}

void clattn__program_cache_release(clattn__program_cache *c)
{
    for (size_t i = 0; i < c->count; ++i) {
        clReleaseKernel(c->entries[i]->kernel);
        clReleaseProgram(c->entries[i]->program);
        free(c->entries[i]->key);
        free(c->entries[i]);
    }
    free(c->entries);
    memset(c, 0, sizeof *c);
}

