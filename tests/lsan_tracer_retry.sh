#!/usr/bin/env bash
# Usage: lsan_tracer_retry.sh BUILD_DIR LOG [ctest options...]
#
# LeakSanitizer's stop-the-world tracer sometimes crashes on its own at
# process exit ("Tracer caught signal 11" then "LeakSanitizer has encountered
# a fatal error"), after a test has passed every check; the sanitizer project
# knows it as an intermittent fault of the tracer (google/sanitizers #1353),
# not a leak. This script reads the log of a ctest run made with
# --output-on-failure and reruns the failed tests once, but only when every
# failure is that crash and nothing else: a sanitizer report, a failed check
# or a second kind of failure anywhere in a failed test's output keeps the
# run failed. Exit status: 0 when the reruns pass.
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
cur="" tracer=0 other=0
judge() {
    [ -n "$cur" ] || return 0
    if [ "$tracer" = 1 ] && [ "$other" = 0 ]; then
        names+=("$cur")
    else
        echo "lsan_tracer_retry: $cur failed for another reason; no rerun"
        exit 1
    fi
}
while IFS= read -r line; do
    case $line in
    @@*)
        judge
        cur=${line#@@} tracer=0 other=0
        ;;
    *"Tracer caught signal"* | *"LeakSanitizer has encountered a fatal error"*) tracer=1 ;;
    *"ERROR: AddressSanitizer"* | *"ERROR: LeakSanitizer: detected"* | *"runtime error:"* | "FAIL"* | *" FAIL "*) other=1 ;;
    esac
done <<< "$blocks"
judge

regex="^($(IFS='|'; echo "${names[*]}"))\$"
echo "lsan_tracer_retry: LeakSanitizer's tracer crashed in ${names[*]}; rerunning once"
ctest --test-dir "$build" --output-on-failure "$@" -R "$regex"
