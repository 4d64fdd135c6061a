/* Pieces of attn-tune bench shared between its files. */
#ifndef ATTN_TUNE_BENCH_H
#define ATTN_TUNE_BENCH_H

#include "attn_tune.h"

/* One first-call measurement: a new process creates a context, runs one
 * forward and waits for it. */
typedef struct first_call {
    int ok;
    double ms;
    unsigned long long built, loaded, stored, rejected;
    char message[256]; /* why it failed */
} first_call;

/* Runs the first-call child twice on one fresh temporary cache directory
 * (cold: empty; warm: what the cold run stored), with POCL_KERNEL_CACHE=0 so
 * the driver's own cache hides nothing. device is "P:D" or "" for clattn's
 * choice. Returns 1 when both ran. */
int bench_first_call(const char *device, const char *shape_text, first_call *cold,
                     first_call *warm);

#endif /* ATTN_TUNE_BENCH_H */
