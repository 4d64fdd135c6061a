/* The ring: at step t this rank computes its runs of rows against the K/V
 * block of rank (r - t) mod P while that block travels on to rank r + 1
 * (posted before the compute, waited for after it), and folds each step's
 * partial results into a running LSE merge. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi_internal.h"

static cl_mem new_buffer(const mpi_res *r, int64_t bytes, cl_int *err)
{
    return clCreateBuffer(r->cl, CL_MEM_READ_WRITE, (size_t)(bytes > 0 ? bytes : 1), NULL, err);
}

static int64_t pieces(int64_t bytes)
{
    return (bytes + CLATTN_MPI_PIECE - 1) / CLATTN_MPI_PIECE;
}

/* K/V runs a block may have: two under ZIGZAG. */
static int kv_slots(const mpi_shape *s)
{
    return s->shard.layout == CLATTN_MPI_ZIGZAG ? 2 : 1;
}

clattn_status clattn_mpi__alloc(const mpi_shape *s, mpi_res *r, mpi_msg *m)
{
    const clattn_problem *p = &s->p;
    const int64_t bh = (int64_t)p->batch * p->heads;
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < s->me.count && err == CL_SUCCESS; ++i) {
        const int64_t len = s->me.length[i];
        const int64_t o_bytes = bh * len * p->head_dim_v * (int64_t)s->q_es;
        if (s->shard.layout == CLATTN_MPI_ZIGZAG && err == CL_SUCCESS)
            r->q[i] = new_buffer(r, bh * len * p->head_dim * (int64_t)s->q_es, &err);
        for (int j = 0; j < 2 && err == CL_SUCCESS; ++j) {
            r->acc_o[i][j] = new_buffer(r, o_bytes, &err);
            if (err == CL_SUCCESS)
                r->acc_lse[i][j] = new_buffer(r, bh * len * 4, &err);
        }
        for (int u = 0; u < kv_slots(s) && err == CL_SUCCESS; ++u) {
            r->part_o[i][u] = new_buffer(r, o_bytes, &err);
            if (err == CL_SUCCESS)
                r->part_lse[i][u] = new_buffer(r, bh * len * 4, &err);
        }
    }
    for (int u = 0; u < kv_slots(s) && s->me.count > 0 && err == CL_SUCCESS; ++u) {
        r->k[u] = new_buffer(r, clattn_mpi__run_k_bytes(s, s->max_run), &err);
        if (err == CL_SUCCESS)
            r->v[u] = new_buffer(r, clattn_mpi__run_v_bytes(s, s->max_run), &err);
    }
    if (err != CL_SUCCESS)
        return clattn_mpi__fail(m, CLATTN_ERR_OUT_OF_RESOURCES,
                                "clCreateBuffer for the ring's scratch failed (CL error %d)",
                                (int)err);
    for (int i = 0; i < 2; ++i) {
        r->host[i] = malloc((size_t)(s->max_block > 0 ? s->max_block : 1));
        if (!r->host[i])
            return clattn_mpi__fail(m, CLATTN_ERR_OUT_OF_RESOURCES,
                                    "no host memory for two K/V blocks of %lld bytes",
                                    (long long)s->max_block);
    }
    r->req = malloc(sizeof *r->req * (size_t)(2 * pieces(s->max_block) + 1));
    if (!r->req)
        return clattn_mpi__fail(m, CLATTN_ERR_OUT_OF_RESOURCES, "no host memory");
    return CLATTN_OK;
}

void clattn_mpi__free(mpi_res *r)
{
    cl_mem *all[] = {r->q, &r->acc_o[0][0], &r->acc_lse[0][0], &r->part_o[0][0],
                     &r->part_lse[0][0], r->k, r->v};
    const int counts[] = {CLATTN_MPI_MAX_RUNS, 2 * CLATTN_MPI_MAX_RUNS, 2 * CLATTN_MPI_MAX_RUNS,
                          CLATTN_MPI_MAX_RUNS * CLATTN_MPI_MAX_RUNS,
                          CLATTN_MPI_MAX_RUNS * CLATTN_MPI_MAX_RUNS, CLATTN_MPI_MAX_RUNS,
                          CLATTN_MPI_MAX_RUNS};
    for (size_t g = 0; g < sizeof counts / sizeof counts[0]; ++g)
        for (int i = 0; i < counts[g]; ++i)
            if (all[g][i])
                clReleaseMemObject(all[g][i]);
    free(r->host[0]);
    free(r->host[1]);
    free(r->req);
    memset(r, 0, sizeof *r);
}

/* First row of run i inside the rank's buffers. */
static int run_start(const clattn_mpi_segments *g, int i)
{
    return i == 0 ? 0 : g->length[0];
}

/* Rows [start, start + len) of a packed [outer][n][row_bytes] buffer, as
 * the rectangle clEnqueue*Rect takes. */
typedef struct {
    size_t origin[3], region[3], pitch;
} rows_rect;

static rows_rect rows_of(int64_t outer, int64_t n, int64_t row_bytes, int start, int len)
{
    rows_rect q;
    q.origin[0] = (size_t)(start * row_bytes);
    q.origin[1] = q.origin[2] = 0;
    q.region[0] = (size_t)(len * row_bytes);
    q.region[1] = (size_t)outer;
    q.region[2] = 1;
    q.pitch = (size_t)(n * row_bytes);
    return q;
}

clattn_status clattn_mpi__stage_own(const mpi_shape *s, mpi_res *r, mpi_msg *m)
{
    const clattn_problem *p = &s->p;
    const int64_t bkv = (int64_t)p->batch * p->kv_heads, bh = (int64_t)p->batch * p->heads;
    const size_t zero[3] = {0, 0, 0};
    unsigned char *at = r->host[0];
    cl_int err = clFinish(r->queue); /* the caller's work on the inputs, if any */
    for (int u = 0; u < s->me.count && err == CL_SUCCESS; ++u) {
        const int start = run_start(&s->me, u), len = s->me.length[u];
        const cl_mem src[2] = {r->local->k, r->local->v};
        const int64_t row[2] = {p->head_dim * (int64_t)s->k_es, p->head_dim_v * (int64_t)s->v_es};
        for (int kv = 0; kv < 2 && err == CL_SUCCESS; ++kv) {
            const rows_rect q = rows_of(bkv, s->me.n_local, row[kv], start, len);
            err = clEnqueueReadBufferRect(r->queue, src[kv], CL_TRUE, q.origin, zero, q.region,
                                          q.pitch, 0, q.region[0], 0, at, 0, NULL, NULL);
            at += q.region[0] * q.region[1];
        }
        if (err == CL_SUCCESS && r->q[u]) {
            const rows_rect q =
                rows_of(bh, s->me.n_local, p->head_dim * (int64_t)s->q_es, start, len);
            err = clEnqueueCopyBufferRect(r->queue, r->local->q, r->q[u], q.origin, zero,
                                          q.region, q.pitch, 0, q.region[0], 0, 0, NULL, NULL);
        }
    }
    if (err == CL_SUCCESS)
        err = clFinish(r->queue);
    if (err != CL_SUCCESS)
        return clattn_mpi__fail(m, CLATTN_ERR_OPENCL,
                                "staging this rank's K/V and queries failed (CL error %d)",
                                (int)err);
    return CLATTN_OK;
}

/* Whether some row of q_off..q_off+q_len-1 may see some key of
 * kv_off..kv_off+kv_len-1, from what the host knows: the rules of clattn.h
 * with i' = i + L - N anywhere in [i - N, i] when kv_lens (device data) is
 * given. Errs towards "may": a tile computed for nothing costs time, a tile
 * skipped wrongly would cost correctness. */
static int may_see(const mpi_shape *s, int q_off, int q_len, int kv_off, int kv_len)
{
    const clattn_problem *p = &s->p;
    const int64_t q_last = (int64_t)q_off + q_len - 1, kv_last = (int64_t)kv_off + kv_len - 1;
    const int64_t ip_max = q_last, ip_min = q_off - (s->has_kv_lens ? (int64_t)s->seq : 0);
    if (p->causal != CLATTN_CAUSAL_NONE && kv_off > ip_max) /* j <= i' <= i */
        return 0;
    if (p->windowed) {
        if (p->window_right >= 0 && kv_off > ip_max + p->window_right)
            return 0;
        if (p->window_left >= 0 && kv_last < ip_min - p->window_left)
            return 0;
    }
    if (p->chunk_size > 0 && !s->has_kv_lens && !p->kv_start) {
        const int64_t c = p->chunk_size; /* i' = i and S = 0: chunks of rows and keys */
        if (kv_last / c < q_off / c || kv_off / c > q_last / c)
            return 0;
    }
    return 1;
}

/* Running state of each run of rows across steps. */
typedef struct {
    int have[CLATTN_MPI_MAX_RUNS]; /* an accumulator holds something */
    int cur[CLATTN_MPI_MAX_RUNS];  /* which of the two */
} acc_state;

#define MAX_EVENTS 16

typedef struct {
    cl_event ev[MAX_EVENTS];
    int n;
} event_list;

static void release_events(event_list *e)
{
    for (int i = 0; i < e->n; ++i)
        clReleaseEvent(e->ev[i]);
    e->n = 0;
}

static clattn_status clattn_failed(const mpi_res *r, clattn_status st, const char *what, int t,
                                   mpi_msg *m)
{
    return clattn_mpi__fail(m, st, "%s at ring step %d: %s", what, t, clattn_last_error(r->ctx));
}

/* Enqueues step t's writes of the block, its tiles and merges; their events
 * go to e. */
static clattn_status enqueue_step(const mpi_shape *s, mpi_res *r, int t,
                                  const clattn_mpi_segments *blk, const unsigned char *host,
                                  acc_state *a, event_list *e, clattn_mpi_report *rep,
                                  mpi_msg *m)
{
    const clattn_buffers *L = r->local;
    const unsigned char *at = host;
    cl_event writes[2 * CLATTN_MPI_MAX_RUNS];
    int nw = 0;
    for (int u = 0; u < blk->count; ++u) {
        const int64_t kb = clattn_mpi__run_k_bytes(s, blk->length[u]);
        const int64_t vb = clattn_mpi__run_v_bytes(s, blk->length[u]);
        cl_int err = clEnqueueWriteBuffer(r->queue, r->k[u], CL_FALSE, 0, (size_t)kb, at, 0,
                                          NULL, &writes[nw]);
        if (err == CL_SUCCESS) {
            e->ev[e->n++] = writes[nw++];
            err = clEnqueueWriteBuffer(r->queue, r->v[u], CL_FALSE, 0, (size_t)vb, at + kb, 0,
                                       NULL, &writes[nw]);
        }
        if (err != CL_SUCCESS)
            return clattn_mpi__fail(m, CLATTN_ERR_OPENCL,
                                    "clEnqueueWriteBuffer of the K/V block at step %d "
                                    "failed (CL error %d)",
                                    t, (int)err);
        e->ev[e->n++] = writes[nw++];
        at += kb + vb;
    }
    for (int i = 0; i < s->me.count; ++i) {
        int use[CLATTN_MPI_MAX_RUNS], n = 0;
        for (int u = 0; u < blk->count; ++u) {
            const int diagonal = t == 0 && u == i;
            if (diagonal ||
                may_see(s, s->me.offset[i], s->me.length[i], blk->offset[u], blk->length[u]))
                use[n++] = u;
            else
                rep->tiles_skipped++;
        }
        if (n == 0)
            continue;
        /* One tile and an empty accumulator: the tile writes the accumulator. */
        const int direct = !a->have[i] && n == 1;
        cl_event tiles[CLATTN_MPI_MAX_RUNS];
        for (int k = 0; k < n; ++k) {
            const int u = use[k];
            clattn_problem tp = s->p;
            /* The LSE holds the sink: one tile per run of rows carries it
             * (the diagonal one, computed at step 0), so the merge counts it
             * once. */
            tp.sinks = s->p.sinks && t == 0 && u == i;
            clattn_buffers b;
            memset(&b, 0, sizeof b);
            b.q = r->q[i] ? r->q[i] : L->q;
            b.k = r->k[u];
            b.v = r->v[u];
            b.o = direct ? r->acc_o[i][a->cur[i]] : r->part_o[i][u];
            b.lse = direct ? r->acc_lse[i][a->cur[i]] : r->part_lse[i][u];
            b.kv_lens = L->kv_lens;
            b.kv_start = L->kv_start;
            b.alibi_slopes = L->alibi_slopes;
            b.bias = L->bias;
            b.bool_mask = L->bool_mask;
            b.sinks = tp.sinks ? L->sinks : NULL;
            const clattn_tile tile = {s->me.offset[i], s->me.length[i], blk->offset[u],
                                      blk->length[u], {0, 0}};
            const clattn_status st =
                clattn_forward_tile(r->ctx, &tp, &tile, &b, (cl_uint)nw, writes, &tiles[k]);
            if (st != CLATTN_OK)
                return clattn_failed(r, st, "clattn_forward_tile", t, m);
            e->ev[e->n++] = tiles[k];
            rep->tiles_computed++;
        }
        if (direct) {
            a->have[i] = 1;
            continue;
        }
        cl_mem po[1 + CLATTN_MPI_MAX_RUNS], pl[1 + CLATTN_MPI_MAX_RUNS];
        int np = 0;
        if (a->have[i]) {
            po[np] = r->acc_o[i][a->cur[i]];
            pl[np++] = r->acc_lse[i][a->cur[i]];
        }
        for (int k = 0; k < n; ++k) {
            po[np] = r->part_o[i][use[k]];
            pl[np++] = r->part_lse[i][use[k]];
        }
        const int out = a->have[i] ? 1 - a->cur[i] : a->cur[i];
        clattn_merge_problem mp;
        memset(&mp, 0, sizeof mp);
        mp.batch = s->p.batch;
        mp.heads = s->p.heads;
        mp.seq_q = s->me.length[i];
        mp.head_dim_v = s->p.head_dim_v;
        mp.dtype = s->p.dtype;
        mp.num_parts = np;
        cl_event done;
        const clattn_status st = clattn_merge(r->ctx, &mp, po, pl, r->acc_o[i][out],
                                              r->acc_lse[i][out], (cl_uint)n, tiles, &done);
        if (st != CLATTN_OK)
            return clattn_failed(r, st, "clattn_merge", t, m);
        e->ev[e->n++] = done;
        a->have[i] = 1;
        a->cur[i] = out;
    }
    return CLATTN_OK;
}

static void pause_briefly(void)
{
    const struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

/* Waits for the step's device work while driving MPI's progress: with
 * shared-memory and many network transports a large message moves only
 * inside MPI calls, so a rank that just sleeps in clWaitForEvents would
 * serialise the transfer after the compute. */
static clattn_status wait_device(mpi_res *r, event_list *e, int nreq, int t, mpi_msg *m)
{
    cl_int err = clFlush(r->queue);
    int comm_done = nreq == 0;
    for (int i = 0; i < e->n && err == CL_SUCCESS; ++i) {
        for (;;) {
            cl_int status = CL_QUEUED;
            err = clGetEventInfo(e->ev[i], CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status,
                                 &status, NULL);
            if (err != CL_SUCCESS)
                break;
            if (status < 0) {
                err = status;
                break;
            }
            if (status == CL_COMPLETE)
                break;
            if (comm_done) {
                err = clWaitForEvents(1, &e->ev[i]);
                break;
            }
            if (MPI_Testall(nreq, r->req, &comm_done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
                comm_done = 1; /* MPI_Waitall after the compute reports it */
            if (!comm_done)
                pause_briefly();
        }
    }
    if (err != CL_SUCCESS) {
        clFinish(r->queue);
        return clattn_mpi__fail(m, CLATTN_ERR_OPENCL,
                                "the device failed at ring step %d (CL error %d)", t, (int)err);
    }
    return CLATTN_OK;
}

static int post(MPI_Comm comm, mpi_res *r, int *nreq, unsigned char *buf, int64_t bytes,
                int peer, int send)
{
    for (int64_t off = 0, piece = 0; off < bytes; off += CLATTN_MPI_PIECE, ++piece) {
        const int64_t n = bytes - off < CLATTN_MPI_PIECE ? bytes - off : CLATTN_MPI_PIECE;
        const int rc = send ? MPI_Isend(buf + off, (int)n, MPI_BYTE, peer, (int)piece, comm,
                                        &r->req[*nreq])
                            : MPI_Irecv(buf + off, (int)n, MPI_BYTE, peer, (int)piece, comm,
                                        &r->req[*nreq]);
        if (rc != MPI_SUCCESS)
            return rc;
        ++*nreq;
    }
    return MPI_SUCCESS;
}

/* O and LSE of each run into its rows of the caller's buffers. */
static clattn_status write_out(const mpi_shape *s, mpi_res *r, const acc_state *a, mpi_msg *m)
{
    const clattn_problem *p = &s->p;
    const int64_t bh = (int64_t)p->batch * p->heads;
    const size_t zero[3] = {0, 0, 0};
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < s->me.count && err == CL_SUCCESS; ++i) {
        const int start = run_start(&s->me, i), len = s->me.length[i];
        const rows_rect o = rows_of(bh, s->me.n_local, p->head_dim_v * (int64_t)s->q_es, start, len);
        err = clEnqueueCopyBufferRect(r->queue, r->acc_o[i][a->cur[i]], r->local->o, zero,
                                      o.origin, o.region, o.region[0], 0, o.pitch, 0, 0, NULL,
                                      NULL);
        if (err == CL_SUCCESS && r->local->lse) {
            const rows_rect l = rows_of(bh, s->me.n_local, 4, start, len);
            err = clEnqueueCopyBufferRect(r->queue, r->acc_lse[i][a->cur[i]], r->local->lse,
                                          zero, l.origin, l.region, l.region[0], 0, l.pitch, 0,
                                          0, NULL, NULL);
        }
    }
    if (err == CL_SUCCESS)
        err = clFinish(r->queue);
    if (err != CL_SUCCESS)
        return clattn_mpi__fail(m, CLATTN_ERR_OPENCL,
                                "copying O and LSE out failed (CL error %d)", (int)err);
    return CLATTN_OK;
}

clattn_status clattn_mpi__ring(MPI_Comm comm, const mpi_shape *s, mpi_res *r,
                               clattn_mpi_report *rep, double *step_ms, mpi_msg *m)
{
    const int P = s->nranks, me = s->rank;
    const int next = (me + 1) % P, prev = (me + P - 1) % P;
    clattn_status failed = CLATTN_OK;
    acc_state a;
    memset(&a, 0, sizeof a);
    int cur = 0;
    rep->steps = P;
    const double ring0 = MPI_Wtime();
    for (int t = 0; t < P; ++t) {
        clattn_mpi_segments blk, incoming;
        clattn_mpi_shard_segments(&s->shard, s->seq, P, (me - t + P) % P, &blk);
        clattn_mpi_shard_segments(&s->shard, s->seq, P, (me - t - 1 + 2 * P) % P, &incoming);
        const double t0 = MPI_Wtime();
        int nreq = 0, rc = MPI_SUCCESS;
        if (t < P - 1) {
            rc = post(comm, r, &nreq, r->host[1 - cur], clattn_mpi__block_bytes(s, &incoming),
                      prev, 0);
            const int64_t out = clattn_mpi__block_bytes(s, &blk);
            if (rc == MPI_SUCCESS)
                rc = post(comm, r, &nreq, r->host[cur], out, next, 1);
            rep->bytes_sent += out;
        }
        if (rc != MPI_SUCCESS) /* the others would wait for this block forever */
            return clattn_mpi__fail(m, CLATTN_ERR_IO, "posting the ring's messages at step %d "
                                    "failed", t);
        if (failed == CLATTN_OK && s->me.count > 0) {
            event_list e = {{0}, 0};
            failed = enqueue_step(s, r, t, &blk, r->host[cur], &a, &e, rep, m);
            if (failed == CLATTN_OK)
                failed = wait_device(r, &e, nreq, t, m);
            else
                clFinish(r->queue);
            release_events(&e);
        }
        const double t1 = MPI_Wtime();
        if (MPI_Waitall(nreq, r->req, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            return clattn_mpi__fail(m, CLATTN_ERR_IO, "MPI_Waitall at ring step %d failed", t);
        const double t2 = MPI_Wtime();
        rep->compute_ms += (t1 - t0) * 1e3;
        rep->comm_wait_ms += (t2 - t1) * 1e3;
        if (t < P - 1)
            rep->moving_ms += (t2 - t0) * 1e3;
        if (step_ms)
            step_ms[t] = (t2 - t0) * 1e3;
        cur = 1 - cur;
    }
    rep->ring_ms = (MPI_Wtime() - ring0) * 1e3;
    if (failed != CLATTN_OK)
        return failed;
    return write_out(s, r, &a, m);
}
