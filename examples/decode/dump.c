#include "dump.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_magic[8] = {'C', 'L', 'A', 'D', 'E', 'C', 'O', 'D'};
#define DUMP_VERSION 1u

static size_t n_tokens(const decode_dump *d)
{
    return (size_t)d->batch * (size_t)d->steps;
}

static size_t n_logits(const decode_dump *d)
{
    return (size_t)d->steps * (size_t)d->batch * (size_t)d->vocab;
}

int dump_write(const char *path, const decode_dump *d)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        fprintf(stderr, "%s: path too long\n", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        perror(tmp);
        return -1;
    }
    const uint32_t version = DUMP_VERSION;
    const int32_t dims[3] = {d->batch, d->vocab, d->steps};
    int ok = fwrite(k_magic, 1, sizeof k_magic, f) == sizeof k_magic &&
             fwrite(&version, sizeof version, 1, f) == 1 && fwrite(dims, sizeof dims, 1, f) == 1 &&
             fwrite(d->tokens, sizeof *d->tokens, n_tokens(d), f) == n_tokens(d) &&
             fwrite(d->logits, sizeof *d->logits, n_logits(d), f) == n_logits(d);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        perror(path);
        remove(tmp);
        return -1;
    }
    return 0;
}

static int read_header(FILE *f, const char *path, decode_dump *d)
{
    char magic[8];
    uint32_t version;
    int32_t dims[3];
    if (fread(magic, 1, sizeof magic, f) != sizeof magic || memcmp(magic, k_magic, 8) ||
        fread(&version, sizeof version, 1, f) != 1 || fread(dims, sizeof dims, 1, f) != 1) {
        fprintf(stderr, "%s: not a clattn-decode dump\n", path);
        return -1;
    }
    if (version != DUMP_VERSION) {
        fprintf(stderr, "%s: dump version %u, this program reads %u\n", path, version,
                DUMP_VERSION);
        return -1;
    }
    if (dims[0] < 1 || dims[1] < 1 || dims[2] < 1 || dims[0] > 4096 || dims[1] > 1 << 20 ||
        dims[2] > 1 << 20) {
        fprintf(stderr, "%s: implausible sizes %d x %d x %d\n", path, dims[0], dims[1], dims[2]);
        return -1;
    }
    d->batch = dims[0];
    d->vocab = dims[1];
    d->steps = dims[2];
    return 0;
}

int dump_read(const char *path, decode_dump *d)
{
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    int ok = read_header(f, path, d) == 0;
    if (ok) {
        d->tokens = malloc(n_tokens(d) * sizeof *d->tokens);
        d->logits = malloc(n_logits(d) * sizeof *d->logits);
        ok = d->tokens && d->logits &&
             fread(d->tokens, sizeof *d->tokens, n_tokens(d), f) == n_tokens(d) &&
             fread(d->logits, sizeof *d->logits, n_logits(d), f) == n_logits(d);
        if (!ok)
            fprintf(stderr, "%s: truncated\n", path);
    }
    fclose(f);
    if (!ok)
        dump_free(d);
    return ok ? 0 : -1;
}

void dump_free(decode_dump *d)
{
    free(d->tokens);
    free(d->logits);
    d->tokens = NULL;
    d->logits = NULL;
}

double dump_step_error(const decode_dump *ref, const decode_dump *run, int step)
{
    const size_t n = (size_t)ref->batch * (size_t)ref->vocab;
    const float *a = ref->logits + (size_t)step * n, *b = run->logits + (size_t)step * n;
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double e = (double)b[i] - (double)a[i];
        num += e * e;
        den += (double)a[i] * a[i];
    }
    return den > 0.0 ? sqrt(num / den) : (num > 0.0 ? INFINITY : num);
}
