/* PNG output through libpng. libpng reports errors by calling a handler
 * that must not return; ours keeps the message and jumps back to
 * write_png, so a failure (a full disk, say) becomes a sentence and an exit
 * code instead of libpng's own print to stderr and abort. */
#include "view.h"

#include "clattn.h"

#include <png.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct failure {
    char *why;
    size_t why_size;
} failure;

static void on_error(png_structp png, png_const_charp message)
{
    failure *f = png_get_error_ptr(png);
    snprintf(f->why, f->why_size, "libpng: %s", message);
    png_longjmp(png, 1);
}

/* Warnings concern ancillary details libpng fixes itself; the tool's
 * stderr stays for what the user must act on. */
static void on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static int write_png(FILE *file, const view_canvas *c, const char *description, failure *fail)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, fail, on_error, on_warning);
    if (!png) {
        snprintf(fail->why, fail->why_size, "libpng: cannot start a writer");
        return 0;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(fail->why, fail->why_size, "libpng: out of memory");
        return 0;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return 0;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, (png_uint_32)c->width, (png_uint_32)c->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    char software[64];
    snprintf(software, sizeof software, "attn-view (clattn %s)", clattn_version());
    png_text text[2];
    memset(text, 0, sizeof text);
    text[0].compression = PNG_TEXT_COMPRESSION_NONE;
    text[0].key = (png_charp) "Software";
    text[0].text = software;
    text[1].compression = PNG_TEXT_COMPRESSION_NONE;
    text[1].key = (png_charp) "Description";
    text[1].text = (png_charp)description;
    png_set_text(png, info, text, 2);
    png_write_info(png, info);
    for (int y = 0; y < c->height; ++y)
        png_write_row(png, c->rgb + (size_t)y * (size_t)c->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 1;
}

int view_png_write(const char *path, const view_canvas *c, const char *description, char *why,
                   size_t why_size)
{
    char detail[256] = "";
    failure fail = {detail, sizeof detail};
    FILE *file = fopen(path, "wb");
    if (!file) {
        snprintf(why, why_size, "%s: cannot create: %s", path, strerror(errno));
        return 0;
    }
    int ok = write_png(file, c, description, &fail);
    if (fclose(file) != 0 && ok) {
        snprintf(detail, sizeof detail, "%s", strerror(errno));
        ok = 0;
    }
    if (!ok) {
        snprintf(why, why_size, "%s: %s", path, detail);
        /* A partial image would look like a result. */
        remove(path);
    }
    return ok;
}
