/* attn-tune's shape lists: the presets of 'tune', the named benchmark shapes
 * and the --shapes argument that selects among them. */
#define _POSIX_C_SOURCE 200809L
#include "shapes.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct named_shape {
    const char *name, *text;
} named_shape;

/* The benchmark shapes (BENCHMARKS.md): prefill, long causal prefill,
 * cross-attention, GQA prefill, GQA decode. */
static const named_shape k_bench[] = {
    {"P1", "B1 H8 S1024 D64"},
    {"P2", "B1 H8 S2048 D128 causal"},
    {"C1", "B2 H8 Sq256 Skv1024 D64"},
    {"G1", "B1 H32 Hkv8 S512 D128 causal"},
    {"D1", "B4 H32 Hkv8 Sq1 Skv4096 D128"},
};

/* What 'attn-tune tune' covers by default: prefill, cross-attention, GQA and
 * decode at head dims 64 and 128, small enough for a CPU device. */
static const char *const k_default[] = {
    "B1 H8 S512 D64 causal",
    "B1 H8 S256 D128",
    "B2 H8 Sq128 Skv512 D64",
    "B1 H16 Hkv4 S256 D128 causal",
    "B4 H16 Hkv4 Sq1 Skv2048 D64",
    "B4 H16 Hkv4 Sq1 Skv2048 D128",
};

/* Two tiny shapes (a prefill and a decode step) for tests. */
static const char *const k_quick[] = {
    "B1 H2 S64 D32 causal",
    "B1 H2 Hkv1 Sq1 Skv256 D32",
};

static int add_text(tool_shape_list *list, const char *name, const char *text)
{
    tool_shape s;
    char err[400];
    if (tool_shape_parse(text, &s, err, sizeof err) != 1) {
        fprintf(stderr, "attn-tune: built-in shape '%s': %s\n", text, err); /* a bug */
        return 0;
    }
    if (name) snprintf(s.name, sizeof s.name, "%s", name);
    if (!tool_shape_list_add(list, &s)) {
        fprintf(stderr, "attn-tune: more than %d shapes\n", SHAPE_LIST_MAX);
        return 0;
    }
    return 1;
}

static int add_preset(tool_shape_list *list, const char *const *texts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!add_text(list, NULL, texts[i])) return 0;
    return 1;
}

int tool_shapes_resolve(const char *arg, int presets, tool_shape_list *list)
{
    struct stat st;
    char item[SHAPE_LINE_MAX + 1];
    const char *s = arg;
    int index = 0;
    if (stat(arg, &st) == 0 && !S_ISDIR(st.st_mode)) return tool_shape_file(arg, list);
    /* Something that looks like a path but is not there: say so. */
    if (!strchr(arg, ' ') && !strchr(arg, ',') && (strchr(arg, '/') || strchr(arg, '.')))
        return tool_shape_file(arg, list);
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        size_t b = 0;
        int matched = 0;
        index++;
        /* Trim blanks around the item. */
        while (b < n && (s[b] == ' ' || s[b] == '\t')) b++;
        while (n > b && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
        if (n - b > SHAPE_LINE_MAX) {
            fprintf(stderr, "attn-tune: --shapes item %d: too long\n", index);
            return 0;
        }
        memcpy(item, s + b, n - b);
        item[n - b] = '\0';
        if (presets && tool_shape_ieq(item, strlen(item), "default")) {
            if (!add_preset(list, k_default, sizeof k_default / sizeof k_default[0])) return 0;
            matched = 1;
        } else if (presets && tool_shape_ieq(item, strlen(item), "quick")) {
            if (!add_preset(list, k_quick, sizeof k_quick / sizeof k_quick[0])) return 0;
            matched = 1;
        } else if (presets && tool_shape_ieq(item, strlen(item), "bench")) {
            for (size_t i = 0; i < sizeof k_bench / sizeof k_bench[0]; i++)
                if (!add_text(list, k_bench[i].name, k_bench[i].text)) return 0;
            matched = 1;
        }
        for (size_t i = 0; !matched && i < sizeof k_bench / sizeof k_bench[0]; i++) {
            if (tool_shape_ieq(item, strlen(item), k_bench[i].name)) {
                if (!add_text(list, k_bench[i].name, k_bench[i].text)) return 0;
                matched = 1;
            }
        }
        if (!matched) {
            tool_shape sh;
            char err[400], q[200];
            int got = tool_shape_parse(item, &sh, err, sizeof err);
            tool_shape_quote(item, strlen(item), q, sizeof q);
            if (got == 0) snprintf(err, sizeof err, "empty item");
            if (got != 1) {
                fprintf(stderr,
                        "attn-tune: --shapes item %d ('%s'): %s\n"
                        "attn-tune: --shapes takes %sP1, P2, C1, G1, D1, a shape such as "
                        "'B1 H8 S512 D64 causal', a comma-separated list of those, or a "
                        "shape file\n",
                        index, q, err, presets ? "a preset (default, quick, bench), " : "");
                return 0;
            }
            if (!tool_shape_list_add(list, &sh)) {
                fprintf(stderr, "attn-tune: more than %d shapes\n", SHAPE_LIST_MAX);
                return 0;
            }
        }
        if (!comma) break;
        s = comma + 1;
    }
    return 1;
}

int tool_list_shapes(const tool_shape_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        char text[160];
        tool_shape_format(&list->items[i], text, sizeof text);
        printf("%s%s%s\n", list->items[i].name, list->items[i].name[0] ? " " : "", text);
    }
    return 0;
}

