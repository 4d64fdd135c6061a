/*
 * An OpenCL layer for the fault and soak tests, linked into their executable
 * only. The executable itself defines clCreateBuffer, clReleaseEvent, ... ;
 * the dynamic linker binds libclattn's (and CLBlast's) references to those
 * definitions before libOpenCL's, and each one forwards to the next
 * definition in the search order (dlsym(RTLD_NEXT)). No LD_PRELOAD, so it
 * works the same under AddressSanitizer.
 *
 * The layer
 *   - keeps the API reference count of every object created through it
 *     (create/retain +1, release -1) and so the live references per type;
 *   - counts the calls of the injectable functions while armed;
 *   - fails one chosen call (the nth of one function, or the nth of any
 *     injectable function) with a realistic error code, without calling the
 *     real function for it;
 *   - counts the kernels launched while armed, so a test knows whether a
 *     fault came before the first one;
 *   - on request, makes the tuner's call sequence independent of timing:
 *     every event reports the same profiling times, and libclattn's
 *     CLOCK_MONOTONIC can be moved forward (the executable defines
 *     clock_gettime too and forwards every other caller untouched).
 */
#ifndef CLATTN_TESTS_CL_LAYER_H
#define CLATTN_TESTS_CL_LAYER_H

#include <stddef.h>

#include "clattn.h"

typedef enum fl_type {
    FL_CONTEXT,
    FL_QUEUE,
    FL_MEM,
    FL_PROGRAM,
    FL_KERNEL,
    FL_EVENT,
    FL_NTYPES
} fl_type;

/* Injectable functions. */
#define FL_FUNCTIONS(X)                                                            \
    X(clCreateContext)                                                             \
    X(clCreateContextFromType)                                                     \
    X(clCreateCommandQueue)                                                        \
    X(clCreateCommandQueueWithProperties)                                          \
    X(clCreateBuffer)                                                              \
    X(clCreateSubBuffer)                                                           \
    X(clCreateImage)                                                               \
    X(clCreateProgramWithSource)                                                   \
    X(clCreateProgramWithBinary)                                                   \
    X(clBuildProgram)                                                              \
    X(clCreateKernel)                                                              \
    X(clCreateKernelsInProgram)                                                    \
    X(clSetKernelArg)                                                              \
    X(clCreateUserEvent)                                                           \
    X(clEnqueueNDRangeKernel)                                                      \
    X(clEnqueueTask)                                                               \
    X(clEnqueueReadBuffer)                                                         \
    X(clEnqueueWriteBuffer)                                                        \
    X(clEnqueueReadBufferRect)                                                     \
    X(clEnqueueWriteBufferRect)                                                    \
    X(clEnqueueFillBuffer)                                                         \
    X(clEnqueueCopyBuffer)                                                         \
    X(clEnqueueCopyBufferRect)                                                     \
    X(clEnqueueMapBuffer)                                                          \
    X(clEnqueueUnmapMemObject)                                                     \
    X(clEnqueueMarkerWithWaitList)                                                 \
    X(clEnqueueBarrierWithWaitList)                                                \
    X(clEnqueueMigrateMemObjects)                                                  \
    X(clFinish)                                                                    \
    X(clWaitForEvents)                                                             \
    X(clGetProgramInfo)                                                            \
    X(clGetEventProfilingInfo)

typedef enum fl_fn {
#define FL_X_ENUM(name) FL_##name,
    FL_FUNCTIONS(FL_X_ENUM)
#undef FL_X_ENUM
    FL_NFN
} fl_fn;

#define FL_ANY (-1)

const char *fl_fn_name(int fn);
const char *fl_type_name(fl_type t);

/* ---- object accounting (always on) -------------------------------------- */

typedef struct fl_counts {
    long refs[FL_NTYPES]; /* API references held, per type */
} fl_counts;

void fl_counts_get(fl_counts *out);
/* 1 when equal; otherwise writes "mem +2 event -1" into buf. */
int fl_counts_same(const fl_counts *before, const fl_counts *after, char *buf, size_t size);
/* References the API holds on one object (0 when unknown or freed). */
long fl_refs(const void *handle);
/* Releases of objects the layer never saw created, or past zero, so far. */
long fl_bad_releases(void);

/* ---- call counting and injection ----------------------------------------- */

/* Counting and injection happen only while armed (the tests arm around the
 * library's calls, not their own). */
void fl_arm(int on);
/* Zeroes the call counters and cancels a planned fault. */
void fl_reset(void);
/* Calls while armed since fl_reset: of fn, or of every function in the
 * "any" set (FL_ANY). */
unsigned long fl_calls(int fn);
/* Which functions the FL_ANY count (and an FL_ANY fault) covers: a bit per
 * fl_fn. The default leaves out clSetKernelArg. */
void fl_set_any_set(unsigned long long mask);
unsigned long long fl_default_any_set(void);

/* Fails the nth (1-based) armed call of fn (FL_ANY: of any function in the
 * any set) with the variant-th code of that function's list (wrapping). */
void fl_plan(int fn, unsigned long nth, int variant);

typedef struct fl_fault {
    int fired;
    int fn;
    cl_int code;
    unsigned long nth_any; /* the call's index in the any count */
    char caller[64];       /* object the failing call came from (basename) */
    unsigned long kernels_before; /* fl_kernels() when it fired */
} fl_fault;
/* The planned fault, if it fired. */
fl_fault fl_fired(void);

/* Kernels (clEnqueueNDRangeKernel, clEnqueueTask) launched while armed
 * since fl_reset, by the library or CLBlast. */
unsigned long fl_kernels(void);

/* On: every event's profiling times are the same (queued = submit = start,
 * end 0.1 ms later), so a tuner's decisions no longer depend on how fast the
 * device ran. */
void fl_fake_profiling(int on);
/* Moves libclattn's CLOCK_MONOTONIC forward by seconds (0 on fl_reset): a
 * tune's budget then runs out at a chosen point instead of at a moment the
 * machine's speed decides. Other callers keep the real clock. */
void fl_clock_jump(double seconds);

/* Armed calls by the object they came from since fl_reset. */
typedef struct fl_callers {
    unsigned long clattn, clblast, executable, other;
} fl_callers;
fl_callers fl_callers_get(void);

const char *fl_cl_error_name(cl_int code);

#endif /* CLATTN_TESTS_CL_LAYER_H */
