#!/bin/sh
# Fuzzes every format clattn and attn-tune read (tuning db, tuning import,
# program binary cache file, shape strings and files) with libFuzzer under
# ASan and UBSan, SECONDS each (default 60), one after another.
#
#   tests/fuzz/run.sh [SECONDS]
#
# Builds build-fuzz/ with clang (CLATTN_FUZZ_CC overrides: a CC meant for the
# normal build is ignored; needs libclang-rt-dev for the
# fuzzer and sanitizer runtimes). Each fuzzer starts from the kept corpus in
# tests/fuzz/corpus/<format>/ plus what earlier runs found, and writes new
# interesting inputs to build-fuzz/corpus/<format>/, so long runs build on
# each other. CLATTN_FUZZ_MERGE=1 afterwards merges the inputs that add
# coverage into the kept corpus (review and commit them: they become
# regression tests of the normal build). Any crash, sanitizer report, leak,
# broken invariant or hang fails the script; the input is saved as
# build-fuzz/artifacts/<format>-crash-* (replay it with
# build-fuzz/tests/fuzz/fuzz_<format> FILE).
set -eu

secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${CLATTN_FUZZ_BUILD:-$root/build-fuzz}
formats="tuning_db import program_file shapes safetensors"

# Where a format's fuzzer and kept corpus live, and its extra options: the
# library's and attn-tune's in tests/fuzz, the MiniLM example's safetensors
# reader in examples/minilm (with a dictionary of its header's words).
fuzzer() {
    case $1 in
    safetensors) echo "$build/examples/minilm/fuzz_safetensors" ;;
    *) echo "$build/tests/fuzz/fuzz_$1" ;;
    esac
}
kept() {
    case $1 in
    safetensors) echo "$root/examples/minilm/corpus/safetensors" ;;
    *) echo "$here/corpus/$1" ;;
    esac
}
extra() {
    case $1 in
    safetensors) echo "-dict=$root/examples/minilm/fuzz_safetensors.dict" ;;
    *) echo "" ;;
    esac
}

mkdir -p "$build/artifacts" "$build/logs"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="${CLATTN_FUZZ_CC:-clang}" -DCLATTN_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/logs/configure.log" 2>&1 ||
    { cat "$build/logs/configure.log"; exit 1; }
targets=
for f in $formats; do targets="$targets fuzz_$f"; done
# shellcheck disable=SC2086
cmake --build "$build" -j"${CLATTN_FUZZ_JOBS:-2}" --target $targets

status=0
for f in $formats; do
    work="$build/corpus/$f"
    mkdir -p "$work"
    log="$build/logs/$f.log"
    # -close_fd_mask=2: attn-tune's parsers print every rejection on stderr;
    # libFuzzer and the sanitizers still report on a copy of it.
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$(fuzzer "$f")" "$work" "$(kept "$f")" $(extra "$f") \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -close_fd_mask=2 \
        -artifact_prefix="$build/artifacts/$f-" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log")
        files=$(find "$work" -type f | wc -l)
        echo "fuzz $f: ok, $runs runs in ${secs}s ($speed/s), coverage $cov," \
            "$files inputs in $work"
    else
        status=1
        echo "fuzz $f: FAILED (log $log):"
        grep -E 'ERROR|invariant|SUMMARY|Test unit written|deadly signal|timeout' "$log" |
            head -20
    fi
done

if [ "${CLATTN_FUZZ_MERGE:-0}" = 1 ] && [ $status = 0 ]; then
    for f in $formats; do
        before=$(find "$(kept "$f")" -type f | wc -l)
        "$(fuzzer "$f")" -merge=1 -use_counters=0 -close_fd_mask=2 \
            "$(kept "$f")" "$build/corpus/$f" >"$build/logs/$f.merge.log" 2>&1
        after=$(find "$(kept "$f")" -type f | wc -l)
        echo "merge $f: $before -> $after kept inputs"
    done
fi
exit $status
