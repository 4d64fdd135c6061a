/* clattn_mpi_forward and clattn_mpi_buffer_sizes_of: the checks a rank can
 * make alone, then agreement, the ring (ring.c) and the outcome (agree.c). */
#include <stdlib.h>
#include <string.h>

#include "mpi_internal.h"

#define BAD(...) clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define UNSUPPORTED(...) clattn_mpi__fail(m, CLATTN_ERR_UNSUPPORTED, __VA_ARGS__)

static size_t dtype_size(clattn_dtype t)
{
    return t == CLATTN_F32 ? 4 : 2;
}

/* Bytes per element of K or V in storage f (float formats only). */
static size_t storage_size(clattn_kv_format f, clattn_dtype dtype)
{
    switch (f) {
    case CLATTN_KV_F32:
        return 4;
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        return 2;
    default:
        return dtype_size(dtype);
    }
}

static int is_float_storage(clattn_kv_format f)
{
    return f == CLATTN_KV_DEFAULT || f == CLATTN_KV_F32 || f == CLATTN_KV_F16 ||
           f == CLATTN_KV_BF16;
}

/* The problem alone: what ring attention can run, then clattn's own checks
 * of the whole problem (its message copied from the context). */
static clattn_status check_problem(clattn_context *ctx, const clattn_problem *problem,
                                   int nranks, int rank, mpi_shape *s,
                                   clattn_buffer_sizes *whole, mpi_msg *m)
{
    if (!ctx || !problem)
        return BAD("ctx and problem must not be NULL");
    if (problem->varlen)
        return UNSUPPORTED("varlen problems are not supported: ring attention needs one "
                           "sequence per batch entry cut at the same places (run one call "
                           "per sequence, or pad with kv_lens / kv_start)");
    if (problem->paged.enabled)
        return UNSUPPORTED("paged K/V is not supported: the blocks travelling round the ring "
                           "are contiguous (gather the pages first)");
    if (!is_float_storage(problem->k_storage.format) ||
        !is_float_storage(problem->v_storage.format))
        return UNSUPPORTED("K/V storage format %d/%d is not supported: only F32, F16 and "
                           "BF16 blocks travel (their scales would have to travel too)",
                           (int)problem->k_storage.format, (int)problem->v_storage.format);
    if (problem->seq_q != problem->seq_kv)
        return BAD("seq_q (%d) != seq_kv (%d): ring attention computes a self-attention over "
                   "the whole sequence",
                   problem->seq_q, problem->seq_kv);
    const clattn_strides *st[4] = {&problem->q_strides, &problem->k_strides,
                                   &problem->v_strides, &problem->o_strides};
    const char *stn[4] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; ++i)
        if (st[i]->batch || st[i]->head || st[i]->seq)
            return BAD("%s_strides must be zero: each rank's buffers are packed", stn[i]);
    const clattn_status cs = clattn_buffer_sizes_of(ctx, problem, whole);
    if (cs != CLATTN_OK)
        return clattn_mpi__fail(m, cs, "the problem: %s", clattn_last_error(ctx));
    memset(s, 0, sizeof *s);
    s->p = *problem;
    if (s->p.kv_heads == 0)
        s->p.kv_heads = s->p.heads;
    if (s->p.head_dim_v == 0)
        s->p.head_dim_v = s->p.head_dim;
    s->nranks = nranks;
    s->rank = rank;
    s->seq = problem->seq_q;
    s->q_es = dtype_size(problem->dtype);
    s->k_es = storage_size(problem->k_storage.format, problem->dtype);
    s->v_es = storage_size(problem->v_storage.format, problem->dtype);
    return CLATTN_OK;
}

/* The rank's packed q, k, v, o, lse and the whole problem's other inputs. */
static void local_sizes(const mpi_shape *s, const clattn_buffer_sizes *whole,
                        clattn_buffer_sizes *out)
{
    *out = *whole;
    const int64_t bh = (int64_t)s->p.batch * s->p.heads, n = s->me.n_local;
    out->q = (size_t)(bh * n * s->p.head_dim * (int64_t)s->q_es);
    out->o = (size_t)(bh * n * s->p.head_dim_v * (int64_t)s->q_es);
    out->lse = (size_t)(bh * n * 4);
    out->k = (size_t)clattn_mpi__run_k_bytes(s, (int)n);
    out->v = (size_t)clattn_mpi__run_v_bytes(s, (int)n);
    out->probs = 0;
}

static clattn_status check_mem(cl_context cl, cl_mem b, size_t need, const char *name,
                               mpi_msg *m)
{
    cl_context owner = NULL;
    size_t size = 0;
    if (clGetMemObjectInfo(b, CL_MEM_CONTEXT, sizeof owner, &owner, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(b, CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS)
        return BAD("local->%s is not a valid cl_mem", name);
    if (owner != cl)
        return BAD("local->%s belongs to another cl_context than ctx's", name);
    if (size < need)
        return BAD("local->%s holds %zu bytes, %zu needed", name, size, need);
    return CLATTN_OK;
}

/* Presence and sizes of every buffer. */
static clattn_status check_buffers(const mpi_shape *s, cl_context cl, const clattn_buffers *b,
                                   const clattn_buffer_sizes *need, mpi_msg *m)
{
    if (!b)
        return BAD("local must not be NULL");
    for (int i = 0; i < 5; ++i)
        if (b->reserved[i])
            return BAD("local->reserved[%d] must be NULL", i);
    if (b->mask)
        return BAD("local->mask (the fp32 0.1 mask) is not taken by tiles: give it as bias "
                   "with strides {mask_batch_stride, mask_head_stride, seq_kv}");
    if (b->cu_seqlens_q || b->cu_seqlens_kv || b->block_table || b->k_scales || b->v_scales)
        return BAD("local: cu_seqlens, block_table and scales must be NULL (varlen, paged "
                   "and scaled K/V are not supported)");
    const struct {
        cl_mem mem;
        int wanted;
        size_t need;
        const char *name;
    } whole[] = {
        {b->bias, s->p.bias.enabled, need->bias, "bias"},
        {b->bool_mask, s->p.bool_mask.enabled, need->bool_mask, "bool_mask"},
        {b->sinks, s->p.sinks, need->sinks, "sinks"},
        {b->alibi_slopes, s->p.alibi, need->alibi_slopes, "alibi_slopes"},
        {b->kv_start, s->p.kv_start, need->kv_start, "kv_start"},
        {b->kv_lens, b->kv_lens != NULL, need->kv_lens, "kv_lens"},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; ++i) {
        if ((whole[i].mem != NULL) != (whole[i].wanted != 0))
            return BAD("local->%s must be given exactly when the problem enables it",
                       whole[i].name);
        if (whole[i].mem) {
            const clattn_status st = check_mem(cl, whole[i].mem, whole[i].need, whole[i].name, m);
            if (st != CLATTN_OK)
                return st;
        }
    }
    if (s->me.n_local == 0)
        return CLATTN_OK; /* an empty rank's q, k, v, o, lse are never touched */
    const struct {
        cl_mem mem;
        size_t need;
        const char *name;
    } own[] = {{b->q, need->q, "q"}, {b->k, need->k, "k"}, {b->v, need->v, "v"},
               {b->o, need->o, "o"}, {b->lse, need->lse, "lse"}};
    for (int i = 0; i < 5; ++i) {
        if (!own[i].mem) {
            if (i == 4)
                continue; /* lse is optional */
            return BAD("local->%s must be given (this rank holds %d tokens)", own[i].name,
                       s->me.n_local);
        }
        const clattn_status st = check_mem(cl, own[i].mem, own[i].need, own[i].name, m);
        if (st != CLATTN_OK)
            return st;
    }
    const cl_mem in[] = {b->q, b->k, b->v, b->bias, b->bool_mask, b->sinks, b->alibi_slopes,
                         b->kv_start, b->kv_lens};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; ++i)
        if (in[i] && (in[i] == b->o || in[i] == b->lse))
            return BAD("local->o and local->lse may not be input buffers");
    if (b->lse && b->lse == b->o)
        return BAD("local->o and local->lse must be different buffers");
    return CLATTN_OK;
}

clattn_status clattn_mpi_buffer_sizes_of(clattn_context *ctx, const clattn_problem *problem,
                                         const clattn_mpi_shard *shard, int nranks, int rank,
                                         clattn_buffer_sizes *sizes)
{
    mpi_msg quiet = {NULL, 0, rank};
    mpi_msg *m = &quiet;
    if (!sizes || nranks < 1 || rank < 0 || rank >= nranks)
        return BAD("bad arguments");
    mpi_shape s;
    clattn_buffer_sizes whole;
    clattn_status st = check_problem(ctx, problem, nranks, rank, &s, &whole, m);
    if (st == CLATTN_OK)
        st = clattn_mpi__shape_shard(&s, shard, m);
    if (st == CLATTN_OK)
        local_sizes(&s, &whole, sizes);
    return st;
}

static double now_ms(void)
{
    return MPI_Wtime() * 1e3;
}

/* Everything a rank can check and prepare alone, before any message. */
static clattn_status prepare(clattn_context *ctx, const clattn_problem *problem,
                             const clattn_mpi_shard *shard, const clattn_buffers *local,
                             const clattn_mpi_options *opts, mpi_shape *s, mpi_res *r,
                             mpi_msg *m)
{
    if (opts)
        for (int i = 0; i < 4; ++i)
            if (opts->reserved[i])
                return BAD("opts->reserved[%d] must be zero", i);
    clattn_buffer_sizes whole, need;
    clattn_status st = check_problem(ctx, problem, s->nranks, s->rank, s, &whole, m);
    if (st != CLATTN_OK)
        return st;
    st = clattn_mpi__shape_shard(s, shard, m);
    if (st != CLATTN_OK)
        return st;
    s->has_kv_lens = local && local->kv_lens != NULL;
    if (clattn_context_get_cl(ctx, &r->cl, &r->queue, NULL) != CLATTN_OK)
        return BAD("clattn_context_get_cl: %s", clattn_last_error(ctx));
    local_sizes(s, &whole, &need);
    st = check_buffers(s, r->cl, local, &need, m);
    if (st != CLATTN_OK)
        return st;
    r->ctx = ctx;
    r->local = local;
    /* The kernels are built now, so no rank stalls the ring for a compile. */
    st = clattn_supports(ctx, problem);
    if (st != CLATTN_OK)
        return clattn_mpi__fail(m, st, "clattn_supports: %s", clattn_last_error(ctx));
    st = clattn_mpi__alloc(s, r, m);
    if (st != CLATTN_OK)
        return st;
    return clattn_mpi__stage_own(s, r, m);
}

clattn_status clattn_mpi_forward(MPI_Comm comm, clattn_context *ctx,
                                 const clattn_problem *problem, const clattn_mpi_shard *shard,
                                 const clattn_buffers *local, const clattn_mpi_options *opts)
{
    mpi_msg msg = {opts ? opts->error : NULL, opts ? opts->error_size : 0, -1};
    mpi_msg *m = &msg;
    if (msg.error && msg.error_size)
        msg.error[0] = '\0';
    int inited = 0;
    if (MPI_Initialized(&inited) != MPI_SUCCESS || !inited)
        return BAD("MPI is not initialised");
    if (comm == MPI_COMM_NULL)
        return BAD("comm is MPI_COMM_NULL");
    const double t0 = now_ms();
    /* A private communicator: the ring's messages cannot match the caller's,
     * and an MPI error returns here instead of ending the process. */
    MPI_Comm ring;
    if (MPI_Comm_dup(comm, &ring) != MPI_SUCCESS)
        return clattn_mpi__fail(m, CLATTN_ERR_IO, "MPI_Comm_dup failed");
    MPI_Comm_set_errhandler(ring, MPI_ERRORS_RETURN);
    mpi_shape s;
    memset(&s, 0, sizeof s);
    MPI_Comm_size(ring, &s.nranks);
    MPI_Comm_rank(ring, &s.rank);
    msg.rank = s.rank;
    mpi_res res;
    memset(&res, 0, sizeof res);
    clattn_status st = prepare(ctx, problem, shard, local, opts, &s, &res, m);
    st = clattn_mpi__agree(ring, &s, st, m);
    if (st == CLATTN_OK) {
        clattn_mpi_report rep;
        memset(&rep, 0, sizeof rep);
        st = clattn_mpi__ring(ring, &s, &res, &rep, opts ? opts->step_ms : NULL, m);
        st = clattn_mpi__outcome(ring, s.nranks, st, m);
        rep.total_ms = now_ms() - t0;
        if (st == CLATTN_OK && opts && opts->report)
            *opts->report = rep;
    }
    clattn_mpi__free(&res);
    MPI_Comm_free(&ring);
    return st;
}
