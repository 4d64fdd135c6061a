#!/bin/sh
# Checks that run.sh fails on an Oclgrind report from a context that is not
# the program's last: probe.c runs oob_probe.cl in a first context and
# clean_probe.cl in a second. Usage: selftest.sh OCLGRIND PROBE_PROGRAM
set -u
here=$(dirname "$0")
out=$(sh "$here/run.sh" "$1" "$2" "$here/oob_probe.cl" "$here/clean_probe.cl" 2>&1)
rc=$?
if [ "$rc" -ne 1 ] || ! printf '%s\n' "$out" | grep -q "Invalid read"; then
    printf '%s\n' "$out" | head -n 40
    echo "run.sh missed the first context's out-of-bounds read (exit $rc)"
    exit 1
fi
echo "run.sh reported the first context's out-of-bounds read"
