/*
 * Builds the OpenCL C file given as argv[1] and runs its kernel "probe"
 * once over a buffer of 64 initialised floats: a host for the probes of
 * Oclgrind's own behaviour in this folder.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    static char src[1 << 16];
    FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!f) {
        fprintf(stderr, "usage: %s KERNEL.cl (a kernel probe(global float *))\n", argv[0]);
        return 2;
    }
    const size_t n = fread(src, 1, sizeof src - 1, f);
    fclose(f);
    src[n] = '\0';
    const char *text = src;
    cl_platform_id plat;
    cl_device_id dev;
    cl_int err = clGetPlatformIDs(1, &plat, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "no OpenCL device (%d)\n", (int)err);
        return 1;
    }
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    cl_program prog = clCreateProgramWithSource(ctx, 1, &text, NULL, &err);
    if (err != CL_SUCCESS || clBuildProgram(prog, 1, &dev, "", NULL, NULL) != CL_SUCCESS) {
        fprintf(stderr, "%s did not build\n", argv[1]);
        return 1;
    }
    cl_kernel k = clCreateKernel(prog, "probe", &err);
    float host[64];
    for (int i = 0; i < 64; ++i)
        host[i] = 0.5f * (float)i;
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host,
                                &err);
    const size_t one = 1;
    const int bad = !k || err != CL_SUCCESS || clSetKernelArg(k, 0, sizeof buf, &buf) ||
                    clEnqueueNDRangeKernel(q, k, 1, NULL, &one, NULL, 0, NULL, NULL) ||
                    clFinish(q);
    if (k)
        clReleaseKernel(k);
    clReleaseMemObject(buf);
    clReleaseProgram(prog);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    if (bad) {
        fprintf(stderr, "probe did not run\n");
        return 1;
    }
    printf("probe ran\n");
    return 0;
}
