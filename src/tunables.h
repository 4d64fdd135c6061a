/* The one table of clattn's kernel families, tunables and tuned units.
 *
 * Everything that names a tunable is derived from it: the -D options a
 * kernel is built with (kernels.c), the built-in defaults the plan starts
 * from (plan.c), CLATTN_PARAMS (plan.c), the tuner's search spaces
 * (tuner_space.c) and the tuning-db units and the sources their entries
 * are keyed to (tuning_store.c). A kernel config's values are reached by
 * tunable id (clattn__cfg_get / clattn__cfg_set), never by position. */
#ifndef CLATTN_TUNABLES_H
#define CLATTN_TUNABLES_H

#include "clattn.h"

typedef enum clattn__kernel_id {
    CLATTN__K_QK,
    CLATTN__K_SOFTMAX,
    CLATTN__K_AV,
    CLATTN__K_FUSED,
    CLATTN__K_COMBINE,
    CLATTN__K_FUSED_VEC,
    CLATTN__K_FUSED_LANES,
    CLATTN__K_MERGE,     /* clattn_merge (cl/merge.cl) */
    CLATTN__K_KV_APPEND, /* clattn_kv_append (cl/kv_append.cl) */
    CLATTN__K_COUNT
} clattn__kernel_id;

/* The "kernel" of a tunable that is the plan's rather than a -D. */
#define CLATTN__K_PLAN (-1)

/* Every tunable; the table in tunables.c gives its name, kernel and
 * meaning. A kernel's tunables are its -D options, in this order. */
typedef enum clattn__tunable_id {
    CLATTN__T_QK_WG,
    CLATTN__T_QK_ROWS,
    CLATTN__T_QK_VEC,
    CLATTN__T_QK_CV,
    CLATTN__T_SM_WG,
    CLATTN__T_SM_VEC,
    CLATTN__T_AV_WG,
    CLATTN__T_AV_ROWS,
    CLATTN__T_AV_VEC,
    CLATTN__T_AV_CV,
    CLATTN__T_BLOCK_M,
    CLATTN__T_BLOCK_N,
    CLATTN__T_SPLIT_KV,
    CLATTN__T_COMBINE_WG,
    CLATTN__T_FV_WG,
    CLATTN__T_FV_ROWS,
    CLATTN__T_FV_VEC,
    CLATTN__T_FV_SPLIT_KV,
    CLATTN__T_FV_GQA,
    CLATTN__T_FV_DIRECT,
    CLATTN__T_FV_IDOT,
    CLATTN__T_FL_WG,
    CLATTN__T_FL_LANES,
    CLATTN__T_FL_KEYS,
    CLATTN__T_FL_KB,
    CLATTN__T_FL_DB,
    CLATTN__T_FL_SPLIT_KV,
    CLATTN__T_MERGE_WG,
    CLATTN__T_APPEND_WG,
    /* the plan's own */
    CLATTN__T_FUSED_VEC,
    CLATTN__T_NSPLIT,
    CLATTN__T_QK_BLAS,
    CLATTN__T_AV_BLAS,
    CLATTN__T_CLBLAST_SET,
    CLATTN__T_PATH,
    CLATTN__T_COUNT
} clattn__tunable_id;

/* Built-in defaults are given per device class (device.h's classes). */
#define CLATTN__DFLT_CPU 0
#define CLATTN__DFLT_GPU 1

typedef struct clattn__tunable_def {
    const char *name; /* the -D name, the CLATTN_PARAMS name, the db name */
    int kernel;       /* clattn__kernel_id whose -D it is, or CLATTN__K_PLAN */
    int forcible;     /* CLATTN_PARAMS may set it (not what the path decides) */
    int lo, hi;       /* the values CLATTN_PARAMS and the db may give */
    int dflt[2];      /* built-in default, CPU and GPU, before plan.c fits it
                       * to the shape and the device (see its meaning) */
    const char *meaning;
} clattn__tunable_def;

extern const clattn__tunable_def clattn__tunables[CLATTN__T_COUNT];

/* The id of a tunable name, or -1. A name two kernels share (SPLIT_KV)
 * gives the first. */
int clattn__tunable_find(const char *name);

/* A tunable's index among its kernel's values (its -D order). */
int clattn__tunable_slot(clattn__tunable_id t);

/* The tunables of a kernel family, in -D order, into ids (room for
 * CLATTN__MAX_PARAMS); returns their count. A family with more tunables
 * than that has the rest ignored (clattn__cfg_has says no): raise it. */
#define CLATTN__MAX_PARAMS 8
int clattn__kernel_tunables(clattn__kernel_id k, clattn__tunable_id *ids);

/* ---- tuned units ---------------------------------------------------------
 * A unit is what the tuner measures and the db stores one entry for: the
 * tunables it searches with their candidate values, the path its kernels
 * belong to and the kernels it times (whose sources key its entries). */

#define CLATTN__MAX_TUNABLES 16
#define CLATTN__MAX_VALUES 8

typedef struct clattn__tunable {
    clattn__tunable_id id;
    int count;
    int values[CLATTN__MAX_VALUES];
} clattn__tunable;

typedef struct clattn__space {
    const char *unit;
    clattn_path path; /* the path whose plan the unit's kernels belong to;
                       * AUTO: the "path" unit, which compares whole paths */
    unsigned kernels; /* bit i: kernel id i is timed, and keys the entries */
    int count;        /* tunables searched; 0 for "path" */
    clattn__tunable t[CLATTN__MAX_TUNABLES];
} clattn__space;

#define CLATTN__K_BIT(id) (1u << (id))

/* The units, NULL-unit ended, in the order the tuner takes them for a
 * path: fused, splitkv, qk, softmax, av, clblast, then path. */
extern const clattn__space clattn__spaces[];

/* The name of a unit's i-th searched tunable. */
#define CLATTN__SP_NAME(sp, i) (clattn__tunables[(sp)->t[i].id].name)

/* Room for every unit in per-unit arrays (checked where the table is). */
#define CLATTN__UNITS_MAX 16

/* Number of units (without the end marker). */
int clattn__unit_count(void);

/* The index of a unit name in clattn__spaces, or -1. */
int clattn__unit_index(const char *unit);

#endif
