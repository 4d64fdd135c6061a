/*
 * The reference checked on its own (no OpenCL): conversions exhaustively or
 * against brute force, and attention on cases whose answers are known in
 * closed form. Every other case trusts it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* binary16 value by formula, independent of ref_f16_to_f32's bit tricks */
static double f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY)
                                                        : ldexp(1024.0 + m, e - 25);
    return s ? -v : v;
}

/* Whether h is the round-to-nearest-even binary16 of x (finite x). */
static int f16_is_rne(float x, uint16_t h)
{
    double xv = (double)x, hv = f16_value(h);
    if (fabs(xv) >= 65520.0) /* beyond max + half an ulp: infinity */
        return hv == (xv > 0 ? INFINITY : -INFINITY);
    if (!isfinite(hv))
        return 0;
    /* neighbours one unit up and down in magnitude */
    uint16_t mag = h & 0x7fff;
    double up = mag < 0x7bff ? f16_value((uint16_t)((h & 0x8000) | (mag + 1))) : INFINITY;
    double down = mag > 0 ? f16_value((uint16_t)((h & 0x8000) | (mag - 1))) : -hv;
    double err = fabs(xv - hv);
    double e_up = fabs(xv - up), e_down = fabs(xv - down);
    if (err > e_up || err > e_down)
        return 0;
    if ((err == e_up || err == e_down) && (mag & 1) && mag != 0)
        return 0; /* a tie must go to the even code */
    return 1;
}

static void check_f16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ref_f16_to_f32((uint16_t)h);
        double want = f16_value((uint16_t)h);
        if (isnan(want)) {
            if (!isnan(f) && bad++ < 5)
                T_FAIL("ref_f16_to_f32(0x%04x) = %g, expected NaN", h, (double)f);
            if (!(ref_f32_to_f16(f) & 0x03ff) || (ref_f32_to_f16(f) & 0x7c00) != 0x7c00)
                if (bad++ < 5)
                    T_FAIL("NaN 0x%04x does not convert back to a NaN", h);
            continue;
        }
        if ((double)f != want && bad++ < 5)
            T_FAIL("ref_f16_to_f32(0x%04x) = %.9g, expected %.9g", h, (double)f, want);
        if (ref_f32_to_f16(f) != h && bad++ < 5)
            T_FAIL("f16 0x%04x does not round-trip (gives 0x%04x)", h, ref_f32_to_f16(f));
    }
    /* every midpoint between neighbours is a tie: goes to the even one */
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float mid = (float)((f16_value((uint16_t)h) + f16_value((uint16_t)(h + 1))) / 2.0);
        uint16_t want = (uint16_t)((h & 1) ? h + 1 : h);
        if (ref_f32_to_f16(mid) != want && bad++ < 5)
            T_FAIL("f16 tie between 0x%04x and 0x%04x gives 0x%04x", h, h + 1,
                   ref_f32_to_f16(mid));
        if (ref_f32_to_f16(-mid) != (uint16_t)(want | 0x8000) && bad++ < 5)
            T_FAIL("negative f16 tie between 0x%04x and 0x%04x gives 0x%04x", h, h + 1,
                   ref_f32_to_f16(-mid));
    }
    /* random fp32 bit patterns against brute-force nearest */
    t_rng r;
    t_rng_seed(&r, 0xf16);
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)t_rng_next(&r);
        if (i % 2) /* half of them near the f16 range */
            u = (u & 0x807fffffu) | ((uint32_t)(100 + t_rng_int(&r, 0, 50)) << 23);
        float x = float_of(u);
        if (!isfinite(x))
            continue;
        uint16_t h = ref_f32_to_f16(x);
        if (!f16_is_rne(x, h) && bad++ < 5)
            T_FAIL("ref_f32_to_f16(%.9g = 0x%08x) = 0x%04x is not the nearest even", (double)x, u,
                   h);
    }
    static const struct {
        float x;
        uint16_t h;
    } fixed[] = {{1.0f, 0x3c00},         {-2.0f, 0xc000},        {65504.0f, 0x7bff},
                 {65519.0f, 0x7bff},     {65520.0f, 0x7c00},     {1e9f, 0x7c00},
                 {5.9604645e-8f, 0x0001}, {2.9802322e-8f, 0x0000}, {6.1035156e-5f, 0x0400},
                 {-0.0f, 0x8000},        {INFINITY, 0x7c00},     {-INFINITY, 0xfc00},
                 {1e-30f, 0x0000}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        T_CHECK(ref_f32_to_f16(fixed[i].x) == fixed[i].h,
                "ref_f32_to_f16(%g) = 0x%04x, expected 0x%04x", (double)fixed[i].x,
                ref_f32_to_f16(fixed[i].x), fixed[i].h);
    uint16_t hn = ref_f32_to_f16(NAN);
    T_CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x03ff), "ref_f32_to_f16(NaN) = 0x%04x", hn);
    hn = ref_f32_to_f16(float_of(0x7f800001u)); /* payload only in low bits */
    T_CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x03ff), "ref_f32_to_f16(sNaN 0x7f800001) = 0x%04x",
            hn);
    t_log("%s f16 conversions", bad ? "BAD " : "ok  ");
}

static void check_bf16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ref_bf16_to_f32((uint16_t)h);
        if (bits_of(f) != h << 16 && bad++ < 5)
            T_FAIL("ref_bf16_to_f32(0x%04x) = 0x%08x", h, bits_of(f));
        uint16_t back = ref_f32_to_bf16(f);
        if (isnan(f) ? !isnan(ref_bf16_to_f32(back)) : back != h) {
            if (bad++ < 5)
                T_FAIL("bf16 0x%04x does not round-trip (gives 0x%04x)", h, back);
        }
    }
    t_rng r;
    t_rng_seed(&r, 0xbf16);
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)t_rng_next(&r);
        float x = float_of(u);
        uint16_t h = ref_f32_to_bf16(x);
        if (isnan(x)) {
            if (!isnan(ref_bf16_to_f32(h)) && bad++ < 5)
                T_FAIL("ref_f32_to_bf16(NaN 0x%08x) = 0x%04x is not NaN", u, h);
            continue;
        }
        /* nearest of the two candidates around x, ties to even */
        uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u, rem = u & 0xffffu;
        uint32_t want = rem > 0x8000u ? hi : rem < 0x8000u ? lo : ((lo >> 16) & 1 ? hi : lo);
        if (h != (uint16_t)(want >> 16) && bad++ < 5)
            T_FAIL("ref_f32_to_bf16(0x%08x) = 0x%04x, expected 0x%04x", u, h, want >> 16);
    }
    T_CHECK(isnan(ref_bf16_to_f32(ref_f32_to_bf16(float_of(0x7f800001u)))),
            "bf16 of NaN 0x7f800001 is not NaN");
    T_CHECK(isnan(ref_bf16_to_f32(ref_f32_to_bf16(float_of(0xff800001u)))),
            "bf16 of NaN 0xff800001 is not NaN");
    T_CHECK(ref_f32_to_bf16(float_of(0x7f7fffffu)) == 0x7f80, "FLT_MAX must round to bf16 inf");
    T_CHECK(ref_f32_to_bf16(1.0f) == 0x3f80, "bf16(1) != 0x3f80");
    t_log("%s bf16 conversions", bad ? "BAD " : "ok  ");
}

static void check_helpers(void)
{
    T_CHECK(ref_dtype_size(CLATTN_F32) == 4 && ref_dtype_size(CLATTN_F16) == 2 &&
                ref_dtype_size(CLATTN_BF16) == 2,
            "ref_dtype_size wrong");
    unsigned char buf[64];
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    for (int d = 0; d < 3; d++) {
        ref_store(buf, dts[d], 5, 0.75f);
        T_CHECK(ref_load(buf, dts[d], 5) == 0.75f, "ref_store/ref_load %s", t_dtype_name(dts[d]));
        ref_store(buf, dts[d], 6, 1.0f / 3.0f);
        float got = ref_load(buf, dts[d], 6);
        float want = dts[d] == CLATTN_F32   ? 1.0f / 3.0f
                     : dts[d] == CLATTN_F16 ? ref_f16_to_f32(ref_f32_to_f16(1.0f / 3.0f))
                                            : ref_bf16_to_f32(ref_f32_to_bf16(1.0f / 3.0f));
        T_CHECK(got == want, "ref_load of a rounded %s", t_dtype_name(dts[d]));
    }

    clattn_problem p, n;
    memset(&p, 0, sizeof p);
    p.batch = 2;
    p.heads = 6;
    p.seq_q = 5;
    p.seq_kv = 7;
    p.head_dim = 16;
    p.v_strides.seq = 40; /* partly set: used as given */
    ref_normalize(&p, &n);
    T_CHECK(n.kv_heads == 6 && n.head_dim_v == 16 && n.scale == 0.25f, "ref_normalize defaults");
    T_CHECK(n.q_strides.seq == 16 && n.q_strides.head == 80 && n.q_strides.batch == 480,
            "ref_normalize q strides");
    T_CHECK(n.k_strides.seq == 16 && n.k_strides.head == 112 && n.k_strides.batch == 672,
            "ref_normalize k strides");
    T_CHECK(n.v_strides.seq == 40 && n.v_strides.head == 0 && n.v_strides.batch == 0,
            "ref_normalize must keep set strides as given");
    p.kv_heads = 2;
    p.head_dim_v = 8;
    p.scale = 3.0f;
    p.v_strides.seq = 0;
    ref_normalize(&p, &p); /* in place */
    T_CHECK(p.kv_heads == 2 && p.head_dim_v == 8 && p.scale == 3.0f, "ref_normalize explicit");
    T_CHECK(p.v_strides.seq == 8 && p.v_strides.head == 56 && p.v_strides.batch == 112,
            "ref_normalize v strides");
    T_CHECK(p.o_strides.seq == 8 && p.o_strides.head == 40 && p.o_strides.batch == 240,
            "ref_normalize o strides");

    clattn_strides s = {0, 0, 0};
    T_CHECK(ref_extent(&s, 2, 3, 4, 5) == 120, "ref_extent packed");
    s.batch = 1000;
    s.head = 7;
    s.seq = 100;
    T_CHECK(ref_extent(&s, 2, 3, 4, 5) == 1000 + 14 + 300 + 5, "ref_extent strided");
    T_CHECK(ref_extent(&s, 2, 0, 4, 5) == 0, "ref_extent empty");

    double a[3] = {1, 2, 2}, b[3] = {1, 2, 3}, z[3] = {0, 0, 0};
    T_CHECK(fabs(ref_rel_l2(a, b, 3) - 1.0 / 3.0) < 1e-15, "ref_rel_l2");
    T_CHECK(fabs(ref_rel_l2(z, a, 3) - 3.0) < 1e-15, "ref_rel_l2 with zero reference");
    b[1] = NAN;
    T_CHECK(ref_rel_l2(a, b, 3) == INFINITY, "ref_rel_l2 with NaN");
    t_log("%s helpers", t_failures ? "BAD " : "ok  ");
}

/* Attention with q = 0: every visible key equally likely, so O is the mean of
 * the visible V rows and LSE = log(count). Checks the visibility rules. */
static void check_uniform(const char *what, clattn_problem p, const int32_t *kv_lens,
                          const float *mask, int expect_visible(const clattn_problem *, int L,
                                                                int i, int j))
{
    clattn_problem n;
    ref_normalize(&p, &n);
    size_t qn = (size_t)ref_extent(&n.q_strides, n.batch, n.heads, n.seq_q, n.head_dim);
    size_t kn = (size_t)ref_extent(&n.k_strides, n.batch, n.kv_heads, n.seq_kv, n.head_dim);
    size_t vn = (size_t)ref_extent(&n.v_strides, n.batch, n.kv_heads, n.seq_kv, n.head_dim_v);
    size_t rows = (size_t)n.batch * n.heads * n.seq_q;
    float *q = calloc(qn, 4), *k = malloc(kn * 4), *v = malloc(vn * 4);
    double *o = malloc(sizeof(double) * rows * n.head_dim_v), *lse = malloc(sizeof(double) * rows);
    double *pr = malloc(sizeof(double) * rows * n.seq_kv);
    if (!q || !k || !v || !o || !lse || !pr) {
        T_FAIL("out of memory");
        goto out;
    }
    t_rng r;
    t_rng_seed(&r, 77);
    for (size_t e = 0; e < kn; e++)
        k[e] = (float)t_rng_uniform(&r, -1, 1);
    for (size_t e = 0; e < vn; e++)
        v[e] = (float)t_rng_uniform(&r, -1, 1);
    /* NaN in V of keys nobody sees must not matter */
    for (int b = 0; b < n.batch; b++) {
        int L = kv_lens ? kv_lens[b] : n.seq_kv;
        for (int j = 0; j < n.seq_kv; j++) {
            int seen = 0;
            for (int h = 0; h < n.heads && !seen; h++)
                for (int i = 0; i < n.seq_q && !seen; i++)
                    seen = expect_visible(&n, L, i, j) &&
                           !(mask && mask[b * n.mask_batch_stride + h * n.mask_head_stride +
                                          (int64_t)i * n.seq_kv + j] == -INFINITY);
            if (!seen)
                for (int hk = 0; hk < n.kv_heads; hk++)
                    for (int d = 0; d < n.head_dim_v; d++)
                        v[b * n.v_strides.batch + hk * n.v_strides.head + j * n.v_strides.seq + d] =
                            NAN;
        }
    }
    clattn_host_buffers in;
    memset(&in, 0, sizeof in);
    in.q = q;
    in.k = k;
    in.v = v;
    in.mask = mask;
    in.kv_lens = kv_lens;
    ref_attention(&p, &in, o, lse, pr);
    int bad = 0;
    const int group = n.heads / n.kv_heads;
    for (int b = 0; b < n.batch; b++) {
        int L = kv_lens ? kv_lens[b] : n.seq_kv;
        for (int h = 0; h < n.heads; h++)
            for (int i = 0; i < n.seq_q; i++) {
                size_t row = ((size_t)b * n.heads + h) * n.seq_q + i;
                int cnt = 0;
                for (int j = 0; j < n.seq_kv; j++)
                    cnt += expect_visible(&n, L, i, j) &&
                           !(mask && mask[b * n.mask_batch_stride + h * n.mask_head_stride +
                                          (int64_t)i * n.seq_kv + j] == -INFINITY);
                for (int j = 0; j < n.seq_kv; j++) {
                    int vis = expect_visible(&n, L, i, j) &&
                              !(mask && mask[b * n.mask_batch_stride + h * n.mask_head_stride +
                                             (int64_t)i * n.seq_kv + j] == -INFINITY);
                    double want_p = vis ? 1.0 / cnt : 0.0;
                    if (fabs(pr[row * n.seq_kv + j] - want_p) > 1e-12 && bad++ < 3)
                        T_FAIL("%s: prob b%d h%d i%d j%d = %g, expected %g", what, b, h, i, j,
                               pr[row * n.seq_kv + j], want_p);
                }
                double want_lse = cnt ? log((double)cnt) : -INFINITY;
                if (!(lse[row] == want_lse || fabs(lse[row] - want_lse) < 1e-12) && bad++ < 3)
                    T_FAIL("%s: lse b%d h%d i%d = %g, expected %g", what, b, h, i, lse[row],
                           want_lse);
                for (int d = 0; d < n.head_dim_v; d++) {
                    double want = 0.0;
                    for (int j = 0; j < n.seq_kv; j++) {
                        int vis = expect_visible(&n, L, i, j) &&
                                  !(mask && mask[b * n.mask_batch_stride + h * n.mask_head_stride +
                                                 (int64_t)i * n.seq_kv + j] == -INFINITY);
                        if (vis)
                            want += v[b * n.v_strides.batch + (h / group) * n.v_strides.head +
                                      j * n.v_strides.seq + d];
                    }
                    want = cnt ? want / cnt : 0.0;
                    double got = o[row * n.head_dim_v + d];
                    if (!(fabs(got - want) < 1e-12) && bad++ < 3)
                        T_FAIL("%s: O b%d h%d i%d d%d = %g, expected %g", what, b, h, i, d, got,
                               want);
                }
            }
    }
    t_log("%s uniform: %s", bad ? "BAD " : "ok  ", what);
out:
    free(q);
    free(k);
    free(v);
    free(o);
    free(lse);
    free(pr);
}

/* The visibility rules restated, for the closed-form checks. */
static int vis_all(const clattn_problem *p, int L, int i, int j)
{
    (void)p;
    (void)i;
    return j < L;
}
static int vis_br(const clattn_problem *p, int L, int i, int j)
{
    return j < L && j <= i + L - p->seq_q;
}
static int vis_tl(const clattn_problem *p, int L, int i, int j)
{
    (void)p;
    return j < L && j <= i;
}
static int vis_window_1_0_br(const clattn_problem *p, int L, int i, int j)
{
    int ip = i + L - p->seq_q;
    return j < L && j <= ip && j >= ip - 1;
}
static int vis_window_right2(const clattn_problem *p, int L, int i, int j)
{
    int ip = i + L - p->seq_q;
    return j < L && j <= ip + 2;
}

static void check_attention(void)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = 5;
    p.seq_kv = 7;
    p.head_dim = 3;
    p.head_dim_v = 2;
    p.dtype = CLATTN_F32;
    check_uniform("none", p, NULL, NULL, vis_all);
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    check_uniform("causal_br", p, NULL, NULL, vis_br);
    p.seq_q = 9; /* seq_q > seq_kv: the top rows see nothing */
    check_uniform("causal_br_short_kv", p, NULL, NULL, vis_br);
    p.causal = CLATTN_CAUSAL_TOP_LEFT;
    check_uniform("causal_tl_short_kv", p, NULL, NULL, vis_tl);
    p.seq_q = 4;
    check_uniform("causal_tl", p, NULL, NULL, vis_tl);
    int32_t lens[2] = {0, 5};
    p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    check_uniform("causal_br_kv_lens", p, lens, NULL, vis_br);
    p.windowed = 1;
    p.window_left = 1;
    p.window_right = 0;
    check_uniform("window_1_0_br", p, lens, NULL, vis_window_1_0_br);
    p.causal = CLATTN_CAUSAL_NONE;
    p.window_left = -1;
    p.window_right = 2;
    check_uniform("window_unbounded_left", p, NULL, NULL, vis_window_right2);
    p.windowed = 0;
    /* mask broadcast over batch with -inf entries, strided q/k/v */
    float mask[4 * 4 * 7];
    p.mask_batch_stride = 0;
    p.mask_head_stride = 4 * 7;
    for (int e = 0; e < 4 * 4 * 7; e++)
        mask[e] = (e % 3 == 0) ? -INFINITY : 0.0f;
    for (int j = 0; j < 7; j++)
        mask[1 * 28 + 2 * 7 + j] = -INFINITY; /* head 1, row 2: nothing */
    p.q_strides.seq = 5;
    p.q_strides.head = 5 * 4 + 1;
    p.q_strides.batch = 4 * 21 + 3;
    p.v_strides.seq = 2 * 2; /* BSHD for v: [B][S][Hkv][Dv] */
    p.v_strides.head = 2;
    p.v_strides.batch = 7 * 2 * 2;
    check_uniform("mask_strided", p, NULL, mask, vis_all);

    /* seq_kv 1: O = V, LSE = the one score; GQA head mapping; f16 inputs */
    clattn_problem s;
    memset(&s, 0, sizeof s);
    s.batch = 1;
    s.heads = 4;
    s.kv_heads = 2;
    s.seq_q = 2;
    s.seq_kv = 1;
    s.head_dim = 2;
    s.dtype = CLATTN_F16;
    s.scale = 0.5f;
    uint16_t q16[16], k16[4], v16[4];
    float qf[16] = {1, 2, 0.5f, -1, 3, 0, 0, 0, -1, -1, 2, 2, 0.25f, 0.5f, 1, 1};
    float kf[4] = {1, -1, 0.5f, 2}, vf[4] = {0.1f, 0.2f, -0.3f, 0.4f};
    for (int e = 0; e < 16; e++)
        q16[e] = ref_f32_to_f16(qf[e]);
    for (int e = 0; e < 4; e++) {
        k16[e] = ref_f32_to_f16(kf[e]);
        v16[e] = ref_f32_to_f16(vf[e]);
    }
    clattn_host_buffers in;
    memset(&in, 0, sizeof in);
    in.q = q16;
    in.k = k16;
    in.v = v16;
    double o[16], lse[8];
    ref_attention(&s, &in, o, lse, NULL);
    int bad = 0;
    for (int h = 0; h < 4; h++)
        for (int i = 0; i < 2; i++) {
            int row = h * 2 + i, hk = h / 2;
            double dot = 0;
            for (int d = 0; d < 2; d++)
                dot += (double)ref_f16_to_f32(q16[row * 2 + d]) * ref_f16_to_f32(k16[hk * 2 + d]);
            if (fabs(lse[row] - 0.5 * dot) > 1e-12 && bad++ < 3)
                T_FAIL("seq_kv 1: lse h%d i%d = %g, expected %g", h, i, lse[row], 0.5 * dot);
            for (int d = 0; d < 2; d++)
                if (o[row * 2 + d] != (double)ref_f16_to_f32(v16[hk * 2 + d]) && bad++ < 3)
                    T_FAIL("seq_kv 1: O h%d i%d d%d = %g", h, i, d, o[row * 2 + d]);
        }
    /* two keys with known scores: softmax in closed form */
    float q2[2] = {1, 0}, k2[4] = {2, 0, -1, 0}, v2[2] = {1, -1};
    clattn_problem t2;
    memset(&t2, 0, sizeof t2);
    t2.batch = t2.heads = t2.seq_q = 1;
    t2.seq_kv = 2;
    t2.head_dim = 2;
    t2.head_dim_v = 1;
    t2.scale = 1.0f;
    in.q = q2;
    in.k = k2;
    in.v = v2;
    double o2, l2, pr2[2];
    ref_attention(&t2, &in, &o2, &l2, pr2);
    double p0 = exp(2.0) / (exp(2.0) + exp(-1.0));
    T_CHECK(fabs(pr2[0] - p0) < 1e-15 && fabs(o2 - (2 * p0 - 1)) < 1e-15 &&
                fabs(l2 - log(exp(2.0) + exp(-1.0))) < 1e-15,
            "two-key softmax: p0 %g o %g lse %g", pr2[0], o2, l2);
    /* huge scores stay finite in the reference too */
    t2.scale = 1e4f;
    ref_attention(&t2, &in, &o2, &l2, pr2);
    T_CHECK(isfinite(o2) && fabs(l2 - 2e4) < 1e-6 && fabs(o2 - 1.0) < 1e-12,
            "huge scores: o %g lse %g", o2, l2);
    t_log("%s closed-form attention", bad ? "BAD " : "ok  ");
}

void case_reference_self(void)
{
    check_f16();
    check_bf16();
    check_helpers();
    check_attention();
}
