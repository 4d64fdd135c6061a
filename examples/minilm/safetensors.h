/* The safetensors container (Hugging Face): an 8-byte little-endian header
 * length N, N bytes of JSON naming each tensor's dtype, shape and byte range
 * [begin, end) relative to the data that follows the header, then the data.
 * st_parse checks everything the header claims against the bytes it was
 * given, so a caller may read any tensor it returns without further checks;
 * it touches nothing but its arguments, which makes it a fuzz target
 * (fuzz_safetensors.c). */
#ifndef MINILM_SAFETENSORS_H
#define MINILM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* The dtypes of the format's specification, by their names in the header. */
typedef enum st_dtype {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E4M3, ST_F8_E5M2, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_I64, ST_U64, ST_F64
} st_dtype;

#define ST_MAX_DIMS 8
/* The reference implementation refuses larger headers too. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t offset; /* of the first byte, from the start of the file */
    uint64_t nbytes; /* elements times the dtype's size */
} st_tensor;

typedef struct st_file {
    st_tensor *tensors; /* in header order */
    size_t count;
    uint64_t data_start; /* 8 + N */
} st_file;

/* Parses the file held in data[0..size). On success returns 0 and fills out
 * (free it with st_free): every tensor lies inside the data section, no two
 * overlap, names are unique, and nbytes matches dtype and shape. On failure
 * returns -1, leaves out empty and writes a one-line reason to err. */
int st_parse(const unsigned char *data, size_t size, st_file *out, char *err, size_t errlen);

/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);

/* "F32", "I64", ... */
const char *st_dtype_name(st_dtype dtype);
size_t st_dtype_size(st_dtype dtype);

void st_free(st_file *f);

#endif
