/* File-system side of the caches. The cache holds executable device code, so
 * it is treated like ~/.ssh: private directories, private files, no
 * symlinks, atomic replacement. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cache_fs.h"

uint64_t clattn__fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int clattn__cache_root(const char *explicit_dir, char *out, size_t size, char *msg,
                       size_t msg_size)
{
    const char *levels[2] = {explicit_dir, getenv("CLATTN_CACHE_DIR")};
    for (int i = 0; i < 2; ++i) {
        if (!levels[i] || !*levels[i])
            continue;
        if (strcmp(levels[i], "off") == 0)
            return 1;
        if (snprintf(out, size, "%s", levels[i]) >= (int)size) {
            snprintf(msg, msg_size, "cache directory path too long");
            return -1;
        }
        return 0;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, size, "%s/clattn", xdg);
    else if (home && *home)
        n = snprintf(out, size, "%s/.cache/clattn", home);
    else {
        snprintf(msg, msg_size, "no cache directory: neither XDG_CACHE_HOME nor HOME is set");
        return -1;
    }
    if (n < 0 || n >= (int)size) {
        snprintf(msg, msg_size, "cache directory path too long");
        return -1;
    }
    return 0;
}

int clattn__cache_check_dir(const char *dir, char *msg, size_t msg_size)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(msg, msg_size, "cache directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(msg, msg_size, "cache directory %s is a symbolic link; not used", dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(msg, msg_size, "cache directory %s is not a directory; not used", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(msg, msg_size, "cache directory %s is owned by another user; not used", dir);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(msg, msg_size,
                 "cache directory %s is writable by group or others (mode %03o); not used",
                 dir, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

int clattn__cache_prepare_dir(const char *dir, char *msg, size_t msg_size)
{
    char path[CLATTN__PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(msg, msg_size, "cache directory path too long");
        return -1;
    }
    /* Create missing components; existing parents are left as they are. */
    for (char *p = path + 1; *p; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(msg, msg_size, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(msg, msg_size, "cannot create cache directory %s: %s", path, strerror(errno));
        return -1;
    }
    return clattn__cache_check_dir(path, msg, msg_size);
}

int clattn__cache_read(const char *path, uint64_t max_bytes, unsigned char **data, size_t *len,
                       char *msg, size_t msg_size)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(msg, msg_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0)
        snprintf(msg, msg_size, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(msg, msg_size, "%s is not a regular file", path);
    else if (st.st_uid != geteuid())
        snprintf(msg, msg_size, "%s is owned by another user", path);
    else if ((uint64_t)st.st_size > max_bytes)
        snprintf(msg, msg_size, "%s is larger than %llu bytes", path,
                 (unsigned long long)max_bytes);
    else {
        size_t n = (size_t)st.st_size;
        unsigned char *buf = malloc(n ? n : 1);
        size_t got = 0;
        while (buf && got < n) {
            ssize_t r = read(fd, buf + got, n - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (!buf)
            snprintf(msg, msg_size, "out of memory reading %s", path);
        else if (got != n) {
            snprintf(msg, msg_size, "short read of %s", path);
            free(buf);
        } else {
            *data = buf;
            *len = n;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int clattn__cache_write(const char *path, const void *head, size_t head_len, const void *body,
                        size_t body_len, char *msg, size_t msg_size)
{
    char tmp[CLATTN__PATH_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%ld", path, (long)getpid(), (long)ts.tv_nsec) >=
        (int)sizeof tmp) {
        snprintf(msg, msg_size, "cache path too long");
        return -1;
    }
    /* O_EXCL|O_NOFOLLOW: a planted file or symlink makes this fail. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(msg, msg_size, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = write_all(fd, head, head_len) == 0 && write_all(fd, body, body_len) == 0 &&
             fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    /* rename() replaces a symlink at path itself, never writes through it. */
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        err = errno;
    }
    if (!ok) {
        unlink(tmp);
        snprintf(msg, msg_size, "cannot write %s: %s", path, strerror(err));
        return -1;
    }
    return 0;
}

void clattn__cache_touch(const char *path)
{
    /* Best effort: a failure only makes eviction less accurate. */
    utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
}

typedef struct {
    char name[256];
    off_t size;
    time_t mtime;
} entry;

static int older_first(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

void clattn__cache_evict(const char *dir, const char *suffix, uint64_t max_bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    entry *list = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    size_t sl = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < sl || nl >= sizeof list->name || strcmp(de->d_name + nl - sl, suffix) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            entry *g = realloc(list, nc * sizeof *g);
            if (!g)
                break;
            list = g;
            cap = nc;
        }
        memcpy(list[n].name, de->d_name, nl + 1);
        list[n].size = st.st_size;
        list[n].mtime = st.st_mtime;
        total += (uint64_t)st.st_size;
        ++n;
    }
    if (total > max_bytes && n > 0) {
        qsort(list, n, sizeof *list, older_first);
        for (size_t i = 0; i < n && total > max_bytes; ++i)
            if (unlinkat(dirfd(d), list[i].name, 0) == 0)
                total -= (uint64_t)list[i].size;
    }
    closedir(d);
    free(list);
}
