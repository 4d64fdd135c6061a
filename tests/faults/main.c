/* clattn_fault_tests CASE: the fault-injection and soak cases, in an
 * executable that carries the interposed OpenCL layer (cl_layer.c). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"

void case_faults_interpose(void);
void case_faults_forward(void);
void case_faults_tune(void);
void case_soak_forward(void);
void case_soak_contexts(void);

/* The layer must see the library's calls (and CLBlast's) without any
 * LD_PRELOAD: a fault planned on the library's first clCreateBuffer has to
 * come back as that failure, and calls must be seen from each object. */
void case_faults_interpose(void)
{
    unsetenv("CLATTN_PARAMS");
    fl_counts before, after;
    fl_counts_get(&before);
    clattn_context *ctx = NULL;
    fl_reset();
    fl_arm(1);
    clattn_status st = clattn_context_create(NULL, &ctx);
    fl_arm(0);
    T_CHECK(st == CLATTN_OK, "create -> %s", clattn_status_string(st));
    if (st != CLATTN_OK)
        return;
    T_CHECK(fl_calls(FL_clCreateContext) == 1 && fl_calls(FL_clCreateCommandQueue) == 1,
            "the layer saw %lu clCreateContext and %lu clCreateCommandQueue calls (want 1, 1)",
            fl_calls(FL_clCreateContext), fl_calls(FL_clCreateCommandQueue));

    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1, p.heads = 2, p.seq_q = 8, p.seq_kv = 8, p.head_dim = 16;
    p.path = CLATTN_PATH_FUSED;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE, 3) != 0)
        return;
    fl_reset();
    fl_plan(FL_clCreateBuffer, 1, 0);
    st = fx_forward(ctx, &t, FX_HOST, NULL);
    fl_fault f = fl_fired();
    const char *msg = clattn_last_error(ctx);
    T_CHECK(f.fired && st == CLATTN_ERR_OUT_OF_RESOURCES && strstr(msg, "clCreateBuffer") &&
                strstr(msg, "CL_MEM_OBJECT_ALLOCATION_FAILURE"),
            "planned clCreateBuffer fault: fired %d, status %s, message '%s'", f.fired,
            clattn_status_string(st), msg);
    fl_callers c = fl_callers_get();
    t_log("interpose: the library's calls come from '%s' (library %lu, executable %lu, other "
          "%lu)",
          f.caller, c.clattn, c.executable, c.other);
#ifdef FAULTS_STATIC
    T_CHECK(c.executable > 0 && c.clattn == 0, "static build: calls not seen from the executable");
#else
    T_CHECK(c.clattn > 0 && strstr(f.caller, "libclattn"),
            "shared build: calls not seen from libclattn");
#endif
    fl_reset();
    fx_forward_ok(ctx, &t, FX_DEVICE, "after the fault");
    t_tensors_free(&t);

#ifdef FAULTS_HAVE_CLBLAST
    /* CLBlast is loaded as a dependency of libclattn: its calls too. */
    setenv("CLATTN_PARAMS", "QK_BLAS=1,AV_BLAS=1", 1);
    p.path = CLATTN_PATH_THREE_STAGE;
    if (t_tensors_init(&t, &p, T_WITH_LSE, 4) != 0)
        return;
    fl_reset();
    fx_forward_ok(ctx, &t, FX_DEVICE, "three-stage with CLBlast");
    c = fl_callers_get();
    t_log("interpose: CLBlast GEMM forward: %lu calls from CLBlast, %lu from the library",
          c.clblast, c.clattn + c.executable);
    T_CHECK(c.clblast > 0, "no call seen from CLBlast");
    t_tensors_free(&t);
    unsetenv("CLATTN_PARAMS");
#endif
    clattn_context_destroy(ctx);
    fl_counts_get(&after);
    char diff[256];
    T_CHECK(fl_counts_same(&before, &after, diff, sizeof diff), "leaked references: %s", diff);
}

typedef struct fx_case {
    const char *name;
    void (*run)(void);
} fx_case;

static const fx_case k_cases[] = {
    {"faults_interpose", case_faults_interpose},
    {"faults_forward", case_faults_forward},
    {"faults_tune", case_faults_tune},
    {"soak_forward", case_soak_forward},
    {"soak_contexts", case_soak_contexts},
};

int main(int argc, char **argv)
{
    const size_t n = sizeof k_cases / sizeof k_cases[0];
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE | --list   (CLATTN_LONG=1: long versions)\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], "--list") == 0) {
            printf("%s\n", k_cases[i].name);
            continue;
        }
        if (strcmp(argv[1], k_cases[i].name) != 0)
            continue;
        double t0 = fx_now();
        k_cases[i].run();
        fx_cleanup();
        printf("%s%s: %s (%d failed checks, %.1f s)\n", k_cases[i].name,
               fx_long() ? " (long)" : "", t_failures ? "FAILED" : "passed", t_failures,
               fx_now() - t0);
        return t_failures ? 1 : 0;
    }
    if (strcmp(argv[1], "--list") == 0)
        return 0;
    fprintf(stderr, "unknown case '%s' (--list shows them)\n", argv[1]);
    return 2;
}
