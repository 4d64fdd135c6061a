"""clattn.scaled_dot_product_attention against torch's own SDPA (in
float64 as the reference) on PyTorch's edge cases. Every output the package
allocates is NaN-filled first (the fixture below), so an element the
library leaves unwritten fails the finiteness check."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import clattn

@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    from clattn import _tensors as T
    make, make32 = T.empty_like_kind, T.empty_f32

    def nan_filled(*a):
        out = make(*a)
        out[...] = float("nan")
        return out

    def nan_filled32(*a):
        out = make32(*a)
        out[...] = float("nan")
        return out

    monkeypatch.setattr(T, "empty_like_kind", nan_filled)
    monkeypatch.setattr(T, "empty_f32", nan_filled32)


# per dtype: largest |err| allowed, relative to max|ref| (fp32 compute, one
# rounding to the storage type)
TOL = {torch.float32: 2e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}


def ref_sdpa(q, k, v, **kw):
    """torch's SDPA in float64 (its math path), the reference."""
    m = kw.pop("attn_mask", None)
    if m is not None and m.dtype != torch.bool:
        m = m.double()
    return F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=m,
                                          **kw)


def check(out, ref, dtype, what=""):
    assert out.dtype == dtype, what
    assert out.shape == ref.shape, what
    assert torch.isfinite(out).all(), f"{what}: non-finite output"
    scale = ref.abs().max().item() or 1.0
    err = (out.double() - ref).abs().max().item()
    assert err <= TOL[dtype] * scale + 1e-7, f"{what}: max |err| {err:.3g}, scale {scale:.3g}"


def rnd(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("causal", [False, True])
def test_plain_and_causal(dtype, causal):
    q, k, v = rnd(2, 3, 17, 40, dtype=dtype), rnd(2, 3, 23, 40, dtype=dtype), \
        rnd(2, 3, 23, 24, dtype=dtype)
    out = clattn.scaled_dot_product_attention(q, k, v, is_causal=causal)
    check(out, ref_sdpa(q, k, v, is_causal=causal).to(torch.float64), dtype,
          f"{dtype} causal={causal}")


def test_top_left_causal_more_keys_than_queries():
    # PyTorch's is_causal is top-left: query i sees keys j <= i even with S > L
    q, k, v = rnd(1, 2, 5, 16), rnd(1, 2, 12, 16), rnd(1, 2, 12, 16)
    check(clattn.scaled_dot_product_attention(q, k, v, is_causal=True),
          ref_sdpa(q, k, v, is_causal=True), torch.float32)


def test_bottom_right_causal_extension():
    q, k, v = rnd(1, 2, 5, 16), rnd(1, 2, 12, 16), rnd(1, 2, 12, 16)
    keep = torch.ones(5, 12, dtype=torch.bool).tril(diagonal=12 - 5)
    check(clattn.scaled_dot_product_attention(q, k, v, causal="bottom_right"),
          ref_sdpa(q, k, v, attn_mask=keep), torch.float32)


@pytest.mark.parametrize("shape", [(9, 13), (1, 13), (2, 1, 9, 13), (2, 3, 9, 13),
                                   (2, 1, 1, 13), (1, 3, 1, 13)])
def test_broadcast_bool_masks(shape):
    q, k, v = rnd(2, 3, 9, 32), rnd(2, 3, 13, 32), rnd(2, 3, 13, 32)
    mask = torch.rand(shape) > 0.3
    mask[..., 0] = True  # keep rows from being empty here (tested separately)
    check(clattn.scaled_dot_product_attention(q, k, v, attn_mask=mask),
          ref_sdpa(q, k, v, attn_mask=mask), torch.float32, str(shape))


@pytest.mark.parametrize("mdtype", [torch.float32, torch.float16, torch.bfloat16])
def test_float_masks_added(mdtype):
    q, k, v = rnd(2, 3, 9, 32), rnd(2, 3, 13, 32), rnd(2, 3, 13, 32)
    mask = torch.randn(2, 1, 9, 13).to(mdtype)
    mask[0, 0, 3, 5:] = float("-inf")
    check(clattn.scaled_dot_product_attention(q, k, v, attn_mask=mask),
          ref_sdpa(q, k, v, attn_mask=mask.float()), torch.float32)


def test_mask_broadcast_over_keys_is_expanded():
    # a mask of one key column broadcasts over all keys: copied, still right
    q, k, v = rnd(1, 2, 4, 8), rnd(1, 2, 6, 8), rnd(1, 2, 6, 8)
    mask = torch.randn(1, 2, 4, 1)
    check(clattn.scaled_dot_product_attention(q, k, v, attn_mask=mask),
          ref_sdpa(q, k, v, attn_mask=mask), torch.float32)


def test_all_masked_rows_are_zero():
    q, k, v = rnd(2, 2, 6, 16), rnd(2, 2, 7, 16), rnd(2, 2, 7, 16)
    mask = torch.rand(2, 2, 6, 7) > 0.5
    mask[0, 1, 2] = False
    mask[1, :, 4] = False
    out = clattn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref = ref_sdpa(q, k, v, attn_mask=mask)
    assert (out[0, 1, 2] == 0).all() and (out[1, :, 4] == 0).all()
    assert (ref[0, 1, 2] == 0).all(), "torch's convention changed"
    check(out, ref, torch.float32)
    fmask = torch.zeros(2, 2, 6, 7)
    fmask[1, 0, 3] = float("-inf")
    out = clattn.scaled_dot_product_attention(q, k, v, attn_mask=fmask)
    assert (out[1, 0, 3] == 0).all()
    check(out, ref_sdpa(q, k, v, attn_mask=fmask), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_gqa(dtype):
    q, k, v = rnd(2, 8, 11, 64, dtype=dtype), rnd(2, 2, 19, 64, dtype=dtype), \
        rnd(2, 2, 19, 64, dtype=dtype)
    out = clattn.scaled_dot_product_attention(q, k, v, enable_gqa=True, is_causal=True)
    check(out, ref_sdpa(q, k, v, enable_gqa=True, is_causal=True), dtype)


def test_strided_views_read_in_place():
    # [B, S, H, D] storage seen as [B, H, S, D]: clattn's strides, no copy
    qs, ks, vs = rnd(2, 10, 4, 32), rnd(2, 14, 4, 32), rnd(2, 14, 4, 32)
    q, k, v = qs.transpose(1, 2), ks.transpose(1, 2), vs.transpose(1, 2)
    assert not q.is_contiguous()
    from clattn._problem import Tensor4
    t = Tensor4(q, "query", 1)
    assert t.view.ptr == qs.data_ptr(), "the transposed view was copied"
    check(clattn.scaled_dot_product_attention(q, k, v, is_causal=True),
          ref_sdpa(q, k, v, is_causal=True), torch.float32)
    # slices with gaps (every other head, a narrowed head dim) and a packed QKV
    qkv = rnd(2, 9, 3, 4, 48)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    check(clattn.scaled_dot_product_attention(q, k, v), ref_sdpa(q, k, v), torch.float32)
    big = rnd(2, 8, 9, 40)
    q = big[:, ::2, :, :32]
    check(clattn.scaled_dot_product_attention(q, q, q), ref_sdpa(q, q, q), torch.float32)


def test_expanded_and_negative_strides():
    k = rnd(2, 1, 9, 16).expand(2, 4, 9, 16)  # zero head stride: copied
    q = rnd(2, 4, 5, 16)
    v = rnd(2, 4, 9, 16).flip(2)  # a negative stride
    check(clattn.scaled_dot_product_attention(q, k, v), ref_sdpa(q, k, v), torch.float32)


@pytest.mark.parametrize("nd", [2, 3, 5])
def test_other_ranks(nd):
    shape = {2: (), 3: (3,), 5: (2, 3, 2)}[nd]
    q, k, v = rnd(*shape, 7, 16), rnd(*shape, 9, 16), rnd(*shape, 9, 8)
    mask = torch.rand(*shape, 7, 9) > 0.2 if nd else None
    check(clattn.scaled_dot_product_attention(q, k, v, attn_mask=mask),
          ref_sdpa(q, k, v, attn_mask=mask), torch.float32, f"rank {nd}")


def test_scale_explicit_and_zero():
    q, k, v = rnd(1, 2, 5, 16), rnd(1, 2, 8, 16), rnd(1, 2, 8, 16)
    for s in (0.37, 1.0, 0.0, -0.5):
        check(clattn.scaled_dot_product_attention(q, k, v, scale=s),
              ref_sdpa(q, k, v, scale=s), torch.float32, f"scale {s}")


def test_numpy_in_numpy_out():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 3, 6, 16)).astype(np.float32)
    k = rng.standard_normal((2, 3, 9, 16)).astype(np.float32)
    v = rng.standard_normal((2, 3, 9, 16)).astype(np.float32)
    mask = rng.random((1, 9)) > 0.3
    mask[0, 0] = True
    out = clattn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    ref = ref_sdpa(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v),
                   attn_mask=torch.from_numpy(mask))
    check(torch.from_numpy(out), ref, torch.float32)
    out16 = clattn.scaled_dot_product_attention(q.astype(np.float16), k.astype(np.float16),
                                                v.astype(np.float16))
    assert out16.dtype == np.float16


def test_extras_against_reference():
    """softcap, sinks, ALiBi, windows and kv_lens against a float64 eager
    implementation written here."""
    B, H, L, S, D = 2, 4, 6, 11, 16
    q, k, v = rnd(B, H, L, D), rnd(B, H, S, D), rnd(B, H, S, D)
    sinks = torch.randn(H)
    slopes = clattn.alibi_slopes(H)
    kv_lens = torch.tensor([11, 7], dtype=torch.int32)
    out, lse = clattn.scaled_dot_product_attention(
        q, k, v, causal="bottom_right", window=(3, 0), softcap=5.0, sinks=sinks,
        alibi_slopes=torch.from_numpy(slopes), kv_lens=kv_lens, return_lse=True)
    s = (q.double() @ k.double().transpose(-1, -2)) / D ** 0.5
    s = 5.0 * torch.tanh(s / 5.0)
    i = torch.arange(L).view(L, 1)
    j = torch.arange(S).view(1, S)
    for b in range(B):
        n = int(kv_lens[b])
        ip = i + n - L
        s[b] += torch.from_numpy(slopes).double().view(H, 1, 1) * (j - ip)
        hide = (j >= n) | (j > ip) | (j < ip - 3)
        s[b] = s[b].masked_fill(hide, float("-inf"))
    full = torch.cat([s, sinks.double().view(1, H, 1, 1).expand(B, H, L, 1)], dim=-1)
    ref_lse = torch.logsumexp(full, dim=-1)
    p = torch.exp(s - ref_lse.unsqueeze(-1))
    ref = p @ v.double()
    check(out, ref, torch.float32, "extras")
    assert torch.allclose(lse.double(), ref_lse, atol=1e-5), "LSE"


@pytest.mark.parametrize("path", ["fused", "three_stage"])
def test_symmetric_alibi_encoder(path):
    """alibi_mode='symmetric' (-slope * |j - i|, jina-embeddings-v2) with a
    boolean [B, 1, 1, S] padding mask, against a float64 eager version."""
    B, H, S, D = 2, 4, 13, 16
    q, k, v = rnd(B, H, S, D), rnd(B, H, S, D), rnd(B, H, S, D)
    slopes = torch.from_numpy(clattn.alibi_slopes(H))
    pad = torch.ones(B, 1, 1, S, dtype=torch.bool)
    pad[1, ..., 9:] = False
    out = clattn.scaled_dot_product_attention(q, k, v, attn_mask=pad, alibi_slopes=slopes,
                                              alibi_mode="symmetric", path=path)
    i = torch.arange(S).view(S, 1)
    j = torch.arange(S).view(1, S)
    bias = -slopes.double().view(H, 1, 1) * (j - i).abs()
    s = (q.double() @ k.double().transpose(-1, -2)) / D ** 0.5 + bias
    s = s.masked_fill(~pad, float("-inf"))
    ref = torch.softmax(s, dim=-1) @ v.double()
    check(out, ref, torch.float32, "symmetric alibi")
    # the linear form differs on the keys after i, so the mode reached the kernels
    lin = clattn.scaled_dot_product_attention(q, k, v, attn_mask=pad, alibi_slopes=slopes,
                                              path=path)
    assert (lin - out).abs().max() > 1e-3


def test_bf16_per_head_vectors():
    q = rnd(1, 2, 4, 16, dtype=torch.bfloat16)
    sinks = torch.tensor([0.5, -1.0], dtype=torch.bfloat16)
    out, lse = clattn.scaled_dot_product_attention(q, q, q, sinks=sinks, return_lse=True)
    s = (q.double() @ q.double().transpose(-1, -2)) / 4.0
    full = torch.cat([s, sinks.double().view(1, 2, 1, 1).expand(1, 2, 4, 1)], dim=-1)
    ref_lse = torch.logsumexp(full, dim=-1)
    ref = torch.exp(s - ref_lse.unsqueeze(-1)) @ q.double()
    check(out, ref, torch.bfloat16, "bf16 sinks")
    assert torch.allclose(lse.double(), ref_lse, atol=1e-5)


def test_bias_with_bool_mask():
    # T5: a per-head bias [1, H, L, S] with a padding mask [B, 1, 1, S]
    q, k, v = rnd(2, 3, 6, 16), rnd(2, 3, 9, 16), rnd(2, 3, 9, 16)
    bias = torch.randn(1, 3, 6, 9)
    pad = torch.ones(2, 1, 1, 9, dtype=torch.bool)
    pad[1, ..., 6:] = False
    out = clattn.scaled_dot_product_attention(q, k, v, attn_mask=pad, bias=bias)
    combined = bias.expand(2, 3, 6, 9).masked_fill(~pad, float("-inf"))
    check(out, ref_sdpa(q, k, v, attn_mask=combined), torch.float32)
    with pytest.raises(ValueError, match="bias"):
        clattn.scaled_dot_product_attention(q, k, v, attn_mask=bias, bias=bias)
