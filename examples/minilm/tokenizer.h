/* BERT's uncased WordPiece tokenizer over a vocab.txt (one piece per line,
 * the line number its id), giving the ids Hugging Face's BertTokenizerFast
 * gives for the characters unicode.h handles:
 *   1. the special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]) written
 *      literally in the text are taken as they are;
 *   2. the rest is normalised: NUL, U+FFFD and control / format characters
 *      removed, spaces unified, accents stripped, lower-cased;
 *   3. split into words at spaces, with each punctuation character and each
 *      CJK ideograph a word of its own;
 *   4. each word split greedily into the longest vocabulary pieces from its
 *      start, continuations prefixed "##"; a word with no such split, or of
 *      more than 100 characters, becomes [UNK];
 *   5. [CLS] first, [SEP] last, the pieces between cut to max_len - 2 (what
 *      sentence-transformers' truncation to max_seq_length keeps). */
#ifndef MINILM_TOKENIZER_H
#define MINILM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tokenizer {
    char *text;       /* vocab.txt, its newlines turned into NULs */
    char **pieces;    /* id -> piece, into text */
    int count;
    int32_t *slots;   /* open addressing: piece id or -1 */
    size_t mask;      /* slots - 1, a power of two minus one */
    int32_t unk, cls, sep;
    int max_len;
} tokenizer;

/* Dies naming the file when it cannot be read, is empty, or lacks [UNK],
 * [CLS] or [SEP]. max_len >= 3. */
void tokenizer_load(tokenizer *t, const char *vocab_path, int max_len);
void tokenizer_free(tokenizer *t);

/* The id of a piece, or -1. */
int32_t tokenizer_id(const tokenizer *t, const char *piece, size_t len);

/* Tokenizes text[0..len) (UTF-8) into ids (room for t->max_len), returns the
 * number written; *full_len receives the length before truncation. */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int32_t *ids,
                     int *full_len);

#endif
