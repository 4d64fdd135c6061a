/* The decode loop: every sequence's prompt fed one token per step, then
 * greedy generation, with the sequences of the batch at different
 * positions. */
#ifndef DECODE_GENERATE_H
#define DECODE_GENERATE_H

#include "decoder.h"
#include "dump.h"

typedef struct generate_options {
    int tokens;    /* to generate per sequence */
    int teacher;   /* 1: feed a fixed token stream instead of each argmax */
    uint64_t seed; /* of the prompts and the teacher stream */
} generate_options;

/* Prompt lengths differ per sequence: 3, 5, 7, 9, 3, ... */
int generate_prompt_len(int b);
/* Keys a sequence's cache must hold: the longest prompt and the generated
 * tokens but the last, which is never fed back. */
int generate_max_len(int batch, int tokens);

/* The greedy choice: the first index of the largest logit. */
int32_t generate_argmax(const float *logits, int vocab);

/* What every step fed, for a replay (reference.c). */
typedef struct generate_trace {
    int steps, first;             /* steps run; the first that yields a token */
    int32_t *tokens, *positions;  /* [steps][batch]; position -1: slot idle */
} generate_trace;

/* Runs the loop on cache c; fills out (tokens and logits of every
 * generation step, allocated here; dump_free releases them) and trace
 * (generate_trace_free), and returns the wall time of the generation
 * steps. */
double generate(decoder *d, const kv_cache *c, const generate_options *opt, decode_dump *out,
                generate_trace *trace);
void generate_trace_free(generate_trace *t);

#endif
