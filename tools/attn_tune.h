/* Shared pieces of the attn-tune command line. attn-tune uses clattn's public
 * API only (plus OpenCL itself to list devices, and the tests' double
 * reference for verify). */
#ifndef ATTN_TUNE_H
#define ATTN_TUNE_H

#include "clattn.h"

/* Exit codes of every subcommand. */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAILURE 1
#define TOOL_EXIT_USAGE 2

/* A --device choice; -1 leaves the choice to clattn (CLATTN_DEVICE, then the
 * first GPU, then the first device). */
typedef struct tool_device {
    int platform, device;
} tool_device;

#define TOOL_DEVICE_DEFAULT {-1, -1}

/* Parses "P:D"; on error prints why and returns 0. */
int tool_parse_device(const char *text, tool_device *out);

/* Matches "--name value" and "--name=value" at argv[*i]; on a match stores
 * the value, advances *i past it and returns 1. A missing value prints a
 * usage error and returns -1. Otherwise returns 0. */
int tool_option_value(int argc, char **argv, int *i, const char *name, const char **value);

/* Creates a context on the chosen device with the tool's logger. Prints the
 * reason and returns a TOOL_EXIT_* code on failure (TOOL_EXIT_USAGE when
 * the device does not exist). */
int tool_open_context(const tool_device *dev, clattn_context **out);

/* Prints "attn-tune: WHAT: <status string>: <last error>" to stderr. */
void tool_print_error(clattn_context *ctx, clattn_status status, const char *what);

/* Finds the P:D indices of an OpenCL device; returns 0 if it is not listed. */
int tool_device_index(cl_device_id device, int *platform, int *index);

/* A device info string into buf (at most size bytes, NUL-terminated). */
void tool_device_string(cl_device_id device, cl_device_info what, char *buf, size_t size);
void tool_platform_string(cl_platform_id platform, cl_platform_info what, char *buf,
                          size_t size);

const char *tool_dtype_name(clattn_dtype dtype);
const char *tool_path_name(clattn_path path);

int cmd_devices(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif /* ATTN_TUNE_H */
