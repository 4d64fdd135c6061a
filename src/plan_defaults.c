/* The kernels' built-in configurations fitted to a shape and to the device's
 * registers, work-group limits and compute units (plan.c takes the table's
 * defaults, then these, then tuned and forced values). */
#include <stdint.h>

#include "plan_defaults.h"

/* Native vectors of accumulators an AV work-item keeps on a CPU: sixteen,
 * half the register file of AVX-512 and all of AVX2's (where four rows of
 * four 8-wide vectors, covering half of head_dim 64 a pass, measured faster
 * than two vectors a row over four passes: BENCHMARKS.md). */
#define AV_ACCUMULATORS_CPU 16

/* Built-in three-stage tiles, the table's defaults fitted to the shape and
 * device. CPUs (PoCL runs a work-group as a loop, one core each): one
 * work-item per group, and per work-item a block of rows x vectors of keys
 * (QK: 2 x 4 vectors, the fastest measured on AVX-512, where 8 x 1 spent
 * its time on 8 row addresses) or of value dims (AV: 4 x 4) that keeps 8 to
 * 16 vector accumulators busy; softmax one row per work-item. Vectors as
 * wide as the device's native ones: float16 on AVX-512, float8 on AVX2,
 * where float16 accumulators took two registers each and QK spilled (1.5x
 * slower on P1, BENCHMARKS.md). GPUs: many work-items, narrow vectors. */
void clattn__three_stage_defaults(const clattn__device_info *d, const clattn__shape *s,
                                  clattn__plan *plan)
{
    const clattn_problem *p = &s->p;
    const int cpu = d->dev_class != CLATTN__CLASS_GPU;
    const int dv = p->head_dim_v;
    if (cpu) {
        const int native = clattn__vec_width((int)d->plan_vec_float);
        clattn__cfg_set(&plan->qk, CLATTN__T_QK_VEC,
                        clattn__min_int(native, clattn__cfg_get(&plan->qk, CLATTN__T_QK_VEC)));
        const int sm_vec = clattn__cfg_get(&plan->softmax, CLATTN__T_SM_VEC);
        clattn__cfg_set(&plan->softmax, CLATTN__T_SM_VEC, clattn__min_int(native, sm_vec));
        /* no wider a tile of keys than there are keys */
        const int w = clattn__cfg_get(&plan->qk, CLATTN__T_QK_VEC);
        const int qk_cv = clattn__cfg_get(&plan->qk, CLATTN__T_QK_CV);
        clattn__cfg_set(&plan->qk, CLATTN__T_QK_CV,
                        clattn__min_int(clattn__ceil_div(p->seq_kv, w), qk_cv));
        /* AV: the widest vector up to the native one that divides
         * head_dim_v (a partial last vector is loaded element by element),
         * and enough vectors to cover head_dim_v within the accumulator
         * budget. */
        int vw = native;
        while (vw > 4 && dv % vw)
            vw /= 2;
        if (dv % vw)
            vw = native;
        const int rows = clattn__cfg_get(&plan->av, CLATTN__T_AV_ROWS);
        clattn__cfg_set(&plan->av, CLATTN__T_AV_VEC, vw);
        clattn__cfg_set(&plan->av, CLATTN__T_AV_CV,
                        clattn__min_int(clattn__ceil_div(dv, vw),
                                        AV_ACCUMULATORS_CPU * native / (rows * vw)));
    } else {
        const int av_vec = clattn__cfg_get(&plan->av, CLATTN__T_AV_VEC);
        clattn__cfg_set(&plan->av, CLATTN__T_AV_CV,
                        clattn__min_int(clattn__ceil_div(dv, av_vec),
                                        clattn__cfg_get(&plan->av, CLATTN__T_AV_CV)));
    }
    /* Fewer query rows than a block: no work-item computes idle rows. */
    clattn__cfg_set(&plan->qk, CLATTN__T_QK_ROWS,
                    clattn__min_int(p->seq_q, clattn__cfg_get(&plan->qk, CLATTN__T_QK_ROWS)));
    clattn__cfg_set(&plan->av, CLATTN__T_AV_ROWS,
                    clattn__min_int(p->seq_q, clattn__cfg_get(&plan->av, CLATTN__T_AV_ROWS)));
}

/* Rows a vector fused work-item takes by default, and past how many dims
 * (q plus accumulators) it takes fewer: sixteen rows of MLA's 576 + 512
 * dims are ~70 KiB a work-item, four keep them near the core. */
#define FV_ROWS_WIDE_DIMS (2 * 256)
#define FV_ROWS_WIDE 4

/* The vector fused kernel's built-in configuration fitted to the shape:
 * FV_ROWS rows a work-item (each staged K/V tile serves many rows; fewer
 * rows measured up to 2x slower on PoCL), FV_WG work-items a group; fewer
 * when there are fewer rows (decode), so no work-item idles, and smaller
 * groups where there would be too few to fill the compute units. */
void clattn__fused_vec_defaults(const clattn__device_info *d, const clattn__shape *s,
                               clattn__kernel_config *c)
{
    const clattn_problem *p = &s->p;
    const int vrows = p->seq_q * s->group; /* GQA: query heads' rows interleaved */
    int rows = clattn__cfg_get(c, CLATTN__T_FV_ROWS);
    if (vrows < rows)
        rows = clattn__next_pow2(vrows);
    if (p->head_dim + p->head_dim_v > FV_ROWS_WIDE_DIMS && rows > FV_ROWS_WIDE)
        rows = FV_ROWS_WIDE;
    int wg = clattn__cfg_get(c, CLATTN__T_FV_WG);
    if (clattn__ceil_div(vrows, rows) < wg)
        wg = clattn__next_pow2(clattn__ceil_div(vrows, rows));
    const int64_t heads_groups = (int64_t)p->batch * (s->group > 1 ? p->kv_heads : p->heads);
    const int64_t enough = 2 * (int64_t)(d->compute_units ? d->compute_units : 1);
    while (wg > 1 && (int64_t)clattn__ceil_div(vrows, rows * wg) * heads_groups < enough)
        wg /= 2;
    clattn__cfg_set(c, CLATTN__T_FV_ROWS, rows);
    clattn__cfg_set(c, CLATTN__T_FV_WG, wg);
    /* A vector of keys no wider than a register: float16 is two AVX2
     * registers, and D1's decode ran ~1.2x faster with float8 on PoCL's
     * haswell code (BENCHMARKS.md, "Plans from the device name's CPU"). */
    if (d->dev_class == CLATTN__CLASS_CPU)
        clattn__cfg_set(c, CLATTN__T_FV_VEC,
                        clattn__min_int(clattn__vec_width((int)d->plan_vec_float),
                                clattn__cfg_get(c, CLATTN__T_FV_VEC)));
    /* a K/V tile serves the GQA group */
    clattn__cfg_set(c, CLATTN__T_FV_GQA, clattn__cfg_get(c, CLATTN__T_FV_GQA) && s->group > 1);
    /* A group of one work-item (decode) has no one to share a staged tile
     * with: reading K and V directly skips the scalar staging. */
    clattn__cfg_set(c, CLATTN__T_FV_DIRECT, wg == 1);
}

/* The rows-in-lanes kernel needs blocks of this many query rows to pay off
 * (fewer rows leave lanes idle: decode keeps the vector kernel), and keeps
 * its queries and accumulators per work-item, up to this many dims. */
#define FL_MIN_ROWS 8
#define FL_MAX_DIMS 512

int clattn__fused_lanes_fits(const clattn__shape *s)
{
    return s->p.seq_q >= FL_MIN_ROWS && s->p.head_dim + s->p.head_dim_v <= FL_MAX_DIMS;
}

/* The largest of 8, 4, 2, 1 that divides n and whose accumulators (each
 * `per` registers), with one operand, fit three quarters of regs. */
static int register_block(int n, int per, int regs)
{
    for (int b = 8; b > 1; b /= 2)
        if (n % b == 0 && (b + 1) * per <= regs * 3 / 4)
            return b;
    return 1;
}

/* The rows-in-lanes kernel's configuration from the device's vector width
 * and registers: FL_LANES rows (a float16 is one AVX-512 register, two
 * AVX2 ones), and as many keys scored (FL_KB) and value dims updated
 * (FL_DB) at once as keep their accumulators in registers. */
void clattn__fused_lanes_defaults(const clattn__device_info *d, const clattn__shape *s,
                                 clattn__kernel_config *c)
{
    const int lanes = clattn__cfg_get(c, CLATTN__T_FL_LANES);
    const int per = lanes > (int)d->plan_vec_float ? lanes / (int)d->plan_vec_float : 1;
    clattn__cfg_set(c, CLATTN__T_FL_KB,
                    register_block(clattn__cfg_get(c, CLATTN__T_FL_KEYS), per, d->vector_regs));
    clattn__cfg_set(c, CLATTN__T_FL_DB, register_block(s->p.head_dim_v, per, d->vector_regs));
}

/* Makes blocks a forced or tuned value left that do not divide. */
void clattn__fused_lanes_fix(const clattn__shape *s, clattn__kernel_config *c)
{
    const int lanes = clattn__cfg_get(c, CLATTN__T_FL_LANES);
    clattn__cfg_set(c, CLATTN__T_FL_LANES, clattn__vec_width(lanes));
    const int keys = clattn__cfg_get(c, CLATTN__T_FL_KEYS);
    int kb = clattn__cfg_get(c, CLATTN__T_FL_KB), db = clattn__cfg_get(c, CLATTN__T_FL_DB);
    while (kb > 1 && keys % kb)
        --kb;
    while (db > 1 && s->p.head_dim_v % db)
        --db;
    clattn__cfg_set(c, CLATTN__T_FL_KB, kb);
    clattn__cfg_set(c, CLATTN__T_FL_DB, db);
}

