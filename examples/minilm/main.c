/*
 * clattn-minilm: sentence embeddings of a sentence-transformers BERT model
 * (all-MiniLM-L6-v2) computed on the OpenCL device, one sentence per line
 * of standard input, one embedding per line of output (see README.md).
 *
 *   clattn-minilm MODEL_DIR [--batch | --one-by-one] [--batch-size N]
 *                 [--tokens] [--bench] [--repeat N] < sentences.txt
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bert.h"
#include "dump.h"
#include "tokenizer.h"
#include "util.h"

/* sentence-transformers' encode() default. */
#define DEFAULT_BATCH_SIZE 32
#define MAX_INPUT_BYTES ((size_t)1 << 30)

typedef struct args {
    const char *model_dir;
    int batch_size; /* 1: one by one */
    int tokens, bench, repeat;
    int dump_layer; /* -1: none */
    const char *dump_dir;
} args;

static void usage(void)
{
    fputs("usage: clattn-minilm MODEL_DIR [--batch | --one-by-one] [--batch-size N]\n"
          "                     [--tokens] [--bench] [--repeat N]\n"
          "                     [--dump-layer L DIR] < sentences.txt\n"
          "  --batch         sentences in padded batches of --batch-size, longest first\n"
          "                  (the default)\n"
          "  --one-by-one    each sentence alone\n"
          "  --batch-size N  sentences per batch (default 32)\n"
          "  --tokens        print each sentence's token ids instead of its embedding\n"
          "  --bench         time --repeat passes (default 3) after a warm-up pass\n"
          "  --dump-layer L DIR  also write layer L's queries and keys of the first\n"
          "                  sentence with its tokens to DIR (for attn-view --layer-dump)\n",
          stderr);
    exit(2);
}

static int int_arg(const char *s, int lo, int hi)
{
    char *end;
    const long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        usage();
    return (int)v;
}

static args parse(int argc, char **argv)
{
    args a = {NULL, DEFAULT_BATCH_SIZE, 0, 0, 3, -1, NULL};
    int one_by_one = 0;
    for (int i = 1; i < argc; ++i) {
        const int has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--batch")) {
            one_by_one = 0;
        } else if (!strcmp(argv[i], "--one-by-one")) {
            one_by_one = 1;
        } else if (!strcmp(argv[i], "--batch-size") && has_value) {
            a.batch_size = int_arg(argv[++i], 1, 4096);
        } else if (!strcmp(argv[i], "--tokens")) {
            a.tokens = 1;
        } else if (!strcmp(argv[i], "--bench")) {
            a.bench = 1;
        } else if (!strcmp(argv[i], "--dump-layer") && i + 2 < argc) {
            a.dump_layer = int_arg(argv[++i], 0, 1000);
            a.dump_dir = argv[++i];
        } else if (!strcmp(argv[i], "--repeat") && has_value) {
            a.repeat = int_arg(argv[++i], 1, 1000);
        } else if (argv[i][0] != '-' && !a.model_dir) {
            a.model_dir = argv[i];
        } else {
            usage();
        }
    }
    if (!a.model_dir)
        usage();
    if (one_by_one)
        a.batch_size = 1;
    return a;
}

/* The sentences of standard input, tokenized: ids[i][0..len[i]). */
typedef struct corpus {
    int count;
    int32_t **ids;
    int32_t *len;
    long tokens;
} corpus;

static void read_corpus(const tokenizer *t, corpus *c)
{
    size_t size;
    char *text = (char *)read_stream(stdin, "standard input", MAX_INPUT_BYTES, &size);
    memset(c, 0, sizeof *c);
    int cap = 0;
    for (size_t at = 0; at < size;) {
        const char *line = text + at, *nl = memchr(line, '\n', size - at);
        const size_t len = nl ? (size_t)(nl - line) : size - at;
        at += len + (nl != NULL);
        if (c->count == cap) {
            cap = cap ? 2 * cap : 64;
            c->ids = realloc(c->ids, (size_t)cap * sizeof *c->ids);
            c->len = realloc(c->len, (size_t)cap * sizeof *c->len);
            if (!c->ids || !c->len)
                die("out of memory");
        }
        int32_t *ids = xmalloc((size_t)t->max_len * sizeof *ids);
        int full;
        const int n = tokenizer_encode(t, line, len, ids, &full);
        if (full > n)
            fprintf(stderr,
                    "clattn-minilm: sentence %d: %d tokens, truncated to %d "
                    "(max_seq_length, as sentence-transformers does)\n",
                    c->count + 1, full, n);
        c->ids[c->count] = ids;
        c->len[c->count++] = n;
        c->tokens += n;
    }
    free(text);
}

static void free_corpus(corpus *c)
{
    for (int i = 0; i < c->count; ++i)
        free(c->ids[i]);
    free(c->ids);
    free(c->len);
}

static void print_tokens(const corpus *c)
{
    for (int i = 0; i < c->count; ++i) {
        for (int j = 0; j < c->len[i]; ++j)
            printf(j ? " %d" : "%d", (int)c->ids[i][j]);
        putchar('\n');
    }
}

static const corpus *g_sort_corpus;

/* Longest first, input order among equals, as sentence-transformers groups
 * them: the padding of a batch is then small. */
static int longer_first(const void *a, const void *b)
{
    const int i = *(const int *)a, j = *(const int *)b;
    const int32_t li = g_sort_corpus->len[i], lj = g_sort_corpus->len[j];
    return li != lj ? (li > lj ? -1 : 1) : (i > j) - (i < j);
}

/* Sentence order of the batches: longest first when batching. */
static int *batch_order(const corpus *c, int batch_size)
{
    int *order = xmalloc((size_t)c->count * sizeof *order);
    for (int i = 0; i < c->count; ++i)
        order[i] = i;
    if (batch_size > 1) {
        g_sort_corpus = c;
        qsort(order, (size_t)c->count, sizeof *order, longer_first);
    }
    return order;
}

typedef struct pass_stats {
    int batches;
    long padded_tokens;
} pass_stats;

/* Embeds every sentence into emb[i][hidden], batch after batch. */
static pass_stats run_pass(bert *m, const corpus *c, const int *order, int batch_size,
                           float *emb)
{
    const int h = m->cfg.hidden;
    pass_stats s = {0, 0};
    int32_t *ids = xmalloc((size_t)batch_size * (size_t)m->cfg.max_seq_length * sizeof *ids);
    int32_t *lens = xmalloc((size_t)batch_size * sizeof *lens);
    float *out = xmalloc((size_t)batch_size * (size_t)h * sizeof *out);
    for (int first = 0; first < c->count; first += batch_size) {
        const int n = c->count - first < batch_size ? c->count - first : batch_size;
        int seq = 0;
        for (int b = 0; b < n; ++b)
            if (c->len[order[first + b]] > seq)
                seq = c->len[order[first + b]];
        /* Padding is [PAD] (id 0); kv_lens keeps it out of every row. */
        memset(ids, 0, (size_t)n * (size_t)seq * sizeof *ids);
        for (int b = 0; b < n; ++b) {
            const int i = order[first + b];
            lens[b] = c->len[i];
            memcpy(ids + (size_t)b * seq, c->ids[i], (size_t)c->len[i] * sizeof *ids);
        }
        bert_encode(m, ids, lens, n, seq, out);
        for (int b = 0; b < n; ++b)
            memcpy(emb + (size_t)order[first + b] * h, out + (size_t)b * h,
                   (size_t)h * sizeof *out);
        ++s.batches;
        s.padded_tokens += (long)n * seq;
    }
    free(ids);
    free(lens);
    free(out);
    return s;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_embeddings(const float *emb, int count, int h)
{
    for (int i = 0; i < count; ++i) {
        for (int j = 0; j < h; ++j)
            printf(j ? " %.9g" : "%.9g", (double)emb[(size_t)i * h + j]);
        putchar('\n');
    }
}

/* The first sentence alone through the encoder, with layer L's queries and
 * keys copied out and written for attn-view. */
static void dump_first(bert *m, const corpus *c, const tokenizer *tok, int layer,
                       const char *dir)
{
    const int seq = c->len[0], h = m->cfg.hidden;
    float *q = xmalloc((size_t)seq * h * sizeof *q), *k = xmalloc((size_t)seq * h * sizeof *k);
    float *emb = xmalloc((size_t)h * sizeof *emb);
    m->dump_layer = layer;
    m->dump_q = q;
    m->dump_k = k;
    bert_encode(m, c->ids[0], &c->len[0], 1, seq, emb);
    m->dump_layer = -1;
    dump_layer_qk(dir, q, k, seq, m->cfg.heads, h / m->cfg.heads, tok->pieces, c->ids[0]);
    free(q);
    free(k);
    free(emb);
}

int main(int argc, char **argv)
{
    const args a = parse(argc, argv);
    minilm_config cfg;
    config_load(a.model_dir, &cfg);
    tokenizer tok;
    char *vocab = path_join(a.model_dir, "vocab.txt");
    tokenizer_load(&tok, vocab, cfg.max_seq_length);
    if (tok.count > cfg.vocab_size)
        die("%s: %d pieces, but the model embeds only %d (config.json vocab_size)", vocab,
            tok.count, cfg.vocab_size);
    free(vocab);
    corpus c;
    read_corpus(&tok, &c);
    if (a.tokens) {
        print_tokens(&c);
        free_corpus(&c);
        tokenizer_free(&tok);
        return 0;
    }
    if (a.dump_layer >= cfg.layers)
        die("--dump-layer %d: the model has layers 0..%d", a.dump_layer, cfg.layers - 1);
    if (a.dump_dir && c.count == 0)
        die("--dump-layer: no sentence on standard input");

    /* The weights are checked before any device work starts. */
    model_weights w;
    char *st_path = path_join(a.model_dir, "model.safetensors");
    weights_load(&w, st_path, &cfg);
    free(st_path);
    clattn_context *ctx;
    check_attn(NULL, clattn_context_create(NULL, &ctx), "clattn_context_create");
    ops o;
    ops_init(&o, ctx, cfg.hidden);
    bert m;
    bert_create(&m, &cfg, &w, &o, ctx);
    weights_free(&w);

    const int batch_size = a.batch_size < c.count ? a.batch_size : (c.count ? c.count : 1);
    int *order = batch_order(&c, batch_size);
    float *emb = xmalloc((size_t)c.count * (size_t)cfg.hidden * sizeof *emb);
    const int passes = a.bench ? a.repeat : 1;
    double *seconds = xmalloc((size_t)passes * sizeof *seconds);
    pass_stats s = {0, 0};
    if (a.bench)
        run_pass(&m, &c, order, batch_size, emb); /* builds every kernel */
    for (int p = 0; p < passes; ++p) {
        const double t0 = now();
        s = run_pass(&m, &c, order, batch_size, emb);
        seconds[p] = now() - t0;
    }
    if (a.dump_dir)
        dump_first(&m, &c, &tok, a.dump_layer, a.dump_dir);
    tokenizer_free(&tok);
    qsort(seconds, (size_t)passes, sizeof *seconds, by_value);
    const double median = seconds[passes / 2];
    print_embeddings(emb, c.count, cfg.hidden);
    fprintf(stderr,
            "clattn-minilm: %d sentences, %ld tokens (%ld with padding) in %d batch%s of up to "
            "%d: %.3f s, %.1f sentences/s%s\n",
            c.count, c.tokens, s.padded_tokens, s.batches, s.batches == 1 ? "" : "es",
            batch_size, median, median > 0 ? c.count / median : 0.0,
            a.bench ? " (median of the timed passes, after a warm-up pass)"
                    : " (first pass: kernel builds included)");

    free(seconds);
    free(emb);
    free(order);
    free_corpus(&c);
    bert_release(&m);
    ops_release(&o);
    clattn_context_destroy(ctx);
    return 0;
}
