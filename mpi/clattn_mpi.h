/*
 * clattn-mpi: one self-attention whose sequence is spread over the ranks of
 * an MPI communicator (ring attention: Liu, Zaharia, Abbeel, "Ring Attention
 * with Blockwise Transformers for Near-Infinite Context", 2023).
 *
 * Each rank holds the queries, keys and values of its own tokens on its own
 * clattn context (any OpenCL device). The K/V blocks travel round the ring,
 * one hop per step, while every rank computes its rows against the block it
 * holds (clattn_forward_tile); the partial results are merged by their LSE
 * (clattn_merge). After P steps each rank has O and LSE of its own rows,
 * equal to what clattn_forward on the whole sequence gives for those rows
 * (to the rounding of one merge per step).
 *
 * A separate library (libclattn_mpi) over clattn's public API and MPI; it
 * keeps no global state. This header is its manual.
 *
 * Collective calls: every function taking an MPI_Comm must be called by
 * every rank of it, with the same problem and shard on each (checked). A
 * call uses a duplicate of the communicator (so its messages never meet the
 * caller's) whose errors are returned, not fatal.
 *
 * Failure: every function returns a clattn_status (clattn.h). Messages go to
 * clattn_mpi_options.error when the caller gives a buffer (clattn's
 * contexts keep the message of a failed clattn call too; clattn_mpi copies it
 * into its own). Whatever fails on one rank — an argument, an allocation, a
 * device error mid-ring — every rank returns an error from the same call, and
 * none waits for a message that will never come: arguments are agreed on
 * (MPI_Allreduce) before the ring starts, a rank whose device fails keeps
 * passing blocks on (it only stops computing), and a last MPI_Allreduce
 * tells every rank the outcome. The other ranks return the failing rank's
 * status and say "rank k failed". On failure O and LSE may be partly
 * written. An MPI call that fails gives CLATTN_ERR_IO.
 */
#ifndef CLATTN_MPI_H
#define CLATTN_MPI_H

#include <mpi.h>

#include "clattn.h"

#if defined(__GNUC__)
#define CLATTN_MPI_API __attribute__((visibility("default")))
#else
#define CLATTN_MPI_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* How the N tokens of the sequence are spread over the P ranks.
 * CONTIGUOUS  rank r holds tokens offset_r .. offset_r + counts[r] - 1,
 *             offset_r = counts[0] + ... + counts[r - 1]; any counts >= 0
 *             (an empty rank still passes blocks on).
 * ZIGZAG      the sequence is cut into 2P chunks, chunk c of length
 *             N / (2P) + (c < N % (2P) ? 1 : 0); rank r holds chunks r and
 *             2P - 1 - r, in that order. Under a causal mask each rank then
 *             has the same number of visible (row, key) pairs give or take a
 *             chunk, where CONTIGUOUS gives the last rank P times the first's
 *             work (Brandon et al., "Striped Attention", 2023; the zigzag
 *             order of Llama 3's context parallelism). */
typedef enum clattn_mpi_layout {
    CLATTN_MPI_CONTIGUOUS = 0,
    CLATTN_MPI_ZIGZAG = 1
} clattn_mpi_layout;

typedef struct clattn_mpi_shard {
    clattn_mpi_layout layout;
    /* CONTIGUOUS: tokens of each rank, comm-size entries summing to N, the
     * same array on every rank; NULL = as even as possible (the first
     * N % P ranks one more). ZIGZAG: must be NULL. */
    const int *counts;
    int64_t reserved[2]; /* must be zero */
} clattn_mpi_shard;

/* Where a rank's tokens lie in the whole sequence: `count` runs of
 * consecutive tokens (0 for an empty rank, 1 for CONTIGUOUS, up to 2 for
 * ZIGZAG), stored one after the other in the rank's buffers. */
typedef struct clattn_mpi_segments {
    int count;
    int offset[2]; /* first token of each run in the whole sequence */
    int length[2]; /* tokens of each run (>= 1) */
    int n_local;   /* length[0] + ... : the seq extent of the rank's buffers */
} clattn_mpi_segments;

/* Per-call measurements (clattn_mpi_options.report), filled on success. */
typedef struct clattn_mpi_report {
    int steps;            /* ring steps: the communicator's size */
    int tiles_computed;   /* clattn_forward_tile calls of this rank */
    int tiles_skipped;    /* tiles no row of them can see (causal, window) */
    double total_ms;      /* the whole call, agreement and final copy included */
    double ring_ms;       /* first step's start to last step's end */
    double compute_ms;    /* sum over steps: enqueue to completion of the
                             step's copies, tiles and merges */
    double comm_wait_ms;  /* sum over steps: waiting for the block after the
                             compute was done (what the overlap did not hide) */
    double moving_ms;     /* sum of the durations of the steps that moved a
                             block (all but the last): per step, compute and
                             communication overlapped */
    int64_t bytes_sent;   /* K/V bytes this rank sent */
} clattn_mpi_report;

/* Options; NULL or all zero means defaults. */
typedef struct clattn_mpi_options {
    /* When not NULL, a failing call writes its message here (NUL-terminated,
     * cut to error_size); a successful call writes "". */
    char *error;
    size_t error_size;
    clattn_mpi_report *report; /* filled on success when not NULL */
    /* When not NULL, comm-size entries, filled on success: the wall time of
     * each step, its compute and the wait for its block (step 0 computes on
     * the rank's own block and merges nothing). */
    double *step_ms;
    int64_t reserved[4];       /* must be zero */
} clattn_mpi_options;

/* The runs of tokens `rank` of `nranks` holds in a sequence of seq_len
 * tokens. Local; no communication. */
CLATTN_MPI_API clattn_status clattn_mpi_shard_segments(const clattn_mpi_shard *shard,
                                                       int seq_len, int nranks, int rank,
                                                       clattn_mpi_segments *out);

/* The bytes each of a rank's buffers must hold for clattn_mpi_forward:
 * q, k, v, o and lse for its n_local tokens (packed, as below; 0 for an
 * empty rank), the others (bias, bool_mask, kv_lens, kv_start, sinks,
 * alibi_slopes) for the whole problem (clattn_buffer_sizes_of). Validates
 * the problem as clattn_mpi_forward does. Local; no communication. */
CLATTN_MPI_API clattn_status clattn_mpi_buffer_sizes_of(clattn_context *ctx,
                                                        const clattn_problem *problem,
                                                        const clattn_mpi_shard *shard,
                                                        int nranks, int rank,
                                                        clattn_buffer_sizes *sizes);

/* Ring attention: the self-attention `problem` over the whole sequence,
 * seq_q == seq_kv == N, computed by the ranks of comm together. Blocking and
 * collective: returns when this rank's O and LSE are written.
 *
 * problem: what clattn_forward would be given for the whole sequence, the
 *   same on every rank. Every score feature of clattn.h applies at the
 *   tokens' places in the whole (causal, window, chunks, ALiBi, softcap,
 *   sinks, kv_lens / kv_start padding, bias and bool_mask), and dtype,
 *   GQA / MQA (kv_heads), head_dim_v, and K/V storage F32, F16 or BF16.
 *   Strides must be zero (the local buffers are packed). Varlen and paged
 *   problems, and K/V in a scaled storage format (INT8, INT4, Q8_0, Q4_0,
 *   FP8), are refused with CLATTN_ERR_UNSUPPORTED.
 * shard: how the tokens are spread (clattn_mpi_shard_segments tells a rank
 *   its runs); NULL = CONTIGUOUS, even.
 * local: device buffers on ctx's cl_context. q [batch][heads][n_local][dim],
 *   k [batch][kv_heads][n_local][dim], v [batch][kv_heads][n_local][dim_v],
 *   o [batch][heads][n_local][dim_v] (the problem's dtype or K/V storage),
 *   lse fp32 [batch][heads][n_local] or NULL, all packed, the rank's runs one
 *   after the other along the seq axis; an empty rank may give NULL for all
 *   five. kv_lens, kv_start, sinks, alibi_slopes, bias and bool_mask are the
 *   whole problem's (as clattn.h describes them, bias and bool_mask indexed
 *   by whole-sequence rows and keys), given exactly when the problem enables
 *   them, on every rank. The fp32 0.1 mask (local->mask) is refused: give it
 *   as bias with strides {mask_batch_stride, mask_head_stride, N}. Inputs
 *   are only read; o and lse may not alias inputs.
 *
 * The call runs on ctx's queue and waits for it (work the caller enqueued
 * before is finished first). Memory it uses besides the caller's buffers:
 * on the device one K/V block (per run of the block), two accumulators
 * and up to two partial results per run, on the host two K/V blocks; all
 * freed before it returns. */
CLATTN_MPI_API clattn_status clattn_mpi_forward(MPI_Comm comm, clattn_context *ctx,
                                                const clattn_problem *problem,
                                                const clattn_mpi_shard *shard,
                                                const clattn_buffers *local,
                                                const clattn_mpi_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* CLATTN_MPI_H */
