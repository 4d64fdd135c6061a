/* attn-view: the attention weights of a problem as PNG heatmaps. What its
 * parts share. Every function that can fail returns 0 and writes a
 * sentence saying why into (why, why_size); the caller prints it, so the
 * parts never write to stderr themselves. */
#ifndef ATTN_VIEW_H
#define ATTN_VIEW_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes, as attn-tune's: bad data or a failed computation is 1, a bad
 * command line 2. */
#define VIEW_EXIT_OK 0
#define VIEW_EXIT_FAILURE 1
#define VIEW_EXIT_USAGE 2

/* ---- npy.c: a strict reader of NumPy's .npy format ----------------------- */

#define NPY_MAX_DIMS 8

typedef struct npy_array {
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int half;     /* 1: the file held '<f2', converted to float here */
    size_t count; /* elements, the product of shape */
    float *data;  /* C order */
} npy_array;

/* Reads a little-endian float32 or float16 array in C order (format
 * versions 1.0, 2.0 and 3.0) and refuses anything else. */
int npy_read(const char *path, npy_array *out, char *why, size_t why_size);
void npy_free(npy_array *a);

/* ---- inputs.c: Q, K and the token labels --------------------------------- */

typedef struct view_inputs {
    int batches;  /* in the files: 1 for 3-d arrays */
    int heads, kv_heads, seq_q, seq_kv, head_dim;
    float *q;     /* the chosen batch entry, [heads][seq_q][head_dim] */
    float *k;     /* [kv_heads][seq_kv][head_dim] */
    char **tokens; /* num_tokens labels, or NULL */
    int num_tokens;
} view_inputs;

/* Loads Q and K ([heads, seq, dim] or [batch, heads, seq, dim], the same
 * rank, batch and dim, K's heads dividing Q's) and keeps batch entry
 * `batch`. */
int view_load_qk(const char *q_path, const char *k_path, int batch, view_inputs *in, char *why,
                 size_t why_size);

/* One label per line (a final newline ends the last one, "\r\n" is
 * accepted); there must be seq_kv of them. */
int view_load_tokens(const char *path, view_inputs *in, char *why, size_t why_size);

void view_inputs_free(view_inputs *in);

/* ---- weights.c: the probabilities, from clattn ---------------------------- */

/* probs: [heads][seq_q][seq_kv], from clattn_attention_weights_host on the
 * default device (CLATTN_DEVICE, else clattn's choice). scale 0 is
 * 1/sqrt(head_dim). */
int view_compute_weights(const view_inputs *in, int causal, float scale, float *probs,
                         char *why, size_t why_size);

/* Whether query row i sees key j under the causal rule of clattn.h (the
 * masked cells are drawn apart from weights that are merely small). */
int view_visible(int causal, int seq_q, int seq_kv, int i, int j);

/* ---- colormap.c: the colour scale ---------------------------------------- */

#define VIEW_CMAP_SIZE 256

typedef struct view_rgb {
    uint8_t r, g, b;
} view_rgb;

/* Cells that a causal mask hides, cells whose weight is NaN, the page,
 * the text. */
extern const view_rgb view_masked_rgb, view_nan_rgb, view_background_rgb, view_ink_rgb;

/* Entry i of the map, 0 (darkest) .. VIEW_CMAP_SIZE - 1 (lightest). */
view_rgb view_cmap_entry(int i);

/* The entry a value falls in on the scale vmin..vmax (vmin < vmax),
 * clamped at both ends. */
int view_cmap_index(float value, float vmin, float vmax);

/* ---- canvas.c: an RGB image in memory ------------------------------------ */

typedef struct view_canvas {
    int width, height;
    uint8_t *rgb; /* width * height * 3, rows top to bottom */
} view_canvas;

/* A grey-level coverage image of some text: height rows of width bytes,
 * 0 (paper) .. 255 (ink). */
typedef struct view_mask {
    int width, height;
    uint8_t *alpha;
} view_mask;

int view_canvas_init(view_canvas *c, int width, int height, char *why, size_t why_size);
void view_canvas_free(view_canvas *c);
/* Everything outside the canvas is clipped. */
void view_fill(view_canvas *c, int x, int y, int w, int h, view_rgb colour);
/* Ink `colour` through the mask with its top-left corner at (x, y);
 * upward != 0 turns it a quarter turn counter-clockwise first (text that
 * reads bottom to top), so it then covers mask->height by mask->width. */
void view_blit(view_canvas *c, const view_mask *m, int x, int y, int upward, view_rgb colour);
void view_mask_free(view_mask *m);

/* ---- digits.c: numerals that need no font library ------------------------ */

/* The digits, '.', '-', '+' and 'e' of `text` (other characters leave a
 * gap) in a 5x7 bitmap face of the tool's own; VIEW_DIGITS_HEIGHT rows. */
#define VIEW_DIGITS_HEIGHT 9
int view_digits_mask(const char *text, view_mask *out);

/* ---- font_freetype.c / font_none.c: labels ------------------------------- */

typedef struct view_font view_font;

/* The face at path (NULL: the default the build found) at px pixels per
 * em, or NULL with the reason when the tool has no font library or the
 * file cannot be used. */
view_font *view_font_open(const char *path, int px, char *why, size_t why_size);
void view_font_close(view_font *f);
/* UTF-8 text as a mask as tall as the face's line (so that labels of one
 * size share a baseline); invalid UTF-8 bytes draw as U+FFFD. */
int view_font_mask(view_font *f, const char *utf8, view_mask *out);

/* ---- layout.c: where things go ------------------------------------------- */

/* Fixed sizes in pixels. The colour bar stands right of the heat map,
 * VIEW_BAR_GAP away, VIEW_BAR_WIDTH wide and as tall as the map (at least
 * VIEW_BAR_MIN_HEIGHT, so that its two numbers never meet), its numbers
 * VIEW_NUMBER_GAP right of it in a column VIEW_NUMBER_WIDTH wide. */
#define VIEW_MARGIN 8
#define VIEW_BAR_GAP 12
#define VIEW_BAR_WIDTH 16
#define VIEW_BAR_MIN_HEIGHT 96
#define VIEW_NUMBER_GAP 4
#define VIEW_NUMBER_WIDTH 64
#define VIEW_LABEL_GAP 4
/* A label's longest side: a long token must not push the map off the page. */
#define VIEW_LABEL_MAX_WIDTH 120
/* Grid: tiles VIEW_TILE_GAP apart, each under a title line holding the
 * head's number. */
#define VIEW_TILE_GAP 8
#define VIEW_TITLE_HEIGHT 14
/* Pixels per em of the numbers when a font is there. */
#define VIEW_NUMBER_PX 11

typedef struct view_layout {
    int width, height;
    int map_x, map_y;    /* top-left of the heat map (grid: of tile 0) */
    int tile_w, tile_h;  /* one head's cells: cols * cell, rows * cell */
    int pitch_x, pitch_y; /* grid: from one tile to the next */
    int grid_cols;       /* tiles per row (1 for a single head) */
    int bar_x, bar_y, bar_h;
} view_layout;

/* A single head's image with labels label_w wide (left) and label_h tall
 * (above), both 0 without labels. */
void view_layout_head(int rows, int cols, int cell, int label_w, int label_h, view_layout *l);
/* All heads, tiles in rows of ceil(sqrt(heads)). */
void view_layout_grid(int heads, int rows, int cols, int cell, view_layout *l);

/* ---- render.c: the images -------------------------------------------------- */

typedef struct view_scale {
    float vmin, vmax; /* vmin < vmax */
} view_scale;

/* What every image of a run shares. */
typedef struct view_frame {
    int rows, cols, cell, causal;
    view_scale scale;
    view_font *label_font;  /* NULL: no token labels */
    view_font *number_font; /* NULL: the built-in numerals */
    const char *const *row_labels; /* rows entries, or NULL */
    const char *const *col_labels; /* cols entries, or NULL */
} view_frame;

/* One head's weights [rows][cols]. */
int view_render_head(const view_frame *f, const float *w, view_canvas *out, char *why,
                     size_t why_size);
/* heads maps [heads][rows][cols], no labels. */
int view_render_grid(const view_frame *f, const float *w, int heads, view_canvas *out,
                     char *why, size_t why_size);

/* The largest side of an image the tool will make. */
#define VIEW_MAX_SIDE 32768

/* ---- png_write.c ----------------------------------------------------------- */

/* Writes an 8-bit RGB PNG with a Software and a Description text chunk. */
int view_png_write(const char *path, const view_canvas *c, const char *description, char *why,
                   size_t why_size);

#endif /* ATTN_VIEW_H */
