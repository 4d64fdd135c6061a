/* Attention shapes for attn-tune tune and bench: the one-line shape syntax,
 * shape files, the presets and the named benchmark shapes.
 *
 * Syntax (tokens separated by blanks, in any order; '#' starts a comment):
 *
 *   B1 H8 Hkv2 Sq512 Skv512 D64 Dv64 causal dtype=f16
 *
 *   Bn      batch (default 1)            Hn    query heads (required)
 *   Hkvn    KV heads (default H)         Sn    seq_q = seq_kv = n
 *   Sqn     query rows                   Skvn  keys (Sq and Skv, or S: required)
 *   Dn      head_dim, 1..256 (required)  Dvn   V/O width (default D)
 *   causal (bottom-right, = causal_br) | causal_tl (top-left)
 *   window=L,R   keys L back and R ahead of the diagonal; -1 = unbounded
 *   dtype=f32|f16|bf16   (default f32)
 *
 * K/V storage (clattn.h's clattn_kv_format and clattn_paging; tune only):
 *
 *   kv=F         K and V stored as F: f32, f16, bf16, int8, int4, q8_0,
 *                q4_0, fp8_e4m3 (e4m3), fp8_e5m2 (e5m2); default the dtype
 *   k=F v=F      K's and V's apart (instead of kv=)
 *   group=N      int8/int4: channels per scale, 32, 64 or 128 (default the row)
 *   scales=f32|f16   int8/int4/fp8 scale type (default f32)
 *   per_head     fp8: a scale per kv head (default one per tensor)
 *   page=N       paged K/V, N keys a page (a power of two up to 256): a pool
 *                of B * ceil(Skv / N) pages, ceil(Skv / N) per sequence
 *
 *   B4 H32 Hkv8 Sq1 Skv4096 D128 kv=int8 page=16
 *
 * Letters are case-insensitive. Each token may appear once. */
#ifndef ATTN_TUNE_SHAPES_H
#define ATTN_TUNE_SHAPES_H

#include "clattn.h"

#include <stddef.h>
#include <stdint.h>

/* The longest line a shape file may hold, and the most shapes a list may. */
#define SHAPE_LINE_MAX 1024
#define SHAPE_LIST_MAX 256

typedef struct tool_shape {
    char name[16];     /* "P1" for a named shape, else "" */
    clattn_problem p;  /* kv_heads and head_dim_v filled in; path AUTO */
} tool_shape;

typedef struct tool_shape_list {
    tool_shape items[SHAPE_LIST_MAX];
    size_t count;
} tool_shape_list;

/* Parses one line (no newline). Returns 1 with *out set, 0 when the line
 * holds nothing but blanks or a comment, -1 with a message in err. */
int tool_shape_parse(const char *line, tool_shape *out, char *err, size_t err_size);

/* Reads a shape file, appending to list. On an error prints
 * "attn-tune: FILE:LINE: message" to stderr and returns 0. */
int tool_shape_file(const char *path, tool_shape_list *list);

/* Resolves a --shapes argument: an existing file, else a comma-separated list
 * of items, each a preset name (when presets is set: default, quick, bench),
 * a named benchmark shape (P1, P2, C1, G1, D1) or a shape in the syntax
 * above. Prints the reason and returns 0 on an error. */
int tool_shapes_resolve(const char *arg, int presets, tool_shape_list *list);

/* Helpers shared by shapes.c and shape_lists.c: append (0 when full);
 * case-insensitive compare of a[0..n) with b; text for a message (printable
 * ASCII kept, other bytes as \xHH, at most ~40 or max characters). */
int tool_shape_list_add(tool_shape_list *list, const tool_shape *s);
int tool_shape_ieq(const char *a, size_t n, const char *b);
void tool_shape_quote(const char *s, size_t n, char *buf, size_t size);
void tool_shape_quote_max(const char *s, size_t n, size_t max, char *buf, size_t size);

/* Prints each shape ("NAME " first when named) on stdout; returns 0. */
int tool_list_shapes(const tool_shape_list *list);

/* "B1 H8 S512 D64 causal" (canonical text; what the parser reads back). The
 * longest shape takes under 160 characters. */
void tool_shape_format(const tool_shape *s, char *buf, size_t size);

/* Useful FLOPs of one forward: 2 * (D + Dv) per visible (query, key) pair,
 * the pairs counted exactly from the causal and window rules. */
double tool_shape_flops(const tool_shape *s);

/* Elements of q, k, v and o (packed; a paged K or V: its whole pool). */
void tool_shape_elements(const tool_shape *s, int64_t *q, int64_t *k, int64_t *v, int64_t *o);

#endif /* ATTN_TUNE_SHAPES_H */
