/* The tool's inputs: Q and K from .npy files, checked against each other
 * before any device is opened (a mismatch is the user's to fix and should
 * not cost a kernel build), and the token labels. */
#include "view.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far more than any tokenizer's output of a sequence that fits a heat map. */
#define TOKENS_MAX_BYTES ((long)16 << 20)

static int fail(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    return 0;
}

static void shape_text(const npy_array *a, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < a->ndim && n < size; ++d)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? ", " : "",
                              (long long)a->shape[d]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

/* Copies batch entry `batch` out of a 3-d or 4-d array. */
static float *slice(const npy_array *a, int batch)
{
    const size_t per_batch = a->ndim == 4 ? a->count / (size_t)a->shape[0] : a->count;
    float *out = malloc(per_batch * sizeof(float));
    if (out)
        memcpy(out, a->data + (size_t)batch * per_batch, per_batch * sizeof(float));
    return out;
}

static int check_pair(const npy_array *q, const npy_array *k, const char *q_path,
                      const char *k_path, int batch, char *why, size_t why_size)
{
    char qs[128], ks[128];
    shape_text(q, qs, sizeof qs);
    shape_text(k, ks, sizeof ks);
    if ((q->ndim != 3 && q->ndim != 4) || q->ndim != k->ndim)
        return fail(why, why_size,
                    "Q (%s) is %s and K (%s) is %s: both must be [heads, seq, dim] or both "
                    "[batch, heads, seq, dim]",
                    q_path, qs, k_path, ks);
    for (int d = 0; d < q->ndim; ++d)
        if (q->shape[d] < 1 || q->shape[d] > INT_MAX || k->shape[d] < 1 ||
            k->shape[d] > INT_MAX)
            return fail(why, why_size,
                        "Q %s, K %s: every dimension must be between 1 and %d", qs, ks,
                        INT_MAX);
    const int o = q->ndim - 3;
    if (o && q->shape[0] != k->shape[0])
        return fail(why, why_size, "Q %s and K %s have different batch sizes", qs, ks);
    if (q->shape[o + 2] != k->shape[o + 2])
        return fail(why, why_size, "Q %s and K %s have different head dims (the last dimension)",
                    qs, ks);
    if (q->shape[o] % k->shape[o] != 0)
        return fail(why, why_size,
                    "Q %s has %lld heads and K %s %lld: K's heads must divide Q's (MHA, GQA, "
                    "MQA)",
                    qs, (long long)q->shape[o], ks, (long long)k->shape[o]);
    const int64_t batches = o ? q->shape[0] : 1;
    if (batch >= batches)
        return fail(why, why_size, "--batch %d, but Q %s holds %lld batch entr%s", batch, qs,
                    (long long)batches, batches == 1 ? "y" : "ies");
    return 1;
}

int view_load_qk(const char *q_path, const char *k_path, int batch, view_inputs *in, char *why,
                 size_t why_size)
{
    npy_array q, k;
    if (!npy_read(q_path, &q, why, why_size))
        return 0;
    if (!npy_read(k_path, &k, why, why_size)) {
        npy_free(&q);
        return 0;
    }
    int ok = check_pair(&q, &k, q_path, k_path, batch, why, why_size);
    if (ok) {
        const int o = q.ndim - 3;
        in->batches = o ? (int)q.shape[0] : 1;
        in->heads = (int)q.shape[o];
        in->kv_heads = (int)k.shape[o];
        in->seq_q = (int)q.shape[o + 1];
        in->seq_kv = (int)k.shape[o + 1];
        in->head_dim = (int)q.shape[o + 2];
        in->q = slice(&q, batch);
        in->k = slice(&k, batch);
        if (!in->q || !in->k)
            ok = fail(why, why_size, "out of memory for Q and K");
    }
    npy_free(&q);
    npy_free(&k);
    return ok;
}

/* Splits text (len bytes, NUL-terminated) into lines in place. */
static int split_lines(char *text, long len, view_inputs *in, const char *path, char *why,
                       size_t why_size)
{
    if ((long)strlen(text) != len)
        return fail(why, why_size, "%s: holds a NUL byte (not a text file of tokens)", path);
    int lines = 0;
    for (long i = 0; i < len; ++i)
        lines += text[i] == '\n' || (i == len - 1);
    if (lines != in->seq_kv)
        return fail(why, why_size,
                    "%s: %d token%s, but the keys are %d (one token per line, one line per "
                    "key)",
                    path, lines, lines == 1 ? "" : "s", in->seq_kv);
    in->tokens = calloc((size_t)lines, sizeof *in->tokens);
    if (!in->tokens)
        return fail(why, why_size, "out of memory");
    in->num_tokens = lines;
    char *line = text;
    for (int t = 0; t < lines; ++t) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        const size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[n - 1] = '\0';
        in->tokens[t] = line;
        line = nl ? nl + 1 : line + n;
    }
    return 1;
}

int view_load_tokens(const char *path, view_inputs *in, char *why, size_t why_size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(why, why_size, "%s: cannot open: %s", path, strerror(errno));
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return fail(why, why_size, "%s: cannot read: %s", path, strerror(errno));
    }
    if (len > TOKENS_MAX_BYTES) {
        fclose(f);
        return fail(why, why_size, "%s: %ld bytes is too large for a list of tokens", path,
                    len);
    }
    char *text = malloc((size_t)len + 1);
    const int got = text && fread(text, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    if (!got) {
        free(text);
        return fail(why, why_size, "%s: cannot read it whole", path);
    }
    text[len] = '\0';
    /* The labels point into text; tokens[0] owns it (view_inputs_free). */
    if (!split_lines(text, len, in, path, why, why_size)) {
        free(text);
        free(in->tokens);
        in->tokens = NULL;
        in->num_tokens = 0;
        return 0;
    }
    return 1;
}

void view_inputs_free(view_inputs *in)
{
    free(in->q);
    free(in->k);
    if (in->tokens)
        free(in->tokens[0]);
    free(in->tokens);
    memset(in, 0, sizeof *in);
}
