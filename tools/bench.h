/* Pieces of attn-tune bench shared between its files. */
#ifndef ATTN_TUNE_BENCH_H
#define ATTN_TUNE_BENCH_H

#include "attn_tune.h"
#include "shapes.h"

#include <stddef.h>

/* One first-call measurement: a new process creates a context, runs one
 * forward and waits for it (ms); create_ms is the context creation alone,
 * second_ms a second forward to completion (a program's binary is written
 * at the call after its first launch), destroy_ms clattn_context_destroy;
 * the counters are read after the second call. */
typedef struct first_call {
    int ok;
    double ms, create_ms, second_ms, destroy_ms;
    unsigned long long built, loaded, stored, rejected;
    char message[256]; /* why it failed */
} first_call;

/* The three cache states of a first call, measured in this order on fresh
 * directories each round: clattn's cache and PoCL's kernel cache
 * (POCL_CACHE_DIR) both empty; clattn's binaries from the cold process with
 * a new, empty PoCL cache; both caches as that second process left them. */
enum { FC_COLD, FC_CLATTN_WARM, FC_BOTH_WARM, FC_CASES };
#define FC_MAX_ROUNDS 99

typedef struct first_call_report {
    int ok, rounds;
    char shape[128];
    char message[256]; /* why it failed */
    double ms[FC_CASES], create_ms[FC_CASES], second_ms[FC_CASES], destroy_ms[FC_CASES];
    first_call last[FC_CASES]; /* the counters, from the last round */
    unsigned long long binary_bytes; /* clattn's binaries after the cold process */
} first_call_report;

/* Runs the first-call child in the three cache states, rounds times, and
 * reports medians. device is "P:D" or "" for clattn's choice. Returns 1
 * when every child ran. */
int bench_first_call(const char *device, const char *shape_text, int rounds,
                     first_call_report *out);

/* ---- bench_peaks.c: the rates the results are measured against ---------- */

typedef struct bench_peaks {
    /* Host sgemm: cblas_sgemm n x n x n (OpenBLAS, all its threads), or a
     * figure given on the command line (given = 1), or none (gflops 0). */
    double sgemm_gflops;
    int sgemm_given, sgemm_n, sgemm_threads, sgemm_runs;
    char sgemm_note[256];
    /* Device read bandwidth (GB/s = 1e9 bytes/s), the best of a few read
     * kernels; 0 when not measured. */
    double read_gbps, read_mib;
    char read_kernel[64], read_note[320];
} bench_peaks;

/* 1 when attn-tune was built with a CPU BLAS to time. */
int bench_have_host_blas(void);

/* Times the host sgemm into pk (median of runs after a warm-up). */
void bench_host_sgemm(bench_peaks *pk);

/* Times the read kernels of prog (bench_kernels.cl) on queue. */
void bench_read_bandwidth(cl_context clctx, cl_command_queue queue, cl_device_id device,
                          cl_program prog, bench_peaks *pk);

/* What sweeps the device's cache before a timed call: a read of twice its
 * global memory cache (at least 64 MiB, at most an eighth of its memory and
 * one allocation) with the read probe's kernel, so that a call finds its
 * inputs in memory, as a decode loop finds a layer's K/V when it comes back
 * to that layer (a 480 MiB L3 otherwise kept whole K/V caches between
 * calls; BENCHMARKS.md, 2026-12-04). k NULL: no sweep. */
typedef struct bench_sweep {
    cl_command_queue queue;
    cl_kernel k;
    cl_mem in, out;
    size_t bytes, global, local;
} bench_sweep;

/* Sets sw up with prog's read kernel (leaves sw->k NULL when it cannot). */
void bench_sweep_init(bench_sweep *sw, cl_context clctx, cl_command_queue queue,
                      cl_device_id device, cl_program prog);

/* Runs one sweep to completion: CL_SUCCESS (also with no sweep set up), or
 * the OpenCL error. */
int bench_sweep_run(const bench_sweep *sw);

void bench_sweep_release(bench_sweep *sw);

/* The header line that says whether calls are swept (warm: --warm given). */
void bench_print_sweep_text(const bench_sweep *sw, int warm);

/* ---- bench_baselines.c: the yardsticks that are not clattn -------------- */

/* bench_kernels.cl, embedded by embed_cl.cmake. */
extern const char bench_kernels_cl[];

/* Builds bench_kernels.cl for device (softmax work-group wg, a power of
 * two). NULL with the build log in msg on failure. */
cl_program bench_build_kernels(cl_context clctx, cl_device_id device, int wg, char *msg,
                               size_t size);

/* The problem's packed fp32 tensors on the device. */
typedef struct bench_io {
    cl_mem q, k, v, o;
} bench_io;

/* Each enqueues one forward of p (packed, no mask or kv_lens) on queue and
 * waits for it. 0 on success; -1 unsupported or -2 failed, with the reason
 * in msg. *scratch is the three-stage score buffer, grown as needed (the
 * caller releases it). */
int bench_naive_run(cl_program prog, cl_command_queue queue, const clattn_problem *p,
                    const bench_io *io, char *msg, size_t size);
int bench_clblast_run(cl_program prog, int wg, cl_command_queue queue, const clattn_problem *p,
                      const bench_io *io, cl_mem *scratch, size_t *scratch_bytes, char *msg,
                      size_t size);

/* 1 when attn-tune links CLBlast. */
int bench_have_clblast(void);

/* ---- bench.c and bench_report.c: the results of a run ------------------- */

enum { V_AUTO, V_UNTUNED, V_FUSED, V_THREE, V_SPLIT, V_CLBLAST, V_NAIVE, V_COUNT };

enum { RES_OK, RES_UNSUPPORTED, RES_FAILED, RES_SKIPPED };

typedef struct vresult {
    int status;
    char message[300];
    double median_ms, min_ms;
    double cpu_ms; /* median process CPU time per call, all threads */
    int runs;
    double check; /* baselines: relative L2 distance of O from AUTO's; NAN unchecked */
} vresult;

typedef struct shape_run {
    double gflop, bytes;
    vresult v[V_COUNT];
    int skipped; /* invalid, or inputs could not be allocated */
    char message[300];
    float *clblast_out; /* the CLBlast baseline's O, until AUTO's is there to compare */
} shape_run;

/* Names of the variants, in the order of the enum above. */
extern const char *const bench_variant[V_COUNT];

/* What every shape is run with. */
typedef struct bench_env {
    clattn_context *ctx, *untuned;
    cl_context clctx;
    cl_command_queue queue;
    cl_program prog; /* bench_kernels.cl; NULL when it did not build */
    char prog_message[300];
    int wg;
    int baselines; /* 0: --no-baselines */
    long repeat;
    cl_mem scratch;
    size_t scratch_bytes;
    bench_peaks peaks;
    int warm;          /* --warm: no sweep */
    bench_sweep sweep; /* before every timed call */
    double load_start, load_end; /* 1-minute load average; -1 unknown */
    long cores;
} bench_env;

/* bench_report.c: the text tables, the goal lines and the JSON document. */
void bench_print_peaks_text(const bench_peaks *pk);
void bench_print_shape_text(const tool_shape *s, const shape_run *r, const bench_peaks *pk);
void bench_print_goals_text(const tool_shape_list *shapes, const shape_run *runs,
                            const bench_peaks *pk);
void bench_print_first_call_text(const first_call_report *fc);
void bench_print_first_call_json(const char *device, const first_call_report *fc);
void bench_print_json(const tool_shape_list *shapes, const shape_run *runs, const char *device,
                      size_t entries, const bench_env *env, const first_call_report *fc);

#endif /* ATTN_TUNE_BENCH_H */
