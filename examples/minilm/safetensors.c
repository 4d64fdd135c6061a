#include "safetensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {
    [ST_BOOL] = {"BOOL", 1},      [ST_U8] = {"U8", 1},          [ST_I8] = {"I8", 1},
    [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},        [ST_F16] = {"F16", 2},        [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4},        [ST_U32] = {"U32", 4},        [ST_F32] = {"F32", 4},
    [ST_I64] = {"I64", 8},        [ST_U64] = {"U64", 8},        [ST_F64] = {"F64", 8},
};
#define NUM_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

/* JSON numbers are doubles: integers above 2^53 cannot be told apart, so no
 * offset or dimension may exceed it. */
#define ST_MAX_INT ((double)((uint64_t)1 << 53))

const char *st_dtype_name(st_dtype dtype)
{
    return (size_t)dtype < NUM_DTYPES ? k_dtypes[dtype].name : "?";
}

size_t st_dtype_size(st_dtype dtype)
{
    return (size_t)dtype < NUM_DTYPES ? k_dtypes[dtype].size : 0;
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int parse_dtype(const cJSON *item, st_dtype *out)
{
    const char *s = cJSON_GetStringValue(item);
    if (!s)
        return -1;
    for (size_t i = 0; i < NUM_DTYPES; ++i)
        if (!strcmp(s, k_dtypes[i].name)) {
            *out = (st_dtype)i;
            return 0;
        }
    return -1;
}

static int parse_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    const double v = item->valuedouble;
    if (!(v >= 0.0 && v <= ST_MAX_INT) || v != (double)(uint64_t)v)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* One tensor's entry: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}. */
static int parse_tensor(const cJSON *entry, uint64_t data_size, st_tensor *t, char *err,
                        size_t errlen)
{
    const char *name = entry->string;
    if (!cJSON_IsObject(entry)) {
        fail(err, errlen, "tensor \"%s\": entry is not a JSON object", name);
        return -1;
    }
    if (parse_dtype(cJSON_GetObjectItemCaseSensitive(entry, "dtype"), &t->dtype)) {
        fail(err, errlen, "tensor \"%s\": missing or unknown dtype", name);
        return -1;
    }
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > ST_MAX_DIMS) {
        fail(err, errlen, "tensor \"%s\": shape is not an array of at most %d dimensions",
             name, ST_MAX_DIMS);
        return -1;
    }
    uint64_t numel = 1;
    int overflow = 0;
    const cJSON *dim;
    t->ndim = 0;
    cJSON_ArrayForEach(dim, shape)
    {
        uint64_t n;
        if (parse_uint(dim, &n)) {
            fail(err, errlen, "tensor \"%s\": dimension %d is not an integer in 0..2^53", name,
                 t->ndim);
            return -1;
        }
        t->shape[t->ndim++] = n;
        if (n && numel > UINT64_MAX / n)
            overflow = 1;
        numel *= n;
    }
    const size_t elem = st_dtype_size(t->dtype);
    if (overflow || numel > UINT64_MAX / elem) {
        fail(err, errlen, "tensor \"%s\": shape too large", name);
        return -1;
    }
    t->nbytes = numel * elem;

    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        parse_uint(cJSON_GetArrayItem(offs, 0), &begin) ||
        parse_uint(cJSON_GetArrayItem(offs, 1), &end)) {
        fail(err, errlen, "tensor \"%s\": data_offsets is not a pair of integers", name);
        return -1;
    }
    if (begin > end || end > data_size) {
        fail(err, errlen,
             "tensor \"%s\": data_offsets [%llu, %llu) outside the %llu data bytes of the file"
             " (truncated?)",
             name, (unsigned long long)begin, (unsigned long long)end,
             (unsigned long long)data_size);
        return -1;
    }
    if (end - begin != t->nbytes) {
        fail(err, errlen,
             "tensor \"%s\": data_offsets hold %llu bytes but %s of this shape needs %llu", name,
             (unsigned long long)(end - begin), st_dtype_name(t->dtype),
             (unsigned long long)t->nbytes);
        return -1;
    }
    t->offset = begin;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* No two tensors share a byte or a name. */
static int check_disjoint(const st_file *f, char *err, size_t errlen)
{
    if (f->count < 2)
        return 0;
    const st_tensor **v = malloc(f->count * sizeof *v);
    if (!v) {
        fail(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < f->count; ++i)
        v[i] = &f->tensors[i];
    int bad = 0;
    qsort(v, f->count, sizeof *v, by_name);
    for (size_t i = 1; i < f->count && !bad; ++i)
        if (!strcmp(v[i - 1]->name, v[i]->name)) {
            fail(err, errlen, "tensor \"%s\" appears twice in the header", v[i]->name);
            bad = 1;
        }
    qsort(v, f->count, sizeof *v, by_offset);
    for (size_t i = 1; i < f->count && !bad; ++i)
        if (v[i]->offset < v[i - 1]->offset + v[i - 1]->nbytes) {
            fail(err, errlen, "tensors \"%s\" and \"%s\" overlap", v[i - 1]->name, v[i]->name);
            bad = 1;
        }
    free(v);
    return bad ? -1 : 0;
}

static int parse_header(const cJSON *root, uint64_t data_size, st_file *f, char *err,
                        size_t errlen)
{
    if (!cJSON_IsObject(root)) {
        fail(err, errlen, "the header is not a JSON object");
        return -1;
    }
    size_t n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) ++n;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        fail(err, errlen, "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(item, root)
    {
        if (!strcmp(item->string, "__metadata__")) {
            /* Free-form string pairs; nothing here reads them. */
            if (!cJSON_IsObject(item)) {
                fail(err, errlen, "__metadata__ is not a JSON object");
                return -1;
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->count];
        if (parse_tensor(item, data_size, t, err, errlen))
            return -1;
        t->name = malloc(strlen(item->string) + 1);
        if (!t->name) {
            fail(err, errlen, "out of memory");
            return -1;
        }
        strcpy(t->name, item->string);
        ++f->count;
    }
    return check_disjoint(f, err, errlen);
}

int st_parse(const unsigned char *data, size_t size, st_file *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (errlen)
        err[0] = '\0';
    if (size < 8) {
        fail(err, errlen, "%zu bytes: too short for the 8-byte header length", size);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
        n = n << 8 | data[i];
    if (n > ST_MAX_HEADER || n > size - 8) {
        fail(err, errlen, "header length %llu does not fit the file of %zu bytes%s",
             (unsigned long long)n, size, n > ST_MAX_HEADER ? " (or the 100 MiB limit)" : "");
        return -1;
    }
    const char *json = (const char *)data + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)n, &end, 0);
    if (!root) {
        fail(err, errlen, "the header is not valid JSON");
        return -1;
    }
    /* The format pads the header with spaces, nothing else. */
    for (const char *p = end; p < json + n; ++p)
        if (*p != ' ') {
            fail(err, errlen, "bytes after the header's JSON object");
            cJSON_Delete(root);
            return -1;
        }
    out->data_start = 8 + n;
    const int rc = parse_header(root, (uint64_t)size - out->data_start, out, err, errlen);
    cJSON_Delete(root);
    if (rc) {
        st_free(out);
        return -1;
    }
    for (size_t i = 0; i < out->count; ++i)
        out->tensors[i].offset += out->data_start;
    return 0;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; ++i)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

void st_free(st_file *f)
{
    for (size_t i = 0; i < f->count; ++i)
        free(f->tensors[i].name);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}
