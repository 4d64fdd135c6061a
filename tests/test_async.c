/*
 * Asynchrony and concurrency: wait lists with a user event, a caller's
 * out-of-order queue with chained calls, and several threads on one context.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cases.h"
#include "harness.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static cl_int event_status(cl_event e)
{
    cl_int es = -12345;
    T_CL(clGetEventInfo(e, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof es, &es, NULL));
    return es;
}

static void base_problem(clattn_problem *p, clattn_path path)
{
    memset(p, 0, sizeof *p);
    p->batch = 2;
    p->heads = 4;
    p->kv_heads = 2;
    p->seq_q = 16;
    p->seq_kv = 24;
    p->head_dim = 32;
    p->dtype = CLATTN_F32;
    p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
    p->path = path;
}

void case_async_user_event(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    cl_context c = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    cl_device_id dev = NULL;
    clattn_context_get_cl(ctx, NULL, NULL, &dev);
    cl_int err = CL_SUCCESS;
    cl_command_queue side = clCreateCommandQueue(c, dev, 0, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateCommandQueue(side) -> %d", (int)err);
    for (int pi = 0; pi < 4 && side; pi++) {
        clattn_problem p;
        base_problem(&p, t_all_paths[pi]);
        t_tensors t;
        if (t_tensors_init(&t, &p, T_WITH_LSE, 0xa51c0000u + (uint64_t)pi) != 0)
            break;
        char label[64];
        snprintf(label, sizeof label, "user_event/%s", t_path_name(p.path));
        /* build the kernels first so the wait below measures only the gating */
        clattn_buffers b;
        T_CL(t_dev_create(c, &t, &b));
        cl_event uev = clCreateUserEvent(c, &err);
        T_CHECK(err == CL_SUCCESS, "clCreateUserEvent -> %d", (int)err);
        cl_event done = NULL;
        clattn_status st = clattn_forward(ctx, &p, &b, 1, &uev, &done);
        T_CHECK(st == CLATTN_OK && done, "%s: clattn_forward -> %s (done %p): %s", label,
                clattn_status_string(st), (void *)done, clattn_last_error(ctx));
        if (st == CLATTN_OK && done) {
            sleep_ms(200);
            cl_int es = event_status(done);
            T_CHECK(es != CL_COMPLETE && es >= 0,
                    "%s: done event status %d before the user event was set (must not be "
                    "CL_COMPLETE)", label, (int)es);
            /* nothing may have touched O yet: read it through another queue */
            void *o_now = malloc((size_t)t.o_alloc * t.esz);
            if (o_now) {
                T_CL(clEnqueueReadBuffer(side, b.o, CL_TRUE, 0, (size_t)t.o_alloc * t.esz, o_now,
                                         0, NULL, NULL));
                T_CHECK(t_same_bytes(o_now, t.o_init, (size_t)t.o_alloc * t.esz),
                        "%s: O was written before the user event was set", label);
                free(o_now);
            }
            T_CL(clSetUserEventStatus(uev, CL_COMPLETE));
            T_CL(clWaitForEvents(1, &done));
            es = event_status(done);
            T_CHECK(es == CL_COMPLETE, "%s: done status %d after waiting", label, (int)es);
            T_CL(t_dev_read(q, &b, &t));
            t_result r = t_verify(label, &t, t_tolerance_for(p.dtype));
            t_log("%s %s: relL2 %.2e lse %.1e", r.fails ? "BAD " : "ok  ", label, r.rel_l2,
                  r.lse_err);
            clReleaseEvent(done);
        } else if (uev) {
            clSetUserEventStatus(uev, CL_COMPLETE);
        }
        if (uev)
            clReleaseEvent(uev);

        /* done == NULL is allowed: completion is then observed through the queue */
        t_tensors_poison(&t);
        t_dev_release(&b);
        T_CL(t_dev_create(c, &t, &b));
        snprintf(label, sizeof label, "no_done_event/%s", t_path_name(p.path));
        st = clattn_forward(ctx, &p, &b, 0, NULL, NULL);
        T_CHECK(st == CLATTN_OK, "%s: clattn_forward -> %s: %s", label, clattn_status_string(st),
                clattn_last_error(ctx));
        T_CL(clFinish(q));
        T_CL(t_dev_read(q, &b, &t));
        if (st == CLATTN_OK) {
            t_result r = t_verify(label, &t, t_tolerance_for(p.dtype));
            t_log("%s %s: relL2 %.2e", r.fails ? "BAD " : "ok  ", label, r.rel_l2);
        }
        t_dev_release(&b);
        t_tensors_free(&t);
    }
    if (side)
        clReleaseCommandQueue(side);
    clattn_context_destroy(ctx);
}

/* Enqueues a write of n bytes of host into m, without blocking; returns its event. */
static cl_event write_async(cl_command_queue q, cl_mem m, size_t n, const void *host)
{
    cl_event e = NULL;
    T_CL(clEnqueueWriteBuffer(q, m, CL_FALSE, 0, n, host, 0, NULL, &e));
    return e;
}

static cl_mem empty_buffer(cl_context c, size_t n)
{
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE, n, NULL, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu) -> %d", n, (int)err);
    return m;
}

/* O1 = attn(Q, K, V); O2 = attn(O1, K, V), chained only by events on an
 * out-of-order queue; inputs uploaded by non-blocking writes in the wait list. */
static void ooo_chain(clattn_context *ctx, cl_context c, cl_command_queue q, clattn_path path,
                      clattn_dtype dt, uint64_t seed)
{
    clattn_problem p;
    base_problem(&p, path);
    p.seq_kv = p.seq_q + 7;
    p.dtype = dt;
    char label[64];
    snprintf(label, sizeof label, "ooo_chain/%s/%s", t_path_name(path), t_dtype_name(dt));
    t_tensors t1, t2;
    if (t_tensors_init(&t1, &p, T_WITH_LSE, seed) != 0)
        return;
    if (t_tensors_init(&t2, &p, 0, seed) != 0) {
        t_tensors_free(&t1);
        return;
    }
    const size_t qb = (size_t)t1.q_n * t1.esz, kb = (size_t)t1.k_n * t1.esz;
    const size_t vb = (size_t)t1.v_n * t1.esz, ob = (size_t)t1.o_alloc * t1.esz;
    const size_t lb = sizeof(float) * (size_t)(t1.lse_n + T_GUARD);
    clattn_buffers b1, b2;
    memset(&b1, 0, sizeof b1);
    b1.q = empty_buffer(c, qb);
    b1.k = empty_buffer(c, kb);
    b1.v = empty_buffer(c, vb);
    b1.o = empty_buffer(c, ob);
    b1.lse = empty_buffer(c, lb);
    b2 = b1;
    b2.q = b1.o; /* O1 (packed [B][H][Sq][D]) is the second call's Q */
    b2.o = empty_buffer(c, ob);
    b2.lse = NULL;
    if (!b1.q || !b1.k || !b1.v || !b1.o || !b1.lse || !b2.o)
        goto out;
    cl_event w[5];
    w[0] = write_async(q, b1.q, qb, t1.q);
    w[1] = write_async(q, b1.k, kb, t1.k);
    w[2] = write_async(q, b1.v, vb, t1.v);
    w[3] = write_async(q, b1.o, ob, t1.o);
    w[4] = write_async(q, b1.lse, lb, t1.lse);
    cl_event w2 = write_async(q, b2.o, ob, t2.o);
    cl_event d1 = NULL, d2 = NULL, r[3] = {NULL, NULL, NULL};
    clattn_status st = clattn_forward(ctx, &p, &b1, 5, w, &d1);
    T_CHECK(st == CLATTN_OK && d1, "%s: first clattn_forward -> %s: %s", label,
            clattn_status_string(st), clattn_last_error(ctx));
    if (st == CLATTN_OK && d1) {
        cl_event w3[2] = {d1, w2};
        st = clattn_forward(ctx, &p, &b2, 2, w3, &d2);
        T_CHECK(st == CLATTN_OK && d2, "%s: second clattn_forward -> %s: %s", label,
                clattn_status_string(st), clattn_last_error(ctx));
        if (st == CLATTN_OK && d2) {
            T_CL(clEnqueueReadBuffer(q, b2.o, CL_FALSE, 0, ob, t2.o, 1, &d2, &r[0]));
            T_CL(clEnqueueReadBuffer(q, b1.o, CL_FALSE, 0, ob, t1.o, 1, &d1, &r[1]));
            T_CL(clEnqueueReadBuffer(q, b1.lse, CL_FALSE, 0, lb, t1.lse, 1, &d1, &r[2]));
            T_CL(clWaitForEvents(3, r));
            t_result res1 = t_verify(label, &t1, t_tolerance_for(dt));
            /* the second call's reference reads the Q the first call produced */
            memcpy(t2.q, t1.o, (size_t)t1.q_n * t1.esz);
            t_result res2 = t_verify(label, &t2, t_tolerance_for(dt));
            t_log("%s %s: relL2 first %.2e second %.2e", res1.fails || res2.fails ? "BAD " : "ok  ",
                  label, res1.rel_l2, res2.rel_l2);
        }
    }
    T_CL(clFinish(q));
    for (int i = 0; i < 5; i++)
        if (w[i])
            clReleaseEvent(w[i]);
    cl_event rest[6] = {w2, d1, d2, r[0], r[1], r[2]};
    for (int i = 0; i < 6; i++)
        if (rest[i])
            clReleaseEvent(rest[i]);
out:;
    cl_mem all[7] = {b1.q, b1.k, b1.v, b1.o, b1.lse, b2.o, NULL};
    for (int i = 0; i < 7; i++)
        if (all[i])
            clReleaseMemObject(all[i]);
    t_tensors_free(&t1);
    t_tensors_free(&t2);
}

void case_async_out_of_order(void)
{
    cl_platform_id plat = NULL;
    cl_device_id dev = NULL;
    cl_int err;
    T_CL(clGetPlatformIDs(1, &plat, NULL));
    if (!plat)
        return;
    T_CL(clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL));
    if (!dev)
        return;
    cl_command_queue_properties props = 0;
    T_CL(clGetDeviceInfo(dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof props, &props, NULL));
    cl_context c = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateContext -> %d", (int)err);
    if (!c)
        return;
    const int ooo = (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    if (!ooo)
        t_log("note: the device has no out-of-order queues; using an in-order one");
    cl_command_queue q =
        clCreateCommandQueue(c, dev, ooo ? CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE : 0, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateCommandQueue(out of order) -> %d", (int)err);
    clattn_context *ctx = NULL;
    if (q) {
        clattn_status st = clattn_context_create_from_queue(q, NULL, &ctx);
        T_CHECK(st == CLATTN_OK && ctx, "clattn_context_create_from_queue -> %s",
                clattn_status_string(st));
    }
    if (ctx) {
        cl_context gc = NULL;
        cl_command_queue gq = NULL;
        cl_device_id gd = NULL;
        T_CHECK(clattn_context_get_cl(ctx, &gc, &gq, &gd) == CLATTN_OK && gc == c && gq == q &&
                    gd == dev,
                "clattn_context_get_cl does not give back the caller's context, queue, device");
        for (int rep = 0; rep < 2; rep++)
            for (int pi = 0; pi < 4; pi++)
                ooo_chain(ctx, c, q, t_all_paths[pi], CLATTN_F32, 0x0f0f0000u + rep * 8 + pi);
        ooo_chain(ctx, c, q, CLATTN_PATH_THREE_STAGE, CLATTN_F16, 0x0f0f1000u);
        clattn_context_destroy(ctx);
    }
    /* the queue and context are the caller's: still usable after destroy */
    if (q) {
        T_CL(clFinish(q));
        clReleaseCommandQueue(q);
    }
    clReleaseContext(c);
}

/* ---- threads ------------------------------------------------------------- */

#define N_THREADS 3
#define N_ITERS 3

typedef struct worker {
    clattn_context *ctx;
    t_tensors t;
    int use_device;
    clattn_status st[N_ITERS];
    int cl_error;
    void *o_first;
    int same_bits;
} worker;

/* No harness reporting inside threads: results go into the worker. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    w->same_bits = 1;
    for (int it = 0; it < N_ITERS; it++) {
        t_tensors_poison(&w->t);
        if (!w->use_device) {
            clattn_host_buffers hb = t_tensors_host(&w->t);
            w->st[it] = clattn_forward_host(w->ctx, &w->t.p, &hb);
        } else {
            cl_context c = NULL;
            cl_command_queue q = NULL;
            clattn_context_get_cl(w->ctx, &c, &q, NULL);
            clattn_buffers b;
            cl_int err = t_dev_create(c, &w->t, &b);
            if (err != CL_SUCCESS) {
                w->cl_error = err;
                return NULL;
            }
            cl_event done = NULL;
            w->st[it] = clattn_forward(w->ctx, &w->t.p, &b, 0, NULL, &done);
            if (w->st[it] == CLATTN_OK && done) {
                err = clWaitForEvents(1, &done);
                clReleaseEvent(done);
            }
            if (err == CL_SUCCESS)
                err = t_dev_read(q, &b, &w->t);
            if (err != CL_SUCCESS)
                w->cl_error = err;
            t_dev_release(&b);
        }
        size_t ob = (size_t)w->t.o_alloc * w->t.esz;
        if (it == 0)
            memcpy(w->o_first, w->t.o, ob);
        else if (memcmp(w->o_first, w->t.o, ob) != 0)
            w->same_bits = 0;
    }
    return NULL;
}

void case_threads(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    worker w[N_THREADS];
    pthread_t th[N_THREADS];
    memset(w, 0, sizeof w);
    int ok = 1;
    for (int i = 0; i < N_THREADS; i++) {
        clattn_problem p;
        base_problem(&p, t_all_paths[i % 4]);
        p.seq_q = 10 + 7 * i;
        p.batch = 1 + i % 2;
        w[i].ctx = ctx;
        w[i].use_device = i % 2;
        if (t_tensors_init(&w[i].t, &p, T_WITH_LSE, 0x7e4d0000u + (uint64_t)i) != 0) {
            ok = 0;
            break;
        }
        w[i].o_first = malloc((size_t)w[i].t.o_alloc * w[i].t.esz);
        if (!w[i].o_first)
            ok = 0;
    }
    /* all threads at once, building kernels concurrently on their first calls */
    for (int i = 0; ok && i < N_THREADS; i++)
        T_CHECK(clattn_supports(ctx, &w[i].t.p) == CLATTN_OK, "thread %d: problem not supported",
                i);
    int started = 0;
    for (int i = 0; ok && i < N_THREADS; i++) {
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0) {
            T_FAIL("pthread_create failed");
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < started; i++) {
        char label[64];
        snprintf(label, sizeof label, "thread %d (%s, %s)", i, t_path_name(w[i].t.p.path),
                 w[i].use_device ? "device" : "host");
        T_CHECK(w[i].cl_error == CL_SUCCESS, "%s: OpenCL error %d", label, w[i].cl_error);
        int all_ok = 1;
        for (int it = 0; it < N_ITERS; it++) {
            T_CHECK(w[i].st[it] == CLATTN_OK, "%s: iteration %d -> %s", label, it,
                    clattn_status_string(w[i].st[it]));
            all_ok &= w[i].st[it] == CLATTN_OK;
        }
        if (!all_ok)
            continue;
        T_CHECK(w[i].same_bits, "%s: iterations gave different bits", label);
        t_result r = t_verify(label, &w[i].t, t_tolerance_for(w[i].t.p.dtype));
        t_log("%s %s: relL2 %.2e", r.fails ? "BAD " : "ok  ", label, r.rel_l2);
    }
    for (int i = 0; i < N_THREADS; i++) {
        free(w[i].o_first);
        t_tensors_free(&w[i].t);
    }
    clattn_context_destroy(ctx);
}

/* Threads that fail calls on one context and read clattn_last_error at the
 * same time: each reads a whole message naming a refused field (a copy of
 * its own thread), never freed memory (ASan would report it). */
typedef struct err_worker {
    clattn_context *ctx;
    int index, bad; /* messages that were empty or named no field */
} err_worker;

static void *err_worker_main(void *arg)
{
    err_worker *w = arg;
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.heads = 1;
    p.seq_q = p.seq_kv = 4;
    p.head_dim = 8;
    for (int i = 0; i < 2000; i++) {
        p.batch = -1 - w->index - i % 7; /* invalid, a different value per call */
        if (clattn_supports(w->ctx, &p) != CLATTN_ERR_INVALID_ARGUMENT) {
            w->bad++;
            continue;
        }
        const char *msg = clattn_last_error(w->ctx);
        if (!msg[0] || !strstr(msg, "batch"))
            w->bad++;
    }
    return NULL;
}

void case_last_error_threads(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    enum { N = 4 };
    err_worker w[N];
    pthread_t th[N];
    int started = 0;
    for (int i = 0; i < N; i++) {
        w[i].ctx = ctx;
        w[i].index = i;
        w[i].bad = 0;
        if (pthread_create(&th[i], NULL, err_worker_main, &w[i]) != 0)
            break;
        started++;
    }
    T_CHECK(started == N, "only %d of %d threads started", started, N);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        T_CHECK(w[i].bad == 0, "thread %d: %d of 2000 failures gave no whole message", i,
                w[i].bad);
    }
    t_log("%d threads x 2000 refused calls, messages read concurrently", started);
    clattn_context_destroy(ctx);
}
