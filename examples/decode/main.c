/*
 * clattn-decode: token generation with a KV cache through clattn, on a small
 * random-weight decoder (see README.md).
 *
 *   clattn-decode [--format f32|f16|bf16|int8|int8-g32|int4|q8_0|q4_0|e4m3|e5m2]
 *                 [--paged PAGE_SIZE] [--tokens N] [--teacher] [--dump FILE]
 *                 [--reference FILE]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define MODEL_SEED 0x5eedc1a77e4ull
#define PROMPT_SEED 0x9e3779b9ull
#define TABLE_SEED 0x7ab1eull
/* Keys per sequence at least; more when the run needs them. */
#define MIN_CAPACITY 64

static const decoder_shape k_shape = {
    .vocab = 256, .d_model = 256, .layers = 4, .heads = 4, .kv_heads = 2,
    .head_dim = 64, .hidden = 512, .batch = 4,
};

typedef struct args {
    const char *format, *dump, *reference;
    clattn_kv_storage storage;
    int page_size, tokens, teacher;
} args;

static void usage(void)
{
    fprintf(stderr,
            "usage: clattn-decode [--format %s]\n"
            "                     [--paged PAGE_SIZE] [--tokens N] [--teacher] [--dump FILE]\n"
            "                     [--reference FILE]\n",
            kv_format_names());
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
    args a = {"f32", NULL, NULL, {CLATTN_KV_F32, 0, 0, 0}, 0, 32, 0};
    for (int i = 1; i < argc; ++i) {
        const int has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--format") && has_value) {
            a.format = argv[++i];
            if (!kv_format_parse(a.format, &a.storage))
                usage();
        } else if (!strcmp(argv[i], "--paged") && has_value) {
            a.page_size = int_arg(argv[++i], 1, 256);
        } else if (!strcmp(argv[i], "--tokens") && has_value) {
            a.tokens = int_arg(argv[++i], 1, 4096);
        } else if (!strcmp(argv[i], "--dump") && has_value) {
            a.dump = argv[++i];
        } else if (!strcmp(argv[i], "--reference") && has_value) {
            a.reference = argv[++i];
        } else if (!strcmp(argv[i], "--teacher")) {
            a.teacher = 1;
        } else {
            usage();
        }
    }
    return a;
}

/* The smallest capacity of at least MIN_CAPACITY keys that holds the run and
 * fills whole pages. */
static int capacity(const args *a)
{
    int n = generate_max_len(k_shape.batch, a->tokens);
    if (n < MIN_CAPACITY)
        n = MIN_CAPACITY;
    const int unit = a->page_size > 0 ? a->page_size : 1;
    return (n + unit - 1) / unit * unit;
}

static void print_tokens(const decode_dump *r, int teacher)
{
    printf("generated tokens%s:\n", teacher ? " (argmax; the teacher stream was fed)" : "");
    for (int b = 0; b < r->batch; ++b) {
        printf("  sequence %d (prompt %d tokens):", b, generate_prompt_len(b));
        for (int j = 0; j < r->steps; ++j)
            printf(" %d", r->tokens[(size_t)b * r->steps + j]);
        putchar('\n');
    }
}

static void print_setup(const args *a, const kv_cache *c)
{
    printf("clattn-decode: %d layers, d_model %d, %d heads / %d kv heads of %d, batch %d, "
           "KV %s, ",
           k_shape.layers, k_shape.d_model, k_shape.heads, k_shape.kv_heads, k_shape.head_dim,
           k_shape.batch, a->format);
    if (c->attn.paged.enabled)
        printf("paged (%d pages of %d key%s, shuffled)\n", c->attn.paged.num_pages,
               c->attn.paged.page_size, c->attn.paged.page_size == 1 ? "" : "s");
    else
        printf("contiguous (%d keys per sequence)\n", c->attn.seq_kv);
}

static void print_summary(const kv_cache *c, const decode_dump *r, double seconds)
{
    const int generated = r->batch * r->steps;
    printf("generation: %d tokens (%d sequences x %d) in %.3f s: %.1f tokens/s\n", generated,
           r->batch, r->steps, seconds, generated / seconds);
    const size_t bytes = kv_cache_bytes_per_token(c);
    const size_t f32 = (size_t)4 * 2 * (size_t)(k_shape.kv_heads * k_shape.head_dim) *
                       (size_t)k_shape.layers;
    printf("KV cache: %zu bytes per token (K+V data and scales, %d layers), %.2fx smaller "
           "than f32\n",
           bytes, k_shape.layers, (double)f32 / (double)bytes);
}

/* The same inputs through the fp64 host model: how far the device's logits
 * are from exact, quantized cache included. */
static int check_reference(const model_weights *w, const generate_trace *t,
                           const decode_dump *run, const char *path)
{
    decode_dump ref;
    reference_run(w, t, &ref);
    double worst = 0.0;
    for (int j = 0; j < ref.steps; ++j) {
        const double e = dump_step_error(&ref, run, j);
        worst = e > worst || isnan(e) ? e : worst; /* NaN sticks */
    }
    printf("against the fp64 host reference: relative L2 error of the logits %.3g (last "
           "step), %.3g (worst step)\n",
           dump_step_error(&ref, run, ref.steps - 1), worst);
    const int failed = dump_write(path, &ref) != 0;
    dump_free(&ref);
    return failed;
}

int main(int argc, char **argv)
{
    const args a = parse(argc, argv);
    clattn_context *ctx;
    check_attn(NULL, clattn_context_create(NULL, &ctx), "clattn_context_create");
    ops o;
    ops_init(&o, ctx);
    model_weights w;
    weights_create(&w, &k_shape, MODEL_SEED);
    decoder d;
    decoder_create(&d, &w, &o, ctx);

    const clattn_problem attn = decoder_attention(&d, &a.storage, capacity(&a), a.page_size);
    /* Refuses what the device cannot run before anything is appended, and
     * builds the attention kernels outside the timed loop. */
    check_attn(ctx, clattn_supports(ctx, &attn), "clattn_supports");
    kv_cache cache;
    kv_cache_create(&cache, ctx, &o, &attn, k_shape.layers, w.kv_bound, TABLE_SEED);
    print_setup(&a, &cache);

    const generate_options gen = {a.tokens, a.teacher, PROMPT_SEED};
    decode_dump result;
    generate_trace trace;
    const double seconds = generate(&d, &cache, &gen, &result, &trace);
    print_tokens(&result, a.teacher);
    print_summary(&cache, &result, seconds);
    int failed = a.dump && dump_write(a.dump, &result) != 0;
    if (a.reference)
        failed |= check_reference(&w, &trace, &result, a.reference);

    generate_trace_free(&trace);
    dump_free(&result);
    kv_cache_release(&cache);
    decoder_release(&d);
    weights_release(&w);
    ops_release(&o);
    clattn_context_destroy(ctx);
    return failed;
}
