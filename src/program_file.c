/* Program binary files: make a header, check a file. */
#include <string.h>

#include "cache_fs.h"
#include "program_file.h"

void clattn__bin_header_make(clattn__bin_header *h, size_t klen, const void *payload,
                             size_t payload_len)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, CLATTN__BIN_MAGIC, 8);
    h->version = CLATTN__BIN_VERSION;
    h->key_len = klen;
    h->payload_len = payload_len;
    h->payload_hash = clattn__fnv1a(CLATTN__FNV_INIT, payload, payload_len);
}

const char *clattn__bin_check(const unsigned char *data, size_t len, const char *key,
                              size_t klen, const unsigned char **payload, size_t *payload_len)
{
    clattn__bin_header h;
    if (len < sizeof h)
        return "truncated header";
    memcpy(&h, data, sizeof h);
    if (memcmp(h.magic, CLATTN__BIN_MAGIC, 8) != 0)
        return "not a clattn program file";
    if (h.version != CLATTN__BIN_VERSION)
        return "another format version";
    if (h.reserved != 0) /* written as zero: anything else is damage */
        return "damaged header (reserved field set)";
    if (h.key_len > len - sizeof h || h.payload_len != len - sizeof h - h.key_len)
        return "truncated or padded file";
    if (h.key_len != klen || memcmp(data + sizeof h, key, klen) != 0)
        return "key mismatch (another device, driver, version or source)";
    if (h.payload_len == 0 ||
        clattn__fnv1a(CLATTN__FNV_INIT, data + sizeof h + klen, h.payload_len) !=
            h.payload_hash)
        return "payload checksum mismatch";
    *payload = data + sizeof h + klen;
    *payload_len = (size_t)h.payload_len;
    return NULL;
}
