/*
 * K and V in their own storage (clattn_kv_format) and in pages: every format
 * through every path, contiguous and paged, with the score features, against
 * the double-precision reference, which decodes each format from clattn.h's
 * description (tests/reference.c) rather than from the kernels.
 *
 * The K/V data are random valid codes (never zeros) of the format with
 * scales that keep scores near 1. Rows no query may see (keys at or past
 * kv_lens[b], pages no sequence references, the gaps of strided views) hold
 * poison that makes any value read from them NaN, so a read of a key that
 * should not be read shows up in O.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

typedef struct kv_format {
    const char *name;
    clattn_kv_storage st;
} kv_format;

static const kv_format k_formats[] = {
    {"f32", {CLATTN_KV_F32, 0, 0, 0}},
    {"f16", {CLATTN_KV_F16, 0, 0, 0}},
    {"bf16", {CLATTN_KV_BF16, 0, 0, 0}},
    {"int8/row", {CLATTN_KV_INT8, 0, CLATTN_F32, 0}},
    {"int8/g32/f16s", {CLATTN_KV_INT8, 32, CLATTN_F16, 0}},
    {"int4/g32", {CLATTN_KV_INT4, 32, CLATTN_F32, 0}},
    {"int4/row/f16s", {CLATTN_KV_INT4, 0, CLATTN_F16, 0}},
    {"q8_0", {CLATTN_KV_Q8_0, 0, 0, 0}},
    {"q4_0", {CLATTN_KV_Q4_0, 0, 0, 0}},
    {"e4m3", {CLATTN_KV_FP8_E4M3, 0, CLATTN_F32, 0}},
    {"e5m2/head/f16s", {CLATTN_KV_FP8_E5M2, 0, CLATTN_F16, 1}},
};
#define N_FORMATS ((int)(sizeof k_formats / sizeof k_formats[0]))

static int is_quantized(clattn_kv_format f) { return f >= CLATTN_KV_INT8; }

static int has_scales(const clattn_kv_storage *st)
{
    return st->format == CLATTN_KV_INT8 || st->format == CLATTN_KV_INT4 ||
           st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2;
}

/* One K or V tensor in its storage, with its scales. */
typedef struct kv_tensor {
    unsigned char *data;
    int64_t bytes;
    unsigned char *scales;
    int64_t scale_bytes;
} kv_tensor;

static size_t elem_bytes(const clattn_problem *n, clattn_kv_format f)
{
    switch (f) {
    case CLATTN_KV_DEFAULT:
        return ref_dtype_size(n->dtype);
    case CLATTN_KV_F32:
        return 4;
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        return 2;
    default:
        return 1;
    }
}

static clattn_dtype float_type(const clattn_problem *n, clattn_kv_format f)
{
    return f == CLATTN_KV_F32 ? CLATTN_F32
           : f == CLATTN_KV_F16 ? CLATTN_F16
           : f == CLATTN_KV_BF16 ? CLATTN_BF16
                                 : n->dtype;
}

static void put_scale(unsigned char *sc, clattn_dtype t, int64_t i, float v)
{
    ref_store(sc, t, i, v);
}

static void put_f16(unsigned char *p, float v)
{
    const uint16_t h = ref_f32_to_f16(v);
    p[0] = (unsigned char)(h & 0xff);
    p[1] = (unsigned char)(h >> 8);
}

/* Writes a valid random row of `dims` channels at u (storage units from
 * data) with its scales for row number `row`. */
static void fill_row(const clattn_problem *n, const clattn_kv_storage *st, int dims, kv_tensor *t,
                     int64_t off, int64_t row, int hk, t_rng *r)
{
    const int group = st->group ? st->group : dims;
    const int64_t groups = dims / group;
    unsigned char *u = t->data + off * (int64_t)elem_bytes(n, st->format);
    switch (st->format) {
    case CLATTN_KV_DEFAULT:
    case CLATTN_KV_F32:
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        for (int d = 0; d < dims; d++)
            ref_store(t->data, float_type(n, st->format), off + d,
                      (float)t_rng_uniform(r, -1.0, 1.0));
        break;
    case CLATTN_KV_INT8:
        for (int d = 0; d < dims; d++)
            u[d] = (unsigned char)(signed char)t_rng_int(r, -127, 127);
        for (int64_t g = 0; g < groups; g++)
            put_scale(t->scales, st->scale_dtype, row * groups + g,
                      (float)t_rng_uniform(r, 0.002, 0.01));
        break;
    case CLATTN_KV_INT4:
        for (int d = 0; d < dims / 2; d++)
            u[d] = (unsigned char)t_rng_int(r, 0, 255);
        for (int64_t g = 0; g < groups; g++) {
            put_scale(t->scales, st->scale_dtype, (row * groups + g) * 2,
                      (float)t_rng_uniform(r, 0.05, 0.15));
            put_scale(t->scales, st->scale_dtype, (row * groups + g) * 2 + 1,
                      (float)t_rng_uniform(r, 6.0, 9.0));
        }
        break;
    case CLATTN_KV_Q8_0:
        for (int b = 0; b < dims / 32; b++) {
            put_f16(u + b * 34, (float)t_rng_uniform(r, 0.004, 0.01));
            for (int c = 0; c < 32; c++)
                u[b * 34 + 2 + c] = (unsigned char)(signed char)t_rng_int(r, -127, 127);
        }
        break;
    case CLATTN_KV_Q4_0:
        for (int b = 0; b < dims / 32; b++) {
            put_f16(u + b * 18, (float)t_rng_uniform(r, 0.1, 0.2));
            for (int c = 0; c < 16; c++)
                u[b * 18 + 2 + c] = (unsigned char)t_rng_int(r, 0, 255);
        }
        break;
    case CLATTN_KV_FP8_E4M3:
    case CLATTN_KV_FP8_E5M2: {
        /* magnitudes up to about 15, subnormals included */
        const int top = st->format == CLATTN_KV_FP8_E4M3 ? 0x57 : 0x4b;
        for (int d = 0; d < dims; d++)
            u[d] = (unsigned char)(t_rng_int(r, 0, top) | (t_rng_int(r, 0, 1) << 7));
        (void)hk;
        break;
    }
    }
}

/* Poison for a row nothing may read: NaN values, or NaN scales where the
 * data cannot hold NaN. */
static void poison_row(const clattn_problem *n, const clattn_kv_storage *st, int dims,
                       kv_tensor *t, int64_t off, int64_t row)
{
    const int group = st->group ? st->group : dims;
    const int64_t groups = dims / group;
    unsigned char *u = t->data + off * (int64_t)elem_bytes(n, st->format);
    switch (st->format) {
    case CLATTN_KV_DEFAULT:
    case CLATTN_KV_F32:
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        for (int d = 0; d < dims; d++)
            ref_store(t->data, float_type(n, st->format), off + d, NAN);
        break;
    case CLATTN_KV_INT8:
        for (int64_t g = 0; g < groups; g++)
            put_scale(t->scales, st->scale_dtype, row * groups + g, NAN);
        break;
    case CLATTN_KV_INT4:
        for (int64_t g = 0; g < 2 * groups; g++)
            put_scale(t->scales, st->scale_dtype, row * groups * 2 + g, NAN);
        break;
    case CLATTN_KV_Q8_0:
    case CLATTN_KV_Q4_0:
        for (int b = 0; b < dims / 32; b++)
            put_f16(u + b * (st->format == CLATTN_KV_Q8_0 ? 34 : 18), NAN);
        break;
    case CLATTN_KV_FP8_E4M3:
    case CLATTN_KV_FP8_E5M2:
        memset(u, 0xff, (size_t)dims); /* NaN in both encodings */
        break;
    }
}

/* Builds K or V of normalized problem n: every row is poisoned, then the
 * rows of keys below each sequence's length get valid data. */
static int make_kv(const clattn_problem *n, const int32_t *kv_lens, const int32_t *table,
                   int is_v, kv_tensor *t, t_rng *r)
{
    const clattn_kv_storage *st = is_v ? &n->v_storage : &n->k_storage;
    const clattn_strides *sd = is_v ? &n->v_strides : &n->k_strides;
    const int dims = is_v ? n->head_dim_v : n->head_dim;
    int64_t kext, vext;
    ref_tensor_extents(n, NULL, &kext, &vext, NULL);
    t->bytes = (is_v ? vext : kext) * (int64_t)elem_bytes(n, st->format);
    const int pg = n->paged.enabled;
    const int64_t nblk = pg ? n->paged.num_pages : n->batch;
    const int64_t nrow = pg ? n->paged.page_size : n->seq_kv;
    const int group = st->group ? st->group : dims;
    const int64_t rows = nblk * n->kv_heads * nrow;
    t->scale_bytes = 0;
    if (st->format == CLATTN_KV_INT8)
        t->scale_bytes = rows * (dims / group);
    else if (st->format == CLATTN_KV_INT4)
        t->scale_bytes = rows * (dims / group) * 2;
    else if (has_scales(st))
        t->scale_bytes = st->per_head ? n->kv_heads : 1;
    t->scale_bytes *= st->scale_dtype == CLATTN_F16 ? 2 : 4;
    t->data = malloc((size_t)t->bytes);
    t->scales = t->scale_bytes ? malloc((size_t)t->scale_bytes) : NULL;
    if (!t->data || (t->scale_bytes && !t->scales)) {
        T_FAIL("out of memory");
        return -1;
    }
    /* gaps: NaN for float formats; bytes 0xff (NaN fp8, -1 int8) otherwise */
    if (is_quantized(st->format))
        memset(t->data, 0xff, (size_t)t->bytes);
    else
        t_fill_poison(t->data, float_type(n, st->format), t->bytes / (int64_t)elem_bytes(n, st->format));
    if (has_scales(st) && (st->format == CLATTN_KV_FP8_E4M3 || st->format == CLATTN_KV_FP8_E5M2))
        for (int h = 0; h < (st->per_head ? n->kv_heads : 1); h++)
            put_scale(t->scales, st->scale_dtype, h, (float)t_rng_uniform(r, 0.05, 0.15));
    for (int64_t blk = 0; blk < nblk; blk++)
        for (int hk = 0; hk < n->kv_heads; hk++)
            for (int64_t j = 0; j < nrow; j++)
                poison_row(n, st, dims, t, blk * sd->batch + hk * sd->head + j * sd->seq,
                           (blk * n->kv_heads + hk) * nrow + j);
    for (int b = 0; b < n->batch; b++) {
        const int len = kv_lens ? kv_lens[b] : n->seq_kv;
        for (int hk = 0; hk < n->kv_heads; hk++)
            for (int j = 0; j < len; j++) {
                int64_t blk = b, slot = j;
                if (pg) {
                    blk = table[(int64_t)b * n->paged.max_pages_per_seq + j / n->paged.page_size];
                    slot = j % n->paged.page_size;
                }
                fill_row(n, st, dims, t, blk * sd->batch + hk * sd->head + slot * sd->seq,
                         (blk * n->kv_heads + hk) * nrow + slot, hk, r);
            }
    }
    return 0;
}

static void kv_free(kv_tensor *t)
{
    free(t->data);
    free(t->scales);
    memset(t, 0, sizeof *t);
}

/* A block table giving each sequence its own pages in shuffled order, the
 * entries past its length garbage (out of the pool: the kernels clamp them,
 * and nothing of them may be read). Spare pages are left unreferenced. */
static int32_t *make_table(const clattn_problem *n, const int32_t *kv_lens, t_rng *r)
{
    const int mp = n->paged.max_pages_per_seq, ps = n->paged.page_size;
    int32_t *table = malloc(sizeof *table * (size_t)n->batch * mp);
    int32_t *perm = malloc(sizeof *perm * (size_t)n->paged.num_pages);
    if (!table || !perm) {
        free(table);
        free(perm);
        T_FAIL("out of memory");
        return NULL;
    }
    for (int i = 0; i < n->paged.num_pages; i++)
        perm[i] = i;
    for (int i = n->paged.num_pages - 1; i > 0; i--) {
        const int j = t_rng_int(r, 0, i), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    int next = 0;
    for (int b = 0; b < n->batch; b++) {
        const int len = kv_lens ? kv_lens[b] : n->seq_kv;
        const int used = (len + ps - 1) / ps;
        for (int i = 0; i < mp; i++)
            table[(int64_t)b * mp + i] = i < used ? perm[next++] : (i % 2 ? -7 : 1 << 30);
    }
    free(perm);
    return table;
}

static cl_mem dev_copy(cl_context c, const void *host, int64_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)bytes,
                              (void *)host, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%lld bytes) -> %d", (long long)bytes, (int)err);
    return err == CL_SUCCESS ? m : NULL;
}

/* Runs problem p (storage and paging set) on the device and checks O and
 * the LSE against the reference. flags: the harness's T_WITH_* for the
 * other inputs (kv_lens always). Returns the failed checks. */
static int run_kv(clattn_context *ctx, const char *label, const clattn_problem *p,
                  unsigned flags, uint64_t seed, int with_host)
{
    const int before = t_failures;
    /* The harness makes q, o and the feature inputs from the problem with
     * plain K/V; K and V are then replaced by storage of our own. */
    clattn_problem plain = *p;
    memset(&plain.k_storage, 0, sizeof plain.k_storage);
    memset(&plain.v_storage, 0, sizeof plain.v_storage);
    memset(&plain.paged, 0, sizeof plain.paged);
    memset(&plain.k_strides, 0, sizeof plain.k_strides);
    memset(&plain.v_strides, 0, sizeof plain.v_strides);
    t_tensors t;
    if (t_tensors_init(&t, &plain, flags | T_WITH_KV_LENS | T_WITH_LSE, seed) != 0)
        return 1;
    t.p = *p;
    ref_normalize(p, &t.n);
    t_rng r;
    t_rng_seed(&r, seed * 7919 + 1);
    int32_t *table = p->paged.enabled ? make_table(&t.n, t.kv_lens, &r) : NULL;
    kv_tensor kt = {0}, vt = {0};
    if ((p->paged.enabled && !table) || make_kv(&t.n, t.kv_lens, table, 0, &kt, &r) ||
        make_kv(&t.n, t.kv_lens, table, 1, &vt, &r))
        goto out;

    clattn_host_buffers hb = t_tensors_host(&t);
    hb.k = kt.data;
    hb.v = vt.data;
    hb.block_table = table;
    hb.k_scales = kt.scales;
    hb.v_scales = vt.scales;
    char desc[512];
    t_describe(p, &hb, desc, sizeof desc);

    clattn_status sup = clattn_supports(ctx, p);
    if (sup == CLATTN_ERR_UNSUPPORTED) {
        t_skip("%s [%s]: unsupported: %s", label, desc, clattn_last_error(ctx));
        goto out;
    }
    T_CHECK(sup == CLATTN_OK, "%s: clattn_supports -> %s: %s", label, clattn_status_string(sup),
            clattn_last_error(ctx));

    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    clattn_buffers b;
    t_tensors_poison(&t);
    T_CL(t_dev_create(c, &t, &b));
    clReleaseMemObject(b.k);
    clReleaseMemObject(b.v);
    b.k = dev_copy(c, kt.data, kt.bytes);
    b.v = dev_copy(c, vt.data, vt.bytes);
    b.block_table = table ? dev_copy(c, table, (int64_t)4 * p->batch * p->paged.max_pages_per_seq)
                          : NULL;
    b.k_scales = kt.scales ? dev_copy(c, kt.scales, kt.scale_bytes) : NULL;
    b.v_scales = vt.scales ? dev_copy(c, vt.scales, vt.scale_bytes) : NULL;
    cl_event done = NULL;
    clattn_status st = clattn_forward(ctx, p, &b, 0, NULL, &done);
    T_CHECK(st == CLATTN_OK, "%s [%s]: clattn_forward -> %s: %s", label, desc,
            clattn_status_string(st), clattn_last_error(ctx));
    if (done) {
        T_CL(clWaitForEvents(1, &done));
        clReleaseEvent(done);
    }
    T_CL(t_dev_read(q, &b, &t));
    cl_mem extra[3] = {b.block_table, b.k_scales, b.v_scales};
    b.block_table = b.k_scales = b.v_scales = NULL;
    t_dev_release(&b);
    for (int i = 0; i < 3; i++)
        if (extra[i])
            clReleaseMemObject(extra[i]);

    t_result res = {0};
    if (st == CLATTN_OK) {
        hb.o = NULL;
        hb.lse = NULL;
        res = t_verify_raw(label, p, &hb, t.o, t.o_init, t.o_alloc, t.lse, t.lse_n + T_GUARD,
                           t_tolerance_for(p->dtype));
    }
    t_log("%s %s: relL2 %.2e elem %.2f lse %.1e masked %ld/%ld  [%s]",
          t_failures != before ? "BAD " : "ok  ", label, res.rel_l2, res.elem_use, res.lse_err,
          res.masked_rows, res.rows, desc);

    /* The host API runs the same problem and refuses nothing valid. */
    if (st == CLATTN_OK && with_host) {
        clattn_host_buffers hh = hb;
        hh.o = t.o;
        hh.lse = t.lse;
        t_tensors_poison(&t);
        const clattn_status hs = clattn_forward_host(ctx, p, &hh);
        T_CHECK(hs == CLATTN_OK, "%s: clattn_forward_host -> %s: %s", label,
                clattn_status_string(hs), clattn_last_error(ctx));
        if (hs == CLATTN_OK) {
            hb.o = hb.lse = NULL;
            char hl[160];
            snprintf(hl, sizeof hl, "%s/host", label);
            t_verify_raw(hl, p, &hb, t.o, t.o_init, t.o_alloc, t.lse, t.lse_n + T_GUARD,
                         t_tolerance_for(p->dtype));
        }
    }
out:
    kv_free(&kt);
    kv_free(&vt);
    free(table);
    t_tensors_free(&t);
    return t_failures - before;
}

static clattn_problem base_problem(clattn_dtype dt, int seq_q, clattn_path path)
{
    clattn_problem p = {0};
    p.batch = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = seq_q;
    p.seq_kv = 45;
    p.head_dim = 64;
    p.dtype = dt;
    p.path = path;
    return p;
}

static const clattn_path k_paths[] = {CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                      CLATTN_PATH_SPLIT_KV};
static const int k_path_rows[] = {13, 6, 1}; /* rows-in-lanes, three-stage, decode */

/* Every format as K and V, through each path; mixed K/V formats; f16/bf16
 * queries with an fp32 and an int8 cache. */
void case_kv_formats(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    uint64_t seed = 100;
    char label[160];
    for (int f = 0; f < N_FORMATS; f++)
        for (int pi = 0; pi < 3; pi++) {
            clattn_problem p = base_problem(CLATTN_F32, k_path_rows[pi], k_paths[pi]);
            p.head_dim_v = 32 * (1 + f % 2); /* Q8_0 / Q4_0 want whole blocks */
            p.causal = pi == 0 ? CLATTN_CAUSAL_BOTTOM_RIGHT : CLATTN_CAUSAL_NONE;
            p.k_storage = p.v_storage = k_formats[f].st;
            snprintf(label, sizeof label, "kv/%s/%s", k_formats[f].name,
                     t_path_name(k_paths[pi]));
            run_kv(ctx, label, &p, 0, seed++, pi == 0); /* host API once per storage */
        }
    /* K and V in different formats; the rows-in-lanes kernel needs a split
     * of keys the vector kernel does not, so both run. */
    const int mixed[][2] = {{3, 8}, {9, 1}, {7, 5}, {10, 2}};
    for (int m = 0; m < 4; m++)
        for (int pi = 0; pi < 3; pi++) {
            clattn_problem p = base_problem(CLATTN_F32, pi == 0 ? 4 : k_path_rows[pi], k_paths[pi]);
            p.k_storage = k_formats[mixed[m][0]].st;
            p.v_storage = k_formats[mixed[m][1]].st;
            snprintf(label, sizeof label, "kv/K %s V %s/%s", k_formats[mixed[m][0]].name,
                     k_formats[mixed[m][1]].name, t_path_name(k_paths[pi]));
            run_kv(ctx, label, &p, 0, seed++, pi == 0); /* host API once per storage */
        }
    /* Wide heads: 4, 8 and 16 group scales a row (read as one vector) for
     * int8 and int4 (whose scale and zero pairs make 8, 16 and 32). */
    const int wide[][2] = {{128, 256}, {512, 128}};
    for (int w = 0; w < 2; w++)
        for (int f = 4; f <= 5; f++)
            for (int pi = 0; pi < 3; pi += 2) {
                clattn_problem p = base_problem(CLATTN_F32, k_path_rows[pi], k_paths[pi]);
                p.head_dim = wide[w][0];
                p.head_dim_v = wide[w][1];
                p.k_storage = p.v_storage = k_formats[f].st;
                snprintf(label, sizeof label, "kv/%s/D%d-%d/%s", k_formats[f].name, p.head_dim,
                         p.head_dim_v, t_path_name(k_paths[pi]));
                run_kv(ctx, label, &p, 0, seed++, 0);
            }
    /* INT4 rows the decode kernel reads in split order (pairs of vectors,
     * even and odd channels) and rows it cannot (not whole pairs at
     * 16-wide vectors: 48 and 80 channels), alone and mixed, each side
     * with its own width; paged too. */
    const int odd[][2] = {{48, 80}, {96, 48}, {80, 128}};
    for (int w = 0; w < 3; w++)
        for (int pi = 0; pi < 3; pi += 2) {
            clattn_problem p = base_problem(CLATTN_F32, k_path_rows[pi], k_paths[pi]);
            p.head_dim = odd[w][0];
            p.head_dim_v = odd[w][1];
            p.k_storage = p.v_storage = k_formats[6].st;
            if (w == 1) {
                p.paged.enabled = 1;
                p.paged.page_size = 16;
                p.paged.max_pages_per_seq = (p.seq_kv + 15) / 16;
                p.paged.num_pages = p.batch * p.paged.max_pages_per_seq + 1;
            }
            snprintf(label, sizeof label, "kv/%s/D%d-%d%s/%s", k_formats[6].name, p.head_dim,
                     p.head_dim_v, w == 1 ? "/paged16" : "", t_path_name(k_paths[pi]));
            run_kv(ctx, label, &p, 0, seed++, 0);
        }
    const clattn_dtype qdt[2] = {CLATTN_F16, CLATTN_BF16};
    for (int d = 0; d < 2; d++)
        for (int f = 0; f < 4; f += 3) {
            clattn_problem p = base_problem(qdt[d], 3, CLATTN_PATH_AUTO);
            p.k_storage = p.v_storage = k_formats[f].st;
            snprintf(label, sizeof label, "kv/%s q %s/auto", t_dtype_name(qdt[d]),
                     k_formats[f].name);
            run_kv(ctx, label, &p, 0, seed++, 1);
        }
    clattn_context_destroy(ctx);
}

/* Paged K/V: page sizes 1 to 256, the head-major pool and the token-major
 * one, shuffled tables with garbage past each length, and the features that
 * read keys by position (causal, window, ALiBi, kv_start) or per key (bool
 * mask), with sinks and softcap, through each path. */
void case_kv_paged(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    uint64_t seed = 900;
    char label[200];
    const int page_sizes[] = {1, 16, 256, 8};
    const int fmts[] = {0, 3, 8, 5};
    for (int c = 0; c < 4; c++)
        for (int pi = 0; pi < 3; pi++) {
            clattn_problem p = base_problem(CLATTN_F32, k_path_rows[pi], k_paths[pi]);
            const int ps = page_sizes[c];
            p.k_storage = p.v_storage = k_formats[fmts[c]].st;
            p.paged.enabled = 1;
            p.paged.page_size = ps;
            p.paged.max_pages_per_seq = (p.seq_kv + ps - 1) / ps + 1;
            p.paged.num_pages = p.batch * p.paged.max_pages_per_seq + 3;
            unsigned flags = 0;
            if (c == 1) { /* token-major pool: [pages][page][kv_heads][row] */
                const int64_t row = ref_kv_row_units(p.k_storage.format, p.head_dim);
                p.k_strides.seq = p.kv_heads * row;
                p.k_strides.head = row;
                p.k_strides.batch = (int64_t)ps * p.kv_heads * row;
                p.v_strides = p.k_strides;
                p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
                p.windowed = 1;
                p.window_left = 9;
                p.window_right = -1;
            } else if (c == 2) {
                p.softcap = 20.0f;
                p.sinks = 1;
                p.alibi = 1;
                flags |= T_WITH_SINKS | T_WITH_ALIBI;
            } else if (c == 3) {
                p.kv_start = 1;
                p.bool_mask.enabled = 1;
                p.bool_mask.strides.batch = p.seq_kv; /* a [B,1,1,Skv] padding mask */
                flags |= T_WITH_KV_START | T_WITH_BOOL_MASK;
            }
            snprintf(label, sizeof label, "paged/ps%d/%s/%s", ps, k_formats[fmts[c]].name,
                     t_path_name(k_paths[pi]));
            run_kv(ctx, label, &p, flags, seed++, 1);
        }
    clattn_context_destroy(ctx);
}

/* Every storage (the problem's dtype too) as K and V, contiguous, in pages
 * of 4 keys and in pages of 8 keys with a window, through each path, on a
 * tiny shape: small enough for Oclgrind, which runs it under the kernel
 * configurations of tests/CMakeLists.txt (CLATTN_PARAMS). Pages of 8 hold
 * a whole tile of the vector kernel's direct configuration there (FV_VEC
 * 8), which it reads from one table lookup; the window starts the keys
 * inside a tile. */
void case_kv_sweep(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    uint64_t seed = 5000;
    char label[160];
    for (int f = -1; f < N_FORMATS; f++)
        for (int paged = 0; paged < 3; paged++)
            for (int pi = 0; pi < 3; pi++) {
                clattn_problem p = {0};
                p.batch = 2;
                p.heads = 2;
                p.kv_heads = 1;
                p.seq_q = pi == 2 ? 1 : 3;
                p.seq_kv = 11;
                /* group scales: four a row (read as one vector) */
                p.head_dim = f >= 0 && k_formats[f].st.group ? 128 : 32;
                p.path = k_paths[pi];
                p.causal = pi == 0 ? CLATTN_CAUSAL_BOTTOM_RIGHT : CLATTN_CAUSAL_NONE;
                if (f >= 0)
                    p.k_storage = p.v_storage = k_formats[f].st;
                if (paged) {
                    p.paged.enabled = 1;
                    p.paged.page_size = paged == 1 ? 4 : 8;
                    p.paged.max_pages_per_seq = paged == 1 ? 3 : 2;
                    p.paged.num_pages = 7;
                }
                if (paged == 2) { /* rows see keys from i' - 4 on */
                    p.windowed = 1;
                    p.window_left = 4;
                    p.window_right = -1;
                }
                snprintf(label, sizeof label, "kv_sweep/%s/%s/%s", f < 0 ? "dtype" : k_formats[f].name,
                         paged == 0 ? "contiguous" : paged == 1 ? "paged4" : "paged8_window",
                         t_path_name(k_paths[pi]));
                if (t_context_between_runs(&ctx) != 0)
                    return;
                run_kv(ctx, label, &p, 0, seed++, 0);
            }
    clattn_context_destroy(ctx);
}

/* Every FP8 code decodes exactly, through each path: V is a single key
 * whose channels hold the 256 codes of the format (past 256, on the second
 * width, a tail the kernels' vector loads do not cover), so O is that row as
 * the kernels decoded it, infinities and NaNs included. Compared bit for bit
 * with the reference's decoding (tests/reference.c, from the formats'
 * definitions), NaN against NaN; O starts as a value no code decodes to. */
void case_kv_fp8_codes(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    const clattn_kv_format fmts[2] = {CLATTN_KV_FP8_E4M3, CLATTN_KV_FP8_E5M2};
    const int dvs[2] = {256, 259};
    enum { HEADS = 2, D = 64, MAX_DV = 259 };
    float q[HEADS * D], k[D], o[HEADS * MAX_DV], lse[HEADS], vscale = 1.0f;
    unsigned char v[MAX_DV];
    t_rng r;
    t_rng_seed(&r, 4242);
    for (int i = 0; i < HEADS * D; i++)
        q[i] = (float)t_rng_uniform(&r, -1.0, 1.0);
    for (int i = 0; i < D; i++)
        k[i] = (float)t_rng_uniform(&r, -1.0, 1.0);
    for (int d = 0; d < MAX_DV; d++)
        v[d] = (unsigned char)(d % 256);
    for (int f = 0; f < 2; f++)
        for (int w = 0; w < 2; w++)
            for (int pi = 0; pi < 3; pi++)
                for (int paged = 0; paged < 2; paged++) {
                    if (t_context_between_runs(&ctx) != 0)
                        return;
                    clattn_problem p = {0};
                    p.batch = 1;
                    p.heads = HEADS;
                    p.kv_heads = 1; /* the decode kernel's GQA form reads V once for both */
                    p.seq_q = 1;
                    p.seq_kv = 1;
                    p.head_dim = D;
                    p.head_dim_v = dvs[w];
                    p.dtype = CLATTN_F32;
                    p.path = k_paths[pi];
                    p.v_storage.format = fmts[f];
                    p.v_storage.scale_dtype = CLATTN_F32;
                    const int32_t table[1] = {0};
                    if (paged) {
                        p.paged.enabled = 1;
                        p.paged.page_size = 1;
                        p.paged.max_pages_per_seq = 1;
                        p.paged.num_pages = 1;
                    }
                    clattn_host_buffers hb = {0};
                    hb.q = q;
                    hb.k = k;
                    hb.v = v;
                    hb.o = o;
                    hb.lse = lse;
                    hb.v_scales = &vscale;
                    hb.block_table = paged ? table : NULL;
                    clattn_buffer_sizes sz;
                    const clattn_status ss = clattn_buffer_sizes_of(ctx, &p, &sz);
                    T_CHECK(ss == CLATTN_OK, "fp8 codes: clattn_buffer_sizes_of -> %s: %s",
                            clattn_status_string(ss), clattn_last_error(ctx));
                    if (ss != CLATTN_OK)
                        continue;
                    hb.sizes = &sz;
                    for (int i = 0; i < HEADS * MAX_DV; i++)
                        o[i] = -7777.0f;
                    const clattn_status st = clattn_forward_host(ctx, &p, &hb);
                    char label[96];
                    snprintf(label, sizeof label, "fp8_codes/%s/dv%d/%s%s",
                             f ? "e5m2" : "e4m3", dvs[w], t_path_name(k_paths[pi]),
                             paged ? "/paged" : "");
                    T_CHECK(st == CLATTN_OK, "%s: clattn_forward_host -> %s: %s", label,
                            clattn_status_string(st), clattn_last_error(ctx));
                    if (st != CLATTN_OK)
                        continue;
                    clattn_problem n;
                    ref_normalize(&p, &n);
                    int bad = 0;
                    for (int h = 0; h < HEADS; h++)
                        for (int d = 0; d < dvs[w]; d++) {
                            const float want = (float)ref_kv_value(&n, &hb, 1, 0, 0, 0, d);
                            const float got = o[h * dvs[w] + d];
                            /* -0 adds to the accumulators' +0 as +0: zeros
                             * compare without their sign */
                            const int same = isnan(want) ? isnan(got) : got == want;
                            if (!same && bad++ < 4)
                                T_CHECK(0, "%s: head %d code 0x%02x: O %a, want %a", label, h,
                                        v[d], (double)got, (double)want);
                        }
                    T_CHECK(bad == 0, "%s: %d channels decoded wrongly", label, bad);
                    /* One key: each head's LSE is its score. */
                    for (int h = 0; h < HEADS; h++) {
                        double sc = 0.0;
                        for (int d = 0; d < D; d++)
                            sc += (double)q[h * D + d] * (double)k[d];
                        sc /= sqrt((double)D);
                        T_CHECK(fabs((double)lse[h] - sc) <= 1e-5 * (1.0 + fabs(sc)),
                                "%s: head %d LSE %.9g, want %.9g", label, h, (double)lse[h], sc);
                    }
                    t_log("%s %s", bad ? "BAD " : "ok  ", label);
                }
    clattn_context_destroy(ctx);
}

static void expect_refused(clattn_context *ctx, const clattn_problem *p, const char *field)
{
    const clattn_status st = clattn_supports(ctx, p);
    const char *msg = clattn_last_error(ctx);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(msg, field),
            "expected a refusal naming %s, got %s: %s", field, clattn_status_string(st), msg);
}

/* ABI: the 1.1 fields fill what were 1.0's reserved blocks, which began at
 * the next 8-byte boundary after total_kv / cu_seqlens_kv; sizes stay. */
static void check_kv_abi(void)
{
    const size_t prb = (offsetof(clattn_problem, total_kv) + sizeof(int) + 7) / 8 * 8;
    T_CHECK(offsetof(clattn_problem, k_storage) == prb &&
                sizeof(clattn_problem) == prb + 8 * sizeof(int64_t),
            "clattn_problem: k_storage at %zu (1.0's reserved at %zu), size %zu",
            offsetof(clattn_problem, k_storage), prb, sizeof(clattn_problem));
    const size_t brb = offsetof(clattn_buffers, cu_seqlens_kv) + sizeof(cl_mem);
    T_CHECK(offsetof(clattn_buffers, block_table) == brb &&
                sizeof(clattn_buffers) == brb + 8 * sizeof(cl_mem),
            "clattn_buffers: block_table at %zu, size %zu", offsetof(clattn_buffers, block_table),
            sizeof(clattn_buffers));
    const size_t hrb = offsetof(clattn_host_buffers, cu_seqlens_kv) + sizeof(void *);
    T_CHECK(offsetof(clattn_host_buffers, block_table) == hrb &&
                sizeof(clattn_host_buffers) == hrb + 8 * sizeof(void *),
            "clattn_host_buffers: block_table at %zu, size %zu",
            offsetof(clattn_host_buffers, block_table), sizeof(clattn_host_buffers));
}

/* Storage and paging fields out of range, refused by clattn_supports. */
static void check_kv_fields_refused(clattn_context *ctx, const clattn_problem *base)
{
    const clattn_problem p = *base;
    clattn_problem x = p;
    x.k_storage.format = (clattn_kv_format)10;
    expect_refused(ctx, &x, "k_storage.format");
    x = p;
    x.v_storage.format = CLATTN_KV_INT8;
    x.v_storage.scale_dtype = CLATTN_F32;
    x.v_storage.group = 48;
    expect_refused(ctx, &x, "v_storage.group");
    x.v_storage.group = 128; /* larger than the 64 channels */
    expect_refused(ctx, &x, "v_storage.group");
    x = p;
    x.k_storage.format = CLATTN_KV_INT8;
    x.k_storage.scale_dtype = CLATTN_BF16;
    expect_refused(ctx, &x, "k_storage.scale_dtype");
    x = p;
    x.k_storage.format = CLATTN_KV_F16;
    x.k_storage.group = 32;
    expect_refused(ctx, &x, "k_storage.group");
    x = p;
    x.k_storage.format = CLATTN_KV_Q4_0;
    x.head_dim = 48;
    expect_refused(ctx, &x, "k_storage");
    x = p;
    x.v_storage.format = CLATTN_KV_INT4;
    x.v_storage.scale_dtype = CLATTN_F32;
    x.head_dim_v = 33;
    expect_refused(ctx, &x, "v_storage");
    x = p;
    x.k_storage.format = CLATTN_KV_FP8_E4M3;
    x.k_storage.scale_dtype = CLATTN_F32;
    x.k_storage.per_head = 2;
    expect_refused(ctx, &x, "k_storage.per_head");
    x = p;
    x.k_storage.format = CLATTN_KV_Q8_0;
    x.k_strides.seq = 67;
    x.k_strides.head = 67 * 45;
    x.k_strides.batch = 67 * 45 * 2;
    expect_refused(ctx, &x, "k_strides");
    x = p;
    x.paged.enabled = 1;
    x.paged.page_size = 24;
    x.paged.num_pages = 8;
    x.paged.max_pages_per_seq = 4;
    expect_refused(ctx, &x, "paged.page_size");
    x.paged.page_size = 512;
    expect_refused(ctx, &x, "paged.page_size");
    x.paged.page_size = 8;
    x.paged.max_pages_per_seq = 5; /* 40 keys < seq_kv 45 */
    expect_refused(ctx, &x, "max_pages_per_seq");
    x.paged.max_pages_per_seq = 6;
    x.paged.num_pages = 0;
    expect_refused(ctx, &x, "paged.num_pages");
    x = p;
    x.paged.page_size = 16;
    expect_refused(ctx, &x, "paged");
}

/* The paged INT8-K problem the buffer checks use. */
static clattn_problem paged_int8_problem(const clattn_problem *base)
{
    clattn_problem pg = *base;
    pg.paged.enabled = 1;
    pg.paged.page_size = 16;
    pg.paged.max_pages_per_seq = 3;
    pg.paged.num_pages = 6;
    pg.k_storage.format = CLATTN_KV_INT8;
    pg.k_storage.scale_dtype = CLATTN_F32;
    return pg;
}

/* Buffers: a paged problem without its table, scales missing or given
 * without a format that has them, short pools and tables. Nothing runs, O
 * keeps its contents. */
static void check_kv_buffers_refused(clattn_context *ctx, const clattn_problem *base)
{
    clattn_problem pg = paged_int8_problem(base);
    cl_context c = t_cl_context(ctx);
    cl_int err;
    const size_t big = 1 << 20;
    cl_mem m[8];
    for (int i = 0; i < 8; i++)
        m[i] = clCreateBuffer(c, CL_MEM_READ_WRITE, big, NULL, &err);
    cl_mem small = clCreateBuffer(c, CL_MEM_READ_WRITE, 64, NULL, &err);
    clattn_buffers b = {0};
    b.q = m[0], b.k = m[1], b.v = m[2], b.o = m[3];
    b.k_scales = m[5];
    cl_event done = (cl_event)1;
    clattn_status st = clattn_forward(ctx, &pg, &b, 0, NULL, &done);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "block_table") &&
                done == NULL,
            "a paged problem without its table: %s: %s", clattn_status_string(st),
            clattn_last_error(ctx));
    b.block_table = small; /* 2 x 3 entries need 24 bytes: fits */
    b.k_scales = NULL;
    st = clattn_forward(ctx, &pg, &b, 0, NULL, NULL);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "k_scales"),
            "INT8 K without scales: %s: %s", clattn_status_string(st), clattn_last_error(ctx));
    b.k_scales = m[5];
    b.v_scales = m[6];
    st = clattn_forward(ctx, &pg, &b, 0, NULL, NULL);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "v_scales"),
            "scales for a V without them: %s: %s", clattn_status_string(st),
            clattn_last_error(ctx));
    b.v_scales = NULL;
    b.k = small;
    st = clattn_forward(ctx, &pg, &b, 0, NULL, NULL);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "buffers.k "),
            "a short K pool: %s: %s", clattn_status_string(st), clattn_last_error(ctx));
    b.k = m[1];
    pg.paged.max_pages_per_seq = 300;
    pg.paged.num_pages = 2;
    st = clattn_forward(ctx, &pg, &b, 0, NULL, NULL);
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT && strstr(clattn_last_error(ctx), "block_table"),
            "a short block table: %s: %s", clattn_status_string(st), clattn_last_error(ctx));
    for (int i = 0; i < 8; i++)
        clReleaseMemObject(m[i]);
    clReleaseMemObject(small);
}

/* The host API refuses table entries outside the pool for the pages a
 * sequence uses, and accepts anything past its length. */
static void check_kv_host_table(clattn_context *ctx, const clattn_problem *base)
{
    clattn_problem pg = paged_int8_problem(base);
    clattn_status st;
    pg.k_storage.format = CLATTN_KV_DEFAULT;
    pg.k_storage.scale_dtype = 0;
    float *q = calloc(2 * 4 * 64, sizeof *q), *kv = calloc((size_t)6 * 2 * 16 * 64, sizeof *kv);
    float *o = calloc(2 * 4 * 64, sizeof *o);
    int32_t table[6] = {0, 1, 2, 3, 4, 9};
    int32_t lens[2] = {45, 32};
    if (q && kv && o) {
        for (int i = 0; i < 2 * 4 * 64; i++)
            o[i] = 5.0f;
        clattn_host_buffers h = {0};
        h.q = q, h.k = kv, h.v = kv, h.o = o, h.block_table = table, h.kv_lens = lens;
        st = clattn_forward_host(ctx, &pg, &h);
        T_CHECK(st == CLATTN_OK, "entries past a length are free: %s: %s",
                clattn_status_string(st), clattn_last_error(ctx));
        lens[1] = 45;
        for (int i = 0; i < 2 * 4 * 64; i++)
            o[i] = 5.0f;
        st = clattn_forward_host(ctx, &pg, &h);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT &&
                    strstr(clattn_last_error(ctx), "block_table[1][2]") && o[0] == 5.0f,
                "a used entry outside the pool: %s: %s", clattn_status_string(st),
                clattn_last_error(ctx));
    }
    free(q);
    free(kv);
    free(o);
}

/* Storage and paging fields out of range are refused by name. */
void case_kv_errors(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    check_kv_abi();
    clattn_problem p = base_problem(CLATTN_F32, 1, CLATTN_PATH_AUTO);
    /* 1.0's alignment gap may hold anything: a 1.0 program never set it */
    p.padding_ = 0x5a5a5a5a;
    T_CHECK(clattn_supports(ctx, &p) == CLATTN_OK, "padding_ is not ignored: %s",
            clattn_last_error(ctx));
    check_kv_fields_refused(ctx, &p);
    check_kv_buffers_refused(ctx, &p);
    check_kv_host_table(ctx, &p);
    clattn_context_destroy(ctx);
}
