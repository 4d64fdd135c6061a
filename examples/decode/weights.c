#include "weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* splitmix64 (Steele, Lea, Flood 2014): one 64-bit state, good enough to
 * make weights that look random, and identical on every platform. */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)): the usual initialisation,
 * which keeps every projection's output near unit variance. */
static float *random_matrix(uint64_t *state, int fan_in, int fan_out)
{
    const size_t n = (size_t)fan_in * (size_t)fan_out;
    float *w = malloc(n * sizeof *w);
    if (!w)
        die("out of memory");
    const double a = 1.0 / sqrt((double)fan_in);
    for (size_t i = 0; i < n; ++i)
        w[i] = (float)(a * ((double)(next_u64(state) >> 11) * 0x1p-52 - 1.0));
    return w;
}

/* The norm RMSNorm leaves (no gain) is below sqrt(d_model), so by
 * Cauchy-Schwarz |h . w_c| < sqrt(d_model) * |w_c| for every token: the
 * largest column norm of a head's slice of W bounds that head's k (or v). */
static void head_bounds(const float *w, int d_model, int kv_heads, int head_dim, float *out)
{
    const int cols = kv_heads * head_dim;
    for (int h = 0; h < kv_heads; ++h) {
        double worst = 0.0;
        for (int c = h * head_dim; c < (h + 1) * head_dim; ++c) {
            double ss = 0.0;
            for (int r = 0; r < d_model; ++r)
                ss += (double)w[(size_t)r * cols + c] * w[(size_t)r * cols + c];
            worst = fmax(worst, ss);
        }
        /* The margin covers the fp32 rounding of the device's dot products. */
        out[h] = (float)(sqrt((double)d_model * worst) * (1.0 + 1e-4));
    }
}

void weights_create(model_weights *w, const decoder_shape *s, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->s = *s;
    w->layers = calloc((size_t)s->layers, sizeof *w->layers);
    w->kv_bound = calloc((size_t)s->layers * 2 * (size_t)s->kv_heads, sizeof *w->kv_bound);
    if (!w->layers || !w->kv_bound)
        die("out of memory");
    uint64_t state = seed;
    const int q_dim = s->heads * s->head_dim, kv_dim = s->kv_heads * s->head_dim;
    /* As the output projection its fan-in is d_model. */
    w->embed = random_matrix(&state, s->d_model, s->vocab);
    for (int l = 0; l < s->layers; ++l) {
        host_layer *hl = &w->layers[l];
        hl->wq = random_matrix(&state, s->d_model, q_dim);
        hl->wk = random_matrix(&state, s->d_model, kv_dim);
        hl->wv = random_matrix(&state, s->d_model, kv_dim);
        hl->wo = random_matrix(&state, q_dim, s->d_model);
        hl->w1 = random_matrix(&state, s->d_model, s->hidden);
        hl->w2 = random_matrix(&state, s->hidden, s->d_model);
        float *bound = w->kv_bound + (size_t)l * 2 * s->kv_heads;
        head_bounds(hl->wk, s->d_model, s->kv_heads, s->head_dim, bound);
        head_bounds(hl->wv, s->d_model, s->kv_heads, s->head_dim, bound + s->kv_heads);
    }
}

void weights_release(model_weights *w)
{
    for (int l = 0; l < w->s.layers; ++l) {
        const host_layer *hl = &w->layers[l];
        free(hl->wq);
        free(hl->wk);
        free(hl->wv);
        free(hl->wo);
        free(hl->w1);
        free(hl->w2);
    }
    free(w->layers);
    free(w->embed);
    free(w->kv_bound);
}
