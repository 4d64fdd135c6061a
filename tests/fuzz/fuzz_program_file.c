/* Program binary cache files (src/program_file.c): what clattn__bin_check
 * makes of any bytes, before anything reaches clCreateProgramWithBinary. A
 * file passes only whole, with its key and checksum right, and then the
 * binary handed on lies exactly inside the file. */
#include <string.h>

#include "cache_fs.h"
#include "fuzz.h"
#include "program_file.h"

/* A key as program_cache.c writes it (the kernel source shortened). */
static const char k_key[] =
    "clattn program binary\nlibrary 0.1.0\nfingerprint platform=Portable Computing "
    "Language|platform_version=OpenCL 3.0 PoCL 3.1+debian  Linux, None+Asserts, RELOC, "
    "SPIR, LLVM 15.0.6, SLEEF, DISTRO, POCL_DEBUG|vendor=AuthenticAMD|device=pthread-"
    "skylake-avx512-AMD EPYC|driver=3.1+debian|opencl_c=OpenCL C 1.2 PoCL|compute_units=2|"
    "local_mem=1048576|max_wg=4096\nkernel attn_splitkv_combine\noptions -cl-std=CL1.2 "
    "-DDTYPE=0 -DHEAD_DIM=17 -DHEAD_DIM_V=200 -DCOMBINE_WG=64\nsource 31\n"
    "__kernel void k(void) { }\n/**/\n";

static void check(const unsigned char *data, size_t size, const char *key, size_t klen)
{
    const unsigned char *bin = NULL;
    size_t bin_len = 0;
    const char *why = clattn__bin_check(data, size, key, klen, &bin, &bin_len);
    if (why) {
        FUZZ_CHECK(*why, "a rejection names its reason");
        return;
    }
    clattn__bin_header h;
    FUZZ_CHECK(size >= sizeof h + klen, "accepted file holds header and key");
    memcpy(&h, data, sizeof h);
    FUZZ_CHECK(bin == data + sizeof h + klen && bin_len > 0 &&
                   bin_len == size - sizeof h - klen,
               "binary lies exactly after the key, up to the end");
    FUZZ_CHECK(h.payload_hash == clattn__fnv1a(CLATTN__FNV_INIT, bin, bin_len),
               "checksum");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The input as a cache file, looked up under the corpus key... */
    check(data, size, k_key, strlen(k_key));
    /* ...and under whatever key it carries, so the checksum path is reached
     * by any input with a plausible header. */
    clattn__bin_header h;
    if (size >= sizeof h) {
        memcpy(&h, data, sizeof h);
        if (h.key_len <= size - sizeof h) {
            size_t klen = (size_t)h.key_len;
            char *key = malloc(klen + 1);
            FUZZ_CHECK(key != NULL, "malloc");
            memcpy(key, data + sizeof h, klen);
            key[klen] = '\0';
            check(data, size, key, klen);
            free(key);
        }
    }
    /* The input as a driver binary: the file written for it is accepted and
     * gives back exactly those bytes; an empty binary never is. */
    size_t klen = strlen(k_key), flen = sizeof h + klen + size;
    unsigned char *file = malloc(flen);
    FUZZ_CHECK(file != NULL, "malloc");
    clattn__bin_header_make(&h, klen, data, size);
    memcpy(file, &h, sizeof h);
    memcpy(file + sizeof h, k_key, klen);
    if (size)
        memcpy(file + sizeof h + klen, data, size);
    const unsigned char *bin = NULL;
    size_t bin_len = 0;
    const char *why = clattn__bin_check(file, flen, k_key, klen, &bin, &bin_len);
    if (size)
        FUZZ_CHECK(!why && bin_len == size && memcmp(bin, data, size) == 0,
                   "a written file reads back");
    else
        FUZZ_CHECK(why && strcmp(why, "payload checksum mismatch") == 0,
                   "an empty binary is refused");
    /* One byte cut or added is always noticed. */
    if (size) {
        FUZZ_CHECK(clattn__bin_check(file, flen - 1, k_key, klen, &bin, &bin_len) != NULL,
                   "a truncated file is refused");
        h.payload_len += 1;
        memcpy(file, &h, sizeof h);
        FUZZ_CHECK(clattn__bin_check(file, flen, k_key, klen, &bin, &bin_len) != NULL,
                   "a header claiming more is refused");
    }
    free(file);
    return 0;
}
