/* clattn_tests CASE: runs one case from cases.h; --list prints them all. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cases.h"
#include "harness.h"
#include "param_spy.h"

typedef struct t_case {
    const char *name;
    void (*run)(void);
} t_case;

static const t_case k_cases[] = {
#define T_CASE_ENTRY(name, labels, timeout) {#name, case_##name},
    T_CASES(T_CASE_ENTRY)
#undef T_CASE_ENTRY
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const size_t n = sizeof k_cases / sizeof k_cases[0];
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE | --list\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", k_cases[i].name);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], k_cases[i].name) != 0)
            continue;
        double t0 = now_s();
        /* A case run with a forced configuration must have built it. */
        char params[512] = "";
        const char *env = getenv("CLATTN_PARAMS");
        snprintf(params, sizeof params, "%s", env ? env : "");
        t_spy_reset();
        k_cases[i].run();
        if (params[0])
            t_spy_check_params(params, k_cases[i].name);
        printf("%s: %s (%d failed checks, %d parts skipped, %.1f s)\n", k_cases[i].name,
               t_failures ? "FAILED" : t_skips ? "SKIPPED in part" : "passed", t_failures,
               t_skips, now_s() - t0);
        return t_failures ? 1 : t_skips ? T_SKIP_EXIT : 0;
    }
    fprintf(stderr, "unknown case '%s' (--list shows them)\n", argv[1]);
    return 2;
}
