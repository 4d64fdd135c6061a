/* The tuning db's text format, one entry a line:
 *
 *   clattn-tuning-db 1
 *   fingerprint <device fingerprint>
 *   kernel=fused dtype=0 d=64 dv=64 causal=1 windowed=0 mask=0 group=1 sq=1024 skv=1024 \
 *     | BLOCK_M=16 BLOCK_N=32 | median_ms=1.25 p20_ms=1.2 p80_ms=1.3 default_ms=2.5 \
 *     | lib=0.1.0 src=0123456789abcdef
 *
 * (one physical line per entry). Readable, diffable, and appendable: a tuner
 * appends entries as it measures them, and the last one wins on load. The
 * key's optional fields follow skv, in this order, only when non-zero:
 * feat=N (score features, clattn 1.0) and kv=N (K/V storage and paging,
 * clattn 1.1), so the entries of plain problems keep the 0.1 text and a db
 * written before a field existed loads with that field 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuning_db.h"

#define DB_HEADER "clattn-tuning-db 1\n"

int clattn__seq_bucket(int n)
{
    int b = 1;
    while (b < n && b < (1 << 30))
        b *= 2;
    return b;
}

void clattn__db_init(clattn__tuning_db *db) { memset(db, 0, sizeof *db); }

void clattn__db_free(clattn__tuning_db *db)
{
    free(db->entries);
    memset(db, 0, sizeof *db);
}

static int same_kind(const clattn__tune_key *a, const clattn__tune_key *b)
{
    return strcmp(a->kernel, b->kernel) == 0 && a->dtype == b->dtype &&
           a->head_dim == b->head_dim && a->head_dim_v == b->head_dim_v &&
           a->causal == b->causal && a->windowed == b->windowed &&
           a->has_mask == b->has_mask && a->group == b->group && a->features == b->features &&
           a->kv == b->kv;
}

static int same_key(const clattn__tune_key *a, const clattn__tune_key *b)
{
    return same_kind(a, b) && a->sq_bucket == b->sq_bucket && a->skv_bucket == b->skv_bucket;
}

int clattn__db_put(clattn__tuning_db *db, const clattn__tune_entry *e)
{
    for (size_t i = 0; i < db->count; ++i)
        if (same_key(&db->entries[i].key, &e->key)) {
            db->entries[i] = *e;
            return 0;
        }
    if (db->count == db->capacity) {
        size_t cap = db->capacity ? 2 * db->capacity : 32;
        clattn__tune_entry *g = realloc(db->entries, cap * sizeof *g);
        if (!g)
            return -1;
        db->entries = g;
        db->capacity = cap;
    }
    db->entries[db->count++] = *e;
    return 0;
}

static int log2i(int x)
{
    int l = 0;
    while (x > 1) {
        x >>= 1;
        ++l;
    }
    return l;
}

const clattn__tune_entry *clattn__db_find(const clattn__tuning_db *db,
                                          const clattn__tune_key *key, int *exact)
{
    const clattn__tune_entry *best = NULL;
    int best_d = 0;
    for (size_t i = 0; i < db->count; ++i) {
        const clattn__tune_entry *e = &db->entries[i];
        if (!same_kind(&e->key, key))
            continue;
        int d = abs(log2i(e->key.sq_bucket) - log2i(key->sq_bucket)) +
                abs(log2i(e->key.skv_bucket) - log2i(key->skv_bucket));
        if (!best || d < best_d) {
            best = e;
            best_d = d;
        }
    }
    if (exact)
        *exact = best && best_d == 0;
    return best;
}

/* clattn_kv_format's values by name (cl/common.h's K_FMT); [0]: the
 * problem's dtype. The values this file tells apart are spelled out here,
 * where clattn.h (and OpenCL with it) is not included. */
static const char *const kv_names[] = {"dtype", "f32",  "f16",  "bf16",     "int8",
                                       "int4",  "q8_0", "q4_0", "fp8_e4m3", "fp8_e5m2"};
#define KV_FORMATS ((unsigned)(sizeof kv_names / sizeof kv_names[0]))
enum { KV_INT8 = 4, KV_INT4 = 5, KV_FP8_E4M3 = 8, KV_FP8_E5M2 = 9 };

/* One tensor's part of a kv code: format, group code, fp16 scales, per head. */
static void kv_part(unsigned kv, int is_v, unsigned *fmt, unsigned *group, int *f16, int *ph)
{
    *fmt = kv >> (is_v ? CLATTN__KV_V_FMT_SHIFT : CLATTN__KV_K_FMT_SHIFT) & 0xfu;
    *group = kv >> (is_v ? CLATTN__KV_V_GROUP_SHIFT : CLATTN__KV_K_GROUP_SHIFT) & 3u;
    *f16 = (kv & (is_v ? CLATTN__KV_V_F16_SCALES : CLATTN__KV_K_F16_SCALES)) != 0;
    *ph = (kv & (is_v ? CLATTN__KV_V_PER_HEAD : CLATTN__KV_K_PER_HEAD)) != 0;
}

int clattn__db_kv_valid(unsigned kv)
{
    if (kv & ~CLATTN__KV_MAX)
        return 0;
    for (int is_v = 0; is_v < 2; ++is_v) {
        unsigned fmt, group;
        int f16, ph;
        kv_part(kv, is_v, &fmt, &group, &f16, &ph);
        const int grouped = fmt == KV_INT8 || fmt == KV_INT4,
                  fp8 = fmt == KV_FP8_E4M3 || fmt == KV_FP8_E5M2;
        if (fmt >= KV_FORMATS || (group && !grouped) || (f16 && !grouped && !fp8) ||
            (ph && !fp8))
            return 0;
    }
    return 1;
}

int clattn__db_kv_text(unsigned kv, char *buf, size_t size)
{
    char part[2][40];
    for (int is_v = 0; is_v < 2; ++is_v) {
        unsigned fmt, group;
        int f16, ph;
        kv_part(kv, is_v, &fmt, &group, &f16, &ph);
        snprintf(part[is_v], sizeof part[is_v], "%s%s%s%s",
                 fmt < KV_FORMATS ? kv_names[fmt] : "?",
                 group == 1 ? "/g32" : group == 2 ? "/g64" : group == 3 ? "/g128" : "",
                 f16 ? "/f16s" : "", ph ? "/head" : "");
    }
    const int same = strcmp(part[0], part[1]) == 0, plain = (kv & ~CLATTN__KV_PAGED) == 0;
    const char *paged = kv & CLATTN__KV_PAGED ? (plain ? "paged" : ",paged") : "";
    int n;
    if (plain)
        n = snprintf(buf, size, "%s", paged);
    else if (same)
        n = snprintf(buf, size, "%s%s", part[0], paged);
    else
        n = snprintf(buf, size, "k:%s,v:%s%s", part[0], part[1], paged);
    return n >= 0 && (size_t)n < size ? n : -1;
}

int clattn__db_param(const clattn__tune_entry *e, const char *name, int fallback)
{
    for (int i = 0; e && i < e->nparams; ++i)
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return fallback;
}

/* Times are written and read without the C library's number conversions:
 * those follow LC_NUMERIC, and an application running under a locale with a
 * decimal comma would write "1,25" and fail to read "1.25" (every entry
 * dropped as damaged). Microsecond resolution, plain digits. */
static void format_ms(double v, char out[32])
{
    /* NaN, negative, or beyond 1e9 ms (11 days: never a kernel's time, and
     * past it microseconds stop being exact in a double, so a value would
     * not survive a write and a read unchanged): written as 0. */
    if (!(v >= 0.0) || v >= 1e9)
        v = 0.0;
    const unsigned long long us = (unsigned long long)llround(v * 1e6);
    snprintf(out, 32, "%llu.%06llu", us / 1000000ull, us % 1000000ull);
}

int clattn__db_format_entry(const clattn__tune_entry *e, char *buf, size_t size)
{
    const clattn__tune_key *k = &e->key;
    char t[4][32];
    format_ms(e->median_ms, t[0]);
    format_ms(e->p20_ms, t[1]);
    format_ms(e->p80_ms, t[2]);
    format_ms(e->default_ms, t[3]);
    int n = snprintf(buf, size,
                     "kernel=%s dtype=%d d=%d dv=%d causal=%d windowed=%d mask=%d group=%d "
                     "sq=%d skv=%d |",
                     k->kernel, k->dtype, k->head_dim, k->head_dim_v, k->causal, k->windowed,
                     k->has_mask, k->group, k->sq_bucket, k->skv_bucket);
    /* Written only for feature problems: plain entries keep the 0.1 text. */
    if (k->features && n >= 0 && (size_t)n < size) {
        n -= 2; /* before " |" */
        n += snprintf(buf + n, size - (size_t)n, " feat=%u |", k->features);
    }
    if (k->kv && n >= 0 && (size_t)n < size) {
        n -= 2;
        n += snprintf(buf + n, size - (size_t)n, " kv=%u |", k->kv);
    }
    for (int i = 0; i < e->nparams && n >= 0 && (size_t)n < size; ++i)
        n += snprintf(buf + n, size - (size_t)n, " %s=%d", e->names[i], e->values[i]);
    if (n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n,
                      " | median_ms=%s p20_ms=%s p80_ms=%s default_ms=%s | lib=%s "
                      "src=%016llx\n",
                      t[0], t[1], t[2], t[3], e->lib,
                      (unsigned long long)e->src_hash);
    return n >= 0 && (size_t)n < size ? n : -1;
}

char *clattn__db_format(const clattn__tuning_db *db, size_t *len)
{
    size_t cap = 256 + strlen(db->fingerprint) + db->count * 2048;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    int n = snprintf(out, cap, DB_HEADER "fingerprint %s\n", db->fingerprint);
    size_t used = (size_t)n;
    for (size_t i = 0; i < db->count; ++i) {
        int m = clattn__db_format_entry(&db->entries[i], out + used, cap - used);
        if (m < 0) {
            free(out);
            return NULL;
        }
        used += (size_t)m;
    }
    *len = used;
    return out;
}

/* Splits "name=value" tokens of one section; returns tokens found. */
static int tokens(char *section, char **names, char **values, int max)
{
    int n = 0;
    char *p = section;
    for (;;) { /* not strtok: the library must stay thread-safe */
        p += strspn(p, " \t");
        if (!*p)
            break;
        char *tok = p;
        p += strcspn(p, " \t");
        if (*p)
            *p++ = '\0';
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || n == max)
            return -1;
        *eq = '\0';
        names[n] = tok;
        values[n] = eq + 1;
        ++n;
    }
    return n;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* digits[.digits][e[+-]digits], whatever the locale (see format_ms); older
 * files wrote %.6g, hence the exponent. */
static int parse_ms(const char *s, double *out)
{
    /* The fraction is read as an integer and divided once, so what
     * format_ms wrote reads back to the same microsecond. */
    double v = 0.0, frac = 0.0, scale = 1.0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; ++s, ++digits)
        v = v * 10.0 + (*s - '0');
    if (*s == '.')
        for (++s; *s >= '0' && *s <= '9'; ++s, ++digits)
            if (scale < 1e18) { /* digits beyond the 18th change nothing */
                frac = frac * 10.0 + (*s - '0');
                scale *= 10.0;
            }
    if (digits == 0)
        return -1;
    v += frac / scale;
    if (*s == 'e' || *s == 'E') {
        int sign = 1, ex = 0, exdigits = 0;
        ++s;
        if (*s == '+' || *s == '-')
            sign = *s++ == '-' ? -1 : 1;
        for (; *s >= '0' && *s <= '9' && exdigits < 4; ++s, ++exdigits)
            ex = ex * 10 + (*s - '0');
        if (exdigits == 0)
            return -1;
        v *= pow(10.0, sign * ex);
    }
    if (*s || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_entry(char *line, clattn__tune_entry *e)
{
    memset(e, 0, sizeof *e);
    char *sec[4];
    int ns = 0;
    for (char *p = line; ns < 4;) {
        sec[ns++] = p;
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    if (ns != 4)
        return -1;
    char *names[CLATTN__DB_MAX_PARAMS], *values[CLATTN__DB_MAX_PARAMS];
    int n = tokens(sec[0], names, values, 16);
    if (n < 10 || n > 12)
        return -1;
    clattn__tune_key *k = &e->key;
    int *ints[9] = {&k->dtype,    &k->head_dim, &k->head_dim_v, &k->causal,    &k->windowed,
                    &k->has_mask, &k->group,    &k->sq_bucket,  &k->skv_bucket};
    const char *want[10] = {"kernel", "dtype", "d",     "dv", "causal",
                            "windowed", "mask", "group", "sq", "skv"};
    for (int i = 0; i < 10; ++i)
        if (strcmp(names[i], want[i]) != 0)
            return -1;
    if (strlen(values[0]) == 0 || strlen(values[0]) >= sizeof k->kernel)
        return -1;
    strcpy(k->kernel, values[0]);
    for (int i = 1; i < 10; ++i)
        if (parse_int(values[i], 0, 1 << 30, ints[i - 1]) != 0)
            return -1;
    /* The score features (clattn 1.0), then the K/V storage (1.1); each
     * absent when zero, so an older line is a plain one. */
    int feat = 0, kv = 0, opt = 10;
    if (opt < n && strcmp(names[opt], "feat") == 0 &&
        parse_int(values[opt++], 1, 0xffff, &feat) != 0)
        return -1;
    if (opt < n && strcmp(names[opt], "kv") == 0 &&
        (parse_int(values[opt++], 1, (int)CLATTN__KV_MAX, &kv) != 0 ||
         !clattn__db_kv_valid((unsigned)kv)))
        return -1;
    if (opt != n)
        return -1;
    k->features = (unsigned)feat;
    k->kv = (unsigned)kv;
    /* Only what clattn__seq_bucket makes: any other value lies at log2
     * distance 0 from a real bucket and would pass for its exact entry. */
    if (clattn__seq_bucket(k->sq_bucket) != k->sq_bucket ||
        clattn__seq_bucket(k->skv_bucket) != k->skv_bucket)
        return -1;

    n = tokens(sec[1], names, values, CLATTN__DB_MAX_PARAMS);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; ++i) {
        if (strlen(names[i]) >= CLATTN__DB_NAME || parse_int(values[i], 0, 1 << 20, &e->values[i]))
            return -1;
        strcpy(e->names[i], names[i]);
    }
    e->nparams = n;

    n = tokens(sec[2], names, values, 16);
    const char *times[4] = {"median_ms", "p20_ms", "p80_ms", "default_ms"};
    double *tv[4] = {&e->median_ms, &e->p20_ms, &e->p80_ms, &e->default_ms};
    if (n != 4)
        return -1;
    for (int i = 0; i < 4; ++i)
        if (strcmp(names[i], times[i]) != 0 || parse_ms(values[i], tv[i]) != 0)
            return -1;

    n = tokens(sec[3], names, values, 16);
    if (n != 2 || strcmp(names[0], "lib") != 0 || strcmp(names[1], "src") != 0 ||
        strlen(values[0]) >= sizeof e->lib)
        return -1;
    strcpy(e->lib, values[0]);
    char *end;
    e->src_hash = strtoull(values[1], &end, 16);
    if (end == values[1] || *end)
        return -1;
    return 0;
}

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int clattn__db_parse(clattn__tuning_db *db, const char *text, size_t len, int *bad)
{
    *bad = 0;
    size_t hl = strlen(DB_HEADER);
    if (len < hl || memcmp(text, DB_HEADER, hl) != 0)
        return -1;
    size_t pos = hl;
    char line[2048];
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) { /* an interrupted append: ignore the partial record */
            ++*bad;
            break;
        }
        size_t ll = (size_t)(nl - (text + pos));
        if (ll >= sizeof line || memchr(text + pos, '\0', ll)) {
            ++*bad;
        } else {
            memcpy(line, text + pos, ll);
            line[ll] = '\0';
            clattn__tune_entry e;
            if (strncmp(line, "fingerprint ", 12) == 0) {
                if (strlen(line + 12) < sizeof db->fingerprint)
                    memcpy(db->fingerprint, line + 12, strlen(line + 12) + 1);
                else
                    ++*bad;
            } else if (line[0] == '#' || line[0] == '\0') {
                /* comment */
            } else if (printable(line, ll) && parse_entry(line, &e) == 0) {
                /* Entry lines are printable ASCII (tabs allowed): any other
                 * byte is damage, even where the line would still parse (a
                 * flipped letter of a unit or parameter name). The
                 * fingerprint and comments may hold a device's UTF-8 name. */
                if (clattn__db_put(db, &e) != 0)
                    return -1;
            } else {
                ++*bad;
            }
        }
        pos += ll + 1;
    }
    return 0;
}
