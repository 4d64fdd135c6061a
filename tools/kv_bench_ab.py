#!/usr/bin/env python3
"""A/B of kernel sources on attn-kv-bench: processes alternate between the
kernel directories (CLATTN_KERNEL_DIR, each with its own cache directory),
so every variant sees the same machine load; prints per K/V storage the
median and the best of the per-process medians, and the first variant's
time over each other's (> 1: that variant is faster).

  tools/kv_bench_ab.py [--bench build/tools/attn-kv-bench] [--processes 4]
      DIR_A DIR_B [...] -- [attn-kv-bench options]

Example (old kernels against the working tree's):
  git worktree add /tmp/old e5bb544 && \\
  tools/kv_bench_ab.py /tmp/old/cl cl -- --rounds 3 --calls 3 --only fp32,int8
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default="build/tools/attn-kv-bench")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args(argv)
    if len(a.dirs) < 2:
        ap.error("give at least two kernel directories")
    res = {}
    with tempfile.TemporaryDirectory() as work:

        def env_of(i, d):
            return dict(os.environ, CLATTN_KERNEL_DIR=os.path.abspath(d),
                        CLATTN_CACHE_DIR=os.path.join(work, f"cache-{i}"))

        # an untimed process per variant first: it builds the kernels
        for i, d in enumerate(a.dirs):
            subprocess.run([a.bench] + extra, env=env_of(i, d), capture_output=True)
        for p in range(a.processes):
            order = list(enumerate(a.dirs))
            if p % 2:
                order.reverse()
            for i, d in order:
                out = subprocess.run([a.bench] + extra, env=env_of(i, d),
                                     capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{d}: {a.bench} failed:\n{out.stderr}")
                for line in out.stdout.splitlines()[3:]:
                    m = re.match(r"(.+?)\s+([0-9.]+)\s+[0-9.]+\s+", line)
                    if m:
                        res.setdefault((m.group(1).strip(), i), []).append(float(m.group(2)))
            print(f"process {p + 1} of {a.processes} done", file=sys.stderr)
    names = []
    for n, _ in res:
        if n not in names:
            names.append(n)
    cols = range(len(a.dirs))
    print("K/V storage".ljust(22) + "".join(f"{'median ' + str(i):>10}" for i in cols) +
          "".join(f"{'best ' + str(i):>9}" for i in cols) + "   0/i median, best")
    for n in names:
        med = [statistics.median(res[(n, i)]) for i in cols]
        best = [min(res[(n, i)]) for i in cols]
        ratios = " ".join(f"{med[0] / med[i]:.2f},{best[0] / best[i]:.2f}" for i in cols if i)
        print(n.ljust(22) + "".join(f"{m:10.3f}" for m in med) +
              "".join(f"{b:9.3f}" for b in best) + "   " + ratios)


if __name__ == "__main__":
    main()
