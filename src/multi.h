/* One attention over several contexts (clattn_multi_forward_host): how a
 * problem is cut into parts (multi_parts.c) and how the parts are weighted,
 * run and put together (multi.c). */
#ifndef CLATTN_MULTI_H
#define CLATTN_MULTI_H

#include "problem.h"

/* What every part of one call shares: the whole problem with explicit
 * strides (and the 0.1 mask given as bias where tiles need it), the
 * caller's arrays and their sizes. */
typedef struct clattn__multi_job {
    clattn__shape s;        /* the whole, normalised */
    clattn_problem p;       /* s.p, as the parts start from it */
    clattn_host_buffers h;  /* the caller's arrays (h.sizes unused) */
    clattn_buffer_sizes z;  /* their sizes (computed when the caller gave none) */
    int split;              /* CLATTN_SPLIT_ROWS, _KEYS or _BATCH */
    int64_t units;          /* rows, keys or sequences */
} clattn__multi_job;

/* One part: units [u0, u1) of the job on one context, into outputs of its
 * own (packed) that are scattered into the caller's once every part is done. */
typedef struct clattn__multi_part {
    const clattn__multi_job *job;
    clattn_context *ctx;
    int64_t u0, u1;
    void *o;
    float *lse;
    size_t o_bytes, lse_n;
    int empty;             /* nothing to run: no rows, or rows without keys */
    clattn_status st;
    char err[1024];
    double ms;
} clattn__multi_part;

/* The relative cost of units [0, u) of the job for every u (cost[0] = 0,
 * job->units + 1 entries): query rows by the keys they can see, keys
 * alike, sequences by rows times keys. NULL when out of memory. */
double *clattn__multi_costs(const clattn__multi_job *job);

/* Runs part->u0 .. u1 on part->ctx through the public host API (so the
 * context's own lock and checks apply), outputs into part->o / lse
 * (allocated here; freed by clattn__multi_part_free). Sets part->st, err
 * and ms. */
void clattn__multi_part_run(clattn__multi_part *part);
void clattn__multi_part_free(clattn__multi_part *part);

/* Writes the parts' outputs into the caller's O (through its strides; gaps
 * untouched) and LSE. For KEYS, parts[0].o / lse must hold the merged whole
 * (multi.c merges the parts first). */
void clattn__multi_scatter(const clattn__multi_job *job, const clattn__multi_part *parts,
                           int nparts);

#endif
