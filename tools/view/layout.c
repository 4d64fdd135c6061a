/* Where the heat map, its labels and the colour bar go. Sizes are computed
 * in 64 bits and saturate just past VIEW_MAX_SIDE, so a huge problem with a
 * large --cell yields an image the canvas refuses by size, never a
 * wrapped-around small one. */
#include "view.h"

static int clamp_side(int64_t v)
{
    return v > VIEW_MAX_SIDE ? VIEW_MAX_SIDE + 1 : (int)v;
}

/* The colour bar and its numbers, right of a picture area ending at x. */
static int64_t bar_and_numbers(int64_t x, view_layout *l)
{
    l->bar_x = clamp_side(x + VIEW_BAR_GAP);
    return x + VIEW_BAR_GAP + VIEW_BAR_WIDTH + VIEW_NUMBER_GAP + VIEW_NUMBER_WIDTH + VIEW_MARGIN;
}

void view_layout_head(int rows, int cols, int cell, int label_w, int label_h, view_layout *l)
{
    const int64_t tw = (int64_t)cols * cell, th = (int64_t)rows * cell;
    const int64_t bar_h = th > VIEW_BAR_MIN_HEIGHT ? th : VIEW_BAR_MIN_HEIGHT;
    l->map_x = VIEW_MARGIN + label_w;
    l->map_y = VIEW_MARGIN + label_h;
    l->tile_w = clamp_side(tw);
    l->tile_h = clamp_side(th);
    l->pitch_x = l->tile_w;
    l->pitch_y = l->tile_h;
    l->grid_cols = 1;
    l->bar_y = l->map_y;
    l->bar_h = clamp_side(bar_h);
    l->width = clamp_side(bar_and_numbers(l->map_x + tw, l));
    l->height = clamp_side(l->map_y + bar_h + VIEW_MARGIN);
}

void view_layout_grid(int heads, int rows, int cols, int cell, view_layout *l)
{
    int gc = 1;
    while ((int64_t)gc * gc < heads)
        gc++;
    const int gr = (heads + gc - 1) / gc;
    const int64_t tw = (int64_t)cols * cell, th = (int64_t)rows * cell;
    const int64_t area_w = gc * tw + (gc - 1) * (int64_t)VIEW_TILE_GAP;
    /* Each tile row is a title line over the cells. */
    const int64_t area_h = gr * (VIEW_TITLE_HEIGHT + th) + (gr - 1) * (int64_t)VIEW_TILE_GAP;
    const int64_t bar_h = area_h - VIEW_TITLE_HEIGHT > VIEW_BAR_MIN_HEIGHT
                              ? area_h - VIEW_TITLE_HEIGHT
                              : VIEW_BAR_MIN_HEIGHT;
    l->map_x = VIEW_MARGIN;
    l->map_y = VIEW_MARGIN + VIEW_TITLE_HEIGHT;
    l->tile_w = clamp_side(tw);
    l->tile_h = clamp_side(th);
    l->pitch_x = clamp_side(tw + VIEW_TILE_GAP);
    l->pitch_y = clamp_side(VIEW_TITLE_HEIGHT + th + VIEW_TILE_GAP);
    l->grid_cols = gc;
    l->bar_y = l->map_y;
    l->bar_h = clamp_side(bar_h);
    l->width = clamp_side(bar_and_numbers(VIEW_MARGIN + area_w, l));
    l->height = clamp_side(l->map_y + bar_h + VIEW_MARGIN);
}
