/* Status codes, OpenCL error names, and the context's failure message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *clattn_status_string(clattn_status status)
{
    switch (status) {
#define CLATTN_X_CASE(name, value, text)                                                   \
    case name:                                                                             \
        return text;
        CLATTN_STATUS_TABLE(CLATTN_X_CASE)
#undef CLATTN_X_CASE
    }
    return "unknown status";
}

const char *clattn_version(void)
{
#define CLATTN_STR2(x) #x
#define CLATTN_STR(x) CLATTN_STR2(x)
    return CLATTN_STR(CLATTN_VERSION_MAJOR) "." CLATTN_STR(CLATTN_VERSION_MINOR) "." CLATTN_STR(
        CLATTN_VERSION_PATCH);
}

const char *clattn__cl_error_name(cl_int err)
{
    switch (err) {
#define E(x)                                                                               \
    case x:                                                                                \
        return #x;
        E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
        E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES)
        E(CL_OUT_OF_HOST_MEMORY) E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP)
        E(CL_IMAGE_FORMAT_MISMATCH) E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE)
        E(CL_MAP_FAILURE) E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) E(CL_COMPILE_PROGRAM_FAILURE)
        E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE) E(CL_DEVICE_PARTITION_FAILED)
        E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE)
        E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
        E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
        E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
        E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
        E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
        E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
        E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
        E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
        E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
        E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
        E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
        E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    }
    return "CL_UNKNOWN_ERROR";
}

static void emit(const clattn_context *ctx, int level, const char *msg)
{
    if (ctx && ctx->log)
        ctx->log(level, msg, ctx->log_user_data);
}

clattn_status clattn__vfail(clattn_context *ctx, clattn_status status, const char *fmt,
                            va_list ap)
{
    char small[1024];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (!ctx) {
        va_end(ap2);
        return status;
    }
    char *msg = NULL;
    if (n >= 0 && (size_t)n >= sizeof small) {
        /* Build logs can be long; keep them whole. */
        msg = malloc((size_t)n + 1);
        if (msg)
            vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (!msg) {
        size_t len = strlen(small);
        msg = malloc(len + 1);
        if (msg)
            memcpy(msg, small, len + 1);
    }
    free(ctx->last_error);
    ctx->last_error = msg;
    emit(ctx, CLATTN_LOG_ERROR, msg ? msg : small);
    return status;
}

clattn_status clattn__fail(clattn_context *ctx, clattn_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    clattn_status st = clattn__vfail(ctx, status, fmt, ap);
    va_end(ap);
    return st;
}

clattn_status clattn__cl_fail(clattn_context *ctx, cl_int err, const char *what)
{
    clattn_status st = CLATTN_ERR_OPENCL;
    if (err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY ||
        err == CL_MEM_OBJECT_ALLOCATION_FAILURE)
        st = CLATTN_ERR_OUT_OF_RESOURCES;
    return clattn__fail(ctx, st, "%s failed: %s (%d)", what, clattn__cl_error_name(err),
                        (int)err);
}

void clattn__log(const clattn_context *ctx, int level, const char *fmt, ...)
{
    if (!ctx || !ctx->log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(ctx, level, msg);
}

void clattn__cache_warn(clattn_context *ctx, const char *msg)
{
    if (ctx->cache_warned)
        return;
    ctx->cache_warned = 1;
    char line[1200];
    snprintf(line, sizeof line, "disk cache: %s (continuing; problems are reported once)", msg);
    emit(ctx, CLATTN_LOG_WARNING, line);
}
