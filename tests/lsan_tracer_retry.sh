#!/usr/bin/env bash
# Usage: lsan_tracer_retry.sh BUILD_DIR LOG [ctest options...]
#
# LeakSanitizer's stop-the-world tracer sometimes crashes on its own at
# process exit ("Tracer caught signal 11" then "LeakSanitizer has encountered
# a fatal error"), after a test has passed every check; the sanitizer project
# knows it as an intermittent fault of the tracer (google/sanitizers #1353),
# not a leak. This script reads the log of a ctest run made with
# --output-on-failure and reruns the failed tests once, but only when every
# failed test shows that crash and no sanitizer report (an AddressSanitizer
# error, a detected leak, a UBSan runtime error). A failed check may come
# with the crash: tests that spawn a child process (a second process reusing
# the caches) see the child exit 1 when its tracer crashes, and report that
# as a failed check. The rerun decides: a real failure fails again, and the
# run stays failed. Exit status: 0 when the reruns pass.
set -uo pipefail
build=$1 log=$2
shift 2

# One block per failed test: its result line and the output ctest prints
# after it, up to the next test's start or result line.
blocks=$(awk '
    / Test +#[0-9]+: .*\*\*\*(Failed|Exception)/ { name = $0; sub(/^.*Test +#[0-9]+: /, "", name); sub(/ .*$/, "", name); inb = 1; print "@@" name; next }
    /^ *Start +[0-9]+: / || / Test +#[0-9]+: / { inb = 0 }
    inb { print }
' "$log")
[ -n "$blocks" ] || { echo "lsan_tracer_retry: no failed test found in $log"; exit 1; }

names=()
cur="" tracer=0 report=0 checks=0
judge() {
    [ -n "$cur" ] || return 0
    if [ "$tracer" = 1 ] && [ "$report" = 0 ]; then
        names+=("$cur")
        [ "$checks" = 0 ] ||
            echo "lsan_tracer_retry: $cur also failed $checks check(s) beside the tracer crash"
    else
        echo "lsan_tracer_retry: $cur failed for another reason; no rerun"
        exit 1
    fi
}
while IFS= read -r line; do
    case $line in
    @@*)
        judge
        cur=${line#@@} tracer=0 report=0 checks=0
        ;;
    *"Tracer caught signal"* | *"LeakSanitizer has encountered a fatal error"*) tracer=1 ;;
    *"ERROR: AddressSanitizer"* | *"ERROR: LeakSanitizer: detected"* | *"runtime error:"*) report=1 ;;
    "FAIL"* | *" FAIL "*) checks=$((checks + 1)) ;;
    esac
done <<< "$blocks"
judge

regex="^($(IFS='|'; echo "${names[*]}"))\$"
echo "lsan_tracer_retry: LeakSanitizer's tracer crashed in ${names[*]}; rerunning once"
ctest --test-dir "$build" --output-on-failure "$@" -R "$regex"
