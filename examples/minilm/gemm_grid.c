/* clattn-minilm-gemm-grid: times CLBlast's direct GEMM kernel (XgemmDirect)
 * on the encoder's matmul shapes for a grid of its parameters, on the
 * default OpenCL device, the way clattn-minilm calls it (row-major A times
 * W transposed). A benchmark, not a test: it prints GFLOP/s per candidate
 * and shape, checks each candidate's result against a host product, and
 * ends with the best candidate over all shapes (the geometric mean). The
 * parameters in ops.c were chosen with it (BENCHMARKS.md, "MiniLM in C").
 *
 *   clattn-minilm-gemm-grid [--rows 16,32] [--calls 9]
 */
#define _POSIX_C_SOURCE 200809L
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *k_names[] = {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
                                "PADA", "PADB",   "VWMD",   "VWND",   "WGD"};
enum { KWID, MDIMAD, MDIMCD, NDIMBD, NDIMCD, PADA, PADB, VWMD, VWND, WGD, NPARAM };

/* The encoder's matmuls: QKV and output projections (384 -> 384), the MLP's
 * up (384 -> 1536) and down (1536 -> 384) projections. */
static const int k_nk[][2] = {{384, 384}, {1536, 384}, {384, 1536}};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* CLBlast's divisibility rules for XgemmDirect (its tuner's constraints). */
static int valid(const size_t *v)
{
    const size_t threads = v[MDIMCD] * v[NDIMCD];
    return v[WGD] % v[KWID] == 0 && v[WGD] % (v[MDIMCD] * v[VWMD]) == 0 &&
           v[WGD] % (v[NDIMCD] * v[VWND]) == 0 && v[WGD] % (v[MDIMAD] * v[VWMD]) == 0 &&
           v[WGD] % (v[NDIMBD] * v[VWND]) == 0 && threads % v[MDIMAD] == 0 &&
           threads % v[NDIMBD] == 0 && v[WGD] % (threads / v[MDIMAD]) == 0 &&
           v[WGD] % (threads / v[NDIMBD]) == 0;
}

typedef struct {
    cl_context cl;
    cl_command_queue q;
    cl_device_id dev;
    int m, n, k;
    cl_mem a, w, c;
    float *ref, *out;
} shape_run;

/* Median ms of `calls` GEMMs, or -1 when CLBlast refuses the parameters or
 * the result is wrong. */
static double time_gemm(shape_run *s, int calls)
{
    double t[64];
    for (int i = -1; i < calls; i++) {
        cl_command_queue q = s->q;
        const double t0 = now_ms();
        if (CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
                         (size_t)s->m, (size_t)s->n, (size_t)s->k, 1.0f, s->a, 0, (size_t)s->k,
                         s->w, 0, (size_t)s->k, 0.0f, s->c, 0, (size_t)s->n, &q,
                         NULL) != CLBlastSuccess ||
            clFinish(q) != CL_SUCCESS)
            return -1;
        if (i >= 0)
            t[i] = now_ms() - t0;
    }
    const size_t mn = (size_t)s->m * s->n;
    if (clEnqueueReadBuffer(s->q, s->c, CL_TRUE, 0, mn * sizeof(float), s->out, 0, NULL, NULL) !=
        CL_SUCCESS)
        return -1;
    for (size_t i = 0; i < mn; i++)
        if (!(fabsf(s->out[i] - s->ref[i]) <= 1e-3f * (1.0f + fabsf(s->ref[i]))))
            return -1;
    qsort(t, (size_t)calls, sizeof t[0], cmp_double);
    return t[calls / 2];
}

static float frand(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
}

static int setup(shape_run *s, cl_context cl, cl_command_queue q, cl_device_id dev, int m, int n,
                 int k)
{
    memset(s, 0, sizeof *s);
    s->cl = cl, s->q = q, s->dev = dev, s->m = m, s->n = n, s->k = k;
    float *a = malloc(sizeof(float) * (size_t)m * k), *w = malloc(sizeof(float) * (size_t)n * k);
    s->ref = malloc(sizeof(float) * (size_t)m * n);
    s->out = malloc(sizeof(float) * (size_t)m * n);
    if (!a || !w || !s->ref || !s->out)
        return -1;
    unsigned st = 12345u + (unsigned)(m * 7 + n * 3 + k);
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = frand(&st);
    for (size_t i = 0; i < (size_t)n * k; i++)
        w[i] = frand(&st);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int x = 0; x < k; x++)
                acc += (double)a[(size_t)i * k + x] * w[(size_t)j * k + x];
            s->ref[(size_t)i * n + j] = (float)acc;
        }
    cl_int e1, e2, e3;
    s->a = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(float) * m * k, a,
                          &e1);
    s->w = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(float) * n * k, w,
                          &e2);
    s->c = clCreateBuffer(cl, CL_MEM_READ_WRITE, sizeof(float) * m * n, NULL, &e3);
    free(a);
    free(w);
    return e1 == CL_SUCCESS && e2 == CL_SUCCESS && e3 == CL_SUCCESS ? 0 : -1;
}

int main(int argc, char **argv)
{
    int rows[8] = {16, 32}, nrows = 2, calls = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            nrows = 0;
            for (char *t = strtok(argv[++i], ","); t && nrows < 8; t = strtok(NULL, ","))
                rows[nrows++] = atoi(t);
        } else if (!strcmp(argv[i], "--calls") && i + 1 < argc) {
            calls = atoi(argv[++i]);
            if (calls < 1 || calls > 64)
                calls = 9;
        } else {
            fprintf(stderr, "usage: %s [--rows 16,32] [--calls 9]\n", argv[0]);
            return 2;
        }
    }
    cl_platform_id plat;
    cl_device_id dev;
    cl_int err;
    if (clGetPlatformIDs(1, &plat, NULL) != CL_SUCCESS ||
        clGetDeviceIDs(plat, CL_DEVICE_TYPE_DEFAULT, 1, &dev, NULL) != CL_SUCCESS) {
        fprintf(stderr, "no OpenCL device\n");
        return 1;
    }
    char name[256] = "";
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
    cl_context cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue q = clCreateCommandQueue(cl, dev, 0, &err);
    const int nshapes = nrows * 3;
    shape_run runs[24];
    for (int r = 0; r < nrows; r++)
        for (int j = 0; j < 3; j++)
            if (setup(&runs[r * 3 + j], cl, q, dev, rows[r], k_nk[j][0], k_nk[j][1]) != 0) {
                fprintf(stderr, "setting up the buffers failed\n");
                return 1;
            }
    printf("device: %s; XgemmDirect forced (XGEMM_MIN_INDIRECT_SIZE huge); GFLOP/s, median of "
           "%d calls\n",
           name, calls);
    printf("%-38s", "KWID MDA MDC NDB NDC PAD VWM VWN WGD");
    for (int s = 0; s < nshapes; s++)
        printf(" %4dx%4dx%4d", runs[s].m, runs[s].n, runs[s].k);
    printf("   geomean\n");
    printf("%-44s", "CLBlast's own choice (no overrides)");
    for (int s = 0; s < nshapes; s++) {
        const double ms = time_gemm(&runs[s], calls);
        printf(" %14.1f", ms > 0 ? 2.0 * runs[s].m * runs[s].n * runs[s].k / ms / 1e6 : 0);
    }
    printf("\n");
    /* PoCL compiles CLBlast's direct kernel in ~40 s a candidate on 2 cores,
     * so the grid is the CPU-shaped part of CLBlast's space: big tiles, few
     * work-items, wide vectors (a small-tile probe, WGD 16 with 2 x 2
     * work-items and scalar loads, reached 6-17 GFLOP/s). */
    static const size_t k_wgd[] = {32, 64}, k_dim[] = {4, 8}, k_vw[] = {4, 8},
                        k_kwi[] = {2}, k_pad[] = {0};
    const char *routine[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
    const size_t huge[1] = {(size_t)1 << 30};
    double best = 0;
    size_t best_v[NPARAM] = {0};
    for (size_t a = 0; a < sizeof k_wgd / sizeof *k_wgd; a++)
        for (size_t b = 0; b < sizeof k_dim / sizeof *k_dim; b++)
            for (size_t c = 0; c < sizeof k_vw / sizeof *k_vw; c++)
                for (size_t d = 0; d < sizeof k_kwi / sizeof *k_kwi; d++)
                    for (size_t e = 0; e < sizeof k_pad / sizeof *k_pad; e++) {
                        size_t v[NPARAM];
                        v[WGD] = k_wgd[a];
                        v[MDIMCD] = v[NDIMCD] = v[MDIMAD] = v[NDIMBD] = k_dim[b];
                        v[VWMD] = v[VWND] = k_vw[c];
                        v[KWID] = k_kwi[d];
                        v[PADA] = v[PADB] = k_pad[e];
                        if (!valid(v))
                            continue;
                        if (CLBlastOverrideParameters(dev, "XgemmDirect", CLBlastPrecisionSingle,
                                                      NPARAM, k_names, v) != CLBlastSuccess ||
                            CLBlastOverrideParameters(dev, "GemmRoutine", CLBlastPrecisionSingle,
                                                      1, routine, huge) != CLBlastSuccess)
                            continue;
                        printf("%4zu %3zu %3zu %3zu %3zu %3zu %3zu %3zu %3zu       ", v[KWID],
                               v[MDIMAD], v[MDIMCD], v[NDIMBD], v[NDIMCD], v[PADA], v[VWMD],
                               v[VWND], v[WGD]);
                        double logsum = 0;
                        int ok = 1;
                        for (int s = 0; s < nshapes; s++) {
                            const double ms = time_gemm(&runs[s], calls);
                            const double gf =
                                ms > 0 ? 2.0 * runs[s].m * runs[s].n * runs[s].k / ms / 1e6 : 0;
                            printf(" %14.1f", gf);
                            ok &= gf > 0;
                            logsum += gf > 0 ? log(gf) : 0;
                        }
                        const double gm = ok ? exp(logsum / nshapes) : 0;
                        printf("   %7.1f%s\n", gm, ok ? "" : " (refused or wrong)");
                        fflush(stdout);
                        if (gm > best) {
                            best = gm;
                            memcpy(best_v, v, sizeof v);
                        }
                        CLBlastClearCache();
                    }
    if (best > 0)
        printf("best: KWID=%zu MDIMAD=%zu MDIMCD=%zu NDIMBD=%zu NDIMCD=%zu PADA=%zu PADB=%zu "
               "VWMD=%zu VWND=%zu WGD=%zu, geomean %.1f GFLOP/s\n",
               best_v[KWID], best_v[MDIMAD], best_v[MDIMCD], best_v[NDIMBD], best_v[NDIMCD],
               best_v[PADA], best_v[PADB], best_v[VWMD], best_v[VWND], best_v[WGD], best);
    for (int s = 0; s < nshapes; s++) {
        clReleaseMemObject(runs[s].a);
        clReleaseMemObject(runs[s].w);
        clReleaseMemObject(runs[s].c);
        free(runs[s].ref);
        free(runs[s].out);
    }
    clReleaseCommandQueue(q);
    clReleaseContext(cl);
    return best > 0 ? 0 : 1;
}
