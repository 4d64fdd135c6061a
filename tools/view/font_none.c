/* The label font when attn-view is built without FreeType: there is none,
 * and the images carry no token labels (the numbers still come from
 * digits.c). */
#include "view.h"

#include <stdio.h>

view_font *view_font_open(const char *path, int px, char *why, size_t why_size)
{
    (void)path;
    (void)px;
    snprintf(why, why_size,
             "attn-view was built without FreeType (libfreetype-dev), so it draws no labels");
    return NULL;
}

void view_font_close(view_font *f)
{
    (void)f;
}

int view_font_mask(view_font *f, const char *utf8, view_mask *out)
{
    (void)f;
    (void)utf8;
    (void)out;
    return 0;
}
