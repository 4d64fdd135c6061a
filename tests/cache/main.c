/* clattn_cache_tests BASE NAME [ARGS]: runs one test of the on-disk cache
 * (or one of the child processes a test starts). Exit status 0 = pass, 77 =
 * no failure but parts skipped (SKIP lines say which). */
#include "cache_tests.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    ct_fn fn;
} k_tests[] = {
    {"tuned_new_process", test_tuned_new_process},
    {"binary_reuse", test_binary_reuse},
    {"launch_code", test_launch_code},
    {"store_while_running", test_store_while_running},
    {"corrupt_binary", test_corrupt_binary},
    {"dir_refused", test_dir_refused},
    {"unwritable_dir", test_unwritable_dir},
    {"tuning_db_damage", test_tuning_db_damage},
    {"concurrent_tuners", test_concurrent_tuners},
    {"interrupted_tuner", test_interrupted_tuner},
    {"export_clear_import", test_export_clear_import},
    {"tuned_kv_formats", test_tuned_kv_formats},
    {"tuned_features", test_tuned_features},
    {"cli_tune", test_cli_tune},
    {"cli_shape_errors", test_cli_shape_errors},
    {"disk_missing_dir", test_disk_missing_dir},
    {"disk_readonly", test_disk_readonly},
    {"disk_full", test_disk_full},
    {"disk_replaced", test_disk_replaced},
    {"disk_truncate_binary", test_disk_truncate_binary},
    {"disk_foreign", test_disk_foreign},
    {"disk_truncate_db", test_disk_truncate_db},
    {"threads_one_context", test_threads_one_context},
    {"threads_many_contexts", test_threads_many_contexts},
    {"procs_cold_cache", test_procs_cold_cache},
    /* children */
    {"child_cold", child_cold},
    {"child_tuned", child_tuned},
    {"child_tuned_options", child_tuned_options},
    {"child_first_call", child_first_call},
    {"child_launch_code", child_launch_code},
    {"child_tune", child_tune},
};

int main(int argc, char **argv)
{
    double t0 = ct_now();
    if (argc < 3) {
        fprintf(stderr, "usage: %s BASE-DIR TEST [ARGS]\ntests:", argv[0]);
        for (size_t i = 0; i < sizeof k_tests / sizeof k_tests[0]; i++)
            if (strncmp(k_tests[i].name, "child_", 6) != 0)
                fprintf(stderr, " %s", k_tests[i].name);
        fputc('\n', stderr);
        return 2;
    }
    ct_base = argv[1];
    /* argv[1] is shifted off: a test sees (NAME, ARGS...) as argv[1..]. */
    for (size_t i = 0; i < sizeof k_tests / sizeof k_tests[0]; i++) {
        if (strcmp(k_tests[i].name, argv[2]) == 0) {
            int rc = k_tests[i].fn(argc - 1, argv + 1);
            int child = strncmp(argv[2], "child_", 6) == 0;
            if (rc == 0 && ct_failures) rc = 1;
            if (rc == 0 && ct_skips) rc = CT_SKIP_EXIT;
            if (!child)
                printf("%s: %s in %.1f s\n", argv[2],
                       rc == CT_SKIP_EXIT ? "SKIPPED in part" : rc ? "FAILED" : "passed",
                       ct_now() - t0);
            return rc;
        }
    }
    fprintf(stderr, "unknown test '%s'\n", argv[2]);
    return 2;
}
