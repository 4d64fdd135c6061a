/*
 * All-pairs coverage of the problem space: every value of every axis meets
 * every value of every other axis in at least one row. The rows come from a
 * small deterministic greedy construction (AETG-like: seed a row with the
 * first uncovered pair, then give each other axis the value covering the most
 * uncovered pairs, ties to the least used value), far fewer than the full
 * product. Each path's rows form one CTest case.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cases.h"
#include "harness.h"

enum {
    AX_PATH,   /* fused, three_stage, split_kv, auto */
    AX_DTYPE,  /* f32, f16, bf16 */
    AX_HEADS,  /* MHA, GQA, MQA */
    AX_MASK,   /* see MK_* */
    AX_SEQ,    /* k_seqs */
    AX_HD,     /* k_dims */
    AX_API,    /* device buffers, host */
    AX_LAYOUT, /* packed, BSHD, padded with gaps */
    AX_BATCH,  /* 1, 2, 3 */
    AX_SCALE,  /* default, explicit 3/sqrt(D) (scores near unit scale) */
    AX_LSE,    /* without, with */
    N_AXES
};

enum {
    MK_NONE,
    MK_CAUSAL_BR,
    MK_CAUSAL_TL,
    MK_WINDOW,
    MK_WINDOW_CAUSAL,
    MK_MASK_BCAST,
    MK_MASK_FULL,
    MK_KV_LENS,
    MK_COUNT
};

static const char *const k_mask_names[MK_COUNT] = {
    "none", "causal_br", "causal_tl", "window", "window+causal", "mask_bcast", "mask_full",
    "kv_lens"};

static const clattn_path k_paths[4] = {CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                       CLATTN_PATH_SPLIT_KV, CLATTN_PATH_AUTO};
static const clattn_dtype k_dtypes[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
static const int k_seqs[8][2] = {{1, 1},     {1, 257},   {7, 33},  {33, 7},
                                 {100, 100}, {257, 100}, {17, 257}, {3, 1}};
static const int k_dims[8][2] = {{1, 1},     {17, 17},   {64, 64}, {80, 80},
                                 {128, 128}, {256, 256}, {64, 128}, {128, 17}};

#define MAXV 8
#define MAX_ROWS 256
static const int k_axis_size[N_AXES] = {4, 3, 3, MK_COUNT, 8, 8, 2, 3, 3, 2, 2};

typedef struct covering {
    int rows[MAX_ROWS][N_AXES];
    int n;
} covering;

static unsigned char g_uncovered[N_AXES][MAXV][N_AXES][MAXV];

static int pair_open(int a, int va, int b, int vb)
{
    return a < b ? g_uncovered[a][va][b][vb] : g_uncovered[b][vb][a][va];
}

static void build_covering(covering *c)
{
    int open = 0, usage[N_AXES][MAXV];
    memset(usage, 0, sizeof usage);
    memset(g_uncovered, 0, sizeof g_uncovered);
    for (int a = 0; a < N_AXES; a++)
        for (int b = a + 1; b < N_AXES; b++)
            for (int va = 0; va < k_axis_size[a]; va++)
                for (int vb = 0; vb < k_axis_size[b]; vb++) {
                    g_uncovered[a][va][b][vb] = 1;
                    open++;
                }
    c->n = 0;
    while (open > 0 && c->n < MAX_ROWS) {
        int *row = c->rows[c->n];
        for (int a = 0; a < N_AXES; a++)
            row[a] = -1;
        /* seed with the first open pair */
        int seeded = 0;
        for (int a = 0; a < N_AXES && !seeded; a++)
            for (int b = a + 1; b < N_AXES && !seeded; b++)
                for (int va = 0; va < k_axis_size[a] && !seeded; va++)
                    for (int vb = 0; vb < k_axis_size[b] && !seeded; vb++)
                        if (g_uncovered[a][va][b][vb]) {
                            row[a] = va;
                            row[b] = vb;
                            seeded = 1;
                        }
        for (int ax = 0; ax < N_AXES; ax++) {
            if (row[ax] >= 0)
                continue;
            int best = 0, best_gain = -1;
            for (int v = 0; v < k_axis_size[ax]; v++) {
                int gain = 0;
                for (int e = 0; e < N_AXES; e++)
                    if (e != ax && row[e] >= 0)
                        gain += pair_open(ax, v, e, row[e]);
                if (gain > best_gain || (gain == best_gain && usage[ax][v] < usage[ax][best])) {
                    best = v;
                    best_gain = gain;
                }
            }
            row[ax] = best;
        }
        for (int a = 0; a < N_AXES; a++) {
            usage[a][row[a]]++;
            for (int b = a + 1; b < N_AXES; b++)
                if (g_uncovered[a][row[a]][b][row[b]]) {
                    g_uncovered[a][row[a]][b][row[b]] = 0;
                    open--;
                }
        }
        c->n++;
    }
    T_CHECK(open == 0, "covering array left %d pairs uncovered after %d rows", open, c->n);
}

/* Strides of one tensor [B][H][S][D] in the row's layout. */
static clattn_strides layout_strides(int layout, int H, int S, int D)
{
    clattn_strides s = {0, 0, 0};
    if (layout == 1) { /* BSHD */
        s.seq = (int64_t)H * D;
        s.head = D;
        s.batch = (int64_t)S * H * D;
    } else if (layout == 2) { /* padded: gaps after every row, head and batch */
        s.seq = D + 3;
        s.head = (int64_t)S * (D + 3) + 5;
        s.batch = (int64_t)H * s.head + 7;
    }
    return s;
}

/* The problem and tensor flags of row r (ri: its index, varying sub-choices). */
static unsigned row_problem(const int *r, int ri, clattn_problem *p)
{
    unsigned flags = 0;
    memset(p, 0, sizeof *p);
    p->path = k_paths[r[AX_PATH]];
    p->dtype = k_dtypes[r[AX_DTYPE]];
    switch (r[AX_HEADS]) {
    case 0: /* MHA, kv_heads sometimes left to its default */
        p->heads = 3;
        p->kv_heads = ri % 2 ? 3 : 0;
        break;
    case 1: /* GQA */
        p->heads = ri % 2 ? 6 : 4;
        p->kv_heads = 2;
        break;
    default: /* MQA */
        p->heads = ri % 2 ? 4 : 3;
        p->kv_heads = 1;
        break;
    }
    p->seq_q = k_seqs[r[AX_SEQ]][0];
    p->seq_kv = k_seqs[r[AX_SEQ]][1];
    p->head_dim = k_dims[r[AX_HD]][0];
    int dv = k_dims[r[AX_HD]][1];
    p->head_dim_v = dv == p->head_dim && ri % 2 ? 0 : dv;
    p->batch = r[AX_BATCH] + 1;
    if (r[AX_SCALE])
        p->scale = (float)(3.0 / sqrt((double)p->head_dim));
    if (r[AX_LSE])
        flags |= T_WITH_LSE;

    static const int win_only[4][2] = {{3, 5}, {-1, 2}, {4, -1}, {0, 0}};
    static const int win_causal[3][2] = {{5, -1}, {-3, 2}, {2, 0}};
    const int H = p->heads, Sq = p->seq_q, Skv = p->seq_kv;
    switch (r[AX_MASK]) {
    case MK_CAUSAL_BR:
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        break;
    case MK_CAUSAL_TL:
        p->causal = CLATTN_CAUSAL_TOP_LEFT;
        break;
    case MK_WINDOW:
        p->windowed = 1;
        p->window_left = win_only[ri % 4][0];
        p->window_right = win_only[ri % 4][1];
        break;
    case MK_WINDOW_CAUSAL:
        p->windowed = 1;
        p->causal = ri % 2 ? CLATTN_CAUSAL_TOP_LEFT : CLATTN_CAUSAL_BOTTOM_RIGHT;
        p->window_left = win_causal[ri % 3][0];
        p->window_right = win_causal[ri % 3][1];
        break;
    case MK_MASK_BCAST: /* broadcast over both, over heads, or over batch */
        flags |= T_WITH_MASK;
        if (ri % 3 == 1)
            p->mask_batch_stride = (int64_t)Sq * Skv;
        else if (ri % 3 == 2)
            p->mask_head_stride = (int64_t)Sq * Skv;
        break;
    case MK_MASK_FULL: /* dense, or with gaps between heads and batches */
        flags |= T_WITH_MASK;
        p->mask_head_stride = (int64_t)Sq * Skv + (ri % 2 ? 3 : 0);
        p->mask_batch_stride = H * p->mask_head_stride + (ri % 2 ? 5 : 0);
        break;
    case MK_KV_LENS: /* a garbage KV cache beyond each length; decode-style causal too */
        flags |= T_WITH_KV_LENS | T_NAN_BEYOND_LEN;
        if (ri % 2)
            p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        break;
    default:
        break;
    }
    const int Hkv = p->kv_heads ? p->kv_heads : H, D = p->head_dim, Dv = dv;
    p->q_strides = layout_strides(r[AX_LAYOUT], H, Sq, D);
    p->k_strides = layout_strides(r[AX_LAYOUT], Hkv, Skv, D);
    p->v_strides = layout_strides(r[AX_LAYOUT], Hkv, Skv, Dv);
    p->o_strides = layout_strides(r[AX_LAYOUT], H, Sq, Dv);
    return flags;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_pairwise(clattn_path path)
{
    static covering cov;
    build_covering(&cov);
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    int ran = 0, skipped = 0, failed = 0;
    for (int ri = 0; ri < cov.n; ri++) {
        const int *r = cov.rows[ri];
        if (k_paths[r[AX_PATH]] != path)
            continue;
        clattn_problem p;
        unsigned flags = row_problem(r, ri, &p);
        char label[64];
        snprintf(label, sizeof label, "row %d (%s, %s, %s)", ri, k_mask_names[r[AX_MASK]],
                 r[AX_API] ? "host" : "device",
                 r[AX_LAYOUT] == 0 ? "packed" : r[AX_LAYOUT] == 1 ? "bshd" : "padded");
        clattn_status sup = clattn_supports(ctx, &p);
        if (sup == CLATTN_ERR_UNSUPPORTED) {
            t_skip("%s: unsupported on this device: %s", label, clattn_last_error(ctx));
            skipped++;
            continue;
        }
        t_tensors t;
        if (t_tensors_init(&t, &p, flags, 0x5eed0000u + (uint64_t)ri) != 0)
            return;
        if (sup != CLATTN_OK) {
            clattn_host_buffers hb = t_tensors_host(&t);
            char desc[512];
            t_describe(&p, &hb, desc, sizeof desc);
            T_FAIL("%s [%s]: clattn_supports -> %s: %s", label, desc, clattn_status_string(sup),
                   clattn_last_error(ctx));
            failed++;
            t_tensors_free(&t);
            continue;
        }
        double t0 = now_s();
        clattn_status st = r[AX_API] ? t_run_host(ctx, &t) : t_run_device(ctx, &t);
        double dt = now_s() - t0;
        ran++;
        int before = t_failures;
        t_result res = {0};
        if (st != CLATTN_OK) {
            clattn_host_buffers hb = t_tensors_host(&t);
            char desc[512];
            t_describe(&p, &hb, desc, sizeof desc);
            T_FAIL("%s [%s]: %s -> %s: %s", label, desc,
                   r[AX_API] ? "clattn_forward_host" : "clattn_forward",
                   clattn_status_string(st), clattn_last_error(ctx));
        } else {
            res = t_verify(label, &t, t_tolerance_for(p.dtype));
        }
        /* the three-stage slice also checks the probabilities, built by the same kernels */
        double perr = -1.0;
        if (st == CLATTN_OK && path == CLATTN_PATH_THREE_STAGE) {
            size_t np = (size_t)p.batch * p.heads * p.seq_q * p.seq_kv;
            float *probs = malloc(sizeof(float) * np);
            clattn_host_buffers hb = t_tensors_host(&t);
            hb.o = NULL;
            hb.lse = NULL;
            for (size_t e = 0; probs && e < np; e++)
                probs[e] = NAN;
            clattn_status ws = probs ? clattn_attention_weights_host(ctx, &p, &hb, probs)
                                     : CLATTN_ERR_OUT_OF_RESOURCES;
            if (ws != CLATTN_OK)
                T_FAIL("%s: clattn_attention_weights_host -> %s: %s", label,
                       clattn_status_string(ws), clattn_last_error(ctx));
            else
                perr = t_verify_probs(label, &p, &hb, probs, t_tolerance_for(p.dtype)).probs_err;
            free(probs);
        }
        if (t_failures != before)
            failed++;
        char desc[512];
        clattn_host_buffers hb = t_tensors_host(&t);
        t_describe(&p, &hb, desc, sizeof desc);
        char probs_note[32] = "";
        if (perr >= 0.0)
            snprintf(probs_note, sizeof probs_note, " probs %.1e", perr);
        t_log("%s %s: relL2 %.2e lse %.1e%s masked %ld/%ld %.2fs  [%s]",
              t_failures != before ? "BAD " : "ok  ", label, res.rel_l2, res.lse_err, probs_note,
              res.masked_rows, res.rows, dt, desc);
        t_tensors_free(&t);
    }
    t_log("%s: %d of %d covering rows ran, %d skipped as unsupported, %d failed",
          t_path_name(path), ran, cov.n, skipped, failed);
    T_CHECK(ran > 0, "no row ran for path %s", t_path_name(path));
    clattn_context_destroy(ctx);
}

void case_pairwise_fused(void)
{
    run_pairwise(CLATTN_PATH_FUSED);
}

void case_pairwise_three_stage(void)
{
    run_pairwise(CLATTN_PATH_THREE_STAGE);
}

void case_pairwise_split_kv(void)
{
    run_pairwise(CLATTN_PATH_SPLIT_KV);
}

void case_pairwise_auto(void)
{
    run_pairwise(CLATTN_PATH_AUTO);
}
