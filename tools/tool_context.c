/* The helpers attn-tune's subcommands share: device choice, option
 * parsing, contexts with the tool's logger, device and enum names. */
#include "tool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tool_parse_device(const char *text, tool_device *out)
{
    long v[2];
    const char *s = text;
    for (int i = 0; i < 2; i++) {
        char *end;
        if (*s < '0' || *s > '9') goto bad;
        errno = 0;
        v[i] = strtol(s, &end, 10);
        if (errno != 0 || v[i] > 9999) goto bad;
        s = end;
        if (i == 0) {
            if (*s != ':') goto bad;
            s++;
        }
    }
    if (*s != '\0') goto bad;
    out->platform = (int)v[0];
    out->device = (int)v[1];
    return 1;
bad:
    fprintf(stderr,
            "attn-tune: --device expects P:D, two indices as 'attn-tune devices' lists "
            "them (e.g. 0:0), not '%s'\n",
            text);
    return 0;
}

int tool_option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "attn-tune: %s needs a value\n", name);
        return -1;
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}

/* The last error the library logged; clattn_context_create has no context to
 * ask when it fails, so its reason arrives only here. */
static char g_last_log[1024];

int tool_log_warnings;

void tool_log(int level, const char *message, void *user_data)
{
    (void)user_data;
    if (level <= CLATTN_LOG_ERROR) {
        snprintf(g_last_log, sizeof g_last_log, "%s", message);
    } else if (level == CLATTN_LOG_WARNING) {
        tool_log_warnings++;
        fprintf(stderr, "attn-tune: clattn warning: %s\n", message);
    }
}

/* Says which index of a --device choice does not exist, or returns 1. */
static int device_exists(const tool_device *dev)
{
    cl_uint np = 0, nd = 0;
    cl_platform_id platforms[64];
    if (clGetPlatformIDs(64, platforms, &np) != CL_SUCCESS) np = 0;
    if (np > 64) np = 64;
    if ((cl_uint)dev->platform >= np) {
        fprintf(stderr,
                "attn-tune: no OpenCL platform %d (%u found); 'attn-tune devices' lists them\n",
                dev->platform, np);
        return 0;
    }
    if (clGetDeviceIDs(platforms[dev->platform], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) !=
        CL_SUCCESS)
        nd = 0;
    if ((cl_uint)dev->device >= nd) {
        fprintf(stderr,
                "attn-tune: no device %d:%d (platform %d has %u); 'attn-tune devices' lists "
                "them\n",
                dev->platform, dev->device, dev->platform, nd);
        return 0;
    }
    return 1;
}

int tool_open_context(const tool_device *dev, clattn_context **out)
{
    clattn_options opts;
    clattn_status st = clattn_options_init(&opts);
    *out = NULL;
    if (st != CLATTN_OK) {
        fprintf(stderr, "attn-tune: clattn_options_init: %s\n", clattn_status_string(st));
        return TOOL_EXIT_FAILURE;
    }
    return tool_open_context_with(dev, &opts, out);
}

void tool_context_device_parts(clattn_context *ctx, tool_device_names *out)
{
    cl_device_id device = NULL;
    cl_platform_id platform = NULL;
    int p, d;
    snprintf(out->where, sizeof out->where, "?");
    snprintf(out->name, sizeof out->name, "?");
    snprintf(out->platform, sizeof out->platform, "?");
    if (clattn_context_get_cl(ctx, NULL, NULL, &device) == CLATTN_OK && device) {
        tool_device_string(device, CL_DEVICE_NAME, out->name, sizeof out->name);
        if (clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL) ==
            CL_SUCCESS)
            tool_platform_string(platform, CL_PLATFORM_NAME, out->platform,
                                 sizeof out->platform);
        if (tool_device_index(device, &p, &d))
            snprintf(out->where, sizeof out->where, "%d:%d", p, d);
    }
}

void tool_context_device(clattn_context *ctx, char *buf, size_t size)
{
    tool_device_names n;
    tool_context_device_parts(ctx, &n);
    snprintf(buf, size, "%s: %s (%s)", n.where, n.name, n.platform);
}

int tool_open_context_with(const tool_device *dev, clattn_options *opts_in,
                           clattn_context **out)
{
    clattn_options opts = *opts_in;
    clattn_status st;
    const char *env = getenv("CLATTN_DEVICE");
    *out = NULL;
    if (dev->platform >= 0 && !device_exists(dev)) return TOOL_EXIT_USAGE;
    opts.platform = dev->platform;
    opts.device = dev->device;
    opts.log = tool_log;
    g_last_log[0] = '\0';
    st = clattn_context_create(&opts, out);
    if (st != CLATTN_OK) {
        fprintf(stderr, "attn-tune: cannot create a clattn context: %s%s%s\n",
                clattn_status_string(st), g_last_log[0] ? ": " : "", g_last_log);
        if (st == CLATTN_ERR_NO_DEVICE && dev->platform < 0 && env && env[0])
            fprintf(stderr, "attn-tune: the environment sets CLATTN_DEVICE=%s; 'attn-tune "
                            "devices' lists the devices there are\n", env);
        else if (st == CLATTN_ERR_NO_DEVICE)
            fprintf(stderr, "attn-tune: is an OpenCL driver installed? (Debian/Ubuntu: "
                            "apt-get install pocl-opencl-icd for the CPU)\n");
        *out = NULL;
        return TOOL_EXIT_FAILURE;
    }
    return TOOL_EXIT_OK;
}

void tool_print_error(clattn_context *ctx, clattn_status status, const char *what)
{
    const char *detail = ctx ? clattn_last_error(ctx) : "";
    fprintf(stderr, "attn-tune: %s: %s%s%s\n", what, clattn_status_string(status),
            detail[0] ? ": " : "", detail);
}

int tool_device_index(cl_device_id device, int *platform, int *index)
{
    cl_platform_id platforms[64];
    cl_uint np = 0;
    if (clGetPlatformIDs(64, platforms, &np) != CL_SUCCESS) return 0;
    if (np > 64) np = 64;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devices[256];
        cl_uint nd = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 256, devices, &nd) != CL_SUCCESS)
            continue;
        if (nd > 256) nd = 256;
        for (cl_uint d = 0; d < nd; d++) {
            if (devices[d] == device) {
                *platform = (int)p;
                *index = (int)d;
                return 1;
            }
        }
    }
    return 0;
}

void tool_device_string(cl_device_id device, cl_device_info what, char *buf, size_t size)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(device, what, size, buf, NULL) != CL_SUCCESS) snprintf(buf, size, "?");
    buf[size - 1] = '\0';
}

void tool_platform_string(cl_platform_id platform, cl_platform_info what, char *buf,
                          size_t size)
{
    buf[0] = '\0';
    if (clGetPlatformInfo(platform, what, size, buf, NULL) != CL_SUCCESS)
        snprintf(buf, size, "?");
    buf[size - 1] = '\0';
}

const char *tool_dtype_name(clattn_dtype dtype)
{
    switch (dtype) {
    case CLATTN_F32: return "F32";
    case CLATTN_F16: return "F16";
    case CLATTN_BF16: return "BF16";
    }
    return "?";
}

const char *tool_path_name(clattn_path path)
{
    switch (path) {
    case CLATTN_PATH_AUTO: return "AUTO";
    case CLATTN_PATH_FUSED: return "FUSED";
    case CLATTN_PATH_THREE_STAGE: return "THREE_STAGE";
    case CLATTN_PATH_SPLIT_KV: return "SPLIT_KV";
    }
    return "?";
}
