/* attn-tune devices: every OpenCL platform and device, and which one clattn
 * picks when asked for none. */
#include "attn_tune.h"
#include "device.h" /* clattn__plan_registers: pure, compiled in (CMakeLists.txt) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_devices_usage[] =
    "usage: attn-tune devices\n"
    "\n"
    "Lists every OpenCL platform and device as P:D (the indices --device takes)\n"
    "with the facts that matter for attention kernels. The device marked '*' is\n"
    "the one clattn uses when no device is named (CLATTN_DEVICE=P:D, else the\n"
    "first GPU, else the first device).\n"
    "\n"
    "Exit status: 0 when at least one device was found, 1 otherwise.\n";

static const char *device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "ACCEL";
    return "OTHER";
}

/* Bytes as "512 KiB", "15.6 GiB". */
static void format_bytes(cl_ulong bytes, char *buf, size_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0 || v == (double)(cl_ulong)v)
        snprintf(buf, size, "%.0f %s", v, units[u]);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* The device a default context lands on, or NULL (with the reason printed)
 * when clattn cannot create one. */
static cl_device_id default_device(void)
{
    tool_device dev = TOOL_DEVICE_DEFAULT;
    clattn_context *ctx = NULL;
    cl_device_id device = NULL;
    clattn_status st;
    if (tool_open_context(&dev, &ctx) != TOOL_EXIT_OK) return NULL;
    st = clattn_context_get_cl(ctx, NULL, NULL, &device);
    if (st != CLATTN_OK) {
        tool_print_error(ctx, st, "clattn_context_get_cl");
        device = NULL;
    }
    clattn_context_destroy(ctx);
    return device;
}

static void print_device(int p, int d, cl_device_id dev, int is_default)
{
    char name[256], vendor[256], driver[128], clc[128], mem[32], alloc[32], local[32];
    cl_device_type type = 0;
    cl_uint units = 0;
    cl_ulong global_mem = 0, max_alloc = 0, local_mem = 0;
    size_t max_wg = 0;
    tool_device_string(dev, CL_DEVICE_NAME, name, sizeof name);
    tool_device_string(dev, CL_DEVICE_VENDOR, vendor, sizeof vendor);
    tool_device_string(dev, CL_DRIVER_VERSION, driver, sizeof driver);
    tool_device_string(dev, CL_DEVICE_OPENCL_C_VERSION, clc, sizeof clc);
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global_mem, &global_mem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    format_bytes(global_mem, mem, sizeof mem);
    format_bytes(max_alloc, alloc, sizeof alloc);
    format_bytes(local_mem, local, sizeof local);

    printf("%s %d:%d  %s  [%s]%s\n", is_default ? "*" : " ", p, d, name,
           device_type_name(type), is_default ? "  (clattn default)" : "");
    printf("        vendor %s, driver %s, %s\n", vendor, driver, clc);
    printf("        %u compute units, local memory %s, max work-group %zu\n", units, local,
           max_wg);
    printf("        global memory %s, max allocation %s\n", mem, alloc);
    if (type & CL_DEVICE_TYPE_CPU) {
        /* what clattn sizes its CPU kernels for (src/device_isa.c) */
        cl_uint native = 0;
        if (clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof native, &native,
                            NULL) != CL_SUCCESS)
            native = 0;
        unsigned floats = 0;
        int regs = 0;
        const char *cpu = NULL;
        if (clattn__plan_registers(1, name, native, &floats, &regs, &cpu))
            printf("        kernels planned for %d vector registers of %u floats (%s, from the "
                   "name)\n",
                   regs, floats, cpu);
        else
            printf("        kernels planned for %d vector registers of %u floats (native width "
                   "%u; the name gives no CPU)\n",
                   regs, floats, (unsigned)native);
    }
}

int cmd_devices(int argc, char **argv)
{
    cl_platform_id platforms[64];
    cl_uint np = 0;
    cl_int err;
    cl_device_id def;
    int total = 0, default_listed = 0;
    const char *env;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(k_devices_usage, stdout);
            return TOOL_EXIT_OK;
        }
        fprintf(stderr, "attn-tune devices: unexpected argument '%s'\n\n%s", argv[i],
                k_devices_usage);
        return TOOL_EXIT_USAGE;
    }

    err = clGetPlatformIDs(64, platforms, &np);
    if (err != CL_SUCCESS || np == 0) {
        printf("No OpenCL platform found (clGetPlatformIDs returned %d).\n", (int)err);
        printf("Install an OpenCL driver; on Debian/Ubuntu 'apt-get install "
               "pocl-opencl-icd' gives a CPU device.\n");
        return TOOL_EXIT_FAILURE;
    }
    if (np > 64) np = 64;
    def = default_device();

    for (cl_uint p = 0; p < np; p++) {
        char pname[256], pversion[256], pvendor[256];
        cl_device_id devices[256];
        cl_uint nd = 0;
        tool_platform_string(platforms[p], CL_PLATFORM_NAME, pname, sizeof pname);
        tool_platform_string(platforms[p], CL_PLATFORM_VERSION, pversion, sizeof pversion);
        tool_platform_string(platforms[p], CL_PLATFORM_VENDOR, pvendor, sizeof pvendor);
        printf("Platform %u: %s (%s), %s\n", p, pname, pversion, pvendor);
        err = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 256, devices, &nd);
        if (err != CL_SUCCESS || nd == 0) {
            printf("  no devices (clGetDeviceIDs returned %d)\n", (int)err);
            continue;
        }
        if (nd > 256) nd = 256;
        for (cl_uint d = 0; d < nd; d++) {
            int is_default = def != NULL && devices[d] == def;
            print_device((int)p, (int)d, devices[d], is_default);
            default_listed |= is_default;
            total++;
        }
    }

    env = getenv("CLATTN_DEVICE");
    if (default_listed)
        printf("\n* = the device clattn uses by default%s%s%s\n",
               env && env[0] ? " (CLATTN_DEVICE=" : "", env && env[0] ? env : "",
               env && env[0] ? ")" : "");
    else
        printf("\nclattn could not create a context on its default device (the reason is on "
               "stderr).\n");
    return total > 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}
