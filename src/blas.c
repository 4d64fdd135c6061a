/* The three-stage path's GEMMs through CLBlast (row-major, fp32). */
#include "blas.h"
#include "feature_table.h"
#include "internal.h"

#ifdef CLATTN_HAVE_CLBLAST
#include <clblast_c.h>

int clattn__blas_available(void) { return 1; }

static int in_order(const clattn_context *ctx)
{
    cl_command_queue_properties props = 0;
    return clGetCommandQueueInfo(ctx->queue, CL_QUEUE_PROPERTIES, sizeof props, &props,
                                 NULL) == CL_SUCCESS &&
           !(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
}

/* The softmax kernel applies every score step to a GEMM's raw scores but
 * those that must see the scores before they are scaled whole
 * (feature_table.c says which); a batched GEMM cannot follow
 * variable-length sequences, pages or a storage other than fp32. */
int clattn__blas_qk_eligible(const clattn_context *ctx, const clattn__shape *s)
{
    return s->p.dtype == CLATTN_F32 && in_order(ctx) && !s->kv.k_fmt && !s->kv.paged &&
           clattn__features_have(clattn__shape_features(s), CLATTN__FT_GEMM_QK);
}

/* A GEMM cannot skip keys: only problems where every row sees every key. */
int clattn__blas_av_eligible(const clattn_context *ctx, const clattn__shape *s)
{
    return s->p.dtype == CLATTN_F32 && in_order(ctx) && !s->kv.v_fmt && !s->kv.paged &&
           !s->has_mask && !s->has_kv_lens &&
           s->p.causal == CLATTN_CAUSAL_NONE && !s->p.windowed &&
           clattn__features_have(clattn__shape_features(s), CLATTN__FT_ALL_KEYS);
}

static clattn_status blas_fail(clattn_context *ctx, CLBlastStatusCode code, const char *what)
{
    return clattn__fail(ctx, code == CLBlastOpenCLOutOfResources ? CLATTN_ERR_OUT_OF_RESOURCES
                                                                     : CLATTN_ERR_OPENCL,
                        "%s failed: CLBlast status %d", what, (int)code);
}

/* A leading dimension CLBlast accepts: a view of one row may have any seq
 * stride, but the GEMM still wants ld >= the row length. */
static size_t ld(int64_t stride, int rows, int len)
{
    return rows == 1 && stride < len ? (size_t)len : (size_t)stride;
}

clattn_status clattn__blas_qk(clattn_context *ctx, const clattn__shape *s, cl_mem q, cl_mem k,
                              cl_mem scores, int bh0, int nbh, int row0, int nrows)
{
    const clattn_problem *p = &s->p;
    const size_t lda = ld(p->q_strides.seq, nrows, p->head_dim);
    const size_t ldb = ld(p->k_strides.seq, p->seq_kv, p->head_dim);
    const size_t c_stride = (size_t)nrows * (size_t)p->seq_kv;
    /* One batched call when consecutive heads are evenly spaced in Q and K. */
    const int even = s->group == 1 && p->q_strides.batch == p->heads * p->q_strides.head &&
                     p->k_strides.batch == p->heads * p->k_strides.head;
    for (int i = 0; i < nbh; i += even ? nbh : 1) {
        const int bh = bh0 + i, b = bh / p->heads, h = bh % p->heads, kh = h / s->group;
        const size_t a_off = (size_t)(b * p->q_strides.batch + h * p->q_strides.head +
                                      (int64_t)row0 * p->q_strides.seq);
        const size_t b_off = (size_t)(b * p->k_strides.batch + kh * p->k_strides.head);
        CLBlastStatusCode st = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, (size_t)nrows,
            (size_t)p->seq_kv, (size_t)p->head_dim, p->scale, q, a_off, lda,
            (size_t)p->q_strides.head, k, b_off, ldb, (size_t)p->k_strides.head, 0.0f, scores,
            (size_t)i * c_stride, (size_t)p->seq_kv, c_stride, even ? (size_t)nbh : 1,
            &ctx->queue, NULL);
        if (st != CLBlastSuccess)
            return blas_fail(ctx, st, "CLBlastSgemmStridedBatched (Q*K^T)");
    }
    return CLATTN_OK;
}

clattn_status clattn__blas_av(clattn_context *ctx, const clattn__shape *s, cl_mem pm, cl_mem v,
                              cl_mem o, int bh0, int nbh, int row0, int nrows)
{
    const clattn_problem *p = &s->p;
    const size_t ldb = ld(p->v_strides.seq, p->seq_kv, p->head_dim_v);
    const size_t ldc = ld(p->o_strides.seq, nrows, p->head_dim_v);
    const size_t a_stride = (size_t)nrows * (size_t)p->seq_kv;
    const int even = s->group == 1 && p->v_strides.batch == p->heads * p->v_strides.head &&
                     p->o_strides.batch == p->heads * p->o_strides.head;
    for (int i = 0; i < nbh; i += even ? nbh : 1) {
        const int bh = bh0 + i, b = bh / p->heads, h = bh % p->heads, kh = h / s->group;
        const size_t b_off = (size_t)(b * p->v_strides.batch + kh * p->v_strides.head);
        const size_t c_off = (size_t)(b * p->o_strides.batch + h * p->o_strides.head +
                                      (int64_t)row0 * p->o_strides.seq);
        CLBlastStatusCode st = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)nrows,
            (size_t)p->head_dim_v, (size_t)p->seq_kv, 1.0f, pm, (size_t)i * a_stride,
            (size_t)p->seq_kv, a_stride, v, b_off, ldb, (size_t)p->v_strides.head, 0.0f, o, c_off,
            ldc, (size_t)p->o_strides.head, even ? (size_t)nbh : 1, &ctx->queue, NULL);
        if (st != CLBlastSuccess)
            return blas_fail(ctx, st, "CLBlastSgemmStridedBatched (P*V)");
    }
    return CLATTN_OK;
}

/* CLBlast parameter sets: XgemmDirect's KWID MDIMAD MDIMCD NDIMBD NDIMCD
 * PADA PADB VWMD VWND WGD, then GemmRoutine's XGEMM_MIN_INDIRECT_SIZE (the
 * size from which CLBlast switches to its indirect kernel). Set 1 is
 * CLBlast's generic default for unknown devices, so applying it restores
 * the defaults; the others force the direct kernel with a spread of tile
 * sizes, work-group shapes and vector widths that satisfy its divisibility
 * rules. */
static const size_t param_sets[][11] = {
    {2, 8, 8, 8, 8, 1, 1, 1, 2, 16, 704},
    {2, 8, 8, 8, 8, 1, 1, 4, 4, 32, (size_t)1 << 30},
    {2, 8, 8, 16, 16, 1, 1, 4, 2, 32, (size_t)1 << 30},
    {8, 16, 16, 16, 16, 0, 0, 1, 1, 64, (size_t)1 << 30},
    {2, 8, 8, 8, 8, 0, 0, 2, 2, 64, (size_t)1 << 30},
    {16, 16, 8, 8, 8, 0, 0, 2, 4, 32, (size_t)1 << 30},
};
static const char *direct_names[10] = {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
                                       "PADA", "PADB",   "VWMD",   "VWND",   "WGD"};

int clattn__blas_num_sets(void) { return (int)(sizeof param_sets / sizeof param_sets[0]); }

void clattn__blas_release(void) { CLBlastClearCache(); }

clattn_status clattn__blas_apply_set(clattn_context *ctx, int set)
{
    if (set <= 0 || set > clattn__blas_num_sets())
        return CLATTN_OK;
    const size_t *v = param_sets[set - 1];
    CLBlastStatusCode st = CLBlastOverrideParameters(ctx->device, "XgemmDirect",
                                                     CLBlastPrecisionSingle, 10, direct_names, v);
    const char *routine[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
    if (st == CLBlastSuccess)
        st = CLBlastOverrideParameters(ctx->device, "GemmRoutine", CLBlastPrecisionSingle, 1,
                                       routine, v + 10);
    if (st != CLBlastSuccess)
        return blas_fail(ctx, st, "CLBlastOverrideParameters");
    return CLATTN_OK;
}

#else /* built without CLBlast */

int clattn__blas_num_sets(void) { return 0; }
void clattn__blas_release(void) {}
clattn_status clattn__blas_apply_set(clattn_context *ctx, int set)
{
    (void)ctx;
    (void)set;
    return CLATTN_OK;
}


int clattn__blas_available(void) { return 0; }
int clattn__blas_qk_eligible(const clattn_context *ctx, const clattn__shape *s)
{
    (void)ctx;
    (void)s;
    return 0;
}
int clattn__blas_av_eligible(const clattn_context *ctx, const clattn__shape *s)
{
    (void)ctx;
    (void)s;
    return 0;
}
clattn_status clattn__blas_qk(clattn_context *ctx, const clattn__shape *s, cl_mem q, cl_mem k,
                              cl_mem scores, int bh0, int nbh, int row0, int nrows)
{
    (void)s, (void)q, (void)k, (void)scores, (void)bh0, (void)nbh, (void)row0, (void)nrows;
    return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED, "clattn was built without CLBlast");
}
clattn_status clattn__blas_av(clattn_context *ctx, const clattn__shape *s, cl_mem pm, cl_mem v,
                              cl_mem o, int bh0, int nbh, int row0, int nrows)
{
    (void)s, (void)pm, (void)v, (void)o, (void)bh0, (void)nbh, (void)row0, (void)nrows;
    return clattn__fail(ctx, CLATTN_ERR_UNSUPPORTED, "clattn was built without CLBlast");
}

#endif
