/* A failing clEnqueueWriteBuffer on demand, for the mid-ring device error
 * test: the executable exports this definition, so libclattn_mpi's (and
 * libclattn's) calls bind to it; it forwards to libOpenCL's otherwise. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>

#include "mpi_test.h"

typedef cl_int(CL_API_CALL *write_fn)(cl_command_queue, cl_mem, cl_bool, size_t, size_t,
                                      const void *, cl_uint, const cl_event *, cl_event *);

static int countdown;

void mt_fail_write_after(int n)
{
    countdown = n;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue queue, cl_mem buffer,
                                                     cl_bool blocking, size_t offset,
                                                     size_t size, const void *ptr,
                                                     cl_uint num_wait, const cl_event *wait,
                                                     cl_event *event)
{
    static write_fn real;
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "clEnqueueWriteBuffer");
        *(void **)&real = sym;
    }
    if (countdown > 0 && --countdown == 0) {
        if (event)
            *event = NULL;
        return CL_OUT_OF_RESOURCES;
    }
    if (!real)
        return CL_INVALID_OPERATION;
    return real(queue, buffer, blocking, offset, size, ptr, num_wait, wait, event);
}
