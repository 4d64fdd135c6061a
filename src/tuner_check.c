/* Host reference for the tuner, on sampled rows. Tuning shapes are packed,
 * without masks, kv_lens, left padding or varlen; causal, window, chunks,
 * sinks and every score step of feature_table.c apply. K and V come
 * decoded from their storage (kv_host.c), whatever it is, so one reference
 * serves every format and paging. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "feature_table.h"
#include "kv_host.h"
#include "tuner_check.h"

static float load(const void *base, clattn_dtype t, size_t i)
{
    if (t == CLATTN_F32)
        return ((const float *)base)[i];
    uint16_t h = ((const uint16_t *)base)[i];
    if (t == CLATTN_F16)
        return clattn__half_to_float(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void clattn__fill_random(void *data, clattn_dtype t, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; ++i) {
        x = x * 1664525u + 1013904223u;
        float f = (float)(x >> 8) / 8388608.0f - 1.0f;
        if (t == CLATTN_F32) {
            ((float *)data)[i] = f;
        } else if (t == CLATTN_F16) {
            ((uint16_t *)data)[i] = clattn__float_to_half(f);
        } else {
            uint32_t u;
            memcpy(&u, &f, sizeof u);
            ((uint16_t *)data)[i] = (uint16_t)(u >> 16); /* truncation is fine for inputs */
        }
    }
}

double clattn__ref_tolerance(clattn_dtype t)
{
    return t == CLATTN_F32 ? 1e-4 : t == CLATTN_F16 ? 5e-3 : 2e-2;
}

int clattn__ref_rows_make(const clattn__shape *s, const void *q, const float *k, const float *v,
                          const float *sinks, const float *slopes, clattn__ref_rows *ref)
{
    const clattn_problem *p = &s->p;
    const int64_t bh_n = (int64_t)p->batch * p->heads;
    const int D = p->head_dim, Dv = p->head_dim_v;
    const unsigned bits = clattn__shape_features(s);
    memset(ref, 0, sizeof *ref);
    /* Up to 4 heads (first, last, two between) x up to 16 rows (ends and
     * evenly spaced) cover edges of both. */
    int nh = bh_n < 4 ? (int)bh_n : 4;
    int nr = p->seq_q < 16 ? p->seq_q : 16;
    for (int a = 0; a < nh; ++a)
        for (int r = 0; r < nr; ++r) {
            ref->bh[ref->count] = nh == 1 ? 0 : (int64_t)a * (bh_n - 1) / (nh - 1);
            ref->row[ref->count] = nr == 1 ? 0 : (int)((int64_t)r * (p->seq_q - 1) / (nr - 1));
            ref->count++;
        }
    ref->o = calloc((size_t)ref->count * (size_t)Dv, sizeof(double));
    double *sc = malloc((size_t)p->seq_kv * sizeof(double));
    if (!ref->o || !sc) {
        free(sc);
        clattn__ref_rows_free(ref);
        return -1;
    }
    for (int n = 0; n < ref->count; ++n) {
        const int64_t bh = ref->bh[n];
        const int b = (int)(bh / p->heads), h = (int)(bh % p->heads), kh = h / s->group;
        const int i = ref->row[n];
        const int L = p->seq_kv;
        const int64_t ip = (int64_t)i + L - p->seq_q;
        int64_t lo = 0, hi = L;
        if (p->causal == CLATTN_CAUSAL_BOTTOM_RIGHT && ip + 1 < hi)
            hi = ip + 1;
        if (p->causal == CLATTN_CAUSAL_TOP_LEFT && (int64_t)i + 1 < hi)
            hi = (int64_t)i + 1;
        if (p->windowed && p->window_right >= 0 && ip + p->window_right + 1 < hi)
            hi = ip + p->window_right + 1;
        if (p->windowed && p->window_left >= 0 && ip - p->window_left > lo)
            lo = ip - p->window_left;
        if (p->chunk_size > 0) {
            const int64_t c = p->chunk_size;
            const int64_t first = (ip >= 0 ? ip / c : (ip - c + 1) / c) * c;
            if (first > lo)
                lo = first;
            if (first + c < hi)
                hi = first + c;
        }
        const size_t qo = (((size_t)b * p->heads + h) * p->seq_q + i) * D;
        const size_t ko = ((size_t)b * p->kv_heads + kh) * p->seq_kv * D;
        const size_t vo = ((size_t)b * p->kv_heads + kh) * p->seq_kv * Dv;
        double mx = -INFINITY;
        for (int64_t j = lo; j < hi; ++j) {
            double dot = 0;
            for (int d = 0; d < D; ++d)
                dot += (double)load(q, p->dtype, qo + d) * (double)k[ko + (size_t)j * D + d];
            const clattn__score_at at = {p, bits, slopes, h, ip, j};
            sc[j] = clattn__features_score(&at, dot * p->scale);
            if (sc[j] > mx)
                mx = sc[j];
        }
        const double sink = p->sinks ? sinks[h] : -INFINITY;
        if (sink > mx)
            mx = sink;
        double sum = sink == -INFINITY ? 0 : exp(sink - mx);
        for (int64_t j = lo; j < hi; ++j)
            sum += exp(sc[j] - mx);
        for (int64_t j = lo; j < hi; ++j) {
            double w = exp(sc[j] - mx) / sum;
            for (int d = 0; d < Dv; ++d)
                ref->o[(size_t)n * Dv + d] += w * v[vo + (size_t)j * Dv + d];
        }
    }
    free(sc);
    return 0;
}

void clattn__ref_rows_free(clattn__ref_rows *ref)
{
    free(ref->o);
    ref->o = NULL;
    ref->count = 0;
}

double clattn__ref_rows_error(const clattn__shape *s, const clattn__ref_rows *ref,
                              const void *o)
{
    const clattn_problem *p = &s->p;
    const int Dv = p->head_dim_v;
    double num = 0, den = 0;
    for (int n = 0; n < ref->count; ++n) {
        const size_t oo = ((size_t)ref->bh[n] * p->seq_q + ref->row[n]) * Dv;
        for (int d = 0; d < Dv; ++d) {
            double g = load(o, p->dtype, oo + d), r = ref->o[(size_t)n * Dv + d];
            if (isnan(g))
                return INFINITY;
            num += (g - r) * (g - r);
            den += r * r;
        }
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
