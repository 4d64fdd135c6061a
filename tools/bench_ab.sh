#!/usr/bin/env bash
# Compares two builds of attn-tune (say, the last release and the working
# tree) on the bench shapes, interleaved: round r runs A then B (B then A on
# odd rounds), each in a fresh process with its own cache directory, so both
# see the same machine load. Prints per shape the median over rounds of each
# build's AUTO median and the ratio B/A.
#   tools/bench_ab.sh OLD/attn-tune NEW/attn-tune [rounds=5] [attn-tune bench options...]
# Example (untuned defaults, the 1.0 pipeline against 0.1):
#   git worktree add /tmp/old v0.1 && cmake -S /tmp/old -B /tmp/old/build && \
#   cmake --build /tmp/old/build --target attn-tune -j2 && \
#   tools/bench_ab.sh /tmp/old/build/tools/attn-tune build/tools/attn-tune 7
set -euo pipefail
a=$1 b=$2 rounds=${3:-5}
shift $(($# < 3 ? $# : 3))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cache-a" "$work/cache-b"
for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="a b"; else order="b a"; fi
    for x in $order; do
        bin=$a
        [ "$x" = b ] && bin=$b
        CLATTN_CACHE_DIR=$work/cache-$x "$bin" bench --quick --no-baselines --no-first-call \
            --sgemm-gflops 1 --repeat 7 --json "$@" > "$work/$x-$r.json" 2> /dev/null || true
    done
    echo "round $r of $rounds done" >&2
done
python3 - "$work" "$rounds" << 'PY'
import json, statistics, sys, glob
work, rounds = sys.argv[1], int(sys.argv[2])
def auto(path):
    out = {}
    try:
        d = json.load(open(path))
    except Exception:
        return out
    for s in d["shapes"]:
        for v in s["variants"]:
            if v["variant"] == "AUTO" and v["status"] == "ok":
                # unnamed shapes (from --shapes FILE) go by their text
                out[s["name"] or s["shape"]] = (v["median_ms"], s["shape"])
    return out
runs = {x: [auto(f"{work}/{x}-{r}.json") for r in range(1, rounds + 1)] for x in "ab"}
names = sorted({n for r in runs["a"] + runs["b"] for n in r})
w = max([6] + [len(n) for n in names])
print(f"{'shape':{w}} {'A ms':>9} {'B ms':>9} {'B/A':>7}  (medians of {rounds} interleaved rounds)")
for n in names:
    ta = [r[n][0] for r in runs["a"] if n in r]
    tb = [r[n][0] for r in runs["b"] if n in r]
    if not ta or not tb:
        print(f"{n:{w}} missing")
        continue
    ma, mb = statistics.median(ta), statistics.median(tb)
    # also the median of per-round ratios (pairs run back to back)
    pr = [y / x for x, y in zip(ta, tb)]
    print(f"{n:{w}} {ma:9.3f} {mb:9.3f} {mb / ma:7.3f}  per-round ratio median {statistics.median(pr):.3f}")
PY
