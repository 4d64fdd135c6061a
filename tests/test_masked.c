/*
 * Rows that see no key, and keys that no row sees: O must be 0 and the LSE
 * -inf for the former, and NaN or garbage in the latter's K/V must not leak.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

typedef enum {
    M_CAUSAL_BR_SHORT_KV, /* seq_q > seq_kv: the top rows see nothing */
    M_KV_LENS_ZERO,       /* one batch with kv_lens 0, NaN beyond every length */
    M_MASK_ROWS,          /* whole mask rows -inf, one key -inf everywhere with NaN V */
    M_MASK_ALL,           /* a broadcast mask that is -inf everywhere */
    M_WINDOW_NOTHING,     /* causal top-left and a window right of the diagonal */
    M_WINDOW_SHORT_KV,    /* window (0,0) with seq_q > seq_kv: top rows see nothing */
    M_CAUSAL_TL_NAN_V,    /* keys beyond seq_q never visible; NaN and -inf in their V */
    M_ALL_KV_LENS_ZERO,
    M_COUNT
} masked_kind;

static const char *const k_names[M_COUNT] = {
    "causal_br_short_kv", "kv_lens_zero",      "mask_rows_neginf",  "mask_all_neginf",
    "window_sees_nothing", "window_short_kv", "causal_tl_nan_v", "all_kv_lens_zero"};

/* Builds tensors for one kind; 0 on success. */
static int make_masked(t_tensors *t, masked_kind kind, clattn_dtype dt, uint64_t seed)
{
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 2;
    p.heads = 2;
    p.head_dim = 32;
    p.dtype = dt;
    unsigned flags = T_WITH_LSE;
    switch (kind) {
    case M_CAUSAL_BR_SHORT_KV:
        p.seq_q = 9;
        p.seq_kv = 5;
        p.causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        break;
    case M_KV_LENS_ZERO:
        p.batch = 3;
        p.seq_q = 4;
        p.seq_kv = 6;
        flags |= T_WITH_KV_LENS;
        break;
    case M_MASK_ROWS:
    case M_MASK_ALL:
        p.seq_q = 5;
        p.seq_kv = 7;
        flags |= T_WITH_MASK;
        if (kind == M_MASK_ROWS) {
            p.mask_head_stride = (int64_t)p.seq_q * p.seq_kv;
            p.mask_batch_stride = p.heads * p.mask_head_stride;
        }
        break;
    case M_WINDOW_NOTHING:
        p.seq_q = 4;
        p.seq_kv = 8;
        p.causal = CLATTN_CAUSAL_TOP_LEFT;
        p.windowed = 1;
        p.window_left = 0;
        p.window_right = -1;
        break;
    case M_WINDOW_SHORT_KV:
        p.seq_q = 6;
        p.seq_kv = 3;
        p.windowed = 1;
        break;
    case M_CAUSAL_TL_NAN_V:
        p.seq_q = 4;
        p.seq_kv = 9;
        p.causal = CLATTN_CAUSAL_TOP_LEFT;
        break;
    case M_ALL_KV_LENS_ZERO:
        p.seq_q = 3;
        p.seq_kv = 5;
        flags |= T_WITH_KV_LENS;
        break;
    default:
        return -1;
    }
    if (t_tensors_init(t, &p, flags, seed) != 0)
        return -1;
    const int Sq = p.seq_q, Skv = p.seq_kv;
    switch (kind) {
    case M_KV_LENS_ZERO:
        t->kv_lens[0] = 0;
        t->kv_lens[1] = 3;
        t->kv_lens[2] = Skv;
        t_tensors_nan_beyond_len(t);
        break;
    case M_ALL_KV_LENS_ZERO:
        t->kv_lens[0] = 0;
        t->kv_lens[1] = 0;
        t_tensors_nan_beyond_len(t);
        break;
    case M_MASK_ROWS:
        for (int64_t e = 0; e < t->mask_n; e++)
            if (t->mask[e] == -INFINITY)
                t->mask[e] = 0.5f;
        for (int j = 0; j < Skv; j++) {
            t->mask[0 * p.mask_batch_stride + 1 * p.mask_head_stride + 2 * Skv + j] = -INFINITY;
            t->mask[1 * p.mask_batch_stride + 0 * p.mask_head_stride + 0 * Skv + j] = -INFINITY;
        }
        for (int b = 0; b < p.batch; b++)
            for (int h = 0; h < p.heads; h++)
                for (int i = 0; i < Sq; i++)
                    t->mask[b * p.mask_batch_stride + h * p.mask_head_stride + i * Skv + 3] =
                        -INFINITY;
        t_set_key(t, 3, NAN, 0, 1);
        break;
    case M_MASK_ALL:
        for (int64_t e = 0; e < t->mask_n; e++)
            t->mask[e] = -INFINITY;
        break;
    case M_CAUSAL_TL_NAN_V: /* "NaN or infinity" in V of keys of probability 0 */
        for (int j = Sq; j < Skv; j++)
            t_set_key(t, j, j % 2 ? NAN : -INFINITY, 0, 1);
        break;
    default:
        break;
    }
    return 0;
}

void case_masked_rows(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    static const clattn_dtype dts[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
    for (int k = 0; k < M_COUNT; k++)
        for (int pi = 0; pi < 4; pi++) {
            /* f32 everywhere; the 16-bit types on some kinds to keep builds few */
            int ndt = (k == M_CAUSAL_BR_SHORT_KV || k == M_MASK_ROWS) ? 3 : 1;
            for (int di = 0; di < ndt; di++) {
                t_tensors t;
                if (make_masked(&t, (masked_kind)k, dts[di], 0x3a5c0000u + (uint64_t)k * 16 + di) !=
                    0)
                    return;
                t.p.path = t_all_paths[pi];
                char label[64];
                snprintf(label, sizeof label, "%s/%s/%s", k_names[k], t_path_name(t.p.path),
                         t_dtype_name(t.p.dtype));
                t_check_run(ctx, label, &t, (k + pi + di) % 2);
                t_tensors_free(&t);
            }
        }
    clattn_context_destroy(ctx);
}

void case_kv_cache_nan(void)
{
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    /* decode: one query row against a long cache whose tail is garbage */
    static const struct {
        int sq, heads, kv_heads, causal;
        int32_t lens[3];
        const char *name;
    } shapes[4] = {
        {1, 4, 1, CLATTN_CAUSAL_NONE, {100, 0, 257}, "decode_mqa"},
        {1, 8, 2, CLATTN_CAUSAL_BOTTOM_RIGHT, {257, 31, 1}, "decode_gqa_causal"},
        {4, 4, 4, CLATTN_CAUSAL_BOTTOM_RIGHT, {5, 1, 200}, "speculative_causal"},
        {3, 2, 1, CLATTN_CAUSAL_NONE, {-5, 300, 17}, "out_of_range_clamped"},
    };
    static const clattn_dtype dts[2] = {CLATTN_F32, CLATTN_BF16};
    for (int s = 0; s < 4; s++)
        for (int di = 0; di < 2; di++)
            for (int pi = 0; pi < 4; pi++) {
                clattn_problem p;
                memset(&p, 0, sizeof p);
                p.batch = 3;
                p.heads = shapes[s].heads;
                p.kv_heads = shapes[s].kv_heads;
                p.seq_q = shapes[s].sq;
                p.seq_kv = 257;
                p.head_dim = 64;
                p.dtype = dts[di];
                p.causal = shapes[s].causal;
                p.path = t_all_paths[pi];
                t_tensors t;
                if (t_tensors_init(&t, &p, T_WITH_LSE | T_WITH_KV_LENS, 0xcace0000u + s * 8 + di) !=
                    0)
                    return;
                memcpy(t.kv_lens, shapes[s].lens, sizeof shapes[s].lens);
                t_tensors_nan_beyond_len(&t);
                char label[80];
                snprintf(label, sizeof label, "%s/%s/%s", shapes[s].name, t_path_name(p.path),
                         t_dtype_name(p.dtype));
                /* lengths outside 0..seq_kv are refused by the host API: device only */
                int host = s == 3 ? 0 : (pi + di) % 2;
                t_check_run(ctx, label, &t, host);
                t_tensors_free(&t);
            }
    clattn_context_destroy(ctx);
}
