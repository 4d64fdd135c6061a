/* What attn-tune's subcommands share (tool_context.c, tool_util.c).
 * attn-tune uses clattn's public API only (plus OpenCL itself to list
 * devices, and the tests' double reference for verify). */
#ifndef ATTN_TOOL_H
#define ATTN_TOOL_H

#include "clattn.h"

#include <stdio.h>

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

/* ---- tool_context.c ------------------------------------------------------ */

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

/* The logger tool_open_context installs: warnings to stderr (and counted in
 * tool_log_warnings), the last error kept for the creation message. */
void tool_log(int level, const char *message, void *user_data);
extern int tool_log_warnings;

/* Like tool_open_context with options of the caller's (platform, device and
 * log are set here). */
int tool_open_context_with(const tool_device *dev, clattn_options *opts, clattn_context **out);

/* "P:D: NAME (PLATFORM)" of the context's device into buf. */
void tool_context_device(clattn_context *ctx, char *buf, size_t size);

/* The same three parts separately ("?" for any that cannot be read). */
typedef struct tool_device_names {
    char where[32], name[256], platform[256];
} tool_device_names;
void tool_context_device_parts(clattn_context *ctx, tool_device_names *out);

/* ---- tool_util.c --------------------------------------------------------- */

/* A monotonic clock in seconds. */
double tool_now(void);

/* JSON string (escaped) and number (null when not finite) on f. */
void tool_json_string(FILE *f, const char *s);
void tool_json_number(FILE *f, double x);

/* The cache root clattn uses with default options, as clattn.h documents it:
 * $CLATTN_CACHE_DIR, else $XDG_CACHE_HOME/clattn, else ~/.cache/clattn.
 * Returns 1 with the path, 0 when disk use is off, -1 when none can be
 * formed. */
int tool_cache_root(char *buf, size_t size);

/* Removes a directory tree (no symlinks followed); 0 on success. */
int tool_remove_tree(const char *path);

/* Parses a positive duration in seconds ("240", "2.5"); 0 when allow_zero. */
int tool_parse_seconds(const char *text, int allow_zero, double *out);

/* Parses a whole number in lo..hi. */
int tool_parse_int(const char *text, long lo, long hi, long *out);

/* For the timing commands, before any OpenCL call: asks PoCL's CPU device
 * to pin its worker thread i to CPU i (POCL_AFFINITY=1), unless the caller
 * set POCL_AFFINITY already or this process may not run on CPUs 0 .. n-1
 * (PoCL would then pin to CPUs it cannot use). Unpinned, about one process
 * in ten on a 2-vCPU host ran every kernel 1.6-1.8x slower (BENCHMARKS.md,
 * 2026-12-04). Other platforms ignore the variable. Returns a line for the
 * report saying what was done. */
const char *tool_pin_pocl_threads(void);

#endif /* ATTN_TOOL_H */
