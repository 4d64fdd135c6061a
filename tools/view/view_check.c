/* The test's helper for attn-view (view_test.cmake runs it):
 *
 *   view_check inputs DIR
 *     writes Q and K .npy files whose weights are known exactly, their
 *     float16 and 3-d variants, token files, and damaged files under
 *     DIR/bad/;
 *   view_check png FILE WIDTH HEIGHT [CHECK...]
 *   view_check png-min FILE WIDTH HEIGHT
 *     reads a PNG back with libpng and checks its size (exactly, or at
 *     least), that it is not one flat colour, and each CHECK:
 *       cell X Y WEIGHT VMIN VMAX   pixel (X, Y) has the colour map's colour
 *                                   of WEIGHT on the scale VMIN..VMAX
 *       masked X Y                  pixel (X, Y) is the masked-cell grey
 *       bar X YTOP YBOTTOM          the colour bar's ends are the map's ends
 *
 * The known problem, batch entry 1, head 0 (head_dim 4, scale 1/2):
 *   q0 = 8 e0              sees k0 with score 32, the others with 0: w = 1, ~1e-14
 *   q1 = 10 (e1 + e2)      k1 and k2 tie at score 40: w = 0.5 each
 *   q2 = 0                 every score 0: w = 0.25 each
 * with k_j = 8 e_j. exp(-32) and exp(-40) vanish against 1 in float, so
 * the three weights are exact whatever order a device sums in. Every
 * other head and batch entry holds smooth made-up values. */
#include "view.h"

#include <png.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, H = 2, SQ = 3, SKV = 4, D = 4 };

static int failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "view_check: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* ---- inputs ---------------------------------------------------------------- */

/* A .npy file with the given format version and header dict (padded as
 * numpy pads it), then `bytes` of data. */
static int write_npy(const char *dir, const char *name, int major, const char *dict,
                     const void *data, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const size_t prefix = major == 1 ? 10 : 12;
    size_t len = strlen(dict) + 1;
    while ((prefix + len) % 64)
        len++;
    unsigned char head[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    for (size_t i = 0; i < prefix - 8; ++i)
        head[8 + i] = (unsigned char)(len >> (8 * i));
    FILE *f = fopen(path, "wb");
    if (!f)
        return failf("cannot write %s", path);
    fwrite(head, 1, prefix, f);
    fputs(dict, f);
    for (size_t i = strlen(dict); i + 1 < len; ++i)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, bytes, f);
    return fclose(f) == 0 ? 0 : failf("cannot write %s", path);
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return failf("cannot write %s", path);
    fputs(text, f);
    return fclose(f) == 0 ? 0 : failf("cannot write %s", path);
}

/* Float to IEEE half, round to nearest even; the test's values are all
 * exact in half except the made-up ones, where rounding does not matter. */
static uint16_t to_half(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const uint16_t sign = (uint16_t)(bits >> 16 & 0x8000);
    const float a = fabsf(x);
    if (a == 0.0f)
        return sign;
    int e;
    const float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    if (e > 16)
        return (uint16_t)(sign | 0x7c00);
    if (e < -13) /* subnormal: units of 2^-24 */
        return (uint16_t)(sign | (uint16_t)lrintf(ldexpf(a, 24)));
    const long q = lrintf(ldexpf(m, 11)); /* 1024..2048 */
    return (uint16_t)(sign | (((uint32_t)(e + 14) << 10) + (uint32_t)(q - 1024)));
}

static void fill(float *q, float *k)
{
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h) {
            for (int i = 0; i < SQ; ++i)
                for (int d = 0; d < D; ++d)
                    q[((b * H + h) * SQ + i) * D + d] =
                        2.0f * sinf(1.0f + b * 7 + h * 5 + i * 3 + d);
            for (int j = 0; j < SKV; ++j)
                for (int d = 0; d < D; ++d)
                    k[((b * H + h) * SKV + j) * D + d] =
                        2.0f * cosf(2.0f + b * 3 + h * 11 + j * 2 + d);
        }
    float *q10 = q + (1 * H + 0) * SQ * D, *k10 = k + (1 * H + 0) * SKV * D;
    memset(q10, 0, SQ * D * sizeof(float));
    memset(k10, 0, SKV * D * sizeof(float));
    q10[0 * D + 0] = 8.0f;
    q10[1 * D + 1] = 10.0f;
    q10[1 * D + 2] = 10.0f;
    for (int j = 0; j < SKV; ++j)
        k10[j * D + j] = 8.0f;
}

static int write_inputs(const char *dir)
{
    static float q[B * H * SQ * D], k[B * H * SKV * D];
    static uint16_t q16[H * SQ * D];
    fill(q, k);
    const float *q1 = q + H * SQ * D, *k1 = k + H * SKV * D;
    for (int i = 0; i < H * SQ * D; ++i)
        q16[i] = to_half(q1[i]);
    char dict[256], bad[1024];
    int rc = 0;
#define NPY(dirname, name, major, shape, data, bytes)                                          \
    (snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", \
              shape),                                                                          \
     rc |= write_npy(dirname, name, major, dict, data, bytes))
    NPY(dir, "q.npy", 1, "2, 2, 3, 4", q, sizeof q);
    NPY(dir, "k.npy", 1, "2, 2, 4, 4", k, sizeof k);
    /* Batch entry 1 alone, in the other two format versions. */
    NPY(dir, "k3.npy", 3, "2, 4, 4", k1, H * SKV * D * sizeof(float));
    rc |= write_npy(dir, "q16.npy", 2,
                    "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3, 4), }", q16,
                    sizeof q16);
    rc |= write_text(dir, "tokens.txt", "[CLS]\nh\xc3\xa9llo\n##w\xc3\xb6rld\n[SEP]\n");
    char dump[1024];
    snprintf(dump, sizeof dump, "%s/dump", dir);
    NPY(dump, "q.npy", 1, "2, 3, 4", q1, H * SQ * D * sizeof(float));
    NPY(dump, "k.npy", 1, "2, 4, 4", k1, H * SKV * D * sizeof(float));
    rc |= write_text(dump, "tokens.txt", "[CLS]\r\nthe\r\ncat\r\n[SEP]");
    /* Damaged or unsupported files, each refused for one reason. */
    snprintf(bad, sizeof bad, "%s/bad", dir);
    rc |= write_text(bad, "magic.npy", "PK\x03\x04 not an array at all, a zip file's start");
    rc |= write_text(bad, "empty.npy", "");
    rc |= write_npy(bad, "version.npy", 4,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", q1,
                    H * SQ * D * sizeof(float));
    rc |= write_npy(bad, "big_endian.npy", 1,
                    "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3, 4), }", q1,
                    H * SQ * D * sizeof(float));
    rc |= write_npy(bad, "int.npy", 1,
                    "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3, 4), }", q1,
                    H * SQ * D * sizeof(float));
    rc |= write_npy(bad, "fortran.npy", 1,
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", q1,
                    H * SQ * D * sizeof(float));
    rc |= write_npy(bad, "no_order.npy", 1, "{'descr': '<f4', 'shape': (2, 3, 4), }", q1,
                    H * SQ * D * sizeof(float));
    rc |= write_npy(bad, "not_tuple.npy", 1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (24), }", q1,
                    H * SQ * D * sizeof(float));
    rc |= write_npy(bad, "extra_key.npy", 1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), 'x': 1}", q1,
                    H * SQ * D * sizeof(float));
    NPY(bad, "truncated.npy", 1, "2, 3, 4", q1, H * SQ * D * sizeof(float) - 6);
    NPY(bad, "trailing.npy", 1, "2, 3, 4", k, H * SQ * D * sizeof(float) + 4);
    NPY(bad, "huge.npy", 1, "1000000, 1000000, 1000000", q1, 64);
    NPY(bad, "rank2.npy", 1, "6, 4", q1, H * SQ * D * sizeof(float));
    /* Well-formed, but not K for q.npy: another head dim, heads that do
     * not divide Q's, another batch size. */
    NPY(bad, "k_dim3.npy", 1, "2, 2, 4, 3", k, 2 * 2 * 4 * 3 * sizeof(float));
    NPY(bad, "k_heads3.npy", 1, "2, 3, 2, 4", k, 2 * 3 * 2 * 4 * sizeof(float));
    NPY(bad, "k_batch1.npy", 1, "1, 2, 4, 4", k, 2 * 4 * 4 * sizeof(float));
#undef NPY
    rc |= write_text(bad, "tokens3.txt", "a\nb\nc\n");
    return rc;
}

/* ---- checks ---------------------------------------------------------------- */

typedef struct image {
    int width, height;
    uint8_t *rgb;
} image;

static int read_png(const char *path, image *out)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return failf("%s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    out->width = (int)img.width;
    out->height = (int)img.height;
    out->rgb = malloc(PNG_IMAGE_SIZE(img));
    if (!out->rgb) {
        png_image_free(&img);
        return failf("out of memory");
    }
    if (!png_image_finish_read(&img, NULL, out->rgb, 0, NULL)) {
        free(out->rgb);
        return failf("%s: %s", path, img.message);
    }
    return 0;
}

static view_rgb pixel(const image *im, int x, int y)
{
    const uint8_t *p = im->rgb + ((size_t)y * (size_t)im->width + (size_t)x) * 3;
    const view_rgb c = {p[0], p[1], p[2]};
    return c;
}

static int same(view_rgb a, view_rgb b)
{
    return a.r == b.r && a.g == b.g && a.b == b.b;
}

static int inside(const image *im, int x, int y, const char *what)
{
    if (x >= 0 && y >= 0 && x < im->width && y < im->height)
        return 1;
    failf("%s: (%d, %d) is outside the %d x %d image", what, x, y, im->width, im->height);
    return 0;
}

/* A weight computed on a device may differ from the exact one in its last
 * bit; one on the edge between two entries of the map may then take
 * either. */
static int check_cell(const image *im, int x, int y, float w, float vmin, float vmax)
{
    if (!inside(im, x, y, "cell"))
        return 1;
    const float tol = 1e-5f * (vmax - vmin);
    const int lo = view_cmap_index(w - tol, vmin, vmax), hi = view_cmap_index(w + tol, vmin, vmax);
    const view_rgb got = pixel(im, x, y);
    for (int i = lo; i <= hi; ++i)
        if (same(got, view_cmap_entry(i)))
            return 0;
    const view_rgb want = view_cmap_entry(view_cmap_index(w, vmin, vmax));
    return failf("pixel (%d, %d) is %d,%d,%d; weight %g on %g..%g is map entry %d: %d,%d,%d", x,
                 y, got.r, got.g, got.b, (double)w, (double)vmin, (double)vmax,
                 view_cmap_index(w, vmin, vmax), want.r, want.g, want.b);
}

static int check_rgb(const image *im, int x, int y, view_rgb want, const char *what)
{
    if (!inside(im, x, y, what))
        return 1;
    const view_rgb got = pixel(im, x, y);
    if (same(got, want))
        return 0;
    return failf("%s: pixel (%d, %d) is %d,%d,%d, expected %d,%d,%d", what, x, y, got.r, got.g,
                 got.b, want.r, want.g, want.b);
}

static int count_colours(const image *im)
{
    /* Enough to tell a flat image from a picture. */
    view_rgb seen[8];
    int n = 0;
    for (int y = 0; y < im->height && n < 8; ++y)
        for (int x = 0; x < im->width && n < 8; ++x) {
            const view_rgb c = pixel(im, x, y);
            int known = 0;
            for (int s = 0; s < n && !known; ++s)
                known = same(c, seen[s]);
            if (!known)
                seen[n++] = c;
        }
    return n;
}

static int check_png(int argc, char **argv, int at_least)
{
    if (argc < 5)
        return failf("png needs FILE WIDTH HEIGHT");
    image im;
    if (read_png(argv[2], &im))
        return 1;
    const int w = atoi(argv[3]), h = atoi(argv[4]);
    int rc = 0;
    if (at_least ? (im.width < w || im.height < h) : (im.width != w || im.height != h))
        rc |= failf("%s is %d x %d, expected %s%d x %d", argv[2], im.width, im.height,
                    at_least ? "at least " : "", w, h);
    if (count_colours(&im) < 3)
        rc |= failf("%s has fewer than three colours", argv[2]);
    for (int a = 5; a < argc && !rc;) {
        const char *what = argv[a];
        if (strcmp(what, "cell") == 0 && a + 6 <= argc) {
            rc |= check_cell(&im, atoi(argv[a + 1]), atoi(argv[a + 2]), strtof(argv[a + 3], NULL),
                             strtof(argv[a + 4], NULL), strtof(argv[a + 5], NULL));
            a += 6;
        } else if (strcmp(what, "masked") == 0 && a + 3 <= argc) {
            rc |= check_rgb(&im, atoi(argv[a + 1]), atoi(argv[a + 2]), view_masked_rgb, "masked");
            a += 3;
        } else if (strcmp(what, "bar") == 0 && a + 4 <= argc) {
            const int x = atoi(argv[a + 1]);
            rc |= check_rgb(&im, x, atoi(argv[a + 2]), view_cmap_entry(VIEW_CMAP_SIZE - 1),
                            "bar top");
            rc |= check_rgb(&im, x, atoi(argv[a + 3]), view_cmap_entry(0), "bar bottom");
            a += 4;
        } else {
            rc |= failf("unknown or incomplete check '%s'", what);
            break;
        }
    }
    free(im.rgb);
    if (!rc)
        printf("%s: %d x %d, checks passed\n", argv[2], im.width, im.height);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "inputs") == 0)
        return write_inputs(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "png") == 0)
        return check_png(argc, argv, 0);
    if (argc >= 2 && strcmp(argv[1], "png-min") == 0)
        return check_png(argc, argv, 1);
    return failf("usage: view_check inputs DIR | png FILE W H [CHECK...] | png-min FILE W H");
}
