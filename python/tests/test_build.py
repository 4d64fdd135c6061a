"""The package builds and works without CLBlast too: a wheel built with
CLATTN_WITH_CLBLAST=OFF holds a library that does not link CLBlast and runs
an attention correctly."""
import os
import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_wheel_without_clblast(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "wheel"),
                    "-C", "cmake.define.CLATTN_WITH_CLBLAST=OFF",
                    "-C", f"build-dir={tmp_path / 'build'}"], check=True)
    wheel = next((tmp_path / "wheel").glob("clattn-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extract("clattn/libclattn.so", tmp_path / "x")
    lib = tmp_path / "x" / "clattn" / "libclattn.so"
    deps = subprocess.run(["ldd", str(lib)], check=True, capture_output=True, text=True).stdout
    assert "libOpenCL" in deps and "clblast" not in deps.lower(), deps
    code = ("import torch, clattn; q = torch.randn(1, 2, 9, 16); "
            "o = clattn.scaled_dot_product_attention(q, q, q, is_causal=True); "
            "r = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True); "
            "assert (o - r).abs().max() < 1e-5; print(clattn._native.lib._name)")
    env = dict(os.environ, CLATTN_LIBRARY=str(lib))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert str(lib) in out
