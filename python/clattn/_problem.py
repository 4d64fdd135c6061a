"""PyTorch-style arguments to a clattn_problem and its buffers."""
import math

import numpy as np

from . import _native as N
from . import _tensors as T

_DTYPE_NAMES = {"float32": N.F32, "f32": N.F32, "float16": N.F16, "f16": N.F16,
                "half": N.F16, "bfloat16": N.BF16, "bf16": N.BF16}
_CAUSAL = {None: N.CAUSAL_NONE, False: N.CAUSAL_NONE, "none": N.CAUSAL_NONE,
           "bottom_right": N.CAUSAL_BOTTOM_RIGHT, "top_left": N.CAUSAL_TOP_LEFT,
           True: N.CAUSAL_TOP_LEFT}


def _dtype_code(d, where):
    if isinstance(d, int) and d in (N.F32, N.F16, N.BF16):
        return d
    name = str(d).replace("torch.", "").replace("numpy.", "")
    if name not in _DTYPE_NAMES:
        raise ValueError(f"{where}: dtype {d!r} is not one of float32, float16, bfloat16")
    return _DTYPE_NAMES[name]


def problem_from_dict(d, where="shape"):
    """A clattn_problem from a dict of its fields (tuning shapes)."""
    p = N.Problem()
    known = {f for f, _ in N.Problem._fields_}
    for key, value in d.items():
        if key == "dtype":
            p.dtype = _dtype_code(value, f"{where}.dtype")
        elif key == "causal":
            if value not in _CAUSAL:
                raise ValueError(f"{where}.causal: expected None, 'bottom_right' or "
                                 f"'top_left', got {value!r}")
            p.causal = _CAUSAL[value]
        elif key == "path":
            if value not in N.PATHS:
                raise ValueError(f"{where}.path: expected one of {sorted(N.PATHS)}")
            p.path = N.PATHS[value]
        elif key in ("window_left", "window_right") or key == "window":
            left, right = value if key == "window" else (
                (value, p.window_right) if key == "window_left" else (p.window_left, value))
            p.windowed, p.window_left, p.window_right = 1, int(left), int(right)
        elif key in known and key not in ("reserved", "padding_", "padding_1_4_"):
            setattr(p, key, value)
        else:
            raise ValueError(f"{where}: unknown field {key!r}")
    return p


# ---- strides ---------------------------------------------------------------

def _layout_ok(shape, strides):
    """clattn's view rule: the last dimension contiguous, and by increasing
    stride each dimension of extent > 1 lies beyond what the smaller ones
    reach (no overlap, no zero stride over an extent above one)."""
    if shape[-1] > 1 and strides[-1] != 1:
        return False
    reach = 0
    for n, s in sorted(((n, s) for n, s in zip(shape, strides) if n > 1), key=lambda t: t[1]):
        if s <= reach:
            return False
        reach += (n - 1) * s
    return True


def _collapse(shape, strides):
    """One (extent, stride) for a run of batch dimensions, or None when they
    are not one arithmetic progression."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if not dims:
        return 1, 0
    n, s = dims[-1]
    for m, t in reversed(dims[:-1]):
        if t != s * n:
            return None
        n *= m
    return int(np.prod(shape)), s


def _as_bhsd(v, batch_ndim):
    """(batch, batch stride), (heads, head stride) of a view, or None when
    its batch dimensions do not collapse or clattn cannot read its layout."""
    shape, strides = list(v.shape), list(v.strides)
    col = _collapse(shape[:batch_ndim], strides[:batch_ndim])
    if col is None or not _layout_ok(shape, strides):
        return None
    head = (shape[batch_ndim], strides[batch_ndim]) if len(shape) - batch_ndim == 3 else (1, 0)
    return col, head


class Tensor4:
    """A tensor as clattn's [batch][heads][seq][dim] with element strides;
    a layout clattn cannot read is copied into a contiguous one first."""

    def __init__(self, x, name, batch_ndim):
        v = T.view(x, name)
        if len(v.shape) < 2:
            raise ValueError(f"{name}: expected at least 2 dimensions (..., seq, dim), got "
                             f"shape {tuple(v.shape)}")
        dims = _as_bhsd(v, batch_ndim)
        if dims is None:
            x = T.contiguous(x)
            v = T.view(x, name)
            dims = _as_bhsd(v, batch_ndim)
        self.view, self.obj = v, x
        (self.batch, bs), (self.heads, hs) = dims
        self.seq, ss = v.shape[-2], v.strides[-2]
        self.dim = v.shape[-1]
        # extent-1 dimensions are not checked by clattn; give them a stride
        # that keeps the three from being all zero (which would mean packed)
        inner = self.dim
        ss = ss if self.seq > 1 else inner
        hs = hs if self.heads > 1 else max(ss * self.seq, inner)
        bs = bs if self.batch > 1 else max(hs * self.heads, inner)
        self.strides = N.Strides(bs, hs, ss)


def _broadcast_mask(mask, target, batch_ndim, name, copied=False):
    """The mask's layout against target (*batch, heads, L, S): a
    clattn_mask_strides with zero strides where it broadcasts, copying only
    what strides cannot express (a mask broadcast over keys, or batch
    dimensions that do not collapse). Returns (keepalive, view, strides)."""
    v = T.view(mask, name)
    shape = list(v.shape)
    if len(shape) > len(target):
        raise ValueError(f"{name}: shape {tuple(shape)} has more dimensions than the "
                         f"attention's {tuple(target)}")
    pad = len(target) - len(shape)
    shape = [1] * pad + shape
    strides = [0] * pad + list(v.strides)
    for i, (n, t) in enumerate(zip(shape, target)):
        if n != 1 and n != t:
            raise ValueError(f"{name}: shape {tuple(v.shape)} does not broadcast to "
                             f"{tuple(target)} (dimension {i - pad}: {n} vs {t})")
    strides = [0 if n == 1 else s for n, s in zip(shape, strides)]
    bshape, bstr = shape[:batch_ndim], strides[:batch_ndim]
    col = _collapse([n if s else 1 for n, s in zip(bshape, bstr)], bstr)
    S = target[-1]
    if (col is not None and shape[-1] == S and (S == 1 or strides[-1] == 1) and
            (strides[-2] == 0 or strides[-2] >= S)):
        head_stride = strides[batch_ndim] if len(target) - batch_ndim == 3 else 0
        ms = N.MaskStrides(col[1] if col[0] > 1 else 0, head_stride, strides[-2])
        if _mask_ok(target, batch_ndim, ms):
            return v.obj, v, ms
    if copied:  # a contiguous copy always fits; reaching here is a bug
        raise AssertionError(f"{name}: no clattn layout for shape {tuple(shape)}")
    # keys made explicit; broadcast dimensions stay at extent 1, except batch
    # dimensions that did not collapse into one stride
    last = len(target) - 1
    full = [t if i == last or (i < batch_ndim and col is None) else n
            for i, (n, t) in enumerate(zip(shape, target))]
    m = v.obj
    if T.is_torch(m):
        m = m.reshape(shape).expand(full).contiguous()
    else:
        m = np.ascontiguousarray(np.broadcast_to(m.reshape(shape), full))
    return _broadcast_mask(m, target, batch_ndim, name, copied=True)


def _mask_ok(target, batch_ndim, ms):
    B = int(np.prod(target[:batch_ndim])) if batch_ndim else 1
    H = target[batch_ndim] if len(target) - batch_ndim == 3 else 1
    L, S = target[-2], target[-1]
    dims = [(B, ms.batch), (H, ms.head), (L, ms.row)]
    reach = S - 1
    for n, s in sorted(((n, s) for n, s in dims if n > 1 and s != 0), key=lambda t: t[1]):
        if s <= reach:
            return False
        reach += (n - 1) * s
    return ms.row == 0 or ms.row >= S


def _is_bool(x):
    return (T.is_torch(x) and x.dtype == T.torch.bool) or (
        isinstance(x, np.ndarray) and x.dtype == np.bool_)


# clattn.h's CLATTN_ALIBI_LINEAR (slope * (j - i')) and CLATTN_ALIBI_SYMMETRIC
# (-slope * |j - i'|: flash_attn's alibi_slopes without causal).
_ALIBI_MODES = {"linear": 0, "symmetric": 1}


def build(query, key, value, attn_mask, is_causal, scale, enable_gqa, causal, window,
          softcap, sinks, alibi_slopes, kv_lens, path, bias=None, alibi_mode="linear"):
    """The problem, inputs {field: (address, bytes, keepalive)} and output
    shape for PyTorch-style arguments; exceptions name the argument."""
    kinds = {T.is_torch(x) for x in (query, key, value) if x is not None}
    if len(kinds) > 1:
        raise TypeError("query, key and value must all be torch tensors or all NumPy arrays")
    for x, nm in ((query, "query"), (key, "key"), (value, "value")):
        if x is not None:
            T.check_host(x, nm)
    code = T.float_code(query, "query")
    for x, nm in ((key, "key"), (value, "value")):
        if x is not None and T.float_code(x, nm) != code:
            raise TypeError(f"{nm}: dtype {x.dtype} differs from query's {query.dtype}")
    nd = query.ndim
    for x, nm in ((key, "key"), (value, "value")):
        if x is not None and x.ndim != nd:
            raise ValueError(f"{nm}: {x.ndim} dimensions, query has {nd}")
    if nd < 2:
        raise ValueError(f"query: expected at least 2 dimensions (..., L, E), got {nd}")
    batch_ndim = max(nd - 3, 0)
    bdims = tuple(query.shape[:batch_ndim])
    for x, nm in ((key, "key"), (value, "value")):
        if x is not None and tuple(x.shape[:batch_ndim]) != bdims:
            raise ValueError(f"{nm}: batch dimensions {tuple(x.shape[:batch_ndim])} differ "
                             f"from query's {bdims}")
    L, E = query.shape[-2], query.shape[-1]
    S = key.shape[-2]
    if key.shape[-1] != E:
        raise ValueError(f"key: last dimension {key.shape[-1]} differs from query's {E}")
    if value is not None and value.shape[-2] != S:
        raise ValueError(f"value: sequence length {value.shape[-2]} differs from key's {S}")
    Ev = value.shape[-1] if value is not None else 1
    Hq = query.shape[-3] if nd >= 3 and nd - batch_ndim == 3 else 1
    Hk = key.shape[-3] if nd >= 3 and nd - batch_ndim == 3 else 1
    if value is not None and nd - batch_ndim == 3 and value.shape[-3] != Hk:
        raise ValueError(f"value: {value.shape[-3]} heads, key has {Hk}")
    if Hq != Hk:
        if not enable_gqa:
            raise ValueError(f"key: {Hk} heads for query's {Hq}; pass enable_gqa=True for "
                             "grouped-query attention")
        if Hk == 0 or Hq % Hk:
            raise ValueError(f"key: query's {Hq} heads are not a multiple of key's {Hk}")
    B = int(np.prod(bdims)) if bdims else 1
    empty = B == 0 or Hq == 0 or L == 0 or Ev == 0
    out_shape = bdims + ((Hq,) if nd - batch_ndim == 3 else ()) + (L, Ev)
    lse_shape = bdims + ((Hq,) if nd - batch_ndim == 3 else ()) + (L,)
    if E == 0:
        raise ValueError("query: head dimension 0")

    p = N.Problem()
    p.batch, p.heads, p.kv_heads = B, Hq, Hk
    p.seq_q, p.seq_kv, p.head_dim, p.head_dim_v = L, S, E, Ev
    p.dtype = code

    if scale is not None:
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise TypeError(f"scale: expected a number, got {type(scale).__name__}") from None
        if not math.isfinite(scale):
            raise ValueError(f"scale: must be finite (got {scale})")
        # clattn reads 0 as "the default"; a zero scale makes every score 0,
        # which a tiny normal scale reproduces to fp32 precision
        p.scale = scale if scale != 0.0 else 1e-30
    if is_causal and attn_mask is not None:
        raise ValueError("is_causal and attn_mask cannot both be given (PyTorch's rule); "
                         "causal='top_left' or 'bottom_right' combines with a mask")
    if causal not in _CAUSAL or causal is True:
        raise ValueError(f"causal: expected None, 'top_left' or 'bottom_right', got {causal!r}")
    if is_causal and causal not in (None, False, "top_left"):
        raise ValueError("is_causal=True is top-left causal; it conflicts with "
                         f"causal={causal!r}")
    p.causal = N.CAUSAL_TOP_LEFT if is_causal else _CAUSAL[causal]
    if window is not None:
        if not (isinstance(window, (tuple, list)) and len(window) == 2):
            raise ValueError("window: expected (left, right) as flash_attn's window_size, "
                             "-1 for an unbounded side")
        p.windowed, p.window_left, p.window_right = 1, int(window[0]), int(window[1])
    if softcap is not None and softcap != 0:
        softcap = float(softcap)
        if not (math.isfinite(softcap) and softcap > 0):
            raise ValueError(f"softcap: must be a positive finite number (got {softcap})")
        p.softcap = softcap
    if alibi_mode not in _ALIBI_MODES:
        raise ValueError(f"alibi_mode: expected 'linear' or 'symmetric', got {alibi_mode!r}")
    if alibi_mode != "linear" and alibi_slopes is None:
        raise ValueError("alibi_mode: 'symmetric' needs alibi_slopes")
    p.alibi_mode = _ALIBI_MODES[alibi_mode]
    if path not in N.PATHS:
        raise ValueError(f"path: expected one of {sorted(N.PATHS)}, got {path!r}")
    p.path = N.PATHS[path]

    inputs, keep = {}, []
    if not empty and S > 0:
        q4 = Tensor4(query, "query", batch_ndim)
        k4 = Tensor4(key, "key", batch_ndim)
        p.q_strides, p.k_strides = q4.strides, k4.strides
        inputs["q"] = (q4.view.ptr, q4.view.span_bytes())
        inputs["k"] = (k4.view.ptr, k4.view.span_bytes())
        keep += [q4, k4]
        if value is not None:
            v4 = Tensor4(value, "value", batch_ndim)
            p.v_strides = v4.strides
            inputs["v"] = (v4.view.ptr, v4.view.span_bytes())
            keep.append(v4)
    target = bdims + ((Hq,) if nd - batch_ndim == 3 else ()) + (L, S)
    mask_is_bool = attn_mask is not None and _is_bool(attn_mask)
    if attn_mask is not None and not mask_is_bool:
        T.float_code(attn_mask, "attn_mask")
    if bias is not None:
        T.float_code(bias, "bias")
        if attn_mask is not None and not mask_is_bool:
            raise ValueError("bias: clattn takes one additive mask; with a float attn_mask, "
                             "add the two (or pass a boolean attn_mask)")
    runs = not empty and S > 0
    for x, name, as_bool in ((attn_mask, "attn_mask", mask_is_bool), (bias, "bias", False)):
        if x is None or not runs:
            continue
        T.check_host(x, name)
        m, mv, ms = _broadcast_mask(x, target, batch_ndim, name)
        if as_bool:
            p.bool_mask.enabled, p.bool_mask.strides = 1, ms
            inputs["bool_mask"] = (mv.ptr, mv.span_bytes())
        else:
            p.bias.enabled, p.bias.dtype, p.bias.strides = 1, T.float_code(x, name), ms
            inputs["bias"] = (mv.ptr, mv.span_bytes())
        keep.append((m, mv))
    for arr, field, flag, length, dt in ((sinks, "sinks", "sinks", Hq, np.float32),
                                         (alibi_slopes, "alibi_slopes", "alibi", Hq,
                                          np.float32),
                                         (kv_lens, "kv_lens", None, B, np.int32)):
        if arr is None:
            continue
        a = T.as_small(arr, field, dt, length)
        if field == "kv_lens" and ((a < 0) | (a > S)).any():
            raise ValueError(f"kv_lens: entries must lie in 0..{S} (key length)")
        if flag:
            setattr(p, flag, 1)
        inputs[field] = (a.ctypes.data, a.nbytes)
        keep.append(a)
    return p, inputs, keep, out_shape, lse_shape, empty or S == 0, code
