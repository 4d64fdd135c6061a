/*
 * Reading K and V in every storage format (contiguous or paged, dequantized
 * in registers).
 * Part of the kernels' shared prelude: common.h, kv_read.h, score.h, joined
 * by the host in that order ahead of each kernel file.
 */
#ifndef CLATTN_KV_READ_INCLUDED
#define CLATTN_KV_READ_INCLUDED
#ifndef CLATTN_COMMON_INCLUDED
#include "common.h"
#endif

/* ---- reading K and V ---------------------------------------------------------------
 * Kernels find key j's K row with clattn_k_row (V: clattn_v_row) and read
 * it with clattn_k1 (one channel) or clattn_k_vW (W channels from d0, which
 * must be a multiple of W: then a vector never straddles a scale group or a
 * ggml block, as W divides 16 and every group is 32, 64, 128 or the row).
 * Whatever the storage, values come out as fp32. */
typedef struct clattn_kvrow {
    long off; /* the row's first element (float formats) or byte */
    long sc;  /* its first scale (INT8: scale; INT4: scale, zero pair) */
} clattn_kvrow;

#define CLATTN_KV_INLINE inline __attribute__((always_inline))

/* Row of key j, for a tensor of storage fmt with `groups` scales per row and
 * strides sb (batch or page), sh, ss. j must be one the sequence has
 * (0 <= j < seq_kv); paged lookups clamp the table entry into the pool. */
CLATTN_KV_INLINE clattn_kvrow clattn_kv_row(const clattn_call *c, const clattn_seq *s, long base,
                                            long sb, long sh, long ss, int j, const int fmt,
                                            const int groups, const int ph)
{
    clattn_kvrow r;
    long row;
#if PAGED
    const int jj = clamp(j, 0, c->seq_kv - 1);
    const int page = clamp(c->btab[(long)s->b * c->maxp + (jj >> c->pshift)], 0, c->npages - 1);
    const int slot = jj & ((1 << c->pshift) - 1);
    r.off = page * sb + s->kh * sh + (long)slot * ss;
    row = (((long)page * (c->heads / c->group) + s->kh) << c->pshift) + slot;
    (void)base;
#else
    r.off = base + (long)j * ss;
    row = s->r0 + (long)j * s->rstep;
    (void)sb;
    (void)sh;
#endif
    r.sc = fmt == CLATTN_KV_INT8 ? row * groups
           : fmt == CLATTN_KV_INT4 ? row * groups * 2
           : ph                    ? (long)s->kh
                                   : 0;
    return r;
}

/* Step of the scale index from one key's row to the next, within a page. */
#define CLATTN_KV_SSTEP(fmt, groups)                                                           \
    ((fmt) == CLATTN_KV_INT8 ? (long)(groups) : (fmt) == CLATTN_KV_INT4 ? 2L * (groups) : 0L)

/* The row of the key e places after r's, in the same page: pages hold their
 * keys' rows at a fixed stride, so a run of keys inside one page needs one
 * table lookup, like a contiguous K/V. */
CLATTN_KV_INLINE clattn_kvrow clattn_kv_page_next(clattn_kvrow r, int e, long ss, long sstep)
{
    r.off += (long)e * ss;
    r.sc += (long)e * sstep;
    return r;
}

#define clattn_k_page_next(c, r, e)                                                            \
    clattn_kv_page_next((r), (e), (c)->kss, CLATTN_KV_SSTEP(K_FMT, HEAD_DIM / K_GROUP))
#define clattn_v_page_next(c, r, e)                                                            \
    clattn_kv_page_next((r), (e), (c)->vss, CLATTN_KV_SSTEP(V_FMT, HEAD_DIM_V / V_GROUP))

/* Bytes of one row of dim values in storage fmt (unit: bytes of the
 * tensor's element type, for the float formats). */
#define CLATTN_KV_ROW_BYTES(fmt, dim, unit)                                                    \
    ((fmt) == CLATTN_KV_INT4   ? (dim) / 2                                                     \
     : (fmt) == CLATTN_KV_Q4_0 ? (dim) / 32 * 18                                               \
     : (fmt) == CLATTN_KV_Q8_0 ? (dim) / 32 * 34                                               \
                               : (dim) * (unit))

/* Software prefetch, where the compiler targets an x86 CPU (PoCL, Intel's
 * CPU runtime): the hardware prefetchers do not follow the jumps from page
 * to page (nor, on a Xeon, keep up with a contiguous K/V: 1.05-1.4x on D1),
 * and a load that misses stalls the core
 * (measured on D1 with pages of 16: the first load of each page's rows was
 * the kernel's hottest instruction). Into L2 (locality 2, prefetcht1):
 * measured 1.2-1.5x faster than into L1 (locality 3) with pages, whose
 * bursts of prefetches overrun the L1's few outstanding misses. GPUs hide
 * the latency with other work-groups; Oclgrind and other compilers may not
 * know the builtin. */
#if defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define CLATTN_HAS_PREFETCH 1
#define CLATTN_PREFETCH(p) __builtin_prefetch((p), 0, 2)
#else
#define CLATTN_HAS_PREFETCH 0
#define CLATTN_PREFETCH(p) ((void)0)
#endif

/* Rows of the n keys j0, j0 + 1, ... (each clamped to hi - 1) into out:
 * with pages, one table lookup for the keys that share j0's page, the rest
 * found key by key. */
CLATTN_KV_INLINE void clattn_kv_rows(const clattn_call *c, const clattn_seq *s, long base, long sb,
                                     long sh, long ss, int j0, int hi, const int n,
                                     clattn_kvrow *out, const int fmt, const int groups,
                                     const int ph)
{
#if PAGED
    /* Every key is clamped to hi - 1, the first one too: a group of keys
     * wholly past hi must not step back from a later key's row. */
    const int jb = min(j0, hi - 1);
    const clattn_kvrow r0 = clattn_kv_row(c, s, base, sb, sh, ss, jb, fmt, groups, ph);
    const int page_end = (jb | ((1 << c->pshift) - 1)) + 1;
    for (int e = 0; e < n; ++e) {
        const int j = min(j0 + e, hi - 1);
        if (j < page_end) {
            out[e] = clattn_kv_page_next(r0, j - jb, ss, CLATTN_KV_SSTEP(fmt, groups));
        } else {
            out[e] = clattn_kv_row(c, s, base, sb, sh, ss, j, fmt, groups, ph);
        }
    }
#else
    for (int e = 0; e < n; ++e)
        out[e] = clattn_kv_row(c, s, base, sb, sh, ss, min(j0 + e, hi - 1), fmt, groups, ph);
#endif
}

#define clattn_k_rows(c, s, j0, hi, n, out)                                                    \
    clattn_kv_rows((c), (s), (s)->k, (c)->ksb, (c)->ksh, (c)->kss, (j0), (hi), (n), (out),     \
                   K_FMT, HEAD_DIM / K_GROUP, K_PH)
#define clattn_v_rows(c, s, j0, hi, n, out)                                                    \
    clattn_kv_rows((c), (s), (s)->v, (c)->vsb, (c)->vsh, (c)->vss, (j0), (hi), (n), (out),     \
                   V_FMT, HEAD_DIM_V / V_GROUP, V_PH)

#define clattn_k_row(c, s, j)                                                                  \
    clattn_kv_row((c), (s), (s)->k, (c)->ksb, (c)->ksh, (c)->kss, (j), K_FMT,                  \
                  HEAD_DIM / K_GROUP, K_PH)
#define clattn_v_row(c, s, j)                                                                  \
    clattn_kv_row((c), (s), (s)->v, (c)->vsb, (c)->vsh, (c)->vss, (j), V_FMT,                  \
                  HEAD_DIM_V / V_GROUP, V_PH)

CLATTN_KV_INLINE float clattn_kv_scale(global const uchar *sc, const int sdt, long i)
{
    return sdt ? CLATTN_HALF_AT(sc, i) : ((global const float *)sc)[i];
}

/* OCP 8-bit floats from their bits (in a ushort), exactly, through fp16,
 * which converts in hardware where the device has it (F16C's vcvtph2ps
 * under PoCL on x86: the fp32 bit arithmetic this replaced, with its
 * subnormal and NaN selects, made fp8 K/V slower to decode than fp32 K/V).
 * E5M2 is the upper byte of an fp16, infinities and NaNs included. E4M3's
 * exponent and mantissa placed in an fp16's fields make a value 2^8 too
 * small (bias 15, not 7), subnormals included; its one NaN code
 * (S.1111.111) lands on 480 after the 2^8, and every finite code stays at
 * or below 448, so |x| > 448 marks it. */
#define CLATTN_DEFINE_FP8(T, UT, ST, SUF)                                                       \
    CLATTN_KV_INLINE T CLATTN_CAT(clattn_fp8_, SUF)(UT b, const int e5)                         \
    {                                                                                           \
        const UT hi = (UT)(b << (UT)(8)); /* the code in an fp16's upper byte */               \
        if (e5)                                                                                 \
            return CLATTN_CAT(clattn_half, SUF)(hi);                                            \
        /* E4M3: the sign stays, exponent and mantissa move one bit down */                    \
        const UT h = CLATTN_CAT(as_, UT)((ST)(CLATTN_CAT(as_, ST)(hi) >> (ST)(1))) & (UT)(0xbfff); \
        const T x = CLATTN_CAT(clattn_half, SUF)(h) * (T)(0x1p8f);                              \
        return select(x, (T)(NAN), fabs(x) > (T)(448.0f));                                     \
    }
CLATTN_DEFINE_FP8(float, ushort, short, 1)
CLATTN_DEFINE_FP8(float4, ushort4, short4, 4)
CLATTN_DEFINE_FP8(float8, ushort8, short8, 8)
CLATTN_DEFINE_FP8(float16, ushort16, short16, 16)

/* Value i of the n scales (fp16 or fp32, by sdt) that start at index base
 * of sc: a row's scales. A power-of-two n up to 16 is read and converted
 * as one vector, the same load for every vector of the row's channels, so
 * the compiler keeps one per row (four scales a 128-channel row with
 * groups of 32). Other n read the one value. */
#define CLATTN_KV_SCALES_N(W)                                                                   \
    if (n == W) {                                                                               \
        float t[W];                                                                             \
        CLATTN_CAT(vstore, W)                                                                   \
        (sdt ? CLATTN_CAT(clattn_half, W)(CLATTN_CAT(vload, W)(0, (global const ushort *)sc + base)) \
             : CLATTN_CAT(vload, W)(0, (global const float *)sc + base),                       \
         0, t);                                                                                 \
        return t[i];                                                                            \
    }
CLATTN_KV_INLINE float clattn_kv_scale_of(global const uchar *sc, const int sdt, long base, int i,
                                          const int n)
{
    CLATTN_KV_SCALES_N(2)
    CLATTN_KV_SCALES_N(4)
    CLATTN_KV_SCALES_N(8)
    CLATTN_KV_SCALES_N(16)
    return clattn_kv_scale(sc, sdt, base + i);
}

/* INT4 codes q of W channels from d0, inside one scale group of a row
 * with `dims` channels, dequantized: (q - zero) * scale as one FMA. */
#define CLATTN_DEFINE_INT4_DEQ(W)                                                              \
    CLATTN_KV_INLINE CLATTN_CAT(float, W) CLATTN_CAT(clattn_int4_deq, W)(                      \
        CLATTN_CAT(float, W) q, global const uchar *sc, const int sdt, clattn_kvrow r, int d0, \
        const int group, const int dims)                                                       \
    {                                                                                          \
        const int g = 2 * (d0 / group), ng = 2 * (dims / group);                               \
        const float s = clattn_kv_scale_of(sc, sdt, r.sc, g, ng);                              \
        return fma(q, (CLATTN_CAT(float, W))(s),                                               \
                   (CLATTN_CAT(float, W))(-clattn_kv_scale_of(sc, sdt, r.sc, g + 1, ng) * s)); \
    }
CLATTN_DEFINE_INT4_DEQ(4)
CLATTN_DEFINE_INT4_DEQ(8)
CLATTN_DEFINE_INT4_DEQ(16)

/* INT4 channels c .. c + W - 1 (c even) as their nibble values, from the W/2
 * bytes at b: channel 2i in the low nibble of byte i, 2i + 1 in its high
 * one, so channel c + t is bits 4t .. 4t + 3 of the bytes read as one
 * little-endian word. Up to 8 channels: that word, in every lane, shifted
 * right by 4t. It is put together from byte loads, which compilers merge
 * into one (unaligned) load where the target allows it; vload4/vload2 of
 * uchar became byte-by-byte extracts and inserts on PoCL's haswell code,
 * and D1 with int4 K/V measured 1.45-1.55x faster this way (AVX2, Zen 3).
 * 16 channels (AVX-512 plans): each byte to two lanes by one shuffle, then
 * a shift per lane (0 or 4); interleaving the converted low and high
 * halves, as before, measured 1.15x slower on a Xeon (BENCHMARKS.md). */
CLATTN_KV_INLINE uint clattn_le32(global const uchar *b)
{
    return (uint)b[0] | (uint)b[1] << 8 | (uint)b[2] << 16 | (uint)b[3] << 24;
}
CLATTN_KV_INLINE float4 clattn_nib4(global const uchar *b)
{
    const uint w = (uint)b[0] | (uint)b[1] << 8;
    return convert_float4(((uint4)(w) >> (uint4)(0, 4, 8, 12)) & 15u);
}
CLATTN_KV_INLINE float8 clattn_nib8(global const uchar *b)
{
    return convert_float8(((uint8)(clattn_le32(b)) >> (uint8)(0, 4, 8, 12, 16, 20, 24, 28)) &
                          15u);
}
CLATTN_KV_INLINE float16 clattn_nib16(global const uchar *b)
{
    const uint16 w = shuffle(convert_uint8(vload8(0, b)),
                             (uint16)(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    return convert_float16((w >> (uint16)(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4)) &
                           15u);
}

/* Block positions use shifts and masks, not / and %: a division next to
 * its remainder becomes LLVM's freeze, which Oclgrind 21.10 runs wrongly.
 *
 * Channel d of row r of a tensor p in storage fmt (scales sc of type sdt,
 * group channels each). */
CLATTN_KV_INLINE float clattn_kv1(global const void *p, global const uchar *sc, clattn_kvrow r,
                                  int d, const int fmt, const int group, const int sdt,
                                  const int unscaled)
{
    global const uchar *u = (global const uchar *)p;
    if (fmt == CLATTN_KV_DTYPE)
        return LOAD((global const store_t *)p, r.off + d);
    if (fmt == CLATTN_KV_F32)
        return ((global const float *)p)[r.off + d];
    if (fmt == CLATTN_KV_F16)
        return CLATTN_HALF_AT(p, r.off + d);
    if (fmt == CLATTN_KV_BF16)
        return as_float((uint)((global const ushort *)p)[r.off + d] << 16);
    if (fmt == CLATTN_KV_INT8)
        return (float)((global const char *)p)[r.off + d] *
               (unscaled ? 1.0f : clattn_kv_scale(sc, sdt, r.sc + d / group));
    if (fmt == CLATTN_KV_INT4) {
        const uint byte = u[r.off + d / 2];
        const float q = (float)((d & 1) ? byte >> 4 : byte & 15u);
        const long g = r.sc + 2 * (d / group);
        return (q - clattn_kv_scale(sc, sdt, g + 1)) * clattn_kv_scale(sc, sdt, g);
    }
    if (fmt == CLATTN_KV_Q8_0) {
        const long blk = r.off + (long)(d >> 5) * 34;
        return (float)((global const char *)p)[blk + 2 + (d & 31)] *
               CLATTN_HALF_AT(p, blk / 2);
    }
    if (fmt == CLATTN_KV_Q4_0) {
        const long blk = r.off + (long)(d >> 5) * 18;
        const uint byte = u[blk + 2 + (d & 15)];
        const float q = (float)((d & 31) < 16 ? byte & 15u : byte >> 4);
        return (q - 8.0f) * CLATTN_HALF_AT(p, blk / 2);
    }
    return clattn_fp8_1((ushort)u[r.off + d], fmt == CLATTN_KV_E5M2) *
           (unscaled ? 1.0f : clattn_kv_scale(sc, sdt, r.sc));
}

/* INT4 in split order, for kernels free to order a row's channels as they
 * like (a dot product, or accumulators put back in order at the end):
 * vectors 2i and 2i + 1 of a row are the even and the odd channels of
 * channels 2iW .. 2iW + 2W - 1, the low and the high nibbles of the same W
 * bytes, so a pair is one byte load, a mask, a shift and two conversions,
 * with no interleaving shuffle. Needs rows and groups in whole pairs
 * (CLATTN_KV_SPLIT). clattn_split_pos gives channel d's place in that order. */
#define CLATTN_KV_SPLIT(fmt, group, dims, W)                                                   \
    ((fmt) == CLATTN_KV_INT4 && (dims) % (2 * (W)) == 0 && (group) % (2 * (W)) == 0)
#define clattn_split_pos(d, W)                                                                 \
    (((d) & ~(2 * (W)-1)) | ((d)&1) * (W) | ((d) & (2 * (W)-1)) >> 1)
#define clattn_split_group(i, W, group) (((i) >> 1) * 2 * (W) / (group))
#define CLATTN_DEFINE_KV_SPLIT(W)                                                               \
    /* the codes of vector i, not dequantized */                                              \
    CLATTN_KV_INLINE CLATTN_CAT(float, W) CLATTN_CAT(clattn_int4_split_q, W)(                   \
        global const void *p, clattn_kvrow r, const int i)                                      \
    {                                                                                           \
        const int d0 = (i >> 1) * 2 * (W); /* the pair's first channel */                      \
        const CLATTN_CAT(uint, W) b = CLATTN_CAT(convert_uint, W)(                              \
            CLATTN_CAT(vload, W)(0, (global const uchar *)p + r.off + d0 / 2));                 \
        return CLATTN_CAT(convert_float, W)((i & 1) ? b >> 4 : b & 15u);                        \
    }                                                                                           \
    CLATTN_KV_INLINE CLATTN_CAT(float, W) CLATTN_CAT(clattn_int4_split_v, W)(                   \
        global const void *p, global const uchar *sc, clattn_kvrow r, const int i,            \
        const int group, const int sdt, const int dims)                                         \
    {                                                                                           \
        return CLATTN_CAT(clattn_int4_deq, W)(CLATTN_CAT(clattn_int4_split_q, W)(p, r, i), sc,  \
                                              sdt, r, (i >> 1) * 2 * (W), group, dims);         \
    }
CLATTN_DEFINE_KV_SPLIT(4)
CLATTN_DEFINE_KV_SPLIT(8)
CLATTN_DEFINE_KV_SPLIT(16)

/* Formats a decode kernel may dequantize with a table of a tile's scales
 * (fused_vec.cl), read once a tile: a scale per group (INT8 with groups
 * smaller than the row, Q8_0) and an offset too (INT4 in split order,
 * Q4_0). The ggml blocks are groups of 32. */
#define CLATTN_KV_TABBED(fmt, group, dims, W)                                                  \
    (CLATTN_KV_SPLIT(fmt, group, dims, W) || (fmt) == CLATTN_KV_Q4_0 ||                        \
     (fmt) == CLATTN_KV_Q8_0 || ((fmt) == CLATTN_KV_INT8 && (group) < (dims)))
#define CLATTN_KV_TAB_GROUP(fmt, group)                                                        \
    ((fmt) == CLATTN_KV_Q4_0 || (fmt) == CLATTN_KV_Q8_0 ? 32 : (group))
/* The table's group of vector i (W channels) of a row. */
#define clattn_kv_tab_g(fmt, group, i, W)                                                      \
    ((fmt) == CLATTN_KV_INT4 ? clattn_split_group(i, W, group)                                 \
                             : (i) * (W) / CLATTN_KV_TAB_GROUP(fmt, group))
/* Group g's scale and offset in row r (offset 0 where there is none). */
CLATTN_KV_INLINE float2 clattn_kv_tab_entry(global const void *p, global const uchar *sc,
                                            const int sdt, clattn_kvrow r, int g, const int fmt)
{
    if (fmt == CLATTN_KV_INT4) {
        const float s = clattn_kv_scale(sc, sdt, r.sc + 2 * g);
        return (float2)(s, -clattn_kv_scale(sc, sdt, r.sc + 2 * g + 1) * s);
    }
    if (fmt == CLATTN_KV_INT8)
        return (float2)(clattn_kv_scale(sc, sdt, r.sc + g), 0.0f);
    const long blk = r.off + (long)g * (fmt == CLATTN_KV_Q8_0 ? 34 : 18); /* even */
    const float s = CLATTN_HALF_AT(p, blk >> 1);
    return (float2)(s, fmt == CLATTN_KV_Q4_0 ? -8.0f * s : 0.0f);
}
/* The codes of vector i of a row of a tabbed format, not dequantized (INT4
 * in split order); clattn_kv_v reads INT8 and the ggml blocks through them
 * too. */
#define CLATTN_DEFINE_KV_CODES(W)                                                               \
    CLATTN_KV_INLINE CLATTN_CAT(float, W) CLATTN_CAT(clattn_kv_codes, W)(                       \
        global const void *p, clattn_kvrow r, const int i, const int fmt)                       \
    {                                                                                           \
        const int d0 = i * (W);                                                                 \
        if (fmt == CLATTN_KV_INT4)                                                              \
            return CLATTN_CAT(clattn_int4_split_q, W)(p, r, i);                                 \
        if (fmt == CLATTN_KV_INT8)                                                              \
            return CLATTN_CAT(convert_float, W)(                                                \
                CLATTN_CAT(vload, W)(0, (global const char *)p + r.off + d0));                  \
        if (fmt == CLATTN_KV_Q8_0)                                                              \
            return CLATTN_CAT(convert_float, W)(CLATTN_CAT(vload, W)(                           \
                0, (global const char *)p + r.off + (long)(d0 >> 5) * 34 + 2 + (d0 & 31)));      \
        const CLATTN_CAT(uint, W) b = CLATTN_CAT(convert_uint, W)(CLATTN_CAT(vload, W)(         \
            0, (global const uchar *)p + r.off + (long)(d0 >> 5) * 18 + 2 + (d0 & 15)));          \
        return CLATTN_CAT(convert_float, W)((d0 & 31) < 16 ? b & 15u : b >> 4);                 \
    }
CLATTN_DEFINE_KV_CODES(4)
CLATTN_DEFINE_KV_CODES(8)
CLATTN_DEFINE_KV_CODES(16)
/* Codes dequantized with a table entry (scale, offset). */
#define clattn_kv_tab_deq(fmt, q, s, z)                                                        \
    ((fmt) == CLATTN_KV_INT4 || (fmt) == CLATTN_KV_Q4_0 ? fma((q), (s), (z)) : (q) * (s))

/* Channels d0 .. d0+W-1 of a row as a vector (d0 a multiple of W); only the
 * first n are read, the rest are 0. Whole vectors load as vectors. */
#define CLATTN_DEFINE_KV_VEC(W)                                                                 \
    CLATTN_KV_INLINE CLATTN_CAT(float, W) CLATTN_CAT(clattn_kv_v, W)(                           \
        global const void *p, global const uchar *sc, clattn_kvrow r, int d0, int n,            \
        const int fmt, const int group, const int sdt, const int unscaled, const int dims)      \
    {                                                                                           \
        typedef CLATTN_CAT(float, W) T;                                                         \
        global const uchar *u = (global const uchar *)p;                                        \
        if (n >= W) {                                                                           \
            if ((fmt == CLATTN_KV_DTYPE && DTYPE == 0) || fmt == CLATTN_KV_F32)                 \
                return CLATTN_CAT(vload, W)(0, (global const float *)p + r.off + d0);           \
            if ((fmt == CLATTN_KV_DTYPE && DTYPE == 1) || fmt == CLATTN_KV_F16)                 \
                return CLATTN_CAT(clattn_half_at, W)((global const ushort *)p + r.off + d0);     \
            if ((fmt == CLATTN_KV_DTYPE && DTYPE == 2) || fmt == CLATTN_KV_BF16)                \
                return CLATTN_CAT(as_float, W)(                                                 \
                    CLATTN_CAT(convert_uint, W)(                                                \
                        CLATTN_CAT(vload, W)(0, (global const ushort *)p + r.off + d0))         \
                    << 16);                                                                     \
            if (fmt == CLATTN_KV_INT8)                                                          \
                return CLATTN_CAT(clattn_kv_codes, W)(p, r, d0 / (W), fmt) *                    \
                       (unscaled ? 1.0f                                                         \
                                 : clattn_kv_scale_of(sc, sdt, r.sc, d0 / group, dims / group)); \
            if (fmt == CLATTN_KV_INT4)                                                          \
                return CLATTN_CAT(clattn_int4_deq, W)(CLATTN_CAT(clattn_nib, W)(u + r.off + d0 / 2), \
                                                      sc, sdt, r, d0, group, dims);             \
            if (fmt == CLATTN_KV_Q8_0 || fmt == CLATTN_KV_Q4_0) {                               \
                const float2 t = clattn_kv_tab_entry(p, sc, sdt, r, d0 >> 5, fmt);              \
                return clattn_kv_tab_deq(fmt, CLATTN_CAT(clattn_kv_codes, W)(p, r, d0 / (W), fmt), \
                                         (T)(t.x), (T)(t.y));                                   \
            }                                                                                   \
            if (fmt == CLATTN_KV_E4M3 || fmt == CLATTN_KV_E5M2)                                 \
                return CLATTN_CAT(clattn_fp8_, W)(                                              \
                           CLATTN_CAT(convert_ushort, W)(CLATTN_CAT(vload, W)(0, u + r.off + d0)), \
                           fmt == CLATTN_KV_E5M2) *                                             \
                       (unscaled ? 1.0f : clattn_kv_scale(sc, sdt, r.sc));                      \
        }                                                                                       \
        float t[W];                                                                             \
        for (int e = 0; e < W; ++e)                                                             \
            t[e] = e < n ? clattn_kv1(p, sc, r, d0 + e, fmt, group, sdt, unscaled) : 0.0f;      \
        return CLATTN_CAT(vload, W)(0, t);                                                      \
    }
CLATTN_DEFINE_KV_VEC(4)
CLATTN_DEFINE_KV_VEC(8)
CLATTN_DEFINE_KV_VEC(16)

/* K and V of the call, by their -D storage. */
#define clattn_k1(c, r, d) clattn_kv1(k, (c)->ksc, (r), (d), K_FMT, K_GROUP, K_SDT, 0)
#define clattn_v1(c, r, d) clattn_kv1(v, (c)->vsc, (r), (d), V_FMT, V_GROUP, V_SDT, 0)
#define clattn_k_vec(W, c, r, d0, n)                                                            \
    CLATTN_CAT(clattn_kv_v, W)(k, (c)->ksc, (r), (d0), (n), K_FMT, K_GROUP, K_SDT, 0, HEAD_DIM)
#define clattn_v_vec(W, c, r, d0, n)                                                            \
    CLATTN_CAT(clattn_kv_v, W)(v, (c)->vsc, (r), (d0), (n), V_FMT, V_GROUP, V_SDT, 0, HEAD_DIM_V)

/* Storage with one scale for a whole row (INT8 per token, FP8): a kernel
 * may read the channels without it (the _raw loaders) and apply
 * clattn_k_row_scale to the row's dot product (V's to its probability),
 * a multiply per key instead of one per channel. */
#define CLATTN_ROW_SCALED(fmt, group, dims)                                                     \
    (((fmt) == CLATTN_KV_INT8 && (group) >= (dims)) || (fmt) == CLATTN_KV_E4M3 ||               \
     (fmt) == CLATTN_KV_E5M2)
#define K_ROW_SCALED CLATTN_ROW_SCALED(K_FMT, K_GROUP, HEAD_DIM)
#define V_ROW_SCALED CLATTN_ROW_SCALED(V_FMT, V_GROUP, HEAD_DIM_V)
#define clattn_k_vec_raw(W, c, r, d0, n)                                                        \
    CLATTN_CAT(clattn_kv_v, W)(k, (c)->ksc, (r), (d0), (n), K_FMT, K_GROUP, K_SDT, K_ROW_SCALED, \
                               HEAD_DIM)
#define clattn_v_vec_raw(W, c, r, d0, n)                                                        \
    CLATTN_CAT(clattn_kv_v, W)(v, (c)->vsc, (r), (d0), (n), V_FMT, V_GROUP, V_SDT, V_ROW_SCALED, \
                               HEAD_DIM_V)
#define clattn_k_row_scale(c, r) (K_ROW_SCALED ? clattn_kv_scale((c)->ksc, K_SDT, (r).sc) : 1.0f)
#define clattn_v_row_scale(c, r) (V_ROW_SCALED ? clattn_kv_scale((c)->vsc, V_SDT, (r).sc) : 1.0f)

#endif /* CLATTN_KV_READ_INCLUDED */
