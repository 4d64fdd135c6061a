/* Concurrency over one cache (label `concurrency`).
 *
 *   threads_one_context: one context on a cold cache, six threads at once,
 *     each calling other public functions in a loop: forward_host, forward
 *     on device buffers, attention_weights_host, supports, tune with
 *     tuning_count/get, export/import with stats, cache_clear of the same
 *     root and calls refused as invalid. Every result is checked against the
 *     double reference; the header promises these calls are serialised.
 *   threads_many_contexts: eight threads, each creating its own context on
 *     one cold cache at the same moment and running forwards of different
 *     shapes; then a new context loads every program without a build.
 *   procs_cold_cache: eight processes started at once on one empty cache,
 *     each running forwards and a tune; afterwards every binary is whole,
 *     the db parses without a damaged line, `attn-tune show` lists it, and a
 *     new process loads everything.
 * CLATTN_LONG=1: more threads, processes (16, with PoCL's own kernel cache
 * empty too) and iterations. */
#define _GNU_SOURCE
#include "cache_tests.h"

#include "reference.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADER 40

static int long_mode(void)
{
    const char *v = getenv("CLATTN_LONG");
    return v && *v && strcmp(v, "0") != 0;
}

/* ---- a forward checked against the reference, safe in any thread -------- */

typedef struct checker {
    uint64_t seed;
    char why[512]; /* the first failure */
    int fails;
} checker;

static float crnd(checker *c)
{
    c->seed = c->seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(c->seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fail(checker *c, const char *what, const char *msg)
{
    if (!c->fails++) snprintf(c->why, sizeof c->why, "%.120s: %.380s", what, msg);
}

/* mode 0: clattn_forward_host; 1: clattn_forward on device buffers;
 * 2: clattn_attention_weights_host (O, LSE and the probabilities). */
static int check_forward(clattn_context *ctx, const clattn_problem *prob, int mode,
                         checker *c, const char *what)
{
    clattn_problem n;
    size_t nq, nk, nv, no, nl, np;
    float *q, *k, *v, *o, *lse, *probs = NULL;
    double *ro, *rl, *go, *gl, *rp = NULL, *gp = NULL;
    clattn_host_buffers io;
    clattn_status st = CLATTN_OK;
    int ok = 0;
    char msg[256];
    ref_normalize(prob, &n);
    nq = (size_t)n.batch * n.heads * n.seq_q * n.head_dim;
    nk = (size_t)n.batch * n.kv_heads * n.seq_kv * n.head_dim;
    nv = (size_t)n.batch * n.kv_heads * n.seq_kv * n.head_dim_v;
    no = (size_t)n.batch * n.heads * n.seq_q * n.head_dim_v;
    nl = (size_t)n.batch * n.heads * n.seq_q;
    np = nl * (size_t)n.seq_kv;
    q = malloc(nq * 4);
    k = malloc(nk * 4);
    v = malloc(nv * 4);
    o = malloc(no * 4);
    lse = malloc(nl * 4);
    ro = malloc(no * 8);
    go = malloc(no * 8);
    rl = malloc(nl * 8);
    gl = malloc(nl * 8);
    if (mode == 2) {
        probs = malloc(np * 4);
        rp = malloc(np * 8);
        gp = malloc(np * 8);
    }
    if (!q || !k || !v || !o || !lse || !ro || !go || !rl || !gl ||
        (mode == 2 && (!probs || !rp || !gp))) {
        fail(c, what, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nq; i++) q[i] = crnd(c);
    for (size_t i = 0; i < nk; i++) k[i] = crnd(c);
    for (size_t i = 0; i < nv; i++) v[i] = crnd(c);
    for (size_t i = 0; i < no; i++) o[i] = NAN;
    for (size_t i = 0; i < nl; i++) lse[i] = NAN;
    for (size_t i = 0; probs && i < np; i++) probs[i] = NAN;
    memset(&io, 0, sizeof io);
    io.q = q;
    io.k = k;
    io.v = v;
    io.o = o;
    io.lse = lse;
    if (mode == 0) {
        st = clattn_forward_host(ctx, prob, &io);
    } else if (mode == 2) {
        st = clattn_attention_weights_host(ctx, prob, &io, probs);
    } else {
        cl_context cc;
        cl_command_queue cq;
        cl_mem m[5] = {NULL, NULL, NULL, NULL, NULL};
        cl_int err = CL_SUCCESS;
        cl_event done = NULL;
        const size_t sz[5] = {nq * 4, nk * 4, nv * 4, no * 4, nl * 4};
        void *host[5] = {q, k, v, o, lse};
        clattn_context_get_cl(ctx, &cc, &cq, NULL);
        for (int i = 0; i < 5 && err == CL_SUCCESS; i++)
            m[i] = clCreateBuffer(cc, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sz[i], host[i],
                                  &err);
        if (err == CL_SUCCESS) {
            clattn_buffers b;
            memset(&b, 0, sizeof b);
            b.q = m[0];
            b.k = m[1];
            b.v = m[2];
            b.o = m[3];
            b.lse = m[4];
            st = clattn_forward(ctx, prob, &b, 0, NULL, &done);
            /* The context's queue is shared with the other threads: read
             * back on it after our event (enqueue is thread-safe in
             * OpenCL 1.1+). */
            if (st == CLATTN_OK) {
                err = clEnqueueReadBuffer(cq, m[3], CL_TRUE, 0, sz[3], o, 1, &done, NULL);
                if (err == CL_SUCCESS)
                    err = clEnqueueReadBuffer(cq, m[4], CL_TRUE, 0, sz[4], lse, 1, &done, NULL);
            }
            if (done) clReleaseEvent(done);
        }
        for (int i = 0; i < 5; i++)
            if (m[i]) clReleaseMemObject(m[i]);
        if (err != CL_SUCCESS) {
            snprintf(msg, sizeof msg, "OpenCL error %d", (int)err);
            fail(c, what, msg);
            goto done;
        }
    }
    if (st != CLATTN_OK) {
        snprintf(msg, sizeof msg, "%s", clattn_status_string(st));
        fail(c, what, msg);
        goto done;
    }
    if (ref_attention(prob, &io, ro, rl, rp) != 0) {
        fail(c, what, "the reference ran out of memory");
        goto done;
    }
    for (size_t i = 0; i < no; i++) go[i] = o[i];
    for (size_t i = 0; i < nl; i++) gl[i] = lse[i];
    for (size_t i = 0; probs && i < np; i++) gp[i] = probs[i];
    {
        char why[200];
        ok = ct_compare(prob, ro, go, no, rl, gl, nl, rp, probs ? gp : NULL, np, why, sizeof why);
        if (!ok) {
            snprintf(msg, sizeof msg, "differs from the reference: %s", why);
            fail(c, what, msg);
        }
    }
done:
    free(q);
    free(k);
    free(v);
    free(o);
    free(lse);
    free(ro);
    free(go);
    free(rl);
    free(gl);
    free(probs);
    free(rp);
    free(gp);
    return ok;
}

/* Shape i of a family of small ones: paths, GQA, masks of causality,
 * head sizes and lengths all vary with i. */
static clattn_problem shape_no(int i)
{
    static const clattn_path paths[4] = {CLATTN_PATH_FUSED, CLATTN_PATH_SPLIT_KV,
                                         CLATTN_PATH_THREE_STAGE, CLATTN_PATH_AUTO};
    static const int dims[4] = {32, 16, 64, 8};
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1 + i % 2;
    p.heads = 2 * (1 + i % 3);
    p.kv_heads = i % 2 ? p.heads / 2 : 0;
    p.seq_q = paths[i % 4] == CLATTN_PATH_SPLIT_KV ? 1 + i % 3 : 16 + 9 * (i % 5);
    p.seq_kv = 24 + 17 * (i % 7);
    p.head_dim = dims[(i / 4) % 4];
    p.causal = i % 3 == 0 ? CLATTN_CAUSAL_BOTTOM_RIGHT
                          : i % 3 == 1 ? CLATTN_CAUSAL_NONE : CLATTN_CAUSAL_TOP_LEFT;
    p.path = paths[i % 4];
    return p;
}

/* ---- threads_one_context -------------------------------------------------- */

typedef struct role {
    int id, iters;
    clattn_context *ctx;
    const char *root, *file;
    checker c;
    int calls;
} role;

static void *role_main(void *arg)
{
    role *r = arg;
    char what[96];
    for (int it = 0; it < r->iters; it++) {
        clattn_problem p = shape_no(r->id * 5 + it);
        snprintf(what, sizeof what, "thread %d, iteration %d", r->id, it);
        switch (r->id) {
        case 0: /* host forwards, every path */
            check_forward(r->ctx, &p, 0, &r->c, what);
            r->calls++;
            break;
        case 1: /* device buffers */
            check_forward(r->ctx, &p, 1, &r->c, what);
            r->calls++;
            break;
        case 2: /* attention weights (three-stage) and supports */
            p.path = CLATTN_PATH_THREE_STAGE;
            check_forward(r->ctx, &p, 2, &r->c, what);
            if (clattn_supports(r->ctx, &p) != CLATTN_OK) fail(&r->c, what, "supports");
            r->calls += 2;
            break;
        case 3: { /* tune, then read the db */
            clattn_problem t = ct_shape_prefill();
            clattn_tune_options o;
            clattn_tune_result res[8];
            size_t nr = 0, count = 0;
            memset(&o, 0, sizeof o);
            o.budget_seconds = 0.3;
            o.retune = it > 0;
            t.seq_q = t.seq_kv = 32;
            t.head_dim = 16;
            if (clattn_tune(r->ctx, &t, 1, &o, res, 8, &nr) != CLATTN_OK || nr < 1)
                fail(&r->c, what, "clattn_tune");
            if (clattn_tuning_count(r->ctx, &count) != CLATTN_OK || count < 1)
                fail(&r->c, what, "clattn_tuning_count");
            for (size_t i = 0; i < count; i++) {
                clattn_tuning_entry e;
                /* Another thread may import in between: the count can only
                 * grow, never shrink. */
                if (clattn_tuning_get(r->ctx, i, &e) != CLATTN_OK || !e.unit[0])
                    fail(&r->c, what, "clattn_tuning_get");
            }
            check_forward(r->ctx, &t, 0, &r->c, what);
            r->calls += 4 + (int)count;
            break;
        }
        case 4: { /* export, import, stats */
            clattn_stats s;
            clattn_status st = clattn_tuning_export(r->ctx, r->file);
            if (st == CLATTN_OK) st = clattn_tuning_import(r->ctx, r->file);
            if (st != CLATTN_OK) fail(&r->c, what, clattn_status_string(st));
            if (clattn_context_stats(r->ctx, &s) != CLATTN_OK || !s.disk_cache_enabled)
                fail(&r->c, what, "clattn_context_stats");
            check_forward(r->ctx, &p, 0, &r->c, what);
            r->calls += 4;
            break;
        }
        default: { /* the cache emptied under the others; refused calls */
            clattn_options o;
            clattn_problem bad = p;
            clattn_options_init(&o);
            o.cache_dir = r->root;
            if (it % 2 == 0 && clattn_cache_clear(&o) != CLATTN_OK)
                fail(&r->c, what, "clattn_cache_clear");
            bad.head_dim = 0;
            if (clattn_forward_host(r->ctx, &bad, NULL) != CLATTN_ERR_INVALID_ARGUMENT)
                fail(&r->c, what, "an invalid problem was not refused");
            if (clattn_tuning_import(r->ctx, NULL) != CLATTN_ERR_INVALID_ARGUMENT)
                fail(&r->c, what, "a NULL import path was not refused");
            if (clattn_tuning_export(r->ctx, "") != CLATTN_ERR_INVALID_ARGUMENT)
                fail(&r->c, what, "an empty export path was not refused");
            check_forward(r->ctx, &p, 1, &r->c, what);
            r->calls += 5;
            break;
        }
        }
    }
    return NULL;
}

int test_threads_one_context(int argc, char **argv)
{
    enum { N = 6 };
    char root[PATH_MAX], file[PATH_MAX + 16];
    role r[N];
    pthread_t th[N];
    ct_log log;
    clattn_context *ctx;
    int iters = long_mode() ? 12 : 3, calls = 0;
    double t0 = ct_now();
    (void)argc;
    (void)argv;
    ct_fresh_dir("threads_one_context", root, sizeof root);
    snprintf(file, sizeof file, "%s.export", root);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].id = i;
        r[i].iters = iters;
        r[i].ctx = ctx;
        r[i].root = root;
        r[i].file = file;
        r[i].c.seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    }
    for (int i = 0; i < N; i++)
        CHECK(pthread_create(&th[i], NULL, role_main, &r[i]) == 0, "pthread_create");
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        CHECK(r[i].c.fails == 0, "thread %d: %d failures, the first: %s", i, r[i].c.fails,
              r[i].c.why);
        calls += r[i].calls;
    }
    {
        clattn_stats s = ct_stats(ctx);
        NOTE("%d threads x %d iterations on one context: %d calls, all right; built %llu, "
             "loaded %llu, stored %llu; %.1f s", N, iters, calls,
             (unsigned long long)s.programs_built, (unsigned long long)s.programs_loaded,
             (unsigned long long)s.programs_stored, ct_now() - t0);
    }
    clattn_context_destroy(ctx);
    /* clattn_cache_clear ran under the others: whatever is left is whole. */
    CHECK(log.warnings <= 1, "%d warnings:\n%s", log.warnings, log.text);
    {
        ct_log l2;
        ct_log_reset(&l2);
        ctx = ct_context(root, &l2);
        for (int i = 0; i < 5; i++) {
            clattn_problem p = shape_no(i);
            ct_forward_ok(ctx, &p, "after the threads");
        }
        clattn_context_destroy(ctx);
        CHECK(l2.warnings == 0, "the cache the threads left warns:\n%s", l2.text);
    }
    /* clattn_cache_clear leaves the temporary file of a live writer (its
     * rename would fail) and removes one whose writer is gone. */
    {
        char live[PATH_MAX + 64], dead[PATH_MAX + 64];
        long gone = ct_spawn("/bin/true", NULL, NULL, NULL, NULL);
        clattn_options o;
        ct_wait(gone);
        snprintf(live, sizeof live, "%s/tuning/x.db.tmp.%ld.1", root, (long)getpid());
        snprintf(dead, sizeof dead, "%s/tuning/x.db.tmp.%ld.1", root, gone);
        CHECK(ct_write(live, "x", 1) == 0 && ct_write(dead, "x", 1) == 0, "temporaries");
        ct_options(&o, root, &log);
        CHECK(clattn_cache_clear(&o) == CLATTN_OK, "clattn_cache_clear");
        CHECK(ct_exists(live), "clattn_cache_clear removed a live writer's temporary");
        CHECK(!ct_exists(dead), "clattn_cache_clear left a dead writer's temporary");
        unlink(live);
    }
    remove(file);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* ---- threads_many_contexts ------------------------------------------------ */

typedef struct own {
    int id, shapes;
    const char *root;
    ct_log log;
    checker c;
    clattn_stats st;
    pthread_barrier_t *start;
} own;

static void *own_main(void *arg)
{
    own *w = arg;
    clattn_context *ctx = NULL;
    clattn_options o;
    char what[96];
    ct_options(&o, w->root, &w->log);
    pthread_barrier_wait(w->start);
    if (clattn_context_create(&o, &ctx) != CLATTN_OK) {
        fail(&w->c, "clattn_context_create failed", w->log.text);
        return NULL;
    }
    for (int s = 0; s < w->shapes; s++) {
        /* Neighbouring threads share some shapes: the same binary is built
         * and stored by several at once. */
        clattn_problem p = shape_no(w->id / 2 + s);
        snprintf(what, sizeof what, "thread %d, shape %d", w->id, w->id / 2 + s);
        check_forward(ctx, &p, s % 2, &w->c, what);
    }
    if (clattn_context_stats(ctx, &w->st) != CLATTN_OK)
        fail(&w->c, "clattn_context_stats", clattn_last_error(ctx));
    clattn_context_destroy(ctx);
    return NULL;
}

int test_threads_many_contexts(int argc, char **argv)
{
    enum { MAXT = 16 };
    char root[PATH_MAX];
    int n = long_mode() ? 16 : 8, shapes = long_mode() ? 8 : 3, max_shape = 0;
    own w[MAXT];
    pthread_t th[MAXT];
    pthread_barrier_t start;
    uint64_t built = 0, loaded = 0, stored = 0;
    double t0 = ct_now();
    (void)argc;
    (void)argv;
    ct_fresh_dir("threads_many_contexts", root, sizeof root);
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].shapes = shapes;
        w[i].root = root;
        w[i].start = &start;
        w[i].c.seed = 0xD1B54A32D192ED03ull * (uint64_t)(i + 1);
        ct_log_reset(&w[i].log);
        if (i / 2 + shapes > max_shape) max_shape = i / 2 + shapes;
    }
    for (int i = 0; i < n; i++)
        CHECK(pthread_create(&th[i], NULL, own_main, &w[i]) == 0, "pthread_create");
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < n; i++) {
        CHECK(w[i].c.fails == 0, "thread %d: %d failures, the first: %s", i, w[i].c.fails,
              w[i].c.why);
        CHECK(w[i].log.warnings == 0, "thread %d: warnings:\n%s", i, w[i].log.text);
        built += w[i].st.programs_built;
        loaded += w[i].st.programs_loaded;
        stored += w[i].st.programs_stored;
    }
    NOTE("%d threads, a context each, %d shapes each (%d distinct) on one cold cache: all "
         "right; built %llu loaded %llu stored %llu; %.1f s", n, shapes, max_shape,
         (unsigned long long)built, (unsigned long long)loaded, (unsigned long long)stored,
         ct_now() - t0);
    /* Every program is now on disk, whole: a new context builds nothing. */
    {
        ct_log log;
        clattn_context *ctx;
        clattn_stats s;
        ct_log_reset(&log);
        ctx = ct_context(root, &log);
        for (int i = 0; i < max_shape; i++) {
            clattn_problem p = shape_no(i);
            ct_forward_ok(ctx, &p, "after the threads");
        }
        s = ct_stats(ctx);
        clattn_context_destroy(ctx);
        CHECK(s.programs_built == 0 && s.programs_loaded >= 1 && log.warnings == 0,
              "after the threads: built %llu loaded %llu, %d warnings:\n%s",
              (unsigned long long)s.programs_built, (unsigned long long)s.programs_loaded,
              log.warnings, log.text);
        NOTE("a new context ran all %d shapes: %llu programs loaded, none built", max_shape,
             (unsigned long long)s.programs_loaded);
    }
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}

/* ---- procs_cold_cache ----------------------------------------------------- */

static clattn_problem tune_shape(int which)
{
    clattn_problem p = ct_shape_prefill();
    p.seq_q = p.seq_kv = 32;
    p.head_dim = which ? 8 : 16;
    p.causal = 0;
    return p;
}

/* Child: ROOT INDEX. Forwards of three shapes, a tune of one of two small
 * shapes, the forwards again; exit 0 when all were right and nothing was
 * reported. */
int child_cold(int argc, char **argv)
{
    ct_log log;
    clattn_context *ctx;
    clattn_tune_options o;
    clattn_problem t;
    checker c;
    int idx;
    char what[64];
    if (argc < 4) return 2;
    idx = atoi(argv[3]);
    memset(&c, 0, sizeof c);
    c.seed = 0x2545F4914F6CDD1Dull * (uint64_t)(idx + 1);
    ct_log_reset(&log);
    ctx = ct_context(argv[2], &log);
    for (int s = 0; s < 3; s++) {
        clattn_problem p = shape_no(idx % 4 + s);
        snprintf(what, sizeof what, "process %d, shape %d", idx, idx % 4 + s);
        check_forward(ctx, &p, 0, &c, what);
    }
    t = tune_shape(idx % 2);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 0.3;
    CHECK(clattn_tune(ctx, &t, 1, &o, NULL, 0, NULL) == CLATTN_OK, "process %d: tune: %s",
          idx, clattn_last_error(ctx));
    check_forward(ctx, &t, 0, &c, "tuned shape");
    for (int s = 0; s < 3; s++) {
        clattn_problem p = shape_no(idx % 4 + s);
        snprintf(what, sizeof what, "process %d, shape %d again", idx, idx % 4 + s);
        check_forward(ctx, &p, 1, &c, what);
    }
    clattn_context_destroy(ctx);
    CHECK(c.fails == 0, "process %d: %d failures, the first: %s", idx, c.fails, c.why);
    CHECK(log.warnings == 0 && log.errors == 0, "process %d: warnings:\n%s", idx, log.text);
    return ct_failures ? 1 : 0;
}

/* Magic, format, lengths and payload checksum of a program file. */
static int bin_whole(const char *path)
{
    size_t len;
    unsigned char *d = ct_read(path, &len);
    uint64_t kl, pl, h, x = 0xcbf29ce484222325ULL;
    uint32_t ver, res;
    int ok = 0;
    if (d && len > HEADER) {
        memcpy(&ver, d + 8, 4);
        memcpy(&res, d + 12, 4);
        memcpy(&kl, d + 16, 8);
        memcpy(&pl, d + 24, 8);
        memcpy(&h, d + 32, 8);
        if (memcmp(d, "CLATTNPB", 8) == 0 && ver == 1 && res == 0 && kl < len &&
            HEADER + kl + pl == len) {
            for (size_t i = HEADER + kl; i < len; i++) {
                x ^= d[i];
                x *= 0x100000001b3ULL;
            }
            ok = x == h;
        }
    }
    free(d);
    return ok;
}

int test_procs_cold_cache(int argc, char **argv)
{
    enum { MAXP = 16 };
    char root[PATH_MAX], dir[PATH_MAX + 16], path[PATH_MAX * 2], *names[512];
    int n = long_mode() ? 16 : 8, nb, whole = 0, failed = 0;
    long pid[MAXP];
    double t0 = ct_now();
    char pocl[PATH_MAX + 32];
    const char *pocl_env[] = {pocl, NULL};
    ct_fresh_dir("procs_cold_cache", root, sizeof root);
    /* The long run starts PoCL cold too (its own kernel cache, empty), so
     * every process compiles with LLVM at the same time. */
    snprintf(pocl, sizeof pocl, "POCL_CACHE_DIR=%s/pocl", root);
    for (int i = 0; i < n; i++) {
        char idx[16];
        const char *args[] = {ct_base, "child_cold", root, idx, NULL};
        snprintf(idx, sizeof idx, "%d", i);
        pid[i] = ct_spawn_self(args, long_mode() ? pocl_env : NULL, NULL);
    }
    for (int i = 0; i < n; i++) {
        int rc = ct_wait(pid[i]);
        if (rc != 0) failed++;
        CHECK(rc == 0, "process %d exited %d", i, rc);
    }
    NOTE("%d processes on one empty cache (3 forward shapes twice, a tune each): %d failed; "
         "%.1f s", n, failed, ct_now() - t0);

    /* Every binary whole, no temporary left. */
    snprintf(dir, sizeof dir, "%s/programs", root);
    nb = ct_list(dir, "", names, 512);
    for (int i = 0; i < nb; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CHECK(strstr(names[i], ".bin") && !strstr(names[i], ".tmp."), "stray file %s", path);
        if (bin_whole(path)) whole++;
        else
            CHECK(0, "%s is not a whole program file", path);
    }
    ct_free_list(names, nb);
    snprintf(dir, sizeof dir, "%s/tuning", root);
    nb = ct_list(dir, "", names, 512);
    for (int i = 0; i < nb; i++)
        CHECK(!strstr(names[i], ".tmp.") && !strstr(names[i], ".bad"), "stray file %s/%s",
              dir, names[i]);
    ct_free_list(names, nb);

    /* The db: parses without a damaged line (no warning), holds both tuned
     * shapes; a new context loads every program the children used. */
    {
        ct_log log;
        clattn_context *ctx;
        clattn_stats s;
        size_t count = 0, d16 = 0, d8 = 0;
        ct_log_reset(&log);
        ctx = ct_context(root, &log);
        clattn_tuning_count(ctx, &count);
        for (size_t i = 0; i < count; i++) {
            clattn_tuning_entry e;
            if (clattn_tuning_get(ctx, i, &e) == CLATTN_OK && e.layer == 0 && !e.stale) {
                d16 += e.head_dim == 16;
                d8 += e.head_dim == 8;
            }
        }
        for (int i = 0; i < 4 + 2; i++) {
            clattn_problem p = shape_no(i);
            ct_forward_ok(ctx, &p, "after the processes");
        }
        for (int i = 0; i < 2; i++) {
            clattn_problem p = tune_shape(i);
            ct_forward_ok(ctx, &p, "tuned shape after the processes");
        }
        s = ct_stats(ctx);
        clattn_context_destroy(ctx);
        CHECK(log.warnings == 0, "the cache the processes left warns:\n%s", log.text);
        CHECK(d16 >= 1 && d8 >= 1, "db entries: %zu of head_dim 16, %zu of 8", d16, d8);
        CHECK(s.programs_built == 0 && s.programs_loaded >= 1,
              "a new process: built %llu loaded %llu", (unsigned long long)s.programs_built,
              (unsigned long long)s.programs_loaded);
        NOTE("afterwards: %d program files, all whole; db: %zu entries (%zu + %zu of the tuned "
             "shapes), no damaged line; a new context loaded %llu programs, built none",
             whole, count, d16, d8, (unsigned long long)s.programs_loaded);
    }
    /* attn-tune show reads the same db. */
    if (argc > 2) {
        char env[PATH_MAX + 32], out[PATH_MAX + 16];
        const char *args[] = {"show", NULL};
        const char *envs[] = {env, NULL};
        size_t len;
        char *text;
        int rc;
        snprintf(env, sizeof env, "CLATTN_CACHE_DIR=%s", root);
        snprintf(out, sizeof out, "%s.show", root);
        rc = ct_wait(ct_spawn(argv[2], args, envs, out, NULL));
        text = (char *)ct_read(out, &len);
        CHECK(rc == 0 && text && strstr(text, "entr"), "attn-tune show: exit %d:\n%s", rc,
              text ? text : "");
        if (text && rc == 0) {
            char *s = strstr(text, " entries");
            while (s && s > text && s[-1] != '\n') s--;
            if (s) NOTE("attn-tune show: %.*s", (int)(strchr(s, '\n') ? strchr(s, '\n') - s : 40), s);
        }
        free(text);
        remove(out);
    }
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}
