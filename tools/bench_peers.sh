#!/usr/bin/env bash
# clattn against PyTorch's CPU scaled_dot_product_attention and ggml's CPU
# flash attention, interleaved, on P1 P2 C1 G1 D1 in fp32 (issue 14).
#
#   tools/bench_peers.sh [--rounds N] [--calls N] [--threads N] [--shapes P1,..]
#                        [--sgemm-gflops X] [--device P:D] [--no-torch]
#                        [--no-ggml] [--json FILE]
#
# A benchmark, not a test: it prints medians and ratios and passes no
# judgement. tools/bench_peers.py does the timing and says how; this script
# only prepares what it needs, each step skipped when already done:
#   1. a virtual environment (CLATTN_PEERS_VENV, default
#      ~/.cache/clattn-bench-peers/venv) with numpy, PyTorch and ggml-python,
#      at the versions pinned below. PyPI's Linux torch wheel is the CUDA
#      build: it runs on the CPU, but libtorch links the CUDA libraries, so
#      `pip install --no-deps torch` fails at `import torch` (libcufile.so.0
#      and others missing) and the nvidia-* dependencies (about 4 GB) come
#      with it. PyTorch's CPU-only wheels are not on PyPI.
#   2. ggml-python is built from its source distribution, which carries
#      ggml's own sources, with -march=native (GGML_NATIVE) and JOBS parallel
#      compile jobs. Built for this CPU, so a stamp of the CPU's flags in the
#      venv makes another CPU rebuild it.
#   3. attn-tune (ATTN_TUNE, default BUILD_DIR/tools/attn-tune, BUILD_DIR
#      default build/): built with CMake (RelWithDebInfo) only when missing.
# A peer that cannot be installed is reported as unavailable and the others
# still run. clattn is run through attn-tune's `bench --json`, one process per
# round (see bench_peers.py).
#
# Environment: PYTHON (python3), CLATTN_PEERS_VENV, BUILD_DIR, ATTN_TUNE,
# JOBS (2).
set -euo pipefail

TORCH_PIN=2.15.0
GGML_PYTHON_PIN=0.0.45

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
venv=${CLATTN_PEERS_VENV:-$HOME/.cache/clattn-bench-peers/venv}
build=${BUILD_DIR:-$root/build}
attn_tune=${ATTN_TUNE:-$build/tools/attn-tune}
jobs=${JOBS:-2}

want_torch=1
want_ggml=1
for a in "$@"; do
  case $a in
    --no-torch) want_torch=0 ;;
    --no-ggml) want_ggml=0 ;;
    -h|--help) want_torch=0; want_ggml=0 ;;
  esac
done

say() { printf 'bench_peers: %s\n' "$*" >&2; }

if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  say "creating the virtual environment $venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" || {
    say "cannot create a venv with $python (Debian: apt-get install python3-venv)"
    exit 1
  }
fi
vpy=$venv/bin/python
pip() { "$vpy" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$vpy" -c 'import numpy' 2>/dev/null; then
  say "installing numpy"
  pip numpy
fi

if [ "$want_torch" = 1 ] &&
   ! "$vpy" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_PIN')" \
     2>/dev/null; then
  say "installing torch==$TORCH_PIN with its dependencies (several GB; once)"
  pip "torch==$TORCH_PIN" || say "torch did not install; it will be reported unavailable"
fi

if [ "$want_ggml" = 1 ]; then
  cpu_stamp="$GGML_PYTHON_PIN $(grep -m1 '^flags' /proc/cpuinfo | md5sum | cut -d' ' -f1)"
  stamp_file=$venv/ggml-python.stamp
  if [ "$(cat "$stamp_file" 2>/dev/null)" != "$cpu_stamp" ] ||
     ! "$vpy" -c 'import ggml; ggml.ggml_flash_attn_ext' 2>/dev/null; then
    say "building ggml-python==$GGML_PYTHON_PIN from source ($jobs jobs; a few minutes)"
    if CMAKE_BUILD_PARALLEL_LEVEL=$jobs CMAKE_ARGS="-DGGML_NATIVE=ON" \
       pip --force-reinstall --no-deps --no-binary ggml-python \
         "ggml-python==$GGML_PYTHON_PIN" &&
       pip "ggml-python==$GGML_PYTHON_PIN"; then
      echo "$cpu_stamp" > "$stamp_file"
    else
      say "ggml-python did not build; ggml will be reported unavailable"
    fi
  fi
fi

if [ ! -x "$attn_tune" ]; then
  say "building attn-tune in $build"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  fi
  cmake --build "$build" -j"$jobs" --target attn-tune >&2
fi

exec "$vpy" "$root/tools/bench_peers.py" --attn-tune "$attn_tune" "$@"
