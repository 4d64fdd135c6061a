/* Internal declarations shared by the library's source files. */
#ifndef CLATTN_INTERNAL_H
#define CLATTN_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>

#include "clattn.h"
#include "device.h"
#include "program_cache.h"
#include "tuning_store.h"

#define CLATTN__MULTI_SPEEDS 8

struct clattn_context {
    cl_context cl_ctx;
    cl_command_queue queue;
    cl_device_id device;
    int owns_cl; /* created by clattn_context_create: released on destroy */
    clattn__device_info dev;
    clattn_log_fn log;
    void *log_user_data;
    pthread_mutex_t lock;
    char *last_error;
    size_t max_scratch_bytes; /* 0 = default */
    clattn__program_cache programs;
    char fingerprint[1024];
    /* Disk cache: the programs directory, or "" when disk use is off. */
    char program_dir[4096];
    uint64_t cache_max_bytes;
    int cache_warned; /* a disk problem is reported once per context */
    clattn_stats stats;
    clattn__tuning_store tuning;
    int used_blas;        /* CLBlast holds programs of this context */
    cl_mem dummy; /* stands in for optional buffers the caller left NULL */
    /* Scratch reused across calls; grown on demand. */
    cl_mem scratch[2];
    size_t scratch_size[2];
    /* The final event of the last call that used the scratch: the next such
     * call waits for it, so an out-of-order queue cannot overlap two users. */
    cl_event scratch_busy;
    /* Speeds measured by clattn_multi_forward_host for kinds of problems
     * (a ring of the last few), so that a second call does not time again. */
    struct {
        clattn__tune_key key;
        int split;
        double speed;
    } multi_speed[CLATTN__MULTI_SPEEDS];
    unsigned multi_speed_next;
};

/* Records a failure message on ctx (may be NULL), sends it to the log, and
 * returns status, so a check reads: return clattn__fail(ctx, ST, "...", ...). */
clattn_status clattn__fail(clattn_context *ctx, clattn_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
clattn_status clattn__vfail(clattn_context *ctx, clattn_status status, const char *fmt,
                            va_list ap);
/* The status and message of a failed OpenCL call `what`. */
clattn_status clattn__cl_fail(clattn_context *ctx, cl_int err, const char *what);
void clattn__log(const clattn_context *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *clattn__cl_error_name(cl_int err);
/* Logs a cache problem as a warning, the first time only. */
void clattn__cache_warn(clattn_context *ctx, const char *msg);

#define CLATTN_TRY(expr)                                                                   \
    do {                                                                                   \
        clattn_status clattn__st = (expr);                                                 \
        if (clattn__st != CLATTN_OK)                                                       \
            return clattn__st;                                                             \
    } while (0)

#define CLATTN_CHECK(ctx, cond, status, ...)                                               \
    do {                                                                                   \
        if (!(cond))                                                                       \
            return clattn__fail((ctx), (status), __VA_ARGS__);                             \
    } while (0)

#define CLATTN_CL_TRY(ctx, call, what)                                                     \
    do {                                                                                   \
        cl_int clattn__err = (call);                                                       \
        if (clattn__err != CL_SUCCESS)                                                     \
            return clattn__cl_fail((ctx), clattn__err, (what));                            \
    } while (0)

#endif
