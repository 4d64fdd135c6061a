/* Problem validation: every check names the field it rejects. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "feature_table.h"
#include "internal.h"
#include "problem.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* a * b into *r; 0 on overflow. Operands are non-negative. */
static int mul_ok(int64_t a, int64_t b, int64_t *r)
{
    if (a != 0 && b > INT64_MAX / a)
        return 0;
    *r = a * b;
    return 1;
}

static int add_ok(int64_t a, int64_t b, int64_t *r)
{
    if (b > INT64_MAX - a)
        return 0;
    *r = a + b;
    return 1;
}

/* Packed strides of [n0][n1][n2][n3]; 0 if a product overflows. */
static int packed(int64_t n1, int64_t n2, int64_t n3, clattn_strides *s)
{
    s->seq = n3;
    return mul_ok(n2, n3, &s->head) && mul_ok(n1, s->head, &s->batch);
}

/* The offsets of a 4-d layout: dimension x has n[x] elements at stride
 * st[x] (dn[x] names it), stride 1 first. Sorted by stride, each dimension of
 * extent > 1 must step past all the offsets the smaller ones reach: then no
 * two elements coincide. With broadcast, a zero stride is allowed (it reads
 * the same elements again). *extent = 1 + the largest offset. */
static clattn_status check_layout(struct clattn_context *ctx, const char *label,
                                  const int64_t n[4], const int64_t st[4],
                                  const char *const dn[4], int broadcast, int64_t *extent)
{
    int order[4] = {0, 1, 2, 3};
    for (int a = 1; a < 4; ++a)
        for (int b = a; b > 0 && st[order[b]] < st[order[b - 1]]; --b) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    int64_t span = 0; /* largest offset reached so far */
    for (int a = 0; a < 4; ++a) {
        int x = order[a];
        if (n[x] <= 1 || (broadcast && st[x] == 0))
            continue;
        if (st[x] <= span)
            return BAD("%s: the %s stride %lld overlaps the elements of the smaller "
                       "dimensions (needs %s> %lld)",
                       label, dn[x], (long long)st[x], broadcast ? "0 or " : "",
                       (long long)span);
        int64_t step;
        if (!mul_ok(n[x] - 1, st[x], &step) || !add_ok(span, step, &span))
            return BAD("%s: offsets overflow 64 bits", label);
    }
    if (!add_ok(span, 1, extent))
        return BAD("%s: offsets overflow 64 bits", label);
    return CLATTN_OK;
}

/* Validates a view [n0][n1][n2][n3] with strides s (dim stride 1): strides
 * non-negative, no two elements at one offset, extent within int64. */
static clattn_status check_view(struct clattn_context *ctx, const char *name,
                                const clattn_strides *s, int64_t n0, int64_t n1, int64_t n2,
                                int64_t n3, int64_t *extent)
{
    if (s->batch < 0 || s->head < 0 || s->seq < 0)
        return BAD("%s_strides: negative stride (batch %lld, head %lld, seq %lld)", name,
                   (long long)s->batch, (long long)s->head, (long long)s->seq);
    const int64_t n[4] = {n3, n2, n1, n0};
    const int64_t st[4] = {1, s->seq, s->head, s->batch};
    const char *const dn[4] = {"dim", "seq", "head", "batch"};
    char label[32];
    snprintf(label, sizeof label, "%s_strides", name);
    return check_layout(ctx, label, n, st, dn, 0, extent);
}

/* Offsets of a mask [batch][heads][seq_q][seq_kv] with the keys contiguous:
 * zero strides broadcast; the others may not overlap (as check_view, the
 * broadcast dimensions left out). */
static clattn_status check_mask(struct clattn_context *ctx, const char *name,
                                const clattn_mask_layout *m, const clattn_problem *p,
                                int64_t *extent)
{
    *extent = 0;
    if (m->enabled != 0 && m->enabled != 1)
        return BAD("%s.enabled must be 0 or 1 (got %d)", name, m->enabled);
    if (!m->enabled) {
        if (m->dtype != 0 || m->strides.batch || m->strides.head || m->strides.row)
            return BAD("%s: dtype and strides are set but %s.enabled is 0", name, name);
        return CLATTN_OK;
    }
    if (!strcmp(name, "bool_mask") && m->dtype != 0)
        return BAD("bool_mask.dtype must be 0 (the mask is uint8; got %d)", (int)m->dtype);
    if (m->dtype != CLATTN_F32 && m->dtype != CLATTN_F16 && m->dtype != CLATTN_BF16)
        return BAD("%s.dtype %d is not a clattn_dtype", name, (int)m->dtype);
    const clattn_mask_strides *st = &m->strides;
    if (st->batch < 0 || st->head < 0 || st->row < 0)
        return BAD("%s.strides: negative stride (batch %lld, head %lld, row %lld)", name,
                   (long long)st->batch, (long long)st->head, (long long)st->row);
    /* clattn.h states it for every seq_q: check_layout skips a row
     * dimension of extent 1, so seq_q == 1 would let it through. */
    if (st->row != 0 && st->row < p->seq_kv)
        return BAD("%s.strides.row %lld is below seq_kv (%d): a row holds all its keys", name,
                   (long long)st->row, p->seq_kv);
    const int64_t n[4] = {p->seq_kv, p->seq_q, p->heads, p->batch};
    const int64_t sd[4] = {1, st->row, st->head, st->batch};
    const char *const dn[4] = {"key", "row", "head", "batch"};
    char label[32];
    snprintf(label, sizeof label, "%s.strides", name);
    return check_layout(ctx, label, n, sd, dn, 1, extent);
}

/* ---- K and V storage (clattn_kv_format) and paging --------------------- */

int clattn__kv_unit_bytes(clattn_kv_format f, clattn_dtype dtype)
{
    switch (f) {
    case CLATTN_KV_DEFAULT:
        return dtype == CLATTN_F32 ? 4 : 2;
    case CLATTN_KV_F32:
        return 4;
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        return 2;
    default:
        return 1;
    }
}

int64_t clattn__kv_scale_row_bytes(const clattn_kv_storage *st, int dims)
{
    if (st->format != CLATTN_KV_INT8 && st->format != CLATTN_KV_INT4)
        return 0;
    const int64_t groups = st->group ? dims / st->group : 1;
    const int64_t sdt = st->scale_dtype == CLATTN_F16 ? 2 : 4;
    return groups * (st->format == CLATTN_KV_INT4 ? 2 : 1) * sdt;
}

/* Units of one row of `dims` channels: elements of a float format, bytes
 * of the others. */
int64_t clattn__kv_row_units(clattn_kv_format f, int dims)
{
    switch (f) {
    case CLATTN_KV_INT4:
        return dims / 2;
    case CLATTN_KV_Q8_0:
        return (int64_t)dims / 32 * 34;
    case CLATTN_KV_Q4_0:
        return (int64_t)dims / 32 * 18;
    default:
        return dims;
    }
}

/* The kernels' K_FMT: 0 when the storage is the problem's dtype anyway. */
static int kv_code(clattn_kv_format f, clattn_dtype dtype)
{
    const int same = (f == CLATTN_KV_F32 && dtype == CLATTN_F32) ||
                     (f == CLATTN_KV_F16 && dtype == CLATTN_F16) ||
                     (f == CLATTN_KV_BF16 && dtype == CLATTN_BF16);
    return same ? 0 : (int)f;
}

static clattn_status check_storage(struct clattn_context *ctx, const char *name,
                                   const clattn_kv_storage *st, int dims)
{
    const clattn_kv_format f = st->format;
    if ((int)f < CLATTN_KV_DEFAULT || (int)f > CLATTN_KV_FP8_E5M2)
        return BAD("%s.format %d is not a clattn_kv_format", name, (int)f);
    const int grouped = f == CLATTN_KV_INT8 || f == CLATTN_KV_INT4;
    const int fp8 = f == CLATTN_KV_FP8_E4M3 || f == CLATTN_KV_FP8_E5M2;
    if (!grouped && st->group != 0)
        return BAD("%s.group is for INT8 and INT4 storage (got %d)", name, st->group);
    if (grouped && st->group != 0 && st->group != 32 && st->group != 64 && st->group != 128)
        return BAD("%s.group must be 0 (the whole row), 32, 64 or 128 (got %d)", name,
                   st->group);
    if (grouped && st->group != 0 && dims % st->group != 0)
        return BAD("%s.group %d does not divide the row's %d channels", name, st->group, dims);
    if (!grouped && !fp8 && st->scale_dtype != 0)
        return BAD("%s.scale_dtype is for INT8, INT4 and FP8 storage (got %d)", name,
                   (int)st->scale_dtype);
    if ((grouped || fp8) && st->scale_dtype != CLATTN_F32 && st->scale_dtype != CLATTN_F16)
        return BAD("%s.scale_dtype must be F32 or F16 (got %d)", name, (int)st->scale_dtype);
    if (!fp8 && st->per_head != 0)
        return BAD("%s.per_head is for FP8 storage (got %d)", name, st->per_head);
    if (fp8 && st->per_head != 0 && st->per_head != 1)
        return BAD("%s.per_head must be 0 or 1 (got %d)", name, st->per_head);
    if (f == CLATTN_KV_INT4 && dims % 2 != 0)
        return BAD("%s: INT4 storage needs an even number of channels (got %d)", name, dims);
    if ((f == CLATTN_KV_Q8_0 || f == CLATTN_KV_Q4_0) && dims % 32 != 0)
        return BAD("%s: %s storage needs channels in whole blocks of 32 (got %d)", name,
                   f == CLATTN_KV_Q8_0 ? "Q8_0" : "Q4_0", dims);
    return CLATTN_OK;
}

static clattn_status check_paging(struct clattn_context *ctx, const clattn_problem *p)
{
    const clattn_paging *g = &p->paged;
    if (g->enabled != 0 && g->enabled != 1)
        return BAD("paged.enabled must be 0 or 1 (got %d)", g->enabled);
    if (!g->enabled) {
        if (g->page_size || g->num_pages || g->max_pages_per_seq)
            return BAD("paged: page_size, num_pages and max_pages_per_seq are set but "
                       "paged.enabled is 0");
        return CLATTN_OK;
    }
    if (g->page_size < 1 || g->page_size > 256 || (g->page_size & (g->page_size - 1)))
        return BAD("paged.page_size must be a power of two in 1..256 (got %d)", g->page_size);
    if (g->num_pages < 1)
        return BAD("paged.num_pages must be positive (got %d)", g->num_pages);
    if (g->max_pages_per_seq < 1)
        return BAD("paged.max_pages_per_seq must be positive (got %d)", g->max_pages_per_seq);
    if ((int64_t)p->seq_kv > (int64_t)g->max_pages_per_seq * g->page_size)
        return BAD("seq_kv %d exceeds paged.max_pages_per_seq * page_size (%d * %d)", p->seq_kv,
                   g->max_pages_per_seq, g->page_size);
    if (p->varlen)
        return BAD("paged K/V cannot be combined with varlen (pages are found per sequence "
                   "through the block table)");
    return CLATTN_OK;
}

/* K or V: its view in storage units, its bytes and its scales' bytes. */
static clattn_status kv_tensor(struct clattn_context *ctx, const char *name, clattn_problem *p,
                               const clattn_kv_storage *st, clattn_strides *strides, int dims,
                               int64_t *extent, int64_t *bytes, int64_t *scale_bytes)
{
    CLATTN_TRY(check_storage(ctx, name[0] == 'k' ? "k_storage" : "v_storage", st, dims));
    const int eb = clattn__kv_unit_bytes(st->format, p->dtype);
    const int64_t row = clattn__kv_row_units(st->format, dims);
    const int pg = p->paged.enabled, vl = p->varlen;
    const int64_t n0 = pg ? p->paged.num_pages : vl ? 1 : p->batch;
    const int64_t n2 = pg ? p->paged.page_size : vl ? p->total_kv : p->seq_kv;
    const int64_t n1 = p->kv_heads;
    const int is_packed = strides->batch == 0 && strides->head == 0 && strides->seq == 0;
    if (is_packed && vl) {
        strides->head = row;
        strides->seq = n1 * row;
    } else if (is_packed && !packed(n1, n2, row, strides)) {
        return BAD("%s: packed size overflows 64 bits", name);
    }
    if (vl && strides->batch != 0)
        return BAD("%s_strides.batch must be 0 with varlen (tokens are found through "
                   "cu_seqlens; got %lld)",
                   name, (long long)strides->batch);
    if ((st->format == CLATTN_KV_Q8_0 || st->format == CLATTN_KV_Q4_0) &&
        (strides->batch % 2 || strides->head % 2 || strides->seq % 2))
        return BAD("%s_strides must be even for %s storage (its fp16 scales are 2-byte "
                   "aligned)",
                   name, st->format == CLATTN_KV_Q8_0 ? "Q8_0" : "Q4_0");
    CLATTN_TRY(check_view(ctx, name, strides, n0, n1, n2, row, extent));
    if (*extent > INT64_MAX / eb)
        return BAD("%s: its size in bytes overflows 64 bits", name);
    *bytes = *extent * eb;

    /* Scales: per row and group (INT8, INT4 pairs) or per tensor / head. */
    int64_t rows;
    if (!mul_ok(n0 * n1, n2, &rows))
        return BAD("%s: scale rows overflow 64 bits", name);
    const int64_t row_scales = clattn__kv_scale_row_bytes(st, dims);
    *scale_bytes = 0;
    if (row_scales && !mul_ok(rows, row_scales, scale_bytes))
        return BAD("%s's scales overflow 64 bits", name);
    if (st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2)
        *scale_bytes = (int64_t)(st->per_head ? p->kv_heads : 1) *
                       (st->scale_dtype == CLATTN_F16 ? 2 : 4);
    return CLATTN_OK;
}

static void kv_layout(const clattn_problem *p, clattn__kv_layout *kv)
{
    memset(kv, 0, sizeof *kv);
    kv->k_fmt = (unsigned char)kv_code(p->k_storage.format, p->dtype);
    kv->v_fmt = (unsigned char)kv_code(p->v_storage.format, p->dtype);
    kv->k_sdt = (unsigned char)p->k_storage.scale_dtype;
    kv->v_sdt = (unsigned char)p->v_storage.scale_dtype;
    if (p->k_storage.format == CLATTN_KV_INT8 || p->k_storage.format == CLATTN_KV_INT4)
        kv->k_group = (short)(p->k_storage.group ? p->k_storage.group : p->head_dim);
    if (p->v_storage.format == CLATTN_KV_INT8 || p->v_storage.format == CLATTN_KV_INT4)
        kv->v_group = (short)(p->v_storage.group ? p->v_storage.group : p->head_dim_v);
    kv->k_ph = (unsigned char)p->k_storage.per_head;
    kv->v_ph = (unsigned char)p->v_storage.per_head;
    kv->paged = (unsigned char)p->paged.enabled;
}

void clattn__shape_set_mask(clattn__shape *s, int has_mask, int has_kv_lens)
{
    s->has_mask = has_mask;
    s->has_kv_lens = has_kv_lens;
    if (has_mask) {
        s->bias_dtype = CLATTN_F32;
        s->bias_strides.batch = s->p.mask_batch_stride;
        s->bias_strides.head = s->p.mask_head_stride;
        s->bias_strides.row = s->tile.whole_seq_kv; /* rows hold the whole's keys */
    }
}

clattn_status clattn__problem_normalize(struct clattn_context *ctx, const clattn_problem *in,
                                        clattn__shape *out)
{
    if (!in)
        return BAD("problem is NULL");
    memset(out, 0, sizeof *out);
    clattn_problem p = *in;

    if (p.batch <= 0)
        return BAD("batch must be positive (got %d)", p.batch);
    if (p.heads <= 0)
        return BAD("heads must be positive (got %d)", p.heads);
    if (p.kv_heads < 0)
        return BAD("kv_heads must be 0 (= heads) or positive (got %d)", p.kv_heads);
    if (p.kv_heads == 0)
        p.kv_heads = p.heads;
    if (p.heads % p.kv_heads != 0)
        return BAD("heads (%d) must be a multiple of kv_heads (%d)", p.heads, p.kv_heads);
    if (p.seq_q <= 0 || p.seq_q > CLATTN__MAX_SEQ)
        return BAD("seq_q must be in 1..%d (got %d)", CLATTN__MAX_SEQ, p.seq_q);
    if (p.seq_kv <= 0 || p.seq_kv > CLATTN__MAX_SEQ)
        return BAD("seq_kv must be in 1..%d (got %d)", CLATTN__MAX_SEQ, p.seq_kv);
    if (p.head_dim <= 0 || (p.head_dim > CLATTN__MAX_HEAD_DIM && p.head_dim != CLATTN__MLA_HEAD_DIM))
        return BAD("head_dim must be in 1..%d or %d (got %d)", CLATTN__MAX_HEAD_DIM,
                   CLATTN__MLA_HEAD_DIM, p.head_dim);
    if (p.head_dim_v < 0 || p.head_dim_v > CLATTN__MAX_HEAD_DIM_V)
        return BAD("head_dim_v must be 0 (= head_dim) or in 1..%d (got %d)",
                   CLATTN__MAX_HEAD_DIM_V, p.head_dim_v);
    if (p.head_dim_v == 0 && p.head_dim > CLATTN__MAX_HEAD_DIM_V)
        return BAD("head_dim_v must be given (1..%d) when head_dim is %d", CLATTN__MAX_HEAD_DIM_V,
                   p.head_dim);
    if (p.head_dim_v == 0)
        p.head_dim_v = p.head_dim;
    if (p.dtype != CLATTN_F32 && p.dtype != CLATTN_F16 && p.dtype != CLATTN_BF16)
        return BAD("dtype %d is not a clattn_dtype", (int)p.dtype);
    if (p.path != CLATTN_PATH_AUTO && p.path != CLATTN_PATH_FUSED &&
        p.path != CLATTN_PATH_THREE_STAGE && p.path != CLATTN_PATH_SPLIT_KV)
        return BAD("path %d is not a clattn_path", (int)p.path);
    if (p.causal != CLATTN_CAUSAL_NONE && p.causal != CLATTN_CAUSAL_BOTTOM_RIGHT &&
        p.causal != CLATTN_CAUSAL_TOP_LEFT)
        return BAD("causal must be 0, 1 (bottom-right) or 2 (top-left) (got %d)", p.causal);
    if (!isfinite(p.scale))
        return BAD("scale must be finite (got %g)", (double)p.scale);
    if (p.scale == 0.0f)
        p.scale = (float)(1.0 / sqrt((double)p.head_dim));
    p.windowed = p.windowed != 0;
    if (p.mask_batch_stride < 0 || p.mask_head_stride < 0)
        return BAD("mask_batch_stride and mask_head_stride must be non-negative (got %lld, "
                   "%lld)",
                   (long long)p.mask_batch_stride, (long long)p.mask_head_stride);
    int64_t bh;
    if (!mul_ok(p.batch, p.heads, &bh) || bh > INT32_MAX)
        return BAD("batch * heads (%d * %d) must fit in 32 bits", p.batch, p.heads);

    CLATTN_TRY(clattn__features_check(ctx, &p));
    /* varlen: the sequences' tokens one after another, [total][heads][dim]. */
    const int vl = p.varlen;
    struct {
        const char *name;
        clattn_strides *s;
        int64_t n1, n2, n3;
        int64_t *extent;
    } views[2] = {
        {"q", &p.q_strides, p.heads, vl ? p.total_q : p.seq_q, p.head_dim, &out->q_extent},
        {"o", &p.o_strides, p.heads, vl ? p.total_q : p.seq_q, p.head_dim_v, &out->o_extent},
    };
    for (int i = 0; i < 2; ++i) {
        clattn_strides *s = views[i].s;
        const int is_packed = s->batch == 0 && s->head == 0 && s->seq == 0;
        if (is_packed && !vl && !packed(views[i].n1, views[i].n2, views[i].n3, s))
            return BAD("%s: packed size overflows 64 bits", views[i].name);
        if (is_packed && vl) {
            s->head = views[i].n3;
            s->seq = views[i].n1 * views[i].n3;
        }
        if (vl && s->batch != 0)
            return BAD("%s_strides.batch must be 0 with varlen (tokens are found through "
                       "cu_seqlens; got %lld)",
                       views[i].name, (long long)s->batch);
        CLATTN_TRY(check_view(ctx, views[i].name, s, vl ? 1 : p.batch, views[i].n1,
                              views[i].n2, views[i].n3, views[i].extent));
    }
    CLATTN_TRY(check_paging(ctx, &p));
    CLATTN_TRY(kv_tensor(ctx, "k", &p, &p.k_storage, &p.k_strides, p.head_dim, &out->k_extent,
                         &out->k_bytes, &out->k_scale_bytes));
    CLATTN_TRY(kv_tensor(ctx, "v", &p, &p.v_storage, &p.v_strides, p.head_dim_v, &out->v_extent,
                         &out->v_bytes, &out->v_scale_bytes));
    if (p.paged.enabled) {
        out->table_elems = (int64_t)p.batch * p.paged.max_pages_per_seq;
        if (out->table_elems > INT64_MAX / 4)
            return BAD("the block table's size in bytes overflows 64 bits (batch %d * "
                       "paged.max_pages_per_seq %d)",
                       p.batch, p.paged.max_pages_per_seq);
    }
    kv_layout(&p, &out->kv);
    CLATTN_TRY(check_mask(ctx, "bias", &p.bias, &p, &out->bias_extent));
    CLATTN_TRY(check_mask(ctx, "bool_mask", &p.bool_mask, &p, &out->bmask_extent));

    /* Mask extent: (batch-1)*mbs + (heads-1)*mhs + seq_q*seq_kv. */
    int64_t a, b, c;
    if (!mul_ok(p.batch - 1, p.mask_batch_stride, &a) ||
        !mul_ok(p.heads - 1, p.mask_head_stride, &b) || !mul_ok(p.seq_q, p.seq_kv, &c) ||
        !add_ok(a, b, &a) || !add_ok(a, c, &out->mask_extent))
        return BAD("mask strides: offsets overflow 64 bits");
    int64_t lse;
    if (!mul_ok(vl ? p.heads : bh, vl ? p.total_q : p.seq_q, &lse))
        return BAD("the LSE's size overflows 64 bits");
    out->lse_elems = lse;

    out->p = p;
    out->tile.whole_seq_q = p.seq_q;
    out->tile.whole_seq_kv = p.seq_kv;
    out->group = p.heads / p.kv_heads;
    out->elem_size = p.dtype == CLATTN_F32 ? 4 : 2;
    out->bias_dtype = p.bias.dtype;
    out->bias_strides = p.bias.strides;
    /* Byte sizes must fit too (clattn.h's limit is in bytes: 16-bit
     * tensors may have twice the elements of fp32 ones). */
    const int64_t lim = INT64_MAX / (int64_t)out->elem_size, lim32 = INT64_MAX / 4;
    const int64_t lim_bias = INT64_MAX / (p.bias.dtype == CLATTN_F32 ? 4 : 2);
    /* bmask_extent is bytes already (uint8), within int64 by check_layout */
    if (out->q_extent > lim || out->o_extent > lim || out->mask_extent > lim32 || out->lse_elems > lim32 ||
        out->bias_extent > lim_bias)
        return BAD("a tensor's size in bytes overflows 64 bits");
    return CLATTN_OK;
}

/* One range of a tile against the whole: first + count within 0..whole. */
static clattn_status check_range(struct clattn_context *ctx, const char *first_name, int first,
                                 const char *count_name, int count, const char *whole_name,
                                 int whole)
{
    if (count <= 0)
        return BAD("tile.%s must be positive (got %d)", count_name, count);
    if (first < 0)
        return BAD("tile.%s must be non-negative (got %d)", first_name, first);
    if ((int64_t)first + count > whole)
        return BAD("tile.%s + tile.%s (%d + %d) passes the problem's %s (%d)", first_name,
                   count_name, first, count, whole_name, whole);
    return CLATTN_OK;
}

clattn_status clattn__problem_normalize_tile(struct clattn_context *ctx, const clattn_problem *in,
                                             const clattn_tile *tile, clattn__shape *out)
{
    if (!tile)
        return BAD("tile is NULL");
    clattn__shape whole;
    CLATTN_TRY(clattn__problem_normalize(ctx, in, &whole));
    for (size_t i = 0; i < sizeof tile->reserved / sizeof tile->reserved[0]; ++i)
        if (tile->reserved[i] != 0)
            return BAD("tile.reserved[%zu] must be zero (a field of a newer clattn than this %s?)",
                       i, clattn_version());
    if (whole.p.varlen)
        return BAD("a tile of a varlen problem is not supported (split the packed batch by "
                   "sequences instead)");
    if (whole.p.paged.enabled)
        return BAD("a tile of a paged problem is not supported");
    CLATTN_TRY(check_range(ctx, "q_offset", tile->q_offset, "seq_q", tile->seq_q, "seq_q",
                           whole.p.seq_q));
    CLATTN_TRY(check_range(ctx, "kv_offset", tile->kv_offset, "seq_kv", tile->seq_kv, "seq_kv",
                           whole.p.seq_kv));
    /* The tile's own tensors: the problem with the tile's lengths (the
     * caller's strides, or packed over the tile). */
    clattn_problem tp = *in;
    tp.seq_q = tile->seq_q;
    tp.seq_kv = tile->seq_kv;
    CLATTN_TRY(clattn__problem_normalize(ctx, &tp, out));
    out->bias_extent = whole.bias_extent;
    out->bmask_extent = whole.bmask_extent;
    out->mask_extent = whole.mask_extent;
    out->tile.on = 1;
    out->tile.q_offset = tile->q_offset;
    out->tile.kv_offset = tile->kv_offset;
    out->tile.whole_seq_q = whole.p.seq_q;
    out->tile.whole_seq_kv = whole.p.seq_kv;
    return CLATTN_OK;
}
