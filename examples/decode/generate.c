#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int generate_prompt_len(int b)
{
    return 3 + 2 * (b % 4);
}

static int longest_prompt(int batch)
{
    int n = 0;
    for (int b = 0; b < batch; ++b)
        if (generate_prompt_len(b) > n)
            n = generate_prompt_len(b);
    return n;
}

int generate_max_len(int batch, int tokens)
{
    return longest_prompt(batch) + tokens - 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A token from (seed, sequence, index) alone, so every run, whatever its
 * format, sees the same prompts and the same teacher stream. */
static int32_t stream_token(uint64_t seed, int b, int i, int vocab)
{
    uint64_t z = seed ^ ((uint64_t)(b + 1) << 40) ^ (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (int32_t)((z ^ (z >> 31)) % (uint64_t)vocab);
}

int32_t generate_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; ++i)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Slot b starts late by as many steps as its prompt is shorter than the
 * longest, so all prompts end on the same step: from then on every slot
 * generates, each at its own position. */
static void schedule(const decoder *d, const generate_options *opt, int step,
                     const int32_t *fed, int32_t *tokens, int32_t *positions)
{
    const int batch = d->s.batch, last_prompt_step = longest_prompt(batch) - 1;
    for (int b = 0; b < batch; ++b) {
        const int len = generate_prompt_len(b);
        const int pos = step - (last_prompt_step + 1 - len);
        positions[b] = pos < 0 ? -1 : pos;
        if (pos < 0)
            tokens[b] = 0;
        else if (pos < len)
            tokens[b] = stream_token(opt->seed, b, pos, d->s.vocab);
        else
            tokens[b] = fed[b];
    }
}

static void alloc_outputs(const decoder *d, const generate_options *opt, decode_dump *out,
                          generate_trace *trace)
{
    const int batch = d->s.batch;
    out->batch = batch;
    out->vocab = d->s.vocab;
    out->steps = opt->tokens;
    trace->first = longest_prompt(batch) - 1;
    trace->steps = trace->first + opt->tokens;
    const size_t inputs = (size_t)trace->steps * (size_t)batch;
    out->tokens = malloc((size_t)batch * (size_t)opt->tokens * sizeof *out->tokens);
    out->logits = malloc((size_t)opt->tokens * (size_t)batch * (size_t)out->vocab *
                         sizeof *out->logits);
    trace->tokens = malloc(inputs * sizeof *trace->tokens);
    trace->positions = malloc(inputs * sizeof *trace->positions);
    if (!out->tokens || !out->logits || !trace->tokens || !trace->positions)
        die("out of memory");
}

double generate(decoder *d, const kv_cache *c, const generate_options *opt, decode_dump *out,
                generate_trace *trace)
{
    alloc_outputs(d, opt, out, trace);
    const int batch = d->s.batch, vocab = d->s.vocab;
    const size_t step_logits = (size_t)batch * (size_t)vocab;
    int32_t fed[256] = {0}; /* what each slot feeds once its prompt is done */
    if (batch > 256)
        die("batch %d: at most 256 supported here", batch);

    /* Steps before `first` (prompts only) build every kernel and fill the
     * caches; the clock covers the steps whose logits give tokens. */
    double start = 0.0;
    for (int step = 0; step < trace->steps; ++step) {
        const int j = step - trace->first; /* index of the token this step yields */
        if (j == 0)
            start = now();
        int32_t *tokens = trace->tokens + (size_t)step * batch;
        int32_t *positions = trace->positions + (size_t)step * batch;
        schedule(d, opt, step, fed, tokens, positions);
        float *logits = out->logits + (size_t)(j < 0 ? 0 : j) * step_logits;
        decoder_step(d, c, tokens, positions, logits);
        for (int b = 0; j >= 0 && b < batch; ++b) {
            const int32_t t = generate_argmax(logits + (size_t)b * vocab, vocab);
            out->tokens[(size_t)b * opt->tokens + j] = t;
            /* The teacher stream is seeded apart from the prompts. */
            fed[b] = opt->teacher ? stream_token(opt->seed ^ 0x7eac4e7ull, b, j, vocab) : t;
        }
    }
    return now() - start;
}

void generate_trace_free(generate_trace *t)
{
    free(t->tokens);
    free(t->positions);
}
