"""clattn: scaled dot-product attention on any OpenCL device.

    import clattn
    out = clattn.scaled_dot_product_attention(q, k, v, is_causal=True)

The functions mirror torch.nn.functional.scaled_dot_product_attention and
take CPU torch tensors or NumPy arrays; clattn.transformers registers the
attention with Hugging Face transformers. The library's messages go to the
'clattn' logger.
"""
from ._context import Context, default_context, devices, set_default_context, version
from ._errors import ClattnError, InvalidArgument, Unsupported
from ._sdpa import alibi_slopes, attention_weights, scaled_dot_product_attention

__all__ = ["Context", "ClattnError", "InvalidArgument", "Unsupported", "alibi_slopes",
           "attention_weights", "default_context", "devices", "scaled_dot_product_attention",
           "set_default_context", "version"]
__version__ = version()  # the header's, which the package metadata also reads
