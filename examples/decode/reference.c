#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_state {
    const model_weights *w;
    int max_len;
    double *k, *v; /* [layers][batch][kv_heads][max_len][head_dim] */
    double *x, *h, *q, *kn, *vn, *o, *u; /* one sequence's activations */
    double *slopes;
} ref_state;

static double *zeros(size_t n)
{
    double *p = calloc(n, sizeof *p);
    if (!p)
        die("out of memory");
    return p;
}

/* y[cols] = x[rows] * W[rows][cols] (+ y when accumulate). */
static void matvec(const double *x, const float *w, int rows, int cols, double *y,
                   int accumulate)
{
    if (!accumulate)
        memset(y, 0, (size_t)cols * sizeof *y);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            y[c] += x[r] * (double)w[(size_t)r * cols + c];
}

static void rms_norm(const double *x, double *y, int n)
{
    double ss = 0.0;
    for (int i = 0; i < n; ++i)
        ss += x[i] * x[i];
    const double inv = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; ++i)
        y[i] = x[i] * inv;
}

/* Press et al., ALiBi: for n heads (a power of two) slope[h] = 2^(-8(h+1)/n). */
static void alibi_slopes(int heads, double *slopes)
{
    if (heads & (heads - 1))
        die("the reference's ALiBi slopes need a power-of-two head count");
    for (int h = 0; h < heads; ++h)
        slopes[h] = pow(2.0, -8.0 * (h + 1) / heads);
}

static double *cache_row(const ref_state *st, double *cache, int l, int b, int kvh, int pos)
{
    const decoder_shape *s = &st->w->s;
    const size_t row = (((size_t)l * s->batch + (size_t)b) * (size_t)s->kv_heads + (size_t)kvh) *
                           (size_t)st->max_len + (size_t)pos;
    return cache + row * (size_t)s->head_dim;
}

/* Softmax attention of query head hq at position pos over keys 0..pos, each
 * score scaled by 1/sqrt(head_dim) and biased by slope * (j - pos). */
static void attend(const ref_state *st, int l, int b, int hq, int pos, double *out)
{
    const decoder_shape *s = &st->w->s;
    const int hd = s->head_dim, kvh = hq / (s->heads / s->kv_heads);
    const double *q = st->q + (size_t)hq * hd;
    double *p = zeros((size_t)pos + 1), top = -INFINITY, sum = 0.0;
    for (int j = 0; j <= pos; ++j) {
        const double *k = cache_row(st, st->k, l, b, kvh, j);
        double dot = 0.0;
        for (int c = 0; c < hd; ++c)
            dot += q[c] * k[c];
        p[j] = dot / sqrt((double)hd) + st->slopes[hq] * (j - pos);
        top = fmax(top, p[j]);
    }
    for (int j = 0; j <= pos; ++j)
        sum += (p[j] = exp(p[j] - top));
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int j = 0; j <= pos; ++j) {
        const double *v = cache_row(st, st->v, l, b, kvh, j);
        for (int c = 0; c < hd; ++c)
            out[c] += p[j] / sum * v[c];
    }
    free(p);
}

static void layer(ref_state *st, int l, int b, int pos)
{
    const decoder_shape *s = &st->w->s;
    const host_layer *w = &st->w->layers[l];
    const int hd = s->head_dim, q_dim = s->heads * hd, kv_dim = s->kv_heads * hd;
    rms_norm(st->x, st->h, s->d_model);
    matvec(st->h, w->wq, s->d_model, q_dim, st->q, 0);
    matvec(st->h, w->wk, s->d_model, kv_dim, st->kn, 0);
    matvec(st->h, w->wv, s->d_model, kv_dim, st->vn, 0);
    memset(st->o, 0, (size_t)q_dim * sizeof *st->o);
    if (pos >= 0) { /* an idle slot appends nothing and sees no key */
        for (int kvh = 0; kvh < s->kv_heads; ++kvh) {
            memcpy(cache_row(st, st->k, l, b, kvh, pos), st->kn + (size_t)kvh * hd,
                   (size_t)hd * sizeof(double));
            memcpy(cache_row(st, st->v, l, b, kvh, pos), st->vn + (size_t)kvh * hd,
                   (size_t)hd * sizeof(double));
        }
        for (int hq = 0; hq < s->heads; ++hq)
            attend(st, l, b, hq, pos, st->o + (size_t)hq * hd);
    }
    matvec(st->o, w->wo, q_dim, s->d_model, st->x, 1);
    rms_norm(st->x, st->h, s->d_model);
    matvec(st->h, w->w1, s->d_model, s->hidden, st->u, 0);
    for (int i = 0; i < s->hidden; ++i)
        st->u[i] = fmax(st->u[i], 0.0);
    matvec(st->u, w->w2, s->hidden, s->d_model, st->x, 1);
}

/* One sequence's step: its token at pos, the next-token logits. */
static void step(ref_state *st, int b, int32_t token, int pos, float *logits)
{
    const decoder_shape *s = &st->w->s;
    const int t = token >= 0 && token < s->vocab ? token : 0;
    for (int i = 0; i < s->d_model; ++i)
        st->x[i] = st->w->embed[(size_t)t * s->d_model + i];
    for (int l = 0; l < s->layers; ++l)
        layer(st, l, b, pos);
    rms_norm(st->x, st->h, s->d_model);
    for (int v = 0; v < s->vocab; ++v) {
        double dot = 0.0;
        for (int i = 0; i < s->d_model; ++i)
            dot += st->h[i] * (double)st->w->embed[(size_t)v * s->d_model + i];
        if (logits)
            logits[v] = (float)dot;
    }
}

static void state_create(ref_state *st, const model_weights *w, const generate_trace *t)
{
    const decoder_shape *s = &w->s;
    memset(st, 0, sizeof *st);
    st->w = w;
    for (size_t i = 0; i < (size_t)t->steps * (size_t)s->batch; ++i)
        if (t->positions[i] + 1 > st->max_len)
            st->max_len = t->positions[i] + 1;
    const size_t cache = (size_t)s->layers * s->batch * s->kv_heads * (size_t)st->max_len *
                         (size_t)s->head_dim;
    st->k = zeros(cache);
    st->v = zeros(cache);
    st->x = zeros((size_t)s->d_model);
    st->h = zeros((size_t)s->d_model);
    st->q = zeros((size_t)s->heads * s->head_dim);
    st->kn = zeros((size_t)s->kv_heads * s->head_dim);
    st->vn = zeros((size_t)s->kv_heads * s->head_dim);
    st->o = zeros((size_t)s->heads * s->head_dim);
    st->u = zeros((size_t)s->hidden);
    st->slopes = zeros((size_t)s->heads);
    alibi_slopes(s->heads, st->slopes);
}

static void state_free(ref_state *st)
{
    double *all[] = {st->k, st->v, st->x, st->h, st->q, st->kn, st->vn, st->o, st->u,
                     st->slopes};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        free(all[i]);
}

void reference_run(const model_weights *w, const generate_trace *trace, decode_dump *out)
{
    const decoder_shape *s = &w->s;
    ref_state st;
    state_create(&st, w, trace);
    out->batch = s->batch;
    out->vocab = s->vocab;
    out->steps = trace->steps - trace->first;
    out->tokens = malloc((size_t)s->batch * (size_t)out->steps * sizeof *out->tokens);
    out->logits =
        malloc((size_t)out->steps * (size_t)s->batch * (size_t)s->vocab * sizeof *out->logits);
    if (!out->tokens || !out->logits)
        die("out of memory");
    for (int i = 0; i < trace->steps; ++i) {
        const int j = i - trace->first;
        for (int b = 0; b < s->batch; ++b) {
            const size_t in = (size_t)i * s->batch + (size_t)b;
            float *logits = j < 0 ? NULL
                                  : out->logits + ((size_t)j * s->batch + (size_t)b) * s->vocab;
            step(&st, b, trace->tokens[in], trace->positions[in], logits);
            if (logits)
                out->tokens[(size_t)b * out->steps + j] = generate_argmax(logits, s->vocab);
        }
    }
    state_free(&st);
}
