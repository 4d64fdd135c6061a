/*
 * clattn inside an application that owns everything: its OpenCL context, an
 * out-of-order queue, its buffers and its own kernels. One step of a model
 * layer: the application's kernel makes Q, K and V from an input, clattn
 * computes the attention after that kernel's event, and the application's
 * second kernel adds the attention output back onto the input (a residual)
 * after clattn's event. Nothing waits on the host until the result is read.
 * The program then checks the result against a double-precision host
 * computation and exits non-zero on a mismatch.
 *
 * usage: clattn-embed [PLATFORM:DEVICE]
 */
#include <clattn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { B = 2, H = 4, S = 37, D = 32 };
#define N_X ((size_t)B * H * S * D)

static const char *k_source =
    /* x -> q, k, v: three fixed mixes of the input, different per channel */
    "kernel void make_qkv(global const float *x, global float *q, global float *k,\n"
    "                     global float *v)\n"
    "{\n"
    "    size_t i = get_global_id(0);\n"
    "    float d = (float)(i % 32);\n"
    "    q[i] = x[i] * (0.5f + 0.01f * d);\n"
    "    k[i] = x[i] * (1.0f - 0.01f * d) + 0.1f;\n"
    "    v[i] = x[i] * x[i] - 0.25f;\n"
    "}\n"
    "kernel void residual(global const float *x, global const float *o, global float *y)\n"
    "{\n"
    "    size_t i = get_global_id(0);\n"
    "    y[i] = x[i] + o[i];\n"
    "}\n";

static int fail(const char *what, cl_int err)
{
    fprintf(stderr, "clattn-embed: %s failed (OpenCL error %d)\n", what, (int)err);
    return 1;
}

/* The device from "P:D", or the first one. */
static cl_int pick(const char *spec, cl_device_id *dev)
{
    unsigned pi = 0, di = 0;
    if (spec && sscanf(spec, "%u:%u", &pi, &di) != 2)
        return CL_INVALID_VALUE;
    cl_platform_id plats[16];
    cl_uint np = 0, nd = 0;
    cl_int err = clGetPlatformIDs(16, plats, &np);
    if (err != CL_SUCCESS || pi >= np)
        return err != CL_SUCCESS ? err : CL_INVALID_PLATFORM;
    cl_device_id devs[16];
    err = clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, 16, devs, &nd);
    if (err != CL_SUCCESS || di >= nd)
        return err != CL_SUCCESS ? err : CL_INVALID_DEVICE;
    *dev = devs[di];
    return CL_SUCCESS;
}

/* y = x + attention(q(x), k(x), v(x)) in double, as the kernels define it. */
static double check(const float *x, const float *y)
{
    double worst = 0.0;
    double *q = malloc(sizeof(double) * N_X * 3), *k = q + N_X, *v = k + N_X;
    if (!q)
        return INFINITY;
    for (size_t i = 0; i < N_X; ++i) {
        const double d = (double)(i % 32);
        q[i] = x[i] * (0.5f + 0.01f * (float)d);
        k[i] = x[i] * (1.0f - 0.01f * (float)d) + 0.1f;
        v[i] = (double)(x[i] * x[i] - 0.25f);
    }
    const double scale = 1.0 / sqrt((double)D);
    for (size_t bh = 0; bh < (size_t)B * H; ++bh)
        for (int i = 0; i < S; ++i) {
            const double *qi = q + (bh * S + i) * D;
            double s[S], m = -INFINITY, l = 0.0;
            for (int j = 0; j <= i; ++j) { /* causal */
                s[j] = 0.0;
                for (int d = 0; d < D; ++d)
                    s[j] += qi[d] * k[(bh * S + j) * D + d];
                s[j] *= scale;
                m = fmax(m, s[j]);
            }
            for (int j = 0; j <= i; ++j)
                l += (s[j] = exp(s[j] - m));
            for (int d = 0; d < D; ++d) {
                double o = 0.0;
                for (int j = 0; j <= i; ++j)
                    o += s[j] / l * v[(bh * S + j) * D + d];
                const size_t e = (bh * S + i) * D + d;
                worst = fmax(worst, fabs((double)y[e] - (x[e] + o)));
            }
        }
    free(q);
    return worst;
}

int main(int argc, char **argv)
{
    cl_device_id dev;
    cl_int err = pick(argc > 1 ? argv[1] : NULL, &dev);
    if (err != CL_SUCCESS)
        return fail("choosing the device", err);
    cl_context cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return fail("clCreateContext", err);
    cl_command_queue_properties props = 0;
    clGetDeviceInfo(dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    const int ooo = (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    cl_command_queue queue = clCreateCommandQueue(
        cl, dev, ooo ? CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE : 0, &err);
    if (err != CL_SUCCESS)
        return fail("clCreateCommandQueue", err);
    cl_program prog = clCreateProgramWithSource(cl, 1, &k_source, NULL, &err);
    if (err == CL_SUCCESS)
        err = clBuildProgram(prog, 1, &dev, "", NULL, NULL);
    if (err != CL_SUCCESS)
        return fail("building the application's kernels", err);
    cl_kernel make_qkv = clCreateKernel(prog, "make_qkv", &err);
    cl_kernel residual = clCreateKernel(prog, "residual", &err);
    if (err != CL_SUCCESS)
        return fail("clCreateKernel", err);

    /* clattn on the application's queue: it never retains or releases it */
    clattn_context *ctx = NULL;
    clattn_status st = clattn_context_create_from_queue(queue, NULL, &ctx);
    if (st != CLATTN_OK) {
        fprintf(stderr, "clattn-embed: clattn_context_create_from_queue: %s\n",
                clattn_status_string(st));
        return 1;
    }

    float *x = malloc(sizeof(float) * N_X), *y = malloc(sizeof(float) * N_X);
    if (!x || !y)
        return fail("allocating host memory", CL_OUT_OF_HOST_MEMORY);
    for (size_t i = 0; i < N_X; ++i)
        x[i] = (float)sin(0.37 * (double)i) * 1.5f;
    const size_t bytes = sizeof(float) * N_X;
    cl_mem bx = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, x, &err);
    cl_mem bq = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem bk = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem bv = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem bo = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem by = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return fail("clCreateBuffer", err);

    /* the application's kernel -> clattn -> the application's kernel, each
     * step waiting on the previous one's event */
    const size_t global = N_X;
    cl_event made, attended, summed;
    clSetKernelArg(make_qkv, 0, sizeof bx, &bx);
    clSetKernelArg(make_qkv, 1, sizeof bq, &bq);
    clSetKernelArg(make_qkv, 2, sizeof bk, &bk);
    clSetKernelArg(make_qkv, 3, sizeof bv, &bv);
    err = clEnqueueNDRangeKernel(queue, make_qkv, 1, NULL, &global, NULL, 0, NULL, &made);
    if (err != CL_SUCCESS)
        return fail("enqueueing make_qkv", err);
    const clattn_problem p = {.batch = B, .heads = H, .seq_q = S, .seq_kv = S, .head_dim = D,
                              .dtype = CLATTN_F32, .causal = CLATTN_CAUSAL_BOTTOM_RIGHT};
    const clattn_buffers buf = {.q = bq, .k = bk, .v = bv, .o = bo};
    st = clattn_forward(ctx, &p, &buf, 1, &made, &attended);
    if (st != CLATTN_OK) {
        fprintf(stderr, "clattn-embed: clattn_forward: %s\n", clattn_last_error(ctx));
        return 1;
    }
    clSetKernelArg(residual, 0, sizeof bx, &bx);
    clSetKernelArg(residual, 1, sizeof bo, &bo);
    clSetKernelArg(residual, 2, sizeof by, &by);
    err = clEnqueueNDRangeKernel(queue, residual, 1, NULL, &global, NULL, 1, &attended,
                                 &summed);
    if (err != CL_SUCCESS)
        return fail("enqueueing residual", err);
    err = clEnqueueReadBuffer(queue, by, CL_TRUE, 0, bytes, y, 1, &summed, NULL);
    if (err != CL_SUCCESS)
        return fail("reading the result", err);

    const double worst = check(x, y);
    printf("clattn-embed: %s queue, B%d H%d S%d D%d causal; max |y - reference| = %.3g\n",
           ooo ? "out-of-order" : "in-order (the device has no out-of-order queues)", B, H, S,
           D, worst);
    const int ok = worst <= 1e-5;

    clReleaseEvent(made);
    clReleaseEvent(attended);
    clReleaseEvent(summed);
    clattn_context_destroy(ctx); /* before the queue it borrows */
    cl_mem all[] = {bx, bq, bk, bv, bo, by};
    for (int i = 0; i < 6; ++i)
        clReleaseMemObject(all[i]);
    clReleaseKernel(make_qkv);
    clReleaseKernel(residual);
    clReleaseProgram(prog);
    clReleaseCommandQueue(queue);
    clReleaseContext(cl);
    free(x);
    free(y);
    if (!ok)
        fprintf(stderr, "clattn-embed: result differs from the reference\n");
    return ok ? 0 : 1;
}
