"""python -m clattn.bench runs end to end on a tiny shape, checks clattn
against torch before timing, and says whether it pinned PoCL's threads:
itself when the caller left POCL_AFFINITY unset, never over the caller's
choice. Each run is a fresh process because PoCL reads the variable once,
when its platform loads."""
import os
import re
import subprocess
import sys


def _bench(env_extra):
    env = {k: v for k, v in os.environ.items() if k != "POCL_AFFINITY"}
    env.update(env_extra)
    p = subprocess.run([sys.executable, "-m", "clattn.bench", "--shapes", "B1 H2 Sq5 Skv37 D16",
                        "--rounds", "1", "--calls", "1"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_bench_pins_unless_told():
    out = _bench({})
    own = set(range(os.cpu_count() or 1)) <= os.sched_getaffinity(0)
    expected = ("PoCL threads pinned (POCL_AFFINITY=1 set by this tool" if own
                else "PoCL threads not pinned (this process may not run on every CPU)")
    assert expected in out, out
    row = next(line for line in out.splitlines() if "B1 H2 Sq5 Skv37 D16" in line)
    # torch ms, clattn ms, max|diff|, ratio: the check ran and agreed
    diff = float(re.findall(r"[0-9.]+e[-+][0-9]+|[0-9.]+", row.split("D16", 1)[1])[2])
    assert diff < 1e-5, row


def test_bench_keeps_the_callers_choice():
    assert "PoCL threads not pinned (POCL_AFFINITY as set by the caller)" in \
        _bench({"POCL_AFFINITY": "0"})
