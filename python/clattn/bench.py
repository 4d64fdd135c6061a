"""Times clattn against torch.nn.functional.scaled_dot_product_attention on
the same CPU with the same thread count.

    python -m clattn.bench                          # P1 P2 C1 G1 D1, float32
    python -m clattn.bench --shapes P1 "B1 H8 Sq128 Skv128 D64 causal"
    python -m clattn.bench --copy                   # copying vs zero-copy

Each shape is first checked (max abs difference against torch), then timed
in interleaved rounds: every round runs --calls calls of each contender in
turn, and the median of the rounds' per-call times is reported. A shape is
one of the names P1 P2 C1 G1 D1 (SHAPES below) or text such as
"B2 H32 Hkv8 Sq1 Skv4096 D128 causal" (S sets Sq and Skv; Hkv defaults to
H; causal is PyTorch's is_causal, top-left).
"""
import argparse
import ctypes
import os
import re
import statistics
import time

import torch

from ._context import Context, _cl_scalar
from ._sdpa import scaled_dot_product_attention as clattn_sdpa

_CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002

SHAPES = {
    "P1": "B1 H8 S1024 D64",
    "P2": "B1 H8 S2048 D128 causal",
    "C1": "B2 H8 Sq256 Skv1024 D64",
    "G1": "B1 H32 Hkv8 S512 D128 causal",
    "D1": "B4 H32 Hkv8 Sq1 Skv4096 D128",
}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_shape(text):
    """{'name', B, H, Hkv, Sq, Skv, D, causal} from a name or shape text."""
    name = text.strip().upper() if text.strip().upper() in SHAPES else "-"
    spec = SHAPES.get(name, text)
    s = {"name": name, "spec": " ".join(spec.split()), "causal": False}
    for tok in spec.split():
        m = re.fullmatch(r"(B|H|Hkv|S|Sq|Skv|D)(\d+)", tok)
        if tok == "causal":
            s["causal"] = True
        elif m and m.group(1) == "S":
            s["Sq"] = s["Skv"] = int(m.group(2))
        elif m:
            s[m.group(1)] = int(m.group(2))
        else:
            raise SystemExit(f"shape {text!r}: cannot read {tok!r} (expected B, H, Hkv, S, Sq, "
                             "Skv, D followed by a number, or 'causal')")
    s.setdefault("Hkv", s.get("H"))
    missing = [k for k in ("B", "H", "Sq", "Skv", "D") if k not in s]
    if missing:
        raise SystemExit(f"shape {text!r}: missing {', '.join(missing)}")
    return s


def make_inputs(s, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(s["B"], s["H"], s["Sq"], s["D"], generator=g).to(dtype)
    k = torch.randn(s["B"], s["Hkv"], s["Skv"], s["D"], generator=g).to(dtype)
    v = torch.randn(s["B"], s["Hkv"], s["Skv"], s["D"], generator=g).to(dtype)
    return q, k, v


def contenders(s, q, k, v, contexts):
    """{label: zero-argument callable} for each label of contexts: torch's
    SDPA where the context is None, else clattn on that context."""
    kw = dict(is_causal=s["causal"], enable_gqa=s["H"] != s["Hkv"])

    def one(ctx):
        if ctx is None:
            return lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, **kw)
        return lambda: clattn_sdpa(q, k, v, context=ctx, **kw)
    return {label: one(ctx) for label, ctx in contexts.items()}


def time_rounds(fns, rounds, calls):
    """Median over rounds of the per-call ms of each function; each round
    runs every function in turn, so drift on a shared machine hits all alike."""
    samples = {label: [] for label in fns}
    for _ in range(rounds):
        for label, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[label].append((time.perf_counter() - t0) * 1e3 / calls)
    return {label: statistics.median(ms) for label, ms in samples.items()}


def run_shape(s, dtype, contexts, args):
    """Checks every clattn contender against torch's SDPA, then times them;
    returns (ms, max diff). The check compiles the kernels; one more untimed
    round lets one-off work of the first calls finish before the clock runs."""
    q, k, v = make_inputs(s, dtype)
    ref = contenders(s, q, k, v, {"torch": None})["torch"]().float()
    fns = contenders(s, q, k, v, contexts)
    diff = max((fns[label]().float() - ref).abs().max().item()
               for label, ctx in contexts.items() if ctx is not None)
    time_rounds(fns, 1, 1)
    return time_rounds(fns, args.rounds, args.calls), diff


def cpu_class():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    if " avx512f" in flags:
        return "avx512f present"
    return "AVX2 only" if " avx2" in flags else "no AVX2"


def report(shapes, dtype, contexts, args, ratio_of):
    """One line per shape: each contender's ms, the largest difference of a
    clattn output from torch's, and ratio_of[0]'s time over ratio_of[1]'s."""
    labels = list(contexts)
    print(f"{'shape':<5} {'spec':<32} " + " ".join(f"{lb + ' ms':>12}" for lb in labels) +
          f" {'max|diff|':>9} {ratio_of[0] + '/' + ratio_of[1]:>16}")
    for s in shapes:
        ms, diff = run_shape(s, dtype, contexts, args)
        ratio = ms[ratio_of[0]] / ms[ratio_of[1]]
        print(f"{s['name']:<5} {s['spec']:<32} " + " ".join(f"{ms[lb]:>12.3f}" for lb in labels) +
              f" {diff:>9.2e} {ratio:>16.2f}", flush=True)


def pin_pocl_threads():
    """Sets POCL_AFFINITY=1 (PoCL's worker thread i on CPU i) unless the
    caller set it or this process may not run on every CPU, and says which.
    Unpinned, about one process in ten on our 2-vCPU hosts ran every kernel
    1.6-1.8x slower for its whole life (BENCHMARKS.md, 2026-12-04); the C
    timing commands do the same. It must run before PoCL's platform loads."""
    set_by_caller = os.environ.get("POCL_AFFINITY", "")
    if set_by_caller:
        return ("PoCL threads pinned (POCL_AFFINITY=1, as set by the caller)"
                if set_by_caller.startswith("1")
                else "PoCL threads not pinned (POCL_AFFINITY as set by the caller)")
    n = os.cpu_count() or 0
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = set()
    if n <= 0 or not set(range(n)) <= allowed:
        return "PoCL threads not pinned (this process may not run on every CPU)"
    os.environ["POCL_AFFINITY"] = "1"
    return "PoCL threads pinned (POCL_AFFINITY=1 set by this tool; POCL_AFFINITY=0 to not pin)"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m clattn.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES),
                    help="names (P1 P2 C1 G1 D1) or shape texts; default: all five names")
    ap.add_argument("--dtype", choices=list(_DTYPES), default="float32")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--calls", type=int, default=3, help="calls per round (default 3)")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch.set_num_threads and PoCL's thread count (default 2)")
    ap.add_argument("--copy", action="store_true",
                    help="time clattn with Context(zero_copy=False) vs zero_copy=True instead")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.calls < 1 or args.threads < 1:
        ap.error("--rounds, --calls and --threads must be positive")
    torch.set_num_threads(args.threads)
    # PoCL's CPU device reads its thread count once, when the platform loads
    os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", str(args.threads))
    os.environ.setdefault("POCL_CPU_MAX_CU_NUM", str(args.threads))
    pinning = pin_pocl_threads()
    shapes = [parse_shape(t) for t in args.shapes]
    if args.copy:
        contexts = {"copy": Context(zero_copy=False), "zero-copy": Context(zero_copy=True)}
        ratio_of = ("copy", "zero-copy")
    else:
        contexts = {"torch": None, "clattn": Context()}
        ratio_of = ("torch", "clattn")
    ctx = next(c for c in contexts.values() if c is not None)
    units = _cl_scalar(ctx._device, _CL_DEVICE_MAX_COMPUTE_UNITS, ctypes.c_uint32)
    print(f"device: {ctx.device_name} ({units} compute units); host CPU: {cpu_class()}; "
          f"torch threads: {torch.get_num_threads()}; dtype {args.dtype}; "
          f"{args.rounds} rounds x {args.calls} calls, medians")
    print(pinning)
    if not args.copy:
        print(f"clattn context: zero_copy={ctx.zero_copy}")
    report(shapes, _DTYPES[args.dtype], contexts, args, ratio_of)


if __name__ == "__main__":
    main()
