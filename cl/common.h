/*
 * Shared definitions of every clattn kernel: storage types, the visibility
 * rule of the public API, and the compile-time defaults of the common
 * parameters. The host prepends this file to each kernel source; a kernel
 * file also includes it itself so it stays a valid OpenCL C file on its own
 * (e.g. for Oclgrind with -I cl).
 */
#ifndef CLATTN_COMMON_INCLUDED
#define CLATTN_COMMON_INCLUDED

/* DTYPE: 0 = fp32, 1 = fp16 (through vload_half/vstore_half, so no
 * cl_khr_fp16 is needed), 2 = bf16 (the top half of an fp32). */
#ifndef DTYPE
#define DTYPE 0
#endif
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef HEAD_DIM_V
#define HEAD_DIM_V HEAD_DIM
#endif

#define CLATTN_LOG2E 1.4426950408889634f
#define CLATTN_LN2 0.6931471805599453f

#if DTYPE == 0
typedef float store_t;
#define LOAD(p, i) ((p)[(i)])
#define STORE(p, i, x) ((p)[(i)] = (x))
#elif DTYPE == 1
typedef half store_t;
#define LOAD(p, i) vload_half((size_t)(i), (p))
#define STORE(p, i, x) vstore_half_rte((x), (size_t)(i), (p))
#elif DTYPE == 2
typedef ushort store_t;
inline float clattn_bf16_to_f32(ushort h) { return as_float((uint)h << 16); }
inline ushort clattn_f32_to_bf16(float f)
{
    uint u = as_uint(f);
    /* A NaN must stay a NaN: rounding could carry it into infinity. */
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (ushort)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (ushort)(u >> 16);
}
#define LOAD(p, i) clattn_bf16_to_f32((p)[(i)])
#define STORE(p, i, x) ((p)[(i)] = clattn_f32_to_bf16(x))
#else
#error "DTYPE must be 0 (f32), 1 (f16) or 2 (bf16)"
#endif

/* The larger of a and b, NaN when either is NaN. Row maxima use it instead
 * of fmax (which returns the other operand for a NaN): a NaN score must make
 * its row NaN on every path, even when it is the only score of the row or of
 * the tiles seen so far, rather than vanish into an "empty row" result. */
inline float clattn_max_nan(float a, float b)
{
    return isnan(a) || a > b ? a : b;
}

/* Horizontal max and sum of a vector, for kernels that pick a width with a
 * -D option (CLATTN_CAT(clattn_hmax, W)). The last step goes lane by lane: a
 * float2 step compiles to a shuffle with an undefined lane, which crashes
 * Oclgrind 21.10's --uninitialized. fmax drops NaN lanes; callers that must
 * propagate NaN check for it themselves. */
#define CLATTN_CAT_(a, b) a##b
#define CLATTN_CAT(a, b) CLATTN_CAT_(a, b)
inline float clattn_hmax4(float4 v) { return fmax(fmax(v.x, v.y), fmax(v.z, v.w)); }
inline float clattn_hmax8(float8 v) { return clattn_hmax4(fmax(v.lo, v.hi)); }
inline float clattn_hmax16(float16 v) { return clattn_hmax8(fmax(v.lo, v.hi)); }
inline float clattn_hsum4(float4 v) { return dot(v, (float4)(1.0f)); }
inline float clattn_hsum8(float8 v) { return clattn_hsum4(v.lo + v.hi); }
inline float clattn_hsum16(float16 v) { return clattn_hsum8(v.lo + v.hi); }

/* ---- features --------------------------------------------------------------
 * Each score feature of clattn.h is a -D switch, 0 when absent, so a problem
 * without it compiles to the plain code. */
#ifndef SOFTCAP
#define SOFTCAP 0 /* logit softcapping */
#endif
#ifndef SINKS
#define SINKS 0 /* per-head sink logits in the softmax denominator */
#endif
#ifndef ALIBI
#define ALIBI 0 /* per-head ALiBi slopes */
#endif
#ifndef BIAS
#define BIAS 0 /* an additive mask, stored as BIAS_DTYPE */
#endif
#ifndef BIAS_DTYPE
#define BIAS_DTYPE 0
#endif
#ifndef BMASK
#define BMASK 0 /* a uint8 mask, nonzero = attend */
#endif
#ifndef KV_START
#define KV_START 0 /* per-batch first visible key (left padding) */
#endif
#ifndef CHUNK
#define CHUNK 0 /* chunked local attention */
#endif
#ifndef VARLEN
#define VARLEN 0 /* packed variable-length sequences (cu_seqlens) */
#endif

#if BIAS_DTYPE == 0
typedef float bias_t;
#define LOAD_BIAS(p, i) ((p)[(i)])
#elif BIAS_DTYPE == 1
typedef half bias_t;
#define LOAD_BIAS(p, i) vload_half((size_t)(i), (p))
#else
typedef ushort bias_t;
#define LOAD_BIAS(p, i) as_float((uint)(p)[(i)] << 16)
#endif

/* ---- K and V storage ----------------------------------------------------------
 * clattn.h's clattn_kv_format as -D switches, per tensor: K_FMT / V_FMT
 * (0: the problem's dtype, store_t), K_GROUP (INT8/INT4: channels per
 * scale), K_SDT (scales: 0 fp32, 1 fp16), K_PH (FP8: a scale per kv head);
 * PAGED: K and V live in pages found through the block table. */
#define CLATTN_KV_DTYPE 0
#define CLATTN_KV_F32 1
#define CLATTN_KV_F16 2
#define CLATTN_KV_BF16 3
#define CLATTN_KV_INT8 4
#define CLATTN_KV_INT4 5
#define CLATTN_KV_Q8_0 6
#define CLATTN_KV_Q4_0 7
#define CLATTN_KV_E4M3 8
#define CLATTN_KV_E5M2 9
#ifndef K_FMT
#define K_FMT 0
#endif
#ifndef V_FMT
#define V_FMT 0
#endif
#ifndef K_GROUP
#define K_GROUP HEAD_DIM
#endif
#ifndef V_GROUP
#define V_GROUP HEAD_DIM_V
#endif
#ifndef K_SDT
#define K_SDT 0
#endif
#ifndef V_SDT
#define V_SDT 0
#endif
#ifndef K_PH
#define K_PH 0
#endif
#ifndef V_PH
#define V_PH 0
#endif
#ifndef PAGED
#define PAGED 0
#endif
/* 1 when K and V are plain rows of store_t, as before 1.1: kernels keep
 * their pointer-stepping fast paths only then. */
#define CLATTN_KV_PLAIN (K_FMT == 0 && V_FMT == 0 && !PAGED)

#if K_FMT == 0
typedef store_t kstore_t;
#elif K_FMT == 1
typedef float kstore_t;
#elif K_FMT == 2
typedef half kstore_t;
#elif K_FMT == 3
typedef ushort kstore_t;
#else
typedef uchar kstore_t;
#endif
#if V_FMT == 0
typedef store_t vstore_t;
#elif V_FMT == 1
typedef float vstore_t;
#elif V_FMT == 2
typedef half vstore_t;
#elif V_FMT == 3
typedef ushort vstore_t;
#else
typedef uchar vstore_t;
#endif

/* ---- one call's parameters --------------------------------------------------
 * Every kernel takes these first (CLATTN_CALL_PARAMS), in this order, and the
 * host sets them in one place; a kernel gathers them with CLATTN_CALL_INIT
 * and hands the struct to the helpers below. A feature's buffers and
 * scalars are here even when it is compiled out. */
#define CLATTN_CALL_PARAMS                                                                     \
    global const store_t *q, global const kstore_t *k, global const vstore_t *v,              \
        global store_t *o, global float *lse, global const int *kv_lens,                       \
        global const int *kv_start, global const int *cu_q, global const int *cu_kv,           \
        global const bias_t *bias, global const uchar *bmask, global const float *sinks,       \
        global const float *slopes, global const int *btab, global const uchar *ksc,           \
        global const uchar *vsc, int heads, int group, int seq_q, int seq_kv, int total_q,     \
        int total_kv, float scale, float softcap, int causal, int windowed, int wl, int wr,    \
        int chunk, int has_kvl, int has_lse, int maxp, int npages, int pshift, long qsb,       \
        long qsh, long qss, long ksb, long ksh,                                                \
        long kss, long vsb, long vsh, long vss, long osb, long osh, long oss, long bsb,        \
        long bsh, long bsr, long msb, long msh, long msr

typedef struct clattn_call {
    global const int *kv_lens, *kv_start, *cu_q, *cu_kv;
    global const bias_t *bias;
    global const uchar *bmask;
    global const float *sinks, *slopes;
    global const int *btab;
    global const uchar *ksc, *vsc;
    int heads, group, seq_q, seq_kv, total_q, total_kv;
    float scale, softcap;
    int causal, windowed, wl, wr, chunk, has_kvl, has_lse;
    int maxp, npages, pshift; /* PAGED: table columns, pool pages, log2(page size) */
    long qsb, qsh, qss, ksb, ksh, kss, vsb, vsh, vss, osb, osh, oss;
    long bsb, bsh, bsr, msb, msh, msr;
} clattn_call;

#define CLATTN_CALL_INIT                                                                       \
    {kv_lens, kv_start, cu_q, cu_kv, bias, bmask, sinks, slopes, btab, ksc, vsc, heads, group,  \
     seq_q, seq_kv, total_q, total_kv, scale, softcap, causal, windowed, wl, wr, chunk,        \
     has_kvl, has_lse, maxp, npages, pshift, qsb, qsh, qss, ksb, ksh, kss, vsb, vsh, vss, osb, osh, oss, bsb, bsh, bsr, msb, msh, msr}

/* One (batch, query head) of a call: its lengths and where its rows live.
 * Row i of it has query row offset q + i * qss, key j is at k + j * kss. */
typedef struct clattn_seq {
    int sq;        /* query rows (seq_q, or the sequence's length with VARLEN) */
    int L, S;      /* keys S <= j < L may be visible */
    long q, k, v, o;
    long lse;      /* LSE index of row 0; rows are consecutive */
    int b, kh;     /* batch and kv head */
    long r0, rstep; /* K/V row number (the scales' index) of key 0, and per key */
    long bias, bmask; /* mask offsets of (b, h, row 0, key 0) */
    float sink, slope;
} clattn_seq;

inline clattn_seq clattn_seq_of(const clattn_call *c, int b, int h)
{
    clattn_seq s;
    const int kh = h / c->group;
    long tq = 0, tk = 0; /* first token of the sequence (VARLEN) */
#if VARLEN
    /* Entries are clamped (like kv_lens): a defined result, never a read
     * outside the caller's tensors. */
    tq = clamp(c->cu_q[b], 0, c->total_q);
    tk = clamp(c->cu_kv[b], 0, c->total_kv);
    /* Both ends clamped before the difference: INT32_MIN - tq would wrap. */
    s.sq = min(clamp(c->cu_q[b + 1], 0, c->total_q) - (int)tq, c->seq_q);
    s.L = min(clamp(c->cu_kv[b + 1], 0, c->total_kv) - (int)tk, c->seq_kv);
    s.sq = max(s.sq, 0);
    s.L = max(s.L, 0);
    s.lse = (long)h * c->total_q + tq;
#else
    s.sq = c->seq_q;
    s.L = c->has_kvl ? clamp(c->kv_lens[b], 0, c->seq_kv) : c->seq_kv;
    s.lse = ((long)b * c->heads + h) * c->seq_q;
#endif
#if KV_START
    s.S = clamp(c->kv_start[b], 0, c->seq_kv);
#else
    s.S = 0;
#endif
    s.b = b;
    s.kh = kh;
#if VARLEN
    s.r0 = tk * (c->heads / c->group) + kh;
    s.rstep = c->heads / c->group;
#else
    s.r0 = ((long)b * (c->heads / c->group) + kh) * c->seq_kv;
    s.rstep = 1;
#endif
    s.q = b * c->qsb + h * c->qsh + tq * c->qss;
    s.k = b * c->ksb + kh * c->ksh + tk * c->kss;
    s.v = b * c->vsb + kh * c->vsh + tk * c->vss;
    s.o = b * c->osb + h * c->osh + tq * c->oss;
    s.bias = b * c->bsb + h * c->bsh;
    s.bmask = b * c->msb + h * c->msh;
#if SINKS
    s.sink = c->sinks[h];
#else
    s.sink = -INFINITY;
#endif
#if ALIBI
    s.slope = c->slopes[h];
#else
    s.slope = 0.0f;
#endif
    return s;
}

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
    const long sstep = fmt == CLATTN_KV_INT8 ? groups : fmt == CLATTN_KV_INT4 ? 2 * groups : 0;
    for (int e = 0; e < n; ++e) {
        const int j = min(j0 + e, hi - 1);
        if (j < page_end) {
            out[e].off = r0.off + (long)(j - jb) * ss;
            out[e].sc = r0.sc + (long)(j - jb) * sstep;
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
    return sdt ? vload_half((size_t)i, (global const half *)sc) : ((global const float *)sc)[i];
}

/* OCP 8-bit floats from their bits (in an int), exactly: normal numbers by
 * moving the exponent into fp32's field (no denormal fp32 on the way, which
 * a device may flush), subnormals as mantissa * 2^(1 - bias - mantissa
 * bits), and E4M3's single NaN code / E5M2's infinities and NaNs. */
#define CLATTN_DEFINE_FP8(T, IT, SUF)                                                           \
    CLATTN_KV_INLINE T CLATTN_CAT(clattn_fp8_, SUF)(IT b, const int e5)                         \
    {                                                                                           \
        const IT mag = b & (IT)(0x7f);                                                          \
        const IT sign = (b & (IT)(0x80)) << 24;                                                 \
        T x;                                                                                    \
        if (e5) {                                                                               \
            x = select(CLATTN_CAT(as_, T)((mag << 21) + (IT)(112 << 23)),                       \
                       CLATTN_CAT(convert_, T)(mag) * (T)(0x1p-16f), mag < (IT)(4));            \
            x = select(x, (T)(INFINITY), mag == (IT)(0x7c));                                    \
            x = select(x, (T)(NAN), mag > (IT)(0x7c));                                          \
        } else {                                                                                \
            x = select(CLATTN_CAT(as_, T)((mag << 20) + (IT)(120 << 23)),                       \
                       CLATTN_CAT(convert_, T)(mag) * (T)(0x1p-9f), mag < (IT)(8));             \
            x = select(x, (T)(NAN), mag == (IT)(0x7f));                                         \
        }                                                                                       \
        return CLATTN_CAT(as_, T)(CLATTN_CAT(as_, IT)(x) | sign);                               \
    }
CLATTN_DEFINE_FP8(float, int, 1)
CLATTN_DEFINE_FP8(float4, int4, 4)
CLATTN_DEFINE_FP8(float8, int8, 8)
CLATTN_DEFINE_FP8(float16, int16, 16)

/* fp16 bits (in uints) to fp32, exactly: normal numbers by moving the
 * exponent, subnormals as mantissa * 2^-24, infinities and NaN with their
 * payload. Whole vectors, so fp16 K/V need no vload_halfN (PoCL 3.1 crashed
 * on vload_half16 at 2-byte alignment in unrolled loops). */
#define CLATTN_DEFINE_F16V(W)                                                                   \
    CLATTN_KV_INLINE CLATTN_CAT(float, W) CLATTN_CAT(clattn_f16_bits_, W)(CLATTN_CAT(uint, W) h)  \
    {                                                                                           \
        typedef CLATTN_CAT(float, W) T;                                                         \
        typedef CLATTN_CAT(uint, W) U;                                                          \
        const U mag = h & (U)(0x7fffu);                                                         \
        T x = CLATTN_CAT(as_float, W)((mag << 13) + (U)(112u << 23));                           \
        x = select(x, CLATTN_CAT(convert_float, W)(mag) * (T)(0x1p-24f), mag < (U)(0x400u));    \
        x = select(x, CLATTN_CAT(as_float, W)((mag << 13) | (U)(0x7f800000u)),                  \
                   mag >= (U)(0x7c00u));                                                        \
        return CLATTN_CAT(as_float, W)(CLATTN_CAT(as_uint, W)(x) | ((h & (U)(0x8000u)) << 16)); \
    }
CLATTN_DEFINE_F16V(4)
CLATTN_DEFINE_F16V(8)
CLATTN_DEFINE_F16V(16)

/* INT4 channels 2c, 2c + 1 from the low and high nibbles of byte c: the
 * lanes of the two halves interleaved. */
#define CLATTN_NIBBLES4 ((uint4)(0, 2, 1, 3))
#define CLATTN_NIBBLES8 ((uint8)(0, 4, 1, 5, 2, 6, 3, 7))
#define CLATTN_NIBBLES16 ((uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15))
#define CLATTN_HALF_OF4 2
#define CLATTN_HALF_OF8 4
#define CLATTN_HALF_OF16 8

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
        return vload_half((size_t)(r.off + d), (global const half *)p);
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
               vload_half((size_t)(blk / 2), (global const half *)p);
    }
    if (fmt == CLATTN_KV_Q4_0) {
        const long blk = r.off + (long)(d >> 5) * 18;
        const uint byte = u[blk + 2 + (d & 15)];
        const float q = (float)((d & 31) < 16 ? byte & 15u : byte >> 4);
        return (q - 8.0f) * vload_half((size_t)(blk / 2), (global const half *)p);
    }
    return clattn_fp8_1((int)u[r.off + d], fmt == CLATTN_KV_E5M2) *
           (unscaled ? 1.0f : clattn_kv_scale(sc, sdt, r.sc));
}

/* Channels d0 .. d0+W-1 of a row as a vector (d0 a multiple of W); only the
 * first n are read, the rest are 0. Whole vectors load as vectors. */
#define CLATTN_DEFINE_KV_VEC(W)                                                                 \
    CLATTN_KV_INLINE CLATTN_CAT(float, W) CLATTN_CAT(clattn_kv_v, W)(                           \
        global const void *p, global const uchar *sc, clattn_kvrow r, int d0, int n,            \
        const int fmt, const int group, const int sdt, const int unscaled)                      \
    {                                                                                           \
        typedef CLATTN_CAT(float, W) T;                                                         \
        global const uchar *u = (global const uchar *)p;                                        \
        if (n >= W) {                                                                           \
            if ((fmt == CLATTN_KV_DTYPE && DTYPE == 0) || fmt == CLATTN_KV_F32)                 \
                return CLATTN_CAT(vload, W)(0, (global const float *)p + r.off + d0);           \
            if ((fmt == CLATTN_KV_DTYPE && DTYPE == 1) || fmt == CLATTN_KV_F16)                 \
                return CLATTN_CAT(clattn_f16_bits_, W)(CLATTN_CAT(convert_uint, W)(             \
                    CLATTN_CAT(vload, W)(0, (global const ushort *)p + r.off + d0)));           \
            if ((fmt == CLATTN_KV_DTYPE && DTYPE == 2) || fmt == CLATTN_KV_BF16)                \
                return CLATTN_CAT(as_float, W)(                                                 \
                    CLATTN_CAT(convert_uint, W)(                                                \
                        CLATTN_CAT(vload, W)(0, (global const ushort *)p + r.off + d0))         \
                    << 16);                                                                     \
            if (fmt == CLATTN_KV_INT8)                                                          \
                return CLATTN_CAT(convert_float, W)(                                            \
                           CLATTN_CAT(vload, W)(0, (global const char *)p + r.off + d0)) *      \
                       (unscaled ? 1.0f : clattn_kv_scale(sc, sdt, r.sc + d0 / group));         \
            if (fmt == CLATTN_KV_INT4) {                                                        \
                typedef CLATTN_CAT(float, CLATTN_CAT(CLATTN_HALF_OF, W)) H;                     \
                const CLATTN_CAT(uint, CLATTN_CAT(CLATTN_HALF_OF, W)) b =                       \
                    CLATTN_CAT(convert_uint, CLATTN_CAT(CLATTN_HALF_OF, W))(                    \
                        CLATTN_CAT(vload, CLATTN_CAT(CLATTN_HALF_OF, W))(0, u + r.off + d0 / 2)); \
                const H lo = CLATTN_CAT(convert_float, CLATTN_CAT(CLATTN_HALF_OF, W))(b & 15u);  \
                const H hi = CLATTN_CAT(convert_float, CLATTN_CAT(CLATTN_HALF_OF, W))(b >> 4);   \
                const long g = r.sc + 2 * (d0 / group);                                         \
                return (shuffle2(lo, hi, CLATTN_CAT(CLATTN_NIBBLES, W)) -                       \
                        (T)(clattn_kv_scale(sc, sdt, g + 1))) *                                 \
                       clattn_kv_scale(sc, sdt, g);                                             \
            }                                                                                   \
            if (fmt == CLATTN_KV_Q8_0) {                                                        \
                const long blk = r.off + (long)(d0 >> 5) * 34;                                  \
                return CLATTN_CAT(convert_float, W)(CLATTN_CAT(vload, W)(                       \
                           0, (global const char *)p + blk + 2 + (d0 & 31))) *                    \
                       vload_half((size_t)(blk / 2), (global const half *)p);                   \
            }                                                                                   \
            if (fmt == CLATTN_KV_Q4_0) {                                                        \
                const long blk = r.off + (long)(d0 >> 5) * 18;                                  \
                const CLATTN_CAT(uint, W) b = CLATTN_CAT(convert_uint, W)(                      \
                    CLATTN_CAT(vload, W)(0, u + blk + 2 + (d0 & 15)));                            \
                const CLATTN_CAT(uint, W) qv = (d0 & 31) < 16 ? b & 15u : b >> 4;                 \
                return (CLATTN_CAT(convert_float, W)(qv) - (T)(8.0f)) *                         \
                       vload_half((size_t)(blk / 2), (global const half *)p);                   \
            }                                                                                   \
            if (fmt == CLATTN_KV_E4M3 || fmt == CLATTN_KV_E5M2)                                 \
                return CLATTN_CAT(clattn_fp8_, W)(                                              \
                           CLATTN_CAT(convert_int, W)(CLATTN_CAT(vload, W)(0, u + r.off + d0)), \
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
    CLATTN_CAT(clattn_kv_v, W)(k, (c)->ksc, (r), (d0), (n), K_FMT, K_GROUP, K_SDT, 0)
#define clattn_v_vec(W, c, r, d0, n)                                                            \
    CLATTN_CAT(clattn_kv_v, W)(v, (c)->vsc, (r), (d0), (n), V_FMT, V_GROUP, V_SDT, 0)

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
    CLATTN_CAT(clattn_kv_v, W)(k, (c)->ksc, (r), (d0), (n), K_FMT, K_GROUP, K_SDT, K_ROW_SCALED)
#define clattn_v_vec_raw(W, c, r, d0, n)                                                        \
    CLATTN_CAT(clattn_kv_v, W)(v, (c)->vsc, (r), (d0), (n), V_FMT, V_GROUP, V_SDT, V_ROW_SCALED)
#define clattn_k_row_scale(c, r) (K_ROW_SCALED ? clattn_kv_scale((c)->ksc, K_SDT, (r).sc) : 1.0f)
#define clattn_v_row_scale(c, r) (V_ROW_SCALED ? clattn_kv_scale((c)->vsc, V_SDT, (r).sc) : 1.0f)
/* ---- visibility ---------------------------------------------------------------
 * The rule of clattn.h: query row i (< sq) sees keys j with
 * clattn_key_lo(i) <= j < clattn_key_hi(i) (and, with BMASK, where its mask
 * entry is nonzero). Both bounds are monotone non-decreasing in i, so a block
 * of rows [i0, i1] sees at most the keys [key_lo(i0), key_hi(i1)); kernels
 * use that to skip whole tiles. */

/* The query's position among the keys: the last row faces the last key. */
inline long clattn_ip(const clattn_seq *s, int i) { return (long)i + s->L - s->sq; }

/* floor(a / b) for b > 0, also for negative a. */
inline long clattn_floor_div(long a, long b) { return (a >= 0 ? a : a - b + 1) / b; }

inline int clattn_key_lo(const clattn_call *c, const clattn_seq *s, int i)
{
    long lo = s->S;
    if (c->windowed && c->wl >= 0)
        lo = max(lo, clattn_ip(s, i) - c->wl);
#if CHUNK
    lo = max(lo, s->S + clattn_floor_div(clattn_ip(s, i) - s->S, c->chunk) * c->chunk);
#endif
    return (int)min(lo, (long)s->L);
}

inline int clattn_key_hi(const clattn_call *c, const clattn_seq *s, int i)
{
    long hi = s->L;
    const long ip = clattn_ip(s, i);
    if (c->causal == 1)
        hi = min(hi, ip + 1);
    else if (c->causal == 2)
        hi = min(hi, (long)i + 1);
    if (c->windowed && c->wr >= 0)
        hi = min(hi, ip + c->wr + 1);
#if CHUNK
    hi = min(hi, s->S + (clattn_floor_div(ip - s->S, c->chunk) + 1) * c->chunk);
#endif
    return (int)max(hi, 0L);
}

/* ---- a short vector exp2 ----------------------------------------------------
 * exp2 on W lanes for the hot loops: round to the nearest integer n with
 * the 1.5*2^23 trick (PoCL's rint is a long software sequence), a degree-6
 * polynomial for 2^f on f in [-0.5, 0.5] (about 1e-7 relative error, a few
 * ulp at most), and 2^n built in the exponent bits. Arguments are clamped to
 * [-127, 127] by comparisons, so NaN passes through; 2^-127 is built as
 * exactly 0, so -inf (a hidden key) gives exactly 0 and 0 gives exactly 1.
 * Above 127 it gives 2^127, not inf: callers only pass x <= 8 (softmax,
 * lazy maximum) or use the result where any huge value is as good (tanh). */
#define CLATTN_EXP2_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define CLATTN_DEFINE_EXP2(W)                                                                  \
    inline CLATTN_CAT(float, W) CLATTN_CAT(clattn_exp2_, W)(CLATTN_CAT(float, W) x)            \
    {                                                                                          \
        typedef CLATTN_CAT(float, W) T;                                                        \
        x = select(x, (T)(-127.0f), x < (T)(-127.0f));                                         \
        x = select(x, (T)(127.0f), x > (T)(127.0f));                                           \
        const T t = x + (T)(CLATTN_EXP2_MAGIC);                                                \
        const T f = x - (t - (T)(CLATTN_EXP2_MAGIC));                                          \
        T p = (T)(1.5353362e-4f);                                                              \
        p = fma(p, f, (T)(1.3398874e-3f));                                                     \
        p = fma(p, f, (T)(9.6180082e-3f));                                                     \
        p = fma(p, f, (T)(5.5503406e-2f));                                                     \
        p = fma(p, f, (T)(0.24022652f));                                                       \
        p = fma(p, f, (T)(0.69314718f));                                                       \
        p = fma(p, f, (T)(1.0f));                                                              \
        /* t's low mantissa bits hold n: n + 127 shifted into the exponent */                 \
        const CLATTN_CAT(int, W) e =                                                           \
            (CLATTN_CAT(as_int, W)(t) - (CLATTN_CAT(int, W))(0x4B400000 - 127)) << 23;         \
        return p * CLATTN_CAT(as_float, W)(e);                                                 \
    }
CLATTN_DEFINE_EXP2(4)
CLATTN_DEFINE_EXP2(8)
CLATTN_DEFINE_EXP2(16)

/* ---- the score pipeline --------------------------------------------------------
 * Kernels multiply q by clattn_qscale once; the dot product with a key then
 * goes through clattn_score (scalar) or clattn_score_vW (W consecutive keys
 * in the lanes of a vector), which apply the steps of clattn.h after the
 * scaling: softcap, ALiBi, the additive mask, the boolean mask. Scores come
 * out in units of U natural-log units: U = log2(e) for kernels that
 * exponentiate with exp2, 1 for natural units. Causal, window, lengths and
 * chunks are the key bounds above, applied by the caller. */
/* tanh through one exp2 (any vector type): PoCL's tanh is a longer
 * polynomial per lane. The absolute error stays at fp32 rounding (tanh's
 * result is multiplied back by the cap, so a small relative error of tiny
 * arguments does not matter), and +-inf and NaN come out as tanh's. */
#define CLATTN_TANH_FAST(x, EXP2)                                                              \
    copysign(1.0f - 2.0f / (EXP2(fabs(x) * (2.0f * CLATTN_LOG2E)) + 1.0f), (x))
/* Near 0 that form keeps only absolute accuracy, which the cap multiplies
 * back into the score (a cap of 1e4 lost three digits): below
 * CLATTN_TANH_SMALL the odd series to x^9 takes over, whose next term is
 * under 1e-7 of the result there. */
#define CLATTN_TANH_SMALL 0.3f
#define CLATTN_TANH_POLY(x)                                                                    \
    ((x) * (1.0f + (x) * (x) *                                                                 \
                       (-0.33333334f +                                                         \
                        (x) * (x) * (0.13333334f + (x) * (x) * (-0.053968254f +                \
                                                                (x) * (x) * 0.021869488f)))))
#define CLATTN_TANH(x)                                                                         \
    (fabs(x) < CLATTN_TANH_SMALL ? CLATTN_TANH_POLY(x) : CLATTN_TANH_FAST((x), exp2))
/* The same on W lanes with the short exp2 (whose 2^127 for huge arguments
 * still makes tanh exactly +-1). */
#define CLATTN_VTANH(W, x)                                                                     \
    select(CLATTN_TANH_FAST((x), CLATTN_CAT(clattn_exp2_, W)), CLATTN_TANH_POLY(x),            \
           fabs(x) < (CLATTN_CAT(float, W))(CLATTN_TANH_SMALL))

inline float clattn_qscale(const clattn_call *c, float U)
{
#if SOFTCAP
    return c->scale / c->softcap; /* tanh takes s / softcap */
#else
    return c->scale * U;
#endif
}

inline float clattn_score(const clattn_call *c, const clattn_seq *s, float x, int i, int j,
                          float U)
{
#if SOFTCAP
    x = c->softcap * U * CLATTN_TANH(x);
#endif
#if ALIBI
    x += U * s->slope * (float)((long)j - clattn_ip(s, i));
#endif
#if BIAS
    x += U * LOAD_BIAS(c->bias, s->bias + i * c->bsr + j);
#endif
#if BMASK
    x = c->bmask[s->bmask + i * c->msr + j] ? x : -INFINITY;
#endif
    return x;
}

/* Lanes e of a vector hold keys j0 + e; only keys below n exist in the masks
 * (the rest get no mask term: callers hide them). */
#define CLATTN_DEFINE_SCORE_VEC(W)                                                             \
    inline CLATTN_CAT(float, W) CLATTN_CAT(clattn_score_v, W)(                                 \
        const clattn_call *c, const clattn_seq *s, CLATTN_CAT(float, W) x, int i, int j0, int n, \
        float U)                                                                               \
    {                                                                                          \
        CLATTN_SCORE_VEC_BODY(W)                                                               \
        return x;                                                                              \
    }

#if SOFTCAP
#define CLATTN_VSOFTCAP(W) x = (c->softcap * U) * CLATTN_VTANH(W, x);
#else
#define CLATTN_VSOFTCAP(W)
#endif
#define CLATTN_LANES4 (float4)(0, 1, 2, 3)
#define CLATTN_LANES8 (float8)(0, 1, 2, 3, 4, 5, 6, 7)
#define CLATTN_LANES16 (float16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#if ALIBI
/* j - i' is exact in fp32 up to 2^24 positions. */
#define CLATTN_VALIBI(W)                                                                       \
    x += (U * s->slope) *                                                                      \
         (CLATTN_CAT(CLATTN_LANES, W) + (float)((long)j0 - clattn_ip(s, i)));
#else
#define CLATTN_VALIBI(W)
#endif
#if BIAS
/* Whole vectors load as vectors where the storage allows (fp16 goes element
 * by element: PoCL 3.1 crashed on vload_half16 at 2-byte alignment). */
#if BIAS_DTYPE == 0
#define CLATTN_VBIAS_WHOLE(W, p) CLATTN_CAT(vload, W)(0, p)
#elif BIAS_DTYPE == 2
#define CLATTN_VBIAS_WHOLE(W, p)                                                               \
    CLATTN_CAT(as_float, W)(CLATTN_CAT(convert_uint, W)(CLATTN_CAT(vload, W)(0, p)) << 16)
#endif
#ifdef CLATTN_VBIAS_WHOLE
#define CLATTN_VBIAS_FAST(W)                                                                   \
    if (j0 + W <= n) {                                                                         \
        x += U * CLATTN_VBIAS_WHOLE(W, c->bias + off);                                         \
    } else
#else
#define CLATTN_VBIAS_FAST(W)
#endif
#define CLATTN_VBIAS(W)                                                                        \
    {                                                                                          \
        const long off = s->bias + i * c->bsr + j0;                                            \
        CLATTN_VBIAS_FAST(W)                                                                   \
        {                                                                                      \
            float t[W];                                                                        \
            for (int e = 0; e < W; ++e)                                                        \
                t[e] = j0 + e < n ? LOAD_BIAS(c->bias, off + e) : 0.0f;                        \
            x += U * CLATTN_CAT(vload, W)(0, t);                                               \
        }                                                                                      \
    }
#else
#define CLATTN_VBIAS(W)
#endif
#if BMASK
#define CLATTN_VBMASK(W)                                                                       \
    {                                                                                          \
        const long off = s->bmask + i * c->msr + j0;                                           \
        CLATTN_CAT(int, W) hide;                                                               \
        if (j0 + W <= n) {                                                                     \
            hide = CLATTN_CAT(convert_int, W)(CLATTN_CAT(vload, W)(0, c->bmask + off)) ==      \
                   (CLATTN_CAT(int, W))(0);                                                    \
        } else {                                                                               \
            int t[W];                                                                          \
            for (int e = 0; e < W; ++e)                                                        \
                t[e] = j0 + e < n && c->bmask[off + e] != 0 ? 0 : -1;                          \
            hide = CLATTN_CAT(vload, W)(0, t);                                                 \
        }                                                                                      \
        x = select(x, (CLATTN_CAT(float, W))(-INFINITY), hide);                                \
    }
#else
#define CLATTN_VBMASK(W)
#endif
#define CLATTN_SCORE_VEC_BODY(W) CLATTN_VSOFTCAP(W) CLATTN_VALIBI(W) CLATTN_VBIAS(W) CLATTN_VBMASK(W)
CLATTN_DEFINE_SCORE_VEC(4)
CLATTN_DEFINE_SCORE_VEC(8)
CLATTN_DEFINE_SCORE_VEC(16)

/* 1 when a score step reads per-key data or may hide a key inside the key
 * bounds, so that a tile cannot take a shortcut that skips clattn_score. */
#define CLATTN_SCORE_STEPS (SOFTCAP || ALIBI || BIAS || BMASK)

/* ---- softmax state and the row epilogue ----------------------------------------
 * The online softmax of a row keeps its running maximum m and sum l in units
 * of U; a sink starts them at (sink, 1): it joins the denominator and adds
 * no value. Split-KV partitions start empty; the combine adds the sink. */
inline void clattn_softmax_init(const clattn_seq *s, float U, int with_sink, float *m, float *l)
{
    *m = -INFINITY;
    *l = 0.0f;
#if SINKS
    if (with_sink && s->sink != -INFINITY) {
        *m = s->sink * U;
        *l = 1.0f;
    }
#endif
}

/* 1/l, or 0 for a row that saw nothing (l == 0): zeros, never 0/0. */
inline float clattn_row_inv(float l) { return l == 0.0f ? 0.0f : 1.0f / l; }

/* The natural-log LSE of a row from its log2-unit state; a row whose state
 * is still its sink's (it saw no key, or only keys of probability 0) gives
 * the sink exactly, not the sink through log2 units and back. */
inline float clattn_row_lse2(const clattn_seq *s, float m, float l)
{
    if (l == 0.0f)
        return -INFINITY;
#if SINKS
    if (l == 1.0f && m == s->sink * CLATTN_LOG2E)
        return s->sink;
#endif
    return (m + log2(l)) * CLATTN_LN2;
}

/* Writes a finished row i of (b, query head h) from its unnormalised
 * accumulators out[HEAD_DIM_V] and log2-unit state (m, l): O and the LSE,
 * or with SPLIT_KV the partition's partials for the combine. */
inline void clattn_store_row(const clattn_call *c, const clattn_seq *s, int b, int h, int i,
                             int split, int nsplit, const float *out, float m, float l,
                             global store_t *o, global float *lse, global float *part_o,
                             global float *part_ml)
{
#if SPLIT_KV
    const long prow = (((long)b * c->heads + h) * nsplit + split) * c->seq_q + i;
    for (int d = 0; d < HEAD_DIM_V; ++d)
        part_o[prow * HEAD_DIM_V + d] = out[d];
    part_ml[2 * prow] = m;
    part_ml[2 * prow + 1] = l;
#else
    const float inv = clattn_row_inv(l);
    const long ooff = s->o + (long)i * c->oss;
    for (int d = 0; d < HEAD_DIM_V; ++d)
        STORE(o, ooff + d, out[d] * inv);
    if (c->has_lse)
        lse[s->lse + i] = clattn_row_lse2(s, m, l);
#endif
}

/* Keys [*lo, *hi) of split-KV partition `split`, intersected with the given
 * bounds. */
inline void clattn_split_range(int split, int keys_per_split, int seq_kv, int *lo, int *hi)
{
    const int s0 = split * keys_per_split;
    const int s1 = (int)min((long)s0 + keys_per_split, (long)seq_kv);
    *lo = max(*lo, s0);
    *hi = min(*hi, s1);
}

#endif /* CLATTN_COMMON_INCLUDED */
