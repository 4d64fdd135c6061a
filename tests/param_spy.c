/* The builds clattn_tests' cases caused, and the check of CLATTN_PARAMS
 * against them; see param_spy.h. */
#define _GNU_SOURCE /* RTLD_NEXT, dladdr */
#include "param_spy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct build {
    cl_program program;
    char *options;
    char kernel[48]; /* the first kernel created from it */
    int from_clblast;
} build;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static build *builds;
static size_t nbuilds, cap;

static int called_from_clblast(const void *ret)
{
    Dl_info info;
    return dladdr(ret, &info) && info.dli_fname && strstr(info.dli_fname, "clblast");
}

/* The next definition after this executable: the OpenCL library's. */
#define REAL(name)                                                                        \
    static __typeof__(&name) real_fn;                                                     \
    if (!real_fn) {                                                                       \
        void *sym_ = dlsym(RTLD_NEXT, #name);                                             \
        if (!sym_) {                                                                      \
            fprintf(stderr, "param_spy: dlsym(RTLD_NEXT, %s) failed\n", #name);           \
            abort(); /* a test tool, not the library */                                   \
        }                                                                                 \
        memcpy(&real_fn, &sym_, sizeof real_fn);                                          \
    }

cl_int clBuildProgram(cl_program p, cl_uint n, const cl_device_id *devs, const char *options,
                      void(CL_CALLBACK *notify)(cl_program, void *), void *user)
{
    REAL(clBuildProgram);
    const int clblast = called_from_clblast(__builtin_return_address(0));
    pthread_mutex_lock(&lock);
    if (nbuilds == cap) {
        size_t ncap = cap ? 2 * cap : 64;
        build *nb = realloc(builds, ncap * sizeof *nb);
        if (nb) {
            builds = nb;
            cap = ncap;
        }
    }
    if (nbuilds < cap) {
        build *b = &builds[nbuilds++];
        memset(b, 0, sizeof *b);
        b->program = p;
        b->options = strdup(options ? options : "");
        b->from_clblast = clblast;
    }
    pthread_mutex_unlock(&lock);
    return real_fn(p, n, devs, options, notify, user);
}

cl_kernel clCreateKernel(cl_program p, const char *name, cl_int *err)
{
    REAL(clCreateKernel);
    pthread_mutex_lock(&lock);
    /* the latest build of that handle: the runtime may reuse a released one */
    for (size_t i = nbuilds; i-- > 0;)
        if (builds[i].program == p) {
            if (!builds[i].kernel[0] && name)
                snprintf(builds[i].kernel, sizeof builds[i].kernel, "%s", name);
            break;
        }
    pthread_mutex_unlock(&lock);
    return real_fn(p, name, err);
}

/* 0: the device's own CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT. Set between
 * contexts, from one thread (t_spy_native_float). */
static cl_uint native_float;

void t_spy_native_float(cl_uint width) { native_float = width; }

/* NULL: the device's own CL_DEVICE_NAME; set like native_float. */
static const char *device_name;

void t_spy_device_name(const char *name) { device_name = name; }

cl_int clGetDeviceInfo(cl_device_id dev, cl_device_info what, size_t size, void *value,
                       size_t *size_ret)
{
    REAL(clGetDeviceInfo);
    if (native_float && what == CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT &&
        (!value || size >= sizeof native_float)) {
        if (value)
            memcpy(value, &native_float, sizeof native_float);
        if (size_ret)
            *size_ret = sizeof native_float;
        return CL_SUCCESS;
    }
    if (device_name && what == CL_DEVICE_NAME) {
        const size_t n = strlen(device_name) + 1;
        if (value && size < n)
            return CL_INVALID_VALUE;
        if (value)
            memcpy(value, device_name, n);
        if (size_ret)
            *size_ret = n;
        return CL_SUCCESS;
    }
    return real_fn(dev, what, size, value, size_ret);
}

int t_spy_builds_of(const char *kernel)
{
    int n = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nbuilds; i++)
        n += strcmp(builds[i].kernel, kernel) == 0;
    pthread_mutex_unlock(&lock);
    return n;
}

void t_spy_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nbuilds; i++)
        free(builds[i].options);
    nbuilds = 0;
    pthread_mutex_unlock(&lock);
}

/* The kernel whose build options carry a tunable, by its name's prefix (the
 * families of src/tunables.c, as the kernels' -D names spell them). */
static const char *kernel_of(const char *name)
{
    static const struct {
        const char *prefix, *kernel;
    } k[] = {{"QK_", "attn_qk"},        {"SM_", "attn_softmax"},
             {"AV_", "attn_av"},        {"BLOCK_", "attn_fwd_fused"},
             {"COMBINE_", "attn_splitkv_combine"}, {"FV_", "attn_fwd_fused_vec"},
             {"FL_", "attn_fwd_fused_lanes"}, {"MERGE_", "attn_merge"}};
    if (strcmp(name, "QK_BLAS") == 0 || strcmp(name, "AV_BLAS") == 0)
        return NULL;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strncmp(name, k[i].prefix, strlen(k[i].prefix)) == 0)
            return k[i].kernel;
    return NULL;
}

/* Whether options hold the token -DNAME=value. */
static int has_define(const char *options, const char *name, long value)
{
    char want[96];
    snprintf(want, sizeof want, "-D%s=%ld", name, value);
    const size_t n = strlen(want);
    for (const char *p = strstr(options, want); p; p = strstr(p + 1, want))
        if ((p == options || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

int t_spy_check_params(const char *params, const char *label)
{
    const int before = t_failures;
    char buf[512], unchecked[512] = "";
    size_t un = 0;
    int checked = 0;
    snprintf(buf, sizeof buf, "%s", params ? params : "");
    pthread_mutex_lock(&lock);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *name = tok;
        const long value = strtol(eq + 1, NULL, 10);
        const char *kernel = kernel_of(name);
        /* the fused kernels FUSED_VEC picks: 0 row, 1 vector, 2 rows-in-lanes */
        static const char *const fused[3] = {"attn_fwd_fused", "attn_fwd_fused_vec",
                                             "attn_fwd_fused_lanes"};
        size_t of_kernel = 0, with_value = 0, clblast = 0, fused_any = 0, fused_other = 0;
        const char *first = NULL;
        for (size_t i = 0; i < nbuilds; i++) {
            const build *b = &builds[i];
            clblast += b->from_clblast;
            for (int f = 0; f < 3; f++)
                if (strcmp(b->kernel, fused[f]) == 0) {
                    fused_any++;
                    fused_other += f != value;
                }
            if (kernel && strcmp(b->kernel, kernel) == 0) {
                of_kernel++;
                with_value += has_define(b->options, name, value);
                if (!first)
                    first = b->options;
            }
        }
        if (kernel && of_kernel) {
            checked++;
            T_CHECK(with_value > 0, "%s: CLATTN_PARAMS forces %s=%ld, but none of the %zu %s "
                    "builds has -D%s=%ld; the first was built with \"%s\"", label, name, value,
                    of_kernel, kernel, name, value, first);
        } else if (strcmp(name, "FUSED_VEC") == 0 && fused_any > 0) {
            checked++;
            T_CHECK(fused_other == 0, "%s: CLATTN_PARAMS forces FUSED_VEC=%ld (%s), but %zu of "
                    "the %zu fused builds are of another fused kernel", label, value,
                    value >= 0 && value < 3 ? fused[value] : "?", fused_other, fused_any);
        } else if ((strcmp(name, "QK_BLAS") == 0 || strcmp(name, "AV_BLAS") == 0) && value) {
            checked++;
            T_CHECK(clblast > 0, "%s: CLATTN_PARAMS forces %s=1, but CLBlast built nothing",
                    label, name);
        } else if (un < sizeof unchecked) {
            un += (size_t)snprintf(unchecked + un, sizeof unchecked - un, " %s%s", name,
                                   kernel ? " (its kernel was not built)" : "");
        }
    }
    const size_t total = nbuilds;
    pthread_mutex_unlock(&lock);
    t_log("%s: CLATTN_PARAMS=%s: %d forced values found in the %zu builds%s%s", label,
          params ? params : "", checked, total, un ? "; not checked:" : "", unchecked);
    return t_failures - before;
}
