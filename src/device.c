/* Device choice and device facts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "internal.h"

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

static int list_devices(cl_platform_id platform, cl_device_id *devs, cl_uint *n)
{
    *n = 0;
    cl_int err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, n);
    if (err == CL_DEVICE_NOT_FOUND) {
        *n = 0;
        return 0;
    }
    if (*n > MAX_DEVICES)
        *n = MAX_DEVICES;
    return err == CL_SUCCESS ? 0 : -1;
}

static int is_gpu(cl_device_id d)
{
    cl_device_type t = 0;
    return clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL) == CL_SUCCESS &&
           (t & CL_DEVICE_TYPE_GPU);
}

/* "P:D" with both non-negative integers and nothing else. */
static int parse_pd(const char *s, int *p, int *d)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != ':' || a < 0 || a > 1000000)
        return -1;
    const char *s2 = end + 1;
    long b = strtol(s2, &end, 10);
    if (end == s2 || *end != '\0' || b < 0 || b > 1000000)
        return -1;
    *p = (int)a;
    *d = (int)b;
    return 0;
}

clattn_status clattn__choose_device(int platform, int device, cl_platform_id *out_platform,
                                    cl_device_id *out_device, char *msg, size_t msg_size)
{
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
    if (err != CL_SUCCESS || np == 0) {
        snprintf(msg, msg_size, "no OpenCL platform found (clGetPlatformIDs: %s)",
                 clattn__cl_error_name(err));
        return CLATTN_ERR_NO_DEVICE;
    }
    if (np > MAX_PLATFORMS)
        np = MAX_PLATFORMS;

    if (platform < 0 && device < 0) {
        const char *env = getenv("CLATTN_DEVICE");
        if (env && *env) {
            if (parse_pd(env, &platform, &device) != 0) {
                snprintf(msg, msg_size, "CLATTN_DEVICE='%s' is not of the form P:D", env);
                return CLATTN_ERR_INVALID_ARGUMENT;
            }
        }
    }
    if (platform >= (int)np) {
        snprintf(msg, msg_size, "platform index %d out of range (%u platforms)", platform, np);
        return CLATTN_ERR_NO_DEVICE;
    }

    cl_device_id devs[MAX_DEVICES];
    cl_uint nd = 0;
    if (platform >= 0 && device >= 0) {
        if (list_devices(plats[platform], devs, &nd) != 0 || device >= (int)nd) {
            snprintf(msg, msg_size, "device %d:%d not found (platform %d has %u devices)",
                     platform, device, platform, nd);
            return CLATTN_ERR_NO_DEVICE;
        }
        *out_platform = plats[platform];
        *out_device = devs[device];
        return CLATTN_OK;
    }
    if (device >= 0) {
        snprintf(msg, msg_size, "a device index (%d) needs a platform index too", device);
        return CLATTN_ERR_INVALID_ARGUMENT;
    }
    /* First GPU (of the given platform, if any), else its first device. */
    cl_uint p0 = platform >= 0 ? (cl_uint)platform : 0;
    cl_uint p1 = platform >= 0 ? (cl_uint)platform + 1 : np;
    cl_platform_id first_p = NULL;
    cl_device_id first_d = NULL;
    for (cl_uint p = p0; p < p1; ++p) {
        if (list_devices(plats[p], devs, &nd) != 0)
            continue;
        for (cl_uint d = 0; d < nd; ++d) {
            if (!first_d) {
                first_p = plats[p];
                first_d = devs[d];
            }
            if (is_gpu(devs[d])) {
                *out_platform = plats[p];
                *out_device = devs[d];
                return CLATTN_OK;
            }
        }
    }
    if (!first_d) {
        snprintf(msg, msg_size, "no OpenCL device found on %u platform(s)", np);
        return CLATTN_ERR_NO_DEVICE;
    }
    *out_platform = first_p;
    *out_device = first_d;
    return CLATTN_OK;
}

static cl_int get_str(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
    size_t got = 0;
    cl_int err = clGetDeviceInfo(d, what, size - 1, buf, &got);
    if (err == CL_INVALID_VALUE) {
        /* Longer than our buffer: keep the prefix. */
        char *tmp = NULL;
        if (clGetDeviceInfo(d, what, 0, NULL, &got) == CL_SUCCESS && (tmp = malloc(got + 1)) &&
            clGetDeviceInfo(d, what, got, tmp, NULL) == CL_SUCCESS) {
            memcpy(buf, tmp, size - 1);
            got = size - 1;
            err = CL_SUCCESS;
        }
        free(tmp);
    }
    if (err != CL_SUCCESS)
        got = 0;
    buf[got < size ? got : size - 1] = '\0';
    return err;
}

/* Whether the platform is PoCL older than the given major version.
 *
 * PoCL's CPU drivers before 6.0 keep one process-wide list of loaded
 * work-group functions, and a finished launch gives its reference back to
 * the first entry with the same kernel hash and local size, which need not
 * be the entry it took (PoCL 3.1 lib/CL/devices/common.c; fixed upstream in
 * 6.0). Building a program binary (the first CL_PROGRAM_BINARY_SIZES or
 * BINARIES query, which clattn's binary cache makes) adds an entry per
 * kernel with reference count 0 and, when the kernel declares
 * reqd_work_group_size, with that local size: the launches' own. A launch of
 * the same program running meanwhile, in this context or any other of the
 * process, then releases that entry instead of its own and PoCL aborts
 * (assertion `found->ref_count > 0'). Without the attribute the entry's
 * local size is 0-0-0, which no launch has, and the mix-up cannot happen
 * (tests/cache/test_in_flight.c is the probe). */
static int pocl_before(const clattn__device_info *info, int major)
{
    const char *v = strstr(info->platform_version, "PoCL ");
    if (!v)
        return 0;
    char *end;
    long m = strtol(v + 5, &end, 10);
    return end != v + 5 && m < major;
}

clattn_status clattn__device_query(cl_device_id d, clattn__device_info *info, char *msg,
                                   size_t msg_size)
{
    memset(info, 0, sizeof *info);
    cl_platform_id plat = NULL;
    cl_device_type type = 0;
    cl_device_local_mem_type lmt = CL_LOCAL;
    cl_int err = clGetDeviceInfo(d, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof info->compute_units,
                              &info->compute_units, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof info->local_mem_size,
                              &info->local_mem_size, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_TYPE, sizeof lmt, &lmt, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof info->global_mem_size,
                              &info->global_mem_size, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof info->max_alloc,
                              &info->max_alloc, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof info->max_wg_size,
                              &info->max_wg_size, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof info->max_item_sizes,
                              info->max_item_sizes, NULL);
    if (err != CL_SUCCESS) {
        snprintf(msg, msg_size, "clGetDeviceInfo failed: %s", clattn__cl_error_name(err));
        return CLATTN_ERR_OPENCL;
    }
    /* Only the planner's register estimate uses these: a driver that
     * cannot say gets the narrowest x86 answer, never a failure. */
    if (clGetDeviceInfo(d, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof info->native_vec_float,
                        &info->native_vec_float, NULL) != CL_SUCCESS ||
        info->native_vec_float == 0)
        info->native_vec_float = 4;
    info->dev_class = (type & CL_DEVICE_TYPE_GPU)   ? CLATTN__CLASS_GPU
                      : (type & CL_DEVICE_TYPE_CPU) ? CLATTN__CLASS_CPU
                                                    : CLATTN__CLASS_ACCEL;
    info->local_mem_is_global = lmt == CL_GLOBAL;
    get_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    unsigned floats = 0;
    clattn__plan_registers(info->dev_class == CLATTN__CLASS_CPU, info->name,
                           info->native_vec_float, &floats, &info->vector_regs, NULL);
    info->plan_vec_float = floats;
    get_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    get_str(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    get_str(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version,
            sizeof info->opencl_c_version);
    if (plat) {
        size_t got = 0;
        if (clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof info->platform_name - 1,
                              info->platform_name, &got) != CL_SUCCESS)
            got = 0;
        info->platform_name[got < sizeof info->platform_name ? got : 0] = '\0';
        got = 0;
        if (clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof info->platform_version - 1,
                              info->platform_version, &got) != CL_SUCCESS)
            got = 0;
        info->platform_version[got < sizeof info->platform_version ? got : 0] = '\0';
    }
    info->no_reqd_wg = info->dev_class == CLATTN__CLASS_CPU && pocl_before(info, 6);
    return CLATTN_OK;
}

void clattn__device_fingerprint(const clattn__device_info *d, char *buf, size_t size)
{
    snprintf(buf, size,
             "platform=%s|platform_version=%s|vendor=%s|device=%s|driver=%s|opencl_c=%s|"
             "compute_units=%u|local_mem=%llu|max_wg=%zu",
             d->platform_name, d->platform_version, d->vendor, d->name, d->driver_version,
             d->opencl_c_version, (unsigned)d->compute_units,
             (unsigned long long)d->local_mem_size, d->max_wg_size);
}

/* The fingerprint fields that name a device model: all but driver, platform
 * and OpenCL C versions. */
void clattn__fingerprint_model(const char *fp, char *out, size_t size)
{
    static const char *const keep[] = {"vendor=", "device=", "compute_units=", "local_mem=",
                                       "max_wg="};
    size_t used = 0;
    out[0] = '\0';
    const char *p = fp;
    while (*p) {
        size_t len = strcspn(p, "|");
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; ++i)
            if (strncmp(p, keep[i], strlen(keep[i])) == 0 && used + len + 2 < size) {
                memcpy(out + used, p, len);
                used += len;
                out[used++] = '|';
                out[used] = '\0';
            }
        p += len + (p[len] == '|');
    }
}

