"""Torch tensors and NumPy arrays seen as (pointer, shape, element strides,
dtype), without copying where clattn can read the layout as it is."""
import ctypes

import numpy as np

from . import _native as N

try:  # torch is optional: NumPy arrays work without it
    import torch
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None

_NP_DTYPES = {np.dtype(np.float32): N.F32, np.dtype(np.float16): N.F16}
_NAMES = {N.F32: "float32", N.F16: "float16", N.BF16: "bfloat16"}


def is_torch(x):
    return torch is not None and isinstance(x, torch.Tensor)


class View:
    """One input or output: base pointer, shape, strides in elements."""

    __slots__ = ("obj", "ptr", "shape", "strides", "dtype", "itemsize", "kind")

    def __init__(self, obj, ptr, shape, strides, dtype, itemsize, kind):
        self.obj, self.ptr, self.shape, self.strides = obj, ptr, tuple(shape), tuple(strides)
        self.dtype, self.itemsize, self.kind = dtype, itemsize, kind

    def span_bytes(self):
        """Bytes from ptr to one past the last element (strides >= 0)."""
        if any(s == 0 for s in self.shape):
            return 0
        last = sum((n - 1) * s for n, s in zip(self.shape, self.strides))
        return (last + 1) * self.itemsize


def float_code(x, name):
    """clattn_dtype of a float tensor/array; TypeError naming the argument."""
    if is_torch(x):
        m = {torch.float32: N.F32, torch.float16: N.F16, torch.bfloat16: N.BF16}
        if x.dtype not in m:
            raise TypeError(f"{name}: dtype {x.dtype} is not supported (float32, float16 or "
                            "bfloat16)")
        return m[x.dtype]
    if isinstance(x, np.ndarray):
        if x.dtype not in _NP_DTYPES:
            raise TypeError(f"{name}: dtype {x.dtype} is not supported (float32 or float16; "
                            "bfloat16 through torch)")
        return _NP_DTYPES[x.dtype]
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got "
                    f"{type(x).__name__}")


def check_host(x, name):
    if is_torch(x):
        if x.device.type != "cpu":
            raise ValueError(f"{name}: tensor is on {x.device}; clattn reads host (CPU) "
                             "tensors and runs on its own OpenCL device")
        if x.requires_grad and torch.is_grad_enabled():
            raise ValueError(f"{name}: clattn computes no gradients (use torch.no_grad() or "
                             ".detach())")


def view(x, name):
    """A View of x as it lies in memory; negative strides are copied away."""
    check_host(x, name)
    if is_torch(x):
        if any(s < 0 for s in x.stride()):
            x = x.contiguous()
        return View(x, x.data_ptr(), x.shape, x.stride(), None, x.element_size(), "torch")
    if isinstance(x, np.ndarray):
        if any(s < 0 or s % x.itemsize for s in x.strides):
            x = np.ascontiguousarray(x)
        return View(x, x.ctypes.data, x.shape, [s // x.itemsize for s in x.strides], None,
                    x.itemsize, "numpy")
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got "
                    f"{type(x).__name__}")


def contiguous(x):
    if is_torch(x):
        return x.contiguous()
    return np.ascontiguousarray(x)


def empty_like_kind(ref, shape, code):
    """A new contiguous output of ref's kind (torch or NumPy)."""
    if is_torch(ref):
        dt = {N.F32: torch.float32, N.F16: torch.float16, N.BF16: torch.bfloat16}[code]
        return torch.empty(shape, dtype=dt)
    dt = {N.F32: np.float32, N.F16: np.float16}[code]
    return np.empty(shape, dtype=dt)


def empty_f32(ref, shape):
    if is_torch(ref):
        return torch.empty(shape, dtype=torch.float32)
    return np.empty(shape, dtype=np.float32)


def as_small(x, name, np_dtype, length):
    """A per-head or per-batch vector (sinks, slopes, kv_lens) as a contiguous
    NumPy array of np_dtype and exactly `length` entries."""
    if is_torch(x):
        check_host(x, name)
        x = x.detach()
        if x.dtype == torch.bfloat16:  # NumPy has no bfloat16
            x = x.float()
        x = x.numpy()
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != length:
        raise ValueError(f"{name}: expected {length} entries (a 1-d sequence), got shape "
                         f"{tuple(a.shape)}")
    if np.issubdtype(np.dtype(np_dtype), np.integer):
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name}: expected integers, got {a.dtype}")
    return np.ascontiguousarray(a, dtype=np_dtype)


def address(a):
    return ctypes.c_void_p(a.ctypes.data) if isinstance(a, np.ndarray) else ctypes.c_void_p(
        a.data_ptr())


def dtype_name(code):
    return _NAMES[code]
