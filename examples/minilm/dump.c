#include "dump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* A float32 [heads][seq][dim] array as .npy (format 1.0), from the
 * projections' [seq][heads][dim] layout. */
static void write_npy(const char *path, const float *x, int seq, int heads, int dim)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    char header[128];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }", heads,
                     seq, dim);
    /* magic (6) + version (2) + length (2) + header, padded with spaces to a
     * multiple of 64 and ended by a newline */
    const int total = (10 + n + 1 + 63) / 64 * 64;
    while (10 + n + 1 < total)
        header[n++] = ' ';
    header[n++] = '\n';
    const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                   (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    int ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(header, 1, (size_t)n, f) ==
                                                                (size_t)n;
    for (int h = 0; ok && h < heads; ++h)
        for (int s = 0; ok && s < seq; ++s)
            ok = fwrite(x + ((size_t)s * heads + h) * dim, sizeof *x, (size_t)dim, f) ==
                 (size_t)dim;
    if (fclose(f) != 0 || !ok)
        die("%s: write failed", path);
}

void dump_layer_qk(const char *dir, const float *q, const float *k, int seq, int heads, int dim,
                   char *const *pieces, const int32_t *ids)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die("%s: %s", dir, strerror(errno));
    char *path = path_join(dir, "q.npy");
    write_npy(path, q, seq, heads, dim);
    free(path);
    path = path_join(dir, "k.npy");
    write_npy(path, k, seq, heads, dim);
    free(path);
    path = path_join(dir, "tokens.txt");
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    for (int s = 0; s < seq; ++s)
        fprintf(f, "%s\n", pieces[ids[s]]);
    if (fclose(f) != 0)
        die("%s: write failed", path);
    free(path);
}
