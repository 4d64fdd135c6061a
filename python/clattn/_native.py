"""ctypes mirror of include/clattn.h and the few OpenCL calls the package makes.

The structures below follow the C declarations field by field; the test
tests/test_abi.py compiles a C program against clattn.h and compares every
offset and size with these, so a change to the header that is not mirrored
here fails CI rather than corrupting memory.
"""
import ctypes
import ctypes.util
import os

c_int, c_float, c_double = ctypes.c_int, ctypes.c_float, ctypes.c_double
c_int64, c_uint64, c_size_t = ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t
c_void_p, c_char_p = ctypes.c_void_p, ctypes.c_char_p

F32, F16, BF16 = 0, 1, 2
PATHS = {"auto": 0, "fused": 1, "three_stage": 2, "split_kv": 3}
CAUSAL_NONE, CAUSAL_BOTTOM_RIGHT, CAUSAL_TOP_LEFT = 0, 1, 2
KV_FORMATS = {"default": 0, "f32": 1, "f16": 2, "bf16": 3, "int8": 4, "int4": 5,
              "q8_0": 6, "q4_0": 7, "fp8_e4m3": 8, "fp8_e5m2": 9}

STATUS_NAMES = {0: "CLATTN_OK", 1: "CLATTN_ERR_INVALID_ARGUMENT",
                2: "CLATTN_ERR_UNSUPPORTED", 3: "CLATTN_ERR_NO_DEVICE",
                4: "CLATTN_ERR_OUT_OF_RESOURCES", 5: "CLATTN_ERR_BUILD",
                6: "CLATTN_ERR_OPENCL", 7: "CLATTN_ERR_IO"}


class Strides(ctypes.Structure):
    _fields_ = [("batch", c_int64), ("head", c_int64), ("seq", c_int64)]


class MaskStrides(ctypes.Structure):
    _fields_ = [("batch", c_int64), ("head", c_int64), ("row", c_int64)]


class MaskLayout(ctypes.Structure):
    _fields_ = [("enabled", c_int), ("dtype", c_int), ("strides", MaskStrides)]


class KVStorage(ctypes.Structure):
    _fields_ = [("format", c_int), ("group", c_int), ("scale_dtype", c_int),
                ("per_head", c_int)]


class Paging(ctypes.Structure):
    _fields_ = [("enabled", c_int), ("page_size", c_int), ("num_pages", c_int),
                ("max_pages_per_seq", c_int)]


class Problem(ctypes.Structure):
    _fields_ = [
        ("batch", c_int), ("heads", c_int), ("kv_heads", c_int),
        ("seq_q", c_int), ("seq_kv", c_int), ("head_dim", c_int),
        ("head_dim_v", c_int), ("dtype", c_int), ("scale", c_float),
        ("causal", c_int), ("windowed", c_int), ("window_left", c_int),
        ("window_right", c_int),
        ("mask_batch_stride", c_int64), ("mask_head_stride", c_int64),
        ("q_strides", Strides), ("k_strides", Strides), ("v_strides", Strides),
        ("o_strides", Strides), ("path", c_int),
        # since 1.0
        ("softcap", c_float), ("sinks", c_int), ("alibi", c_int),
        ("kv_start", c_int), ("chunk_size", c_int),
        ("bias", MaskLayout), ("bool_mask", MaskLayout),
        ("varlen", c_int), ("total_q", c_int), ("total_kv", c_int),
        ("padding_", c_int),
        # since 1.1
        ("k_storage", KVStorage), ("v_storage", KVStorage), ("paged", Paging),
        # since 1.4
        ("alibi_mode", c_int), ("padding_1_4_", c_int),
        ("reserved", c_int64 * 1),
    ]


class HostBuffers(ctypes.Structure):
    _fields_ = [
        ("q", c_void_p), ("k", c_void_p), ("v", c_void_p), ("o", c_void_p),
        ("mask", c_void_p), ("kv_lens", c_void_p), ("lse", c_void_p),
        ("bias", c_void_p), ("bool_mask", c_void_p), ("sinks", c_void_p),
        ("alibi_slopes", c_void_p), ("kv_start", c_void_p),
        ("cu_seqlens_q", c_void_p), ("cu_seqlens_kv", c_void_p),
        ("block_table", c_void_p), ("k_scales", c_void_p), ("v_scales", c_void_p),
        ("sizes", c_void_p), ("reserved", c_void_p * 4),
    ]


# clattn_buffers: the same buffers as cl_mem handles (pointers), no sizes.
class Buffers(ctypes.Structure):
    _fields_ = HostBuffers._fields_[:17] + [("reserved", c_void_p * 5)]


class BufferSizes(ctypes.Structure):
    _fields_ = [(n, c_size_t) for n in (
        "q", "k", "v", "o", "lse", "mask", "kv_lens", "bias", "bool_mask", "sinks",
        "alibi_slopes", "kv_start", "cu_seqlens_q", "cu_seqlens_kv", "block_table",
        "k_scales", "v_scales", "probs")]


LOG_FN = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class Options(ctypes.Structure):
    _fields_ = [("platform", c_int), ("device", c_int), ("cache_dir", c_char_p),
                ("log", LOG_FN), ("log_user_data", c_void_p),
                ("max_scratch_bytes", c_size_t), ("cache_max_bytes", c_uint64)]


class Stats(ctypes.Structure):
    _fields_ = [("programs_built", c_uint64), ("programs_loaded", c_uint64),
                ("programs_stored", c_uint64), ("cache_rejected", c_uint64),
                ("disk_cache_enabled", c_int)]


class TuneProgress(ctypes.Structure):
    _fields_ = [("shape", c_size_t), ("num_shapes", c_size_t), ("unit", c_char_p),
                ("candidate", c_int), ("num_candidates", c_int),
                ("best_ms", c_double), ("default_ms", c_double),
                ("elapsed_s", c_double), ("budget_s", c_double),
                ("unit_index", c_int), ("num_units", c_int)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(TuneProgress), c_void_p)


class TuneOptions(ctypes.Structure):
    _fields_ = [("budget_seconds", c_double), ("retune", c_int),
                ("progress", PROGRESS_FN), ("progress_user_data", c_void_p)]


class TuneResult(ctypes.Structure):
    _fields_ = [("shape", c_size_t), ("unit", ctypes.c_char * 24),
                ("params", ctypes.c_char * 160), ("median_ms", c_double),
                ("p20_ms", c_double), ("p80_ms", c_double), ("default_ms", c_double),
                ("tuned", c_int), ("from_db", c_int), ("tried", c_int), ("rejected", c_int),
                ("rejected_reason", ctypes.c_char * 160)]


class TuningEntry(ctypes.Structure):
    _fields_ = [("unit", ctypes.c_char * 24), ("dtype", c_int), ("head_dim", c_int),
                ("head_dim_v", c_int), ("causal", c_int), ("windowed", c_int),
                ("has_mask", c_int), ("group", c_int), ("seq_q_bucket", c_int),
                ("seq_kv_bucket", c_int), ("params", ctypes.c_char * 160),
                ("median_ms", c_double), ("p20_ms", c_double), ("p80_ms", c_double),
                ("default_ms", c_double), ("stale", c_int), ("layer", c_int)]


# The structures test_abi.py checks, by their C names.
# clattn 1.3: tiles and one attention over several contexts.
class Tile(ctypes.Structure):
    _fields_ = [("q_offset", c_int), ("seq_q", c_int), ("kv_offset", c_int), ("seq_kv", c_int),
                ("reserved", c_int64 * 2)]


MULTI_MAX = 16
SPLITS = {"auto": 0, "rows": 1, "keys": 2, "batch": 3}


class MultiOptions(ctypes.Structure):
    _fields_ = [("split", c_int), ("weights", c_void_p), ("reserved", c_int64 * 4)]


class MultiReport(ctypes.Structure):
    _fields_ = [("split", c_int), ("used", c_int), ("weights", ctypes.c_double * MULTI_MAX),
                ("share", c_int64 * MULTI_MAX), ("ms", ctypes.c_double * MULTI_MAX)]


STRUCTS = {
    "clattn_strides": Strides, "clattn_mask_strides": MaskStrides,
    "clattn_mask_layout": MaskLayout, "clattn_kv_storage": KVStorage,
    "clattn_paging": Paging, "clattn_problem": Problem,
    "clattn_host_buffers": HostBuffers, "clattn_buffers": Buffers,
    "clattn_buffer_sizes": BufferSizes, "clattn_options": Options,
    "clattn_stats": Stats, "clattn_tune_progress": TuneProgress,
    "clattn_tune_options": TuneOptions, "clattn_tune_result": TuneResult,
    "clattn_tuning_entry": TuningEntry, "clattn_tile": Tile,
    "clattn_multi_options": MultiOptions, "clattn_multi_report": MultiReport,
}


def _library_path():
    """The library this package was built with (installed next to it), or
    CLATTN_LIBRARY, which a developer may point at a build tree's copy."""
    env = os.environ.get("CLATTN_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.startswith("libclattn.so") or name in ("libclattn.dylib", "clattn.dll"):
            return os.path.join(here, name)
    found = ctypes.util.find_library("clattn")
    if found:
        return found
    raise ImportError("clattn: the native library was not found next to the package "
                      "(install with `pip install .`, or set CLATTN_LIBRARY)")


def _load():
    lib = ctypes.CDLL(_library_path())
    P = ctypes.POINTER
    sig = {
        "clattn_status_string": (c_char_p, [c_int]),
        "clattn_version": (c_char_p, []),
        "clattn_options_init": (c_int, [P(Options)]),
        "clattn_context_create": (c_int, [P(Options), P(c_void_p)]),
        "clattn_context_destroy": (None, [c_void_p]),
        "clattn_last_error": (c_char_p, [c_void_p]),
        "clattn_context_get_cl": (c_int, [c_void_p, P(c_void_p), P(c_void_p), P(c_void_p)]),
        "clattn_context_stats": (c_int, [c_void_p, P(Stats)]),
        "clattn_supports": (c_int, [c_void_p, P(Problem)]),
        "clattn_buffer_sizes_of": (c_int, [c_void_p, P(Problem), P(BufferSizes)]),
        "clattn_forward": (c_int, [c_void_p, P(Problem), P(Buffers), ctypes.c_uint,
                                   c_void_p, P(c_void_p)]),
        "clattn_forward_host": (c_int, [c_void_p, P(Problem), P(HostBuffers)]),
        "clattn_attention_weights_host": (c_int, [c_void_p, P(Problem), P(HostBuffers),
                                                  c_void_p]),
        "clattn_alibi_slopes": (c_int, [c_int, c_void_p]),
        "clattn_tune": (c_int, [c_void_p, P(Problem), c_size_t, P(TuneOptions),
                                P(TuneResult), c_size_t, P(c_size_t)]),
        "clattn_tuning_count": (c_int, [c_void_p, P(c_size_t)]),
        "clattn_tuning_get": (c_int, [c_void_p, c_size_t, P(TuningEntry)]),
        "clattn_tuning_export": (c_int, [c_void_p, c_char_p]),
        "clattn_tuning_import": (c_int, [c_void_p, c_char_p]),
        "clattn_cache_clear": (c_int, [P(Options)]),
        "clattn_multi_forward_host": (c_int, [P(c_void_p), c_int, P(Problem), P(HostBuffers),
                                              P(MultiOptions), P(MultiReport)]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


def _load_opencl():
    name = ctypes.util.find_library("OpenCL") or "libOpenCL.so.1"
    cl = ctypes.CDLL(name)
    P = ctypes.POINTER
    u32, u64 = ctypes.c_uint32, ctypes.c_uint64
    sig = {
        "clGetPlatformIDs": (c_int, [u32, P(c_void_p), P(u32)]),
        "clGetPlatformInfo": (c_int, [c_void_p, u32, c_size_t, c_void_p, P(c_size_t)]),
        "clGetDeviceIDs": (c_int, [c_void_p, u64, u32, P(c_void_p), P(u32)]),
        "clGetDeviceInfo": (c_int, [c_void_p, u32, c_size_t, c_void_p, P(c_size_t)]),
        "clCreateBuffer": (c_void_p, [c_void_p, u64, c_size_t, c_void_p, P(c_int)]),
        "clReleaseMemObject": (c_int, [c_void_p]),
        "clEnqueueReadBuffer": (c_int, [c_void_p, c_void_p, u32, c_size_t, c_size_t,
                                        c_void_p, u32, c_void_p, c_void_p]),
        "clEnqueueMapBuffer": (c_void_p, [c_void_p, c_void_p, u32, u64, c_size_t, c_size_t,
                                          u32, c_void_p, c_void_p, P(c_int)]),
        "clEnqueueUnmapMemObject": (c_int, [c_void_p, c_void_p, c_void_p, u32, c_void_p,
                                            c_void_p]),
        "clFinish": (c_int, [c_void_p]),
    }
    for fname, (res, args) in sig.items():
        f = getattr(cl, fname)
        f.restype, f.argtypes = res, args
    return cl


lib = _load()
cl = _load_opencl()

# OpenCL constants used here (cl.h).
CL_DEVICE_TYPE_ALL = 0xFFFFFFFF
CL_DEVICE_TYPE = 0x1000
CL_DEVICE_NAME = 0x102B
CL_DEVICE_VENDOR = 0x102C
CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F
CL_DEVICE_HOST_UNIFIED_MEMORY = 0x1035
CL_PLATFORM_NAME = 0x0902
CL_MEM_READ_WRITE = 1 << 0
CL_MEM_READ_ONLY = 1 << 2
CL_MEM_USE_HOST_PTR = 1 << 3
CL_MEM_COPY_HOST_PTR = 1 << 5
CL_MAP_READ = 1 << 0
CL_TRUE = 1
DEVICE_TYPES = {1 << 1: "cpu", 1 << 2: "gpu", 1 << 3: "accelerator", 1 << 4: "custom"}
