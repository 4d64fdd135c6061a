/* Internal declarations shared by clattn-mpi's source files. */
#ifndef CLATTN_MPI_INTERNAL_H
#define CLATTN_MPI_INTERNAL_H

#include <stdarg.h>

#include "clattn_mpi.h"

/* Runs of a rank, at most two (ZIGZAG). */
#define CLATTN_MPI_MAX_RUNS 2

/* Messages go out in pieces of at most this many bytes: MPI counts are int. */
#define CLATTN_MPI_PIECE ((int64_t)1 << 30)

/* A validated problem: sizes of its elements and rows, the shard. */
typedef struct {
    clattn_problem p; /* kv_heads and head_dim_v filled in */
    int nranks, rank;
    int seq; /* N */
    size_t q_es, k_es, v_es; /* bytes per element of q/o, k, v */
    clattn_mpi_shard shard;
    clattn_mpi_segments me;
    int max_run;           /* longest run of any rank */
    int64_t max_block;     /* largest K/V block of any rank, bytes */
    int has_kv_lens;
} mpi_shape;

/* One call's message sink (clattn_mpi_options.error) and rank. */
typedef struct {
    char *error;
    size_t error_size;
    int rank;
} mpi_msg;

/* Writes "rank R: <message>" to the sink (when given) and returns status. */
clattn_status clattn_mpi__fail(mpi_msg *m, clattn_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The bytes of rank r's K/V block on the wire: each run u of it as
 * K [batch][kv_heads][len_u][dim] then V [batch][kv_heads][len_u][dim_v]. */
int64_t clattn_mpi__block_bytes(const mpi_shape *s, const clattn_mpi_segments *g);
/* Bytes of run u's K, then of its V, inside a block. */
int64_t clattn_mpi__run_k_bytes(const mpi_shape *s, int len);
int64_t clattn_mpi__run_v_bytes(const mpi_shape *s, int len);

/* Checks the shard against N and P and fills s->shard, s->me, s->max_run,
 * s->max_block (s->p, nranks, rank, element sizes set). */
clattn_status clattn_mpi__shape_shard(mpi_shape *s, const clattn_mpi_shard *shard,
                                      mpi_msg *m);

/* Agreement before the ring: every rank passes its local status (and, when
 * OK, the fields of its problem and shard); every rank gets CLATTN_OK only
 * when all ranks are OK and agree, else an error naming the failing rank or
 * the field they disagree on. One MPI_Allreduce. */
clattn_status clattn_mpi__agree(MPI_Comm comm, const mpi_shape *s, clattn_status local,
                                mpi_msg *m);

/* The final word: the lowest failing rank's status, on every rank. */
clattn_status clattn_mpi__outcome(MPI_Comm comm, int nranks, clattn_status local,
                                  mpi_msg *m);

/* Device and host memory of one call. */
typedef struct {
    cl_context cl;
    cl_command_queue queue;
    clattn_context *ctx;
    const clattn_buffers *local;
    /* Per run s of this rank: its queries (ZIGZAG; CONTIGUOUS uses local->q),
     * two accumulators (O, LSE) and a partial result per K/V run. */
    cl_mem q[CLATTN_MPI_MAX_RUNS];
    cl_mem acc_o[CLATTN_MPI_MAX_RUNS][2], acc_lse[CLATTN_MPI_MAX_RUNS][2];
    cl_mem part_o[CLATTN_MPI_MAX_RUNS][CLATTN_MPI_MAX_RUNS];
    cl_mem part_lse[CLATTN_MPI_MAX_RUNS][CLATTN_MPI_MAX_RUNS];
    /* The K/V block being computed on, one buffer per run. */
    cl_mem k[CLATTN_MPI_MAX_RUNS], v[CLATTN_MPI_MAX_RUNS];
    /* Host staging: the block being sent (and computed on) and the one being
     * received. */
    unsigned char *host[2];
    MPI_Request *req;
} mpi_res;

clattn_status clattn_mpi__alloc(const mpi_shape *s, mpi_res *r, mpi_msg *m);
void clattn_mpi__free(mpi_res *r);
/* Reads this rank's own K/V into r->host[0] in wire order and, for ZIGZAG,
 * copies its query and K/V runs into the run buffers. Blocking. */
clattn_status clattn_mpi__stage_own(const mpi_shape *s, mpi_res *r, mpi_msg *m);

/* The P steps of the ring, then O and LSE into the caller's buffers. Keeps
 * communicating after a local failure; returns this rank's own status.
 * step_ms (P entries) may be NULL. */
clattn_status clattn_mpi__ring(MPI_Comm comm, const mpi_shape *s, mpi_res *r,
                               clattn_mpi_report *rep, double *step_ms, mpi_msg *m);

#endif /* CLATTN_MPI_INTERNAL_H */
