#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "util.h"

#define MAX_VOCAB_BYTES ((size_t)64 << 20)
/* Hugging Face's WordPiece default (max_input_chars_per_word). */
#define MAX_WORD_CHARS 100
#define CONTINUATION "##"

static const char *const k_specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
#define NUM_SPECIALS (sizeof k_specials / sizeof k_specials[0])

/* FNV-1a. */
static uint32_t hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; ++i)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

int32_t tokenizer_id(const tokenizer *t, const char *piece, size_t len)
{
    for (size_t i = hash(piece, len) & t->mask;; i = (i + 1) & t->mask) {
        const int32_t id = t->slots[i];
        if (id < 0)
            return -1;
        const char *p = t->pieces[id];
        if (strlen(p) == len && !memcmp(p, piece, len))
            return id;
    }
}

/* A piece listed twice keeps its last id, as Hugging Face's loader does. */
static void insert(tokenizer *t, int32_t id)
{
    const char *piece = t->pieces[id];
    const size_t len = strlen(piece);
    size_t i = hash(piece, len) & t->mask;
    for (; t->slots[i] >= 0; i = (i + 1) & t->mask)
        if (!strcmp(t->pieces[t->slots[i]], piece))
            break;
    t->slots[i] = id;
}

static int32_t required(const tokenizer *t, const char *path, const char *piece)
{
    const int32_t id = tokenizer_id(t, piece, strlen(piece));
    if (id < 0)
        die("%s: no %s token in the vocabulary", path, piece);
    return id;
}

void tokenizer_load(tokenizer *t, const char *vocab_path, int max_len)
{
    memset(t, 0, sizeof *t);
    size_t size;
    t->text = (char *)read_file(vocab_path, MAX_VOCAB_BYTES, &size);
    if (memchr(t->text, '\0', size))
        die("%s: contains a NUL byte; not a vocabulary", vocab_path);
    size_t lines = 0;
    for (size_t i = 0; i < size; ++i)
        lines += t->text[i] == '\n';
    lines += size && t->text[size - 1] != '\n';
    if (!lines)
        die("%s: empty vocabulary", vocab_path);
    t->count = (int)lines;
    t->pieces = xmalloc(lines * sizeof *t->pieces);
    char *line = t->text;
    for (size_t n = 0; n < lines; ++n) {
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : line + strlen(line);
        char *e = nl ? nl : next;
        /* Trailing white space is not part of a piece (CRLF files). */
        while (e > line && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            --e;
        *e = '\0';
        t->pieces[n] = line;
        line = next;
    }
    size_t slots = 16;
    while (slots < 2 * lines)
        slots *= 2;
    t->mask = slots - 1;
    t->slots = xmalloc(slots * sizeof *t->slots);
    memset(t->slots, 0xFF, slots * sizeof *t->slots);
    for (int32_t id = 0; id < t->count; ++id)
        insert(t, id);
    t->unk = required(t, vocab_path, "[UNK]");
    t->cls = required(t, vocab_path, "[CLS]");
    t->sep = required(t, vocab_path, "[SEP]");
    t->max_len = max_len;
}

void tokenizer_free(tokenizer *t)
{
    free(t->text);
    free(t->pieces);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* Collects ids: keeps the first max_len - 1 slots for [CLS] and the pieces
 * ([SEP] is put at the end), and counts everything. */
typedef struct id_sink {
    int32_t *ids;
    int n, room, total;
} id_sink;

static void emit(id_sink *s, int32_t id)
{
    if (s->n < s->room)
        s->ids[s->n++] = id;
    ++s->total;
}

/* A word: its UTF-8 bytes, and the byte offset of each character (plus one
 * past the end) so that pieces end on character boundaries. */
typedef struct word {
    char bytes[4 * MAX_WORD_CHARS + sizeof CONTINUATION];
    int offset[MAX_WORD_CHARS + 1];
    int chars;
    int too_long;
} word;

static void word_add(word *w, uint32_t c)
{
    if (w->chars == MAX_WORD_CHARS) {
        w->too_long = 1;
        return;
    }
    const int at = w->offset[w->chars];
    w->offset[++w->chars] = at + (int)utf8_put(c, w->bytes + at);
}

/* Greedy longest-match-first from the word's start. */
static void wordpiece(const tokenizer *t, word *w, id_sink *s)
{
    if (!w->chars && !w->too_long)
        return;
    if (w->too_long) {
        emit(s, t->unk);
        goto done;
    }
    int32_t found[MAX_WORD_CHARS];
    int n = 0;
    char key[sizeof w->bytes + sizeof CONTINUATION];
    for (int start = 0; start < w->chars;) {
        const size_t pre = start ? strlen(CONTINUATION) : 0;
        memcpy(key, CONTINUATION, pre);
        int32_t id = -1;
        int end = w->chars;
        for (; end > start; --end) {
            const size_t len = (size_t)(w->offset[end] - w->offset[start]);
            memcpy(key + pre, w->bytes + w->offset[start], len);
            if ((id = tokenizer_id(t, key, pre + len)) >= 0)
                break;
        }
        if (id < 0) {
            emit(s, t->unk);
            goto done;
        }
        found[n++] = id;
        start = end;
    }
    for (int i = 0; i < n; ++i)
        emit(s, found[i]);
done:
    w->chars = 0;
    w->too_long = 0;
}

/* Normalises, splits and word-pieces a stretch of text holding no special
 * token. */
static void encode_plain(const tokenizer *t, const unsigned char *p, const unsigned char *end,
                         word *w, id_sink *s)
{
    while (p < end) {
        uint32_t c = utf8_next(&p, end);
        if (bert_is_dropped(c))
            continue;
        if (bert_is_space(c)) {
            wordpiece(t, w, s);
            continue;
        }
        if (bert_is_cjk(c) || bert_is_punctuation(c)) {
            wordpiece(t, w, s);
            word_add(w, c);
            wordpiece(t, w, s);
            continue;
        }
        if ((c = bert_fold(c)) != 0)
            word_add(w, c);
    }
    wordpiece(t, w, s);
}

/* The special token spelled at p, or -1. */
static int32_t special_at(const tokenizer *t, const unsigned char *p, const unsigned char *end)
{
    if (*p != '[')
        return -1;
    for (size_t i = 0; i < NUM_SPECIALS; ++i) {
        const size_t len = strlen(k_specials[i]);
        if ((size_t)(end - p) >= len && !memcmp(p, k_specials[i], len))
            return tokenizer_id(t, k_specials[i], len);
    }
    return -1;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int32_t *ids,
                     int *full_len)
{
    id_sink s = {ids, 0, t->max_len - 1, 0};
    emit(&s, t->cls);
    word w;
    w.chars = 0;
    w.too_long = 0;
    w.offset[0] = 0;
    const unsigned char *p = (const unsigned char *)text, *end = p + len, *plain = p;
    while (p < end) {
        const int32_t id = special_at(t, p, end);
        if (id < 0) {
            ++p;
            continue;
        }
        encode_plain(t, plain, p, &w, &s);
        emit(&s, id);
        p += strlen(t->pieces[id]);
        plain = p;
    }
    encode_plain(t, plain, end, &w, &s);
    ids[s.n] = t->sep;
    *full_len = s.total + 1;
    return s.n + 1;
}
