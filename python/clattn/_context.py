"""Contexts, devices, tuning and the cache, over the C API."""
import atexit
import ctypes
import logging
import threading

from . import _native as N
from ._errors import raise_for

log = logging.getLogger("clattn")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


def version():
    """Version of the native library actually loaded ("MAJOR.MINOR.PATCH")."""
    return N.lib.clattn_version().decode()


def _cl_string(getter, obj, param):
    size = ctypes.c_size_t(0)
    if getter(obj, param, 0, None, ctypes.byref(size)) != 0:
        return ""
    buf = ctypes.create_string_buffer(size.value)
    getter(obj, param, size, buf, None)
    return buf.value.decode(errors="replace")


def _cl_scalar(obj, param, ctype):
    v = ctype(0)
    N.cl.clGetDeviceInfo(obj, param, ctypes.sizeof(v), ctypes.byref(v), None)
    return v.value


def devices():
    """Every OpenCL device, as dicts with the (platform, device) indices the
    library's options take, the names, the type and the memory size."""
    out = []
    n = ctypes.c_uint32(0)
    if N.cl.clGetPlatformIDs(0, None, ctypes.byref(n)) != 0 or n.value == 0:
        return out
    plats = (ctypes.c_void_p * n.value)()
    N.cl.clGetPlatformIDs(n.value, plats, None)
    for pi, plat in enumerate(plats):
        nd = ctypes.c_uint32(0)
        if N.cl.clGetDeviceIDs(plat, N.CL_DEVICE_TYPE_ALL, 0, None, ctypes.byref(nd)) != 0:
            continue
        devs = (ctypes.c_void_p * nd.value)()
        N.cl.clGetDeviceIDs(plat, N.CL_DEVICE_TYPE_ALL, nd.value, devs, None)
        for di, dev in enumerate(devs):
            t = _cl_scalar(dev, N.CL_DEVICE_TYPE, ctypes.c_uint64)
            out.append({
                "platform": pi, "device": di,
                "platform_name": _cl_string(N.cl.clGetPlatformInfo, plat, N.CL_PLATFORM_NAME),
                "name": _cl_string(N.cl.clGetDeviceInfo, dev, N.CL_DEVICE_NAME),
                "vendor": _cl_string(N.cl.clGetDeviceInfo, dev, N.CL_DEVICE_VENDOR),
                "type": next((v for k, v in N.DEVICE_TYPES.items() if t & k), "other"),
                "global_mem_bytes": _cl_scalar(dev, N.CL_DEVICE_GLOBAL_MEM_SIZE,
                                               ctypes.c_uint64),
                "host_unified_memory": bool(_cl_scalar(dev, N.CL_DEVICE_HOST_UNIFIED_MEMORY,
                                                       ctypes.c_uint32)),
            })
    return out


def _pick_device(device):
    """(platform, device) indices from None, an index into devices(), a
    (platform, device) pair, a devices() dict or a name substring."""
    if device is None:
        return -1, -1
    if isinstance(device, dict):
        return int(device["platform"]), int(device["device"])
    if isinstance(device, tuple) and len(device) == 2:
        return int(device[0]), int(device[1])
    all_devices = devices()
    if isinstance(device, int):
        if not 0 <= device < len(all_devices):
            raise ValueError(f"device: index {device} is outside the {len(all_devices)} "
                             "devices clattn.devices() lists")
        d = all_devices[device]
        return d["platform"], d["device"]
    if isinstance(device, str):
        for d in all_devices:
            if device.lower() in (d["name"] + " " + d["platform_name"]).lower():
                return d["platform"], d["device"]
        raise ValueError(f"device: no OpenCL device's name contains {device!r} "
                         f"(have: {[d['name'] for d in all_devices]})")
    raise TypeError(f"device: expected None, an int, a (platform, device) pair, a dict from "
                    f"clattn.devices() or a name, got {type(device).__name__}")


class Context:
    """A clattn context on one OpenCL device: its compiled kernels, tuning
    and caches. Calls on one context may come from any thread.

    device: see _pick_device (None: the library's choice, CLATTN_DEVICE or
    the first GPU, else the first device). cache_dir: root of the disk
    caches ("off" for none; None for the library's default). zero_copy:
    None = wrap host memory in place where the device shares it with the
    host (CL_DEVICE_HOST_UNIFIED_MEMORY: PoCL, integrated GPUs), True/False
    to force."""

    def __init__(self, device=None, cache_dir=None, zero_copy=None, max_scratch_bytes=0):
        plat, dev = _pick_device(device)
        self._lock = threading.Lock()
        self._log_fn = N.LOG_FN(self._on_log)  # kept alive as long as the context
        opts = N.Options()
        N.lib.clattn_options_init(ctypes.byref(opts))
        opts.platform, opts.device = plat, dev
        self._cache_dir = None if cache_dir is None else str(cache_dir).encode()
        opts.cache_dir = self._cache_dir
        opts.log = self._log_fn
        opts.max_scratch_bytes = int(max_scratch_bytes)
        self._opts = opts
        handle = ctypes.c_void_p()
        st = N.lib.clattn_context_create(ctypes.byref(opts), ctypes.byref(handle))
        if st != 0:
            raise_for(st, f"clattn_context_create failed on device {(plat, dev)} (see the "
                          "'clattn' logger for the reason)")
        self._h = handle
        clc, q, d = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        N.lib.clattn_context_get_cl(handle, ctypes.byref(clc), ctypes.byref(q), ctypes.byref(d))
        self._cl_context, self._queue, self._device = clc, q, d
        self.device_name = _cl_string(N.cl.clGetDeviceInfo, d, N.CL_DEVICE_NAME)
        unified = bool(_cl_scalar(d, N.CL_DEVICE_HOST_UNIFIED_MEMORY, ctypes.c_uint32))
        self.zero_copy = unified if zero_copy is None else bool(zero_copy)

    @staticmethod
    def _on_log(level, message, _user):
        log.log(_LEVELS.get(level, logging.DEBUG), "%s", message.decode(errors="replace"))

    # ---- lifetime -------------------------------------------------------

    def close(self):
        """Waits for the context's work, writes due program binaries, frees it."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            N.lib.clattn_context_destroy(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._h:
            raise ValueError("the context is closed")
        return self._h

    def last_error(self):
        return N.lib.clattn_last_error(self.handle).decode(errors="replace")

    def check(self, status, what=""):
        if status != 0:
            raise_for(status, (what + ": " if what else "") + self.last_error())

    def stats(self):
        s = N.Stats()
        self.check(N.lib.clattn_context_stats(self.handle, ctypes.byref(s)),
                   "clattn_context_stats")
        return {f: getattr(s, f) for f, _ in N.Stats._fields_}

    # ---- tuning and caches ----------------------------------------------

    def tune(self, shapes, budget=None, retune=False, progress=None):
        """Tunes the kernels for each shape (dicts of clattn_problem fields,
        e.g. dict(batch=1, heads=8, seq_q=1024, seq_kv=1024, head_dim=64,
        dtype="float16", causal="bottom_right")) within budget seconds, and
        keeps the choices in the tuning db. Returns one dict per tuned unit."""
        from ._problem import problem_from_dict
        if isinstance(shapes, dict):
            shapes = [shapes]
        probs = (N.Problem * len(shapes))(*[problem_from_dict(s, f"shapes[{i}]")
                                            for i, s in enumerate(shapes)])
        opts = N.TuneOptions()
        opts.budget_seconds = 0.0 if budget is None else float(budget)
        if budget is not None and not budget > 0:
            raise ValueError(f"budget: must be a positive number of seconds (got {budget})")
        opts.retune = int(bool(retune))
        if progress is not None:
            def bridge(p, _user):
                pr = p.contents
                progress({"shape": pr.shape, "unit": (pr.unit or b"").decode(),
                          "candidate": pr.candidate, "num_candidates": pr.num_candidates,
                          "elapsed_s": pr.elapsed_s})
            opts.progress = N.PROGRESS_FN(bridge)
        cap = 16 * len(shapes) + 16
        results = (N.TuneResult * cap)()
        count = ctypes.c_size_t(0)
        self.check(N.lib.clattn_tune(self.handle, probs, len(shapes), ctypes.byref(opts),
                                     results, cap, ctypes.byref(count)), "clattn_tune")
        out = []
        for r in results[:count.value]:
            out.append({"shape": r.shape, "unit": r.unit.decode(), "params": r.params.decode(),
                        "median_ms": r.median_ms, "default_ms": r.default_ms,
                        "tuned": bool(r.tuned), "from_db": bool(r.from_db), "tried": r.tried,
                        "rejected": r.rejected})
        return out

    def tuning_entries(self):
        n = ctypes.c_size_t(0)
        self.check(N.lib.clattn_tuning_count(self.handle, ctypes.byref(n)), "clattn_tuning_count")
        out = []
        for i in range(n.value):
            e = N.TuningEntry()
            self.check(N.lib.clattn_tuning_get(self.handle, i, ctypes.byref(e)),
                       "clattn_tuning_get")
            out.append({f: (getattr(e, f).decode() if isinstance(getattr(e, f), bytes)
                            else getattr(e, f)) for f, _ in N.TuningEntry._fields_})
        return out

    def export_tuning(self, path):
        self.check(N.lib.clattn_tuning_export(self.handle, str(path).encode()),
                   "clattn_tuning_export")

    def import_tuning(self, path):
        self.check(N.lib.clattn_tuning_import(self.handle, str(path).encode()),
                   "clattn_tuning_import")

    def clear_cache(self):
        """Empties the disk cache under this context's cache root."""
        st = N.lib.clattn_cache_clear(ctypes.byref(self._opts))
        self.check(st, "clattn_cache_clear")

    # ---- running ----------------------------------------------------------

    def supports(self, problem):
        return N.lib.clattn_supports(self.handle, ctypes.byref(problem)) == 0

    def buffer_sizes(self, problem):
        z = N.BufferSizes()
        self.check(N.lib.clattn_buffer_sizes_of(self.handle, ctypes.byref(problem),
                                                ctypes.byref(z)), "clattn_buffer_sizes_of")
        return z

    def run(self, problem, inputs, outputs):
        """clattn_forward over host memory. inputs / outputs map a
        clattn_buffers field to (address, bytes); outputs are written. In
        zero-copy mode the buffers wrap the memory in place
        (CL_MEM_USE_HOST_PTR) and a map of each output makes the host copy
        current; otherwise inputs are copied in and outputs read back."""
        made = []
        bufs = N.Buffers()
        err = ctypes.c_int(0)
        try:
            for name, (ptr, size) in list(inputs.items()) + list(outputs.items()):
                out = name in outputs
                if self.zero_copy:
                    flags = (N.CL_MEM_READ_WRITE if out else N.CL_MEM_READ_ONLY) | \
                        N.CL_MEM_USE_HOST_PTR
                else:
                    flags = N.CL_MEM_READ_WRITE if out else \
                        N.CL_MEM_READ_ONLY | N.CL_MEM_COPY_HOST_PTR
                host = ptr if (self.zero_copy or not out) else None
                m = N.cl.clCreateBuffer(self._cl_context, flags, max(size, 1), host,
                                        ctypes.byref(err))
                if err.value != 0 or not m:
                    raise MemoryError(f"clCreateBuffer for {name} ({size} bytes) failed: "
                                      f"OpenCL error {err.value}")
                made.append(m)
                setattr(bufs, name, m)
            st = N.lib.clattn_forward(self.handle, ctypes.byref(problem), ctypes.byref(bufs),
                                      0, None, None)
            self.check(st, "clattn_forward")
            for name, (ptr, size) in outputs.items():
                m = getattr(bufs, name)
                if self.zero_copy:
                    p = N.cl.clEnqueueMapBuffer(self._queue, m, N.CL_TRUE, N.CL_MAP_READ, 0,
                                                size, 0, None, None, ctypes.byref(err))
                    if err.value != 0:
                        raise RuntimeError(f"clEnqueueMapBuffer({name}): OpenCL error "
                                           f"{err.value}")
                    if p != ptr:  # the device kept its own copy after all
                        ctypes.memmove(ptr, p, size)
                    N.cl.clEnqueueUnmapMemObject(self._queue, m, p, 0, None, None)
                else:
                    e = N.cl.clEnqueueReadBuffer(self._queue, m, N.CL_TRUE, 0, size, ptr, 0,
                                                 None, None)
                    if e != 0:
                        raise RuntimeError(f"clEnqueueReadBuffer({name}): OpenCL error {e}")
            N.cl.clFinish(self._queue)
        finally:
            if made:
                N.cl.clFinish(self._queue)
            for m in made:
                N.cl.clReleaseMemObject(m)


_default = None
_default_lock = threading.Lock()


def default_context():
    """The context calls use when none is given: created on first use on the
    library's default device (CLATTN_DEVICE selects another)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Context()
            # closed while the interpreter is whole, so its due program
            # binaries reach the disk cache
            atexit.register(_default.close)
        return _default


def set_default_context(ctx):
    global _default
    with _default_lock:
        _default = ctx
