#!/usr/bin/env bash
# Every check the project runs in CI, in order, quick versions:
#   1. the suite (unit, conformance, cache, tools, package, Oclgrind kernel
#      checks when oclgrind is installed) on a RelWithDebInfo build;
#   2. the suite again under AddressSanitizer + UndefinedBehaviorSanitizer +
#      LeakSanitizer (Oclgrind and MPI tests excluded: they run above;
#      Open MPI's own allocations would read as leaks);
#   3. the parser fuzzers for a bounded time each (when clang is installed);
#   4. the Python package: built and installed with pip into a virtual
#      environment (build-python/venv) with the pinned test requirements
#      (about 9 GB of disk at the peak, torch's CUDA libraries included;
#      pip's cache is not used), then its pytest suite.
# CLATTN_LONG=1 runs the long versions (longer fuzzing, full fault sweeps,
# every truncation offset, long soak). Exit status: non-zero when any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Variables that change what the tests exercise (a forced configuration, a
# filtered sweep, kernels from a directory, extra build options, another
# fuzzing seed) must not leak in from the caller's shell. The CTest
# registrations clear them too (tests/test_env.cmake), but not those of
# tools/; CLATTN_LONG is the one meant to pass through.
unset CLATTN_PARAMS CLATTN_SWEEP_ONLY CLATTN_SWEEP_FRESH CLATTN_KERNEL_DIR \
    CLATTN_BUILD_OPTIONS CLATTN_FUZZ_SEED

fails=()
step() {
    local name=$1
    shift
    echo "== $name"
    local t0=$SECONDS
    if "$@"; then
        echo "== $name: passed ($((SECONDS - t0)) s)"
    else
        echo "== $name: FAILED ($((SECONDS - t0)) s)"
        fails+=("$name")
    fi
}

suite() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
        cmake --build build -j2 &&
        ctest --test-dir build --output-on-failure -j2
}

sanitizers() (
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCLATTN_ASAN=ON -DCLATTN_UBSAN=ON &&
        cmake --build build-asan -j2 &&
        # use_sigaltstack=0: LLVM (inside PoCL's compiler, on the thread that
        # calls clBuildProgram) installs a malloc'ed alternate signal stack,
        # which ASan then fails to munmap when that thread exits.
        export ASAN_OPTIONS=use_sigaltstack=0 \
            LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 &&
        # LeakSanitizer's tracer can crash at exit on its own; a failure that
        # is only that crash is rerun once (tests/lsan_tracer_retry.sh).
        { ctest --test-dir build-asan --output-on-failure -j2 -LE 'oclgrind|mpi' 2>&1 |
            tee build-asan/ctest.log; [ "${PIPESTATUS[0]}" = 0 ] ||
            bash tests/lsan_tracer_retry.sh build-asan build-asan/ctest.log -LE 'oclgrind|mpi'; }
)

fuzz() {
    local seconds=20
    if [ "${CLATTN_LONG:-0}" = 1 ]; then
        seconds=600
    fi
    bash tests/fuzz/run.sh "$seconds"
}

python_package() (
    set -e
    venv=build-python/venv
    # torch from PyPI brings its CUDA libraries: the install peaks at about
    # 9 GB of disk and leaves about 6 GB. pip's own cache would add a copy of
    # every wheel (about 3 GB more, and it is what ran a CI machine out of
    # space), so it is off; the free space is printed to tell a full disk
    # from other failures.
    export PIP_NO_CACHE_DIR=1
    echo "disk: $(df -Ph . | awk 'NR == 2 {print $4}') free for the Python package"
    if [ ! -x "$venv/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test.txt
    "$venv/bin/pip" install -q --disable-pip-version-check .
    # from the repository root pytest imports the installed package (python/
    # itself is not on the path), so the test runs what pip built
    "$venv/bin/python" -m pytest -q python/tests
)

step "test suite" suite
step "sanitizers (ASan, UBSan, LSan)" sanitizers
if [ -f tests/fuzz/run.sh ] && command -v clang > /dev/null; then
    step "fuzzers" fuzz
else
    echo "== fuzzers: skipped (clang not installed)"
fi

step "python package" python_package

if [ ${#fails[@]} -gt 0 ]; then
    printf '== FAILED: %s\n' "${fails[@]}"
    exit 1
fi
echo "== all checks passed"
