/* The tests of tests/cache/ and the child processes they start. Each test
 * is `clattn_cache_tests BASE NAME`; it makes its own cache directories
 * under BASE and removes them. */
#ifndef CLATTN_CACHE_TESTS_H
#define CLATTN_CACHE_TESTS_H

#include "cache_util.h"

typedef int (*ct_fn)(int argc, char **argv);

/* test_reuse.c */
int test_tuned_new_process(int argc, char **argv);
int test_binary_reuse(int argc, char **argv);
int child_tuned(int argc, char **argv);
int child_tuned_options(int argc, char **argv);
int child_first_call(int argc, char **argv);

/* test_launch_code.c */
int test_launch_code(int argc, char **argv);
int child_launch_code(int argc, char **argv);

/* test_in_flight.c */
int test_store_while_running(int argc, char **argv);

/* test_corrupt.c */
int test_corrupt_binary(int argc, char **argv);

/* test_dirs.c */
int test_dir_refused(int argc, char **argv);
int test_unwritable_dir(int argc, char **argv);

/* test_db.c */
int test_tuning_db_damage(int argc, char **argv);

/* test_concurrent.c */
int test_concurrent_tuners(int argc, char **argv);
int test_interrupted_tuner(int argc, char **argv);
int test_export_clear_import(int argc, char **argv);
int child_tune(int argc, char **argv);

/* test_kv_tune.c */
int test_tuned_kv_formats(int argc, char **argv);

/* test_feature_tune.c */
int test_tuned_features(int argc, char **argv);

/* test_cli.c: argv[2] is the attn-tune executable */
int test_cli_tune(int argc, char **argv);
int test_cli_shape_errors(int argc, char **argv);

/* test_disk.c (label disk) */
int test_disk_missing_dir(int argc, char **argv);
int test_disk_readonly(int argc, char **argv);
int test_disk_full(int argc, char **argv);
int test_disk_replaced(int argc, char **argv);
int test_disk_truncate_binary(int argc, char **argv);
int test_disk_foreign(int argc, char **argv);
int test_disk_truncate_db(int argc, char **argv);

/* test_parallel.c (label concurrency) */
int test_threads_one_context(int argc, char **argv);
int test_threads_many_contexts(int argc, char **argv);
int test_procs_cold_cache(int argc, char **argv);
int child_cold(int argc, char **argv);

#endif
