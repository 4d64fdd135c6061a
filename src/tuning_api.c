/* The public face of the tuning db and the disk cache: list, export,
 * import, clear. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_fs.h"
#include "internal.h"

#define BAD(...) clattn__fail(ctx, CLATTN_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* The entries listed, in order: user db, stale (same model), system file. */
static const clattn__tune_entry *nth(clattn_context *ctx, size_t i, int *stale, int *layer)
{
    const clattn__tuning_db *dbs[3] = {&ctx->tuning.user, &ctx->tuning.stale,
                                       &ctx->tuning.system};
    for (int l = 0; l < 3; ++l) {
        if (i < dbs[l]->count) {
            const clattn__tune_entry *e = &dbs[l]->entries[i];
            *layer = l == 2;
            *stale = l == 1 || strcmp(e->lib, clattn_version()) != 0 ||
                     e->src_hash != clattn__unit_hash(ctx, e->key.kernel);
            return e;
        }
        i -= dbs[l]->count;
    }
    return NULL;
}

clattn_status clattn_tuning_count(clattn_context *ctx, size_t *count)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    clattn_status st = CLATTN_OK;
    if (!count)
        st = BAD("count is NULL");
    else
        *count = ctx->tuning.user.count + ctx->tuning.stale.count + ctx->tuning.system.count;
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

clattn_status clattn_tuning_get(clattn_context *ctx, size_t index, clattn_tuning_entry *out)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    int stale = 0, layer = 0;
    const clattn__tune_entry *e = out ? nth(ctx, index, &stale, &layer) : NULL;
    clattn_status st = CLATTN_OK;
    if (!out)
        st = BAD("out is NULL");
    else if (!e)
        st = BAD("index %zu is past the last tuning entry", index);
    else {
        memset(out, 0, sizeof *out);
        snprintf(out->unit, sizeof out->unit, "%s", e->key.kernel);
        out->dtype = (clattn_dtype)e->key.dtype;
        out->head_dim = e->key.head_dim;
        out->head_dim_v = e->key.head_dim_v;
        out->causal = e->key.causal;
        out->windowed = e->key.windowed;
        out->has_mask = e->key.has_mask;
        out->group = e->key.group;
        out->seq_q_bucket = e->key.sq_bucket;
        out->seq_kv_bucket = e->key.skv_bucket;
        size_t used = 0;
        for (int i = 0; i < e->nparams && used < sizeof out->params; ++i) {
            int n = snprintf(out->params + used, sizeof out->params - used, "%s%s=%d",
                             i ? " " : "", e->names[i], e->values[i]);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        /* clattn_tuning_entry has no field for the K/V storage (its layout
         * is fixed by the ABI): the entries of other storage say it last. */
        char kv[64];
        if (e->key.kv && used < sizeof out->params &&
            clattn__db_kv_text(e->key.kv, kv, sizeof kv) > 0)
            snprintf(out->params + used, sizeof out->params - used, "%skv=%s", used ? " " : "",
                     kv);
        out->median_ms = e->median_ms;
        out->p20_ms = e->p20_ms;
        out->p80_ms = e->p80_ms;
        out->default_ms = e->default_ms;
        out->stale = stale;
        out->layer = layer;
    }
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

clattn_status clattn_tuning_export(clattn_context *ctx, const char *path)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ctx->lock);
    clattn_status st = CLATTN_OK;
    size_t len = 0;
    char *text = NULL;
    if (!path || !*path)
        st = BAD("path is NULL or empty");
    else if (!(text = clattn__db_format(&ctx->tuning.user, &len)))
        st = clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of memory");
    else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(text, 1, len, f) != len || fflush(f) != 0)
            st = clattn__fail(ctx, CLATTN_ERR_IO, "cannot write %s", path);
        if (f && fclose(f) != 0 && st == CLATTN_OK)
            st = clattn__fail(ctx, CLATTN_ERR_IO, "cannot write %s", path);
    }
    free(text);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

clattn_status clattn_tuning_import(clattn_context *ctx, const char *path)
{
    if (!ctx)
        return CLATTN_ERR_INVALID_ARGUMENT;
    /* Even a refusal writes the context's last error: under the lock. */
    pthread_mutex_lock(&ctx->lock);
    if (!path || !*path) {
        clattn_status bad = BAD("path is NULL or empty");
        pthread_mutex_unlock(&ctx->lock);
        return bad;
    }
    clattn_status st = CLATTN_OK;
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = -1;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (64L << 20) ||
        fseek(f, 0, SEEK_SET) != 0 || !(text = malloc((size_t)n + 1)) ||
        fread(text, 1, (size_t)n, f) != (size_t)n)
        st = clattn__fail(ctx, CLATTN_ERR_IO, "cannot read %s", path);
    if (f)
        fclose(f);
    clattn__tuning_db db;
    clattn__db_init(&db);
    int bad = 0;
    if (st == CLATTN_OK && clattn__db_parse(&db, text, (size_t)n, &bad) != 0)
        st = BAD("%s is not a clattn tuning db of this format version", path);
    if (st == CLATTN_OK && bad)
        st = BAD("%s: %d line(s) do not parse; nothing imported", path, bad);
    char mine[1024], theirs[1024];
    clattn__fingerprint_model(ctx->fingerprint, mine, sizeof mine);
    clattn__fingerprint_model(db.fingerprint, theirs, sizeof theirs);
    if (st == CLATTN_OK && strcmp(mine, theirs) != 0)
        st = BAD("%s was tuned on another device model (%s), not this one (%s)", path,
                 db.fingerprint, ctx->fingerprint);
    int lock_fd = st == CLATTN_OK ? clattn__tuning_lock(ctx) : -1;
    for (size_t i = 0; st == CLATTN_OK && i < db.count; ++i)
        if (clattn__db_put(&ctx->tuning.user, &db.entries[i]) != 0)
            st = clattn__fail(ctx, CLATTN_ERR_OUT_OF_RESOURCES, "out of memory");
    char msg[CLATTN__PATH_MAX + 128];
    if (st == CLATTN_OK && clattn__tuning_save(ctx, msg, sizeof msg) != 0)
        st = clattn__fail(ctx, CLATTN_ERR_IO, "%s", msg);
    if (lock_fd >= 0)
        close(lock_fd);
    clattn__db_free(&db);
    free(text);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

/* Removes the files clattn writes (and nothing else) from dir. */
static void remove_ours(const char *dir, const char *const *suffixes, int n)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        const char *tmp = strstr(de->d_name, ".tmp.");
        int ours = tmp != NULL;
        /* A temporary ("NAME.tmp.PID.NS") of a live writer, in this process
         * or another, is about to be renamed: removing it made that write
         * (an import, a tuner's db, a binary) fail. Only leftovers of
         * writers that died are ours to delete. */
        if (tmp) {
            long pid = strtol(tmp + 5, NULL, 10);
            if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
                continue;
        }
        for (int i = 0; i < n && !ours; ++i) {
            size_t sl = strlen(suffixes[i]);
            ours = nl > sl && strcmp(de->d_name + nl - sl, suffixes[i]) == 0;
        }
        if (ours)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

clattn_status clattn_cache_clear(const clattn_options *opts)
{
    char root[CLATTN__PATH_MAX], msg[CLATTN__PATH_MAX + 128], dir[CLATTN__PATH_MAX + 16];
    int rc = clattn__cache_root(opts ? opts->cache_dir : NULL, root, sizeof root, msg,
                                sizeof msg);
    if (rc == 1)
        return CLATTN_OK; /* disk use is off: nothing to clear */
    if (rc < 0) {
        if (opts && opts->log)
            opts->log(CLATTN_LOG_ERROR, msg, opts->log_user_data);
        return CLATTN_ERR_IO;
    }
    /* Never delete through a symlink or in a directory that is not ours. */
    struct stat st;
    if (lstat(root, &st) != 0 && errno == ENOENT)
        return CLATTN_OK; /* nothing cached yet */
    if (clattn__cache_check_dir(root, msg, sizeof msg) != 0) {
        if (opts && opts->log)
            opts->log(CLATTN_LOG_ERROR, msg, opts->log_user_data);
        return CLATTN_ERR_IO;
    }
    static const char *const programs[] = {".bin"};
    static const char *const tuning[] = {".db", ".db.bad", ".lock"};
    snprintf(dir, sizeof dir, "%s/programs", root);
    remove_ours(dir, programs, 1);
    snprintf(dir, sizeof dir, "%s/tuning", root);
    remove_ours(dir, tuning, 3);
    return CLATTN_OK;
}
