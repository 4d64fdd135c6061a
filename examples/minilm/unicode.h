/* The character classes of BERT's text normalisation and pre-tokenisation
 * (Devlin et al.'s BasicTokenizer, as Hugging Face tokenizers'
 * BertNormalizer and BertPreTokenizer implement it), for the characters
 * README.md lists: ASCII, Latin-1, Latin Extended-A, combining diacritics,
 * general and CJK punctuation, Unicode spaces and format characters, and the
 * CJK ideographs. Every other character passes unchanged. */
#ifndef MINILM_UNICODE_H
#define MINILM_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define UNICODE_REPLACEMENT 0xFFFDu

/* The next code point of p[0..end), advancing *p; a byte that does not start
 * a valid UTF-8 sequence (overlong, surrogate, past U+10FFFF, cut short)
 * gives U+FFFD and advances one byte. */
uint32_t utf8_next(const unsigned char **p, const unsigned char *end);

/* Writes c as UTF-8 (1..4 bytes) and returns the length. */
size_t utf8_put(uint32_t c, char *out);

/* Removed by the normaliser: NUL, U+FFFD and the "other" categories (Cc
 * except tab/newline/return, Cf, Co, noncharacters). */
int bert_is_dropped(uint32_t c);
/* Becomes a space (tab, newline, return and the Unicode spaces). */
int bert_is_space(uint32_t c);
/* A word of its own: ASCII punctuation and Unicode P* characters. */
int bert_is_punctuation(uint32_t c);
/* A word of its own too: the CJK ideograph blocks. */
int bert_is_cjk(uint32_t c);
/* Accents stripped (canonical decomposition, combining marks removed), then
 * lower-cased; 0 for a combining mark, which vanishes. */
uint32_t bert_fold(uint32_t c);

#endif
