/* The tuned units' search spaces (tunables.c holds them) at work: applying
 * a point to a plan, and the constraints that prune a point before anything
 * is compiled. */
#ifndef CLATTN_TUNER_SPACE_H
#define CLATTN_TUNER_SPACE_H

#include "device.h"
#include "plan.h"
#include "tunables.h"

/* One point of a space: an index into each tunable's values. */
typedef struct clattn__point {
    int idx[CLATTN__MAX_TUNABLES];
} clattn__point;

/* Writes the point's values into the plan's kernel configs (and the split
 * count). */
clattn_status clattn__space_apply(struct clattn_context *ctx, const clattn__space *sp,
                                  const clattn__point *pt, const clattn__shape *s,
                                  clattn__plan *plan);

/* The point closest to the plan's current (default) values; raw (may be
 * NULL) receives the plan's exact values of the unit's tunables. */
void clattn__space_point_of(const clattn__space *sp, const clattn__plan *plan,
                            clattn__point *pt, int *raw);

/* 1 when the point passes the static constraints on this device and shape:
 * work-group size within the device's limits, local memory within its
 * size, tiles no larger than the problem needs, CLBlast only where it is
 * built in and eligible (its point has the tiles at their first values:
 * they do not apply to it). */
int clattn__space_valid(const clattn__space *sp, const clattn__point *pt,
                        const struct clattn_context *ctx, const clattn__shape *s);

/* Whether tunable i means anything at this point (a fused kernel's
 * tunables apply only when FUSED_VEC selects that kernel). */
int clattn__space_applies(const clattn__space *sp, const clattn__point *pt, int i);

/* "NAME=v NAME=v" of a point (the tunables that apply). */
void clattn__space_describe(const clattn__space *sp, const clattn__point *pt, char *buf,
                            size_t size);

/* Number of points in the whole space. */
int clattn__space_size(const clattn__space *sp);

#endif
