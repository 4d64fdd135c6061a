/* Where each rank's tokens lie in the sequence (clattn_mpi_shard), and the
 * size of the K/V block each rank sends round the ring. */
#include <string.h>

#include "mpi_internal.h"

/* Chunk c of 2P: the first N % 2P chunks take one token more, so lengths
 * differ by at most one and any N works. */
static void zigzag_chunk(int seq, int nranks, int c, int *offset, int *length)
{
    const int chunks = 2 * nranks, base = seq / chunks, rem = seq % chunks;
    *offset = c * base + (c < rem ? c : rem);
    *length = base + (c < rem ? 1 : 0);
}

static void add_run(clattn_mpi_segments *g, int offset, int length)
{
    if (length <= 0)
        return;
    g->offset[g->count] = offset;
    g->length[g->count] = length;
    g->count++;
    g->n_local += length;
}

clattn_status clattn_mpi_shard_segments(const clattn_mpi_shard *shard, int seq_len, int nranks,
                                        int rank, clattn_mpi_segments *out)
{
    if (!out || seq_len < 1 || nranks < 1 || rank < 0 || rank >= nranks)
        return CLATTN_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    const clattn_mpi_shard even = {CLATTN_MPI_CONTIGUOUS, NULL, {0, 0}};
    if (!shard)
        shard = &even;
    if (shard->reserved[0] || shard->reserved[1])
        return CLATTN_ERR_INVALID_ARGUMENT;
    if (shard->layout == CLATTN_MPI_ZIGZAG) {
        if (shard->counts || nranks > (1 << 29))
            return CLATTN_ERR_INVALID_ARGUMENT;
        int off, len;
        zigzag_chunk(seq_len, nranks, rank, &off, &len);
        add_run(out, off, len);
        zigzag_chunk(seq_len, nranks, 2 * nranks - 1 - rank, &off, &len);
        add_run(out, off, len);
        return CLATTN_OK;
    }
    if (shard->layout != CLATTN_MPI_CONTIGUOUS)
        return CLATTN_ERR_INVALID_ARGUMENT;
    if (!shard->counts) {
        const int base = seq_len / nranks, rem = seq_len % nranks;
        add_run(out, rank * base + (rank < rem ? rank : rem), base + (rank < rem ? 1 : 0));
        return CLATTN_OK;
    }
    int64_t sum = 0, offset = 0;
    for (int r = 0; r < nranks; ++r) {
        if (shard->counts[r] < 0)
            return CLATTN_ERR_INVALID_ARGUMENT;
        if (r == rank)
            offset = sum;
        sum += shard->counts[r];
    }
    if (sum != seq_len)
        return CLATTN_ERR_INVALID_ARGUMENT;
    add_run(out, (int)offset, shard->counts[rank]);
    return CLATTN_OK;
}

int64_t clattn_mpi__run_k_bytes(const mpi_shape *s, int len)
{
    return (int64_t)s->p.batch * s->p.kv_heads * len * s->p.head_dim * (int64_t)s->k_es;
}

int64_t clattn_mpi__run_v_bytes(const mpi_shape *s, int len)
{
    return (int64_t)s->p.batch * s->p.kv_heads * len * s->p.head_dim_v * (int64_t)s->v_es;
}

int64_t clattn_mpi__block_bytes(const mpi_shape *s, const clattn_mpi_segments *g)
{
    int64_t bytes = 0;
    for (int u = 0; u < g->count; ++u)
        bytes += clattn_mpi__run_k_bytes(s, g->length[u]) + clattn_mpi__run_v_bytes(s, g->length[u]);
    return bytes;
}

clattn_status clattn_mpi__shape_shard(mpi_shape *s, const clattn_mpi_shard *shard, mpi_msg *m)
{
    const clattn_mpi_shard even = {CLATTN_MPI_CONTIGUOUS, NULL, {0, 0}};
    s->shard = shard ? *shard : even;
    if (s->shard.layout != CLATTN_MPI_CONTIGUOUS && s->shard.layout != CLATTN_MPI_ZIGZAG)
        return clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT, "shard: unknown layout %d",
                                (int)s->shard.layout);
    if (s->shard.reserved[0] || s->shard.reserved[1])
        return clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT,
                                "shard: reserved fields must be zero");
    if (s->shard.layout == CLATTN_MPI_ZIGZAG && s->shard.counts)
        return clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT,
                                "shard: ZIGZAG takes no counts (they follow from N and P)");
    if (s->shard.counts) {
        int64_t sum = 0;
        for (int r = 0; r < s->nranks; ++r) {
            if (s->shard.counts[r] < 0)
                return clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT,
                                        "shard: counts[%d] = %d is negative", r,
                                        s->shard.counts[r]);
            sum += s->shard.counts[r];
        }
        if (sum != s->seq)
            return clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT,
                                    "shard: counts sum to %lld over %d ranks, the sequence "
                                    "has %d tokens",
                                    (long long)sum, s->nranks, s->seq);
    }
    s->max_run = 0;
    s->max_block = 0;
    for (int r = 0; r < s->nranks; ++r) {
        clattn_mpi_segments g;
        if (clattn_mpi_shard_segments(&s->shard, s->seq, s->nranks, r, &g) != CLATTN_OK)
            return clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT,
                                    "shard: rank %d's tokens cannot be placed", r);
        if (r == s->rank)
            s->me = g;
        for (int u = 0; u < g.count; ++u)
            if (g.length[u] > s->max_run)
                s->max_run = g.length[u];
        const int64_t b = clattn_mpi__block_bytes(s, &g);
        if (b > s->max_block)
            s->max_block = b;
    }
    return CLATTN_OK;
}
