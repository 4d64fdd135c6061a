/* clattn_forward: kernel selection and enqueueing (buffers.c checks the
 * buffers first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "blas.h"
#include "buffers.h"
#include "internal.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* ---- kernels and scratch ------------------------------------------------- */

/* The built kernel for *cfg, shrinking cfg while the compiled kernel cannot
 * run it (its CL_KERNEL_WORK_GROUP_SIZE or local memory is smaller). */
clattn_status clattn__get_kernel(clattn_context *ctx, clattn__kernel_config *cfg,
                                const clattn__program_entry **out)
{
    for (;;) {
        CLATTN_TRY(clattn__program_get(ctx, cfg, out));
        const int wg_ok = (*out)->kernel_wg_size == 0 ||
                          clattn__config_wg_size(cfg) <= (*out)->kernel_wg_size;
        const int lm_ok = (*out)->kernel_local_mem <= ctx->dev.local_mem_size;
        if (wg_ok && lm_ok)
            return CLATTN_OK;
        if (clattn__plan_shrink(cfg, !wg_ok) != 0)
            return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED,
                                "%s: no configuration fits this device (kernel work-group "
                                "limit %zu, local memory %llu bytes)",
                                clattn__kernel_name(cfg->id), (*out)->kernel_wg_size,
                                (unsigned long long)ctx->dev.local_mem_size);
    }
}

static clattn_status ensure_scratch(clattn_context *ctx, int i, size_t bytes)
{
    if (bytes == 0 || ctx->scratch_size[i] >= bytes)
        return CLATTN_OK;
    cl_int err;
    cl_mem m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return clattn__cl_fail(ctx, err, "clCreateBuffer (scratch)");
    if (ctx->scratch[i])
        clReleaseMemObject(ctx->scratch[i]); /* the runtime keeps it for queued users */
    ctx->scratch[i] = m;
    ctx->scratch_size[i] = bytes;
    return CLATTN_OK;
}

static clattn_status ensure_dummy(clattn_context *ctx)
{
    if (ctx->dummy)
        return CLATTN_OK;
    cl_int err;
    /* Initialised, so no tool ever sees an uninitialised read through it. */
    cl_int zeros[4] = {0, 0, 0, 0};
    ctx->dummy = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                sizeof zeros, zeros, &err);
    if (err != CL_SUCCESS) {
        ctx->dummy = NULL;
        return clattn__cl_fail(ctx, err, "clCreateBuffer");
    }
    return CLATTN_OK;
}

/* ---- enqueueing ---------------------------------------------------------- */

typedef struct {
    size_t size;
    const void *value;
} arg;
#define ARG(x) {sizeof(x), &(x)}

static clattn_status set_args(clattn_context *ctx, cl_kernel k, int first, const arg *args,
                             int n)
{
    for (int i = 0; i < n; ++i) {
        cl_int err = clSetKernelArg(k, (cl_uint)(first + i), args[i].size, args[i].value);
        if (err != CL_SUCCESS) {
            /* Same status as any other call: out of resources stays that. */
            char what[32];
            snprintf(what, sizeof what, "clSetKernelArg(%d)", first + i);
            return clattn__cl_fail(ctx, err, what);
        }
    }
    return CLATTN_OK;
}

/* The kernels of one call run one after another: each waits on the previous
 * one's event (the first on the caller's wait list), so an out-of-order queue
 * keeps the order too. */
typedef struct {
    cl_uint num_wait;
    const cl_event *wait;
    cl_event last;
    clattn__launch_record *rec; /* NULL unless timing */
} chain;

static clattn_status record_grow(clattn_context *ctx, clattn__launch_record *rec)
{
    if (rec->count < rec->capacity)
        return CLATTN_OK;
    size_t cap = rec->capacity ? 2 * rec->capacity : 16;
    cl_event *ev = realloc(rec->events, cap * sizeof *ev);
    if (ev)
        rec->events = ev;
    cl_event *st = ev ? realloc(rec->starts, cap * sizeof *st) : NULL;
    if (st)
        rec->starts = st;
    clattn__kernel_id *ids = st ? realloc(rec->ids, cap * sizeof *ids) : NULL;
    if (!ids)
        return clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    rec->ids = ids;
    rec->capacity = cap;
    return CLATTN_OK;
}

static void record(chain *c, clattn__kernel_id id, cl_event start, cl_event end)
{
    if (!c->rec)
        return;
    clRetainEvent(end);
    if (start)
        clRetainEvent(start);
    c->rec->events[c->rec->count] = end;
    c->rec->starts[c->rec->count] = start;
    c->rec->ids[c->rec->count++] = id;
}

static clattn_status launch(clattn_context *ctx, chain *c, clattn__kernel_id id, cl_kernel k,
                            cl_uint dims, const size_t *global, const size_t *local)
{
    if (c->rec)
        CLATTN_TRY(record_grow(ctx, c->rec));
    cl_event ev;
    cl_int err = c->last ? clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, global, local, 1,
                                                  &c->last, &ev)
                         : clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, global, local,
                                                  c->num_wait, c->wait, &ev);
    if (err != CL_SUCCESS)
        return clattn__cl_fail(ctx, err, "clEnqueueNDRangeKernel");
    if (c->last)
        clReleaseEvent(c->last);
    c->last = ev;
    record(c, id, NULL, ev);
    clattn__program_launched(ctx, k, ev); /* its binary is written once this has run */
    return CLATTN_OK;
}

/* A marker after everything before it on the (in-order) queue. */
static clattn_status marker(clattn_context *ctx, chain *c, cl_event *out)
{
    cl_int err = c->last ? clEnqueueMarkerWithWaitList(ctx->queue, 1, &c->last, out)
                         : clEnqueueMarkerWithWaitList(ctx->queue, c->num_wait, c->wait, out);
    if (err != CL_SUCCESS)
        return clattn__cl_fail(ctx, err, "clEnqueueMarkerWithWaitList");
    return CLATTN_OK;
}

/* A GEMM through CLBlast, chained like a kernel: CLBlast takes no wait list,
 * so a marker before it carries ours (the queue is in-order: the plan only
 * uses CLBlast there), and a marker after it becomes the chain's event. */
typedef enum { GEMM_QK, GEMM_AV } gemm_kind;

static clattn_status blas_call(clattn_context *ctx, chain *c, const clattn__plan *pl,
                               gemm_kind kind, const clattn__shape *s, cl_mem a, cl_mem b, cl_mem out, int bh0,
                               int nbh, int row0, int nrows)
{
    if (c->rec)
        CLATTN_TRY(record_grow(ctx, c->rec));
    /* Applied before every GEMM, not once per context: CLBlast keeps its
     * overrides process-wide, and another context (or the application)
     * may have replaced them, or cleared them with CLBlast's cache. Storing
     * a parameter set is a table update; compiled GEMMs stay cached. */
    if (pl->blas_set)
        CLATTN_TRY(clattn__blas_apply_set(ctx, pl->blas_set));
    cl_event before, after;
    CLATTN_TRY(marker(ctx, c, &before));
    ctx->used_blas = 1;
    clattn_status st = kind == GEMM_QK
                           ? clattn__blas_qk(ctx, s, a, b, out, bh0, nbh, row0, nrows)
                           : clattn__blas_av(ctx, s, a, b, out, bh0, nbh, row0, nrows);
    cl_event prev = c->last;
    c->last = before;
    if (st == CLATTN_OK)
        st = marker(ctx, c, &after);
    c->last = prev;
    if (st != CLATTN_OK) {
        clReleaseEvent(before);
        return st;
    }
    if (c->last)
        clReleaseEvent(c->last);
    c->last = after;
    record(c, kind == GEMM_QK ? CLATTN__K_QK : CLATTN__K_AV, before, after);
    clReleaseEvent(before);
    return CLATTN_OK;
}

void clattn__launch_record_release(clattn__launch_record *rec)
{
    for (size_t i = 0; i < rec->count; ++i) {
        clReleaseEvent(rec->events[i]);
        if (rec->starts[i])
            clReleaseEvent(rec->starts[i]);
    }
    free(rec->events);
    free(rec->starts);
    free(rec->ids);
    memset(rec, 0, sizeof *rec);
}

static size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

/* The parameters every kernel takes first, in the order of
 * CLATTN_CALL_PARAMS (cl/common.h). */
typedef struct {
    cl_mem q, k, v, o, lse, kv_lens, kv_start, cu_q, cu_kv, bias, bmask, sinks, slopes;
    cl_mem btab, ksc, vsc;
    cl_int heads, group, seq_q, seq_kv, total_q, total_kv;
    cl_float scale, softcap;
    cl_int causal, windowed, wl, wr, chunk, has_kvl, has_lse;
    cl_int maxp, npages, pshift;
    cl_long qsb, qsh, qss, ksb, ksh, kss, vsb, vsh, vss, osb, osh, oss;
    cl_long bsb, bsh, bsr, msb, msh, msr;
    cl_int tq0, tk0, wsq, wskv;
} call_args;

static void fill_args(clattn_context *ctx, const clattn__shape *s, const clattn_buffers *b,
                      call_args *a)
{
    const clattn_problem *p = &s->p;
    cl_mem dummy = ctx->dummy; /* stands in for what the problem does not use */
    a->q = b->q;
    a->k = b->k;
    a->v = b->v;
    a->o = b->o;
    a->lse = b->lse ? b->lse : dummy;
    a->kv_lens = b->kv_lens ? b->kv_lens : dummy;
    a->kv_start = b->kv_start ? b->kv_start : dummy;
    a->cu_q = b->cu_seqlens_q ? b->cu_seqlens_q : dummy;
    a->cu_kv = b->cu_seqlens_kv ? b->cu_seqlens_kv : dummy;
    a->bias = b->bias ? b->bias : b->mask ? b->mask : dummy;
    a->bmask = b->bool_mask ? b->bool_mask : dummy;
    a->sinks = b->sinks ? b->sinks : dummy;
    a->slopes = b->alibi_slopes ? b->alibi_slopes : dummy;
    a->btab = b->block_table ? b->block_table : dummy;
    a->ksc = b->k_scales ? b->k_scales : dummy;
    a->vsc = b->v_scales ? b->v_scales : dummy;
    a->maxp = p->paged.max_pages_per_seq;
    a->npages = p->paged.num_pages;
    a->pshift = 0;
    while (p->paged.enabled && (1 << a->pshift) < p->paged.page_size)
        ++a->pshift;
    a->heads = p->heads;
    a->group = s->group;
    a->seq_q = p->seq_q;
    a->seq_kv = p->seq_kv;
    a->total_q = p->total_q;
    a->total_kv = p->total_kv;
    a->scale = p->scale;
    a->softcap = p->softcap;
    a->causal = p->causal;
    a->windowed = p->windowed;
    a->wl = p->window_left;
    a->wr = p->window_right;
    a->chunk = p->chunk_size;
    a->has_kvl = b->kv_lens != NULL;
    a->has_lse = b->lse != NULL;
    a->qsb = p->q_strides.batch, a->qsh = p->q_strides.head, a->qss = p->q_strides.seq;
    a->ksb = p->k_strides.batch, a->ksh = p->k_strides.head, a->kss = p->k_strides.seq;
    a->vsb = p->v_strides.batch, a->vsh = p->v_strides.head, a->vss = p->v_strides.seq;
    a->osb = p->o_strides.batch, a->osh = p->o_strides.head, a->oss = p->o_strides.seq;
    a->bsb = s->bias_strides.batch, a->bsh = s->bias_strides.head, a->bsr = s->bias_strides.row;
    a->msb = p->bool_mask.strides.batch, a->msh = p->bool_mask.strides.head;
    a->msr = p->bool_mask.strides.row;
    a->tq0 = s->tile.q_offset;
    a->tk0 = s->tile.kv_offset;
    a->wsq = s->tile.whole_seq_q;
    a->wskv = s->tile.whole_seq_kv;
}

/* Sets the call parameters (arguments 0..) and then the kernel's own. */
static clattn_status set_kernel_args(clattn_context *ctx, cl_kernel k, const call_args *a,
                                     const arg *own, int n_own)
{
    const arg common[] = {
        ARG(a->q),       ARG(a->k),       ARG(a->v),      ARG(a->o),        ARG(a->lse),
        ARG(a->kv_lens), ARG(a->kv_start), ARG(a->cu_q),  ARG(a->cu_kv),    ARG(a->bias),
        ARG(a->bmask),   ARG(a->sinks),   ARG(a->slopes), ARG(a->btab),     ARG(a->ksc),
        ARG(a->vsc),     ARG(a->heads),   ARG(a->group),  ARG(a->seq_q),    ARG(a->seq_kv),
        ARG(a->total_q), ARG(a->total_kv), ARG(a->scale), ARG(a->softcap),  ARG(a->causal),
        ARG(a->windowed), ARG(a->wl),     ARG(a->wr),     ARG(a->chunk),    ARG(a->has_kvl),
        ARG(a->has_lse), ARG(a->maxp),    ARG(a->npages), ARG(a->pshift),   ARG(a->qsb),
        ARG(a->qsh),
        ARG(a->qss),     ARG(a->ksb),     ARG(a->ksh),    ARG(a->kss),      ARG(a->vsb),
        ARG(a->vsh),     ARG(a->vss),     ARG(a->osb),    ARG(a->osh),      ARG(a->oss),
        ARG(a->bsb),     ARG(a->bsh),     ARG(a->bsr),    ARG(a->msb),      ARG(a->msh),
        ARG(a->msr),     ARG(a->tq0),     ARG(a->tk0),    ARG(a->wsq),      ARG(a->wskv)};
    const int n = (int)(sizeof common / sizeof common[0]);
    CLATTN_TRY(set_args(ctx, k, 0, common, n));
    return set_args(ctx, k, n, own, n_own);
}

static clattn_status run_fused(clattn_context *ctx, const clattn__shape *s, clattn__plan *pl,
                               call_args *a, chain *c)
{
    const clattn__program_entry *fe, *ce = NULL;
    CLATTN_TRY(clattn__get_kernel(ctx, &pl->fused, &fe));
    const int split = pl->path == CLATTN_PATH_SPLIT_KV;
    if (split)
        CLATTN_TRY(clattn__get_kernel(ctx, &pl->combine, &ce));
    cl_mem part_o = split ? ctx->scratch[0] : ctx->dummy;
    cl_mem part_ml = split ? ctx->scratch[1] : ctx->dummy;
    cl_int kps = split ? pl->keys_per_split : 0;
    const arg fa[] = {ARG(kps), ARG(part_o), ARG(part_ml)};
    CLATTN_TRY(set_kernel_args(ctx, fe->kernel, a, fa, 3));
    const size_t wg = clattn__config_wg_size(&pl->fused);
    const size_t bh = (size_t)s->p.batch * (size_t)s->p.heads;
    size_t row_groups, head_groups;
    clattn__plan_fused_groups(pl, s, &row_groups, &head_groups);
    const size_t g[3] = {row_groups * wg, head_groups, split ? (size_t)pl->nsplit : 1};
    const size_t l[3] = {wg, 1, 1};
    CLATTN_TRY(launch(ctx, c, pl->fused.id, fe->kernel, 3, g, l));
    if (!split)
        return CLATTN_OK;

    cl_int nsplit = pl->nsplit;
    const arg ca[] = {ARG(nsplit), ARG(part_o), ARG(part_ml)};
    CLATTN_TRY(set_kernel_args(ctx, ce->kernel, a, ca, 3));
    const size_t cw = clattn__config_wg_size(&pl->combine);
    const size_t cg[2] = {round_up((size_t)s->p.seq_q, cw), bh};
    const size_t cl[2] = {cw, 1};
    return launch(ctx, c, CLATTN__K_COMBINE, ce->kernel, 2, cg, cl);
}

/* One chunk of the three-stage path: bh0..bh0+nbh-1 heads, rows row0.. */
typedef struct {
    cl_int bh0, nbh, row0, nrows;
} chunk;

static clattn_status stage_qk(clattn_context *ctx, const clattn__shape *s, clattn__plan *pl,
                              call_args *a, chain *c, cl_mem scores, chunk *k)
{
    if (pl->qk_blas)
        return blas_call(ctx, c, pl, GEMM_QK, s, a->q, a->k, scores, k->bh0, k->nbh, k->row0,
                         k->nrows);
    const clattn__program_entry *e;
    CLATTN_TRY(clattn__get_kernel(ctx, &pl->qk, &e));
    const arg args[] = {ARG(scores), ARG(k->row0), ARG(k->nrows), ARG(k->bh0)};
    CLATTN_TRY(set_kernel_args(ctx, e->kernel, a, args, 4));
    /* a group per tile of QK_CV * QK_VEC keys */
    const size_t wg = clattn__config_wg_size(&pl->qk);
    const size_t keys = (size_t)clattn__cfg_get(&pl->qk, CLATTN__T_QK_VEC) *
                        (size_t)clattn__cfg_get(&pl->qk, CLATTN__T_QK_CV);
    const size_t g[3] = {round_up((size_t)s->p.seq_kv, keys) / keys * wg, 1, (size_t)k->nbh};
    const size_t l[3] = {wg, 1, 1};
    return launch(ctx, c, CLATTN__K_QK, e->kernel, 3, g, l);
}

static clattn_status stage_softmax(clattn_context *ctx, clattn__plan *pl, call_args *a,
                                   chain *c, cl_mem scores, chunk *k)
{
    const clattn__program_entry *e;
    CLATTN_TRY(clattn__get_kernel(ctx, &pl->softmax, &e));
    cl_int raw = pl->qk_blas; /* GEMM scores still need their masking */
    const arg args[] = {ARG(scores), ARG(k->row0), ARG(k->nrows), ARG(k->bh0), ARG(raw)};
    CLATTN_TRY(set_kernel_args(ctx, e->kernel, a, args, 5));
    const size_t w = clattn__config_wg_size(&pl->softmax);
    const size_t g[3] = {w, (size_t)k->nrows, (size_t)k->nbh};
    const size_t l[3] = {w, 1, 1};
    return launch(ctx, c, CLATTN__K_SOFTMAX, e->kernel, 3, g, l);
}

static clattn_status stage_av(clattn_context *ctx, const clattn__shape *s, clattn__plan *pl,
                              call_args *a, chain *c, cl_mem scores, chunk *k)
{
    if (pl->av_blas)
        return blas_call(ctx, c, pl, GEMM_AV, s, scores, a->v, a->o, k->bh0, k->nbh, k->row0,
                         k->nrows);
    const clattn__program_entry *e;
    CLATTN_TRY(clattn__get_kernel(ctx, &pl->av, &e));
    const arg args[] = {ARG(scores), ARG(k->row0), ARG(k->nrows), ARG(k->bh0)};
    CLATTN_TRY(set_kernel_args(ctx, e->kernel, a, args, 4));
    /* a work-item per AV_ROWS rows, a group per AV_CV * AV_VEC value dims */
    const size_t wg = clattn__config_wg_size(&pl->av);
    const size_t rows = (size_t)clattn__cfg_get(&pl->av, CLATTN__T_AV_ROWS);
    const size_t dims = (size_t)clattn__cfg_get(&pl->av, CLATTN__T_AV_VEC) *
                        (size_t)clattn__cfg_get(&pl->av, CLATTN__T_AV_CV);
    const size_t g[3] = {round_up((size_t)k->nrows, wg * rows) / rows,
                         round_up((size_t)s->p.head_dim_v, dims) / dims, (size_t)k->nbh};
    const size_t l[3] = {wg, 1, 1};
    return launch(ctx, c, CLATTN__K_AV, e->kernel, 3, g, l);
}

static clattn_status run_three_stage(clattn_context *ctx, const clattn__shape *s,
                                     clattn__plan *pl, call_args *a, chain *c, float *probs_host)
{
    const clattn_problem *p = &s->p;
    cl_mem scores = ctx->scratch[0];
    const int bh_total = p->batch * p->heads;
    chunk k;
    for (k.bh0 = 0; k.bh0 < bh_total; k.bh0 += pl->chunk_bh) {
        k.nbh = bh_total - k.bh0 < pl->chunk_bh ? bh_total - k.bh0 : pl->chunk_bh;
        for (k.row0 = 0; k.row0 < p->seq_q; k.row0 += pl->chunk_rows) {
            k.nrows = p->seq_q - k.row0 < pl->chunk_rows ? p->seq_q - k.row0 : pl->chunk_rows;
            CLATTN_TRY(stage_qk(ctx, s, pl, a, c, scores, &k));
            CLATTN_TRY(stage_softmax(ctx, pl, a, c, scores, &k));
            if (probs_host) {
                /* A chunk is whole heads or rows of one head: contiguous. */
                const size_t off = ((size_t)k.bh0 * (size_t)p->seq_q + (size_t)k.row0) *
                                   (size_t)p->seq_kv;
                const size_t n = (size_t)k.nbh * (size_t)k.nrows * (size_t)p->seq_kv;
                CLATTN_CL_TRY(ctx,
                              clEnqueueReadBuffer(ctx->queue, scores, CL_TRUE, 0,
                                                  n * sizeof(float), probs_host + off, 1,
                                                  &c->last, NULL),
                              "clEnqueueReadBuffer (attention weights)");
            }
            CLATTN_TRY(stage_av(ctx, s, pl, a, c, scores, &k));
        }
    }
    return CLATTN_OK;
}

clattn_status clattn__enqueue_plan(clattn_context *ctx, const clattn__shape *s,
                                  clattn__plan *plan, const clattn_buffers *buf,
                                  cl_uint num_wait, const cl_event *wait, cl_event *done,
                                  float *probs_host, clattn__launch_record *rec)
{
    CLATTN_TRY(ensure_dummy(ctx));
    CLATTN_TRY(ensure_scratch(ctx, 0, plan->scratch_bytes[0]));
    CLATTN_TRY(ensure_scratch(ctx, 1, plan->scratch_bytes[1]));

    const int uses_scratch = plan->scratch_bytes[0] > 0;
    cl_event *waits = NULL;
    chain c = {num_wait, wait, NULL, rec};
    if (uses_scratch && ctx->scratch_busy) {
        waits = malloc(sizeof *waits * (num_wait + 1));
        if (!waits)
            return clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
        for (cl_uint i = 0; i < num_wait; ++i)
            waits[i] = wait[i];
        waits[num_wait] = ctx->scratch_busy;
        c.num_wait = num_wait + 1;
        c.wait = waits;
    }
    call_args a;
    fill_args(ctx, s, buf, &a);
    clattn_status st = plan->path == CLATTN_PATH_THREE_STAGE
                           ? run_three_stage(ctx, s, plan, &a, &c, probs_host)
                           : run_fused(ctx, s, plan, &a, &c);
    free(waits);
    if (st != CLATTN_OK) {
        /* Kernels enqueued before the failure may still use the scratch: the
         * next user must wait for them as for a whole call. */
        if (c.last && uses_scratch) {
            if (ctx->scratch_busy)
                clReleaseEvent(ctx->scratch_busy);
            ctx->scratch_busy = c.last;
        } else if (c.last) {
            clReleaseEvent(c.last);
        }
        return st;
    }
    if (uses_scratch) {
        if (ctx->scratch_busy)
            clReleaseEvent(ctx->scratch_busy);
        clRetainEvent(c.last);
        ctx->scratch_busy = c.last;
    }
    if (done)
        *done = c.last;
    else
        clReleaseEvent(c.last);
    return CLATTN_OK;
}

clattn_status clattn__forward_locked(clattn_context *ctx, const clattn__shape *s,
                                     const clattn_buffers *buf, cl_uint num_wait,
                                     const cl_event *wait, cl_event *done, float *probs_host)
{
    if (num_wait > 0 && !wait)
        return BAD("num_wait is %u but wait is NULL", num_wait);
    for (cl_uint i = 0; i < num_wait; ++i)
        if (!wait[i])
            return BAD("wait[%u] is NULL", i);
    CLATTN_TRY(clattn__check_buffers(ctx, s, buf));

    clattn__shape shape = *s;
    clattn__shape_set_mask(&shape, buf->mask != NULL, buf->kv_lens != NULL);
    clattn__plan plan;
    CLATTN_TRY(clattn__plan_make(ctx, &shape, ctx->max_scratch_bytes, 0, &plan));
    if (probs_host && plan.path != CLATTN_PATH_THREE_STAGE)
        return clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT,
                            "attention weights need the three-stage path");
    return clattn__enqueue_plan(ctx, &shape, &plan, buf, num_wait, wait, done, probs_host,
                                NULL);
}

clattn_status clattn_forward(clattn_context *ctx, const clattn_problem *problem,
                             const clattn_buffers *buffers, cl_uint num_wait,
                             const cl_event *wait, cl_event *done)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    if (done)
        *done = NULL;
    pthread_mutex_lock(&ctx->lock);
    clattn__shape s;
    clattn_status st = clattn__problem_normalize(ctx, problem, &s);
    if (st == CLATTN_OK)
        st = clattn__forward_locked(ctx, &s, buffers, num_wait, wait, done, NULL);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

clattn_status clattn_forward_tile(clattn_context *ctx, const clattn_problem *problem,
                                  const clattn_tile *tile, const clattn_buffers *buffers,
                                  cl_uint num_wait, const cl_event *wait, cl_event *done)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    if (done)
        *done = NULL;
    pthread_mutex_lock(&ctx->lock);
    clattn__shape s;
    clattn_status st = clattn__problem_normalize_tile(ctx, problem, tile, &s);
    if (st == CLATTN_OK)
        st = clattn__forward_locked(ctx, &s, buffers, num_wait, wait, done, NULL);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

clattn_status clattn_supports(clattn_context *ctx, const clattn_problem *problem)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    clattn__shape s;
    clattn__plan plan;
    const clattn__program_entry *e;
    clattn_status st = clattn__problem_normalize(ctx, problem, &s);
    if (st == CLATTN_OK)
        st = clattn__plan_make(ctx, &s, ctx->max_scratch_bytes, 0, &plan);
    if (st == CLATTN_OK && plan.path == CLATTN_PATH_THREE_STAGE) {
        if (!plan.qk_blas)
            st = clattn__get_kernel(ctx, &plan.qk, &e);
        if (st == CLATTN_OK)
            st = clattn__get_kernel(ctx, &plan.softmax, &e);
        if (st == CLATTN_OK && !plan.av_blas)
            st = clattn__get_kernel(ctx, &plan.av, &e);
    } else if (st == CLATTN_OK) {
        st = clattn__get_kernel(ctx, &plan.fused, &e);
        if (st == CLATTN_OK && plan.path == CLATTN_PATH_SPLIT_KV)
            st = clattn__get_kernel(ctx, &plan.combine, &e);
    }
    pthread_mutex_unlock(&ctx->lock);
    return st;
}
