/*
 * Whether a configuration forced through CLATTN_PARAMS reached the kernels.
 *
 * clattn_tests defines clBuildProgram, clCreateKernel and clGetDeviceInfo
 * itself and forwards them to the OpenCL library (dlsym(RTLD_NEXT)); the
 * dynamic linker binds libclattn's and CLBlast's calls to these definitions
 * first, as in tests/faults/. Every build's options and kernel names are kept, so a test
 * can tell a forced tile size that was compiled in from one the library
 * dropped, renamed or replaced by its default: a run with a dropped tunable
 * still passes every numerical check, it just tests the default again.
 */
#ifndef CLATTN_TESTS_PARAM_SPY_H
#define CLATTN_TESTS_PARAM_SPY_H

#include <CL/cl.h>

/* Forgets the builds seen so far. */
void t_spy_reset(void);

/* Builds since t_spy_reset whose first kernel is `kernel`. */
int t_spy_builds_of(const char *kernel);

/* Makes clGetDeviceInfo report `width` as the native float vector width
 * (0: the device's own) to contexts created from now on, so that the plan's
 * choices for other CPU classes (AVX2: 8) can be checked on this one. */
void t_spy_native_float(cl_uint width);
/* Makes CL_DEVICE_NAME answer `name` for contexts created while it is set
 * (NULL: the device's own name). */
void t_spy_device_name(const char *name);

/* Checks params ("NAME=value,...", CLATTN_PARAMS' form) against the builds
 * since t_spy_reset, failing the case (t_failures) for each forced value no
 * build carries:
 *  - a kernel's tunable (QK_*, SM_*, AV_*, BLOCK_M/N, COMBINE_WG, FV_*, FL_*): at
 *    least one build of that kernel has -DNAME=value (the library fits a
 *    value to each problem, e.g. rows to seq_q, so not every build needs
 *    to); not checked when that kernel was never built;
 *  - FUSED_VEC: no build of another fused kernel than the one it picks;
 *  - QK_BLAS=1 or AV_BLAS=1: CLBlast built a program;
 * others (NSPLIT, CLBLAST_SET) are listed as not checked. Returns the number
 * of failed checks. */
int t_spy_check_params(const char *params, const char *label);

#endif /* CLATTN_TESTS_PARAM_SPY_H */
