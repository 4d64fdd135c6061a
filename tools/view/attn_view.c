/* attn-view: writes the attention weights of a problem (Q and K from .npy
 * files) as PNG heat maps, one image per head and a grid of all heads,
 * with a colour bar. Everything is checked before the device is opened,
 * so a bad input costs no kernel build. */
#define _POSIX_C_SOURCE 200809L

#include "view.h"

#include "clattn.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_SIZE 4096
/* Heat maps aim at about this many pixels a side when --cell is not given. */
#define AUTO_SIDE 512
#define AUTO_CELL_MAX 24
/* Label text needs cells at least this tall to be read. */
#define LABEL_CELL_MIN 9
#define LABEL_PX_MAX 13

typedef struct options {
    const char *q, *k, *tokens, *layer_dump, *out, *font;
    int causal, batch, cell;
    int have_scale;
    float scale;
    int have_vmin, have_vmax;
    float vmin, vmax;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: attn-view (--q Q.npy --k K.npy [--tokens FILE] | --layer-dump DIR)\n"
            "                 [--out DIR] [--batch N] [--causal none|bottom_right|top_left]\n"
            "                 [--scale S] [--cell PIXELS] [--vmin X] [--vmax X] [--font FILE]\n"
            "\n"
            "Writes the attention weights softmax(scale * Q K^T) of one batch entry as PNG\n"
            "heat maps: DIR/head_NN.png per head and DIR/grid.png with every head, each with\n"
            "a colour bar (dark = low, yellow = high). Cells a causal mask hides are grey,\n"
            "NaN weights red. The weights come from clattn_attention_weights_host on the\n"
            "default device (CLATTN_DEVICE=P:D chooses another).\n"
            "\n"
            "  --q, --k FILE       float32 ('<f4') or float16 ('<f2') .npy, C order, shaped\n"
            "                      [heads, seq, dim] or [batch, heads, seq, dim]; K may have\n"
            "                      fewer heads than Q when they divide Q's (GQA, MQA)\n"
            "  --tokens FILE       one token per line, one line per key: axis labels (needs\n"
            "                      attn-view built with FreeType and a font); when there are\n"
            "                      fewer queries than keys, query i is labelled with token\n"
            "                      i + keys - queries (top_left: token i)\n"
            "  --layer-dump DIR    DIR/q.npy, DIR/k.npy and DIR/tokens.txt\n"
            "  --out DIR           where the images go (made if missing; default .)\n"
            "  --batch N           which batch entry of 4-d inputs (default 0)\n"
            "  --causal RULE       clattn's causal masks (default none)\n"
            "  --scale S           score scale, any finite non-zero value (default 1/sqrt(dim))\n"
            "  --cell PIXELS       pixels per weight, 1..64 (default: about %d pixels a side,\n"
            "                      at most %d per cell; with --tokens at least %d)\n"
            "  --vmin, --vmax X    the ends of the colour scale (default: the smallest and\n"
            "                      largest weight a query can see, over all heads)\n"
            "  --font FILE         a font for labels and numbers instead of the default\n",
            AUTO_SIDE, AUTO_CELL_MAX, LABEL_CELL_MIN);
}

/* "--name value" or "--name=value": 1 on a match, -1 when the value is
 * missing, 0 for another option. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "attn-view: %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

static int parse_int(const char *name, const char *text, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    const long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "attn-view: %s expects a whole number in %ld..%ld, not '%s'\n", name, lo,
                hi, text);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int parse_float(const char *name, const char *text, float *out)
{
    char *end;
    errno = 0;
    const float v = strtof(text, &end);
    if (errno || end == text || *end || !isfinite(v)) {
        fprintf(stderr, "attn-view: %s expects a finite number, not '%s'\n", name, text);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_causal(const char *text, int *out)
{
    if (strcmp(text, "none") == 0)
        *out = CLATTN_CAUSAL_NONE;
    else if (strcmp(text, "bottom_right") == 0 || strcmp(text, "bottom-right") == 0)
        *out = CLATTN_CAUSAL_BOTTOM_RIGHT;
    else if (strcmp(text, "top_left") == 0 || strcmp(text, "top-left") == 0)
        *out = CLATTN_CAUSAL_TOP_LEFT;
    else {
        fprintf(stderr, "attn-view: --causal is none, bottom_right or top_left, not '%s'\n",
                text);
        return 0;
    }
    return 1;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; ++i) {
        const char *v = NULL;
        int r = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return VIEW_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("attn-view (clattn %s)\n", clattn_version());
            return VIEW_EXIT_OK;
        }
#define STRING_OPTION(name, field)                                                           \
    if ((r = option_value(argc, argv, &i, name, &v)) != 0) {                                 \
        if (r < 0)                                                                           \
            return VIEW_EXIT_USAGE;                                                          \
        o->field = v;                                                                        \
        continue;                                                                            \
    }
        STRING_OPTION("--q", q)
        STRING_OPTION("--k", k)
        STRING_OPTION("--tokens", tokens)
        STRING_OPTION("--layer-dump", layer_dump)
        STRING_OPTION("--out", out)
        STRING_OPTION("--font", font)
#undef STRING_OPTION
        int ok = 1;
        if ((r = option_value(argc, argv, &i, "--batch", &v)) > 0)
            ok = parse_int("--batch", v, 0, 1 << 30, &o->batch);
        else if (!r && (r = option_value(argc, argv, &i, "--cell", &v)) > 0)
            ok = parse_int("--cell", v, 1, 64, &o->cell);
        else if (!r && (r = option_value(argc, argv, &i, "--causal", &v)) > 0)
            ok = parse_causal(v, &o->causal);
        else if (!r && (r = option_value(argc, argv, &i, "--scale", &v)) > 0)
            ok = o->have_scale = parse_float("--scale", v, &o->scale);
        else if (!r && (r = option_value(argc, argv, &i, "--vmin", &v)) > 0)
            ok = o->have_vmin = parse_float("--vmin", v, &o->vmin);
        else if (!r && (r = option_value(argc, argv, &i, "--vmax", &v)) > 0)
            ok = o->have_vmax = parse_float("--vmax", v, &o->vmax);
        if (r < 0 || !ok)
            return VIEW_EXIT_USAGE;
        if (r == 0) {
            fprintf(stderr, "attn-view: unknown argument '%s' (--help lists the options)\n",
                    argv[i]);
            return VIEW_EXIT_USAGE;
        }
    }
    if (o->layer_dump ? (o->q || o->k || o->tokens) : (!o->q || !o->k)) {
        fprintf(stderr, "attn-view: give --q and --k (and perhaps --tokens), or --layer-dump "
                        "alone\n");
        return VIEW_EXIT_USAGE;
    }
    if (o->have_scale && o->scale == 0.0f) {
        fprintf(stderr, "attn-view: --scale 0 would mean clattn's default, 1/sqrt(dim); give a "
                        "non-zero scale or leave the option out\n");
        return VIEW_EXIT_USAGE;
    }
    if (o->have_vmin && o->have_vmax && !(o->vmin < o->vmax)) {
        fprintf(stderr, "attn-view: --vmin (%g) must be below --vmax (%g)\n", (double)o->vmin,
                (double)o->vmax);
        return VIEW_EXIT_USAGE;
    }
    return -1;
}

/* The ends of the colour scale: what the user fixed, else the extremes of
 * the weights a query can see (masked zeros and NaN would only stretch or
 * poison it), over every head so that the images compare. A scale that
 * comes out empty falls back to the probabilities' own range, [0, 1]. */
static view_scale choose_scale(const options *o, const view_inputs *in, const float *probs)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int h = 0; h < in->heads; ++h)
        for (int i = 0; i < in->seq_q; ++i)
            for (int j = 0; j < in->seq_kv; ++j) {
                const float w =
                    probs[((size_t)h * (size_t)in->seq_q + (size_t)i) * (size_t)in->seq_kv +
                          (size_t)j];
                if (isnan(w) || !view_visible(o->causal, in->seq_q, in->seq_kv, i, j))
                    continue;
                lo = w < lo ? w : lo;
                hi = w > hi ? w : hi;
            }
    if (o->have_vmin)
        lo = o->vmin;
    if (o->have_vmax)
        hi = o->vmax;
    if (!(lo < hi)) {
        if (o->have_vmin)
            hi = lo < 1.0f ? 1.0f : lo + 1.0f;
        else if (o->have_vmax)
            lo = hi > 0.0f ? 0.0f : hi - 1.0f;
        else {
            lo = 0.0f;
            hi = hi > 0.0f && isfinite(hi) ? hi : 1.0f;
        }
    }
    const view_scale s = {lo, hi};
    return s;
}

static int make_dir(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 1;
        fprintf(stderr, "attn-view: --out %s exists and is not a directory\n", path);
        return 0;
    }
    if (mkdir(path, 0777) != 0) {
        fprintf(stderr, "attn-view: cannot make --out %s: %s\n", path, strerror(errno));
        return 0;
    }
    return 1;
}

static int join(char *buf, const char *dir, const char *name)
{
    const int n = snprintf(buf, PATH_SIZE, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_SIZE) {
        fprintf(stderr, "attn-view: path too long: %s/%s\n", dir, name);
        return 0;
    }
    return 1;
}

static int default_cell(const view_inputs *in)
{
    const int side = in->seq_q > in->seq_kv ? in->seq_q : in->seq_kv;
    int cell = AUTO_SIDE / side;
    cell = cell < 1 ? 1 : cell > AUTO_CELL_MAX ? AUTO_CELL_MAX : cell;
    /* Labels are worth a larger image, up to an eighth of the largest. */
    if (in->tokens && cell < LABEL_CELL_MIN &&
        (int64_t)side * LABEL_CELL_MIN <= VIEW_MAX_SIDE / 8)
        cell = LABEL_CELL_MIN;
    return cell;
}

/* Both kinds of image fit VIEW_MAX_SIDE (label room at its largest)? Said
 * before the device computes anything. */
static int check_sizes(const view_inputs *in, int cell)
{
    const int room = in->tokens ? VIEW_LABEL_MAX_WIDTH + VIEW_LABEL_GAP : 0;
    view_layout head, grid;
    view_layout_head(in->seq_q, in->seq_kv, cell, room, room, &head);
    view_layout_grid(in->heads, in->seq_q, in->seq_kv, cell, &grid);
    if (head.width > VIEW_MAX_SIDE || head.height > VIEW_MAX_SIDE ||
        grid.width > VIEW_MAX_SIDE || grid.height > VIEW_MAX_SIDE) {
        fprintf(stderr,
                "attn-view: %d heads of %d x %d weights at %d pixels a cell make images over %d "
                "pixels a side; use a smaller --cell\n",
                in->heads, in->seq_q, in->seq_kv, cell, VIEW_MAX_SIDE);
        return 0;
    }
    return 1;
}

/* The fonts, before the device is opened: a --font that cannot be used is
 * the user's error; the default face missing only costs the labels (the
 * numbers then come from digits.c). Labels need tokens and cells that can
 * hold text. */
static int open_fonts(const options *o, const view_inputs *in, int cell, view_frame *f)
{
    char why[512];
    f->number_font = view_font_open(o->font, VIEW_NUMBER_PX, why, sizeof why);
    if (!f->number_font && o->font) {
        fprintf(stderr, "attn-view: --font: %s\n", why);
        return 0;
    }
    if (!in->tokens)
        return 1;
    const int px = cell - 2 < LABEL_PX_MAX ? cell - 2 : LABEL_PX_MAX;
    f->label_font = view_font_open(o->font, px > 1 ? px : 1, why, sizeof why);
    if (!f->label_font) {
        printf("attn-view: no token labels: %s\n", why);
        return 1;
    }
    if (cell < LABEL_CELL_MIN) {
        view_font_close(f->label_font);
        f->label_font = NULL;
        printf("attn-view: no token labels: cells of %d pixels are too small for text (--cell "
               "%d or more)\n",
               cell, LABEL_CELL_MIN);
        return 1;
    }
    /* Query i stands where the causal rule puts it among the keys. */
    const int offset = o->causal == CLATTN_CAUSAL_TOP_LEFT ? 0 : in->seq_kv - in->seq_q;
    f->col_labels = (const char *const *)in->tokens;
    /* More queries than keys leaves some queries without a token. */
    f->row_labels = offset < 0 ? NULL : (const char *const *)in->tokens + offset;
    return 1;
}

static int write_images(const options *o, const view_inputs *in, const float *probs,
                        const view_frame *f)
{
    const char *dir = o->out ? o->out : ".";
    char path[PATH_SIZE], name[64], why[1024], description[256];
    int digits = 2;
    for (int h = in->heads - 1; h >= 100 && digits < 10; h /= 10)
        digits++;
    const size_t per_head = (size_t)in->seq_q * (size_t)in->seq_kv;
    view_canvas c;
    for (int h = 0; h < in->heads; ++h) {
        snprintf(name, sizeof name, "head_%0*d.png", digits, h);
        snprintf(description, sizeof description,
                 "attention weights of head %d, batch entry %d; colour scale %.9g..%.9g", h,
                 o->batch, (double)f->scale.vmin, (double)f->scale.vmax);
        if (!join(path, dir, name))
            return 0;
        if (!view_render_head(f, probs + (size_t)h * per_head, &c, why, sizeof why)) {
            fprintf(stderr, "attn-view: %s\n", why);
            return 0;
        }
        const int written = view_png_write(path, &c, description, why, sizeof why);
        view_canvas_free(&c);
        if (!written) {
            fprintf(stderr, "attn-view: %s\n", why);
            return 0;
        }
    }
    snprintf(description, sizeof description,
             "attention weights of heads 0..%d, batch entry %d; colour scale %.9g..%.9g",
             in->heads - 1, o->batch, (double)f->scale.vmin, (double)f->scale.vmax);
    if (!join(path, dir, "grid.png"))
        return 0;
    int ok = view_render_grid(f, probs, in->heads, &c, why, sizeof why);
    if (ok) {
        ok = view_png_write(path, &c, description, why, sizeof why);
        view_canvas_free(&c);
    }
    if (!ok) {
        fprintf(stderr, "attn-view: %s\n", why);
        return 0;
    }
    printf("attn-view: wrote %s/head_%0*d.png .. head_%0*d.png and %s/grid.png\n", dir, digits,
           0, digits, in->heads - 1, dir);
    return 1;
}

static int run(const options *o)
{
    char q_path[PATH_SIZE], k_path[PATH_SIZE], t_path[PATH_SIZE], why[1024];
    const char *q = o->q, *k = o->k, *tokens = o->tokens;
    if (o->layer_dump) {
        if (!join(q_path, o->layer_dump, "q.npy") || !join(k_path, o->layer_dump, "k.npy") ||
            !join(t_path, o->layer_dump, "tokens.txt"))
            return VIEW_EXIT_USAGE;
        q = q_path;
        k = k_path;
        tokens = t_path;
    }
    view_inputs in;
    memset(&in, 0, sizeof in);
    if (!view_load_qk(q, k, o->batch, &in, why, sizeof why) ||
        (tokens && !view_load_tokens(tokens, &in, why, sizeof why))) {
        fprintf(stderr, "attn-view: %s\n", why);
        view_inputs_free(&in);
        return VIEW_EXIT_FAILURE;
    }
    const int cell = o->cell ? o->cell : default_cell(&in);
    view_frame f;
    memset(&f, 0, sizeof f);
    f.rows = in.seq_q;
    f.cols = in.seq_kv;
    f.cell = cell;
    f.causal = o->causal;
    int ok = check_sizes(&in, cell) && (!o->out || make_dir(o->out)) &&
             open_fonts(o, &in, cell, &f);
    const size_t count = (size_t)in.heads * (size_t)in.seq_q * (size_t)in.seq_kv;
    float *probs = NULL;
    if (ok) {
        probs = malloc(count * sizeof(float));
        if (!probs)
            snprintf(why, sizeof why, "out of memory for %zu weights", count);
        if (!probs || !view_compute_weights(&in, o->causal, o->scale, probs, why, sizeof why)) {
            fprintf(stderr, "attn-view: %s\n", why);
            ok = 0;
        }
    }
    if (ok) {
        f.scale = choose_scale(o, &in, probs);
        printf("attn-view: batch entry %d of %d: %d heads (K: %d), %d queries x %d keys, dim "
               "%d; colour scale %.3g .. %.3g\n",
               o->batch, in.batches, in.heads, in.kv_heads, in.seq_q, in.seq_kv, in.head_dim,
               (double)f.scale.vmin, (double)f.scale.vmax);
        ok = write_images(o, &in, probs, &f);
    }
    view_font_close(f.label_font);
    view_font_close(f.number_font);
    free(probs);
    view_inputs_free(&in);
    return ok ? VIEW_EXIT_OK : VIEW_EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    const int parsed = parse_args(argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    return run(&o);
}
