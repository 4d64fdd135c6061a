/* What a CPU device's name says about the code its compiler generates.
 *
 * PoCL names its CPU devices after the LLVM target CPU it compiles for
 * ("pthread-haswell-AMD EPYC", "pthread-skylake-avx512", "cpu-znver4"), and
 * that target, not CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, decides how wide and
 * how many the vector registers of the kernels are: PoCL built for haswell
 * on an AVX-512 host (POCL_KERNELLIB_NAME=avx2) still reports a native width
 * of 16, and a plan sized for 16-float registers spills on AVX2's sixteen
 * 8-float ones (BENCHMARKS.md, "AVX2 (haswell) by reading the generated
 * code"). Runtimes that name devices after the marketing model (Intel's CPU
 * runtime) say nothing here and keep the report. */
#include <string.h>

#include "device.h"

typedef struct {
    const char *cpu;  /* LLVM's name, matched as a word of the device name */
    unsigned floats;  /* floats a vector register of that code holds */
    int regs;         /* vector registers */
} isa_row;

/* x86-64: AVX-512 has 32 zmm registers; AVX and AVX2 16 ymm; SSE
 * 16 xmm. AArch64 NEON: 32 q registers of 4 floats. */
static const isa_row rows[] = {
    {"skylake-avx512", 16, 32}, {"cascadelake", 16, 32}, {"cooperlake", 16, 32},
    {"cannonlake", 16, 32}, {"icelake-client", 16, 32}, {"icelake-server", 16, 32},
    {"tigerlake", 16, 32}, {"rocketlake", 16, 32}, {"sapphirerapids", 16, 32},
    {"emeraldrapids", 16, 32}, {"graniterapids", 16, 32}, {"znver4", 16, 32}, {"znver5", 16, 32},
    {"x86-64-v4", 16, 32}, {"knl", 16, 32}, {"knm", 16, 32}, {"haswell", 8, 16},
    {"broadwell", 8, 16}, {"skylake", 8, 16}, {"alderlake", 8, 16}, {"raptorlake", 8, 16},
    {"meteorlake", 8, 16}, {"arrowlake", 8, 16}, {"lunarlake", 8, 16}, {"gracemont", 8, 16},
    {"znver1", 8, 16}, {"znver2", 8, 16}, {"znver3", 8, 16}, {"x86-64-v3", 8, 16},
    {"bdver4", 8, 16}, {"sandybridge", 8, 16}, {"ivybridge", 8, 16}, {"bdver1", 8, 16},
    {"bdver2", 8, 16}, {"bdver3", 8, 16}, {"btver2", 8, 16}, {"x86-64-v2", 4, 16},
    {"x86-64", 4, 16}, {"nehalem", 4, 16}, {"westmere", 4, 16}, {"silvermont", 4, 16},
    {"goldmont", 4, 16}, {"tremont", 4, 16}, {"core2", 4, 16}, {"neoverse-", 4, 32},
    {"apple-", 4, 32}, {"cortex-a53", 4, 32}, {"cortex-a55", 4, 32}, {"cortex-a57", 4, 32},
    {"cortex-a72", 4, 32}, {"cortex-a73", 4, 32}, {"cortex-a75", 4, 32}, {"cortex-a76", 4, 32},
    {"cortex-a77", 4, 32}, {"cortex-a78", 4, 32}, {"cortex-x1", 4, 32},
    {"cortex-x2", 4, 32}, {"cortex-x3", 4, 32}, {"cortex-x4", 4, 32},
};

/* Whether `at` starts a word of `name`: the start, or after '-' or ' ' (so
 * "knl" does not match inside another word). */
static int word_start(const char *name, const char *at)
{
    return at == name || at[-1] == '-' || at[-1] == ' ';
}

/* The row whose CPU name starts a word earliest in the device name (PoCL
 * puts the LLVM CPU before the model's name), the longer name where two
 * start at the same place ("skylake-avx512", not "skylake"). The name must
 * end the word too, except for family prefixes, which end in '-' ("apple-",
 * "neoverse-"). */
int clattn__device_isa(const char *name, unsigned *floats, int *regs, const char **cpu)
{
    const isa_row *best = NULL;
    size_t best_at = 0, best_len = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const size_t n = strlen(rows[i].cpu);
        const int open = rows[i].cpu[n - 1] == '-'; /* a family prefix */
        for (const char *at = strstr(name, rows[i].cpu); at; at = strstr(at + 1, rows[i].cpu)) {
            const char end = at[n];
            if (!word_start(name, at) || !(open || end == '\0' || end == '-' || end == ' '))
                continue;
            const size_t pos = (size_t)(at - name);
            if (!best || pos < best_at || (pos == best_at && n > best_len)) {
                best = &rows[i];
                best_at = pos;
                best_len = n;
            }
            break;
        }
    }
    if (!best)
        return 0;
    *floats = best->floats;
    *regs = best->regs;
    if (cpu)
        *cpu = best->cpu;
    return 1;
}

int clattn__plan_registers(int is_cpu, const char *name, unsigned native, unsigned *floats,
                           int *regs, const char **cpu)
{
    if (is_cpu && clattn__device_isa(name, floats, regs, cpu))
        return 1;
    /* x86-64: 32 vector registers with AVX-512 (16 floats), 16 before it. */
    *floats = native ? native : 4;
    *regs = *floats >= 16 ? 32 : 16;
    if (cpu)
        *cpu = NULL;
    return 0;
}
