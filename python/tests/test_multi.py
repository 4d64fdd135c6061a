"""One attention cut over several contexts (clattn_multi_forward_host) from
Python: context=[ctx, ...] gives what one context gives, on every cut."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import clattn


@pytest.fixture(scope="module")
def ctxs():
    # two contexts on the default device (a host with a GPU and a CPU would
    # give one of each)
    a, b = clattn.Context(), clattn.Context()
    yield [a, b]
    a.close()
    b.close()


CASES = [
    # (B, H, Hkv, L, S, E, kwargs, split)
    (2, 4, 4, 37, 37, 32, dict(is_causal=True), "rows"),
    (1, 8, 2, 45, 60, 64, dict(enable_gqa=True), "auto"),
    (2, 4, 4, 1, 700, 32, dict(causal="bottom_right"), "keys"),
    (3, 2, 2, 20, 33, 16, dict(), "batch"),
]


@pytest.mark.parametrize("B,H,Hkv,L,S,E,kw,split", CASES)
def test_multi_matches_one_context(ctxs, B, H, Hkv, L, S, E, kw, split):
    g = torch.Generator().manual_seed(L * 1000 + S)
    q = torch.randn(B, H, L, E, generator=g)
    k = torch.randn(B, Hkv, S, E, generator=g)
    v = torch.randn(B, Hkv, S, E, generator=g)
    one, lse1 = clattn.scaled_dot_product_attention(q, k, v, context=ctxs[0], return_lse=True,
                                                    **kw)
    many, lse2 = clattn.scaled_dot_product_attention(q, k, v, context=ctxs, split=split,
                                                     return_lse=True, **kw)
    assert (many - one).abs().max() < 1e-5
    assert (lse2 - lse1).abs().max() < 1e-4
    if "causal" not in kw:
        ref = F.scaled_dot_product_attention(q, k, v, **kw)
        assert (many - ref).abs().max() < 1e-5


def test_multi_with_a_padding_mask_and_fp16(ctxs):
    g = torch.Generator().manual_seed(7)
    q = torch.randn(2, 4, 30, 64, generator=g).half()
    k = torch.randn(2, 4, 50, 64, generator=g).half()
    v = torch.randn(2, 4, 50, 64, generator=g).half()
    mask = torch.ones(2, 1, 1, 50, dtype=torch.bool)
    mask[1, ..., 41:] = False
    got = clattn.scaled_dot_product_attention(q, k, v, attn_mask=mask, context=ctxs,
                                              split="rows")
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    assert got.dtype == torch.float16
    assert (got.float() - ref).abs().max() < 2e-3


def test_multi_numpy_and_errors(ctxs):
    rng = np.random.default_rng(3)
    q = rng.standard_normal((1, 2, 9, 8), dtype=np.float32)
    k = rng.standard_normal((1, 2, 12, 8), dtype=np.float32)
    v = rng.standard_normal((1, 2, 12, 8), dtype=np.float32)
    got = clattn.scaled_dot_product_attention(q, k, v, context=ctxs)
    one = clattn.scaled_dot_product_attention(q, k, v, context=ctxs[0])
    assert isinstance(got, np.ndarray) and np.abs(got - one).max() < 1e-6
    with pytest.raises(ValueError, match="split"):
        clattn.scaled_dot_product_attention(q, k, v, context=ctxs, split="heads")
    with pytest.raises(ValueError, match="empty"):
        clattn.scaled_dot_product_attention(q, k, v, context=[])
    with pytest.raises(clattn.InvalidArgument, match="same context"):
        clattn.scaled_dot_product_attention(q, k, v, context=[ctxs[0], ctxs[0]])
