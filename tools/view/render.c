/* The pictures: heat map cells, the colour bar with its two ends written
 * out, token labels along both axes of a head's image, and head numbers
 * over the grid's tiles. */
#include "view.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *why, size_t why_size, const char *what)
{
    snprintf(why, why_size, "out of memory for %s", what);
    return 0;
}

/* Keeps the first `width` columns of a mask, in place. */
static void crop(view_mask *m, int width)
{
    if (m->width <= width)
        return;
    for (int y = 0; y < m->height; ++y)
        memmove(m->alpha + (size_t)y * (size_t)width, m->alpha + (size_t)y * (size_t)m->width,
                (size_t)width);
    m->width = width;
}

static int number_mask(const view_frame *f, const char *text, view_mask *m)
{
    const int ok = f->number_font ? view_font_mask(f->number_font, text, m)
                                  : view_digits_mask(text, m);
    if (ok)
        crop(m, VIEW_NUMBER_WIDTH);
    return ok;
}

static view_rgb cell_colour(const view_frame *f, float w, int i, int j)
{
    if (!view_visible(f->causal, f->rows, f->cols, i, j))
        return view_masked_rgb;
    if (isnan(w))
        return view_nan_rgb;
    return view_cmap_entry(view_cmap_index(w, f->scale.vmin, f->scale.vmax));
}

static void draw_cells(view_canvas *c, const view_frame *f, const float *w, int x, int y)
{
    for (int i = 0; i < f->rows; ++i)
        for (int j = 0; j < f->cols; ++j)
            view_fill(c, x + j * f->cell, y + i * f->cell, f->cell, f->cell,
                      cell_colour(f, w[(size_t)i * (size_t)f->cols + (size_t)j], i, j));
}

/* The scale, highest value on top; its first and last pixel rows are
 * exactly the two ends of the map, and the numbers next to them say which
 * weights those are. */
static int draw_bar(view_canvas *c, const view_frame *f, const view_layout *l, char *why,
                    size_t why_size)
{
    for (int y = 0; y < l->bar_h; ++y) {
        const int index = (int)(((int64_t)(l->bar_h - 1 - y) * (VIEW_CMAP_SIZE - 1) +
                                 (l->bar_h - 1) / 2) /
                                (l->bar_h - 1));
        view_fill(c, l->bar_x, l->bar_y + y, VIEW_BAR_WIDTH, 1, view_cmap_entry(index));
    }
    const float ends[2] = {f->scale.vmax, f->scale.vmin};
    for (int e = 0; e < 2; ++e) {
        char text[32];
        snprintf(text, sizeof text, "%.3g", (double)ends[e]);
        view_mask m;
        if (!number_mask(f, text, &m))
            return fail(why, why_size, "the colour bar's numbers");
        const int x = l->bar_x + VIEW_BAR_WIDTH + VIEW_NUMBER_GAP;
        view_blit(c, &m, x, e == 0 ? l->bar_y : l->bar_y + l->bar_h - m.height, 0,
                  view_ink_rgb);
        view_mask_free(&m);
    }
    return 1;
}

/* Steps back from byte n of UTF-8 text to the start of a code point. */
static size_t code_point_start(const char *text, size_t n)
{
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Tokens are short; a line of a damaged file is cut to this before
 * anything is measured, so that shortening it stays cheap. */
#define LABEL_MAX_BYTES 256

/* A label at most VIEW_LABEL_MAX_WIDTH wide: a longer token shows as much of
 * its beginning as fits before an ellipsis. */
static int label_mask(view_font *font, const char *text, view_mask *m)
{
    if (!view_font_mask(font, text, m))
        return 0;
    if (m->width <= VIEW_LABEL_MAX_WIDTH)
        return 1;
    size_t n = strlen(text);
    n = code_point_start(text, n < LABEL_MAX_BYTES ? n : LABEL_MAX_BYTES);
    char buf[LABEL_MAX_BYTES + 4];
    while (n > 0 && m->width > VIEW_LABEL_MAX_WIDTH) {
        n = code_point_start(text, n - 1);
        memcpy(buf, text, n);
        memcpy(buf + n, "\xe2\x80\xa6", 4); /* U+2026 and the terminating NUL */
        view_mask_free(m);
        if (!view_font_mask(font, buf, m))
            return 0;
    }
    crop(m, VIEW_LABEL_MAX_WIDTH);
    return 1;
}

/* Masks of a head image's labels and the room they need. */
typedef struct labels {
    view_mask *rows, *cols;
    int room_w, room_h;
} labels;

static void labels_free(labels *lb, const view_frame *f)
{
    for (int i = 0; lb->rows && i < f->rows; ++i)
        view_mask_free(&lb->rows[i]);
    for (int j = 0; lb->cols && j < f->cols; ++j)
        view_mask_free(&lb->cols[j]);
    free(lb->rows);
    free(lb->cols);
}

static int labels_make(const view_frame *f, labels *lb)
{
    memset(lb, 0, sizeof *lb);
    if (!f->label_font || !f->row_labels || !f->col_labels)
        return 1;
    lb->rows = calloc((size_t)f->rows, sizeof *lb->rows);
    lb->cols = calloc((size_t)f->cols, sizeof *lb->cols);
    if (!lb->rows || !lb->cols)
        return 0;
    for (int i = 0; i < f->rows; ++i) {
        if (!label_mask(f->label_font, f->row_labels[i], &lb->rows[i]))
            return 0;
        if (lb->rows[i].width + VIEW_LABEL_GAP > lb->room_w)
            lb->room_w = lb->rows[i].width + VIEW_LABEL_GAP;
    }
    for (int j = 0; j < f->cols; ++j) {
        if (!label_mask(f->label_font, f->col_labels[j], &lb->cols[j]))
            return 0;
        if (lb->cols[j].width + VIEW_LABEL_GAP > lb->room_h)
            lb->room_h = lb->cols[j].width + VIEW_LABEL_GAP;
    }
    return 1;
}

/* Row labels end just left of the map, centred on their row; column
 * labels read upwards and end just above the map, centred on their column. */
static void draw_labels(view_canvas *c, const view_frame *f, const labels *lb,
                        const view_layout *l)
{
    if (!lb->rows)
        return;
    const int half = f->cell / 2;
    for (int i = 0; i < f->rows; ++i) {
        const view_mask *m = &lb->rows[i];
        view_blit(c, m, l->map_x - VIEW_LABEL_GAP - m->width,
                  l->map_y + i * f->cell + half - m->height / 2, 0, view_ink_rgb);
    }
    for (int j = 0; j < f->cols; ++j) {
        const view_mask *m = &lb->cols[j];
        view_blit(c, m, l->map_x + j * f->cell + half - m->height / 2,
                  l->map_y - VIEW_LABEL_GAP - m->width, 1, view_ink_rgb);
    }
}

int view_render_head(const view_frame *f, const float *w, view_canvas *out, char *why,
                     size_t why_size)
{
    labels lb;
    out->rgb = NULL;
    if (!labels_make(f, &lb)) {
        labels_free(&lb, f);
        return fail(why, why_size, "the labels");
    }
    view_layout l;
    view_layout_head(f->rows, f->cols, f->cell, lb.room_w, lb.room_h, &l);
    int ok = view_canvas_init(out, l.width, l.height, why, why_size);
    if (ok) {
        draw_cells(out, f, w, l.map_x, l.map_y);
        draw_labels(out, f, &lb, &l);
        ok = draw_bar(out, f, &l, why, why_size);
    }
    labels_free(&lb, f);
    if (!ok)
        view_canvas_free(out);
    return ok;
}

int view_render_grid(const view_frame *f, const float *w, int heads, view_canvas *out,
                     char *why, size_t why_size)
{
    view_layout l;
    view_layout_grid(heads, f->rows, f->cols, f->cell, &l);
    if (!view_canvas_init(out, l.width, l.height, why, why_size))
        return 0;
    const size_t per_head = (size_t)f->rows * (size_t)f->cols;
    for (int h = 0; h < heads; ++h) {
        const int x = l.map_x + (h % l.grid_cols) * l.pitch_x;
        const int y = l.map_y + (h / l.grid_cols) * l.pitch_y;
        draw_cells(out, f, w + (size_t)h * per_head, x, y);
        char text[16];
        snprintf(text, sizeof text, "%d", h);
        view_mask m;
        if (!number_mask(f, text, &m)) {
            view_canvas_free(out);
            return fail(why, why_size, "the head numbers");
        }
        view_blit(out, &m, x, y - VIEW_TITLE_HEIGHT + (VIEW_TITLE_HEIGHT - m.height) / 2, 0,
                  view_ink_rgb);
        view_mask_free(&m);
    }
    if (!draw_bar(out, f, &l, why, why_size)) {
        view_canvas_free(out);
        return 0;
    }
    return 1;
}
