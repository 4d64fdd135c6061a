#!/bin/sh
# Checks that the reason for fresh contexts in the Oclgrind runs
# (CLATTN_SWEEP_FRESH=1 in tests/CMakeLists.txt) still holds: Oclgrind's
# --uninitialized gives a new buffer the shadow of the released buffer whose
# number it takes (reuse_probe.c), so that within one OpenCL context it both
# reports written memory as uninitialised and misses reads of memory nothing
# wrote. Fails when a control goes wrong (the probe cannot tell anything
# then) or when Oclgrind stops behaving so (the fresh contexts may go then).
# Usage: reuse_check.sh OCLGRIND REUSE_PROBE
set -u
oclgrind=$1
probe=$2
# reports MODE BYTES: the number of uninitialised-value reports
reports() {
    out=$("$oclgrind" --uninitialized "$probe" "$1" "$2" 2>&1) || {
        printf '%s\n' "$out" | head -n 20
        echo "reuse_probe $1 $2 failed under Oclgrind" >&2
        exit 1
    }
    printf '%s\n' "$out" | grep -c "Uninitialized value"
}
fill0=$(reports fill 0)
nofill0=$(reports nofill 0)
fill4=$(reports fill 4)
nofill1k=$(reports nofill 1024)
echo "reports: fill/no first buffer $fill0, nofill/no first buffer $nofill0," \
    "fill/after 4 bytes $fill4, nofill/after 1024 bytes $nofill1k"
if [ "$fill0" -ne 0 ] || [ "$nofill0" -eq 0 ]; then
    echo "controls wrong: a written buffer must give no report, an unwritten one some"
    exit 1
fi
if [ "$fill4" -gt 0 ] && [ "$nofill1k" -eq 0 ]; then
    echo "Oclgrind still carries a released buffer's shadow over to the next" \
        "(false reports after a smaller one, none after a larger one): fresh contexts stay"
    exit 0
fi
echo "Oclgrind no longer carries a released buffer's shadow over: the fresh" \
    "contexts of the Oclgrind runs may be unnecessary now (tests/CMakeLists.txt)"
exit 1
