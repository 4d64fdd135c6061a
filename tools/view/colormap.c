/* The colour scale: dark violet through blue and teal to yellow, in the
 * spirit of matplotlib's viridis but derived here from a formula. Its
 * lightness rises linearly in OKLab (Ottosson 2020, a space built so that
 * equal steps look equal), so a weight twice as far up the scale looks
 * twice as bright, in grey print too and for the common colour-vision
 * deficiencies, which tell lightness apart even where they confuse hues.
 * The hue turns from violet (320 degrees) to yellow (105 degrees) through
 * blue and teal; the chroma dips in the middle, where sRGB holds little
 * teal, and any entry still outside sRGB keeps its lightness and hue and
 * loses only the chroma it must. */
#include "view.h"

#include <math.h>

const view_rgb view_masked_rgb = {200, 200, 200};
const view_rgb view_nan_rgb = {255, 0, 0};
const view_rgb view_background_rgb = {255, 255, 255};
const view_rgb view_ink_rgb = {0, 0, 0};

#define PI 3.14159265358979323846

/* OKLab to linear sRGB (the matrices of Ottosson's definition). */
static void oklab_to_linear(double L, double a, double b, double rgb[3])
{
    const double l = L + 0.3963377774 * a + 0.2158037573 * b;
    const double m = L - 0.1055613458 * a - 0.0638541728 * b;
    const double s = L - 0.0894841775 * a - 1.2914855480 * b;
    const double l3 = l * l * l, m3 = m * m * m, s3 = s * s * s;
    rgb[0] = 4.0767416621 * l3 - 3.3077115913 * m3 + 0.2309699292 * s3;
    rgb[1] = -1.2684380046 * l3 + 2.6097574011 * m3 - 0.3413193965 * s3;
    rgb[2] = -0.0041960863 * l3 - 0.7034186147 * m3 + 1.7076147010 * s3;
}

static int in_gamut(const double rgb[3])
{
    for (int c = 0; c < 3; ++c)
        if (rgb[c] < -1e-9 || rgb[c] > 1.0 + 1e-9)
            return 0;
    return 1;
}

/* The sRGB transfer curve (IEC 61966-2-1), then 8 bits. */
static uint8_t encode(double linear)
{
    linear = linear < 0.0 ? 0.0 : linear > 1.0 ? 1.0 : linear;
    const double v = linear <= 0.0031308 ? 12.92 * linear : 1.055 * pow(linear, 1.0 / 2.4) - 0.055;
    return (uint8_t)floor(v * 255.0 + 0.5);
}

static view_rgb compute(double t)
{
    const double L = 0.27 + 0.66 * t;
    const double hue = (320.0 - 215.0 * t) * PI / 180.0;
    const double chroma = 0.15 - 0.27 * t + 0.30 * t * t;
    double rgb[3];
    oklab_to_linear(L, chroma * cos(hue), chroma * sin(hue), rgb);
    if (!in_gamut(rgb)) {
        /* Bisect on the chroma: lightness is what the scale promises. */
        double lo = 0.0, hi = chroma;
        for (int step = 0; step < 40; ++step) {
            const double mid = 0.5 * (lo + hi);
            oklab_to_linear(L, mid * cos(hue), mid * sin(hue), rgb);
            if (in_gamut(rgb))
                lo = mid;
            else
                hi = mid;
        }
        oklab_to_linear(L, lo * cos(hue), lo * sin(hue), rgb);
    }
    const view_rgb out = {encode(rgb[0]), encode(rgb[1]), encode(rgb[2])};
    return out;
}

view_rgb view_cmap_entry(int i)
{
    static view_rgb table[VIEW_CMAP_SIZE];
    static int ready;
    if (!ready) {
        for (int e = 0; e < VIEW_CMAP_SIZE; ++e)
            table[e] = compute((double)e / (VIEW_CMAP_SIZE - 1));
        ready = 1;
    }
    i = i < 0 ? 0 : i >= VIEW_CMAP_SIZE ? VIEW_CMAP_SIZE - 1 : i;
    return table[i];
}

int view_cmap_index(float value, float vmin, float vmax)
{
    const double t = ((double)value - vmin) / ((double)vmax - vmin);
    if (!(t > 0.0))
        return 0;
    if (t >= 1.0)
        return VIEW_CMAP_SIZE - 1;
    return (int)floor(t * (VIEW_CMAP_SIZE - 1) + 0.5);
}
