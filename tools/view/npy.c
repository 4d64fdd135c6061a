/* A strict reader of NumPy's .npy files (numpy.lib.format): the magic, a
 * format version of 1.0, 2.0 or 3.0, a header that is a Python dict literal
 * with exactly the keys 'descr', 'fortran_order' and 'shape', and then the
 * raw data. Only what attention inputs are stored as is accepted —
 * little-endian float32 or float16 in C order — and the file must hold
 * exactly the bytes the shape needs: a truncated or padded file is a
 * damaged one, and reading it anyway would plot garbage. */
#include "view.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* numpy itself refuses headers above 10000 bytes unless told otherwise;
 * anything near this is not an array of floats. */
#define NPY_MAX_HEADER 65536
/* No attention input has a dimension this large, and it keeps every
 * product of two dimensions far from overflowing. */
#define NPY_MAX_EXTENT ((int64_t)1 << 40)

static int fail(char *why, size_t why_size, const char *path, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(why, why_size, "%s: %s", path, detail);
    return 0;
}

/* IEEE binary16 bits to float, subnormals, infinities and NaN included. */
static float half_to_float(uint16_t h)
{
    const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float v;
    if (exponent == 0)
        v = (float)mantissa * (1.0f / 16777216.0f); /* subnormal: m * 2^-24 */
    else if (exponent == 31)
        v = mantissa ? NAN : INFINITY;
    else
        v = ldexpf((float)(mantissa | 0x400), exponent - 25);
    return sign ? -v : v;
}

/* ---- the header: a tiny parser for the one dict literal numpy writes ---- */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static int take(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes (no key or dtype numpy writes has one). */
static int take_string(cursor *c, char *out, size_t out_size)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    const char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= out_size)
            return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int take_word(cursor *c, const char *word)
{
    skip_space(c);
    const size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* A non-negative integer; Python 2's numpy wrote longs with an L. */
static int take_int(cursor *c, int64_t *out)
{
    skip_space(c);
    int64_t v = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        v = v * 10 + (*c->p - '0');
        if (v > NPY_MAX_EXTENT)
            return 0;
        c->p++;
    }
    if (c->p == start)
        return 0;
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *out = v;
    return 1;
}

/* "()", "(n,)" or "(n, m, ...)" with an optional trailing comma; "(n)" is
 * an integer in Python, not a tuple, and is refused. */
static int take_shape(cursor *c, npy_array *a)
{
    if (!take(c, '('))
        return 0;
    a->ndim = 0;
    if (take(c, ')'))
        return 1;
    for (;;) {
        if (a->ndim == NPY_MAX_DIMS || !take_int(c, &a->shape[a->ndim]))
            return 0;
        a->ndim++;
        const int comma = take(c, ',');
        if (take(c, ')'))
            return a->ndim > 1 || comma;
        if (!comma)
            return 0;
    }
}

static int parse_header(const char *text, size_t len, npy_array *a, char *descr,
                        size_t descr_size, int *fortran, const char **error)
{
    cursor c = {text, text + len};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    *error = "the header is not the dict numpy writes";
    if (!take(&c, '{'))
        return 0;
    while (!take(&c, '}')) {
        char key[32];
        if (!take_string(&c, key, sizeof key) || !take(&c, ':'))
            return 0;
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            seen_descr = 1;
            if (!take_string(&c, descr, descr_size)) {
                *error = "'descr' is not a plain type string (structured arrays are not read)";
                return 0;
            }
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            seen_order = 1;
            if (take_word(&c, "False"))
                *fortran = 0;
            else if (take_word(&c, "True"))
                *fortran = 1;
            else
                return 0;
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = 1;
            if (!take_shape(&c, a)) {
                *error = "'shape' is not a tuple of at most 8 non-negative integers";
                return 0;
            }
        } else {
            *error = "the header has a key other than 'descr', 'fortran_order' and 'shape', "
                     "or one of them twice";
            return 0;
        }
        if (!take(&c, ',')) {
            if (!take(&c, '}'))
                return 0;
            break;
        }
    }
    skip_space(&c);
    if (c.p != c.end) {
        *error = "the header has text after its dict";
        return 0;
    }
    if (!seen_descr || !seen_order || !seen_shape) {
        *error = "the header lacks 'descr', 'fortran_order' or 'shape'";
        return 0;
    }
    return 1;
}

/* ---- the file ------------------------------------------------------------ */

static int read_exact(FILE *f, void *buf, size_t n)
{
    return fread(buf, 1, n, f) == n;
}

static int read_file(FILE *f, const char *path, npy_array *a, char *why, size_t why_size)
{
    unsigned char pre[12];
    if (!read_exact(f, pre, 8) || memcmp(pre, "\x93NUMPY", 6) != 0)
        return fail(why, why_size, path, "not a .npy file (no \\x93NUMPY magic)");
    const int major = pre[6], minor = pre[7];
    size_t header_len, prefix;
    if (major == 1 && minor == 0) {
        if (!read_exact(f, pre + 8, 2))
            return fail(why, why_size, path, "truncated in the header length");
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8;
        prefix = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (!read_exact(f, pre + 8, 4))
            return fail(why, why_size, path, "truncated in the header length");
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
                     (size_t)pre[11] << 24;
        prefix = 12;
    } else {
        return fail(why, why_size, path,
                    ".npy format version %d.%d (versions 1.0, 2.0 and 3.0 are read)", major,
                    minor);
    }
    if (header_len == 0 || header_len > NPY_MAX_HEADER)
        return fail(why, why_size, path, "header length %zu is not plausible", header_len);
    char *header = malloc(header_len);
    if (!header)
        return fail(why, why_size, path, "out of memory");
    if (!read_exact(f, header, header_len)) {
        free(header);
        return fail(why, why_size, path, "truncated in the header");
    }
    /* Version 3.0 allows UTF-8 in the header, but nothing the three keys
     * may hold needs it; a NUL or a control byte means damage. */
    for (size_t i = 0; i + 1 < header_len; ++i) {
        const unsigned char ch = (unsigned char)header[i];
        if (ch < 0x20 || ch > 0x7e) {
            free(header);
            return fail(why, why_size, path, "the header holds byte 0x%02x at offset %zu", ch,
                        prefix + i);
        }
    }
    if (header[header_len - 1] != '\n') {
        free(header);
        return fail(why, why_size, path, "the header does not end with a newline");
    }
    char descr[16];
    int fortran = 0;
    const char *error = NULL;
    const int ok =
        parse_header(header, header_len - 1, a, descr, sizeof descr, &fortran, &error);
    free(header);
    if (!ok)
        return fail(why, why_size, path, "%s", error);
    size_t item;
    if (strcmp(descr, "<f4") == 0) {
        item = 4;
    } else if (strcmp(descr, "<f2") == 0) {
        item = 2;
        a->half = 1;
    } else {
        return fail(why, why_size, path,
                    "dtype '%s' is not read (only little-endian float32 '<f4' or float16 "
                    "'<f2')",
                    descr);
    }
    if (fortran)
        return fail(why, why_size, path,
                    "fortran_order is True (save a C-ordered array: numpy.ascontiguousarray)");
    size_t count = 1;
    for (int d = 0; d < a->ndim; ++d) {
        if (a->shape[d] != 0 && count > SIZE_MAX / 4 / (size_t)a->shape[d])
            return fail(why, why_size, path, "the shape is too large");
        count *= (size_t)a->shape[d];
    }
    a->count = count;
    /* Compare with the file's size before allocating: a damaged header must
     * not make the tool ask for terabytes. */
    const long data_start = ftell(f);
    if (data_start < 0 || fseek(f, 0, SEEK_END) != 0)
        return fail(why, why_size, path, "cannot seek: %s", strerror(errno));
    const long file_end = ftell(f);
    if (file_end < data_start || fseek(f, data_start, SEEK_SET) != 0)
        return fail(why, why_size, path, "cannot seek: %s", strerror(errno));
    const size_t have = (size_t)(file_end - data_start), need = count * item;
    if (have != need)
        return fail(why, why_size, path,
                    "the shape needs %zu bytes of data and the file has %zu (%s)", need, have,
                    have < need ? "truncated" : "bytes past the array");
    a->data = malloc(count ? count * sizeof(float) : 1);
    if (!a->data)
        return fail(why, why_size, path, "out of memory for %zu elements", count);
    if (count && !read_exact(f, a->data, need))
        return fail(why, why_size, path, "read failed: %s", ferror(f) ? strerror(errno) :
                                                                        "unexpected end");
    /* The .npy bytes are little-endian; convert in place, from the back for
     * halves, whose source is narrower than their float. */
    const unsigned char *raw = (const unsigned char *)a->data;
    if (item == 2) {
        for (size_t i = count; i-- > 0;)
            a->data[i] = half_to_float((uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8));
    } else {
        for (size_t i = 0; i < count; ++i) {
            const uint32_t bits = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                                  (uint32_t)raw[4 * i + 2] << 16 |
                                  (uint32_t)raw[4 * i + 3] << 24;
            memcpy(&a->data[i], &bits, sizeof bits);
        }
    }
    return 1;
}

int npy_read(const char *path, npy_array *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(why, why_size, path, "cannot open: %s", strerror(errno));
    const int ok = read_file(f, path, out, why, why_size);
    fclose(f);
    if (!ok)
        npy_free(out);
    return ok;
}

void npy_free(npy_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}
