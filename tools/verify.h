/* The data side of attn-tune verify: the case table, inputs, the double
 * reference, and the comparison of the library's outputs with it. */
#ifndef ATTN_TUNE_VERIFY_H
#define ATTN_TUNE_VERIFY_H

#include "clattn.h"

#include <stddef.h>
#include <stdint.h>

/* Memory layouts of q, k, v and o. BSHD is [batch][seq][heads][dim] (what
 * most frameworks hold); PADDED leaves gaps after each row, head and batch,
 * filled with NaN in the inputs, which the library must never read. */
typedef enum vlayout { VLAYOUT_PACKED, VLAYOUT_BSHD, VLAYOUT_PADDED } vlayout;

typedef struct vshape {
    const char *name;
    int batch, heads, kv_heads, seq_q, seq_kv, head_dim, head_dim_v;
    float scale; /* 0 = default */
    vlayout layout;
    int quick; /* part of verify --quick */
} vshape;

typedef enum vmask {
    VMASK_NONE,
    VMASK_CAUSAL_BR,
    VMASK_CAUSAL_TL,
    VMASK_WINDOW,
    VMASK_ADDITIVE,
    VMASK_KV_LENS,
    VMASK_SLIDING,   /* causal-br with a window reaching back only */
    VMASK_KV_CAUSAL, /* kv_lens with causal-br: the diagonal moves with L */
    VMASK_COUNT
} vmask;

extern const vshape verify_shapes[];
extern const size_t verify_shape_count;

const char *verify_mask_name(vmask m);
const char *verify_layout_name(vlayout l);

/* One problem with its inputs, the reference outputs, and output buffers
 * poisoned before each run: NaN inside the view of O and the LSE, a guard
 * pattern in O's gaps and after its end. */
typedef struct vdata {
    clattn_problem problem; /* as handed to clattn */
    clattn_problem norm;    /* the same with defaults filled in */
    clattn_host_buffers host;
    void *q, *k, *v, *o;
    float *mask, *lse;
    int32_t *kv_lens;
    unsigned char *o_in_view; /* per O element: 1 inside the view */
    size_t o_elems;           /* O's allocation, guard tail included */
    size_t o_count, lse_count;
    double *ref_o, *ref_lse, *got_o;
} vdata;

/* Builds the problem and random inputs (deterministic in seed) and computes
 * the reference. Returns 0 when memory runs out. */
int vdata_make(vdata *d, const vshape *s, vmask m, clattn_dtype dtype, uint64_t seed);
void vdata_set_path(vdata *d, clattn_path path);
void vdata_poison_outputs(vdata *d);
void vdata_free(vdata *d);

typedef struct vcheck {
    double o_err, lse_err; /* relative L2; infinity where -inf rows differ */
    int guard_ok;          /* O's gaps and tail untouched */
    char worst[160];       /* the worst O element, for failure reports */
    char lse_worst[160];   /* the worst LSE row */
} vcheck;

void vdata_check(vdata *d, vcheck *c);

#endif /* ATTN_TUNE_VERIFY_H */
