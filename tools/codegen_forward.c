/*
 * codegen_forward: one clattn forward of one shape on one path, for
 * tools/codegen_report.sh. Not part of the library or of attn-tune.
 *
 *   [CODEGEN_PAGE=N] codegen_forward B H HKV SQ SKV D PATH [REPS]
 *
 * PATH: 0 AUTO, 1 FUSED, 2 THREE_STAGE, 3 SPLIT_KV. fp32, non-causal,
 * random inputs. CODEGEN_PAGE=N: K and V in pages of N keys (SKV must be a
 * multiple), the pages of each sequence in order in the pool. With the
 * process's environment (CLATTN_PARAMS, POCL_CACHE_DIR,
 * POCL_LEAVE_KERNEL_COMPILER_TEMP_FILES, POCL_KERNELLIB_NAME) this leaves
 * PoCL's work-group bitcode of exactly the kernels that shape and path
 * launch. Every clBuildProgram's options are appended to the file named by
 * $CODEGEN_OPTIONS_LOG (when set), one line each, after the name of the
 * first kernel created from that program, so the -D values the kernel was
 * really built with are on record.
 *
 * With REPS > 0 it then times REPS more forwards on device buffers (after
 * the first, which builds) and prints the median wall and process-CPU ms of
 * a call. That is a figure for the CPU this runs on, nothing else.
 *
 * Build: cc -O2 -rdynamic tools/codegen_forward.c -Iinclude -Lbuild -lclattn
 *        -lOpenCL -ldl -o codegen_forward   (the script does this)
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#define CL_TARGET_OPENCL_VERSION 120
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clattn.h"

/* ---- the build options, seen on their way to the OpenCL library -------- */

#define MAX_PROGRAMS 64
static struct {
    cl_program p;
    char *options;
    int named;
} built[MAX_PROGRAMS];
static int nbuilt;

static void *real_sym(const char *name)
{
    void *s = dlsym(RTLD_NEXT, name);
    if (!s) {
        fprintf(stderr, "codegen_forward: dlsym(RTLD_NEXT, %s) failed\n", name);
        exit(2);
    }
    return s;
}

cl_int clBuildProgram(cl_program p, cl_uint n, const cl_device_id *devs, const char *options,
                      void(CL_CALLBACK *notify)(cl_program, void *), void *user)
{
    static __typeof__(&clBuildProgram) real;
    if (!real)
        *(void **)&real = real_sym("clBuildProgram");
    if (nbuilt < MAX_PROGRAMS) {
        built[nbuilt].p = p;
        built[nbuilt].options = strdup(options ? options : "");
        built[nbuilt].named = 0;
        ++nbuilt;
    }
    return real(p, n, devs, options, notify, user);
}

cl_kernel clCreateKernel(cl_program p, const char *name, cl_int *err)
{
    static __typeof__(&clCreateKernel) real;
    if (!real)
        *(void **)&real = real_sym("clCreateKernel");
    const char *log = getenv("CODEGEN_OPTIONS_LOG");
    for (int i = nbuilt; i-- > 0;)
        if (built[i].p == p) {
            if (!built[i].named && log && *log) {
                FILE *f = fopen(log, "a");
                if (f) {
                    fprintf(f, "%s %s\n", name ? name : "?", built[i].options);
                    fclose(f);
                }
            }
            built[i].named = 1;
            break;
        }
    return real(p, name, err);
}

/* ---- one shape ---------------------------------------------------------- */

static double now_ms(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(clattn_context *ctx, const char *what, clattn_status st)
{
    fprintf(stderr, "codegen_forward: %s: %s: %s\n", what, clattn_status_string(st),
            ctx ? clattn_last_error(ctx) : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: %s B H HKV SQ SKV D PATH [REPS]\n", argv[0]);
        return 2;
    }
    clattn_problem pr;
    memset(&pr, 0, sizeof pr);
    pr.batch = atoi(argv[1]);
    pr.heads = atoi(argv[2]);
    pr.kv_heads = atoi(argv[3]);
    pr.seq_q = atoi(argv[4]);
    pr.seq_kv = atoi(argv[5]);
    pr.head_dim = atoi(argv[6]);
    pr.path = (clattn_path)atoi(argv[7]);
    pr.dtype = CLATTN_F32;
    const int reps = argc > 8 ? atoi(argv[8]) : 0;
    const char *page_env = getenv("CODEGEN_PAGE");
    const int page = page_env ? atoi(page_env) : 0;
    int32_t *table = NULL;
    if (page > 0) {
        if (pr.seq_kv % page) {
            fprintf(stderr, "codegen_forward: SKV must be a multiple of PAGE\n");
            return 2;
        }
        /* [pages][kv_heads][page][D]: as many floats as contiguous K/V */
        const int per_seq = pr.seq_kv / page;
        pr.paged = (clattn_paging){1, page, pr.batch * per_seq, per_seq};
        table = malloc((size_t)pr.batch * per_seq * sizeof *table);
        if (!table)
            return 1;
        for (int i = 0; i < pr.batch * per_seq; ++i)
            table[i] = i;
    }

    const size_t nq = (size_t)pr.batch * pr.heads * pr.seq_q * pr.head_dim;
    const size_t nkv = (size_t)pr.batch * pr.kv_heads * pr.seq_kv * pr.head_dim;
    float *q = malloc(nq * sizeof *q), *o = malloc(nq * sizeof *o);
    float *k = malloc(nkv * sizeof *k), *v = malloc(nkv * sizeof *v);
    if (!q || !o || !k || !v)
        return 1;
    unsigned s = 12345;
    for (size_t i = 0; i < nq; ++i)
        q[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < nkv; ++i) {
        k[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
        v[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    }

    clattn_context *ctx = NULL;
    clattn_status st = clattn_context_create(NULL, &ctx);
    if (st != CLATTN_OK)
        return fail(ctx, "clattn_context_create", st);
    clattn_host_buffers hb;
    memset(&hb, 0, sizeof hb);
    hb.q = q;
    hb.k = k;
    hb.v = v;
    hb.o = o;
    hb.block_table = table;
    st = clattn_forward_host(ctx, &pr, &hb);
    if (st != CLATTN_OK)
        return fail(ctx, "clattn_forward_host", st);

    if (reps > 0) {
        cl_context cc;
        cl_command_queue queue;
        clattn_context_get_cl(ctx, &cc, &queue, NULL);
        cl_int err = CL_SUCCESS;
        clattn_buffers b;
        memset(&b, 0, sizeof b);
        b.q = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nq * 4, q, &err);
        b.k = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nkv * 4, k, &err);
        b.v = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nkv * 4, v, &err);
        b.o = clCreateBuffer(cc, CL_MEM_WRITE_ONLY, nq * 4, NULL, &err);
        if (table)
            b.block_table = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                           (size_t)pr.batch * pr.paged.max_pages_per_seq * 4,
                                           table, &err);
        if (err != CL_SUCCESS || !b.q || !b.k || !b.v || !b.o || (table && !b.block_table)) {
            fprintf(stderr, "codegen_forward: clCreateBuffer failed (%d)\n", err);
            return 1;
        }
        double *wall = malloc(reps * sizeof *wall), *cpu = malloc(reps * sizeof *cpu);
        for (int r = -1; r < reps; ++r) { /* r = -1: warm-up on device buffers */
            const double w0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
            st = clattn_forward(ctx, &pr, &b, 0, NULL, NULL);
            if (st != CLATTN_OK)
                return fail(ctx, "clattn_forward", st);
            clFinish(queue);
            if (r >= 0) {
                wall[r] = now_ms(CLOCK_MONOTONIC) - w0;
                cpu[r] = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
            }
        }
        qsort(wall, reps, sizeof *wall, cmp_d);
        qsort(cpu, reps, sizeof *cpu, cmp_d);
        printf("median_wall_ms %.3f median_cpu_ms %.3f reps %d\n", wall[reps / 2], cpu[reps / 2],
               reps);
        clReleaseMemObject(b.q);
        clReleaseMemObject(b.k);
        clReleaseMemObject(b.v);
        clReleaseMemObject(b.o);
        if (b.block_table)
            clReleaseMemObject(b.block_table);
    }
    clattn_context_destroy(ctx);
    free(q);
    free(k);
    free(v);
    free(o);
    free(table);
    return 0;
}
