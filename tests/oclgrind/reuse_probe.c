/*
 * Shows how Oclgrind's --uninitialized treats a buffer created after another
 * was released: reuse_check.sh runs it under Oclgrind four times, each
 * mode with FIRST_BYTES 0 and with one other size.
 *
 *   reuse_probe fill FIRST_BYTES   a FIRST_BYTES buffer, initialised from the
 *       host, is created and released; then a 1 KiB buffer is created, a
 *       kernel writes all of it and a second kernel reads all of it. Every
 *       read is of a written element.
 *   reuse_probe nofill FIRST_BYTES the same without the writing kernel: every
 *       read is of an element nothing wrote.
 *   FIRST_BYTES 0 creates no first buffer (the control).
 *
 * Oclgrind 21.10 carries the released buffer's shadow over to the new one
 * (which takes the released buffer's number): with "fill 4" it reports the
 * reads past the first 4 bytes as uninitialised although they were written,
 * and with "nofill 1024" it reports nothing although nothing was written.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_source =
    "kernel void fill(global float *s) { s[get_global_id(0)] = (float)get_global_id(0); }\n"
    "kernel void use(global const float *s, global float *o)\n"
    "{\n"
    "    const size_t i = get_global_id(0);\n"
    "    o[i] = s[i] > 10.0f ? s[i] : -s[i];\n"
    "}\n";

enum { N = 256 };

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "fill") && strcmp(argv[1], "nofill"))) {
        fprintf(stderr, "usage: %s fill|nofill FIRST_BYTES\n", argv[0]);
        return 2;
    }
    const int fill = strcmp(argv[1], "fill") == 0;
    const size_t first_bytes = (size_t)strtoul(argv[2], NULL, 10);
    static float host[N]; /* the first buffer's contents, all initialised */
    if (first_bytes > sizeof host) {
        fprintf(stderr, "FIRST_BYTES is at most %zu\n", sizeof host);
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
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue q = err == CL_SUCCESS ? clCreateCommandQueue(ctx, dev, 0, &err) : NULL;
    cl_program prog = err == CL_SUCCESS
                          ? clCreateProgramWithSource(ctx, 1, &k_source, NULL, &err)
                          : NULL;
    if (err == CL_SUCCESS)
        err = clBuildProgram(prog, 1, &dev, "", NULL, NULL);
    cl_kernel kfill = err == CL_SUCCESS ? clCreateKernel(prog, "fill", &err) : NULL;
    cl_kernel kuse = err == CL_SUCCESS ? clCreateKernel(prog, "use", &err) : NULL;
    if (err != CL_SUCCESS) {
        fprintf(stderr, "set-up failed (%d)\n", (int)err);
        return 1;
    }
    if (first_bytes) {
        cl_mem first = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                      first_bytes, host, &err);
        if (err != CL_SUCCESS) {
            fprintf(stderr, "first buffer: %d\n", (int)err);
            return 1;
        }
        clReleaseMemObject(first);
    }
    cl_mem s = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, &err);
    cl_mem o = err == CL_SUCCESS
                   ? clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, &err)
                   : NULL;
    const size_t global = N;
    float out[N];
    int bad = err != CL_SUCCESS || clSetKernelArg(kfill, 0, sizeof s, &s) ||
              clSetKernelArg(kuse, 0, sizeof s, &s) || clSetKernelArg(kuse, 1, sizeof o, &o);
    if (!bad && fill)
        bad = clEnqueueNDRangeKernel(q, kfill, 1, NULL, &global, NULL, 0, NULL, NULL) !=
              CL_SUCCESS;
    if (!bad)
        bad = clEnqueueNDRangeKernel(q, kuse, 1, NULL, &global, NULL, 0, NULL, NULL) ||
              clEnqueueReadBuffer(q, o, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL);
    /* With the writing kernel, element 11 is 11 and element 3 is -3. */
    if (!bad && fill && (out[11] != 11.0f || out[3] != -3.0f)) {
        fprintf(stderr, "wrong results: %g %g\n", (double)out[11], (double)out[3]);
        bad = 1;
    }
    if (s)
        clReleaseMemObject(s);
    if (o)
        clReleaseMemObject(o);
    clReleaseKernel(kfill);
    clReleaseKernel(kuse);
    clReleaseProgram(prog);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    if (bad) {
        fprintf(stderr, "the probe did not run\n");
        return 1;
    }
    printf("%s after a released %zu-byte buffer: ran\n", argv[1], first_bytes);
    return 0;
}
