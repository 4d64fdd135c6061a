#!/bin/sh
# Checks that the reason for CLATTN_OCLGRIND_UNINIT=0 still holds: Oclgrind
# reports hi_half_probe.cl's fully initialised float16 as uninitialised. When
# it stops, the 16-wide variants in tests/CMakeLists.txt can check
# uninitialised reads again. Usage: hi_half_check.sh OCLGRIND PROBE_PROGRAM
set -u
here=$(dirname "$0")
out=$(sh "$here/run.sh" "$1" "$2" "$here/hi_half_probe.cl" 2>&1)
if printf '%s\n' "$out" | grep -q "Controlflow depends on uninitialized value"; then
    echo "Oclgrind still takes a float16's upper half for uninitialised (CLATTN_OCLGRIND_UNINIT=0 stays)"
    exit 0
fi
printf '%s\n' "$out" | head -n 20
echo "Oclgrind no longer reports hi_half_probe.cl: check uninitialised reads in the 16-wide variants again"
exit 1
