/* The attention probabilities of the chosen batch entry, from the library
 * itself: the heat maps show what clattn computes, not a second
 * implementation of it. */
#include "view.h"

#include "clattn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    return 0;
}

/* Warnings (a refused disk cache, say) go to stderr as they come; the last
 * error is kept because clattn_context_create has no context to ask. */
#define LOG_KEEP 512

static void log_message(int level, const char *message, void *user_data)
{
    if (level == CLATTN_LOG_ERROR)
        snprintf((char *)user_data, LOG_KEEP, "%s", message);
    else if (level == CLATTN_LOG_WARNING)
        fprintf(stderr, "attn-view: clattn warning: %s\n", message);
}

int view_visible(int causal, int seq_q, int seq_kv, int i, int j)
{
    if (causal == CLATTN_CAUSAL_TOP_LEFT)
        return j <= i;
    if (causal == CLATTN_CAUSAL_BOTTOM_RIGHT)
        return (long long)j <= (long long)i + seq_kv - seq_q;
    return 1;
}

int view_compute_weights(const view_inputs *in, int causal, float scale, float *probs,
                         char *why, size_t why_size)
{
    char create_error[LOG_KEEP] = "";
    clattn_options opts;
    clattn_options_init(&opts);
    opts.log = log_message;
    opts.log_user_data = create_error;
    clattn_context *ctx = NULL;
    clattn_status st = clattn_context_create(&opts, &ctx);
    if (st != CLATTN_OK)
        return fail(why, why_size, "cannot open the OpenCL device: %s%s%s",
                    clattn_status_string(st), create_error[0] ? ": " : "", create_error);
    /* V only has to exist: a one-wide V of zeros keeps the three-stage
     * path's P*V step (which the weights call runs too) negligible. */
    const clattn_problem p = {.batch = 1,
                              .heads = in->heads,
                              .kv_heads = in->kv_heads,
                              .seq_q = in->seq_q,
                              .seq_kv = in->seq_kv,
                              .head_dim = in->head_dim,
                              .head_dim_v = 1,
                              .dtype = CLATTN_F32,
                              .scale = scale,
                              .causal = causal,
                              .path = CLATTN_PATH_THREE_STAGE};
    const size_t v_elems = (size_t)in->kv_heads * (size_t)in->seq_kv;
    float *v = calloc(v_elems, sizeof(float));
    if (!v) {
        clattn_context_destroy(ctx);
        return fail(why, why_size, "out of memory for V");
    }
    /* The sizes of what was allocated, so that any disagreement between
     * these arrays and the problem is refused rather than overrun. */
    clattn_buffer_sizes sizes;
    memset(&sizes, 0, sizeof sizes);
    sizes.q = (size_t)in->heads * (size_t)in->seq_q * (size_t)in->head_dim * sizeof(float);
    sizes.k = (size_t)in->kv_heads * (size_t)in->seq_kv * (size_t)in->head_dim * sizeof(float);
    sizes.v = v_elems * sizeof(float);
    sizes.probs = (size_t)in->heads * (size_t)in->seq_q * (size_t)in->seq_kv * sizeof(float);
    const clattn_host_buffers io = {.q = in->q, .k = in->k, .v = v, .sizes = &sizes};
    st = clattn_attention_weights_host(ctx, &p, &io, probs);
    int ok = 1;
    if (st != CLATTN_OK)
        ok = fail(why, why_size, "clattn_attention_weights_host: %s: %s",
                  clattn_status_string(st), clattn_last_error(ctx));
    free(v);
    clattn_context_destroy(ctx);
    return ok;
}
