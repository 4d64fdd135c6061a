/* clattn_kv_append: checks a cache and the new tokens, then enqueues
 * cl/kv_append.cl, which converts the tokens to the cache's storage. */
#include <stdio.h>
#include <string.h>

#include "attention.h"
#include "internal.h"
#include "plan.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* The channels one work-item of the kernel converts: a scale group or a
 * ggml block is one reduction, so it cannot be split; element-wise formats
 * take runs of 32, enough to amortise the item's index arithmetic. */
static int unit_channels(const clattn_kv_storage *st, int dims)
{
    switch (st->format) {
    case CLATTN_KV_INT8:
    case CLATTN_KV_INT4:
        return st->group ? st->group : dims;
    case CLATTN_KV_Q8_0:
    case CLATTN_KV_Q4_0:
        return 32;
    default:
        return dims < 32 ? dims : 32;
    }
}

static int has_scales(const clattn_kv_storage *st)
{
    return st->format == CLATTN_KV_INT8 || st->format == CLATTN_KV_INT4 ||
           st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2;
}

/* What the kernel writes of a tensor's scales (FP8 only reads them). */
static int writes_scales(const clattn_kv_storage *st)
{
    return st->format == CLATTN_KV_INT8 || st->format == CLATTN_KV_INT4;
}

/* ---- buffers --------------------------------------------------------------- */

typedef struct {
    const char *name;
    cl_mem mem, root; /* root: the buffer a sub-buffer was made from */
    size_t offset;    /* of mem inside root */
    int64_t bytes;    /* what the call touches, from mem's start */
    int written;
} region;

static clattn_status check_region(clattn_context *ctx, region *r)
{
    cl_context owner = NULL;
    size_t size = 0, offset = 0;
    cl_mem parent = NULL;
    if (clGetMemObjectInfo(r->mem, CL_MEM_CONTEXT, sizeof owner, &owner, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(r->mem, CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(r->mem, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL) !=
            CL_SUCCESS ||
        clGetMemObjectInfo(r->mem, CL_MEM_OFFSET, sizeof offset, &offset, NULL) != CL_SUCCESS)
        return BAD("%s is not a valid cl_mem", r->name);
    if (owner != ctx->cl_ctx)
        return BAD("%s belongs to another cl_context than the clattn context's", r->name);
    if ((uint64_t)size < (uint64_t)r->bytes)
        return BAD("%s is %zu bytes but the cache needs %lld", r->name, size,
                   (long long)r->bytes);
    r->root = parent ? parent : r->mem;
    r->offset = parent ? offset : 0;
    return CLATTN_OK;
}

static int overlap(const region *a, const region *b)
{
    return a->root == b->root && (int64_t)a->offset < (int64_t)b->offset + b->bytes &&
           (int64_t)b->offset < (int64_t)a->offset + a->bytes;
}

/* Bytes of [batch][kv_heads][n_new][dims] new values; -1 on overflow. */
static int64_t new_bytes(const clattn__shape *s, int n_new, int dims)
{
    const int64_t rows = (int64_t)s->p.batch * s->p.kv_heads; /* < 2^31 */
    const int64_t per_row = (int64_t)n_new * dims * (int64_t)s->elem_size; /* < 2^41 */
    return rows > INT64_MAX / per_row ? -1 : rows * per_row;
}

/* Every buffer given exactly when the cache needs it, in the context, large
 * enough, and nothing written sharing a byte with anything else. */
static clattn_status check_buffers(clattn_context *ctx, const clattn__shape *s, int n_new,
                                   cl_mem k_new, cl_mem v_new, cl_mem positions,
                                   const clattn_buffers *cb)
{
    const clattn_problem *p = &s->p;
    if (!cb)
        return BAD("cache_buffers is NULL");
    /* q, o, kv_lens and the other attention inputs are ignored: a decode
     * loop passes the clattn_buffers of its clattn_forward as they are. */
    for (size_t i = 0; i < sizeof cb->reserved / sizeof cb->reserved[0]; ++i)
        if (cb->reserved[i])
            return BAD("cache_buffers.reserved[%zu] must be NULL", i);
    const struct {
        const char *name, *why;
        cl_mem m;
        int want;
    } given[] = {
        {"k_new", "", k_new, 1},
        {"v_new", "", v_new, 1},
        {"positions", "", positions, 1},
        {"cache_buffers.k", "", cb->k, 1},
        {"cache_buffers.v", "", cb->v, 1},
        {"cache_buffers.block_table", "paged.enabled", cb->block_table, p->paged.enabled},
        {"cache_buffers.k_scales", "k_storage.format", cb->k_scales, has_scales(&p->k_storage)},
        {"cache_buffers.v_scales", "v_storage.format", cb->v_scales, has_scales(&p->v_storage)},
    };
    for (size_t i = 0; i < sizeof given / sizeof given[0]; ++i) {
        if (given[i].want && !given[i].m)
            return given[i].why[0]
                       ? BAD("%s is NULL but the cache's %s needs it", given[i].name,
                             given[i].why)
                       : BAD("%s is NULL", given[i].name);
        if (!given[i].want && given[i].m)
            return BAD("%s is given but the cache's %s %s", given[i].name, given[i].why,
                       i == 5 ? "is 0" : "has no scales");
    }

    const int64_t kn = new_bytes(s, n_new, p->head_dim), vn = new_bytes(s, n_new, p->head_dim_v);
    if (kn < 0 || vn < 0)
        return BAD("n_new (%d): the new tokens' size overflows 64 bits", n_new);
    region r[8] = {
        {"k_new", k_new, NULL, 0, kn, 0},
        {"v_new", v_new, NULL, 0, vn, 0},
        {"positions", positions, NULL, 0, (int64_t)p->batch * 4, 0},
        {"cache_buffers.block_table", cb->block_table, NULL, 0, s->table_elems * 4, 0},
        {"cache_buffers.k", cb->k, NULL, 0, s->k_bytes, 1},
        {"cache_buffers.v", cb->v, NULL, 0, s->v_bytes, 1},
        {"cache_buffers.k_scales", cb->k_scales, NULL, 0, s->k_scale_bytes,
         writes_scales(&p->k_storage)},
        {"cache_buffers.v_scales", cb->v_scales, NULL, 0, s->v_scale_bytes,
         writes_scales(&p->v_storage)},
    };
    int n = 0;
    for (int i = 0; i < 8; ++i)
        if (r[i].mem) {
            r[n] = r[i];
            CLATTN_TRY(check_region(ctx, &r[n++]));
        }
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
            if (i != j && r[i].written && (j < i || !r[j].written) && overlap(&r[i], &r[j]))
                return BAD("%s overlaps the bytes of %s", r[i].name, r[j].name);
    return CLATTN_OK;
}

/* ---- the call ---------------------------------------------------------------- */

typedef struct {
    size_t size;
    const void *value;
} arg;
#define ARG(x) {sizeof(x), &(x)}

/* The kernel's format code: DEFAULT is the dtype's own float format. */
static cl_int resolved_format(const clattn_kv_storage *st, clattn_dtype dtype)
{
    if (st->format != CLATTN_KV_DEFAULT)
        return (cl_int)st->format;
    return dtype == CLATTN_F32 ? CLATTN_KV_F32 : dtype == CLATTN_F16 ? CLATTN_KV_F16
                                                                     : CLATTN_KV_BF16;
}

static clattn_status enqueue(clattn_context *ctx, const clattn__shape *s, int n_new,
                             cl_mem k_new, cl_mem v_new, cl_mem positions,
                             const clattn_buffers *cb, cl_uint num_wait, const cl_event *wait,
                             cl_event *done)
{
    const clattn_problem *p = &s->p;
    clattn__kernel_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dtype = p->dtype;
    cfg.head_dim = p->head_dim;
    cfg.head_dim_v = p->head_dim_v;
    CLATTN_TRY(clattn__plan_standalone(ctx, CLATTN__K_KV_APPEND, &cfg));
    const clattn__program_entry *e;
    CLATTN_TRY(clattn__get_kernel(ctx, &cfg, &e));

    const cl_int batch = p->batch, kv_heads = p->kv_heads, nn = n_new, seq_kv = p->seq_kv;
    const cl_int page_size = p->paged.page_size, num_pages = p->paged.num_pages,
                 max_pages = p->paged.max_pages_per_seq;
    const cl_int k_fmt = resolved_format(&p->k_storage, p->dtype),
                 v_fmt = resolved_format(&p->v_storage, p->dtype);
    const cl_int k_unit = unit_channels(&p->k_storage, p->head_dim),
                 v_unit = unit_channels(&p->v_storage, p->head_dim_v);
    const cl_int k_sdt = p->k_storage.scale_dtype == CLATTN_F16,
                 v_sdt = p->v_storage.scale_dtype == CLATTN_F16;
    const cl_int k_ph = p->k_storage.per_head, v_ph = p->v_storage.per_head;
    const cl_long ksb = p->k_strides.batch, ksh = p->k_strides.head, kss = p->k_strides.seq;
    const cl_long vsb = p->v_strides.batch, vsh = p->v_strides.head, vss = p->v_strides.seq;
    /* OpenCL 1.2 lets a NULL cl_mem stand for a buffer the kernel never
     * reads: the block table of a contiguous cache, scales of float formats. */
    const arg args[] = {
        ARG(k_new),     ARG(v_new),    ARG(positions), ARG(cb->block_table), ARG(cb->k),
        ARG(cb->v),     ARG(cb->k_scales), ARG(cb->v_scales), ARG(batch), ARG(kv_heads),
        ARG(nn),        ARG(seq_kv),   ARG(page_size), ARG(num_pages), ARG(max_pages),
        ARG(k_fmt),     ARG(k_unit),   ARG(k_sdt),     ARG(k_ph),      ARG(ksb),
        ARG(ksh),       ARG(kss),      ARG(v_fmt),     ARG(v_unit),    ARG(v_sdt),
        ARG(v_ph),      ARG(vsb),      ARG(vsh),       ARG(vss),
    };
    for (size_t i = 0; i < sizeof args / sizeof args[0]; ++i) {
        const cl_int err = clSetKernelArg(e->kernel, (cl_uint)i, args[i].size, args[i].value);
        if (err != CL_SUCCESS) {
            char what[32];
            snprintf(what, sizeof what, "clSetKernelArg(%zu)", i);
            return clattn__cl_fail(ctx, err, what);
        }
    }

    const size_t units = (size_t)((p->head_dim + k_unit - 1) / k_unit) +
                         (size_t)((p->head_dim_v + v_unit - 1) / v_unit);
    const size_t items = (size_t)batch * (size_t)kv_heads * (size_t)n_new * units;
    const size_t wg = clattn__config_wg_size(&cfg);
    const size_t global = (items + wg - 1) / wg * wg;
    cl_event ev;
    CLATTN_CL_TRY(ctx,
                  clEnqueueNDRangeKernel(ctx->queue, e->kernel, 1, NULL, &global, &wg, num_wait,
                                         num_wait ? wait : NULL, &ev),
                  "clEnqueueNDRangeKernel");
    clattn__program_launched(ctx, e->kernel, ev);
    if (done)
        *done = ev;
    else
        clReleaseEvent(ev);
    return CLATTN_OK;
}

static clattn_status append_locked(clattn_context *ctx, const clattn_problem *cache, int n_new,
                                   cl_mem k_new, cl_mem v_new, cl_mem positions,
                                   const clattn_buffers *cb, cl_uint num_wait,
                                   const cl_event *wait, cl_event *done)
{
    if (!cache)
        return BAD("cache is NULL");
    clattn__shape s;
    CLATTN_TRY(clattn__problem_normalize(ctx, cache, &s));
    /* A varlen cache's tokens are packed back to back: a sequence has no
     * room to grow into. */
    if (s.p.varlen)
        return BAD("varlen: a packed variable-length cache cannot be appended to (use a "
                   "contiguous or paged cache)");
    if (n_new < 1 || n_new > s.p.seq_kv)
        return BAD("n_new must be in 1..seq_kv (%d) (got %d)", s.p.seq_kv, n_new);
    if (num_wait > 0 && !wait)
        return BAD("num_wait is %u but wait is NULL", num_wait);
    for (cl_uint i = 0; i < num_wait; ++i)
        if (!wait[i])
            return BAD("wait[%u] is NULL", i);
    CLATTN_TRY(check_buffers(ctx, &s, n_new, k_new, v_new, positions, cb));
    return enqueue(ctx, &s, n_new, k_new, v_new, positions, cb, num_wait, wait, done);
}

clattn_status clattn_kv_append(clattn_context *ctx, const clattn_problem *cache, int n_new,
                               cl_mem k_new, cl_mem v_new, cl_mem positions,
                               const clattn_buffers *cache_buffers, cl_uint num_wait,
                               const cl_event *wait, cl_event *done)
{
    if (done)
        *done = NULL;
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    const clattn_status st = append_locked(ctx, cache, n_new, k_new, v_new, positions,
                                           cache_buffers, num_wait, wait, done);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}
