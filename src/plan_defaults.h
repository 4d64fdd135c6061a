/* The kernels' built-in configurations fitted to a shape and a device
 * (plan_defaults.c), and the small integer helpers plan.c shares. */
#ifndef CLATTN_PLAN_DEFAULTS_H
#define CLATTN_PLAN_DEFAULTS_H

#include "device.h"
#include "plan.h"

static inline int clattn__next_pow2(int x)
{
    int p = 1;
    while (p < x && p < (1 << 30))
        p *= 2;
    return p;
}

static inline int clattn__ceil_div(int a, int b) { return (a + b - 1) / b; }

static inline int clattn__min_int(int a, int b) { return a < b ? a : b; }

/* The vector widths OpenCL has: 4, 8 or 16. */
static inline int clattn__vec_width(int w) { return w >= 16 ? 16 : w >= 8 ? 8 : 4; }

/* The three-stage kernels (plan->qk, softmax, av, holding the table's
 * defaults for the device class) fitted to the shape and the device. */
void clattn__three_stage_defaults(const clattn__device_info *d, const clattn__shape *s,
                                  clattn__plan *plan);

/* The vector fused kernel's defaults (in c) fitted to the shape and the
 * device. */
void clattn__fused_vec_defaults(const clattn__device_info *d, const clattn__shape *s,
                                clattn__kernel_config *c);

/* Whether the rows-in-lanes kernel suits the shape (enough query rows,
 * few enough dims), and its defaults from the device's registers. */
int clattn__fused_lanes_fits(const clattn__shape *s);
void clattn__fused_lanes_defaults(const clattn__device_info *d, const clattn__shape *s,
                                  clattn__kernel_config *c);

/* Makes the rows-in-lanes blocks that a forced or tuned value left divide. */
void clattn__fused_lanes_fix(const clattn__shape *s, clattn__kernel_config *c);

#endif
