/*
 * clattn_merge (clattn.h, "KV caches").
 *   merge: an attention's keys split into P disjoint ranges per sequence
 *     (kv_start / kv_lens), each range run by clattn_forward, the parts
 *     merged; compared with a double-precision merge of the very parts the
 *     device wrote (the merge's own error), with one clattn_forward over all
 *     the keys, and with ref_attention. P = 9 and 17 take several launches
 *     through the fp32 accumulator. Parts that saw no key hold NaN in their
 *     O, whole sequences see no key at all, O is strided with poisoned gaps,
 *     the call waits on a user event, and a NaN LSE must make its row NaN.
 *   merge_errors: every invalid call refused before anything runs, naming
 *     the field, with the outputs untouched.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cases.h"
#include "harness.h"

static const clattn_dtype k_dtypes[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static cl_mem buffer_from(cl_context c, size_t bytes, const void *init)
{
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, (void *)init,
                              &err);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu) -> %d", bytes, (int)err);
    return err == CL_SUCCESS ? m : NULL;
}

static void release(cl_mem *m)
{
    if (*m)
        clReleaseMemObject(*m);
    *m = NULL;
}

/* ==== merge =============================================================== */

/* One part: the keys cut[b][j] .. cut[b][j + 1] - 1 of each sequence b. */
typedef struct part {
    int32_t *start, *len; /* kv_start and kv_lens of the part's problem */
    void *o;              /* as the forward wrote it, then NaN in rows that saw nothing */
    float *lse;
    cl_mem d_start, d_len, d_o, d_lse;
} part;

typedef struct run {
    t_tensors t;      /* the whole problem: q, k, v, kv_lens, the poisoned O */
    clattn_buffers b; /* its device buffers */
    int nparts;
    part *parts;
    clattn_merge_problem mp;
    char label[96];
} run;

/* Element offset of row (b, h, i) of O. */
static int64_t o_row(const clattn_problem *n, int b, int h, int i)
{
    return b * n->o_strides.batch + h * n->o_strides.head + i * n->o_strides.seq;
}

/* The whole problem: keys limited by kv_lens (one sequence full, one empty),
 * no causal alignment (a part's L would move it), O strided when asked. */
static int run_problem(run *r, clattn_dtype dt, int strided, uint64_t seed)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 3;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = 5;
    p.seq_kv = 37;
    p.head_dim = 16;
    p.head_dim_v = 20;
    p.dtype = dt;
    if (strided) {
        p.o_strides.seq = p.head_dim_v + 3;
        p.o_strides.head = p.seq_q * p.o_strides.seq + 5;
        p.o_strides.batch = p.heads * p.o_strides.head + 7;
    }
    return t_tensors_init(&r->t, &p, T_WITH_KV_LENS | T_WITH_LSE, seed);
}

/* Cuts 0 = c_0 <= c_1 <= ... <= c_P = kv_lens[b], drawn at random (equal
 * cuts give parts without keys); part 0 of sequence 0 is always empty. */
static void draw_cuts(run *r, t_rng *rng)
{
    const clattn_problem *n = &r->t.n;
    const int P = r->nparts;
    for (int b = 0; b < n->batch; b++) {
        const int L = r->t.kv_lens[b];
        int prev = 0;
        for (int j = 0; j < P; j++) {
            int next = j == P - 1 ? L : t_rng_int(rng, prev, prev + (L - prev) * 2 / (P - j));
            if (b == 0 && j == 0 && P > 1)
                next = 0;
            if (next > L)
                next = L;
            r->parts[j].start[b] = prev;
            r->parts[j].len[b] = next;
            prev = next;
        }
    }
}

static int parts_alloc(run *r, cl_context c)
{
    const t_tensors *t = &r->t;
    const int B = t->n.batch;
    for (int j = 0; j < r->nparts; j++) {
        part *pt = &r->parts[j];
        pt->start = malloc(sizeof(int32_t) * (size_t)B);
        pt->len = malloc(sizeof(int32_t) * (size_t)B);
        pt->o = malloc((size_t)t->o_alloc * t->esz);
        pt->lse = malloc(sizeof(float) * (size_t)t->lse_n);
        if (!pt->start || !pt->len || !pt->o || !pt->lse) {
            T_FAIL("out of host memory for part %d", j);
            return -1;
        }
        t_fill_poison(pt->o, t->n.dtype, t->o_alloc);
        t_fill_poison(pt->lse, CLATTN_F32, t->lse_n);
    }
    t_rng rng;
    t_rng_seed(&rng, 0x3e59e000u + (uint64_t)r->nparts);
    draw_cuts(r, &rng);
    for (int j = 0; j < r->nparts; j++) {
        part *pt = &r->parts[j];
        pt->d_start = buffer_from(c, sizeof(int32_t) * (size_t)B, pt->start);
        pt->d_len = buffer_from(c, sizeof(int32_t) * (size_t)B, pt->len);
        pt->d_o = buffer_from(c, (size_t)t->o_alloc * t->esz, pt->o);
        pt->d_lse = buffer_from(c, sizeof(float) * (size_t)t->lse_n, pt->lse);
        if (!pt->d_start || !pt->d_len || !pt->d_o || !pt->d_lse)
            return -1;
    }
    return 0;
}

static void parts_free(run *r)
{
    for (int j = 0; r->parts && j < r->nparts; j++) {
        part *pt = &r->parts[j];
        free(pt->start);
        free(pt->len);
        free(pt->o);
        free(pt->lse);
        t_keep_until_end(&pt->d_start);
        t_keep_until_end(&pt->d_len);
        t_keep_until_end(&pt->d_o);
        t_keep_until_end(&pt->d_lse);
    }
    free(r->parts);
    r->parts = NULL;
}

/* Part j through clattn_forward: the whole problem with kv_start. */
static int forward_part(clattn_context *ctx, run *r, int j)
{
    part *pt = &r->parts[j];
    clattn_problem p = r->t.p;
    p.kv_start = 1;
    clattn_buffers b = r->b;
    b.o = pt->d_o;
    b.lse = pt->d_lse;
    b.kv_lens = pt->d_len;
    b.kv_start = pt->d_start;
    cl_event ev = NULL;
    clattn_status st = clattn_forward(ctx, &p, &b, 0, NULL, &ev);
    if (st != CLATTN_OK) {
        T_FAIL("%s: clattn_forward of part %d -> %s: %s", r->label, j, clattn_status_string(st),
               clattn_last_error(ctx));
        return -1;
    }
    T_CL(clWaitForEvents(1, &ev));
    clReleaseEvent(ev);
    return 0;
}

/* Reads part j back and plants NaN in the O rows of LSE -inf: the merge must
 * never read them (and still ends with the exact result). */
static int read_and_plant(cl_command_queue q, run *r, int j, long *planted)
{
    const int before = t_failures;
    const t_tensors *t = &r->t;
    const clattn_problem *n = &t->n;
    part *pt = &r->parts[j];
    const size_t obytes = (size_t)t->o_alloc * t->esz;
    T_CL(clEnqueueReadBuffer(q, pt->d_o, CL_TRUE, 0, obytes, pt->o, 0, NULL, NULL));
    T_CL(clEnqueueReadBuffer(q, pt->d_lse, CL_TRUE, 0, sizeof(float) * (size_t)t->lse_n,
                             pt->lse, 0, NULL, NULL));
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++) {
                if (pt->lse[((int64_t)b * n->heads + h) * n->seq_q + i] != -INFINITY)
                    continue;
                for (int d = 0; d < n->head_dim_v; d++)
                    ref_store(pt->o, n->dtype, o_row(n, b, h, i) + d, NAN);
                ++*planted;
            }
    T_CL(clEnqueueWriteBuffer(q, pt->d_o, CL_TRUE, 0, obytes, pt->o, 0, NULL, NULL));
    return t_failures != before ? -1 : 0;
}

/* The merge of the stored parts in double: the merge's exact answer for
 * the inputs it was given. mag: sum_p w_p |O_p| / sum_p w_p per element,
 * the scale of the fp32 rounding a merge may add. */
static void exact_merge(const run *r, int b, int h, int i, double *o, double *lse, double *mag)
{
    const clattn_problem *n = &r->t.n;
    const int64_t x = ((int64_t)b * n->heads + h) * n->seq_q + i, off = o_row(n, b, h, i);
    double m = -INFINITY;
    for (int j = 0; j < r->nparts; j++)
        m = isnan(r->parts[j].lse[x]) || isnan(m) ? NAN : fmax(m, r->parts[j].lse[x]);
    for (int d = 0; d < n->head_dim_v; d++)
        o[d] = mag[d] = isnan(m) ? NAN : 0.0;
    if (isnan(m) || m == -INFINITY) {
        *lse = m;
        return;
    }
    double sum = 0.0;
    for (int j = 0; j < r->nparts; j++) {
        const double l = r->parts[j].lse[x];
        if (l == -INFINITY)
            continue;
        const double w = exp(l - m);
        sum += w;
        for (int d = 0; d < n->head_dim_v; d++) {
            const double v = ref_load(r->parts[j].o, n->dtype, off + d);
            o[d] += w * v;
            mag[d] += w * fabs(v);
        }
    }
    for (int d = 0; d < n->head_dim_v; d++) {
        o[d] /= sum;
        mag[d] /= sum;
    }
    *lse = m + log(sum);
}

static int same_value(double got, double want)
{
    return (isnan(got) && isnan(want)) || got == want;
}

/* The merge's output row against exact_merge: within half a unit of the
 * dtype plus fp32 rounding, rows of no key exactly 0 and -inf. */
static int check_exact_row(const run *r, const void *got_o, const float *got_lse, int b, int h,
                           int i)
{
    const clattn_problem *n = &r->t.n;
    const int Dv = n->head_dim_v;
    double want[512], mag[512], lse;
    exact_merge(r, b, h, i, want, &lse, mag);
    const int64_t x = ((int64_t)b * n->heads + h) * n->seq_q + i, off = o_row(n, b, h, i);
    int bad = 0;
    for (int d = 0; d < Dv; d++) {
        const double got = ref_load(got_o, n->dtype, off + d);
        const double bound = isfinite(want[d])
                                 ? 0.5 * ref_ulp(n->dtype, want[d]) + 4e-6 * mag[d] + 1e-30
                                 : 0.0;
        const int ok = isfinite(want[d]) ? fabs(got - want[d]) <= bound
                                         : same_value(got, want[d]);
        if (!ok && bad++ == 0)
            T_FAIL("%s: O b%d h%d i%d d%d = %.9g, exact merge %.9g (bound %.3g)", r->label, b, h,
                   i, d, got, want[d], bound);
    }
    const double gl = got_lse[x];
    const int lse_ok = isfinite(lse) ? fabs(gl - lse) <= 2e-6 * fmax(1.0, fabs(lse))
                                     : same_value(gl, lse);
    if (!lse_ok && bad++ == 0)
        T_FAIL("%s: LSE b%d h%d i%d = %.9g, exact merge %.9g", r->label, b, h, i, gl, lse);
    return bad;
}

/* Bytes of O outside the view and the LSE guard keep their poison. */
static void check_untouched(const run *r, const void *got_o, const float *got_lse,
                            const void *o_init)
{
    const t_tensors *t = &r->t;
    const clattn_problem *n = &t->n;
    unsigned char *in_view = calloc((size_t)t->o_alloc, 1);
    if (!in_view) {
        T_FAIL("out of host memory");
        return;
    }
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++)
                memset(in_view + o_row(n, b, h, i), 1, (size_t)n->head_dim_v);
    long changed = 0;
    for (int64_t e = 0; e < t->o_alloc; e++)
        changed += !in_view[e] && memcmp((const char *)got_o + e * (int64_t)t->esz,
                                         (const char *)o_init + e * (int64_t)t->esz, t->esz);
    T_CHECK(changed == 0, "%s: %ld O elements outside the view were written", r->label, changed);
    T_CHECK(t_same_bytes(got_lse + t->lse_n, t->lse + t->lse_n, sizeof(float) * T_GUARD),
            "%s: the LSE guard was written", r->label);
    free(in_view);
}

/* The merge against one clattn_forward over all the keys: both within
 * their rounding of the same attention (each part's O was rounded once
 * more, hence a unit of the dtype). */
static void check_against_full(const run *r, const void *got_o, const float *got_lse,
                               const void *full_o, const float *full_lse, double atol)
{
    const clattn_problem *n = &r->t.n;
    long bad = 0;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++) {
                const int64_t x = ((int64_t)b * n->heads + h) * n->seq_q + i;
                const int64_t off = o_row(n, b, h, i);
                for (int d = 0; d < n->head_dim_v; d++) {
                    const double g = ref_load(got_o, n->dtype, off + d);
                    const double f = ref_load(full_o, n->dtype, off + d);
                    bad += !(fabs(g - f) <= 1.5 * ref_ulp(n->dtype, f) + atol);
                }
                const double gl = got_lse[x], fl = full_lse[x];
                bad += isfinite(fl) ? !(fabs(gl - fl) <= 1e-5 * fmax(1.0, fabs(fl)))
                                    : !same_value(gl, fl);
            }
    T_CHECK(bad == 0, "%s: %ld values differ from one clattn_forward over all keys", r->label,
            bad);
}

/* The reference's tolerance widened by the parts' own rounding to the
 * dtype (up to half a unit of each part's O, summed with weights <= 1). */
static t_tolerance merged_tolerance(clattn_dtype dt)
{
    t_tolerance tol = t_tolerance_for(dt);
    tol.rel_l2 *= 2.0;
    tol.elem_ulps += 1.0;
    tol.elem_atol = dt == CLATTN_F32 ? 1e-5 : dt == CLATTN_F16 ? 1e-3 : 8e-3;
    return tol;
}

typedef struct merged {
    void *o;
    float *lse;
} merged;

/* clattn_merge gated by a user event: nothing may run before it is set. */
static int merge_gated(clattn_context *ctx, run *r, cl_mem o, cl_mem lse, const cl_mem *po,
                       const cl_mem *pl, cl_command_queue side)
{
    cl_int err = CL_SUCCESS;
    cl_event uev = clCreateUserEvent(t_cl_context(ctx), &err);
    T_CHECK(err == CL_SUCCESS, "clCreateUserEvent -> %d", (int)err);
    if (err != CL_SUCCESS)
        return -1;
    cl_event done = NULL;
    clattn_status st = clattn_merge(ctx, &r->mp, po, pl, o, lse, 1, &uev, &done);
    if (st != CLATTN_OK || !done) {
        T_FAIL("%s: clattn_merge -> %s (done %p): %s", r->label, clattn_status_string(st),
               (void *)done, clattn_last_error(ctx));
        clSetUserEventStatus(uev, CL_COMPLETE);
        clReleaseEvent(uev);
        return -1;
    }
    sleep_ms(20);
    cl_int es = -1;
    T_CL(clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof es, &es, NULL));
    T_CHECK(es != CL_COMPLETE && es >= 0, "%s: done status %d before the user event was set",
            r->label, (int)es);
    const t_tensors *t = &r->t;
    void *now = malloc((size_t)t->o_alloc * t->esz);
    if (now) {
        T_CL(clEnqueueReadBuffer(side, o, CL_TRUE, 0, (size_t)t->o_alloc * t->esz, now, 0, NULL,
                                 NULL));
        T_CHECK(t_same_bytes(now, t->o_init, (size_t)t->o_alloc * t->esz),
                "%s: O was written before the user event was set", r->label);
        free(now);
    }
    T_CL(clSetUserEventStatus(uev, CL_COMPLETE));
    T_CL(clWaitForEvents(1, &done));
    clReleaseEvent(done);
    clReleaseEvent(uev);
    return 0;
}

/* A merge into fresh poisoned outputs, read back into m. */
static int merge_into(clattn_context *ctx, run *r, merged *m, int gated, cl_command_queue side)
{
    const t_tensors *t = &r->t;
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    const size_t obytes = (size_t)t->o_alloc * t->esz;
    const size_t lbytes = sizeof(float) * (size_t)(t->lse_n + T_GUARD);
    cl_mem o = buffer_from(c, obytes, t->o_init);
    cl_mem lse = buffer_from(c, lbytes, t->lse); /* still the poison: forwards used b.lse */
    cl_mem *po = malloc(sizeof(cl_mem) * (size_t)r->nparts);
    cl_mem *pl = malloc(sizeof(cl_mem) * (size_t)r->nparts);
    int rc = -1;
    if (o && lse && po && pl) {
        for (int j = 0; j < r->nparts; j++) {
            po[j] = r->parts[j].d_o;
            pl[j] = r->parts[j].d_lse;
        }
        if (gated) {
            rc = merge_gated(ctx, r, o, lse, po, pl, side);
        } else {
            clattn_status st = clattn_merge(ctx, &r->mp, po, pl, o, lse, 0, NULL, NULL);
            T_CHECK(st == CLATTN_OK, "%s: clattn_merge -> %s: %s", r->label,
                    clattn_status_string(st), clattn_last_error(ctx));
            rc = st == CLATTN_OK ? 0 : -1;
            T_CL(clFinish(q));
        }
    }
    if (rc == 0) {
        T_CL(clEnqueueReadBuffer(q, o, CL_TRUE, 0, obytes, m->o, 0, NULL, NULL));
        T_CL(clEnqueueReadBuffer(q, lse, CL_TRUE, 0, lbytes, m->lse, 0, NULL, NULL));
    }
    free(po);
    free(pl);
    t_keep_until_end(&o);
    t_keep_until_end(&lse);
    return rc;
}

/* The full forward over all keys, into full. */
static int forward_full(clattn_context *ctx, run *r, merged *full)
{
    const int before = t_failures;
    cl_event ev = NULL;
    clattn_status st = clattn_forward(ctx, &r->t.p, &r->b, 0, NULL, &ev);
    if (st != CLATTN_OK) {
        T_FAIL("%s: clattn_forward (all keys) -> %s: %s", r->label, clattn_status_string(st),
               clattn_last_error(ctx));
        return -1;
    }
    T_CL(clWaitForEvents(1, &ev));
    clReleaseEvent(ev);
    cl_command_queue q = t_queue(ctx);
    T_CL(clEnqueueReadBuffer(q, r->b.o, CL_TRUE, 0, (size_t)r->t.o_alloc * r->t.esz, full->o, 0,
                             NULL, NULL));
    T_CL(clEnqueueReadBuffer(q, r->b.lse, CL_TRUE, 0, sizeof(float) * (size_t)r->t.lse_n,
                             full->lse, 0, NULL, NULL));
    return t_failures != before ? -1 : 0;
}

/* Every row against the exact merge; returns the rows that failed. */
static long check_exact(const run *r, const merged *m)
{
    const clattn_problem *n = &r->t.n;
    long bad = 0;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++)
                bad += check_exact_row(r, m->o, m->lse, b, h, i) != 0;
    return bad;
}

/* With one part the merge is a copy: every row that saw a key bit for bit. */
static void check_single_copy(const run *r, const merged *m)
{
    const clattn_problem *n = &r->t.n;
    const part *pt = &r->parts[0];
    long bad = 0;
    for (int b = 0; b < n->batch; b++)
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < n->seq_q; i++) {
                const int64_t x = ((int64_t)b * n->heads + h) * n->seq_q + i;
                if (pt->lse[x] == -INFINITY)
                    continue;
                const size_t off = (size_t)o_row(n, b, h, i) * r->t.esz;
                bad += !t_same_bytes((const char *)m->o + off, (const char *)pt->o + off,
                                     (size_t)n->head_dim_v * r->t.esz) ||
                       !t_same_bytes(&m->lse[x], &pt->lse[x], sizeof(float));
            }
    T_CHECK(bad == 0, "%s: %ld rows of a one-part merge are not a copy of the part", r->label,
            bad);
}

/* Part j's LSE from its host copy, whole: Oclgrind 21.10 marks a buffer's
 * every byte uninitialised after a write of a part of it. */
static void write_lse(clattn_context *ctx, const run *r, int j)
{
    T_CL(clEnqueueWriteBuffer(t_queue(ctx), r->parts[j].d_lse, CL_TRUE, 0,
                              sizeof(float) * (size_t)r->t.lse_n, r->parts[j].lse, 0, NULL,
                              NULL));
}

/* A NaN LSE in one part: that row NaN (O and LSE), every other row exactly
 * as before. */
static void check_nan_lse(clattn_context *ctx, run *r, const merged *before, merged *m)
{
    const clattn_problem *n = &r->t.n;
    const int b = 2, h = 1, i = 3, j = r->nparts - 1;
    const int64_t x = ((int64_t)b * n->heads + h) * n->seq_q + i;
    const float keep = r->parts[j].lse[x];
    r->parts[j].lse[x] = NAN;
    write_lse(ctx, r, j);
    if (merge_into(ctx, r, m, 0, NULL) == 0) {
        long nan_o = 0;
        for (int d = 0; d < n->head_dim_v; d++)
            nan_o += isnan(ref_load(m->o, n->dtype, o_row(n, b, h, i) + d));
        T_CHECK(nan_o == n->head_dim_v && isnan(m->lse[x]),
                "%s: NaN LSE in part %d: %ld of %d O values NaN, LSE %g", r->label, j, nan_o,
                n->head_dim_v, (double)m->lse[x]);
        long changed = 0;
        for (int bb = 0; bb < n->batch; bb++)
            for (int hh = 0; hh < n->heads; hh++)
                for (int ii = 0; ii < n->seq_q; ii++) {
                    const int64_t xx = ((int64_t)bb * n->heads + hh) * n->seq_q + ii;
                    const size_t off = (size_t)o_row(n, bb, hh, ii) * r->t.esz;
                    if (xx == x)
                        continue;
                    changed += !t_same_bytes((const char *)m->o + off,
                                             (const char *)before->o + off,
                                             (size_t)n->head_dim_v * r->t.esz) ||
                               !t_same_bytes(&m->lse[xx], &before->lse[xx], sizeof(float));
                }
        T_CHECK(changed == 0, "%s: a NaN LSE in one row changed %ld other rows", r->label,
                changed);
        check_untouched(r, m->o, m->lse, r->t.o_init);
    }
    r->parts[j].lse[x] = keep;
    write_lse(ctx, r, j);
}

/* Rows where only some parts saw keys, and rows where none did. */
static void count_rows(const run *r, long *partial, long *none)
{
    const clattn_problem *n = &r->t.n;
    *partial = *none = 0;
    for (int64_t x = 0; x < (int64_t)n->batch * n->heads * n->seq_q; x++) {
        int empty = 0;
        for (int j = 0; j < r->nparts; j++)
            empty += r->parts[j].lse[x] == -INFINITY;
        *partial += empty > 0 && empty < r->nparts;
        *none += empty == r->nparts;
    }
}

static void verify_merge(const run *r, const merged *m, const merged *full, long planted)
{
    const t_tensors *t = &r->t;
    const long bad_rows = check_exact(r, m);
    check_untouched(r, m->o, m->lse, t->o_init);
    if (r->nparts == 1)
        check_single_copy(r, m);
    const t_tolerance tol = merged_tolerance(t->n.dtype);
    check_against_full(r, m->o, m->lse, full->o, full->lse, tol.elem_atol);
    clattn_host_buffers hb = t_tensors_host(t);
    hb.o = NULL;
    hb.lse = NULL;
    t_result res = t_verify_raw(r->label, &t->p, &hb, m->o, t->o_init, t->o_alloc, m->lse,
                                t->lse_n + T_GUARD, tol);
    long partial, none;
    count_rows(r, &partial, &none);
    T_CHECK((partial > 0 || r->nparts == 1) && none > 0,
            "%s: the cuts left no row with empty parts (%ld) or without keys (%ld)", r->label,
            partial, none);
    t_log("%s %s: exact-merge rows bad %ld, vs reference relL2 %.2e elem %.2f lse %.1e, rows "
          "with empty parts %ld, without keys %ld, NaN rows planted %ld",
          bad_rows || res.fails ? "BAD " : "ok  ", r->label, bad_rows, res.rel_l2, res.elem_use,
          res.lse_err, partial, none, planted);
}

static void merge_case(clattn_context *ctx, clattn_dtype dt, int nparts, cl_command_queue side)
{
    run r;
    memset(&r, 0, sizeof r);
    const int strided = nparts % 2 == 1;
    snprintf(r.label, sizeof r.label, "merge %s P=%d %s", t_dtype_name(dt), nparts,
             strided ? "strided" : "packed");
    if (run_problem(&r, dt, strided, 0x3e5e0000u + (uint64_t)nparts * 7u + (uint64_t)dt) != 0)
        return;
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    merged m = {malloc((size_t)r.t.o_alloc * r.t.esz),
                malloc(sizeof(float) * (size_t)(r.t.lse_n + T_GUARD))};
    merged m2 = {malloc((size_t)r.t.o_alloc * r.t.esz),
                 malloc(sizeof(float) * (size_t)(r.t.lse_n + T_GUARD))};
    merged full = {malloc((size_t)r.t.o_alloc * r.t.esz),
                   malloc(sizeof(float) * (size_t)r.t.lse_n)};
    r.nparts = nparts;
    r.parts = calloc((size_t)nparts, sizeof(part));
    T_CHECK(m.o && m.lse && m2.o && m2.lse && full.o && full.lse && r.parts,
            "out of host memory");
    cl_int err = t_dev_create(c, &r.t, &r.b);
    T_CHECK(err == CL_SUCCESS, "creating the device buffers -> %d", (int)err);
    int ok = m.o && m.lse && m2.o && m2.lse && full.o && full.lse && r.parts &&
             err == CL_SUCCESS && parts_alloc(&r, c) == 0;
    long planted = 0;
    for (int j = 0; ok && j < nparts; j++)
        ok = forward_part(ctx, &r, j) == 0 && read_and_plant(q, &r, j, &planted) == 0;
    ok = ok && forward_full(ctx, &r, &full) == 0;
    memset(&r.mp, 0, sizeof r.mp);
    r.mp.batch = r.t.n.batch;
    r.mp.heads = r.t.n.heads;
    r.mp.seq_q = r.t.n.seq_q;
    r.mp.head_dim_v = r.t.n.head_dim_v;
    r.mp.dtype = dt;
    r.mp.num_parts = nparts;
    r.mp.o_strides = r.t.p.o_strides; /* zero (packed) or the strided layout */
    if (ok && merge_into(ctx, &r, &m, side != NULL, side) == 0) {
        verify_merge(&r, &m, &full, planted);
        check_nan_lse(ctx, &r, &m, &m2);
    }
    parts_free(&r);
    cl_mem *made[6] = {&r.b.q, &r.b.k, &r.b.v, &r.b.o, &r.b.kv_lens, &r.b.lse};
    for (int i = 0; i < 6; i++)
        t_keep_until_end(made[i]);
    free(m.o);
    free(m.lse);
    free(m2.o);
    free(m2.lse);
    free(full.o);
    free(full.lse);
    t_tensors_free(&r.t);
}

void case_merge(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    const int counts[5] = {1, 2, 3, 9, 17};
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 5; k++) {
            /* the buffers kept from a run belong to its context */
            t_release_kept();
            if (t_context_between_runs(&ctx) != 0)
                return;
            cl_device_id dev = NULL;
            clattn_context_get_cl(ctx, NULL, NULL, &dev);
            cl_int err = CL_SUCCESS;
            cl_command_queue side = clCreateCommandQueue(t_cl_context(ctx), dev, 0, &err);
            T_CHECK(err == CL_SUCCESS, "clCreateCommandQueue(side) -> %d", (int)err);
            merge_case(ctx, k_dtypes[d], counts[k], side);
            if (side)
                clReleaseCommandQueue(side);
        }
    t_release_kept();
    clattn_context_destroy(ctx);
}

/* ==== merge_errors ======================================================== */

enum { E_PARTS = 3 };

typedef struct env {
    clattn_context *ctx;
    cl_context c;
    cl_command_queue q;
    clattn_merge_problem mp;
    size_t o_bytes, lse_bytes;
    cl_mem po[E_PARTS], pl[E_PARTS];
    cl_mem o, lse;
    void *o_init, *lse_init;
    cl_mem extra[8];
    int n_extra;
    cl_context other;
} env;

static cl_mem env_keep(env *e, cl_mem m)
{
    if (m && e->n_extra < 8)
        e->extra[e->n_extra++] = m;
    return m;
}

/* A buffer of n bytes of the fp32 poison. */
static cl_mem env_buffer(cl_context c, size_t n)
{
    void *tmp = malloc(n + 4);
    if (!tmp) {
        T_FAIL("out of host memory");
        return NULL;
    }
    t_fill_poison(tmp, CLATTN_F32, (int64_t)(n / 4 + 1));
    cl_mem m = buffer_from(c, n, tmp);
    free(tmp);
    return m;
}

static cl_mem env_sub(env *e, cl_mem parent, size_t origin, size_t size)
{
    cl_int err = CL_SUCCESS;
    cl_buffer_region reg = {origin, size};
    cl_mem m = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &reg,
                                 &err);
    T_CHECK(err == CL_SUCCESS, "clCreateSubBuffer(%zu, %zu) -> %d", origin, size, (int)err);
    return env_keep(e, m);
}

static int env_init(env *e)
{
    memset(e, 0, sizeof *e);
    e->ctx = t_context();
    if (!e->ctx)
        return -1;
    e->c = t_cl_context(e->ctx);
    e->q = t_queue(e->ctx);
    clattn_merge_problem *p = &e->mp;
    p->batch = 2;
    p->heads = 2;
    p->seq_q = 3;
    p->head_dim_v = 8;
    p->dtype = CLATTN_F32;
    p->num_parts = E_PARTS;
    e->o_bytes = (size_t)2 * 2 * 3 * 8 * sizeof(float);
    e->lse_bytes = (size_t)2 * 2 * 3 * sizeof(float);
    for (int j = 0; j < E_PARTS; j++) {
        e->po[j] = env_buffer(e->c, e->o_bytes);
        e->pl[j] = env_buffer(e->c, e->lse_bytes);
    }
    e->o = env_buffer(e->c, e->o_bytes);
    e->lse = env_buffer(e->c, e->lse_bytes);
    e->o_init = malloc(e->o_bytes + 4);
    e->lse_init = malloc(e->lse_bytes + 4);
    if (!e->o || !e->lse || !e->o_init || !e->lse_init)
        return -1;
    t_fill_poison(e->o_init, CLATTN_F32, (int64_t)(e->o_bytes / 4 + 1));
    t_fill_poison(e->lse_init, CLATTN_F32, (int64_t)(e->lse_bytes / 4 + 1));
    return 0;
}

static void env_free(env *e)
{
    while (e->n_extra > 0) /* sub-buffers were made after their parents: reverse */
        clReleaseMemObject(e->extra[--e->n_extra]);
    for (int j = 0; j < E_PARTS; j++) {
        release(&e->po[j]);
        release(&e->pl[j]);
    }
    release(&e->o);
    release(&e->lse);
    free(e->o_init);
    free(e->lse_init);
    if (e->other)
        clReleaseContext(e->other);
    if (e->ctx)
        clattn_context_destroy(e->ctx);
}

/* The arguments of one call, starting from the valid baseline. */
typedef struct call {
    clattn_context *ctx;
    const clattn_merge_problem *problem;
    clattn_merge_problem mp;
    const cl_mem *po, *pl;
    cl_mem po_v[E_PARTS], pl_v[E_PARTS];
    cl_mem o, lse;
    cl_uint num_wait;
    const cl_event *wait;
} call;

static call baseline(const env *e)
{
    call c;
    memset(&c, 0, sizeof c);
    c.ctx = e->ctx;
    c.mp = e->mp;
    for (int j = 0; j < E_PARTS; j++) {
        c.po_v[j] = e->po[j];
        c.pl_v[j] = e->pl[j];
    }
    c.o = e->o;
    c.lse = e->lse;
    return c;
}

static clattn_status do_call(call *c, cl_event *done)
{
    return clattn_merge(c->ctx, c->problem ? c->problem : &c->mp, c->po ? c->po : c->po_v,
                        c->pl ? c->pl : c->pl_v, c->o, c->lse, c->num_wait, c->wait, done);
}

/* The call must be refused as an invalid argument, name `word` in its
 * message and hand back no event. */
static void expect_refused(env *e, const char *what, call *c, const char *word)
{
    cl_event done = (cl_event)(uintptr_t)1; /* must come back NULL */
    clattn_status st = do_call(c, &done);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s: clattn_merge -> %s, expected invalid "
            "argument", what, clattn_status_string(st));
    T_CHECK(done == NULL, "%s: done is not NULL after a failure", what);
    if (done != NULL && done != (cl_event)(uintptr_t)1)
        clReleaseEvent(done);
    if (!c->ctx)
        return;
    const char *msg = clattn_last_error(e->ctx);
    T_CHECK(msg && strstr(msg, word), "%s: the message '%s' does not name '%s'", what,
            msg ? msg : "(null)", word);
}

static void refuse_problem_fields(env *e)
{
    call c = baseline(e);
    c.ctx = NULL;
    expect_refused(e, "NULL context", &c, "");
    c = baseline(e);
    c.problem = NULL;
    {
        cl_event done = (cl_event)(uintptr_t)1;
        clattn_status st = clattn_merge(e->ctx, NULL, c.po_v, c.pl_v, c.o, c.lse, 0, NULL, &done);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && done == NULL,
                "NULL problem: -> %s, done %p", clattn_status_string(st), (void *)done);
        T_CHECK(strstr(clattn_last_error(e->ctx), "problem") != NULL,
                "NULL problem: message '%s'", clattn_last_error(e->ctx));
    }
    const struct {
        const char *what, *word;
        int field; /* 0 batch, 1 heads, 2 seq_q, 3 head_dim_v, 4 dtype, 5 num_parts */
        int value;
    } bad[] = {
        {"batch 0", "batch", 0, 0},        {"heads -1", "heads", 1, -1},
        {"seq_q 0", "seq_q", 2, 0},        {"head_dim_v 0", "head_dim_v", 3, 0},
        {"head_dim_v 513", "head_dim_v", 3, 513}, {"dtype 3", "dtype", 4, 3},
        {"dtype -1", "dtype", 4, -1},      {"num_parts 0", "num_parts", 5, 0},
        {"num_parts 1025", "num_parts", 5, 1025},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        c = baseline(e);
        int *fields[6] = {&c.mp.batch, &c.mp.heads, &c.mp.seq_q, &c.mp.head_dim_v, NULL,
                          &c.mp.num_parts};
        if (bad[k].field == 4)
            c.mp.dtype = (clattn_dtype)bad[k].value;
        else
            *fields[bad[k].field] = bad[k].value;
        expect_refused(e, bad[k].what, &c, bad[k].word);
    }
    for (int k = 0; k < 4; k++) {
        c = baseline(e);
        c.mp.reserved[k] = 1;
        expect_refused(e, "reserved", &c, "reserved");
    }
    c = baseline(e);
    c.mp.batch = 1 << 20;
    c.mp.heads = 1 << 12;
    expect_refused(e, "batch * heads beyond 32 bits", &c, "batch * heads");
}

static void refuse_strides(env *e)
{
    const struct {
        const char *what;
        clattn_strides s;
    } bad[] = {
        {"negative seq stride", {48, 24, -8}},
        {"seq stride inside a row", {48, 24, 7}},
        {"zero head stride", {48, 0, 8}},
        {"head interleaved with seq", {48, 12, 16}},
        {"batch overlapping heads", {40, 24, 8}},
        {"offsets beyond 64 bits", {INT64_MAX / 2, 24, 8}},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        call c = baseline(e);
        c.mp.o_strides = bad[k].s;
        expect_refused(e, bad[k].what, &c, "o_strides");
    }
}

static void refuse_buffers(env *e)
{
    call c = baseline(e);
    c.po = NULL;
    {
        cl_event done = NULL;
        clattn_status st = clattn_merge(e->ctx, &c.mp, NULL, c.pl_v, c.o, c.lse, 0, NULL, &done);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(e->ctx), "o_parts"),
                "NULL o_parts -> %s: %s", clattn_status_string(st), clattn_last_error(e->ctx));
        st = clattn_merge(e->ctx, &c.mp, c.po_v, NULL, c.o, c.lse, 0, NULL, &done);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT &&
                    strstr(clattn_last_error(e->ctx), "lse_parts"),
                "NULL lse_parts -> %s: %s", clattn_status_string(st), clattn_last_error(e->ctx));
    }
    c = baseline(e);
    c.po_v[1] = NULL;
    expect_refused(e, "o_parts[1] NULL", &c, "o_parts[1]");
    c = baseline(e);
    c.pl_v[2] = NULL;
    expect_refused(e, "lse_parts[2] NULL", &c, "lse_parts[2]");
    c = baseline(e);
    c.o = NULL;
    expect_refused(e, "o NULL", &c, "o is NULL");

    /* one element short, each kind of buffer */
    cl_mem short_o = env_keep(e, env_buffer(e->c, e->o_bytes - 4));
    cl_mem short_l = env_keep(e, env_buffer(e->c, e->lse_bytes - 4));
    c = baseline(e);
    c.po_v[0] = short_o;
    expect_refused(e, "o_parts[0] too small", &c, "o_parts[0]");
    c = baseline(e);
    c.pl_v[1] = short_l;
    expect_refused(e, "lse_parts[1] too small", &c, "lse_parts[1]");
    c = baseline(e);
    c.o = short_o;
    expect_refused(e, "o too small", &c, "o is");
    c = baseline(e);
    c.lse = short_l;
    expect_refused(e, "lse too small", &c, "lse is");
    /* strided O needs the strides' extent */
    c = baseline(e);
    c.mp.o_strides.seq = 9;
    c.mp.o_strides.head = 27;
    c.mp.o_strides.batch = 54;
    expect_refused(e, "strided O in packed-sized buffers", &c, "o_parts[0]");
}

static void refuse_foreign_and_overlap(env *e)
{
    cl_device_id dev = NULL;
    clattn_context_get_cl(e->ctx, NULL, NULL, &dev);
    cl_int err = CL_SUCCESS;
    e->other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateContext -> %d", (int)err);
    if (e->other) {
        cl_mem foreign = env_keep(e, env_buffer(e->other, e->o_bytes));
        call c = baseline(e);
        c.po_v[2] = foreign;
        expect_refused(e, "o_parts[2] of another context", &c, "another cl_context");
        c = baseline(e);
        c.o = foreign;
        expect_refused(e, "o of another context", &c, "another cl_context");
    }
    call c = baseline(e);
    c.o = e->po[1];
    expect_refused(e, "o is o_parts[1]", &c, "overlaps o_parts[1]");
    c = baseline(e);
    c.lse = e->pl[0];
    expect_refused(e, "lse is lse_parts[0]", &c, "overlaps lse_parts[0]");
    c = baseline(e);
    c.lse = e->po[2];
    expect_refused(e, "lse inside o_parts[2]", &c, "overlaps o_parts[2]");
    c = baseline(e);
    c.lse = e->o;
    expect_refused(e, "o and lse the same buffer", &c, "o and lse overlap");

    /* sub-buffers of one parent: compared by their offsets */
    cl_uint align_bits = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
    const size_t align = align_bits >= 8 ? align_bits / 8 : 128;
    const size_t slot = (e->o_bytes + align - 1) / align * align;
    cl_mem parent = env_keep(e, env_buffer(e->c, 3 * slot));
    if (!parent)
        return;
    cl_mem a = env_sub(e, parent, 0, e->o_bytes);
    cl_mem a2 = env_sub(e, parent, 0, slot + e->o_bytes); /* overlaps a */
    cl_mem b = env_sub(e, parent, 2 * slot, e->o_bytes);  /* overlaps neither of them */
    if (!a || !a2 || !b)
        return;
    c = baseline(e);
    c.po_v[0] = a;
    c.o = a2;
    expect_refused(e, "o sub-buffer over o_parts[0]'s", &c, "overlaps o_parts[0]");
    c = baseline(e);
    c.po_v[0] = a;
    c.po_v[1] = a2; /* parts may share bytes: they are only read */
    c.o = b;
    cl_event done = NULL;
    clattn_status st = do_call(&c, &done);
    T_CHECK(st == CLATTN_OK && done, "disjoint sub-buffers -> %s: %s",
            clattn_status_string(st), clattn_last_error(e->ctx));
    if (done) {
        T_CL(clWaitForEvents(1, &done));
        clReleaseEvent(done);
    }
}

static void refuse_wait(env *e)
{
    call c = baseline(e);
    c.num_wait = 1;
    expect_refused(e, "num_wait 1, wait NULL", &c, "wait");
    cl_event none[1] = {NULL};
    c = baseline(e);
    c.num_wait = 1;
    c.wait = none;
    expect_refused(e, "wait[0] NULL", &c, "wait[0]");
}

/* The outputs as they were before any refused call. */
static void check_outputs_untouched(env *e)
{
    T_CL(clFinish(e->q));
    void *o = malloc(e->o_bytes), *lse = malloc(e->lse_bytes);
    if (o && lse) {
        T_CL(clEnqueueReadBuffer(e->q, e->o, CL_TRUE, 0, e->o_bytes, o, 0, NULL, NULL));
        T_CL(clEnqueueReadBuffer(e->q, e->lse, CL_TRUE, 0, e->lse_bytes, lse, 0, NULL, NULL));
        T_CHECK(t_same_bytes(o, e->o_init, e->o_bytes), "a refused call wrote O");
        T_CHECK(t_same_bytes(lse, e->lse_init, e->lse_bytes), "a refused call wrote the LSE");
    }
    free(o);
    free(lse);
}

void case_merge_errors(void)
{
    env e;
    if (env_init(&e) == 0) {
        refuse_problem_fields(&e);
        refuse_strides(&e);
        refuse_buffers(&e);
        refuse_wait(&e);
        refuse_foreign_and_overlap(&e);
        check_outputs_untouched(&e);
        /* and the baseline itself runs */
        call c = baseline(&e);
        cl_event done = NULL;
        clattn_status st = do_call(&c, &done);
        T_CHECK(st == CLATTN_OK && done, "the valid baseline -> %s: %s",
                clattn_status_string(st), clattn_last_error(e.ctx));
        if (done) {
            T_CL(clWaitForEvents(1, &done));
            clReleaseEvent(done);
        }
    }
    t_log("merge_errors: %d failed checks", t_failures);
    env_free(&e);
}
