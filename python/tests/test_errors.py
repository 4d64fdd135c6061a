"""Bad input: a Python exception naming the argument, never a crash or a
silently wrong result."""
import math

import numpy as np
import pytest
import torch

import clattn

sdpa = clattn.scaled_dot_product_attention


def qkv(dtype=torch.float32, L=5, S=7, H=2, Hk=2):
    return (torch.randn(2, H, L, 16).to(dtype), torch.randn(2, Hk, S, 16).to(dtype),
            torch.randn(2, Hk, S, 16).to(dtype))


CASES = [
    # (description, call, exception, words the message must hold)
    ("dropout", lambda q, k, v: sdpa(q, k, v, dropout_p=0.1), ValueError, "dropout_p"),
    ("float64", lambda q, k, v: sdpa(q.double(), k.double(), v.double()), TypeError,
     "query"),
    ("int query", lambda q, k, v: sdpa(q.int(), k, v), TypeError, "query"),
    ("key dtype", lambda q, k, v: sdpa(q, k.half(), v), TypeError, "key"),
    ("value dtype", lambda q, k, v: sdpa(q, k, v.half()), TypeError, "value"),
    ("a list", lambda q, k, v: sdpa(q.tolist(), k, v), TypeError, "query"),
    ("mixed kinds", lambda q, k, v: sdpa(q, k.numpy(), v), TypeError, "NumPy"),
    ("meta device", lambda q, k, v: sdpa(q.to("meta"), k, v), ValueError, "query"),
    ("needs grad", lambda q, k, v: sdpa(q.requires_grad_(), k, v), ValueError, "query"),
    ("key dim", lambda q, k, v: sdpa(q, k[..., :8], v), ValueError, "key"),
    ("value length", lambda q, k, v: sdpa(q, k, v[:, :, :3]), ValueError, "value"),
    ("value heads", lambda q, k, v: sdpa(q, k, v[:, :1]), ValueError, "value"),
    ("batch", lambda q, k, v: sdpa(q, k[:1], v[:1]), ValueError, "key"),
    ("ranks", lambda q, k, v: sdpa(q, k[0], v[0]), ValueError, "key"),
    ("gqa off", lambda q, k, v: sdpa(q, k[:, :1], v[:, :1]), ValueError, "enable_gqa"),
    ("gqa ratio", lambda q, k, v: sdpa(torch.randn(2, 3, 5, 16), k, v, enable_gqa=True),
     ValueError, "multiple"),
    ("mask shape", lambda q, k, v: sdpa(q, k, v, attn_mask=torch.ones(5, 6, dtype=torch.bool)),
     ValueError, "attn_mask"),
    ("mask rank", lambda q, k, v: sdpa(q, k, v, attn_mask=torch.ones(1, 2, 2, 5, 7)),
     ValueError, "attn_mask"),
    ("mask dtype", lambda q, k, v: sdpa(q, k, v, attn_mask=torch.ones(5, 7, dtype=torch.int32)),
     TypeError, "attn_mask"),
    ("mask and is_causal", lambda q, k, v: sdpa(q, k, v, attn_mask=torch.ones(5, 7),
                                                is_causal=True), ValueError, "is_causal"),
    ("scale inf", lambda q, k, v: sdpa(q, k, v, scale=math.inf), ValueError, "scale"),
    ("scale nan", lambda q, k, v: sdpa(q, k, v, scale=math.nan), ValueError, "scale"),
    ("scale text", lambda q, k, v: sdpa(q, k, v, scale="big"), TypeError, "scale"),
    ("causal word", lambda q, k, v: sdpa(q, k, v, causal="bottom"), ValueError, "causal"),
    ("causal conflict", lambda q, k, v: sdpa(q, k, v, is_causal=True, causal="bottom_right"),
     ValueError, "is_causal"),
    ("window", lambda q, k, v: sdpa(q, k, v, window=4), ValueError, "window"),
    ("softcap", lambda q, k, v: sdpa(q, k, v, softcap=-1.0), ValueError, "softcap"),
    ("sinks length", lambda q, k, v: sdpa(q, k, v, sinks=torch.zeros(3)), ValueError, "sinks"),
    ("slopes length", lambda q, k, v: sdpa(q, k, v, alibi_slopes=[0.5]), ValueError,
     "alibi_slopes"),
    ("alibi_mode word", lambda q, k, v: sdpa(q, k, v, alibi_slopes=[0.5, 0.25],
                                             alibi_mode="both"), ValueError, "alibi_mode"),
    ("alibi_mode without slopes", lambda q, k, v: sdpa(q, k, v, alibi_mode="symmetric"),
     ValueError, "alibi_mode"),
    ("kv_lens range", lambda q, k, v: sdpa(q, k, v, kv_lens=[3, 9]), ValueError, "kv_lens"),
    ("kv_lens float", lambda q, k, v: sdpa(q, k, v, kv_lens=[3.0, 2.0]), TypeError, "kv_lens"),
    ("path", lambda q, k, v: sdpa(q, k, v, path="fastest"), ValueError, "path"),
    ("head dim too big", lambda q, k, v: sdpa(torch.randn(1, 1, 2, 600), torch.randn(1, 1, 2, 600),
                                              torch.randn(1, 1, 2, 8)),
     clattn.InvalidArgument, "head_dim"),
]


@pytest.mark.parametrize("name,call,exc,word", CASES, ids=[c[0] for c in CASES])
def test_refused_by_name(name, call, exc, word):
    q, k, v = qkv()
    with pytest.raises(exc) as info:
        call(q, k, v)
    assert word in str(info.value), f"{name}: message does not name {word!r}: {info.value}"


def test_library_errors_carry_last_error():
    # an error found by the C library (not the Python checks) arrives with
    # clattn_last_error's text and the status name
    with pytest.raises(clattn.InvalidArgument) as info:
        sdpa(torch.randn(1, 1, 2, 600), torch.randn(1, 1, 2, 600), torch.randn(1, 1, 2, 8))
    assert "CLATTN_ERR_INVALID_ARGUMENT" in str(info.value)
    assert info.value.status == "CLATTN_ERR_INVALID_ARGUMENT"


def test_refusal_leaves_inputs_alone():
    q, k, v = qkv()
    before = [t.clone() for t in (q, k, v)]
    with pytest.raises(ValueError):
        sdpa(q, k, v, kv_lens=[3, 9])
    assert all(torch.equal(a, b) for a, b in zip(before, (q, k, v)))


def test_context_errors():
    with pytest.raises(ValueError, match="device"):
        clattn.Context(device=99)
    with pytest.raises(ValueError, match="device"):
        clattn.Context(device="no such device name")
    with pytest.raises(TypeError, match="device"):
        clattn.Context(device=1.5)
    ctx = clattn.Context(cache_dir="off")
    with pytest.raises(ValueError, match="budget"):
        ctx.tune([dict(batch=1, heads=1, seq_q=8, seq_kv=8, head_dim=16)], budget=-1)
    with pytest.raises(ValueError, match="shapes\\[0\\]"):
        ctx.tune([dict(batch=1, heads=1, seq_q=8, seq_kv=8, head_dim=16, colour=3)])
    with pytest.raises(clattn.InvalidArgument, match="seq_q"):
        ctx.tune([dict(batch=1, heads=1, seq_q=0, seq_kv=8, head_dim=16)], budget=1)
    ctx.close()
    with pytest.raises(ValueError, match="closed"):
        sdpa(*qkv(), context=ctx)


def test_numpy_bad_dtype():
    a = np.zeros((1, 2, 4), dtype=np.float64)
    with pytest.raises(TypeError, match="query"):
        sdpa(a, a, a)
