/*
 * Invalid calls: each must return CLATTN_ERR_INVALID_ARGUMENT, leave a
 * message naming what was wrong in clattn_last_error(), and leave every
 * buffer untouched (nothing enqueued).
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

/* Whether msg contains one of the '|'-separated words, case-insensitively
 * and bounded by characters that cannot belong to an identifier. */
static int names_one_of(const char *msg, const char *words)
{
    const char *w = words;
    while (*w) {
        const char *end = strchr(w, '|');
        size_t len = end ? (size_t)(end - w) : strlen(w);
        for (const char *m = msg; *m; m++) {
            size_t i = 0;
            while (i < len && m[i] && tolower((unsigned char)m[i]) == tolower((unsigned char)w[i]))
                i++;
            if (i != len)
                continue;
            int before_ok = m == msg || !(isalnum((unsigned char)m[-1]) || m[-1] == '_');
            int after_ok = !(isalnum((unsigned char)m[len]) || m[len] == '_');
            if (before_ok && after_ok)
                return 1;
        }
        if (!end)
            break;
        w = end + 1;
    }
    return 0;
}

typedef struct env {
    clattn_context *ctx;
    cl_context c;
    cl_command_queue q;
    cl_device_id dev;
    t_tensors t; /* the valid baseline's host data */
    clattn_buffers good;
    cl_mem extra[8];
    int n_extra;
    cl_context other;
} env;

/* A buffer of n bytes holding init, or the fp32 poison pattern when init is NULL. */
static cl_mem env_buffer(env *e, cl_context c, size_t n, const void *init)
{
    void *tmp = NULL;
    if (!init) {
        tmp = malloc(n + 4);
        if (!tmp)
            return NULL;
        t_fill_poison(tmp, CLATTN_F32, (int64_t)(n / 4 + 1));
        init = tmp;
    }
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n, (void *)init, &err);
    free(tmp);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu) -> %d", n, (int)err);
    if (m && e->n_extra < 8)
        e->extra[e->n_extra++] = m;
    return m;
}

static cl_mem env_sub(env *e, cl_mem parent, size_t origin, size_t size)
{
    cl_int err = CL_SUCCESS;
    cl_buffer_region reg = {origin, size};
    cl_mem m = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &reg,
                                 &err);
    T_CHECK(err == CL_SUCCESS, "clCreateSubBuffer(%zu, %zu) -> %d", origin, size, (int)err);
    if (m && e->n_extra < 8)
        e->extra[e->n_extra++] = m;
    return m;
}

static void env_release_extra(env *e)
{
    /* sub-buffers were created after their parents: release in reverse */
    while (e->n_extra > 0)
        clReleaseMemObject(e->extra[--e->n_extra]);
}

static int env_init(env *e)
{
    memset(e, 0, sizeof *e);
    e->ctx = t_context();
    if (!e->ctx)
        return -1;
    e->c = t_cl_context(e->ctx);
    e->q = t_queue(e->ctx);
    clattn_context_get_cl(e->ctx, NULL, NULL, &e->dev);
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.seq_q = 5;
    p.seq_kv = 6;
    p.head_dim = 8;
    p.head_dim_v = 8;
    p.dtype = CLATTN_F32;
    p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
    p.mask_batch_stride = p.heads * p.mask_head_stride;
    if (t_tensors_init(&e->t, &p, T_WITH_MASK | T_WITH_KV_LENS | T_WITH_LSE, 0xe4404u) != 0)
        return -1;
    /* exact sizes, no guards: the size checks must accept exactly enough */
    e->t.o_alloc = e->t.o_n;
    cl_int err = t_dev_create(e->c, &e->t, &e->good);
    T_CHECK(err == CL_SUCCESS, "creating the baseline buffers -> %d", (int)err);
    if (err != CL_SUCCESS)
        return -1;
    /* the baseline itself must work, into a buffer of its own */
    clattn_buffers ok = e->good;
    ok.o = env_buffer(e, e->c, (size_t)e->t.o_n * 4, NULL);
    ok.lse = env_buffer(e, e->c, sizeof(float) * (size_t)e->t.lse_n, NULL);
    cl_event done = NULL;
    clattn_status st = ok.o && ok.lse ? clattn_forward(e->ctx, &p, &ok, 0, NULL, &done)
                                      : CLATTN_ERR_OPENCL;
    T_CHECK(st == CLATTN_OK, "the valid baseline problem fails: %s: %s", clattn_status_string(st),
            clattn_last_error(e->ctx));
    if (done) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    env_release_extra(e);
    return st == CLATTN_OK ? 0 : -1;
}

static void env_free(env *e)
{
    env_release_extra(e);
    t_dev_release(&e->good);
    t_tensors_free(&e->t);
    if (e->other)
        clReleaseContext(e->other);
    clattn_context_destroy(e->ctx);
}

/* One invalid call. */
typedef struct call {
    clattn_problem p;
    clattn_buffers b;
    int null_problem, null_buffers;
    cl_uint num_wait;
    const cl_event *wait;
} call;

typedef struct snapshot {
    cl_mem m[7];
    void *bytes[7];
    size_t size[7];
    int n;
} snapshot;

static void snap_take(snapshot *s, cl_command_queue q, const clattn_buffers *b)
{
    cl_mem all[7] = {b->q, b->k, b->v, b->o, b->mask, b->kv_lens, b->lse};
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 7; i++) {
        int dup = !all[i];
        for (int j = 0; j < s->n && !dup; j++)
            dup = s->m[j] == all[i];
        if (dup)
            continue;
        size_t size = 0;
        cl_context mc = NULL, qc = NULL;
        if (clGetMemObjectInfo(all[i], CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS ||
            clGetMemObjectInfo(all[i], CL_MEM_CONTEXT, sizeof mc, &mc, NULL) != CL_SUCCESS ||
            clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL) != CL_SUCCESS ||
            mc != qc)
            continue; /* another context's buffer: not readable through this queue */
        s->bytes[s->n] = malloc(size);
        if (!s->bytes[s->n])
            continue;
        T_CL(clEnqueueReadBuffer(q, all[i], CL_TRUE, 0, size, s->bytes[s->n], 0, NULL, NULL));
        s->m[s->n] = all[i];
        s->size[s->n++] = size;
    }
}

/* Number of buffers whose bytes changed since snap_take; frees the snapshot. */
static int snap_changed(snapshot *s, cl_command_queue q)
{
    int changed = 0;
    for (int i = 0; i < s->n; i++) {
        void *now = malloc(s->size[i]);
        if (now) {
            T_CL(clEnqueueReadBuffer(q, s->m[i], CL_TRUE, 0, s->size[i], now, 0, NULL, NULL));
            changed += memcmp(now, s->bytes[i], s->size[i]) != 0;
            free(now);
        }
        free(s->bytes[i]);
    }
    s->n = 0;
    return changed;
}

/* Runs one invalid call and checks status, message and untouched buffers;
 * problem_level 1: clattn_supports must say INVALID_ARGUMENT too, 2: must
 * not say OK. */
static void expect_invalid(env *e, const char *name, const char *words, const call *cl,
                           int problem_level)
{
    int before = t_failures;
    snapshot snap;
    snap_take(&snap, e->q, &cl->b);
    /* Not NULL, never an event: a failure must overwrite it with NULL, not
     * just leave *done alone. */
    static char not_an_event;
    cl_event const sentinel = (cl_event)(void *)&not_an_event;
    cl_event done = sentinel;
    clattn_status st = clattn_forward(e->ctx, cl->null_problem ? NULL : &cl->p,
                                      cl->null_buffers ? NULL : &cl->b, cl->num_wait, cl->wait,
                                      &done);
    /* the message lives only until the next call on the context: keep a copy */
    char msg_copy[512];
    const char *last = clattn_last_error(e->ctx);
    snprintf(msg_copy, sizeof msg_copy, "%s", last ? last : "(NULL)");
    const char *msg = last ? msg_copy : NULL;
    T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s: clattn_forward -> %d (%s), expected %s; "
            "message: \"%s\"", name, (int)st, clattn_status_string(st),
            clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT), msg ? msg : "(NULL)");
    T_CHECK(st == CLATTN_OK ? done != NULL && done != sentinel : done == NULL,
            "%s: clattn_forward -> %s left *done = %p (%s)", name, clattn_status_string(st),
            (void *)done, done == sentinel ? "untouched" : "want NULL on failure, an event on "
                                                           "success");
    if (done == sentinel)
        done = NULL;
    if (st == CLATTN_OK && done)
        clWaitForEvents(1, &done);
    if (done)
        clReleaseEvent(done);
    if (st != CLATTN_OK) {
        T_CHECK(msg && msg[0], "%s: clattn_last_error() is empty after the failure", name);
        T_CHECK(msg && names_one_of(msg, words), "%s: message \"%s\" names none of \"%s\"", name,
                msg ? msg : "(NULL)", words);
    }
    T_CL(clFinish(e->q));
    int changed = snap_changed(&snap, e->q);
    T_CHECK(changed == 0, "%s: %d buffers were modified by a failed call", name, changed);
    if (problem_level == 1 && !cl->null_problem) {
        clattn_status ss = clattn_supports(e->ctx, &cl->p);
        T_CHECK(ss == CLATTN_ERR_INVALID_ARGUMENT, "%s: clattn_supports -> %s, expected %s", name,
                clattn_status_string(ss), clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT));
    } else if (problem_level == 2) {
        clattn_status ss = clattn_supports(e->ctx, &cl->p);
        T_CHECK(ss != CLATTN_OK, "%s: clattn_supports -> OK for a problem that cannot run", name);
    }
    t_log("%s %-28s -> %-18s \"%s\"", t_failures != before ? "BAD " : "ok  ", name,
          clattn_status_string(st), msg ? msg : "(NULL)");
}

static void base_call(env *e, call *cl, int idx)
{
    memset(cl, 0, sizeof *cl);
    cl->p = e->t.p;
    cl->p.path = t_all_paths[idx % 4]; /* validation must not depend on the path */
    cl->b = e->good;
}

/* Breaks problem p as case i of case_errors_problem's list says. */
static void break_problem(int i, clattn_problem *p)
{
    const int64_t I64 = INT64_MAX;
    const int Sq = p->seq_q, Skv = p->seq_kv, D = p->head_dim, Dv = p->head_dim_v;
    const int H = p->heads, Hkv = p->kv_heads;
    switch (i) {
    case 0: p->batch = 0; break;
    case 1: p->batch = -1; break;
    case 2: p->heads = 0; break;
    case 3: p->seq_q = 0; break;
    case 4: p->seq_kv = -3; break;
    case 5: p->head_dim = 0; break;
    case 6: p->head_dim = 513; break; /* 1..512 or 576 since 1.0 */
    case 7: p->head_dim_v = 513; break;
    case 8: p->head_dim_v = -1; break;
    case 9: p->heads = 4; p->kv_heads = 3; break;
    case 10: p->kv_heads = -2; break;
    case 11: p->kv_heads = 8; break;
    case 12: p->scale = NAN; break;
    case 13: p->scale = INFINITY; break;
    case 14: p->scale = -INFINITY; break;
    case 15: p->dtype = (clattn_dtype)3; break;
    case 16: p->dtype = (clattn_dtype)-1; break;
    case 17: p->path = (clattn_path)4; break;
    case 18: p->path = (clattn_path)-1; break;
    case 19: p->causal = 3; break;
    case 20: p->causal = -1; break;
    case 21:
        p->o_strides.seq = Dv - 1;
        p->o_strides.head = (int64_t)Sq * Dv;
        p->o_strides.batch = (int64_t)H * Sq * Dv;
        break;
    case 22:
        p->q_strides.batch = 0;
        p->q_strides.head = (int64_t)Sq * D;
        p->q_strides.seq = D;
        break;
    case 23: /* head h, row s at (h + s) * D: heads and rows collide */
        p->k_strides.batch = (int64_t)(Hkv + Skv) * D;
        p->k_strides.head = D;
        p->k_strides.seq = D;
        break;
    case 24:
        p->v_strides.batch = (int64_t)Hkv * Skv * Dv;
        p->v_strides.head = (int64_t)Skv * Dv;
        p->v_strides.seq = -Dv;
        break;
    case 25:
        p->q_strides.batch = I64 - 3;
        p->q_strides.head = (int64_t)Sq * D;
        p->q_strides.seq = D;
        break;
    case 26: /* fits in elements, not in bytes */
        p->k_strides.batch = (int64_t)1 << 61;
        p->k_strides.head = (int64_t)Skv * D;
        p->k_strides.seq = D;
        break;
    case 27: /* (heads - 1) * head stride overflows */
        p->o_strides.batch = Dv;
        p->o_strides.head = (int64_t)1 << 62;
        p->o_strides.seq = (int64_t)2 * Dv;
        break;
    case 28:
        p->batch = INT_MAX;
        p->heads = INT_MAX;
        p->kv_heads = INT_MAX;
        p->seq_q = INT_MAX;
        p->seq_kv = INT_MAX;
        p->head_dim = 256;
        p->head_dim_v = 256;
        p->mask_batch_stride = 0;
        p->mask_head_stride = 0;
        break;
    case 29: /* each product of two fits; the whole tensor does not */
        p->batch = 1 << 20;
        p->heads = 1 << 20;
        p->kv_heads = 1 << 20;
        p->seq_q = 1 << 20;
        p->seq_kv = 1 << 20;
        p->head_dim = 128;
        p->head_dim_v = 128;
        p->mask_batch_stride = 0;
        p->mask_head_stride = 0;
        break;
    case 30: p->head_dim = INT_MAX; break;
    case 31: /* every size within its own limit; q has 2^68 elements */
        p->batch = 1 << 15;
        p->heads = 1 << 15;
        p->kv_heads = 1 << 15;
        p->seq_q = 1 << 30;
        p->seq_kv = 1 << 30;
        p->head_dim = 256;
        p->head_dim_v = 256;
        p->mask_batch_stride = 0;
        p->mask_head_stride = 0;
        break;
    }
}

/* NULL context everywhere, and clattn_supports without a problem. */
static void check_null_context(env *e)
{
    clattn_host_buffers hb = t_tensors_host(&e->t);
    float probs[1];
    T_CHECK(clattn_forward(NULL, &e->t.p, &e->good, 0, NULL, NULL) == CLATTN_ERR_INVALID_ARGUMENT,
            "clattn_forward(NULL ctx) is not INVALID_ARGUMENT");
    T_CHECK(clattn_forward_host(NULL, &e->t.p, &hb) == CLATTN_ERR_INVALID_ARGUMENT,
            "clattn_forward_host(NULL ctx) is not INVALID_ARGUMENT");
    T_CHECK(clattn_attention_weights_host(NULL, &e->t.p, &hb, probs) ==
                CLATTN_ERR_INVALID_ARGUMENT,
            "clattn_attention_weights_host(NULL ctx) is not INVALID_ARGUMENT");
    T_CHECK(clattn_supports(NULL, &e->t.p) == CLATTN_ERR_INVALID_ARGUMENT,
            "clattn_supports(NULL ctx) is not INVALID_ARGUMENT");
    T_CHECK(clattn_supports(e->ctx, NULL) == CLATTN_ERR_INVALID_ARGUMENT,
            "clattn_supports(NULL problem) is not INVALID_ARGUMENT");
    t_log("ok   null_context (forward, forward_host, weights_host, supports)");
}

void case_errors_problem(void)
{
    env e;
    if (env_init(&e) != 0) {
        if (e.ctx)
            env_free(&e);
        return;
    }
    static const char *const names[] = {
        "batch_zero",        "batch_negative",      "heads_zero",          "seq_q_zero",
        "seq_kv_negative",   "head_dim_zero",       "head_dim_513",        "head_dim_v_513",
        "head_dim_v_negative", "heads_not_multiple", "kv_heads_negative",  "kv_heads_above_heads",
        "scale_nan",         "scale_inf",           "scale_neg_inf",       "dtype_3",
        "dtype_negative",    "path_4",              "path_negative",       "causal_3",
        "causal_negative",   "o_seq_stride_lt_dv",  "q_zero_batch_stride", "k_heads_overlap",
        "v_negative_stride", "q_stride_sum_overflow", "k_stride_bytes_overflow",
        "o_stride_product_overflow", "huge_sizes_overflow", "huge_sizes_2",
        "head_dim_huge", "huge_sizes_3"};
    static const char *const words[] = {
        "batch", "batch", "heads", "seq_q", "seq_kv", "head_dim", "head_dim", "head_dim_v",
        "head_dim_v", "kv_heads|heads", "kv_heads", "kv_heads|heads", "scale", "scale", "scale",
        "dtype", "dtype", "path", "path", "causal", "causal",
        "o_strides|o_strides.seq|stride|overlap|overlaps",
        "q_strides|q_strides.batch|stride|overlap|overlaps",
        "k_strides|k_strides.head|stride|overlap|overlaps",
        "v_strides|v_strides.seq|stride|negative",
        "q_strides|q_strides.batch|stride|overflow|overflows|q",
        "k_strides|k_strides.batch|stride|overflow|overflows|k",
        "o_strides|o_strides.head|stride|overflow|overflows|o",
        "overflow|overflows|size|batch|heads|seq_q|seq_kv|large",
        "overflow|overflows|size|batch|heads|seq_q|seq_kv|large", "head_dim",
        "overflow|overflows|size|bytes|q|k|v|o|mask|large"};
    (void)sizeof(char[sizeof names / sizeof names[0] == sizeof words / sizeof words[0] ? 1 : -1]);
    const int n = (int)(sizeof names / sizeof names[0]);
    for (int i = 0; i < n; i++) {
        call cl;
        base_call(&e, &cl, i);
        break_problem(i, &cl.p);
        /* k's bytes overflow int64 though its elements do not: not OK, at least */
        expect_invalid(&e, names[i], words[i], &cl, i == 26 ? 2 : 1);
        env_release_extra(&e);
    }

    check_null_context(&e);
    env_free(&e);
}

void case_errors_buffers(void)
{
    env e;
    if (env_init(&e) != 0) {
        if (e.ctx)
            env_free(&e);
        return;
    }
    const t_tensors *t = &e.t;
    const size_t qb = (size_t)t->q_n * 4, kb = (size_t)t->k_n * 4, vb = (size_t)t->v_n * 4;
    const size_t ob = (size_t)t->o_n * 4, mb = (size_t)t->mask_n * 4;
    const size_t lb = (size_t)t->lse_n * 4, kvb = (size_t)t->n.batch * 4;
    cl_uint align_bits = 0;
    clGetDeviceInfo(e.dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
    const size_t align = align_bits >= 8 ? align_bits / 8 : 128;
    static const char *const names[] = {
        "null_problem",      "null_buffers",        "null_q",            "null_k",
        "null_v",            "null_o",              "q_too_small",       "k_too_small",
        "v_too_small",       "o_too_small",         "mask_too_small",    "mask_negative_stride",
        "mask_stride_overflow", "lse_too_small",    "kv_lens_too_small", "o_is_q",
        "o_is_k",            "o_is_v",              "o_is_mask",         "o_is_lse",
        "o_subbuffer_overlaps_q", "o_is_parent_of_q", "q_from_other_context",
        "wait_list_null"};
    static const char *const words[] = {
        "problem", "buffers", "q", "k", "v", "o", "q", "k", "v", "o", "mask",
        "mask|mask_head_stride|mask_batch_stride", "mask|mask_batch_stride|overflow", "lse",
        "kv_lens", "o|alias|aliases|overlap|overlaps", "o|alias|aliases|overlap|overlaps",
        "o|alias|aliases|overlap|overlaps", "o|alias|aliases|overlap|overlaps",
        "o|alias|aliases|overlap|overlaps", "o|alias|aliases|overlap|overlaps",
        "o|alias|aliases|overlap|overlaps", "q|context", "wait|num_wait|event|events"};
    (void)sizeof(char[sizeof names / sizeof names[0] == sizeof words / sizeof words[0] ? 1 : -1]);
    const int n = (int)(sizeof names / sizeof names[0]);
    for (int i = 0; i < n; i++) {
        call cl;
        base_call(&e, &cl, i);
        clattn_buffers *b = &cl.b;
        const size_t big = qb + kb + vb + ob + mb + lb;
        cl_mem x;
        int skip = 0;
        switch (i) {
        case 0: cl.null_problem = 1; break;
        case 1: cl.null_buffers = 1; break;
        case 2: b->q = NULL; break;
        case 3: b->k = NULL; break;
        case 4: b->v = NULL; break;
        case 5: b->o = NULL; break;
        case 6: b->q = env_buffer(&e, e.c, qb - 4, NULL); break;
        case 7: b->k = env_buffer(&e, e.c, kb - 4, NULL); break;
        case 8: b->v = env_buffer(&e, e.c, vb - 1, NULL); break;
        case 9: b->o = env_buffer(&e, e.c, ob - 4, NULL); break;
        case 10: b->mask = env_buffer(&e, e.c, mb - 4, NULL); break;
        case 11: cl.p.mask_head_stride = -1; break;
        case 12: cl.p.mask_batch_stride = INT64_MAX - 5; break;
        case 13: b->lse = env_buffer(&e, e.c, lb - 4, NULL); break;
        case 14: b->kv_lens = env_buffer(&e, e.c, kvb - 4, t->kv_lens); break;
        case 15: b->o = b->q; break;
        case 16: x = env_buffer(&e, e.c, big, NULL); b->o = x; b->k = x; break;
        case 17: x = env_buffer(&e, e.c, big, NULL); b->o = x; b->v = x; break;
        case 18: x = env_buffer(&e, e.c, big, NULL); b->o = x; b->mask = x; break;
        case 19: x = env_buffer(&e, e.c, big, NULL); b->o = x; b->lse = x; break;
        case 20: /* two sub-buffers of one parent whose byte ranges intersect */
            if (align >= qb) {
                skip = 1;
                break;
            }
            x = env_buffer(&e, e.c, align + qb + ob, NULL);
            b->q = x ? env_sub(&e, x, 0, qb) : NULL;
            b->o = x ? env_sub(&e, x, align, ob) : NULL;
            break;
        case 21:
            x = env_buffer(&e, e.c, qb + ob, NULL);
            b->q = x ? env_sub(&e, x, 0, qb) : NULL;
            b->o = x;
            break;
        case 22: {
            cl_int err = CL_SUCCESS;
            if (!e.other)
                e.other = clCreateContext(NULL, 1, &e.dev, NULL, NULL, &err);
            T_CHECK(err == CL_SUCCESS && e.other, "clCreateContext(other) -> %d", (int)err);
            b->q = e.other ? env_buffer(&e, e.other, qb, NULL) : NULL;
            break;
        }
        case 23: cl.num_wait = 1; cl.wait = NULL; break;
        }
        if (skip) {
            t_skip("%s: base address alignment %zu too large for this shape", names[i], align);
            continue;
        }
        /* the buffer-level checks: clattn_supports does not look at buffers */
        expect_invalid(&e, names[i], words[i], &cl, 0);
        env_release_extra(&e);
    }
    env_free(&e);
}

/* Host API: kv_lens out of range, NULL pointers and bad problems leave host
 * outputs as they were. */
void case_errors_host(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 3;
    p.heads = 2;
    p.seq_q = 4;
    p.seq_kv = 7;
    p.head_dim = 16;
    p.dtype = CLATTN_F16;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_KV_LENS | T_WITH_LSE, 0x4057u) != 0) {
        clattn_context_destroy(ctx);
        return;
    }
    const size_t ob = (size_t)t.o_alloc * t.esz, lb = sizeof(float) * (size_t)(t.lse_n + T_GUARD);
    void *lse0 = malloc(lb);
    size_t np = (size_t)p.batch * p.heads * p.seq_q * p.seq_kv;
    float *probs = malloc(sizeof(float) * np), *probs0 = malloc(sizeof(float) * np);
    if (!lse0 || !probs || !probs0) {
        T_FAIL("out of host memory");
        goto out;
    }
    memcpy(lse0, t.lse, lb);
    for (size_t i = 0; i < np; i++)
        probs0[i] = NAN;

    static const char *const names[] = {"kv_lens_minus_one", "kv_lens_above_seq_kv", "null_q",
                                        "null_o",            "null_buffers",         "batch_zero",
                                        "null_problem"};
    static const char *const words[] = {"kv_lens", "kv_lens", "q", "o", "buffers", "batch",
                                        "problem"};
    (void)sizeof(char[sizeof names / sizeof names[0] == sizeof words / sizeof words[0] ? 1 : -1]);
    for (int i = 0; i < 7; i++)
        for (int api = 0; api < 2; api++) { /* forward_host, attention_weights_host */
            int before = t_failures;
            t_tensors_poison(&t);
            memcpy(probs, probs0, sizeof(float) * np);
            int32_t lens_saved = t.kv_lens[1];
            clattn_problem pp = p;
            clattn_host_buffers hb = t_tensors_host(&t);
            const clattn_problem *arg_p = &pp;
            const clattn_host_buffers *arg_b = &hb;
            switch (i) {
            case 0: t.kv_lens[1] = -1; break;
            case 1: t.kv_lens[1] = p.seq_kv + 1; break;
            case 2: hb.q = NULL; break;
            case 3:
                if (api == 1) /* o is optional for the weights */
                    continue;
                hb.o = NULL;
                break;
            case 4: arg_b = NULL; break;
            case 5: pp.batch = 0; break;
            case 6: arg_p = NULL; break;
            }
            clattn_status st = api == 0 ? clattn_forward_host(ctx, arg_p, arg_b)
                                        : clattn_attention_weights_host(ctx, arg_p, arg_b, probs);
            char msg_copy[512];
            const char *last = clattn_last_error(ctx);
            snprintf(msg_copy, sizeof msg_copy, "%s", last ? last : "(NULL)");
            const char *msg = last ? msg_copy : NULL;
            const char *fn = api == 0 ? "clattn_forward_host" : "clattn_attention_weights_host";
            T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s/%s -> %s, expected %s; message \"%s\"",
                    names[i], fn, clattn_status_string(st),
                    clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT), msg ? msg : "(NULL)");
            if (st != CLATTN_OK) {
                T_CHECK(msg && msg[0], "%s/%s: clattn_last_error() is empty", names[i], fn);
                T_CHECK(msg && names_one_of(msg, words[i]), "%s/%s: message \"%s\" names none of "
                        "\"%s\"", names[i], fn, msg ? msg : "(NULL)", words[i]);
            }
            T_CHECK(t_same_bytes(t.o, t.o_init, ob), "%s/%s: host O was modified", names[i], fn);
            T_CHECK(t_same_bytes(t.lse, lse0, lb), "%s/%s: host LSE was modified", names[i], fn);
            T_CHECK(t_same_bytes(probs, probs0, sizeof(float) * np),
                    "%s/%s: probabilities were written", names[i], fn);
            t_log("%s %s/%s -> %s \"%s\"", t_failures != before ? "BAD " : "ok  ", names[i], fn,
                  clattn_status_string(st), msg ? msg : "(NULL)");
            t.kv_lens[1] = lens_saved;
        }
    {
        clattn_host_buffers hb = t_tensors_host(&t);
        clattn_status st = clattn_attention_weights_host(ctx, &p, &hb, NULL);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT,
                "clattn_attention_weights_host(probs NULL) -> %s, expected %s",
                clattn_status_string(st), clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT));
    }
    /* the same tensors with valid lengths still work afterwards */
    t_check_run(ctx, "after_errors", &t, 1);
out:
    free(lse0);
    free(probs);
    free(probs0);
    t_tensors_free(&t);
    clattn_context_destroy(ctx);
}
