"""Shared set-up: one clattn program/tuning cache for the whole run, kept
under the build tree (compiles on PoCL take seconds; sharing them keeps the
suite short), unless CLATTN_CACHE_DIR is set already."""
import os
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parents[2]
os.environ.setdefault("CLATTN_CACHE_DIR", str(_ROOT / "build-python" / "test-cache"))
pathlib.Path(os.environ["CLATTN_CACHE_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
os.environ.setdefault("OMP_NUM_THREADS", "2")

# The suite compares against torch: without it, fail rather than skip.
import torch  # noqa: E402

torch.manual_seed(0)
