/*
 * One attention on several devices (clattn.h, clattn_multi_forward_host).
 * The devices are the default device and, where the driver can cut it
 * (PoCL's CPU device can), two sub-devices of it made with
 * clCreateSubDevices: three contexts on different cl_device_ids.
 *   multi_random: random problems with every score feature, varlen packed
 *     batches, both causal alignments, windows, GQA, every dtype and path,
 *     cut by rows, keys (merged by LSE) and whole sequences, compared with
 *     ref_attention with the usual tolerances (plus the parts' rounding
 *     before a merge); outputs poisoned, gaps of a strided O checked.
 *   multi_paged: a paged KV cache (shuffled block table) cut by sequences.
 *   multi_kv: int8 K and int4 V (scales per group) cut by keys, rows and
 *     sequences.
 *   multi_weights: given weights size the parts by cost (1:3:4 gives an
 *     eighth of the rows to the first); without weights the speeds are
 *     measured once and then remembered by each context.
 *   multi_tuned: without weights, speeds come from each context's tuning db.
 *   multi_errors: invalid calls refused by name with the outputs untouched.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cases.h"
#include "harness.h"

enum { MAX_CTX = 3 };

typedef struct devices {
    clattn_context *ctx[MAX_CTX];
    int n;
    cl_device_id sub[2];
    cl_context cl[2];
    cl_command_queue q[2];
    int nsub;
} devices;

/* The default device's context and, where it can be partitioned, one per
 * sub-device; else a second context on the same device. */
static int devices_open_with(devices *d, const clattn_options *opts)
{
    memset(d, 0, sizeof *d);
    if (opts) {
        const clattn_status st = clattn_context_create(opts, &d->ctx[0]);
        T_CHECK(st == CLATTN_OK, "context: %s", clattn_status_string(st));
    } else {
        d->ctx[0] = t_context();
    }
    if (!d->ctx[0])
        return -1;
    d->n = 1;
    cl_device_id dev;
    clattn_context_get_cl(d->ctx[0], NULL, NULL, &dev);
    const cl_device_partition_property props[] = {CL_DEVICE_PARTITION_EQUALLY, 1, 0};
    cl_uint nsub = 0;
    if (clCreateSubDevices(dev, props, 2, d->sub, &nsub) == CL_SUCCESS && nsub >= 2) {
        d->nsub = 2;
        for (int i = 0; i < 2; ++i) {
            cl_int err;
            d->cl[i] = clCreateContext(NULL, 1, &d->sub[i], NULL, NULL, &err);
            T_CHECK(err == CL_SUCCESS, "clCreateContext (sub-device %d) -> %d", i, (int)err);
            if (err != CL_SUCCESS)
                return -1;
            d->q[i] = clCreateCommandQueue(d->cl[i], d->sub[i], 0, &err);
            T_CHECK(err == CL_SUCCESS, "clCreateCommandQueue (sub-device %d) -> %d", i, (int)err);
            if (err != CL_SUCCESS)
                return -1;
            const clattn_status st =
                clattn_context_create_from_queue(d->q[i], opts, &d->ctx[d->n]);
            T_CHECK(st == CLATTN_OK, "context on sub-device %d: %s", i, clattn_status_string(st));
            if (st != CLATTN_OK)
                return -1;
            d->n++;
        }
        t_log("contexts: the device and its 2 sub-devices");
    } else if (opts) {
        const clattn_status st = clattn_context_create(opts, &d->ctx[1]);
        T_CHECK(st == CLATTN_OK, "second context: %s", clattn_status_string(st));
        if (st != CLATTN_OK)
            return -1;
        d->n = 2;
    } else {
        d->ctx[1] = t_context();
        if (!d->ctx[1])
            return -1;
        d->n = 2;
        t_log("contexts: two on the one device (it cannot be partitioned)");
    }
    return 0;
}

static int devices_open(devices *d) { return devices_open_with(d, NULL); }

static void devices_close(devices *d)
{
    for (int i = 0; i < d->n; ++i)
        clattn_context_destroy(d->ctx[i]);
    for (int i = 0; i < d->nsub; ++i) {
        if (d->q[i])
            clReleaseCommandQueue(d->q[i]);
        if (d->cl[i])
            clReleaseContext(d->cl[i]);
        clReleaseDevice(d->sub[i]);
    }
    memset(d, 0, sizeof *d);
}

static const char *split_name(int s)
{
    static const char *names[] = {"auto", "rows", "keys", "batch"};
    return s >= 0 && s <= 3 ? names[s] : "?";
}

/* Runs t's problem over the contexts with the given cut and verifies it;
 * returns the failed checks. */
static int run_and_verify(devices *d, t_tensors *t, int split, const double *weights,
                          const char *what, clattn_multi_report *rep)
{
    t_tensors_poison(t);
    clattn_buffer_sizes z;
    t_tensors_sizes(t, &z);
    clattn_host_buffers h = t_tensors_host(t);
    h.sizes = &z;
    clattn_multi_options o = {split, weights, {0}};
    clattn_multi_report r;
    const clattn_status st = clattn_multi_forward_host(d->ctx, d->n, &t->p, &h, &o, &r);
    char label[400];
    snprintf(label, sizeof label, "%s split=%s", what, split_name(split));
    if (st != CLATTN_OK) {
        T_FAIL("%s: %s (%s)", label, clattn_status_string(st), clattn_last_error(d->ctx[0]));
        return 1;
    }
    t_tolerance tol = t_tolerance_for(t->p.dtype);
    if (r.split == CLATTN_SPLIT_KEYS && r.used > 1) {
        /* each part's O is rounded to the dtype before the merge rounds it
         * again: half an ulp of the output's scale per part */
        tol.elem_atol = fmax(tol.elem_atol, 0.5 * r.used * ldexp(1.0, -ref_mantissa_bits(t->p.dtype)));
        tol.rel_l2 *= r.used + 1;
    }
    const t_result res = t_verify(label, t, tol);
    char shares[128] = "";
    for (int i = 0, at = 0; i < d->n && at < (int)sizeof shares; ++i)
        at += snprintf(shares + at, sizeof shares - (size_t)at, "%s%lld", i ? ":" : "",
                       (long long)r.share[i]);
    t_log("%s %s -> %s %s (rel L2 %.2g)", res.fails ? "FAIL" : "ok", label,
          split_name(r.split), shares, res.rel_l2);
    if (rep)
        *rep = r;
    return res.fails;
}

static void varlen_without_keys(devices *d);

/* ==== multi_random ========================================================== */

static int pick(t_rng *r, int percent) { return t_rng_int(r, 0, 99) < percent; }

void case_multi_random(void)
{
    devices d;
    if (devices_open(&d) != 0) {
        devices_close(&d);
        return;
    }
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    t_rng r;
    t_rng_seed(&r, 0x3117);
    for (int c = 0; c < 24; ++c) {
        const int split = c % 4;
        clattn_problem p = {0};
        unsigned flags = T_WITH_LSE;
        p.batch = t_rng_int(&r, 1, 4);
        p.heads = 2 * t_rng_int(&r, 1, 2);
        p.kv_heads = pick(&r, 40) ? p.heads / 2 : p.heads;
        p.head_dim = pick(&r, 50) ? 16 : 40;
        p.dtype = dts[t_rng_int(&r, 0, 2)];
        p.path = t_all_paths[t_rng_int(&r, 0, 3)];
        const int decode = split == CLATTN_SPLIT_KEYS || (split == 0 && pick(&r, 50));
        p.seq_kv = decode ? t_rng_int(&r, 800, 1500) : t_rng_int(&r, 20, 120);
        p.seq_q = decode ? t_rng_int(&r, 1, 3) : t_rng_int(&r, 9, 100);
        p.causal = t_rng_int(&r, 0, 2);
        if (pick(&r, 30)) {
            p.windowed = 1;
            p.window_left = t_rng_int(&r, 3, 300);
            p.window_right = t_rng_int(&r, -1, 5);
        }
        p.softcap = pick(&r, 20) ? 5.0f : 0.0f;
        if (pick(&r, 30))
            p.alibi = 1, flags |= T_WITH_ALIBI;
        if (pick(&r, 35))
            p.sinks = 1, flags |= T_WITH_SINKS;
        const int varlen = split == CLATTN_SPLIT_BATCH && pick(&r, 50);
        if (varlen) {
            flags |= T_WITH_VARLEN;
        } else {
            if (pick(&r, 40))
                flags |= T_WITH_KV_LENS;
            if (pick(&r, 25))
                p.kv_start = 1, flags |= T_WITH_KV_START;
            p.chunk_size = pick(&r, 15) ? t_rng_int(&r, 4, 40) : 0;
        }
        if (pick(&r, 30)) {
            p.bool_mask.enabled = 1;
            p.bool_mask.strides = (clattn_mask_strides){p.seq_kv, 0, 0};
            flags |= T_WITH_BOOL_MASK;
        } else if (!varlen && pick(&r, 30)) {
            flags |= T_WITH_MASK; /* the fp32 mask of 0.1, per head */
            p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
            p.mask_batch_stride = p.mask_head_stride * p.heads;
        }
        if (!varlen && pick(&r, 30)) /* a strided O with gaps */
            p.o_strides = (clattn_strides){(int64_t)p.heads * (p.seq_q + 2) * 48,
                                           (int64_t)(p.seq_q + 2) * 48, 48};
        t_tensors t;
        if (t_tensors_init(&t, &p, flags, 0x5eed00u + (uint64_t)c) != 0)
            continue;
        char what[300];
        clattn_host_buffers h = t_tensors_host(&t);
        t_describe(&t.p, &h, what, sizeof what);
        run_and_verify(&d, &t, split, NULL, what, NULL);
        t_tensors_free(&t);
    }
    varlen_without_keys(&d);
    devices_close(&d);
}

/* Sequences without keys cut into a part of their own: their rows give
 * zeros and the sink (or -inf) without running anything. */
static void varlen_without_keys(devices *d)
{
    clattn_problem p = {0};
    p.batch = 3;
    p.heads = 2;
    p.seq_q = 12;
    p.seq_kv = 40;
    p.head_dim = 16;
    p.sinks = 1;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_VARLEN | T_WITH_SINKS, 0x0e0) != 0)
        return;
    /* sequences 0 and 1 see no key; 2 sees min(total_kv, seq_kv) */
    const int32_t last = t.p.total_kv < t.p.seq_kv ? t.p.total_kv : t.p.seq_kv;
    t.cu_kv[1] = t.cu_kv[2] = 0;
    t.cu_kv[3] = last;
    const double w[MAX_CTX] = {1.0, 1.0, 1.0};
    clattn_multi_report rep;
    if (run_and_verify(d, &t, CLATTN_SPLIT_BATCH, w, "varlen, sequences 0-1 without keys",
                       &rep) == 0)
        T_CHECK(rep.share[0] >= 1, "the keyless sequences were not cut off (shares %lld:%lld)",
                (long long)rep.share[0], (long long)rep.share[1]);
    t_tensors_free(&t);
}

/* ==== multi_paged =========================================================== */

void case_multi_paged(void)
{
    devices d;
    if (devices_open(&d) != 0) {
        devices_close(&d);
        return;
    }
    enum { PAGE = 8 };
    clattn_problem p = {0};
    p.batch = 5;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = 3;
    p.seq_kv = 61;
    p.head_dim = 32;
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    p.sinks = 1;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_KV_LENS | T_WITH_SINKS, 0xba9ed) != 0) {
        devices_close(&d);
        return;
    }
    /* the contiguous K/V copied into a pool of pages in shuffled order */
    const int per_seq = (p.seq_kv + PAGE - 1) / PAGE, pages = p.batch * per_seq + 3;
    const size_t D = (size_t)p.head_dim, page_elems = (size_t)p.kv_heads * PAGE * D;
    float *kp = calloc((size_t)pages * page_elems, sizeof(float));
    float *vp = calloc((size_t)pages * page_elems, sizeof(float));
    int32_t *table = malloc(sizeof(int32_t) * (size_t)p.batch * per_seq);
    int *order = malloc(sizeof(int) * (size_t)pages);
    if (!kp || !vp || !table || !order) {
        T_FAIL("out of host memory");
        goto out;
    }
    t_rng r;
    t_rng_seed(&r, 0xface);
    for (int i = 0; i < pages; ++i)
        order[i] = i;
    for (int i = pages - 1; i > 0; --i) {
        const int k = t_rng_int(&r, 0, i), x = order[i];
        order[i] = order[k];
        order[k] = x;
    }
    for (int b = 0; b < p.batch; ++b)
        for (int pg = 0; pg < per_seq; ++pg) {
            const int page = order[b * per_seq + pg];
            table[b * per_seq + pg] = page;
            for (int kh = 0; kh < p.kv_heads; ++kh)
                for (int s = 0; s < PAGE && pg * PAGE + s < p.seq_kv; ++s) {
                    const size_t src = (((size_t)b * p.kv_heads + kh) * p.seq_kv + (size_t)(pg * PAGE + s)) * D;
                    const size_t dst = (size_t)page * page_elems + ((size_t)kh * PAGE + s) * D;
                    memcpy(kp + dst, (float *)t.k + src, D * sizeof(float));
                    memcpy(vp + dst, (float *)t.v + src, D * sizeof(float));
                }
        }
    clattn_problem pp = t.p;
    pp.paged = (clattn_paging){1, PAGE, pages, per_seq};
    clattn_buffer_sizes z;
    t_tensors_sizes(&t, &z);
    z.k = z.v = (size_t)pages * page_elems * sizeof(float);
    z.block_table = sizeof(int32_t) * (size_t)p.batch * per_seq;
    clattn_host_buffers h = t_tensors_host(&t);
    h.k = kp;
    h.v = vp;
    h.block_table = table;
    h.sizes = &z;
    t_tensors_poison(&t);
    clattn_multi_report rep;
    const clattn_status st = clattn_multi_forward_host(d.ctx, d.n, &pp, &h, NULL, &rep);
    T_CHECK(st == CLATTN_OK, "paged: %s (%s)", clattn_status_string(st),
            clattn_last_error(d.ctx[0]));
    if (st == CLATTN_OK) {
        T_CHECK(rep.split == CLATTN_SPLIT_BATCH, "paged: split %s, want batch",
                split_name(rep.split));
        const t_result res = t_verify("paged", &t, t_tolerance_for(p.dtype));
        t_log("%s paged B5 over %d contexts (sequences %lld:%lld:%lld), rel L2 %.2g",
              res.fails ? "FAIL" : "ok", d.n, (long long)rep.share[0], (long long)rep.share[1],
              (long long)rep.share[2], res.rel_l2);
    }
out:
    free(kp);
    free(vp);
    free(table);
    free(order);
    t_tensors_free(&t);
    devices_close(&d);
}

/* ==== multi_weights ========================================================= */

void case_multi_weights(void)
{
    devices d;
    if (devices_open(&d) != 0) {
        devices_close(&d);
        return;
    }
    clattn_problem p = {0};
    p.batch = 1;
    p.heads = 2;
    p.seq_q = 200;
    p.seq_kv = 200;
    p.head_dim = 16;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE, 0x3e1) != 0) {
        devices_close(&d);
        return;
    }
    /* 1 : 3 (: 4): rows in that proportion (no causal: every row costs the same) */
    const double w[MAX_CTX] = {1.0, 3.0, 4.0};
    clattn_multi_report rep;
    if (run_and_verify(&d, &t, CLATTN_SPLIT_ROWS, w, "weights 1:3:4", &rep) == 0) {
        double total = 0.0;
        for (int i = 0; i < d.n; ++i)
            total += w[i];
        for (int i = 0; i < d.n; ++i) {
            const double want = 200.0 * w[i] / total;
            T_CHECK(fabs((double)rep.share[i] - want) <= 1.0,
                    "weights: context %d got %lld rows, want %.1f", i, (long long)rep.share[i],
                    want);
            T_CHECK(rep.weights[i] == w[i], "weights: report says %g for context %d, given %g",
                    rep.weights[i], i, w[i]);
        }
    }
    /* causal: the rows late in the sequence see more keys, so equal weights
     * give the first context more rows than the last */
    t.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    const double eq[MAX_CTX] = {1.0, 1.0, 1.0};
    if (run_and_verify(&d, &t, CLATTN_SPLIT_ROWS, eq, "causal, equal weights", &rep) == 0)
        T_CHECK(rep.share[0] > rep.share[d.n - 1],
                "causal: the first context got %lld rows, the last %lld: the cut ignores cost",
                (long long)rep.share[0], (long long)rep.share[d.n - 1]);
    /* measured: positive speeds, the same on the second call (remembered) */
    clattn_multi_report a, b;
    if (run_and_verify(&d, &t, CLATTN_SPLIT_ROWS, NULL, "measured", &a) == 0 &&
        run_and_verify(&d, &t, CLATTN_SPLIT_ROWS, NULL, "measured again", &b) == 0) {
        for (int i = 0; i < d.n; ++i) {
            T_CHECK(a.weights[i] > 0.0 && isfinite(a.weights[i]),
                    "measured speed of context %d is %g", i, a.weights[i]);
            T_CHECK(a.weights[i] == b.weights[i],
                    "context %d measured again (%g, then %g): not remembered", i, a.weights[i],
                    b.weights[i]);
        }
        t_log("measured speeds %.3g %.3g %.3g (cost units per ms)", a.weights[0], a.weights[1],
              d.n > 2 ? a.weights[2] : 0.0);
    }
    t_tensors_free(&t);
    devices_close(&d);
}

/* ==== multi_kv ============================================================== */

/* K in INT8 (fp32 scale per 32 channels), V in INT4 (fp16 scale and zero per
 * 32 channels), fp32 queries: cut by keys (each part's scales cut out of the
 * whole's rows), by rows and by sequences. */
void case_multi_kv(void)
{
    devices d;
    if (devices_open(&d) != 0) {
        devices_close(&d);
        return;
    }
    t_rng r;
    t_rng_seed(&r, 0x9e7);
    static const int splits[3] = {CLATTN_SPLIT_KEYS, CLATTN_SPLIT_ROWS, CLATTN_SPLIT_BATCH};
    for (int c = 0; c < 3; ++c) {
        clattn_problem p = {0};
        p.batch = 3;
        p.heads = 4;
        p.kv_heads = 2;
        p.seq_q = splits[c] == CLATTN_SPLIT_KEYS ? 2 : 37;
        p.seq_kv = splits[c] == CLATTN_SPLIT_KEYS ? 1100 : 90;
        p.head_dim = 64;
        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p.sinks = 1;
        p.k_storage = (clattn_kv_storage){CLATTN_KV_INT8, 32, CLATTN_F32, 0};
        p.v_storage = (clattn_kv_storage){CLATTN_KV_INT4, 32, CLATTN_F16, 0};
        clattn_buffer_sizes z;
        clattn_status st = clattn_buffer_sizes_of(d.ctx[0], &p, &z);
        T_CHECK(st == CLATTN_OK, "sizes: %s", clattn_last_error(d.ctx[0]));
        float *q = malloc(z.q), *ks = malloc(z.k_scales), *lse = malloc(z.lse);
        int8_t *k = malloc(z.k);
        uint8_t *v = malloc(z.v);
        uint16_t *vs = malloc(z.v_scales);
        float sinks[4];
        const int64_t o_n = (int64_t)(z.o / 4), o_alloc = o_n + T_GUARD;
        float *o = malloc((size_t)o_alloc * 4), *o_init = malloc((size_t)o_alloc * 4);
        if (st != CLATTN_OK || !q || !ks || !lse || !k || !v || !vs || !o || !o_init) {
            T_FAIL("out of host memory");
        } else {
            for (size_t i = 0; i < z.q / 4; ++i)
                q[i] = (float)t_rng_uniform(&r, -1.0, 1.0);
            for (size_t i = 0; i < z.k; ++i)
                k[i] = (int8_t)t_rng_int(&r, -127, 127);
            for (size_t i = 0; i < z.k_scales / 4; ++i)
                ks[i] = (float)t_rng_uniform(&r, 0.002, 0.02);
            for (size_t i = 0; i < z.v; ++i)
                v[i] = (uint8_t)t_rng_int(&r, 0, 255);
            for (size_t i = 0; i < z.v_scales / 2; i += 2) {
                vs[i] = ref_f32_to_f16((float)t_rng_uniform(&r, 0.05, 0.2));
                vs[i + 1] = ref_f32_to_f16((float)t_rng_int(&r, 0, 15));
            }
            for (int h = 0; h < 4; ++h)
                sinks[h] = (float)t_rng_uniform(&r, -1.0, 2.0);
            t_fill_poison(o, CLATTN_F32, o_alloc);
            memcpy(o_init, o, (size_t)o_alloc * 4);
            clattn_host_buffers h = {0};
            h.q = q, h.k = k, h.v = v, h.o = o, h.lse = lse, h.sinks = sinks;
            h.k_scales = ks, h.v_scales = vs, h.sizes = &z;
            const clattn_multi_options opts = {splits[c], NULL, {0}};
            clattn_multi_report rep;
            st = clattn_multi_forward_host(d.ctx, d.n, &p, &h, &opts, &rep);
            char label[160];
            snprintf(label, sizeof label, "int8 K / int4 V, Sq%d Skv%d, split=%s", p.seq_q,
                     p.seq_kv, split_name(splits[c]));
            T_CHECK(st == CLATTN_OK, "%s: %s (%s)", label, clattn_status_string(st),
                    clattn_last_error(d.ctx[0]));
            if (st == CLATTN_OK) {
                clattn_host_buffers in = h;
                in.o = NULL;
                in.lse = NULL;
                t_tolerance tol = t_tolerance_for(CLATTN_F32);
                const t_result res = t_verify_raw(label, &p, &in, o, o_init, o_alloc, lse,
                                                  (int64_t)(z.lse / 4), tol);
                t_log("%s %s -> %lld:%lld:%lld (rel L2 %.2g)", res.fails ? "FAIL" : "ok", label,
                      (long long)rep.share[0], (long long)rep.share[1],
                      (long long)(d.n > 2 ? rep.share[2] : 0), res.rel_l2);
            }
        }
        free(q);
        free(ks);
        free(lse);
        free(k);
        free(v);
        free(vs);
        free(o);
        free(o_init);
    }
    devices_close(&d);
}

/* ==== multi_tuned =========================================================== */

/* Gives ctx a tuning entry for p's fused kernel with the given time: its
 * db exported (for the header naming the device), the entry appended in
 * the db's text format, the file imported. 0 on success. */
static int give_tuning(clattn_context *ctx, const clattn_problem *p, const char *dir, int index,
                       double ms)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ctx%d.db", dir, index);
    clattn_status st = clattn_tuning_export(ctx, path);
    T_CHECK(st == CLATTN_OK, "export: %s (%s)", clattn_status_string(st), clattn_last_error(ctx));
    FILE *f = st == CLATTN_OK ? fopen(path, "a") : NULL;
    if (!f)
        return -1;
    int b = 1;
    while (b < p->seq_q)
        b *= 2;
    fprintf(f,
            "kernel=fused dtype=%d d=%d dv=%d causal=%d windowed=0 mask=0 group=1 sq=%d skv=%d | "
            "BLOCK_M=16 | median_ms=%.3f p20_ms=%.3f p80_ms=%.3f default_ms=%.3f | lib=%s "
            "src=0000000000000000\n",
            (int)p->dtype, p->head_dim, p->head_dim, p->causal, b, b, ms, ms, ms, ms,
            clattn_version());
    fclose(f);
    st = clattn_tuning_import(ctx, path);
    T_CHECK(st == CLATTN_OK, "import: %s (%s)", clattn_status_string(st), clattn_last_error(ctx));
    return st == CLATTN_OK ? 0 : -1;
}

void case_multi_tuned(void)
{
    char dir[] = "/tmp/clattn-multi-tuned-XXXXXX";
    if (!mkdtemp(dir)) {
        T_FAIL("mkdtemp failed");
        return;
    }
    clattn_options o = CLATTN_OPTIONS_INIT;
    o.cache_dir = dir;
    devices d;
    if (devices_open_with(&d, &o) != 0) {
        devices_close(&d);
        return;
    }
    clattn_problem p = {0};
    p.batch = 1;
    p.heads = 2;
    p.seq_q = 240;
    p.seq_kv = 240;
    p.head_dim = 16;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE, 0x7d) == 0) {
        /* tuned times 1 ms on the first context, 3 ms on the others: speeds
         * 3 : 1 (: 1), so rows 144 : 48 : 48 (120 : 120 with two contexts
         * of one device model, which share one db: then both read 1 ms) */
        int ok = 1;
        for (int i = 0; i < d.n && ok; ++i)
            ok = give_tuning(d.ctx[i], &t.p, dir, i, i == 0 ? 1.0 : 3.0) == 0;
        clattn_multi_report rep;
        if (ok && run_and_verify(&d, &t, CLATTN_SPLIT_ROWS, NULL, "tuned speeds", &rep) == 0) {
            const int shared_db = d.nsub == 0;
            double total = 0.0, w[MAX_CTX];
            for (int i = 0; i < d.n; ++i)
                total += w[i] = i == 0 || shared_db ? 3.0 : 1.0;
            for (int i = 0; i < d.n; ++i) {
                T_CHECK(fabs(rep.weights[i] / rep.weights[0] - w[i] / w[0]) < 1e-9,
                        "context %d: speed %g against %g for the first; the tuned times say "
                        "%g : %g",
                        i, rep.weights[i], rep.weights[0], w[i], w[0]);
                const double want = 240.0 * w[i] / total;
                T_CHECK(fabs((double)rep.share[i] - want) <= 1.0,
                        "context %d got %lld rows, want %.0f", i, (long long)rep.share[i], want);
            }
        }
        t_tensors_free(&t);
    }
    devices_close(&d);
    clattn_cache_clear(&o);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        t_log("could not remove %s", dir);
}

/* ==== multi_errors ========================================================== */

void case_multi_errors(void)
{
    devices d;
    if (devices_open(&d) != 0) {
        devices_close(&d);
        return;
    }
    clattn_problem p = {0};
    p.batch = 2;
    p.heads = 2;
    p.seq_q = 9;
    p.seq_kv = 13;
    p.head_dim = 8;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE, 0xe2) != 0) {
        devices_close(&d);
        return;
    }
    clattn_buffer_sizes z;
    t_tensors_sizes(&t, &z);
    clattn_host_buffers h = t_tensors_host(&t);
    h.sizes = &z;
    clattn_context *dup[2] = {d.ctx[0], d.ctx[0]};
    clattn_context *null_second[2] = {d.ctx[0], NULL};
    const double neg[MAX_CTX] = {1.0, -1.0, 1.0};
    clattn_problem bad_heads = t.p;
    bad_heads.kv_heads = 3;
    clattn_problem varlen = t.p;
    varlen.varlen = 1;
    varlen.total_q = 18;
    varlen.total_kv = 26;
    const struct {
        const char *why;
        clattn_context *const *ctxs;
        int n;
        const clattn_problem *p;
        clattn_multi_options o;
        int short_o;
        const char *expect;
    } bad[] = {
        {"no contexts", d.ctx, 0, &t.p, {0}, 0, "num_ctxs"},
        {"too many", d.ctx, CLATTN_MULTI_MAX + 1, &t.p, {0}, 0, "num_ctxs"},
        {"a NULL context", null_second, 2, &t.p, {0}, 0, "ctxs[1] is NULL"},
        {"a context twice", dup, 2, &t.p, {0}, 0, "same context"},
        {"unknown split", d.ctx, d.n, &t.p, {7, NULL, {0}}, 0, "opts.split"},
        {"negative weight", d.ctx, d.n, &t.p, {0, neg, {0}}, 0, "opts.weights[1]"},
        {"reserved", d.ctx, d.n, &t.p, {0, NULL, {0, 0, 5}}, 0, "opts.reserved[2]"},
        {"invalid problem", d.ctx, d.n, &bad_heads, {0}, 0, "kv_heads"},
        {"varlen by rows", d.ctx, d.n, &varlen, {CLATTN_SPLIT_ROWS, NULL, {0}}, 0, "whole sequences"},
        {"short O", d.ctx, d.n, &t.p, {0}, 1, "buffers.o"},
    };
    int32_t cu[3] = {0, 9, 18}, cukv[3] = {0, 13, 26};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        t_tensors_poison(&t);
        clattn_host_buffers hb = h;
        clattn_buffer_sizes zb = z;
        hb.sizes = &zb;
        if (bad[i].short_o)
            zb.o -= 2;
        if (bad[i].p == &varlen) {
            hb.cu_seqlens_q = cu;
            hb.cu_seqlens_kv = cukv;
            zb.q = zb.o = zb.k = zb.v = 1 << 20; /* sizes are not what is tested */
        }
        const clattn_status st = clattn_multi_forward_host(bad[i].ctxs, bad[i].n, bad[i].p, &hb,
                                                           &bad[i].o, NULL);
        const char *msg = clattn_last_error(d.ctx[0]);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s: %s, want invalid argument", bad[i].why,
                clattn_status_string(st));
        T_CHECK(strstr(msg, bad[i].expect) != NULL, "%s: \"%s\" does not name \"%s\"",
                bad[i].why, msg, bad[i].expect);
        T_CHECK(t_same_bytes(t.o, t.o_init, (size_t)t.o_alloc * t.esz),
                "%s: O written by a refused call", bad[i].why);
        t_log("ok refused (%s): %s", bad[i].why, msg);
    }
    t_tensors_free(&t);
    devices_close(&d);
}
