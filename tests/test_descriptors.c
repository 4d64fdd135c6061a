/*
 * Descriptor fuzzing: random clattn_problem descriptors and buffer sets, valid
 * and invalid, through clattn_forward, clattn_forward_host and
 * clattn_attention_weights_host. The draws include every field of 1.0:
 * softcap, sinks, ALiBi, the typed bias and the boolean mask (their layouts
 * with broadcast, padded and static-cache strides), kv_start, chunk_size,
 * varlen (cu_seqlens, token counts, [tokens][heads][dim] views), head dims up
 * to 512 and 576, and the reserved blocks; those of 1.1: K and V storage
 * formats (groups, scale types, per-head FP8 scales) and paged K/V (page
 * sizes, pools, block tables, token-major pages); and their buffers, given
 * or not, with the block table's entries checked by the host functions.
 *
 * Whether a draw is valid is decided here by a model written from the rules
 * in clattn.h (never by asking the library), so the model and the library's
 * validator can disagree; any disagreement fails the case.
 *   invalid: CLATTN_ERR_INVALID_ARGUMENT, a message naming one of the fields
 *            the model found wrong, no event handed back, and every byte of
 *            every buffer (outputs, their guards, inputs) as it was.
 *   valid:   the run matches ref_attention within the dtype's tolerance, and
 *            nothing outside O's view and LSE changed. A mutated problem the
 *            model finds valid must pass the library's problem checks too.
 * Quick by default (its valid side runs three K/V storage combinations a
 * seed); CLATTN_LONG=1 draws ten times more, with any feature set, head
 * dims, dtypes and K/V storage on the valid side; CLATTN_FUZZ_SEED picks
 * another seed (the seed is printed), and CLATTN_FUZZ_SEED=seed:n runs draw
 * n of that seed alone.
 */
#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "harness.h"

/* ---- run length ---------------------------------------------------------- */

static int long_run(void)
{
    const char *e = getenv("CLATTN_LONG");
    return e && *e && strcmp(e, "0") != 0;
}

/* CLATTN_FUZZ_SEED=seed picks another seed; seed:n runs draw n alone (each
 * draw has a stream of its own, so a failing draw reruns by itself). */
static uint64_t fuzz_seed(uint64_t dflt, long *only)
{
    const char *e = getenv("CLATTN_FUZZ_SEED");
    *only = -1;
    if (!e || !*e)
        return dflt;
    char *end = NULL;
    uint64_t seed = strtoull(e, &end, 0);
    if (end && *end == ':')
        *only = strtol(end + 1, NULL, 0);
    return seed;
}

/* The stream of draw n. */
static void draw_rng(t_rng *r, uint64_t seed, long n)
{
    t_rng mix;
    t_rng_seed(&mix, seed ^ ((uint64_t)n * 0xd1342543de82ef95ull));
    t_rng_seed(r, t_rng_next(&mix));
}

/* ---- the validity model -------------------------------------------------- */

/* What the model expects of a call: valid, or refused with a message naming
 * one of the '|'-separated words. */
typedef struct verdict {
    int valid;
    char words[1024];
} verdict;

static void v_bad(verdict *v, const char *words)
{
    size_t n = strlen(v->words);
    if (n + strlen(words) + 2 < sizeof v->words)
        snprintf(v->words + n, sizeof v->words - n, "%s%s", n ? "|" : "", words);
    v->valid = 0;
}

typedef __int128 i128;
#define I64MAX ((i128)INT64_MAX)

/* The buffers of a call, in the order of clattn_buffers: the four tensors,
 * the three optional ones of 0.1, the inputs of the 1.0 features, then
 * those of 1.1 (the block table, the scales of K and V). */
enum {
    S_Q, S_K, S_V, S_O, S_MASK, S_KVL, S_LSE,
    S_BIAS, S_BOOL, S_SINKS, S_ALIBI, S_KVS, S_CUQ, S_CUKV,
    S_TABLE, S_KSC, S_VSC, S_N
};
static const char *const slot_name[S_N] = {
    "q",    "k",         "v",     "o",            "mask",     "kv_lens",      "lse",
    "bias", "bool_mask", "sinks", "alibi_slopes", "kv_start", "cu_seqlens_q", "cu_seqlens_kv",
    "block_table", "k_scales", "v_scales"};
/* clattn_buffers: a 1.0 or 1.1 input is given exactly when this problem
 * field enables it. */
static const char *const slot_flag[S_N] = {
    [S_BIAS] = "bias",    [S_BOOL] = "bool_mask", [S_SINKS] = "sinks",  [S_ALIBI] = "alibi",
    [S_KVS] = "kv_start", [S_CUQ] = "varlen",     [S_CUKV] = "varlen",  [S_TABLE] = "paged",
    [S_KSC] = "k_storage", [S_VSC] = "v_storage"};

static int is_feature_slot(int i) { return i >= S_BIAS; }

/* clattn_kv_format's families: INT8 and INT4 have grouped scales, FP8 a
 * scale per tensor or head, Q8_0 and Q4_0 blocks with their own fp16
 * scales (so even strides). */
static int kv_grouped(clattn_kv_format f) { return f == CLATTN_KV_INT8 || f == CLATTN_KV_INT4; }
static int kv_fp8(clattn_kv_format f)
{
    return f == CLATTN_KV_FP8_E4M3 || f == CLATTN_KV_FP8_E5M2;
}
static int kv_blocked(clattn_kv_format f) { return f == CLATTN_KV_Q8_0 || f == CLATTN_KV_Q4_0; }
static int kv_has_scales(clattn_kv_format f) { return kv_grouped(f) || kv_fp8(f); }

/* Whether problem p enables the input of feature slot i. */
static int declares(const clattn_problem *p, int i)
{
    switch (i) {
    case S_BIAS: return p->bias.enabled != 0;
    case S_BOOL: return p->bool_mask.enabled != 0;
    case S_SINKS: return p->sinks != 0;
    case S_ALIBI: return p->alibi != 0;
    case S_KVS: return p->kv_start != 0;
    case S_TABLE: return p->paged.enabled != 0;
    case S_KSC: return kv_has_scales(p->k_storage.format);
    case S_VSC: return kv_has_scales(p->v_storage.format);
    default: return i >= S_CUQ && p->varlen != 0;
    }
}

/* "name|field": the words a message about a feature input may use. */
static const char *slot_words(int i, char *buf, size_t n)
{
    if (is_feature_slot(i))
        snprintf(buf, n, "%s|%s", slot_name[i], slot_flag[i]);
    else
        snprintf(buf, n, "%s", slot_name[i]);
    return buf;
}

/* The model's reading of a problem: defaults filled, extents in elements and
 * bytes (only meaningful when ok). Every input slot has a size, also those
 * the problem does not enable (what it would need if it did), so a fault can
 * hand over a buffer of the right size without its flag. */
typedef struct mshape {
    int ok; /* the problem alone is valid */
    int B, H, Hk, Sq, Skv, D, Dv;
    int varlen, Tq, Tkv; /* varlen: the token counts of q/o and k/v */
    int paged, ps, np, mp; /* paging: page size, pool pages, table columns */
    size_t esz;
    clattn_strides st[4]; /* q, k, v, o after the packed default (K, V in units) */
    i128 bytes[S_N];
} mshape;

/* clattn.h: "Views may not overlap themselves". The library enforces it as
 * a nest: taken by increasing stride, each dimension of extent > 1 steps
 * past every offset the smaller-stride dimensions reach. This checks that
 * form directly, dimension by dimension (a tie or a zero stride fails).
 * With broadcast (clattn_mask_strides), zero strides are left out: they read
 * the same elements again. */
static int layout_nested(const int64_t n[4], const int64_t s[4], int broadcast)
{
    for (int y = 0; y < 4; y++) {
        if (n[y] <= 1 || (broadcast && s[y] == 0))
            continue;
        i128 below = 0;
        for (int z = 0; z < 4; z++)
            if (z != y && n[z] > 1 && !(broadcast && s[z] == 0) && s[z] <= s[y])
                below += (i128)(n[z] - 1) * s[z];
        if (!((i128)s[y] > below))
            return 0;
    }
    return 1;
}

static int view_nested(const int64_t n[4], const int64_t s[4]) { return layout_nested(n, s, 0); }

/* Whether no two elements of a small view share an offset, by enumeration;
 * -1 when the view is too large to enumerate. */
static int view_injective(const int64_t n[4], const int64_t s[4])
{
    i128 ext = 1, count = 1;
    for (int d = 0; d < 4; d++) {
        ext += (i128)(n[d] - 1) * s[d];
        count *= n[d];
    }
    if (ext > 4096 || count > 4096 || ext < 1 || count < 1)
        return -1;
    unsigned char seen[4096];
    memset(seen, 0, (size_t)ext);
    for (int64_t a = 0; a < n[0]; a++)
        for (int64_t b = 0; b < n[1]; b++)
            for (int64_t c = 0; c < n[2]; c++)
                for (int64_t d = 0; d < n[3]; d++) {
                    int64_t off = a * s[0] + b * s[1] + c * s[2] + d * s[3];
                    if (seen[off])
                        return 0;
                    seen[off] = 1;
                }
    return 1;
}

static int interleaved_views; /* injective views the nesting rule refuses */

/* clattn_mask_layout and clattn_mask_strides: a disabled mask has dtype and
 * strides 0; an enabled one has a bias dtype (bool_mask: 0), non-negative
 * strides, a non-zero row stride of at least seq_kv, non-zero strides that
 * do not overlap, and a size in bytes within int64. Its bytes (as enabled,
 * when disabled) go to *bytes. */
static void model_mask(const clattn_problem *p, const clattn_mask_layout *l, const char *name,
                       int is_bool, verdict *v, i128 *bytes)
{
    char w[160];
    snprintf(w, sizeof w, "%s", name);
    *bytes = (i128)p->seq_kv * (is_bool ? 1 : 4);
    if (l->enabled != 0 && l->enabled != 1) {
        v_bad(v, w);
        return;
    }
    if (!l->enabled) {
        if (l->dtype != 0 || l->strides.batch || l->strides.head || l->strides.row)
            v_bad(v, w);
        return;
    }
    const int dtype_ok = is_bool ? l->dtype == 0
                                 : (l->dtype == CLATTN_F32 || l->dtype == CLATTN_F16 ||
                                    l->dtype == CLATTN_BF16);
    if (!dtype_ok) {
        v_bad(v, w);
        return;
    }
    const clattn_mask_strides *s = &l->strides;
    if (s->batch < 0 || s->head < 0 || s->row < 0) {
        v_bad(v, w);
        return;
    }
    const int64_t n[4] = {p->seq_kv, p->seq_q, p->heads, p->batch};
    const int64_t st[4] = {1, s->row, s->head, s->batch};
    if (!layout_nested(n, st, 1))
        v_bad(v, w);
    /* clattn.h states this one without exceptions (also for seq_q == 1) */
    if (s->row != 0 && s->row < p->seq_kv)
        v_bad(v, w);
    i128 ext = 1;
    for (int d = 0; d < 4; d++)
        ext += (i128)(n[d] - 1) * st[d];
    *bytes = ext * (is_bool ? 1 : (l->dtype == CLATTN_F32 ? 4 : 2));
    if (*bytes > I64MAX) {
        snprintf(w, sizeof w, "%s|size|bytes|overflow|overflows", name);
        v_bad(v, w);
    }
}

/* The 1.0 scalar fields: reserved block, softcap, the on/off flags,
 * chunk_size and the varlen totals. */
static void model_features(const clattn_problem *p, verdict *v)
{
    for (size_t i = 0; i < sizeof p->reserved / sizeof p->reserved[0]; i++)
        if (p->reserved[i] != 0) {
            v_bad(v, "reserved");
            break;
        }
    if (!isfinite(p->softcap) || p->softcap < 0.0f)
        v_bad(v, "softcap");
    const struct {
        const char *name;
        int value;
    } flags[4] = {{"sinks", p->sinks}, {"alibi", p->alibi}, {"kv_start", p->kv_start},
                  {"varlen", p->varlen}};
    for (int i = 0; i < 4; i++)
        if (flags[i].value != 0 && flags[i].value != 1)
            v_bad(v, flags[i].name);
    if (p->alibi_mode != CLATTN_ALIBI_LINEAR && p->alibi_mode != CLATTN_ALIBI_SYMMETRIC)
        v_bad(v, "alibi_mode");
    else if (p->alibi_mode != CLATTN_ALIBI_LINEAR && p->alibi != 1)
        v_bad(v, "alibi_mode");
    if (p->chunk_size < 0)
        v_bad(v, "chunk_size");
    if (p->varlen == 0 && (p->total_q != 0 || p->total_kv != 0))
        v_bad(v, "total_q|total_kv|varlen");
    if (p->varlen == 1) {
        if (p->total_q <= 0 || p->total_kv <= 0)
            v_bad(v, "total_q|total_kv|varlen");
        if (p->kv_start != 0)
            v_bad(v, "kv_start|varlen");
    }
}

/* clattn_kv_storage for a row of dims channels (clattn_kv_format): the
 * format in the enum; group (INT8, INT4 only) 0, 32, 64 or 128 dividing the
 * row; scale_dtype F32 or F16 for the formats with scales, else 0; per_head
 * 0 or 1 for FP8, else 0; INT4 rows even, Q8_0 / Q4_0 rows whole blocks of
 * 32. The words name the field (name: "k_storage" or "v_storage"). Returns
 * whether the storage is valid. */
static int model_storage(const char *name, const clattn_kv_storage *st, int dims, verdict *v)
{
    char w[64];
    const clattn_kv_format f = st->format;
    if ((int)f < CLATTN_KV_DEFAULT || (int)f > CLATTN_KV_FP8_E5M2) {
        snprintf(w, sizeof w, "%s.format", name);
        v_bad(v, w);
        return 0;
    }
    const int before = v->valid;
    v->valid = 1;
    const int g = st->group;
    const int group_ok = kv_grouped(f) ? (g == 0 || ((g == 32 || g == 64 || g == 128) &&
                                                     dims % g == 0))
                                       : g == 0;
    const int sdt_ok = kv_has_scales(f)
                           ? st->scale_dtype == CLATTN_F32 || st->scale_dtype == CLATTN_F16
                           : st->scale_dtype == 0;
    const int ph_ok = kv_fp8(f) ? st->per_head == 0 || st->per_head == 1 : st->per_head == 0;
    const struct {
        int bad;
        const char *field;
    } rules[5] = {{!group_ok, ".group"},
                  {!sdt_ok, ".scale_dtype"},
                  {!ph_ok, ".per_head"},
                  {f == CLATTN_KV_INT4 && dims % 2 != 0, ""},
                  {kv_blocked(f) && dims % 32 != 0, ""}};
    for (int i = 0; i < 5; i++)
        if (rules[i].bad) {
            snprintf(w, sizeof w, "%s%s", name, rules[i].field);
            v_bad(v, w);
        }
    const int ok = v->valid;
    v->valid = before && ok;
    return ok;
}

/* clattn_paging: enabled 0 or 1; off, its other fields 0; on, a page size
 * that is a power of two in 1..256, positive num_pages and
 * max_pages_per_seq, seq_kv within max_pages_per_seq * page_size, and no
 * varlen. Returns whether it is valid. */
static int model_paging(const clattn_problem *p, verdict *v)
{
    const clattn_paging *g = &p->paged;
    if (g->enabled != 0 && g->enabled != 1) {
        v_bad(v, "paged.enabled");
        return 0;
    }
    if (!g->enabled) {
        if (g->page_size || g->num_pages || g->max_pages_per_seq) {
            v_bad(v, "paged");
            return 0;
        }
        return 1;
    }
    int ok = 1;
    const int ps_ok = g->page_size >= 1 && g->page_size <= 256 &&
                      (g->page_size & (g->page_size - 1)) == 0;
    if (!ps_ok)
        v_bad(v, "paged.page_size"), ok = 0;
    if (g->num_pages < 1)
        v_bad(v, "paged.num_pages"), ok = 0;
    if (g->max_pages_per_seq < 1)
        v_bad(v, "paged.max_pages_per_seq"), ok = 0;
    if (ps_ok && g->max_pages_per_seq >= 1 &&
        (i128)p->seq_kv > (i128)g->max_pages_per_seq * g->page_size)
        v_bad(v, "seq_kv|paged.max_pages_per_seq"), ok = 0;
    if (p->varlen != 0)
        v_bad(v, "paged|varlen"), ok = 0;
    return ok;
}

/* Bytes of one unit of a K or V view in storage f: an element of the float
 * formats, a byte of the others. */
static size_t kv_unit_bytes(clattn_kv_format f, size_t esz)
{
    switch (f) {
    case CLATTN_KV_DEFAULT: return esz;
    case CLATTN_KV_F32: return 4;
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16: return 2;
    default: return 1;
    }
}

/* Bytes of the scales of a valid storage over rows rows of a tensor with Hk
 * kv heads and dims channels (clattn_kv_format's numbering); a format
 * without scales gets what one fp32 scale would take, so a fault can hand
 * over a buffer of some size. */
static i128 kv_scale_bytes(const clattn_kv_storage *st, i128 rows, int Hk, int dims)
{
    const i128 sdt = st->scale_dtype == CLATTN_F16 ? 2 : 4;
    const i128 groups = st->group ? dims / st->group : 1;
    switch (st->format) {
    case CLATTN_KV_INT8: return rows * groups * sdt;
    case CLATTN_KV_INT4: return rows * groups * 2 * sdt;
    case CLATTN_KV_FP8_E4M3:
    case CLATTN_KV_FP8_E5M2: return (st->per_head ? Hk : 1) * sdt;
    default: return 4;
    }
}

/* The model of view t (Q, K, V, O): its strides (given or the dense ones
 * of its dims, numbered in its storage's units), their validity and its
 * extent in bytes; K and V also size their scales. */
static void model_view(mshape *m, verdict *v, int t, const clattn_kv_storage *kvs,
                       const clattn_strides *g, const int64_t dims[3])
{
    const int vl = m->varlen;
    char words[64];
    snprintf(words, sizeof words, "%s_strides|%s", slot_name[t], slot_name[t]);
    const clattn_kv_format f = kvs ? kvs->format : CLATTN_KV_DEFAULT;
    const size_t unit = kvs ? kv_unit_bytes(f, m->esz) : m->esz;
    const int64_t row = kvs ? ref_kv_row_units(f, (int)dims[2]) : dims[2];
    /* varlen: [total][heads][dim], one "batch" whose stride must be 0;
     * paged: [num_pages][kv_heads][page_size][row] */
    int64_t n[4] = {kvs && m->paged ? m->np : vl ? 1 : m->B, dims[0], dims[1], row};
    i128 s[4];
    if (g->batch == 0 && g->head == 0 && g->seq == 0) {
        s[3] = 1;
        if (vl) {
            s[1] = n[3];
            s[2] = (i128)n[1] * n[3];
            s[0] = 0;
        } else {
            s[2] = n[3];
            s[1] = s[2] * n[2];
            s[0] = s[1] * n[1];
        }
        if (s[0] > I64MAX || s[2] > I64MAX) {
            v_bad(v, words);
            return;
        }
    } else {
        s[0] = g->batch, s[1] = g->head, s[2] = g->seq, s[3] = 1;
        if (g->batch < 0 || g->head < 0 || g->seq < 0) {
            v_bad(v, words);
            return;
        }
        if (vl && g->batch != 0) {
            char w2[96];
            snprintf(w2, sizeof w2, "%s|varlen", words);
            v_bad(v, w2);
        }
    }
    m->st[t].batch = (int64_t)s[0], m->st[t].head = (int64_t)s[1];
    m->st[t].seq = (int64_t)s[2];
    int64_t s64[4] = {(int64_t)s[0], (int64_t)s[1], (int64_t)s[2], 1};
    if (kv_blocked(f) && ((s64[0] | s64[1] | s64[2]) & 1))
        v_bad(v, words);
    i128 ext = 1;
    for (int d = 0; d < 4; d++)
        ext += (i128)(n[d] - 1) * s[d];
    if (!view_nested(n, s64)) {
        if (view_injective(n, s64) == 1)
            interleaved_views++;
        v_bad(v, words);
    } else if (ext * (i128)unit > I64MAX) {
        char w2[96];
        snprintf(w2, sizeof w2, "%s|size|bytes|overflow|overflows", words);
        v_bad(v, w2);
    }
    m->bytes[t] = ext * (i128)unit;
    if (kvs) { /* rows are numbered over the whole tensor or pool */
        const i128 rows = (i128)n[0] * n[1] * n[2];
        const int slot = t == 1 ? S_KSC : S_VSC;
        m->bytes[slot] = kv_scale_bytes(kvs, rows, m->Hk, (int)dims[2]);
        if (rows > I64MAX || m->bytes[slot] > I64MAX) {
            char w2[96];
            snprintf(w2, sizeof w2, "%s|%s|overflow|overflows", words, slot_name[slot]);
            v_bad(v, w2);
        }
    }
}

static void model_problem(const clattn_problem *p, mshape *m, verdict *v)
{
    memset(m, 0, sizeof *m);
    int sizes_ok = 1;
    if (p->batch < 1)
        v_bad(v, "batch"), sizes_ok = 0;
    if (p->heads < 1)
        v_bad(v, "heads"), sizes_ok = 0;
    if (p->kv_heads < 0)
        v_bad(v, "kv_heads"), sizes_ok = 0;
    if (p->heads >= 1 && p->kv_heads >= 0) {
        int hk = p->kv_heads ? p->kv_heads : p->heads;
        if (p->heads % hk != 0)
            v_bad(v, "kv_heads|heads"), sizes_ok = 0;
    }
    if (p->seq_q < 1 || p->seq_q > (1 << 30))
        v_bad(v, "seq_q"), sizes_ok = 0;
    if (p->seq_kv < 1 || p->seq_kv > (1 << 30))
        v_bad(v, "seq_kv"), sizes_ok = 0;
    /* 1.0: head_dim 1..512 or 576 (MLA), head_dim_v 1..512 (so 576 needs it given) */
    if (p->head_dim < 1 || (p->head_dim > 512 && p->head_dim != 576))
        v_bad(v, "head_dim"), sizes_ok = 0;
    if (p->head_dim_v < 0 || p->head_dim_v > 512)
        v_bad(v, "head_dim_v"), sizes_ok = 0;
    else if (p->head_dim_v == 0 && p->head_dim > 512)
        v_bad(v, "head_dim_v|head_dim"), sizes_ok = 0;
    int dtype_ok = p->dtype == CLATTN_F32 || p->dtype == CLATTN_F16 || p->dtype == CLATTN_BF16;
    if (!dtype_ok)
        v_bad(v, "dtype");
    if ((int)p->path < 0 || (int)p->path > 3)
        v_bad(v, "path");
    if (p->causal < 0 || p->causal > 2)
        v_bad(v, "causal");
    if (!isfinite(p->scale))
        v_bad(v, "scale");
    int mstr_ok = p->mask_batch_stride >= 0 && p->mask_head_stride >= 0;
    if (!mstr_ok)
        v_bad(v, "mask_batch_stride|mask_head_stride|mask");
    model_features(p, v);
    if (!sizes_ok || !dtype_ok)
        return;
    if ((i128)p->batch * p->heads >= ((i128)1 << 31))
        v_bad(v, "batch|heads");
    /* the views of a varlen problem are laid out by token counts */
    const int vl = p->varlen == 1;
    if (vl && (p->total_q <= 0 || p->total_kv <= 0))
        return;
    m->B = p->batch, m->H = p->heads, m->Hk = p->kv_heads ? p->kv_heads : p->heads;
    m->Sq = p->seq_q, m->Skv = p->seq_kv, m->D = p->head_dim;
    m->Dv = p->head_dim_v ? p->head_dim_v : p->head_dim;
    m->varlen = vl, m->Tq = p->total_q, m->Tkv = p->total_kv;
    m->esz = p->dtype == CLATTN_F32 ? 4 : 2;

    /* K and V: a pool of pages when paged, in their storage's units; the
     * library looks at the storage only past valid paging, and at a view
     * only past its valid storage */
    const int pg_ok = model_paging(p, v);
    m->paged = pg_ok && p->paged.enabled == 1;
    m->ps = p->paged.page_size, m->np = p->paged.num_pages, m->mp = p->paged.max_pages_per_seq;
    const clattn_kv_storage *kvs[4] = {NULL, &p->k_storage, &p->v_storage, NULL};
    const int view_ok[4] = {1, pg_ok && model_storage("k_storage", kvs[1], m->D, v),
                            pg_ok && model_storage("v_storage", kvs[2], m->Dv, v), 1};
    const clattn_strides *given[4] = {&p->q_strides, &p->k_strides, &p->v_strides,
                                      &p->o_strides};
    const int64_t tq = vl ? m->Tq : m->Sq, tkv = vl ? m->Tkv : m->Skv;
    const int64_t dims[4][3] = {{m->H, tq, m->D},
                                {m->Hk, m->paged ? m->ps : tkv, m->D},
                                {m->Hk, m->paged ? m->ps : tkv, m->Dv},
                                {m->H, tq, m->Dv}};
    for (int t = 0; t < 4; t++)
        if (view_ok[t])
            model_view(m, v, t, kvs[t], given[t], dims[t]);
    /* the block table is a tensor too: int32 [batch][max_pages_per_seq] */
    m->bytes[S_TABLE] = (i128)m->B * (m->paged ? m->mp : 1) * 4;
    if (m->bytes[S_TABLE] > I64MAX)
        v_bad(v, "block_table|max_pages_per_seq|size|bytes|overflow|overflows");
    if (mstr_ok) {
        i128 me = (i128)(m->B - 1) * p->mask_batch_stride +
                  (i128)(m->H - 1) * p->mask_head_stride + (i128)m->Sq * m->Skv;
        m->bytes[S_MASK] = me * 4;
        if (me * 4 > I64MAX)
            v_bad(v, "mask|size|bytes|overflow|overflows");
    }
    model_mask(p, &p->bias, "bias", 0, v, &m->bytes[S_BIAS]);
    model_mask(p, &p->bool_mask, "bool_mask", 1, v, &m->bytes[S_BOOL]);
    m->bytes[S_KVL] = (i128)m->B * 4;
    m->bytes[S_LSE] = (vl ? (i128)m->H * m->Tq : (i128)m->B * m->H * m->Sq) * 4;
    if (m->bytes[S_LSE] > I64MAX) /* heads * total_q with varlen */
        v_bad(v, "lse|size|bytes|overflow|overflows");
    m->bytes[S_SINKS] = m->bytes[S_ALIBI] = (i128)m->H * 4;
    m->bytes[S_KVS] = (i128)m->B * 4;
    m->bytes[S_CUQ] = m->bytes[S_CUKV] = ((i128)m->B + 1) * 4;
    m->ok = v->valid;
}

/* Whether a message contains one of the '|'-separated words as a whole
 * identifier (case-insensitive). */
static int names_word(const char *msg, const char *words)
{
    for (const char *w = words; *w;) {
        size_t len = strcspn(w, "|");
        for (const char *m = msg; len && *m; m++) {
            size_t i = 0;
            while (i < len && m[i] && tolower((unsigned char)m[i]) == tolower((unsigned char)w[i]))
                i++;
            if (i < len)
                continue;
            int before = m == msg || !(isalnum((unsigned char)m[-1]) || m[-1] == '_');
            int after = !(isalnum((unsigned char)m[len]) || m[len] == '_');
            if (before && after)
                return 1;
        }
        w += len + (w[len] == '|');
    }
    return 0;
}

/* ---- drawing problems ---------------------------------------------------- */

static int pick(t_rng *r, int n) { return t_rng_int(r, 0, n - 1); }
static int chance(t_rng *r, double p) { return t_rng_uniform(r, 0.0, 1.0) < p; }

/* Valid strides for [n0][n1][n2][n3]: packed, padded, or the three outer
 * dimensions nested in a random order with padding; extent-1 dimensions get
 * arbitrary non-negative strides (they never step). Every stride is a
 * multiple of unit (2: the even strides of Q8_0 and Q4_0, whose n3 is even). */
static clattn_strides draw_strides(t_rng *r, int n0, int n1, int n2, int n3, int unit)
{
    clattn_strides s = {0, 0, 0};
    int kind = pick(r, 4);
    if (kind == 0)
        return s;
    int64_t n[3] = {n0, n1, n2};
    int order[3] = {2, 1, 0}; /* innermost first */
    if (kind >= 2)
        for (int i = 2; i > 0; i--) {
            int j = pick(r, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    int64_t st[3], span = n3;
    for (int i = 0; i < 3; i++) {
        int d = order[i];
        st[d] = span + (kind == 1 || chance(r, 0.5) ? t_rng_int(r, 0, 5) * unit : 0);
        span = st[d] * n[d];
    }
    for (int d = 0; d < 3; d++)
        if (n[d] == 1 && kind == 3)
            st[d] = chance(r, 0.5) ? 0 : (int64_t)t_rng_int(r, 0, 1000) * 1000003 * unit;
    s.batch = st[0], s.head = st[1], s.seq = st[2];
    if (s.batch == 0 && s.head == 0 && s.seq == 0)
        s.seq = n3; /* keep it explicit */
    return s;
}

/* Strides of a varlen view [total][n1][n3] (batch stride 0): packed, token
 * major or head major, with padding (multiples of unit, as draw_strides).
 * max_tokens bounds the token count the harness may draw, so a head-major
 * layout holds any of them. */
static clattn_strides draw_varlen_strides(t_rng *r, int n1, int max_tokens, int n3, int unit)
{
    clattn_strides s = {0, 0, 0};
    const int pad_a = chance(r, 0.5) ? t_rng_int(r, 0, 5) * unit : 0;
    const int pad_b = t_rng_int(r, 0, 5) * unit;
    switch (pick(r, 3)) {
    case 0: break;
    case 1: /* [token][head][dim], FlashAttention's layout, with gaps */
        s.head = n3 + pad_a;
        s.seq = (int64_t)n1 * s.head + pad_b;
        break;
    default: /* [head][token][dim] */
        s.seq = n3 + pad_a;
        s.head = (int64_t)max_tokens * s.seq + pad_b;
        break;
    }
    return s;
}

/* A valid clattn_mask_layout for p: each of the row, head and batch
 * dimensions broadcast (stride 0) or nested in a random order with padding
 * (a row stride above seq_kv is a mask sized for a static cache); a
 * dimension of extent 1 that is not broadcast may have any stride its rule
 * allows. */
static void draw_mask_layout(t_rng *r, const clattn_problem *p, clattn_mask_layout *l,
                             int is_bool)
{
    memset(l, 0, sizeof *l);
    l->enabled = 1;
    l->dtype = is_bool ? CLATTN_F32 : (clattn_dtype)pick(r, 3);
    const int64_t n[3] = {p->seq_q, p->heads, p->batch}; /* row, head, batch */
    int64_t st[3] = {0, 0, 0};
    int live[3], nl = 0;
    for (int d = 0; d < 3; d++)
        if (!chance(r, 0.35))
            live[nl++] = d;
    for (int i = nl - 1; i > 0; i--) {
        int j = pick(r, i + 1), t = live[i];
        live[i] = live[j];
        live[j] = t;
    }
    int64_t span = p->seq_kv;
    for (int i = 0; i < nl; i++) {
        const int d = live[i];
        const int pad = chance(r, 0.5) ? t_rng_int(r, 0, d == 0 ? 27 : 9) : 0;
        /* A mutated problem's dimensions may be huge: the strides saturate
         * (and are then refused) instead of wrapping. */
        st[d] = span > INT64_MAX - pad ? INT64_MAX : span + pad;
        if (__builtin_mul_overflow(st[d], n[d], &span))
            span = INT64_MAX;
    }
    for (int i = 0; i < nl; i++) {
        const int d = live[i];
        if (n[d] == 1 && chance(r, 0.3)) /* never steps; a row stride stays >= seq_kv */
            st[d] = (d == 0 ? p->seq_kv : 1) + (int64_t)t_rng_int(r, 0, 1000);
    }
    l->strides.row = st[0], l->strides.head = st[1], l->strides.batch = st[2];
}

/* The kernel switches of the 1.0 features: each a -D of cl/common.h, so
 * each set of them is a kernel build of its own (per dtype, head dims and
 * tile configuration). */
enum {
    FT_SOFTCAP = 1, FT_SINKS = 2, FT_ALIBI = 4, FT_BIAS = 8, FT_BOOL = 16,
    FT_KV_START = 32, FT_CHUNK = 64, FT_VARLEN = 128, FT_BITS = 8
};

/* The quick run's feature draws: a few feature sets, each with one storage
 * and bias type, covering every feature and the combinations issue 10
 * names; the fields that are no kernel switch (causal, window, GQA,
 * strides, broadcasts, kv_lens, scale, the softcap and chunk values, the
 * sequence lengths of varlen) are drawn freely on top. Their kernels are
 * built once and then come from the suite's program cache. */
typedef struct quick_set {
    unsigned features;
    clattn_dtype dtype, bias_dtype;
    int mask; /* the fp32 mask of 0.1 on every draw (the BIAS switch, fp32) */
} quick_set;

static const quick_set k_quick_sets[] = {
    /* softcap + causal + left padding; sinks + window + GQA; chunks from kv_start */
    {FT_SOFTCAP | FT_SINKS | FT_KV_START | FT_CHUNK | FT_BIAS, CLATTN_F32, CLATTN_F32, 0},
    /* varlen + causal + ALiBi; boolean + additive masks, broadcast strides */
    {FT_VARLEN | FT_ALIBI | FT_BIAS | FT_BOOL, CLATTN_F16, CLATTN_BF16, 0},
    /* every score step, with the fp32 mask beside a boolean one */
    {FT_SOFTCAP | FT_SINKS | FT_ALIBI | FT_BOOL | FT_KV_START | FT_CHUNK, CLATTN_BF16,
     CLATTN_F32, 1},
    /* varlen with everything it combines with */
    {FT_VARLEN | FT_SOFTCAP | FT_SINKS | FT_ALIBI | FT_BIAS | FT_BOOL | FT_CHUNK, CLATTN_F32,
     CLATTN_F16, 0},
};
#define N_QUICK_SETS ((int)(sizeof k_quick_sets / sizeof k_quick_sets[0]))

/* How draw_valid draws: a base for the invalid draws (odd small head dims,
 * any feature set: nothing is compiled), or a problem that runs. */
enum { DRAW_BASE, DRAW_QUICK, DRAW_LONG };

/* The legacy mask a drawn problem wants: free, never, or always. */
enum { MASK_FREE, MASK_NEVER, MASK_ALWAYS };

static unsigned draw_feature_set(t_rng *r, int mode)
{
    unsigned f = 0;
    if (chance(r, mode == DRAW_LONG ? 0.6 : 0.7))
        for (int b = 0; b < FT_BITS; b++)
            if (chance(r, 0.3))
                f |= 1u << b;
    if ((f & FT_VARLEN) && (f & FT_KV_START)) /* clattn.h: they exclude each other */
        f &= chance(r, 0.5) ? ~(unsigned)FT_VARLEN : ~(unsigned)FT_KV_START;
    return f;
}

/* The feature fields of set f (their buffers are the caller's). Varlen's
 * totals are the largest the sequences can have (the harness draws the
 * real ones). Caps from 0.5 to 1e4 (Gemma 2's 50 among them): the
 * kernels' tanh keeps its relative accuracy near 0, where the cap would
 * multiply an absolute error back into the score. */
static void apply_features(t_rng *r, clattn_problem *p, unsigned f, int mode)
{
    if (f & FT_SOFTCAP) {
        static const float caps[] = {0.5f, 3.0f, 30.0f, 50.0f, 1e3f, 1e4f};
        const int n = 6;
        (void)mode;
        p->softcap = chance(r, 0.7) ? caps[pick(r, n)] : (float)t_rng_uniform(r, 0.05, 30.0);
    }
    p->sinks = (f & FT_SINKS) != 0;
    p->alibi = (f & FT_ALIBI) != 0;
    p->alibi_mode = p->alibi && chance(r, 0.4) ? CLATTN_ALIBI_SYMMETRIC : CLATTN_ALIBI_LINEAR;
    p->kv_start = (f & FT_KV_START) != 0;
    if (f & FT_CHUNK) {
        switch (pick(r, 4)) {
        case 0: p->chunk_size = 1; break;
        case 1: p->chunk_size = p->seq_kv + t_rng_int(r, 0, 7); break; /* one chunk */
        default: p->chunk_size = t_rng_int(r, 2, 9); break;
        }
    }
    if (f & FT_BIAS)
        draw_mask_layout(r, p, &p->bias, 0);
    if (f & FT_BOOL)
        draw_mask_layout(r, p, &p->bool_mask, 1);
    if (f & FT_VARLEN) {
        p->varlen = 1;
        p->total_q = p->batch * p->seq_q;
        p->total_kv = p->batch * p->seq_kv;
    }
}

/* Whether format f can hold rows of dims channels. */
static int format_fits(clattn_kv_format f, int dims)
{
    return f == CLATTN_KV_INT4 ? dims % 2 == 0 : kv_blocked(f) ? dims % 32 == 0 : 1;
}

/* A valid clattn_kv_storage of format f for rows of dims channels: a group
 * that divides them, either scale type, either FP8 scale layout. */
static clattn_kv_storage storage_of(t_rng *r, clattn_kv_format f, int dims)
{
    clattn_kv_storage st = {f, 0, 0, 0};
    if (kv_grouped(f)) {
        static const int groups[] = {0, 32, 64, 128};
        do
            st.group = groups[pick(r, 4)];
        while (st.group && dims % st.group);
    }
    if (kv_has_scales(f))
        st.scale_dtype = chance(r, 0.5) ? CLATTN_F32 : CLATTN_F16;
    if (kv_fp8(f))
        st.per_head = pick(r, 2);
    return st;
}

static clattn_kv_storage draw_storage(t_rng *r, int dims)
{
    clattn_kv_format f;
    do
        f = (clattn_kv_format)pick(r, 10);
    while (!format_fits(f, dims));
    return storage_of(r, f, dims);
}

/* Valid paging for p (mutated problems too: the sums saturate): a page
 * size of 1..256, table columns for seq_kv and now and then some spare, and
 * a pool in which every sequence has pages of its own, with a few left
 * over (nothing references those). */
static void draw_paging(t_rng *r, clattn_problem *p)
{
    const int ps = 1 << pick(r, 9);
    const int64_t need = p->seq_kv > 0 ? ((int64_t)p->seq_kv + ps - 1) / ps : 1;
    const int64_t mp = need + (chance(r, 0.5) ? t_rng_int(r, 1, 3) : 0);
    const int64_t np = (p->batch > 0 ? p->batch : 1) * need + t_rng_int(r, 0, 3);
    p->paged.enabled = 1;
    p->paged.page_size = ps;
    p->paged.max_pages_per_seq = mp > INT_MAX ? INT_MAX : (int)mp;
    p->paged.num_pages = np > INT_MAX ? INT_MAX : (int)np;
}

/* Strides of K (is_v 0) or V in their storage's units (bytes for the
 * formats that are no float type): a paged pool packed, token-major
 * {page, row, kv_heads * row} ([num_pages][page_size][kv_heads][dim], vLLM's
 * layout) or nested at random; otherwise as the other views. */
static clattn_strides draw_kv_strides(t_rng *r, const clattn_problem *p, int is_v)
{
    const clattn_kv_storage *st = is_v ? &p->v_storage : &p->k_storage;
    const int Hk = p->kv_heads ? p->kv_heads : p->heads;
    const int dims = is_v && p->head_dim_v ? p->head_dim_v : p->head_dim;
    const int row = (int)ref_kv_row_units(st->format, dims);
    const int unit = kv_blocked(st->format) ? 2 : 1;
    if (p->varlen)
        return draw_varlen_strides(r, Hk, p->total_kv, row, unit);
    if (!p->paged.enabled)
        return draw_strides(r, p->batch, Hk, p->seq_kv, row, unit);
    const int ps = p->paged.page_size;
    if (chance(r, 0.4)) {
        const clattn_strides s = {(int64_t)ps * Hk * row, row, (int64_t)Hk * row};
        return s;
    }
    return draw_strides(r, p->paged.num_pages, Hk, ps, row, unit);
}

/* K/V storage and paging drawn freely (the invalid draws' bases, the long
 * run): any format the head dims allow, K and V each their own, now and
 * then head dims in whole blocks of 32 so that Q8_0, Q4_0 and the groups
 * fit. */
static void draw_kv_free(t_rng *r, clattn_problem *p)
{
    if (p->head_dim <= 512 && chance(r, 0.3)) {
        static const int bd[] = {32, 64, 128};
        p->head_dim = bd[pick(r, 3)];
        p->head_dim_v = chance(r, 0.3) ? 0 : bd[pick(r, 3)];
    }
    const int Dv = p->head_dim_v ? p->head_dim_v : p->head_dim;
    if (chance(r, 0.7))
        p->k_storage = draw_storage(r, p->head_dim);
    if (chance(r, 0.7))
        p->v_storage = draw_storage(r, Dv);
    if (!p->varlen && chance(r, 0.4))
        draw_paging(r, p);
}

/* The quick run's K/V draws: each K/V format, group, scale type, FP8 scale
 * layout and paging is a -D of the kernels, so a seed draws a few
 * combinations of them, each on one dtype, pair of head dims and quick
 * feature set (and the quick sets' shapes: one tile configuration), and
 * the draws vary everything that is no kernel switch: page size, pool,
 * table, strides, lengths and the free fields. Six distinct explicit
 * formats per seed, the others in other seeds. */
typedef struct kv_combo {
    clattn_kv_storage k, v;
    int paged;
    clattn_dtype dtype;
    int head_dim, head_dim_v;
    const quick_set *features; /* NULL: none */
} kv_combo;

enum { N_KV_COMBOS = 3 };

/* Head dims for format f in a combination: 16, 32 or 64 as the format
 * allows, and for the grouped formats now and then 128, so that a group of
 * 128 can be drawn (seldom: those kernels take the longest to build). */
static int combo_dims(t_rng *r, clattn_kv_format f)
{
    static const int dims[] = {16, 32, 64};
    if (kv_grouped(f) && chance(r, 0.25))
        return 128;
    int d;
    do
        d = dims[pick(r, 3)];
    while (!format_fits(f, d));
    return d;
}

static void draw_kv_combos(uint64_t seed, kv_combo *c)
{
    t_rng r;
    t_rng_seed(&r, seed ^ 0x6b765f66u);
    clattn_kv_format f[9];
    for (int i = 0; i < 9; i++)
        f[i] = (clattn_kv_format)(i + 1);
    for (int i = 8; i > 0; i--) {
        const int j = pick(&r, i + 1);
        const clattn_kv_format x = f[i];
        f[i] = f[j];
        f[j] = x;
    }
    for (int i = 0; i < N_KV_COMBOS; i++) {
        kv_combo *k = &c[i];
        const clattn_kv_format kf = f[i];
        const clattn_kv_format vf = chance(&r, 0.1) ? CLATTN_KV_DEFAULT : f[N_KV_COMBOS + i];
        k->head_dim = combo_dims(&r, kf);
        k->head_dim_v = combo_dims(&r, vf);
        k->k = storage_of(&r, kf, k->head_dim);
        k->v = storage_of(&r, vf, k->head_dim_v);
        k->paged = i == 0 ? 1 : i == 1 ? 0 : pick(&r, 2);
        k->dtype = (clattn_dtype)pick(&r, 3);
        k->features = chance(&r, 0.6) ? &k_quick_sets[pick(&r, N_QUICK_SETS)] : NULL;
    }
}

/* Appends the 1.1 fields that are set to desc (t_describe knows only 1.0's):
 * " k=int8/g32/f16s v=e5m2/f32s/head paged(ps16 pages9 cols4)". */
static void kv_describe(const clattn_problem *p, char *desc, size_t size)
{
    static const char *const fmt[] = {"default", "f32",  "f16",  "bf16", "int8",
                                      "int4",    "q8_0", "q4_0", "e4m3", "e5m2"};
    size_t used = strlen(desc);
#define KV_APPEND(...)                                                              \
    do {                                                                            \
        int n_ = snprintf(desc + used, used < size ? size - used : 0, __VA_ARGS__); \
        if (n_ > 0)                                                                 \
            used += (size_t)n_;                                                     \
    } while (0)
    const clattn_kv_storage *st[2] = {&p->k_storage, &p->v_storage};
    for (int i = 0; i < 2; i++) {
        const clattn_kv_storage *x = st[i];
        if (!x->format && !x->group && !x->scale_dtype && !x->per_head)
            continue;
        if ((int)x->format >= 0 && (int)x->format < 10)
            KV_APPEND(" %c=%s", "kv"[i], fmt[x->format]);
        else
            KV_APPEND(" %c=format%d", "kv"[i], (int)x->format);
        if (x->group)
            KV_APPEND("/g%d", x->group);
        if (x->scale_dtype)
            KV_APPEND("/%ss", t_dtype_name(x->scale_dtype));
        if (x->per_head)
            KV_APPEND("/head%s", x->per_head == 1 ? "" : "?");
    }
    const clattn_paging *g = &p->paged;
    if (g->enabled || g->page_size || g->num_pages || g->max_pages_per_seq)
        KV_APPEND(" paged%s(ps%d pages%d cols%d)", g->enabled == 1 ? "" : "?", g->page_size,
                  g->num_pages, g->max_pages_per_seq);
#undef KV_APPEND
}

/* A small valid problem. mode DRAW_BASE: head dims 1..20 (now and then the
 * largest ones) and any features, K/V storage and paging; otherwise few
 * head dim pairs, since each pair costs every kernel configuration a build
 * per dtype, and in the quick run the feature sets above and the K/V
 * combinations kc on shapes whose tile configuration does not change:
 * seq_q 8..24 (the rows-in-lanes fused kernel, full three-stage row
 * blocks), seq_kv 33..48 (three QK key vectors), and for split-KV four
 * heads over two KV heads. Returns the fp32 mask the problem wants. */
static int draw_valid(t_rng *r, clattn_problem *p, int mode, const kv_combo *kc)
{
    memset(p, 0, sizeof *p);
    static const int dims[][2] = {{8, 16}, {8, 0}, {16, 8}, {1, 3}, {64, 64}};
    /* clattn.h's limits: head_dim 512 or 576 (MLA), head_dim_v 512 */
    static const int big_dims[][2] = {{576, 512}, {512, 0}, {512, 1}, {3, 512}, {300, 0}};
    int mask = MASK_FREE;
    p->batch = t_rng_int(r, 1, 3);
    p->kv_heads = t_rng_int(r, 1, 2);
    p->heads = p->kv_heads * t_rng_int(r, 1, 3);
    if (chance(r, 0.3))
        p->kv_heads = chance(r, 0.5) ? 0 : p->heads;
    p->seq_q = chance(r, 0.15) ? 1 : t_rng_int(r, 1, 24);
    p->seq_kv = chance(r, 0.15) ? 1 : t_rng_int(r, 1, 48);
    p->dtype = (clattn_dtype)pick(r, 3);
    p->path = (clattn_path)pick(r, 4);
    const double big = mode == DRAW_BASE ? 0.05 : mode == DRAW_LONG ? 0.04 : 0.015;
    if (chance(r, big)) {
        int d = pick(r, mode == DRAW_QUICK ? 2 : 5);
        p->head_dim = big_dims[d][0];
        p->head_dim_v = big_dims[d][1];
        p->seq_q = t_rng_int(r, 1, 5); /* keeps the tensors small */
        p->seq_kv = t_rng_int(r, 1, 9);
        if (mode == DRAW_QUICK) { /* one tile configuration per kernel */
            p->batch = 1, p->heads = 2, p->kv_heads = 0, p->seq_q = 3;
            p->dtype = CLATTN_F32;
            p->path = chance(r, 0.5) ? CLATTN_PATH_FUSED : CLATTN_PATH_THREE_STAGE;
            mask = MASK_NEVER;
        }
    } else if (mode != DRAW_BASE) {
        int d = mode == DRAW_LONG ? pick(r, 5) : 0;
        p->head_dim = dims[d][0];
        p->head_dim_v = dims[d][1];
    } else {
        p->head_dim = t_rng_int(r, 1, 20);
        p->head_dim_v = chance(r, 0.5) ? 0 : t_rng_int(r, 1, 20);
    }
    p->causal = pick(r, 3);
    switch (pick(r, 4)) {
    case 0: p->scale = 0.0f; break;
    case 1: p->scale = (float)t_rng_uniform(r, -2.0, 2.0); break;
    case 2: p->scale = -0.0f; break;
    default: p->scale = 1e-30f; break; /* tiny: scores collapse, softmax is uniform */
    }
    if (chance(r, 0.4)) {
        static const int wv[] = {-1, 0, 1, 3, 7, INT_MIN, INT_MAX, -100};
        p->windowed = chance(r, 0.8) ? 1 : t_rng_int(r, 2, 1000);
        p->window_left = wv[pick(r, 8)];
        p->window_right = wv[pick(r, 8)];
    } else if (chance(r, 0.2)) {
        p->window_left = t_rng_int(r, -5, 5); /* ignored: not windowed */
        p->window_right = t_rng_int(r, -5, 5);
    }
    if (mode != DRAW_QUICK) {
        apply_features(r, p, draw_feature_set(r, mode), mode);
        if (chance(r, mode == DRAW_BASE ? 0.35 : 0.25))
            draw_kv_free(r, p);
    } else if (mask == MASK_FREE && kc && chance(r, 0.3)) {
        const kv_combo *c = &kc[pick(r, N_KV_COMBOS)];
        p->dtype = c->dtype;
        p->head_dim = c->head_dim;
        p->head_dim_v = c->head_dim_v;
        p->seq_q = t_rng_int(r, 8, 24);
        p->seq_kv = t_rng_int(r, 33, 48);
        /* eight rows of a GQA pair fill one vector work-item, whatever the
         * batch: one split-KV configuration (more rows may take two) */
        if (p->path == CLATTN_PATH_SPLIT_KV)
            p->heads = 4, p->kv_heads = 2, p->seq_q = 8;
        const unsigned f = c->features ? c->features->features : 0u;
        apply_features(r, p, c->paged ? f & ~(unsigned)FT_VARLEN : f, mode);
        p->bias.dtype = p->bias.enabled ? c->features->bias_dtype : CLATTN_F32;
        p->k_storage = c->k;
        p->v_storage = c->v;
        if (c->paged)
            draw_paging(r, p);
        mask = c->features && c->features->mask ? MASK_ALWAYS : MASK_NEVER;
    } else if (mask == MASK_FREE && chance(r, 0.45)) {
        const quick_set *q = &k_quick_sets[pick(r, N_QUICK_SETS)];
        p->dtype = q->dtype;
        p->seq_q = t_rng_int(r, 8, 24);
        p->seq_kv = t_rng_int(r, 33, 48);
        if (p->path == CLATTN_PATH_SPLIT_KV) /* the vector kernel's tiles follow the rows */
            p->heads = 4, p->kv_heads = 2, p->seq_q = t_rng_int(r, 8, 15);
        apply_features(r, p, q->features, mode);
        p->bias.dtype = p->bias.enabled ? q->bias_dtype : CLATTN_F32;
        mask = q->mask ? MASK_ALWAYS : MASK_NEVER;
    }
    const int Dv = p->head_dim_v ? p->head_dim_v : p->head_dim;
    if (chance(r, 0.5) && p->varlen) {
        p->q_strides = draw_varlen_strides(r, p->heads, p->total_q, p->head_dim, 1);
        p->k_strides = draw_kv_strides(r, p, 0);
        p->v_strides = draw_kv_strides(r, p, 1);
        p->o_strides = draw_varlen_strides(r, p->heads, p->total_q, Dv, 1);
    } else if (chance(r, 0.5) && !p->varlen) {
        p->q_strides = draw_strides(r, p->batch, p->heads, p->seq_q, p->head_dim, 1);
        p->k_strides = draw_kv_strides(r, p, 0);
        p->v_strides = draw_kv_strides(r, p, 1);
        p->o_strides = draw_strides(r, p->batch, p->heads, p->seq_q, Dv, 1);
    }
    const int64_t plane = (int64_t)p->seq_q * p->seq_kv;
    switch (pick(r, 4)) {
    case 0: break; /* broadcast over batch and heads */
    case 1: p->mask_head_stride = plane; p->mask_batch_stride = plane * p->heads; break;
    case 2: p->mask_head_stride = plane + t_rng_int(r, 0, 9); p->mask_batch_stride = 0; break;
    default: p->mask_batch_stride = plane + t_rng_int(r, 0, 9); break;
    }
    /* invalid draws vary the token counts too (any positive ones are valid) */
    if (p->varlen && mode == DRAW_BASE) {
        p->total_q = t_rng_int(r, 1, p->total_q);
        p->total_kv = t_rng_int(r, 1, p->total_kv);
    }
    return mask;
}

static const int k_bad_ints[] = {0, -1, -7, INT_MIN, INT_MAX, 1 << 30, (1 << 30) + 1,
                                 256, 257, 512, 513, 576, 577, 65536, 1 << 20, 3};
static const int64_t k_bad_strides[] = {-1, 0, 1, 2, INT64_MAX, INT64_MAX / 2, INT64_MIN,
                                        (int64_t)1 << 40, (int64_t)1 << 62, 7};

/* Whether a (mutated) problem is small enough for draw_kv_strides, whose
 * products assume sizes like the generator's. */
static int small_kv_problem(const clattn_problem *p)
{
    const int Hk = p->kv_heads ? p->kv_heads : p->heads;
    const int in = p->batch >= 1 && p->batch <= 64 && p->heads >= 1 && p->heads <= 64 &&
                   Hk >= 1 && Hk <= p->heads && p->seq_kv >= 1 && p->seq_kv <= 4096 &&
                   p->head_dim >= 1 && p->head_dim <= 576 && p->head_dim_v >= 0 &&
                   p->head_dim_v <= 576 && p->total_kv >= 0 && p->total_kv <= 100000;
    const clattn_paging *g = &p->paged;
    return in && (!g->enabled || (g->page_size >= 1 && g->page_size <= 256 &&
                                  g->num_pages >= 1 && g->num_pages <= 100000));
}

/* One stride of one view: a bad size or a small one. */
static void mutate_view_stride(t_rng *r, clattn_problem *p)
{
    clattn_strides *s[4] = {&p->q_strides, &p->k_strides, &p->v_strides, &p->o_strides};
    clattn_strides *t = s[pick(r, 4)];
    int64_t x = chance(r, 0.7) ? k_bad_strides[pick(r, 10)] : (int64_t)t_rng_int(r, -3, 40);
    switch (pick(r, 3)) {
    case 0: t->batch = x; break;
    case 1: t->head = x; break;
    default: t->seq = x; break;
    }
}

/* One part of the bias or boolean mask layout; returns which mask. */
static const char *mutate_mask_layout(t_rng *r, clattn_problem *p)
{
    clattn_mask_layout *l = chance(r, 0.5) ? &p->bias : &p->bool_mask;
    clattn_mask_strides *ms = &l->strides;
    int64_t *sp[3] = {&ms->batch, &ms->head, &ms->row};
    switch (pick(r, 7)) {
    case 0: {
        static const int ev[] = {0, 1, 2, -1, INT_MIN};
        l->enabled = ev[pick(r, 5)];
        break;
    }
    case 1: {
        static const int dv[] = {0, 1, 2, 3, -1, 255};
        l->dtype = (clattn_dtype)dv[pick(r, 6)];
        break;
    }
    case 2: /* a row stride below seq_kv (or just at it) */
        ms->row = t_rng_int(r, 1, p->seq_kv > 1 ? p->seq_kv : 2);
        break;
    case 3: /* two dimensions at one stride: rows and heads collide */
        ms->row = ms->head = p->seq_kv;
        break;
    case 4: /* small random strides: mostly overlapping or broadcasting */
        ms->batch = t_rng_int(r, -1, 60);
        ms->head = t_rng_int(r, -1, 60);
        ms->row = t_rng_int(r, -1, 60);
        break;
    case 5: /* sizes past 64 bits, or near the limit of a 1- or 2-byte mask */
        *sp[pick(r, 3)] = k_bad_strides[pick(r, 10)];
        break;
    default: /* a full layout, enabled, in a random nesting */
        draw_mask_layout(r, p, l, l == &p->bool_mask);
        break;
    }
    return l == &p->bias ? "bias" : "bool_mask";
}

/* A K/V group, scale type or FP8 layout, on the format there or another. */
static void mutate_kv_fields(t_rng *r, clattn_kv_storage *kst)
{
    static const int gv[] = {0, 32, 64, 128, 1, 16, 48, 96, 256, -32, INT_MIN};
    static const int dv[] = {0, 1, 2, 3, -1, 255};
    static const int hv[] = {0, 1, 2, -1, INT_MAX};
    if (chance(r, 0.4))
        kst->format = (clattn_kv_format)pick(r, 10);
    switch (pick(r, 3)) {
    case 0: kst->group = gv[pick(r, 11)]; break;
    case 1: kst->scale_dtype = (clattn_dtype)dv[pick(r, 6)]; break;
    default: kst->per_head = hv[pick(r, 5)]; break;
    }
}

/* Head dims against the row rules of INT4, Q8_0, Q4_0 and groups. */
static void mutate_kv_dims(t_rng *r, clattn_problem *p, clattn_kv_storage *kst)
{
    static const int dv[] = {1, 2, 3, 17, 31, 33, 48, 63, 64, 96, 32, 128, 160};
    static const clattn_kv_format rf[] = {CLATTN_KV_INT4, CLATTN_KV_Q8_0, CLATTN_KV_Q4_0,
                                          CLATTN_KV_INT8};
    if (chance(r, 0.5)) {
        memset(kst, 0, sizeof *kst);
        kst->format = rf[pick(r, 4)];
        kst->scale_dtype = kv_has_scales(kst->format) ? CLATTN_F32 : 0;
        kst->group = kst->format == CLATTN_KV_INT8 && chance(r, 0.5) ? 32 : 0;
    }
    if (chance(r, 0.5))
        p->head_dim = dv[pick(r, 13)];
    else
        p->head_dim_v = dv[pick(r, 13)];
}

/* One paging field, a sequence past the table, or paging switched on. */
static void mutate_paging(t_rng *r, clattn_problem *p)
{
    static const int pv[] = {0, 1, 2, 3, 6, 48, 128, 256, 257, 512, -16, INT_MIN, INT_MAX};
    static const int nv[] = {0, -1, 1, 2, INT_MAX, INT_MIN, 1 << 20};
    static const int ev[] = {0, 1, 2, -1};
    clattn_paging *g = &p->paged;
    switch (pick(r, 6)) {
    case 0: g->enabled = ev[pick(r, 4)]; break;
    case 1: g->page_size = pv[pick(r, 13)]; break;
    case 2: g->num_pages = nv[pick(r, 7)]; break;
    case 3: g->max_pages_per_seq = nv[pick(r, 7)]; break;
    case 4: {
        if (!g->enabled || g->page_size < 1 || g->max_pages_per_seq < 1)
            draw_paging(r, p);
        const int64_t reach = (int64_t)g->max_pages_per_seq * g->page_size;
        p->seq_kv = reach < INT_MAX ? (int)reach + (chance(r, 0.7) ? 1 : 0) : INT_MAX;
        break;
    }
    default: draw_paging(r, p); break; /* on varlen problems too */
    }
}

/* The strides of a Q8_0 or Q4_0 K or V, even or odd. */
static void mutate_kv_strides(t_rng *r, clattn_problem *p, clattn_kv_storage *kst)
{
    const int is_v = kst == &p->v_storage;
    clattn_strides *st = is_v ? &p->v_strides : &p->k_strides;
    if (!kv_blocked(kst->format)) {
        memset(kst, 0, sizeof *kst);
        kst->format = chance(r, 0.5) ? CLATTN_KV_Q8_0 : CLATTN_KV_Q4_0;
        *(is_v ? &p->head_dim_v : &p->head_dim) = chance(r, 0.5) ? 32 : 64;
    }
    if (small_kv_problem(p))
        *st = draw_kv_strides(r, p, is_v);
    int64_t *one[3] = {&st->batch, &st->head, &st->seq};
    if (chance(r, 0.7))
        *one[pick(r, 3)] |= 1;
}

/* Products past 32 or 64 bits. */
static void mutate_products(t_rng *r, clattn_problem *p)
{
    static const int big[] = {1 << 30, INT_MAX, 1 << 16, 46341, 1 << 20};
    p->batch = big[pick(r, 5)];
    p->heads = big[pick(r, 5)];
    p->kv_heads = chance(r, 0.5) ? 0 : 1;
    if (chance(r, 0.5)) {
        p->seq_q = 1 << 30;
        p->seq_kv = 1 << 30;
        p->head_dim = 256;
    }
}

/* One random change to a problem field, of any validity. Returns the field
 * name for the statistics. */
static const char *mutate(t_rng *r, clattn_problem *p)
{
    const int v = k_bad_ints[pick(r, (int)(sizeof k_bad_ints / sizeof k_bad_ints[0]))];
    clattn_kv_storage *kst = chance(r, 0.5) ? &p->k_storage : &p->v_storage;
    switch (pick(r, 32)) {
    case 0: p->batch = v; return "batch";
    case 1: p->heads = v; return "heads";
    case 2: p->kv_heads = chance(r, 0.5) ? v : t_rng_int(r, 1, 7); return "kv_heads";
    case 3: p->seq_q = v; return "seq_q";
    case 4: p->seq_kv = v; return "seq_kv";
    case 5: p->head_dim = v; return "head_dim";
    case 6: p->head_dim_v = v; return "head_dim_v";
    case 7: {
        static const int dv[] = {3, -1, 255, INT_MIN, INT_MAX, 0, 1, 2};
        p->dtype = (clattn_dtype)dv[pick(r, 8)];
        return "dtype";
    }
    case 8: {
        static const int pv[] = {4, -1, 1000, INT_MIN, 0, 1, 2, 3};
        p->path = (clattn_path)pv[pick(r, 8)];
        return "path";
    }
    case 9: {
        static const int cv[] = {3, -1, INT_MAX, INT_MIN, 0, 1, 2};
        p->causal = cv[pick(r, 7)];
        return "causal";
    }
    case 10: {
        const float sv[] = {NAN, -NAN, INFINITY, -INFINITY, -1.5f, 1e-40f, FLT_MAX, -0.0f, 0.0f};
        p->scale = sv[pick(r, 9)];
        return "scale";
    }
    case 11:
        p->windowed = v;
        {
            const int w = k_bad_ints[pick(r, (int)(sizeof k_bad_ints / sizeof k_bad_ints[0]))];
            /* -INT_MIN does not fit an int: INT_MIN stays as it is. */
            p->window_left = chance(r, 0.5) && w != INT_MIN ? -w : w;
        }
        p->window_right = k_bad_ints[pick(r, (int)(sizeof k_bad_ints / sizeof k_bad_ints[0]))];
        return "window";
    case 12:
        if (chance(r, 0.5))
            p->mask_batch_stride = k_bad_strides[pick(r, 10)];
        else
            p->mask_head_stride = k_bad_strides[pick(r, 10)];
        return "mask_strides";
    case 13:
        mutate_view_stride(r, p);
        return "strides";
    case 14: { /* a whole view of random small strides: mostly overlapping ones */
        clattn_strides *s[4] = {&p->q_strides, &p->k_strides, &p->v_strides, &p->o_strides};
        clattn_strides *t = s[pick(r, 4)];
        t->batch = t_rng_int(r, -1, 60);
        t->head = t_rng_int(r, -1, 60);
        t->seq = t_rng_int(r, -1, 30);
        return "strides_random";
    }
    case 16: {
        const float cv[] = {NAN,   -NAN,   INFINITY, -INFINITY, -1.0f,   -1e-30f,
                            -0.0f, 0.0f,   1e-30f,   3.0f,      FLT_MAX, -FLT_MAX};
        p->softcap = cv[pick(r, 12)];
        return "softcap";
    }
    case 17: { /* an on/off flag out of range, or switched */
        static const int fv[] = {2, -1, INT_MIN, INT_MAX, 0, 1, 1, 0};
        int *f[5] = {&p->sinks, &p->alibi, &p->kv_start, &p->varlen, &p->alibi_mode};
        *f[pick(r, 5)] = fv[pick(r, 8)];
        return "flags";
    }
    case 18: {
        static const int cv[] = {-1, -7, INT_MIN, 0, 1, 3, INT_MAX, 1 << 30};
        p->chunk_size = cv[pick(r, 8)];
        return "chunk_size";
    }
    case 19:
    case 20:
        return mutate_mask_layout(r, p);
    case 21: { /* token counts, with or without varlen */
        static const int tv[] = {0, -1, 1, 5, INT_MAX, INT_MIN, 64};
        if (chance(r, 0.5))
            p->total_q = tv[pick(r, 7)];
        else
            p->total_kv = tv[pick(r, 7)];
        if (chance(r, 0.3))
            p->varlen = !p->varlen;
        return "totals";
    }
    case 22: {
        static const int64_t rv[] = {1, -1, INT64_MIN, INT64_MAX, 0};
        p->reserved[pick(r, (int)(sizeof p->reserved / sizeof p->reserved[0]))] = rv[pick(r, 5)];
        return "reserved";
    }
    case 23: { /* the head-dim limits of 1.0 */
        static const int hd[] = {512, 576, 513, 575, 577, 1024, 511};
        static const int hv[] = {0, 512, 513, 1, 576, 511};
        p->head_dim = hd[pick(r, 7)];
        p->head_dim_v = hv[pick(r, 6)];
        p->seq_q = t_rng_int(r, 1, 3);
        p->seq_kv = t_rng_int(r, 1, 5);
        return "head_dims";
    }
    case 24: { /* a batch stride in a varlen view, or varlen over plain strides */
        clattn_strides *s[4] = {&p->q_strides, &p->k_strides, &p->v_strides, &p->o_strides};
        if (p->varlen) {
            clattn_strides *t = s[pick(r, 4)];
            t->batch = chance(r, 0.5) ? 1 : t_rng_int(r, 1, 100000);
        } else {
            p->varlen = 1;
            p->total_q = t_rng_int(r, 1, 40);
            p->total_kv = t_rng_int(r, 1, 40);
        }
        return "varlen_strides";
    }
    case 25: /* kv_start beside varlen */
        p->kv_start = 1;
        if (chance(r, 0.5)) {
            p->varlen = 1;
            p->total_q = p->total_q > 0 ? p->total_q : 7;
            p->total_kv = p->total_kv > 0 ? p->total_kv : 9;
        }
        return "kv_start";
    case 27: { /* a storage format, in the enum or not; its other fields kept */
        static const int fv[] = {-1, 10, 11, 255, INT_MIN, INT_MAX};
        kst->format = (clattn_kv_format)(chance(r, 0.4) ? fv[pick(r, 6)] : pick(r, 10));
        return "kv_format";
    }
    case 28:
        mutate_kv_fields(r, kst);
        return "kv_fields";
    case 29:
        mutate_kv_dims(r, p, kst);
        return "kv_dims";
    case 30:
        mutate_paging(r, p);
        return "paged";
    case 31:
        mutate_kv_strides(r, p, kst);
        return "kv_strides";
    default:
        mutate_products(r, p);
        return "products";
    }
}

/* ---- device buffers ------------------------------------------------------ */

enum { PL_NONE, PL_PLAIN, PL_SUB, PL_OTHER_CTX };

/* Where one of the buffers of a call lives. */
typedef struct slot {
    int kind;
    size_t size; /* of the cl_mem */
    size_t off;  /* inside the arena (PL_SUB) */
    int same_as; /* >= 0: the very cl_mem of that slot */
    const void *data; /* contents, or NULL for the byte pattern */
} slot;

typedef struct devset {
    slot s[S_N];
    int reserved; /* > 0: buffers.reserved[reserved - 1] is set */
    cl_mem mem[S_N];
    cl_mem arena, plain[S_N], other;
    unsigned char *arena_init, *plain_init[S_N];
    size_t arena_size;
} devset;

typedef struct fuzz_env {
    clattn_context *ctx;
    cl_context c;
    cl_command_queue q;
    cl_context other; /* a second cl_context on the same device */
    cl_mem other_buf;
    size_t align; /* sub-buffer origin alignment, bytes */
} fuzz_env;

static void pattern(unsigned char *p, size_t n, uint64_t salt)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(0xa5 ^ (i * 131 + salt * 7) ^ (i >> 8));
}

static size_t align_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

/* Creates the cl_mems of d from its slots; 0 on success. */
static int devset_create(fuzz_env *e, devset *d, uint64_t salt)
{
    cl_int err = CL_SUCCESS;
    d->arena_size = 0;
    for (int i = 0; i < S_N; i++)
        if (d->s[i].kind == PL_SUB && d->s[i].same_as < 0 && d->s[i].off + d->s[i].size > d->arena_size)
            d->arena_size = d->s[i].off + d->s[i].size;
    if (d->arena_size) {
        d->arena_size += 64;
        d->arena_init = malloc(d->arena_size);
        if (!d->arena_init)
            return -1;
        pattern(d->arena_init, d->arena_size, salt);
        for (int i = 0; i < S_N; i++)
            if (d->s[i].kind == PL_SUB && d->s[i].same_as < 0 && d->s[i].data)
                memcpy(d->arena_init + d->s[i].off, d->s[i].data, d->s[i].size);
        d->arena = clCreateBuffer(e->c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, d->arena_size,
                                  d->arena_init, &err);
        if (err != CL_SUCCESS) {
            T_FAIL("clCreateBuffer(arena %zu) -> %d", d->arena_size, (int)err);
            return -1;
        }
    }
    for (int i = 0; i < S_N; i++) {
        slot *s = &d->s[i];
        if (s->same_as >= 0 || s->kind == PL_NONE)
            continue;
        if (s->kind == PL_OTHER_CTX) {
            d->mem[i] = e->other_buf;
        } else if (s->kind == PL_PLAIN) {
            d->plain_init[i] = malloc(s->size ? s->size : 1);
            if (!d->plain_init[i])
                return -1;
            pattern(d->plain_init[i], s->size, salt + (uint64_t)i);
            if (s->data)
                memcpy(d->plain_init[i], s->data, s->size);
            d->plain[i] = clCreateBuffer(e->c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                         s->size, d->plain_init[i], &err);
            if (err != CL_SUCCESS) {
                T_FAIL("clCreateBuffer(%s, %zu) -> %d", slot_name[i], s->size, (int)err);
                return -1;
            }
            d->mem[i] = d->plain[i];
        } else {
            cl_buffer_region reg = {s->off, s->size};
            d->plain[i] = clCreateSubBuffer(d->arena, CL_MEM_READ_WRITE,
                                            CL_BUFFER_CREATE_TYPE_REGION, &reg, &err);
            if (err != CL_SUCCESS) {
                T_FAIL("clCreateSubBuffer(%s, %zu+%zu) -> %d", slot_name[i], s->off, s->size,
                       (int)err);
                return -1;
            }
            d->mem[i] = d->plain[i];
        }
    }
    for (int i = 0; i < S_N; i++)
        if (d->s[i].same_as >= 0)
            d->mem[i] = d->mem[d->s[i].same_as];
    return 0;
}

static void devset_release(devset *d)
{
    for (int i = 0; i < S_N; i++)
        if (d->plain[i])
            clReleaseMemObject(d->plain[i]); /* sub-buffers before their arena */
    if (d->arena)
        clReleaseMemObject(d->arena);
    for (int i = 0; i < S_N; i++)
        free(d->plain_init[i]);
    free(d->arena_init);
    memset(d, 0, sizeof *d);
}

/* Reads the arena back into *out (malloc'd). */
static void *read_back(fuzz_env *e, cl_mem m, size_t n)
{
    void *buf = malloc(n ? n : 1);
    if (buf)
        T_CL(clEnqueueReadBuffer(e->q, m, CL_TRUE, 0, n, buf, 0, NULL, NULL));
    return buf;
}

/* The clattn_buffers of a devset; a set reserved entry is some valid cl_mem. */
static clattn_buffers devset_buffers(const devset *d, cl_mem any)
{
    clattn_buffers b;
    memset(&b, 0, sizeof b);
    b.q = d->mem[S_Q], b.k = d->mem[S_K], b.v = d->mem[S_V], b.o = d->mem[S_O];
    b.mask = d->mem[S_MASK], b.kv_lens = d->mem[S_KVL], b.lse = d->mem[S_LSE];
    b.bias = d->mem[S_BIAS], b.bool_mask = d->mem[S_BOOL];
    b.sinks = d->mem[S_SINKS], b.alibi_slopes = d->mem[S_ALIBI];
    b.kv_start = d->mem[S_KVS];
    b.cu_seqlens_q = d->mem[S_CUQ], b.cu_seqlens_kv = d->mem[S_CUKV];
    b.block_table = d->mem[S_TABLE];
    b.k_scales = d->mem[S_KSC], b.v_scales = d->mem[S_VSC];
    if (d->reserved > 0)
        b.reserved[d->reserved - 1] = any;
    return b;
}

/* Number of this draw's buffers whose bytes differ from what they were made with. */
static int devset_changed(fuzz_env *e, devset *d)
{
    int changed = 0;
    if (d->arena) {
        void *now = read_back(e, d->arena, d->arena_size);
        changed += now && memcmp(now, d->arena_init, d->arena_size) != 0;
        free(now);
    }
    for (int i = 0; i < S_N; i++)
        if (d->s[i].kind == PL_PLAIN && d->s[i].same_as < 0) {
            void *now = read_back(e, d->plain[i], d->s[i].size);
            changed += now && memcmp(now, d->plain_init[i], d->s[i].size) != 0;
            free(now);
        }
    return changed;
}

/* The model's buffer rules (clattn_buffers in clattn.h): q, k, v, o given;
 * each 1.0 input given exactly when p enables it, the block table exactly
 * for paged problems and the scales exactly for the formats that have
 * them; the fp32 mask not beside the bias, kv_lens not with varlen; the
 * reserved block NULL; every buffer of the same cl_context and large
 * enough; and o and lse sharing no byte the problem touches with any other
 * buffer. */
static void model_buffers(const mshape *m, const clattn_problem *p, const devset *d, verdict *v)
{
    char w[64];
    for (int i = 0; i < S_N; i++) {
        const slot *s = &d->s[i];
        int root = s->same_as >= 0 ? s->same_as : i;
        const slot *rs = &d->s[root];
        if (rs->kind == PL_NONE) {
            if (i <= S_O || (is_feature_slot(i) && declares(p, i)))
                v_bad(v, slot_words(i, w, sizeof w));
            continue;
        }
        if (is_feature_slot(i) && !declares(p, i)) {
            v_bad(v, slot_words(i, w, sizeof w));
            continue;
        }
        if (rs->kind == PL_OTHER_CTX)
            v_bad(v, slot_words(i, w, sizeof w));
        else if ((i128)rs->size < m->bytes[i])
            v_bad(v, slot_words(i, w, sizeof w));
    }
    if (d->s[S_MASK].kind != PL_NONE && p->bias.enabled)
        v_bad(v, "mask|bias");
    if (d->s[S_KVL].kind != PL_NONE && p->varlen)
        v_bad(v, "kv_lens|varlen");
    if (d->reserved > 0)
        v_bad(v, "reserved");
    for (int out = S_O; out <= S_LSE; out += S_LSE - S_O)
        for (int i = 0; i < S_N; i++) {
            if (i == out)
                continue;
            int ra = d->s[out].same_as >= 0 ? d->s[out].same_as : out;
            int rb = d->s[i].same_as >= 0 ? d->s[i].same_as : i;
            const slot *a = &d->s[ra], *b = &d->s[rb];
            if (a->kind == PL_NONE || b->kind == PL_NONE || a->kind == PL_OTHER_CTX ||
                b->kind == PL_OTHER_CTX)
                continue;
            size_t ao = a->kind == PL_SUB ? a->off : 0, bo = b->kind == PL_SUB ? b->off : 0;
            int same_root = ra == rb || (a->kind == PL_SUB && b->kind == PL_SUB);
            i128 an = m->bytes[out], bn = m->bytes[i];
            if (same_root && (i128)ao < (i128)bo + bn && (i128)bo < (i128)ao + an) {
                snprintf(w, sizeof w, "%s|%s", slot_name[out], slot_name[i]);
                v_bad(v, w);
            }
        }
}

/* ---- statistics ---------------------------------------------------------- */

typedef struct stats {
    long draws, invalid_checked, left_valid, probed, valid_run, skipped_unsupported;
    long by_api[3];       /* device, host, weights */
    long by_kind[8];
    long accepted_invalid, refused_valid, wrong_status, bad_message, modified, wrong_result;
    long features[FT_BITS]; /* draws with each 1.0 feature on */
    long kv[3];             /* draws with K storage, V storage, paging (1.1) */
    long named[26], phrased[11]; /* refusals by what their message names */
} stats;

/* For the statistics only (never an assertion): the 1.0 and 1.1 fields a
 * refusal's message names, and the library's words for some of the rules. */
static const char *const k_tally_words[26] = {
    "softcap",   "sinks",      "alibi",     "alibi_slopes", "bias",          "bool_mask",
    "kv_start",  "chunk_size", "varlen",    "total_q",      "total_kv",      "cu_seqlens_q",
    "cu_seqlens_kv", "head_dim", "head_dim_v", "reserved",   "kv_lens",       "k_storage",
    "v_storage", "paged",      "page_size", "num_pages",    "max_pages_per_seq", "block_table",
    "k_scales",  "v_scales"};
static const char *const k_tally_phrases[11] = {
    "below seq_kv", "overlaps", "decreases", "[0] must be 0", "passes the total",
    "outside 0..seq_kv", "is given but", "is NULL but", "more than",
    "outside 0..num_pages-1", "must be even"};
#define N_TALLY_WORDS ((int)(sizeof k_tally_words / sizeof k_tally_words[0]))
#define N_TALLY_PHRASES ((int)(sizeof k_tally_phrases / sizeof k_tally_phrases[0]))

static const char *const feature_name[FT_BITS] = {"softcap", "sinks",    "alibi", "bias",
                                                  "bool_mask", "kv_start", "chunk", "varlen"};

static void count_features(stats *st, const clattn_problem *p)
{
    const int on[FT_BITS] = {p->softcap != 0.0f, p->sinks != 0,    p->alibi != 0,
                             p->bias.enabled != 0, p->bool_mask.enabled != 0,
                             p->kv_start != 0,   p->chunk_size != 0, p->varlen != 0};
    for (int b = 0; b < FT_BITS; b++)
        st->features[b] += on[b];
    st->kv[0] += p->k_storage.format != CLATTN_KV_DEFAULT;
    st->kv[1] += p->v_storage.format != CLATTN_KV_DEFAULT;
    st->kv[2] += p->paged.enabled != 0;
}

static const char *const kind_name[8] = {"problem field",   "problem fields x2-3",
                                         "device buffers",  "wait list",
                                         "host buffers",    "weights",
                                         "null structs",    "supports"};

/* ---- checking one invalid call ------------------------------------------- */

static void check_refusal(fuzz_env *e, stats *st, const char *what, clattn_status got,
                          const verdict *v, cl_event done, int changed)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", clattn_last_error(e->ctx));
    st->invalid_checked++;
    for (int i = 0; i < N_TALLY_WORDS && got == CLATTN_ERR_INVALID_ARGUMENT; i++)
        st->named[i] += names_word(msg, k_tally_words[i]);
    for (int i = 0; i < N_TALLY_PHRASES && got == CLATTN_ERR_INVALID_ARGUMENT; i++)
        st->phrased[i] += strstr(msg, k_tally_phrases[i]) != NULL;
    if (got == CLATTN_OK) {
        st->accepted_invalid++;
        T_FAIL("%s: accepted, but the model refuses it (expected a message naming %s)", what,
               v->words);
    } else if (got != CLATTN_ERR_INVALID_ARGUMENT) {
        st->wrong_status++;
        T_FAIL("%s: %s, expected %s (\"%s\"; model: %s)", what, clattn_status_string(got),
               clattn_status_string(CLATTN_ERR_INVALID_ARGUMENT), msg, v->words);
    } else if (!msg[0] || !names_word(msg, v->words)) {
        st->bad_message++;
        T_FAIL("%s: message \"%s\" names none of %s", what, msg, v->words);
    }
    if (got != CLATTN_OK)
        T_CHECK(done == NULL, "%s: a failed call handed back an event", what);
    if (changed) {
        st->modified++;
        T_FAIL("%s: %d buffers changed by a refused call", what, changed);
    }
}

/* ---- invalid draws ------------------------------------------------------- */

/* The buffers a call hands over: q, k, v, o; the optional 0.1 ones chosen
 * in opt (bit 0 mask, 1 kv_lens, 2 lse) where p allows them; and the 1.0
 * inputs that p declares. */
static unsigned wanted_slots(const clattn_problem *p, int opt)
{
    unsigned w = 1u << S_Q | 1u << S_K | 1u << S_V | 1u << S_O;
    if ((opt & 1) && !p->bias.enabled)
        w |= 1u << S_MASK;
    if ((opt & 2) && !p->varlen)
        w |= 1u << S_KVL;
    if (opt & 4)
        w |= 1u << S_LSE;
    for (int i = S_BIAS; i < S_N; i++)
        if (declares(p, i))
            w |= 1u << i;
    return w;
}

/* Slots for a problem the model read as m (or, when m is not ok, as the
 * base problem bm): the wanted buffers exact, plain or in the arena. */
static void plan_slots(t_rng *r, const mshape *m, devset *d, unsigned want, size_t align)
{
    memset(d, 0, sizeof *d);
    size_t off = 0;
    for (int i = 0; i < S_N; i++) {
        slot *s = &d->s[i];
        s->same_as = -1;
        if (!(want & (1u << i))) {
            s->kind = PL_NONE;
            continue;
        }
        i128 need = m->bytes[i];
        s->size = need > (1 << 20) || need <= 0 ? 4096 : (size_t)need;
        s->kind = chance(r, 0.5) ? PL_PLAIN : PL_SUB;
        if (s->kind == PL_SUB) {
            s->off = off;
            off = align_up(off + s->size + (size_t)t_rng_int(r, 0, 3) * 4, align);
        }
    }
}

static void fuzz_env_init(fuzz_env *e)
{
    memset(e, 0, sizeof *e);
    e->ctx = t_context();
    if (!e->ctx)
        return;
    e->c = t_cl_context(e->ctx);
    e->q = t_queue(e->ctx);
    cl_device_id dev = NULL;
    clattn_context_get_cl(e->ctx, NULL, NULL, &dev);
    cl_uint bits = 0;
    T_CL(clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof bits, &bits, NULL));
    e->align = bits >= 8 ? bits / 8 : 128;
    cl_int err = CL_SUCCESS;
    e->other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    T_CHECK(err == CL_SUCCESS, "clCreateContext (second context) -> %d", (int)err);
    if (e->other) {
        e->other_buf = clCreateBuffer(e->other, CL_MEM_READ_WRITE, 1 << 20, NULL, &err);
        T_CHECK(err == CL_SUCCESS, "clCreateBuffer in the second context -> %d", (int)err);
    }
}

static void fuzz_env_free(fuzz_env *e)
{
    if (e->other_buf)
        clReleaseMemObject(e->other_buf);
    if (e->other)
        clReleaseContext(e->other);
    clattn_context_destroy(e->ctx);
}

/* A random slot among those of kind PL_NONE (absent != 0) or the others,
 * from first on; -1 when there is none. */
static int pick_slot(t_rng *r, const devset *d, int first, int absent)
{
    int cand[S_N], n = 0;
    for (int i = first; i < S_N; i++)
        if ((d->s[i].kind == PL_NONE) == (absent != 0) && i != S_LSE)
            cand[n++] = i;
    return n ? cand[pick(r, n)] : -1;
}

/* A device-buffer fault on an otherwise valid small problem. */
static void buffer_fault(t_rng *r, const mshape *m, devset *d, size_t align, char *what,
                         size_t wn)
{
    int i = pick(r, S_N);
    slot *s = &d->s[i];
    switch (pick(r, 8)) {
    case 0: /* a buffer the call has, missing */
        i = pick_slot(r, d, 0, 0);
        d->s[i].kind = PL_NONE;
        snprintf(what, wn, "%s NULL", slot_name[i]);
        break;
    case 1: { /* too small by a little or by a lot, plain or sub-buffer */
        if (s->kind == PL_NONE)
            s->kind = PL_PLAIN;
        size_t need = (size_t)m->bytes[i];
        size_t cut = chance(r, 0.6) ? 1 : (size_t)t_rng_int(r, 1, (int)need);
        s->size = need - (cut > need - 1 ? need - 1 : cut);
        if (s->size == need)
            s->size = need - 1;
        if (s->size == 0)
            s->size = 1, s->kind = PL_PLAIN; /* a zero-size cl_mem cannot exist */
        snprintf(what, wn, "%s %zu of %zu bytes (%s)", slot_name[i], s->size, need,
                 s->kind == PL_SUB ? "sub-buffer" : "buffer");
        break;
    }
    case 2: /* another context's buffer */
        s->kind = PL_OTHER_CTX;
        snprintf(what, wn, "%s from another cl_context", slot_name[i]);
        break;
    case 5: /* an input the problem does not ask for (or the mask beside the
               bias, kv_lens with varlen), of the size it would need */
        i = pick_slot(r, d, S_MASK, 1);
        if (i < 0)
            break;
        d->s[i].kind = PL_PLAIN;
        d->s[i].size = (size_t)m->bytes[i];
        snprintf(what, wn, "%s given", slot_name[i]);
        break;
    case 6:
        d->reserved = 1 + pick(r, (int)(sizeof ((clattn_buffers *)0)->reserved / sizeof(cl_mem)));
        snprintf(what, wn, "reserved[%d] set", d->reserved - 1);
        break;
    default: { /* an output sharing bytes with another buffer */
        int out = chance(r, 0.7) ? S_O : S_LSE;
        int other = pick(r, S_N - 1);
        if (other >= out)
            other++;
        slot *so = &d->s[out], *sx = &d->s[other];
        if (sx->kind == PL_NONE) {
            sx->kind = PL_PLAIN;
            sx->size = (size_t)m->bytes[other];
        }
        if (chance(r, 0.4) || sx->kind == PL_PLAIN) {
            so->same_as = other; /* the very same cl_mem */
            so->kind = sx->kind;
            snprintf(what, wn, "%s is the %s buffer", slot_name[out], slot_name[other]);
        } else {
            /* a sub-buffer starting inside the other's bytes */
            size_t span = (size_t)m->bytes[other];
            size_t k = (size_t)t_rng_int(r, 0, (int)((span - 1) / align));
            so->kind = PL_SUB;
            so->same_as = -1;
            so->off = sx->off + k * align;
            so->size = (size_t)m->bytes[out] > 0 ? (size_t)m->bytes[out] : 4;
            snprintf(what, wn, "%s sub-buffer at %zu inside %s at %zu+%zu", slot_name[out],
                     so->off, slot_name[other], sx->off, span);
        }
        break;
    }
    }
}

/* The host arrays of one host call (forward or weights), sized by the
 * model, with valid contents where clattn.h constrains them (kv_lens,
 * kv_start, cu_seqlens, the block table), and a pattern elsewhere. */
typedef struct hostset {
    void *a[S_N];
    void *init_o, *init_lse;
    float *probs;
    size_t n[S_N], probs_n;
    int reserved;    /* > 0: reserved[reserved - 1] is set */
    unsigned nulled; /* slots handed over as NULL though allocated */
} hostset;

/* Valid cu_seqlens: batch + 1 entries from 0, each sequence at most max
 * long, the last entry at most total. */
static void draw_host_cu(t_rng *r, int32_t *cu, int batch, int max, int total)
{
    cu[0] = 0;
    for (int b = 0; b < batch; b++) {
        int room = total - cu[b];
        cu[b + 1] = cu[b] + t_rng_int(r, 0, room < max ? room : max);
    }
}

/* Garbage for block-table entries no key uses: clattn.h lets them hold
 * anything. */
static int32_t table_garbage(t_rng *r, int num_pages)
{
    static const int32_t g[] = {-1, INT32_MIN, INT32_MAX, -7, 1 << 30};
    return chance(r, 0.2) ? num_pages : chance(r, 0.3) ? t_rng_int(r, 0, num_pages - 1)
                                                       : g[pick(r, 5)];
}

/* Pages of sequence b that its keys use: those of keys below kv_lens[b]
 * (seq_kv without kv_lens), which the host functions check. */
static int used_pages(const mshape *m, const int32_t *kv_lens, int b)
{
    const int len = kv_lens ? kv_lens[b] : m->Skv;
    return (int)(((int64_t)len + m->ps - 1) / m->ps);
}

/* A valid block table for the host calls: the used entries in the pool,
 * now and then garbage in the others. kv_lens, when given, is valid. */
static void draw_host_table(t_rng *r, const mshape *m, int32_t *table, const int32_t *kv_lens)
{
    const int garbage = chance(r, 0.5);
    for (int b = 0; b < m->B; b++)
        for (int i = 0; i < m->mp; i++)
            table[(int64_t)b * m->mp + i] = garbage && i >= used_pages(m, kv_lens, b)
                                                ? table_garbage(r, m->np)
                                                : t_rng_int(r, 0, m->np - 1);
}

static int hostset_make(hostset *h, const mshape *m, unsigned want, t_rng *r)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < S_N; i++) {
        if (!(want & (1u << i)))
            continue;
        h->n[i] = (size_t)m->bytes[i];
        h->a[i] = malloc(h->n[i] ? h->n[i] : 1);
        if (!h->a[i])
            return -1;
        pattern(h->a[i], h->n[i], (uint64_t)i * 977);
    }
    for (int i = S_KVL; i <= S_KVS; i += S_KVS - S_KVL)
        if (h->a[i])
            for (int b = 0; b < m->B; b++)
                ((int32_t *)h->a[i])[b] = t_rng_int(r, 0, m->Skv);
    if (h->a[S_TABLE] && m->paged)
        draw_host_table(r, m, h->a[S_TABLE], h->a[S_KVL]);
    if (h->a[S_CUQ])
        draw_host_cu(r, h->a[S_CUQ], m->B, m->Sq, m->varlen ? m->Tq : m->B * m->Sq);
    if (h->a[S_CUKV])
        draw_host_cu(r, h->a[S_CUKV], m->B, m->Skv, m->varlen ? m->Tkv : m->B * m->Skv);
    if (h->a[S_MASK])
        for (size_t e = 0; e < h->n[S_MASK] / 4; e++)
            ((float *)h->a[S_MASK])[e] = (float)t_rng_uniform(r, -1.0, 1.0);
    h->probs_n = (size_t)m->B * m->H * m->Sq * m->Skv;
    h->probs = malloc(sizeof(float) * h->probs_n);
    h->init_o = malloc(h->n[S_O]);
    h->init_lse = h->a[S_LSE] ? malloc(h->n[S_LSE]) : NULL;
    if (!h->probs || !h->init_o || (h->a[S_LSE] && !h->init_lse))
        return -1;
    pattern((unsigned char *)h->probs, sizeof(float) * h->probs_n, 31);
    memcpy(h->init_o, h->a[S_O], h->n[S_O]);
    if (h->a[S_LSE])
        memcpy(h->init_lse, h->a[S_LSE], h->n[S_LSE]);
    return 0;
}

/* Whether the host arrays of the slots in want (and the probabilities) are
 * small enough to allocate here. */
static int host_sized(const mshape *m, unsigned want)
{
    const i128 lim = (i128)1 << 26;
    for (int i = 0; i < S_N; i++)
        if ((want & (1u << i)) && m->bytes[i] > lim)
            return 0;
    return (i128)m->B * m->H * m->Sq * m->Skv * 4 <= lim;
}

static clattn_host_buffers hostset_buffers(const hostset *h)
{
    clattn_host_buffers hb;
    memset(&hb, 0, sizeof hb);
    void *a[S_N];
    for (int i = 0; i < S_N; i++)
        a[i] = h->nulled & (1u << i) ? NULL : h->a[i];
    hb.q = a[S_Q], hb.k = a[S_K], hb.v = a[S_V], hb.o = a[S_O];
    hb.mask = a[S_MASK], hb.kv_lens = a[S_KVL], hb.lse = a[S_LSE];
    hb.bias = a[S_BIAS], hb.bool_mask = a[S_BOOL];
    hb.sinks = a[S_SINKS], hb.alibi_slopes = a[S_ALIBI];
    hb.kv_start = a[S_KVS];
    hb.cu_seqlens_q = a[S_CUQ], hb.cu_seqlens_kv = a[S_CUKV];
    hb.block_table = a[S_TABLE];
    hb.k_scales = a[S_KSC], hb.v_scales = a[S_VSC];
    if (h->reserved > 0)
        hb.reserved[h->reserved - 1] = h->a[S_Q] ? h->a[S_Q] : h->probs;
    return hb;
}

/* clattn_host_buffers' rules for a problem the model found valid: the
 * presence rules of the device buffers, then the contents clattn.h has the
 * host functions refuse: kv_lens and kv_start entries outside 0..seq_kv,
 * block-table entries of used pages outside the pool, cu_seqlens that do
 * not start at 0, decrease, make a sequence longer than seq_q / seq_kv or
 * pass the totals. api 1: forward (o required), 2: weights (probs
 * required). */
static void model_host(const mshape *m, const clattn_problem *p, const clattn_host_buffers *hb,
                       int api, const float *probs, verdict *v)
{
    if (!hb) {
        v_bad(v, "buffers");
        return;
    }
    const void *given[S_N] = {hb->q,         hb->k,        hb->v,         hb->o,
                              hb->mask,      hb->kv_lens,  hb->lse,       hb->bias,
                              hb->bool_mask, hb->sinks,    hb->alibi_slopes, hb->kv_start,
                              hb->cu_seqlens_q, hb->cu_seqlens_kv, hb->block_table,
                              hb->k_scales,  hb->v_scales};
    char w[64];
    for (int i = 0; i < S_O; i++)
        if (!given[i])
            v_bad(v, slot_name[i]);
    if (api == 1 && !hb->o)
        v_bad(v, "o");
    if (api == 2 && !probs)
        v_bad(v, "probs");
    for (size_t i = 0; i < sizeof hb->reserved / sizeof hb->reserved[0]; i++)
        if (hb->reserved[i]) {
            v_bad(v, "reserved");
            break;
        }
    for (int i = S_BIAS; i < S_N; i++)
        if ((given[i] != NULL) != declares(p, i))
            v_bad(v, slot_words(i, w, sizeof w));
    if (hb->mask && p->bias.enabled)
        v_bad(v, "mask|bias");
    if (hb->kv_lens && p->varlen)
        v_bad(v, "kv_lens|varlen");
    const int32_t *lens[2] = {hb->kv_lens, hb->kv_start};
    int lens_ok = 1;
    for (int k = 0; k < 2; k++)
        for (int b = 0; lens[k] && b < m->B; b++)
            if (lens[k][b] < 0 || lens[k][b] > m->Skv) {
                v_bad(v, k ? "kv_start" : "kv_lens");
                lens_ok = 0;
                break;
            }
    /* clattn_paging: the used entries must lie in the pool, and the first
     * one outside is named; the host functions look at them only once
     * kv_lens, which says which entries are used, has passed */
    if (m->paged && hb->block_table && lens_ok)
        for (int b = 0; b < m->B; b++) {
            const int used = used_pages(m, hb->kv_lens, b);
            int i = 0;
            while (i < used && hb->block_table[(int64_t)b * m->mp + i] >= 0 &&
                   hb->block_table[(int64_t)b * m->mp + i] < m->np)
                i++;
            if (i < used) {
                snprintf(w, sizeof w, "block_table[%d][%d]", b, i);
                v_bad(v, w);
                break;
            }
        }
    if (!m->varlen)
        return;
    const int32_t *cu[2] = {hb->cu_seqlens_q, hb->cu_seqlens_kv};
    const int max[2] = {m->Sq, m->Skv}, total[2] = {m->Tq, m->Tkv};
    for (int k = 0; k < 2; k++) {
        if (!cu[k])
            continue;
        int bad = cu[k][0] != 0 || cu[k][m->B] > total[k];
        for (int b = 0; b < m->B; b++) {
            const int64_t len = (int64_t)cu[k][b + 1] - cu[k][b];
            bad |= len < 0 || len > max[k];
        }
        if (bad)
            v_bad(v, k ? "cu_seqlens_kv|cu_seqlens" : "cu_seqlens_q|cu_seqlens");
    }
}

/* One host-array fault of kind k (0..9) on a call whose problem the model
 * found valid; the model decides what it breaks. Returns 1 when it makes
 * the buffers struct NULL. */
static int host_fault(t_rng *r, const mshape *m, hostset *h, int api, float **probs, int k,
                      char *what, size_t wn)
{
    what[0] = '\0';
    switch (k) {
    case 0: { /* a tensor missing */
        int i = pick(r, api == 1 ? 4 : 3);
        h->nulled |= 1u << i;
        snprintf(what, wn, "%s NULL", slot_name[i]);
        break;
    }
    case 1:
    case 2: { /* a kv_lens or kv_start entry outside 0..seq_kv */
        static const int32_t bad[] = {-1, INT32_MIN, INT32_MAX};
        const int i = k == 1 ? S_KVL : S_KVS;
        int32_t *a = h->a[i];
        if (!a) {
            a = malloc(sizeof(int32_t) * (size_t)m->B);
            if (!a)
                break;
            h->a[i] = a;
            for (int b = 0; b < m->B; b++)
                a[b] = t_rng_int(r, 0, m->Skv);
        }
        int b = pick(r, m->B), which = pick(r, 4);
        a[b] = which < 3 ? bad[which] : m->Skv + 1;
        snprintf(what, wn, "%s[%d] = %d", slot_name[i], b, (int)a[b]);
        break;
    }
    case 3: { /* cu_seqlens: not from 0, decreasing, too long, past the total */
        const int i = chance(r, 0.5) ? S_CUQ : S_CUKV;
        int32_t *cu = h->a[i];
        if (!cu) { /* without varlen: a cu_seqlens array nobody asked for */
            cu = calloc((size_t)m->B + 1, sizeof(int32_t));
            if (!cu)
                break;
            h->a[i] = cu;
            snprintf(what, wn, "%s given", slot_name[i]);
            break;
        }
        const int max = i == S_CUQ ? m->Sq : m->Skv, total = i == S_CUQ ? m->Tq : m->Tkv;
        const int b = pick(r, m->B + 1);
        switch (pick(r, 4)) {
        case 0: cu[0] = chance(r, 0.5) ? 1 : -1; break;
        case 1: cu[b] = b ? cu[b - 1] - t_rng_int(r, 1, 3) : -1; break;
        case 2: cu[b] = b ? cu[b - 1] + max + 1 : 1; break;
        default: cu[m->B] = total + t_rng_int(r, 1, 3); break;
        }
        snprintf(what, wn, "%s changed at [%d]", slot_name[i], b);
        break;
    }
    case 4: { /* a 1.0 input switched: given without its flag, or missing */
        const int i = S_BIAS + pick(r, S_N - S_BIAS);
        if (h->a[i]) {
            h->nulled |= 1u << i;
            snprintf(what, wn, "%s NULL", slot_name[i]);
        } else {
            h->n[i] = (size_t)m->bytes[i];
            h->a[i] = calloc(h->n[i] ? h->n[i] : 1, 1);
            snprintf(what, wn, "%s given", slot_name[i]);
        }
        break;
    }
    case 5: /* the fp32 mask (beside a bias?) or kv_lens (with varlen?) */
        if (!h->a[S_MASK] && chance(r, 0.5)) {
            h->a[S_MASK] = calloc((size_t)m->bytes[S_MASK], 1);
            snprintf(what, wn, "mask given");
        } else if (!h->a[S_KVL]) {
            h->a[S_KVL] = calloc((size_t)m->B, sizeof(int32_t));
            snprintf(what, wn, "kv_lens given");
        }
        break;
    case 6:
        h->reserved = 1 + pick(r, (int)(sizeof ((clattn_host_buffers *)0)->reserved / sizeof(void *)));
        snprintf(what, wn, "reserved[%d] set", h->reserved - 1);
        break;
    case 7:
        if (api == 2) {
            *probs = NULL;
            snprintf(what, wn, "probs NULL");
        } else {
            h->nulled |= 1u << S_O;
            snprintf(what, wn, "o NULL");
        }
        break;
    case 8: { /* a block-table entry out of the pool: of a used page, or past them */
        int32_t *table = h->a[S_TABLE];
        if (!table || !m->paged)
            break;
        const int b = pick(r, m->B);
        const int used = used_pages(m, h->a[S_KVL], b);
        static const int32_t bad[] = {-1, INT32_MIN, INT32_MAX};
        const int i = used > 0 && chance(r, 0.7) ? pick(r, used) : pick(r, m->mp);
        table[(int64_t)b * m->mp + i] = chance(r, 0.5) ? m->np : bad[pick(r, 3)];
        snprintf(what, wn, "block_table[%d][%d] = %d (%d of %d pages used)", b, i,
                 (int)table[(int64_t)b * m->mp + i], used, m->mp);
        break;
    }
    default:
        snprintf(what, wn, "buffers NULL");
        return 1;
    }
    return 0;
}

static void hostset_free(hostset *h)
{
    for (int i = 0; i < S_N; i++)
        free(h->a[i]);
    free(h->init_o);
    free(h->init_lse);
    free(h->probs);
    memset(h, 0, sizeof *h);
}

static int hostset_changed(const hostset *h)
{
    int c = memcmp(h->a[S_O], h->init_o, h->n[S_O]) != 0;
    if (h->a[S_LSE])
        c += memcmp(h->a[S_LSE], h->init_lse, h->n[S_LSE]) != 0;
    unsigned char *p0 = malloc(sizeof(float) * h->probs_n);
    if (p0) {
        pattern(p0, sizeof(float) * h->probs_n, 31);
        c += memcmp(p0, h->probs, sizeof(float) * h->probs_n) != 0;
        free(p0);
    }
    return c;
}

/* A problem the model finds valid must pass the library's problem checks:
 * clattn_forward without buffers then fails on the buffers alone. Cheap
 * (nothing is built or enqueued), so every mutation that leaves a problem
 * valid is asked, and a library stricter than clattn.h shows. */
static void probe_valid(fuzz_env *e, stats *st, const char *label, const clattn_problem *p)
{
    cl_event done = (cl_event)(uintptr_t)1;
    clattn_status s = clattn_forward(e->ctx, p, NULL, 0, NULL, &done);
    const char *msg = clattn_last_error(e->ctx);
    st->probed++;
    if (s != CLATTN_ERR_INVALID_ARGUMENT || !names_word(msg, "buffers")) {
        st->refused_valid++;
        T_FAIL("%s: the model finds the problem valid, but clattn_forward without buffers "
               "-> %s: \"%s\" (expected a refusal of the buffers alone)",
               label, clattn_status_string(s), msg);
    }
    T_CHECK(done == NULL, "%s: a failed call handed back an event", label);
}

/* Named draws for the disagreements the fuzzer found in src/problem.c, so
 * they stay checked whatever the random stream: a non-zero mask row stride
 * below seq_kv with one query row (once accepted), and masks whose size in
 * bytes fits int64 but whose element count passes 2^63 / 4 (once refused). */
static void fixed_draws(fuzz_env *e, stats *st)
{
    static const char *const names[] = {
        "bias row stride 1 < seq_kv, one query row", "bool_mask row stride 15 < seq_kv, one query row",
        "bool_mask of 2^62 bytes",                   "f16 bias of 3 * 2^60 elements",
        "f32 bias of 3 * 2^60 elements (past int64 bytes)"};
    for (int i = 0; i < 5; i++) {
        clattn_problem p;
        memset(&p, 0, sizeof p);
        p.batch = 2, p.heads = 2, p.seq_q = 1, p.seq_kv = 16, p.head_dim = 8;
        clattn_mask_layout *l = i == 1 || i == 2 ? &p.bool_mask : &p.bias;
        l->enabled = 1;
        switch (i) {
        case 0: l->strides.row = 1; break;
        case 1: l->strides.row = 15; break;
        case 2: l->strides.batch = (int64_t)1 << 62; break;
        case 3: l->dtype = CLATTN_F16; l->strides.batch = (int64_t)3 << 60; break;
        default: l->strides.batch = (int64_t)3 << 60; break;
        }
        verdict v = {1, ""};
        mshape m;
        model_problem(&p, &m, &v);
        char label[200];
        snprintf(label, sizeof label, "fixed draw %d (%s)", i, names[i]);
        const int want_valid = i == 2 || i == 3;
        T_CHECK(v.valid == want_valid, "%s: the model finds it %s", label,
                v.valid ? "valid" : "invalid");
        if (v.valid)
            probe_valid(e, st, label, &p);
        else
            check_refusal(e, st, label, clattn_supports(e->ctx, &p), &v, NULL, 0);
    }
}

/* One draw of descriptors_invalid: the base problem, the called (mutated)
 * one, what the model says of it, the buffers it asks for. */
typedef struct invalid_draw {
    long n;
    int kind, api;
    const char *field; /* the last mutated field, or NULL */
    clattn_problem base, p;
    mshape m;
    const mshape *sized; /* the shape buffers are made for */
    verdict v;
    unsigned want; /* buffer slots */
    char desc[512];
} invalid_draw;

/* How often each field was mutated. */
typedef struct field_tally {
    long draws[40];
    const char *names[40];
    int n;
} field_tally;

static void tally_field(field_tally *t, const char *field)
{
    int f = 0;
    while (f < t->n && strcmp(t->names[f], field) != 0)
        f++;
    if (f == t->n && t->n < 40)
        t->names[t->n++] = field;
    if (f < 40)
        t->draws[f]++;
}

/* clattn_forward with device buffers: a buffer fault (kind 2), a bad wait
 * list (3) or a NULL argument (6), or the mutated problem. Returns -1 when
 * the run cannot go on. */
static int invalid_on_device(fuzz_env *e, stats *st, t_rng *r, invalid_draw *x)
{
    devset d;
    char what[256], label[1100];
    plan_slots(r, x->sized, &d, x->want, e->align);
    cl_uint num_wait = 0;
    const cl_event *wait = NULL;
    cl_event null_ev[2] = {NULL, NULL};
    int null_problem = 0, null_buffers = 0;
    what[0] = '\0';
    if (x->kind == 2) {
        buffer_fault(r, x->sized, &d, e->align, what, sizeof what);
    } else if (x->kind == 3) {
        num_wait = (cl_uint)t_rng_int(r, 1, 2);
        wait = chance(r, 0.5) ? NULL : null_ev;
        v_bad(&x->v, wait ? "wait" : "wait|num_wait");
        snprintf(what, sizeof what, "num_wait %u, wait %s", num_wait, wait ? "{NULL}" : "NULL");
    } else if (x->kind == 6) {
        if (chance(r, 0.5))
            null_problem = 1, v_bad(&x->v, "problem");
        else
            null_buffers = 1, v_bad(&x->v, "buffers");
        snprintf(what, sizeof what, "%s NULL", null_problem ? "problem" : "buffers");
    }
    if (!null_buffers && x->m.ok)
        model_buffers(&x->m, &x->p, &d, &x->v);
    snprintf(label, sizeof label, "draw %ld device %s%s%s [%s]", x->n, x->field ? x->field : "",
             what[0] ? ": " : "", what, x->desc);
    if (x->v.valid) {
        if (x->kind <= 1)
            probe_valid(e, st, label, &x->p);
        st->left_valid++;
        return 0;
    }
    if (devset_create(e, &d, (uint64_t)x->n) != 0) {
        devset_release(&d);
        return -1;
    }
    clattn_buffers b = devset_buffers(&d, e->other_buf);
    cl_event done = (cl_event)(uintptr_t)1; /* must be reset to NULL */
    clattn_status s = clattn_forward(e->ctx, null_problem ? NULL : &x->p,
                                     null_buffers ? NULL : &b, num_wait, wait, &done);
    if (s == CLATTN_OK && done)
        clWaitForEvents(1, &done);
    T_CL(clFinish(e->q));
    int changed = devset_changed(e, &d);
    check_refusal(e, st, label, s, &x->v, s == CLATTN_OK ? NULL : done, changed);
    if (s == CLATTN_OK && done)
        clReleaseEvent(done);
    devset_release(&d);
    return 0;
}

/* The host APIs (api 1: clattn_forward_host, 2: the weights): a mutated
 * problem, or the valid base with a host fault (kinds 4, 5) or NULL buffers
 * (6). Returns -1 when the run cannot go on. */
static int invalid_on_host(fuzz_env *e, stats *st, t_rng *r, invalid_draw *x)
{
    char what[256], label[1100];
    const char *api_name = x->api == 1 ? "host" : "weights";
    if (x->m.ok && !host_sized(&x->m, x->want)) { /* a valid problem too large to allocate */
        snprintf(label, sizeof label, "draw %ld %s %s (too large to allocate) [%s]", x->n,
                 api_name, x->field ? x->field : "", x->desc);
        probe_valid(e, st, label, &x->p);
        st->left_valid++;
        return 0;
    }
    hostset h;
    if (hostset_make(&h, x->sized, x->want, r) != 0) {
        T_FAIL("out of host memory");
        hostset_free(&h);
        return -1;
    }
    float *probs = h.probs;
    int null_buffers = 0;
    what[0] = '\0';
    if ((x->kind == 4 || x->kind == 5) && x->api == 2 && chance(r, 0.1)) {
        static const clattn_path wp[] = {CLATTN_PATH_FUSED, CLATTN_PATH_SPLIT_KV};
        x->p.path = wp[pick(r, 2)];
        v_bad(&x->v, "path");
        snprintf(what, sizeof what, "weights with path %d", (int)x->p.path);
    } else if (x->kind == 4 || x->kind == 5) {
        null_buffers =
            host_fault(r, x->sized, &h, x->api, &probs, pick(r, 10), what, sizeof what);
    } else if (x->kind == 6) {
        null_buffers = 1;
        snprintf(what, sizeof what, "buffers NULL");
    }
    clattn_host_buffers hb = hostset_buffers(&h);
    if (x->m.ok)
        model_host(&x->m, &x->p, null_buffers ? NULL : &hb, x->api, probs, &x->v);
    snprintf(label, sizeof label, "draw %ld %s %s%s%s [%s]", x->n, api_name,
             x->field ? x->field : "", what[0] ? ": " : "", what, x->desc);
    if (x->v.valid) {
        if (x->kind <= 1)
            probe_valid(e, st, label, &x->p);
        st->left_valid++;
        hostset_free(&h);
        return 0;
    }
    clattn_status s =
        x->api == 1
            ? clattn_forward_host(e->ctx, &x->p, null_buffers ? NULL : &hb)
            : clattn_attention_weights_host(e->ctx, &x->p, null_buffers ? NULL : &hb, probs);
    check_refusal(e, st, label, s, &x->v, NULL, hostset_changed(&h));
    hostset_free(&h);
    return 0;
}

/* Draw n: a valid base, mutated or faulted by kind, checked through one
 * API. Returns -1 when the run cannot go on. */
static int invalid_draw_one(fuzz_env *e, stats *st, field_tally *ft, uint64_t seed, long n)
{
    t_rng r;
    invalid_draw x;
    memset(&x, 0, sizeof x);
    x.n = n;
    draw_rng(&r, seed, n);
    st->draws++;
    draw_valid(&r, &x.base, DRAW_BASE, NULL);
    count_features(st, &x.base);
    x.p = x.base;
    mshape bm;
    x.v = (verdict){1, ""};
    model_problem(&x.base, &bm, &x.v);
    if (!x.v.valid) {
        T_FAIL("draw %ld: the generator's base problem is invalid to the model (%s)", n,
               x.v.words);
        return -1;
    }
    const int with_opt = pick(&r, 8); /* bit 0 mask, 1 kv_lens, 2 lse */
    x.kind = pick(&r, 8);
    if (x.kind <= 1) {
        int k = x.kind == 0 ? 1 : t_rng_int(&r, 2, 3);
        for (int i = 0; i < k; i++)
            x.field = mutate(&r, &x.p);
    }
    if (x.kind == 7)
        x.field = mutate(&r, &x.p);
    if (x.field)
        tally_field(ft, x.field);
    x.v.valid = 1;
    x.v.words[0] = '\0';
    model_problem(&x.p, &x.m, &x.v);
    x.sized = x.m.ok ? &x.m : &bm;
    /* The buffers follow the called problem's feature flags, or now and
     * then the base's: a flag a mutation switched then meets buffers made
     * without it (or a buffer it no longer asks for). */
    x.want = wanted_slots(x.kind <= 1 && chance(&r, 0.3) ? &x.base : &x.p, with_opt);
    t_describe(&x.p, NULL, x.desc, sizeof x.desc);
    kv_describe(&x.p, x.desc, sizeof x.desc);

    if (x.kind == 7) { /* clattn_supports on the problem alone */
        char label[1100];
        snprintf(label, sizeof label, "draw %ld supports(%s) [%s]", n, x.field, x.desc);
        if (x.v.valid) {
            probe_valid(e, st, label, &x.p);
            st->left_valid++;
            return 0;
        }
        st->by_kind[7]++;
        clattn_status s = clattn_supports(e->ctx, &x.p);
        check_refusal(e, st, label, s, &x.v, NULL, 0);
        return 0;
    }
    const int kind = x.kind;
    x.api = kind <= 1 ? pick(&r, 3) : kind <= 3 ? 0 : kind == 4 ? 1 : kind == 5 ? 2 : pick(&r, 3);
    if (x.api == 2 && kind != 5 && x.p.path != CLATTN_PATH_AUTO &&
        x.p.path != CLATTN_PATH_THREE_STAGE && x.m.ok)
        x.api = 1; /* keep the weights call about the drawn fault */
    st->by_kind[kind]++;
    st->by_api[x.api]++;
    if (x.api == 2 && (x.p.path == CLATTN_PATH_FUSED || x.p.path == CLATTN_PATH_SPLIT_KV))
        v_bad(&x.v, "path"); /* clattn.h: weights need AUTO or THREE_STAGE */
    return x.api == 0 ? invalid_on_device(e, st, &r, &x) : invalid_on_host(e, st, &r, &x);
}

static void log_invalid_stats(const stats *st, const field_tally *ft)
{
    t_log("descriptors_invalid: %ld draws, %ld refusals checked, %ld left valid by their "
          "mutation (%ld of them probed: problem checks pass)",
          st->draws, st->invalid_checked, st->left_valid, st->probed);
    t_log("  by API: device %ld, host %ld, weights %ld; supports-only %ld", st->by_api[0],
          st->by_api[1], st->by_api[2], st->by_kind[7]);
    for (int k = 0; k < 8; k++)
        t_log("  kind %-22s %ld", kind_name[k], st->by_kind[k]);
    for (int f = 0; f < ft->n; f++)
        t_log("  mutated field %-16s %ld", ft->names[f], ft->draws[f]);
    for (int b = 0; b < FT_BITS; b++)
        t_log("  base problems with %-10s %ld", feature_name[b], st->features[b]);
    t_log("  base problems with K storage %ld, V storage %ld, paging %ld", st->kv[0], st->kv[1],
          st->kv[2]);
    for (int i = 0; i < N_TALLY_WORDS; i++)
        t_log("  refusals naming %-17s %ld", k_tally_words[i], st->named[i]);
    for (int i = 0; i < N_TALLY_PHRASES; i++)
        t_log("  refusals saying \"%s\": %ld", k_tally_phrases[i], st->phrased[i]);
    t_log("  interleaved (injective but not nested) views met: %d", interleaved_views);
    t_log("  outcomes: accepted-invalid %ld, refused-valid %ld, wrong status %ld, message "
          "naming nothing %ld, buffers modified %ld",
          st->accepted_invalid, st->refused_valid, st->wrong_status, st->bad_message,
          st->modified);
}

void case_descriptors_invalid(void)
{
    fuzz_env e;
    fuzz_env_init(&e);
    if (!e.ctx || !e.other_buf) {
        fuzz_env_free(&e);
        return;
    }
    const long draws = long_run() ? 400000 : 40000;
    long only;
    const uint64_t seed = fuzz_seed(0xf022d35cu, &only);
    t_log("descriptors_invalid: %ld draws, seed 0x%llx", draws, (unsigned long long)seed);
    stats st;
    memset(&st, 0, sizeof st);
    field_tally ft;
    memset(&ft, 0, sizeof ft);
    if (only < 0)
        fixed_draws(&e, &st);
    for (long n = only >= 0 ? only : 0; n < (only >= 0 ? only + 1 : draws) && t_failures < 50;
         n++)
        if (invalid_draw_one(&e, &st, &ft, seed, n) != 0)
            break;
    log_invalid_stats(&st, &ft);
    fuzz_env_free(&e);
}

/* ---- valid draws ----------------------------------------------------------- */

/* K and V of a valid draw in their storage (clattn_kv_format) and pages,
 * with their scales and block table. The harness makes q, o and every other
 * input from the problem without storage or paging; these replace its K
 * and V. */
typedef struct kvset {
    int32_t *table;
    void *scales[2]; /* K, V */
} kvset;

/* Whether a problem keeps 1.0's K and V: its dtype, contiguous. */
static int kv_plain(const clattn_problem *p)
{
    return p->k_storage.format == CLATTN_KV_DEFAULT && p->v_storage.format == CLATTN_KV_DEFAULT &&
           !p->paged.enabled;
}

static void kvset_free(kvset *x)
{
    free(x->table);
    free(x->scales[0]);
    free(x->scales[1]);
    memset(x, 0, sizeof *x);
}

static clattn_host_buffers host_view(const t_tensors *t, const kvset *x)
{
    clattn_host_buffers hb = t_tensors_host(t);
    hb.block_table = x->table;
    hb.k_scales = x->scales[0];
    hb.v_scales = x->scales[1];
    return hb;
}

/* The element type of a float storage format. */
static clattn_dtype kv_float_type(clattn_kv_format f, clattn_dtype dtype)
{
    return f == CLATTN_KV_F32    ? CLATTN_F32
           : f == CLATTN_KV_F16  ? CLATTN_F16
           : f == CLATTN_KV_BF16 ? CLATTN_BF16
                                 : dtype;
}

/* One row of dims channels of K or V at unit offset off, row number row
 * (clattn_kv_format's numbering for the scales). Valid: random codes of the
 * format (never NaN) with scales that keep the values within about +-1, as
 * the harness's float tensors (the tolerances were measured on those). Poison,
 * for rows no query may see: every value read from the row is NaN (NaN
 * elements, NaN scales where the codes cannot be NaN, FP8's NaN code), so a
 * read of it shows in O. */
static void kv_row(const clattn_problem *n, const clattn_kv_storage *st, int dims,
                   unsigned char *data, void *scales, int64_t off, int64_t row, int poison,
                   t_rng *r)
{
    const clattn_kv_format f = st->format;
    const int64_t groups = dims / (st->group ? st->group : dims);
    unsigned char *u = data + off;
    switch (f) {
    case CLATTN_KV_DEFAULT:
    case CLATTN_KV_F32:
    case CLATTN_KV_F16:
    case CLATTN_KV_BF16:
        for (int d = 0; d < dims; d++)
            ref_store(data, kv_float_type(f, n->dtype), off + d,
                      poison ? NAN : (float)t_rng_uniform(r, -1.0, 1.0));
        break;
    case CLATTN_KV_INT8:
        for (int d = 0; d < dims && !poison; d++)
            u[d] = (unsigned char)(signed char)t_rng_int(r, -127, 127);
        for (int64_t g = 0; g < groups; g++)
            ref_store(scales, st->scale_dtype, row * groups + g,
                      poison ? NAN : (float)t_rng_uniform(r, 0.004, 0.0078));
        break;
    case CLATTN_KV_INT4:
        for (int c = 0; c < dims / 2 && !poison; c++)
            u[c] = (unsigned char)t_rng_int(r, 0, 255);
        for (int64_t g = 0; g < groups; g++) {
            ref_store(scales, st->scale_dtype, (row * groups + g) * 2,
                      poison ? NAN : (float)t_rng_uniform(r, 0.06, 0.11));
            ref_store(scales, st->scale_dtype, (row * groups + g) * 2 + 1,
                      poison ? NAN : (float)t_rng_uniform(r, 6.0, 9.0));
        }
        break;
    case CLATTN_KV_Q8_0:
    case CLATTN_KV_Q4_0: {
        const int q8 = f == CLATTN_KV_Q8_0, bs = q8 ? 34 : 18;
        for (int b = 0; b < dims / 32; b++) {
            unsigned char *blk = u + b * bs;
            const float d = poison ? NAN
                                   : (float)(q8 ? t_rng_uniform(r, 0.004, 0.0078)
                                                : t_rng_uniform(r, 0.06, 0.124));
            const uint16_t h = ref_f32_to_f16(d);
            blk[0] = (unsigned char)(h & 0xff);
            blk[1] = (unsigned char)(h >> 8);
            for (int c = 2; c < bs && !poison; c++)
                blk[c] = q8 ? (unsigned char)(signed char)t_rng_int(r, -128, 127)
                            : (unsigned char)t_rng_int(r, 0, 255);
        }
        break;
    }
    default: { /* FP8: magnitudes up to about 15, subnormals and both zeros among them */
        const int top = f == CLATTN_KV_FP8_E4M3 ? 0x57 : 0x4b;
        for (int d = 0; d < dims; d++)
            u[d] = poison ? 0xff : (unsigned char)(t_rng_int(r, 0, top) | t_rng_int(r, 0, 1) << 7);
        break;
    }
    }
}

/* Replaces t's K and V by storage of its problem, made with the model's
 * sizes m: gaps and the rows no query may see (keys at or past kv_lens[b],
 * before kv_start[b], tokens past the last sequence, pages nothing
 * references) poison, the others valid. The block table gives each
 * sequence pages of its own in shuffled order; entries past the pages its
 * keys use are garbage (the host functions accept them, the kernels clamp
 * them). kv_lens may hold the out-of-range entries of the device calls:
 * clamped as the kernels clamp them. 0, or -1 (a failed check) when out of
 * memory or when the model and the reference lay K or V out differently. */
static int kvset_make(t_tensors *t, const mshape *m, kvset *x, t_rng *r, long *garbage)
{
    const clattn_problem *n = &t->n;
    memset(x, 0, sizeof *x);
    const int pg = n->paged.enabled, vl = n->varlen, Hk = n->kv_heads;
    int *first = malloc(sizeof(int) * (size_t)n->batch);
    int *len = malloc(sizeof(int) * (size_t)n->batch);
    int32_t *perm = pg ? malloc(sizeof(int32_t) * (size_t)n->paged.num_pages) : NULL;
    unsigned char *data[2] = {malloc((size_t)m->bytes[S_K]), malloc((size_t)m->bytes[S_V])};
    x->table = pg ? malloc((size_t)m->bytes[S_TABLE]) : NULL;
    for (int i = 0; i < 2; i++)
        if (kv_has_scales((i ? n->v_storage : n->k_storage).format))
            x->scales[i] = malloc((size_t)m->bytes[S_KSC + i]);
    int bad = !first || !len || (pg && (!perm || !x->table)) || !data[0] || !data[1];
    for (int i = 0; i < 2; i++)
        bad |= kv_has_scales((i ? n->v_storage : n->k_storage).format) && !x->scales[i];
    if (bad) {
        T_FAIL("out of host memory for K and V");
        goto fail;
    }
    for (int b = 0; b < n->batch; b++) {
        int L = t->kv_lens ? t->kv_lens[b] : n->seq_kv;
        L = L < 0 ? 0 : L > n->seq_kv ? n->seq_kv : L;
        int S = t->kv_start ? t->kv_start[b] : 0;
        first[b] = S < 0 ? 0 : S > L ? L : S;
        len[b] = L;
    }
    if (pg) {
        const int np = n->paged.num_pages, mp = n->paged.max_pages_per_seq, ps = n->paged.page_size;
        for (int i = 0; i < np; i++)
            perm[i] = i;
        for (int i = np - 1; i > 0; i--) {
            const int j = t_rng_int(r, 0, i);
            const int32_t y = perm[i];
            perm[i] = perm[j];
            perm[j] = y;
        }
        int next = 0;
        for (int b = 0; b < n->batch; b++) {
            const int used = (len[b] + ps - 1) / ps;
            for (int i = 0; i < mp; i++) {
                const int past = i >= used;
                x->table[(int64_t)b * mp + i] = past ? table_garbage(r, np) : perm[next++];
                *garbage += past;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        const clattn_kv_storage *st = i ? &n->v_storage : &n->k_storage;
        const clattn_strides *sd = i ? &n->v_strides : &n->k_strides;
        const int dims = i ? n->head_dim_v : n->head_dim;
        const size_t unit = kv_unit_bytes(st->format, t->esz);
        int64_t ext[2];
        ref_tensor_extents(n, NULL, &ext[0], &ext[1], NULL);
        if ((i128)ext[i] * (i128)unit != m->bytes[S_K + i]) {
            T_FAIL("%s: the reference lays out %lld bytes, the model %lld", slot_name[S_K + i],
                   (long long)(ext[i] * (int64_t)unit), (long long)m->bytes[S_K + i]);
            goto fail;
        }
        if (unit == 1) /* a Q8_0 / Q4_0 scale or an FP8 code read from a gap: NaN */
            memset(data[i], 0xff, (size_t)m->bytes[S_K + i]);
        else
            t_fill_poison(data[i], kv_float_type(st->format, n->dtype), ext[i]);
        if (kv_fp8(st->format))
            for (int h = 0; h < (st->per_head ? Hk : 1); h++)
                ref_store(x->scales[i], st->scale_dtype, h, (float)t_rng_uniform(r, 0.03, 0.066));
        /* every row poison first: [blocks][kv_heads][rows], rows numbered
         * as clattn_kv_format numbers them */
        const int64_t nb = pg ? n->paged.num_pages : vl ? 1 : n->batch;
        const int64_t nr = pg ? n->paged.page_size : vl ? n->total_kv : n->seq_kv;
        for (int64_t blk = 0; blk < nb; blk++)
            for (int hk = 0; hk < Hk; hk++)
                for (int64_t j = 0; j < nr; j++)
                    kv_row(n, st, dims, data[i], x->scales[i],
                           blk * sd->batch + hk * sd->head + j * sd->seq,
                           vl ? j * Hk + hk : (blk * Hk + hk) * nr + j, 1, r);
        if (vl) { /* the tokens of the sequences: the harness's cu_seqlens are valid */
            for (int64_t j = 0; j < t->cu_kv[n->batch]; j++)
                for (int hk = 0; hk < Hk; hk++)
                    kv_row(n, st, dims, data[i], x->scales[i], hk * sd->head + j * sd->seq,
                           j * Hk + hk, 0, r);
            continue;
        }
        for (int b = 0; b < n->batch; b++)
            for (int hk = 0; hk < Hk; hk++)
                for (int j = first[b]; j < len[b]; j++) {
                    int64_t blk = b, at = j;
                    if (pg) {
                        blk = x->table[(int64_t)b * n->paged.max_pages_per_seq +
                                       j / n->paged.page_size];
                        at = j % n->paged.page_size;
                    }
                    kv_row(n, st, dims, data[i], x->scales[i],
                           blk * sd->batch + hk * sd->head + at * sd->seq,
                           (blk * Hk + hk) * nr + at, 0, r);
                }
    }
    free(t->k);
    free(t->v);
    t->k = data[0];
    t->v = data[1];
    free(first);
    free(len);
    free(perm);
    return 0;
fail:
    free(data[0]);
    free(data[1]);
    free(first);
    free(len);
    free(perm);
    kvset_free(x);
    return -1;
}

/* t_verify with the 1.1 inputs of x. */
static void verify_o(const char *label, const t_tensors *t, const kvset *x)
{
    clattn_host_buffers in = host_view(t, x);
    in.o = NULL;
    in.lse = NULL;
    t_verify_raw(label, &t->p, &in, t->o, t->o_init, t->o_alloc, t->lse, t->lse_n + T_GUARD,
                 t_tolerance_for(t->p.dtype));
}

/* Runs one valid problem through device buffers laid out by random slots
 * (plain buffers or sub-buffers of one arena, never overlapping) and checks
 * O, LSE and that no other byte changed. */
static void run_valid_device(fuzz_env *e, stats *st, t_rng *r, const char *label, t_tensors *t,
                             const kvset *kx, const mshape *m)
{
    devset d;
    memset(&d, 0, sizeof d);
    const void *data[S_N] = {t->q,     t->k,         t->v,     t->o,      t->mask,
                             t->kv_lens, t->lse,     t->bias,  t->bool_mask, t->sinks,
                             t->alibi, t->kv_start, t->cu_q,  t->cu_kv,   kx->table,
                             kx->scales[0], kx->scales[1]};
    /* the harness's allocations (the model must find them large enough) */
    const size_t hf = sizeof(float) * (size_t)t->n.heads, bi = sizeof(int32_t) * t->n.batch;
    const size_t sizes[S_N] = {(size_t)m->bytes[S_Q], (size_t)m->bytes[S_K],
                               (size_t)m->bytes[S_V], (size_t)t->o_alloc * t->esz,
                               t->mask ? (size_t)m->bytes[S_MASK] : 0,
                               t->kv_lens ? (size_t)m->bytes[S_KVL] : 0,
                               t->lse ? sizeof(float) * (size_t)(t->lse_n + T_GUARD) : 0,
                               (size_t)t->bias_n * ref_dtype_size(t->n.bias.dtype),
                               (size_t)t->bool_n, hf, hf, bi, bi + 4, bi + 4,
                               (size_t)m->bytes[S_TABLE], (size_t)m->bytes[S_KSC],
                               (size_t)m->bytes[S_VSC]};
    size_t off = (size_t)t_rng_int(r, 0, 2) * e->align;
    for (int i = 0; i < S_N; i++) {
        slot *s = &d.s[i];
        s->same_as = -1;
        if (!data[i]) {
            s->kind = PL_NONE;
            continue;
        }
        s->size = sizes[i];
        s->data = data[i];
        /* a sub-buffer may be larger than the problem needs */
        s->kind = chance(r, 0.5) ? PL_SUB : PL_PLAIN;
        if (s->kind == PL_SUB) {
            s->off = off;
            off = align_up(off + s->size + (size_t)t_rng_int(r, 0, 40), e->align);
        }
    }
    verdict v = {1, ""};
    model_buffers(m, &t->p, &d, &v);
    if (!v.valid) {
        T_FAIL("%s: the model refuses its own valid layout (%s)", label, v.words);
        return;
    }
    if (devset_create(e, &d, 7) != 0) {
        devset_release(&d);
        return;
    }
    clattn_buffers b = devset_buffers(&d, NULL);
    cl_event done = NULL;
    clattn_status s = clattn_forward(e->ctx, &t->p, &b, 0, NULL, &done);
    if (s != CLATTN_OK) {
        st->refused_valid++;
        T_FAIL("%s: clattn_forward -> %s: %s (the model finds it valid)", label,
               clattn_status_string(s), clattn_last_error(e->ctx));
        devset_release(&d);
        return;
    }
    T_CHECK(done != NULL, "%s: no done event", label);
    if (done) {
        T_CL(clWaitForEvents(1, &done));
        clReleaseEvent(done);
    }
    unsigned char *arena = d.arena ? read_back(e, d.arena, d.arena_size) : NULL;
    void *o = d.s[S_O].kind == PL_SUB ? (arena ? arena + d.s[S_O].off : NULL)
                                       : read_back(e, d.plain[S_O], d.s[S_O].size);
    void *lse = !t->lse ? NULL
                : d.s[S_LSE].kind == PL_SUB ? (arena ? arena + d.s[S_LSE].off : NULL)
                                            : read_back(e, d.plain[S_LSE], d.s[S_LSE].size);
    if (o && (!t->lse || lse)) {
        clattn_host_buffers in = host_view(t, kx);
        in.o = NULL;
        in.lse = NULL;
        int before = t_failures;
        t_verify_raw(label, &t->p, &in, o, t->o_init, t->o_alloc, lse,
                     t->lse ? t->lse_n + T_GUARD : 0, t_tolerance_for(t->p.dtype));
        st->wrong_result += t_failures != before;
        /* inputs and arena gaps: every byte outside O and LSE as made */
        if (arena) {
            size_t changed = 0;
            for (size_t x = 0; x < d.arena_size; x++) {
                int in_out = 0;
                for (int i = S_O; i <= S_LSE; i += S_LSE - S_O)
                    in_out |= d.s[i].kind == PL_SUB && x >= d.s[i].off &&
                              x < d.s[i].off + d.s[i].size;
                changed += !in_out && arena[x] != d.arena_init[x];
            }
            T_CHECK(changed == 0, "%s: %zu input or gap bytes of the arena changed", label,
                    changed);
        }
        for (int i = 0; i < S_N; i++)
            if (i != S_O && i != S_LSE && d.s[i].kind == PL_PLAIN) {
                void *now = read_back(e, d.plain[i], d.s[i].size);
                T_CHECK(now && memcmp(now, d.plain_init[i], d.s[i].size) == 0,
                        "%s: input %s changed", label, slot_name[i]);
                free(now);
            }
    }
    if (d.s[S_O].kind != PL_SUB)
        free(o);
    if (t->lse && d.s[S_LSE].kind != PL_SUB)
        free(lse);
    free(arena);
    devset_release(&d);
}

/* Device calls clamp the index entries they cannot check (clattn.h:
 * kv_start to 0..seq_kv, cu_seqlens to 0..total and to the largest
 * lengths). Puts one such entry into t where the clamped meaning keeps the
 * sequences apart and the NaN the harness put before kv_start unseen: a
 * kv_start below 0 where it was 0, or past seq_kv (no key); a last
 * cu_seqlens entry past the total (the same sequences), below 0 (the last
 * sequence empty), or a first entry above 0 (the first one shorter).
 * Returns 1 when it changed something. */
static int clamp_fault(t_rng *r, t_tensors *t, char *what, size_t wn)
{
    const clattn_problem *n = &t->n;
    if (t->kv_start) {
        const int b = pick(r, n->batch);
        if (t->kv_start[b] == 0 && chance(r, 0.5))
            t->kv_start[b] = chance(r, 0.5) ? -1 : INT32_MIN;
        else
            t->kv_start[b] = chance(r, 0.5) ? INT32_MAX : n->seq_kv + t_rng_int(r, 1, 5);
        snprintf(what, wn, "kv_start[%d] = %d", b, (int)t->kv_start[b]);
        return 1;
    }
    if (t->cu_q) {
        const int on_q = chance(r, 0.5);
        int32_t *cu = on_q ? t->cu_q : t->cu_kv;
        const int total = on_q ? n->total_q : n->total_kv, B = n->batch;
        /* INT32_MIN too: the kernels must clamp both ends before taking
         * the difference, or it wraps into rows and keys */
        const int lowest = chance(r, 0.5);
        switch (pick(r, 3)) {
        case 0: cu[B] = chance(r, 0.5) ? INT32_MAX : total + t_rng_int(r, 1, 5); break;
        case 1: cu[B] = lowest ? INT32_MIN : -t_rng_int(r, 1, 5); break;
        default: cu[0] = t_rng_int(r, 1, total); break;
        }
        snprintf(what, wn, "%s clamped", on_q ? "cu_seqlens_q" : "cu_seqlens_kv");
        return 1;
    }
    return 0;
}

/* The probabilities of a varlen problem where clattn.h defines them: rows
 * and keys inside each sequence (its cu_seqlens are valid here). */
static void verify_probs_varlen(const char *label, const t_tensors *t, const kvset *kx,
                                const float *probs, t_tolerance tol)
{
    const clattn_problem *n = &t->n;
    const size_t np = (size_t)n->batch * n->heads * n->seq_q * n->seq_kv;
    double *ref = malloc(sizeof(double) * np);
    clattn_host_buffers in = host_view(t, kx);
    in.o = NULL;
    in.lse = NULL;
    if (!ref || ref_attention(&t->p, &in, NULL, NULL, ref) != 0) {
        T_FAIL("%s: no reference probabilities (out of memory)", label);
        free(ref);
        return;
    }
    size_t bad = 0, worst = 0;
    double worst_err = 0.0;
    for (int b = 0; b < n->batch; b++) {
        const int lq = t->cu_q[b + 1] - t->cu_q[b], lk = t->cu_kv[b + 1] - t->cu_kv[b];
        for (int h = 0; h < n->heads; h++)
            for (int i = 0; i < lq; i++)
                for (int j = 0; j < lk; j++) {
                    size_t x = (((size_t)b * n->heads + h) * n->seq_q + i) * n->seq_kv + j;
                    double err = fabs((double)probs[x] - ref[x]);
                    if (isnan(err))
                        err = INFINITY;
                    if (err > worst_err)
                        worst_err = err, worst = x;
                    bad += !(err <= tol.probs_abs);
                }
    }
    T_CHECK(bad == 0, "%s: %zu probabilities inside the sequences off by more than %.3g; worst "
            "%.3g at element %zu (ref %.9g got %.9g)", label, bad, tol.probs_abs, worst_err,
            worst, ref[worst], (double)probs[worst]);
    free(ref);
}

/* The harness flags of a problem's 1.0 inputs. */
static unsigned feature_flags(const clattn_problem *p)
{
    return (p->sinks ? T_WITH_SINKS : 0u) | (p->alibi ? T_WITH_ALIBI : 0u) |
           (p->bias.enabled ? T_WITH_BIAS : 0u) | (p->bool_mask.enabled ? T_WITH_BOOL_MASK : 0u) |
           (p->kv_start ? T_WITH_KV_START : 0u) | (p->varlen ? T_WITH_VARLEN : 0u);
}

/* What the valid draws covered, for the log. */
typedef struct valid_counts {
    long per_path[4], per_dtype[3], with_flags[4], strided, kvl_oob;
    long clamped, big_dims, bias_dtype[3], broadcast;
    long kv_fmt[2][10], paged, token_major, kv_strided, garbage;
} valid_counts;

static void log_kv_combos(const kv_combo *combos)
{
    for (int c = 0; c < N_KV_COMBOS; c++) {
        clattn_problem cp;
        memset(&cp, 0, sizeof cp);
        cp.k_storage = combos[c].k;
        cp.v_storage = combos[c].v;
        char cd[160] = "";
        kv_describe(&cp, cd, sizeof cd);
        const unsigned f = combos[c].features ? combos[c].features->features : 0u;
        t_log("  K/V combination %d:%s%s, %s, D%d/%d, features 0x%x", c, cd,
              combos[c].paged ? " paged" : "", t_dtype_name(combos[c].dtype),
              combos[c].head_dim, combos[c].head_dim_v,
              combos[c].paged ? f & ~(unsigned)FT_VARLEN : f);
    }
}

/* One valid draw made ready to run: the problem, its tensors (K and V in
 * their storage), the model's shape, the API and an optional clamp fault. */
typedef struct valid_draw {
    clattn_problem p;
    t_tensors t;
    kvset x;
    mshape m;
    int api; /* device, host, weights */
    char what[96];
} valid_draw;

/* Draws problem n and lays out its tensors. Returns 0 to run it, 1 to go
 * to the next draw (nothing left allocated), -1 to stop the run. */
static int valid_draw_setup(t_rng *r, long n, int mode, const kv_combo *combos,
                            valid_counts *vc, valid_draw *d)
{
    clattn_problem *p = &d->p;
    const int mask_policy = draw_valid(r, p, mode, mode == DRAW_QUICK ? combos : NULL);
    verdict v = {1, ""};
    model_problem(p, &d->m, &v);
    if (!v.valid) {
        T_FAIL("draw %ld: the generator drew a problem the model refuses (%s)", n, v.words);
        return 1;
    }
    d->api = pick(r, 3);
    if (d->api == 2 && p->path != CLATTN_PATH_AUTO && p->path != CLATTN_PATH_THREE_STAGE)
        d->api = 1;
    unsigned flags = feature_flags(p);
    /* the device API clamps kv_lens entries outside 0..seq_kv */
    const int kvl_out = d->api == 0 && !p->varlen && chance(r, 0.2);
    if (!p->bias.enabled && mask_policy != MASK_NEVER &&
        (mask_policy == MASK_ALWAYS || chance(r, 0.5)))
        flags |= T_WITH_MASK;
    if (!p->varlen && (kvl_out || chance(r, 0.4)))
        flags |= T_WITH_KV_LENS | (!kvl_out && chance(r, 0.5) ? T_NAN_BEYOND_LEN : 0);
    if (chance(r, 0.6))
        flags |= T_WITH_LSE;
    /* The harness lays K and V out in the problem's dtype, contiguous: it
     * gets the problem without storage or paging, and kvset_make then puts
     * K and V in their storage. */
    const int kv_on = !kv_plain(p);
    clattn_problem plain = *p;
    if (kv_on) {
        memset(&plain.k_storage, 0, sizeof plain.k_storage);
        memset(&plain.v_storage, 0, sizeof plain.v_storage);
        memset(&plain.paged, 0, sizeof plain.paged);
        memset(&plain.k_strides, 0, sizeof plain.k_strides);
        memset(&plain.v_strides, 0, sizeof plain.v_strides);
    }
    t_tensors *t = &d->t;
    if (t_tensors_init(t, &plain, flags, 0x7a1d0000u + (uint64_t)n) != 0)
        return -1;
    if (kv_on) {
        t->p.k_storage = p->k_storage;
        t->p.v_storage = p->v_storage;
        t->p.paged = p->paged;
        t->p.k_strides = p->k_strides;
        t->p.v_strides = p->v_strides;
        ref_normalize(&t->p, &t->n);
    }
    if (p->varlen) { /* the harness drew the token counts: the model reads them */
        v.valid = 1;
        v.words[0] = '\0';
        model_problem(&t->p, &d->m, &v);
        if (!v.valid) {
            T_FAIL("draw %ld: the model refuses the harness's varlen problem (%s)", n, v.words);
            t_tensors_free(t);
            return 1;
        }
    }
    if (kvl_out) {
        static const int32_t oob[] = {-1, INT32_MIN, INT32_MAX};
        int b = pick(r, p->batch), w = pick(r, 4);
        t->kv_lens[b] = w < 3 ? oob[w] : p->seq_kv + t_rng_int(r, 1, 5);
        vc->kvl_oob++;
    }
    memset(&d->x, 0, sizeof d->x);
    if (kv_on && kvset_make(t, &d->m, &d->x, r, &vc->garbage) != 0) {
        t_tensors_free(t);
        return -1;
    }
    d->what[0] = '\0';
    if (d->api == 0 && chance(r, 0.3))
        vc->clamped += clamp_fault(r, t, d->what, sizeof d->what);
    return 0;
}

static void count_valid_draw(valid_counts *vc, stats *st, const valid_draw *d)
{
    const clattn_problem *p = &d->p;
    const t_tensors *t = &d->t;
    st->by_api[d->api]++;
    vc->per_path[p->path]++;
    vc->per_dtype[p->dtype]++;
    vc->with_flags[0] += t->mask != NULL;
    vc->with_flags[1] += t->kv_lens != NULL;
    vc->with_flags[2] += t->lse != NULL;
    vc->with_flags[3] += p->windowed != 0;
    vc->strided += p->q_strides.seq || p->q_strides.head || p->q_strides.batch;
    count_features(st, p);
    vc->big_dims += p->head_dim > 64 || p->head_dim_v > 64;
    if (p->bias.enabled)
        vc->bias_dtype[p->bias.dtype]++;
    vc->broadcast += (p->bias.enabled && (!p->bias.strides.batch || !p->bias.strides.head ||
                                          !p->bias.strides.row)) ||
                     (p->bool_mask.enabled && (!p->bool_mask.strides.batch ||
                                               !p->bool_mask.strides.head ||
                                               !p->bool_mask.strides.row));
    for (int i = 0; i < 2; i++) {
        const clattn_kv_format f = i ? p->v_storage.format : p->k_storage.format;
        const clattn_strides *ks = i ? &p->v_strides : &p->k_strides;
        vc->kv_fmt[i][f]++;
        vc->kv_strided += f != CLATTN_KV_DEFAULT && (ks->batch || ks->head || ks->seq);
    }
    vc->paged += p->paged.enabled;
    vc->token_major +=
        p->paged.enabled && p->k_strides.head && p->k_strides.head < p->k_strides.seq;
}

/* clattn_forward_host, or the weights and O from
 * clattn_attention_weights_host; both checked against the reference.
 * Returns -1 when out of host memory. */
static int run_valid_host(fuzz_env *e, stats *st, const char *full, valid_draw *d,
                          clattn_host_buffers *hb)
{
    t_tensors *t = &d->t;
    if (d->api == 1) {
        clattn_status s = clattn_forward_host(e->ctx, &t->p, hb);
        if (s != CLATTN_OK) {
            st->refused_valid++;
            T_FAIL("%s: clattn_forward_host -> %s: %s (the model finds it valid)", full,
                   clattn_status_string(s), clattn_last_error(e->ctx));
        } else {
            int before = t_failures;
            verify_o(full, t, &d->x);
            st->wrong_result += t_failures != before;
        }
        return 0;
    }
    const clattn_problem *p = &d->p;
    size_t np = (size_t)p->batch * p->heads * p->seq_q * p->seq_kv;
    float *probs = malloc(sizeof(float) * np);
    if (!probs) {
        T_FAIL("out of host memory");
        return -1;
    }
    for (size_t i = 0; i < np; i++)
        probs[i] = NAN;
    clattn_status s = clattn_attention_weights_host(e->ctx, &t->p, hb, probs);
    if (s != CLATTN_OK) {
        st->refused_valid++;
        T_FAIL("%s: clattn_attention_weights_host -> %s: %s (the model finds it valid)", full,
               clattn_status_string(s), clattn_last_error(e->ctx));
    } else {
        int before = t_failures;
        if (t->p.varlen)
            verify_probs_varlen(full, t, &d->x, probs, t_tolerance_for(p->dtype));
        else
            t_verify_probs(full, &t->p, hb, probs, t_tolerance_for(p->dtype));
        verify_o(full, t, &d->x);
        st->wrong_result += t_failures != before;
    }
    free(probs);
    return 0;
}

/* Runs a prepared draw through its API unless the device cannot run it.
 * Returns -1 when the run cannot go on. */
static int run_valid_draw(fuzz_env *e, stats *st, t_rng *r, long n, valid_draw *d)
{
    char desc[1024], label[1200], full[2400];
    clattn_host_buffers hb = host_view(&d->t, &d->x);
    t_describe(&d->t.p, &hb, desc, sizeof desc);
    kv_describe(&d->t.p, desc, sizeof desc);
    snprintf(label, sizeof label, "draw %ld %s%s%s", n,
             d->api == 0 ? "device" : d->api == 1 ? "host" : "weights", d->what[0] ? " " : "",
             d->what);
    clattn_status sup = clattn_supports(e->ctx, &d->t.p);
    if (sup == CLATTN_ERR_UNSUPPORTED) {
        st->skipped_unsupported++;
        t_skip("%s [%s]: %s", label, desc, clattn_last_error(e->ctx));
        return 0;
    }
    if (sup != CLATTN_OK) {
        st->refused_valid++;
        T_FAIL("%s [%s]: clattn_supports -> %s: %s (the model finds it valid)", label, desc,
               clattn_status_string(sup), clattn_last_error(e->ctx));
        return 0;
    }
    st->valid_run++;
    snprintf(full, sizeof full, "%s [%s]", label, desc);
    t_tensors_poison(&d->t);
    if (d->api == 0) {
        run_valid_device(e, st, r, full, &d->t, &d->x, &d->m);
        return 0;
    }
    return run_valid_host(e, st, full, d, &hb);
}

static void log_valid_stats(const stats *st, const valid_counts *vc, const clattn_stats *cs)
{
    t_log("descriptors_valid: %ld draws, %ld run (%ld unsupported); device %ld, host %ld, "
          "weights %ld",
          st->draws, st->valid_run, st->skipped_unsupported, st->by_api[0], st->by_api[1],
          st->by_api[2]);
    t_log("  paths auto/fused/three_stage/split_kv %ld/%ld/%ld/%ld; f32/f16/bf16 %ld/%ld/%ld",
          vc->per_path[0], vc->per_path[1], vc->per_path[2], vc->per_path[3], vc->per_dtype[0],
          vc->per_dtype[1], vc->per_dtype[2]);
    t_log("  with mask %ld, kv_lens %ld (%ld outside 0..seq_kv), lse %ld, windowed %ld, "
          "strided q %ld",
          vc->with_flags[0], vc->with_flags[1], vc->kvl_oob, vc->with_flags[2],
          vc->with_flags[3], vc->strided);
    t_log("  1.0: softcap %ld, sinks %ld, alibi %ld, bias %ld (f32/f16/bf16 %ld/%ld/%ld), "
          "bool_mask %ld, a broadcast mask %ld, kv_start %ld, chunk %ld, varlen %ld; "
          "entries clamped %ld; head dims past 64: %ld",
          st->features[0], st->features[1], st->features[2], st->features[3],
          vc->bias_dtype[0], vc->bias_dtype[1], vc->bias_dtype[2], st->features[4],
          vc->broadcast, st->features[5], st->features[6], st->features[7], vc->clamped,
          vc->big_dims);
    const long(*k)[10] = vc->kv_fmt;
    t_log("  1.1 K formats default/f32/f16/bf16/int8/int4/q8_0/q4_0/e4m3/e5m2 "
          "%ld/%ld/%ld/%ld/%ld/%ld/%ld/%ld/%ld/%ld",
          k[0][0], k[0][1], k[0][2], k[0][3], k[0][4], k[0][5], k[0][6], k[0][7], k[0][8],
          k[0][9]);
    t_log("  1.1 V formats %ld/%ld/%ld/%ld/%ld/%ld/%ld/%ld/%ld/%ld; strided K/V in storage "
          "%ld; paged %ld (token-major %ld), garbage table entries %ld",
          k[1][0], k[1][1], k[1][2], k[1][3], k[1][4], k[1][5], k[1][6], k[1][7], k[1][8],
          k[1][9], vc->kv_strided, vc->paged, vc->token_major, vc->garbage);
    t_log("  outcomes: refused-valid %ld, wrong results %ld; programs built %llu, loaded %llu",
          st->refused_valid, st->wrong_result, (unsigned long long)cs->programs_built,
          (unsigned long long)cs->programs_loaded);
}

void case_descriptors_valid(void)
{
    fuzz_env e;
    fuzz_env_init(&e);
    if (!e.ctx) {
        fuzz_env_free(&e);
        return;
    }
    const int mode = long_run() ? DRAW_LONG : DRAW_QUICK;
    const long draws = long_run() ? 2000 : 240;
    long only;
    const uint64_t seed = fuzz_seed(0xa11d0c5u, &only);
    t_log("descriptors_valid: %ld draws, seed 0x%llx", draws, (unsigned long long)seed);
    kv_combo combos[N_KV_COMBOS];
    draw_kv_combos(seed, combos);
    if (mode == DRAW_QUICK)
        log_kv_combos(combos);
    stats st;
    memset(&st, 0, sizeof st);
    static valid_counts vc;
    memset(&vc, 0, sizeof vc);
    static valid_draw d;
    for (long n = only >= 0 ? only : 0; n < (only >= 0 ? only + 1 : draws) && t_failures < 20;
         n++) {
        t_rng r;
        draw_rng(&r, seed, n);
        st.draws++;
        memset(&d, 0, sizeof d);
        const int ready = valid_draw_setup(&r, n, mode, combos, &vc, &d);
        if (ready > 0)
            continue;
        if (ready < 0)
            break;
        count_valid_draw(&vc, &st, &d);
        const int rc = run_valid_draw(&e, &st, &r, n, &d);
        kvset_free(&d.x);
        t_tensors_free(&d.t);
        if (rc != 0)
            break;
    }
    clattn_stats cs;
    memset(&cs, 0, sizeof cs);
    T_CHECK(clattn_context_stats(e.ctx, &cs) == CLATTN_OK, "clattn_context_stats: %s",
            clattn_last_error(e.ctx));
    log_valid_stats(&st, &vc, &cs);
    fuzz_env_free(&e);
}
