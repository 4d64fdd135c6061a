/*
 * A self-check of tests/oclgrind/run.sh: a kernel in a first OpenCL context
 * reads past its buffer, then a second context runs a clean kernel. Oclgrind
 * must report the first context's read although the second came later
 * (selftest.sh expects run.sh to fail with "Invalid read"). Natively this
 * program only reads a few floats past a buffer's end on the device.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>

static const char *k_src =
    "kernel void shift(global float *x, int n) {\n"
    "    const int i = get_global_id(0);\n"
    "    x[i] = x[i + n];\n"
    "}\n";

/* Runs shift over a buffer of 16 floats, reading from n floats on. */
static int run_in_new_context(cl_device_id dev, int n)
{
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return fprintf(stderr, "clCreateContext -> %d\n", (int)err), 1;
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    cl_program prog = clCreateProgramWithSource(ctx, 1, &k_src, NULL, &err);
    int bad = err != CL_SUCCESS || clBuildProgram(prog, 1, &dev, "", NULL, NULL) != CL_SUCCESS;
    cl_kernel k = bad ? NULL : clCreateKernel(prog, "shift", &err);
    float host[16] = {0};
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host,
                                host, &err);
    const size_t global = 8;
    bad = bad || !k || err != CL_SUCCESS || clSetKernelArg(k, 0, sizeof buf, &buf) ||
          clSetKernelArg(k, 1, sizeof n, &n) ||
          clEnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, NULL) || clFinish(q);
    if (k)
        clReleaseKernel(k);
    clReleaseMemObject(buf);
    clReleaseProgram(prog);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    if (bad)
        fprintf(stderr, "the kernel did not run\n");
    return bad;
}

int main(void)
{
    cl_platform_id plat;
    cl_device_id dev;
    if (clGetPlatformIDs(1, &plat, NULL) != CL_SUCCESS ||
        clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL) != CL_SUCCESS) {
        fprintf(stderr, "no OpenCL device\n");
        return 1;
    }
    /* 8 work-items read x[i + 12]: four of them past the 16 floats */
    if (run_in_new_context(dev, 12) || run_in_new_context(dev, 0))
        return 1;
    printf("two contexts ran\n");
    return 0;
}
