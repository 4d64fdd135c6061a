/* The cases: ring results against one clattn_forward of the whole
 * sequence, and failures every rank must see. Shapes are small and lengths
 * divide nothing, so runs of odd sizes meet every boundary. */
#include <stdio.h>
#include <string.h>

#include "mpi_test.h"

/* Tolerances: fp32 as one pass; f16/bf16 partial O are rounded to the
 * dtype once per step before their merge, so a few units of the last place. */
#define TOL_F32 1e-5
#define TOL_F16 3e-3
#define TOL_BF16 2.5e-2
#define TOL_LSE 1e-5

/* Uneven counts for 2 and 4 ranks (and 1 for a single rank). */
static const int *counts_for(int nranks, const int *c1, const int *c2, const int *c4)
{
    return nranks == 1 ? c1 : nranks == 2 ? c2 : nranks == 4 ? c4 : NULL;
}

static mt_case base_case(clattn_dtype dtype, int seq)
{
    mt_case c;
    memset(&c, 0, sizeof c);
    c.p.batch = 2;
    c.p.heads = 4;
    c.p.seq_q = c.p.seq_kv = seq;
    c.p.head_dim = 16;
    c.p.dtype = dtype;
    c.tol_o = dtype == CLATTN_F32 ? TOL_F32 : dtype == CLATTN_F16 ? TOL_F16 : TOL_BF16;
    c.tol_lse = TOL_LSE;
    return c;
}

static int ring(const mt_env *e, const char *name, unsigned seed, const mt_case *c)
{
    return mt_run_ring(e, c, name, seed);
}

static int case_noncausal(const mt_env *e)
{
    mt_case c = base_case(CLATTN_F32, 37);
    return ring(e, "noncausal", 1, &c);
}

static int case_causal_contiguous(const mt_env *e)
{
    static const int c1[] = {41}, c2[] = {15, 26}, c4[] = {5, 11, 17, 8};
    mt_case c = base_case(CLATTN_F32, 41);
    c.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    c.counts = counts_for(e->nranks, c1, c2, c4);
    return ring(e, "causal_contiguous", 2, &c);
}

static int case_causal_zigzag(const mt_env *e)
{
    mt_case c = base_case(CLATTN_F32, 45);
    c.p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    c.p.head_dim = 32;
    c.p.head_dim_v = 16;
    c.layout = CLATTN_MPI_ZIGZAG;
    return ring(e, "causal_zigzag", 3, &c);
}

static int case_windowed(const mt_env *e)
{
    mt_case c = base_case(CLATTN_F32, 43);
    c.p.windowed = 1;
    c.p.window_left = 6;
    c.p.window_right = 2;
    c.layout = CLATTN_MPI_ZIGZAG;
    return ring(e, "windowed", 4, &c);
}

static int case_gqa_f16(const mt_env *e)
{
    mt_case c = base_case(CLATTN_F16, 33);
    c.p.heads = 6;
    c.p.kv_heads = 2;
    c.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    return ring(e, "gqa_f16", 5, &c);
}

static int case_padding(const mt_env *e)
{
    static const int c1[] = {40}, c2[] = {23, 17}, c4[] = {13, 7, 9, 11};
    mt_case c = base_case(CLATTN_F32, 40);
    c.p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    c.p.kv_start = 1;
    c.kv_lens = c.kv_start = 1;
    c.counts = counts_for(e->nranks, c1, c2, c4);
    return ring(e, "padding", 6, &c);
}

static int case_sinks(const mt_env *e)
{
    mt_case c = base_case(CLATTN_F32, 38);
    c.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    c.p.sinks = 1;
    c.p.alibi = 1;
    c.layout = CLATTN_MPI_ZIGZAG;
    return ring(e, "sinks", 7, &c);
}

static int case_empty_rank(const mt_env *e)
{
    static const int c1[] = {31}, c2[] = {0, 31}, c4[] = {9, 0, 14, 8};
    mt_case c = base_case(CLATTN_F32, 31);
    c.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    c.counts = counts_for(e->nranks, c1, c2, c4);
    return ring(e, "empty_rank", 8, &c);
}

/* Fewer tokens than chunks: some zigzag chunks are empty (N = 7 over 2P). */
static int case_odd_lengths(const mt_env *e)
{
    mt_case c = base_case(CLATTN_F32, 7);
    c.p.head_dim = 24;
    c.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    c.p.chunk_size = 3;
    c.p.softcap = 5.0f;
    c.layout = CLATTN_MPI_ZIGZAG;
    return ring(e, "odd_lengths", 9, &c);
}

static int case_masks(const mt_env *e)
{
    static const int c1[] = {30}, c2[] = {19, 11}, c4[] = {3, 12, 6, 9};
    mt_case c = base_case(CLATTN_F32, 30);
    c.p.bias.enabled = 1;
    c.p.bias.dtype = CLATTN_F32;
    c.p.bool_mask.enabled = 1;
    c.p.bool_mask.strides.batch = 30; /* a [B,1,1,N] padding mask */
    c.counts = counts_for(e->nranks, c1, c2, c4);
    return ring(e, "masks", 10, &c);
}

static int case_bf16_zigzag(const mt_env *e)
{
    mt_case c = base_case(CLATTN_BF16, 50);
    c.p.kv_heads = 1;
    c.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    c.layout = CLATTN_MPI_ZIGZAG;
    return ring(e, "bf16_zigzag", 11, &c);
}

/* ---- failures ---------------------------------------------------------------
 * Each runs the failing call, checks what every rank got, then a good call
 * on the same communicator (nothing left over from the failed one). */

typedef struct {
    clattn_problem p;
    clattn_mpi_shard shard;
    clattn_buffers local;
    cl_mem extra; /* a buffer the mutation made, released after the call */
} call_args;

/* mutate(rank's copy of the arguments) -> the status that rank expects. */
typedef clattn_status (*mutate_fn)(const mt_env *e, call_args *a, int *culprit);

static int expect_failure(const mt_env *e, const char *name, mutate_fn mutate,
                          clattn_status want, const char *others_say)
{
    mt_case c = base_case(CLATTN_F32, 21);
    c.p.causal = CLATTN_CAUSAL_TOP_LEFT;
    mt_data *d = mt_setup(e, &c, 21);
    int bad = d == NULL;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, e->comm);
    if (bad) {
        mt_free(d);
        return 1;
    }
    call_args a = {*mt_problem(d), *mt_shard(d), *mt_local(d), NULL};
    int culprit = -1;
    const clattn_status mine = mutate(e, &a, &culprit);
    char err[1024];
    clattn_mpi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.error = err;
    opts.error_size = sizeof err;
    const double t0 = MPI_Wtime();
    const clattn_status st = clattn_mpi_forward(e->comm, e->ctx, &a.p, &a.shard, &a.local, &opts);
    const double ms = (MPI_Wtime() - t0) * 1e3;
    mt_fail_write_after(0);
    if (a.extra)
        clReleaseMemObject(a.extra);
    const clattn_status expect = mine != CLATTN_OK ? mine : want;
    int fail = st != expect;
    if (!fail && culprit >= 0 && e->rank != culprit) {
        char who[32];
        snprintf(who, sizeof who, "rank %d failed", culprit);
        fail = strstr(err, who) == NULL;
    }
    if (!fail && others_say && (culprit < 0 || e->rank != culprit))
        fail = strstr(err, others_say) == NULL;
    printf("rank %d: %s: %s after %.0f ms (expected %s): \"%s\": %s\n", e->rank, name,
           clattn_status_string(st), ms, clattn_status_string(expect), err,
           fail ? "FAIL" : "ok");
    /* the same communicator still works */
    mt_poison(d);
    memset(&opts, 0, sizeof opts);
    opts.error = err;
    opts.error_size = sizeof err;
    const clattn_status again =
        clattn_mpi_forward(e->comm, e->ctx, mt_problem(d), mt_shard(d), mt_local(d), &opts);
    if (again != CLATTN_OK) {
        printf("rank %d: %s: the good call after it: %s: %s: FAIL\n", e->rank, name,
               clattn_status_string(again), err);
        fail = 1;
    } else {
        fail |= mt_compare(e, d, name, TOL_F32, TOL_LSE);
    }
    mt_free(d);
    return fail;
}

/* The last rank's descriptor is invalid (kv_heads does not divide heads). */
static clattn_status bad_descriptor(const mt_env *e, call_args *a, int *culprit)
{
    *culprit = e->nranks - 1;
    if (e->rank != *culprit)
        return CLATTN_OK;
    a->p.kv_heads = 3;
    return CLATTN_ERR_INVALID_ARGUMENT;
}

/* Rank 0 asks for another mask than the others: each is valid alone. */
static clattn_status disagree(const mt_env *e, call_args *a, int *culprit)
{
    *culprit = -1;
    if (e->rank == 0)
        a->p.causal = CLATTN_CAUSAL_NONE;
    return CLATTN_ERR_INVALID_ARGUMENT;
}

/* Every rank asks for something the ring refuses (a varlen problem). */
static clattn_status unsupported(const mt_env *e, call_args *a, int *culprit)
{
    (void)e;
    *culprit = -1;
    a->p.varlen = 1;
    a->p.total_q = a->p.total_kv = a->p.seq_q;
    return CLATTN_ERR_UNSUPPORTED;
}

/* Rank 0's O buffer is one row short. */
static clattn_status short_buffer(const mt_env *e, call_args *a, int *culprit)
{
    *culprit = 0;
    if (e->rank != 0)
        return CLATTN_OK;
    cl_context cl;
    clattn_context_get_cl(e->ctx, &cl, NULL, NULL);
    size_t size = 0;
    clGetMemObjectInfo(a->local.o, CL_MEM_SIZE, sizeof size, &size, NULL);
    cl_int err;
    a->extra = clCreateBuffer(cl, CL_MEM_READ_WRITE, size - 4, NULL, &err);
    a->local.o = a->extra;
    return CLATTN_ERR_INVALID_ARGUMENT;
}

/* The last rank's third clEnqueueWriteBuffer fails: its K/V write of step 1,
 * after step 0's K and V, so mid-ring. */
static clattn_status device_mid_ring(const mt_env *e, call_args *a, int *culprit)
{
    (void)a;
    *culprit = e->nranks - 1;
    if (e->rank == *culprit)
        mt_fail_write_after(3);
    return e->rank == *culprit ? CLATTN_ERR_OPENCL : CLATTN_OK;
}

int mt_run_case(const mt_env *e, const char *name)
{
    static const struct {
        const char *name;
        int (*run)(const mt_env *);
    } rings[] = {
        {"noncausal", case_noncausal},       {"causal_contiguous", case_causal_contiguous},
        {"causal_zigzag", case_causal_zigzag}, {"windowed", case_windowed},
        {"gqa_f16", case_gqa_f16},           {"padding", case_padding},
        {"sinks", case_sinks},               {"empty_rank", case_empty_rank},
        {"odd_lengths", case_odd_lengths},   {"masks", case_masks},
        {"bf16_zigzag", case_bf16_zigzag},
    };
    for (size_t i = 0; i < sizeof rings / sizeof rings[0]; ++i)
        if (strcmp(name, rings[i].name) == 0)
            return rings[i].run(e);
    if (strcmp(name, "fail_bad_descriptor") == 0)
        return expect_failure(e, name, bad_descriptor, CLATTN_ERR_INVALID_ARGUMENT,
                              "before the ring");
    if (strcmp(name, "fail_disagree") == 0)
        return expect_failure(e, name, disagree, CLATTN_ERR_INVALID_ARGUMENT,
                              "disagree on the problem's causal");
    if (strcmp(name, "fail_unsupported") == 0)
        return expect_failure(e, name, unsupported, CLATTN_ERR_UNSUPPORTED, "varlen");
    if (strcmp(name, "fail_short_buffer") == 0)
        return expect_failure(e, name, short_buffer, CLATTN_ERR_INVALID_ARGUMENT,
                              "before the ring");
    if (strcmp(name, "fail_device_mid_ring") == 0)
        return expect_failure(e, name, device_mid_ring, CLATTN_ERR_OPENCL, "during the ring");
    return -1;
}
