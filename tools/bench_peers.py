#!/usr/bin/env python3
"""clattn side by side with PyTorch's CPU SDPA and ggml's CPU flash attention.

A benchmark, not a test: it prints numbers and never fails on them. Run it
through tools/bench_peers.sh, which makes the virtual environment (PyTorch,
ggml-python) and finds attn-tune; this file only measures and reports.

How each one is timed (all fp32, the same five shapes):
  clattn   `attn-tune bench --shapes ... --no-baselines --no-first-call
           --repeat N --json`, one process per round; its AUTO variant's
           median is read from the JSON (device buffers, enqueue to
           completion, PoCL on all the host's cores). attn-tune also times its
           other variants (untuned, each path forced); they are not reported
           here and only make a round longer. The host sgemm rate comes from
           the first round's attn-tune (OpenBLAS sgemm 2048^3) and is handed
           to the later rounds with --sgemm-gflops, or from --sgemm-gflops.
  PyTorch  torch.nn.functional.scaled_dot_product_attention on contiguous
           [batch, heads, seq, dim] CPU tensors under inference_mode,
           torch.set_num_threads(--threads); GQA shapes with enable_gqa=True
           (it reaches the CPU flash kernel without copying K and V).
  ggml     ggml_flash_attn_ext on F32 Q, K, V (ggml's [dim, seq, heads,
           batch] is the same memory as [batch, heads, seq, dim]), a causal
           F16 mask where needed, one graph per shape planned once with a
           threadpool of --threads and computed with ggml_graph_compute.
Each round runs every shape on each of the three in turn (one untimed
warm-up call, then --calls timed calls, perf_counter around each call); the
order of the three rotates from round to round so that none always follows
another. A round's figure is its median; the figure printed is the median of
the rounds' figures (attn-tune only reports a median per run, so the peers
get the same treatment). "vs" ratios are peer time / clattn time: above 1
means clattn is faster.
"""

import argparse
import ctypes
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

# name: (batch, heads, kv heads, query rows, key rows, head dim, causal); the
# same as attn-tune's named shapes, checked against its JSON at run time.
SHAPES = {
    "P1": (1, 8, 8, 1024, 1024, 64, False),
    "P2": (1, 8, 8, 2048, 2048, 128, True),
    "C1": (2, 8, 8, 256, 1024, 64, False),
    "G1": (1, 32, 8, 512, 512, 128, True),
    "D1": (4, 32, 8, 1, 4096, 128, False),
}


def shape_text(s):
    """The shape as attn-tune writes it, e.g. 'B1 H32 Hkv8 S512 D128 causal'."""
    b, h, hkv, sq, skv, d, causal = s
    t = f"B{b} H{h}"
    if hkv != h:
        t += f" Hkv{hkv}"
    t += f" S{sq}" if sq == skv else f" Sq{sq} Skv{skv}"
    t += f" D{d}"
    return t + (" causal" if causal else "")


def make_inputs(s, seed):
    import numpy as np

    b, h, hkv, sq, skv, d, causal = s
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, h, sq, d), dtype=np.float32)
    k = rng.standard_normal((b, hkv, skv, d), dtype=np.float32)
    v = rng.standard_normal((b, hkv, skv, d), dtype=np.float32)
    return q, k, v


def time_calls(fn, calls):
    """One untimed warm-up, then `calls` timed calls: (wall ms list, cpu ms list)."""
    fn()
    wall, cpu = [], []
    for _ in range(calls):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        c1 = time.process_time()
        wall.append((t1 - t0) * 1e3)
        cpu.append((c1 - c0) * 1e3)
    return wall, cpu


class TorchPeer:
    name = "PyTorch"

    def __init__(self, threads):
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        cap = ""
        if hasattr(torch.backends, "cpu"):
            cap = ", CPU capability " + torch.backends.cpu.get_cpu_capability()
        self.version = f"torch {torch.__version__}{cap}, {torch.get_num_threads()} threads"
        self.cases = {}

    def prepare(self, name, s, inputs):
        q, k, v = (self.torch.from_numpy(x) for x in inputs)
        self.cases[name] = (q, k, v, s[6], s[1] != s[2])

    def run(self, name, calls):
        q, k, v, causal, gqa = self.cases[name]
        sdpa = self.torch.nn.functional.scaled_dot_product_attention

        def call():
            sdpa(q, k, v, is_causal=causal, enable_gqa=gqa)

        with self.torch.inference_mode():
            return time_calls(call, calls)

    def output(self, name):
        q, k, v, causal, gqa = self.cases[name]
        with self.torch.inference_mode():
            o = self.torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=causal, enable_gqa=gqa)
        return o.numpy()


class GgmlPeer:
    name = "ggml"

    def __init__(self, threads):
        import ggml

        self.g = ggml
        self.threads = threads
        for fn in ("ggml_flash_attn_ext", "ggml_graph_plan", "ggml_graph_compute",
                   "ggml_threadpool_new"):
            if not hasattr(ggml, fn):
                raise RuntimeError(f"ggml-python {ggml.__version__} has no {fn}")
        self.version = (f"ggml {ggml.ggml_version().decode()} "
                        f"(ggml-python {ggml.__version__}), {threads} threads")
        params = ggml.ggml_threadpool_params_default(threads)
        self.pool = ggml.ggml_threadpool_new(ctypes.byref(params))
        if not self.pool:
            raise RuntimeError("ggml_threadpool_new failed")
        self.cases = {}

    def prepare(self, name, s, inputs):
        import numpy as np

        g = self.g
        b, h, hkv, sq, skv, d, causal = s
        q, k, v = inputs
        mask = None
        if causal:
            # ggml's mask is [n_kv, n_batch] F16, added to the scores: query
            # row i sees keys 0..i (top-left aligned, as PyTorch's is_causal).
            mask = np.triu(np.full((sq, skv), -np.inf, dtype=np.float16), 1)
            mask = mask.reshape(1, 1, sq, skv)
        need = sum(x.nbytes for x in inputs) + b * h * sq * d * 4
        need += mask.nbytes if mask is not None else 0
        # Room for the tensor and graph headers next to the data.
        params = g.ggml_init_params(mem_size=need + (16 << 20), mem_buffer=None,
                                    no_alloc=False)
        ctx = g.ggml_init(params)
        if not ctx:
            raise RuntimeError(f"ggml_init failed for {name}")

        def tensor(arr, typ):
            t = g.ggml_new_tensor_4d(ctx, typ, *reversed(arr.shape))
            ctypes.memmove(g.ggml_get_data(t), arr.ctypes.data, arr.nbytes)
            return t

        tq = tensor(q, g.GGML_TYPE_F32)
        tk = tensor(k, g.GGML_TYPE_F32)
        tv = tensor(v, g.GGML_TYPE_F32)
        tm = tensor(mask, g.GGML_TYPE_F16) if mask is not None else None
        out = g.ggml_flash_attn_ext(ctx, tq, tk, tv, tm, 1.0 / math.sqrt(d), 0.0, 0.0)
        g.ggml_flash_attn_ext_set_prec(out, g.GGML_PREC_F32)
        graph = g.ggml_new_graph(ctx)
        g.ggml_build_forward_expand(graph, out)
        plan = g.ggml_graph_plan(graph, self.threads, self.pool)
        work = np.empty(max(plan.work_size, 1), dtype=np.uint8)
        plan.work_data = work.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        self.cases[name] = (ctx, graph, plan, work, out, (b, sq, h, d))

    def run(self, name, calls):
        g = self.g
        ctx, graph, plan, work, out, _ = self.cases[name]
        plan_ref = ctypes.byref(plan)
        status = []

        def call():
            status.append(g.ggml_graph_compute(graph, plan_ref))

        times = time_calls(call, calls)
        if any(st != 0 for st in status):
            raise RuntimeError(f"ggml_graph_compute returned {status}")
        return times

    def output(self, name):
        import numpy as np

        ctx, graph, plan, work, out, shape = self.cases[name]
        self.g.ggml_graph_compute(graph, ctypes.byref(plan))
        ptr = ctypes.cast(self.g.ggml_get_data(out), ctypes.POINTER(ctypes.c_float))
        # The result is [dim, heads, seq, batch]: permuted against the inputs.
        return np.ctypeslib.as_array(ptr, shape=shape).transpose(0, 2, 1, 3).copy()


class ClattnPeer:
    name = "clattn AUTO"

    def __init__(self, attn_tune, device, sgemm):
        self.attn_tune = attn_tune
        self.device = device
        self.sgemm = sgemm
        self.info = None

    def run_round(self, names, calls):
        cmd = [self.attn_tune, "bench", "--shapes", ",".join(names), "--no-baselines",
               "--no-first-call", "--repeat", str(calls), "--json"]
        if self.device:
            cmd += ["--device", self.device]
        if self.sgemm:
            cmd += ["--sgemm-gflops", f"{self.sgemm:.6g}"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
        doc = json.loads(p.stdout)
        if self.info is None:
            self.info = doc
            rate = doc.get("host_sgemm", {}).get("gflops")
            if not self.sgemm and rate:
                self.sgemm = rate
        res = {}
        for sh in doc["shapes"]:
            auto = next((x for x in sh["variants"] if x["variant"] == "AUTO"), None)
            if auto is None or auto["status"] != "ok":
                msg = auto["message"] if auto else sh.get("message", "no AUTO")
                res[sh["name"]] = {"error": msg or "failed"}
                continue
            res[sh["name"]] = {"median": auto["median_ms"], "cpu": auto["cpu_ms"],
                               "gflop": sh["gflop"], "shape": sh["shape"],
                               "memory_bound": bool(sh.get("memory_bound"))}
        return res


def rel_l2(a, b):
    import numpy as np

    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_avg():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def fmt_ms(x):
    if x is None:
        return "n/a"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def fmt_ratio(num, den):
    if num is None or den is None:
        return "n/a"
    return f"{num / den:.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attn-tune", required=True, help="path of the attn-tune program")
    ap.add_argument("--device", default="", help="attn-tune's --device P:D")
    ap.add_argument("--shapes", default="P1,P2,C1,G1,D1",
                    help="comma-separated names from: " + ",".join(SHAPES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=7, help="timed calls per round")
    ap.add_argument("--threads", type=int, default=2, help="threads of PyTorch and ggml")
    ap.add_argument("--sgemm-gflops", type=float, default=0.0,
                    help="host sgemm rate to quote (default: attn-tune measures it)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-ggml", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = ap.parse_args()

    names = [n.strip() for n in args.shapes.split(",") if n.strip()]
    for n in names:
        if n not in SHAPES:
            ap.error(f"unknown shape {n!r}; known: {', '.join(SHAPES)}")
    if args.rounds < 1 or args.calls < 1 or args.threads < 1:
        ap.error("--rounds, --calls and --threads must be at least 1")

    load_start = load_avg()
    clattn = ClattnPeer(args.attn_tune, args.device, args.sgemm_gflops)
    peers = [clattn]
    missing = {}
    for cls, off in ((TorchPeer, args.no_torch), (GgmlPeer, args.no_ggml)):
        if off:
            missing[cls.name] = "not asked for"
            continue
        try:
            peers.append(cls(args.threads))
        except Exception as e:  # an unavailable peer is reported, not fatal
            missing[cls.name] = f"{type(e).__name__}: {e}"

    inputs = {}
    for peer in list(peers[1:]):
        try:
            for n in names:
                if n not in inputs:
                    inputs[n] = make_inputs(SHAPES[n], seed=14)
                peer.prepare(n, SHAPES[n], inputs[n])
        except Exception as e:
            missing[peer.name] = f"{type(e).__name__}: {e}"
            peers.remove(peer)

    # results[peer][shape] = list of per-round {"median", "cpu"}
    results = {p.name: {n: [] for n in names} for p in peers}
    errors = {}
    for r in range(args.rounds):
        order = peers[r % len(peers):] + peers[:r % len(peers)]
        print(f"round {r + 1}/{args.rounds}: {', '.join(p.name for p in order)} "
              f"(load {load_avg()})", file=sys.stderr, flush=True)
        for peer in order:
            if peer is clattn:
                try:
                    got = clattn.run_round(names, args.calls)
                except Exception as e:
                    errors[peer.name] = str(e)
                    continue
                for n in names:
                    x = got.get(n, {"error": "not in attn-tune's output"})
                    if "error" in x:
                        errors[f"{peer.name} {n}"] = x["error"]
                        continue
                    if x["shape"] != shape_text(SHAPES[n]):
                        errors[f"{peer.name} {n}"] = (f"attn-tune's {n} is {x['shape']}, "
                                                      f"expected {shape_text(SHAPES[n])}")
                    results[peer.name][n].append(x)
                continue
            for n in names:
                try:
                    wall, cpu = peer.run(n, args.calls)
                except Exception as e:
                    errors[f"{peer.name} {n}"] = str(e)
                    continue
                results[peer.name][n].append({"median": statistics.median(wall),
                                              "cpu": statistics.median(cpu),
                                              "calls": wall})
    load_end = load_avg()

    def med(peer, n, key="median"):
        runs = results.get(peer, {}).get(n) or []
        return statistics.median(x[key] for x in runs) if runs else None

    # ggml's output against PyTorch's on the same inputs: a sanity check on
    # the ggml setup (layout, mask, scale), not a pass/fail test.
    checks = {}
    have = {p.name: p for p in peers}
    if "PyTorch" in have and "ggml" in have:
        for n in names:
            try:
                checks[n] = rel_l2(have["ggml"].output(n), have["PyTorch"].output(n))
            except Exception as e:
                checks[n] = f"{type(e).__name__}: {e}"

    info = clattn.info or {}
    print(f"clattn against PyTorch SDPA and ggml flash attention: fp32, "
          f"{args.rounds} rounds x {args.calls} calls, medians of the round medians")
    print(f"  clattn   {info.get('clattn_version', '?')} through {args.attn_tune}; "
          f"device {info.get('device', '?')}; tuning entries {info.get('tuning_entries', '?')}")
    for p in peers[1:]:
        print(f"  {p.name:<8} {p.version}")
    for name, why in missing.items():
        print(f"  {name:<8} unavailable: {why}")
    sg = clattn.sgemm
    sgemm_note = info.get("host_sgemm", {}).get("note", "")
    print(f"  host sgemm {sg:.1f} GFLOP/s ({sgemm_note or 'as given'})" if sg
          else "  host sgemm n/a")
    print(f"  host {cpu_model()}, {os.cpu_count()} CPUs; "
          f"load average (1, 5, 15 min) {load_start} at start, {load_end} at end")
    print()
    head = (f"{'shape':<36} {'clattn':>8} {'PyTorch':>8} {'ggml':>8} "
            f"{'vs PyTorch':>10} {'vs ggml':>8} {'%sgemm':>7}")
    print("median ms per call; vs = peer time / clattn time (>1: clattn faster)")
    print(head)
    table = {}
    any_bound = False
    for n in names:
        c, t, g = med("clattn AUTO", n), med("PyTorch", n), med("ggml", n)
        pct, mark = None, ""
        if c and sg:
            first = results["clattn AUTO"][n][0]
            pct = 100.0 * first["gflop"] / (c / 1e3) / sg
            mark = "*" if first["memory_bound"] else ""
            any_bound = any_bound or bool(mark)
        table[n] = {"clattn_ms": c, "torch_ms": t, "ggml_ms": g,
                    "vs_torch": t / c if c and t else None,
                    "vs_ggml": g / c if c and g else None, "sgemm_pct": pct}
        label = f"{n} {shape_text(SHAPES[n])}"
        print(f"{label:<36} {fmt_ms(c):>8} {fmt_ms(t):>8} {fmt_ms(g):>8} "
              f"{fmt_ratio(t, c):>10} {fmt_ratio(g, c):>8} "
              f"{(f'{pct:.0f}%{mark}' if pct is not None else 'n/a'):>7}")
    if any_bound:
        print("* memory-bound (attn-tune's test: under 16 FLOPs per byte of Q, K, V, O); "
              "its GB/s says more than %sgemm")
    print()
    print("spread: each round's median ms (clattn | PyTorch | ggml); "
          "CPU ms per call, all threads (median)")
    for n in names:
        parts = []
        for p in ("clattn AUTO", "PyTorch", "ggml"):
            runs = results.get(p, {}).get(n) or []
            parts.append(" ".join(fmt_ms(x["median"]) for x in runs) or "n/a")
        cpus = " / ".join(fmt_ms(med(p, n, "cpu")) for p in ("clattn AUTO", "PyTorch", "ggml"))
        print(f"  {n:<3} {' | '.join(parts)};  cpu {cpus}")
    if checks:
        print()
        print("ggml's output against PyTorch's (relative L2): " + ", ".join(
            f"{n} {v:.1e}" if isinstance(v, float) else f"{n} {v}" for n, v in checks.items()))
    for what, msg in errors.items():
        print(f"error: {what}: {msg}")

    if args.json:
        doc = {"rounds": args.rounds, "calls": args.calls, "threads": args.threads,
               "sgemm_gflops": sg, "load_start": load_start, "load_end": load_end,
               "clattn": {k: info.get(k) for k in ("clattn_version", "device",
                                                   "tuning_entries", "host_sgemm")},
               "peers": {p.name: getattr(p, "version", "") for p in peers[1:]},
               "unavailable": missing, "table": table, "rounds_data": results,
               "ggml_vs_torch_rel_l2": checks, "errors": errors}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
