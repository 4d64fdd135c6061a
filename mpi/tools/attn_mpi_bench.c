/* attn-mpi-bench: what one ring step costs, under mpirun.
 *
 *   mpirun -np P attn-mpi-bench [--batch B] [--heads H] [--kv-heads Hkv]
 *       [--seq N] [--dim D] [--dtype f32|f16|bf16] [--repeats R]
 *
 * A non-causal problem split evenly, so every step does the same work. Each
 * measurement is the slowest rank's time of a repeat, median over R:
 *   tile     step 0's device work alone: the K/V block written to the device
 *            and the tile (n x n, n = N / P);
 *   merge    what a later step adds: the LSE merge of two partial results;
 *   comm     one K/V block sent to the next rank and one received from the
 *            previous, with nothing else running (MPI_Isend / MPI_Irecv);
 *   step 0   clattn_mpi_forward's first step, tile and comm at once;
 *   step t   its middle steps (1 .. P-2, tile, merge and comm at once).
 * overlap efficiency = (compute + comm - step) / min(compute, comm): 1 when
 * the shorter is fully hidden, 0 when they run one after the other. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn_mpi.h"

typedef struct {
    int batch, heads, kv_heads, seq, dim, repeats;
    clattn_dtype dtype;
} bench_args;

static int parse(int argc, char **argv, bench_args *a)
{
    a->batch = 1;
    a->heads = 8;
    a->kv_heads = 0;
    a->seq = 2048;
    a->dim = 64;
    a->repeats = 5;
    a->dtype = CLATTN_F32;
    for (int i = 1; i < argc; ++i) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *target = strcmp(k, "--batch") == 0      ? &a->batch
                      : strcmp(k, "--heads") == 0    ? &a->heads
                      : strcmp(k, "--kv-heads") == 0 ? &a->kv_heads
                      : strcmp(k, "--seq") == 0      ? &a->seq
                      : strcmp(k, "--dim") == 0      ? &a->dim
                      : strcmp(k, "--repeats") == 0  ? &a->repeats
                                                     : NULL;
        if (!v)
            return -1;
        if (target) {
            *target = atoi(v);
        } else if (strcmp(k, "--dtype") == 0) {
            if (strcmp(v, "f32") == 0)
                a->dtype = CLATTN_F32;
            else if (strcmp(v, "f16") == 0)
                a->dtype = CLATTN_F16;
            else if (strcmp(v, "bf16") == 0)
                a->dtype = CLATTN_BF16;
            else
                return -1;
        } else {
            return -1;
        }
        ++i;
    }
    if (!a->kv_heads)
        a->kv_heads = a->heads;
    return a->batch > 0 && a->heads > 0 && a->seq > 0 && a->dim > 0 && a->repeats > 0 ? 0 : -1;
}

static size_t dtype_size(clattn_dtype t)
{
    return t == CLATTN_F32 ? 4 : 2;
}

/* Values in +-[0.5, 1) of the dtype, made from random bits. */
static void fill(unsigned char *p, size_t elems, clattn_dtype t, uint64_t *s)
{
    for (size_t i = 0; i < elems; ++i) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t r = (uint32_t)(*s >> 33);
        if (t == CLATTN_F32) {
            const float f = (float)(r & 0xffff) / 131072.0f + 0.5f;
            const float v = (r & 0x10000) ? -f : f;
            memcpy(p + 4 * i, &v, 4);
        } else {
            const uint16_t h = t == CLATTN_F16 ? (uint16_t)(0x3800 | (r & 0x3ff) | (r & 0x8000))
                                               : (uint16_t)(0x3f00 | (r & 0x7f) | (r & 0x8000));
            memcpy(p + 2 * i, &h, 2);
        }
    }
}

static cl_mem upload(cl_context cl, cl_command_queue q, size_t bytes, clattn_dtype t,
                     uint64_t *seed)
{
    cl_int err;
    cl_mem m = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
    if (!m || !seed || !bytes)
        return m;
    unsigned char *h = malloc(bytes);
    if (!h) {
        clReleaseMemObject(m);
        return NULL;
    }
    fill(h, bytes / dtype_size(t), t, seed);
    clEnqueueWriteBuffer(q, m, CL_TRUE, 0, bytes, h, 0, NULL, NULL);
    free(h);
    return m;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* (compute + comm - step) / min(compute, comm) */
static double efficiency(double compute, double comm, double step)
{
    const double lo = compute < comm ? compute : comm;
    return lo > 0 ? (compute + comm - step) / lo : 0.0;
}

/* The slowest rank's value. */
static double slowest(MPI_Comm comm, double ms)
{
    MPI_Allreduce(MPI_IN_PLACE, &ms, 1, MPI_DOUBLE, MPI_MAX, comm);
    return ms;
}

/* One run's state: the rank's buffers and the measurements of each repeat. */
typedef struct {
    bench_args a;
    MPI_Comm comm;
    int rank, P, n;
    clattn_context *ctx;
    cl_context cl;
    cl_command_queue queue;
    cl_device_id dev;
    clattn_problem p;
    clattn_mpi_segments me;
    size_t q_bytes, kv_bytes, lse_bytes;
    clattn_buffers b;
    cl_mem part_o, part_lse, acc_o, acc_lse;
    unsigned char *host[2];
    double *compute, *merge, *comm_ms, *step0, *mid, *steps; /* per repeat (steps: per step) */
    double total;
} bench;

static void setup(bench *B)
{
    const bench_args *a = &B->a;
    clattn_context_get_cl(B->ctx, &B->cl, &B->queue, &B->dev);
    memset(&B->p, 0, sizeof B->p);
    B->p.batch = a->batch;
    B->p.heads = a->heads;
    B->p.kv_heads = a->kv_heads;
    B->p.seq_q = B->p.seq_kv = a->seq;
    B->p.head_dim = a->dim;
    B->p.dtype = a->dtype;
    clattn_mpi_shard_segments(NULL, a->seq, B->P, B->rank, &B->me);
    B->n = B->me.n_local;
    const size_t es = dtype_size(a->dtype);
    B->q_bytes = (size_t)a->batch * a->heads * B->n * a->dim * es;
    B->kv_bytes = (size_t)a->batch * a->kv_heads * B->n * a->dim * es;
    B->lse_bytes = (size_t)a->batch * a->heads * B->n * 4;
    uint64_t seed = 12345u + (uint64_t)B->rank;
    memset(&B->b, 0, sizeof B->b);
    B->b.q = upload(B->cl, B->queue, B->q_bytes, a->dtype, &seed);
    B->b.k = upload(B->cl, B->queue, B->kv_bytes, a->dtype, &seed);
    B->b.v = upload(B->cl, B->queue, B->kv_bytes, a->dtype, &seed);
    B->b.o = upload(B->cl, B->queue, B->q_bytes, a->dtype, NULL);
    B->b.lse = upload(B->cl, B->queue, B->lse_bytes, a->dtype, NULL);
    B->part_o = upload(B->cl, B->queue, B->q_bytes, a->dtype, NULL);
    B->part_lse = upload(B->cl, B->queue, B->lse_bytes, a->dtype, NULL);
    B->acc_o = upload(B->cl, B->queue, B->q_bytes, a->dtype, NULL);
    B->acc_lse = upload(B->cl, B->queue, B->lse_bytes, a->dtype, NULL);
    B->host[0] = malloc(2 * B->kv_bytes);
    B->host[1] = malloc(2 * B->kv_bytes);
    memset(B->host[0], 1, 2 * B->kv_bytes);
    const size_t R = (size_t)a->repeats;
    B->compute = calloc(R, sizeof(double));
    B->merge = calloc(R, sizeof(double));
    B->comm_ms = calloc(R, sizeof(double));
    B->step0 = calloc(R, sizeof(double));
    B->mid = calloc(R, sizeof(double));
    B->steps = calloc((size_t)B->P, sizeof(double));
    B->total = 0.0;
}

/* Compute alone: the block to the device and the tile; then the merge.
 * Returns 1 when a call failed on some rank. */
static int time_compute(bench *B)
{
    const bench_args *a = &B->a;
    const clattn_tile tile = {B->me.offset[0], B->n, B->me.offset[0], B->n, {0, 0}};
    clattn_buffers tb = B->b;
    tb.o = B->part_o;
    tb.lse = B->part_lse;
    clattn_merge_problem mp;
    memset(&mp, 0, sizeof mp);
    mp.batch = a->batch;
    mp.heads = a->heads;
    mp.seq_q = B->n;
    mp.head_dim_v = a->dim;
    mp.dtype = a->dtype;
    mp.num_parts = 2;
    const cl_mem po[2] = {B->b.o, B->part_o}, pl[2] = {B->b.lse, B->part_lse};
    int failed = 0;
    for (int r = -1; r < a->repeats; ++r) { /* r = -1 warms up (kernel builds) */
        MPI_Barrier(B->comm);
        double t0 = MPI_Wtime();
        clEnqueueWriteBuffer(B->queue, B->b.k, CL_FALSE, 0, B->kv_bytes, B->host[0], 0, NULL,
                             NULL);
        clEnqueueWriteBuffer(B->queue, B->b.v, CL_FALSE, 0, B->kv_bytes,
                             B->host[0] + B->kv_bytes, 0, NULL, NULL);
        clattn_status st = clattn_forward_tile(B->ctx, &B->p, &tile, &tb, 0, NULL, NULL);
        clFinish(B->queue);
        const double ms = slowest(B->comm, (MPI_Wtime() - t0) * 1e3);
        MPI_Barrier(B->comm);
        t0 = MPI_Wtime();
        if (st == CLATTN_OK)
            st = clattn_merge(B->ctx, &mp, po, pl, B->acc_o, B->acc_lse, 0, NULL, NULL);
        clFinish(B->queue);
        const double mms = slowest(B->comm, (MPI_Wtime() - t0) * 1e3);
        if (st != CLATTN_OK) {
            fprintf(stderr, "rank %d: %s\n", B->rank, clattn_last_error(B->ctx));
            failed = 1;
        }
        if (r >= 0) {
            B->compute[r] = ms;
            B->merge[r] = mms;
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, B->comm);
    return failed;
}

/* Communication alone: one block each way round the ring. */
static void time_comm(bench *B)
{
    const int next = (B->rank + 1) % B->P, prev = (B->rank + B->P - 1) % B->P;
    const int bytes = (int)(2 * B->kv_bytes);
    for (int r = -1; r < B->a.repeats && B->P > 1; ++r) {
        MPI_Request req[2];
        MPI_Barrier(B->comm);
        const double t0 = MPI_Wtime();
        MPI_Irecv(B->host[1], bytes, MPI_BYTE, prev, 0, B->comm, &req[0]);
        MPI_Isend(B->host[0], bytes, MPI_BYTE, next, 0, B->comm, &req[1]);
        MPI_Waitall(2, req, MPI_STATUSES_IGNORE);
        const double ms = slowest(B->comm, (MPI_Wtime() - t0) * 1e3);
        if (r >= 0)
            B->comm_ms[r] = ms;
    }
}

/* The ring itself: step 0, the middle steps and the whole call. Returns 1
 * when a call failed. */
static int time_ring(bench *B)
{
    const int P = B->P, R = B->a.repeats;
    char err[1024] = "";
    for (int r = -1; r < R && P > 1; ++r) {
        clattn_mpi_options opts;
        clattn_mpi_report rep;
        memset(&opts, 0, sizeof opts);
        opts.error = err;
        opts.error_size = sizeof err;
        opts.report = &rep;
        opts.step_ms = B->steps;
        MPI_Barrier(B->comm);
        if (clattn_mpi_forward(B->comm, B->ctx, &B->p, NULL, &B->b, &opts) != CLATTN_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double middle = 0.0;
        for (int t = 1; t < P - 1; ++t)
            middle += B->steps[t] / (P - 2);
        const double s0 = slowest(B->comm, B->steps[0]), sm = slowest(B->comm, middle);
        const double tot = slowest(B->comm, rep.total_ms);
        if (r >= 0) {
            B->step0[r] = s0;
            B->mid[r] = sm;
            B->total += tot / R;
        }
    }
    return 0;
}

static void report(bench *B)
{
    const bench_args *a = &B->a;
    const int P = B->P, R = a->repeats, n = B->n;
    char name[256] = "?";
    clGetDeviceInfo(B->dev, CL_DEVICE_NAME, sizeof name, name, NULL);
    const double c = median(B->compute, R), mg = median(B->merge, R);
    const double m = P > 1 ? median(B->comm_ms, R) : 0.0;
    const double s0 = P > 1 ? median(B->step0, R) : 0.0, sm = P > 2 ? median(B->mid, R) : 0.0;
    const double flop = 4.0 * a->batch * a->heads * (double)n * n * a->dim;
    const double bytes = 2.0 * (double)B->kv_bytes;
    printf("device: %s\n", name);
    printf("P=%d B=%d H=%d Hkv=%d N=%d D=%d dtype=%s n=N/P=%d repeats=%d\n", P, a->batch,
           a->heads, a->kv_heads, a->seq, a->dim,
           a->dtype == CLATTN_F32 ? "f32" : a->dtype == CLATTN_F16 ? "f16" : "bf16", n, R);
    printf("tile (write + tile)  %9.3f ms  (%.2f GFLOP/s per rank: %.3g flop)\n", c,
           flop / (c * 1e6), flop);
    printf("merge                %9.3f ms\n", mg);
    printf("comm                 %9.3f ms  (%.3g bytes: %.3f GB/s per link)\n", m, bytes,
           m > 0 ? bytes / (m * 1e6) : 0.0);
    printf("step 0               %9.3f ms  (tile | comm): overlap efficiency %.2f\n", s0,
           efficiency(c, m, s0));
    if (P > 2)
        printf("steps 1..P-2         %9.3f ms  (tile + merge | comm): overlap efficiency "
               "%.2f\n",
               sm, efficiency(c + mg, m, sm));
    printf("compute/comm         %9.2f\n", m > 0 ? c / m : INFINITY);
    printf("whole call           %9.3f ms (mean; P=%d steps)\n", B->total, P);
}

static void teardown(bench *B)
{
    free(B->compute);
    free(B->merge);
    free(B->comm_ms);
    free(B->step0);
    free(B->mid);
    free(B->steps);
    free(B->host[0]);
    free(B->host[1]);
    const cl_mem all[] = {B->b.q,    B->b.k,      B->b.v,    B->b.o,   B->b.lse,
                          B->part_o, B->part_lse, B->acc_o, B->acc_lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    bench B;
    memset(&B, 0, sizeof B);
    B.comm = MPI_COMM_WORLD;
    MPI_Comm_rank(B.comm, &B.rank);
    MPI_Comm_size(B.comm, &B.P);
    if (parse(argc, argv, &B.a) != 0 || B.a.seq < B.P || B.a.heads % B.a.kv_heads) {
        if (B.rank == 0)
            fprintf(stderr, "usage: mpirun -np P attn-mpi-bench [--batch B] [--heads H] "
                            "[--kv-heads Hkv] [--seq N >= P] [--dim D] "
                            "[--dtype f32|f16|bf16] [--repeats R]\n");
        MPI_Finalize();
        return 2;
    }
    int bad = clattn_context_create(NULL, &B.ctx) != CLATTN_OK;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, B.comm);
    if (bad) {
        if (B.rank == 0)
            fprintf(stderr, "attn-mpi-bench: no clattn context on some rank\n");
        clattn_context_destroy(B.ctx);
        MPI_Finalize();
        return 1;
    }
    setup(&B);
    int failed = time_compute(&B);
    time_comm(&B);
    if (!failed)
        failed = time_ring(&B);
    if (B.rank == 0 && !failed)
        report(&B);
    teardown(&B);
    clattn_context_destroy(B.ctx);
    MPI_Finalize();
    return failed;
}
