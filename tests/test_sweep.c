/*
 * kernel_sweep: every path with every mask kind, every storage type, head_dim
 * 1 and 256, a single query row, GQA and MQA, on problems small enough to run
 * under Oclgrind (which interprets every work-item). The same case runs in the
 * plain suite; tests/oclgrind/ runs it under the simulator with the default
 * kernel configuration and with tuning candidates forced by CLATTN_PARAMS.
 */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

typedef struct sweep_shape {
    int b, h, hkv, sq, skv, d, dv;
} sweep_shape;

/* Odd sizes, none a multiple of a tile; the second is a decode row with the
 * widest head, the third the narrowest head, the fourth MQA with Sq > Skv. */
static const sweep_shape k_shapes[] = {
    {2, 3, 1, 5, 7, 17, 9},
    {1, 2, 2, 1, 9, 256, 256},
    {1, 2, 2, 6, 3, 1, 1},
    {2, 4, 2, 9, 11, 33, 33},
    {1, 3, 1, 7, 5, 8, 5},
};
#define N_SHAPES (int)(sizeof k_shapes / sizeof k_shapes[0])

enum {
    MK_NONE,
    MK_CAUSAL_BR,
    MK_CAUSAL_TL,
    MK_WINDOW,
    MK_MASK,
    MK_KV_LENS,
    MK_SLIDING,     /* causal bottom-right and a left window */
    MK_KV_CAUSAL,   /* kv_lens with causal bottom-right */
    MK_MASK_WINDOW, /* additive mask broadcast over heads, with a window */
    MK_SOFTCAP_SINKS, /* softcap, sinks and a window */
    MK_ALIBI_CAUSAL,  /* ALiBi with causal bottom-right */
    MK_BIAS_BOOL,     /* per-head fp16 bias with a [B,1,1,Skv] boolean padding mask,
                       * and symmetric ALiBi (an encoder's bidirectional rows) */
    MK_KV_START,      /* left padding with kv_lens and causal bottom-right */
    MK_CHUNK,         /* chunked local attention, causal */
    MK_VARLEN,        /* packed sequences with causal and ALiBi */
    MK_COUNT
};
static const char *const k_mask_names[MK_COUNT] = {
    "none", "causal_br", "causal_tl", "window", "mask", "kv_lens", "sliding", "kv_causal",
    "mask_window", "softcap_sinks", "alibi_causal", "bias_bool", "kv_start", "chunk", "varlen"};

static const clattn_dtype k_dtypes[3] = {CLATTN_F32, CLATTN_F16, CLATTN_BF16};
static const clattn_path k_paths[3] = {CLATTN_PATH_FUSED, CLATTN_PATH_THREE_STAGE,
                                       CLATTN_PATH_SPLIT_KV};

static unsigned sweep_problem(clattn_problem *p, const sweep_shape *s, int mk, clattn_dtype dt,
                              clattn_path path)
{
    memset(p, 0, sizeof *p);
    p->batch = s->b;
    p->heads = s->h;
    p->kv_heads = s->hkv;
    p->seq_q = s->sq;
    p->seq_kv = s->skv;
    p->head_dim = s->d;
    p->head_dim_v = s->dv;
    p->dtype = dt;
    p->path = path;
    unsigned flags = T_WITH_LSE;
    switch (mk) {
    case MK_NONE: break;
    case MK_CAUSAL_BR: p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT; break;
    case MK_CAUSAL_TL: p->causal = CLATTN_CAUSAL_TOP_LEFT; break;
    case MK_WINDOW:
        p->windowed = 1;
        p->window_left = 2;
        p->window_right = 1;
        break;
    case MK_MASK: flags |= T_WITH_MASK; break;
    case MK_KV_LENS: flags |= T_WITH_KV_LENS | T_NAN_BEYOND_LEN; break;
    case MK_SLIDING:
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p->windowed = 1;
        p->window_left = 3;
        p->window_right = -1;
        break;
    case MK_KV_CAUSAL:
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        flags |= T_WITH_KV_LENS;
        break;
    case MK_MASK_WINDOW:
        flags |= T_WITH_MASK;
        p->mask_batch_stride = (int64_t)s->sq * s->skv;
        p->mask_head_stride = 0;
        p->windowed = 1;
        p->window_left = 1;
        p->window_right = 2;
        break;
    case MK_SOFTCAP_SINKS:
        p->softcap = 2.0f;
        p->sinks = 1;
        p->windowed = 1;
        p->window_left = 2;
        p->window_right = 0;
        flags |= T_WITH_SINKS;
        break;
    case MK_ALIBI_CAUSAL:
        p->alibi = 1;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        flags |= T_WITH_ALIBI;
        break;
    case MK_BIAS_BOOL:
        p->bias.enabled = 1;
        p->bias.dtype = CLATTN_F16;
        p->bias.strides = (clattn_mask_strides){0, (int64_t)s->sq * s->skv, s->skv};
        p->bool_mask.enabled = 1;
        p->bool_mask.strides = (clattn_mask_strides){s->skv, 0, 0};
        p->alibi = 1;
        p->alibi_mode = CLATTN_ALIBI_SYMMETRIC;
        flags |= T_WITH_BIAS | T_WITH_BOOL_MASK | T_WITH_ALIBI;
        break;
    case MK_KV_START:
        p->kv_start = 1;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        flags |= T_WITH_KV_START | T_WITH_KV_LENS;
        break;
    case MK_CHUNK:
        p->chunk_size = 3;
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        break;
    case MK_VARLEN:
        p->causal = CLATTN_CAUSAL_BOTTOM_RIGHT;
        p->alibi = 1;
        flags |= T_WITH_VARLEN | T_WITH_ALIBI;
        break;
    }
    return flags;
}

static int sweep_selected(const char *label)
{
    const char *only = getenv("CLATTN_SWEEP_ONLY");
    if (!only || !*only)
        return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", only);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (strstr(label, tok))
            return 1;
    return 0;
}

void case_kernel_sweep(void)
{
    /* One context for every run, natively, so that buffer reuse is covered;
     * the Oclgrind runs make a new one per run (t_context_between_runs). */
    clattn_context *ctx = t_context();
    if (!ctx)
        return;
    const int expected = 3 * MK_COUNT * 3;
    int executed = 0, unsupported = 0, filtered = 0;
    /* Every path x mask kind x dtype once; the shape rotates so that each
     * (path, shape) and (mask, shape) pair occurs too. */
    for (int pi = 0; pi < 3; pi++)
        for (int mk = 0; mk < MK_COUNT; mk++)
            for (int di = 0; di < 3; di++) {
                const sweep_shape *s = &k_shapes[(pi + mk + 2 * di) % N_SHAPES];
                clattn_problem p;
                unsigned flags = sweep_problem(&p, s, mk, k_dtypes[di], k_paths[pi]);
                char label[96];
                snprintf(label, sizeof label, "sweep/%s/%s/%s", t_path_name(p.path),
                         k_mask_names[mk], t_dtype_name(p.dtype));
                /* Labels picked by comma-separated substrings, to chase a report;
                 * a filtered sweep is not the sweep, so it fails below. */
                if (!sweep_selected(label)) {
                    filtered++;
                    continue;
                }
                t_tensors t;
                uint64_t seed = 0x5eed0000u + (uint64_t)(pi * 100 + mk * 10 + di);
                if (t_tensors_init(&t, &p, flags, seed) != 0)
                    continue;
                if (flags & T_NAN_BEYOND_LEN)
                    t_tensors_nan_beyond_len(&t);
                if (t_context_between_runs(&ctx) != 0) {
                    t_tensors_free(&t);
                    return;
                }
                if (t_check_run(ctx, label, &t, 0) < 0)
                    unsupported++;
                else
                    executed++;
                t_tensors_free(&t);
            }
    /* Unsupported runs are skips (t_check_run counted them); anything else
     * that did not run fails the case. */
    T_CHECK(executed + unsupported == expected,
            "%d of %d sweep runs executed, %d unsupported, %d filtered out by "
            "CLATTN_SWEEP_ONLY=%s", executed, expected, unsupported, filtered,
            getenv("CLATTN_SWEEP_ONLY") ? getenv("CLATTN_SWEEP_ONLY") : "(unset)");
    t_log("kernel_sweep: %d of %d runs executed, %d unsupported", executed, expected,
          unsupported);
    clattn_context_destroy(ctx);
}
