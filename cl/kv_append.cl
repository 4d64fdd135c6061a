/*
 * clattn_kv_append: new tokens' K and V rows converted to the cache's storage
 * format (clattn.h, clattn_kv_format) and written at their positions.
 *
 * A work-item owns one "unit" of one row: a scale group (INT8, INT4: its
 * scale is a reduction over the group, so one work-item sees all of it), a
 * 32-channel ggml block (Q8_0, Q4_0), or a run of up to 32 channels of an
 * element-wise format (floats, FP8). No two work-items write the same byte:
 * INT4 pairs and Q4_0 nibbles stay inside a unit.
 *
 * Formats are run-time arguments, not -D switches: the kernel is cheap and
 * memory-bound, and one program per dtype and head dims then serves every
 * storage a cache may have. The host resolves DEFAULT to the dtype's format.
 *
 * Grid: (ceil(items / APPEND_WG) * APPEND_WG), local (APPEND_WG), where
 * items = batch * kv_heads * n_new * (units of a K row + units of a V row).
 */
#ifndef CLATTN_COMMON_INCLUDED /* the host prepends common.h */
#include "common.h"
#endif

#ifndef APPEND_WG
#define APPEND_WG 1
#endif

/* The quantizers below are specified as separate roundings of each product
 * and sum (as ggml and the host reference compute them); a fused
 * multiply-add would change some codes. */
#pragma OPENCL FP_CONTRACT OFF

/* clattn_kv_format values (DEFAULT never reaches the kernel). */
#define KVA_F32 1
#define KVA_F16 2
#define KVA_BF16 3
#define KVA_INT8 4
#define KVA_INT4 5
#define KVA_Q8_0 6
#define KVA_Q4_0 7
#define KVA_E4M3 8
#define KVA_E5M2 9

/* Bits of the problem's own dtype, for formats equal to it: copied, not
 * converted, so a NaN keeps its payload. */
#if DTYPE == 0
typedef uint kva_bits_t;
#else
typedef ushort kva_bits_t;
#endif

/* a / b, correctly rounded. OpenCL allows a device's fp32 division 2.5 ulp
 * of error, and a quotient one ulp off can move a code or a scale: the cache
 * must hold the same bytes on every device (and, for Q8_0 / Q4_0, the bytes
 * ggml writes). So the quotient steps to a neighbour while that leaves a
 * smaller remainder a - q * b; fma gives the remainder exactly for the
 * neighbours of a / b (fma itself is correctly rounded in OpenCL), and a tie
 * goes to the even neighbour. */
inline float kva_div(float a, float b)
{
    float q = a / b;
    if (a == 0.0f || q == 0.0f || !isfinite(q) || !isfinite(b))
        return q;
    float r = fabs(fma(-q, b, a));
    for (int i = 0; i < 4; ++i) {
        const float lo = nextafter(q, -INFINITY), hi = nextafter(q, INFINITY);
        const float rl = fabs(fma(-lo, b, a)), rh = fabs(fma(-hi, b, a));
        const float n = rl < rh || (rl == rh && !(as_uint(lo) & 1u)) ? lo : hi;
        const float rn = min(rl, rh);
        if (rn > r || (rn == r && !(as_uint(q) & 1u)))
            break;
        q = n;
        r = rn;
    }
    return q;
}

/* bf16, round to nearest even; a NaN stays NaN (rounding could carry its
 * mantissa into the exponent and make it infinity). */
inline ushort kva_to_bf16(float f)
{
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (ushort)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (ushort)(u >> 16);
}

/* A scale as the cache will hold it (sdt 1: fp16, round to nearest even),
 * so that codes are computed with the very scale dequantization uses. */
inline float kva_round_scale(float s, int sdt)
{
    if (!sdt)
        return s;
    ushort h;
    vstore_half_rte(s, 0, (private half *)&h);
    return vload_half(0, (private const half *)&h);
}

inline void kva_store_scale(global uchar *sc, int sdt, long i, float s)
{
    if (sdt)
        vstore_half_rte(s, (size_t)i, (global half *)sc);
    else
        ((global float *)sc)[i] = s;
}

/* OCP FP8 code of v, rounded to nearest even: mbits mantissa bits, normals
 * from 2^emin up, max_code / max_val the largest finite number, to which
 * everything at or beyond it (infinities included) saturates. sub_mul =
 * 2^(mbits - emin) counts v in units of the smallest subnormal. Every step
 * is exact in fp32 (a power-of-two product, integer bit arithmetic). */
inline uchar kva_fp8(float v, int mbits, int bias, float min_normal, float sub_mul, float max_val,
                     uint max_code)
{
    const uint sign = (as_uint(v) >> 24) & 0x80u;
    const float a = fabs(v);
    if (isnan(v))
        return (uchar)(sign | 0x7fu);
    if (a >= max_val)
        return (uchar)(sign | max_code);
    if (a < min_normal)
        return (uchar)(sign | (uint)rint(a * sub_mul));
    /* Rounding fp32's mantissa down to mbits bits, ties to even; a carry
     * into the exponent is the correct next binade. */
    const uint shift = 23u - (uint)mbits;
    uint u = as_uint(a);
    u += (1u << (shift - 1u)) - 1u + ((u >> shift) & 1u);
    return (uchar)(sign | ((u >> shift) - ((uint)(127 - bias) << mbits)));
}

/* Channels c0 .. c1-1 of one new row x (in the problem's dtype) into the
 * cache row at off (elements for float formats, bytes otherwise) of tensor
 * dst. u is the unit's index in the row; r the row's number for the scales,
 * groups its scale groups (INT8, INT4); kvh picks a per-head FP8 scale. */
inline void kva_unit(global const store_t *x, global uchar *dst, global uchar *sc, long off,
                     long r, int kvh, int u, int c0, int c1, int groups, int fmt, int sdt, int ph)
{
    if (fmt == DTYPE + 1) {
        for (int c = c0; c < c1; ++c)
            ((global kva_bits_t *)dst)[off + c] = ((global const kva_bits_t *)x)[c];
    } else if (fmt == KVA_F32) {
        for (int c = c0; c < c1; ++c)
            ((global float *)dst)[off + c] = LOAD(x, c);
    } else if (fmt == KVA_F16) {
        for (int c = c0; c < c1; ++c)
            vstore_half_rte(LOAD(x, c), (size_t)(off + c), (global half *)dst);
    } else if (fmt == KVA_BF16) {
        for (int c = c0; c < c1; ++c)
            ((global ushort *)dst)[off + c] = kva_to_bf16(LOAD(x, c));
    } else if (fmt == KVA_INT8) {
        float amax = 0.0f;
        for (int c = c0; c < c1; ++c)
            amax = fmax(amax, fabs(LOAD(x, c)));
        const float s = kva_round_scale(kva_div(amax, 127.0f), sdt);
        kva_store_scale(sc, sdt, r * groups + u, s);
        for (int c = c0; c < c1; ++c) {
            const int q = s == 0.0f ? 0 : convert_int_sat_rte(kva_div(LOAD(x, c), s));
            ((global char *)dst)[off + c] = (char)clamp(q, -127, 127);
        }
    } else if (fmt == KVA_INT4) {
        float lo = INFINITY, hi = -INFINITY;
        for (int c = c0; c < c1; ++c) {
            lo = fmin(lo, LOAD(x, c));
            hi = fmax(hi, LOAD(x, c));
        }
        float s = kva_round_scale(kva_div(hi - lo, 15.0f), sdt), z;
        /* A constant group (or a range too small for the scale's type):
         * (q - zero) * scale with q = 0, zero = -1 and scale = the value
         * gives the value back, where scale 0 would give 0. */
        const int flat = s == 0.0f;
        if (flat) {
            s = kva_round_scale(lo, sdt);
            z = -1.0f;
        } else {
            z = kva_round_scale(kva_div(-lo, s), sdt);
        }
        const long si = (r * groups + u) * 2;
        kva_store_scale(sc, sdt, si, s);
        kva_store_scale(sc, sdt, si + 1, z);
        for (int c = c0; c < c1; c += 2) {
            int q0 = 0, q1 = 0;
            if (!flat) {
                q0 = clamp(convert_int_sat_rte(kva_div(LOAD(x, c), s) + z), 0, 15);
                q1 = clamp(convert_int_sat_rte(kva_div(LOAD(x, c + 1), s) + z), 0, 15);
            }
            dst[off + c / 2] = (uchar)(q0 | q1 << 4);
        }
    } else if (fmt == KVA_Q8_0) {
        /* ggml's quantize_row_q8_0: d from the fp32 amax, codes from the
         * fp32 d (not its fp16 copy), rounded half away from zero. */
        global uchar *blk = dst + off + (long)u * 34;
        float amax = 0.0f;
        for (int c = c0; c < c1; ++c)
            amax = fmax(amax, fabs(LOAD(x, c)));
        const float d = kva_div(amax, 127.0f);
        const float id = d != 0.0f ? kva_div(1.0f, d) : 0.0f;
        vstore_half_rte(d, 0, (global half *)blk);
        for (int c = c0; c < c1; ++c)
            ((global char *)blk)[2 + c - c0] =
                (char)clamp(convert_int_sat(round(LOAD(x, c) * id)), -127, 127);
    } else if (fmt == KVA_Q4_0) {
        /* ggml's quantize_row_q4_0: the signed value of largest magnitude
         * (the first one on a tie) maps to -8, codes are x / d + 8.5
         * truncated, capped at 15. */
        global uchar *blk = dst + off + (long)u * 18;
        float amax = 0.0f, m = 0.0f;
        for (int c = c0; c < c1; ++c) {
            const float v = LOAD(x, c);
            if (amax < fabs(v)) {
                amax = fabs(v);
                m = v;
            }
        }
        const float d = kva_div(m, -8.0f);
        const float id = d != 0.0f ? kva_div(1.0f, d) : 0.0f;
        vstore_half_rte(d, 0, (global half *)blk);
        for (int i = 0; i < 16; ++i) {
            const int q0 = clamp(convert_int_sat_rtz(LOAD(x, c0 + i) * id + 8.5f), 0, 15);
            const int q1 = clamp(convert_int_sat_rtz(LOAD(x, c0 + 16 + i) * id + 8.5f), 0, 15);
            blk[2 + i] = (uchar)(q0 | q1 << 4);
        }
    } else {
        const long si = ph ? kvh : 0;
        const float s = clattn_kv_scale(sc, sdt, si);
        for (int c = c0; c < c1; ++c) {
            const float v = kva_div(LOAD(x, c), s);
            dst[off + c] = fmt == KVA_E4M3
                               ? kva_fp8(v, 3, 7, 0x1p-6f, 0x1p9f, 448.0f, 0x7eu)
                               : kva_fp8(v, 2, 15, 0x1p-14f, 0x1p16f, 57344.0f, 0x7bu);
        }
    }
}

/* Per tensor (k_*, v_*): fmt (clattn_kv_format, never DEFAULT), unit
 * (channels per work-item), sdt (scales: 0 fp32, 1 fp16), ph (FP8 scale per
 * kv head), strides sb (batch, or page when paged), sh, ss. page_size 0 =
 * a contiguous cache. */
kernel CLATTN_WG_SIZE(APPEND_WG) void attn_kv_append(
    global const store_t *k_new, global const store_t *v_new, global const int *positions,
    global const int *block_table, global uchar *k_cache, global uchar *v_cache,
    global uchar *k_scales, global uchar *v_scales, int batch, int kv_heads, int n_new,
    int seq_kv, int page_size, int num_pages, int max_pages, int k_fmt, int k_unit, int k_sdt,
    int k_ph, long ksb, long ksh, long kss, int v_fmt, int v_unit, int v_sdt, int v_ph,
    long vsb, long vsh, long vss)
{
    const int nk = (HEAD_DIM + k_unit - 1) / k_unit, nv = (HEAD_DIM_V + v_unit - 1) / v_unit;
    const long id = (long)get_global_id(0);
    /* Remainders as x - (x / y) * y, not x % y: LLVM turns a div/rem pair
     * into a freeze instruction, which Oclgrind 21.10 cannot run. */
    const long row = id / (nk + nv); /* (b, kvh, t) of the new tokens */
    const int u = (int)(id - row * (nk + nv));
    const long bh = row / n_new;
    const int t = (int)(row - bh * n_new);
    if (bh >= (long)batch * kv_heads)
        return;
    const int b = (int)(bh / kv_heads), kvh = (int)(bh - (long)b * kv_heads);
    const int pos = positions[b];
    if (pos < 0 || pos > seq_kv - n_new)
        return;
    const int j = pos + t;
    long n0 = b, n2 = j, r;
    if (page_size) {
        const int col = j / page_size;
        const int page = block_table[(long)b * max_pages + col];
        if (page < 0 || page >= num_pages)
            return;
        n0 = page;
        n2 = j - col * page_size;
        r = ((long)page * kv_heads + kvh) * page_size + n2;
    } else {
        r = bh * seq_kv + j;
    }
    if (u < nk) {
        const int c0 = u * k_unit;
        kva_unit(k_new + row * HEAD_DIM, k_cache, k_scales, n0 * ksb + kvh * ksh + n2 * kss, r,
                 kvh, u, c0, min(c0 + k_unit, HEAD_DIM), nk, k_fmt, k_sdt, k_ph);
    } else {
        const int c0 = (u - nk) * v_unit;
        kva_unit(v_new + row * HEAD_DIM_V, v_cache, v_scales, n0 * vsb + kvh * vsh + n2 * vss,
                 r, kvh, u - nk, c0, min(c0 + v_unit, HEAD_DIM_V), nv, v_fmt, v_sdt, v_ph);
    }
}
