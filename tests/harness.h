/*
 * The test runner's shared machinery: failure reporting, a seeded PRNG, host
 * tensors laid out by a problem's strides, runs through the device-buffer and
 * host APIs, and verification against ref_attention.
 */
#ifndef CLATTN_TESTS_HARNESS_H
#define CLATTN_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "clattn.h"
#include "reference.h"

/* ---- reporting ----------------------------------------------------------- */

/* Failed checks in the running case; the runner exits non-zero when > 0. */
extern int t_failures;
/* Parts of the running case that did not run (the device cannot, or the
 * environment does not allow it). With no failure the runner exits with
 * T_SKIP_EXIT, which CTest reports as a skip, never as a pass. */
extern int t_skips;
#define T_SKIP_EXIT 77

#if defined(__GNUC__)
#define T_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define T_PRINTF(a, b)
#endif

void t_fail_at(const char *file, int line, const char *fmt, ...) T_PRINTF(3, 4);
void t_log(const char *fmt, ...) T_PRINTF(1, 2);
/* Logs "SKIP ..." and counts it in t_skips. */
void t_skip(const char *fmt, ...) T_PRINTF(1, 2);

#define T_FAIL(...) t_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define T_CHECK(cond, ...)                                                        \
    do {                                                                          \
        if (!(cond))                                                              \
            t_fail_at(__FILE__, __LINE__, __VA_ARGS__);                           \
    } while (0)
/* An OpenCL call that must succeed; on failure the case is failed. */
#define T_CL(call)                                                                \
    do {                                                                          \
        cl_int t_cl_err_ = (call);                                                \
        if (t_cl_err_ != CL_SUCCESS)                                              \
            t_fail_at(__FILE__, __LINE__, "%s returned %d", #call, (int)t_cl_err_); \
    } while (0)

/* ---- PRNG (splitmix64: small, seedable, the same everywhere) ------------ */

typedef struct t_rng {
    uint64_t s;
} t_rng;

void t_rng_seed(t_rng *r, uint64_t seed);
uint64_t t_rng_next(t_rng *r);
double t_rng_uniform(t_rng *r, double lo, double hi);
int t_rng_int(t_rng *r, int lo, int hi); /* inclusive */

/* ---- contexts ------------------------------------------------------------ */

/* clattn_context_create(NULL) or a failed case (returns NULL). */
clattn_context *t_context(void);
/* Between the runs of a sweep: with CLATTN_SWEEP_FRESH=1 destroys *ctx and
 * makes a new one (0, or -1 with *ctx NULL when that fails); otherwise keeps
 * it. Oclgrind's --uninitialized gives a new buffer the shadow of the
 * released one whose number it takes (tests/oclgrind/reuse_probe.c), so
 * within one OpenCL context it reports written memory as uninitialised and
 * misses unwritten memory; its runs set this so each run starts clean. */
int t_context_between_runs(clattn_context **ctx);
/* Queue and cl_context of a clattn context. */
cl_command_queue t_queue(clattn_context *ctx);
cl_context t_cl_context(clattn_context *ctx);

/* ---- tensors ------------------------------------------------------------- */

/* Elements of guard region after O and LSE, poisoned and checked after a run. */
#define T_GUARD 67

/* What a t_tensors holds beyond q, k, v, o. The problem's own fields (sinks,
 * alibi, kv_start, bias, bool_mask with their dtypes and strides, varlen) are
 * set by the test; these flags make the harness allocate and fill the
 * buffers those fields need. */
enum {
    T_WITH_MASK = 1,    /* random fp32 mask, ~10% -INFINITY, by the mask strides */
    T_WITH_KV_LENS = 2, /* random kv_lens in 0..seq_kv, both ends included */
    T_WITH_LSE = 4,
    T_NAN_BEYOND_LEN = 8, /* K and V rows at or beyond kv_lens[b] hold NaN */
    T_WITH_SINKS = 16,    /* fp32 [heads] in [-2, 4]; one head -INFINITY in some seeds */
    T_WITH_ALIBI = 32,    /* fp32 [heads]: the standard slopes (ref_alibi_slopes) */
    T_WITH_BIAS = 64,     /* ~N(0,1), ~10% -INFINITY, in bias.dtype at bias.strides;
                             the gaps between its elements hold NaN */
    T_WITH_BOOL_MASK = 128, /* uint8 at bool_mask.strides, ~20% zeros, nonzero 1..255 */
    T_WITH_KV_START = 256,  /* random kv_start in 0..L (L: kv_lens[b] or seq_kv); the
                               K and V rows before kv_start[b] hold NaN */
    T_WITH_VARLEN = 512     /* random cu_seqlens (lengths 0..seq_q / 0..seq_kv); sets
                               varlen = 1, total_q and total_kv in the problem */
};

/* Host tensors for one problem, laid out by its strides. Input gaps hold NaN
 * (a read of one poisons the output); O and its guard hold a NaN pattern.
 * With varlen, q and o span total_q tokens and k, v total_kv, and the LSE is
 * [heads][total_q]. */
typedef struct t_tensors {
    clattn_problem p; /* as handed to the library */
    clattn_problem n; /* ref_normalize(p) */
    size_t esz;
    int64_t q_n, k_n, v_n, o_n; /* extents in elements */
    int64_t o_alloc;            /* o_n + T_GUARD */
    void *q, *k, *v, *o;
    void *o_init; /* O's contents before the run */
    float *mask;
    int64_t mask_n;
    int32_t *kv_lens;
    float *lse; /* [B][H][Sq] (varlen: [H][total_q]) + T_GUARD */
    int64_t lse_n;
    /* since 1.0 */
    float *sinks, *alibi;  /* [heads] */
    void *bias;            /* bias_n elements of p.bias.dtype */
    int64_t bias_n;
    uint8_t *bool_mask;    /* bool_n bytes */
    int64_t bool_n;
    int32_t *kv_start;     /* [batch] */
    int32_t *cu_q, *cu_kv; /* [batch + 1] */
} t_tensors;

/* 0 on success; on allocation failure the case is failed. */
int t_tensors_init(t_tensors *t, const clattn_problem *p, unsigned flags, uint64_t seed);
void t_tensors_free(t_tensors *t);
/* Refill O (view, gaps and guard) and LSE with their poison. */
void t_tensors_poison(t_tensors *t);
/* Put NaN in the K and V rows at or beyond kv_lens[b] (not for varlen). */
void t_tensors_nan_beyond_len(t_tensors *t);
/* Put NaN in the K and V rows before kv_start[b] (not for varlen). */
void t_tensors_nan_before_start(t_tensors *t);
clattn_host_buffers t_tensors_host(const t_tensors *t);
/* The bytes of each array of t as allocated (k and v in the problem's
 * dtype: the harness keeps K/V in it), for clattn_host_buffers.sizes. */
void t_tensors_sizes(const t_tensors *t, clattn_buffer_sizes *z);

/* Number of mask elements the problem's strides need. */
int64_t t_mask_extent(const clattn_problem *n);
/* The dtype's NaN pattern used as poison. */
uint16_t t_poison16(clattn_dtype t);
void t_fill_poison(void *base, clattn_dtype t, int64_t n);

/* Device buffers holding t's tensors (O and LSE with their guards, and every
 * 1.0 input t holds, in clattn_buffers' new fields), in c.
 * Returns the first clCreateBuffer error (then nothing is left allocated). */
cl_int t_dev_create(cl_context c, const t_tensors *t, clattn_buffers *b);
/* Blocking read of O and LSE (with guards) back into t. */
cl_int t_dev_read(cl_command_queue q, const clattn_buffers *b, t_tensors *t);
void t_dev_release(clattn_buffers *b);

/* Runs the problem through device buffers (clattn_forward, then waits on its
 * event and reads O and LSE back) or the host API. */
clattn_status t_run_device(clattn_context *ctx, t_tensors *t);
clattn_status t_run_host(clattn_context *ctx, t_tensors *t);

/* ---- verification -------------------------------------------------------- */

/* O must pass both a global and a per-element bound: the relative L2 error
 * catches a small error spread everywhere, the per-element one a large error
 * in a few elements (one wrong element moves the L2 of a big output by too
 * little to see). Per element, with scale = the largest |ref| of the output:
 *     |got - ref| <= elem_ulps * ulp_dtype(|ref|) + elem_atol * scale
 * (ulp_dtype is ref_ulp of the storage type: rounding the exact result to the
 * output type costs 0.5 of it; elem_atol covers the fp32 arithmetic, whose
 * error follows the magnitudes summed, not the result's). */
typedef struct t_tolerance {
    double rel_l2;     /* relative L2 error of O */
    double lse_rel;    /* |lse err| <= lse_rel * max(1, |lse|) */
    double probs_abs;  /* max abs error of the probabilities */
    double elem_ulps;  /* k of the per-element bound of O */
    double elem_atol;  /* its absolute part, in units of scale */
} t_tolerance;

t_tolerance t_tolerance_for(clattn_dtype t);
/* tol as p's K/V storage changes it (t_verify_raw applies it): int8 K with
 * a scale a row is scored with queries rounded to 16 bits on CPUs. */
t_tolerance t_tolerance_kv(const clattn_problem *p, t_tolerance tol);

/* The per-element bound of O for ref (see t_tolerance). */
double t_elem_bound(const t_tolerance *tol, clattn_dtype t, double ref, double scale);

/* What a verification found (filled even when it passes). */
typedef struct t_result {
    double rel_l2, lse_err, probs_err;
    int fails;
    long masked_rows, rows; /* rows that see no key, of all rows */
    double elem_use;        /* the largest |got - ref| / per-element bound (<= 1 passes) */
} t_result;

/* Compares a run's O (got_o, laid out by p's o strides over o_alloc elements,
 * o_init its contents before the run) and LSE (got_lse over lse_alloc
 * elements, or NULL) with ref_attention on in. Every failing check prints one
 * line prefixed by label. */
t_result t_verify_raw(const char *label, const clattn_problem *p, const clattn_host_buffers *in,
                      const void *got_o, const void *o_init, int64_t o_alloc,
                      const float *got_lse, int64_t lse_alloc, t_tolerance tol);
t_result t_verify(const char *label, const t_tensors *t, t_tolerance tol);
/* Compares clattn_attention_weights_host output with the reference. */
t_result t_verify_probs(const char *label, const clattn_problem *p, const clattn_host_buffers *in,
                        const float *probs, t_tolerance tol);

/* "B2 H6/2 Sq7 Skv33 D17/17 f16 causal=br window=(3,-1) ... path=fused", with
 * every 1.0 feature the problem enables */
void t_describe(const clattn_problem *p, const clattn_host_buffers *in, char *buf, size_t size);
const char *t_dtype_name(clattn_dtype t);
const char *t_path_name(clattn_path p);

/* Checks supports, poisons, runs (device buffers or host API), verifies and
 * prints one line; returns the number of failed checks, or -1 when the device
 * does not support the problem (counted by t_skip; nothing ran). */
int t_check_run(clattn_context *ctx, const char *label, t_tensors *t, int use_host);

/* value (NaN, inf) into K and/or V of key j for every batch and kv head
 * (plain problems; with varlen j is a token). */
void t_set_key(t_tensors *t, int j, float value, int in_k, int in_v);

/* fused, three_stage, split_kv, auto */
extern const clattn_path t_all_paths[4];

/* Whether the bytes are identical. */
int t_same_bytes(const void *a, const void *b, size_t n);

/* Takes *m (sets it NULL) and releases it only at t_release_kept, at the
 * end of a case or run. Oclgrind 21.10 gives a new buffer the id of a
 * released one and keeps that one's record of initialised bytes
 * (tests/oclgrind/reuse_probe.c), so the bytes of a larger buffer made
 * later read as uninitialised past it, whatever a kernel wrote there, and
 * unwritten bytes within it as initialised; cases run under Oclgrind that
 * make and release buffers as they go keep them instead. */
void t_keep_until_end(cl_mem *m);
void t_release_kept(void);

#endif /* CLATTN_TESTS_HARNESS_H */
