/* Context life cycle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "cache_fs.h"
#include "internal.h"

clattn_status clattn_options_init(clattn_options *opts)
{
    if (!opts)
        return CLATTN_ERR_INVALID_ARGUMENT;
    const clattn_options defaults = CLATTN_OPTIONS_INIT;
    *opts = defaults;
    return CLATTN_OK;
}

/* Device discovery and queries are serialised across the process: PoCL 3.1
 * initialises its devices lazily inside these calls, and contexts created by
 * several threads at once crashed there (a NULL device name read by
 * clGetDeviceInfo) or found no device. */
static pthread_mutex_t discovery_lock = PTHREAD_MUTEX_INITIALIZER;

static void report(const clattn_options *opts, const char *msg)
{
    if (opts && opts->log)
        opts->log(CLATTN_LOG_ERROR, msg, opts->log_user_data);
}

/* A disk problem here means no disk cache, never a failed context. */
static void open_disk_cache(clattn_context *ctx, const char *explicit_dir)
{
    char root[CLATTN__PATH_MAX], msg[CLATTN__PATH_MAX + 128] = "cache path too long";
    int rc = clattn__cache_root(explicit_dir, root, sizeof root, msg, sizeof msg);
    if (rc == 1) {
        clattn__tuning_open(ctx, NULL);
        return;
    }
    if (rc == 0 && clattn__cache_prepare_dir(root, msg, sizeof msg) == 0) {
        int n = snprintf(ctx->program_dir, sizeof ctx->program_dir, "%s/programs", root);
        if (n > 0 && (size_t)n < sizeof ctx->program_dir &&
            clattn__cache_prepare_dir(ctx->program_dir, msg, sizeof msg) == 0) {
            ctx->stats.disk_cache_enabled = 1;
            clattn__tuning_open(ctx, root);
            return;
        }
    }
    ctx->program_dir[0] = '\0';
    clattn__cache_warn(ctx, msg);
    clattn__tuning_open(ctx, NULL);
}

/* Everything but the OpenCL objects, which the two constructors provide. */
static clattn_status context_new(const clattn_options *opts, cl_device_id device,
                                 clattn_context **out)
{
    clattn_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        report(opts, "out of host memory creating a clattn context");
        return CLATTN_ERR_OUT_OF_RESOURCES;
    }
    char msg[256];
    pthread_mutex_lock(&discovery_lock);
    clattn_status st = clattn__device_query(device, &ctx->dev, msg, sizeof msg);
    pthread_mutex_unlock(&discovery_lock);
    if (st != CLATTN_OK) {
        report(opts, msg);
        free(ctx);
        return st;
    }
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        report(opts, "pthread_mutex_init failed");
        free(ctx);
        return CLATTN_ERR_OUT_OF_RESOURCES;
    }
    ctx->device = device;
    if (opts) {
        ctx->log = opts->log;
        ctx->log_user_data = opts->log_user_data;
        ctx->max_scratch_bytes = opts->max_scratch_bytes;
        ctx->cache_max_bytes = opts->cache_max_bytes;
    }
    if (!ctx->cache_max_bytes)
        ctx->cache_max_bytes = CLATTN__DEFAULT_CACHE_BYTES;
    clattn__device_fingerprint(&ctx->dev, ctx->fingerprint, sizeof ctx->fingerprint);
    open_disk_cache(ctx, opts ? opts->cache_dir : NULL);
    *out = ctx;
    return CLATTN_OK;
}

clattn_status clattn_context_create(const clattn_options *opts, clattn_context **out)
{
    if (!out)
        return CLATTN_ERR_INVALID_ARGUMENT;
    *out = NULL;
    char msg[256];
    cl_platform_id platform;
    cl_device_id device;
    pthread_mutex_lock(&discovery_lock);
    clattn_status st = clattn__choose_device(opts ? opts->platform : -1,
                                             opts ? opts->device : -1, &platform, &device, msg,
                                             sizeof msg);
    pthread_mutex_unlock(&discovery_lock);
    if (st != CLATTN_OK) {
        report(opts, msg);
        return st;
    }
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
    cl_context clctx = clCreateContext(props, 1, &device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        report(opts, "clCreateContext failed");
        return err == CL_OUT_OF_HOST_MEMORY || err == CL_OUT_OF_RESOURCES
                   ? CLATTN_ERR_OUT_OF_RESOURCES
                   : CLATTN_ERR_OPENCL;
    }
    /* Profiling on: the tuner and the benchmarks time with events. */
    cl_command_queue queue =
        clCreateCommandQueue(clctx, device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        report(opts, "clCreateCommandQueue failed");
        clReleaseContext(clctx);
        return err == CL_OUT_OF_HOST_MEMORY || err == CL_OUT_OF_RESOURCES
                   ? CLATTN_ERR_OUT_OF_RESOURCES
                   : CLATTN_ERR_OPENCL;
    }
    clattn_context *ctx;
    st = context_new(opts, device, &ctx);
    if (st != CLATTN_OK) {
        clReleaseCommandQueue(queue);
        clReleaseContext(clctx);
        return st;
    }
    ctx->cl_ctx = clctx;
    ctx->queue = queue;
    ctx->owns_cl = 1;
    *out = ctx;
    return CLATTN_OK;
}

clattn_status clattn_context_create_from_queue(cl_command_queue queue,
                                               const clattn_options *opts,
                                               clattn_context **out)
{
    if (!out)
        return CLATTN_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!queue) {
        report(opts, "clattn_context_create_from_queue: queue is NULL");
        return CLATTN_ERR_INVALID_ARGUMENT;
    }
    cl_context clctx;
    cl_device_id device;
    if (clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof clctx, &clctx, NULL) !=
            CL_SUCCESS ||
        clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof device, &device, NULL) !=
            CL_SUCCESS) {
        report(opts, "clattn_context_create_from_queue: queue is not a valid command queue");
        return CLATTN_ERR_INVALID_ARGUMENT;
    }
    clattn_context *ctx;
    clattn_status st = context_new(opts, device, &ctx);
    if (st != CLATTN_OK)
        return st;
    ctx->cl_ctx = clctx;
    ctx->queue = queue;
    ctx->owns_cl = 0;
    *out = ctx;
    return CLATTN_OK;
}

void clattn_context_destroy(clattn_context *ctx)
{
    if (!ctx)
        return;
    /* Kernels still queued may use the scratch and programs; finish first. */
    clFinish(ctx->queue);
    /* Binaries of programs first run since the last call, while the
     * programs still exist. */
    clattn__program_cache_flush(ctx);
    if (ctx->scratch_busy)
        clReleaseEvent(ctx->scratch_busy);
    if (ctx->dummy)
        clReleaseMemObject(ctx->dummy);
    for (int i = 0; i < 2; ++i)
        if (ctx->scratch[i])
            clReleaseMemObject(ctx->scratch[i]);
    clattn__program_cache_release(&ctx->programs);
    if (ctx->used_blas)
        clattn__blas_release();
    clattn__tuning_close(&ctx->tuning);
    if (ctx->owns_cl) {
        clReleaseCommandQueue(ctx->queue);
        clReleaseContext(ctx->cl_ctx);
    }
    pthread_mutex_destroy(&ctx->lock);
    free(ctx->last_error);
    free(ctx);
}

const char *clattn_last_error(const clattn_context *ctx)
{
    /* A copy per thread, taken under the lock: another thread's failing call
     * frees and replaces the context's message, which would leave a pointer
     * into the context dangling. */
    static _Thread_local char copy[8192];
    if (!ctx)
        return "clattn_last_error: context is NULL";
    clattn_context *c = (clattn_context *)ctx;
    pthread_mutex_lock(&c->lock);
    snprintf(copy, sizeof copy, "%s", c->last_error ? c->last_error : "");
    pthread_mutex_unlock(&c->lock);
    return copy;
}

clattn_status clattn_context_get_cl(const clattn_context *ctx, cl_context *context,
                                    cl_command_queue *queue, cl_device_id *device)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    /* Under the lock: clattn_tune swaps in a profiling queue of its own
     * (released when it ends) where the caller's queue has no profiling. */
    clattn_context *c = (clattn_context *)ctx;
    pthread_mutex_lock(&c->lock);
    if (context)
        *context = ctx->cl_ctx;
    if (queue)
        *queue = ctx->queue;
    if (device)
        *device = ctx->device;
    pthread_mutex_unlock(&c->lock);
    return CLATTN_OK;
}

clattn_status clattn_context_stats(const clattn_context *ctx, clattn_stats *out)
{
    if (!ctx || !out)
        return CLATTN_ERR_INVALID_ARGUMENT;
    clattn_context *c = (clattn_context *)ctx; /* the lock is not part of the value */
    pthread_mutex_lock(&c->lock);
    /* Binaries due since the last call are written first, so that the
     * counters are exact once the caller's work has finished. */
    clattn__program_cache_flush(c);
    *out = ctx->stats;
    pthread_mutex_unlock(&c->lock);
    return CLATTN_OK;
}
