#!/bin/sh
# Reads the code PoCL generates for clattn's fused kernels, for CPU classes
# that cannot be timed here (issue 14): PoCL compiles each configuration
# (POCL_KERNELLIB_NAME=avx2 makes Debian's PoCL 3.1 build for
# pthread-haswell on any x86-64 host: target-cpu haswell, its AVX2 kernel
# library, 16 ymm registers), keeps its work-group bitcode
# (POCL_LEAVE_KERNEL_COMPILER_TEMP_FILES), and llc-15 / llvm-mca-15 report
# the innermost loops: spill stores, reloads, FMAs and llvm-mca's cycles per
# iteration (tools/codegen_loops.py). Nothing is timed.
#
#   tools/codegen_report.sh [-b BUILD_DIR] [-o OUT_DIR] [NAME ...]
#
# Default: build/ (needs libclattn.so), /tmp/clattn-codegen, every
# configuration below. NAME picks configurations by name. Per configuration
# OUT_DIR/NAME/ holds opts.txt (the kernel's real build options, from the
# driver), pocl/ (PoCL's files: parallel.bc is the work-group function's
# optimised IR), kernel.ll, kernel.CPU.s (llc -O3 -mcpu=CPU) and
# loops.MCACPU.txt / .json. The summary table goes to stdout and
# OUT_DIR/summary.txt.
#
# Needs: llc-15, llvm-dis-15, llvm-mca-15 (apt-get install llvm-15), cc,
# python3, objdump, PoCL. Single-threaded apart from PoCL's two-thread
# launch of one forward per configuration.
set -eu

BUILD=build
OUT=/tmp/clattn-codegen
while getopts b:o: opt; do
    case $opt in
    b) BUILD=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
for t in llc-15 llvm-dis-15 llvm-mca-15 cc python3 objdump; do
    command -v $t >/dev/null || { echo "codegen_report: $t not found (apt-get install llvm-15)" >&2; exit 1; }
done
[ -e "$BUILD/libclattn.so" ] || { echo "codegen_report: no $BUILD/libclattn.so (build first)" >&2; exit 1; }
mkdir -p "$OUT"
DRIVER=$OUT/codegen_forward
cc -O2 -rdynamic "$ROOT/tools/codegen_forward.c" -I"$ROOT/include" -L"$BUILD" \
    -Wl,-rpath,"$BUILD" -lclattn -lOpenCL -ldl -o "$DRIVER"

# name | isa | B H Hkv Sq Skv D [page=N: paged K/V] | path (1 fused, 3 split-KV, 0 auto) |
#   CLATTN_PARAMS | kernel
# isa avx2: PoCL builds for haswell; llc -mcpu=haswell; llvm-mca -mcpu=haswell. (LLVM 15's
#   znver1 model, the AVX2 host of AVX2-NOTES.md, issues two 256-bit FMAs a cycle where
#   that host measured one, so it is not used.)
# isa avx512: PoCL's own build for this host (pthread-skylake-avx512); skylake-avx512.
# isa avx512ir-haswell: the AVX-512 build's IR given to llc -mcpu=haswell (the method
#   issue 14 first named; shows what it misses).
CONFIGS='
l16-kb4-db4|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4|attn_fwd_fused_lanes
l16-kb2-db2|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KB=2,FL_DB=2|attn_fwd_fused_lanes
l16-kb8-db8|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KB=8,FL_DB=8|attn_fwd_fused_lanes
l8-kb2-db2|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=8,FL_KB=2,FL_DB=2|attn_fwd_fused_lanes
l8-kb4-db4|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=8,FL_KB=4,FL_DB=4|attn_fwd_fused_lanes
l8-kb8-db8|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=8,FL_KB=8,FL_DB=8|attn_fwd_fused_lanes
l16-k8-kb4-db4|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KEYS=8,FL_KB=4,FL_DB=4|attn_fwd_fused_lanes
l16-k12-kb6-db4|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KEYS=12,FL_KB=6,FL_DB=4|attn_fwd_fused_lanes
g1-l16-kb4-db4|avx2|1 32 8 512 512 128|1|FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4|attn_fwd_fused_lanes
x-l16-kb8-db8|avx512|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KB=8,FL_DB=8|attn_fwd_fused_lanes
x-l16-kb4-db4|avx512|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4|attn_fwd_fused_lanes
xh-l16-kb4-db4|avx512ir-haswell|1 8 8 1024 1024 64|1|FUSED_VEC=2,FL_LANES=16,FL_KB=4,FL_DB=4|attn_fwd_fused_lanes
vec-p1|avx2|1 8 8 1024 1024 64|1|FUSED_VEC=1|attn_fwd_fused_vec
vec-d1|avx2|4 32 8 1 4096 128|0||attn_fwd_fused_vec
x-vec-p1|avx512|1 8 8 1024 1024 64|1|FUSED_VEC=1|attn_fwd_fused_vec
x-vec-d1|avx512|4 32 8 1 4096 128|0||attn_fwd_fused_vec
x-vec-d1-paged|avx512|4 32 8 1 4096 128 page=16|0||attn_fwd_fused_vec
x-vec-g8-paged|avx512|4 8 1 1 32768 128 page=16|0||attn_fwd_fused_vec
'

want() { # is configuration $1 selected?
    [ $# -eq 1 ] && return 0
    n=$1
    shift
    for w in "$@"; do [ "$w" = "$n" ] && return 0; done
    return 1
}

SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
echo "$CONFIGS" | while IFS='|' read -r name isa shape path params kernel; do
    [ -n "$name" ] || continue
    want "$name" "$@" || continue
    dir=$OUT/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    lib=
    case $isa in
    avx2) lib=avx2 llc_cpu=haswell mca_cpus=haswell ;;
    avx512) llc_cpu=skylake-avx512 mca_cpus=skylake-avx512 ;;
    avx512ir-haswell) llc_cpu=haswell mca_cpus=haswell ;;
    esac
    page=$(echo "$shape" | sed -n 's/.*page=\([0-9]*\).*/\1/p')
    shape=$(echo "$shape" | sed 's/ *page=[0-9]*//')
    # shellcheck disable=SC2086
    if ! env ${lib:+POCL_KERNELLIB_NAME=$lib} ${page:+CODEGEN_PAGE=$page} \
        CLATTN_CACHE_DIR=off CLATTN_PARAMS="$params" \
        POCL_LEAVE_KERNEL_COMPILER_TEMP_FILES=1 POCL_CACHE_DIR="$dir/pocl" \
        CODEGEN_OPTIONS_LOG="$dir/opts.txt" "$DRIVER" $shape "$path" \
        >"$dir/driver.log" 2>&1; then
        echo "$name: the forward failed (see $dir/driver.log)" | tee -a "$SUMMARY"
        continue
    fi
    bc=$(find "$dir/pocl" -path "*/$kernel/*" -name parallel.bc | head -n 1)
    so=$(find "$dir/pocl" -path "*/$kernel/*" -name "$kernel.so" | head -n 1)
    opts=$(grep "^$kernel " "$dir/opts.txt" | head -n 1 | cut -d' ' -f2-)
    if [ -z "$bc" ]; then
        echo "$name: no parallel.bc for $kernel" | tee -a "$SUMMARY"
        continue
    fi
    llvm-dis-15 "$bc" -o "$dir/kernel.ll" 2>/dev/null
    # The work-group function has no target attributes of its own; the
    # inlined kernel's are dropped so that -mcpu decides for every function.
    sed -E 's/"target-cpu"="[^"]*"//; s/"target-features"="[^"]*"//' "$dir/kernel.ll" \
        >"$dir/kernel.strip.ll"
    llc-15 -O3 -mcpu="$llc_cpu" "$dir/kernel.strip.ll" -o "$dir/kernel.$llc_cpu.s"
    func=_pocl_kernel_${kernel}_workgroup
    # llc against PoCL's own object code: instructions of the work-group function
    n_llc=$(awk -v f="$func:" '$1==f{on=1;next} on&&/^\.Lfunc_end/{exit} on&&/^\t[a-z]/{n++} END{print n+0}' \
        "$dir/kernel.$llc_cpu.s")
    n_so=$(objdump -d --no-show-raw-insn "$so" |
        awk -v f="<$func>:" '$2==f{on=1;next} on&&/^$/{exit} on&&!/\tnop/{n++} END{print n+0}')
    {
        echo "== $name ($isa; $shape; path $path; ${params:-defaults})"
        echo "   $kernel $opts"
        echo "   work-group function: $n_llc instructions from llc -mcpu=$llc_cpu, $n_so in PoCL's $kernel.so (non-nop)"
    } | tee -a "$SUMMARY"
    for mc in $mca_cpus; do
        python3 "$ROOT/tools/codegen_loops.py" "$dir/kernel.$llc_cpu.s" "$func" "$mc" \
            --options "$opts" >"$dir/loops.$mc.txt"
        python3 "$ROOT/tools/codegen_loops.py" "$dir/kernel.$llc_cpu.s" "$func" "$mc" \
            --options "$opts" --json >"$dir/loops.$mc.json"
        tee -a "$SUMMARY" <"$dir/loops.$mc.txt"
    done
done
echo "summary: $SUMMARY"
