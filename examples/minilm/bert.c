#include "bert.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static cl_mem upload(const bert *m, tensor_bytes t, size_t floats)
{
    return ops_buffer(m->o, floats * sizeof(float), t);
}

/* A torch.nn.Linear weight [n][k] (n * k floats from src, which may be
 * unaligned) to the device as [k][n], the layout ops_linear multiplies
 * without copies. */
static cl_mem upload_transposed(const bert *m, const unsigned char *src, size_t n, size_t k)
{
    float *w = xmalloc(n * k * sizeof *w), *wt = xmalloc(n * k * sizeof *wt);
    memcpy(w, src, n * k * sizeof *w);
    ops_transpose(wt, w, n, k);
    cl_mem d = ops_buffer(m->o, n * k * sizeof *wt, wt);
    free(w);
    free(wt);
    return d;
}

static void upload_layer(bert *m, const layer_tensors *t, device_layer *d)
{
    const size_t h = (size_t)m->cfg.hidden, inter = (size_t)m->cfg.intermediate;
    /* One GEMM of n = 3 * hidden keeps the device busier than three. */
    const size_t mat = h * h * sizeof(float), vec = h * sizeof(float);
    unsigned char *w = xmalloc(3 * mat), *b = xmalloc(3 * vec);
    memcpy(w, t->wq, mat);
    memcpy(w + mat, t->wk, mat);
    memcpy(w + 2 * mat, t->wv, mat);
    memcpy(b, t->bq, vec);
    memcpy(b + vec, t->bk, vec);
    memcpy(b + 2 * vec, t->bv, vec);
    d->wqkv = upload_transposed(m, w, 3 * h, h);
    d->bqkv = ops_buffer(m->o, 3 * vec, b);
    free(w);
    free(b);
    d->wo = upload_transposed(m, t->wo, h, h);
    d->bo = upload(m, t->bo, h);
    d->ln1_g = upload(m, t->ln1_g, h);
    d->ln1_b = upload(m, t->ln1_b, h);
    d->w1 = upload_transposed(m, t->w1, inter, h);
    d->b1 = upload(m, t->b1, inter);
    d->w2 = upload_transposed(m, t->w2, h, inter);
    d->b2 = upload(m, t->b2, h);
    d->ln2_g = upload(m, t->ln2_g, h);
    d->ln2_b = upload(m, t->ln2_b, h);
}

void bert_create(bert *m, const minilm_config *c, const model_weights *w, ops *o,
                 clattn_context *ctx)
{
    memset(m, 0, sizeof *m);
    m->dump_layer = -1;
    m->cfg = *c;
    m->o = o;
    m->ctx = ctx;
    const size_t h = (size_t)c->hidden;
    m->word = upload(m, w->word, (size_t)c->vocab_size * h);
    m->position = upload(m, w->position, (size_t)c->max_positions * h);
    /* Every sentence is segment 0: only the first row is needed. */
    m->token_type = upload(m, w->token_type, h);
    m->emb_ln_g = upload(m, w->emb_ln_g, h);
    m->emb_ln_b = upload(m, w->emb_ln_b, h);
    m->layers = calloc((size_t)c->layers, sizeof *m->layers);
    if (!m->layers)
        die("out of memory");
    for (int l = 0; l < c->layers; ++l)
        upload_layer(m, &w->layers[l], &m->layers[l]);
}

static void release_activations(bert *m)
{
    cl_mem all[] = {m->ids, m->lens, m->x, m->qkv, m->q, m->k, m->v, m->attn, m->y, m->h, m->out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
}

static cl_mem zeros(const bert *m, size_t bytes)
{
    cl_mem b = ops_buffer(m->o, bytes, NULL);
    const float zero = 0.0f;
    check_cl(clEnqueueFillBuffer(m->o->queue, b, &zero, sizeof zero, 0, bytes, 0, NULL, NULL),
             "clEnqueueFillBuffer");
    return b;
}

/* Grows the activations to hold rows tokens of batch sentences. rows comes
 * from ops_gemm_rows, so the GEMMs also read rows past a call's tokens of
 * their two inputs that no kernel of ours writes there, x and attn: those
 * start as zeros (filled here) and later hold an earlier call's finite
 * values. The GEMMs carry them along row by row, never into a token's row;
 * their outputs (qkv, y, h) are written whole by the GEMMs themselves. */
static void reserve(bert *m, size_t rows, int batch)
{
    if (rows <= m->max_rows && batch <= m->max_batch)
        return;
    release_activations(m);
    if (rows < m->max_rows)
        rows = m->max_rows;
    if (batch < m->max_batch)
        batch = m->max_batch;
    const size_t h = (size_t)m->cfg.hidden, f = sizeof(float);
    m->ids = ops_buffer(m->o, rows * sizeof(int32_t), NULL);
    m->lens = ops_buffer(m->o, (size_t)batch * sizeof(int32_t), NULL);
    m->x = zeros(m, rows * h * f);
    m->qkv = ops_buffer(m->o, rows * 3 * h * f, NULL);
    m->q = ops_buffer(m->o, rows * h * f, NULL);
    m->k = ops_buffer(m->o, rows * h * f, NULL);
    m->v = ops_buffer(m->o, rows * h * f, NULL);
    m->attn = zeros(m, rows * h * f);
    m->y = ops_buffer(m->o, rows * h * f, NULL);
    m->h = ops_buffer(m->o, rows * (size_t)m->cfg.intermediate * f, NULL);
    m->out = ops_buffer(m->o, (size_t)batch * h * f, NULL);
    m->max_rows = rows;
    m->max_batch = batch;
}

void bert_release(bert *m)
{
    release_activations(m);
    cl_mem all[] = {m->word, m->position, m->token_type, m->emb_ln_g, m->emb_ln_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        clReleaseMemObject(all[i]);
    for (int l = 0; l < m->cfg.layers; ++l) {
        const device_layer *d = &m->layers[l];
        cl_mem lw[] = {d->wqkv, d->bqkv, d->wo, d->bo, d->ln1_g, d->ln1_b,
                       d->w1,   d->b1,   d->w2, d->b2, d->ln2_g, d->ln2_b};
        for (size_t i = 0; i < sizeof lw / sizeof lw[0]; ++i)
            clReleaseMemObject(lw[i]);
    }
    free(m->layers);
}

/* Bidirectional attention over each sentence's own tokens. q, k, v and o
 * stay as the projections write them, [batch][seq][heads][head_dim]
 * (BSHD), described to clattn by strides. A padded batch needs no mask:
 * kv_lens hides every key past a sentence's length; the padding rows'
 * outputs are computed but never pooled. */
static clattn_problem attention_problem(const bert *m, int batch, int seq)
{
    const int h = m->cfg.hidden;
    const clattn_strides bshd = {(int64_t)seq * h, h / m->cfg.heads, h};
    clattn_problem p;
    memset(&p, 0, sizeof p);
    p.batch = batch;
    p.heads = m->cfg.heads;
    p.seq_q = seq;
    p.seq_kv = seq;
    p.head_dim = h / m->cfg.heads;
    p.dtype = CLATTN_F32;
    p.q_strides = p.k_strides = p.v_strides = p.o_strides = bshd;
    return p;
}

/* rows tokens, multiplied as gemm_rows (ops_gemm_rows). */
static void layer(bert *m, int index, const clattn_problem *attn, int rows, int gemm_rows)
{
    const device_layer *d = &m->layers[index];
    ops *o = m->o;
    const int h = m->cfg.hidden, inter = m->cfg.intermediate;
    const float eps = m->cfg.layer_norm_eps;
    ops_linear(o, gemm_rows, 3 * h, h, m->x, d->wqkv, m->qkv);
    ops_split_qkv(o, m->qkv, d->bqkv, rows, m->q, m->k, m->v);
    if (index == m->dump_layer) {
        ops_read(o, m->q, (size_t)rows * h * sizeof(float), m->dump_q);
        ops_read(o, m->k, (size_t)rows * h * sizeof(float), m->dump_k);
    }
    clattn_buffers buf;
    memset(&buf, 0, sizeof buf);
    buf.q = m->q;
    buf.k = m->k;
    buf.v = m->v;
    buf.o = m->attn;
    buf.kv_lens = m->lens;
    check_attn(m->ctx, clattn_forward(m->ctx, attn, &buf, 0, NULL, NULL), "clattn_forward");
    ops_linear(o, gemm_rows, h, h, m->attn, d->wo, m->y);
    ops_add_layer_norm(o, m->y, d->bo, d->ln1_g, d->ln1_b, eps, rows, m->x);
    ops_linear(o, gemm_rows, inter, h, m->x, d->w1, m->h);
    ops_bias_gelu(o, m->h, d->b1, rows, inter);
    ops_linear(o, gemm_rows, h, inter, m->h, d->w2, m->y);
    ops_add_layer_norm(o, m->y, d->b2, d->ln2_g, d->ln2_b, eps, rows, m->x);
}

void bert_encode(bert *m, const int32_t *ids, const int32_t *lens, int batch, int seq,
                 float *out)
{
    const int rows = batch * seq;
    const int gemm_rows = ops_gemm_rows(rows);
    reserve(m, (size_t)gemm_rows, batch);
    const ops *o = m->o;
    ops_write(o, m->ids, (size_t)rows * sizeof *ids, ids);
    ops_write(o, m->lens, (size_t)batch * sizeof *lens, lens);
    ops_embed_layer_norm(o, m->ids, m->word, m->position, m->token_type, m->emb_ln_g,
                         m->emb_ln_b, m->cfg.layer_norm_eps, rows, seq, m->cfg.vocab_size, m->x);
    const clattn_problem attn = attention_problem(m, batch, seq);
    for (int l = 0; l < m->cfg.layers; ++l)
        layer(m, l, &attn, rows, gemm_rows);
    ops_mean_pool(o, m->x, m->lens, batch, seq, m->cfg.normalize, m->out);
    ops_read(o, m->out, (size_t)batch * (size_t)m->cfg.hidden * sizeof *out, out);
}
