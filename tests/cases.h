/*
 * Every test case: X(name, "space-separated ctest labels", timeout seconds), one per line.
 * tests/CMakeLists.txt reads this file to register each case with CTest, so
 * a case added here is run by ctest without touching CMake.
 */
#ifndef CLATTN_TESTS_CASES_H
#define CLATTN_TESTS_CASES_H

#define T_CASES(X)                                                  \
    X(reference_self, "reference quick", 120)                       \
    X(api_basics, "api quick", 120)                                 \
    X(supports, "api quick", 120)                                   \
    X(params_errors, "api quick", 120)                              \
    X(plan_native_width, "api", 300)                                \
    X(decode_one_split, "api decode", 300)                          \
    X(pairwise_fused, "pairwise fused", 900)                        \
    X(pairwise_three_stage, "pairwise three_stage", 900)            \
    X(pairwise_split_kv, "pairwise split_kv", 900)                  \
    X(pairwise_auto, "pairwise auto", 900)                          \
    X(masked_rows, "masks", 600)                                    \
    X(kv_cache_nan, "masks", 600)                                   \
    X(layout_bshd, "layout", 600)                                   \
    X(layout_packed_qkv, "layout", 600)                             \
    X(layout_strided_o, "layout", 600)                              \
    X(edge_valid, "layout api", 600)                                \
    X(async_user_event, "async", 300)                               \
    X(async_out_of_order, "async", 600)                             \
    X(threads, "async", 600)                                        \
    X(last_error_threads, "async", 300)                             \
    X(errors_problem, "errors quick", 300)                          \
    X(errors_buffers, "errors", 300)                                \
    X(errors_host, "errors", 300)                                   \
    X(determinism, "numerics", 600)                                 \
    X(explicit_scale, "numerics", 600)                              \
    X(large_scores, "numerics", 600)                                \
    X(weights, "numerics three_stage", 600)                         \
    X(three_stage_chunks, "numerics three_stage", 600)              \
    X(kernel_sweep, "sweep", 1200)                                  \
    X(descriptors_invalid, "descriptors", 600)                      \
    X(descriptors_valid, "descriptors", 900)                        \
    X(nan_inputs, "numerics", 900)                                  \
    X(nan_inputs_vec, "numerics", 900)                              \
    X(nan_inputs_direct, "numerics", 900)                           \
    X(extreme_scores, "numerics", 900)                              \
    X(f16_range, "numerics", 900)                                   \
    X(features_reference, "features reference quick", 900)          \
    X(features_paths, "features", 900)                              \
    X(features_numerics, "features numerics", 900)                  \
    X(features_errors, "features errors", 900)                      \
    X(alibi_slopes, "features api quick", 900)                      \
    X(kv_formats, "kv", 1200)                                       \
    X(kv_paged, "kv", 1200)                                         \
    X(kv_fp8_codes, "kv", 600)                                      \
    X(kv_errors, "kv errors", 300)                                  \
    X(kv_sweep, "kv", 900)                                          \
    X(merge, "kv merge", 600)                                       \
    X(merge_errors, "kv merge errors", 300)                         \
    X(kv_append, "kv append", 900)                                  \
    X(kv_append_errors, "kv append errors", 300)                   \
    X(buffer_sizes, "api kv quick", 300)                           \
    X(host_sizes, "api errors quick", 300)                         \
    X(quiet_builds, "api", 600)                                    \
    X(tile_random, "tile features", 900)                           \
    X(tile_merge, "tile merge", 600)                               \
    X(tile_masks, "tile masks", 300)                               \
    X(tile_errors, "tile errors quick", 300)                       \
    X(multi_random, "multi features", 900)                         \
    X(multi_paged, "multi kv", 300)                                \
    X(multi_kv, "multi kv", 600)                                   \
    X(multi_weights, "multi", 300)                                 \
    X(multi_tuned, "multi", 300)                                   \
    X(multi_errors, "multi errors", 300)

#define T_DECLARE_CASE(name, labels, timeout) void case_##name(void);
T_CASES(T_DECLARE_CASE)
#undef T_DECLARE_CASE

#endif /* CLATTN_TESTS_CASES_H */
