/*
 * Numerical behaviour: bit-identical repeats, explicit scales, scores large
 * enough to overflow a naive softmax, and the probabilities of
 * clattn_attention_weights_host.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

static void numerics_problem(clattn_problem *p, clattn_path path, clattn_dtype dt)
{
    memset(p, 0, sizeof *p);
    p->batch = 2;
    p->heads = 4;
    p->kv_heads = 2;
    p->seq_q = 37;
    p->seq_kv = 53;
    p->head_dim = 64;
    p->dtype = dt;
    p->path = path;
}

void case_determinism(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[2] = {CLATTN_F32, CLATTN_F16};
    for (int pi = 0; pi < 4; pi++)
        for (int di = 0; di < 2; di++)
            for (int host = 0; host < 2; host++) {
                clattn_problem p;
                numerics_problem(&p, t_all_paths[pi], dts[di]);
                p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
                t_tensors t;
                if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_MASK, 0xde7e0000u + pi * 4 + di) !=
                    0)
                    return;
                char label[64];
                snprintf(label, sizeof label, "determinism/%s/%s/%s", t_path_name(p.path),
                         t_dtype_name(p.dtype), host ? "host" : "device");
                const size_t ob = (size_t)t.o_alloc * t.esz;
                const size_t lb = sizeof(float) * (size_t)(t.lse_n + T_GUARD);
                void *o1 = malloc(ob), *l1 = malloc(lb);
                if (!o1 || !l1) {
                    T_FAIL("out of host memory");
                    free(o1);
                    free(l1);
                    t_tensors_free(&t);
                    continue;
                }
                const int f1 = t_check_run(ctx, label, &t, host);
                memcpy(o1, t.o, ob);
                memcpy(l1, t.lse, lb);
                const int f2 = t_check_run(ctx, label, &t, host);
                if (f1 == 0 && f2 == 0) {
                    T_CHECK(t_same_bytes(o1, t.o, ob), "%s: O differs between two identical calls",
                            label);
                    T_CHECK(t_same_bytes(l1, t.lse, lb),
                            "%s: LSE differs between two identical calls", label);
                }
                free(o1);
                free(l1);
                t_tensors_free(&t);
            }
    clattn_context_destroy(ctx);
}

void case_explicit_scale(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const float scales[4] = {0.37f, 2.5f, -0.75f, 0.125f};
    for (int pi = 0; pi < 4; pi++) {
        for (int si = 0; si < 4; si++) {
            clattn_problem p;
            numerics_problem(&p, t_all_paths[pi], CLATTN_F32);
            p.scale = scales[si];
            p.causal = si % 2 ? CLATTN_CAUSAL_TOP_LEFT : CLATTN_CAUSAL_NONE;
            t_tensors t;
            if (t_tensors_init(&t, &p, T_WITH_LSE, 0x5ca1e000u + pi * 8 + si) != 0)
                return;
            char label[64];
            snprintf(label, sizeof label, "scale %g/%s", (double)p.scale, t_path_name(p.path));
            t_check_run(ctx, label, &t, (pi + si) % 2);
            t_tensors_free(&t);
        }
        /* scale 0 is 1/sqrt(head_dim): the same as giving it */
        clattn_problem p;
        numerics_problem(&p, t_all_paths[pi], CLATTN_F32);
        t_tensors t0, t1;
        if (t_tensors_init(&t0, &p, T_WITH_LSE, 0x5ca1f000u + pi) != 0)
            return;
        p.scale = 1.0f / sqrtf((float)p.head_dim);
        if (t_tensors_init(&t1, &p, T_WITH_LSE, 0x5ca1f000u + pi) != 0) {
            t_tensors_free(&t0);
            return;
        }
        char label[64];
        snprintf(label, sizeof label, "default_scale/%s", t_path_name(p.path));
        const int f0 = t_check_run(ctx, label, &t0, 0);
        snprintf(label, sizeof label, "scale 1/sqrt(D)/%s", t_path_name(p.path));
        const int f1 = t_check_run(ctx, label, &t1, 0);
        if (f0 == 0 && f1 == 0) {
            double max_diff = 0.0;
            for (int64_t e = 0; e < t0.o_n; e++)
                max_diff = fmax(max_diff, fabs((double)ref_load(t0.o, CLATTN_F32, e) -
                                               (double)ref_load(t1.o, CLATTN_F32, e)));
            T_CHECK(max_diff <= 1e-6, "%s: scale 0 and scale 1/sqrt(D) differ by %.3g", label,
                    max_diff);
        }
        t_tensors_free(&t0);
        t_tensors_free(&t1);
    }
    clattn_context_destroy(ctx);
}

/* Scores of |s| ~ 1e3: exp without the running max overflows. */
void case_large_scores(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[2] = {CLATTN_F32, CLATTN_BF16};
    for (int pi = 0; pi < 4; pi++)
        for (int di = 0; di < 2; di++)
            for (int sign = 0; sign < 2; sign++) {
                clattn_problem p;
                numerics_problem(&p, t_all_paths[pi], dts[di]);
                p.scale = sign ? -150.0f : 150.0f;
                p.causal = sign ? CLATTN_CAUSAL_BOTTOM_RIGHT : CLATTN_CAUSAL_NONE;
                t_tensors t;
                if (t_tensors_init(&t, &p, T_WITH_LSE | (sign ? T_WITH_MASK : 0),
                                   0x1a46e000u + pi * 8 + di * 2 + sign) != 0)
                    return;
                char label[64];
                snprintf(label, sizeof label, "large_scores/%s/%s/scale %g", t_path_name(p.path),
                         t_dtype_name(p.dtype), (double)p.scale);
                /* fp32 scores carry an absolute error ~|s| * 2^-24 * sqrt(D) (1e-4 here),
                 * so f32 gets a looser tolerance; the 16-bit ones are dominated by
                 * the rounding of O and keep theirs */
                t_tolerance tol = t_tolerance_for(p.dtype);
                if (p.dtype == CLATTN_F32)
                    tol.rel_l2 = 2e-4;
                /* per element that score error moves O by up to 2.3e-4 of its
                 * scale (measured), whatever the storage type */
                tol.elem_atol = 5e-4;
                t_tensors_poison(&t);
                clattn_status st = (pi + di) % 2 ? t_run_host(ctx, &t) : t_run_device(ctx, &t);
                t_result r = {0};
                T_CHECK(st == CLATTN_OK, "%s: forward -> %s: %s", label, clattn_status_string(st),
                        clattn_last_error(ctx));
                if (st == CLATTN_OK)
                    r = t_verify(label, &t, tol);
                double max_lse = 0.0;
                for (int64_t e = 0; st == CLATTN_OK && e < t.lse_n; e++)
                    if (isfinite(t.lse[e]))
                        max_lse = fmax(max_lse, fabs((double)t.lse[e]));
                T_CHECK(st != CLATTN_OK || max_lse > 300.0,
                        "%s: the scores are not large (max |lse| %.1f): the test lost its point",
                        label, max_lse);
                t_log("%s %s: relL2 %.2e lse err %.1e max |lse| %.0f", r.fails ? "BAD " : "ok  ",
                      label, r.rel_l2, r.lse_err, max_lse);
                t_tensors_free(&t);
            }
    clattn_context_destroy(ctx);
}

void case_weights(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    enum {
        W_PLAIN,
        W_CAUSAL_SHORT_KV,
        W_WINDOW,
        W_MASK,
        W_KV_LENS,
        W_F16,
        W_BF16,
        W_THREE_STAGE_PATH,
        W_FUSED_PATH,
        W_N
    };
    static const char *const names[W_N] = {"plain", "causal_br_short_kv", "window", "mask",
                                           "kv_lens", "f16", "bf16", "path_three_stage",
                                           "path_fused"};
    for (int w = 0; w < W_N; w++) {
        clattn_problem p;
        memset(&p, 0, sizeof p);
        p.batch = 2;
        p.heads = 4;
        p.kv_heads = 2;
        p.seq_q = 13;
        p.seq_kv = 29;
        p.head_dim = 32;
        p.dtype = CLATTN_F32;
        unsigned flags = T_WITH_LSE;
        switch (w) {
        case W_CAUSAL_SHORT_KV:
            p.seq_q = 29;
            p.seq_kv = 13;
            p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
            break;
        case W_WINDOW:
            p.windowed = 1;
            p.window_left = 3;
            p.window_right = -1;
            p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
            break;
        case W_MASK:
            p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
            flags |= T_WITH_MASK;
            break;
        case W_KV_LENS:
            p.batch = 3;
            flags |= T_WITH_KV_LENS | T_NAN_BEYOND_LEN;
            break;
        case W_F16:
            p.dtype = CLATTN_F16;
            p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
            break;
        case W_BF16:
            p.dtype = CLATTN_BF16;
            break;
        case W_THREE_STAGE_PATH:
            p.path = CLATTN_PATH_THREE_STAGE;
            break;
        case W_FUSED_PATH:
            /* clattn.h does not say whether another path is ignored or refused
             * here; both are accepted below, a refusal must name the path */
            p.path = CLATTN_PATH_FUSED;
            break;
        }
        t_tensors t;
        if (t_tensors_init(&t, &p, flags, 0x3e1900u + (uint64_t)w) != 0)
            return;
        const size_t np = (size_t)p.batch * p.heads * p.seq_q * p.seq_kv;
        float *probs = malloc(sizeof(float) * np);
        if (!probs) {
            T_FAIL("out of host memory");
            t_tensors_free(&t);
            return;
        }
        t_tolerance tol = t_tolerance_for(p.dtype);
        for (int with_o = 0; with_o < 2; with_o++) {
            char label[64];
            snprintf(label, sizeof label, "weights/%s%s", names[w], with_o ? "/with_o_lse" : "");
            for (size_t e = 0; e < np; e++)
                probs[e] = NAN;
            t_tensors_poison(&t);
            clattn_host_buffers hb = t_tensors_host(&t);
            if (!with_o) {
                hb.o = NULL;
                hb.lse = NULL;
            }
            clattn_status st = clattn_attention_weights_host(ctx, &p, &hb, probs);
            if (w == W_FUSED_PATH && st == CLATTN_ERR_INVALID_ARGUMENT) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", clattn_last_error(ctx));
                T_CHECK(strstr(msg, "path") != NULL, "%s: refused without naming the path: \"%s\"",
                        label, msg);
                T_CHECK(t_same_bytes(t.o, t.o_init, (size_t)t.o_alloc * t.esz),
                        "%s: O written by a refused call", label);
                size_t written = 0;
                for (size_t e = 0; e < np; e++)
                    written += !isnan(probs[e]);
                T_CHECK(written == 0, "%s: %zu probabilities written by a refused call", label,
                        written);
                t_log("ok   %s: refused: \"%s\"", label, msg);
                continue;
            }
            T_CHECK(st == CLATTN_OK, "%s: clattn_attention_weights_host -> %s: %s", label,
                    clattn_status_string(st), clattn_last_error(ctx));
            if (st != CLATTN_OK)
                continue;
            int before = t_failures;
            t_result r = t_verify_probs(label, &p, &hb, probs, tol);
            /* every row sums to 1 or, where it sees nothing, to 0 */
            double worst_sum = 0.0;
            for (size_t row = 0; row < np / (size_t)p.seq_kv; row++) {
                double s = 0.0;
                for (int j = 0; j < p.seq_kv; j++)
                    s += probs[row * (size_t)p.seq_kv + (size_t)j];
                double err = fmin(fabs(s - 1.0), fabs(s));
                if (isnan(err) || err > worst_sum)
                    worst_sum = isnan(err) ? INFINITY : err;
            }
            T_CHECK(worst_sum <= 1e-4, "%s: a row of probabilities sums to neither 1 nor 0 "
                    "(off by %.3g)", label, worst_sum);
            t_result ro = {0};
            if (with_o)
                ro = t_verify(label, &t, tol);
            else
                T_CHECK(t_same_bytes(t.o, t.o_init, (size_t)t.o_alloc * t.esz),
                        "%s: O written though in->o was NULL", label);
            t_log("%s %s: probs max err %.2e%s", t_failures != before ? "BAD " : "ok  ", label,
                  r.probs_err, with_o ? (ro.fails ? ", O/LSE wrong" : ", O/LSE ok") : "");
        }
        free(probs);
        t_tensors_free(&t);
    }
    clattn_context_destroy(ctx);
}

/* The three-stage path in chunks: a small max_scratch_bytes makes it process
 * a few heads at a time, or a few rows of one head at a time. Chunk edges
 * must not shift the mask, kv_lens, causal diagonal, LSE or probabilities. */
void case_three_stage_chunks(void)
{
    /* one head's scores are 33 * 40 * 4 = 5280 bytes, one row 160 */
    static const size_t limits[4] = {16384, 5280, 2048, 160};
    for (int li = 0; li < 4; li++) {
        clattn_options opts = CLATTN_OPTIONS_INIT;
        opts.max_scratch_bytes = limits[li];
        clattn_context *ctx = NULL;
        clattn_status st = clattn_context_create(&opts, &ctx);
        T_CHECK(st == CLATTN_OK && ctx, "clattn_context_create(max_scratch_bytes %zu) -> %s",
                limits[li], clattn_status_string(st));
        if (!ctx)
            continue;
        for (int variant = 0; variant < 3; variant++) {
            clattn_problem p;
            memset(&p, 0, sizeof p);
            p.batch = 2;
            p.heads = 4;
            p.kv_heads = 2;
            p.seq_q = 33;
            p.seq_kv = 40;
            p.head_dim = 24;
            p.head_dim_v = 40;
            p.dtype = variant == 2 ? CLATTN_F16 : CLATTN_F32;
            p.path = CLATTN_PATH_THREE_STAGE;
            unsigned flags = T_WITH_LSE;
            if (variant == 0) {
                p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
                p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv + 1;
                p.mask_batch_stride = p.heads * p.mask_head_stride + 3;
                flags |= T_WITH_MASK | T_WITH_KV_LENS | T_NAN_BEYOND_LEN;
            } else if (variant == 1) {
                p.causal = CLATTN_CAUSAL_TOP_LEFT; /* with i' = i + 7: keys i-3..i */
                p.windowed = 1;
                p.window_left = 10;
                p.window_right = -1;
                p.o_strides.seq = 43;
                p.o_strides.head = 33 * 43 + 2;
                p.o_strides.batch = 4 * p.o_strides.head + 1;
            }
            t_tensors t;
            if (t_tensors_init(&t, &p, flags, 0xc4c40000u + (uint64_t)li * 4 + variant) != 0)
                break;
            char label[80];
            snprintf(label, sizeof label, "chunks/limit %zu/variant %d", limits[li], variant);
            t_check_run(ctx, label, &t, variant % 2);

            const size_t np = (size_t)p.batch * p.heads * p.seq_q * p.seq_kv;
            float *probs = malloc(sizeof(float) * np);
            if (probs) {
                clattn_host_buffers hb = t_tensors_host(&t);
                hb.o = NULL;
                hb.lse = NULL;
                st = clattn_attention_weights_host(ctx, &p, &hb, probs);
                T_CHECK(st == CLATTN_OK, "%s: clattn_attention_weights_host -> %s: %s", label,
                        clattn_status_string(st), clattn_last_error(ctx));
                if (st == CLATTN_OK) {
                    t_result r = t_verify_probs(label, &p, &hb, probs, t_tolerance_for(p.dtype));
                    t_log("%s %s: probs max err %.2e", r.fails ? "BAD " : "ok  ", label,
                          r.probs_err);
                }
                free(probs);
            }
            t_tensors_free(&t);
        }
        clattn_context_destroy(ctx);
    }
}
