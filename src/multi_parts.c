/* The parts of a clattn_multi_forward_host call: each part's problem and
 * host arrays (views into the caller's, at an offset, with the whole's
 * strides), its run, the cost model that sizes the parts, and the scatter
 * of the parts' outputs into the caller's. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "multi.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- layouts ----------------------------------------------------------------- */

static const void *at(const void *base, size_t bytes)
{
    return base ? (const unsigned char *)base + bytes : NULL;
}

/* ---- costs ------------------------------------------------------------------- */

/* Keys row i can see, by the causal and window rules over the whole keys
 * (lengths and masks left out: they are per sequence or data). */
static double row_keys(const clattn_problem *p, int64_t i)
{
    const int64_t ip = i + p->seq_kv - p->seq_q;
    int64_t lo = 0, hi = p->seq_kv;
    if (p->causal == CLATTN_CAUSAL_BOTTOM_RIGHT && ip + 1 < hi)
        hi = ip + 1;
    if (p->causal == CLATTN_CAUSAL_TOP_LEFT && i + 1 < hi)
        hi = i + 1;
    if (p->windowed && p->window_right >= 0 && ip + p->window_right + 1 < hi)
        hi = ip + p->window_right + 1;
    if (p->windowed && p->window_left >= 0 && ip - p->window_left > lo)
        lo = ip - p->window_left;
    /* a row costs its launch and epilogue even when it sees nothing */
    return 1.0 + (double)(hi > lo ? hi - lo : 0);
}

double *clattn__multi_costs(const clattn__multi_job *job)
{
    const clattn_problem *p = &job->p;
    double *c = malloc(sizeof(double) * (size_t)(job->units + 1));
    if (!c)
        return NULL;
    c[0] = 0.0;
    for (int64_t u = 0; u < job->units; ++u) {
        double w = 1.0;
        if (job->split == CLATTN_SPLIT_ROWS) {
            w = row_keys(p, u);
        } else if (job->split == CLATTN_SPLIT_BATCH && p->varlen) {
            const double nq = job->h.cu_seqlens_q[u + 1] - job->h.cu_seqlens_q[u];
            const double nk = job->h.cu_seqlens_kv[u + 1] - job->h.cu_seqlens_kv[u];
            w = 1.0 + nq * (1.0 + nk);
        } else if (job->split == CLATTN_SPLIT_BATCH) {
            const double nk = job->h.kv_lens ? job->h.kv_lens[u] : p->seq_kv;
            w = 1.0 + (double)p->seq_q * (1.0 + nk);
        }
        c[u + 1] = c[u] + w;
    }
    return c;
}

/* ---- one part ---------------------------------------------------------------- */

/* What a part is given to run: its problem, tile, arrays and their sizes,
 * and the arrays made for it (freed after the run). */
typedef struct part_call {
    clattn_problem p;
    clattn_tile tile;
    clattn_host_buffers h;
    clattn_buffer_sizes z;
    void *scales[2];  /* KEYS: INT8 / INT4 scales cut out for the part */
    int32_t *cu[2];   /* BATCH varlen: the part's cu_seqlens */
} part_call;

/* Moves a K or V view on by `units` units of its strides (elements of a
 * float storage, bytes of the others). */
static void kv_skip(const clattn_problem *p, int is_v, int64_t units, part_call *c)
{
    const clattn_kv_format f = is_v ? p->v_storage.format : p->k_storage.format;
    const size_t off = (size_t)units * (size_t)clattn__kv_unit_bytes(f, p->dtype);
    if (is_v) {
        c->h.v = at(c->h.v, off);
        c->z.v -= off;
    } else {
        c->h.k = at(c->h.k, off);
        c->z.k -= off;
    }
}

/* Moves the per-row scales of K or V (INT8, INT4) `rows` rows on. */
static void scales_skip(const clattn_problem *p, int is_v, int64_t rows, part_call *c)
{
    const size_t rb = (size_t)(is_v ? clattn__kv_scale_row_bytes(&p->v_storage, p->head_dim_v)
                                    : clattn__kv_scale_row_bytes(&p->k_storage, p->head_dim));
    if (rb == 0)
        return;
    const size_t off = (size_t)rows * rb;
    if (is_v) {
        c->h.v_scales = at(c->h.v_scales, off);
        c->z.v_scales -= off;
    } else {
        c->h.k_scales = at(c->h.k_scales, off);
        c->z.k_scales -= off;
    }
}

/* ROWS: a tile of rows u0.. over all keys; q starts at row u0. */
static size_t setup_rows(const clattn__multi_part *pt, part_call *c)
{
    clattn_problem *p = &c->p;
    const int64_t n = pt->u1 - pt->u0;
    c->tile = (clattn_tile){(int)pt->u0, (int)n, 0, p->seq_kv, {0}};
    const size_t off = (size_t)(pt->u0 * p->q_strides.seq) * pt->job->s.elem_size;
    c->h.q = at(c->h.q, off);
    c->z.q -= off;
    return (size_t)p->batch * p->heads * (size_t)n;
}

/* KEYS: a tile of keys u0.. over all rows; K, V start at key u0, the scales
 * of an INT8 / INT4 storage are cut out (their rows count the tile's keys),
 * and the sink stays with the part that starts at key 0. Returns the LSE
 * rows, or 0 out of memory. */
static size_t setup_keys(const clattn__multi_part *pt, part_call *c)
{
    clattn_problem *p = &c->p;
    const int64_t n = pt->u1 - pt->u0, u0 = pt->u0;
    c->tile = (clattn_tile){0, p->seq_q, (int)u0, (int)n, {0}};
    kv_skip(p, 0, u0 * p->k_strides.seq, c);
    kv_skip(p, 1, u0 * p->v_strides.seq, c);
    if (u0 > 0) { /* the sink joins one part's denominator only (clattn_merge) */
        p->sinks = 0;
        c->h.sinks = NULL;
    }
    const clattn_kv_storage *st[2] = {&p->k_storage, &p->v_storage};
    const int dims[2] = {p->head_dim, p->head_dim_v};
    const void *src[2] = {c->h.k_scales, c->h.v_scales};
    const void **dst[2] = {&c->h.k_scales, &c->h.v_scales};
    size_t *bytes[2] = {&c->z.k_scales, &c->z.v_scales};
    const size_t bhk = (size_t)p->batch * p->kv_heads;
    for (int t = 0; t < 2; ++t) {
        const size_t rb = (size_t)clattn__kv_scale_row_bytes(st[t], dims[t]);
        if (rb == 0 || !src[t])
            continue;
        unsigned char *cut = malloc(bhk * (size_t)n * rb);
        if (!cut)
            return 0;
        for (size_t x = 0; x < bhk; ++x) /* the n keys of each (b, kv head) */
            memcpy(cut + x * (size_t)n * rb,
                   (const unsigned char *)src[t] + (x * (size_t)p->seq_kv + (size_t)u0) * rb,
                   (size_t)n * rb);
        c->scales[t] = cut;
        *dst[t] = cut;
        *bytes[t] = bhk * (size_t)n * rb;
    }
    return (size_t)p->batch * p->heads * (size_t)p->seq_q;
}

/* BATCH of a varlen problem: sequences u0.. with their own cu_seqlens;
 * tensors and scales start at the first token. 0 out of memory (or no
 * tokens: then nothing is to be run). */
static size_t setup_varlen(clattn__multi_part *pt, part_call *c, int *oom)
{
    const clattn__multi_job *j = pt->job;
    clattn_problem *p = &c->p;
    const int64_t n = pt->u1 - pt->u0, u0 = pt->u0;
    const int32_t *cq = j->h.cu_seqlens_q, *ck = j->h.cu_seqlens_kv;
    const int64_t tq0 = cq[u0], tk0 = ck[u0];
    c->cu[0] = malloc(sizeof(int32_t) * (size_t)(n + 1));
    c->cu[1] = malloc(sizeof(int32_t) * (size_t)(n + 1));
    if (!c->cu[0] || !c->cu[1]) {
        *oom = 1;
        return 0;
    }
    for (int64_t b = 0; b <= n; ++b) {
        c->cu[0][b] = (int32_t)(cq[u0 + b] - tq0);
        c->cu[1][b] = (int32_t)(ck[u0 + b] - tk0);
    }
    p->batch = (int)n;
    p->total_q = c->cu[0][n];
    p->total_kv = c->cu[1][n];
    pt->empty = p->total_q == 0 || p->total_kv == 0;
    c->h.cu_seqlens_q = c->cu[0];
    c->h.cu_seqlens_kv = c->cu[1];
    c->z.cu_seqlens_q = c->z.cu_seqlens_kv = sizeof(int32_t) * (size_t)(n + 1);
    const size_t qo = (size_t)(tq0 * p->q_strides.seq) * j->s.elem_size;
    c->h.q = at(c->h.q, qo);
    c->z.q -= qo;
    kv_skip(p, 0, tk0 * p->k_strides.seq, c);
    kv_skip(p, 1, tk0 * p->v_strides.seq, c);
    /* scales of token t, kv head kh are row t * kv_heads + kh */
    scales_skip(&j->p, 0, tk0 * p->kv_heads, c);
    scales_skip(&j->p, 1, tk0 * p->kv_heads, c);
    return (size_t)p->heads * (size_t)p->total_q;
}

/* BATCH: sequences u0.., every per-sequence array from its first entry
 * (a paged pool is shared by all sequences: only the block table moves). */
static size_t setup_batch(const clattn__multi_part *pt, part_call *c)
{
    const clattn__multi_job *j = pt->job;
    clattn_problem *p = &c->p;
    const int64_t n = pt->u1 - pt->u0, u0 = pt->u0;
    p->batch = (int)n;
    const size_t qo = (size_t)(u0 * p->q_strides.batch) * j->s.elem_size;
    c->h.q = at(c->h.q, qo);
    c->z.q -= qo;
    if (!p->paged.enabled) {
        kv_skip(p, 0, u0 * p->k_strides.batch, c);
        kv_skip(p, 1, u0 * p->v_strides.batch, c);
        const int64_t rows = u0 * p->kv_heads * (int64_t)p->seq_kv;
        scales_skip(&j->p, 0, rows, c);
        scales_skip(&j->p, 1, rows, c);
    } else {
        const size_t to = (size_t)u0 * (size_t)p->paged.max_pages_per_seq * 4;
        c->h.block_table = at(c->h.block_table, to);
        c->z.block_table -= to;
    }
    c->h.kv_lens = c->h.kv_lens ? c->h.kv_lens + u0 : NULL;
    c->h.kv_start = c->h.kv_start ? c->h.kv_start + u0 : NULL;
    c->z.kv_lens -= (size_t)u0 * 4, c->z.kv_start -= (size_t)u0 * 4;
    return (size_t)p->batch * p->heads * (size_t)p->seq_q;
}

/* The masks of a BATCH part start at its first sequence (a tile reads the
 * whole's masks itself). */
static void masks_from(int64_t u0, part_call *c)
{
    const clattn_problem *p = &c->p;
    const size_t bes = p->bias.dtype == CLATTN_F32 ? 4 : 2;
    const size_t bo = (size_t)(u0 * p->bias.strides.batch) * bes;
    const size_t mo = (size_t)(u0 * p->bool_mask.strides.batch);
    const size_t lo = (size_t)(u0 * p->mask_batch_stride) * 4;
    if (p->bias.enabled) {
        c->h.bias = at(c->h.bias, bo);
        c->z.bias -= bo;
    }
    if (p->bool_mask.enabled) {
        c->h.bool_mask = (const uint8_t *)at(c->h.bool_mask, mo);
        c->z.bool_mask -= mo;
    }
    if (c->h.mask) {
        c->h.mask = (const float *)at(c->h.mask, lo);
        c->z.mask -= lo;
    }
}

/* The part's call: views into the caller's arrays (the whole's strides),
 * its own packed O and LSE. Returns 0, or -1 out of memory. */
static int part_setup(clattn__multi_part *pt, part_call *c)
{
    const clattn__multi_job *j = pt->job;
    memset(c, 0, sizeof *c);
    c->p = j->p;
    c->h = j->h;
    c->z = j->z;
    c->p.o_strides.batch = c->p.o_strides.head = c->p.o_strides.seq = 0; /* packed, ours */
    size_t rows = 0;
    int oom = 0;
    if (j->split == CLATTN_SPLIT_ROWS) {
        rows = setup_rows(pt, c);
    } else if (j->split == CLATTN_SPLIT_KEYS) {
        rows = setup_keys(pt, c);
        oom = rows == 0;
    } else {
        rows = c->p.varlen ? setup_varlen(pt, c, &oom) : setup_batch(pt, c);
        masks_from(pt->u0, c);
    }
    pt->lse_n = rows;
    pt->o_bytes = rows * (size_t)c->p.head_dim_v * j->s.elem_size;
    pt->o = malloc(pt->o_bytes ? pt->o_bytes : 1);
    pt->lse = malloc((rows ? rows : 1) * sizeof(float));
    if (oom || !pt->o || !pt->lse)
        return -1;
    c->h.o = pt->o;
    c->h.lse = pt->lse;
    c->z.o = pt->o_bytes;
    c->z.lse = rows * sizeof(float);
    c->h.sizes = &c->z;
    return 0;
}

/* A varlen part whose sequences hold no key: zeros, and LSE -inf or the
 * head's sink, as clattn.h gives a row that sees no key (LSE [heads][tokens]). */
static void fill_empty(clattn__multi_part *pt, const clattn_problem *p,
                       const clattn_host_buffers *h)
{
    memset(pt->o, 0, pt->o_bytes);
    const size_t per_head = pt->lse_n / (size_t)p->heads;
    for (size_t i = 0; i < pt->lse_n; ++i)
        pt->lse[i] = p->sinks && h->sinks ? h->sinks[i / per_head] : -INFINITY;
}

void clattn__multi_part_run(clattn__multi_part *pt)
{
    part_call c;
    const double t0 = now_ms();
    pt->st = CLATTN_OK;
    pt->err[0] = '\0';
    if (part_setup(pt, &c) != 0) {
        pt->st = CLATTN_ERR_OUT_OF_RESOURCES;
        snprintf(pt->err, sizeof pt->err, "out of host memory for a part's arrays");
    } else if (pt->empty) {
        fill_empty(pt, &c.p, &c.h);
    } else {
        pt->st = pt->job->split == CLATTN_SPLIT_BATCH
                     ? clattn_forward_host(pt->ctx, &c.p, &c.h)
                     : clattn_forward_tile_host(pt->ctx, &c.p, &c.tile, &c.h);
        if (pt->st != CLATTN_OK)
            snprintf(pt->err, sizeof pt->err, "%s", clattn_last_error(pt->ctx));
    }
    pt->ms = now_ms() - t0;
    free(c.scales[0]);
    free(c.scales[1]);
    free(c.cu[0]);
    free(c.cu[1]);
}

void clattn__multi_part_free(clattn__multi_part *pt)
{
    free(pt->o);
    free(pt->lse);
    pt->o = NULL;
    pt->lse = NULL;
}

/* ---- scatter ----------------------------------------------------------------- */

/* Row (b, h, i) of the caller's outputs from a packed row of a part. */
static void put_row(const clattn__multi_job *j, const void *src, int64_t o_elem, float lse,
                    int64_t lse_index)
{
    const size_t es = j->s.elem_size, dv = (size_t)j->p.head_dim_v;
    memcpy((unsigned char *)j->h.o + (size_t)o_elem * es, src, dv * es);
    if (j->h.lse)
        j->h.lse[lse_index] = lse;
}

void clattn__multi_scatter(const clattn__multi_job *j, const clattn__multi_part *parts,
                           int nparts)
{
    const clattn_problem *p = &j->p;
    const clattn_strides *os = &j->s.p.o_strides;
    const size_t es = j->s.elem_size, dv = (size_t)p->head_dim_v;
    const int H = p->heads;
    if (j->split == CLATTN_SPLIT_KEYS)
        nparts = 1; /* parts[0] holds the merged whole */
    for (int x = 0; x < nparts; ++x) {
        const clattn__multi_part *pt = &parts[x];
        const int64_t n = pt->u1 - pt->u0;
        if (n <= 0)
            continue;
        const unsigned char *o = pt->o;
        if (j->split == CLATTN_SPLIT_BATCH && p->varlen) {
            const int64_t tq0 = j->h.cu_seqlens_q[pt->u0];
            const int64_t tq = j->h.cu_seqlens_q[pt->u1] - tq0;
            for (int64_t t = 0; t < tq; ++t)
                for (int h = 0; h < H; ++h)
                    put_row(j, o + ((size_t)t * H + h) * dv * es,
                            (tq0 + t) * os->seq + h * os->head, pt->lse[(size_t)h * tq + t],
                            (int64_t)h * p->total_q + tq0 + t);
            continue;
        }
        /* ROWS: rows u0.. of every (b, h); BATCH: sequences u0..; KEYS: all */
        const int64_t nb = j->split == CLATTN_SPLIT_BATCH ? n : p->batch;
        const int64_t nr = j->split == CLATTN_SPLIT_ROWS ? n : p->seq_q;
        const int64_t b0 = j->split == CLATTN_SPLIT_BATCH ? pt->u0 : 0;
        const int64_t r0 = j->split == CLATTN_SPLIT_ROWS ? pt->u0 : 0;
        for (int64_t b = 0; b < nb; ++b)
            for (int h = 0; h < H; ++h)
                for (int64_t i = 0; i < nr; ++i) {
                    const size_t src = ((size_t)b * H + h) * (size_t)nr + (size_t)i;
                    put_row(j, o + src * dv * es,
                            (b0 + b) * os->batch + h * os->head + (r0 + i) * os->seq,
                            pt->lse[src], ((b0 + b) * H + h) * (int64_t)p->seq_q + r0 + i);
                }
    }
}
