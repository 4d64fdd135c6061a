/* Shared pieces of the fault and soak tests: work directories, a log that
 * keeps the last message, one checked forward run, RSS. */
#ifndef CLATTN_TESTS_FX_H
#define CLATTN_TESTS_FX_H

#include <stddef.h>

#include "cl_layer.h"
#include "harness.h"

/* CLATTN_LONG=1 selects the long versions. */
int fx_long(void);
double fx_now(void);

/* A fresh empty directory "<work>/<name>" (work: $CLATTN_FAULT_WORK, else
 * /tmp/clattn-faults.PID); removed again by fx_remove_tree. */
void fx_fresh_dir(const char *name, char *buf, size_t size);
void fx_remove_tree(const char *path);
/* Removes this process's work directory (unless CLATTN_TEST_KEEP is set). */
void fx_cleanup(void);

/* The library's log, kept for the checks: the last error message. */
typedef struct fx_log {
    int errors, warnings;
    char last[2048];
} fx_log;
void fx_log_fn(int level, const char *message, void *user_data);

/* How a forward is run. */
typedef enum { FX_DEVICE, FX_HOST } fx_api;

/* What a run changed in the caller's O and LSE arrays. */
typedef struct fx_touched {
    int outputs;   /* any element of O or LSE (views, gaps, guards) */
    long outside;  /* elements never to be written: O's gaps and guard, LSE's guard */
} fx_touched;

/* Runs t's problem on ctx with the layer armed around the library calls
 * only: through device buffers (clattn_forward, then the test waits and
 * reads O and LSE back) or clattn_forward_host. O and LSE are poisoned
 * first. touched (may be NULL) says what differs from the poison afterwards. */
clattn_status fx_forward(clattn_context *ctx, t_tensors *t, fx_api api, fx_touched *touched);

/* fx_forward that must succeed with a result matching the reference;
 * returns 1 when it did (failures are counted in t_failures). */
int fx_forward_ok(clattn_context *ctx, t_tensors *t, fx_api api, const char *label);

/* Resident set of this process in bytes (/proc/self/statm). */
long fx_rss_bytes(void);

/* The caller-owned OpenCL objects of the "from queue" contexts. */
typedef struct fx_cl {
    cl_context ctx;
    cl_command_queue queue;
    cl_device_id device;
} fx_cl;
/* Creates them on the device clattn would choose (unarmed). 0 on success. */
int fx_cl_create(fx_cl *cl, int out_of_order);
void fx_cl_release(fx_cl *cl);

#endif
