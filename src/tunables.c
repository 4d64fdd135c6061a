/* The table of tunables and tuned units (tunables.h says what is derived
 * from it). */
#include <string.h>

#include "tunables.h"

/* Limits a forced or stored value must respect before plan.c fits it to the
 * device: no work-group or tile beyond these is meaningful on any device
 * OpenCL 1.2 describes. */
#define WG_MAX 1024
#define ROWS_MAX 64
#define VEC_MAX 16
#define NSPLIT_MAX 4096
#define BLAS_SETS_MAX 64

#define QK CLATTN__K_QK
#define SM CLATTN__K_SOFTMAX
#define AV CLATTN__K_AV
#define FU CLATTN__K_FUSED
#define CO CLATTN__K_COMBINE
#define FV CLATTN__K_FUSED_VEC
#define FL CLATTN__K_FUSED_LANES
#define ME CLATTN__K_MERGE
#define AP CLATTN__K_KV_APPEND
#define PL CLATTN__K_PLAN

const clattn__tunable_def clattn__tunables[CLATTN__T_COUNT] = {
    /* name, kernel, forcible, lo, hi, {cpu, gpu}, meaning */
    [CLATTN__T_QK_WG] = {"QK_WG", QK, 1, 1, WG_MAX, {1, 64}, "QK: work-items per group"},
    [CLATTN__T_QK_ROWS] = {"QK_ROWS", QK, 1, 1, ROWS_MAX, {2, 2},
                           "QK: query rows per work-item (at most seq_q)"},
    [CLATTN__T_QK_VEC] = {"QK_VEC", QK, 1, 1, VEC_MAX, {16, 4},
                          "QK: keys per vector (4, 8 or 16)"},
    [CLATTN__T_QK_CV] = {"QK_CV", QK, 1, 1, ROWS_MAX, {4, 1},
                         "QK: vectors of keys per work-item (CPU: at most the keys)"},
    [CLATTN__T_SM_WG] = {"SM_WG", SM, 1, 1, WG_MAX, {1, 128},
                         "softmax: work-items per row (a power of two)"},
    [CLATTN__T_SM_VEC] = {"SM_VEC", SM, 1, 1, VEC_MAX, {16, 4},
                          "softmax: scores per vector (4, 8 or 16)"},
    [CLATTN__T_AV_WG] = {"AV_WG", AV, 1, 1, WG_MAX, {1, 64}, "AV: work-items per group"},
    [CLATTN__T_AV_ROWS] = {"AV_ROWS", AV, 1, 1, ROWS_MAX, {4, 1},
                           "AV: query rows per work-item (at most seq_q)"},
    [CLATTN__T_AV_VEC] = {"AV_VEC", AV, 1, 1, VEC_MAX, {16, 4},
                          "AV: value dims per vector (CPU: the widest dividing head_dim_v)"},
    [CLATTN__T_AV_CV] = {"AV_CV", AV, 1, 1, ROWS_MAX, {4, 1},
                         "AV: vectors of value dims per work-item (CPU: enough to cover "
                         "head_dim_v within 256 accumulators)"},
    [CLATTN__T_BLOCK_M] = {"BLOCK_M", FU, 1, 1, WG_MAX, {16, 64},
                           "row fused kernel: query rows (= work-items) per group"},
    [CLATTN__T_BLOCK_N] = {"BLOCK_N", FU, 1, 1, WG_MAX, {32, 16},
                           "row fused kernel: keys per local-memory tile"},
    [CLATTN__T_SPLIT_KV] = {"SPLIT_KV", FU, 0, 0, 1, {0, 0},
                            "row fused kernel writes split-KV partials (set by the path)"},
    [CLATTN__T_COMBINE_WG] = {"COMBINE_WG", CO, 1, 1, WG_MAX, {64, 64},
                              "split-KV combine: work-items per group"},
    [CLATTN__T_FV_WG] = {"FV_WG", FV, 1, 1, WG_MAX, {8, 8},
                         "vector fused kernel: work-items per group (fewer when the rows or "
                         "the groups run out)"},
    [CLATTN__T_FV_ROWS] = {"FV_ROWS", FV, 1, 1, ROWS_MAX, {16, 16},
                           "vector fused kernel: query rows per work-item (fewer for short "
                           "queries, 4 past 512 dims)"},
    [CLATTN__T_FV_VEC] = {"FV_VEC", FV, 1, 1, VEC_MAX, {16, 16},
                          "vector fused kernel: keys per tile and vector (4, 8 or 16)"},
    [CLATTN__T_FV_SPLIT_KV] = {"SPLIT_KV", FV, 0, 0, 1, {0, 0},
                               "vector fused kernel writes split-KV partials (set by the path)"},
    [CLATTN__T_FV_GQA] = {"FV_GQA", FV, 1, 0, 1, {1, 1},
                          "vector fused kernel: a K/V tile serves a GQA group (only when "
                          "grouped)"},
    [CLATTN__T_FV_DIRECT] = {"FV_DIRECT", FV, 1, 0, 1, {0, 0},
                             "vector fused kernel reads K/V directly, no local tile (default "
                             "1 for one work-item groups)"},
    [CLATTN__T_FV_IDOT] = {"FV_IDOT", FV, 1, 0, 1, {1, 0},
                           "vector fused kernel, direct decode: int8 K with a scale a row "
                           "scored with integer dot products, each query row rounded to 16 "
                           "bits (0: fp32 products)"},
    [CLATTN__T_FL_WG] = {"FL_WG", FL, 1, 1, WG_MAX, {1, 1},
                         "rows-in-lanes fused kernel: work-items per group"},
    [CLATTN__T_FL_LANES] = {"FL_LANES", FL, 1, 1, VEC_MAX, {16, 16},
                            "rows-in-lanes fused kernel: query rows a work-item, one per lane "
                            "(4, 8 or 16)"},
    [CLATTN__T_FL_KEYS] = {"FL_KEYS", FL, 1, 1, ROWS_MAX, {16, 16},
                           "rows-in-lanes fused kernel: keys per tile"},
    [CLATTN__T_FL_KB] = {"FL_KB", FL, 1, 1, 16, {4, 4},
                         "rows-in-lanes fused kernel: keys scored at once (divides FL_KEYS; "
                         "more where the device has more vector registers)"},
    [CLATTN__T_FL_DB] = {"FL_DB", FL, 1, 1, 16, {4, 4},
                         "rows-in-lanes fused kernel: value dims updated at once (divides "
                         "head_dim_v)"},
    [CLATTN__T_FL_SPLIT_KV] = {"SPLIT_KV", FL, 0, 0, 1, {0, 0},
                               "rows-in-lanes fused kernel writes split-KV partials (set by "
                               "the path)"},
    [CLATTN__T_MERGE_WG] = {"MERGE_WG", ME, 1, 1, WG_MAX, {1, 64},
                            "clattn_merge: work-items per group"},
    [CLATTN__T_APPEND_WG] = {"APPEND_WG", AP, 1, 1, WG_MAX, {1, 64},
                             "clattn_kv_append: work-items per group"},
    [CLATTN__T_FUSED_VEC] = {"FUSED_VEC", PL, 1, 0, 2, {1, 0},
                             "which fused kernel: 0 row (a row a work-item), 1 vector (rows x "
                             "a vector of keys a work-item), 2 rows-in-lanes (the default on "
                             "CPUs for 8 or more query rows)"},
    [CLATTN__T_NSPLIT] = {"NSPLIT", PL, 1, 1, NSPLIT_MAX, {0, 0},
                          "split-KV partitions (default: enough for 4 groups per compute "
                          "unit)"},
    [CLATTN__T_QK_BLAS] = {"QK_BLAS", PL, 1, 0, 1, {0, 0},
                           "three-stage Q.K^T through CLBlast where eligible"},
    [CLATTN__T_AV_BLAS] = {"AV_BLAS", PL, 1, 0, 1, {0, 0},
                           "three-stage P.V through CLBlast where eligible"},
    [CLATTN__T_CLBLAST_SET] = {"CLBLAST_SET", PL, 1, 0, BLAS_SETS_MAX, {0, 0},
                               "CLBlast parameter set (0: CLBlast's own)"},
    [CLATTN__T_PATH] = {"PATH", PL, 0, CLATTN_PATH_FUSED, CLATTN_PATH_SPLIT_KV, {0, 0},
                        "the measured best path for AUTO (tuned, never forced)"},
};

int clattn__tunable_find(const char *name)
{
    for (int t = 0; t < CLATTN__T_COUNT; ++t)
        if (strcmp(clattn__tunables[t].name, name) == 0)
            return t;
    return -1;
}

int clattn__tunable_slot(clattn__tunable_id t)
{
    int slot = 0;
    for (int i = 0; i < (int)t; ++i)
        slot += clattn__tunables[i].kernel == clattn__tunables[t].kernel;
    return slot;
}

int clattn__kernel_tunables(clattn__kernel_id k, clattn__tunable_id *ids)
{
    int n = 0;
    for (int t = 0; t < CLATTN__T_COUNT && n < CLATTN__MAX_PARAMS; ++t)
        if (clattn__tunables[t].kernel == (int)k)
            ids[n++] = (clattn__tunable_id)t;
    return n;
}

#define KB CLATTN__K_BIT
#define T(id) CLATTN__T_##id

const clattn__space clattn__spaces[] = {
    /* FUSED_VEC picks the kernel: BLOCK_* tune the row-per-work-item one,
     * FV_* the vector one (a point sets only its own kernel's tunables). */
    {"fused",
     CLATTN_PATH_FUSED,
     KB(FU) | KB(FV) | KB(FL),
     13,
     {{T(FUSED_VEC), 3, {0, 1, 2}},
      {T(BLOCK_M), 7, {1, 2, 4, 8, 16, 32, 64}},
      {T(BLOCK_N), 5, {4, 8, 16, 32, 64}},
      {T(FV_ROWS), 5, {1, 2, 4, 8, 16}},
      {T(FV_WG), 5, {1, 2, 4, 8, 16}},
      {T(FV_VEC), 3, {4, 8, 16}},
      {T(FV_GQA), 2, {0, 1}},
      {T(FV_DIRECT), 2, {0, 1}},
      {T(FL_WG), 2, {1, 2}},
      {T(FL_LANES), 2, {16, 8}},
      {T(FL_KEYS), 2, {16, 8}},
      {T(FL_KB), 3, {4, 2, 8}},
      {T(FL_DB), 3, {4, 2, 8}}}},
    {"splitkv",
     CLATTN_PATH_SPLIT_KV,
     KB(FU) | KB(FV) | KB(CO),
     10,
     {{T(FUSED_VEC), 2, {0, 1}},
      {T(BLOCK_M), 5, {1, 2, 4, 8, 16}},
      {T(BLOCK_N), 4, {8, 16, 32, 64}},
      {T(NSPLIT), 7, {1, 2, 4, 8, 16, 32, 64}},
      {T(COMBINE_WG), 3, {16, 64, 128}},
      {T(FV_ROWS), 4, {1, 2, 4, 8}},
      {T(FV_WG), 4, {1, 2, 4, 8}},
      {T(FV_VEC), 3, {4, 8, 16}},
      {T(FV_GQA), 2, {0, 1}},
      {T(FV_DIRECT), 2, {0, 1}}}},
    {"qk",
     CLATTN_PATH_THREE_STAGE,
     KB(QK),
     5,
     {{T(QK_WG), 4, {1, 2, 4, 8}},
      {T(QK_ROWS), 6, {1, 2, 4, 8, 12, 16}},
      {T(QK_VEC), 3, {4, 8, 16}},
      {T(QK_CV), 3, {1, 2, 4}},
      {T(QK_BLAS), 2, {0, 1}}}},
    {"softmax", CLATTN_PATH_THREE_STAGE, KB(SM), 2,
     {{T(SM_WG), 6, {1, 4, 16, 64, 128, 256}}, {T(SM_VEC), 3, {4, 8, 16}}}},
    {"av",
     CLATTN_PATH_THREE_STAGE,
     KB(AV),
     5,
     {{T(AV_WG), 4, {1, 2, 4, 8}},
      {T(AV_ROWS), 6, {1, 2, 4, 6, 8, 12}},
      {T(AV_VEC), 3, {4, 8, 16}},
      {T(AV_CV), 5, {1, 2, 4, 8, 16}},
      {T(AV_BLAS), 2, {0, 1}}}},
    /* CLBlast's own parameters, for the GEMMs the qk/av units gave it. */
    {"clblast", CLATTN_PATH_THREE_STAGE, KB(QK) | KB(AV), 1,
     {{T(CLBLAST_SET), 6, {1, 2, 3, 4, 5, 6}}}},
    /* The paths compared with their tuned plans; its entry holds PATH. */
    {"path",
     CLATTN_PATH_AUTO,
     KB(QK) | KB(SM) | KB(AV) | KB(FU) | KB(CO) | KB(FV) | KB(FL),
     0,
     {{0}}},
    {NULL, CLATTN_PATH_AUTO, 0, 0, {{0}}},
};

int clattn__unit_count(void)
{
    int n = 0;
    while (clattn__spaces[n].unit)
        ++n;
    return n;
}

int clattn__unit_index(const char *unit)
{
    for (int i = 0; clattn__spaces[i].unit; ++i)
        if (strcmp(clattn__spaces[i].unit, unit) == 0)
            return i;
    return -1;
}

/* C99 has no static assertion: an array of negative size stops the build
 * when CLATTN__UNITS_MAX cannot hold every unit. */
typedef char clattn__units_fit[sizeof clattn__spaces / sizeof clattn__spaces[0] <=
                                       CLATTN__UNITS_MAX + 1
                                   ? 1
                                   : -1];
