/* The tuning layers of a context: the user db of this device (on disk under
 * the cache root), user dbs of the same device model with another driver
 * (stale, serving until a tune runs), and the optional system-wide file. */
#ifndef CLATTN_TUNING_STORE_H
#define CLATTN_TUNING_STORE_H

#include "tuning_db.h"
#include "tunables.h"

struct clattn_context;

typedef struct clattn__tuning_store {
    clattn__tuning_db user, stale, system;
    char user_file[4096]; /* "" when the disk is off */
    char tuning_dir[4096];
    uint64_t unit_hash[CLATTN__UNITS_MAX]; /* per unit of clattn__spaces, once */
} clattn__tuning_store;

/* Loads the layers; disk problems are warnings, never failures. */
void clattn__tuning_open(struct clattn_context *ctx, const char *cache_root);
void clattn__tuning_close(clattn__tuning_store *store);

/* The kernel-source hash a tuned unit's entries must carry to be current. */
uint64_t clattn__unit_hash(const struct clattn_context *ctx, const char *unit);

/* The entry for key through the layers (user, stale, system), exact bucket
 * first, then the nearest of the same kind; a masked problem falls back to
 * unmasked entries (of its own K/V storage: never to another storage's).
 * *stale is set when the entry is not current. NULL when nothing applies. */
const clattn__tune_entry *clattn__tuning_lookup(struct clattn_context *ctx,
                                                const clattn__tune_key *key, int *stale);

/* A current entry for exactly key in the user db, or NULL. */
const clattn__tune_entry *clattn__tuning_current(struct clattn_context *ctx,
                                                 const clattn__tune_key *key);

/* Adds e to the user db and appends it to the user file (so an interrupted
 * tune keeps what it measured). Returns 0, or -1 out of memory. */
int clattn__tuning_record(struct clattn_context *ctx, const clattn__tune_entry *e);

/* (Re)reads the user db file into the user layer; a damaged file is
 * reported once, counted, and repaired (damaged lines dropped and the file
 * rewritten) or set aside (another format version or device). */
void clattn__tuning_reload(struct clattn_context *ctx);

/* Takes the device's advisory tuning lock (waiting for another holder; the
 * kernel drops it when the process dies) and reloads the user db. Returns
 * the fd to close, or -1 without a disk cache. */
int clattn__tuning_lock(struct clattn_context *ctx);

/* Rewrites the user file atomically from the in-memory user db. */
int clattn__tuning_save(struct clattn_context *ctx, char *msg, size_t msg_size);

#endif
