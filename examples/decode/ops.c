#include "ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <clblast_c.h>

/* decode_kernels.cl, embedded at build time (CMakeLists.txt). */
extern const char decode_kernels_cl[];

#define RMS_EPS 1e-5f
#define NORM_WG 64

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("clattn-decode: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void check_cl(cl_int err, const char *what)
{
    if (err != CL_SUCCESS)
        die("%s failed: OpenCL error %d", what, (int)err);
}

void check_attn(const clattn_context *ctx, clattn_status st, const char *what)
{
    if (st == CLATTN_OK)
        return;
    fprintf(stderr, "clattn-decode: %s: %s: %s\n", what, clattn_status_string(st),
            clattn_last_error(ctx));
    if (st == CLATTN_ERR_UNSUPPORTED)
        fputs("clattn-decode: not supported on this device\n", stderr);
    exit(st == CLATTN_ERR_UNSUPPORTED ? DECODE_EXIT_UNSUPPORTED : 1);
}

static void build_program(ops *o, cl_device_id dev)
{
    cl_int err;
    const char *src = decode_kernels_cl;
    o->program = clCreateProgramWithSource(o->cl, 1, &src, NULL, &err);
    check_cl(err, "clCreateProgramWithSource");
    char options[64];
    snprintf(options, sizeof options, "-DNORM_WG=%d", NORM_WG);
    err = clBuildProgram(o->program, 1, &dev, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[8192] = "";
        clGetProgramBuildInfo(o->program, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        die("building decode_kernels.cl failed (%d):\n%s", (int)err, log);
    }
}

static cl_kernel kernel(const ops *o, const char *name)
{
    cl_int err;
    cl_kernel k = clCreateKernel(o->program, name, &err);
    check_cl(err, name);
    return k;
}

void ops_init(ops *o, clattn_context *ctx)
{
    cl_device_id dev;
    check_attn(ctx, clattn_context_get_cl(ctx, &o->cl, &o->queue, &dev), "clattn_context_get_cl");
    build_program(o, dev);
    o->embed = kernel(o, "embed_tokens");
    o->rms_norm = kernel(o, "rms_norm");
    o->relu = kernel(o, "relu");
}

void ops_release(ops *o)
{
    clReleaseKernel(o->embed);
    clReleaseKernel(o->rms_norm);
    clReleaseKernel(o->relu);
    clReleaseProgram(o->program);
}

cl_mem ops_buffer(const ops *o, size_t bytes, const void *init)
{
    cl_int err;
    cl_mem m = clCreateBuffer(o->cl, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                              bytes, (void *)init, &err);
    check_cl(err, "clCreateBuffer");
    return m;
}

void ops_write(const ops *o, cl_mem dst, size_t bytes, const void *src)
{
    check_cl(clEnqueueWriteBuffer(o->queue, dst, CL_TRUE, 0, bytes, src, 0, NULL, NULL),
             "clEnqueueWriteBuffer");
}

static void set_arg(cl_kernel k, cl_uint i, size_t size, const void *value)
{
    check_cl(clSetKernelArg(k, i, size, value), "clSetKernelArg");
}

static void launch(const ops *o, cl_kernel k, cl_uint dims, const size_t *global,
                   const size_t *local, const char *what)
{
    check_cl(clEnqueueNDRangeKernel(o->queue, k, dims, NULL, global, local, 0, NULL, NULL), what);
}

void ops_embed(const ops *o, cl_mem tokens, cl_mem table, cl_mem x, int rows, int d_model,
               int vocab)
{
    set_arg(o->embed, 0, sizeof tokens, &tokens);
    set_arg(o->embed, 1, sizeof table, &table);
    set_arg(o->embed, 2, sizeof x, &x);
    set_arg(o->embed, 3, sizeof d_model, &d_model);
    set_arg(o->embed, 4, sizeof vocab, &vocab);
    const size_t global[2] = {(size_t)d_model, (size_t)rows};
    launch(o, o->embed, 2, global, NULL, "embed_tokens");
}

void ops_rms_norm(const ops *o, cl_mem x, cl_mem y, int rows, int d_model)
{
    const float eps = RMS_EPS;
    set_arg(o->rms_norm, 0, sizeof x, &x);
    set_arg(o->rms_norm, 1, sizeof y, &y);
    set_arg(o->rms_norm, 2, sizeof d_model, &d_model);
    set_arg(o->rms_norm, 3, sizeof eps, &eps);
    const size_t local = NORM_WG, global = (size_t)rows * NORM_WG;
    launch(o, o->rms_norm, 1, &global, &local, "rms_norm");
}

void ops_relu(const ops *o, cl_mem x, size_t n)
{
    set_arg(o->relu, 0, sizeof x, &x);
    launch(o, o->relu, 1, &n, NULL, "relu");
}

void ops_gemm(const ops *o, int m, int n, int k, cl_mem a, cl_mem b, int b_transposed,
              float beta, cl_mem c)
{
    cl_command_queue q = o->queue;
    const CLBlastStatusCode st =
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                     b_transposed ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)m,
                     (size_t)n, (size_t)k, 1.0f, a, 0, (size_t)k, b, 0,
                     (size_t)(b_transposed ? k : n), beta, c, 0, (size_t)n, &q, NULL);
    if (st != CLBlastSuccess)
        die("CLBlastSgemm (%d x %d x %d) failed: CLBlast status %d", m, n, k, (int)st);
}
