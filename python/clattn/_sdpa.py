"""scaled_dot_product_attention and attention_weights with PyTorch's
signature and semantics, run by clattn."""
import ctypes

import numpy as np

from . import _native as N
from . import _problem as P
from . import _tensors as T
from ._context import default_context


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, *,
                                 causal=None, window=None, softcap=None, sinks=None,
                                 alibi_slopes=None, alibi_mode="linear", kv_lens=None,
                                 bias=None, return_lse=False, path="auto", context=None,
                                 split="auto"):
    """torch.nn.functional.scaled_dot_product_attention, computed by clattn
    on its OpenCL device. Takes CPU torch tensors or NumPy arrays
    (float32/float16; bfloat16 through torch) and returns the same kind.

    PyTorch's semantics: query (..., L, E), key (..., S, E), value (..., S, Ev)
    with heads at dimension -3; a boolean attn_mask attends where True, a
    float one is added; masks broadcast; is_causal is top-left (query i sees
    keys j <= i); enable_gqa lets query heads be a multiple of key heads; a
    row that sees no key gives zeros. Strided views (a transposed [B, S, H, E]
    tensor) are read in place. dropout_p must be 0.

    clattn's additions (keyword only): causal='bottom_right' (the last query
    row faces the last key; decode) or 'top_left', combinable with a mask;
    window=(left, right) as flash_attn's window_size (-1: unbounded);
    softcap; sinks (per-head logits, gpt-oss); alibi_slopes (per head),
    added as slope * (j - i') with alibi_mode='linear' (Bloom, MPT) or as
    -slope * |j - i'| with 'symmetric' (bidirectional encoders; what
    flash_attn's alibi_slopes means without causal);
    kv_lens (valid keys per batch entry, trailing padding); bias (an
    additive float mask, broadcast like attn_mask, that combines with a
    boolean attn_mask: T5's relative bias with a padding mask); return_lse
    (also returns the natural-log LSE, float32 (..., L)); path ('auto',
    'fused', 'three_stage', 'split_kv'); context (a clattn.Context, or a
    list of them: then the attention is cut over their devices with
    clattn_multi_forward_host, each doing a share sized by its speed, and
    split= chooses the cut: 'auto', 'rows', 'keys' or 'batch')."""
    if dropout_p is None or float(dropout_p) != 0.0:
        raise ValueError(f"dropout_p: clattn computes attention without dropout; pass 0.0 "
                         f"(got {dropout_p})")
    ctxs = list(context) if isinstance(context, (list, tuple)) else None
    if ctxs is not None and not ctxs:
        raise ValueError("context: an empty list of contexts")
    if split not in N.SPLITS:
        raise ValueError(f"split must be one of {sorted(N.SPLITS)} (got {split!r})")
    ctx = ctxs[0] if ctxs else (context or default_context())
    p, inputs, keep, out_shape, lse_shape, trivial, code = P.build(
        query, key, value, attn_mask, is_causal, scale, enable_gqa, causal, window, softcap,
        sinks, alibi_slopes, kv_lens, path, bias, alibi_mode)
    out = T.empty_like_kind(query, out_shape, code)
    lse = T.empty_f32(query, lse_shape) if return_lse else None
    if trivial:  # nothing to attend to (S == 0) or an empty output
        out[...] = 0
        if lse is not None:
            lse[...] = -np.inf
        return (out, lse) if return_lse else out
    sizes = ctx.buffer_sizes(p)  # validates the problem; names the field on error
    ins = {}
    for name, (ptr, span) in inputs.items():
        need = getattr(sizes, name)
        if span < need:
            raise AssertionError(f"{name}: {span} bytes laid out, clattn needs {need}")
        ins[name] = (ptr, need)
    outs = {"o": (_ptr(out), sizes.o)}
    if lse is not None:
        outs["lse"] = (_ptr(lse), sizes.lse)
    if ctxs is not None:
        _run_multi(ctxs, p, ins, outs, split)
    else:
        ctx.run(p, ins, outs)
    del keep
    return (out, lse) if return_lse else out


def _run_multi(ctxs, problem, inputs, outputs, split):
    """clattn_multi_forward_host over the caller's memory: every array with
    its size; failures are reported on the first context."""
    if len(ctxs) > N.MULTI_MAX:
        raise ValueError(f"context: at most {N.MULTI_MAX} contexts (got {len(ctxs)})")
    h, z = N.HostBuffers(), N.BufferSizes()
    for name, (ptr, size) in list(inputs.items()) + list(outputs.items()):
        setattr(h, name, ptr)
        setattr(z, name, size)
    h.sizes = ctypes.cast(ctypes.pointer(z), ctypes.c_void_p)
    handles = (ctypes.c_void_p * len(ctxs))(*[c.handle for c in ctxs])
    opts = N.MultiOptions(N.SPLITS[split], None)
    report = N.MultiReport()
    st = N.lib.clattn_multi_forward_host(handles, len(ctxs), ctypes.byref(problem),
                                         ctypes.byref(h), ctypes.byref(opts),
                                         ctypes.byref(report))
    ctxs[0].check(st, "clattn_multi_forward_host")
    return report


def _ptr(x):
    return x.data_ptr() if T.is_torch(x) else x.ctypes.data


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None,
                      enable_gqa=False, *, causal=None, window=None, softcap=None,
                      sinks=None, alibi_slopes=None, alibi_mode="linear", kv_lens=None, bias=None,
                      context=None):
    """The softmax probabilities, float32 (..., H, L, S), of the attention
    scaled_dot_product_attention would compute with the same arguments (keys
    a row cannot see are 0): for inspection and heatmaps."""
    ctx = context or default_context()
    vshape = tuple(key.shape[:-1]) + (1,)
    value = (T.torch.zeros(vshape, dtype=key.dtype) if T.is_torch(key)
             else np.zeros(vshape, dtype=key.dtype))
    p, inputs, keep, out_shape, _, trivial, code = P.build(
        query, key, value, attn_mask, is_causal, scale, enable_gqa, causal, window, softcap,
        sinks, alibi_slopes, kv_lens, "three_stage", bias, alibi_mode)
    probs_shape = out_shape[:-1] + (key.shape[-2],)
    probs = T.empty_f32(query, probs_shape)
    if trivial:
        probs[...] = 0
        return probs
    ctx.buffer_sizes(p)  # validates the problem first
    hb = N.HostBuffers()
    sizes = N.BufferSizes()  # what each array really holds: the library checks
    for name, (ptr, span) in inputs.items():
        setattr(hb, name, ptr)
        setattr(sizes, name, span)
    sizes.probs = probs.numel() * 4 if T.is_torch(probs) else probs.nbytes
    hb.sizes = ctypes.cast(ctypes.pointer(sizes), ctypes.c_void_p)
    st = N.lib.clattn_attention_weights_host(ctx.handle, ctypes.byref(p), ctypes.byref(hb),
                                             ctypes.c_void_p(_ptr(probs)))
    ctx.check(st, "clattn_attention_weights_host")
    del keep
    return probs


def alibi_slopes(heads):
    """The standard ALiBi slopes of a model with `heads` heads (float32)."""
    if not isinstance(heads, int) or heads <= 0:
        raise ValueError(f"heads: expected a positive int, got {heads!r}")
    out = np.empty(heads, dtype=np.float32)
    st = N.lib.clattn_alibi_slopes(heads, out.ctypes.data)
    if st != 0:
        raise ValueError("clattn_alibi_slopes refused heads")
    return out
