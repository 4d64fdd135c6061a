/* An RGB image in memory, and the two ways anything gets onto it:
 * rectangles of one colour and text masks inked through their coverage. */
#include "view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int view_canvas_init(view_canvas *c, int width, int height, char *why, size_t why_size)
{
    c->width = width;
    c->height = height;
    c->rgb = NULL;
    if (width < 1 || height < 1 || width > VIEW_MAX_SIDE || height > VIEW_MAX_SIDE) {
        snprintf(why, why_size,
                 "an image of %d x %d pixels is outside 1..%d a side (a smaller --cell helps)",
                 width, height, VIEW_MAX_SIDE);
        return 0;
    }
    const size_t bytes = (size_t)width * (size_t)height * 3;
    c->rgb = malloc(bytes);
    if (!c->rgb) {
        snprintf(why, why_size, "out of memory for a %d x %d image", width, height);
        return 0;
    }
    view_fill(c, 0, 0, width, height, view_background_rgb);
    return 1;
}

void view_canvas_free(view_canvas *c)
{
    free(c->rgb);
    c->rgb = NULL;
}

void view_fill(view_canvas *c, int x, int y, int w, int h, view_rgb colour)
{
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > c->width ? c->width : x + w, y1 = y + h > c->height ? c->height : y + h;
    for (int yy = y0; yy < y1; ++yy) {
        uint8_t *p = c->rgb + ((size_t)yy * (size_t)c->width + (size_t)x0) * 3;
        for (int xx = x0; xx < x1; ++xx, p += 3) {
            p[0] = colour.r;
            p[1] = colour.g;
            p[2] = colour.b;
        }
    }
}

static void ink(view_canvas *c, int x, int y, uint8_t alpha, view_rgb colour)
{
    if (!alpha || x < 0 || y < 0 || x >= c->width || y >= c->height)
        return;
    uint8_t *p = c->rgb + ((size_t)y * (size_t)c->width + (size_t)x) * 3;
    const uint8_t src[3] = {colour.r, colour.g, colour.b};
    for (int k = 0; k < 3; ++k)
        p[k] = (uint8_t)((src[k] * alpha + p[k] * (255 - alpha) + 127) / 255);
}

void view_blit(view_canvas *c, const view_mask *m, int x, int y, int upward, view_rgb colour)
{
    for (int my = 0; my < m->height; ++my)
        for (int mx = 0; mx < m->width; ++mx) {
            const uint8_t a = m->alpha[(size_t)my * (size_t)m->width + (size_t)mx];
            /* A quarter turn counter-clockwise: the mask's rows become
             * columns, its first column the bottom row. */
            if (upward)
                ink(c, x + my, y + m->width - 1 - mx, a, colour);
            else
                ink(c, x + mx, y + my, a, colour);
        }
}

void view_mask_free(view_mask *m)
{
    free(m->alpha);
    memset(m, 0, sizeof *m);
}
