#!/bin/sh
# Runs a command under Oclgrind with its memory, race and uninitialised-value
# checks, and fails when the command fails or Oclgrind reported anything
# (out-of-bounds access, data race, uninitialised read, barrier divergence,
# API misuse). Usage: run.sh OCLGRIND COMMAND [ARGS...]
#
# Oclgrind opens its --log file anew (truncating it) for every OpenCL
# context, so a plain log file keeps only the last context's reports. The
# log is therefore a FIFO that the command holds open as fd 3 (reopening a
# FIFO truncates nothing), drained into a file by a reader.
#
# CLATTN_OCLGRIND_UNINIT=0 leaves out --uninitialized (bounds, races and API
# checks stay): for kernels built with 16-wide vectors, where Oclgrind 21.10
# reports the upper half of every float16 as uninitialised
# (hi_half_probe.cl).
set -u
oclgrind=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/clattn-oclgrind.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
log=$dir/log
mkfifo "$dir/fifo" || exit 1
cat "$dir/fifo" >"$log" &
reader=$!
uninit=--uninitialized
if [ "${CLATTN_OCLGRIND_UNINIT:-1}" = 0 ]; then
    uninit=
    echo "Oclgrind: uninitialised reads not checked (CLATTN_OCLGRIND_UNINIT=0)"
fi
# shellcheck disable=SC2086 # $uninit is one word or none
"$oclgrind" --check-api --data-races $uninit --log /dev/fd/3 "$@" 3>"$dir/fifo"
rc=$?
wait "$reader"
if [ -s "$log" ]; then
    echo "Oclgrind reported problems ($(grep -c . "$log") lines); the first ones:"
    head -n 60 "$log"
    exit 1
fi
if [ "$rc" -eq 77 ]; then
    echo "Oclgrind: no reports, but parts of the command were skipped (exit 77)"
    exit 77
fi
if [ "$rc" -ne 0 ]; then
    echo "the command failed under Oclgrind (exit $rc)"
    exit "$rc"
fi
echo "Oclgrind: no reports"
