/*
 * clattn: scaled dot-product attention on any OpenCL 1.2+ device.
 *
 *   O = softmax(scale * Q * K^T + mask) * V
 *
 * This header is the whole public API and its manual.
 *
 * Ownership: clattn borrows whatever the caller hands it (cl_context,
 * cl_command_queue, cl_mem, host pointers) and never retains or releases it;
 * those objects must outlive the calls (and, for a queue given to
 * clattn_context_create_from_queue, the clattn_context) that use them.
 *
 * Thread safety: every function taking a clattn_context may be called from
 * several threads at once on the same context; calls on one context are
 * serialised by a lock inside it. Different contexts are independent. Two
 * exceptions: clattn_context_destroy must not run while another call on the
 * same context may be in progress, and the log and progress callbacks run
 * with the context's lock held, so they must not call into the same context
 * (that would deadlock).
 *
 * Failure: every function returns a clattn_status, and clattn_last_error()
 * on the context holds a message naming the check, the OpenCL call and its
 * CL_ error code, or the build log. Argument errors are detected before
 * anything is enqueued and leave every buffer untouched. An OpenCL failure
 * after enqueueing began (out of resources, a lost device) may leave O and
 * the LSE of clattn_forward partly written — the status says the call
 * failed; the host functions copy results out only after every step
 * succeeded, so their outputs are untouched on any failure. The context
 * stays usable after any failure. The library never aborts, asserts or
 * exits.
 *
 * ABI: within one major version, enum values and struct layouts never change
 * and new functions are only added. The shared library's SOVERSION is the
 * major version. The descriptors that grow with new features
 * (clattn_problem, clattn_buffers, clattn_host_buffers) end in a reserved
 * block that must be zero: a later minor version gives new fields those
 * bytes, so the size and the offsets of every older field stay as they are,
 * and a binary built against an older header (whose reserved block is zero
 * because its initialisers left it so) keeps its meaning — every new feature
 * is off when its field is zero. A library older than the header a program
 * was built with refuses a non-zero reserved field with
 * CLATTN_ERR_INVALID_ARGUMENT rather than ignoring a feature it does not know.
 * When a reserved block runs out, a new descriptor type and new entry points
 * come in, and the old entry points stay as thin wrappers.
 */
#ifndef CLATTN_H
#define CLATTN_H

#include <stddef.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#ifdef __APPLE__
#include <OpenCL/cl.h>
#else
#include <CL/cl.h>
#endif

#define CLATTN_VERSION_MAJOR 1
#define CLATTN_VERSION_MINOR 4
#define CLATTN_VERSION_PATCH 0

#if defined(_WIN32) && defined(CLATTN_SHARED_BUILD)
#define CLATTN_API __declspec(dllexport)
#elif defined(_WIN32) && defined(CLATTN_SHARED)
#define CLATTN_API __declspec(dllimport)
#elif defined(__GNUC__)
#define CLATTN_API __attribute__((visibility("default")))
#else
#define CLATTN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status -------------------------------------------------------------
 * Values are stable: once released a code never changes meaning. */
#define CLATTN_STATUS_TABLE(X)                                                    \
    X(CLATTN_OK, 0, "success")                                                    \
    X(CLATTN_ERR_INVALID_ARGUMENT, 1, "invalid argument")                         \
    X(CLATTN_ERR_UNSUPPORTED, 2, "problem not supported on this device")          \
    X(CLATTN_ERR_NO_DEVICE, 3, "no OpenCL device found")                          \
    X(CLATTN_ERR_OUT_OF_RESOURCES, 4, "out of host or device resources")          \
    X(CLATTN_ERR_BUILD, 5, "kernel build failed")                                 \
    X(CLATTN_ERR_OPENCL, 6, "OpenCL call failed")                                 \
    X(CLATTN_ERR_IO, 7, "file input/output failed")

typedef enum clattn_status {
#define CLATTN_X_ENUM(name, value, text) name = value,
    CLATTN_STATUS_TABLE(CLATTN_X_ENUM)
#undef CLATTN_X_ENUM
} clattn_status;

/* A short, static description of a status ("invalid argument"); never NULL. */
CLATTN_API const char *clattn_status_string(clattn_status status);

/* "MAJOR.MINOR.PATCH" of the library actually linked. */
CLATTN_API const char *clattn_version(void);

/* ---- types --------------------------------------------------------------- */

/* Storage type of q, k, v and o. Arithmetic always accumulates in fp32.
 * F16 works on every device (vload_half/vstore_half are core OpenCL), with or
 * without cl_khr_fp16. BF16 is read as the top 16 bits of an fp32 and written
 * with round-to-nearest-even (NaN stays NaN). */
typedef enum clattn_dtype { CLATTN_F32 = 0, CLATTN_F16 = 1, CLATTN_BF16 = 2 } clattn_dtype;

/* Which kernels compute the attention.
 * AUTO:        the library chooses (rule documented in README.md: split-KV
 *              when few query rows face a long KV, otherwise fused).
 * FUSED:       one FlashAttention-style kernel, O(seq) memory.
 * THREE_STAGE: scores, softmax, P*V as three kernels with an
 *              O(seq_q*seq_kv) scratch per head (heads are processed in
 *              chunks where the whole would not fit the device).
 * SPLIT_KV:    keys split into partitions processed in parallel, then a
 *              combine kernel; for decoding (few query rows, long KV). */
typedef enum clattn_path {
    CLATTN_PATH_AUTO = 0,
    CLATTN_PATH_FUSED = 1,
    CLATTN_PATH_THREE_STAGE = 2,
    CLATTN_PATH_SPLIT_KV = 3
} clattn_path;

/* Values of clattn_problem.causal. */
#define CLATTN_CAUSAL_NONE 0
/* Query i sees keys j <= i + seq_kv - seq_q (FlashAttention, KV-cache decode). */
#define CLATTN_CAUSAL_BOTTOM_RIGHT 1
/* Query i sees keys j <= i (PyTorch's is_causal). */
#define CLATTN_CAUSAL_TOP_LEFT 2

/* clattn_problem.alibi_mode: the distance ALiBi multiplies by its slope. */
#define CLATTN_ALIBI_LINEAR 0    /* slope * (j - i'): causal decoders (Bloom, MPT) */
#define CLATTN_ALIBI_SYMMETRIC 1 /* -slope * |j - i'|: bidirectional encoders */

/* Strides in elements (not bytes) of a 4-d tensor [batch][heads][seq][dim].
 * All three zero means packed: seq = dim, head = seq_len * dim,
 * batch = heads * head. Otherwise all three are used as given. The last
 * dimension is always contiguous. Views may not overlap themselves: taken by
 * increasing stride, each dimension of extent > 1 must have a stride larger
 * than the largest offset the smaller-stride dimensions reach (so a zero
 * stride over an extent larger than one, or an interleaving of two
 * dimensions, is refused); gaps between the elements of a view are never
 * read or written. */
typedef struct clattn_strides {
    int64_t batch, head, seq;
} clattn_strides;

/* Layout of a mask in elements: entry (b, h, i, j) — batch b, query head h,
 * query row i, key j — is at b * batch + h * head + i * row + j, the keys
 * contiguous. A zero stride broadcasts that dimension, so a [B,1,1,Skv]
 * padding mask is {Skv, 0, 0} and needs no expansion. A non-zero row stride
 * must be at least seq_kv (a row holds all its keys), so a mask sized for a
 * static cache ([..][max_len], max_len >= seq_kv) is used without slicing.
 * Non-zero strides may not overlap (as for clattn_strides). */
typedef struct clattn_mask_strides {
    int64_t batch, head, row;
} clattn_mask_strides;

/* An optional mask input of a problem (bias or bool_mask). While enabled is
 * 0, dtype and strides must be 0 too (a layout set without enabling it is
 * refused rather than ignored). */
typedef struct clattn_mask_layout {
    int enabled;               /* 1: the call reads the mask's buffer */
    clattn_dtype dtype;        /* bias: F32, F16 or BF16; bool_mask: must be 0 */
    clattn_mask_strides strides;
} clattn_mask_layout;

/* Storage formats of K and V (clattn_problem.k_storage and v_storage).
 * Whatever the format, the kernels dequantize in registers and accumulate in
 * fp32; Q and O keep the problem's dtype.
 *   DEFAULT   the problem's dtype (F32, F16 or BF16), as in 1.0.
 *   F32, F16, BF16: that type, whatever the problem's dtype (an fp16 cache
 *             for fp32 queries).
 *   INT8      int8 q, x = q * scale: one scale per group of `group` channels
 *             of a row (a row is one token of one kv head); group 0 = one per
 *             row.
 *   INT4      two per byte (channel 2c in the low nibble of byte c, 2c+1 in
 *             the high one), unsigned q in 0..15, x = (q - zero) * scale with a
 *             (scale, zero) pair per group; head_dim (head_dim_v for V) even.
 *   Q8_0      ggml's block_q8_0: blocks of 32 channels, each an fp16 scale d
 *             then 32 int8 q (34 bytes), x = q * d; the row's channels a
 *             multiple of 32. A ggml / llama.cpp q8_0 KV cache as it is.
 *   Q4_0      ggml's block_q4_0: an fp16 d then 16 bytes (18 bytes); channel
 *             c < 16 of the block is the low nibble of byte c, channel c + 16
 *             its high nibble, x = (nibble - 8) * d; channels a multiple of 32.
 *   FP8_E4M3  OCP 8-bit floats (E4M3: bias 7, no infinities, S.1111.111 is
 *   FP8_E5M2  NaN; E5M2: bias 15, IEEE-like), x = fp8 * scale with one scale
 *             per tensor or per kv head.
 * Scales (INT8, INT4, FP8) live in buffers.k_scales / v_scales, of
 * scale_dtype (F32 or F16). Rows are numbered r = (b * kv_heads + kvh) *
 * seq_kv + j (varlen: token * kv_heads + kvh; paged: (page * kv_heads + kvh) *
 * page_size + slot), whatever the data's strides, and with G groups per row
 * (channels / group):
 *   INT8: scales[r * G + g];  INT4: scale at [(r * G + g) * 2], zero at
 *   [(r * G + g) * 2 + 1];  FP8: scales[kvh] per head, else scales[0].
 * Strides of a K or V in a non-float format (INT8, INT4, Q8_0, Q4_0, FP8)
 * count bytes, not elements; a row (all its channels) is contiguous, and
 * Q8_0 / Q4_0 strides are even (the fp16 scales are 2-byte aligned). */
typedef enum clattn_kv_format {
    CLATTN_KV_DEFAULT = 0,
    CLATTN_KV_F32 = 1,
    CLATTN_KV_F16 = 2,
    CLATTN_KV_BF16 = 3,
    CLATTN_KV_INT8 = 4,
    CLATTN_KV_INT4 = 5,
    CLATTN_KV_Q8_0 = 6,
    CLATTN_KV_Q4_0 = 7,
    CLATTN_KV_FP8_E4M3 = 8,
    CLATTN_KV_FP8_E5M2 = 9
} clattn_kv_format;

typedef struct clattn_kv_storage {
    clattn_kv_format format;
    int group;                /* INT8, INT4: channels per scale: 0 = the whole
                                 row, or 32, 64, 128 (dividing the row) */
    clattn_dtype scale_dtype; /* INT8, INT4, FP8: F32 or F16; else 0 */
    int per_head;             /* FP8: 1 = one scale per kv head, 0 = per tensor */
} clattn_kv_storage;

/* Paged K/V (vLLM, FlashInfer): K and V are pools of num_pages pages, each
 * page holding page_size consecutive keys of every kv head:
 *   k: [num_pages][kv_heads][page_size][head_dim]  (v likewise)
 * and key j of sequence b lives in page block_table[b][j / page_size], slot
 * j % page_size (block_table: int32 [batch][max_pages_per_seq], in
 * buffers.block_table). k_strides / v_strides then mean {page, head, slot}
 * (all zero = packed as above; {page, row, kv_heads * row} is the token-major
 * [num_pages][page_size][kv_heads][dim] layout). seq_kv is the longest
 * sequence (at most max_pages_per_seq * page_size) and kv_lens gives each
 * sequence's length. Only the pages of keys a row may see are read: table
 * entries past a sequence's length may hold anything, and entries outside
 * 0..num_pages-1 are clamped by the kernels (clattn_forward_host refuses
 * them). Not with varlen. */
typedef struct clattn_paging {
    int enabled;           /* 1: paged K and V */
    int page_size;         /* a power of two, 1..256 */
    int num_pages;         /* pages in each pool */
    int max_pages_per_seq; /* columns of the block table */
} clattn_paging;

/* One attention problem. A plain struct for designated initialisers: every
 * field left zero takes its default, and every feature is off.
 *
 *   q: [batch][heads   ][seq_q ][head_dim  ]
 *   k: [batch][kv_heads][seq_kv][head_dim  ]
 *   v: [batch][kv_heads][seq_kv][head_dim_v]
 *   o: [batch][heads   ][seq_q ][head_dim_v]
 *   query head h reads kv head h / (heads / kv_heads)  (MHA, GQA, MQA)
 *
 * The score pipeline, in this order, for query row i of batch b and head h
 * and key j:
 *   1. s = scale * q_i . k_j          (any finite scale; 0 = 1/sqrt(head_dim):
 *                                      T5 uses 1.0, Gemma
 *                                      query_pre_attn_scalar^-0.5)
 *   2. softcap > 0:  s = softcap * tanh(s / softcap)   (Gemma 2, Grok)
 *   3. alibi:        s += slope[h] * (j - i')          (i' below);
 *                    with alibi_mode CLATTN_ALIBI_SYMMETRIC
 *                    s -= slope[h] * |j - i'|  (bidirectional encoders:
 *                    jina-embeddings-v2, MosaicBERT)
 *   4. additive masks: s += mask[...] (the 0.1 fp32 mask) or bias[...]
 *   5. visibility: an invisible key gets probability 0 (below)
 *   6. softmax over the visible keys, whose denominator also holds
 *      exp(sink[h]) when sinks is on (the sink contributes no value).
 *
 * Visibility of key j to query row i of batch b. Let L = kv_lens[b] when
 * kv_lens is given (else seq_kv), S = kv_start[b] when kv_start is on (else
 * 0), and i' = i + L - seq_q (the query's position among the keys when the
 * last query row faces the last key; left padding does not move it):
 *   - S <= j < L always (keys before kv_start[b] are left padding);
 *   - causal == CLATTN_CAUSAL_BOTTOM_RIGHT: j <= i';
 *   - causal == CLATTN_CAUSAL_TOP_LEFT:     j <= i;
 *   - windowed != 0: i' - window_left <= j <= i' + window_right, where a
 *     negative window_left or window_right leaves that side unbounded; it
 *     combines with causal (both must hold). The window is closed: a
 *     framework's sliding window of W keys (transformers, vLLM) is
 *     window_left = W - 1, window_right = 0 (or causal);
 *   - chunk_size > 0 (Llama 4's attention_chunk_size): j and i' lie in the
 *     same chunk, floor((j - S) / chunk_size) == floor((i' - S) / chunk_size);
 *   - bool_mask enabled: bool_mask[b][h][i][j] != 0.
 * With varlen, seq_q and L are the lengths of sequence b (below).
 *
 * The 0.1 additive mask (fp32, buffers.mask) is indexed as
 *   b * mask_batch_stride + h * mask_head_stride + i * seq_kv + j;
 * buffers.bias is its general form: storage bias.dtype, strides
 * bias.strides (see clattn_mask_strides). The two may not both be given;
 * either combines with bool_mask (T5: per-head bias plus a padding mask).
 * -INFINITY in an additive mask hides a key.
 *
 * A row that sees no key (or only -inf scores) gives zeros in O and -inf in
 * the LSE, never NaN; with a sink, zeros in O and LSE = sink[h]. A key whose
 * probability is exactly zero contributes nothing to O, even where its V
 * holds NaN or infinity; the K and V entries of keys a row cannot see never
 * affect that row (so a KV cache may hold garbage past kv_lens[b] or before
 * kv_start[b]).
 * NaN: a NaN score of a key the row sees (NaN in the row's q, in that key's
 * k, or in its mask entry) makes the row's O and LSE NaN; NaN in v of a key
 * with non-zero probability makes the row's O NaN in those columns (its LSE
 * stays finite). NaN in the mask entry, k or v of a key a row cannot see,
 * and NaN in any other row, head or batch, never affect the row (a row that
 * sees no key gives zeros and -inf whatever its q). The same on every path.
 *
 * Packed variable-length batches (varlen = 1, FlashAttention's varlen
 * layout): batch is the number of sequences; sequence b's query rows are the
 * tokens cu_seqlens_q[b] .. cu_seqlens_q[b+1]-1 and its keys the tokens
 * cu_seqlens_kv[b] .. cu_seqlens_kv[b+1]-1 (int32 prefix sums, batch + 1
 * entries starting at 0); seq_q and seq_kv are the largest lengths (every
 * sequence's length must be at most these), total_q and total_kv the token
 * counts (both positive). q and o are [total_q][heads][dim], k and v [total_kv][kv_heads][dim]:
 * a view's seq stride steps a token, its head stride a head, and its batch
 * stride must be 0 (all-zero strides mean packed: seq = heads * dim). The
 * LSE is [heads][total_q]. Masking rules apply per sequence (causal per
 * sequence; masks are indexed by the sequence b and the row and key inside
 * it). kv_lens and kv_start cannot be combined with varlen.
 *
 * Limits: seq_q and seq_kv at most 2^30, batch * heads below 2^31, head_dim
 * 1..512 or 576 (MLA with absorbed matrices), head_dim_v 1..512, strides and
 * mask strides non-negative, every tensor's size in bytes within int64. */
typedef struct clattn_problem {
    int batch, heads, kv_heads; /* kv_heads 0 = heads; heads % kv_heads == 0 */
    int seq_q, seq_kv, head_dim;
    int head_dim_v;     /* 0 = head_dim; 1..512 */
    clattn_dtype dtype; /* storage type of q, k, v, o */
    float scale;        /* 0 = 1/sqrt(head_dim); must be finite */
    int causal;         /* CLATTN_CAUSAL_* */
    int windowed, window_left, window_right;
    int64_t mask_batch_stride, mask_head_stride; /* buffers.mask; elements; 0 broadcasts */
    clattn_strides q_strides, k_strides, v_strides, o_strides;
    clattn_path path;
    /* ---- since 1.0 ---- */
    float softcap;      /* > 0: logit softcapping (step 2); 0 = off; finite */
    int sinks;          /* 1: per-head sink logits, buffers.sinks (fp32 [heads]) */
    int alibi;          /* 1: ALiBi slopes, buffers.alibi_slopes (fp32 [heads]) */
    int kv_start;       /* 1: left padding, buffers.kv_start (int32 [batch]) */
    int chunk_size;     /* > 0: chunked local attention; 0 = off */
    clattn_mask_layout bias;      /* additive mask in buffers.bias */
    clattn_mask_layout bool_mask; /* uint8 mask in buffers.bool_mask, nonzero = attend */
    int varlen;         /* 1: packed variable-length batch (above) */
    int total_q, total_kv; /* varlen: tokens in q/o and in k/v */
    int padding_;          /* ignored: the alignment gap before 1.0's reserved block */
    /* ---- since 1.1 (in what was reserved[0..5]) ---- */
    clattn_kv_storage k_storage, v_storage; /* zero: the problem's dtype */
    clattn_paging paged;                    /* zero: contiguous K and V */
    /* ---- since 1.4 (in what was reserved[0]) ---- */
    int alibi_mode;        /* CLATTN_ALIBI_*; needs alibi = 1 */
    int padding_1_4_;      /* ignored */
    int64_t reserved[1];   /* must be zero (see ABI above) */
} clattn_problem;

/* Device buffers of one call. q, k, v, o are required; mask (fp32), kv_lens
 * (int32, one per batch) and lse (fp32 [batch][heads][seq_q], with varlen
 * [heads][total_q]: the natural-log log-sum-exp of the scaled, masked scores
 * of each row, the sink included) may be NULL. The buffers of the 1.0
 * features are given exactly when the problem enables the feature: bias,
 * bool_mask (uint8), sinks and alibi_slopes (fp32 [heads], natural-log units
 * like the scores), kv_start (int32 [batch]), cu_seqlens_q and cu_seqlens_kv
 * (int32 [batch + 1]).
 * Each must belong to the context's cl_context and be at least as large as
 * the problem needs (checked with CL_MEM_SIZE); o and lse may not share a
 * byte the problem touches with each other or with any input (sub-buffers of
 * one buffer are compared by their offsets). A kv_lens or kv_start entry
 * outside 0..seq_kv is clamped to that range by the kernels, and so are
 * cu_seqlens entries to 0..total and to the largest lengths (use
 * clattn_forward_host to have them refused). block_table is given exactly
 * for paged problems, k_scales / v_scales exactly when that storage format
 * has scales (INT8, INT4, FP8); their sizes follow the layouts above. */
typedef struct clattn_buffers {
    cl_mem q, k, v, o;
    cl_mem mask;
    cl_mem kv_lens;
    cl_mem lse;
    /* ---- since 1.0 ---- */
    cl_mem bias, bool_mask;
    cl_mem sinks, alibi_slopes;
    cl_mem kv_start;
    cl_mem cu_seqlens_q, cu_seqlens_kv;
    /* ---- since 1.1 ---- */
    cl_mem block_table;       /* int32 [batch][max_pages_per_seq], paged problems */
    cl_mem k_scales, v_scales; /* INT8, INT4 and FP8 storage (clattn_kv_format) */
    cl_mem reserved[5]; /* must be NULL */
} clattn_buffers;

/* The bytes each buffer of a problem must hold (since 1.2): one past the
 * last byte a call may touch, with the problem's strides (packed where they
 * are zero) and K/V storage. These are the least sizes clattn_forward
 * accepts and what clattn_forward_host reads and writes, so an application
 * allocates from them rather than re-deriving the layouts of clattn.h.
 * Every field is filled, for inputs the problem does not use too (what they
 * would need if given; k_scales / v_scales are 0 for formats without scales,
 * block_table 0 unless paged). The problem is validated first by
 * clattn_buffer_sizes_of (declared with clattn_forward). */
typedef struct clattn_buffer_sizes {
    size_t q, k, v, o, lse;
    size_t mask, kv_lens, bias, bool_mask, sinks, alibi_slopes, kv_start;
    size_t cu_seqlens_q, cu_seqlens_kv;
    size_t block_table, k_scales, v_scales;
    size_t probs; /* clattn_attention_weights_host's output */
} clattn_buffer_sizes;

/* Host-memory counterparts, laid out exactly like the device buffers
 * (including the strides of the problem). kv_lens and kv_start entries
 * outside 0..seq_kv, and cu_seqlens that do not start at 0, decrease, pass
 * the totals or make a sequence longer than seq_q / seq_kv, are refused with
 * CLATTN_ERR_INVALID_ARGUMENT. */
typedef struct clattn_host_buffers {
    const void *q, *k, *v;
    void *o;
    const float *mask;
    const int32_t *kv_lens;
    float *lse;
    /* ---- since 1.0 ---- */
    const void *bias;
    const uint8_t *bool_mask;
    const float *sinks, *alibi_slopes;
    const int32_t *kv_start;
    const int32_t *cu_seqlens_q, *cu_seqlens_kv;
    /* ---- since 1.1 ---- */
    const int32_t *block_table;
    const void *k_scales, *v_scales;
    /* ---- since 1.2 ---- */
    /* The size in bytes of each array given above (entries of arrays not
     * given are ignored; probs for clattn_attention_weights_host). When set,
     * every given array is checked against what the problem touches (the
     * numbers of clattn_buffer_sizes_of) before any is read, and a short one
     * is refused with CLATTN_ERR_INVALID_ARGUMENT naming it. When NULL the
     * sizes are unknown and an undersized array is read or written past its
     * end: the unchecked 1.0/1.1 form, kept for old callers; new code should
     * always pass sizes. */
    const clattn_buffer_sizes *sizes;
    const void *reserved[4]; /* must be NULL */
} clattn_host_buffers;

/* The standard ALiBi slopes of a model with `heads` heads (Press et al.;
 * Bloom, MPT): for a power of two n, slope[h] = 2^(-8 (h + 1) / n); otherwise
 * the slopes of the largest power of two below, followed by every other slope
 * of twice that. Writes heads floats. */
CLATTN_API clattn_status clattn_alibi_slopes(int heads, float *slopes);

/* Log levels of clattn_options.log. */
#define CLATTN_LOG_ERROR 0
#define CLATTN_LOG_WARNING 1
#define CLATTN_LOG_INFO 2
#define CLATTN_LOG_DEBUG 3

typedef void (*clattn_log_fn)(int level, const char *message, void *user_data);

/* Context options. NULL options mean all defaults; otherwise start from
 * CLATTN_OPTIONS_INIT (or clattn_options_init) and set what you need.
 *   platform, device: indices as clGetPlatformIDs/clGetDeviceIDs list them;
 *     -1 = choose: env CLATTN_DEVICE as "P:D", else the first GPU, else the
 *     first device (of the given platform when only device is -1).
 *     Ignored by clattn_context_create_from_queue.
 *   cache_dir: root of the on-disk caches; NULL = $CLATTN_CACHE_DIR, else
 *     $XDG_CACHE_HOME/clattn, else ~/.cache/clattn; "off" (here or in the
 *     variable) = no disk use. The directory is created with mode 0700; one
 *     owned by another user, writable by group or others, or a symlink is
 *     refused (the context then works without a disk cache and logs a
 *     warning). A damaged cache file is reported once, removed and rebuilt.
 *   log, log_user_data: receives every message the library emits (errors
 *     and warnings); NULL = silent. Called on the calling thread.
 *   cache_max_bytes: bound of the on-disk program cache; the least recently
 *     used files are evicted past it. 0 = 256 MiB.
 *   max_scratch_bytes: the most device memory the three-stage path may use
 *     for its score scratch at once (it processes heads, then rows, in chunks
 *     that fit); 0 = default (the smaller of the device's largest allocation,
 *     a quarter of its memory, and 256 MiB). */
typedef struct clattn_options {
    int platform, device;
    const char *cache_dir;
    clattn_log_fn log;
    void *log_user_data;
    size_t max_scratch_bytes;
    uint64_t cache_max_bytes;
} clattn_options;

#define CLATTN_OPTIONS_INIT {-1, -1, NULL, NULL, NULL, 0, 0}

CLATTN_API clattn_status clattn_options_init(clattn_options *opts);

/* ---- context ------------------------------------------------------------- */

typedef struct clattn_context clattn_context;

/* Creates its own cl_context and in-order command queue (with profiling
 * enabled) on the chosen device. On failure *out is NULL and, when
 * opts->log is set, the reason is logged. */
CLATTN_API clattn_status clattn_context_create(const clattn_options *opts,
                                               clattn_context **out);

/* Uses the caller's queue and its context and device. The queue may be
 * in-order or out-of-order; clattn orders its own kernels with events. The
 * queue, its context and device are never retained or released. */
CLATTN_API clattn_status clattn_context_create_from_queue(cl_command_queue queue,
                                                          const clattn_options *opts,
                                                          clattn_context **out);

/* Waits for the context's outstanding work, then frees it. NULL is fine.
 * Program binaries still due for the disk cache (built from source and
 * launched, so that the stored binary carries the code the device compiled
 * for the launch) are written first: disk I/O and, on PoCL, up to about a
 * second per such program, once. */
CLATTN_API void clattn_context_destroy(clattn_context *ctx);

/* The detailed message of the last failure on this context ("" if none; a
 * static message for a NULL context), copied into a buffer of the calling
 * thread (up to 8 KiB; longer build logs are cut), so it is safe while other
 * threads use the context. The pointer stays valid until this thread calls
 * clattn_last_error again. With several threads on one context, "last" is
 * the context's most recent failure, whichever thread made it. */
CLATTN_API const char *clattn_last_error(const clattn_context *ctx);

/* The context's OpenCL objects (borrowed; do not release). Any out pointer
 * may be NULL. */
CLATTN_API clattn_status clattn_context_get_cl(const clattn_context *ctx, cl_context *context,
                                               cl_command_queue *queue, cl_device_id *device);

/* What a context has done so far; for tests, tools and curious callers. */
typedef struct clattn_stats {
    uint64_t programs_built;     /* compiled from source */
    uint64_t programs_loaded;    /* created from a binary in the disk cache */
    uint64_t programs_stored;    /* binaries written to the disk cache */
    uint64_t cache_rejected;     /* damaged or mismatching cache files removed */
    int disk_cache_enabled;      /* 0 when off or refused */
} clattn_stats;

/* Also writes the program binaries that are due (see
 * clattn_context_destroy) when their first launch has finished, so that
 * programs_stored counts them. */
CLATTN_API clattn_status clattn_context_stats(const clattn_context *ctx, clattn_stats *out);

/* ---- attention ----------------------------------------------------------- */

/* CLATTN_OK when the problem is valid and can run on the context's device
 * (with the path it asks for), CLATTN_ERR_INVALID_ARGUMENT when the problem
 * itself is invalid, CLATTN_ERR_UNSUPPORTED when this device cannot run it.
 * Buffers are not looked at. It builds the kernels the problem needs (so it
 * may block for a compile, and the following forward will not). */
CLATTN_API clattn_status clattn_supports(clattn_context *ctx, const clattn_problem *problem);

/* Validates the problem and writes the bytes each of its buffers must hold
 * (clattn_buffer_sizes above); since 1.2. */
CLATTN_API clattn_status clattn_buffer_sizes_of(clattn_context *ctx, const clattn_problem *problem,
                                                clattn_buffer_sizes *sizes);

/* Validates everything, then enqueues the attention on the context's queue
 * after the num_wait events in wait (num_wait > 0 with a NULL wait is an
 * invalid argument), and returns without blocking. When done is not NULL it
 * receives an event (the caller releases it) that completes when O and LSE
 * are written; on failure *done is NULL. Kernels may be built on the first
 * call of a configuration (this blocks the caller for the build). */
CLATTN_API clattn_status clattn_forward(clattn_context *ctx, const clattn_problem *problem,
                                        const clattn_buffers *buffers, cl_uint num_wait,
                                        const cl_event *wait, cl_event *done);

/* Blocking convenience over host memory: copies in, runs clattn_forward,
 * copies O (and LSE) back. Gaps of a strided O are left as they were. Give
 * buffers->sizes so that short arrays are refused instead of overrun. */
CLATTN_API clattn_status clattn_forward_host(clattn_context *ctx, const clattn_problem *problem,
                                             const clattn_host_buffers *buffers);

/* The softmax probabilities, fp32 [batch][heads][seq_q][seq_kv] (keys a row
 * cannot see are 0), computed by the three-stage path, for inspection and
 * plotting. problem->path must be AUTO or THREE_STAGE (others are refused as
 * invalid). in->o and in->lse may be NULL; when given they are written too. */
CLATTN_API clattn_status clattn_attention_weights_host(clattn_context *ctx,
                                                       const clattn_problem *problem,
                                                       const clattn_host_buffers *in,
                                                       float *probs);

/* ---- KV caches (since 1.1) -------------------------------------------------- */

/* Partial attentions over disjoint key sets of the same queries, as
 * clattn_forward writes them (O and its LSE, the natural-log log-sum-exp of
 * each row's scores), merged into the attention over the union of the keys:
 *   LSE = log(sum_p exp(LSE_p)),  O = sum_p exp(LSE_p - LSE) * O_p
 * computed in fp32 from the largest LSE down, so that it is as exact as one
 * pass over all the keys (cascade / shared-prefix decoding, split-KV across
 * devices, ring attention). A part whose row has LSE -inf (it saw no key)
 * adds nothing, whatever its O holds; a row that is -inf in every part
 * gives zeros and -inf; a NaN LSE makes the row NaN. Sinks belong in one
 * part only (the LSE of clattn_forward includes them). */
typedef struct clattn_merge_problem {
    int batch, heads, seq_q, head_dim_v; /* each positive; head_dim_v <= 512 */
    clattn_dtype dtype;                  /* of every O, parts and output */
    int num_parts;                       /* 1..1024 */
    clattn_strides o_strides;            /* of every O; zero = packed */
    int64_t reserved[4];                 /* must be zero */
} clattn_merge_problem;

/* Enqueues the merge of num_parts (O, LSE) pairs: o_parts[p] laid out like a
 * clattn_forward O ([batch][heads][seq_q][head_dim_v] with o_strides),
 * lse_parts[p] fp32 [batch][heads][seq_q]. Writes o (same layout; gaps left
 * untouched) and, when not NULL, lse. The outputs may not overlap any part
 * (use two buffers and swap for a running merge). Asynchronous, with wait and
 * done as clattn_forward. */
CLATTN_API clattn_status clattn_merge(clattn_context *ctx, const clattn_merge_problem *problem,
                                      const cl_mem *o_parts, const cl_mem *lse_parts, cl_mem o,
                                      cl_mem lse, cl_uint num_wait, const cl_event *wait,
                                      cl_event *done);

/* Appends new tokens' K and V to a KV cache, converting (quantizing) them to
 * the cache's storage on the device, so an application needs no kernels of
 * its own. `cache` describes the cache as clattn_forward will read it:
 * batch, kv_heads (heads is only checked against kv_heads), head_dim,
 * head_dim_v, seq_kv (the capacity of a contiguous cache; with paging the
 * largest length a block table reaches, max_pages_per_seq * page_size),
 * k_storage, v_storage, paged, k_strides, v_strides; dtype is the type of
 * the new tokens. Its other fields must be as for clattn_forward (the score
 * features do not matter here).
 *
 * buffers: k_new [batch][kv_heads][n_new][head_dim] and v_new
 * [batch][kv_heads][n_new][head_dim_v], packed, in cache->dtype; positions:
 * int32 [batch], sequence b's new tokens go to keys positions[b] ..
 * positions[b] + n_new - 1 (n_new at most seq_kv); cache_buffers: the
 * cache's k, v, block_table (paged), k_scales and v_scales (where the format
 * has them), the other fields ignored (the clattn_buffers of the decode's
 * clattn_forward can be passed as they are; reserved must still be NULL).
 *
 * INT8 and INT4 scales (and zeros) of the written rows are computed from the
 * new values (the largest magnitude maps to 127, the range to 0..15; codes
 * from the stored, possibly fp16-rounded, scale, ties to even; a constant
 * INT4 group is stored as scale = the value, zero = -1, codes 0), Q8_0 and
 * Q4_0 blocks as ggml quantizes them; FP8 divides by the cache's scale
 * (read, not changed) and rounds to nearest even, saturating at the largest
 * finite value (infinities too; NaN stays NaN). NaN in the new values of an
 * integer format gives code 0. A sequence whose positions fall outside 0..seq_kv - n_new
 * (device data) is skipped, so nothing is ever written out of bounds. */
CLATTN_API clattn_status clattn_kv_append(clattn_context *ctx, const clattn_problem *cache,
                                          int n_new, cl_mem k_new, cl_mem v_new,
                                          cl_mem positions, const clattn_buffers *cache_buffers,
                                          cl_uint num_wait, const cl_event *wait,
                                          cl_event *done);

/* ---- tiles of a larger attention (since 1.3) ---------------------------------
 * A tile is what some consecutive query rows of a problem get from some
 * consecutive keys: rows q_offset .. q_offset + seq_q - 1 of the problem's
 * seq_q rows against keys kv_offset .. kv_offset + seq_kv - 1 of its seq_kv
 * keys. `problem` describes the whole attention, and every rule of its score
 * pipeline is applied at the rows' and keys' places in the whole: the causal
 * alignment and i' (from the whole seq_q and the whole kv_lens[b] or seq_kv),
 * the window, chunks, the ALiBi distance, kv_lens and kv_start (key positions
 * of the whole), and the masks. A tile's O and LSE are therefore the partial
 * attention of its rows over its keys: tiles with all the keys give those
 * rows of the whole O exactly, and tiles over disjoint key ranges of the same
 * rows merge with clattn_merge into the whole (ring attention, one attention
 * split across devices). A row that sees none of the tile's keys gives zeros
 * and LSE -inf (with a sink: the sink), as clattn.h says for any row; the LSE
 * includes the sink, so of tiles that are to be merged only one may have
 * sinks on (clattn_merge).
 *
 * Buffers: q and o hold the tile's rows ([batch][heads][tile seq_q][dim]
 * with the problem's q_strides / o_strides, all zero = packed over the
 * tile's rows), k, v, k_scales and v_scales the tile's keys (as for a problem
 * of tile.seq_kv keys; scale rows count keys of the tile), lse
 * [batch][heads][tile seq_q]; kv_lens, kv_start, sinks and alibi_slopes are
 * the problem's; bias, bool_mask and the fp32 0.1 mask are the whole
 * problem's, entry (b, h, q_offset + i, kv_offset + j) for row i and key j
 * of the tile (a broadcast padding mask [B,1,1,seq_kv] stays small; the 0.1
 * mask's rows hold the whole seq_kv keys). Varlen and paged problems are
 * refused. */
typedef struct clattn_tile {
    int q_offset, seq_q;   /* rows of the problem; seq_q >= 1 */
    int kv_offset, seq_kv; /* keys of the problem; seq_kv >= 1 */
    int64_t reserved[2];   /* must be zero */
} clattn_tile;

/* The bytes each buffer of a tile must hold (clattn_buffer_sizes, with q, o,
 * lse, k, v and the scales sized for the tile and the masks for the whole). */
CLATTN_API clattn_status clattn_tile_buffer_sizes_of(clattn_context *ctx,
                                                     const clattn_problem *problem,
                                                     const clattn_tile *tile,
                                                     clattn_buffer_sizes *sizes);

/* clattn_forward of one tile: validates everything, enqueues, returns
 * without blocking (wait and done as clattn_forward). */
CLATTN_API clattn_status clattn_forward_tile(clattn_context *ctx, const clattn_problem *problem,
                                             const clattn_tile *tile,
                                             const clattn_buffers *buffers, cl_uint num_wait,
                                             const cl_event *wait, cl_event *done);

/* clattn_forward_host of one tile (buffers laid out as for
 * clattn_forward_tile; sizes as clattn_tile_buffer_sizes_of gives them). */
CLATTN_API clattn_status clattn_forward_tile_host(clattn_context *ctx,
                                                  const clattn_problem *problem,
                                                  const clattn_tile *tile,
                                                  const clattn_host_buffers *buffers);

/* ---- one attention on several devices (since 1.3) ---------------------------
 * clattn_multi_forward_host runs one attention over several contexts (any
 * OpenCL devices: a GPU and the CPU, sub-devices of one CPU, ...), each
 * doing a share of the work sized by its measured speed, on a thread of its
 * own, and writes the same O and LSE as clattn_forward_host would on one of
 * them (to each device's rounding). How the work is cut:
 *   ROWS   tiles of consecutive query rows, each over all the keys (no merge);
 *   KEYS   tiles of consecutive keys over all the rows, merged by their LSE
 *          (decoding: few query rows, many keys);
 *   BATCH  whole sequences (the only cut for varlen and paged problems);
 *   AUTO   BATCH for varlen and paged problems, KEYS when seq_q is below
 *          4 per context and seq_kv at least 256 per context, else ROWS. */
#define CLATTN_SPLIT_AUTO 0
#define CLATTN_SPLIT_ROWS 1
#define CLATTN_SPLIT_KEYS 2
#define CLATTN_SPLIT_BATCH 3
#define CLATTN_MULTI_MAX 16 /* contexts one call may use */

typedef struct clattn_multi_options {
    int split;             /* CLATTN_SPLIT_* */
    /* Relative speeds, one per context (positive), or NULL: then each
     * context's speed on this problem comes from its tuning db (the tuned
     * time of the kernels this problem runs), else from a timed run of a
     * slice of the problem, measured once per context and problem kind
     * and kept in the context. */
    const double *weights;
    int64_t reserved[4];   /* must be zero */
} clattn_multi_options;

/* What a call did (filled on success). */
typedef struct clattn_multi_report {
    int split;                          /* the cut used (never AUTO) */
    int used;                           /* contexts that got work */
    double weights[CLATTN_MULTI_MAX];   /* the relative speeds used */
    int64_t share[CLATTN_MULTI_MAX];    /* rows, keys or sequences of each */
    double ms[CLATTN_MULTI_MAX];        /* wall time of each context's part */
} clattn_multi_report;

/* ctxs: num_ctxs (1..CLATTN_MULTI_MAX) distinct contexts. The problem and
 * buffers are those of clattn_forward_host (give buffers->sizes). Failures
 * are reported on ctxs[0] (naming the context that failed); outputs are
 * written only when every part succeeded. opts and report may be NULL. */
CLATTN_API clattn_status clattn_multi_forward_host(clattn_context *const *ctxs, int num_ctxs,
                                                   const clattn_problem *problem,
                                                   const clattn_host_buffers *buffers,
                                                   const clattn_multi_options *opts,
                                                   clattn_multi_report *report);

/* ---- tuning ---------------------------------------------------------------
 * clattn_tune measures, on the context's device, every kernel configuration of
 * a declared search space for each given shape, checks each candidate's
 * output against a double-precision reference, and stores winners in the
 * user tuning db (under the cache root, one text file per device
 * fingerprint). Later contexts on the same device use them: exactly for the
 * tuned buckets (seq_q and seq_kv rounded up to powers of two), the nearest
 * tuned bucket of the same kind otherwise, then built-in defaults. The kind
 * includes the K/V storage (k_storage, v_storage) and paging (not the page
 * size): a problem takes only entries tuned on its own storage, so an INT8
 * or paged cache never runs with the entries of fp32 K/V. A winner
 * is stored only when it beats the default configuration by more than the
 * measured noise; otherwise the default is recorded as best. One tuner per
 * device at a time (an advisory file lock; a second one waits). */

typedef struct clattn_tune_progress {
    size_t shape, num_shapes; /* index of the shape being tuned */
    const char *unit;         /* "fused", "splitkv", "qk", "softmax", "av", "path" */
    int candidate, num_candidates;
    double best_ms, default_ms; /* so far; 0 when not yet known */
    double elapsed_s, budget_s;
    /* Where the unit is in the order the tuner takes them for a shape (a
     * shape may skip some: split-KV is tuned only for seq_q <= 64). The
     * library creates this struct; fields are only ever appended. */
    int unit_index, num_units;
} clattn_tune_progress;

typedef void (*clattn_tune_progress_fn)(const clattn_tune_progress *progress,
                                        void *user_data);

typedef struct clattn_tune_options {
    double budget_seconds; /* whole-run limit; 0 = none */
    int retune;            /* 1: measure again even where the db has a current entry */
    clattn_tune_progress_fn progress;
    void *progress_user_data;
} clattn_tune_options;

/* One tuned unit of one shape. */
typedef struct clattn_tune_result {
    size_t shape;
    char unit[24];
    char params[160];   /* the chosen configuration, "NAME=v NAME=v" */
    double median_ms, p20_ms, p80_ms;
    double default_ms;  /* the default configuration, same problem */
    int tuned;          /* 1: a winner beat the default beyond noise; 0: default kept */
    int from_db;        /* 1: a current entry existed and was kept (no retune) */
    int tried, rejected;
    char rejected_reason[160]; /* the first rejection, if any */
} clattn_tune_result;

/* Tunes shapes[0..num_shapes) (their buffers are made up inside: random
 * inputs, K and V in the shape's storage with random valid codes and scales,
 * a paged shape's pool of num_pages pages reached through a shuffled block
 * table; strides are ignored). Writes up to max_results results and the
 * number written to *num_results (may be NULL). With the disk cache off the
 * results live in the context only. opts may be NULL. */
CLATTN_API clattn_status clattn_tune(clattn_context *ctx, const clattn_problem *shapes,
                                     size_t num_shapes, const clattn_tune_options *opts,
                                     clattn_tune_result *results, size_t max_results,
                                     size_t *num_results);

/* One entry of the tuning db, as attn-tune show lists them. */
typedef struct clattn_tuning_entry {
    char unit[24];
    clattn_dtype dtype;
    int head_dim, head_dim_v, causal, windowed, has_mask, group;
    int seq_q_bucket, seq_kv_bucket;
    /* "NAME=v NAME=v"; an entry for K/V storage other than the dtype's or
     * for paged K/V ends with " kv=DESC" (since 1.1), DESC as attn-tune show
     * prints it: the format ("int8", "q8_0", "fp8_e4m3", ...) with its
     * options (/g32 channels per scale, /f16s fp16 scales, /head FP8 scales
     * per kv head), K's and V's apart when they differ ("k:int8,v:dtype"),
     * and ",paged" (or "paged" alone). */
    char params[160];
    double median_ms, p20_ms, p80_ms, default_ms;
    int stale; /* 1: from another driver version or kernel source; serves until retuned */
    int layer; /* 0 user db, 1 system-wide file */
} clattn_tuning_entry;

/* The number of tuning entries that apply to the context's device, and the
 * index-th of them (CLATTN_ERR_INVALID_ARGUMENT past the end). */
CLATTN_API clattn_status clattn_tuning_count(clattn_context *ctx, size_t *count);
CLATTN_API clattn_status clattn_tuning_get(clattn_context *ctx, size_t index,
                                           clattn_tuning_entry *out);

/* Writes the context device's user tuning db to path (a text file), or reads
 * one written on a machine with the same device model and merges it into
 * the user db (imported entries win). */
CLATTN_API clattn_status clattn_tuning_export(clattn_context *ctx, const char *path);
CLATTN_API clattn_status clattn_tuning_import(clattn_context *ctx, const char *path);

/* Empties the on-disk cache (program binaries and tuning dbs of every
 * device) under the root that opts selects (NULL = defaults). */
CLATTN_API clattn_status clattn_cache_clear(const clattn_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* CLATTN_H */
