/* tuning_db_damage: a user tuning db truncated mid-line, with garbage lines,
 * a NUL byte, another format version, an empty file or another device's
 * fingerprint is reported through the log; the entries that are intact
 * still apply, the forward is right, and the context after that one loads
 * without a warning (the damage was repaired or set aside). */
#define _POSIX_C_SOURCE 200809L
#include "cache_tests.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Entry lines of a db text (neither the header, the fingerprint, a comment
 * nor blank). */
static int entry_lines(const char *text, size_t len)
{
    int n = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (ll > 0 && strncmp(text + pos, "clattn-tuning-db", 16) != 0 &&
            strncmp(text + pos, "fingerprint ", 12) != 0 && text[pos] != '#')
            n++;
        pos += ll + 1;
    }
    return n;
}

static size_t user_entries(clattn_context *ctx)
{
    size_t count = 0, user = 0;
    clattn_tuning_count(ctx, &count);
    for (size_t i = 0; i < count; i++) {
        clattn_tuning_entry e;
        if (clattn_tuning_get(ctx, i, &e) == CLATTN_OK && e.layer == 0 && !e.stale) user++;
    }
    return user;
}

/* A context over the damaged db: warns, keeps `expect` entries, computes
 * right; then the next context must be clean. */
static void check_case(const char *root, const char *name, size_t expect, const char *why)
{
    clattn_problem p = ct_shape_prefill(), d = ct_shape_decode();
    ct_log log;
    clattn_context *ctx;
    size_t n;
    char what[160];
    snprintf(what, sizeof what, "%s: forward", name);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    n = user_entries(ctx);
    ct_forward_ok(ctx, &p, what);
    ct_forward_ok(ctx, &d, what);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 1 && strstr(log.text, why),
          "%s: expected one warning saying '%s', got %d:\n%s", name, why, log.warnings,
          log.text);
    CHECK(n == expect, "%s: %zu entries apply, expected %zu", name, n, expect);
    NOTE("  %-32s %zu entries kept; reported: %.*s", name, n,
         (int)(strchr(log.text, '\n') ? strchr(log.text, '\n') - log.text : 0), log.text);

    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    n = user_entries(ctx);
    clattn_context_destroy(ctx);
    CHECK(log.warnings == 0, "%s: the next context warns again (the damage stays in the "
          "db file):\n%s", name, log.text);
    CHECK(n == expect, "%s: the next context sees %zu entries, expected %zu", name, n, expect);
}

int test_tuning_db_damage(int argc, char **argv)
{
    char root[PATH_MAX], dir[PATH_MAX + 16], db[PATH_MAX * 2], aside[PATH_MAX * 2 + 8];
    char *names[4];
    clattn_problem shapes[2] = {ct_shape_prefill(), ct_shape_decode()};
    clattn_tune_options o;
    ct_log log;
    clattn_context *ctx;
    unsigned char *pristine;
    size_t len, n0;
    int lines, ndb;
    (void)argc;
    (void)argv;
    ct_fresh_dir("tuning_db_damage", root, sizeof root);
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    memset(&o, 0, sizeof o);
    o.budget_seconds = 2.5;
    for (int i = 0; i < 2; i++) {
        clattn_status st = clattn_tune(ctx, &shapes[i], 1, &o, NULL, 0, NULL);
        CHECK(st == CLATTN_OK, "clattn_tune: %s", clattn_last_error(ctx));
    }
    n0 = user_entries(ctx);
    clattn_context_destroy(ctx);
    snprintf(dir, sizeof dir, "%s/tuning", root);
    ndb = ct_list(dir, ".db", names, 4);
    CHECK(ndb == 1, "%d db files in %s", ndb, dir);
    if (ndb != 1) {
        ct_free_list(names, ndb);
        ct_remove_tree(root);
        return 1;
    }
    snprintf(db, sizeof db, "%s/%s", dir, names[0]);
    snprintf(aside, sizeof aside, "%s.bad", db);
    ct_free_list(names, ndb);
    pristine = ct_read(db, &len);
    lines = pristine ? entry_lines((char *)pristine, len) : 0;
    NOTE("db %s: %zu bytes, %d entry lines, %zu entries", db, len, lines, n0);
    CHECK(pristine && n0 >= 2 && (size_t)lines == n0, "the tune left %zu entries (%d lines)",
          n0, lines);
    if (!pristine || n0 < 2) {
        free(pristine);
        ct_remove_tree(root);
        return 1;
    }

    /* Truncated in the middle of its last line (an interrupted append). */
    {
        size_t cut = len - 1;
        while (cut > 0 && pristine[cut - 1] != '\n') cut--;
        cut += (len - cut) / 2;
        CHECK(ct_write(db, pristine, cut) == 0, "write");
        check_case(root, "truncated mid-line", n0 - 1, "damaged lines");
    }

    /* Garbage lines between the entries. */
    {
        const char *garbage[] = {
            "garbage\n",
            "kernel=fused dtype=0\n",
            "kernel=fused dtype=0 d=32 dv=32 causal=1 windowed=0 mask=0 group=1 sq=64 skv=64 | "
            "BLOCK_M=abc | median_ms=1 p20_ms=1 p80_ms=1 default_ms=1 | lib=0.1.0 src=0\n",
            "\x01\x02\xff\xfe binary bytes\n",
            "|||\n",
        };
        size_t hdr = 0, extra = 0, used;
        unsigned char *buf;
        for (int nl = 0; hdr < len && nl < 2; hdr++) nl += pristine[hdr] == '\n';
        for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
            extra += strlen(garbage[i]);
        extra += 3001;
        buf = malloc(len + extra);
        memcpy(buf, pristine, hdr);
        used = hdr;
        for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
            memcpy(buf + used, garbage[i], strlen(garbage[i]));
            used += strlen(garbage[i]);
        }
        memset(buf + used, 'x', 3000); /* longer than any entry line may be */
        buf[used + 3000] = '\n';
        used += 3001;
        memcpy(buf + used, pristine + hdr, len - hdr);
        used += len - hdr;
        CHECK(ct_write(db, buf, used) == 0, "write");
        check_case(root, "garbage lines", n0, "damaged lines");

        /* A NUL byte inside an entry line spoils that line only. */
        memcpy(buf, pristine, len);
        buf[hdr + 10] = '\0';
        CHECK(ct_write(db, buf, len) == 0, "write");
        check_case(root, "NUL byte in a line", n0 - 1, "damaged lines");
        free(buf);
    }

    /* A fingerprint of another device inside the file. */
    {
        unsigned char *buf = malloc(len + 16);
        char *fp;
        memcpy(buf, pristine, len);
        buf[len] = '\0';
        fp = strstr((char *)buf, "\nfingerprint ");
        if (fp) fp[13] = fp[13] == 'Z' ? 'Y' : 'Z';
        CHECK(fp && ct_write(db, buf, len) == 0, "no fingerprint line");
        check_case(root, "fingerprint of another device", 0, "fingerprint mismatch");
        free(buf);
    }

    /* Another format version, and an empty file: set aside as .bad. */
    {
        unsigned char *buf = malloc(len);
        memcpy(buf, pristine, len);
        buf[17] = (unsigned char)(buf[17] == '9' ? '8' : '9'); /* "clattn-tuning-db N" */
        CHECK(ct_write(db, buf, len) == 0, "write");
        check_case(root, "another format version", 0, "not a clattn tuning db");
        CHECK(ct_exists(aside) && !ct_exists(db), "the db of another version was not set "
              "aside as %s", aside);
        unlink(aside);
        CHECK(ct_write(db, "", 0) == 0, "write");
        check_case(root, "empty file", 0, "not a clattn tuning db");
        unlink(aside);
        free(buf);
    }

    /* Restored, the db is whole again. */
    CHECK(ct_write(db, pristine, len) == 0, "write");
    ct_log_reset(&log);
    ctx = ct_context(root, &log);
    CHECK(user_entries(ctx) == n0 && log.warnings == 0, "the restored db: %zu entries, %d "
          "warnings", user_entries(ctx), log.warnings);
    clattn_context_destroy(ctx);
    free(pristine);
    ct_remove_tree(root);
    return ct_failures ? 1 : 0;
}
