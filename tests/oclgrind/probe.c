/*
 * Runs the kernel "probe" of each OpenCL C file given, each in an OpenCL
 * context of its own (created, used and released before the next), once over
 * a buffer of 64 initialised floats: the host for the probes of Oclgrind's
 * own behaviour in this folder (hi_half_check.sh, selftest.sh).
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>

/* Builds and runs path's probe in a new context; 0 when it ran. */
static int run_file(cl_device_id dev, const char *path)
{
    static char src[1 << 16];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    const size_t n = fread(src, 1, sizeof src - 1, f);
    fclose(f);
    src[n] = '\0';
    const char *text = src;
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clCreateContext -> %d\n", (int)err);
        return 1;
    }
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    cl_program prog = clCreateProgramWithSource(ctx, 1, &text, NULL, &err);
    const int built =
        err == CL_SUCCESS && clBuildProgram(prog, 1, &dev, "", NULL, NULL) == CL_SUCCESS;
    cl_kernel k = built ? clCreateKernel(prog, "probe", &err) : NULL;
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
    if (bad)
        fprintf(stderr, "%s: probe did not %s\n", path, built ? "run" : "build");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s KERNEL.cl... (each a kernel probe(global float *))\n",
                argv[0]);
        return 2;
    }
    cl_platform_id plat;
    cl_device_id dev;
    cl_int err = clGetPlatformIDs(1, &plat, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "no OpenCL device (%d)\n", (int)err);
        return 1;
    }
    for (int i = 1; i < argc; ++i)
        if (run_file(dev, argv[i]) != 0)
            return 1;
    printf("%d probe(s) ran\n", argc - 1);
    return 0;
}
