/* Tuning layers: load, look up, record. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cache_fs.h"
#include "internal.h"
#include "kernels.h"
#include "tunables.h"
#include "tuning_store.h"

#ifndef CLATTN_SYSTEM_DATA_DIR
#define CLATTN_SYSTEM_DATA_DIR "/usr/local/share/clattn"
#endif

#define DB_MAX_BYTES ((uint64_t)64 << 20)

/* The hash of the kernel sources a unit's entries depend on: an entry
 * measured against other sources is stale. */
static uint64_t source_hash(const clattn__space *unit)
{
    uint64_t h = CLATTN__FNV_INIT;
    char msg[256];
    for (int k = 0; k < CLATTN__K_COUNT; ++k) {
        char *src = NULL;
        if ((unit->kernels & CLATTN__K_BIT(k)) &&
            clattn__kernel_source((clattn__kernel_id)k, &src, msg, sizeof msg) == 0) {
            h = clattn__fnv1a(h, src, strlen(src));
            free(src);
        }
    }
    return h;
}

uint64_t clattn__unit_hash(const clattn_context *ctx, const char *unit)
{
    const int i = clattn__unit_index(unit);
    return i >= 0 ? ctx->tuning.unit_hash[i] : 0;
}

/* Reads one db file into db; returns 0 when it parsed, 1 when it is
 * missing, -1 otherwise; *bad counts damaged lines. Problems other than a
 * missing file are reported. */
static int load_file(clattn_context *ctx, const char *path, clattn__tuning_db *db, int *bad)
{
    unsigned char *data;
    size_t len;
    char msg[CLATTN__PATH_MAX + 128];
    *bad = 0;
    int rc = clattn__cache_read(path, DB_MAX_BYTES, &data, &len, msg, sizeof msg);
    if (rc == 1)
        return 1;
    if (rc < 0) {
        clattn__cache_warn(ctx, msg);
        return -1;
    }
    rc = clattn__db_parse(db, (const char *)data, len, bad);
    free(data);
    return rc;
}

static void set_aside(clattn_context *ctx, const char *path, const char *why)
{
    char aside[CLATTN__PATH_MAX + 8], msg[CLATTN__PATH_MAX + 160];
    snprintf(aside, sizeof aside, "%s.bad", path);
    rename(path, aside);
    snprintf(msg, sizeof msg, "%s: %s; set aside as %s.bad", path, why, path);
    clattn__cache_warn(ctx, msg);
    ctx->stats.cache_rejected++;
}

/* Rewrites the db after damaged lines were dropped. A tuner appends to the
 * file while it holds the lock: rewriting under it would move its later
 * appends to the replaced file. Without the lock (a context opening) the
 * rewrite is left to the tuner, whose own final save drops the damage. */
static int repair(clattn_context *ctx, int have_lock, char *err, size_t err_size)
{
    int fd = -1;
    if (!have_lock) {
        char path[CLATTN__PATH_MAX + 8];
        snprintf(path, sizeof path, "%s.lock", ctx->tuning.user_file);
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            snprintf(err, err_size, "a tuner holds the lock and will rewrite it");
            return -1;
        }
    }
    int rc = clattn__tuning_save(ctx, err, err_size);
    if (fd >= 0)
        close(fd);
    return rc;
}

static void reload(clattn_context *ctx, int have_lock)
{
    clattn__tuning_store *t = &ctx->tuning;
    if (!t->user_file[0])
        return;
    clattn__tuning_db db;
    clattn__db_init(&db);
    int bad = 0;
    int rc = load_file(ctx, t->user_file, &db, &bad);
    if (rc == 0 && strcmp(db.fingerprint, ctx->fingerprint) != 0)
        set_aside(ctx, t->user_file, "fingerprint mismatch (another device or driver)");
    else if (rc < 0 && access(t->user_file, F_OK) == 0)
        set_aside(ctx, t->user_file, "not a clattn tuning db of this format version");
    else if (rc == 0) {
        /* The file is at least as new as memory: its entries win. */
        for (size_t i = 0; i < db.count; ++i)
            clattn__db_put(&t->user, &db.entries[i]);
        if (bad) {
            /* Rewrite first, so that the one message says what happened. */
            char msg[CLATTN__PATH_MAX * 2 + 256], err[CLATTN__PATH_MAX + 128];
            if (repair(ctx, have_lock, err, sizeof err) == 0)
                snprintf(msg, sizeof msg, "%s: damaged lines (%d) dropped; file rewritten",
                         t->user_file, bad);
            else
                snprintf(msg, sizeof msg, "%s: damaged lines (%d) dropped; not rewritten: %s",
                         t->user_file, bad, err);
            clattn__cache_warn(ctx, msg);
            ctx->stats.cache_rejected++;
        }
    }
    clattn__db_free(&db);
}

void clattn__tuning_reload(clattn_context *ctx) { reload(ctx, 0); }

/* The tuning directory and the root above it, checked again before each
 * write: they may have been removed or replaced by a file or a symlink since
 * the context was made. 0 when usable, else -1 with the reason in msg. */
static int tuning_dir_ok(const clattn_context *ctx, char *msg, size_t msg_size)
{
    char root[CLATTN__PATH_MAX];
    snprintf(root, sizeof root, "%s", ctx->tuning.tuning_dir);
    char *slash = strrchr(root, '/');
    if (slash && slash != root)
        *slash = '\0';
    if (clattn__cache_check_dir(root, msg, msg_size) != 0 ||
        clattn__cache_check_dir(ctx->tuning.tuning_dir, msg, msg_size) != 0)
        return -1;
    return 0;
}

int clattn__tuning_lock(clattn_context *ctx)
{
    char msg[CLATTN__PATH_MAX + 128];
    if (!ctx->tuning.user_file[0])
        return -1;
    if (tuning_dir_ok(ctx, msg, sizeof msg) != 0) {
        clattn__cache_warn(ctx, msg);
        return -1;
    }
    char path[CLATTN__PATH_MAX + 8];
    snprintf(path, sizeof path, "%s.lock", ctx->tuning.user_file);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        clattn__log(ctx, CLATTN_LOG_INFO, "another tuner holds %s; waiting", path);
        while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
            ;
    }
    /* Whoever held the lock may have written entries since we loaded. */
    reload(ctx, 1);
    return fd;
}

static void load_stale(clattn_context *ctx, const char *dir, const char *own_file)
{
    char model[1024], other[1024];
    clattn__fingerprint_model(ctx->fingerprint, model, sizeof model);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 4 || strcmp(de->d_name + nl - 3, ".db") != 0)
            continue;
        char path[CLATTN__PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
            strcmp(path, own_file) == 0)
            continue;
        clattn__tuning_db db;
        clattn__db_init(&db);
        int bad;
        if (load_file(ctx, path, &db, &bad) == 0) {
            clattn__fingerprint_model(db.fingerprint, other, sizeof other);
            if (strcmp(model, other) == 0)
                for (size_t i = 0; i < db.count; ++i)
                    clattn__db_put(&ctx->tuning.stale, &db.entries[i]);
        }
        clattn__db_free(&db);
    }
    closedir(d);
}

static void db_file_name(const char *fingerprint, char *out, size_t size)
{
    uint64_t h = clattn__fnv1a(CLATTN__FNV_INIT, fingerprint, strlen(fingerprint));
    snprintf(out, size, "%016llx.db", (unsigned long long)h);
}

void clattn__tuning_open(clattn_context *ctx, const char *cache_root)
{
    clattn__tuning_store *t = &ctx->tuning;
    clattn__db_init(&t->user);
    clattn__db_init(&t->stale);
    clattn__db_init(&t->system);
    for (int i = 0; clattn__spaces[i].unit && i < CLATTN__UNITS_MAX; ++i)
        t->unit_hash[i] = source_hash(&clattn__spaces[i]);
    snprintf(t->user.fingerprint, sizeof t->user.fingerprint, "%s", ctx->fingerprint);
    char name[64];
    db_file_name(ctx->fingerprint, name, sizeof name);

    const char *sys = getenv("CLATTN_SYSTEM_TUNING_DIR");
    char path[CLATTN__PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", sys && *sys ? sys : CLATTN_SYSTEM_DATA_DIR "/tuning",
                 name) < (int)sizeof path) {
        clattn__tuning_db db;
        clattn__db_init(&db);
        int bad;
        if (load_file(ctx, path, &db, &bad) == 0 && strcmp(db.fingerprint, ctx->fingerprint) == 0)
            for (size_t i = 0; i < db.count; ++i)
                clattn__db_put(&t->system, &db.entries[i]);
        clattn__db_free(&db);
    }

    if (!cache_root)
        return;
    char msg[CLATTN__PATH_MAX + 128] = "cache path too long";
    if (snprintf(t->tuning_dir, sizeof t->tuning_dir, "%s/tuning", cache_root) >=
            (int)sizeof t->tuning_dir ||
        clattn__cache_prepare_dir(t->tuning_dir, msg, sizeof msg) != 0 ||
        snprintf(t->user_file, sizeof t->user_file, "%s/%s", t->tuning_dir, name) >=
            (int)sizeof t->user_file) {
        clattn__cache_warn(ctx, msg);
        t->tuning_dir[0] = t->user_file[0] = '\0';
        return;
    }
    clattn__tuning_reload(ctx);
    load_stale(ctx, t->tuning_dir, t->user_file);
}

void clattn__tuning_close(clattn__tuning_store *t)
{
    clattn__db_free(&t->user);
    clattn__db_free(&t->stale);
    clattn__db_free(&t->system);
}

static int is_current(const clattn_context *ctx, const clattn__tune_entry *e)
{
    return strcmp(e->lib, clattn_version()) == 0 &&
           e->src_hash == clattn__unit_hash(ctx, e->key.kernel);
}

const clattn__tune_entry *clattn__tuning_current(clattn_context *ctx,
                                                 const clattn__tune_key *key)
{
    int exact = 0;
    const clattn__tune_entry *e = clattn__db_find(&ctx->tuning.user, key, &exact);
    return e && exact && is_current(ctx, e) ? e : NULL;
}

const clattn__tune_entry *clattn__tuning_lookup(clattn_context *ctx,
                                                const clattn__tune_key *key, int *stale)
{
    clattn__tune_key k = *key;
    for (int pass = 0; pass < 2; ++pass) {
        const clattn__tuning_db *layers[3] = {&ctx->tuning.user, &ctx->tuning.stale,
                                              &ctx->tuning.system};
        for (int i = 0; i < 3; ++i) {
            int exact;
            const clattn__tune_entry *e = clattn__db_find(layers[i], &k, &exact);
            if (e) {
                *stale = i == 1 || !is_current(ctx, e);
                return e;
            }
        }
        /* Then the entry of the problem without mask and score features:
         * the same kernels and tiles, only without their extra steps. The
         * K/V storage and paging stay: entries measured on another storage
         * (fp32 rows for an int8 or paged cache) timed other loads, another
         * memory traffic and other kernels, so such a problem takes its
         * own storage's entries or the built-in defaults, never those. */
        if (!k.has_mask && !k.features)
            break;
        k.has_mask = 0;
        k.features = 0;
    }
    return NULL;
}

int clattn__tuning_record(clattn_context *ctx, const clattn__tune_entry *e)
{
    if (clattn__db_put(&ctx->tuning.user, e) != 0)
        return -1;
    if (!ctx->tuning.user_file[0])
        return 0;
    char msg[CLATTN__PATH_MAX + 128];
    if (tuning_dir_ok(ctx, msg, sizeof msg) != 0) {
        clattn__cache_warn(ctx, msg);
        return 0;
    }
    char line[2048];
    int n = clattn__db_format_entry(e, line, sizeof line);
    if (n < 0)
        return 0;
    /* Append, creating the file with its header when it is new. */
    int fd = open(ctx->tuning.user_file, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (clattn__tuning_save(ctx, msg, sizeof msg) != 0)
            clattn__cache_warn(ctx, msg);
        return 0;
    }
    /* After an interrupted append the file may end mid-line: start a new
     * line, so the partial record stays a lone damaged line. */
    struct stat st;
    char last = '\n';
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
        pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
        (void)!write(fd, "\n", 1);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        snprintf(msg, sizeof msg, "cannot append to %s", ctx->tuning.user_file);
        clattn__cache_warn(ctx, msg);
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

int clattn__tuning_save(clattn_context *ctx, char *msg, size_t msg_size)
{
    if (!ctx->tuning.user_file[0])
        return 0;
    if (tuning_dir_ok(ctx, msg, msg_size) != 0)
        return -1;
    size_t len;
    char *text = clattn__db_format(&ctx->tuning.user, &len);
    if (!text) {
        snprintf(msg, msg_size, "out of memory formatting the tuning db");
        return -1;
    }
    int rc = clattn__cache_write(ctx->tuning.user_file, text, len, "", 0, msg, msg_size);
    free(text);
    return rc;
}
