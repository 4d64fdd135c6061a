/* The on-disk cache directory: where it is, whether it is safe to use, and
 * atomic, symlink-free file access inside it. No OpenCL. */
#ifndef CLATTN_CACHE_FS_H
#define CLATTN_CACHE_FS_H

#include <stddef.h>
#include <stdint.h>

#define CLATTN__PATH_MAX 4096
#define CLATTN__DEFAULT_CACHE_BYTES ((uint64_t)256 << 20)

/* Resolves the cache root: explicit (options), else $CLATTN_CACHE_DIR, else
 * $XDG_CACHE_HOME/clattn, else $HOME/.cache/clattn. Returns 0 with the path
 * in out, 1 when disk use is off ("off" at the first level that is set), -1
 * when no location can be formed (message in msg). */
int clattn__cache_root(const char *explicit_dir, char *out, size_t size, char *msg,
                       size_t msg_size);

/* Creates dir (and missing parents) with mode 0700 and checks that it is a
 * real directory (not a symlink), owned by this user, and not writable by
 * group or others. Returns 0 when usable, -1 with a message otherwise. */
int clattn__cache_prepare_dir(const char *dir, char *msg, size_t msg_size);

/* The checks of clattn__cache_prepare_dir on an existing directory. */
int clattn__cache_check_dir(const char *dir, char *msg, size_t msg_size);

/* Reads a whole regular file (no symlinks, owned by this user, at most
 * max_bytes). Returns 0 and a malloc'd buffer, 1 when it does not exist, -1
 * with a message on any other problem. */
int clattn__cache_read(const char *path, uint64_t max_bytes, unsigned char **data, size_t *len,
                       char *msg, size_t msg_size);

/* Writes head then body to path atomically: a private temporary file in the
 * same directory (mode 0600, never through a symlink), fsync, rename.
 * Returns 0, or -1 with a message. */
int clattn__cache_write(const char *path, const void *head, size_t head_len, const void *body,
                        size_t body_len, char *msg, size_t msg_size);

/* Marks path as just used (its mtime orders the eviction). */
void clattn__cache_touch(const char *path);

/* Deletes the least recently used files ending in suffix from dir until
 * their total is at most max_bytes. */
void clattn__cache_evict(const char *dir, const char *suffix, uint64_t max_bytes);

/* 64-bit FNV-1a, chained through h (start with CLATTN__FNV_INIT). */
#define CLATTN__FNV_INIT 0xcbf29ce484222325ULL
uint64_t clattn__fnv1a(uint64_t h, const void *data, size_t len);

#endif
