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

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    bench_args a;
    if (parse(argc, argv, &a) != 0 || a.seq < P || a.heads % a.kv_heads) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -np P attn-mpi-bench [--batch B] [--heads H] "
                            "[--kv-heads Hkv] [--seq N >= P] [--dim D] "
                            "[--dtype f32|f16|bf16] [--repeats R]\n");
        MPI_Finalize();
        return 2;
    }
    clattn_context *ctx;
    clattn_status st = clattn_context_create(NULL, &ctx);
    int bad = st != CLATTN_OK;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, comm);
    if (bad) {
        if (rank == 0)
            fprintf(stderr, "attn-mpi-bench: no clattn context on some rank\n");
        MPI_Finalize();
        return 1;
    }
    cl_context cl;
    cl_command_queue queue;
    cl_device_id dev;
    clattn_context_get_cl(ctx, &cl, &queue, &dev);

    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = a.batch;
    p.heads = a.heads;
    p.kv_heads = a.kv_heads;
    p.seq_q = p.seq_kv = a.seq;
    p.head_dim = a.dim;
    p.dtype = a.dtype;
    clattn_mpi_segments me;
    clattn_mpi_shard_segments(NULL, a.seq, P, rank, &me);
    const int n = me.n_local;
    const size_t es = dtype_size(a.dtype);
    const size_t q_bytes = (size_t)a.batch * a.heads * n * a.dim * es;
    const size_t kv_bytes = (size_t)a.batch * a.kv_heads * n * a.dim * es;
    const size_t lse_bytes = (size_t)a.batch * a.heads * n * 4;
    uint64_t seed = 12345u + (uint64_t)rank;
    clattn_buffers b;
    memset(&b, 0, sizeof b);
    b.q = upload(cl, queue, q_bytes, a.dtype, &seed);
    b.k = upload(cl, queue, kv_bytes, a.dtype, &seed);
    b.v = upload(cl, queue, kv_bytes, a.dtype, &seed);
    b.o = upload(cl, queue, q_bytes, a.dtype, NULL);
    b.lse = upload(cl, queue, lse_bytes, a.dtype, NULL);
    cl_mem part_o = upload(cl, queue, q_bytes, a.dtype, NULL);
    cl_mem part_lse = upload(cl, queue, lse_bytes, a.dtype, NULL);
    cl_mem acc_o = upload(cl, queue, q_bytes, a.dtype, NULL);
    cl_mem acc_lse = upload(cl, queue, lse_bytes, a.dtype, NULL);
    unsigned char *host[2] = {malloc(2 * kv_bytes), malloc(2 * kv_bytes)};
    memset(host[0], 1, 2 * kv_bytes);

    const int R = a.repeats;
    double *compute = calloc((size_t)R, sizeof(double));
    double *merge = calloc((size_t)R, sizeof(double));
    double *comm_ms = calloc((size_t)R, sizeof(double));
    double *step0 = calloc((size_t)R, sizeof(double));
    double *mid = calloc((size_t)R, sizeof(double));
    double *steps = calloc((size_t)P, sizeof(double));
    char err[1024] = "";
    int failed = 0;

    /* compute alone: the block to the device and the tile; then the merge */
    const clattn_tile tile = {me.offset[0], n, me.offset[0], n, {0, 0}};
    clattn_buffers tb = b;
    tb.o = part_o;
    tb.lse = part_lse;
    clattn_merge_problem mp;
    memset(&mp, 0, sizeof mp);
    mp.batch = a.batch;
    mp.heads = a.heads;
    mp.seq_q = n;
    mp.head_dim_v = a.dim;
    mp.dtype = a.dtype;
    mp.num_parts = 2;
    const cl_mem po[2] = {b.o, part_o}, pl[2] = {b.lse, part_lse};
    for (int r = -1; r < R; ++r) { /* r = -1 warms up (kernel builds) */
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        clEnqueueWriteBuffer(queue, b.k, CL_FALSE, 0, kv_bytes, host[0], 0, NULL, NULL);
        clEnqueueWriteBuffer(queue, b.v, CL_FALSE, 0, kv_bytes, host[0] + kv_bytes, 0, NULL,
                             NULL);
        st = clattn_forward_tile(ctx, &p, &tile, &tb, 0, NULL, NULL);
        clFinish(queue);
        const double ms = slowest(comm, (MPI_Wtime() - t0) * 1e3);
        MPI_Barrier(comm);
        t0 = MPI_Wtime();
        if (st == CLATTN_OK)
            st = clattn_merge(ctx, &mp, po, pl, acc_o, acc_lse, 0, NULL, NULL);
        clFinish(queue);
        const double mms = slowest(comm, (MPI_Wtime() - t0) * 1e3);
        if (st != CLATTN_OK) {
            fprintf(stderr, "rank %d: %s\n", rank, clattn_last_error(ctx));
            failed = 1;
        }
        if (r >= 0) {
            compute[r] = ms;
            merge[r] = mms;
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, comm);
    /* communication alone: one block each way round the ring */
    const int next = (rank + 1) % P, prev = (rank + P - 1) % P;
    for (int r = -1; r < R && P > 1; ++r) {
        MPI_Request req[2];
        MPI_Barrier(comm);
        const double t0 = MPI_Wtime();
        MPI_Irecv(host[1], (int)(2 * kv_bytes), MPI_BYTE, prev, 0, comm, &req[0]);
        MPI_Isend(host[0], (int)(2 * kv_bytes), MPI_BYTE, next, 0, comm, &req[1]);
        MPI_Waitall(2, req, MPI_STATUSES_IGNORE);
        const double ms = slowest(comm, (MPI_Wtime() - t0) * 1e3);
        if (r >= 0)
            comm_ms[r] = ms;
    }
    /* the ring itself */
    double total = 0.0;
    for (int r = -1; r < R && !failed && P > 1; ++r) {
        clattn_mpi_options opts;
        clattn_mpi_report rep;
        memset(&opts, 0, sizeof opts);
        opts.error = err;
        opts.error_size = sizeof err;
        opts.report = &rep;
        opts.step_ms = steps;
        MPI_Barrier(comm);
        st = clattn_mpi_forward(comm, ctx, &p, NULL, &b, &opts);
        if (st != CLATTN_OK) {
            fprintf(stderr, "%s\n", err);
            failed = 1;
            break;
        }
        double middle = 0.0;
        for (int t = 1; t < P - 1; ++t)
            middle += steps[t] / (P - 2);
        const double s0 = slowest(comm, steps[0]), sm = slowest(comm, middle);
        const double tot = slowest(comm, rep.total_ms);
        if (r >= 0) {
            step0[r] = s0;
            mid[r] = sm;
            total += tot / R;
        }
    }
    if (rank == 0 && !failed) {
        char name[256] = "?";
        clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
        const double c = median(compute, R), mg = median(merge, R);
        const double m = P > 1 ? median(comm_ms, R) : 0.0;
        const double s0 = P > 1 ? median(step0, R) : 0.0, sm = P > 2 ? median(mid, R) : 0.0;
        const double flop = 4.0 * a.batch * a.heads * (double)n * n * a.dim;
        const double bytes = 2.0 * (double)kv_bytes;
        printf("device: %s\n", name);
        printf("P=%d B=%d H=%d Hkv=%d N=%d D=%d dtype=%s n=N/P=%d repeats=%d\n", P, a.batch,
               a.heads, a.kv_heads, a.seq, a.dim,
               a.dtype == CLATTN_F32 ? "f32" : a.dtype == CLATTN_F16 ? "f16" : "bf16", n, R);
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
        printf("whole call           %9.3f ms (mean; P=%d steps)\n", total, P);
    }
    free(compute);
    free(merge);
    free(comm_ms);
    free(step0);
    free(mid);
    free(steps);
    free(host[0]);
    free(host[1]);
    const cl_mem all[] = {b.q, b.k, b.v, b.o, b.lse, part_o, part_lse, acc_o, acc_lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    clattn_context_destroy(ctx);
    MPI_Finalize();
    return failed;
}
