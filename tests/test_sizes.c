/*
 * clattn_buffer_sizes_of against sizes worked out here from clattn.h's
 * layouts (tests/reference.c's extents, the scale layouts written in the
 * header), and against clattn_forward itself: buffers of exactly those sizes
 * are accepted, one byte less is refused naming the buffer.
 */
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "harness.h"
#include "reference.h"

static size_t float_bytes(clattn_kv_format f, clattn_dtype dtype)
{
    switch (f) {
    case CLATTN_KV_DEFAULT:
        return ref_dtype_size(dtype);
    case CLATTN_KV_F32:
        return 4;
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        return 2;
    default:
        return 1; /* quantized extents count bytes already */
    }
}

/* Scale bytes of one K or V pool, from the header's numbering of rows. */
static size_t scale_bytes(const clattn_problem *n, const clattn_kv_storage *st, int dims)
{
    const size_t sdt = st->scale_dtype == CLATTN_F16 ? 2 : 4;
    const int vl = n->varlen, pg = n->paged.enabled;
    const size_t rows = (size_t)n->kv_heads *
                        (pg   ? (size_t)n->paged.num_pages * (size_t)n->paged.page_size
                         : vl ? (size_t)n->total_kv
                              : (size_t)n->batch * (size_t)n->seq_kv);
    const size_t groups = st->group ? (size_t)(dims / st->group) : 1;
    switch (st->format) {
    case CLATTN_KV_INT8:
        return rows * groups * sdt;
    case CLATTN_KV_INT4:
        return rows * groups * 2 * sdt;
    case CLATTN_KV_FP8_E4M3:
    case CLATTN_KV_FP8_E5M2:
        return (st->per_head ? (size_t)n->kv_heads : 1) * sdt;
    default:
        return 0;
    }
}

static clattn_buffer_sizes expected(const clattn_problem *p)
{
    clattn_problem n;
    ref_normalize(p, &n);
    int64_t q, k, v, o;
    ref_tensor_extents(p, &q, &k, &v, &o);
    const size_t es = ref_dtype_size(n.dtype);
    clattn_buffer_sizes e = {0};
    e.q = (size_t)q * es;
    e.o = (size_t)o * es;
    e.k = (size_t)k * float_bytes(n.k_storage.format, n.dtype);
    e.v = (size_t)v * float_bytes(n.v_storage.format, n.dtype);
    e.lse = (size_t)n.heads * (n.varlen ? (size_t)n.total_q : (size_t)n.batch * n.seq_q) * 4;
    e.mask = ((size_t)(n.batch - 1) * n.mask_batch_stride +
              (size_t)(n.heads - 1) * n.mask_head_stride + (size_t)n.seq_q * n.seq_kv) * 4;
    e.kv_lens = e.kv_start = (size_t)n.batch * 4;
    e.sinks = e.alibi_slopes = (size_t)n.heads * 4;
    e.cu_seqlens_q = e.cu_seqlens_kv = ((size_t)n.batch + 1) * 4;
    if (n.bias.enabled)
        e.bias = (size_t)ref_mask_extent(&n, &n.bias.strides) * (n.bias.dtype == CLATTN_F32 ? 4 : 2);
    if (n.bool_mask.enabled)
        e.bool_mask = (size_t)ref_mask_extent(&n, &n.bool_mask.strides);
    if (n.paged.enabled)
        e.block_table = (size_t)n.batch * n.paged.max_pages_per_seq * 4;
    e.k_scales = scale_bytes(&n, &n.k_storage, n.head_dim);
    e.v_scales = scale_bytes(&n, &n.v_storage, n.head_dim_v);
    e.probs = (size_t)n.batch * n.heads * n.seq_q * n.seq_kv * 4;
    return e;
}

static clattn_problem problem_base(void)
{
    clattn_problem p = {0};
    p.batch = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = 3;
    p.seq_kv = 37;
    p.head_dim = 64;
    p.dtype = CLATTN_F32;
    return p;
}

/* The problems compared: plain, strided, every storage family, paged,
 * varlen, masks. run: also checked against clattn_forward. */
static int make_problem(int i, clattn_problem *p, int *run)
{
    *p = problem_base();
    *run = 0;
    switch (i) {
    case 0:
        *run = 1;
        return 1;
    case 1: /* BSHD views with gaps, fp16, head_dim_v != head_dim */
        p->dtype = CLATTN_F16;
        p->head_dim_v = 40;
        p->q_strides = (clattn_strides){3 * 4 * 80, 80, 4 * 80};
        p->k_strides = (clattn_strides){37 * 2 * 70, 70, 2 * 70};
        p->v_strides = (clattn_strides){37 * 2 * 48, 48, 2 * 48};
        p->o_strides = (clattn_strides){3 * 4 * 50, 50, 4 * 50};
        return 1;
    case 2:
        p->k_storage = (clattn_kv_storage){CLATTN_KV_INT8, 32, CLATTN_F16, 0};
        p->v_storage = (clattn_kv_storage){CLATTN_KV_INT4, 0, CLATTN_F32, 0};
        *run = 1;
        return 1;
    case 3:
        p->k_storage = (clattn_kv_storage){CLATTN_KV_Q8_0, 0, 0, 0};
        p->v_storage = (clattn_kv_storage){CLATTN_KV_Q4_0, 0, 0, 0};
        p->k_strides = (clattn_strides){37 * 2 * 70, 70, 2 * 70}; /* bytes, even */
        return 1;
    case 4:
        p->k_storage = (clattn_kv_storage){CLATTN_KV_FP8_E4M3, 0, CLATTN_F32, 1};
        p->v_storage = (clattn_kv_storage){CLATTN_KV_FP8_E5M2, 0, CLATTN_F16, 0};
        p->dtype = CLATTN_BF16;
        return 1;
    case 5: /* paged, int4 groups */
        p->paged = (clattn_paging){1, 16, 7, 3};
        p->k_storage = (clattn_kv_storage){CLATTN_KV_INT4, 32, CLATTN_F16, 0};
        p->v_storage = (clattn_kv_storage){CLATTN_KV_F16, 0, 0, 0};
        *run = 1;
        return 1;
    case 6: /* varlen */
        p->varlen = 1;
        p->total_q = 5;
        p->total_kv = 50;
        p->k_storage = (clattn_kv_storage){CLATTN_KV_INT8, 0, CLATTN_F32, 0};
        return 1;
    case 7: /* broadcast fp16 bias, padded bool mask, 0.1 mask strides */
        p->bias = (clattn_mask_layout){1, CLATTN_F16, {40, 0, 0}};
        p->bool_mask = (clattn_mask_layout){1, 0, {4 * 3 * 64, 3 * 64, 64}};
        p->mask_batch_stride = 3 * 37;
        return 1;
    default:
        return 0;
    }
}

static int same_sizes(const clattn_buffer_sizes *a, const clattn_buffer_sizes *b, char *what,
                      size_t n)
{
#define T_FIELD(f)                                                                         \
    if (a->f != b->f) {                                                                    \
        snprintf(what, n, #f ": %zu, expected %zu", a->f, b->f);                           \
        return 0;                                                                          \
    }
    T_FIELD(q) T_FIELD(k) T_FIELD(v) T_FIELD(o) T_FIELD(lse) T_FIELD(mask) T_FIELD(kv_lens)
    T_FIELD(bias) T_FIELD(bool_mask) T_FIELD(sinks) T_FIELD(alibi_slopes) T_FIELD(kv_start)
    T_FIELD(cu_seqlens_q) T_FIELD(cu_seqlens_kv) T_FIELD(block_table) T_FIELD(k_scales)
    T_FIELD(v_scales) T_FIELD(probs)
#undef T_FIELD
    return 1;
}

static cl_mem zeroed(cl_context c, cl_command_queue q, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE, bytes, NULL, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu): %d", bytes, (int)err);
    const unsigned char zero = 0;
    if (m)
        T_CL(clEnqueueFillBuffer(q, m, &zero, 1, 0, bytes, 0, NULL, NULL));
    return m;
}

/* Buffers of exactly the reported sizes run; each of the given ones made
 * one byte shorter is refused by name. */
static void check_forward(clattn_context *ctx, const clattn_problem *p, const clattn_buffer_sizes *z)
{
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    typedef struct {
        const char *name;
        size_t bytes;
        cl_mem *slot;
    } use;
    use used[8];
    clattn_buffers b = {0};
    int n = 0;
#define T_USE(f)                                                                           \
    used[n++] = (use){#f, z->f, &b.f};
    T_USE(q) T_USE(k) T_USE(v) T_USE(o) T_USE(lse)
    if (z->k_scales)
        T_USE(k_scales)
    if (z->v_scales)
        T_USE(v_scales)
    if (z->block_table)
        T_USE(block_table)
#undef T_USE
    for (int i = 0; i < n; ++i)
        *used[i].slot = zeroed(c, q, used[i].bytes);
    clattn_status st = clattn_forward(ctx, p, &b, 0, NULL, NULL);
    T_CHECK(st == CLATTN_OK, "exact sizes refused: %s", clattn_last_error(ctx));
    T_CL(clFinish(q));
    for (int i = 0; i < n; ++i) {
        cl_mem full = *used[i].slot;
        cl_int err;
        cl_buffer_region r = {0, used[i].bytes - 1};
        *used[i].slot = clCreateSubBuffer(full, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                          &r, &err);
        T_CHECK(err == CL_SUCCESS, "clCreateSubBuffer: %d", (int)err);
        char want[64];
        snprintf(want, sizeof want, "buffers.%s", used[i].name);
        st = clattn_forward(ctx, p, &b, 0, NULL, NULL);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), want),
                "%s one byte short: %s: %s", used[i].name, clattn_status_string(st),
                clattn_last_error(ctx));
        clReleaseMemObject(*used[i].slot);
        *used[i].slot = full;
    }
    for (int i = 0; i < n; ++i)
        clReleaseMemObject(*used[i].slot);
}

void case_buffer_sizes(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    clattn_problem p;
    int run, checked = 0;
    for (int i = 0; make_problem(i, &p, &run); ++i) {
        clattn_buffer_sizes got, want = expected(&p);
        memset(&got, 0xa5, sizeof got);
        clattn_status st = clattn_buffer_sizes_of(ctx, &p, &got);
        char what[128];
        T_CHECK(st == CLATTN_OK, "problem %d: %s", i, clattn_last_error(ctx));
        if (st == CLATTN_OK)
            T_CHECK(same_sizes(&got, &want, what, sizeof what), "problem %d: %s", i, what);
        if (st == CLATTN_OK && run)
            check_forward(ctx, &p, &got);
        ++checked;
    }
    T_CHECK(checked == 8, "%d problems checked", checked);

    /* Refusals: a bad problem names its field and leaves the sizes alone. */
    clattn_buffer_sizes keep;
    memset(&keep, 0x5c, sizeof keep);
    clattn_buffer_sizes z = keep;
    p = problem_base();
    p.k_storage = (clattn_kv_storage){CLATTN_KV_INT8, 48, CLATTN_F32, 0};
    clattn_status st = clattn_buffer_sizes_of(ctx, &p, &z);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "k_storage.group"),
            "bad group: %s: %s", clattn_status_string(st), clattn_last_error(ctx));
    T_CHECK(t_same_bytes(&z, &keep, sizeof z), "sizes written on a refused problem");
    p = problem_base();
    st = clattn_buffer_sizes_of(ctx, &p, NULL);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "sizes"),
            "NULL sizes: %s: %s", clattn_status_string(st), clattn_last_error(ctx));
    st = clattn_buffer_sizes_of(ctx, NULL, &z);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "problem"),
            "NULL problem: %s: %s", clattn_status_string(st), clattn_last_error(ctx));
    T_CHECK(clattn_buffer_sizes_of(NULL, &p, &z) == CLATTN_ERR_INVALID_ARGUMENT,
            "NULL context accepted");
    T_CHECK(t_same_bytes(&z, &keep, sizeof z), "sizes written on a refused call");
    clattn_context_destroy(ctx);
}

/* clattn_host_buffers.sizes: with exact sizes the host calls run; each array
 * one byte short is refused by name before anything is read or written (O,
 * LSE and the probabilities stay as they were). */
void case_host_sizes(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    clattn_problem p = problem_base();
    p.sinks = 1;
    p.bias = (clattn_mask_layout){1, CLATTN_F32, {0, 0, 40}};
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_KV_LENS | T_WITH_LSE | T_WITH_SINKS | T_WITH_BIAS, 7) != 0) {
        clattn_context_destroy(ctx);
        return;
    }
    clattn_buffer_sizes need;
    T_CHECK(clattn_buffer_sizes_of(ctx, &p, &need) == CLATTN_OK, "sizes: %s",
            clattn_last_error(ctx));
    clattn_host_buffers hb = t_tensors_host(&t);
    clattn_buffer_sizes z = need;
    hb.sizes = &z;
    t_tensors_poison(&t);
    T_CHECK(clattn_forward_host(ctx, &p, &hb) == CLATTN_OK, "exact sizes refused: %s",
            clattn_last_error(ctx));
    t_verify("host_sizes", &t, t_tolerance_for(p.dtype));

    const size_t probs_n = need.probs / sizeof(float);
    float *probs = malloc(need.probs);
    float *probs_before = malloc(need.probs);
    void *o_before = malloc((size_t)t.o_n * t.esz);
    float *lse_before = malloc((size_t)t.lse_n * sizeof(float));
    if (!probs || !probs_before || !o_before || !lse_before) {
        T_FAIL("out of memory");
        goto out;
    }
    for (size_t i = 0; i < probs_n; ++i)
        probs_before[i] = probs[i] = -7.0f;
    T_CHECK(clattn_attention_weights_host(ctx, &p, &hb, probs) == CLATTN_OK,
            "weights with exact sizes: %s", clattn_last_error(ctx));
    struct {
        const char *name;
        size_t *field;
    } shorten[] = {{"buffers.q", &z.q},         {"buffers.k", &z.k},
                   {"buffers.v", &z.v},         {"buffers.o", &z.o},
                   {"buffers.lse", &z.lse},     {"buffers.kv_lens", &z.kv_lens},
                   {"buffers.sinks", &z.sinks}, {"buffers.bias", &z.bias},
                   {"buffers.probs", &z.probs}};
    for (size_t i = 0; i < sizeof shorten / sizeof shorten[0]; ++i) {
        z = need;
        *shorten[i].field -= 1;
        t_tensors_poison(&t);
        memcpy(o_before, t.o, (size_t)t.o_n * t.esz);
        memcpy(lse_before, t.lse, (size_t)t.lse_n * sizeof(float));
        for (size_t e = 0; e < probs_n; ++e)
            probs[e] = -7.0f;
        const int weights = shorten[i].field == &z.probs;
        clattn_status st = weights ? clattn_attention_weights_host(ctx, &p, &hb, probs)
                                   : clattn_forward_host(ctx, &p, &hb);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT &&
                    strstr(clattn_last_error(ctx), shorten[i].name),
                "%s one byte short: %s: %s", shorten[i].name, clattn_status_string(st),
                clattn_last_error(ctx));
        T_CHECK(t_same_bytes(o_before, t.o, (size_t)t.o_n * t.esz) &&
                    t_same_bytes(lse_before, t.lse, (size_t)t.lse_n * sizeof(float)) &&
                    t_same_bytes(probs_before, probs, need.probs),
                "%s short: outputs written", shorten[i].name);
    }
    /* sizes of arrays not given are ignored */
    z = need;
    z.mask = z.bool_mask = z.kv_start = z.block_table = 0;
    T_CHECK(clattn_forward_host(ctx, &p, &hb) == CLATTN_OK, "unused sizes read: %s",
            clattn_last_error(ctx));
out:
    free(probs);
    free(probs_before);
    free(o_before);
    free(lse_before);
    t_tensors_free(&t);
    clattn_context_destroy(ctx);
}
