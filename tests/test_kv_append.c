/*
 * clattn_kv_append on the device.
 *   kv_append: every storage format (and scale type) of K and V, contiguous
 *     and paged caches (pages of 1 and 16 keys, a shuffled block table,
 *     padded and token-major strides), 1 and 5 new tokens at random
 *     positions into a cache full of poison. After each call the cache and
 *     its scales must be (a) byte for byte what an independent host
 *     quantizer writes, (b) within each format's error bound of the inputs
 *     when dequantized, and (c) poison everywhere else; out-of-range
 *     positions and table entries write nothing. A user event on the wait
 *     list holds the kernel back.
 *   kv_append_errors: every invalid argument refused with
 *     CLATTN_ERR_INVALID_ARGUMENT, the field named, *done NULL and every
 *     buffer as it was.
 *
 * The host quantizer follows clattn.h and ggml's definitions with its own
 * arithmetic: fp16, bf16 and FP8 codes by rounding in double to the format's
 * precision (FP8 by a search over all codes), not by bit tricks.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cases.h"
#include "harness.h"

/* ==== number formats ====================================================== */

/* x rounded to mbits fraction bits with exponents down to emin (below that
 * the spacing stays 2^(emin - mbits)), ties to even; no overflow handling. */
static double round_to_format(double x, int mbits, int emin)
{
    if (x == 0.0 || isnan(x) || isinf(x))
        return x;
    int e;
    frexp(fabs(x), &e); /* |x| = m * 2^e, m in [0.5, 1) */
    int binade = e - 1;
    if (binade < emin)
        binade = emin;
    const double step = ldexp(1.0, binade - mbits);
    return nearbyint(x / step) * step; /* exact: a power-of-two scaling */
}

static uint16_t f16_bits(float f)
{
    const double r = round_to_format(f, 10, -14);
    const uint16_t sign = signbit(f) ? 0x8000u : 0u;
    if (isnan(r))
        return 0x7e00u;
    if (fabs(r) > 65504.0)
        return sign | 0x7c00u;
    const double a = fabs(r);
    if (a < 0x1p-14)
        return sign | (uint16_t)(a * 0x1p24);
    int e;
    const double m = frexp(a, &e); /* a = (2m) * 2^(e-1), 2m in [1, 2) */
    return sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)((2.0 * m - 1.0) * 1024.0);
}

static float f16_value(uint16_t h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -24);
    else
        v = ldexp(1024 + m, e - 25);
    return (float)((h & 0x8000u) ? -v : v);
}

static uint16_t bf16_bits(float f)
{
    const float r = (float)round_to_format(f, 7, -126);
    uint32_t u;
    memcpy(&u, &r, 4);
    return (uint16_t)(u >> 16);
}

static float bf16_value(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* OCP FP8: E4M3 (e5 = 0) and E5M2 (e5 = 1). */
static double fp8_value(uint8_t c, int e5)
{
    const int mb = e5 ? 2 : 3, bias = e5 ? 15 : 7;
    const int e = (c & 0x7f) >> mb, m = c & ((1 << mb) - 1);
    double v;
    if (e5 && e == 31)
        v = m ? NAN : INFINITY;
    else if (!e5 && (c & 0x7f) == 0x7f)
        v = NAN;
    else if (e == 0)
        v = ldexp(m, 1 - bias - mb);
    else
        v = ldexp((1 << mb) + m, e - bias - mb);
    return (c & 0x80) ? -v : v;
}

static uint8_t fp8_max_code(int e5) { return e5 ? 0x7b : 0x7e; }

/* The nearest code to v (ties: the even code), saturating at the largest
 * finite value: a search over every positive code. */
static uint8_t fp8_bits(float v, int e5)
{
    const uint8_t sign = signbit(v) ? 0x80 : 0;
    if (isnan(v))
        return sign | 0x7f;
    const double a = fabs((double)v);
    int best = 0;
    double best_d = INFINITY;
    for (int c = 0; c <= fp8_max_code(e5); ++c) {
        const double d = fabs(fp8_value((uint8_t)c, e5) - a);
        if (d < best_d || (d == best_d && c % 2 == 0)) {
            best = c;
            best_d = d;
        }
    }
    return sign | (uint8_t)best;
}

/* A product rounded to float on its own, never fused with the addition
 * that follows (ggml's Q4_0 rounds x * id before adding 8.5). */
static float mul_f(float a, float b)
{
    volatile float p = a * b;
    return p;
}

/* ==== storage specs and layouts =========================================== */

typedef struct spec {
    clattn_kv_format fmt;
    int group;
    clattn_dtype sdt;
    int per_head;
    const char *name;
} spec;

static const spec k_specs[] = {
    {CLATTN_KV_DEFAULT, 0, CLATTN_F32, 0, "default"},
    {CLATTN_KV_F32, 0, CLATTN_F32, 0, "f32"},
    {CLATTN_KV_F16, 0, CLATTN_F32, 0, "f16"},
    {CLATTN_KV_BF16, 0, CLATTN_F32, 0, "bf16"},
    {CLATTN_KV_INT8, 0, CLATTN_F32, 0, "int8/row f32"},
    {CLATTN_KV_INT8, 0, CLATTN_F16, 0, "int8/row f16"},
    {CLATTN_KV_INT8, 32, CLATTN_F32, 0, "int8/32 f32"},
    {CLATTN_KV_INT8, 32, CLATTN_F16, 0, "int8/32 f16"},
    {CLATTN_KV_INT4, 32, CLATTN_F32, 0, "int4/32 f32"},
    {CLATTN_KV_INT4, 32, CLATTN_F16, 0, "int4/32 f16"},
    {CLATTN_KV_INT4, 64, CLATTN_F32, 0, "int4/64 f32"},
    {CLATTN_KV_INT4, 64, CLATTN_F16, 0, "int4/64 f16"},
    {CLATTN_KV_INT4, 0, CLATTN_F16, 0, "int4/row f16"},
    {CLATTN_KV_Q8_0, 0, CLATTN_F32, 0, "q8_0"},
    {CLATTN_KV_Q4_0, 0, CLATTN_F32, 0, "q4_0"},
    {CLATTN_KV_FP8_E4M3, 0, CLATTN_F32, 0, "e4m3/tensor f32"},
    {CLATTN_KV_FP8_E4M3, 0, CLATTN_F16, 0, "e4m3/tensor f16"},
    {CLATTN_KV_FP8_E5M2, 0, CLATTN_F32, 1, "e5m2/head f32"},
    {CLATTN_KV_FP8_E5M2, 0, CLATTN_F16, 1, "e5m2/head f16"},
};
#define N_SPECS ((int)(sizeof k_specs / sizeof k_specs[0]))

static const spec *spec_named(const char *name)
{
    for (int i = 0; i < N_SPECS; ++i)
        if (!strcmp(k_specs[i].name, name))
            return &k_specs[i];
    return &k_specs[0];
}

enum { L_CONTIG, L_PADDED, L_PAGED1, L_PAGED16, L_TOKEN_MAJOR, N_LAYOUTS };
static const char *const k_layout_names[N_LAYOUTS] = {"contiguous", "padded strides",
                                                     "paged ps=1", "paged ps=16",
                                                     "paged ps=16 token-major"};

static int is_fp8(clattn_kv_format f)
{
    return f == CLATTN_KV_FP8_E4M3 || f == CLATTN_KV_FP8_E5M2;
}

static int has_scales(clattn_kv_format f)
{
    return f == CLATTN_KV_INT8 || f == CLATTN_KV_INT4 || is_fp8(f);
}

/* The format a spec stores for a dtype (DEFAULT resolved). */
static clattn_kv_format resolved(const spec *s, clattn_dtype dt)
{
    if (s->fmt != CLATTN_KV_DEFAULT)
        return s->fmt;
    return dt == CLATTN_F32 ? CLATTN_KV_F32 : dt == CLATTN_F16 ? CLATTN_KV_F16 : CLATTN_KV_BF16;
}

/* Bytes per stride unit: the element of a float format, else 1. */
static int unit_bytes(clattn_kv_format f)
{
    return f == CLATTN_KV_F32 ? 4 : f == CLATTN_KV_F16 || f == CLATTN_KV_BF16 ? 2 : 1;
}

static int64_t row_units(clattn_kv_format f, int dims)
{
    switch (f) {
    case CLATTN_KV_INT4:
        return dims / 2;
    case CLATTN_KV_Q8_0:
        return dims / 32 * 34;
    case CLATTN_KV_Q4_0:
        return dims / 32 * 18;
    default:
        return dims;
    }
}

/* Whether a spec can store rows of `dims` channels. */
static int spec_fits(const spec *s, int dims)
{
    if (s->fmt == CLATTN_KV_Q8_0 || s->fmt == CLATTN_KV_Q4_0)
        return dims % 32 == 0;
    if (s->fmt == CLATTN_KV_INT8 || s->fmt == CLATTN_KV_INT4)
        return (s->group == 0 || dims % s->group == 0) &&
               (s->fmt == CLATTN_KV_INT8 || dims % 2 == 0);
    return 1;
}

/* ==== one cache tensor (K or V) on the host =============================== */

#define GUARD 64 /* poisoned bytes after every buffer the kernel may write */

typedef struct tens {
    const spec *sp;
    clattn_kv_format fmt; /* resolved */
    int dims, groups, gsize, ub;
    int sdt_bytes;
    clattn_strides st; /* resolved, in stride units */
    size_t bytes, sbytes; /* data and scales, without the guard */
    uint8_t *init, *expect, *touched, *got;
    uint8_t *sinit, *sexpect, *stouched, *sgot;
    const float *x;   /* the new rows' values as the kernel reads them */
    const void *xraw; /* and their bits in the dtype */
    cl_mem buf, sbuf;
} tens;

static uint8_t poison_byte(size_t i, unsigned salt)
{
    return (uint8_t)(0xa5u ^ (unsigned)(i * 37u) ^ (unsigned)(i >> 7) ^ salt);
}

static float scale_at(const tens *t, const uint8_t *s, int64_t i)
{
    if (t->sp->sdt == CLATTN_F16) {
        uint16_t h;
        memcpy(&h, s + i * 2, 2);
        return f16_value(h);
    }
    float f;
    memcpy(&f, s + i * 4, 4);
    return f;
}

/* A scale as stored: its value after the trip through the scale type. */
static float stored_scale(const tens *t, float s)
{
    return t->sp->sdt == CLATTN_F16 ? f16_value(f16_bits(s)) : s;
}

static void put_scale(tens *t, int64_t i, float s)
{
    const int sb = t->sdt_bytes;
    if (t->sp->sdt == CLATTN_F16) {
        const uint16_t h = f16_bits(s);
        memcpy(t->sexpect + i * sb, &h, 2);
    } else {
        memcpy(t->sexpect + i * sb, &s, 4);
    }
    memset(t->stouched + i * sb, 1, (size_t)sb);
}

static void put_bytes(tens *t, size_t at, const void *src, size_t n)
{
    memcpy(t->expect + at, src, n);
    memset(t->touched + at, 1, n);
}

/* The host quantizer: row x (dims values) into the expected image at unit
 * offset off; r numbers the row for the scales, kvh picks an FP8 scale. */
static void host_row(tens *t, const float *x, const void *xraw, clattn_dtype dt, int64_t off,
                     int64_t r, int kvh)
{
    const size_t at = (size_t)off * (size_t)t->ub;
    const int D = t->dims;
    switch (t->fmt) {
    case CLATTN_KV_F32:
        for (int c = 0; c < D; ++c)
            put_bytes(t, at + 4 * (size_t)c, &x[c], 4);
        return;
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        for (int c = 0; c < D; ++c) {
            uint16_t h;
            /* the dtype's own bits when it is the storage: a copy */
            if ((t->fmt == CLATTN_KV_F16 && dt == CLATTN_F16) ||
                (t->fmt == CLATTN_KV_BF16 && dt == CLATTN_BF16))
                memcpy(&h, (const uint8_t *)xraw + 2 * c, 2);
            else
                h = t->fmt == CLATTN_KV_F16 ? f16_bits(x[c]) : bf16_bits(x[c]);
            put_bytes(t, at + 2 * (size_t)c, &h, 2);
        }
        return;
    case CLATTN_KV_INT8:
        for (int g = 0; g < t->groups; ++g) {
            const float *xg = x + g * t->gsize;
            float amax = 0.0f;
            for (int c = 0; c < t->gsize; ++c)
                amax = fabsf(xg[c]) > amax ? fabsf(xg[c]) : amax;
            const float s = stored_scale(t, amax / 127.0f);
            put_scale(t, r * t->groups + g, s);
            for (int c = 0; c < t->gsize; ++c) {
                int q = 0;
                if (s != 0.0f) {
                    const float v = nearbyintf(xg[c] / s);
                    q = v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
                }
                const int8_t b = (int8_t)q;
                put_bytes(t, at + (size_t)(g * t->gsize + c), &b, 1);
            }
        }
        return;
    case CLATTN_KV_INT4:
        for (int g = 0; g < t->groups; ++g) {
            const float *xg = x + g * t->gsize;
            float lo = xg[0], hi = xg[0];
            for (int c = 1; c < t->gsize; ++c) {
                lo = xg[c] < lo ? xg[c] : lo;
                hi = xg[c] > hi ? xg[c] : hi;
            }
            float s = stored_scale(t, (hi - lo) / 15.0f), z;
            const int flat = s == 0.0f;
            if (flat) { /* clattn.h: x = (0 - (-1)) * lo */
                s = stored_scale(t, lo);
                z = -1.0f;
            } else {
                z = stored_scale(t, -lo / s);
            }
            put_scale(t, (r * t->groups + g) * 2, s);
            put_scale(t, (r * t->groups + g) * 2 + 1, z);
            for (int c = 0; c < t->gsize; c += 2) {
                int q[2] = {0, 0};
                for (int k = 0; k < 2 && !flat; ++k) {
                    const float v = nearbyintf(xg[c + k] / s + z);
                    q[k] = v > 15.0f ? 15 : v < 0.0f ? 0 : (int)v;
                }
                const uint8_t b = (uint8_t)(q[0] | q[1] << 4);
                put_bytes(t, at + (size_t)(g * t->gsize + c) / 2, &b, 1);
            }
        }
        return;
    case CLATTN_KV_Q8_0:
        for (int blk = 0; blk < D / 32; ++blk) {
            const float *xb = x + blk * 32;
            float amax = 0.0f;
            for (int c = 0; c < 32; ++c)
                amax = fabsf(xb[c]) > amax ? fabsf(xb[c]) : amax;
            const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            uint8_t out[34];
            const uint16_t h = f16_bits(d);
            memcpy(out, &h, 2);
            for (int c = 0; c < 32; ++c)
                out[2 + c] = (uint8_t)(int8_t)roundf(mul_f(xb[c], id));
            put_bytes(t, at + 34 * (size_t)blk, out, 34);
        }
        return;
    case CLATTN_KV_Q4_0:
        for (int blk = 0; blk < D / 32; ++blk) {
            const float *xb = x + blk * 32;
            float amax = 0.0f, m = 0.0f;
            for (int c = 0; c < 32; ++c)
                if (fabsf(xb[c]) > amax) {
                    amax = fabsf(xb[c]);
                    m = xb[c];
                }
            const float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            uint8_t out[18];
            const uint16_t h = f16_bits(d);
            memcpy(out, &h, 2);
            for (int c = 0; c < 16; ++c) {
                int q0 = (int)(mul_f(xb[c], id) + 8.5f), q1 = (int)(mul_f(xb[c + 16], id) + 8.5f);
                q0 = q0 > 15 ? 15 : q0;
                q1 = q1 > 15 ? 15 : q1;
                out[2 + c] = (uint8_t)(q0 | q1 << 4);
            }
            put_bytes(t, at + 18 * (size_t)blk, out, 18);
        }
        return;
    default: {
        const float s = scale_at(t, t->sinit, t->sp->per_head ? kvh : 0);
        for (int c = 0; c < D; ++c) {
            const uint8_t b = fp8_bits(x[c] / s, t->fmt == CLATTN_KV_FP8_E5M2);
            put_bytes(t, at + (size_t)c, &b, 1);
        }
        return;
    }
    }
}

/* (b): the device's row (at unit offset off) dequantized, against x. Returns
 * the number of channels outside the format's bound (the first is logged). */
static int check_row_error(const tens *t, const float *x, int64_t off, int64_t r, int kvh,
                           const char *label)
{
    const uint8_t *row = t->got + (size_t)off * (size_t)t->ub;
    const int D = t->dims;
    int bad = 0;
    for (int c = 0; c < D; ++c) {
        double got = 0.0, bound = 0.0;
        const double xv = x[c];
        const int g = c / t->gsize;
        switch (t->fmt) {
        case CLATTN_KV_F32: {
            float f;
            memcpy(&f, row + 4 * c, 4);
            got = f;
            break;
        }
        case CLATTN_KV_F16:
        case CLATTN_KV_BF16: {
            uint16_t h;
            memcpy(&h, row + 2 * c, 2);
            got = t->fmt == CLATTN_KV_F16 ? f16_value(h) : bf16_value(h);
            bound = t->fmt == CLATTN_KV_F16 ? fabs(xv) * 0x1p-11 + 0x1p-25 : fabs(xv) * 0x1p-8;
            break;
        }
        case CLATTN_KV_INT8: {
            const double s = scale_at(t, t->sgot, r * t->groups + g);
            got = (int8_t)row[c] * s;
            bound = s * (0.5 + 1e-5);
            break;
        }
        case CLATTN_KV_INT4: {
            const double s = scale_at(t, t->sgot, (r * t->groups + g) * 2);
            const double z = scale_at(t, t->sgot, (r * t->groups + g) * 2 + 1);
            const int q = (c & 1) ? row[c / 2] >> 4 : row[c / 2] & 15;
            got = (q - z) * s;
            float lo = x[g * t->gsize], hi = lo;
            for (int k = 0; k < t->gsize; ++k) {
                lo = x[g * t->gsize + k] < lo ? x[g * t->gsize + k] : lo;
                hi = x[g * t->gsize + k] > hi ? x[g * t->gsize + k] : hi;
            }
            /* fp16 scales and zeros move the grid by a few 2^-11 steps */
            const double slack = t->sp->sdt == CLATTN_F16 ? 0.02 : 1e-5;
            bound = lo == hi ? fabs(xv) * (t->sp->sdt == CLATTN_F16 ? 0x1p-11 : 0.0)
                             : fabs(s) * (0.5 + slack);
            break;
        }
        case CLATTN_KV_Q8_0:
        case CLATTN_KV_Q4_0: {
            const int q8 = t->fmt == CLATTN_KV_Q8_0;
            const uint8_t *blk = row + (size_t)(c / 32) * (q8 ? 34 : 18);
            uint16_t h;
            memcpy(&h, blk, 2);
            const double d16 = f16_value(h);
            float amax = 0.0f, m = 0.0f;
            for (int k = c / 32 * 32; k < c / 32 * 32 + 32; ++k)
                if (fabsf(x[k]) > amax) {
                    amax = fabsf(x[k]);
                    m = x[k];
                }
            if (q8) {
                const double d = amax / 127.0;
                got = (int8_t)blk[2 + c % 32] * d16;
                bound = 0.5 * d * (1 + 1e-5) + 127.0 * fabs(d16 - d);
            } else {
                const double d = m / -8.0;
                const int i = c % 32;
                const int q = i < 16 ? blk[2 + i] & 15 : blk[2 + i - 16] >> 4;
                got = (q - 8) * d16;
                /* ggml's asymmetry: values beyond +7.5 steps (the side away
                 * from the maximum) are capped at code 15, one step short */
                const int capped = d != 0.0 && xv / d + 8.5 >= 16.0 - 1e-6;
                bound = (capped ? 1.0 : 0.5) * fabs(d) * (1 + 1e-5) + 8.0 * fabs(d16 - d);
            }
            break;
        }
        default: {
            const int e5 = t->fmt == CLATTN_KV_FP8_E5M2;
            const double s = scale_at(t, t->sgot, t->sp->per_head ? kvh : 0);
            const double v = xv / s, maxv = fp8_value(fp8_max_code(e5), e5);
            const double dec = fp8_value(row[c], e5);
            if (fabs(v) >= maxv) {
                got = dec;
                bound = 0.0;
                if (fabs(dec) != maxv || (dec < 0) != (v < 0)) {
                    if (!bad++)
                        T_FAIL("%s channel %d: %g / scale %g = %g must saturate to %g, got "
                               "code 0x%02x (%g)",
                               label, c, xv, s, v, v < 0 ? -maxv : maxv, row[c], dec);
                }
                continue;
            }
            int e;
            frexp(fabs(v), &e);
            const int emin = e5 ? -14 : -6, mb = e5 ? 2 : 3;
            const int binade = e - 1 < emin ? emin : e - 1;
            if (!(fabs(dec - v) <= ldexp(1.0, binade - mb - 1) * (1 + 1e-5) + 1e-6 * fabs(v))) {
                if (!bad++)
                    T_FAIL("%s channel %d: %g / scale %g = %.9g, code 0x%02x = %.9g is more "
                           "than half a step away",
                           label, c, xv, s, v, row[c], dec);
            }
            continue;
        }
        }
        if (!(fabs(got - xv) <= bound)) {
            if (!bad++)
                T_FAIL("%s channel %d: input %.9g, stored %.9g, error %.3g above the bound %.3g",
                       label, c, xv, got, fabs(got - xv), bound);
        }
    }
    return bad;
}

/* ==== one append ========================================================== */

typedef struct run_cfg {
    const spec *k, *v;
    clattn_dtype dtype;
    int layout, n_new;
    int head_dim, head_dim_v;
    /* device-side junk: sequence 1's position out of range (1..4 picks
     * which), or a table entry of sequence 1's tokens outside the pool */
    int bad_pos, bad_page;
    uint64_t seed;
} run_cfg;

enum { B = 2, KVH = 2, HEADS = 4, SEQ_KV = 40 };

static const char *dtype_name(clattn_dtype t)
{
    return t == CLATTN_F32 ? "f32" : t == CLATTN_F16 ? "f16" : "bf16";
}

/* A random input value in the dtype (never zero), its float value in *f. */
static void random_value(clattn_dtype dt, float want, float *f, void *raw, int64_t i)
{
    float v = want;
    if (dt == CLATTN_F16) {
        const uint16_t h = f16_bits(v);
        v = f16_value(h);
        memcpy((uint8_t *)raw + 2 * i, &h, 2);
    } else if (dt == CLATTN_BF16) {
        const uint16_t h = bf16_bits(v);
        v = bf16_value(h);
        memcpy((uint8_t *)raw + 2 * i, &h, 2);
    } else {
        memcpy((uint8_t *)raw + 4 * i, &v, 4);
    }
    *f = v;
}

static float draw(t_rng *rng)
{
    /* mostly O(1), a tenth spread over four decades below */
    const double mag = t_rng_uniform(rng, 0.0, 1.0) < 0.9
                           ? t_rng_uniform(rng, 0.05, 4.0)
                           : exp(t_rng_uniform(rng, log(1e-5), log(0.05)));
    return (float)(t_rng_int(rng, 0, 1) ? mag : -mag);
}

/* Values that reach a format's corner cases, in the first row of the first
 * sequence and kv head (whose tokens are always appended). */
static void special_row(const tens *t, float *w)
{
    switch (t->fmt) {
    case CLATTN_KV_INT8:
    case CLATTN_KV_Q8_0:
    case CLATTN_KV_Q4_0:
        /* an all-zero group / block: scale or d 0 */
        for (int c = 0; c < (t->fmt == CLATTN_KV_INT8 ? t->gsize : 32); ++c)
            w[c] = 0.0f;
        return;
    case CLATTN_KV_INT4:
        for (int c = 0; c < t->gsize; ++c)
            w[c] = -1.3671875f; /* a constant group */
        return;
    case CLATTN_KV_FP8_E4M3:
    case CLATTN_KV_FP8_E5M2: {
        const float s = scale_at(t, t->sinit, 0);
        const int e5 = t->fmt == CLATTN_KV_FP8_E5M2;
        /* subnormals (at ties where the scale is a power of two), ties
         * between normals, and values beyond the largest finite one */
        for (int c = 0; c < 8; ++c)
            w[c] = s * (float)ldexp(c + 0.5, e5 ? -16 : -9) * (c % 2 ? -1.0f : 1.0f);
        w[8] = s * (e5 ? 1.125f : 1.0625f);
        w[9] = -s * (e5 ? 1.375f : 1.1875f);
        w[10] = s * (e5 ? 60000.0f : 460.0f);
        w[11] = -s * (e5 ? 1e6f : 1e4f);
        return;
    }
    default:
        return;
    }
}

static int tens_alloc(tens *t, size_t bytes, size_t sbytes)
{
    t->bytes = bytes;
    t->sbytes = sbytes;
    const size_t nb = bytes + GUARD, ns = sbytes + GUARD;
    t->init = malloc(nb);
    t->expect = malloc(nb);
    t->touched = calloc(nb, 1);
    t->got = malloc(nb);
    t->sinit = malloc(ns);
    t->sexpect = malloc(ns);
    t->stouched = calloc(ns, 1);
    t->sgot = malloc(ns);
    if (!t->init || !t->expect || !t->touched || !t->got || !t->sinit || !t->sexpect ||
        !t->stouched || !t->sgot) {
        T_FAIL("out of host memory");
        return -1;
    }
    return 0;
}

static void tens_free(tens *t)
{
    free(t->init);
    free(t->expect);
    free(t->touched);
    free(t->got);
    free(t->sinit);
    free(t->sexpect);
    free(t->stouched);
    free(t->sgot);
    if (t->buf)
        clReleaseMemObject(t->buf);
    if (t->sbuf)
        clReleaseMemObject(t->sbuf);
    memset(t, 0, sizeof *t);
}

/* Fills t's layout for the run: strides in units, sizes, poison, FP8 scales. */
static int tens_setup(tens *t, const spec *sp, clattn_dtype dt, int dims, const run_cfg *rc,
                      int64_t n0, int64_t n2, unsigned salt)
{
    memset(t, 0, sizeof *t);
    t->sp = sp;
    t->fmt = resolved(sp, dt);
    t->dims = dims;
    t->ub = unit_bytes(t->fmt);
    t->gsize = (t->fmt == CLATTN_KV_INT8 || t->fmt == CLATTN_KV_INT4) && sp->group ? sp->group
               : t->fmt == CLATTN_KV_INT8 || t->fmt == CLATTN_KV_INT4           ? dims
               : t->fmt == CLATTN_KV_Q8_0 || t->fmt == CLATTN_KV_Q4_0           ? 32
                                                                                : 1;
    t->groups = dims / t->gsize;
    t->sdt_bytes = sp->sdt == CLATTN_F16 ? 2 : 4;
    const int64_t row = row_units(t->fmt, dims);
    switch (rc->layout) {
    case L_PADDED: /* even pads: Q8_0 / Q4_0 strides must stay even */
        t->st.seq = row + 6;
        t->st.head = t->st.seq * n2 + 10;
        t->st.batch = t->st.head * KVH + 14;
        break;
    case L_TOKEN_MAJOR:
        t->st.head = row;
        t->st.seq = KVH * row;
        t->st.batch = n2 * KVH * row;
        break;
    default:
        t->st.seq = row;
        t->st.head = row * n2;
        t->st.batch = row * n2 * KVH;
        break;
    }
    const int64_t extent = (n0 - 1) * t->st.batch + (KVH - 1) * t->st.head +
                           (n2 - 1) * t->st.seq + row;
    const int64_t rows = n0 * KVH * n2;
    size_t sbytes = 0;
    if (t->fmt == CLATTN_KV_INT8)
        sbytes = (size_t)(rows * t->groups * t->sdt_bytes);
    else if (t->fmt == CLATTN_KV_INT4)
        sbytes = (size_t)(rows * t->groups * 2 * t->sdt_bytes);
    else if (is_fp8(t->fmt))
        sbytes = (size_t)((sp->per_head ? KVH : 1) * t->sdt_bytes);
    if (tens_alloc(t, (size_t)extent * (size_t)t->ub, sbytes) != 0)
        return -1;
    for (size_t i = 0; i < t->bytes + GUARD; ++i)
        t->init[i] = poison_byte(i, salt);
    for (size_t i = 0; i < t->sbytes + GUARD; ++i)
        t->sinit[i] = poison_byte(i, salt ^ 0x5cu);
    if (is_fp8(t->fmt)) {
        /* Power-of-two scales make x / scale exact (ties stay ties); the
         * fp16 ones are not, so the division's rounding is tested too. */
        static const float e4m3[2][1] = {{0x1p-7f}, {0.0123f}};
        static const float e5m2[2][2] = {{0x1p-6f, 0x1p-15f}, {0.0137f, 3.1e-5f}};
        const int f16 = sp->sdt == CLATTN_F16;
        for (int h = 0; h < (sp->per_head ? KVH : 1); ++h) {
            const float s = t->fmt == CLATTN_KV_FP8_E4M3 ? e4m3[f16][0] : e5m2[f16][h];
            if (f16) {
                const uint16_t b = f16_bits(s);
                memcpy(t->sinit + 2 * h, &b, 2);
            } else {
                memcpy(t->sinit + 4 * h, &s, 4);
            }
        }
    }
    memcpy(t->expect, t->init, t->bytes + GUARD);
    memcpy(t->sexpect, t->sinit, t->sbytes + GUARD);
    return 0;
}

static cl_mem make_buffer(cl_context c, const void *init, size_t n)
{
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n, (void *)init, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu) -> %d", n, (int)err);
    return err == CL_SUCCESS ? m : NULL;
}

/* (a) and (c): device bytes against the expected image. */
static void compare_image(const char *label, const char *what, const uint8_t *got,
                          const uint8_t *expect, const uint8_t *touched, size_t n)
{
    size_t wrong = 0, damaged = 0, first_w = 0, first_d = 0;
    for (size_t i = 0; i < n; ++i) {
        if (got[i] == expect[i])
            continue;
        if (touched[i]) {
            if (!wrong++)
                first_w = i;
        } else if (!damaged++) {
            first_d = i;
        }
    }
    if (wrong)
        T_FAIL("%s: %s: %zu written bytes differ from the host quantizer (first at byte %zu: "
               "0x%02x, expected 0x%02x)",
               label, what, wrong, first_w, got[first_w], expect[first_w]);
    if (damaged)
        T_FAIL("%s: %s: %zu bytes outside the appended tokens changed (first at byte %zu: "
               "0x%02x, was 0x%02x)",
               label, what, damaged, first_d, got[first_d], expect[first_d]);
}

/* One append's state: the problem, K and V with their images, the new
 * tokens, the positions and (paged) the block table, the device buffers. */
typedef struct append_run {
    const run_cfg *rc;
    clattn_problem p;
    char label[256];
    int paged, ps, mpp, npages; /* page size, pages per sequence, in the pool */
    int dims[2];
    size_t esz; /* bytes of a new token's element in the dtype */
    tens kv[2];
    float *x[2];
    void *raw[2];
    int32_t *table;
    int32_t pos[B];
    cl_mem newb[2], posb, tabb;
} append_run;

/* The problem of rc's append and the run's label. */
static void append_problem(append_run *a)
{
    const run_cfg *rc = a->rc;
    a->paged = rc->layout >= L_PAGED1;
    a->ps = rc->layout == L_PAGED1 ? 1 : 16;
    a->mpp = a->paged ? (SEQ_KV + a->ps - 1) / a->ps : 0;
    a->npages = a->paged ? B * a->mpp + 3 : 0; /* 3 pages no sequence uses */
    a->dims[0] = rc->head_dim;
    a->dims[1] = rc->head_dim_v;
    a->esz = rc->dtype == CLATTN_F32 ? 4 : 2;
    clattn_problem *p = &a->p;
    memset(p, 0, sizeof *p);
    p->batch = B;
    p->heads = HEADS;
    p->kv_heads = KVH;
    p->seq_q = 1;
    p->seq_kv = SEQ_KV;
    p->head_dim = rc->head_dim;
    p->head_dim_v = rc->head_dim_v;
    p->dtype = rc->dtype;
    const spec *sps[2] = {rc->k, rc->v};
    clattn_kv_storage *sto[2] = {&p->k_storage, &p->v_storage};
    for (int i = 0; i < 2; ++i) {
        sto[i]->format = sps[i]->fmt;
        sto[i]->group = sps[i]->group;
        sto[i]->scale_dtype = has_scales(sps[i]->fmt) ? sps[i]->sdt : CLATTN_F32;
        sto[i]->per_head = sps[i]->per_head;
    }
    if (a->paged) {
        p->paged.enabled = 1;
        p->paged.page_size = a->ps;
        p->paged.num_pages = a->npages;
        p->paged.max_pages_per_seq = a->mpp;
    }
    snprintf(a->label, sizeof a->label, "K %s, V %s, %s, %s, n_new %d, D %d/%d%s%s",
             rc->k->name, rc->v->name, dtype_name(rc->dtype), k_layout_names[rc->layout],
             rc->n_new, rc->head_dim, rc->head_dim_v,
             rc->bad_pos ? ", seq 1 out of range" : "", rc->bad_page ? ", a bad table entry" : "");
}

/* The new tokens of K and V: values as the kernel reads them and their bits
 * in the dtype (each tensor's first row a special one). 0, or -1 out of
 * memory. */
static int draw_new_tokens(append_run *a, t_rng *rng)
{
    const run_cfg *rc = a->rc;
    for (int i = 0; i < 2; ++i) {
        const int dims = a->dims[i];
        const size_t n = (size_t)B * KVH * rc->n_new * dims;
        a->x[i] = malloc(n * sizeof(float));
        a->raw[i] = malloc(n * a->esz);
        float *w = malloc((size_t)dims * sizeof(float));
        if (!a->x[i] || !a->raw[i] || !w) {
            free(w);
            T_FAIL("out of host memory");
            return -1;
        }
        for (size_t r = 0; r < n / (size_t)dims; ++r) {
            for (int d = 0; d < dims; ++d)
                w[d] = draw(rng);
            if (r == 0)
                special_row(&a->kv[i], w);
            for (int d = 0; d < dims; ++d)
                random_value(rc->dtype, w[d], &a->x[i][r * dims + d], a->raw[i],
                             (int64_t)(r * dims + d));
        }
        free(w);
        a->kv[i].x = a->x[i];
        a->kv[i].xraw = a->raw[i];
    }
    return 0;
}

/* Positions (sequence 1's out of range with bad_pos) and, paged, a block
 * table over shuffled pages (one entry outside the pool with bad_page). 0,
 * or -1 out of memory. */
static int draw_positions(append_run *a, t_rng *rng)
{
    const run_cfg *rc = a->rc;
    for (int b = 0; b < B; ++b)
        a->pos[b] = t_rng_int(rng, 0, SEQ_KV - rc->n_new);
    if (rc->bad_pos) {
        const int32_t bad[4] = {-1, SEQ_KV - rc->n_new + 1, INT_MIN, INT_MAX};
        a->pos[1] = bad[(rc->bad_pos - 1) % 4];
    }
    if (!a->paged)
        return 0;
    a->table = malloc(sizeof *a->table * (size_t)B * a->mpp);
    int *perm = malloc(sizeof *perm * (size_t)a->npages);
    if (!a->table || !perm) {
        free(perm);
        T_FAIL("out of host memory");
        return -1;
    }
    for (int i = 0; i < a->npages; ++i)
        perm[i] = i;
    for (int i = a->npages - 1; i > 0; --i) {
        const int j = t_rng_int(rng, 0, i), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int i = 0; i < B * a->mpp; ++i)
        a->table[i] = perm[i];
    free(perm);
    if (rc->bad_page && a->pos[1] >= 0 && a->pos[1] <= SEQ_KV - rc->n_new) {
        /* the page of sequence 1's last new token */
        const int32_t bad[3] = {-1, a->npages, INT_MIN};
        a->table[a->mpp + (a->pos[1] + rc->n_new - 1) / a->ps] = bad[(rc->bad_page - 1) % 3];
    }
    return 0;
}

/* Where new token tok of (b, h) goes: its page (or batch), slot (or key) and
 * K/V row number. 0 when it is written, -1 when its position or page is
 * junk (nothing may be written). */
static int token_target(const append_run *a, int b, int h, int tok, int64_t *page,
                        int64_t *slot, int64_t *row)
{
    if (a->pos[b] < 0 || a->pos[b] > SEQ_KV - a->rc->n_new)
        return -1;
    const int j = a->pos[b] + tok;
    if (!a->paged) {
        *page = b;
        *slot = j;
        *row = ((int64_t)b * KVH + h) * SEQ_KV + j;
        return 0;
    }
    *page = a->table[b * a->mpp + j / a->ps];
    *slot = j % a->ps;
    if (*page < 0 || *page >= a->npages)
        return -1;
    *row = (*page * KVH + h) * a->ps + *slot;
    return 0;
}

/* The host's expected image of K, V and their scales. */
static void expected_image(append_run *a)
{
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < KVH; ++h)
            for (int tok = 0; tok < a->rc->n_new; ++tok) {
                int64_t page, slot, r;
                if (token_target(a, b, h, tok, &page, &slot, &r) != 0)
                    continue;
                for (int i = 0; i < 2; ++i) {
                    const tens *t = &a->kv[i];
                    const int64_t off = page * t->st.batch + h * t->st.head + slot * t->st.seq;
                    const int64_t src =
                        (((int64_t)b * KVH + h) * a->rc->n_new + tok) * a->dims[i];
                    host_row(&a->kv[i], a->x[i] + src,
                             (const uint8_t *)a->raw[i] + src * (int64_t)a->esz, a->rc->dtype,
                             off, r, h);
                }
            }
}

/* The append on the device and its K, V and scales read back. 0, or -1
 * after a failed check. */
static int device_append(clattn_context *ctx, append_run *a)
{
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    const int before = t_failures;
    const run_cfg *rc = a->rc;
    for (int i = 0; i < 2; ++i) {
        a->newb[i] = make_buffer(c, a->raw[i], (size_t)B * KVH * rc->n_new * a->dims[i] * a->esz);
        a->kv[i].buf = make_buffer(c, a->kv[i].init, a->kv[i].bytes + GUARD);
        if (a->kv[i].sbytes)
            a->kv[i].sbuf = make_buffer(c, a->kv[i].sinit, a->kv[i].sbytes + GUARD);
    }
    a->posb = make_buffer(c, a->pos, sizeof a->pos);
    if (a->paged)
        a->tabb = make_buffer(c, a->table, sizeof *a->table * (size_t)B * a->mpp);
    if (t_failures != before)
        return -1;
    clattn_buffers cb;
    memset(&cb, 0, sizeof cb);
    cb.k = a->kv[0].buf;
    cb.v = a->kv[1].buf;
    cb.k_scales = a->kv[0].sbuf;
    cb.v_scales = a->kv[1].sbuf;
    cb.block_table = a->tabb;
    cl_event done = NULL;
    const clattn_status st = clattn_kv_append(ctx, &a->p, rc->n_new, a->newb[0], a->newb[1],
                                              a->posb, &cb, 0, NULL, &done);
    T_CHECK(st == CLATTN_OK && done, "%s: clattn_kv_append -> %s: %s", a->label,
            clattn_status_string(st), clattn_last_error(ctx));
    if (st != CLATTN_OK)
        return -1;
    T_CL(clWaitForEvents(1, &done));
    clReleaseEvent(done);
    for (int i = 0; i < 2; ++i) {
        tens *t = &a->kv[i];
        T_CL(clEnqueueReadBuffer(q, t->buf, CL_TRUE, 0, t->bytes + GUARD, t->got, 0, NULL, NULL));
        if (t->sbuf)
            T_CL(clEnqueueReadBuffer(q, t->sbuf, CL_TRUE, 0, t->sbytes + GUARD, t->sgot, 0, NULL,
                                     NULL));
        else
            memcpy(t->sgot, t->sinit, t->sbytes + GUARD);
    }
    return t_failures == before ? 0 : -1;
}

/* (a) and (c) on the images, then (b) on every written row; returns the
 * rows checked. */
static int check_append(const append_run *a)
{
    const char *names[2][2] = {{"K", "K scales"}, {"V", "V scales"}};
    for (int i = 0; i < 2; ++i) {
        const tens *t = &a->kv[i];
        compare_image(a->label, names[i][0], t->got, t->expect, t->touched, t->bytes + GUARD);
        compare_image(a->label, names[i][1], t->sgot, t->sexpect, t->stouched,
                      t->sbytes + GUARD);
    }
    int rows = 0;
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < KVH; ++h)
            for (int tok = 0; tok < a->rc->n_new; ++tok) {
                int64_t page, slot, r;
                if (token_target(a, b, h, tok, &page, &slot, &r) != 0)
                    continue;
                for (int i = 0; i < 2; ++i) {
                    const tens *t = &a->kv[i];
                    char rl[320];
                    snprintf(rl, sizeof rl, "%s: %s of b %d kvh %d key %d", a->label,
                             names[i][0], b, h, a->pos[b] + tok);
                    const int64_t off = page * t->st.batch + h * t->st.head + slot * t->st.seq;
                    const int64_t src =
                        (((int64_t)b * KVH + h) * a->rc->n_new + tok) * a->dims[i];
                    check_row_error(&a->kv[i], a->x[i] + src, off, r, h, rl);
                }
                ++rows;
            }
    return rows;
}

static void append_run_free(append_run *a)
{
    for (int i = 0; i < 2; ++i) {
        tens_free(&a->kv[i]);
        free(a->x[i]);
        free(a->raw[i]);
        if (a->newb[i])
            clReleaseMemObject(a->newb[i]);
    }
    if (a->posb)
        clReleaseMemObject(a->posb);
    if (a->tabb)
        clReleaseMemObject(a->tabb);
    free(a->table);
}

/* One append with the run's configuration; returns the rows checked. */
static int run_append(clattn_context *ctx, const run_cfg *rc)
{
    const int before = t_failures;
    t_rng rng;
    t_rng_seed(&rng, rc->seed);
    append_run a;
    memset(&a, 0, sizeof a);
    a.rc = rc;
    append_problem(&a);
    const int64_t n0 = a.paged ? a.npages : B, n2 = a.paged ? a.ps : SEQ_KV;
    int rows_checked = 0;
    const spec *sps[2] = {rc->k, rc->v};
    int ok = 1;
    for (int i = 0; i < 2 && ok; ++i)
        ok = tens_setup(&a.kv[i], sps[i], rc->dtype, a.dims[i], rc, n0, n2, i ? 0x3cu : 0u) == 0;
    if (ok && (rc->layout == L_PADDED || rc->layout == L_TOKEN_MAJOR)) {
        a.p.k_strides = a.kv[0].st;
        a.p.v_strides = a.kv[1].st;
    }
    ok = ok && draw_new_tokens(&a, &rng) == 0 && draw_positions(&a, &rng) == 0;
    if (ok) {
        expected_image(&a);
        if (device_append(ctx, &a) == 0)
            rows_checked = check_append(&a);
    }
    t_log("%s %s (%d rows)", t_failures == before ? "ok  " : "BAD ", a.label, rows_checked);
    append_run_free(&a);
    return rows_checked;
}

/* Nothing at all is written when every position or table entry is junk. */
static void all_out_of_range(clattn_context *ctx)
{
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    const int before = t_failures;
    enum { NB = 4, D = 32, PS = 4, MPP = 4, NP = 8, N = 3 };
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = NB;
    p.heads = 2;
    p.kv_heads = 1;
    p.seq_q = 1;
    p.seq_kv = PS * MPP;
    p.head_dim = D;
    p.dtype = CLATTN_F32;
    p.k_storage.format = CLATTN_KV_INT8;
    p.v_storage.format = CLATTN_KV_Q4_0;
    const int32_t pos_bad[NB] = {-1, PS * MPP - N + 1, INT_MIN, INT_MAX};
    const int32_t pos_ok[NB] = {0, 5, PS * MPP - N, 2};
    int32_t table[NB * MPP];
    for (int i = 0; i < NB * MPP; ++i)
        table[i] = i % 3 == 0 ? -1 : i % 3 == 1 ? NP : INT_MIN;
    float newv[NB * N * D];
    for (int i = 0; i < NB * N * D; ++i)
        newv[i] = (float)(i % 7) - 2.5f;
    for (int pass = 0; pass < 2; ++pass) {
        /* pass 0: contiguous, every position out of range; pass 1: paged,
         * good positions, a table of nothing but bad entries */
        p.paged.enabled = pass;
        p.paged.page_size = pass ? PS : 0;
        p.paged.num_pages = pass ? NP : 0;
        p.paged.max_pages_per_seq = pass ? MPP : 0;
        const size_t rows = pass ? (size_t)NP * PS : (size_t)NB * PS * MPP;
        const size_t n[3] = {rows * D + GUARD, rows * 18 + GUARD, rows * 4 + GUARD};
        uint8_t *init[3], *got[3];
        cl_mem m[3] = {NULL, NULL, NULL};
        int ok = 1;
        for (int i = 0; i < 3; ++i) {
            init[i] = malloc(n[i]);
            got[i] = malloc(n[i]);
            ok = ok && init[i] && got[i];
            for (size_t j = 0; init[i] && j < n[i]; ++j)
                init[i][j] = poison_byte(j, (unsigned)i);
            m[i] = init[i] ? make_buffer(c, init[i], n[i]) : NULL;
            ok = ok && m[i];
        }
        cl_mem kn = make_buffer(c, newv, sizeof newv), vn = make_buffer(c, newv, sizeof newv);
        cl_mem pb = make_buffer(c, pass ? pos_ok : pos_bad, sizeof pos_bad);
        cl_mem tb = pass ? make_buffer(c, table, sizeof table) : NULL;
        if (ok && kn && vn && pb && (tb || !pass)) {
            clattn_buffers cb;
            memset(&cb, 0, sizeof cb);
            cb.k = m[0];
            cb.v = m[1];
            cb.k_scales = m[2];
            cb.block_table = tb;
            cl_event done = NULL;
            const clattn_status st =
                clattn_kv_append(ctx, &p, N, kn, vn, pb, &cb, 0, NULL, &done);
            T_CHECK(st == CLATTN_OK, "out of range (%s): clattn_kv_append -> %s: %s",
                    pass ? "table" : "positions", clattn_status_string(st),
                    clattn_last_error(ctx));
            if (done) {
                T_CL(clWaitForEvents(1, &done));
                clReleaseEvent(done);
            }
            for (int i = 0; i < 3; ++i) {
                T_CL(clEnqueueReadBuffer(q, m[i], CL_TRUE, 0, n[i], got[i], 0, NULL, NULL));
                T_CHECK(!memcmp(got[i], init[i], n[i]), "out of range (%s): the cache's %s "
                        "changed", pass ? "table" : "positions",
                        i == 0 ? "K" : i == 1 ? "V" : "K scales");
            }
        } else {
            T_FAIL("out of range: setting up the buffers failed");
        }
        const cl_mem all[7] = {kn, vn, pb, tb, m[0], m[1], m[2]};
        for (int i = 0; i < 7; ++i)
            if (all[i])
                clReleaseMemObject(all[i]);
        for (int i = 0; i < 3; ++i) {
            free(init[i]);
            free(got[i]);
        }
    }
    t_log("%s every position / table entry out of range: nothing written",
          t_failures == before ? "ok  " : "BAD ");
}

/* A user event on the wait list holds the kernel back until it completes. */
static void waits_for_event(clattn_context *ctx)
{
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    const int before = t_failures;
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.heads = 1;
    p.seq_q = 1;
    p.seq_kv = 4;
    p.head_dim = 4;
    p.dtype = CLATTN_F32;
    const float one[4] = {1, 2, 3, 4};
    const int32_t pos = 2;
    float cache[16], got[16];
    for (int i = 0; i < 16; ++i)
        cache[i] = -7.0f;
    cl_int err;
    cl_event gate = clCreateUserEvent(c, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateUserEvent -> %d", (int)err);
    cl_mem kn = make_buffer(c, one, sizeof one), vn = make_buffer(c, one, sizeof one);
    cl_mem pb = make_buffer(c, &pos, sizeof pos);
    clattn_buffers cb;
    memset(&cb, 0, sizeof cb);
    cb.k = make_buffer(c, cache, sizeof cache);
    cb.v = make_buffer(c, cache, sizeof cache);
    cl_event done = NULL;
    if (err == CL_SUCCESS && t_failures == before) {
        clattn_status st = clattn_kv_append(ctx, &p, 1, kn, vn, pb, &cb, 1, &gate, &done);
        T_CHECK(st == CLATTN_OK && done, "user event: clattn_kv_append -> %s: %s",
                clattn_status_string(st), clattn_last_error(ctx));
        if (done) {
            cl_int state = CL_COMPLETE;
            /* time for a kernel that ignored its wait list to finish (no
             * clFlush: Oclgrind's waits for the whole queue, user event
             * included, and would never return) */
            const struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
            T_CL(clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state,
                                NULL));
            T_CHECK(state != CL_COMPLETE, "user event: the append completed before its wait "
                    "list did");
            T_CL(clSetUserEventStatus(gate, CL_COMPLETE));
            T_CL(clWaitForEvents(1, &done));
            clReleaseEvent(done);
            T_CL(clEnqueueReadBuffer(q, cb.k, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL));
            T_CHECK(got[7] == -7.0f && got[8] == 1.0f && got[11] == 4.0f && got[12] == -7.0f,
                    "user event: key 2 holds %g %g .. %g, neighbours %g %g", got[8], got[9],
                    got[11], got[7], got[12]);
        } else {
            clSetUserEventStatus(gate, CL_COMPLETE);
        }
    }
    cl_mem all[5] = {kn, vn, pb, cb.k, cb.v};
    for (int i = 0; i < 5; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    if (gate)
        clReleaseEvent(gate);
    t_log("%s a user event on the wait list holds the append", t_failures == before ? "ok  "
                                                                                      : "BAD ");
}

void case_kv_append(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    static const int n_news[2] = {1, 5};
    int runs = 0, rows = 0;
    /* Every spec as K (with another spec as V, so K and V differ) on the
     * four layouts with both token counts; the dtype rotates. Layouts
     * with junk on the device side come in turn. */
    for (int i = 0; i < N_SPECS; ++i)
        for (int l = 0; l < 4; ++l)
            for (int n = 0; n < 2; ++n) {
                run_cfg rc;
                memset(&rc, 0, sizeof rc);
                rc.k = &k_specs[i];
                rc.v = &k_specs[(i + 7 + l) % N_SPECS];
                rc.dtype = dts[(i + l + n) % 3];
                rc.layout = l;
                rc.n_new = n_news[n];
                rc.head_dim = 64;
                rc.head_dim_v = 64;
                rc.bad_pos = (i + l + n) % 5 == 0 ? 1 + (i + n) % 4 : 0;
                rc.bad_page = l >= L_PAGED1 && (i + n) % 4 == 1 ? 1 + i % 3 : 0;
                rc.seed = 0xa99e0d00u + (uint64_t)(i * 64 + l * 8 + n);
                if (t_context_between_runs(&ctx) != 0)
                    return;
                rows += run_append(ctx, &rc);
                ++runs;
            }
    /* the token-major page layout, once per spec pair of different dims */
    for (int i = 0; i < N_SPECS; ++i) {
        run_cfg rc;
        memset(&rc, 0, sizeof rc);
        rc.k = &k_specs[i];
        rc.v = spec_fits(&k_specs[i], 96) ? &k_specs[i] : spec_named("int8/32 f32");
        rc.dtype = dts[i % 3];
        rc.layout = i % 2 ? L_TOKEN_MAJOR : L_PADDED;
        rc.n_new = 5;
        rc.head_dim = 128;
        rc.head_dim_v = 96;
        rc.seed = 0x70cea000u + (uint64_t)i;
        if (t_context_between_runs(&ctx) != 0)
            return;
        rows += run_append(ctx, &rc);
        ++runs;
    }
    {
        /* MLA's 576-channel K (one INT8 scale for the whole row) beside a
         * 512-channel V */
        run_cfg rc;
        memset(&rc, 0, sizeof rc);
        rc.k = spec_named("int8/row f16");
        rc.v = spec_named("q8_0");
        rc.dtype = CLATTN_BF16;
        rc.layout = L_PAGED16;
        rc.n_new = 5;
        rc.head_dim = 576;
        rc.head_dim_v = 512;
        rc.seed = 0x3a1a576u;
        rows += run_append(ctx, &rc);
        ++runs;
    }
    all_out_of_range(ctx);
    waits_for_event(ctx);
    t_log("%d appends, %d rows checked", runs, rows);
    clattn_context_destroy(ctx);
}

/* ==== kv_append_errors ==================================================== */

/* Whether msg contains one of the '|'-separated words as a whole name
 * (case-insensitive; '.' and '_' belong to names, so "k_storage.group"
 * is one). */
static int names_one_of(const char *msg, const char *words)
{
    for (const char *w = words; *w;) {
        const char *end = strchr(w, '|');
        const size_t len = end ? (size_t)(end - w) : strlen(w);
        for (const char *m = msg; *m; ++m) {
            size_t i = 0;
            while (i < len && m[i] && tolower((unsigned char)m[i]) == tolower((unsigned char)w[i]))
                ++i;
            const int name_char_before = m > msg && (isalnum((unsigned char)m[-1]) ||
                                                     m[-1] == '_' || m[-1] == '.');
            const int name_char_after = isalnum((unsigned char)m[len]) || m[len] == '_' ||
                                        (m[len] == '.' && isalnum((unsigned char)m[len + 1]));
            if (i == len && !name_char_before && !name_char_after)
                return 1;
        }
        if (!end)
            break;
        w = end + 1;
    }
    return 0;
}

/* A valid paged call (INT8/32 fp16-scaled K, per-head E5M2 V, f16 tokens)
 * that every refused call starts from, with exactly sized buffers. */
typedef struct aenv {
    clattn_context *ctx;
    cl_context c;
    cl_command_queue q;
    clattn_problem p;
    int n_new;
    cl_mem k_new, v_new, pos;
    clattn_buffers cb;
    cl_mem extra[4];
    int n_extra;
} aenv;

enum { E_B = 2, E_KVH = 2, E_D = 64, E_DV = 32, E_PS = 4, E_MPP = 4, E_NP = 9, E_N = 3 };

static cl_mem aenv_buffer(aenv *e, size_t n, int track)
{
    uint8_t *init = malloc(n);
    if (!init) {
        T_FAIL("out of host memory");
        return NULL;
    }
    for (size_t i = 0; i < n; ++i)
        init[i] = (uint8_t)(0x3c + i % 5); /* small positive fp16 values, valid scales */
    cl_mem m = make_buffer(e->c, init, n);
    free(init);
    if (m && track) {
        if (e->n_extra < 4)
            e->extra[e->n_extra++] = m;
        else
            T_FAIL("more than 4 extra buffers");
    }
    return m;
}

static int aenv_init(aenv *e)
{
    memset(e, 0, sizeof *e);
    e->ctx = t_context();
    if (!e->ctx)
        return -1;
    e->c = t_cl_context(e->ctx);
    e->q = t_queue(e->ctx);
    clattn_problem *p = &e->p;
    p->batch = E_B;
    p->heads = 4;
    p->kv_heads = E_KVH;
    p->seq_q = 1;
    p->seq_kv = E_PS * E_MPP;
    p->head_dim = E_D;
    p->head_dim_v = E_DV;
    p->dtype = CLATTN_F16;
    p->k_storage.format = CLATTN_KV_INT8;
    p->k_storage.group = 32;
    p->k_storage.scale_dtype = CLATTN_F16;
    p->v_storage.format = CLATTN_KV_FP8_E5M2;
    p->v_storage.per_head = 1;
    p->paged.enabled = 1;
    p->paged.page_size = E_PS;
    p->paged.num_pages = E_NP;
    p->paged.max_pages_per_seq = E_MPP;
    e->n_new = E_N;
    e->k_new = aenv_buffer(e, (size_t)E_B * E_KVH * E_N * E_D * 2, 0);
    e->v_new = aenv_buffer(e, (size_t)E_B * E_KVH * E_N * E_DV * 2, 0);
    const int32_t pos[E_B] = {0, 7};
    e->pos = make_buffer(e->c, pos, sizeof pos);
    int32_t table[E_B * E_MPP];
    for (int i = 0; i < E_B * E_MPP; ++i)
        table[i] = (i * 5) % E_NP;
    e->cb.block_table = make_buffer(e->c, table, sizeof table);
    const size_t rows = (size_t)E_NP * E_KVH * E_PS;
    e->cb.k = aenv_buffer(e, rows * E_D, 0);
    e->cb.v = aenv_buffer(e, rows * E_DV, 0);
    e->cb.k_scales = aenv_buffer(e, rows * (E_D / 32) * 2, 0);
    e->cb.v_scales = aenv_buffer(e, E_KVH * 4, 0);
    if (!e->k_new || !e->v_new || !e->pos || !e->cb.block_table || !e->cb.k || !e->cb.v ||
        !e->cb.k_scales || !e->cb.v_scales)
        return -1;
    cl_event done = NULL;
    clattn_status st = clattn_kv_append(e->ctx, p, e->n_new, e->k_new, e->v_new, e->pos, &e->cb,
                                        0, NULL, &done);
    T_CHECK(st == CLATTN_OK && done, "baseline: clattn_kv_append -> %s: %s (the refused calls "
            "start from it)", clattn_status_string(st), clattn_last_error(e->ctx));
    if (done) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    t_log("%s baseline accepted", st == CLATTN_OK ? "ok  " : "BAD ");
    return st == CLATTN_OK ? 0 : -1;
}

static void aenv_free(aenv *e)
{
    cl_mem all[9] = {e->k_new, e->v_new, e->pos, e->cb.block_table, e->cb.k, e->cb.v,
                     e->cb.k_scales, e->cb.v_scales, NULL};
    for (int i = 0; i < 9; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    while (e->n_extra > 0)
        clReleaseMemObject(e->extra[--e->n_extra]);
    if (e->ctx)
        clattn_context_destroy(e->ctx);
}

/* The buffers one call may touch, read back whole. */
typedef struct snap {
    cl_mem m[16];
    void *bytes[16];
    size_t size[16];
    int n;
} snap;

static void snap_add(snap *s, cl_command_queue q, cl_mem m)
{
    cl_context mc = NULL, qc = NULL;
    size_t size = 0;
    for (int i = 0; i < s->n; ++i)
        if (s->m[i] == m)
            return;
    if (!m || s->n == 16 ||
        clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(m, CL_MEM_CONTEXT, sizeof mc, &mc, NULL) != CL_SUCCESS ||
        clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL) != CL_SUCCESS ||
        mc != qc || !(s->bytes[s->n] = malloc(size)))
        return; /* another context's buffer cannot be read through q */
    T_CL(clEnqueueReadBuffer(q, m, CL_TRUE, 0, size, s->bytes[s->n], 0, NULL, NULL));
    s->m[s->n] = m;
    s->size[s->n++] = size;
}

static int snap_changed(snap *s, cl_command_queue q)
{
    int changed = 0;
    for (int i = 0; i < s->n; ++i) {
        void *now = malloc(s->size[i]);
        if (now) {
            T_CL(clEnqueueReadBuffer(q, s->m[i], CL_TRUE, 0, s->size[i], now, 0, NULL, NULL));
            changed += memcmp(now, s->bytes[i], s->size[i]) != 0;
            free(now);
        }
        free(s->bytes[i]);
    }
    s->n = 0;
    return changed;
}

typedef struct call {
    clattn_context *ctx;
    const clattn_problem *p;
    int n_new;
    cl_mem k_new, v_new, pos;
    const clattn_buffers *cb;
    cl_uint num_wait;
    const cl_event *wait;
} call;

static call base_call(aenv *e, const clattn_problem *p, const clattn_buffers *cb)
{
    call k = {e->ctx, p, e->n_new, e->k_new, e->v_new, e->pos, cb, 0, NULL};
    return k;
}

/* One refused call: INVALID_ARGUMENT, a message naming one of words, *done
 * NULL, no buffer changed. */
static void expect_refused(aenv *e, const char *name, const char *words, const call *k)
{
    const int before = t_failures;
    snap s;
    memset(&s, 0, sizeof s);
    const cl_mem mine[] = {e->k_new, e->v_new, e->pos, e->cb.block_table, e->cb.k, e->cb.v,
                           e->cb.k_scales, e->cb.v_scales, k->k_new, k->v_new, k->pos};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; ++i)
        snap_add(&s, e->q, mine[i]);
    if (k->cb) {
        const cl_mem theirs[] = {k->cb->k, k->cb->v, k->cb->block_table, k->cb->k_scales,
                                 k->cb->v_scales, k->cb->q, k->cb->o};
        for (size_t i = 0; i < sizeof theirs / sizeof theirs[0]; ++i)
            snap_add(&s, e->q, theirs[i]);
    }
    static char not_an_event;
    cl_event const sentinel = (cl_event)(void *)&not_an_event;
    cl_event done = sentinel;
    const clattn_status st = clattn_kv_append(k->ctx, k->p, k->n_new, k->k_new, k->v_new, k->pos,
                                              k->cb, k->num_wait, k->wait, &done);
    char msg[512];
    const char *m = k->ctx ? clattn_last_error(k->ctx) : NULL;
    snprintf(msg, sizeof msg, "%s", m ? m : "(none)");
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s: clattn_kv_append -> %s, expected %s; "
            "message \"%s\"", name, clattn_status_string(st),
            clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT), msg);
    T_CHECK(done == NULL, "%s: a refused call left *done = %p (%s)", name, (void *)done,
            done == sentinel ? "untouched" : "an event");
    if (done && done != sentinel) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    if (st != CLATTN_OK && k->ctx)
        T_CHECK(names_one_of(msg, words), "%s: message \"%s\" names none of \"%s\"", name, msg,
                words);
    T_CL(clFinish(e->q));
    const int changed = snap_changed(&s, e->q);
    T_CHECK(changed == 0, "%s: %d buffers were modified by a refused call", name, changed);
    t_log("%s %-40s -> \"%s\"", t_failures == before ? "ok  " : "BAD ", name, msg);
    while (e->n_extra > 0)
        clReleaseMemObject(e->extra[--e->n_extra]);
}

static void errors_arguments(aenv *e)
{
    call k = base_call(e, &e->p, &e->cb);
    k.ctx = NULL;
    expect_refused(e, "ctx NULL", "", &k);
    k = base_call(e, NULL, &e->cb);
    expect_refused(e, "cache NULL", "cache|problem", &k);
    k = base_call(e, &e->p, NULL);
    expect_refused(e, "cache_buffers NULL", "cache_buffers", &k);
    const int bad_n[3] = {0, -1, E_PS * E_MPP + 1};
    for (int i = 0; i < 3; ++i) {
        char name[64];
        snprintf(name, sizeof name, "n_new %d", bad_n[i]);
        k = base_call(e, &e->p, &e->cb);
        k.n_new = bad_n[i];
        expect_refused(e, name, "n_new", &k);
    }
    k = base_call(e, &e->p, &e->cb);
    k.k_new = NULL;
    expect_refused(e, "k_new NULL", "k_new", &k);
    k = base_call(e, &e->p, &e->cb);
    k.v_new = NULL;
    expect_refused(e, "v_new NULL", "v_new", &k);
    k = base_call(e, &e->p, &e->cb);
    k.pos = NULL;
    expect_refused(e, "positions NULL", "positions", &k);
    k = base_call(e, &e->p, &e->cb);
    k.num_wait = 1;
    expect_refused(e, "num_wait 1, wait NULL", "wait|num_wait", &k);
    cl_event null_ev[1] = {NULL};
    k.wait = null_ev;
    expect_refused(e, "wait[0] NULL", "wait", &k);
}

static void errors_problem(aenv *e)
{
    struct {
        const char *name, *words;
        int field, value;
    } cases[] = {
        {"varlen 1", "varlen", 0, 1},
        {"k_storage.format 10", "k_storage.format", 1, 10},
        {"k_storage.format -1", "k_storage.format", 1, -1},
        {"k_storage.group 48", "k_storage.group", 2, 48},
        {"k_storage.group 128 > head_dim", "k_storage.group", 2, 128},
        {"k_storage.scale_dtype BF16", "k_storage.scale_dtype", 3, CLATTN_BF16},
        {"k_storage.per_head on INT8", "k_storage.per_head", 4, 1},
        {"v_storage.per_head 2", "v_storage.per_head", 5, 2},
        {"v_storage.group on FP8", "v_storage.group", 6, 32},
        {"v_storage.scale_dtype 7", "v_storage.scale_dtype", 7, 7},
        {"paged.page_size 3", "paged.page_size|page_size", 8, 3},
        {"paged.page_size 0", "paged.page_size|page_size", 8, 0},
        {"paged.page_size 512", "paged.page_size|page_size", 8, 512},
        {"paged.num_pages 0", "paged.num_pages|num_pages", 9, 0},
        {"paged.max_pages_per_seq 0", "paged.max_pages_per_seq|max_pages_per_seq", 10, 0},
        {"seq_kv above the table's reach", "seq_kv|max_pages_per_seq", 11, E_PS * E_MPP + 1},
        {"paged.enabled 2", "paged.enabled", 12, 2},
        {"dtype 3", "dtype", 13, 3},
        {"heads not a multiple of kv_heads", "heads|kv_heads", 14, 3},
        {"k_strides.seq negative", "k_strides", 15, -1},
        {"k_strides.seq overlapping rows", "k_strides", 15, E_D - 1},
        {"v_storage Q8_0 with head_dim_v 32, odd strides", "v_strides", 16, 0},
        {"k INT4 with an odd head_dim", "k_storage|head_dim", 17, 0},
        {"v Q4_0 with head_dim_v 48", "v_storage|head_dim_v", 18, 0},
        {"paged off with page_size set", "paged|paged.enabled|page_size", 19, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        clattn_problem p = e->p;
        clattn_buffers cb = e->cb;
        const int v = cases[i].value;
        switch (cases[i].field) {
        case 0:
            p.varlen = v;
            p.total_q = 2;
            p.total_kv = 16;
            p.paged.enabled = 0;
            p.paged.page_size = p.paged.num_pages = p.paged.max_pages_per_seq = 0;
            cb.block_table = NULL;
            break;
        case 1:
            p.k_storage.format = (clattn_kv_format)v;
            break;
        case 2:
            p.k_storage.group = v;
            break;
        case 3:
            p.k_storage.scale_dtype = (clattn_dtype)v;
            break;
        case 4:
            p.k_storage.per_head = v;
            break;
        case 5:
            p.v_storage.per_head = v;
            break;
        case 6:
            p.v_storage.group = v;
            break;
        case 7:
            p.v_storage.scale_dtype = (clattn_dtype)v;
            break;
        case 8:
            p.paged.page_size = v;
            break;
        case 9:
            p.paged.num_pages = v;
            break;
        case 10:
            p.paged.max_pages_per_seq = v;
            break;
        case 11:
            p.seq_kv = v;
            break;
        case 12:
            p.paged.enabled = v;
            break;
        case 13:
            p.dtype = (clattn_dtype)v;
            break;
        case 14:
            p.heads = v;
            break;
        case 15:
            p.k_strides.seq = v;
            p.k_strides.head = (int64_t)E_D * E_PS;
            p.k_strides.batch = (int64_t)E_D * E_PS * E_KVH;
            break;
        case 16:
            p.v_storage.format = CLATTN_KV_Q8_0;
            p.v_storage.per_head = 0;
            cb.v_scales = NULL;
            p.v_strides.seq = 35;
            p.v_strides.head = 35 * E_PS;
            p.v_strides.batch = 35 * E_PS * E_KVH;
            break;
        case 17:
            p.k_storage.format = CLATTN_KV_INT4;
            p.k_storage.group = 0;
            p.head_dim = 63;
            break;
        case 18:
            p.v_storage.format = CLATTN_KV_Q4_0;
            p.v_storage.per_head = 0;
            p.v_storage.scale_dtype = CLATTN_F32;
            cb.v_scales = NULL;
            p.head_dim_v = 48;
            break;
        case 19:
            p.paged.enabled = 0;
            cb.block_table = NULL;
            break;
        }
        call k = base_call(e, &p, &cb);
        expect_refused(e, cases[i].name, cases[i].words, &k);
    }
}

/* Breaks one buffer of an append as case `which` of errors_buffers says.
 * Returns -1 when the case cannot be set up here (it is skipped). */
static int break_buffers(aenv *e, int which, cl_context other, clattn_problem *p,
                         clattn_buffers *cb, call *k)
{
    const size_t rows = (size_t)E_NP * E_KVH * E_PS;
    cl_int err = CL_SUCCESS;
    switch (which) {
    case 0:
        cb->k = NULL;
        break;
    case 1:
        cb->v = NULL;
        break;
    case 2:
        cb->block_table = NULL;
        break;
    case 3:
        cb->k_scales = NULL;
        break;
    case 4:
        cb->v_scales = NULL;
        break;
    case 5:
        p->paged.enabled = 0;
        p->paged.page_size = p->paged.num_pages = p->paged.max_pages_per_seq = 0;
        /* a contiguous cache of 2 x 2 x 16 rows fits the paged buffers */
        break;
    case 6:
        p->k_storage.format = CLATTN_KV_F16;
        p->k_storage.group = 0;
        p->k_storage.scale_dtype = CLATTN_F32;
        break;
    case 7:
        cb->q = e->k_new;
        break;
    case 8:
        cb->o = aenv_buffer(e, 4096, 1);
        break;
    case 9:
        cb->kv_lens = e->pos;
        break;
    case 10:
        cb->reserved[0] = e->pos;
        break;
    case 11:
        cb->k = aenv_buffer(e, rows * E_D - 1, 1);
        break;
    case 12:
        cb->v = aenv_buffer(e, rows * E_DV - 1, 1);
        break;
    case 13:
        cb->k_scales = aenv_buffer(e, rows * (E_D / 32) * 2 - 1, 1);
        break;
    case 14:
        cb->v_scales = aenv_buffer(e, E_KVH * 4 - 1, 1);
        break;
    case 15:
        cb->block_table = aenv_buffer(e, E_B * E_MPP * 4 - 4, 1);
        break;
    case 16:
        k->pos = aenv_buffer(e, E_B * 4 - 4, 1);
        break;
    case 17:
        k->k_new = aenv_buffer(e, (size_t)E_B * E_KVH * E_N * E_D * 2 - 1, 1);
        break;
    case 18:
        k->v_new = aenv_buffer(e, (size_t)E_B * E_KVH * E_N * E_DV * 2 - 1, 1);
        break;
    case 19:
        p->v_storage = p->k_storage;
        cb->v = cb->k;
        cb->v_scales = aenv_buffer(e, rows * (E_DV / 32) * 2, 1);
        break;
    case 20:
        k->v_new = cb->k;
        break;
    case 21:
        cb->k_scales = cb->v;
        break;
    case 22:
    case 23: {
        if (!other)
            return -1;
        const size_t n = which == 22 ? rows * E_D : E_KVH * 4;
        cl_mem m = clCreateBuffer(other, CL_MEM_READ_WRITE, n, NULL, &err);
        T_CHECK(err == CL_SUCCESS, "clCreateBuffer in the second context -> %d", (int)err);
        if (err != CL_SUCCESS)
            return -1;
        e->extra[e->n_extra++] = m;
        if (which == 22)
            cb->k = m;
        else
            cb->v_scales = m;
        break;
    }
    }
    return 0;
}

/* The attention's own buffers in the struct are ignored, so a decode loop
 * can hand over the clattn_buffers of its clattn_forward. */
static void check_forward_buffers_ignored(aenv *e)
{
    clattn_problem p = e->p;
    clattn_buffers cb = e->cb;
    cb.q = e->k_new;
    cb.o = aenv_buffer(e, 4096, 1);
    cb.kv_lens = e->pos;
    call k = base_call(e, &p, &cb);
    cl_event done = NULL;
    const clattn_status st = clattn_kv_append(k.ctx, k.p, k.n_new, k.k_new, k.v_new, k.pos, k.cb,
                                              k.num_wait, k.wait, &done);
    T_CHECK(st == CLATTN_OK && done, "forward's q, o and kv_lens beside the cache: %s: %s",
            clattn_status_string(st), clattn_last_error(e->ctx));
    if (done) {
        T_CL(clWaitForEvents(1, &done));
        clReleaseEvent(done);
    }
}

static void errors_buffers(aenv *e)
{
    struct {
        const char *name, *words;
        int which;
    } cases[] = {
        {"cache_buffers.k NULL", "cache_buffers.k|k", 0},
        {"cache_buffers.v NULL", "cache_buffers.v|v", 1},
        {"block_table NULL (paged)", "cache_buffers.block_table|block_table", 2},
        {"k_scales NULL (INT8)", "cache_buffers.k_scales|k_scales", 3},
        {"v_scales NULL (FP8)", "cache_buffers.v_scales|v_scales", 4},
        {"block_table given (contiguous)", "cache_buffers.block_table|block_table", 5},
        {"k_scales given (F16 storage)", "cache_buffers.k_scales|k_scales", 6},
        {"reserved[0] given", "cache_buffers.reserved|reserved", 10},
        {"k one byte short", "cache_buffers.k|k", 11},
        {"v one byte short", "cache_buffers.v|v", 12},
        {"k_scales one byte short", "cache_buffers.k_scales|k_scales", 13},
        {"v_scales one byte short", "cache_buffers.v_scales|v_scales", 14},
        {"block_table one entry short", "cache_buffers.block_table|block_table", 15},
        {"positions one entry short", "positions", 16},
        {"k_new one byte short", "k_new", 17},
        {"v_new one byte short", "v_new", 18},
        {"v is k", "cache_buffers.v|cache_buffers.k", 19},
        {"v_new is the k cache", "cache_buffers.k|v_new", 20},
        {"k_scales is the v cache", "cache_buffers.k_scales|cache_buffers.v", 21},
        {"k from another cl_context", "cache_buffers.k|k", 22},
        {"v_scales from another cl_context", "cache_buffers.v_scales|v_scales", 23},
    };
    cl_context other = NULL;
    {
        cl_device_id dev = NULL;
        cl_int err = clGetContextInfo(e->c, CL_CONTEXT_DEVICES, sizeof dev, &dev, NULL);
        if (err == CL_SUCCESS)
            other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
        T_CHECK(err == CL_SUCCESS && other, "a second cl_context -> %d", (int)err);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        clattn_problem p = e->p;
        clattn_buffers cb = e->cb;
        call k = base_call(e, &p, &cb);
        if (break_buffers(e, cases[i].which, other, &p, &cb, &k) != 0)
            continue;
        expect_refused(e, cases[i].name, cases[i].words, &k);
    }
    if (other)
        clReleaseContext(other);

    check_forward_buffers_ignored(e);
}

void case_kv_append_errors(void)
{
    aenv e;
    if (aenv_init(&e) == 0) {
        errors_arguments(&e);
        errors_problem(&e);
        errors_buffers(&e);
    }
    aenv_free(&e);
}
