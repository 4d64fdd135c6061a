/* Builds kernels and keeps them per context, so nothing is built twice in a
 * process. (The on-disk binary cache joins here with the caching work.) */
#ifndef CLATTN_PROGRAM_CACHE_H
#define CLATTN_PROGRAM_CACHE_H

#include "clattn.h"
#include "kernels.h"

typedef struct clattn__program_entry {
    char *key; /* kernel family + complete build options */
    cl_program program;
    cl_kernel kernel;
    size_t kernel_wg_size;    /* CL_KERNEL_WORK_GROUP_SIZE */
    cl_ulong kernel_local_mem; /* CL_KERNEL_LOCAL_MEM_SIZE */
} clattn__program_entry;

typedef struct clattn__program_cache {
    clattn__program_entry **entries; /* stable addresses: callers hold several */
    size_t count, capacity;
} clattn__program_cache;

struct clattn_context;

/* The built kernel of cfg on the context's device (built on first use). */
clattn_status clattn__program_get(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                                  const clattn__program_entry **out);

void clattn__program_cache_release(clattn__program_cache *cache);

#endif
