/* The baselines attn-tune bench measures clattn against, outside the
 * library: a naive kernel and a three-stage pipeline of CLBlast GEMMs around
 * a softmax kernel, both from bench_kernels.cl. fp32, packed tensors, no
 * mask or kv_lens (the bench never passes those). */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef ATTN_TUNE_HAVE_CLBLAST
#include <clblast_c.h>
#endif

cl_program bench_build_kernels(cl_context clctx, cl_device_id device, int wg, char *msg,
                               size_t size)
{
    const char *src = bench_kernels_cl;
    char options[64];
    cl_int err;
    cl_program prog = clCreateProgramWithSource(clctx, 1, &src, NULL, &err);
    if (err != CL_SUCCESS) {
        snprintf(msg, size, "clCreateProgramWithSource: error %d", (int)err);
        return NULL;
    }
    snprintf(options, sizeof options, "-DWG=%d", wg);
    err = clBuildProgram(prog, 1, &device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t n = 0;
        int head = snprintf(msg, size, "bench kernels do not build (error %d): ", (int)err);
        if (head > 0 && (size_t)head < size)
            clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, size - (size_t)head,
                                  msg + head, &n);
        clReleaseProgram(prog);
        return NULL;
    }
    return prog;
}

/* What the baselines cannot run; NULL when they can. */
static const char *unsupported(const clattn_problem *p)
{
    if (p->dtype != CLATTN_F32) return "the baselines are fp32 only";
    if (p->q_strides.seq || p->k_strides.seq || p->v_strides.seq || p->o_strides.seq)
        return "the baselines take packed tensors only";
    return NULL;
}

/* Arguments 7.. of naive_attention and 1.. of softmax_rows: the visibility
 * rule. */
static cl_int set_visibility(cl_kernel k, cl_uint first, const clattn_problem *p)
{
    cl_int e = 0, wl = p->windowed ? p->window_left : -1, wr = p->windowed ? p->window_right : -1;
    e |= clSetKernelArg(k, first, sizeof(cl_int), &p->causal);
    e |= clSetKernelArg(k, first + 1, sizeof(cl_int), &p->windowed);
    e |= clSetKernelArg(k, first + 2, sizeof(cl_int), &wl);
    e |= clSetKernelArg(k, first + 3, sizeof(cl_int), &wr);
    return e;
}

/* clattn.h: scale 0 means 1/sqrt(head_dim). */
static float scale_of(const clattn_problem *p)
{
    return p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)p->head_dim);
}

int bench_naive_run(cl_program prog, cl_command_queue queue, const clattn_problem *p,
                    const bench_io *io, char *msg, size_t size)
{
    const char *why = unsupported(p);
    cl_int err, e = 0;
    cl_kernel k;
    cl_int rows, group = p->heads / p->kv_heads;
    float scale;
    size_t global;
    if (why) {
        snprintf(msg, size, "%s", why);
        return -1;
    }
    if ((int64_t)p->batch * p->heads * p->seq_q > 0x7fffffff) {
        snprintf(msg, size, "more than 2^31 query rows");
        return -1;
    }
    rows = (cl_int)((int64_t)p->batch * p->heads * p->seq_q);
    scale = scale_of(p);
    k = clCreateKernel(prog, "naive_attention", &err);
    if (err != CL_SUCCESS) {
        snprintf(msg, size, "clCreateKernel(naive_attention): error %d", (int)err);
        return -2;
    }
    e |= clSetKernelArg(k, 0, sizeof(cl_mem), &io->q);
    e |= clSetKernelArg(k, 1, sizeof(cl_mem), &io->k);
    e |= clSetKernelArg(k, 2, sizeof(cl_mem), &io->v);
    e |= clSetKernelArg(k, 3, sizeof(cl_mem), &io->o);
    e |= clSetKernelArg(k, 4, sizeof(cl_int), &rows);
    e |= clSetKernelArg(k, 5, sizeof(cl_int), &p->heads);
    e |= clSetKernelArg(k, 6, sizeof(cl_int), &group);
    e |= clSetKernelArg(k, 7, sizeof(cl_int), &p->seq_q);
    e |= clSetKernelArg(k, 8, sizeof(cl_int), &p->seq_kv);
    e |= clSetKernelArg(k, 9, sizeof(cl_int), &p->head_dim);
    e |= clSetKernelArg(k, 10, sizeof(cl_int), &p->head_dim_v);
    e |= clSetKernelArg(k, 11, sizeof(float), &scale);
    e |= set_visibility(k, 12, p);
    global = (size_t)rows;
    err = e != CL_SUCCESS ? e : clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, NULL, 0, NULL,
                                                       NULL);
    if (err == CL_SUCCESS) err = clFinish(queue);
    clReleaseKernel(k);
    if (err != CL_SUCCESS) {
        snprintf(msg, size, "naive_attention: OpenCL error %d", (int)err);
        return -2;
    }
    return 0;
}

#ifdef ATTN_TUNE_HAVE_CLBLAST

int bench_have_clblast(void) { return 1; }

/* Scores S = scale Q K^T with one CLBlast batched GEMM, softmax_rows on S in
 * place, O = S V with another. The query heads of a GQA group are adjacent
 * in packed Q and O, so each (batch, kv head) is one GEMM of group * seq_q
 * rows against its K (and V): the batches are evenly spaced. Masked pairs
 * are computed by the GEMM and zeroed by the softmax, as a plain
 * three-stage pipeline does. */
int bench_clblast_run(cl_program prog, int wg, cl_command_queue queue, const clattn_problem *p,
                      const bench_io *io, cl_mem *scratch, size_t *scratch_bytes, char *msg,
                      size_t size)
{
    const char *why = unsupported(p);
    const size_t group = (size_t)(p->heads / p->kv_heads);
    const size_t batches = (size_t)p->batch * (size_t)p->kv_heads;
    const size_t m = group * (size_t)p->seq_q, n = (size_t)p->seq_kv;
    const size_t d = (size_t)p->head_dim, dv = (size_t)p->head_dim_v;
    const size_t need = batches * m * n * sizeof(float);
    cl_context clctx;
    cl_device_id device;
    cl_ulong max_alloc = 0;
    CLBlastStatusCode bs;
    cl_int err, e = 0;
    cl_kernel k = NULL;
    float scale;
    size_t global, local = (size_t)wg;
    if (why) {
        snprintf(msg, size, "%s", why);
        return -1;
    }
    clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof clctx, &clctx, NULL);
    clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof device, &device, NULL);
    clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    if (need > max_alloc || need > ((size_t)1 << 30)) {
        snprintf(msg, size, "the scores (%.0f MiB) exceed one allocation (limit %.0f MiB)",
                 (double)need / 1048576.0,
                 (double)(max_alloc < ((cl_ulong)1 << 30) ? max_alloc : (cl_ulong)1 << 30) /
                     1048576.0);
        return -1;
    }
    if (*scratch_bytes < need) {
        if (*scratch) clReleaseMemObject(*scratch);
        *scratch_bytes = 0;
        *scratch = clCreateBuffer(clctx, CL_MEM_READ_WRITE, need, NULL, &err);
        if (err != CL_SUCCESS) {
            *scratch = NULL;
            snprintf(msg, size, "cannot allocate %.0f MiB of scores: error %d",
                     (double)need / 1048576.0, (int)err);
            return -2;
        }
        *scratch_bytes = need;
    }
    scale = scale_of(p);
    bs = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                    CLBlastTransposeYes, m, n, d, scale, io->q, 0, d, m * d,
                                    io->k, 0, d, n * d, 0.0f, *scratch, 0, n, m * n, batches,
                                    &queue, NULL);
    if (bs != CLBlastSuccess) {
        snprintf(msg, size, "CLBlastSgemmStridedBatched (Q*K^T): status %d", (int)bs);
        return -2;
    }
    k = clCreateKernel(prog, "softmax_rows", &err);
    if (err != CL_SUCCESS) {
        snprintf(msg, size, "clCreateKernel(softmax_rows): error %d", (int)err);
        return -2;
    }
    e |= clSetKernelArg(k, 0, sizeof(cl_mem), scratch);
    e |= clSetKernelArg(k, 1, sizeof(cl_int), &p->seq_q);
    e |= clSetKernelArg(k, 2, sizeof(cl_int), &p->seq_kv);
    e |= set_visibility(k, 3, p);
    global = batches * m * local;
    err = e != CL_SUCCESS ? e : clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &local, 0,
                                                       NULL, NULL);
    clReleaseKernel(k);
    if (err != CL_SUCCESS) {
        clFinish(queue);
        snprintf(msg, size, "softmax_rows: OpenCL error %d", (int)err);
        return -2;
    }
    bs = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                    CLBlastTransposeNo, m, dv, n, 1.0f, *scratch, 0, n, m * n,
                                    io->v, 0, dv, n * dv, 0.0f, io->o, 0, dv, m * dv, batches,
                                    &queue, NULL);
    err = clFinish(queue);
    if (bs != CLBlastSuccess || err != CL_SUCCESS) {
        snprintf(msg, size, "CLBlastSgemmStridedBatched (P*V): status %d, finish %d", (int)bs,
                 (int)err);
        return -2;
    }
    return 0;
}

#else

int bench_have_clblast(void) { return 0; }

int bench_clblast_run(cl_program prog, int wg, cl_command_queue queue, const clattn_problem *p,
                      const bench_io *io, cl_mem *scratch, size_t *scratch_bytes, char *msg,
                      size_t size)
{
    (void)prog, (void)wg, (void)queue, (void)p, (void)io, (void)scratch, (void)scratch_bytes;
    snprintf(msg, size, "attn-tune was built without CLBlast");
    return -1;
}

#endif
