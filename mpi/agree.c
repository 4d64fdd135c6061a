/* Agreement across ranks: before the ring (every rank valid, and all with
 * the same problem and shard) and after it (did any rank fail). Each is one
 * MPI_Allreduce, so a rank that fails anywhere still takes part in exactly
 * the collectives the others make, and nobody waits forever. */
#include <stdio.h>
#include <string.h>

#include "mpi_internal.h"

clattn_status clattn_mpi__fail(mpi_msg *m, clattn_status status, const char *fmt, ...)
{
    if (m && m->error && m->error_size > 0) {
        int n = snprintf(m->error, m->error_size, "clattn_mpi: rank %d: ", m->rank);
        if (n >= 0 && (size_t)n < m->error_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(m->error + n, m->error_size - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return status;
}

/* A failure travels as (P - rank) * 256 + status, so MPI_MAX picks the
 * lowest failing rank and carries its status along. */
static int64_t encode(int nranks, int rank, clattn_status st)
{
    return st == CLATTN_OK ? 0 : (int64_t)(nranks - rank) * 256 + (int64_t)st;
}

static clattn_status decode(int64_t v, int nranks, int *rank)
{
    *rank = nranks - (int)(v / 256);
    return (clattn_status)(v % 256);
}

static uint64_t fnv1a(uint64_t h, int64_t x)
{
    for (int i = 0; i < 8; ++i) {
        h ^= (uint64_t)(x >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
    }
    return h;
}

static int64_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (int64_t)u;
}

/* A mask's three strides as one non-negative field. */
static int64_t strides_hash(const clattn_mask_strides *st)
{
    return (int64_t)(fnv1a(fnv1a(fnv1a(14695981039346656037ull, st->batch), st->head),
                           st->row) >>
                     1);
}

#define NUM_FIELDS 31

/* The fields every rank must give alike, with the names a message uses. */
static void problem_fields(const mpi_shape *s, int64_t *f, const char **names)
{
    const clattn_problem *p = &s->p;
    int n = 0;
#define FIELD(name, value) (names[n] = (name), f[n++] = (int64_t)(value))
    FIELD("communicator size", s->nranks);
    FIELD("batch", p->batch);
    FIELD("heads", p->heads);
    FIELD("kv_heads", p->kv_heads);
    FIELD("sequence length", s->seq);
    FIELD("head_dim", p->head_dim);
    FIELD("head_dim_v", p->head_dim_v);
    FIELD("dtype", p->dtype);
    FIELD("scale", float_bits(p->scale));
    FIELD("softcap", float_bits(p->softcap));
    FIELD("causal", p->causal);
    FIELD("windowed", p->windowed);
    FIELD("window_left", p->window_left);
    FIELD("window_right", p->window_right);
    FIELD("chunk_size", p->chunk_size);
    FIELD("sinks", p->sinks);
    FIELD("alibi", p->alibi);
    FIELD("alibi_mode", p->alibi_mode);
    FIELD("kv_start", p->kv_start);
    FIELD("kv_lens given", s->has_kv_lens);
    FIELD("bias.enabled", p->bias.enabled);
    FIELD("bias.dtype", p->bias.dtype);
    FIELD("bias.strides", strides_hash(&p->bias.strides));
    FIELD("bool_mask.enabled", p->bool_mask.enabled);
    FIELD("bool_mask.strides", strides_hash(&p->bool_mask.strides));
    FIELD("k_storage", p->k_storage.format);
    FIELD("v_storage", p->v_storage.format);
    FIELD("path", p->path);
    FIELD("shard layout", s->shard.layout);
    uint64_t h = 14695981039346656037ull;
    if (s->shard.counts)
        for (int r = 0; r < s->nranks; ++r)
            h = fnv1a(h, s->shard.counts[r]);
    FIELD("shard counts", s->shard.counts != NULL);
    FIELD("shard counts' values", h >> 1);
#undef FIELD
}

clattn_status clattn_mpi__agree(MPI_Comm comm, const mpi_shape *s, clattn_status local,
                                mpi_msg *m)
{
    int64_t buf[1 + 2 * NUM_FIELDS], f[NUM_FIELDS];
    const char *names[NUM_FIELDS];
    memset(buf, 0, sizeof buf);
    buf[0] = encode(s->nranks, s->rank, local);
    if (local == CLATTN_OK) {
        problem_fields(s, f, names);
        for (int i = 0; i < NUM_FIELDS; ++i) {
            buf[1 + i] = f[i];
            buf[1 + NUM_FIELDS + i] = -f[i];
        }
    }
    if (MPI_Allreduce(MPI_IN_PLACE, buf, 1 + 2 * NUM_FIELDS, MPI_INT64_T, MPI_MAX, comm) !=
        MPI_SUCCESS)
        return clattn_mpi__fail(m, CLATTN_ERR_IO, "MPI_Allreduce (argument agreement) failed");
    if (local != CLATTN_OK)
        return local; /* the message is this rank's own */
    if (buf[0] != 0) {
        int bad;
        const clattn_status st = decode(buf[0], s->nranks, &bad);
        return clattn_mpi__fail(m, st,
                                "rank %d failed before the ring (%s); see its message; "
                                "nothing was computed",
                                bad, clattn_status_string(st));
    }
    for (int i = 0; i < NUM_FIELDS; ++i)
        if (buf[1 + i] != -buf[1 + NUM_FIELDS + i])
            return clattn_mpi__fail(m, CLATTN_ERR_INVALID_ARGUMENT,
                                    "the ranks disagree on the problem's %s (this rank "
                                    "%lld, smallest %lld, largest %lld); every rank must "
                                    "pass the same problem and shard",
                                    names[i], (long long)f[i],
                                    (long long)-buf[1 + NUM_FIELDS + i], (long long)buf[1 + i]);
    return CLATTN_OK;
}

clattn_status clattn_mpi__outcome(MPI_Comm comm, int nranks, clattn_status local, mpi_msg *m)
{
    int rank = m->rank;
    int64_t v = encode(nranks, rank, local);
    if (MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MAX, comm) != MPI_SUCCESS)
        return clattn_mpi__fail(m, CLATTN_ERR_IO, "MPI_Allreduce (outcome) failed");
    if (local != CLATTN_OK || v == 0)
        return local;
    int bad;
    const clattn_status st = decode(v, nranks, &bad);
    return clattn_mpi__fail(m, st,
                            "rank %d failed during the ring (%s); see its message; this "
                            "rank's O and LSE are incomplete",
                            bad, clattn_status_string(st));
}
