/*
 * Tiles of a larger attention (clattn.h, "tiles of a larger attention").
 *   tile_random: random problems with every position-dependent feature
 *     (both causal alignments, windows, chunks, ALiBi, kv_lens and kv_start
 *     in whole key positions, masks of the whole problem, sinks, softcap,
 *     GQA) on every path and dtype; a random tile of each (rows and keys not
 *     multiples of anything, kv_lens past the tile's keys) run through
 *     clattn_forward_tile_host and compared with ref_attention_tile, which
 *     applies the rules to the whole problem and hides the keys outside the
 *     tile.
 *   tile_masks: a full bias and boolean mask read at tiles' offsets on each
 *     path (also run under Oclgrind).
 *   tile_merge: an attention's keys cut into three tiles run through
 *     clattn_forward_tile on device buffers (the sink in the first only) and
 *     merged with clattn_merge: the result is the whole attention
 *     (ref_attention); rows cut into two tiles over all keys are the whole
 *     rows.
 *   tile_errors: every invalid tile refused before anything runs, naming
 *     the field, with the outputs untouched; kv_lens up to the whole seq_kv
 *     and the 0.1 fp32 mask of the whole accepted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

/* Host arrays of one tile, cut out of a whole problem's packed tensors. */
typedef struct tile_arrays {
    clattn_tile tile;
    void *q, *k, *v, *o;
    float *lse;
    size_t q_bytes, k_bytes, v_bytes, o_bytes, lse_n;
} tile_arrays;

/* Rows [first, first + n) of every (b, h) of a packed [B][H][S][dim]. */
static void *cut_rows(const void *whole, size_t esz, int bh, int seq, int first, int n, int dim)
{
    const size_t row = (size_t)dim * esz;
    unsigned char *out = malloc((size_t)bh * (size_t)n * row + 1);
    for (int x = 0; out && x < bh; ++x)
        memcpy(out + (size_t)x * n * row,
               (const unsigned char *)whole + ((size_t)x * seq + (size_t)first) * row,
               (size_t)n * row);
    return out;
}

static int tile_arrays_init(tile_arrays *a, const t_tensors *t, clattn_tile tile)
{
    const clattn_problem *n = &t->n;
    memset(a, 0, sizeof *a);
    a->tile = tile;
    const int bh = n->batch * n->heads, bhk = n->batch * n->kv_heads;
    a->q = cut_rows(t->q, t->esz, bh, n->seq_q, tile.q_offset, tile.seq_q, n->head_dim);
    a->k = cut_rows(t->k, t->esz, bhk, n->seq_kv, tile.kv_offset, tile.seq_kv, n->head_dim);
    a->v = cut_rows(t->v, t->esz, bhk, n->seq_kv, tile.kv_offset, tile.seq_kv, n->head_dim_v);
    a->q_bytes = (size_t)bh * tile.seq_q * n->head_dim * t->esz;
    a->k_bytes = (size_t)bhk * tile.seq_kv * n->head_dim * t->esz;
    a->v_bytes = (size_t)bhk * tile.seq_kv * n->head_dim_v * t->esz;
    a->o_bytes = (size_t)bh * tile.seq_q * n->head_dim_v * t->esz;
    a->lse_n = (size_t)bh * tile.seq_q;
    /* O and the LSE with a guard after them, all poisoned */
    a->o = malloc(a->o_bytes + T_GUARD * t->esz);
    a->lse = malloc((a->lse_n + T_GUARD) * sizeof(float));
    if (!a->q || !a->k || !a->v || !a->o || !a->lse) {
        T_FAIL("out of host memory");
        return -1;
    }
    t_fill_poison(a->o, n->dtype, (int64_t)(a->o_bytes / t->esz) + T_GUARD);
    t_fill_poison(a->lse, CLATTN_F32, (int64_t)a->lse_n + T_GUARD);
    return 0;
}

static void tile_arrays_free(tile_arrays *a)
{
    free(a->q);
    free(a->k);
    free(a->v);
    free(a->o);
    free(a->lse);
    memset(a, 0, sizeof *a);
}

/* The whole problem's host buffers with the tile's q, k, v, o and lse. */
static clattn_host_buffers tile_host(const t_tensors *t, tile_arrays *a, clattn_buffer_sizes *z)
{
    clattn_host_buffers h = t_tensors_host(t);
    t_tensors_sizes(t, z);
    h.q = a->q;
    h.k = a->k;
    h.v = a->v;
    h.o = a->o;
    h.lse = a->lse;
    z->q = a->q_bytes;
    z->k = a->k_bytes;
    z->v = a->v_bytes;
    z->o = a->o_bytes;
    z->lse = a->lse_n * sizeof(float);
    h.sizes = z;
    return h;
}

/* Compares a tile's O (packed, dtype dt) and LSE with the reference tile
 * (ro, rl, seen laid out alike); the guards must hold their poison.
 * roundings: how many times the values were rounded to the dtype on their
 * way (1 for a forward; a merge of P parts adds its own to the parts'). */
static int compare_tile(const char *label, const clattn_problem *n, const void *o,
                        const float *lse, const double *ro, const double *rl, const int *seen,
                        size_t rows, int roundings)
{
    t_tolerance tol = t_tolerance_for(n->dtype);
    tol.elem_ulps *= roundings;
    tol.rel_l2 *= roundings;
    /* Parts rounded before a merge carry their rounding at their own
     * magnitude (up to the largest output), which cancellation in the
     * merge does not shrink: half an ulp of the scale per extra rounding. */
    if (roundings > 1)
        tol.elem_atol = fmax(tol.elem_atol, 0.5 * (roundings - 1) *
                                                ldexp(1.0, -ref_mantissa_bits(n->dtype)));
    const int dv = n->head_dim_v;
    double scale = 0.0;
    for (size_t e = 0; e < rows * (size_t)dv; ++e)
        scale = fmax(scale, fabs(ro[e]));
    double num = 0.0, den = 0.0;
    int fails = 0;
    for (size_t r = 0; r < rows; ++r) {
        for (int d = 0; d < dv; ++d) {
            const size_t e = r * (size_t)dv + d;
            const double got = ref_load(o, n->dtype, (int64_t)e);
            num += (got - ro[e]) * (got - ro[e]);
            den += ro[e] * ro[e];
            const int bad = seen[r] == 0 ? got != 0.0
                                         : !(fabs(got - ro[e]) <=
                                             t_elem_bound(&tol, n->dtype, ro[e], scale));
            if (bad && fails++ < 5)
                T_FAIL("%s: row %zu dim %d: got %g, reference %g (keys seen %d)", label, r, d,
                       got, ro[e], seen[r]);
        }
        const double want = rl[r];
        const int lse_ok = isinf(want) ? (double)lse[r] == want
                                       : fabs((double)lse[r] - want) <=
                                             tol.lse_rel * fmax(1.0, fabs(want));
        if (!lse_ok && fails++ < 5)
            T_FAIL("%s: row %zu: LSE %g, reference %g", label, r, (double)lse[r], want);
    }
    const double l2 = den > 0.0 ? sqrt(num / den) : sqrt(num);
    if (!(l2 <= tol.rel_l2) && fails++ < 6)
        T_FAIL("%s: relative L2 error %.3g above %.3g", label, l2, tol.rel_l2);
    const size_t esz = ref_dtype_size(n->dtype);
    const uint16_t p16 = t_poison16(n->dtype);
    for (int g = 0; g < T_GUARD; ++g) {
        const unsigned char *at = (const unsigned char *)o + (rows * (size_t)dv + g) * esz;
        uint32_t word = 0;
        memcpy(&word, at, esz);
        const float f = lse[rows + (size_t)g];
        const int o_kept = esz == 2 ? (uint16_t)word == p16 : isnan(*(const float *)(const void *)at);
        if ((!o_kept || !isnan(f)) && fails++ < 7)
            T_FAIL("%s: the guard after O or the LSE was written (element %d)", label, g);
    }
    return fails;
}

/* ==== tile_random ========================================================== */

static int pick(t_rng *r, int percent) { return t_rng_int(r, 0, 99) < percent; }

/* A random whole problem with position-dependent features, and its flags. */
static clattn_problem random_problem(t_rng *r, unsigned *flags)
{
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    static const int dims[4] = {8, 16, 33, 64};
    clattn_problem p = {0};
    p.batch = t_rng_int(r, 1, 2);
    p.heads = t_rng_int(r, 1, 2) * 2;
    p.kv_heads = pick(r, 40) ? p.heads / 2 : p.heads;
    p.seq_kv = t_rng_int(r, 9, 90);
    p.seq_q = pick(r, 50) ? p.seq_kv : t_rng_int(r, 3, 70);
    p.head_dim = dims[t_rng_int(r, 0, 3)];
    p.dtype = dts[t_rng_int(r, 0, 2)];
    p.path = t_all_paths[t_rng_int(r, 0, 3)];
    p.causal = t_rng_int(r, 0, 2);
    if (pick(r, 35)) {
        p.windowed = 1;
        p.window_left = t_rng_int(r, -1, 20);
        p.window_right = t_rng_int(r, -1, 12);
    }
    p.chunk_size = pick(r, 20) ? t_rng_int(r, 1, 17) : 0;
    p.softcap = pick(r, 25) ? 4.0f : 0.0f;
    *flags = T_WITH_LSE;
    if (pick(r, 30)) {
        p.alibi = 1;
        *flags |= T_WITH_ALIBI;
    }
    if (pick(r, 30)) {
        p.sinks = 1;
        *flags |= T_WITH_SINKS;
    }
    if (pick(r, 40))
        *flags |= T_WITH_KV_LENS;
    if (pick(r, 30)) {
        p.kv_start = 1;
        *flags |= T_WITH_KV_START;
    }
    if (pick(r, 35)) {
        /* full per-head bias, or a broadcast padding row [B,1,1,Skv] */
        p.bias.enabled = 1;
        p.bias.dtype = pick(r, 50) ? CLATTN_F32 : CLATTN_F16;
        const int full = pick(r, 50);
        p.bias.strides.row = full ? p.seq_kv + t_rng_int(r, 0, 3) : 0;
        p.bias.strides.head = full ? p.bias.strides.row * p.seq_q : 0;
        p.bias.strides.batch = full ? p.bias.strides.head * p.heads : p.seq_kv;
        *flags |= T_WITH_BIAS;
    }
    if (pick(r, 30)) {
        p.bool_mask.enabled = 1;
        p.bool_mask.strides.row = p.seq_kv;
        p.bool_mask.strides.head = (int64_t)p.seq_kv * p.seq_q;
        p.bool_mask.strides.batch = p.bool_mask.strides.head * p.heads;
        *flags |= T_WITH_BOOL_MASK;
    }
    return p;
}

static clattn_tile random_tile(t_rng *r, const clattn_problem *p)
{
    clattn_tile t = {0};
    t.q_offset = t_rng_int(r, 0, p->seq_q - 1);
    t.seq_q = t_rng_int(r, 1, p->seq_q - t.q_offset);
    if (pick(r, 25)) { /* all the keys: the tile's rows of the whole O */
        t.kv_offset = 0;
        t.seq_kv = p->seq_kv;
    } else {
        t.kv_offset = t_rng_int(r, 0, p->seq_kv - 1);
        t.seq_kv = t_rng_int(r, 1, p->seq_kv - t.kv_offset);
    }
    return t;
}

/* Runs one tile of t through clattn_forward_tile_host and compares it with
 * ref_attention_tile. */
static void run_tile(clattn_context *ctx, t_tensors *t, clattn_tile tile, const char *name)
{
    tile_arrays a;
    char label[320], desc[256];
    clattn_host_buffers whole = t_tensors_host(t);
    t_describe(&t->p, &whole, desc, sizeof desc);
    snprintf(label, sizeof label, "%s [rows %d+%d, keys %d+%d] of %s", name, tile.q_offset,
             tile.seq_q, tile.kv_offset, tile.seq_kv, desc);
    if (tile_arrays_init(&a, t, tile) == 0) {
        clattn_buffer_sizes z;
        clattn_host_buffers h = tile_host(t, &a, &z);
        const clattn_status st = clattn_forward_tile_host(ctx, &t->p, &tile, &h);
        if (st == CLATTN_ERR_UNSUPPORTED) {
            t_skip("%s: unsupported here (%s)", label, clattn_last_error(ctx));
        } else if (st != CLATTN_OK) {
            T_FAIL("%s: %s (%s)", label, clattn_status_string(st), clattn_last_error(ctx));
        } else {
            double *ro = malloc(sizeof(double) * a.lse_n * (size_t)t->n.head_dim_v);
            double *rl = malloc(sizeof(double) * a.lse_n);
            int *seen = malloc(sizeof(int) * a.lse_n);
            if (ro && rl && seen && ref_attention_tile(&t->p, &tile, &whole, ro, rl, seen) == 0) {
                long blind = 0;
                for (size_t i = 0; i < a.lse_n; ++i)
                    blind += seen[i] == 0;
                const int f = compare_tile(label, &t->n, a.o, a.lse, ro, rl, seen, a.lse_n, 1);
                t_log("%s %s (%ld of %zu rows see no key of the tile)", f ? "FAIL" : "ok", label,
                      blind, a.lse_n);
            } else {
                T_FAIL("%s: no reference (out of memory)", label);
            }
            free(ro);
            free(rl);
            free(seen);
        }
    }
    tile_arrays_free(&a);
}

static void run_random_tile(clattn_context *ctx, t_rng *r, int index)
{
    unsigned flags;
    clattn_problem p = random_problem(r, &flags);
    t_tensors t;
    if (t_tensors_init(&t, &p, flags, 0x711e0000u + (uint64_t)index) != 0)
        return;
    const clattn_tile tile = random_tile(r, &t.n);
    char name[32];
    snprintf(name, sizeof name, "tile %d", index);
    run_tile(ctx, &t, tile, name);
    t_tensors_free(&t);
}

void case_tile_random(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    t_rng r;
    t_rng_seed(&r, 0x7113);
    for (int i = 0; i < 36; ++i)
        run_random_tile(ctx, &r, i);
    clattn_context_destroy(ctx);
}

/* ==== tile_masks ============================================================ */

/* Masks of the whole read at a tile's offsets, on every path: small enough
 * for Oclgrind to check the offsets' accesses (tests/CMakeLists.txt). */
void case_tile_masks(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_path paths[3] = {CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                         CLATTN_PATH_SPLIT_KV};
    for (int i = 0; i < 3; ++i) {
        if (t_context_between_runs(&ctx) != 0)
            return;
        clattn_problem p = {0};
        p.batch = 2;
        p.heads = 2;
        p.seq_q = 20;
        p.seq_kv = 30;
        p.head_dim = 8;
        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p.path = paths[i];
        p.bias.enabled = 1;
        p.bias.dtype = CLATTN_F16;
        p.bias.strides = (clattn_mask_strides){2 * 20 * 31, 20 * 31, 31};
        p.bool_mask.enabled = 1;
        p.bool_mask.strides = (clattn_mask_strides){2 * 20 * 30, 20 * 30, 30};
        t_tensors t;
        if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_BIAS | T_WITH_BOOL_MASK | T_WITH_KV_LENS,
                           0x3a5c + (uint64_t)i) != 0)
            continue;
        const clattn_tile tiles[2] = {{5, 7, 7, 18, {0}}, {13, 7, 0, 30, {0}}};
        for (int k = 0; k < 2; ++k)
            run_tile(ctx, &t, tiles[k], "masks");
        t_tensors_free(&t);
    }
    clattn_context_destroy(ctx);
}

/* ==== tile_merge =========================================================== */

static cl_mem dev_from(cl_context c, size_t bytes, const void *init)
{
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void *)init, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu) -> %d", bytes, (int)err);
    return err == CL_SUCCESS ? m : NULL;
}

/* The keys of t cut at c1 < c2 into three tiles over all rows, run on
 * device buffers and merged; compared with the whole attention. */
static void merge_three(clattn_context *ctx, t_tensors *t, int c1, int c2, const char *what)
{
    const clattn_problem *n = &t->n;
    cl_context cl = t_cl_context(ctx);
    cl_command_queue q = t_queue(ctx);
    const int cuts[4] = {0, c1, c2, n->seq_kv};
    const size_t rows = (size_t)n->batch * n->heads * n->seq_q;
    const size_t o_bytes = rows * (size_t)n->head_dim_v * t->esz;
    cl_mem d_o[3] = {0}, d_lse[3] = {0}, d_q = NULL, d_k[3] = {0}, d_v[3] = {0};
    cl_mem d_sinks = NULL, d_alibi = NULL, d_kvl = NULL, d_out = NULL, d_out_lse = NULL;
    cl_event ev[3] = {0};
    d_q = dev_from(cl, (size_t)t->q_n * t->esz, t->q);
    if (t->sinks)
        d_sinks = dev_from(cl, (size_t)n->heads * 4, t->sinks);
    if (t->alibi)
        d_alibi = dev_from(cl, (size_t)n->heads * 4, t->alibi);
    if (t->kv_lens)
        d_kvl = dev_from(cl, (size_t)n->batch * 4, t->kv_lens);
    for (int part = 0; part < 3; ++part) {
        clattn_tile tile = {0, n->seq_q, cuts[part], cuts[part + 1] - cuts[part], {0}};
        tile_arrays a;
        if (tile_arrays_init(&a, t, tile) != 0)
            break;
        d_k[part] = dev_from(cl, a.k_bytes, a.k);
        d_v[part] = dev_from(cl, a.v_bytes, a.v);
        d_o[part] = dev_from(cl, a.o_bytes, a.o); /* poisoned */
        d_lse[part] = dev_from(cl, a.lse_n * 4, a.lse);
        clattn_problem p = t->p;
        clattn_buffers b = {0};
        b.q = d_q, b.k = d_k[part], b.v = d_v[part], b.o = d_o[part], b.lse = d_lse[part];
        b.kv_lens = d_kvl;
        b.alibi_slopes = d_alibi;
        /* the sink joins one part's denominator only */
        p.sinks = part == 0 && d_sinks;
        b.sinks = part == 0 ? d_sinks : NULL;
        const clattn_status st = clattn_forward_tile(ctx, &p, &tile, &b, 0, NULL, &ev[part]);
        T_CHECK(st == CLATTN_OK, "%s: tile %d: %s (%s)", what, part, clattn_status_string(st),
                clattn_last_error(ctx));
        tile_arrays_free(&a);
    }
    void *out = malloc(o_bytes);
    float *out_lse = malloc(rows * 4);
    if (out && out_lse && ev[0] && ev[1] && ev[2]) {
        t_fill_poison(out, n->dtype, (int64_t)(o_bytes / t->esz));
        d_out = dev_from(cl, o_bytes, out);
        d_out_lse = dev_from(cl, rows * 4, NULL);
        clattn_merge_problem mp = {n->batch, n->heads, n->seq_q, n->head_dim_v, n->dtype, 3,
                                   {0, 0, 0}, {0}};
        cl_event done = NULL;
        clattn_status st = clattn_merge(ctx, &mp, d_o, d_lse, d_out, d_out_lse, 3, ev, &done);
        T_CHECK(st == CLATTN_OK, "%s: merge: %s (%s)", what, clattn_status_string(st),
                clattn_last_error(ctx));
        if (st == CLATTN_OK) {
            T_CL(clEnqueueReadBuffer(q, d_out, CL_TRUE, 0, o_bytes, out, 1, &done, NULL));
            T_CL(clEnqueueReadBuffer(q, d_out_lse, CL_TRUE, 0, rows * 4, out_lse, 0, NULL, NULL));
            clReleaseEvent(done);
            clattn_host_buffers whole = t_tensors_host(t);
            double *ro = malloc(sizeof(double) * rows * (size_t)n->head_dim_v);
            double *rl = malloc(sizeof(double) * rows);
            int *seen = malloc(sizeof(int) * rows);
            /* the guard check of compare_tile needs room: copy into a padded array */
            void *og = malloc(o_bytes + T_GUARD * t->esz);
            float *lg = malloc((rows + T_GUARD) * 4);
            if (ro && rl && seen && og && lg &&
                ref_attention_ex(&t->p, &whole, ro, rl, NULL, seen) == 0) {
                t_fill_poison(og, n->dtype, (int64_t)(o_bytes / t->esz) + T_GUARD);
                t_fill_poison(lg, CLATTN_F32, (int64_t)rows + T_GUARD);
                memcpy(og, out, o_bytes);
                memcpy(lg, out_lse, rows * 4);
                /* three parts rounded to the dtype, then the merge's own rounding */
                const int f = compare_tile(what, n, og, lg, ro, rl, seen, rows, 4);
                t_log("%s %s: keys cut at %d, %d of %d", f ? "FAIL" : "ok", what, c1, c2,
                      n->seq_kv);
            }
            free(ro);
            free(rl);
            free(seen);
            free(og);
            free(lg);
        }
    }
    clFinish(q);
    for (int part = 0; part < 3; ++part) {
        if (ev[part])
            clReleaseEvent(ev[part]);
        /* kept, not released: Oclgrind's reused buffer ids (harness.h) */
        cl_mem *ms[4] = {&d_o[part], &d_lse[part], &d_k[part], &d_v[part]};
        for (int i = 0; i < 4; ++i)
            t_keep_until_end(ms[i]);
    }
    cl_mem *rest[6] = {&d_q, &d_sinks, &d_alibi, &d_kvl, &d_out, &d_out_lse};
    for (int i = 0; i < 6; ++i)
        t_keep_until_end(rest[i]);
    free(out);
    free(out_lse);
}

/* Two row tiles over all the keys give the whole rows. */
static void rows_two(clattn_context *ctx, t_tensors *t, int cut, const char *what)
{
    const clattn_problem *n = &t->n;
    clattn_host_buffers whole = t_tensors_host(t);
    const size_t rows = (size_t)n->batch * n->heads * n->seq_q;
    double *ro = malloc(sizeof(double) * rows * (size_t)n->head_dim_v);
    double *rl = malloc(sizeof(double) * rows);
    int *seen = malloc(sizeof(int) * rows);
    if (!ro || !rl || !seen || ref_attention_ex(&t->p, &whole, ro, rl, NULL, seen) != 0) {
        T_FAIL("%s: no reference", what);
        goto out;
    }
    const int first[2] = {0, cut}, count[2] = {cut, n->seq_q - cut};
    for (int part = 0; part < 2; ++part) {
        const clattn_tile tile = {first[part], count[part], 0, n->seq_kv, {0}};
        tile_arrays a;
        if (tile_arrays_init(&a, t, tile) != 0)
            break;
        clattn_buffer_sizes z;
        clattn_host_buffers h = tile_host(t, &a, &z);
        const clattn_status st = clattn_forward_tile_host(ctx, &t->p, &tile, &h);
        T_CHECK(st == CLATTN_OK, "%s: rows %d+%d: %s (%s)", what, first[part], count[part],
                clattn_status_string(st), clattn_last_error(ctx));
        if (st == CLATTN_OK) {
            /* the reference rows of this tile, packed like it */
            const size_t tr = a.lse_n, dv = (size_t)n->head_dim_v;
            double *to = malloc(sizeof(double) * tr * dv), *tl = malloc(sizeof(double) * tr);
            int *ts = malloc(sizeof(int) * tr);
            for (size_t x = 0; to && tl && ts && x < (size_t)n->batch * n->heads; ++x)
                for (int i = 0; i < count[part]; ++i) {
                    const size_t w = x * (size_t)n->seq_q + (size_t)(first[part] + i);
                    const size_t k = x * (size_t)count[part] + (size_t)i;
                    memcpy(to + k * dv, ro + w * dv, dv * sizeof(double));
                    tl[k] = rl[w];
                    ts[k] = seen[w];
                }
            char label[400];
            snprintf(label, sizeof label, "%s: rows %d+%d", what, first[part], count[part]);
            if (to && tl && ts)
                T_CHECK(compare_tile(label, n, a.o, a.lse, to, tl, ts, tr, 1) == 0,
                        "%s: differs from the whole rows", label);
            free(to);
            free(tl);
            free(ts);
        }
        tile_arrays_free(&a);
    }
out:
    free(ro);
    free(rl);
    free(seen);
}

void case_tile_merge(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const struct {
        int causal, windowed, wl, wr, sinks, alibi, gqa, kv_lens;
        clattn_dtype dt;
        clattn_path path;
    } cases[] = {
        {0, 0, 0, 0, 0, 0, 0, 0, CLATTN_F32, CLATTN_PATH_FUSED},
        {CLATTN_CAUSAL_TOP_LEFT, 0, 0, 0, 1, 0, 1, 0, CLATTN_F32, CLATTN_PATH_FUSED},
        {CLATTN_CAUSAL_BOTTOM_RIGHT, 1, 9, -1, 0, 1, 0, 1, CLATTN_F16, CLATTN_PATH_SPLIT_KV},
        {CLATTN_CAUSAL_TOP_LEFT, 1, 5, 0, 1, 1, 1, 1, CLATTN_BF16, CLATTN_PATH_THREE_STAGE},
        {CLATTN_CAUSAL_BOTTOM_RIGHT, 0, 0, 0, 0, 0, 1, 1, CLATTN_F32, CLATTN_PATH_AUTO},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        if (t_context_between_runs(&ctx) != 0)
            return;
        clattn_problem p = {0};
        p.batch = 2;
        p.heads = 4;
        p.kv_heads = cases[c].gqa ? 2 : 4;
        p.seq_q = c == 2 ? 3 : 45;
        p.seq_kv = 77;
        p.head_dim = 24;
        p.dtype = cases[c].dt;
        p.path = cases[c].path;
        p.causal = cases[c].causal;
        p.windowed = cases[c].windowed;
        p.window_left = cases[c].wl;
        p.window_right = cases[c].wr;
        p.sinks = cases[c].sinks;
        p.alibi = cases[c].alibi;
        unsigned flags = T_WITH_LSE | (p.sinks ? T_WITH_SINKS : 0) | (p.alibi ? T_WITH_ALIBI : 0) |
                         (cases[c].kv_lens ? T_WITH_KV_LENS : 0);
        t_tensors t;
        if (t_tensors_init(&t, &p, flags, 0x3e7e + c) != 0)
            continue;
        char what[300];
        clattn_host_buffers h = t_tensors_host(&t);
        t_describe(&t.p, &h, what, sizeof what);
        merge_three(ctx, &t, 20, 51, what);
        if (p.seq_q > 10)
            rows_two(ctx, &t, 17, what);
        t_tensors_free(&t);
    }
    clattn_context_destroy(ctx);
    t_release_kept();
}

/* ==== tile_errors ========================================================== */

void case_tile_errors(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    clattn_problem p = {0};
    p.batch = 1;
    p.heads = 2;
    p.seq_q = 12;
    p.seq_kv = 20;
    p.head_dim = 8;
    t_tensors t;
    if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_MASK | T_WITH_KV_LENS, 0xe77) != 0) {
        clattn_context_destroy(ctx);
        return;
    }
    const clattn_tile good = {2, 5, 3, 9, {0}};
    tile_arrays a;
    if (tile_arrays_init(&a, &t, good) != 0)
        goto out;
    clattn_buffer_sizes z;
    const clattn_host_buffers h = tile_host(&t, &a, &z);
    const struct {
        const char *why;
        clattn_tile tile;
        int varlen, paged, short_o, null_tile, kv_len;
        const char *expect;
    } bad[] = {
        {"NULL tile", good, 0, 0, 0, 1, -1, "tile is NULL"},
        {"no rows", {2, 0, 3, 9, {0}}, 0, 0, 0, 0, -1, "tile.seq_q"},
        {"no keys", {2, 5, 3, 0, {0}}, 0, 0, 0, 0, -1, "tile.seq_kv"},
        {"negative row", {-1, 5, 3, 9, {0}}, 0, 0, 0, 0, -1, "tile.q_offset"},
        {"negative key", {2, 5, -3, 9, {0}}, 0, 0, 0, 0, -1, "tile.kv_offset"},
        {"rows past the end", {8, 5, 3, 9, {0}}, 0, 0, 0, 0, -1, "seq_q (12)"},
        {"keys past the end", {2, 5, 12, 9, {0}}, 0, 0, 0, 0, -1, "seq_kv (20)"},
        {"reserved", {2, 5, 3, 9, {0, 1}}, 0, 0, 0, 0, -1, "tile.reserved[1]"},
        {"varlen", good, 1, 0, 0, 0, -1, "varlen"},
        {"paged", good, 0, 1, 0, 0, -1, "paged"},
        {"O sized one byte short", good, 0, 0, 1, 0, -1, "buffers.o"},
        {"kv_lens past the whole", good, 0, 0, 0, 0, 21, "kv_lens[0] = 21"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        clattn_problem bp = t.p;
        if (bad[i].varlen) {
            bp.varlen = 1;
            bp.total_q = 12;
            bp.total_kv = 20;
        }
        if (bad[i].paged) {
            bp.paged.enabled = 1;
            bp.paged.page_size = 4;
            bp.paged.num_pages = 5;
            bp.paged.max_pages_per_seq = 5;
        }
        clattn_host_buffers hb = h;
        clattn_buffer_sizes zb = z;
        hb.sizes = &zb;
        if (bad[i].short_o)
            zb.o -= 1;
        int32_t lens[1] = {bad[i].kv_len};
        if (bad[i].kv_len >= 0)
            hb.kv_lens = lens;
        const clattn_status st =
            clattn_forward_tile_host(ctx, &bp, bad[i].null_tile ? NULL : &bad[i].tile, &hb);
        const char *msg = clattn_last_error(ctx);
        T_CHECK(st == CLATTN_ERR_INVALID_ARGUMENT, "%s: got %s, want invalid argument",
                bad[i].why, clattn_status_string(st));
        T_CHECK(strstr(msg, bad[i].expect) != NULL, "%s: message \"%s\" does not name \"%s\"",
                bad[i].why, msg, bad[i].expect);
        /* nothing written: O and the LSE keep their poison */
        const uint16_t p16 = t_poison16(t.n.dtype);
        int touched = 0;
        for (size_t e = 0; e < a.o_bytes / t.esz; ++e) {
            float f;
            memcpy(&f, (unsigned char *)a.o + e * 4, 4);
            touched |= t.esz == 4 ? !isnan(f) : ((uint16_t *)a.o)[e] != p16;
        }
        for (size_t e = 0; e < a.lse_n; ++e)
            touched |= !isnan(a.lse[e]);
        T_CHECK(!touched, "%s: outputs written by a refused call", bad[i].why);
        t_log("ok refused (%s): %s", bad[i].why, msg);
    }
    /* kv_lens up to the whole seq_kv (past the tile's keys) are valid, and
     * the buffer sizes of a tile are the tile's */
    int32_t lens[1] = {20};
    clattn_host_buffers hb = h;
    hb.kv_lens = lens;
    clattn_status st = clattn_forward_tile_host(ctx, &t.p, &good, &hb);
    T_CHECK(st == CLATTN_OK, "kv_lens = the whole seq_kv: %s (%s)", clattn_status_string(st),
            clattn_last_error(ctx));
    clattn_buffer_sizes zs;
    st = clattn_tile_buffer_sizes_of(ctx, &t.p, &good, &zs);
    T_CHECK(st == CLATTN_OK && zs.q == a.q_bytes && zs.k == a.k_bytes && zs.o == a.o_bytes &&
                zs.lse == a.lse_n * 4 && zs.mask == z.mask,
            "clattn_tile_buffer_sizes_of: q %zu k %zu o %zu lse %zu mask %zu; want %zu %zu %zu "
            "%zu %zu",
            zs.q, zs.k, zs.o, zs.lse, zs.mask, a.q_bytes, a.k_bytes, a.o_bytes, a.lse_n * 4,
            z.mask);
    /* the fp32 0.1 mask of the whole (rows of seq_kv keys) read at tiles'
     * offsets, against the reference */
    run_tile(ctx, &t, good, "the 0.1 mask");
    run_tile(ctx, &t, (clattn_tile){7, 5, 0, 20, {0}}, "the 0.1 mask");
out:
    tile_arrays_free(&a);
    t_tensors_free(&t);
    clattn_context_destroy(ctx);
}
