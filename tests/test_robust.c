/*
 * Numerical robustness on every path, dtype and fused kernel: NaN in Q, K, V
 * and the mask (it must reach exactly the rows the reference says, never
 * another row, head or batch), scores up to |s| ~ 1e4, all-equal scores, a
 * single key, rows that see nothing, and fp16 inputs at the ends of its
 * range (near 65504 and subnormal).
 *
 * Semantics checked (clattn.h): a NaN score of a key a row can see (from Q,
 * that key's K, or its mask entry) makes the row's O and LSE NaN; NaN in V
 * of a key with non-zero probability makes that row's O NaN in those
 * columns only (LSE stays finite); NaN anywhere a row cannot see (other
 * rows, heads, batches, keys past kv_lens or outside the causal/window
 * range, mask entries of such keys, keys of probability exactly 0) never
 * reaches it.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"
#include "param_spy.h"

/* Kernel variants: the vector fused kernel (the CPU default), the scalar
 * one, and the vector one reading K/V directly (the CPU's decode kernel,
 * whose softmax finds NaN its own way), each with split-KV forced into
 * several partitions. */
enum { N_VARIANTS = 3 };
static const char *const k_variants[N_VARIANTS] = {
    "FUSED_VEC=1,NSPLIT=3", "FUSED_VEC=0,NSPLIT=3",
    "FUSED_VEC=1,FV_DIRECT=1,FV_WG=1,FV_ROWS=4,FV_VEC=16,FV_GQA=1,NSPLIT=3"};

/* Sets CLATTN_PARAMS for the next plans; restores the caller's value when
 * v is NULL. The variant set before must have reached the kernels built
 * while it was set. */
static void set_variant(const char *v)
{
    static char saved[512];
    static int have_saved = -1;
    static const char *current;
    if (current)
        t_spy_check_params(current, "this variant");
    t_spy_reset();
    current = v;
    if (have_saved < 0) {
        const char *e = getenv("CLATTN_PARAMS");
        have_saved = e != NULL;
        if (e)
            snprintf(saved, sizeof saved, "%s", e);
    }
    if (v)
        setenv("CLATTN_PARAMS", v, 1);
    else if (have_saved)
        setenv("CLATTN_PARAMS", saved, 1);
    else
        unsetenv("CLATTN_PARAMS");
}

static void base_problem(clattn_problem *p, clattn_path path, clattn_dtype dt)
{
    memset(p, 0, sizeof *p);
    p->batch = 2;
    p->heads = 4;
    p->kv_heads = 2;
    p->seq_q = 21;
    p->seq_kv = 45; /* more than one tile and one partition of 16 or 32 keys */
    p->head_dim = 16;
    p->dtype = dt;
    p->path = path;
}

/* Runs t (poisoned first) and compares element by element with the
 * reference: NaN exactly where the reference has NaN, finite and within
 * tolerance elsewhere (tol's rel L2 over the finite elements, or an rms
 * error within abs_rms_tol, and each element within tol's per-element bound),
 * LSE likewise, rows that see nothing exactly 0 / -inf, O's guard untouched.
 * Returns the number of rows whose O has a NaN (or -1 when the call failed). */
static long run_and_compare(clattn_context *ctx, const char *label, t_tensors *t, int host,
                            t_tolerance tol, double abs_rms_tol)
{
    const int before = t_failures;
    t_tensors_poison(t);
    clattn_status st = host ? t_run_host(ctx, t) : t_run_device(ctx, t);
    if (st != CLATTN_OK) {
        T_FAIL("%s: %s -> %s: %s", label, host ? "clattn_forward_host" : "clattn_forward",
               clattn_status_string(st), clattn_last_error(ctx));
        return -1;
    }
    const clattn_problem *n = &t->n;
    const size_t rows = (size_t)n->batch * n->heads * n->seq_q, Dv = (size_t)n->head_dim_v;
    double *o_ref = malloc(sizeof(double) * rows * Dv), *lse_ref = malloc(sizeof(double) * rows);
    if (!o_ref || !lse_ref) {
        T_FAIL("out of host memory");
        free(o_ref);
        free(lse_ref);
        return -1;
    }
    clattn_host_buffers in = t_tensors_host(t);
    in.o = NULL;
    in.lse = NULL;
    if (ref_attention(&t->p, &in, o_ref, lse_ref, NULL) != 0) {
        T_FAIL("%s: the reference ran out of host memory", label);
        free(o_ref);
        free(lse_ref);
        return -1;
    }
    double scale = 0.0;
    for (size_t e = 0; e < rows * Dv; e++)
        if (isfinite(o_ref[e]))
            scale = fmax(scale, fabs(o_ref[e]));
    double num = 0.0, den = 0.0, count = 0.0, elem_use = 0.0;
    long nan_rows = 0, ref_nan_rows = 0, pattern_bad = 0, lse_bad = 0, empty_bad = 0;
    long elem_bad = 0;
    size_t first_bad = 0, worst_elem = 0;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++) {
                const size_t row = ((size_t)b * n->heads + h) * n->seq_q + i;
                const int64_t off = b * n->o_strides.batch + h * n->o_strides.head +
                                    i * n->o_strides.seq;
                int got_nan = 0, ref_nan = 0;
                for (size_t d = 0; d < Dv; d++) {
                    const double g = ref_load(t->o, n->dtype, off + (int64_t)d);
                    const double r = o_ref[row * Dv + d];
                    got_nan |= isnan(g);
                    ref_nan |= isnan(r);
                    if (isnan(r) != isnan(g) || (!isnan(r) && !isfinite(g))) {
                        if (pattern_bad++ == 0)
                            first_bad = row;
                    } else if (!isnan(r)) {
                        num += (g - r) * (g - r);
                        den += r * r;
                        count += 1.0;
                        const double bound = t_elem_bound(&tol, n->dtype, r, scale);
                        if (fabs(g - r) > elem_use * bound) {
                            elem_use = fabs(g - r) / bound;
                            worst_elem = row * Dv + d;
                        }
                        elem_bad += !(fabs(g - r) <= bound);
                    }
                    if (lse_ref[row] == -INFINITY && g != 0.0)
                        empty_bad++;
                }
                nan_rows += got_nan;
                ref_nan_rows += ref_nan;
                if (t->lse) {
                    const double g = t->lse[row], r = lse_ref[row];
                    int ok = isnan(r) ? isnan(g)
                             : r == -INFINITY
                                 ? g == -INFINITY
                                 : isfinite(g) && fabs(g - r) <= 1e-4 * fmax(1.0, fabs(r));
                    lse_bad += !ok;
                }
            }
    const double rel = den > 0.0 ? sqrt(num / den) : sqrt(num);
    const double rms = count > 0.0 ? sqrt(num / count) : 0.0;
    if (pattern_bad) {
        const size_t Sq = (size_t)n->seq_q, H = (size_t)n->heads;
        T_FAIL("%s: %ld O elements where NaN-ness or finiteness differs from the reference "
               "(reference NaN rows %ld, got %ld); first in row b%zu h%zu i%zu",
               label, pattern_bad, ref_nan_rows, nan_rows, first_bad / (H * Sq),
               (first_bad / Sq) % H, first_bad % Sq);
    }
    T_CHECK(rel <= tol.rel_l2 || rms <= abs_rms_tol,
            "%s: rel L2 error of the finite O elements %.3g > %.3g (rms error %.3g > %.3g)",
            label, rel, tol.rel_l2, rms, abs_rms_tol);
    T_CHECK(elem_bad == 0,
            "%s: %ld finite O elements beyond %g ulp + %g * %.3g; worst row %zu d%zu: %.3g of "
            "its bound", label, elem_bad, tol.elem_ulps, tol.elem_atol, scale, worst_elem / Dv,
            worst_elem % Dv, elem_use);
    T_CHECK(lse_bad == 0, "%s: %ld LSE values differ from the reference (NaN, -inf or value)",
            label, lse_bad);
    T_CHECK(empty_bad == 0, "%s: %ld O elements of rows that see nothing are not 0", label,
            empty_bad);
    T_CHECK(t_same_bytes((const char *)t->o + (size_t)t->o_n * t->esz,
                         (const char *)t->o_init + (size_t)t->o_n * t->esz,
                         (size_t)(t->o_alloc - t->o_n) * t->esz),
            "%s: O's guard was written", label);
    t_log("%s %s: NaN rows %ld (reference %ld), rel L2 %.2e elem %.2f",
          t_failures != before ? "BAD " : "ok  ", label, nan_rows, ref_nan_rows, rel, elem_use);
    free(o_ref);
    free(lse_ref);
    return nan_rows;
}

static void store_row(t_tensors *t, const clattn_strides *s, void *base, int b, int h, int i,
                      int d0, int nd, float value)
{
    const int64_t off = b * s->batch + h * s->head + i * s->seq;
    for (int d = d0; d < d0 + nd; d++)
        ref_store(base, t->n.dtype, off + d, value);
}

enum {
    N_Q_ROW,       /* NaN in one element of one query row */
    N_K_KEY,       /* NaN in one K element of one key, one kv head */
    N_V_KEY,       /* NaN in one V element of one key; -inf mask hides it from some rows */
    N_MASK_SEEN,   /* NaN mask entries at keys the rows see */
    N_MASK_UNSEEN, /* NaN mask entries at keys outside the causal range */
    N_FIRST_TILE,  /* every key of the first tile NaN in K for one kv head */
    N_SINGLE_KEY,  /* seq_kv = 1, its K NaN in one batch */
    N_BEYOND_LEN,  /* K and V NaN past kv_lens: no effect */
    N_COUNT
};
static const char *const k_nan_names[N_COUNT] = {"q_row", "k_key", "v_key", "mask_seen",
                                                 "mask_unseen", "first_tile", "single_key",
                                                 "beyond_kv_len"};

static void nan_inputs_variant(clattn_context *ctx, int variant)
{
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    set_variant(k_variants[variant]);
    for (int pi = 0; pi < 4; pi++) {
        /* the three-stage path does not depend on the fused variant */
        if (variant > 0 && t_all_paths[pi] == CLATTN_PATH_THREE_STAGE)
            continue;
        for (int di = 0; di < 3; di++)
            for (int sc = 0; sc < N_COUNT; sc++) {
                clattn_problem p;
                base_problem(&p, t_all_paths[pi], dts[di]);
                unsigned flags = T_WITH_LSE;
                if (sc == N_MASK_SEEN || sc == N_MASK_UNSEEN || sc == N_V_KEY) {
                    flags |= T_WITH_MASK;
                    p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
                    p.mask_batch_stride = p.heads * p.mask_head_stride;
                }
                if (sc == N_MASK_UNSEEN || sc == N_K_KEY)
                    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
                if (sc == N_SINGLE_KEY) {
                    p.seq_kv = 1;
                    p.seq_q = 3;
                }
                if (sc == N_BEYOND_LEN) {
                    p.batch = 3;
                    flags |= T_WITH_KV_LENS | T_NAN_BEYOND_LEN;
                }
                t_tensors t;
                if (t_tensors_init(&t, &p, flags, 0x4a40000u + (uint64_t)(pi * 64 + di * 16 + sc)) != 0)
                    return;
                const clattn_problem *n = &t.n;
                long expect_min = 1, expect_max = (long)n->batch * n->heads * n->seq_q - 1;
                switch (sc) {
                case N_Q_ROW:
                    store_row(&t, &n->q_strides, t.q, 1, 2, 7, 3, 1, NAN);
                    expect_min = expect_max = 1;
                    break;
                case N_K_KEY: /* key 30 of kv head 1, batch 0: rows i >= 30 - 24 of heads 2, 3 */
                    store_row(&t, &n->k_strides, t.k, 0, 1, 30, 5, 1, NAN);
                    expect_min = expect_max = 2L * (n->seq_q - (30 - (n->seq_kv - n->seq_q)));
                    break;
                case N_V_KEY: /* key 10 of kv head 0, batch 1, column 4; rows 0..4 mask it */
                    store_row(&t, &n->v_strides, t.v, 1, 0, 10, 4, 1, NAN);
                    for (int h = 0; h < 2; h++)
                        for (int i = 0; i < 5; i++)
                            t.mask[1 * p.mask_batch_stride + h * p.mask_head_stride +
                                   (int64_t)i * n->seq_kv + 10] = -INFINITY;
                    for (int h = 0; h < 2; h++)
                        for (int i = 5; i < n->seq_q; i++)
                            t.mask[1 * p.mask_batch_stride + h * p.mask_head_stride +
                                   (int64_t)i * n->seq_kv + 10] = 0.5f;
                    expect_min = expect_max = 2L * (n->seq_q - 5);
                    break;
                case N_MASK_SEEN: /* rows 3 and 17 of (b0,h1), row 0 of (b1,h3) */
                    t.mask[1 * p.mask_head_stride + 3L * n->seq_kv + 0] = NAN;
                    t.mask[1 * p.mask_head_stride + 17L * n->seq_kv + 44] = NAN;
                    t.mask[p.mask_batch_stride + 3 * p.mask_head_stride + 0L * n->seq_kv + 20] =
                        NAN;
                    expect_min = expect_max = 3;
                    break;
                case N_MASK_UNSEEN: /* bottom-right causal: row i sees keys <= i + 24 */
                    for (int64_t e = 0; e < t.mask_n; e++) {
                        const int64_t j = e % n->seq_kv, i = (e / n->seq_kv) % n->seq_q;
                        if (j > i + (n->seq_kv - n->seq_q))
                            t.mask[e] = NAN;
                    }
                    expect_min = expect_max = 0;
                    break;
                case N_FIRST_TILE:
                    for (int j = 0; j < 32; j++)
                        store_row(&t, &n->k_strides, t.k, 1, 0, j, 0, 1, NAN);
                    expect_min = expect_max = 2L * n->seq_q;
                    break;
                case N_SINGLE_KEY:
                    store_row(&t, &n->k_strides, t.k, 1, 1, 0, 0, n->head_dim, NAN);
                    expect_min = expect_max = 2L * n->seq_q;
                    break;
                case N_BEYOND_LEN:
                    expect_min = expect_max = 0;
                    break;
                }
                char label[128];
                snprintf(label, sizeof label, "nan/%s/%s/%s/%s", k_nan_names[sc],
                         t_path_name(p.path), t_dtype_name(p.dtype),
                         k_variants[variant]);
                long got = run_and_compare(ctx, label, &t, (pi + di + sc) % 2,
                                           t_tolerance_for(p.dtype), 0.0);
                T_CHECK(got < 0 || (got >= expect_min && got <= expect_max),
                        "%s: %ld rows with NaN, the scenario affects %ld..%ld", label, got,
                        expect_min, expect_max);
                t_tensors_free(&t);
            }
    }
    set_variant(NULL);
}

/* One kernel variant's NaN cases on a context of their own. */
static void nan_inputs_case(int variant)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    nan_inputs_variant(ctx, variant);
    clattn_context_destroy(ctx);
}

/* The scalar fused kernel. */
void case_nan_inputs(void) { nan_inputs_case(1); }

/* The same with the vector fused kernel (the default on CPUs). */
void case_nan_inputs_vec(void) { nan_inputs_case(0); }

/* The same with the direct decode kernel. */
void case_nan_inputs_direct(void) { nan_inputs_case(2); }

/* Largest |q . k| of the problem, to aim the scale at a score magnitude. */
static double max_dot(const t_tensors *t)
{
    const clattn_problem *n = &t->n;
    double best = 0.0;
    const int group = n->heads / n->kv_heads;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++)
                for (int j = 0; j < n->seq_kv; j++) {
                    const int64_t qo = b * n->q_strides.batch + h * n->q_strides.head +
                                       i * n->q_strides.seq;
                    const int64_t ko = b * n->k_strides.batch + (h / group) * n->k_strides.head +
                                       j * n->k_strides.seq;
                    double s = 0.0;
                    for (int d = 0; d < n->head_dim; d++)
                        s += (double)ref_load(t->q, n->dtype, qo + d) *
                             (double)ref_load(t->k, n->dtype, ko + d);
                    best = fmax(best, fabs(s));
                }
    return best;
}

enum {
    E_HUGE_POS,    /* max |s| ~ 1e4 */
    E_HUGE_NEG,    /* negative scale, ~1e4, causal, mask */
    E_EQUAL,       /* every key the same vector: uniform probabilities */
    E_EQUAL_MASK,  /* equal scores plus a constant mask value */
    E_SINGLE_KEY,  /* seq_kv = 1, bottom-right causal: most rows see nothing */
    E_EMPTY_ROWS,  /* rows masked by -inf, kv_lens 0 and an empty window */
    E_ONE_VISIBLE, /* mask -inf everywhere but one key per row */
    E_COUNT
};
static const char *const k_extreme_names[E_COUNT] = {"huge_pos",   "huge_neg",   "equal",
                                                     "equal_mask", "single_key", "empty_rows",
                                                     "one_visible"};

void case_extreme_scores(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    for (int variant = 0; variant < N_VARIANTS; variant++) {
        set_variant(k_variants[variant]);
        for (int pi = 0; pi < 4; pi++) {
            if (variant > 0 && t_all_paths[pi] == CLATTN_PATH_THREE_STAGE)
                continue;
            for (int di = 0; di < 3; di++)
                for (int sc = 0; sc < E_COUNT; sc++) {
                    clattn_problem p;
                    base_problem(&p, t_all_paths[pi], dts[di]);
                    unsigned flags = T_WITH_LSE;
                    if (sc == E_HUGE_NEG || sc == E_EQUAL_MASK || sc == E_EMPTY_ROWS ||
                        sc == E_ONE_VISIBLE) {
                        flags |= T_WITH_MASK;
                        p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
                        p.mask_batch_stride = p.heads * p.mask_head_stride;
                    }
                    if (sc == E_HUGE_NEG)
                        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
                    if (sc == E_SINGLE_KEY) {
                        p.seq_kv = 1;
                        p.seq_q = 5;
                        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
                    }
                    if (sc == E_EMPTY_ROWS) {
                        p.batch = 3; /* kv_lens {12, 0, 45} */
                        flags |= T_WITH_KV_LENS;
                        /* top-left causal (j <= i) and window_left 3 (j >= i + L - 24):
                         * every row of batch 2 is empty, those of batch 0 are not */
                        p.causal = CLATTN_CAUSAL_TOP_LEFT;
                        p.windowed = 1;
                        p.window_left = 3;
                        p.window_right = -1;
                    }
                    t_tensors t;
                    if (t_tensors_init(&t, &p, flags, 0xe7700000u + (uint64_t)(pi * 64 + di * 16 + sc)) != 0)
                        return;
                    const clattn_problem *n = &t.n;
                    t_tolerance tol = t_tolerance_for(p.dtype);
                    if (sc == E_HUGE_POS || sc == E_HUGE_NEG) {
                        /* fp32 scores of |s| ~ 1e4 carry an absolute error of about
                         * |s| * 2^-24 * sqrt(D) ~ 2e-3: the probabilities of close
                         * keys move by that much, whatever the storage type */
                        double s = 1e4 / max_dot(&t);
                        t.p.scale = (float)(sc == E_HUGE_NEG ? -s : s);
                        tol.rel_l2 = fmax(tol.rel_l2, 3e-3);
                        tol.elem_atol = 5e-3; /* 2.5x the 2e-3 of the scale measured */
                    }
                    if (sc == E_EQUAL || sc == E_EQUAL_MASK) {
                        for (int b = 0; b < n->batch; b++)
                            for (int h = 0; h < n->kv_heads; h++)
                                for (int j = 1; j < n->seq_kv; j++) {
                                    const int64_t k0 = b * n->k_strides.batch + h * n->k_strides.head;
                                    for (int d = 0; d < n->head_dim; d++)
                                        ref_store(t.k, n->dtype, k0 + j * n->k_strides.seq + d,
                                                  ref_load(t.k, n->dtype, k0 + d));
                                }
                        if (t.mask)
                            for (int64_t e = 0; e < t.mask_n; e++)
                                t.mask[e] = 3.25f;
                    }
                    if (sc == E_EMPTY_ROWS) {
                        t.kv_lens[0] = 12;
                        t_tensors_nan_beyond_len(&t);
                    }
                    if (sc == E_EMPTY_ROWS)
                        for (int i = 0; i < n->seq_q; i += 4) /* whole rows -inf */
                            for (int j = 0; j < n->seq_kv; j++)
                                t.mask[2 * p.mask_head_stride + (int64_t)i * n->seq_kv + j] =
                                    -INFINITY;
                    if (sc == E_ONE_VISIBLE)
                        for (int64_t e = 0; e < t.mask_n; e++)
                            t.mask[e] = (e % n->seq_kv) == (e / n->seq_kv) % n->seq_q + 7
                                            ? 100.0f
                                            : -INFINITY;
                    char label[128];
                    snprintf(label, sizeof label, "extreme/%s/%s/%s/%s", k_extreme_names[sc],
                             t_path_name(p.path), t_dtype_name(p.dtype),
                             k_variants[variant]);
                    long nan_rows = run_and_compare(ctx, label, &t, (pi + di + sc) % 2, tol, 0.0);
                    T_CHECK(nan_rows <= 0, "%s: %ld rows came out NaN from finite inputs", label,
                            nan_rows);
                    if (sc == E_HUGE_POS || sc == E_HUGE_NEG) {
                        double max_lse = 0.0;
                        for (int64_t r = 0; r < t.lse_n; r++)
                            if (isfinite(t.lse[r]))
                                max_lse = fmax(max_lse, fabs((double)t.lse[r]));
                        T_CHECK(max_lse > 3e3, "%s: max |lse| %.0f: the scores are not large",
                                label, max_lse);
                    }
                    if (sc == E_SINGLE_KEY || sc == E_EMPTY_ROWS) {
                        long empty = 0;
                        for (int64_t r = 0; r < t.lse_n; r++)
                            empty += t.lse[r] == -INFINITY;
                        T_CHECK(empty > 0 && empty < t.lse_n,
                                "%s: %ld of %lld rows see nothing; the test lost its point",
                                label, empty, (long long)t.lse_n);
                    }
                    t_tensors_free(&t);
                }
        }
    }
    set_variant(NULL);
    clattn_context_destroy(ctx);
}

/* fp16 inputs at the ends of its range: values near 65504 (scores brought
 * back to O(1) by a small scale) and subnormals (|x| < 2^-14, brought up by a
 * large scale). O must stay finite, the large case within the f16 tolerance,
 * the subnormal one within one subnormal step plus the f16 tolerance. */
void case_f16_range(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    for (int variant = 0; variant < N_VARIANTS; variant++) {
        set_variant(k_variants[variant]);
        for (int pi = 0; pi < 4; pi++) {
            if (variant > 0 && t_all_paths[pi] == CLATTN_PATH_THREE_STAGE)
                continue;
            for (int kind = 0; kind < 3; kind++) {
                clattn_problem p;
                base_problem(&p, t_all_paths[pi], CLATTN_F16);
                p.causal = kind == 2 ? CLATTN_CAUSAL_TOP_LEFT : CLATTN_CAUSAL_NONE;
                t_tensors t;
                if (t_tensors_init(&t, &p, T_WITH_LSE, 0xf1600000u + (uint64_t)(pi * 4 + kind)) != 0)
                    return;
                const clattn_problem *n = &t.n;
                /* kind 0: everything near the top of the range; 1: everything
                 * subnormal; 2: V near the top, Q and K subnormal */
                const double big = 65504.0, sub = 6.0e-5; /* just under 2^-14 */
                const double qk_mag = kind == 0 ? big : sub, v_mag = kind == 1 ? sub : big;
                void *bufs[3] = {t.q, t.k, t.v};
                const int64_t ns[3] = {t.q_n, t.k_n, t.v_n};
                for (int a = 0; a < 3; a++) {
                    const double mag = a < 2 ? qk_mag : v_mag;
                    for (int64_t e = 0; e < ns[a]; e++) {
                        const float x = ref_load(bufs[a], CLATTN_F16, e);
                        if (!isnan(x)) /* gaps keep their NaN */
                            ref_store(bufs[a], CLATTN_F16, e, (float)(x * mag));
                    }
                }
                t.p.scale = (float)(2.0 / max_dot(&t)); /* scores within about +-2 */
                char label[128];
                snprintf(label, sizeof label, "f16_range/%s/%s/%s",
                         kind == 0 ? "large" : kind == 1 ? "subnormal" : "large_v_subnormal_qk",
                         t_path_name(p.path), k_variants[variant]);
                /* kind 1: O is subnormal too; rounding to its grid (steps of
                 * 2^-24) alone gives an rms error of 0.29 steps */
                const t_tolerance tol = t_tolerance_for(CLATTN_F16);
                long nan_rows = run_and_compare(ctx, label, &t, (pi + kind) % 2, tol,
                                                kind == 1 ? 0.5 * ldexp(1.0, -24) : 0.0);
                T_CHECK(nan_rows <= 0, "%s: NaN from finite inputs", label);
                double omax = 0.0;
                size_t nonzero = 0;
                for (int64_t e = 0; e < t.o_n; e++) {
                    const double x = fabs((double)ref_load(t.o, CLATTN_F16, e));
                    omax = fmax(omax, x);
                    nonzero += x > 0.0;
                }
                T_CHECK(nonzero > (size_t)t.o_n / 2 &&
                            (kind == 1 ? omax < 6.2e-5 : omax > 1e4 && omax <= big),
                        "%s: O magnitudes (max %.3g, %zu non-zero) miss the range under test",
                        label, omax, nonzero);
                (void)n;
                t_tensors_free(&t);
            }
        }
    }
    set_variant(NULL);
    clattn_context_destroy(ctx);
}
