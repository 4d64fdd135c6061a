"""Devices, contexts, tuning, caches, logging and attention weights from
Python."""
import logging
import os

import numpy as np
import pytest
import torch

import clattn


def test_devices_and_choice():
    devs = clattn.devices()
    assert devs, "no OpenCL device"
    d = devs[0]
    assert {"platform", "device", "name", "type", "host_unified_memory"} <= set(d)
    for choice in (0, (d["platform"], d["device"]), d, d["name"][:6]):
        with clattn.Context(device=choice, cache_dir="off") as ctx:
            assert ctx.device_name == d["name"]


def test_zero_copy_and_copy_agree():
    q, k, v = torch.randn(2, 4, 33, 64), torch.randn(2, 4, 40, 64), torch.randn(2, 4, 40, 64)
    outs = []
    for zc in (True, False):
        with clattn.Context(zero_copy=zc) as ctx:
            assert ctx.zero_copy is zc
            outs.append(clattn.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                            context=ctx))
    assert torch.equal(outs[0], outs[1])
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (outs[0] - ref).abs().max() < 1e-5


def test_default_zero_copy_follows_device():
    with clattn.Context(cache_dir="off") as ctx:
        assert ctx.zero_copy == clattn.devices()[0]["host_unified_memory"]


def test_log_routed_to_logging(tmp_path, caplog):
    # a cache root others may write to is refused with a warning, which must
    # reach Python's logging under "clattn"
    bad = tmp_path / "shared"
    bad.mkdir()
    os.chmod(bad, 0o777)
    with caplog.at_level(logging.DEBUG, logger="clattn"):
        with clattn.Context(cache_dir=str(bad)) as ctx:
            assert ctx.stats()["disk_cache_enabled"] == 0
    msgs = [r for r in caplog.records if r.name == "clattn"]
    assert any(r.levelno == logging.WARNING for r in msgs), [r.getMessage() for r in msgs]


def test_tune_export_import_clear(tmp_path):
    shape = dict(batch=1, heads=2, seq_q=64, seq_kv=64, head_dim=32, dtype="float32",
                 causal="bottom_right")
    with clattn.Context(cache_dir=str(tmp_path / "cache")) as ctx:
        seen = []
        results = ctx.tune([shape], budget=8, progress=seen.append)
        assert results and all(r["median_ms"] > 0 for r in results)
        assert seen and seen[0]["unit"]
        entries = ctx.tuning_entries()
        assert entries and entries[0]["head_dim"] == 32
        ctx.export_tuning(tmp_path / "db.txt")
        assert (tmp_path / "db.txt").stat().st_size > 0
        q, k, v = (torch.randn(1, 2, 64, 32) for _ in range(3))
        out = clattn.scaled_dot_product_attention(q, k, v, causal="bottom_right", context=ctx)
        assert ctx.stats()["programs_built"] + ctx.stats()["programs_loaded"] > 0
    with clattn.Context(cache_dir=str(tmp_path / "other")) as ctx2:
        assert ctx2.tuning_entries() == []
        ctx2.import_tuning(tmp_path / "db.txt")
        assert len(ctx2.tuning_entries()) == len(entries)
        out2 = clattn.scaled_dot_product_attention(q, k, v, causal="bottom_right", context=ctx2)
    assert (out - out2).abs().max() < 1e-5
    with clattn.Context(cache_dir=str(tmp_path / "cache")) as ctx3:
        assert len(ctx3.tuning_entries()) == len(entries)
        ctx3.clear_cache()
    with clattn.Context(cache_dir=str(tmp_path / "cache")) as ctx4:
        assert ctx4.tuning_entries() == []


@pytest.mark.parametrize("as_numpy", [False, True])
def test_attention_weights(as_numpy):
    q, k = torch.randn(2, 3, 5, 16), torch.randn(2, 3, 9, 16)
    mask = torch.rand(2, 1, 5, 9) > 0.3
    mask[..., 0] = True
    args = (q.numpy(), k.numpy()) if as_numpy else (q, k)
    m = mask.numpy() if as_numpy else mask
    w = clattn.attention_weights(*args, attn_mask=m)
    assert isinstance(w, np.ndarray if as_numpy else torch.Tensor)
    w = torch.as_tensor(w)
    s = (q.double() @ k.double().transpose(-1, -2)) / 4.0
    ref = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
    assert w.shape == (2, 3, 5, 9)
    assert (w.double() - ref).abs().max() < 2e-6


def test_alibi_slopes():
    s = clattn.alibi_slopes(8)
    assert np.allclose(s, [2.0 ** (-(h + 1)) for h in range(8)])
    with pytest.raises(ValueError, match="heads"):
        clattn.alibi_slopes(0)
