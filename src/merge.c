/* clattn_merge: validation of a merge call, then its launches of
 * cl/merge.cl (MERGE_PARTS parts each, through an fp32 accumulator when
 * there are more). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "internal.h"
#include "plan.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* Parts one launch of attn_merge takes (MERGE_PARTS in cl/merge.cl). */
#define PARTS_PER_LAUNCH 8
#define MAX_PARTS 1024

/* A validated merge problem: strides filled in, sizes in bytes. */
typedef struct {
    clattn_merge_problem p;
    size_t esz;
    int64_t rows;      /* batch * heads * seq_q: LSE entries */
    int64_t o_bytes;   /* of every O view, from its buffer's start */
    int64_t lse_bytes; /* of every LSE */
} merge_shape;

/* ---- the problem ----------------------------------------------------------- */

static int mul_ok(int64_t a, int64_t b, int64_t *r)
{
    if (a != 0 && b > INT64_MAX / a)
        return 0;
    *r = a * b;
    return 1;
}

/* Strides of O: packed when all zero; otherwise non-negative and such that
 * no two elements share an offset (clattn.h's rule for clattn_strides:
 * taken by increasing stride, each dimension of extent > 1 steps past the
 * largest offset the smaller ones reach). Sets the view's extent in elements. */
static clattn_status check_o_strides(clattn_context *ctx, clattn_merge_problem *p,
                                     int64_t *extent)
{
    clattn_strides *s = &p->o_strides;
    if (s->batch == 0 && s->head == 0 && s->seq == 0) {
        s->seq = p->head_dim_v;
        if (!mul_ok(p->seq_q, s->seq, &s->head) || !mul_ok(p->heads, s->head, &s->batch))
            return BAD("o_strides: the packed size overflows 64 bits");
    }
    if (s->batch < 0 || s->head < 0 || s->seq < 0)
        return BAD("o_strides: negative stride (batch %lld, head %lld, seq %lld)",
                   (long long)s->batch, (long long)s->head, (long long)s->seq);
    const char *names[4] = {"dim", "seq", "head", "batch"};
    int64_t n[4] = {p->head_dim_v, p->seq_q, p->heads, p->batch};
    int64_t st[4] = {1, s->seq, s->head, s->batch};
    int order[4] = {0, 1, 2, 3};
    for (int a = 1; a < 4; ++a)
        for (int b = a; b > 0 && st[order[b]] < st[order[b - 1]]; --b) {
            const int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    int64_t span = 0; /* the largest offset reached so far */
    for (int a = 0; a < 4; ++a) {
        const int x = order[a];
        if (n[x] <= 1)
            continue;
        if (st[x] <= span)
            return BAD("o_strides: the %s stride %lld overlaps the elements of the smaller "
                       "dimensions (needs > %lld)",
                       names[x], (long long)st[x], (long long)span);
        int64_t step;
        if (!mul_ok(n[x] - 1, st[x], &step) || step > INT64_MAX - 1 - span)
            return BAD("o_strides: offsets overflow 64 bits");
        span += step;
    }
    *extent = span + 1;
    return CLATTN_OK;
}

static clattn_status check_problem(clattn_context *ctx, const clattn_merge_problem *in,
                                   merge_shape *out)
{
    if (!in)
        return BAD("problem is NULL");
    memset(out, 0, sizeof *out);
    clattn_merge_problem p = *in;
    const struct {
        const char *name;
        int v;
    } sizes[3] = {{"batch", p.batch}, {"heads", p.heads}, {"seq_q", p.seq_q}};
    for (int i = 0; i < 3; ++i)
        if (sizes[i].v <= 0)
            return BAD("%s must be positive (got %d)", sizes[i].name, sizes[i].v);
    if (p.seq_q > CLATTN__MAX_SEQ)
        return BAD("seq_q must be in 1..%d (got %d)", CLATTN__MAX_SEQ, p.seq_q);
    if (p.head_dim_v <= 0 || p.head_dim_v > CLATTN__MAX_HEAD_DIM_V)
        return BAD("head_dim_v must be in 1..%d (got %d)", CLATTN__MAX_HEAD_DIM_V, p.head_dim_v);
    if (p.dtype != CLATTN_F32 && p.dtype != CLATTN_F16 && p.dtype != CLATTN_BF16)
        return BAD("dtype %d is not a clattn_dtype", (int)p.dtype);
    if (p.num_parts < 1 || p.num_parts > MAX_PARTS)
        return BAD("num_parts must be in 1..%d (got %d)", MAX_PARTS, p.num_parts);
    for (size_t i = 0; i < sizeof p.reserved / sizeof p.reserved[0]; ++i)
        if (p.reserved[i] != 0)
            return BAD("reserved[%zu] must be zero (a field of a newer clattn than this %s?)", i,
                       clattn_version());
    /* The kernel's grid has batch * heads groups along one dimension, an int. */
    if ((int64_t)p.batch * p.heads > INT32_MAX)
        return BAD("batch * heads (%d * %d) must fit in 32 bits", p.batch, p.heads);
    int64_t extent = 0;
    CLATTN_TRY(check_o_strides(ctx, &p, &extent));
    out->esz = p.dtype == CLATTN_F32 ? 4 : 2;
    out->rows = (int64_t)p.batch * p.heads * p.seq_q; /* < 2^61 */
    if (!mul_ok(extent, (int64_t)out->esz, &out->o_bytes))
        return BAD("o_strides: the view's size in bytes overflows 64 bits");
    out->lse_bytes = out->rows * (int64_t)sizeof(float);
    out->p = p;
    return CLATTN_OK;
}

/* ---- the buffers ----------------------------------------------------------- */

/* The bytes a buffer's view covers, in the buffer it was made from. */
typedef struct {
    cl_mem root;
    size_t offset, bytes;
} region;

static clattn_status check_buffer(clattn_context *ctx, const char *name, cl_mem m,
                                  int64_t bytes, region *r)
{
    if (!m)
        return BAD("%s is NULL", name);
    cl_context owner = NULL;
    cl_mem parent = NULL;
    size_t size = 0, offset = 0;
    if (clGetMemObjectInfo(m, CL_MEM_CONTEXT, sizeof owner, &owner, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(m, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL) !=
            CL_SUCCESS ||
        clGetMemObjectInfo(m, CL_MEM_OFFSET, sizeof offset, &offset, NULL) != CL_SUCCESS)
        return BAD("%s is not a valid cl_mem", name);
    if (owner != ctx->cl_ctx)
        return BAD("%s belongs to another cl_context than the clattn context's", name);
    if ((uint64_t)size < (uint64_t)bytes)
        return BAD("%s is %zu bytes but the problem needs %lld", name, size, (long long)bytes);
    r->root = parent ? parent : m;
    r->offset = parent ? offset : 0;
    r->bytes = (size_t)bytes;
    return CLATTN_OK;
}

static int overlap(const region *a, const region *b)
{
    return a->root == b->root && a->offset < b->offset + b->bytes &&
           b->offset < a->offset + a->bytes;
}

/* An output may share no byte with any part: the launches read the parts
 * while they write the outputs, and a long merge reads its last parts after
 * its first launches have run. */
static clattn_status check_disjoint(clattn_context *ctx, const char *name, const region *out,
                                    const region *parts, int num_parts)
{
    for (int i = 0; i < 2 * num_parts; ++i)
        if (overlap(out, &parts[i]))
            return BAD("%s overlaps %s[%d] (the outputs may not overlap any part)", name,
                       i % 2 ? "lse_parts" : "o_parts", i / 2);
    return CLATTN_OK;
}

/* parts: room for 2 * num_parts regions, o_parts[i] at 2i, lse_parts[i] at 2i + 1. */
static clattn_status check_parts(clattn_context *ctx, const merge_shape *s,
                                 const cl_mem *o_parts, const cl_mem *lse_parts, region *parts)
{
    if (!o_parts)
        return BAD("o_parts is NULL");
    if (!lse_parts)
        return BAD("lse_parts is NULL");
    char name[32];
    for (int i = 0; i < s->p.num_parts; ++i) {
        snprintf(name, sizeof name, "o_parts[%d]", i);
        CLATTN_TRY(check_buffer(ctx, name, o_parts[i], s->o_bytes, &parts[2 * i]));
        snprintf(name, sizeof name, "lse_parts[%d]", i);
        CLATTN_TRY(check_buffer(ctx, name, lse_parts[i], s->lse_bytes, &parts[2 * i + 1]));
    }
    return CLATTN_OK;
}

static clattn_status check_outputs(clattn_context *ctx, const merge_shape *s, cl_mem o,
                                   cl_mem lse, const region *parts)
{
    region ro, rl;
    CLATTN_TRY(check_buffer(ctx, "o", o, s->o_bytes, &ro));
    CLATTN_TRY(check_disjoint(ctx, "o", &ro, parts, s->p.num_parts));
    if (!lse)
        return CLATTN_OK;
    CLATTN_TRY(check_buffer(ctx, "lse", lse, s->lse_bytes, &rl));
    CLATTN_TRY(check_disjoint(ctx, "lse", &rl, parts, s->p.num_parts));
    if (overlap(&ro, &rl))
        return BAD("o and lse overlap");
    return CLATTN_OK;
}

static clattn_status check_buffers(clattn_context *ctx, const merge_shape *s,
                                   const cl_mem *o_parts, const cl_mem *lse_parts, cl_mem o,
                                   cl_mem lse)
{
    region *parts = malloc(sizeof *parts * 2 * (size_t)s->p.num_parts);
    if (!parts)
        return clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of host memory");
    clattn_status st = check_parts(ctx, s, o_parts, lse_parts, parts);
    if (st == CLATTN_OK)
        st = check_outputs(ctx, s, o, lse, parts);
    free(parts);
    return st;
}

static clattn_status check_wait(clattn_context *ctx, cl_uint num_wait, const cl_event *wait)
{
    if (num_wait > 0 && !wait)
        return BAD("num_wait is %u but wait is NULL", num_wait);
    for (cl_uint i = 0; i < num_wait; ++i)
        if (!wait[i])
            return BAD("wait[%u] is NULL", i);
    return CLATTN_OK;
}

/* ---- the kernel and its scratch ---------------------------------------------- */

/* The merge kernel of the shape (MERGE_WG from the table or CLATTN_PARAMS,
 * fitted to the device). */
static clattn_status get_kernel(clattn_context *ctx, const merge_shape *s,
                                clattn__kernel_config *cfg, const clattn__program_entry **e)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dtype = s->p.dtype;
    cfg->head_dim = s->p.head_dim_v;
    cfg->head_dim_v = s->p.head_dim_v;
    CLATTN_TRY(clattn__plan_standalone(ctx, CLATTN__K_MERGE, cfg));
    return clattn__get_kernel(ctx, cfg, e);
}

static clattn_status ensure_dummy(clattn_context *ctx)
{
    if (ctx->dummy)
        return CLATTN_OK;
    cl_int err;
    cl_int zeros[4] = {0, 0, 0, 0}; /* initialised: no tool sees an uninitialised read */
    cl_mem m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              sizeof zeros, zeros, &err);
    if (err != CL_SUCCESS)
        return clattn__cl_fail(ctx, err, "clCreateBuffer (placeholder)");
    ctx->dummy = m;
    return CLATTN_OK;
}

/* The fp32 running result of a merge of more parts than one launch takes,
 * in one buffer: O rows packed, then two LSE arrays that successive launches
 * alternate between (see cl/merge.cl). Released once enqueued: OpenCL keeps
 * it alive for the queued kernels. */
typedef struct {
    cl_mem mem;            /* NULL when one launch does it all */
    cl_long lse_at[2];     /* element offsets of the two LSE arrays */
} accumulator;

static uint64_t accumulator_bytes(const merge_shape *s)
{
    return (uint64_t)s->rows * ((uint64_t)s->p.head_dim_v + 2) * sizeof(float);
}

/* Refuses, before anything is enqueued, an accumulator the device cannot
 * allocate in one piece. */
static clattn_status check_accumulator(clattn_context *ctx, const merge_shape *s)
{
    if (s->p.num_parts <= PARTS_PER_LAUNCH || accumulator_bytes(s) <= ctx->dev.max_alloc)
        return CLATTN_OK;
    return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED,
                        "merge of %d parts: its fp32 accumulator (%llu bytes) exceeds the "
                        "device's largest allocation (%llu bytes); merge at most %d parts a "
                        "call",
                        s->p.num_parts, (unsigned long long)accumulator_bytes(s),
                        (unsigned long long)ctx->dev.max_alloc, PARTS_PER_LAUNCH);
}

static clattn_status accumulator_create(clattn_context *ctx, const merge_shape *s,
                                        accumulator *a)
{
    memset(a, 0, sizeof *a);
    if (s->p.num_parts <= PARTS_PER_LAUNCH)
        return CLATTN_OK;
    cl_int err;
    a->mem = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, (size_t)accumulator_bytes(s), NULL,
                            &err);
    if (err != CL_SUCCESS) {
        a->mem = NULL;
        return clattn__cl_fail(ctx, err, "clCreateBuffer (merge accumulator)");
    }
    a->lse_at[0] = (cl_long)s->rows * s->p.head_dim_v;
    a->lse_at[1] = a->lse_at[0] + (cl_long)s->rows;
    return CLATTN_OK;
}

/* ---- enqueueing -------------------------------------------------------------- */

/* One launch: parts first..first+count-1, after the previous launch. */
typedef struct {
    int first, count;
    cl_int has_acc, to_acc;
    cl_long lse_in, lse_out; /* the running LSE's offsets in the accumulator */
} launch_step;

static clattn_status set_arg(clattn_context *ctx, cl_kernel k, cl_uint *i, size_t size,
                             const void *value)
{
    cl_int err = clSetKernelArg(k, *i, size, value);
    if (err != CL_SUCCESS) {
        char what[32];
        snprintf(what, sizeof what, "clSetKernelArg(%u)", *i);
        return clattn__cl_fail(ctx, err, what);
    }
    ++*i;
    return CLATTN_OK;
}
#define SET(x) CLATTN_TRY(set_arg(ctx, k, &n, sizeof(x), &(x)))

static clattn_status set_step_args(clattn_context *ctx, cl_kernel k, const merge_shape *s,
                                   const cl_mem *o_parts, const cl_mem *lse_parts, cl_mem o,
                                   cl_mem lse, const accumulator *acc, const launch_step *st)
{
    const clattn_merge_problem *p = &s->p;
    cl_uint n = 0;
    for (int j = 0; j < PARTS_PER_LAUNCH; ++j) {
        const int used = j < st->count;
        cl_mem po = used ? o_parts[st->first + j] : ctx->dummy;
        cl_mem pl = used ? lse_parts[st->first + j] : ctx->dummy;
        SET(po);
        SET(pl);
    }
    cl_int count = st->count, heads = p->heads, seq_q = p->seq_q, has_lse = lse != NULL;
    cl_long osb = p->o_strides.batch, osh = p->o_strides.head, oss = p->o_strides.seq;
    cl_mem acc_mem = acc->mem ? acc->mem : ctx->dummy;
    cl_mem out_o = st->to_acc ? ctx->dummy : o;
    cl_mem out_l = !st->to_acc && lse ? lse : ctx->dummy;
    SET(count);
    SET(heads);
    SET(seq_q);
    SET(osb);
    SET(osh);
    SET(oss);
    SET(st->has_acc);
    SET(st->to_acc);
    SET(acc_mem);
    SET(st->lse_in);
    SET(st->lse_out);
    SET(out_o);
    SET(out_l);
    SET(has_lse);
    return CLATTN_OK;
}
#undef SET

/* Launch j of a merge: its parts, and where the fp32 running result comes
 * from and goes to. */
static launch_step step_of(const merge_shape *s, const accumulator *acc, int j)
{
    launch_step st;
    st.first = j * PARTS_PER_LAUNCH;
    const int left = s->p.num_parts - st.first;
    st.count = left < PARTS_PER_LAUNCH ? left : PARTS_PER_LAUNCH;
    st.has_acc = j > 0;
    st.to_acc = left > PARTS_PER_LAUNCH;
    st.lse_in = acc->lse_at[(j + 1) % 2];
    st.lse_out = acc->lse_at[j % 2];
    return st;
}

/* Enqueues every launch, each after the previous one (the first after the
 * caller's events), so an out-of-order queue keeps their order too. */
static clattn_status enqueue(clattn_context *ctx, const merge_shape *s,
                             const clattn__kernel_config *cfg, cl_kernel k,
                             const cl_mem *o_parts, const cl_mem *lse_parts, cl_mem o,
                             cl_mem lse, const accumulator *acc, cl_uint num_wait,
                             const cl_event *wait, cl_event *last)
{
    const size_t wg = clattn__config_wg_size(cfg);
    const size_t global[3] = {wg, (size_t)s->p.seq_q, (size_t)s->p.batch * (size_t)s->p.heads};
    const size_t local[3] = {wg, 1, 1};
    const int launches = (s->p.num_parts + PARTS_PER_LAUNCH - 1) / PARTS_PER_LAUNCH;
    *last = NULL;
    for (int j = 0; j < launches; ++j) {
        const launch_step st = step_of(s, acc, j);
        CLATTN_TRY(set_step_args(ctx, k, s, o_parts, lse_parts, o, lse, acc, &st));
        cl_event ev;
        cl_int err = *last ? clEnqueueNDRangeKernel(ctx->queue, k, 3, NULL, global, local, 1,
                                                    last, &ev)
                           : clEnqueueNDRangeKernel(ctx->queue, k, 3, NULL, global, local,
                                                    num_wait, wait, &ev);
        if (err != CL_SUCCESS)
            return clattn__cl_fail(ctx, err, "clEnqueueNDRangeKernel (merge)");
        if (*last)
            clReleaseEvent(*last);
        *last = ev;
        clattn__program_launched(ctx, k, ev);
    }
    return CLATTN_OK;
}

static clattn_status merge_locked(clattn_context *ctx, const clattn_merge_problem *problem,
                                  const cl_mem *o_parts, const cl_mem *lse_parts, cl_mem o,
                                  cl_mem lse, cl_uint num_wait, const cl_event *wait,
                                  cl_event *done)
{
    merge_shape s;
    CLATTN_TRY(check_problem(ctx, problem, &s));
    CLATTN_TRY(check_wait(ctx, num_wait, wait));
    CLATTN_TRY(check_buffers(ctx, &s, o_parts, lse_parts, o, lse));
    CLATTN_TRY(check_accumulator(ctx, &s));

    clattn__kernel_config cfg;
    const clattn__program_entry *e;
    CLATTN_TRY(get_kernel(ctx, &s, &cfg, &e));
    CLATTN_TRY(ensure_dummy(ctx));
    accumulator acc;
    CLATTN_TRY(accumulator_create(ctx, &s, &acc));
    cl_event last = NULL;
    clattn_status st =
        enqueue(ctx, &s, &cfg, e->kernel, o_parts, lse_parts, o, lse, &acc, num_wait, wait, &last);
    if (acc.mem)
        clReleaseMemObject(acc.mem);
    if (st != CLATTN_OK) {
        if (last)
            clReleaseEvent(last);
        return st;
    }
    if (done)
        *done = last;
    else
        clReleaseEvent(last);
    return CLATTN_OK;
}

clattn_status clattn_merge(clattn_context *ctx, const clattn_merge_problem *problem,
                           const cl_mem *o_parts, const cl_mem *lse_parts, cl_mem o, cl_mem lse,
                           cl_uint num_wait, const cl_event *wait, cl_event *done)
{
    if (done)
        *done = NULL;
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    clattn_status st =
        merge_locked(ctx, problem, o_parts, lse_parts, o, lse, num_wait, wait, done);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}
