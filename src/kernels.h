/* Kernel families, their tunables, their sources and their build options. */
#ifndef CLATTN_KERNELS_H
#define CLATTN_KERNELS_H

#include <stddef.h>

#include "clattn.h"
#include "device.h"
#include "tunables.h"

typedef struct clattn__embedded_file {
    const char *name;
    const char *text;
    size_t len;
} clattn__embedded_file;

/* Generated at build time from cl/ (cmake/embed_kernels.cmake); NULL-ended. */
extern const clattn__embedded_file clattn__embedded_files[];


/* How K and V are stored, as -D options of the kernels (cl/common.h's
 * K_FMT, K_GROUP, K_SDT, K_PH, the same for V, and PAGED). A format equal
 * to the problem's dtype is 0, so such a problem builds the plain kernels. */
typedef struct clattn__kv_layout {
    unsigned char k_fmt, v_fmt; /* clattn_kv_format; 0 = the dtype's */
    unsigned char k_sdt, v_sdt; /* clattn_dtype of the scales */
    short k_group, v_group;     /* INT8/INT4: channels per scale (the row's when whole) */
    unsigned char k_ph, v_ph;   /* FP8: a scale per kv head */
    unsigned char paged;
} clattn__kv_layout;

/* One compiled configuration of a kernel: what goes into its -D options.
 * Sequence lengths, batch and heads are kernel arguments, not part of this. */
typedef struct clattn__kernel_config {
    clattn__kernel_id id;
    clattn_dtype dtype;
    int head_dim, head_dim_v;
    unsigned features; /* CLATTN__F_* of the problem (feature_table.h): -D switches */
    clattn__kv_layout kv; /* K/V storage and paging: all zero = the dtype's, contiguous */
    int values[CLATTN__MAX_PARAMS]; /* by clattn__tunable_slot: use clattn__cfg_* */
} clattn__kernel_config;

const char *clattn__kernel_name(clattn__kernel_id id);

/* A tunable of the config's kernel (which it must be: anything else is a
 * programming error, caught by an assert). */
int clattn__cfg_get(const clattn__kernel_config *cfg, clattn__tunable_id t);
void clattn__cfg_set(clattn__kernel_config *cfg, clattn__tunable_id t, int value);

/* Whether t is one of the config kernel's tunables. */
int clattn__cfg_has(const clattn__kernel_config *cfg, clattn__tunable_id t);

/* The fused kernel a FUSED_VEC value selects (0 row, 1 vector, 2
 * rows-in-lanes), the value of a fused kernel, and its SPLIT_KV switch. */
clattn__kernel_id clattn__fused_kernel(int fused_vec);
int clattn__fused_kind(clattn__kernel_id id);
clattn__tunable_id clattn__split_tunable(clattn__kernel_id id);

/* Makes cfg kernel id with every tunable at the table's built-in default
 * for the device class (dtype, dims and features are kept). */
void clattn__cfg_defaults(clattn__kernel_config *cfg, clattn__kernel_id id,
                          clattn__device_class dev_class);

/* The complete source of a family (cl/common.h followed by its .cl file),
 * from CLATTN_KERNEL_DIR when that is set, else from the embedded copies.
 * The caller frees *out. Returns 0, or -1 with a message in msg. */
int clattn__kernel_source(clattn__kernel_id id, char **out, char *msg, size_t msg_size);

/* The complete build options of a configuration on a device, including
 * CLATTN_BUILD_OPTIONS from the environment. Returns 0, or -1 if buf is too
 * small. */
int clattn__build_options(const clattn__device_info *dev, const clattn__kernel_config *cfg,
                          char *buf, size_t size);

#endif
