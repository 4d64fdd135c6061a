/* Validation of a call's buffers against its validated problem: device
 * buffers (sizes, context, overlaps) and host arrays (presence, contents of
 * the small index arrays). The companion of problem.c; nothing here
 * enqueues anything. */
#include <stdio.h>
#include <string.h>

#include "buffers.h"
#include "internal.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* The optional inputs a problem declares, in the order both buffer structs
 * are checked in: a buffer the problem declares must be given, and one it
 * does not must not be (a forgotten flag would otherwise ignore the
 * caller's data). A new input is one line here. */
enum { NUM_OPTIONAL = 10 };

/* Storage formats whose values need a scales buffer. */
static int has_scales(const clattn_kv_storage *st)
{
    return st->format == CLATTN_KV_INT8 || st->format == CLATTN_KV_INT4 ||
           st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2;
}

static clattn_status check_declared(clattn_context *ctx, const clattn_problem *p,
                                    const void *const given[NUM_OPTIONAL])
{
    const struct {
        const char *name, *field;
        int want;
    } decl[NUM_OPTIONAL] = {
        {"bias", "bias.enabled", p->bias.enabled},
        {"bool_mask", "bool_mask.enabled", p->bool_mask.enabled},
        {"sinks", "sinks", p->sinks},
        {"alibi_slopes", "alibi", p->alibi},
        {"kv_start", "kv_start", p->kv_start},
        {"cu_seqlens_q", "varlen", p->varlen},
        {"cu_seqlens_kv", "varlen", p->varlen},
        {"block_table", "paged.enabled", p->paged.enabled},
        {"k_scales", "k_storage.format", has_scales(&p->k_storage)},
        {"v_scales", "v_storage.format", has_scales(&p->v_storage)},
    };
    for (int i = 0; i < NUM_OPTIONAL; ++i) {
        if (decl[i].want && !given[i])
            return BAD("buffers.%s is NULL but problem.%s enables it", decl[i].name,
                       decl[i].field);
        if (!decl[i].want && given[i])
            return BAD("buffers.%s is given but problem.%s %s", decl[i].name, decl[i].field,
                       i < 8 ? "is 0" : "has no scales");
    }
    return CLATTN_OK;
}

/* Inputs that exclude each other. */
static clattn_status check_exclusive(clattn_context *ctx, const clattn_problem *p, int mask,
                                     int kv_lens)
{
    if (mask && p->bias.enabled)
        return BAD("buffers.mask and buffers.bias are both given: pass one additive mask");
    if (kv_lens && p->varlen)
        return BAD("buffers.kv_lens cannot be combined with varlen (cu_seqlens_kv gives the "
                   "lengths)");
    return CLATTN_OK;
}

/* ---- device buffers ------------------------------------------------------ */

typedef struct {
    const char *name;
    cl_mem mem, root; /* root: the buffer a sub-buffer was made from */
    size_t offset;    /* of mem inside root */
    size_t bytes;     /* what the problem touches, from mem's start */
} region;

static clattn_status check_buffer(clattn_context *ctx, region *r, const char *name, cl_mem m,
                                  int64_t bytes)
{
    r->name = name;
    r->mem = m;
    r->bytes = (size_t)bytes;
    cl_context owner = NULL;
    size_t size = 0;
    cl_mem parent = NULL;
    size_t offset = 0;
    if (clGetMemObjectInfo(m, CL_MEM_CONTEXT, sizeof owner, &owner, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(m, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL) !=
            CL_SUCCESS ||
        clGetMemObjectInfo(m, CL_MEM_OFFSET, sizeof offset, &offset, NULL) != CL_SUCCESS)
        return BAD("buffers.%s is not a valid cl_mem", name);
    if (owner != ctx->cl_ctx)
        return BAD("buffers.%s belongs to another cl_context than the clattn context's", name);
    if ((uint64_t)size < (uint64_t)bytes)
        return BAD("buffers.%s is %zu bytes but the problem needs %lld", name, size,
                   (long long)bytes);
    r->root = parent ? parent : m;
    r->offset = parent ? offset : 0;
    return CLATTN_OK;
}

static int overlap(const region *a, const region *b)
{
    if (!a->mem || !b->mem || a->root != b->root)
        return 0;
    return a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
}

clattn_status clattn__check_buffers(clattn_context *ctx, const clattn__shape *s,
                                   const clattn_buffers *buf)
{
    if (!buf)
        return BAD("buffers is NULL");
    const clattn_problem *p = &s->p;
    const char *required[4] = {"q", "k", "v", "o"};
    const cl_mem mems[4] = {buf->q, buf->k, buf->v, buf->o};
    for (int i = 0; i < 4; ++i)
        if (!mems[i])
            return BAD("buffers.%s is NULL", required[i]);
    for (size_t i = 0; i < sizeof buf->reserved / sizeof buf->reserved[0]; ++i)
        if (buf->reserved[i])
            return BAD("buffers.reserved[%zu] must be NULL", i);
    const void *given[NUM_OPTIONAL] = {
        buf->bias,          buf->bool_mask,   buf->sinks,   buf->alibi_slopes, buf->kv_start,
        buf->cu_seqlens_q,  buf->cu_seqlens_kv, buf->block_table, buf->k_scales, buf->v_scales};
    CLATTN_TRY(check_declared(ctx, p, given));
    CLATTN_TRY(check_exclusive(ctx, p, buf->mask != NULL, buf->kv_lens != NULL));

    enum { NREG = 17, O_REG = 15, LSE_REG = 16 };
    region r[NREG];
    memset(r, 0, sizeof r);
    /* the same numbers clattn_buffer_sizes_of reports */
    clattn_buffer_sizes z;
    clattn__buffer_sizes(s, &z);
    const struct {
        const char *name;
        cl_mem m;
        size_t bytes;
    } in[NREG] = {
        {"q", buf->q, z.q},
        {"k", buf->k, z.k},
        {"v", buf->v, z.v},
        {"mask", buf->mask, z.mask},
        {"kv_lens", buf->kv_lens, z.kv_lens},
        {"bias", buf->bias, z.bias},
        {"bool_mask", buf->bool_mask, z.bool_mask},
        {"sinks", buf->sinks, z.sinks},
        {"alibi_slopes", buf->alibi_slopes, z.alibi_slopes},
        {"kv_start", buf->kv_start, z.kv_start},
        {"cu_seqlens_q", buf->cu_seqlens_q, z.cu_seqlens_q},
        {"cu_seqlens_kv", buf->cu_seqlens_kv, z.cu_seqlens_kv},
        {"block_table", buf->block_table, z.block_table},
        {"k_scales", buf->k_scales, z.k_scales},
        {"v_scales", buf->v_scales, z.v_scales},
        {"o", buf->o, z.o},
        {"lse", buf->lse, z.lse},
    };
    for (int i = 0; i < NREG; ++i)
        if (in[i].m)
            CLATTN_TRY(check_buffer(ctx, &r[i], in[i].name, in[i].m, (int64_t)in[i].bytes));
    /* Outputs may not share bytes with anything else the call touches. */
    for (int out = O_REG; out <= LSE_REG; ++out)
        for (int i = 0; i < NREG; ++i)
            if (i != out && !(out == LSE_REG && i == O_REG) && overlap(&r[out], &r[i]))
                return BAD("buffers.%s overlaps the bytes of buffers.%s", r[out].name,
                           r[i].name);
    return CLATTN_OK;
}

/* ---- host arrays --------------------------------------------------------- */

/* Each given host array against the bytes the problem touches in it. */
static clattn_status check_host_sizes(clattn_context *ctx, const clattn__shape *s,
                                      const clattn_host_buffers *h, const float *probs)
{
    clattn_buffer_sizes need;
    clattn__buffer_sizes(s, &need);
    const clattn_buffer_sizes *got = h->sizes;
#define CLATTN_HOST_SIZE(f, ptr)                                                          \
    {#f, (ptr) != NULL, got->f, need.f}
    const struct {
        const char *name;
        int given;
        size_t have, need;
    } arr[] = {
        CLATTN_HOST_SIZE(q, h->q),
        CLATTN_HOST_SIZE(k, h->k),
        CLATTN_HOST_SIZE(v, h->v),
        CLATTN_HOST_SIZE(o, h->o),
        CLATTN_HOST_SIZE(lse, h->lse),
        CLATTN_HOST_SIZE(mask, h->mask),
        CLATTN_HOST_SIZE(kv_lens, h->kv_lens),
        CLATTN_HOST_SIZE(bias, h->bias),
        CLATTN_HOST_SIZE(bool_mask, h->bool_mask),
        CLATTN_HOST_SIZE(sinks, h->sinks),
        CLATTN_HOST_SIZE(alibi_slopes, h->alibi_slopes),
        CLATTN_HOST_SIZE(kv_start, h->kv_start),
        CLATTN_HOST_SIZE(cu_seqlens_q, h->cu_seqlens_q),
        CLATTN_HOST_SIZE(cu_seqlens_kv, h->cu_seqlens_kv),
        CLATTN_HOST_SIZE(block_table, h->block_table),
        CLATTN_HOST_SIZE(k_scales, h->k_scales),
        CLATTN_HOST_SIZE(v_scales, h->v_scales),
        CLATTN_HOST_SIZE(probs, probs),
    };
#undef CLATTN_HOST_SIZE
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; ++i)
        if (arr[i].given && arr[i].have < arr[i].need)
            return BAD("buffers.%s holds %zu bytes (buffers.sizes->%s), the problem touches %zu",
                       arr[i].name, arr[i].have, arr[i].name, arr[i].need);
    return CLATTN_OK;
}

clattn_status clattn__check_host_buffers(clattn_context *ctx, const clattn__shape *s,
                                const clattn_host_buffers *h, const float *probs)
{
    if (!h)
        return BAD("buffers is NULL");
    if (!h->q)
        return BAD("buffers.q is NULL");
    if (!h->k)
        return BAD("buffers.k is NULL");
    if (!h->v)
        return BAD("buffers.v is NULL");
    const clattn_problem *p = &s->p;
    for (size_t i = 0; i < sizeof h->reserved / sizeof h->reserved[0]; ++i)
        if (h->reserved[i])
            return BAD("buffers.reserved[%zu] must be NULL", i);
    if (h->sizes)
        CLATTN_TRY(check_host_sizes(ctx, s, h, probs));
    const void *given[NUM_OPTIONAL] = {h->bias,          h->bool_mask,     h->sinks,
                                       h->alibi_slopes,  h->kv_start,      h->cu_seqlens_q,
                                       h->cu_seqlens_kv, h->block_table,   h->k_scales,
                                       h->v_scales};
    CLATTN_TRY(check_declared(ctx, p, given));
    CLATTN_TRY(check_exclusive(ctx, p, h->mask != NULL, h->kv_lens != NULL));
    const int whole_kv = s->tile.whole_seq_kv; /* key positions are the whole's */
    const struct {
        const char *name;
        const int32_t *v;
    } lens[2] = {{"kv_lens", h->kv_lens}, {"kv_start", h->kv_start}};
    for (int i = 0; i < 2; ++i)
        for (int b = 0; lens[i].v && b < p->batch; ++b)
            if (lens[i].v[b] < 0 || lens[i].v[b] > whole_kv)
                return BAD("%s[%d] = %d is outside 0..seq_kv (%d)", lens[i].name, b,
                           (int)lens[i].v[b], whole_kv);
    /* The pages each sequence's keys live in must be in the pool. */
    for (int b = 0; p->paged.enabled && b < p->batch; ++b) {
        const int len = h->kv_lens ? h->kv_lens[b] : p->seq_kv;
        const int used = (len + p->paged.page_size - 1) / p->paged.page_size;
        for (int i = 0; i < used; ++i) {
            const int32_t pg = h->block_table[(int64_t)b * p->paged.max_pages_per_seq + i];
            if (pg < 0 || pg >= p->paged.num_pages)
                return BAD("block_table[%d][%d] = %d is outside 0..num_pages-1 (%d pages)", b,
                           i, (int)pg, p->paged.num_pages);
        }
    }
    if (p->varlen) {
        const struct {
            const char *name;
            const int32_t *cu;
            int total, max;
            const char *max_name;
        } cus[2] = {{"cu_seqlens_q", h->cu_seqlens_q, p->total_q, p->seq_q, "seq_q"},
                    {"cu_seqlens_kv", h->cu_seqlens_kv, p->total_kv, p->seq_kv, "seq_kv"}};
        for (int i = 0; i < 2; ++i) {
            if (cus[i].cu[0] != 0)
                return BAD("%s[0] must be 0 (got %d)", cus[i].name, (int)cus[i].cu[0]);
            for (int b = 0; b < p->batch; ++b) {
                const int64_t len = (int64_t)cus[i].cu[b + 1] - cus[i].cu[b];
                if (len < 0)
                    return BAD("%s decreases at entry %d (%d after %d)", cus[i].name, b + 1,
                               (int)cus[i].cu[b + 1], (int)cus[i].cu[b]);
                if (len > cus[i].max)
                    return BAD("%s: sequence %d has %lld tokens, more than %s (%d)",
                               cus[i].name, b, (long long)len, cus[i].max_name, cus[i].max);
            }
            if (cus[i].cu[p->batch] > cus[i].total)
                return BAD("%s[%d] = %d passes the total (%d)", cus[i].name, p->batch,
                           (int)cus[i].cu[p->batch], cus[i].total);
        }
    }
    return CLATTN_OK;
}
