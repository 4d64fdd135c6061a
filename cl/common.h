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

/* The visibility rule of clattn.h: query row i of a batch whose KV length is
 * L sees keys j with key_lo(i) <= j < key_hi(i). Both bounds are monotone
 * non-decreasing in i, so a block of rows [i0, i1] sees at most the keys
 * [key_lo(i0), key_hi(i1)); kernels use that to skip whole tiles. */
inline int clattn_key_lo(int i, int L, int seq_q, int windowed, int wl)
{
    long lo = 0;
    if (windowed && wl >= 0)
        lo = max(lo, (long)i + L - seq_q - wl);
    return (int)min(lo, (long)L);
}

inline int clattn_key_hi(int i, int L, int seq_q, int causal, int windowed, int wr)
{
    long hi = L;
    long ip = (long)i + L - seq_q; /* the bottom-right aligned diagonal */
    if (causal == 1)
        hi = min(hi, ip + 1);
    else if (causal == 2)
        hi = min(hi, (long)i + 1);
    if (windowed && wr >= 0)
        hi = min(hi, ip + wr + 1);
    return (int)max(hi, 0L);
}

/* kv_lens entries outside 0..seq_kv are clamped: a defined result instead of
 * a read past the end of K and V. */
inline int clattn_kv_len(global const int *kv_lens, int has_kvl, int b, int seq_kv)
{
    return has_kvl ? clamp(kv_lens[b], 0, seq_kv) : seq_kv;
}

#endif /* CLATTN_COMMON_INCLUDED */
