/* Numerals for the colour bar and the grid's head numbers when the tool has
 * no font library: a 5x7 bitmap face drawn for this tool, just the
 * characters "%g" prints. Text needs FreeType; numbers should not. */
#include "view.h"

#include <stdlib.h>
#include <string.h>

#define GLYPH_W 5
#define GLYPH_H 7
#define ADVANCE (GLYPH_W + 1)

/* One byte per row, top first; bit 4 is the leftmost pixel. */
static const struct {
    char ch;
    uint8_t rows[GLYPH_H];
} glyphs[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
};

int view_digits_mask(const char *text, view_mask *out)
{
    const size_t n = strlen(text);
    out->width = n ? (int)n * ADVANCE - 1 : 1;
    out->height = VIEW_DIGITS_HEIGHT;
    out->alpha = calloc((size_t)out->width * (size_t)out->height, 1);
    if (!out->alpha)
        return 0;
    /* One blank row above and below, as a font's line has. */
    const int top = (VIEW_DIGITS_HEIGHT - GLYPH_H) / 2;
    for (size_t i = 0; i < n; ++i)
        for (size_t g = 0; g < sizeof glyphs / sizeof glyphs[0]; ++g) {
            if (glyphs[g].ch != text[i])
                continue;
            for (int y = 0; y < GLYPH_H; ++y)
                for (int x = 0; x < GLYPH_W; ++x)
                    if (glyphs[g].rows[y] >> (GLYPH_W - 1 - x) & 1)
                        out->alpha[(size_t)(top + y) * (size_t)out->width +
                                   i * ADVANCE + (size_t)x] = 255;
        }
    return 1;
}
