/*
 * Shared definitions of every clattn kernel: storage types, the feature and
 * K/V storage switches, one call's parameters and a (batch, head)'s setup.
 * kv_read.h (reading K and V) and score.h (visibility, the score pipeline,
 * softmax state) follow it; the host prepends the three to each kernel
 * source, and a kernel file also includes common.h itself so it stays a
 * valid OpenCL C file on its own (e.g. for Oclgrind with -I cl).
 */
#ifndef CLATTN_COMMON_INCLUDED
#define CLATTN_COMMON_INCLUDED

/* Clang warns (-Wpsabi) at every call that passes a vector wider than the
 * target's registers, e.g. a float16 on an AVX2 CPU (PoCL pthread-haswell):
 * the calling convention for it would differ from code built with
 * AVX-512. No such boundary exists here, since the kernel, its helpers and
 * the built-in library are one module built for one target and inlined,
 * so the warning says nothing about our code and would otherwise fill the
 * build log of every kernel that keeps 16 lanes on a CPU of 8. PoCL refuses
 * -Wno-psabi as a build option (CL_INVALID_BUILD_OPTIONS), hence the
 * pragma; other warnings stay on. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#endif

/* DTYPE: 0 = fp32, 1 = fp16 (read as bits through clattn_half*, written by
 * vstore_half, so no cl_khr_fp16 is needed), 2 = bf16 (the top half of an
 * fp32). */
#ifndef DTYPE
#define DTYPE 0
#endif
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef HEAD_DIM_V
#define HEAD_DIM_V HEAD_DIM
#endif

/* A kernel's fixed work-group size, for the compiler; left out where the
 * driver mishandles it (PoCL's CPU drivers before 6.0: src/device.c). */
#if defined(CLATTN_NO_REQD_WG) && CLATTN_NO_REQD_WG
#define CLATTN_WG_SIZE(n)
#else
#define CLATTN_WG_SIZE(n) __attribute__((reqd_work_group_size(n, 1, 1)))
#endif

#define CLATTN_LOG2E 1.4426950408889634f
#define CLATTN_LN2 0.6931471805599453f

/* fp16 bits to fp32, through vload_halfN (N >= 4) of a private copy. On x86
 * PoCL 3.1 compiles that to F16C's vcvtph2ps, one instruction for up to 8
 * (16 with AVX-512) values, whereas a scalar or 2-wide vload_half is a
 * software conversion of 10-20 instructions (a branch for the scalar) and
 * vload_halfN from global memory is compiled as an aligned load (read from
 * the .so of probe kernels). Exact on every device, as vload_half is. */
inline float clattn_half1(ushort h)
{
    const ushort4 t = (ushort4)(h, (ushort)0, (ushort)0, (ushort)0);
    return vload_half4(0, (private const half *)&t).s0;
}
inline float2 clattn_half2(ushort2 h)
{
    /* (h, h), not (h, 0, 0): Oclgrind 21.10's uninitialised-value check
     * crashed on the vector built with zeros (probe kernels). */
    const ushort4 t = (ushort4)(h, h);
    return vload_half4(0, (private const half *)&t).lo;
}
inline float4 clattn_half4(ushort4 h) { return vload_half4(0, (private const half *)&h); }
inline float8 clattn_half8(ushort8 h) { return vload_half8(0, (private const half *)&h); }
inline float16 clattn_half16(ushort16 h) { return vload_half16(0, (private const half *)&h); }
/* N fp16 values at p (global memory) as floats. The 16-wide one is two
 * 8-wide loads and conversions: PoCL 3.1 (LLVM 15, AVX-512) converted a
 * 16-wide load's lower 8 with one vcvtph2ps from memory and its upper 8
 * through two 4-value loads and four shuffles (perf annotate of D1). */
inline float4 clattn_half_at4(global const ushort *p) { return clattn_half4(vload4(0, p)); }
inline float8 clattn_half_at8(global const ushort *p) { return clattn_half8(vload8(0, p)); }
inline float16 clattn_half_at16(global const ushort *p)
{
    return (float16)(clattn_half8(vload8(0, p)), clattn_half8(vload8(1, p)));
}
/* Element i of fp16 data at p (global memory). */
#define CLATTN_HALF_AT(p, i) clattn_half1(((global const ushort *)(p))[(i)])

#if DTYPE == 0
typedef float store_t;
#define LOAD(p, i) ((p)[(i)])
#define STORE(p, i, x) ((p)[(i)] = (x))
#elif DTYPE == 1
typedef half store_t;
#define LOAD(p, i) CLATTN_HALF_AT(p, i)
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
 * Oclgrind 21.10's --uninitialized. The max uses plain compares, not fmax
 * (a NaN test and a blend at each step): a NaN lane may or may not win, so
 * callers that must propagate NaN check for it themselves. */
#define CLATTN_CAT_(a, b) a##b
#define CLATTN_CAT(a, b) CLATTN_CAT_(a, b)
#define clattn_max2_(a, b) ((a) > (b) ? (a) : (b))
#define clattn_vmax_(a, b) select((b), (a), (a) > (b))
inline float clattn_hmax4(float4 v)
{
    return clattn_max2_(clattn_max2_(v.x, v.y), clattn_max2_(v.z, v.w));
}
inline float clattn_hmax8(float8 v) { return clattn_hmax4(clattn_vmax_(v.lo, v.hi)); }
inline float clattn_hmax16(float16 v) { return clattn_hmax8(clattn_vmax_(v.lo, v.hi)); }
inline float clattn_hsum4(float4 v) { return dot(v, (float4)(1.0f)); }
inline float clattn_hsum8(float8 v) { return clattn_hsum4(v.lo + v.hi); }
inline float clattn_hsum16(float16 v) { return clattn_hsum8(v.lo + v.hi); }
/* Whether any lane of a comparison result is set, by a horizontal sum of
 * 0/1 lanes: PoCL 3.1's any() tests the lanes one compare-and-branch at a
 * time, and Oclgrind 21.10 crashes on OR-ing halves of an int vector. */
#define CLATTN_DEFINE_HANY(W)                                                                   \
    inline int CLATTN_CAT(clattn_hany, W)(CLATTN_CAT(int, W) m)                                 \
    {                                                                                           \
        typedef CLATTN_CAT(float, W) T;                                                         \
        return CLATTN_CAT(clattn_hsum, W)(select((T)(0.0f), (T)(1.0f), m)) > 0.0f;              \
    }
CLATTN_DEFINE_HANY(4)
CLATTN_DEFINE_HANY(8)
CLATTN_DEFINE_HANY(16)

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
#define LOAD_BIAS(p, i) CLATTN_HALF_AT(p, i)
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
        long bsh, long bsr, long msb, long msh, long msr, int tq0, int tk0, int wsq, int wskv

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
    /* A tile of a larger problem (clattn_forward_tile): the first row and
     * key of the tile in the whole, and the whole's seq_q and seq_kv (0, 0,
     * seq_q, seq_kv otherwise). */
    int tq0, tk0, wsq, wskv;
} clattn_call;

#define CLATTN_CALL_INIT                                                                       \
    {kv_lens, kv_start, cu_q, cu_kv, bias, bmask, sinks, slopes, btab, ksc, vsc, heads, group,  \
     seq_q, seq_kv, total_q, total_kv, scale, softcap, causal, windowed, wl, wr, chunk,        \
     has_kvl, has_lse, maxp, npages, pshift, qsb, qsh, qss, ksb, ksh, kss, vsb, vsh, vss, osb, osh, oss, bsb, bsh, bsr, msb, msh, msr, tq0, tk0, wsq, wskv}

/* One (batch, query head) of a call: its lengths and where its rows live.
 * Row i of it has query row offset q + i * qss, key j is at k + j * kss. */
typedef struct clattn_seq {
    int sq;        /* query rows (seq_q, or the sequence's length with VARLEN) */
    int L, S;      /* keys S <= j < L may be visible */
    /* Positions (key indices of this call): row i's i' is i + ip0, the
     * top-left causal bound of row i is key i + tl0, chunks start at cs0
     * (may be negative or past the keys: a tile's chunk origin). */
    long ip0, tl0, cs0;
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
    s.S = 0;
    s.ip0 = s.L - s.sq;
    s.tl0 = 0;
    s.cs0 = 0;
#else
    /* Lengths and positions of the whole problem, then in this call's keys
     * (which are the whole's keys tk0.. when the call is a tile). */
    const int Lw = c->has_kvl ? clamp(c->kv_lens[b], 0, c->wskv) : c->wskv;
#if KV_START
    const int Sw = clamp(c->kv_start[b], 0, c->wskv);
#else
    const int Sw = 0;
#endif
    s.sq = c->seq_q;
    s.L = clamp(Lw - c->tk0, 0, c->seq_kv);
    s.S = clamp(Sw - c->tk0, 0, c->seq_kv);
    s.ip0 = (long)c->tq0 + Lw - c->wsq - c->tk0;
    s.tl0 = (long)c->tq0 - c->tk0;
    s.cs0 = (long)Sw - c->tk0;
    s.lse = ((long)b * c->heads + h) * c->seq_q;
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
    /* masks are the whole problem's: a tile's row 0 and key 0 sit at tq0, tk0 */
    s.bias = b * c->bsb + h * c->bsh + c->tq0 * c->bsr + c->tk0;
    s.bmask = b * c->msb + h * c->msh + c->tq0 * c->msr + c->tk0;
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

/* The rest of the prelude. The host joins the three files itself (and
 * defines CLATTN_PRELUDE_JOINED); a kernel file compiled on its own (e.g.
 * with -I cl) gets them from here. */
#ifndef CLATTN_PRELUDE_JOINED
#include "kv_read.h"
#include "score.h"
#endif

#endif /* CLATTN_COMMON_INCLUDED */
