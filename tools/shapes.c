/* attn-tune's shapes: the one-line syntax (see shapes.h) and shape files.
 * The parser takes any bytes: every line is either a shape, blank/comment,
 * or an error naming file:line. */
#define _POSIX_C_SOURCE 200809L /* fileno */
#include "shapes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Limits a shape must keep (the library's own, or what a tool can allocate). */
#define LIMIT_BATCH 4096
#define LIMIT_HEADS 4096
#define LIMIT_SEQ (1 << 20)
#define LIMIT_DIM 256
#define LIMIT_WINDOW (1 << 20)
#define LIMIT_TENSOR ((int64_t)1 << 31) /* elements of one tensor */
#define TOKEN_MAX 64

/* Text for a message: printable ASCII kept, other bytes as \xHH, at most
 * max characters of s. */
void tool_shape_quote_max(const char *s, size_t n, size_t max, char *buf, size_t size)
{
    size_t used = 0;
    for (size_t i = 0; i < n && used + 8 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i >= max) {
            used += (size_t)snprintf(buf + used, size - used, "...");
            break;
        }
        if (ch >= 0x20 && ch < 0x7f)
            buf[used++] = (char)ch;
        else
            used += (size_t)snprintf(buf + used, size - used, "\\x%02x", ch);
    }
    buf[used] = '\0';
}

/* A token: at most ~40 characters. */
void tool_shape_quote(const char *s, size_t n, char *buf, size_t size)
{
    tool_shape_quote_max(s, n, 40, buf, size);
}

/* Digits only (no sign, no blanks), at most 9 of them, within lo..hi. */
static int parse_count(const char *s, size_t n, long lo, long hi, long *out)
{
    long v = 0;
    if (n == 0 || n > 9) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* A window side: digits, or '-' and digits (any negative = unbounded). */
static int parse_side(const char *s, size_t n, int *out)
{
    long v;
    int neg = n > 0 && s[0] == '-';
    if (!parse_count(s + neg, n - (size_t)neg, 0, LIMIT_WINDOW, &v)) return 0;
    *out = neg ? -1 : (int)v;
    return 1;
}

int tool_shape_ieq(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return 1;
}

static int ieq(const char *a, size_t n, const char *b)
{
    return tool_shape_ieq(a, n, b);
}

enum { F_B, F_H, F_HKV, F_S, F_SQ, F_SKV, F_D, F_DV, F_COUNT };

/* Numeric tokens: prefix letters and a count; longer prefixes first. */
static const struct {
    const char *prefix, *display;
    int field;
    long lo, hi;
} k_numeric[] = {
    {"hkv", "Hkv", F_HKV, 1, LIMIT_HEADS}, {"skv", "Skv", F_SKV, 1, LIMIT_SEQ},
    {"sq", "Sq", F_SQ, 1, LIMIT_SEQ},      {"dv", "Dv", F_DV, 1, LIMIT_DIM},
    {"b", "B", F_B, 1, LIMIT_BATCH},       {"h", "H", F_H, 1, LIMIT_HEADS},
    {"s", "S", F_S, 1, LIMIT_SEQ},         {"d", "D", F_D, 1, LIMIT_DIM},
};

typedef struct parse_state {
    long v[F_COUNT];
    int set[F_COUNT];
    int causal_set, window_set, dtype_set;
    /* K/V storage: formats (k, v), group, scale type, per_head, page size */
    int kfmt_set, vfmt_set, group_set, scales_set, per_head_set, page_set;
    int group, page;
    clattn_dtype scales;
    tool_shape *out;
} parse_state;

/* K/V storage formats by name (clattn_kv_format); the first name of each is
 * the canonical one. */
static const struct {
    const char *name;
    clattn_kv_format f;
} k_formats[] = {
    {"f32", CLATTN_KV_F32},           {"fp32", CLATTN_KV_F32},
    {"f16", CLATTN_KV_F16},           {"fp16", CLATTN_KV_F16},
    {"bf16", CLATTN_KV_BF16},         {"int8", CLATTN_KV_INT8},
    {"int4", CLATTN_KV_INT4},         {"q8_0", CLATTN_KV_Q8_0},
    {"q4_0", CLATTN_KV_Q4_0},         {"fp8_e4m3", CLATTN_KV_FP8_E4M3},
    {"e4m3", CLATTN_KV_FP8_E4M3},     {"fp8_e5m2", CLATTN_KV_FP8_E5M2},
    {"e5m2", CLATTN_KV_FP8_E5M2},
};

static const char *format_name(clattn_kv_format f)
{
    for (size_t i = 0; i < sizeof k_formats / sizeof k_formats[0]; i++)
        if (k_formats[i].f == f) return k_formats[i].name;
    return "?";
}

static int has_groups(clattn_kv_format f) { return f == CLATTN_KV_INT8 || f == CLATTN_KV_INT4; }

static int is_fp8(clattn_kv_format f)
{
    return f == CLATTN_KV_FP8_E4M3 || f == CLATTN_KV_FP8_E5M2;
}

/* "'TOKEN': what" into err; returns -1. */
static int fail(char *err, size_t size, const char *tok, size_t n, const char *what)
{
    char q[200];
    tool_shape_quote(tok, n, q, sizeof q);
    snprintf(err, size, "'%s': %s", q, what);
    return -1;
}

/* A whole-shape message into err; returns -1. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail_shape(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_token(parse_state *ps, const char *tok, size_t n, char *err, size_t esz)
{
    const char *eq = memchr(tok, '=', n);
    clattn_problem *p = &ps->out->p;
    if (eq) {
        size_t kn = (size_t)(eq - tok), vn = n - kn - 1;
        const char *val = eq + 1;
        if (ieq(tok, kn, "dtype")) {
            if (ps->dtype_set) return fail(err, esz, tok, n, "dtype given twice");
            ps->dtype_set = 1;
            if (ieq(val, vn, "f32") || ieq(val, vn, "fp32") || ieq(val, vn, "float"))
                p->dtype = CLATTN_F32;
            else if (ieq(val, vn, "f16") || ieq(val, vn, "fp16") || ieq(val, vn, "half"))
                p->dtype = CLATTN_F16;
            else if (ieq(val, vn, "bf16"))
                p->dtype = CLATTN_BF16;
            else
                return fail(err, esz, tok, n, "dtype must be f32, f16 or bf16");
            return 0;
        }
        if (ieq(tok, kn, "kv") || ieq(tok, kn, "k") || ieq(tok, kn, "v")) {
            const int k = !ieq(tok, kn, "v"), v = !ieq(tok, kn, "k");
            size_t i;
            if ((k && ps->kfmt_set) || (v && ps->vfmt_set))
                return fail(err, esz, tok, n, "K/V storage format given twice");
            for (i = 0; i < sizeof k_formats / sizeof k_formats[0]; i++)
                if (ieq(val, vn, k_formats[i].name)) break;
            if (i == sizeof k_formats / sizeof k_formats[0])
                return fail(err, esz, tok, n,
                            "K/V storage must be f32, f16, bf16, int8, int4, q8_0, q4_0, "
                            "fp8_e4m3 or fp8_e5m2");
            if (k) p->k_storage.format = k_formats[i].f;
            if (v) p->v_storage.format = k_formats[i].f;
            ps->kfmt_set |= k;
            ps->vfmt_set |= v;
            return 0;
        }
        if (ieq(tok, kn, "group")) {
            long g;
            if (ps->group_set) return fail(err, esz, tok, n, "group given twice");
            ps->group_set = 1;
            if (!parse_count(val, vn, 32, 128, &g) || (g != 32 && g != 64 && g != 128))
                return fail(err, esz, tok, n, "group (channels per scale) must be 32, 64 or 128");
            ps->group = (int)g;
            return 0;
        }
        if (ieq(tok, kn, "scales")) {
            if (ps->scales_set) return fail(err, esz, tok, n, "scales given twice");
            ps->scales_set = 1;
            if (ieq(val, vn, "f32") || ieq(val, vn, "fp32"))
                ps->scales = CLATTN_F32;
            else if (ieq(val, vn, "f16") || ieq(val, vn, "fp16"))
                ps->scales = CLATTN_F16;
            else
                return fail(err, esz, tok, n, "scales must be f32 or f16");
            return 0;
        }
        if (ieq(tok, kn, "page")) {
            long pg;
            if (ps->page_set) return fail(err, esz, tok, n, "page given twice");
            ps->page_set = 1;
            if (!parse_count(val, vn, 1, 256, &pg) || (pg & (pg - 1)))
                return fail(err, esz, tok, n, "page (keys per page) must be a power of two "
                                              "from 1 to 256");
            ps->page = (int)pg;
            return 0;
        }
        if (ieq(tok, kn, "window")) {
            const char *comma = memchr(val, ',', vn);
            if (ps->window_set) return fail(err, esz, tok, n, "window given twice");
            ps->window_set = 1;
            if (!comma || !parse_side(val, (size_t)(comma - val), &p->window_left) ||
                !parse_side(comma + 1, vn - (size_t)(comma - val) - 1, &p->window_right))
                return fail(err, esz, tok, n,
                            "window expects L,R (keys back and ahead; -1 = unbounded)");
            p->windowed = 1;
            return 0;
        }
        return fail(err, esz, tok, n,
                    "unknown setting (dtype=, window=L,R, kv=, k=, v=, group=, scales= and "
                    "page= are known)");
    }
    if (ieq(tok, n, "per_head")) {
        if (ps->per_head_set) return fail(err, esz, tok, n, "per_head given twice");
        ps->per_head_set = 1;
        return 0;
    }
    if (ieq(tok, n, "causal") || ieq(tok, n, "causal_br") || ieq(tok, n, "causal_tl")) {
        if (ps->causal_set) return fail(err, esz, tok, n, "causal given twice");
        ps->causal_set = 1;
        p->causal = ieq(tok, n, "causal_tl") ? CLATTN_CAUSAL_TOP_LEFT : CLATTN_CAUSAL_BOTTOM_RIGHT;
        return 0;
    }
    for (size_t i = 0; i < sizeof k_numeric / sizeof k_numeric[0]; i++) {
        size_t pl = strlen(k_numeric[i].prefix);
        int f = k_numeric[i].field;
        long v;
        /* A sign counts as a (bad) number, so "B-1" says what B takes. */
        if (n <= pl || !ieq(tok, pl, k_numeric[i].prefix) ||
            !((tok[pl] >= '0' && tok[pl] <= '9') || tok[pl] == '-' || tok[pl] == '+'))
            continue;
        if (ps->set[f]) return fail(err, esz, tok, n, "given twice");
        if (!parse_count(tok + pl, n - pl, k_numeric[i].lo, k_numeric[i].hi, &v)) {
            char what[96];
            snprintf(what, sizeof what, "%s expects a whole number from %ld to %ld",
                     k_numeric[i].display, k_numeric[i].lo, k_numeric[i].hi);
            return fail(err, esz, tok, n, what);
        }
        ps->set[f] = 1;
        ps->v[f] = v;
        return 0;
    }
    return fail(err, esz, tok, n,
                "unknown token (expected Bn Hn Hkvn Sn Sqn Skvn Dn Dvn causal causal_tl "
                "window=L,R dtype=T kv=F k=F v=F group=N scales=T per_head page=N)");
}

/* The K/V storage settings, once the dims are known: each option must
 * apply to a format given, and the formats' row rules (clattn.h) hold. */
static int finish_storage(parse_state *ps, char *err, size_t esz)
{
    clattn_problem *p = &ps->out->p;
    clattn_kv_storage *st[2] = {&p->k_storage, &p->v_storage};
    const int dims[2] = {p->head_dim, p->head_dim_v};
    const char *const dn[2] = {"D", "Dv"};
    int grouped = 0, scaled = 0, fp8 = 0;
    for (int i = 0; i < 2; i++) {
        const clattn_kv_format f = st[i]->format;
        grouped |= has_groups(f);
        scaled |= has_groups(f) || is_fp8(f);
        fp8 |= is_fp8(f);
        if (f == CLATTN_KV_INT4 && dims[i] % 2)
            return fail_shape(err, esz, "int4 K/V needs an even %s (got %d)", dn[i], dims[i]);
        if ((f == CLATTN_KV_Q8_0 || f == CLATTN_KV_Q4_0) && dims[i] % 32)
            return fail_shape(err, esz, "%s K/V needs %s a multiple of 32 (got %d)",
                              format_name(f), dn[i], dims[i]);
        if (ps->group_set && has_groups(f) && dims[i] % ps->group)
            return fail_shape(err, esz, "group=%d does not divide %s%d", ps->group, dn[i],
                              dims[i]);
        if (has_groups(f) && ps->group_set) st[i]->group = ps->group;
        if ((has_groups(f) || is_fp8(f)) && ps->scales_set) st[i]->scale_dtype = ps->scales;
        if (is_fp8(f) && ps->per_head_set) st[i]->per_head = 1;
    }
    if (ps->group_set && !grouped)
        return fail_shape(err, esz, "group= is for int8 and int4 K/V (give kv=int8, say)");
    if (ps->scales_set && !scaled)
        return fail_shape(err, esz, "scales= is for int8, int4 and fp8 K/V");
    if (ps->per_head_set && !fp8)
        return fail_shape(err, esz, "per_head is for fp8 K/V");
    if (ps->page_set) {
        const int pages = (p->seq_kv + ps->page - 1) / ps->page;
        /* A page of its own for every sequence's every page. */
        const int64_t pool = (int64_t)p->batch * pages;
        if (pool > LIMIT_TENSOR - 1)
            return fail_shape(err, esz, "a pool of %lld pages is too large", (long long)pool);
        p->paged.enabled = 1;
        p->paged.page_size = ps->page;
        p->paged.max_pages_per_seq = pages;
        p->paged.num_pages = (int)pool;
    }
    return 1;
}

/* Whole-shape checks once every token is read. */
static int finish(parse_state *ps, char *err, size_t esz)
{
    clattn_problem *p = &ps->out->p;
    const long *v = ps->v;
    int64_t q, k, vv, o;
    if (!ps->set[F_H]) return fail_shape(err, esz, "missing H (query heads), e.g. H8");
    if (!ps->set[F_D]) return fail_shape(err, esz, "missing D (head_dim), e.g. D64");
    if (ps->set[F_S] && (ps->set[F_SQ] || ps->set[F_SKV]))
        return fail_shape(err, esz, "S sets both lengths: give S, or Sq and Skv");
    if (!ps->set[F_S] && !(ps->set[F_SQ] && ps->set[F_SKV]))
        return fail_shape(err, esz, "missing sequence lengths: S512, or Sq and Skv");
    p->batch = ps->set[F_B] ? (int)v[F_B] : 1;
    p->heads = (int)v[F_H];
    p->kv_heads = ps->set[F_HKV] ? (int)v[F_HKV] : p->heads;
    p->seq_q = (int)(ps->set[F_S] ? v[F_S] : v[F_SQ]);
    p->seq_kv = (int)(ps->set[F_S] ? v[F_S] : v[F_SKV]);
    p->head_dim = (int)v[F_D];
    p->head_dim_v = ps->set[F_DV] ? (int)v[F_DV] : p->head_dim;
    if (p->kv_heads > p->heads || p->heads % p->kv_heads != 0)
        return fail_shape(err, esz, "H%d is not a multiple of Hkv%d", p->heads, p->kv_heads);
    if (finish_storage(ps, err, esz) < 0) return -1;
    tool_shape_elements(ps->out, &q, &k, &vv, &o);
    if (k > q) q = k;
    if (vv > q) q = vv;
    if (o > q) q = o;
    if (q > LIMIT_TENSOR)
        return fail_shape(err, esz, "a tensor of %lld elements is too large (limit %lld)",
                          (long long)q, (long long)LIMIT_TENSOR);
    return 1;
}

int tool_shape_parse(const char *line, tool_shape *out, char *err, size_t err_size)
{
    parse_state ps;
    const char *s = line;
    int tokens = 0;
    memset(&ps, 0, sizeof ps);
    memset(out, 0, sizeof *out);
    ps.out = out;
    err[0] = '\0';
    for (;;) {
        size_t n = 0;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' || *s == '\f') s++;
        if (*s == '\0' || *s == '#') break;
        while (s[n] && s[n] != '#' && s[n] != ' ' && s[n] != '\t' && s[n] != '\r' &&
               s[n] != '\v' && s[n] != '\f')
            n++;
        if (n > TOKEN_MAX) return fail(err, err_size, s, n, "token too long");
        if (parse_token(&ps, s, n, err, err_size) < 0) return -1;
        tokens++;
        s += n;
    }
    if (tokens == 0) return 0;
    return finish(&ps, err, err_size);
}

int tool_shape_list_add(tool_shape_list *list, const tool_shape *s)
{
    if (list->count >= SHAPE_LIST_MAX) return 0;
    list->items[list->count++] = *s;
    return 1;
}

/* Reads one line of at most SHAPE_LINE_MAX bytes. Returns 1 with a line, 0 at
 * the end, -1 for a line too long or holding a NUL byte. A bad line ends the
 * file's reading, so its rest is not read: a device such as /dev/zero named
 * as a shape file would otherwise be read forever. */
static int read_line(FILE *f, char *buf, int *nul)
{
    size_t n = 0;
    int ch, got = 0, too_long = 0;
    *nul = 0;
    while (!*nul && (ch = getc(f)) != EOF) {
        got = 1;
        if (ch == '\n') break;
        if (ch == '\0') *nul = 1;
        if (n == SHAPE_LINE_MAX) {
            too_long = 1;
            break;
        }
        buf[n++] = (char)ch;
    }
    buf[n] = '\0';
    if (!got) return 0;
    return too_long || *nul ? -1 : 1;
}

int tool_shape_file(const char *path, tool_shape_list *list)
{
    static char line[SHAPE_LINE_MAX + 1];
    FILE *f = fopen(path, "rb");
    int lineno = 0, rc, nul, found = 0;
    char qpath[1200];
    tool_shape_quote_max(path, strlen(path), 256, qpath, sizeof qpath);
    if (!f) {
        fprintf(stderr, "attn-tune: cannot open shape file %s: %s\n", qpath, strerror(errno));
        return 0;
    }
    {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "attn-tune: shape file %s is a directory\n", qpath);
            fclose(f);
            return 0;
        }
    }
    while ((rc = read_line(f, line, &nul)) != 0) {
        tool_shape s;
        char err[400];
        int got;
        lineno++;
        if (rc < 0) {
            fprintf(stderr, "attn-tune: %s:%d: %s\n", qpath, lineno,
                    nul ? "NUL byte in line" : "line longer than 1024 characters");
            fclose(f);
            return 0;
        }
        got = tool_shape_parse(line, &s, err, sizeof err);
        if (got < 0) {
            fprintf(stderr, "attn-tune: %s:%d: %s\n", qpath, lineno, err);
            fclose(f);
            return 0;
        }
        if (got == 0) continue;
        if (!tool_shape_list_add(list, &s)) {
            fprintf(stderr, "attn-tune: %s:%d: more than %d shapes\n", qpath, lineno,
                    SHAPE_LIST_MAX);
            fclose(f);
            return 0;
        }
        found++;
    }
    if (ferror(f)) {
        fprintf(stderr, "attn-tune: %s: read error\n", qpath);
        fclose(f);
        return 0;
    }
    fclose(f);
    if (!found) {
        fprintf(stderr, "attn-tune: %s: no shapes in the file\n", qpath);
        return 0;
    }
    return 1;
}

void tool_shape_format(const tool_shape *s, char *buf, size_t size)
{
    const clattn_problem *p = &s->p;
    int n;
    size_t used;
    n = snprintf(buf, size, "B%d H%d", p->batch, p->heads);
    if (p->kv_heads != p->heads) n += snprintf(buf + n, size - (size_t)n, " Hkv%d", p->kv_heads);
    if (p->seq_q == p->seq_kv)
        n += snprintf(buf + n, size - (size_t)n, " S%d", p->seq_q);
    else
        n += snprintf(buf + n, size - (size_t)n, " Sq%d Skv%d", p->seq_q, p->seq_kv);
    n += snprintf(buf + n, size - (size_t)n, " D%d", p->head_dim);
    if (p->head_dim_v != p->head_dim)
        n += snprintf(buf + n, size - (size_t)n, " Dv%d", p->head_dim_v);
    used = (size_t)n;
    if (p->causal == CLATTN_CAUSAL_BOTTOM_RIGHT && used < size)
        used += (size_t)snprintf(buf + used, size - used, " causal");
    if (p->causal == CLATTN_CAUSAL_TOP_LEFT && used < size)
        used += (size_t)snprintf(buf + used, size - used, " causal_tl");
    if (p->windowed && used < size)
        used += (size_t)snprintf(buf + used, size - used, " window=%d,%d",
                                 p->window_left < 0 ? -1 : p->window_left,
                                 p->window_right < 0 ? -1 : p->window_right);
    if (p->dtype != CLATTN_F32 && used < size)
        used += (size_t)snprintf(buf + used, size - used, " dtype=%s",
                                 p->dtype == CLATTN_F16 ? "f16" : "bf16");
    if (p->k_storage.format != CLATTN_KV_DEFAULT && p->k_storage.format == p->v_storage.format &&
        used < size)
        used += (size_t)snprintf(buf + used, size - used, " kv=%s",
                                 format_name(p->k_storage.format));
    else {
        if (p->k_storage.format != CLATTN_KV_DEFAULT && used < size)
            used += (size_t)snprintf(buf + used, size - used, " k=%s",
                                     format_name(p->k_storage.format));
        if (p->v_storage.format != CLATTN_KV_DEFAULT && used < size)
            used += (size_t)snprintf(buf + used, size - used, " v=%s",
                                     format_name(p->v_storage.format));
    }
    {
        const clattn_kv_storage *k = &p->k_storage, *v = &p->v_storage;
        const int group = k->group ? k->group : v->group;
        if (group && used < size)
            used += (size_t)snprintf(buf + used, size - used, " group=%d", group);
        if ((k->scale_dtype == CLATTN_F16 || v->scale_dtype == CLATTN_F16) && used < size)
            used += (size_t)snprintf(buf + used, size - used, " scales=f16");
        if ((k->per_head || v->per_head) && used < size)
            used += (size_t)snprintf(buf + used, size - used, " per_head");
    }
    if (p->paged.enabled && used < size)
        snprintf(buf + used, size - used, " page=%d", p->paged.page_size);
}

double tool_shape_flops(const tool_shape *s)
{
    const clattn_problem *p = &s->p;
    double pairs = 0;
    for (int64_t i = 0; i < p->seq_q; i++) {
        /* Row i sees keys lo..hi (inclusive) of 0..seq_kv-1. */
        int64_t diag = i + p->seq_kv - p->seq_q; /* i' of clattn.h, no kv_lens */
        int64_t lo = 0, hi = p->seq_kv - 1;
        if (p->causal == CLATTN_CAUSAL_BOTTOM_RIGHT && diag < hi) hi = diag;
        if (p->causal == CLATTN_CAUSAL_TOP_LEFT && i < hi) hi = i;
        if (p->windowed) {
            if (p->window_left >= 0 && diag - p->window_left > lo) lo = diag - p->window_left;
            if (p->window_right >= 0 && diag + p->window_right < hi)
                hi = diag + p->window_right;
        }
        if (hi >= lo) pairs += (double)(hi - lo + 1);
    }
    return 2.0 * (double)(p->head_dim + p->head_dim_v) * (double)p->batch * (double)p->heads *
           pairs;
}

void tool_shape_elements(const tool_shape *s, int64_t *q, int64_t *k, int64_t *v, int64_t *o)
{
    const clattn_problem *p = &s->p;
    int64_t bh = (int64_t)p->batch * p->heads, bkv = (int64_t)p->batch * p->kv_heads;
    /* Paged: the pool, whole pages of every sequence. */
    int64_t keys = p->paged.enabled ? (int64_t)p->paged.max_pages_per_seq * p->paged.page_size
                                    : p->seq_kv;
    *q = bh * p->seq_q * p->head_dim;
    *k = bkv * keys * p->head_dim;
    *v = bkv * keys * p->head_dim_v;
    *o = bh * p->seq_q * p->head_dim_v;
}
