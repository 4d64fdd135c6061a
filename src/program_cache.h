/* Builds kernels and keeps them per context, so nothing is built twice in a
 * process, and keeps their driver binaries on disk across processes. */
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
    /* A program built from source is written to disk once its kernel has
     * run (see program_cache.c): until then its disk key and path wait here,
     * and after its first launch, that launch's event. */
    char *store_key, *store_path;
    cl_event store_after;
} clattn__program_entry;

typedef struct clattn__program_cache {
    clattn__program_entry **entries; /* stable addresses: callers hold several */
    size_t count, capacity;
    size_t awaiting_launch, awaiting_finish; /* entries in each store state */
} clattn__program_cache;

struct clattn_context;

/* The built kernel of cfg on the context's device (built on first use). */
clattn_status clattn__program_get(struct clattn_context *ctx, const clattn__kernel_config *cfg,
                                  const clattn__program_entry **out);

/* Tells the cache that k was enqueued with event ev (after the enqueue
 * succeeded). Costs a comparison once nothing waits for a first launch. */
void clattn__program_launched(struct clattn_context *ctx, cl_kernel k, cl_event ev);

/* Writes the binaries of programs whose first launch has finished. Called
 * before each kernel lookup, and by clattn_context_destroy after clFinish.
 * Disk problems are logged, never returned: the cache is an optimisation. */
void clattn__program_cache_flush(struct clattn_context *ctx);

void clattn__program_cache_release(clattn__program_cache *cache);

#endif
