/* The score features' table (feature_table.h). */
#include <math.h>

#include "feature_table.h"
#include "internal.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

static clattn_status flag(struct clattn_context *ctx, const char *name, int v)
{
    return v == 0 || v == 1 ? CLATTN_OK : BAD("%s must be 0 or 1 (got %d)", name, v);
}

/* ---- logit softcap ---- */
static int softcap_on(const clattn__shape *s) { return s->p.softcap > 0.0f; }
static clattn_status softcap_check(struct clattn_context *ctx, const clattn_problem *p)
{
    if (!isfinite(p->softcap) || p->softcap < 0.0f)
        return BAD("softcap must be 0 (off) or positive and finite (got %g)", (double)p->softcap);
    return CLATTN_OK;
}
static double softcap_step(const clattn__score_at *at, double s)
{
    return at->p->softcap * tanh(s / at->p->softcap);
}

/* ---- attention sinks (a softmax start, not a score step) ---- */
static int sinks_on(const clattn__shape *s) { return s->p.sinks; }
static clattn_status sinks_check(struct clattn_context *ctx, const clattn_problem *p)
{
    return flag(ctx, "sinks", p->sinks);
}

/* ---- ALiBi ---- */
static int alibi_on(const clattn__shape *s) { return s->p.alibi; }
static clattn_status alibi_check(struct clattn_context *ctx, const clattn_problem *p)
{
    return flag(ctx, "alibi", p->alibi);
}
static double alibi_step(const clattn__score_at *at, double s)
{
    const double d = (double)(at->j - at->ip);
    return s + at->slopes[at->h] * (at->p->alibi_mode == CLATTN_ALIBI_SYMMETRIC ? -fabs(d) : d);
}

/* ---- ALiBi's symmetric distance (a switch of the ALiBi step) ---- */
static int alibi_sym_on(const clattn__shape *s)
{
    return s->p.alibi && s->p.alibi_mode == CLATTN_ALIBI_SYMMETRIC;
}
static clattn_status alibi_mode_check(struct clattn_context *ctx, const clattn_problem *p)
{
    if (p->alibi_mode != CLATTN_ALIBI_LINEAR && p->alibi_mode != CLATTN_ALIBI_SYMMETRIC)
        return BAD("alibi_mode must be CLATTN_ALIBI_LINEAR (0) or CLATTN_ALIBI_SYMMETRIC (1) "
                   "(got %d)",
                   p->alibi_mode);
    if (p->alibi_mode != CLATTN_ALIBI_LINEAR && !p->alibi)
        return BAD("alibi_mode %d needs alibi = 1 (and buffers.alibi_slopes)", p->alibi_mode);
    return CLATTN_OK;
}

/* ---- masks (their layouts are checked with the views, problem.c) ---- */
static int bias_on(const clattn__shape *s) { return s->p.bias.enabled || s->has_mask; }
static int bmask_on(const clattn__shape *s) { return s->p.bool_mask.enabled; }

/* ---- left padding ---- */
static int kv_start_on(const clattn__shape *s) { return s->p.kv_start; }
static clattn_status kv_start_check(struct clattn_context *ctx, const clattn_problem *p)
{
    return flag(ctx, "kv_start", p->kv_start);
}

/* ---- chunked local attention ---- */
static int chunk_on(const clattn__shape *s) { return s->p.chunk_size > 0; }
static clattn_status chunk_check(struct clattn_context *ctx, const clattn_problem *p)
{
    if (p->chunk_size < 0)
        return BAD("chunk_size must be 0 (off) or positive (got %d)", p->chunk_size);
    return CLATTN_OK;
}

/* ---- packed variable-length batches ---- */
static int varlen_on(const clattn__shape *s) { return s->p.varlen; }
static clattn_status varlen_check(struct clattn_context *ctx, const clattn_problem *p)
{
    CLATTN_TRY(flag(ctx, "varlen", p->varlen));
    if (!p->varlen && (p->total_q != 0 || p->total_kv != 0))
        return BAD("total_q and total_kv are for varlen problems (varlen is 0; got %d, %d)",
                   p->total_q, p->total_kv);
    if (p->varlen) {
        if (p->total_q <= 0 || p->total_kv <= 0)
            return BAD("varlen: total_q and total_kv must be positive (got %d, %d)", p->total_q,
                       p->total_kv);
        if (p->kv_start)
            return BAD("kv_start cannot be combined with varlen (each sequence starts at its "
                       "own cu_seqlens_kv entry)");
    }
    return CLATTN_OK;
}

enum {
    GEMM_QK = CLATTN__FT_GEMM_QK,
    ALL_KEYS = CLATTN__FT_ALL_KEYS,
    TUNABLE = CLATTN__FT_TUNABLE,
};

/* Softcap must see each score before anything is added to it, so a GEMM's
 * scores cannot take it; masks, left padding, chunks and packed sequences
 * hide keys (or need layouts the tuner does not invent). */
const clattn__feature clattn__features[] = {
    {0x1u, "SOFTCAP", "softcap", ALL_KEYS | TUNABLE, softcap_on, softcap_check, softcap_step},
    {0x2u, "SINKS", "sinks", GEMM_QK | ALL_KEYS | TUNABLE, sinks_on, sinks_check, NULL},
    {0x4u, "ALIBI", "alibi", GEMM_QK | ALL_KEYS | TUNABLE, alibi_on, alibi_check, alibi_step},
    {CLATTN__F_BIAS, "BIAS", "bias", GEMM_QK, bias_on, NULL, NULL},
    {0x10u, "BMASK", "bool_mask", GEMM_QK, bmask_on, NULL, NULL},
    {0x20u, "KV_START", "kv_start", GEMM_QK, kv_start_on, kv_start_check, NULL},
    {0x40u, "CHUNK", "chunk_size", GEMM_QK | TUNABLE, chunk_on, chunk_check, NULL},
    {0x80u, "VARLEN", "varlen", 0, varlen_on, varlen_check, NULL},
    /* bits 0x100 and 0x200 hold the additive mask's storage type */
    {0x400u, "ALIBI_SYM", "alibi_mode", GEMM_QK | ALL_KEYS | TUNABLE, alibi_sym_on,
     alibi_mode_check, NULL},
    {0, NULL, NULL, 0, NULL, NULL, NULL},
};

clattn_status clattn__features_check(struct clattn_context *ctx, const clattn_problem *p)
{
    for (size_t i = 0; i < sizeof p->reserved / sizeof p->reserved[0]; ++i)
        if (p->reserved[i] != 0)
            return BAD("reserved[%zu] must be zero (a field of a newer clattn than this %s?)", i,
                       clattn_version());
    for (const clattn__feature *f = clattn__features; f->define; ++f)
        if (f->check)
            CLATTN_TRY(f->check(ctx, p));
    return CLATTN_OK;
}

unsigned clattn__shape_features(const clattn__shape *s)
{
    unsigned bits = 0;
    for (const clattn__feature *f = clattn__features; f->define; ++f)
        if (f->on(s))
            bits |= f->bit;
    if (bits & CLATTN__F_BIAS)
        bits |= (unsigned)s->bias_dtype << CLATTN__F_BIAS_DTYPE_SHIFT;
    return bits;
}

const clattn__feature *clattn__features_lacking(unsigned bits, unsigned traits)
{
    for (const clattn__feature *f = clattn__features; f->define; ++f)
        if ((bits & f->bit) && (f->traits & traits) != traits)
            return f;
    return NULL;
}

int clattn__features_have(unsigned bits, unsigned traits)
{
    return clattn__features_lacking(bits, traits) == NULL;
}

double clattn__features_score(const clattn__score_at *at, double s)
{
    for (const clattn__feature *f = clattn__features; f->define; ++f)
        if (f->step && (at->bits & f->bit))
            s = f->step(at, s);
    return s;
}
