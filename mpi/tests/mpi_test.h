/* clattn-mpi's test runner: each rank runs the named case against a
 * single-process clattn_forward_host of the whole sequence on its own
 * context, and the runner's exit status says whether every rank passed. */
#ifndef CLATTN_MPI_TEST_H
#define CLATTN_MPI_TEST_H

#include "clattn_mpi.h"

typedef struct {
    MPI_Comm comm;
    int rank, nranks;
    clattn_context *ctx;
} mt_env;

/* One ring problem and what to feed it. */
typedef struct {
    clattn_problem p;           /* the whole self-attention */
    clattn_mpi_layout layout;
    const int *counts;          /* CONTIGUOUS counts for this P, or NULL */
    int kv_lens, kv_start;      /* give padding (values made up per batch) */
    double tol_o;               /* relative L2 of O */
    double tol_lse;             /* per row, relative to max(1, |LSE|) */
} mt_case;

/* Host and device data of a case on this rank. */
typedef struct mt_data mt_data;

/* Makes the inputs (random, never zero, identical on every rank), the
 * reference O and LSE of the whole sequence, and this rank's device
 * buffers with O and LSE poisoned (NaN). NULL on failure (message
 * printed). */
mt_data *mt_setup(const mt_env *e, const mt_case *c, unsigned seed);
void mt_free(mt_data *d);
/* The problem, shard and buffers a call takes (the test may alter copies). */
const clattn_problem *mt_problem(const mt_data *d);
const clattn_mpi_shard *mt_shard(const mt_data *d);
const clattn_buffers *mt_local(const mt_data *d);
/* Poisons O and LSE again. */
int mt_poison(mt_data *d);
/* Reads this rank's O and LSE and compares them with the reference;
 * prints one line; 0 when within the tolerances. */
int mt_compare(const mt_env *e, mt_data *d, const char *name, double tol_o, double tol_lse);

/* Runs a case: setup, clattn_mpi_forward, compare. 0 = pass. */
int mt_run_ring(const mt_env *e, const mt_case *c, const char *name, unsigned seed);

/* cl_fail.c: the n-th clEnqueueWriteBuffer call from now fails with
 * CL_OUT_OF_RESOURCES (0 = never). */
void mt_fail_write_after(int n);

/* cases.c: runs the named case; 0 pass, 1 fail, -1 unknown name. */
int mt_run_case(const mt_env *e, const char *name);

#endif
