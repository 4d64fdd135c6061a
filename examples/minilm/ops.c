#include "ops.h"

#include <stdio.h>
#include <stdlib.h>

#include <clblast_c.h>

#include "gemm_params.h"
#include "util.h"

/* minilm_kernels.cl, embedded at build time (CMakeLists.txt). */
extern const char minilm_kernels_cl[];

int ops_gemm_rows(int rows)
{
    const int narrow = (rows + MINILM_GEMM_ROWS - 1) / MINILM_GEMM_ROWS * MINILM_GEMM_ROWS;
    const int wide = (rows + MINILM_WIDE_ROWS - 1) / MINILM_WIDE_ROWS * MINILM_WIDE_ROWS;
    /* The wide tiles are ~1.2x faster a row (gemm_params.h). */
    return 5 * wide <= 6 * narrow ? wide : narrow;
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
    fprintf(stderr, "clattn-minilm: %s: %s: %s\n", what, clattn_status_string(st),
            clattn_last_error(ctx));
    if (st == CLATTN_ERR_UNSUPPORTED)
        fputs("clattn-minilm: not supported on this device\n", stderr);
    exit(st == CLATTN_ERR_UNSUPPORTED ? MINILM_EXIT_UNSUPPORTED : 1);
}

static void build_program(ops *o, cl_device_id dev)
{
    cl_int err;
    const char *src = minilm_kernels_cl;
    o->program = clCreateProgramWithSource(o->cl, 1, &src, NULL, &err);
    check_cl(err, "clCreateProgramWithSource");
    char options[64];
    snprintf(options, sizeof options, "-DHIDDEN=%d -DROW_WG=%d", o->hidden, o->row_wg);
    err = clBuildProgram(o->program, 1, &dev, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[8192] = "";
        clGetProgramBuildInfo(o->program, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        die("building minilm_kernels.cl failed (%d):\n%s", (int)err, log);
    }
}

static cl_kernel kernel(const ops *o, const char *name)
{
    cl_int err;
    cl_kernel k = clCreateKernel(o->program, name, &err);
    check_cl(err, name);
    return k;
}

void ops_init(ops *o, clattn_context *ctx, int hidden)
{
    cl_device_id dev;
    check_attn(ctx, clattn_context_get_cl(ctx, &o->cl, &o->queue, &dev), "clattn_context_get_cl");
    o->hidden = hidden;
    o->device = dev;
    cl_device_type type = 0;
    check_cl(clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL), "clGetDeviceInfo");
    o->cpu_gemm = (type & CL_DEVICE_TYPE_CPU) != 0;
    o->gemm_set = NULL;
    /* A CPU device runs a work-group's work-items one after another, and
     * the reductions' barriers split that loop at every step: 8 work-items
     * a row made the encoder ~13% faster than 64 on PoCL (AVX2), where 64
     * suits a GPU's wide groups. */
    o->row_wg = o->cpu_gemm ? 8 : 64;
    build_program(o, dev);
    o->embed_layer_norm = kernel(o, "embed_layer_norm");
    o->add_layer_norm = kernel(o, "add_layer_norm");
    o->split_qkv = kernel(o, "split_qkv");
    o->bias_gelu = kernel(o, "bias_gelu");
    o->mean_pool = kernel(o, "mean_pool");
}

void ops_release(ops *o)
{
    clReleaseKernel(o->embed_layer_norm);
    clReleaseKernel(o->add_layer_norm);
    clReleaseKernel(o->split_qkv);
    clReleaseKernel(o->bias_gelu);
    clReleaseKernel(o->mean_pool);
    clReleaseProgram(o->program);
    /* CLBlast caches its programs process-wide, each holding the cl_context;
     * left there, they are released by CLBlast's static destructors at exit,
     * which under Oclgrind aborted (heap corruption in LLVM, torn down
     * first). clattn clears the cache only where it used CLBlast itself. */
    CLBlastClearCache();
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

void ops_read(const ops *o, cl_mem src, size_t bytes, void *dst)
{
    check_cl(clEnqueueReadBuffer(o->queue, src, CL_TRUE, 0, bytes, dst, 0, NULL, NULL),
             "clEnqueueReadBuffer");
}

static void launch(const ops *o, cl_kernel k, cl_uint dims, const size_t *global,
                   const size_t *local, const char *what)
{
    check_cl(clEnqueueNDRangeKernel(o->queue, k, dims, NULL, global, local, 0, NULL, NULL), what);
}

/* One work-group of row_wg per row (or per sentence). */
static void launch_rows(const ops *o, cl_kernel k, int rows, const char *what)
{
    const size_t local = (size_t)o->row_wg, global = (size_t)rows * local;
    launch(o, k, 1, &global, &local, what);
}

static void arg_mem(cl_kernel k, cl_uint i, cl_mem m)
{
    check_cl(clSetKernelArg(k, i, sizeof m, &m), "clSetKernelArg");
}

static void arg_int(cl_kernel k, cl_uint i, int v)
{
    check_cl(clSetKernelArg(k, i, sizeof v, &v), "clSetKernelArg");
}

static void arg_float(cl_kernel k, cl_uint i, float v)
{
    check_cl(clSetKernelArg(k, i, sizeof v, &v), "clSetKernelArg");
}

void ops_embed_layer_norm(const ops *o, cl_mem ids, cl_mem word, cl_mem position,
                          cl_mem token_type, cl_mem gamma, cl_mem beta, float eps, int rows,
                          int seq, int vocab, cl_mem x)
{
    cl_kernel k = o->embed_layer_norm;
    arg_mem(k, 0, ids);
    arg_mem(k, 1, word);
    arg_mem(k, 2, position);
    arg_mem(k, 3, token_type);
    arg_mem(k, 4, gamma);
    arg_mem(k, 5, beta);
    arg_float(k, 6, eps);
    arg_int(k, 7, seq);
    arg_int(k, 8, vocab);
    arg_mem(k, 9, x);
    launch_rows(o, k, rows, "embed_layer_norm");
}

void ops_add_layer_norm(const ops *o, cl_mem y, cl_mem bias, cl_mem gamma, cl_mem beta,
                        float eps, int rows, cl_mem x)
{
    cl_kernel k = o->add_layer_norm;
    arg_mem(k, 0, y);
    arg_mem(k, 1, bias);
    arg_mem(k, 2, gamma);
    arg_mem(k, 3, beta);
    arg_float(k, 4, eps);
    arg_mem(k, 5, x);
    launch_rows(o, k, rows, "add_layer_norm");
}

void ops_split_qkv(const ops *o, cl_mem qkv, cl_mem bias, int rows, cl_mem q, cl_mem k_out,
                   cl_mem v)
{
    cl_kernel k = o->split_qkv;
    arg_mem(k, 0, qkv);
    arg_mem(k, 1, bias);
    arg_mem(k, 2, q);
    arg_mem(k, 3, k_out);
    arg_mem(k, 4, v);
    const size_t global[2] = {(size_t)3 * (size_t)o->hidden, (size_t)rows};
    launch(o, k, 2, global, NULL, "split_qkv");
}

void ops_bias_gelu(const ops *o, cl_mem h, cl_mem bias, int rows, int width)
{
    cl_kernel k = o->bias_gelu;
    arg_mem(k, 0, h);
    arg_mem(k, 1, bias);
    arg_int(k, 2, width);
    const size_t global[2] = {(size_t)width, (size_t)rows};
    launch(o, k, 2, global, NULL, "bias_gelu");
}

void ops_mean_pool(const ops *o, cl_mem x, cl_mem lens, int batch, int seq, int normalize,
                   cl_mem out)
{
    cl_kernel k = o->mean_pool;
    arg_mem(k, 0, x);
    arg_mem(k, 1, lens);
    arg_int(k, 2, seq);
    arg_int(k, 3, normalize);
    arg_mem(k, 4, out);
    launch_rows(o, k, batch, "mean_pool");
}

/* CLBlastOverrideParameters rebuilds CLBlast's parameter database for the
 * device (~0.9 ms a call, measured), so a set is given only when it changes.
 * CLBlast keeps it per device for the whole process. clattn overrides
 * CLBlast only for a three-stage attention plan tuned with a CLBlast
 * parameter set (clattn.h, tuning); were the encoder's attention tuned
 * into one, its GemmRoutine threshold could send these GEMMs to CLBlast's
 * direct kernel: slower, still correct. */
static void override_cpu_gemm(ops *o, int m)
{
    const size_t *set = m % MINILM_WIDE_ROWS == 0 ? k_xgemm_wide : k_xgemm_narrow;
    if (set == o->gemm_set)
        return;
    CLBlastStatusCode st = CLBlastOverrideParameters(
        o->device, "Xgemm", CLBlastPrecisionSingle,
        XGEMM_NPARAM, k_xgemm_names, set);
    if (st == CLBlastSuccess && !o->gemm_set)
        st = CLBlastOverrideParameters(o->device, "GemmRoutine", CLBlastPrecisionSingle, 1,
                                       k_routine_names, k_routine_cpu);
    if (st != CLBlastSuccess)
        die("CLBlastOverrideParameters failed: CLBlast status %d", (int)st);
    o->gemm_set = set;
}

void ops_transpose(float *dst, const float *src, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c)
            dst[c * rows + r] = src[r * cols + c];
}

void ops_linear(ops *o, int m, int n, int k, cl_mem a, cl_mem wt, cl_mem c)
{
    cl_command_queue q = o->queue;
    if (o->cpu_gemm)
        override_cpu_gemm(o, m);
    const CLBlastStatusCode st =
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)m,
                     (size_t)n, (size_t)k, 1.0f, a, 0, (size_t)k, wt, 0, (size_t)n, 0.0f, c, 0,
                     (size_t)n, &q, NULL);
    if (st != CLBlastSuccess)
        die("CLBlastSgemm (%d x %d x %d) failed: CLBlast status %d", m, n, k, (int)st);
}
