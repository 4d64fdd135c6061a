/* The two rates bench quotes results against: the host's sgemm (what the
 * same machine's CPU reaches on a large GEMM through OpenBLAS) and the
 * device's read bandwidth (a streaming sum over a large buffer). Both are
 * measured in the same run as the attention, under the same load. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#ifdef ATTN_TUNE_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define PEAK_RUNS 5

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof x[0], cmp_d);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

#ifdef ATTN_TUNE_HAVE_OPENBLAS

int bench_have_host_blas(void) { return 1; }

void bench_host_sgemm(bench_peaks *pk)
{
    const int n = 2048;
    const size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    double t[PEAK_RUNS];
    uint64_t seed = 7;
    pk->sgemm_n = n;
    if (!a || !b || !c) {
        snprintf(pk->sgemm_note, sizeof pk->sgemm_note, "cannot allocate the sgemm matrices");
        free(a), free(b), free(c);
        return;
    }
    for (size_t i = 0; i < nn; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)(seed >> 40) / 16777216.0f - 0.5f;
        b[i] = (float)((seed >> 16) & 0xffffff) / 16777216.0f - 0.5f;
    }
    /* The first call starts OpenBLAS's threads and faults C in. */
    for (int r = -1; r < PEAK_RUNS; r++) {
        double t0 = tool_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        if (r >= 0) t[r] = tool_now() - t0;
    }
    pk->sgemm_runs = PEAK_RUNS;
    pk->sgemm_threads = openblas_get_num_threads();
    pk->sgemm_gflops = 2.0 * (double)n * n * n / median(t, PEAK_RUNS) * 1e-9;
    snprintf(pk->sgemm_note, sizeof pk->sgemm_note,
             "OpenBLAS cblas_sgemm %d^3, %s kernels, %d thread(s), median of %d%s%s%s", n,
             openblas_get_corename(), pk->sgemm_threads, PEAK_RUNS,
             /* A forced core type picks other kernels than the CPU's own. */
             getenv("OPENBLAS_CORETYPE") ? "; OPENBLAS_CORETYPE=" : "",
             getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "",
             getenv("OPENBLAS_CORETYPE") ? " is set: unset it for the CPU's own kernels" : "");
    free(a), free(b), free(c);
}

#else

int bench_have_host_blas(void) { return 0; }

void bench_host_sgemm(bench_peaks *pk)
{
    snprintf(pk->sgemm_note, sizeof pk->sgemm_note,
             "attn-tune was built without OpenBLAS (apt install libopenblas-dev, "
             "reconfigure)");
}

#endif

/* Windows of the read buffer, read in turn: a window comes back only after
 * every other one, so a cache that holds less than the whole buffer cannot
 * serve it from one pass to the next. */
#define MAX_WINDOWS 16
typedef struct read_windows {
    cl_mem win[MAX_WINDOWS];
    int n, next;
} read_windows;

/* One read kernel at one work-group size: median seconds of PEAK_RUNS after
 * a warm-up, each run on the next window, or a negative value. */
static double time_read(cl_command_queue queue, cl_kernel k, read_windows *w, cl_long nvec,
                        cl_mem out, size_t global, size_t local)
{
    double t[PEAK_RUNS];
    cl_int e = 0;
    e |= clSetKernelArg(k, 1, sizeof nvec, &nvec);
    e |= clSetKernelArg(k, 2, sizeof out, &out);
    for (int r = -1; r < PEAK_RUNS && e == CL_SUCCESS; r++) {
        cl_mem in = w->win[w->next++ % w->n];
        e = clSetKernelArg(k, 0, sizeof in, &in);
        double t0 = tool_now();
        if (e == CL_SUCCESS)
            e = clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &local, 0, NULL, NULL);
        if (e == CL_SUCCESS) e = clFinish(queue);
        if (r >= 0) t[r] = tool_now() - t0;
    }
    return e == CL_SUCCESS ? median(t, PEAK_RUNS) : -1.0;
}

/* What the read probe and the sweep size themselves by. */
typedef struct device_limits {
    cl_ulong max_alloc, mem, cache;
    cl_uint cus;
    size_t max_wg;
} device_limits;

static device_limits limits_of(cl_device_id device)
{
    device_limits l = {0, 0, 0, 1, 1};
    clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof l.max_alloc, &l.max_alloc, NULL);
    clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof l.mem, &l.mem, NULL);
    clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof l.cache, &l.cache, NULL);
    clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof l.cus, &l.cus, NULL);
    clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof l.max_wg, &l.max_wg, NULL);
    return l;
}

/* The read kernels tried: on PoCL's CPU device one contiguous run per
 * work-item with independent sums reads fastest; GPUs want neighbouring
 * work-items on neighbouring addresses and many work-groups per compute
 * unit. groups: work-groups per compute unit. */
static const struct read_try {
    const char *kernel;
    int width;
    size_t wg, groups;
} k_read_tries[] = {
    {"read_chunk16x4", 16, 8, 4},   {"read_chunk16x4", 16, 8, 32},
    {"read_chunk16x4", 16, 64, 4},  {"read_chunk16x4", 16, 64, 32},
    {"read_chunk16", 16, 64, 32},   {"read_strided16", 16, 256, 16},
    {"read_strided4", 4, 256, 16},  {"read_strided4", 4, 64, 64},
};
#define NUM_READ_TRIES (sizeof k_read_tries / sizeof k_read_tries[0])

void bench_read_bandwidth(cl_context clctx, cl_command_queue queue, cl_device_id device,
                          cl_program prog, bench_peaks *pk)
{
    const device_limits lim = limits_of(device);
    const cl_ulong max_alloc = lim.max_alloc, mem = lim.mem, cache = lim.cache;
    const cl_uint cus = lim.cus;
    const size_t max_wg = lim.max_wg;
    size_t bytes = (size_t)256 << 20, most_items = 1;
    cl_mem in = NULL, out = NULL;
    read_windows w = {{NULL}, 1, 0};
    cl_int err;
    float one = 1.0f;
    double best = 0;
    if (bytes > max_alloc) bytes = (size_t)max_alloc;
    if (bytes > mem / 4) bytes = (size_t)(mem / 4);
    bytes &= ~(size_t)4095; /* window origins aligned for sub-buffers on any device */
    /* Windows enough to span four times the device's cache: a CPU's
     * last-level cache held much of one 256 MiB buffer from pass to pass (a
     * 480 MiB L3 read it at 35-38 GB/s, 2 GiB at 30-32; BENCHMARKS.md,
     * 2026-12-04), and this is meant to be the memory's rate. */
    while (w.n < MAX_WINDOWS && (cl_ulong)w.n * bytes < 4 * cache &&
           (cl_ulong)(w.n + 1) * bytes <= max_alloc && (cl_ulong)(w.n + 1) * bytes <= mem / 4)
        w.n++;
    for (size_t i = 0; i < NUM_READ_TRIES; i++) {
        size_t items = (size_t)cus * k_read_tries[i].wg * k_read_tries[i].groups;
        if (items > most_items) most_items = items;
    }
    in = clCreateBuffer(clctx, CL_MEM_READ_ONLY, bytes * (size_t)w.n, NULL, &err);
    if (err == CL_SUCCESS)
        out = clCreateBuffer(clctx, CL_MEM_WRITE_ONLY, most_items * sizeof(float), NULL, &err);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(queue, in, &one, sizeof one, 0, bytes * (size_t)w.n, 0, NULL,
                                  NULL);
    for (int i = 0; i < w.n && err == CL_SUCCESS; i++) {
        const cl_buffer_region r = {bytes * (size_t)i, bytes};
        w.win[i] = clCreateSubBuffer(in, CL_MEM_READ_ONLY, CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
    }
    if (err == CL_SUCCESS) err = clFinish(queue);
    if (err != CL_SUCCESS) {
        snprintf(pk->read_note, sizeof pk->read_note,
                 "cannot set up the %.0f MiB read buffer: error %d", (double)bytes / 1048576.0,
                 (int)err);
        goto done;
    }
    pk->read_mib = (double)bytes / 1048576.0;
    for (size_t i = 0; i < NUM_READ_TRIES; i++) {
        const struct read_try *t = &k_read_tries[i];
        size_t global = (size_t)cus * t->wg * t->groups;
        cl_kernel k;
        double s;
        if (t->wg > max_wg) continue;
        k = clCreateKernel(prog, t->kernel, &err);
        if (err != CL_SUCCESS) continue;
        s = time_read(queue, k, &w, (cl_long)(bytes / (sizeof(float) * (size_t)t->width)), out,
                      global, t->wg);
        clReleaseKernel(k);
        if (s > 0 && (double)bytes / s * 1e-9 > best) {
            best = (double)bytes / s * 1e-9;
            snprintf(pk->read_kernel, sizeof pk->read_kernel, "%s, %zu work-groups of %zu",
                     t->kernel, global / t->wg, t->wg);
        }
    }
    pk->read_gbps = best;
    if (best > 0)
        snprintf(pk->read_note, sizeof pk->read_note,
                 "a sum over %.0f MiB, each run on the next of %d such windows, best of %d "
                 "kernel shapes, each the median of %d: %s",
                 pk->read_mib, w.n, (int)NUM_READ_TRIES, PEAK_RUNS, pk->read_kernel);
    else
        snprintf(pk->read_note, sizeof pk->read_note, "no read kernel ran");
done:
    for (int i = 0; i < w.n; i++)
        if (w.win[i]) clReleaseMemObject(w.win[i]);
    if (in) clReleaseMemObject(in);
    if (out) clReleaseMemObject(out);
}

void bench_sweep_init(bench_sweep *sw, cl_context cl, cl_command_queue queue, cl_device_id dev,
                      cl_program prog)
{
    memset(sw, 0, sizeof *sw);
    const device_limits lim = limits_of(dev);
    const cl_ulong mem = lim.mem, max_alloc = lim.max_alloc;
    const cl_uint cus = lim.cus;
    const size_t max_wg = lim.max_wg;
    cl_ulong bytes = 2 * lim.cache; /* 4x measured alike on the 480 MiB L3 */
    if (bytes < ((cl_ulong)64 << 20))
        bytes = (cl_ulong)64 << 20;
    if (bytes > mem / 8)
        bytes = mem / 8;
    if (bytes > max_alloc)
        bytes = max_alloc;
    bytes &= ~(cl_ulong)255;
    sw->local = max_wg < 64 ? max_wg : 64;
    sw->global = (size_t)cus * sw->local * 4;
    cl_int err = prog && bytes ? CL_SUCCESS : CL_INVALID_VALUE;
    const float one = 1.0f;
    if (err == CL_SUCCESS)
        sw->in = clCreateBuffer(cl, CL_MEM_READ_ONLY, (size_t)bytes, NULL, &err);
    if (err == CL_SUCCESS)
        sw->out = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, sw->global * sizeof(float), NULL, &err);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(queue, sw->in, &one, sizeof one, 0, (size_t)bytes, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        sw->k = clCreateKernel(prog, "read_chunk16x4", &err);
    const cl_long nvec = (cl_long)(bytes / 64);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(sw->k, 0, sizeof sw->in, &sw->in) |
              clSetKernelArg(sw->k, 1, sizeof nvec, &nvec) |
              clSetKernelArg(sw->k, 2, sizeof sw->out, &sw->out);
    if (err == CL_SUCCESS)
        err = clFinish(queue);
    if (err != CL_SUCCESS) {
        bench_sweep_release(sw); /* no sweep: k NULL, nothing held */
        return;
    }
    sw->queue = queue;
    sw->bytes = (size_t)bytes;
}

void bench_sweep_release(bench_sweep *sw)
{
    if (sw->k)
        clReleaseKernel(sw->k);
    if (sw->in)
        clReleaseMemObject(sw->in);
    if (sw->out)
        clReleaseMemObject(sw->out);
    memset(sw, 0, sizeof *sw);
}

void bench_print_sweep_text(const bench_sweep *sw, int warm)
{
    if (sw->k)
        printf("cache swept before each timed call: a read of %.0f MiB (--warm: no sweep)\n",
               (double)sw->bytes / 1048576.0);
    else
        printf("cache not swept between calls (%s)\n",
               warm ? "--warm" : "the sweep could not be set up");
}

int bench_sweep_run(const bench_sweep *sw)
{
    if (!sw->k)
        return CL_SUCCESS;
    cl_int err =
        clEnqueueNDRangeKernel(sw->queue, sw->k, 1, NULL, &sw->global, &sw->local, 0, NULL, NULL);
    return err == CL_SUCCESS ? clFinish(sw->queue) : err;
}
