/* clattn-minilm-gemm-grid: times CLBlast's GEMM on the encoder's matmul
 * shapes for a grid of Xgemm parameters, on the default OpenCL device, the
 * way clattn-minilm calls it on a CPU device (gemm_params.h): row-major A
 * [m][k] times W stored [k][n], CLBlast's GEMMK 1 kernel, m a multiple of
 * the tile, so no operand is copied. A benchmark, not a test: it prints
 * GFLOP/s per candidate and shape (median of --calls calls), checks every
 * result against a double-precision host product, and ends with the best
 * candidate (geometric mean over the shapes). The first row is the
 * baseline measured in the same run: the GEMMK 0 parameters clattn-minilm
 * used before, called as it called them (W as [n][k], which CLBlast
 * transposes, with A and C, around every call).
 *
 *   clattn-minilm-gemm-grid [--rows 96,1344] [--calls 9] [--quick]
 *
 * --quick times the baseline and ops.c's two sets only. Rows must be
 * multiples of 96 (every tile of the grid divides it). PoCL compiles a
 * candidate in ~12 s on 2 cores; the whole grid takes ~10 minutes. */
#define _POSIX_C_SOURCE 200809L
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm_params.h"

enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN };

/* The encoder's matmuls as (n, k): fused QKV and output projections, the
 * MLP's up and down projections. */
static const int k_nk[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
#define NK (int)(sizeof k_nk / sizeof k_nk[0])
#define MAX_ROWS 4

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

typedef struct {
    cl_command_queue q;
    int m, n, k;
    cl_mem a, w, wt, c; /* w [n][k] (the baseline's layout), wt [k][n] */
    float *ref, *out;
} shape_run;

/* Median GFLOP/s of `calls` GEMMs, or 0 when CLBlast refuses the
 * parameters or the result is wrong. */
static double time_gemm(shape_run *s, int gemmk, int calls)
{
    double t[64];
    const CLBlastTranspose wtrans = gemmk ? CLBlastTransposeNo : CLBlastTransposeYes;
    cl_mem w = gemmk ? s->wt : s->w;
    const size_t ldw = gemmk ? (size_t)s->n : (size_t)s->k;
    for (int i = -1; i < calls; i++) {
        cl_command_queue q = s->q;
        const double t0 = now_ms();
        if (CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, wtrans, (size_t)s->m,
                         (size_t)s->n, (size_t)s->k, 1.0f, s->a, 0, (size_t)s->k, w, 0, ldw, 0.0f,
                         s->c, 0, (size_t)s->n, &q, NULL) != CLBlastSuccess ||
            clFinish(q) != CL_SUCCESS)
            return 0;
        if (i >= 0)
            t[i] = now_ms() - t0;
    }
    const size_t mn = (size_t)s->m * s->n;
    if (clEnqueueReadBuffer(s->q, s->c, CL_TRUE, 0, mn * sizeof(float), s->out, 0, NULL, NULL) !=
        CL_SUCCESS)
        return 0;
    for (size_t i = 0; i < mn; i++)
        if (!(fabsf(s->out[i] - s->ref[i]) <= 1e-3f * (1.0f + fabsf(s->ref[i]))))
            return 0;
    qsort(t, (size_t)calls, sizeof t[0], cmp_double);
    return 2.0 * s->m * s->n * s->k / t[calls / 2] / 1e6;
}

static float frand(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
}

static cl_mem device_copy(cl_context cl, const float *host, size_t floats)
{
    cl_int err;
    cl_mem m = clCreateBuffer(cl, CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0),
                              floats * sizeof(float), (void *)host, &err);
    return err == CL_SUCCESS ? m : NULL;
}

static int setup(shape_run *s, cl_context cl, cl_command_queue q, int m, int n, int k)
{
    memset(s, 0, sizeof *s);
    s->q = q, s->m = m, s->n = n, s->k = k;
    const size_t mk = (size_t)m * k, nk = (size_t)n * k, mn = (size_t)m * n;
    float *a = malloc(sizeof(float) * mk), *w = malloc(sizeof(float) * nk),
          *wt = malloc(sizeof(float) * nk);
    s->ref = malloc(sizeof(float) * mn);
    s->out = malloc(sizeof(float) * mn);
    int ok = a && w && wt && s->ref && s->out;
    if (ok) {
        unsigned st = 12345u + (unsigned)(m * 7 + n * 3 + k);
        for (size_t i = 0; i < mk; i++)
            a[i] = frand(&st);
        for (size_t i = 0; i < nk; i++)
            w[i] = frand(&st);
        for (int j = 0; j < n; j++)
            for (int x = 0; x < k; x++)
                wt[(size_t)x * n + j] = w[(size_t)j * k + x];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int x = 0; x < k; x++)
                    acc += (double)a[(size_t)i * k + x] * w[(size_t)j * k + x];
                s->ref[(size_t)i * n + j] = (float)acc;
            }
        s->a = device_copy(cl, a, mk);
        s->w = device_copy(cl, w, nk);
        s->wt = device_copy(cl, wt, nk);
        s->c = device_copy(cl, NULL, mn);
        ok = s->a && s->w && s->wt && s->c;
    }
    free(a);
    free(w);
    free(wt);
    return ok ? 0 : -1;
}

static void release(shape_run *s)
{
    cl_mem all[] = {s->a, s->w, s->wt, s->c};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i])
            clReleaseMemObject(all[i]);
    free(s->ref);
    free(s->out);
}

/* One candidate over every shape: prints its row, returns the geometric
 * mean (0 when any shape failed). */
static double run_candidate(cl_device_id dev, shape_run *runs, int nshapes, const size_t *v,
                            const char *label, int calls)
{
    if (CLBlastOverrideParameters(dev, "Xgemm", CLBlastPrecisionSingle, XGEMM_NPARAM,
                                  k_xgemm_names, v) != CLBlastSuccess) {
        printf("%-40s refused by CLBlast\n", label);
        return 0;
    }
    printf("%-40s", label);
    fflush(stdout);
    double logsum = 0;
    int ok = 1;
    for (int s = 0; s < nshapes; s++) {
        const double gf = time_gemm(&runs[s], (int)v[GEMMK], calls);
        printf(" %9.1f", gf);
        fflush(stdout);
        ok &= gf > 0;
        logsum += gf > 0 ? log(gf) : 0;
    }
    const double gm = ok ? exp(logsum / nshapes) : 0;
    printf(" %9.1f%s\n", gm, ok ? "" : " (refused or wrong)");
    CLBlastClearCache(); /* programs pile up otherwise, one per candidate */
    return gm;
}

/* A GEMMK 1 candidate: tiles of t rows and columns, each work-item mwi
 * columns (float8 vectors) by nwi rows, kreg values of k at a time. */
static void gemmk1(size_t *v, size_t t, size_t mwi, size_t nwi, size_t kreg)
{
    memset(v, 0, XGEMM_NPARAM * sizeof *v);
    v[GEMMK] = 1, v[KREG] = kreg, v[KWG] = 1, v[KWI] = 1;
    v[MWG] = v[NWG] = t;
    v[MDIMC] = v[MDIMA] = t / mwi;
    v[NDIMC] = v[NDIMB] = t / nwi;
    v[VWM] = 8, v[VWN] = 1;
}

static void describe(char *label, size_t size, const size_t *v)
{
    snprintf(label, size, "GEMMK1 T%-3zu %2zux%-2zu KREG %zu", v[MWG], v[NWG] / v[NDIMC],
             v[MWG] / v[MDIMC], v[KREG]);
}

int main(int argc, char **argv)
{
    int rows[MAX_ROWS] = {96, 1344}, nrows = 2, calls = 9, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            nrows = 0;
            for (char *t = strtok(argv[++i], ","); t && nrows < MAX_ROWS; t = strtok(NULL, ",")) {
                rows[nrows] = atoi(t);
                if (rows[nrows] < 96 || rows[nrows] % 96 || rows[nrows] > 8192) {
                    fprintf(stderr, "--rows: %s is not a multiple of 96 in 96..8192\n", t);
                    return 2;
                }
                nrows++;
            }
        } else if (!strcmp(argv[i], "--calls") && i + 1 < argc) {
            calls = atoi(argv[++i]);
            if (calls < 1 || calls > 64) {
                fprintf(stderr, "--calls: 1..64\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: %s [--rows 96,1344] [--calls 9] [--quick]\n", argv[0]);
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
    cl_command_queue q = cl ? clCreateCommandQueue(cl, dev, 0, &err) : NULL;
    if (!q) {
        fprintf(stderr, "creating an OpenCL context and queue failed (%d)\n", (int)err);
        return 1;
    }
    const int nshapes = nrows * NK;
    shape_run runs[MAX_ROWS * NK];
    memset(runs, 0, sizeof runs);
    for (int r = 0; r < nrows; r++)
        for (int j = 0; j < NK; j++)
            if (setup(&runs[r * NK + j], cl, q, rows[r], k_nk[j][0], k_nk[j][1]) != 0) {
                fprintf(stderr, "setting up the buffers failed\n");
                return 1;
            }
    if (CLBlastOverrideParameters(dev, "GemmRoutine", CLBlastPrecisionSingle, 1, k_routine_names,
                                  k_routine_cpu) != CLBlastSuccess) {
        fprintf(stderr, "CLBlastOverrideParameters (GemmRoutine) failed\n");
        return 1;
    }
    printf("device: %s; CLBlast's indirect GEMM at every size; GFLOP/s, median of %d calls\n",
           name, calls);
    printf("%-40s", "candidate (T rows x cols KREG)");
    for (int s = 0; s < nshapes; s++)
        printf(" %4dx%4d", runs[s].m, runs[s].n);
    printf("   geomean\n%-40s", "");
    for (int s = 0; s < nshapes; s++)
        printf("    k=%4d", runs[s].k);
    printf("\n");

    double best = 0;
    size_t best_v[XGEMM_NPARAM];
    char label[64];
    const double base =
        run_candidate(dev, runs, nshapes, k_xgemm_gemmk0, "before: GEMMK0 64x64, W [n][k] (indirect)", calls);
    const size_t *ops_sets[2] = {k_xgemm_wide, k_xgemm_narrow};
    const char *ops_names[2] = {"ops.c wide", "ops.c narrow"};
    for (int i = 0; i < 2; i++) {
        describe(label, sizeof label, ops_sets[i]);
        char both[96];
        snprintf(both, sizeof both, "%s (%s)", label, ops_names[i]);
        const double gm = run_candidate(dev, runs, nshapes, ops_sets[i], both, calls);
        if (gm > best) {
            best = gm;
            memcpy(best_v, ops_sets[i], sizeof best_v);
        }
    }
    if (!quick) {
        /* The CPU-shaped part of the space: float8 columns, a few rows, at
         * most 16 accumulators a work-item (AVX-512 has 32 registers, AVX2
         * 16). Tiles must be square (gemm_params.h). */
        static const size_t k_t[] = {16, 32, 48}, k_mwi[] = {8, 16}, k_nwi[] = {4, 6, 8},
                            k_kreg[] = {2, 4};
        for (size_t a = 0; a < sizeof k_t / sizeof *k_t; a++)
            for (size_t b = 0; b < sizeof k_mwi / sizeof *k_mwi; b++)
                for (size_t c = 0; c < sizeof k_nwi / sizeof *k_nwi; c++)
                    for (size_t d = 0; d < sizeof k_kreg / sizeof *k_kreg; d++) {
                        if (k_t[a] % k_mwi[b] || k_t[a] % k_nwi[c] ||
                            k_mwi[b] / 8 * k_nwi[c] > 16)
                            continue;
                        size_t v[XGEMM_NPARAM];
                        gemmk1(v, k_t[a], k_mwi[b], k_nwi[c], k_kreg[d]);
                        if (!memcmp(v, k_xgemm_wide, sizeof v) ||
                            !memcmp(v, k_xgemm_narrow, sizeof v))
                            continue;
                        describe(label, sizeof label, v);
                        const double gm = run_candidate(dev, runs, nshapes, v, label, calls);
                        if (gm > best) {
                            best = gm;
                            memcpy(best_v, v, sizeof best_v);
                        }
                    }
    }
    if (best > 0) {
        describe(label, sizeof label, best_v);
        printf("best: %s (MDIMC %zu NDIMC %zu), geomean %.1f GFLOP/s, %.2fx the baseline\n",
               label, best_v[MDIMC], best_v[NDIMC], best, base > 0 ? best / base : 0.0);
    }
    for (int s = 0; s < nshapes; s++)
        release(&runs[s]);
    clReleaseCommandQueue(q);
    clReleaseContext(cl);
    return best > 0 ? 0 : 1;
}
