/* store_while_running: a program binary is written to the disk cache while a
 * launch of the same kernel is still running, and nothing breaks.
 *
 * clattn writes a binary built from source once the kernel's first launch
 * has finished (src/program_cache.c), at the start of a later call or in
 * clattn_context_stats, while later launches may be running, in the same
 * context or in another context of the process that built the same
 * program. PoCL's CPU drivers before 6.0 aborted the process when such a
 * launch finished after the process's first binary of that program was
 * built (src/device.c explains; the kernels there leave out
 * reqd_work_group_size). The order is made to happen with a window that
 * timing cannot close: context A (no disk cache, so it writes nothing) and
 * context B (a fresh cache) build the same fused kernel and run it once;
 * then B writes its binary while A's long launch runs. PoCL runs the
 * kernels of all queues one after another, hence this order. Writing takes
 * two queries (CL_PROGRAM_BINARY_SIZES, then CL_PROGRAM_BINARIES), and the
 * abort needs a launch to finish between them, a window of microseconds
 * that a slow host (CI under AddressSanitizer) hit now and then: this
 * executable's clGetProgramInfo (below; libclattn calls it instead of the
 * OpenCL library's) holds that window open until A's launch has finished.
 * The test checks that the binary was written and both results are right;
 * when A's launch was not running at the first query it is a skip. With
 * the attribute put back it aborted on PoCL 3.1 every time. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "cache_tests.h"
#include "harness.h"
#include "reference.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>

/* SHORT_SEQ and LONG_SEQ get the same fused kernel (one program): the long
 * launch takes a good part of a second on two cores. */
enum { HEADS = 8, SHORT_SEQ = 512, LONG_SEQ = 8192, DIM = 64 };

/* Q, K and V on the host, [HEADS][LONG_SEQ][DIM]; a problem of fewer rows
 * uses the start of each array (its own [HEADS][seq][DIM] tensor). */
typedef struct inputs {
    float *q, *k, *v, *o;
} inputs;

typedef struct device_run {
    clattn_context *ctx;
    cl_command_queue queue;
    cl_mem m[4]; /* q, k, v, o */
    int seq;
} device_run;

/* While set, the first query of a binary's size waits for this launch. */
static cl_event hold_until;
static int held_running; /* the launch was running when the hold began */

cl_int clGetProgramInfo(cl_program program, cl_program_info name, size_t size, void *value,
                        size_t *size_ret)
{
    static __typeof__(&clGetProgramInfo) real;
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "clGetProgramInfo");
        if (!sym)
            abort(); /* a test tool: no OpenCL library after this executable */
        memcpy(&real, &sym, sizeof real);
    }
    const cl_int err = real(program, name, size, value, size_ret);
    if (name == CL_PROGRAM_BINARY_SIZES && hold_until) {
        cl_int s = CL_INVALID_EVENT;
        clGetEventInfo(hold_until, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof s, &s, NULL);
        held_running = s == CL_RUNNING;
        clWaitForEvents(1, &hold_until);
        hold_until = NULL;
    }
    return err;
}

static void fill(float *x, size_t n, uint64_t seed)
{
    t_rng r;
    t_rng_seed(&r, seed);
    for (size_t i = 0; i < n; ++i)
        x[i] = (float)t_rng_uniform(&r, -1.0, 1.0);
}

/* The seq x seq problem (one batch, HEADS heads, fused path). */
static clattn_problem problem_of(int seq)
{
    clattn_problem p = {0};
    p.batch = 1, p.heads = HEADS, p.seq_q = seq, p.seq_kv = seq, p.head_dim = DIM;
    p.dtype = CLATTN_F32, p.path = CLATTN_PATH_FUSED;
    return p;
}

static cl_int status_of(cl_event e)
{
    cl_int s = CL_INVALID_EVENT;
    if (clGetEventInfo(e, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof s, &s, NULL) != CL_SUCCESS)
        return CL_INVALID_EVENT;
    return s;
}

/* Buffers for a seq x seq problem on ctx; 0 on success. */
static int run_init(device_run *r, clattn_context *ctx, const inputs *in, int seq)
{
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->seq = seq;
    cl_context cl = NULL;
    clattn_context_get_cl(ctx, &cl, &r->queue, NULL);
    const size_t bytes = (size_t)HEADS * seq * DIM * sizeof(float);
    const float *init[3] = {in->q, in->k, in->v};
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < 4 && err == CL_SUCCESS; ++i)
        r->m[i] = clCreateBuffer(cl, CL_MEM_READ_WRITE | (i < 3 ? CL_MEM_COPY_HOST_PTR : 0),
                                 bytes, i < 3 ? (void *)init[i] : NULL, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer -> %d", (int)err);
    return err == CL_SUCCESS ? 0 : -1;
}

static void run_free(device_run *r)
{
    for (int i = 0; i < 4; ++i)
        if (r->m[i])
            clReleaseMemObject(r->m[i]);
}

/* Enqueues the fused attention; the event in *ev (NULL on failure). */
static int run_forward(device_run *r, cl_event *ev)
{
    const clattn_problem p = problem_of(r->seq);
    clattn_buffers b = {0};
    b.q = r->m[0], b.k = r->m[1], b.v = r->m[2], b.o = r->m[3];
    const clattn_status st = clattn_forward(r->ctx, &p, &b, 0, NULL, ev);
    CHECK(st == CLATTN_OK, "forward S%d: %s (%s)", r->seq, clattn_status_string(st),
          clattn_last_error(r->ctx));
    return st == CLATTN_OK ? 0 : -1;
}

/* Reads O back (after the queue has drained) and checks three rows of every
 * head against the double reference (the whole problem would take minutes
 * at LONG_SEQ). */
static void run_check(device_run *r, inputs *in, const char *what)
{
    const clattn_problem p = problem_of(r->seq);
    const size_t bytes = (size_t)HEADS * r->seq * DIM * sizeof(float);
    cl_int err = clEnqueueReadBuffer(r->queue, r->m[3], CL_TRUE, 0, bytes, in->o, 0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "%s: clEnqueueReadBuffer -> %d", what, (int)err);
    clattn_host_buffers h = {0};
    h.q = in->q, h.k = in->k, h.v = in->v;
    const int rows[] = {0, 200, r->seq - 1};
    double ro[HEADS * DIM], go[HEADS * DIM];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && err == CL_SUCCESS; ++i) {
        const clattn_tile tile = {rows[i], 1, 0, r->seq, {0}};
        if (ref_attention_tile(&p, &tile, &h, ro, NULL, NULL) != 0) {
            CHECK(0, "%s: the reference failed", what);
            return;
        }
        for (int hd = 0; hd < HEADS; ++hd)
            for (int d = 0; d < DIM; ++d)
                go[hd * DIM + d] = in->o[((size_t)hd * r->seq + rows[i]) * DIM + d];
        char why[256];
        CHECK(ct_compare(&p, ro, go, HEADS * DIM, NULL, NULL, 0, NULL, NULL, 0, why,
                         sizeof why),
              "%s: row %d differs from the double reference: %s", what, rows[i], why);
    }
}

static int binaries_in(const char *root)
{
    char dir[4200], *names[4];
    snprintf(dir, sizeof dir, "%s/programs", root);
    const int n = ct_list(dir, ".bin", names, 4);
    ct_free_list(names, n);
    return n;
}

/* Context A (no disk cache: it never writes a binary) and context B (a
 * fresh one) build the same program and run it once; A's long launch of it
 * runs while B writes its binary. */
static void two_contexts(inputs *in)
{
    char root_b[4096];
    ct_fresh_dir("store_while_running", root_b, sizeof root_b);
    ct_log log_a, log_b;
    ct_log_reset(&log_a);
    ct_log_reset(&log_b);
    clattn_context *a = ct_context("off", &log_a), *b = ct_context(root_b, &log_b);
    device_run ra = {0}, rb = {0};
    cl_event ea = NULL, eb = NULL, elong = NULL;
    int ok = run_init(&ra, a, in, SHORT_SEQ) == 0 && run_init(&rb, b, in, SHORT_SEQ) == 0;
    /* PoCL runs the kernels of all queues one after another, so B's launch
     * comes before A's long one; B's binary is written (by
     * clattn_context_stats) while A's long launch runs */
    if (ok && run_forward(&ra, &ea) == 0 && run_forward(&rb, &eb) == 0) {
        clWaitForEvents(1, &ea);
        clWaitForEvents(1, &eb);
        run_free(&ra);
        /* the long launch, on the program A built for the short one */
        if (run_init(&ra, a, in, LONG_SEQ) == 0 && run_forward(&ra, &elong) == 0) {
            while (status_of(elong) > CL_RUNNING)
                ;
            const int early = binaries_in(root_b);
            hold_until = elong;
            const clattn_stats st = ct_stats(b); /* B writes its binary now */
            hold_until = NULL;
            clFinish(ra.queue);
            const int shown = !early && held_running;
            NOTE("A's long launch was %s when B began writing its binary, and finished "
                 "before B's second query",
                 shown ? "running" : "not running");
            if (!shown)
                SKIP("A's long launch was not running when B began writing its binary");
            CHECK(st.programs_built == 1 && st.programs_stored == 1,
                  "B should build and store one program (built %llu, stored %llu; log: %s)",
                  (unsigned long long)st.programs_built,
                  (unsigned long long)st.programs_stored, log_b.text);
            const clattn_stats sa = ct_stats(a);
            CHECK(sa.programs_built == 1,
                  "A's long launch should use the short one's program (built %llu)",
                  (unsigned long long)sa.programs_built);
            run_check(&ra, in, "A's long launch");
            run_check(&rb, in, "B's launch");
        }
    }
    if (ea)
        clReleaseEvent(ea);
    if (eb)
        clReleaseEvent(eb);
    if (elong)
        clReleaseEvent(elong);
    run_free(&ra);
    run_free(&rb);
    clattn_context_destroy(a);
    clattn_context_destroy(b);
    CHECK(log_a.warnings == 0 && log_b.warnings == 0, "warnings:\n%s\n%s", log_a.text,
          log_b.text);
    ct_remove_tree(root_b);
}

int test_store_while_running(int argc, char **argv)
{
    (void)argc, (void)argv;
    const size_t elems = (size_t)HEADS * LONG_SEQ * DIM;
    inputs in = {malloc(elems * 4), malloc(elems * 4), malloc(elems * 4), malloc(elems * 4)};
    if (in.q && in.k && in.v && in.o) {
        fill(in.q, elems, 1), fill(in.k, elems, 2), fill(in.v, elems, 3);
        two_contexts(&in);
    } else {
        CHECK(0, "out of host memory");
    }
    free(in.q), free(in.k), free(in.v), free(in.o);
    return ct_failures ? 1 : 0;
}
