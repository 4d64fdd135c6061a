/* clattn_tuning_import's checks on a file: the text must parse with no
 * damaged line and its fingerprint must name this device model; then its
 * entries are merged into the user db, which is written back. The file I/O
 * and locking around it are left out (they need a context and a device);
 * this is everything that looks at the file's bytes. */
#include <string.h>

#include "device.h"
#include "fuzz.h"
#include "tuning_db.h"

/* The PoCL CPU device these corpus files were tuned on. */
static const char k_mine[] =
    "platform=Portable Computing Language|platform_version=OpenCL 3.0 PoCL 3.1+debian  "
    "Linux, None+Asserts, RELOC, SPIR, LLVM 15.0.6, SLEEF, DISTRO, POCL_DEBUG|"
    "vendor=AuthenticAMD|device=pthread-skylake-avx512-AMD EPYC|driver=3.1+debian|"
    "opencl_c=OpenCL C 1.2 PoCL|compute_units=2|local_mem=1048576|max_wg=4096";

/* What the user db already holds: one entry the import may replace. */
static const char k_user[] =
    "clattn-tuning-db 1\n"
    "fingerprint x\n"
    "kernel=fused dtype=0 d=64 dv=64 causal=0 windowed=0 mask=0 group=1 sq=1024 skv=1024 | "
    "FUSED_VEC=1 FV_ROWS=16 | median_ms=24.7 p20_ms=24.5 p80_ms=25.5 default_ms=38 | "
    "lib=0.1.0 src=4abbfe5d38d638f1\n";

/* The model of fp, also into a buffer of exactly size bytes (heap, so a
 * write past it is caught), which must hold a prefix of the full answer. */
static void model(const char *fp, char *out, size_t out_size, size_t small)
{
    clattn__fingerprint_model(fp, out, out_size);
    FUZZ_CHECK(strlen(out) < out_size, "model fits");
    char *tiny = malloc(small);
    FUZZ_CHECK(tiny != NULL, "malloc");
    clattn__fingerprint_model(fp, tiny, small);
    FUZZ_CHECK(strlen(tiny) < small, "model fits a small buffer");
    free(tiny);
    /* A model names a model: taking it again changes nothing. */
    char twice[1024];
    clattn__fingerprint_model(out, twice, sizeof twice);
    FUZZ_CHECK(strcmp(out, twice) == 0, "model of a model");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clattn__tuning_db db, user;
    int bad = 0, ubad = 0;
    char mine[1024], theirs[1024];
    clattn__db_init(&db);
    clattn__db_init(&user);
    FUZZ_CHECK(clattn__db_parse(&user, k_user, strlen(k_user), &ubad) == 0 && ubad == 0,
               "user db");
    int ok = clattn__db_parse(&db, (const char *)data, size, &bad) == 0 && bad == 0;
    model(k_mine, mine, sizeof mine, 1 + size % 97);
    model(db.fingerprint, theirs, sizeof theirs, 1 + size % 89);
    ok = ok && strcmp(mine, theirs) == 0;
    if (ok) {
        size_t before = user.count;
        for (size_t i = 0; i < db.count; ++i)
            FUZZ_CHECK(clattn__db_put(&user, &db.entries[i]) == 0, "merge");
        FUZZ_CHECK(user.count >= before && user.count <= before + db.count, "merge count");
        size_t len = 0;
        char *text = clattn__db_format(&user, &len);
        FUZZ_CHECK(text != NULL, "an imported db cannot be saved");
        clattn__tuning_db back;
        int bbad = -1;
        clattn__db_init(&back);
        FUZZ_CHECK(clattn__db_parse(&back, text, len, &bbad) == 0 && bbad == 0 &&
                       back.count == user.count,
                   "the saved db loads whole");
        for (size_t i = 0; i < db.count; ++i) {
            int exact = 0;
            const clattn__tune_entry *e = clattn__db_find(&back, &db.entries[i].key, &exact);
            FUZZ_CHECK(e && exact, "every imported entry is in the saved db");
        }
        clattn__db_free(&back);
        free(text);
    }
    clattn__db_free(&db);
    clattn__db_free(&user);
    return 0;
}
