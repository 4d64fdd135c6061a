/*
 * Descriptor fuzzing: random clattn_problem descriptors and buffer sets, valid
 * and invalid, through clattn_forward, clattn_forward_host and
 * clattn_attention_weights_host.
 *
 * Whether a draw is valid is decided here by a model written from the rules
 * in clattn.h (never by asking the library), so the model and the library's
 * validator can disagree; any disagreement fails the case.
 *   invalid: CLATTN_ERR_INVALID_ARGUMENT, a message naming one of the fields
 *            the model found wrong, no event handed back, and every byte of
 *            every buffer (outputs, their guards, inputs) as it was.
 *   valid:   the run matches ref_attention within the dtype's tolerance, and
 *            nothing outside O's view and LSE changed.
 * Quick by default; CLATTN_LONG=1 draws ten times more; CLATTN_FUZZ_SEED
 * picks another seed (the seed is printed).
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

static uint64_t fuzz_seed(uint64_t dflt)
{
    const char *e = getenv("CLATTN_FUZZ_SEED");
    return e && *e ? strtoull(e, NULL, 0) : dflt;
}

/* ---- the validity model -------------------------------------------------- */

/* What the model expects of a call: valid, or refused with a message naming
 * one of the '|'-separated words. */
typedef struct verdict {
    int valid;
    char words[400];
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

/* The model's reading of a problem: defaults filled, extents in elements and
 * bytes (only meaningful when ok). */
typedef struct mshape {
    int ok; /* the problem alone is valid */
    int B, H, Hk, Sq, Skv, D, Dv;
    size_t esz;
    clattn_strides st[4]; /* q, k, v, o after the packed default */
    i128 bytes[7];        /* q, k, v, o, mask, kv_lens, lse */
} mshape;

enum { S_Q, S_K, S_V, S_O, S_MASK, S_KVL, S_LSE, S_N };
static const char *const slot_name[S_N] = {"q", "k", "v", "o", "mask", "kv_lens", "lse"};

/* clattn.h: "Views may not overlap themselves". The library enforces it as
 * a nest: taken by increasing stride, each dimension of extent > 1 steps
 * past every offset the smaller-stride dimensions reach. This checks that
 * form directly, dimension by dimension (a tie or a zero stride fails). */
static int view_nested(const int64_t n[4], const int64_t s[4])
{
    for (int y = 0; y < 4; y++) {
        if (n[y] <= 1)
            continue;
        i128 below = 0;
        for (int z = 0; z < 4; z++)
            if (z != y && n[z] > 1 && s[z] <= s[y])
                below += (i128)(n[z] - 1) * s[z];
        if (!((i128)s[y] > below))
            return 0;
    }
    return 1;
}

/* Whether no two elements of a small view share an offset, by enumeration;
 * -1 when the view is too large to enumerate. */
static int view_injective(const int64_t n[4], const int64_t s[4])
{
    i128 ext = 1, count = 1;
    for (int d = 0; d < 4; d++) {
        ext += (i128)(n[d] - 1) * s[d];
        count *= n[d];
    }
    if (ext > 4096 || count > 4096)
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
    if (!sizes_ok || !dtype_ok)
        return;
    m->B = p->batch, m->H = p->heads, m->Hk = p->kv_heads ? p->kv_heads : p->heads;
    m->Sq = p->seq_q, m->Skv = p->seq_kv, m->D = p->head_dim;
    m->Dv = p->head_dim_v ? p->head_dim_v : p->head_dim;
    m->esz = p->dtype == CLATTN_F32 ? 4 : 2;
    if ((i128)m->B * m->H >= ((i128)1 << 31))
        v_bad(v, "batch|heads");

    const clattn_strides *given[4] = {&p->q_strides, &p->k_strides, &p->v_strides,
                                      &p->o_strides};
    const int64_t dims[4][3] = {{m->H, m->Sq, m->D},
                                {m->Hk, m->Skv, m->D},
                                {m->Hk, m->Skv, m->Dv},
                                {m->H, m->Sq, m->Dv}};
    for (int t = 0; t < 4; t++) {
        const clattn_strides *g = given[t];
        char words[64];
        snprintf(words, sizeof words, "%s_strides|%s", slot_name[t], slot_name[t]);
        int64_t n[4] = {m->B, dims[t][0], dims[t][1], dims[t][2]};
        i128 s[4];
        if (g->batch == 0 && g->head == 0 && g->seq == 0) {
            s[3] = 1;
            s[2] = n[3];
            s[1] = s[2] * n[2];
            s[0] = s[1] * n[1];
            if (s[0] > I64MAX) {
                v_bad(v, words);
                continue;
            }
        } else {
            s[0] = g->batch, s[1] = g->head, s[2] = g->seq, s[3] = 1;
            if (g->batch < 0 || g->head < 0 || g->seq < 0) {
                v_bad(v, words);
                continue;
            }
        }
        m->st[t].batch = (int64_t)s[0], m->st[t].head = (int64_t)s[1];
        m->st[t].seq = (int64_t)s[2];
        int64_t s64[4] = {(int64_t)s[0], (int64_t)s[1], (int64_t)s[2], 1};
        i128 ext = 1;
        for (int d = 0; d < 4; d++)
            ext += (i128)(n[d] - 1) * s[d];
        if (!view_nested(n, s64)) {
            if (view_injective(n, s64) == 1)
                interleaved_views++;
            v_bad(v, words);
        } else if (ext * (i128)m->esz > I64MAX) {
            char w2[96];
            snprintf(w2, sizeof w2, "%s|size|bytes|overflow|overflows", words);
            v_bad(v, w2);
        }
        m->bytes[t] = ext * (i128)m->esz;
    }
    if (mstr_ok) {
        i128 me = (i128)(m->B - 1) * p->mask_batch_stride +
                  (i128)(m->H - 1) * p->mask_head_stride + (i128)m->Sq * m->Skv;
        m->bytes[S_MASK] = me * 4;
        if (me * 4 > I64MAX)
            v_bad(v, "mask|size|bytes|overflow|overflows");
    }
    m->bytes[S_KVL] = (i128)m->B * 4;
    m->bytes[S_LSE] = (i128)m->B * m->H * m->Sq * 4;
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
 * arbitrary non-negative strides (they never step). */
static clattn_strides draw_strides(t_rng *r, int n0, int n1, int n2, int n3)
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
        st[d] = span + (kind == 1 || chance(r, 0.5) ? t_rng_int(r, 0, 5) : 0);
        span = st[d] * n[d];
    }
    for (int d = 0; d < 3; d++)
        if (n[d] == 1 && kind == 3)
            st[d] = chance(r, 0.5) ? 0 : (int64_t)t_rng_int(r, 0, 1000) * 1000003;
    s.batch = st[0], s.head = st[1], s.seq = st[2];
    if (s.batch == 0 && s.head == 0 && s.seq == 0)
        s.seq = n3; /* keep it explicit */
    return s;
}

/* A small valid problem; dims from dimset (few head dims keep the number of
 * kernel builds small). */
static void draw_valid(t_rng *r, clattn_problem *p, int small_dims)
{
    memset(p, 0, sizeof *p);
    /* One head_dim pair in the quick run: each pair costs every kernel
     * configuration a build per dtype. */
    static const int dims[][2] = {{8, 16}, {8, 0}, {16, 8}, {1, 3}, {64, 64}};
    p->batch = t_rng_int(r, 1, 3);
    p->kv_heads = t_rng_int(r, 1, 2);
    p->heads = p->kv_heads * t_rng_int(r, 1, 3);
    if (chance(r, 0.3))
        p->kv_heads = chance(r, 0.5) ? 0 : p->heads;
    p->seq_q = chance(r, 0.15) ? 1 : t_rng_int(r, 1, 24);
    p->seq_kv = chance(r, 0.15) ? 1 : t_rng_int(r, 1, 48);
    if (small_dims) {
        int d = long_run() ? pick(r, 5) : 0;
        p->head_dim = dims[d][0];
        p->head_dim_v = dims[d][1];
    } else {
        p->head_dim = t_rng_int(r, 1, 20);
        p->head_dim_v = chance(r, 0.5) ? 0 : t_rng_int(r, 1, 20);
    }
    p->dtype = (clattn_dtype)pick(r, 3);
    p->path = (clattn_path)pick(r, 4);
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
    const int Hk = p->kv_heads ? p->kv_heads : p->heads;
    const int Dv = p->head_dim_v ? p->head_dim_v : p->head_dim;
    if (chance(r, 0.5)) {
        p->q_strides = draw_strides(r, p->batch, p->heads, p->seq_q, p->head_dim);
        p->k_strides = draw_strides(r, p->batch, Hk, p->seq_kv, p->head_dim);
        p->v_strides = draw_strides(r, p->batch, Hk, p->seq_kv, Dv);
        p->o_strides = draw_strides(r, p->batch, p->heads, p->seq_q, Dv);
    }
    const int64_t plane = (int64_t)p->seq_q * p->seq_kv;
    switch (pick(r, 4)) {
    case 0: break; /* broadcast over batch and heads */
    case 1: p->mask_head_stride = plane; p->mask_batch_stride = plane * p->heads; break;
    case 2: p->mask_head_stride = plane + t_rng_int(r, 0, 9); p->mask_batch_stride = 0; break;
    default: p->mask_batch_stride = plane + t_rng_int(r, 0, 9); break;
    }
}

static const int k_bad_ints[] = {0, -1, -7, INT_MIN, INT_MAX, 1 << 30, (1 << 30) + 1,
                                 256, 257, 512, 513, 576, 577, 65536, 1 << 20, 3};
static const int64_t k_bad_strides[] = {-1, 0, 1, 2, INT64_MAX, INT64_MAX / 2, INT64_MIN,
                                        (int64_t)1 << 40, (int64_t)1 << 62, 7};

/* One random change to a problem field, of any validity. Returns the field
 * name for the statistics. */
static const char *mutate(t_rng *r, clattn_problem *p)
{
    const int v = k_bad_ints[pick(r, (int)(sizeof k_bad_ints / sizeof k_bad_ints[0]))];
    switch (pick(r, 16)) {
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
    case 13: { /* one stride of one view */
        clattn_strides *s[4] = {&p->q_strides, &p->k_strides, &p->v_strides, &p->o_strides};
        clattn_strides *t = s[pick(r, 4)];
        int64_t x = chance(r, 0.7) ? k_bad_strides[pick(r, 10)] : (int64_t)t_rng_int(r, -3, 40);
        switch (pick(r, 3)) {
        case 0: t->batch = x; break;
        case 1: t->head = x; break;
        default: t->seq = x; break;
        }
        return "strides";
    }
    case 14: { /* a whole view of random small strides: mostly overlapping ones */
        clattn_strides *s[4] = {&p->q_strides, &p->k_strides, &p->v_strides, &p->o_strides};
        clattn_strides *t = s[pick(r, 4)];
        t->batch = t_rng_int(r, -1, 60);
        t->head = t_rng_int(r, -1, 60);
        t->seq = t_rng_int(r, -1, 30);
        return "strides_random";
    }
    default: { /* products past 32 or 64 bits */
        static const int big[] = {1 << 30, INT_MAX, 1 << 16, 46341, 1 << 20};
        p->batch = big[pick(r, 5)];
        p->heads = big[pick(r, 5)];
        p->kv_heads = chance(r, 0.5) ? 0 : 1;
        if (chance(r, 0.5)) {
            p->seq_q = 1 << 30;
            p->seq_kv = 1 << 30;
            p->head_dim = 256;
        }
        return "products";
    }
    }
}

/* ---- device buffers ------------------------------------------------------ */

enum { PL_NONE, PL_PLAIN, PL_SUB, PL_OTHER_CTX };

/* Where one of the seven buffers of a call lives. */
typedef struct slot {
    int kind;
    size_t size; /* of the cl_mem */
    size_t off;  /* inside the arena (PL_SUB) */
    int same_as; /* >= 0: the very cl_mem of that slot */
    const void *data; /* contents, or NULL for the byte pattern */
} slot;

typedef struct devset {
    slot s[S_N];
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

/* The model's buffer rules (clattn_buffers in clattn.h): q, k, v, o given,
 * same cl_context, large enough, and o (and the library's lse) sharing no
 * byte the problem touches with any other buffer. */
static void model_buffers(const mshape *m, const devset *d, verdict *v)
{
    for (int i = 0; i < S_N; i++) {
        const slot *s = &d->s[i];
        int root = s->same_as >= 0 ? s->same_as : i;
        const slot *rs = &d->s[root];
        if (rs->kind == PL_NONE) {
            if (i <= S_O)
                v_bad(v, slot_name[i]);
            continue;
        }
        if (rs->kind == PL_OTHER_CTX)
            v_bad(v, slot_name[i]);
        else if ((i128)rs->size < m->bytes[i])
            v_bad(v, slot_name[i]);
    }
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
                char w[64];
                snprintf(w, sizeof w, "%s|%s", slot_name[out], slot_name[i]);
                v_bad(v, w);
            }
        }
}

/* ---- statistics ---------------------------------------------------------- */

typedef struct stats {
    long draws, invalid_checked, left_valid, valid_run, skipped_unsupported;
    long by_api[3];       /* device, host, weights */
    long by_kind[8];
    long accepted_invalid, refused_valid, wrong_status, bad_message, modified, wrong_result;
} stats;

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

/* Slots for a problem the model read as m (or, when m is not ok, as the
 * base problem bm): every buffer exact, plain or in the arena. */
static void plan_slots(t_rng *r, const mshape *m, devset *d, int with_opt, size_t align)
{
    memset(d, 0, sizeof *d);
    size_t off = 0;
    for (int i = 0; i < S_N; i++) {
        slot *s = &d->s[i];
        s->same_as = -1;
        if (i > S_O && !(with_opt & (1 << (i - S_MASK)))) {
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

/* A device-buffer fault on an otherwise valid small problem. */
static void buffer_fault(t_rng *r, const mshape *m, devset *d, size_t align, char *what,
                         size_t wn)
{
    int i = pick(r, S_N);
    slot *s = &d->s[i];
    switch (pick(r, 5)) {
    case 0: /* missing */
        s->kind = PL_NONE;
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

/* One host call (forward or weights) with host arrays sized by the model;
 * returns the number of outputs changed. probs_n 0: forward_host. */
typedef struct hostset {
    void *a[S_N];
    void *init_o, *init_lse;
    float *probs;
    size_t n[S_N], probs_n;
} hostset;

static int hostset_make(hostset *h, const mshape *m, int with_opt, t_rng *r)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < S_N; i++) {
        if (i > S_O && !(with_opt & (1 << (i - S_MASK))))
            continue;
        h->n[i] = (size_t)m->bytes[i];
        h->a[i] = malloc(h->n[i] ? h->n[i] : 1);
        if (!h->a[i])
            return -1;
        pattern(h->a[i], h->n[i], (uint64_t)i * 977);
    }
    if (h->a[S_KVL])
        for (int b = 0; b < m->B; b++)
            ((int32_t *)h->a[S_KVL])[b] = t_rng_int(r, 0, m->Skv);
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

void case_descriptors_invalid(void)
{
    fuzz_env e;
    fuzz_env_init(&e);
    if (!e.ctx || !e.other_buf) {
        fuzz_env_free(&e);
        return;
    }
    const long draws = long_run() ? 400000 : 40000;
    const uint64_t seed = fuzz_seed(0xf022d35cu);
    t_log("descriptors_invalid: %ld draws, seed 0x%llx", draws, (unsigned long long)seed);
    stats st;
    memset(&st, 0, sizeof st);
    t_rng r;
    t_rng_seed(&r, seed);
    long field_draws[32] = {0};
    const char *field_names[32] = {0};
    int n_fields = 0;
    for (long n = 0; n < draws && t_failures < 50; n++) {
        st.draws++;
        clattn_problem base, p;
        draw_valid(&r, &base, 0);
        p = base;
        verdict v = {1, ""};
        mshape bm, m;
        model_problem(&base, &bm, &v);
        if (!v.valid) {
            T_FAIL("draw %ld: the generator's base problem is invalid to the model (%s)", n,
                   v.words);
            break;
        }
        const int with_opt = pick(&r, 8); /* bit 0 mask, 1 kv_lens, 2 lse */
        int kind = pick(&r, 8);
        char what[256];
        const char *field = NULL;
        if (kind <= 1) {
            int k = kind == 0 ? 1 : t_rng_int(&r, 2, 3);
            for (int i = 0; i < k; i++)
                field = mutate(&r, &p);
        }
        if (kind == 7)
            field = mutate(&r, &p);
        if (field) {
            int f = 0;
            while (f < n_fields && strcmp(field_names[f], field) != 0)
                f++;
            if (f == n_fields && n_fields < 32)
                field_names[n_fields++] = field;
            if (f < 32)
                field_draws[f]++;
        }
        v.valid = 1;
        v.words[0] = '\0';
        model_problem(&p, &m, &v);
        const mshape *sized = m.ok ? &m : &bm;
        char desc[512];
        t_describe(&p, NULL, desc, sizeof desc);

        if (kind == 7) { /* clattn_supports on the problem alone */
            if (v.valid) {
                st.left_valid++;
                continue;
            }
            st.by_kind[7]++;
            clattn_status s = clattn_supports(e.ctx, &p);
            char label[1100];
            snprintf(label, sizeof label, "draw %ld supports(%s) [%s]", n, field, desc);
            check_refusal(&e, &st, label, s, &v, NULL, 0);
            continue;
        }
        int api = kind <= 1 ? pick(&r, 3) : kind <= 3 ? 0 : kind == 4 ? 1 : kind == 5 ? 2 : pick(&r, 3);
        if (api == 2 && kind != 5 && p.path != CLATTN_PATH_AUTO &&
            p.path != CLATTN_PATH_THREE_STAGE && m.ok)
            api = 1; /* keep the weights call about the drawn fault */
        st.by_kind[kind]++;
        st.by_api[api]++;
        if (api == 2 && (p.path == CLATTN_PATH_FUSED || p.path == CLATTN_PATH_SPLIT_KV))
            v_bad(&v, "path"); /* clattn.h: weights need AUTO or THREE_STAGE */

        if (api == 0) {
            devset d;
            plan_slots(&r, sized, &d, with_opt, e.align);
            cl_uint num_wait = 0;
            const cl_event *wait = NULL;
            cl_event null_ev[2] = {NULL, NULL};
            int null_problem = 0, null_buffers = 0;
            what[0] = '\0';
            if (kind == 2) {
                buffer_fault(&r, sized, &d, e.align, what, sizeof what);
            } else if (kind == 3) {
                num_wait = (cl_uint)t_rng_int(&r, 1, 2);
                wait = chance(&r, 0.5) ? NULL : null_ev;
                v_bad(&v, wait ? "wait" : "wait|num_wait");
                snprintf(what, sizeof what, "num_wait %u, wait %s", num_wait,
                         wait ? "{NULL}" : "NULL");
            } else if (kind == 6) {
                if (chance(&r, 0.5))
                    null_problem = 1, v_bad(&v, "problem");
                else
                    null_buffers = 1, v_bad(&v, "buffers");
                snprintf(what, sizeof what, "%s NULL", null_problem ? "problem" : "buffers");
            }
            if (!null_buffers && m.ok)
                model_buffers(&m, &d, &v);
            if (v.valid) {
                st.left_valid++;
                continue;
            }
            if (devset_create(&e, &d, (uint64_t)n) != 0) {
                devset_release(&d);
                break;
            }
            clattn_buffers b = {d.mem[S_Q], d.mem[S_K], d.mem[S_V], d.mem[S_O],
                                d.mem[S_MASK], d.mem[S_KVL], d.mem[S_LSE]};
            cl_event done = (cl_event)(uintptr_t)1; /* must be reset to NULL */
            clattn_status s = clattn_forward(e.ctx, null_problem ? NULL : &p,
                                             null_buffers ? NULL : &b, num_wait, wait, &done);
            if (s == CLATTN_OK && done)
                clWaitForEvents(1, &done);
            T_CL(clFinish(e.q));
            int changed = devset_changed(&e, &d);
            char label[1100];
            snprintf(label, sizeof label, "draw %ld device %s%s%s [%s]", n, field ? field : "",
                     what[0] ? ": " : "", what, desc);
            check_refusal(&e, &st, label, s, &v, s == CLATTN_OK ? NULL : done, changed);
            if (s == CLATTN_OK && done)
                clReleaseEvent(done);
            devset_release(&d);
            continue;
        }

        /* host APIs: a problem the model refuses, or the valid base with a host fault */
        if (kind <= 1 && m.ok) {
            st.left_valid++;
            continue;
        }
        hostset h;
        if (hostset_make(&h, sized, with_opt, &r) != 0) {
            T_FAIL("out of host memory");
            hostset_free(&h);
            break;
        }
        clattn_host_buffers hb = {h.a[S_Q], h.a[S_K], h.a[S_V], h.a[S_O],
                                  h.a[S_MASK], h.a[S_KVL], h.a[S_LSE]};
        float *probs = h.probs;
        int null_buffers = 0;
        what[0] = '\0';
        if (kind == 4 || kind == 5) {
            switch (pick(&r, 4)) {
            case 0: {
                const void **in[3] = {&hb.q, &hb.k, &hb.v};
                int i = pick(&r, api == 1 ? 4 : 3);
                if (i < 3)
                    *in[i] = NULL;
                else
                    hb.o = NULL;
                v_bad(&v, slot_name[i]);
                snprintf(what, sizeof what, "%s NULL", slot_name[i]);
                break;
            }
            case 1: {
                static const int32_t bad[] = {-1, INT32_MIN, INT32_MAX};
                int32_t *kvl = h.a[S_KVL];
                if (!kvl) {
                    kvl = malloc(sizeof(int32_t) * (size_t)sized->B);
                    if (!kvl)
                        break;
                    h.a[S_KVL] = kvl;
                    for (int b = 0; b < sized->B; b++)
                        kvl[b] = t_rng_int(&r, 0, sized->Skv);
                    hb.kv_lens = kvl;
                }
                int b = pick(&r, sized->B);
                int which = pick(&r, 4);
                kvl[b] = which < 3 ? bad[which] : sized->Skv + 1;
                v_bad(&v, "kv_lens");
                snprintf(what, sizeof what, "kv_lens[%d] = %d", b, (int)kvl[b]);
                break;
            }
            case 2:
                if (api == 2) {
                    probs = NULL;
                    v_bad(&v, "probs");
                    snprintf(what, sizeof what, "probs NULL");
                } else {
                    null_buffers = 1;
                    v_bad(&v, "buffers");
                    snprintf(what, sizeof what, "buffers NULL");
                }
                break;
            default:
                if (api == 2) {
                    static const clattn_path wp[] = {CLATTN_PATH_FUSED, CLATTN_PATH_SPLIT_KV};
                    p.path = wp[pick(&r, 2)];
                    v_bad(&v, "path");
                    snprintf(what, sizeof what, "weights with path %d", (int)p.path);
                } else {
                    hb.o = NULL;
                    v_bad(&v, "o");
                    snprintf(what, sizeof what, "o NULL");
                }
                break;
            }
        } else if (kind == 6) {
            null_buffers = 1;
            v_bad(&v, "buffers");
            snprintf(what, sizeof what, "buffers NULL");
        }
        if (v.valid) {
            st.left_valid++;
            hostset_free(&h);
            continue;
        }
        clattn_status s = api == 1
                              ? clattn_forward_host(e.ctx, &p, null_buffers ? NULL : &hb)
                              : clattn_attention_weights_host(e.ctx, &p, null_buffers ? NULL : &hb,
                                                              probs);
        char label[1100];
        snprintf(label, sizeof label, "draw %ld %s %s%s%s [%s]", n,
                 api == 1 ? "host" : "weights", field ? field : "", what[0] ? ": " : "", what,
                 desc);
        check_refusal(&e, &st, label, s, &v, NULL, hostset_changed(&h));
        hostset_free(&h);
    }
    t_log("descriptors_invalid: %ld draws, %ld refusals checked, %ld left valid by their "
          "mutation (not run here)",
          st.draws, st.invalid_checked, st.left_valid);
    t_log("  by API: device %ld, host %ld, weights %ld; supports-only %ld", st.by_api[0],
          st.by_api[1], st.by_api[2], st.by_kind[7]);
    for (int k = 0; k < 8; k++)
        t_log("  kind %-22s %ld", kind_name[k], st.by_kind[k]);
    for (int f = 0; f < n_fields; f++)
        t_log("  mutated field %-16s %ld", field_names[f], field_draws[f]);
    t_log("  interleaved (injective but not nested) views met: %d", interleaved_views);
    t_log("  outcomes: accepted-invalid %ld, wrong status %ld, message naming nothing %ld, "
          "buffers modified %ld",
          st.accepted_invalid, st.wrong_status, st.bad_message, st.modified);
    fuzz_env_free(&e);
}

/* ---- valid draws ----------------------------------------------------------- */

/* Runs one valid problem through device buffers laid out by random slots
 * (plain buffers or sub-buffers of one arena, never overlapping) and checks
 * O, LSE and that no other byte changed. */
static void run_valid_device(fuzz_env *e, stats *st, t_rng *r, const char *label, t_tensors *t,
                             const mshape *m)
{
    devset d;
    memset(&d, 0, sizeof d);
    const void *data[S_N] = {t->q, t->k, t->v, t->o, t->mask, t->kv_lens, t->lse};
    const size_t sizes[S_N] = {(size_t)m->bytes[S_Q], (size_t)m->bytes[S_K],
                               (size_t)m->bytes[S_V], (size_t)t->o_alloc * t->esz,
                               t->mask ? (size_t)m->bytes[S_MASK] : 0,
                               t->kv_lens ? (size_t)m->bytes[S_KVL] : 0,
                               t->lse ? sizeof(float) * (size_t)(t->lse_n + T_GUARD) : 0};
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
    model_buffers(m, &d, &v);
    if (!v.valid) {
        T_FAIL("%s: the model refuses its own valid layout (%s)", label, v.words);
        return;
    }
    if (devset_create(e, &d, 7) != 0) {
        devset_release(&d);
        return;
    }
    clattn_buffers b = {d.mem[S_Q], d.mem[S_K], d.mem[S_V], d.mem[S_O],
                        d.mem[S_MASK], d.mem[S_KVL], d.mem[S_LSE]};
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
        clattn_host_buffers in = t_tensors_host(t);
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

void case_descriptors_valid(void)
{
    fuzz_env e;
    fuzz_env_init(&e);
    if (!e.ctx) {
        fuzz_env_free(&e);
        return;
    }
    const long draws = long_run() ? 2000 : 240;
    const uint64_t seed = fuzz_seed(0xa11d0c5u);
    t_log("descriptors_valid: %ld draws, seed 0x%llx", draws, (unsigned long long)seed);
    stats st;
    memset(&st, 0, sizeof st);
    t_rng r;
    t_rng_seed(&r, seed);
    long per_path[4] = {0}, per_dtype[3] = {0}, with_flags[4] = {0}, strided = 0, kvl_oob = 0;
    for (long n = 0; n < draws && t_failures < 20; n++) {
        st.draws++;
        clattn_problem p;
        draw_valid(&r, &p, 1);
        verdict v = {1, ""};
        mshape m;
        model_problem(&p, &m, &v);
        if (!v.valid) {
            T_FAIL("draw %ld: the generator drew a problem the model refuses (%s)", n, v.words);
            continue;
        }
        int api = pick(&r, 3); /* device, host, weights */
        if (api == 2 && p.path != CLATTN_PATH_AUTO && p.path != CLATTN_PATH_THREE_STAGE)
            api = 1;
        unsigned flags = 0;
        /* the device API clamps kv_lens entries outside 0..seq_kv */
        const int kvl_out = api == 0 && chance(&r, 0.2);
        if (chance(&r, 0.5))
            flags |= T_WITH_MASK;
        if (kvl_out || chance(&r, 0.4))
            flags |= T_WITH_KV_LENS | (!kvl_out && chance(&r, 0.5) ? T_NAN_BEYOND_LEN : 0);
        if (chance(&r, 0.6))
            flags |= T_WITH_LSE;
        t_tensors t;
        if (t_tensors_init(&t, &p, flags, 0x7a1d0000u + (uint64_t)n) != 0)
            break;
        if (kvl_out) {
            static const int32_t oob[] = {-1, INT32_MIN, INT32_MAX};
            int b = pick(&r, p.batch), w = pick(&r, 4);
            t.kv_lens[b] = w < 3 ? oob[w] : p.seq_kv + t_rng_int(&r, 1, 5);
            kvl_oob++;
        }
        st.by_api[api]++;
        per_path[p.path]++;
        per_dtype[p.dtype]++;
        with_flags[0] += t.mask != NULL;
        with_flags[1] += t.kv_lens != NULL;
        with_flags[2] += t.lse != NULL;
        with_flags[3] += p.windowed != 0;
        strided += p.q_strides.seq || p.q_strides.head || p.q_strides.batch;
        char desc[512], label[1200];
        clattn_host_buffers hb = t_tensors_host(&t);
        t_describe(&p, &hb, desc, sizeof desc);
        snprintf(label, sizeof label, "draw %ld %s", n,
                 api == 0 ? "device" : api == 1 ? "host" : "weights");
        clattn_status sup = clattn_supports(e.ctx, &p);
        if (sup == CLATTN_ERR_UNSUPPORTED) {
            st.skipped_unsupported++;
            t_skip("%s [%s]: %s", label, desc, clattn_last_error(e.ctx));
            t_tensors_free(&t);
            continue;
        }
        if (sup != CLATTN_OK) {
            st.refused_valid++;
            T_FAIL("%s [%s]: clattn_supports -> %s: %s (the model finds it valid)", label, desc,
                   clattn_status_string(sup), clattn_last_error(e.ctx));
            t_tensors_free(&t);
            continue;
        }
        st.valid_run++;
        char full[1800];
        snprintf(full, sizeof full, "%s [%s]", label, desc);
        t_tensors_poison(&t);
        if (api == 0) {
            run_valid_device(&e, &st, &r, full, &t, &m);
        } else if (api == 1) {
            clattn_status s = t_run_host(e.ctx, &t);
            if (s != CLATTN_OK) {
                st.refused_valid++;
                T_FAIL("%s: clattn_forward_host -> %s: %s (the model finds it valid)", full,
                       clattn_status_string(s), clattn_last_error(e.ctx));
            } else {
                int before = t_failures;
                t_verify(full, &t, t_tolerance_for(p.dtype));
                st.wrong_result += t_failures != before;
            }
        } else {
            size_t np = (size_t)p.batch * p.heads * p.seq_q * p.seq_kv;
            float *probs = malloc(sizeof(float) * np);
            if (!probs) {
                T_FAIL("out of host memory");
                t_tensors_free(&t);
                break;
            }
            for (size_t x = 0; x < np; x++)
                probs[x] = NAN;
            clattn_status s = clattn_attention_weights_host(e.ctx, &p, &hb, probs);
            if (s != CLATTN_OK) {
                st.refused_valid++;
                T_FAIL("%s: clattn_attention_weights_host -> %s: %s (the model finds it valid)",
                       full, clattn_status_string(s), clattn_last_error(e.ctx));
            } else {
                int before = t_failures;
                t_verify_probs(full, &p, &hb, probs, t_tolerance_for(p.dtype));
                t_verify(full, &t, t_tolerance_for(p.dtype));
                st.wrong_result += t_failures != before;
            }
            free(probs);
        }
        t_tensors_free(&t);
    }
    clattn_stats cs;
    memset(&cs, 0, sizeof cs);
    T_CHECK(clattn_context_stats(e.ctx, &cs) == CLATTN_OK, "clattn_context_stats: %s",
            clattn_last_error(e.ctx));
    t_log("descriptors_valid: %ld draws, %ld run (%ld unsupported); device %ld, host %ld, "
          "weights %ld",
          st.draws, st.valid_run, st.skipped_unsupported, st.by_api[0], st.by_api[1],
          st.by_api[2]);
    t_log("  paths auto/fused/three_stage/split_kv %ld/%ld/%ld/%ld; f32/f16/bf16 %ld/%ld/%ld",
          per_path[0], per_path[1], per_path[2], per_path[3], per_dtype[0], per_dtype[1],
          per_dtype[2]);
    t_log("  with mask %ld, kv_lens %ld (%ld outside 0..seq_kv), lse %ld, windowed %ld, "
          "strided q %ld",
          with_flags[0], with_flags[1], kvl_oob, with_flags[2], with_flags[3], strided);
    t_log("  outcomes: refused-valid %ld, wrong results %ld; programs built %llu, loaded %llu",
          st.refused_valid, st.wrong_result, (unsigned long long)cs.programs_built,
          (unsigned long long)cs.programs_loaded);
    fuzz_env_free(&e);
}
