#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("clattn-minilm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        die("out of memory (%zu bytes)", bytes);
    return p;
}

unsigned char *read_file(const char *path, size_t max_bytes, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = read_stream(f, path, max_bytes, size);
    fclose(f);
    return buf;
}

unsigned char *read_stream(FILE *f, const char *name, size_t max_bytes, size_t *size)
{
    /* Read in growing chunks rather than trusting a seek: the size a pipe or
     * a changing file reports is not what it delivers. */
    size_t cap = 1 << 16, len = 0, got;
    unsigned char *buf = xmalloc(cap + 1);
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len > max_bytes)
            die("%s: larger than %zu bytes", name, max_bytes);
        if (len == cap) {
            cap *= 2;
            unsigned char *g = realloc(buf, cap + 1);
            if (!g)
                die("out of memory reading %s", name);
            buf = g;
        }
    }
    if (ferror(f))
        die("reading %s failed: %s", name, strerror(errno));
    buf[len] = '\0';
    *size = len;
    return buf;
}

char *path_join(const char *dir, const char *name)
{
    const size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}
