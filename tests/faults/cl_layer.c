/* The interposed OpenCL layer of the fault and soak tests (see cl_layer.h). */
#define _GNU_SOURCE /* RTLD_NEXT, dladdr */
#undef CL_TARGET_OPENCL_VERSION
/* Declare every entry point this layer defines, 2.0 ones included. */
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_1_APIS
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cl_layer.h"

static const char *const fn_names[FL_NFN] = {
#define FL_X_NAME(name) #name,
    FL_FUNCTIONS(FL_X_NAME)
#undef FL_X_NAME
};

const char *fl_fn_name(int fn)
{
    return fn >= 0 && fn < FL_NFN ? fn_names[fn] : fn == FL_ANY ? "any" : "?";
}

const char *fl_type_name(fl_type t)
{
    static const char *const n[FL_NTYPES] = {"context", "queue", "mem", "program", "kernel",
                                             "event"};
    return (unsigned)t < FL_NTYPES ? n[t] : "?";
}

const char *fl_cl_error_name(cl_int code)
{
    switch (code) {
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_BINARY: return "CL_INVALID_BINARY";
    case CL_PROFILING_INFO_NOT_AVAILABLE: return "CL_PROFILING_INFO_NOT_AVAILABLE";
    default: return "?";
    }
}

/* ---- state --------------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Live objects: open addressing on the handle, deletion by backward shift.
 * Only objects with API references are in it, so its size is bounded by
 * what a test holds at once, not by how many it ever made. */
#define TABLE_BITS 16
#define TABLE_SIZE (1u << TABLE_BITS)
typedef struct slot {
    const void *h;
    long refs;
    unsigned char type, from_binary;
} slot;
static slot table[TABLE_SIZE];
static size_t table_used;
static long live_refs[FL_NTYPES];
static long bad_releases;

static int armed;
static unsigned long calls[FL_NFN], any_calls;
static unsigned long long any_set = ~0ull & ~(1ull << FL_clSetKernelArg);
static int plan_fn = FL_ANY;
static unsigned long plan_nth; /* 0 = none */
static int plan_variant;
static fl_fault fired;
static fl_callers callers;
static unsigned long kernels_launched;
static int fake_profiling;
/* Read by clock_gettime, which any thread may call at any time: an atomic,
 * never the lock. */
static long long clock_offset_ns;

static size_t hash(const void *h)
{
    uint64_t x = (uint64_t)(uintptr_t)h;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)(x & (TABLE_SIZE - 1));
}

static slot *find(const void *h)
{
    for (size_t i = hash(h);; i = (i + 1) & (TABLE_SIZE - 1)) {
        if (table[i].h == h)
            return &table[i];
        if (!table[i].h)
            return NULL;
    }
}

static void erase(slot *s)
{
    size_t i = (size_t)(s - table);
    table[i].h = NULL;
    table_used--;
    for (size_t j = (i + 1) & (TABLE_SIZE - 1); table[j].h; j = (j + 1) & (TABLE_SIZE - 1)) {
        size_t home = hash(table[j].h);
        /* Move j back to the hole when its home is not in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            table[i] = table[j];
            table[j].h = NULL;
            i = j;
        }
    }
}

static void track_new(const void *h, fl_type t, int from_binary)
{
    if (!h)
        return;
    pthread_mutex_lock(&lock);
    slot *s = find(h);
    if (s) {
        /* The runtime reuses a handle we still think live: a missed release. */
        live_refs[s->type] -= s->refs;
        bad_releases++;
    } else if (table_used + 1 < TABLE_SIZE / 2) {
        size_t i = hash(h);
        while (table[i].h)
            i = (i + 1) & (TABLE_SIZE - 1);
        s = &table[i];
        table_used++;
    }
    if (s) {
        s->h = h;
        s->refs = 1;
        s->type = (unsigned char)t;
        s->from_binary = (unsigned char)from_binary;
    } else {
        fprintf(stderr, "cl_layer: object table full\n");
        abort(); /* a test tool, not the library: a full table is a test bug */
    }
    live_refs[t]++;
    pthread_mutex_unlock(&lock);
}

static void track_ref(const void *h, int delta)
{
    pthread_mutex_lock(&lock);
    slot *s = find(h);
    if (!s) {
        bad_releases += delta < 0;
    } else {
        s->refs += delta;
        live_refs[s->type] += delta;
        if (s->refs == 0)
            erase(s);
    }
    pthread_mutex_unlock(&lock);
}

static int is_from_binary(const void *h)
{
    pthread_mutex_lock(&lock);
    slot *s = find(h);
    int r = s && s->from_binary;
    pthread_mutex_unlock(&lock);
    return r;
}

/* Codes a real driver returns for each function, most typical first. */
static cl_int code_for(int fn, int variant, int binary_program)
{
    static const cl_int alloc[] = {CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES,
                                   CL_OUT_OF_HOST_MEMORY};
    static const cl_int res[] = {CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY};
    static const cl_int host[] = {CL_OUT_OF_HOST_MEMORY, CL_OUT_OF_RESOURCES};
    static const cl_int build[] = {CL_BUILD_PROGRAM_FAILURE, CL_OUT_OF_RESOURCES,
                                   CL_OUT_OF_HOST_MEMORY};
    static const cl_int build_bin[] = {CL_INVALID_BINARY, CL_OUT_OF_RESOURCES,
                                       CL_OUT_OF_HOST_MEMORY};
    static const cl_int bin[] = {CL_INVALID_BINARY, CL_OUT_OF_HOST_MEMORY};
    static const cl_int enq[] = {CL_OUT_OF_RESOURCES, CL_MEM_OBJECT_ALLOCATION_FAILURE,
                                 CL_OUT_OF_HOST_MEMORY};
    static const cl_int prof[] = {CL_PROFILING_INFO_NOT_AVAILABLE, CL_OUT_OF_RESOURCES,
                                  CL_OUT_OF_HOST_MEMORY};
    const cl_int *list;
    int n;
#define FL_LIST(a) (list = (a), n = (int)(sizeof(a) / sizeof((a)[0])))
    switch (fn) {
    case FL_clCreateContext:
    case FL_clCreateContextFromType:
    case FL_clCreateProgramWithSource:
    case FL_clCreateUserEvent: FL_LIST(host); break;
    case FL_clCreateCommandQueue:
    case FL_clCreateCommandQueueWithProperties:
    case FL_clCreateKernel:
    case FL_clCreateKernelsInProgram:
    case FL_clSetKernelArg: FL_LIST(res); break;
    case FL_clCreateBuffer:
    case FL_clCreateSubBuffer:
    case FL_clCreateImage: FL_LIST(alloc); break;
    case FL_clCreateProgramWithBinary: FL_LIST(bin); break;
    case FL_clFinish:
    case FL_clWaitForEvents: FL_LIST(res); break;
    case FL_clGetProgramInfo: FL_LIST(host); break;
    case FL_clGetEventProfilingInfo: FL_LIST(prof); break;
    case FL_clBuildProgram:
        if (binary_program)
            FL_LIST(build_bin);
        else
            FL_LIST(build);
        break;
    default: FL_LIST(enq); break;
    }
#undef FL_LIST
    return list[(unsigned)variant % (unsigned)n];
}

static void note_caller(const void *ret, char *name, size_t size)
{
    Dl_info info;
    const char *file = dladdr(ret, &info) && info.dli_fname ? info.dli_fname : "";
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (strstr(base, "libclattn"))
        callers.clattn++;
    else if (strstr(base, "clblast"))
        callers.clblast++;
    else if (info.dli_fname && !strstr(base, ".so"))
        callers.executable++;
    else
        callers.other++;
    if (name)
        snprintf(name, size, "%s", base);
}

/* Counts an armed call; 1 with *code when this call is the one to fail. */
static int enter(int fn, const void *ret, int binary_program, cl_int *code)
{
    pthread_mutex_lock(&lock);
    int fail = 0;
    if (armed) {
        calls[fn]++;
        const int in_any = (any_set >> fn) & 1;
        any_calls += in_any;
        note_caller(ret, NULL, 0);
        if (plan_nth && !fired.fired &&
            ((plan_fn == fn && calls[fn] == plan_nth) ||
             (plan_fn == FL_ANY && in_any && any_calls == plan_nth))) {
            fail = 1;
            fired.fired = 1;
            fired.fn = fn;
            fired.nth_any = any_calls;
            fired.code = code_for(fn, plan_variant, binary_program);
            fired.kernels_before = kernels_launched;
            note_caller(ret, fired.caller, sizeof fired.caller);
            *code = fired.code;
        }
    }
    pthread_mutex_unlock(&lock);
    return fail;
}

/* ---- control ------------------------------------------------------------- */

void fl_counts_get(fl_counts *out)
{
    pthread_mutex_lock(&lock);
    memcpy(out->refs, live_refs, sizeof live_refs);
    pthread_mutex_unlock(&lock);
}

int fl_counts_same(const fl_counts *a, const fl_counts *b, char *buf, size_t size)
{
    int same = 1;
    size_t n = 0;
    if (size)
        buf[0] = '\0';
    for (int t = 0; t < FL_NTYPES; ++t) {
        if (a->refs[t] == b->refs[t])
            continue;
        same = 0;
        if (n < size)
            n += (size_t)snprintf(buf + n, size - n, "%s%s %+ld", n ? " " : "",
                                  fl_type_name((fl_type)t), b->refs[t] - a->refs[t]);
    }
    return same;
}

long fl_refs(const void *handle)
{
    pthread_mutex_lock(&lock);
    slot *s = find(handle);
    long r = s ? s->refs : 0;
    pthread_mutex_unlock(&lock);
    return r;
}

long fl_bad_releases(void)
{
    pthread_mutex_lock(&lock);
    long r = bad_releases;
    pthread_mutex_unlock(&lock);
    return r;
}

void fl_arm(int on)
{
    pthread_mutex_lock(&lock);
    armed = on;
    pthread_mutex_unlock(&lock);
}

void fl_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(calls, 0, sizeof calls);
    any_calls = 0;
    plan_nth = 0;
    memset(&fired, 0, sizeof fired);
    memset(&callers, 0, sizeof callers);
    kernels_launched = 0;
    __atomic_store_n(&clock_offset_ns, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&lock);
}

unsigned long fl_kernels(void)
{
    pthread_mutex_lock(&lock);
    unsigned long n = kernels_launched;
    pthread_mutex_unlock(&lock);
    return n;
}

void fl_fake_profiling(int on)
{
    pthread_mutex_lock(&lock);
    fake_profiling = on;
    pthread_mutex_unlock(&lock);
}

void fl_clock_jump(double seconds)
{
    __atomic_add_fetch(&clock_offset_ns, (long long)(seconds * 1e9), __ATOMIC_RELAXED);
}

unsigned long fl_calls(int fn)
{
    pthread_mutex_lock(&lock);
    unsigned long r = fn == FL_ANY ? any_calls : fn >= 0 && fn < FL_NFN ? calls[fn] : 0;
    pthread_mutex_unlock(&lock);
    return r;
}

void fl_set_any_set(unsigned long long mask)
{
    pthread_mutex_lock(&lock);
    any_set = mask;
    pthread_mutex_unlock(&lock);
}

unsigned long long fl_default_any_set(void) { return ~0ull & ~(1ull << FL_clSetKernelArg); }

void fl_plan(int fn, unsigned long nth, int variant)
{
    pthread_mutex_lock(&lock);
    plan_fn = fn;
    plan_nth = nth;
    plan_variant = variant;
    memset(&fired, 0, sizeof fired);
    pthread_mutex_unlock(&lock);
}

fl_fault fl_fired(void)
{
    pthread_mutex_lock(&lock);
    fl_fault f = fired;
    pthread_mutex_unlock(&lock);
    return f;
}

fl_callers fl_callers_get(void)
{
    pthread_mutex_lock(&lock);
    fl_callers c = callers;
    pthread_mutex_unlock(&lock);
    return c;
}

/* ---- the interposed entry points ----------------------------------------- */

/* The next definition of name after this executable: libOpenCL's. */
#define REAL(name)                                                                        \
    static __typeof__(&name) real_fn;                                                     \
    if (!real_fn) {                                                                       \
        void *sym_ = dlsym(RTLD_NEXT, #name);                                             \
        if (!sym_) {                                                                      \
            fprintf(stderr, "cl_layer: dlsym(RTLD_NEXT, %s) failed\n", #name);            \
            abort();                                                                      \
        }                                                                                 \
        memcpy(&real_fn, &sym_, sizeof real_fn);                                          \
    }
#define RET_ADDR __builtin_return_address(0)

/* Creators with an errcode_ret as the last parameter. */
#define FAIL_CREATE(fn, errp)                                                             \
    do {                                                                                  \
        cl_int code_;                                                                     \
        if (enter(FL_##fn, RET_ADDR, 0, &code_)) {                                        \
            if (errp)                                                                     \
                *(errp) = code_;                                                          \
            return NULL;                                                                  \
        }                                                                                 \
    } while (0)

#define FAIL_CALL(fn, binary)                                                             \
    do {                                                                                  \
        cl_int code_;                                                                     \
        if (enter(FL_##fn, RET_ADDR, (binary), &code_))                                   \
            return code_;                                                                 \
    } while (0)

cl_context clCreateContext(const cl_context_properties *props, cl_uint n,
                           const cl_device_id *devs,
                           void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *),
                           void *user, cl_int *err)
{
    REAL(clCreateContext);
    FAIL_CREATE(clCreateContext, err);
    cl_context c = real_fn(props, n, devs, notify, user, err);
    track_new(c, FL_CONTEXT, 0);
    return c;
}

cl_context clCreateContextFromType(const cl_context_properties *props, cl_device_type type,
                                   void(CL_CALLBACK *notify)(const char *, const void *, size_t,
                                                             void *),
                                   void *user, cl_int *err)
{
    REAL(clCreateContextFromType);
    FAIL_CREATE(clCreateContextFromType, err);
    cl_context c = real_fn(props, type, notify, user, err);
    track_new(c, FL_CONTEXT, 0);
    return c;
}

cl_int clRetainContext(cl_context c)
{
    REAL(clRetainContext);
    cl_int r = real_fn(c);
    if (r == CL_SUCCESS)
        track_ref(c, +1);
    return r;
}

cl_int clReleaseContext(cl_context c)
{
    REAL(clReleaseContext);
    cl_int r = real_fn(c);
    if (r == CL_SUCCESS)
        track_ref(c, -1);
    return r;
}

cl_command_queue clCreateCommandQueue(cl_context c, cl_device_id d,
                                      cl_command_queue_properties props, cl_int *err)
{
    REAL(clCreateCommandQueue);
    FAIL_CREATE(clCreateCommandQueue, err);
    cl_command_queue q = real_fn(c, d, props, err);
    track_new(q, FL_QUEUE, 0);
    return q;
}

cl_command_queue clCreateCommandQueueWithProperties(cl_context c, cl_device_id d,
                                                    const cl_queue_properties *props,
                                                    cl_int *err)
{
    REAL(clCreateCommandQueueWithProperties);
    FAIL_CREATE(clCreateCommandQueueWithProperties, err);
    cl_command_queue q = real_fn(c, d, props, err);
    track_new(q, FL_QUEUE, 0);
    return q;
}

cl_int clRetainCommandQueue(cl_command_queue q)
{
    REAL(clRetainCommandQueue);
    cl_int r = real_fn(q);
    if (r == CL_SUCCESS)
        track_ref(q, +1);
    return r;
}

cl_int clReleaseCommandQueue(cl_command_queue q)
{
    REAL(clReleaseCommandQueue);
    cl_int r = real_fn(q);
    if (r == CL_SUCCESS)
        track_ref(q, -1);
    return r;
}

cl_mem clCreateBuffer(cl_context c, cl_mem_flags flags, size_t size, void *host, cl_int *err)
{
    REAL(clCreateBuffer);
    FAIL_CREATE(clCreateBuffer, err);
    cl_mem m = real_fn(c, flags, size, host, err);
    track_new(m, FL_MEM, 0);
    return m;
}

cl_mem clCreateSubBuffer(cl_mem parent, cl_mem_flags flags, cl_buffer_create_type type,
                         const void *info, cl_int *err)
{
    REAL(clCreateSubBuffer);
    FAIL_CREATE(clCreateSubBuffer, err);
    cl_mem m = real_fn(parent, flags, type, info, err);
    track_new(m, FL_MEM, 0);
    return m;
}

cl_mem clCreateImage(cl_context c, cl_mem_flags flags, const cl_image_format *fmt,
                     const cl_image_desc *desc, void *host, cl_int *err)
{
    REAL(clCreateImage);
    FAIL_CREATE(clCreateImage, err);
    cl_mem m = real_fn(c, flags, fmt, desc, host, err);
    track_new(m, FL_MEM, 0);
    return m;
}

cl_int clRetainMemObject(cl_mem m)
{
    REAL(clRetainMemObject);
    cl_int r = real_fn(m);
    if (r == CL_SUCCESS)
        track_ref(m, +1);
    return r;
}

cl_int clReleaseMemObject(cl_mem m)
{
    REAL(clReleaseMemObject);
    cl_int r = real_fn(m);
    if (r == CL_SUCCESS)
        track_ref(m, -1);
    return r;
}

cl_program clCreateProgramWithSource(cl_context c, cl_uint n, const char **strings,
                                     const size_t *lengths, cl_int *err)
{
    REAL(clCreateProgramWithSource);
    FAIL_CREATE(clCreateProgramWithSource, err);
    cl_program p = real_fn(c, n, strings, lengths, err);
    track_new(p, FL_PROGRAM, 0);
    return p;
}

cl_program clCreateProgramWithBinary(cl_context c, cl_uint n, const cl_device_id *devs,
                                     const size_t *lengths, const unsigned char **binaries,
                                     cl_int *status, cl_int *err)
{
    REAL(clCreateProgramWithBinary);
    cl_int code;
    if (enter(FL_clCreateProgramWithBinary, RET_ADDR, 0, &code)) {
        for (cl_uint i = 0; status && i < n; ++i)
            status[i] = code == CL_INVALID_BINARY ? CL_INVALID_BINARY : CL_SUCCESS;
        if (err)
            *err = code;
        return NULL;
    }
    cl_program p = real_fn(c, n, devs, lengths, binaries, status, err);
    track_new(p, FL_PROGRAM, 1);
    return p;
}

cl_program clLinkProgram(cl_context c, cl_uint ndev, const cl_device_id *devs,
                         const char *options, cl_uint nprog, const cl_program *progs,
                         void(CL_CALLBACK *notify)(cl_program, void *), void *user, cl_int *err)
{
    REAL(clLinkProgram);
    cl_program p = real_fn(c, ndev, devs, options, nprog, progs, notify, user, err);
    track_new(p, FL_PROGRAM, 0);
    return p;
}

cl_int clBuildProgram(cl_program p, cl_uint n, const cl_device_id *devs, const char *options,
                      void(CL_CALLBACK *notify)(cl_program, void *), void *user)
{
    REAL(clBuildProgram);
    FAIL_CALL(clBuildProgram, is_from_binary(p));
    return real_fn(p, n, devs, options, notify, user);
}

cl_int clRetainProgram(cl_program p)
{
    REAL(clRetainProgram);
    cl_int r = real_fn(p);
    if (r == CL_SUCCESS)
        track_ref(p, +1);
    return r;
}

cl_int clReleaseProgram(cl_program p)
{
    REAL(clReleaseProgram);
    cl_int r = real_fn(p);
    if (r == CL_SUCCESS)
        track_ref(p, -1);
    return r;
}

cl_kernel clCreateKernel(cl_program p, const char *name, cl_int *err)
{
    REAL(clCreateKernel);
    FAIL_CREATE(clCreateKernel, err);
    cl_kernel k = real_fn(p, name, err);
    track_new(k, FL_KERNEL, 0);
    return k;
}

cl_int clCreateKernelsInProgram(cl_program p, cl_uint n, cl_kernel *kernels, cl_uint *ret)
{
    REAL(clCreateKernelsInProgram);
    FAIL_CALL(clCreateKernelsInProgram, 0);
    cl_uint got = 0;
    cl_int r = real_fn(p, n, kernels, &got);
    if (ret)
        *ret = got;
    for (cl_uint i = 0; r == CL_SUCCESS && kernels && i < got && i < n; ++i)
        track_new(kernels[i], FL_KERNEL, 0);
    return r;
}

cl_int clRetainKernel(cl_kernel k)
{
    REAL(clRetainKernel);
    cl_int r = real_fn(k);
    if (r == CL_SUCCESS)
        track_ref(k, +1);
    return r;
}

cl_int clReleaseKernel(cl_kernel k)
{
    REAL(clReleaseKernel);
    cl_int r = real_fn(k);
    if (r == CL_SUCCESS)
        track_ref(k, -1);
    return r;
}

cl_int clSetKernelArg(cl_kernel k, cl_uint i, size_t size, const void *value)
{
    REAL(clSetKernelArg);
    FAIL_CALL(clSetKernelArg, 0);
    return real_fn(k, i, size, value);
}

cl_event clCreateUserEvent(cl_context c, cl_int *err)
{
    REAL(clCreateUserEvent);
    FAIL_CREATE(clCreateUserEvent, err);
    cl_event e = real_fn(c, err);
    track_new(e, FL_EVENT, 0);
    return e;
}

cl_int clRetainEvent(cl_event e)
{
    REAL(clRetainEvent);
    cl_int r = real_fn(e);
    if (r == CL_SUCCESS)
        track_ref(e, +1);
    return r;
}

cl_int clReleaseEvent(cl_event e)
{
    REAL(clReleaseEvent);
    cl_int r = real_fn(e);
    if (r == CL_SUCCESS)
        track_ref(e, -1);
    return r;
}

/* Enqueues: the event they return (if asked for) is a new object. */
#define ENQUEUE_DONE(r, ev)                                                               \
    do {                                                                                  \
        if ((r) == CL_SUCCESS && (ev))                                                    \
            track_new(*(ev), FL_EVENT, 0);                                                \
        return (r);                                                                       \
    } while (0)

/* A kernel launch (the library's or CLBlast's). */
static void note_kernel(cl_int r)
{
    if (r != CL_SUCCESS)
        return;
    pthread_mutex_lock(&lock);
    kernels_launched += armed != 0;
    pthread_mutex_unlock(&lock);
}

cl_int clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dims,
                              const size_t *offset, const size_t *global, const size_t *local,
                              cl_uint nw, const cl_event *wait, cl_event *ev)
{
    REAL(clEnqueueNDRangeKernel);
    FAIL_CALL(clEnqueueNDRangeKernel, 0);
    cl_int r = real_fn(q, k, dims, offset, global, local, nw, wait, ev);
    note_kernel(r);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueTask(cl_command_queue q, cl_kernel k, cl_uint nw, const cl_event *wait,
                     cl_event *ev)
{
    REAL(clEnqueueTask);
    FAIL_CALL(clEnqueueTask, 0);
    cl_int r = real_fn(q, k, nw, wait, ev);
    note_kernel(r);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueReadBuffer(cl_command_queue q, cl_mem m, cl_bool blocking, size_t offset,
                           size_t size, void *ptr, cl_uint nw, const cl_event *wait,
                           cl_event *ev)
{
    REAL(clEnqueueReadBuffer);
    FAIL_CALL(clEnqueueReadBuffer, 0);
    cl_int r = real_fn(q, m, blocking, offset, size, ptr, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueWriteBuffer(cl_command_queue q, cl_mem m, cl_bool blocking, size_t offset,
                            size_t size, const void *ptr, cl_uint nw, const cl_event *wait,
                            cl_event *ev)
{
    REAL(clEnqueueWriteBuffer);
    FAIL_CALL(clEnqueueWriteBuffer, 0);
    cl_int r = real_fn(q, m, blocking, offset, size, ptr, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueReadBufferRect(cl_command_queue q, cl_mem m, cl_bool blocking,
                               const size_t *bo, const size_t *ho, const size_t *region,
                               size_t brp, size_t bsp, size_t hrp, size_t hsp, void *ptr,
                               cl_uint nw, const cl_event *wait, cl_event *ev)
{
    REAL(clEnqueueReadBufferRect);
    FAIL_CALL(clEnqueueReadBufferRect, 0);
    cl_int r = real_fn(q, m, blocking, bo, ho, region, brp, bsp, hrp, hsp, ptr, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueWriteBufferRect(cl_command_queue q, cl_mem m, cl_bool blocking,
                                const size_t *bo, const size_t *ho, const size_t *region,
                                size_t brp, size_t bsp, size_t hrp, size_t hsp,
                                const void *ptr, cl_uint nw, const cl_event *wait,
                                cl_event *ev)
{
    REAL(clEnqueueWriteBufferRect);
    FAIL_CALL(clEnqueueWriteBufferRect, 0);
    cl_int r = real_fn(q, m, blocking, bo, ho, region, brp, bsp, hrp, hsp, ptr, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueFillBuffer(cl_command_queue q, cl_mem m, const void *pattern, size_t psize,
                           size_t offset, size_t size, cl_uint nw, const cl_event *wait,
                           cl_event *ev)
{
    REAL(clEnqueueFillBuffer);
    FAIL_CALL(clEnqueueFillBuffer, 0);
    cl_int r = real_fn(q, m, pattern, psize, offset, size, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueCopyBuffer(cl_command_queue q, cl_mem src, cl_mem dst, size_t so, size_t dof,
                           size_t size, cl_uint nw, const cl_event *wait, cl_event *ev)
{
    REAL(clEnqueueCopyBuffer);
    FAIL_CALL(clEnqueueCopyBuffer, 0);
    cl_int r = real_fn(q, src, dst, so, dof, size, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueCopyBufferRect(cl_command_queue q, cl_mem src, cl_mem dst, const size_t *so,
                               const size_t *dof, const size_t *region, size_t srp,
                               size_t ssp, size_t drp, size_t dsp, cl_uint nw,
                               const cl_event *wait, cl_event *ev)
{
    REAL(clEnqueueCopyBufferRect);
    FAIL_CALL(clEnqueueCopyBufferRect, 0);
    cl_int r = real_fn(q, src, dst, so, dof, region, srp, ssp, drp, dsp, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

void *clEnqueueMapBuffer(cl_command_queue q, cl_mem m, cl_bool blocking, cl_map_flags flags,
                         size_t offset, size_t size, cl_uint nw, const cl_event *wait,
                         cl_event *ev, cl_int *err)
{
    REAL(clEnqueueMapBuffer);
    FAIL_CREATE(clEnqueueMapBuffer, err);
    cl_int e;
    void *p = real_fn(q, m, blocking, flags, offset, size, nw, wait, ev, &e);
    if (err)
        *err = e;
    if (e == CL_SUCCESS && ev)
        track_new(*ev, FL_EVENT, 0);
    return p;
}

cl_int clEnqueueUnmapMemObject(cl_command_queue q, cl_mem m, void *ptr, cl_uint nw,
                               const cl_event *wait, cl_event *ev)
{
    REAL(clEnqueueUnmapMemObject);
    FAIL_CALL(clEnqueueUnmapMemObject, 0);
    cl_int r = real_fn(q, m, ptr, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueMarkerWithWaitList(cl_command_queue q, cl_uint nw, const cl_event *wait,
                                   cl_event *ev)
{
    REAL(clEnqueueMarkerWithWaitList);
    FAIL_CALL(clEnqueueMarkerWithWaitList, 0);
    cl_int r = real_fn(q, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueBarrierWithWaitList(cl_command_queue q, cl_uint nw, const cl_event *wait,
                                    cl_event *ev)
{
    REAL(clEnqueueBarrierWithWaitList);
    FAIL_CALL(clEnqueueBarrierWithWaitList, 0);
    cl_int r = real_fn(q, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clEnqueueMigrateMemObjects(cl_command_queue q, cl_uint n, const cl_mem *mems,
                                  cl_mem_migration_flags flags, cl_uint nw,
                                  const cl_event *wait, cl_event *ev)
{
    REAL(clEnqueueMigrateMemObjects);
    FAIL_CALL(clEnqueueMigrateMemObjects, 0);
    cl_int r = real_fn(q, n, mems, flags, nw, wait, ev);
    ENQUEUE_DONE(r, ev);
}

/* The deprecated 1.1 marker always returns an event. */
cl_int clEnqueueMarker(cl_command_queue q, cl_event *ev)
{
    REAL(clEnqueueMarker);
    cl_int r = real_fn(q, ev);
    ENQUEUE_DONE(r, ev);
}

cl_int clFinish(cl_command_queue q)
{
    REAL(clFinish);
    FAIL_CALL(clFinish, 0);
    return real_fn(q);
}

cl_int clWaitForEvents(cl_uint n, const cl_event *list)
{
    REAL(clWaitForEvents);
    FAIL_CALL(clWaitForEvents, 0);
    return real_fn(n, list);
}

cl_int clGetProgramInfo(cl_program p, cl_program_info what, size_t size, void *value,
                        size_t *size_ret)
{
    REAL(clGetProgramInfo);
    FAIL_CALL(clGetProgramInfo, 0);
    return real_fn(p, what, size, value, size_ret);
}

/* The fake times: any fixed values do, as long as every event has the same. */
#define FAKE_START_NS 1000000ull
#define FAKE_LENGTH_NS 100000ull

cl_int clGetEventProfilingInfo(cl_event e, cl_profiling_info what, size_t size, void *value,
                               size_t *size_ret)
{
    REAL(clGetEventProfilingInfo);
    FAIL_CALL(clGetEventProfilingInfo, 0);
    cl_int r = real_fn(e, what, size, value, size_ret);
    pthread_mutex_lock(&lock);
    const int fake = fake_profiling;
    pthread_mutex_unlock(&lock);
    if (r == CL_SUCCESS && fake && value && size >= sizeof(cl_ulong)) {
        cl_ulong t = FAKE_START_NS + (what == CL_PROFILING_COMMAND_END ||
                                      what == CL_PROFILING_COMMAND_COMPLETE ? FAKE_LENGTH_NS : 0);
        memcpy(value, &t, sizeof t);
    }
    return r;
}

/* ---- libclattn's clock ---------------------------------------------------- */

/* The address range of libclattn's segments (empty when it is linked into the
 * executable: then nobody's clock moves). */
static uintptr_t lib_lo, lib_hi;

static int find_lib(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libclattn"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
        if (!lib_lo || a < lib_lo)
            lib_lo = a;
        if (b > lib_hi)
            lib_hi = b;
    }
    return 1;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void lib_range(void) { dl_iterate_phdr(find_lib, NULL); }

int clock_gettime(clockid_t id, struct timespec *ts)
{
    REAL(clock_gettime);
    int r = real_fn(id, ts);
    if (r != 0 || id != CLOCK_MONOTONIC)
        return r;
    const long long off = __atomic_load_n(&clock_offset_ns, __ATOMIC_RELAXED);
    if (off == 0)
        return r;
    pthread_once(&lib_once, lib_range);
    const uintptr_t from = (uintptr_t)RET_ADDR;
    if (from >= lib_lo && from < lib_hi) {
        const long long ns = (long long)ts->tv_nsec + off % 1000000000LL;
        ts->tv_sec += (time_t)(off / 1000000000LL + ns / 1000000000LL);
        ts->tv_nsec = (long)(ns % 1000000000LL);
    }
    return r;
}
