#!/bin/sh
# Runs a command under Oclgrind with its memory, race and uninitialised-value
# checks, and fails when the command fails or Oclgrind reported anything
# (out-of-bounds access, data race, uninitialised read, barrier divergence,
# API misuse). Usage: run.sh OCLGRIND COMMAND [ARGS...]
set -u
oclgrind=$1
shift
log=$(mktemp "${TMPDIR:-/tmp}/clattn-oclgrind.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
"$oclgrind" --check-api --data-races --uninitialized --log "$log" "$@"
rc=$?
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
