/* Token labels with FreeType (built when CMake finds it; font_none.c
 * otherwise). The face is DejaVu Sans where the build found it
 * (fonts-dejavu-core), or any file --font names. */
#include "view.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct view_font {
    FT_Library library;
    FT_Face face;
    int ascent, height; /* pixels; every mask is `height` tall */
};

view_font *view_font_open(const char *path, int px, char *why, size_t why_size)
{
#ifdef ATTN_VIEW_DEFAULT_FONT
    if (!path)
        path = ATTN_VIEW_DEFAULT_FONT;
#endif
    if (!path) {
        snprintf(why, why_size, "no font was found when attn-view was built; name one with --font");
        return NULL;
    }
    view_font *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    FT_Error err = FT_Init_FreeType(&f->library);
    if (err) {
        snprintf(why, why_size, "FreeType cannot start (error %d)", err);
        free(f);
        return NULL;
    }
    err = FT_New_Face(f->library, path, 0, &f->face);
    if (!err)
        err = FT_Set_Pixel_Sizes(f->face, 0, (FT_UInt)px);
    if (err) {
        snprintf(why, why_size, "%s: not a font FreeType can use at %d pixels (error %d)", path,
                 px, err);
        view_font_close(f);
        return NULL;
    }
    /* 26.6 fixed point, rounded outwards so that no glyph is cut. */
    const FT_Size_Metrics *m = &f->face->size->metrics;
    f->ascent = (int)((m->ascender + 63) >> 6);
    f->height = f->ascent + (int)((-m->descender + 63) >> 6);
    return f;
}

void view_font_close(view_font *f)
{
    if (!f)
        return;
    if (f->face)
        FT_Done_Face(f->face);
    if (f->library)
        FT_Done_FreeType(f->library);
    free(f);
}

/* The next code point of UTF-8 text; a malformed sequence (overlong,
 * surrogate, beyond U+10FFFF, cut short) is one U+FFFD per byte. */
static uint32_t next_code_point(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t cp;
    int extra;
    if (p[0] < 0x80) {
        *s = p + 1;
        return p[0];
    } else if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        cp = p[0] & 0x1F;
        extra = 1;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        cp = p[0] & 0x0F;
        extra = 2;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        cp = p[0] & 0x07;
        extra = 3;
    } else {
        *s = p + 1;
        return 0xFFFD;
    }
    for (int i = 1; i <= extra; ++i) {
        if ((p[i] & 0xC0) != 0x80) {
            *s = p + 1;
            return 0xFFFD;
        }
        cp = cp << 6 | (p[i] & 0x3F);
    }
    static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *s = p + 1;
        return 0xFFFD;
    }
    *s = p + 1 + extra;
    return cp;
}

static int text_width(view_font *f, const char *utf8)
{
    int width = 0;
    for (const unsigned char *s = (const unsigned char *)utf8; *s;) {
        if (!FT_Load_Char(f->face, next_code_point(&s), FT_LOAD_DEFAULT))
            width += (int)((f->face->glyph->advance.x + 32) >> 6);
    }
    return width;
}

int view_font_mask(view_font *f, const char *utf8, view_mask *out)
{
    /* A pixel either side for glyphs that overhang their advance. */
    const int pad = 1;
    out->width = text_width(f, utf8) + 2 * pad;
    out->height = f->height;
    out->alpha = calloc((size_t)out->width * (size_t)out->height, 1);
    if (!out->alpha)
        return 0;
    int pen = pad;
    for (const unsigned char *s = (const unsigned char *)utf8; *s;) {
        if (FT_Load_Char(f->face, next_code_point(&s), FT_LOAD_RENDER))
            continue;
        const FT_GlyphSlot g = f->face->glyph;
        const FT_Bitmap *b = &g->bitmap;
        if (b->pixel_mode == FT_PIXEL_MODE_GRAY) {
            for (unsigned by = 0; by < b->rows; ++by)
                for (unsigned bx = 0; bx < b->width; ++bx) {
                    const int x = pen + g->bitmap_left + (int)bx;
                    const int y = f->ascent - g->bitmap_top + (int)by;
                    if (x < 0 || y < 0 || x >= out->width || y >= out->height)
                        continue;
                    const uint8_t a = b->buffer[(long)by * b->pitch + (long)bx];
                    uint8_t *dst = &out->alpha[(size_t)y * (size_t)out->width + (size_t)x];
                    if (a > *dst)
                        *dst = a;
                }
        }
        pen += (int)((g->advance.x + 32) >> 6);
    }
    return 1;
}
