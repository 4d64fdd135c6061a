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
 * major version.
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

#define CLATTN_VERSION_MAJOR 0
#define CLATTN_VERSION_MINOR 1
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

/* One attention problem. A plain struct for designated initialisers: every
 * field left zero takes its default.
 *
 *   q: [batch][heads   ][seq_q ][head_dim  ]
 *   k: [batch][kv_heads][seq_kv][head_dim  ]
 *   v: [batch][kv_heads][seq_kv][head_dim_v]
 *   o: [batch][heads   ][seq_q ][head_dim_v]
 *   query head h reads kv head h / (heads / kv_heads)  (MHA, GQA, MQA)
 *
 * Visibility of key j to query row i of batch b, with L = kv_lens[b] when
 * kv_lens is given (else seq_kv) and i' = i + L - seq_q:
 *   - j < L always;
 *   - causal == CLATTN_CAUSAL_BOTTOM_RIGHT: j <= i';
 *   - causal == CLATTN_CAUSAL_TOP_LEFT:     j <= i;
 *   - windowed != 0: i' - window_left <= j <= i' + window_right, where a
 *     negative window_left or window_right leaves that side unbounded;
 *     it combines with causal (both must hold).
 * Scores are s_ij = scale * q_i . k_j + mask[b][h][i][j] for visible keys.
 * The additive mask (fp32) is indexed as
 *   b * mask_batch_stride + h * mask_head_stride + i * seq_kv + j
 * so a zero stride broadcasts over that dimension; -INFINITY masks a key.
 * A row that sees no key (or only -inf scores) gives zeros in O and -inf in
 * the LSE, never NaN. A key whose probability is exactly zero contributes
 * nothing to O, even where its V holds NaN or infinity; the K and V entries
 * of keys a row cannot see never affect that row (so a KV cache may hold
 * garbage past kv_lens[b]).
 * NaN: a NaN score of a key the row sees (NaN in the row's q, in that key's
 * k, or in its mask entry) makes the row's O and LSE NaN; NaN in v of a key
 * with non-zero probability makes the row's O NaN in those columns (its LSE
 * stays finite). NaN in the mask entry, k or v of a key a row cannot see,
 * and NaN in any other row, head or batch, never affect the row (a row that
 * sees no key gives zeros and -inf whatever its q). The same on every path.
 *
 * Limits: seq_q and seq_kv at most 2^30, batch * heads below 2^31, head_dim
 * and head_dim_v 1..256, strides and mask strides non-negative, every
 * tensor's size in bytes within int64. */
typedef struct clattn_problem {
    int batch, heads, kv_heads; /* kv_heads 0 = heads; heads % kv_heads == 0 */
    int seq_q, seq_kv, head_dim;
    int head_dim_v;     /* 0 = head_dim; 1..256 like head_dim */
    clattn_dtype dtype; /* storage type of q, k, v, o */
    float scale;        /* 0 = 1/sqrt(head_dim); must be finite */
    int causal;         /* CLATTN_CAUSAL_* */
    int windowed, window_left, window_right;
    int64_t mask_batch_stride, mask_head_stride; /* elements; 0 broadcasts */
    clattn_strides q_strides, k_strides, v_strides, o_strides;
    clattn_path path;
} clattn_problem;

/* Device buffers of one call. q, k, v, o are required; mask (fp32), kv_lens
 * (int32, one per batch) and lse (fp32 [batch][heads][seq_q], the natural-log
 * log-sum-exp of the scaled, masked scores of each row) may be NULL.
 * Each must belong to the context's cl_context and be at least as large as
 * the problem needs (checked with CL_MEM_SIZE); o and lse may not share a
 * byte the problem touches with each other or with q, k, v, mask or kv_lens
 * (sub-buffers of one buffer are compared by their offsets). A kv_lens entry
 * outside 0..seq_kv is clamped to that range by the kernels (use
 * clattn_forward_host to have it refused). */
typedef struct clattn_buffers {
    cl_mem q, k, v, o;
    cl_mem mask;
    cl_mem kv_lens;
    cl_mem lse;
} clattn_buffers;

/* Host-memory counterparts, laid out exactly like the device buffers
 * (including the strides of the problem). kv_lens entries outside 0..seq_kv
 * are refused with CLATTN_ERR_INVALID_ARGUMENT. */
typedef struct clattn_host_buffers {
    const void *q, *k, *v;
    void *o;
    const float *mask;
    const int32_t *kv_lens;
    float *lse;
} clattn_host_buffers;

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

/* Waits for the context's outstanding work, then frees it. NULL is fine. */
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

CLATTN_API clattn_status clattn_context_stats(const clattn_context *ctx, clattn_stats *out);

/* ---- attention ----------------------------------------------------------- */

/* CLATTN_OK when the problem is valid and can run on the context's device
 * (with the path it asks for), CLATTN_ERR_INVALID_ARGUMENT when the problem
 * itself is invalid, CLATTN_ERR_UNSUPPORTED when this device cannot run it.
 * Buffers are not looked at. It builds the kernels the problem needs (so it
 * may block for a compile, and the following forward will not). */
CLATTN_API clattn_status clattn_supports(clattn_context *ctx, const clattn_problem *problem);

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
 * copies O (and LSE) back. Gaps of a strided O are left as they were. */
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

/* ---- tuning ---------------------------------------------------------------
 * clattn_tune measures, on the context's device, every kernel configuration of
 * a declared search space for each given shape, checks each candidate's
 * output against a double-precision reference, and stores winners in the
 * user tuning db (under the cache root, one text file per device
 * fingerprint). Later contexts on the same device use them: exactly for the
 * tuned buckets (seq_q and seq_kv rounded up to powers of two), the nearest
 * tuned bucket of the same kind otherwise, then built-in defaults. A winner
 * is stored only when it beats the default configuration by more than the
 * measured noise; otherwise the default is recorded as best. One tuner per
 * device at a time (an advisory file lock; a second one waits). */

typedef struct clattn_tune_progress {
    size_t shape, num_shapes; /* index of the shape being tuned */
    const char *unit;         /* "fused", "splitkv", "qk", "softmax", "av", "path" */
    int candidate, num_candidates;
    double best_ms, default_ms; /* so far; 0 when not yet known */
    double elapsed_s, budget_s;
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
 * inputs; strides are ignored). Writes up to max_results results and the
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
