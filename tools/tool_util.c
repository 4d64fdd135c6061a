/* Small helpers shared by the attn-tune subcommands: clock, JSON, the cache
 * root, removing a directory tree, number parsing, PoCL's thread pinning. */
#define _GNU_SOURCE /* nftw, clock_gettime, sched_getaffinity */
#include "tool.h"

#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tool_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\u%04x", ch); /* keeps the output ASCII and valid */
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void tool_json_number(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.6g", x);
    else
        fputs("null", f);
}

int tool_cache_root(char *buf, size_t size)
{
    const char *env = getenv("CLATTN_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (env && *env) {
        if (strcmp(env, "off") == 0) return 0;
        n = snprintf(buf, size, "%s", env);
    } else if (xdg && xdg[0] == '/') {
        n = snprintf(buf, size, "%s/clattn", xdg);
    } else if (home && *home) {
        n = snprintf(buf, size, "%s/.cache/clattn", home);
    } else {
        return -1;
    }
    return n > 0 && (size_t)n < size ? 1 : -1;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP) return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int tool_remove_tree(const char *path)
{
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tool_parse_seconds(const char *text, int allow_zero, double *out)
{
    char *end;
    double v;
    if (!text || !*text || (*text < '0' || *text > '9')) return 0;
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v > 1e7) return 0;
    if (v == 0 && !allow_zero) return 0;
    *out = v;
    return 1;
}

int tool_parse_int(const char *text, long lo, long hi, long *out)
{
    char *end;
    long v;
    if (!text || *text < '0' || *text > '9') return 0;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

const char *tool_pin_pocl_threads(void)
{
    const char *set = getenv("POCL_AFFINITY");
    if (set && set[0])
        return set[0] == '1' ? "PoCL threads pinned (POCL_AFFINITY=1, as set by the caller)"
                             : "PoCL threads not pinned (POCL_AFFINITY as set by the caller)";
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t mask;
    int usable = n > 0 && n <= CPU_SETSIZE && sched_getaffinity(0, sizeof mask, &mask) == 0;
    for (long c = 0; usable && c < n; c++)
        usable = CPU_ISSET((int)c, &mask);
    if (!usable)
        return "PoCL threads not pinned (this process may not run on every CPU)";
    if (setenv("POCL_AFFINITY", "1", 1) != 0)
        return "PoCL threads not pinned (setenv failed)";
    return "PoCL threads pinned (POCL_AFFINITY=1 set by this tool; POCL_AFFINITY=0 to not pin)";
}
