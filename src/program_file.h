/* The on-disk layout of one cached program binary: a fixed header, the full
 * key text, the driver's binary. Checking a file's bytes needs no OpenCL, so
 * it lives apart from the cache that hands them to the driver (and can be
 * fuzzed on its own). */
#ifndef CLATTN_PROGRAM_FILE_H
#define CLATTN_PROGRAM_FILE_H

#include <stddef.h>
#include <stdint.h>

#define CLATTN__BIN_MAGIC "CLATTNPB"
#define CLATTN__BIN_VERSION 1u

typedef struct clattn__bin_header {
    char magic[8];
    uint32_t version, reserved;
    uint64_t key_len, payload_len, payload_hash;
} clattn__bin_header;

/* The header of a file holding key (klen bytes) and payload. */
void clattn__bin_header_make(clattn__bin_header *h, size_t klen, const void *payload,
                             size_t payload_len);

/* Checks a whole file's bytes against the key it must carry. Returns NULL
 * with the driver's binary inside data in payload and payload_len, or the
 * reason the file cannot be used. */
const char *clattn__bin_check(const unsigned char *data, size_t len, const char *key,
                              size_t klen, const unsigned char **payload, size_t *payload_len);

#endif
