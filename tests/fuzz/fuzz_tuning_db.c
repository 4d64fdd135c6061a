/* The tuning db text format: what clattn__db_parse makes of any bytes, and
 * the repair of a damaged user file (tuning_store.c keeps the entries that
 * parsed and writes them back with clattn__db_format). A file that loads
 * must save, and what is saved must load back to the same db. */
#include <string.h>

#include "fuzz.h"
#include "tuning_db.h"

static void check_entries(const clattn__tuning_db *db)
{
    for (size_t i = 0; i < db->count; ++i) {
        const clattn__tune_entry *e = &db->entries[i];
        int exact = 0;
        FUZZ_CHECK(e->key.kernel[0] && strlen(e->key.kernel) < sizeof e->key.kernel,
                   "unit name");
        FUZZ_CHECK(strlen(e->lib) < sizeof e->lib, "lib version");
        FUZZ_CHECK(e->nparams >= 0 && e->nparams <= CLATTN__DB_MAX_PARAMS, "param count");
        char kv[64];
        FUZZ_CHECK(clattn__db_kv_valid(e->key.kv), "kv code");
        FUZZ_CHECK(clattn__db_kv_text(e->key.kv, kv, sizeof kv) >= 0 && (e->key.kv == 0) == !kv[0],
                   "kv text");
        /* Keys are unique after a load, so a lookup by an entry's own key
         * finds exactly that entry. */
        FUZZ_CHECK(clattn__db_find(db, &e->key, &exact) == e && exact, "lookup by own key");
        for (int j = 0; j < e->nparams; ++j) {
            int first = 0; /* a repeated name: lookups see its first value */
            while (strcmp(e->names[first], e->names[j]) != 0)
                ++first;
            FUZZ_CHECK(clattn__db_param(e, e->names[j], -7) == e->values[first],
                       "param lookup");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clattn__tuning_db db, again;
    int bad = -1, bad2 = -1;
    clattn__db_init(&db);
    clattn__db_init(&again);
    int rc = clattn__db_parse(&db, (const char *)data, size, &bad);
    FUZZ_CHECK(rc == 0 || rc == -1, "parse result");
    FUZZ_CHECK(bad >= 0, "damaged line count");
    if (rc == 0) {
        FUZZ_CHECK(strlen(db.fingerprint) < sizeof db.fingerprint, "fingerprint");
        check_entries(&db);
        size_t len = 0, len2 = 0;
        char *text = clattn__db_format(&db, &len);
        FUZZ_CHECK(text != NULL, "a db that loaded cannot be written back");
        FUZZ_CHECK(clattn__db_parse(&again, text, len, &bad2) == 0, "rewritten file loads");
        FUZZ_CHECK(bad2 == 0, "rewritten file has no damaged lines");
        FUZZ_CHECK(again.count == db.count, "rewritten file keeps every entry");
        FUZZ_CHECK(strcmp(again.fingerprint, db.fingerprint) == 0, "fingerprint kept");
        char *text2 = clattn__db_format(&again, &len2);
        FUZZ_CHECK(text2 && len2 == len && memcmp(text, text2, len) == 0,
                   "formatting is stable across a load");
        free(text);
        free(text2);
    }
    clattn__db_free(&db);
    clattn__db_free(&again);
    return 0;
}
