"""Hugging Face transformers integration: clattn as an attention backend.

    import clattn.transformers
    clattn.transformers.register()          # adds "clattn" to transformers
    model = AutoModelForCausalLM.from_pretrained(name, attn_implementation="clattn")
    clattn.transformers.check_model(model)  # refuses models that bypass it

or, for a model already loaded:

    clattn.transformers.use(model)          # register + switch + check

register() adds an attention function to transformers' AttentionInterface
and a mask function to its AttentionMaskInterface, both under the name
"clattn". The mask function builds the masks sdpa gets: a boolean
[batch, 1, q_len, kv_len] mask (True = attend; broadcast dimensions have
stride 0 and are read in place by clattn), or None where a plain causal
or a full bidirectional pattern without padding lets the attention use
clattn's own causal flag instead. Sliding windows, chunking and padding
are then in the mask, as for sdpa and eager; the model's
`sliding_window` argument to the attention is not needed (eager ignores
it as well; ModernBERT, for one, passes a flash-attention style value).

The attention function computes what each model's eager attention does:
scaling (None: 1/sqrt(head_dim)), grouped-query attention without
repeating K/V (clattn reads kv_heads), `softcap` (Gemma 2's logit
softcapping, applied before the mask as eager does), `s_aux` (gpt-oss
attention sinks), `position_bias` (T5's relative bias, added to the
scores with the mask), cross-attention (keys longer or shorter than the
queries), masks longer than the keys (the first kv_len columns, as eager
slices them) and `output_attentions` (the probabilities, from
clattn.attention_weights). clattn computes no gradients and no dropout:
in training mode with gradients enabled, or with dropout > 0 in training
mode, the function raises ValueError; in eval mode its inputs are
detached (the attention output carries no gradient).

Models whose attention layers do not call the AttentionInterface run
their own attention whatever attn_implementation says; check_model(model)
(called by use()) runs a short forward pass and raises ValueError naming
the model class and the attention modules that did not dispatch to
clattn.
"""
import threading

import torch

from ._errors import ClattnError
from ._sdpa import attention_weights, scaled_dot_product_attention

NAME = "clattn"

__all__ = ["NAME", "attention_forward", "check_model", "mask", "register", "use"]

# dry-forward bookkeeping for check_model (per thread)
_trace = threading.local()


def _note_dispatch():
    active = getattr(_trace, "active", None)
    if active is not None:
        _trace.calls += 1
        for entry in active:
            entry[1] = True


def _inference_view(x, module, what):
    """x detached for clattn, or ValueError when gradients are wanted."""
    if x is None or not isinstance(x, torch.Tensor):
        return x
    if x.requires_grad and torch.is_grad_enabled():
        if getattr(module, "training", False):
            raise ValueError(
                f"clattn computes no gradients: {type(module).__name__} is in training mode with "
                f"gradients enabled ({what} requires grad). Train with attn_implementation="
                "'eager' or 'sdpa'; use clattn for inference (model.eval(), torch.no_grad()).")
        x = x.detach()
    return x


def _wants_weights(module, kwargs):
    if "output_attentions" in kwargs and kwargs["output_attentions"] is not None:
        return bool(kwargs["output_attentions"])
    config = getattr(module, "config", None)
    return bool(getattr(config, "output_attentions", False))


def attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                      **kwargs):
    """transformers' attention-interface function run by clattn.

    query [B, H, Q, D], key/value [B, Hkv, S, D(v)] (views of any strides),
    attention_mask None, boolean (True = attend) or additive float,
    broadcastable to [B, H, Q, S'] with S' >= S. Returns (attn_output
    [B, Q, H, Dv] contiguous, attn_weights [B, H, Q, S] or None)."""
    _note_dispatch()
    training = bool(getattr(module, "training", False))
    if dropout and training:
        raise ValueError(
            f"clattn has no attention dropout ({type(module).__name__} is in training mode with "
            f"dropout={dropout}); call model.eval() for inference or use another "
            "attn_implementation to train")
    # eval mode: eager's dropout is the identity there, whatever p the model passes
    query = _inference_view(query, module, "query")
    key = _inference_view(key, module, "key")
    value = _inference_view(value, module, "value")
    attention_mask = _inference_view(attention_mask, module, "attention_mask")
    position_bias = _inference_view(kwargs.get("position_bias"), module, "position_bias")
    sinks = _inference_view(kwargs.get("s_aux"), module, "s_aux")
    softcap = kwargs.get("softcap")
    want_weights = _wants_weights(module, kwargs)

    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise ValueError(f"clattn attention ({type(module).__name__}): expected 4-d query/key/"
                         f"value [batch, heads, seq, dim], got {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")
    if attention_mask is not None and not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"clattn attention ({type(module).__name__}): attention_mask of type "
                        f"{type(attention_mask).__name__} (a flex BlockMask?) is not supported; "
                        "the model's config._attn_implementation must be 'clattn' so that "
                        "masks are built by clattn's mask function")
    # a batch broadcast (learned queries of batch 1 against a batch of keys)
    if query.shape[0] != key.shape[0]:
        if query.shape[0] == 1:
            query = query.expand(key.shape[0], -1, -1, -1)
        elif key.shape[0] == 1:
            key = key.expand(query.shape[0], -1, -1, -1)
            value = value.expand(query.shape[0], -1, -1, -1)
    # K/V in one dtype with the query (a cache kept in another dtype)
    if key.dtype != query.dtype:
        key = key.to(query.dtype)
    if value.dtype != query.dtype:
        value = value.to(query.dtype)

    q_len, kv_len = query.shape[2], key.shape[2]

    # masks built for more keys than there are (eager slices the first kv_len)
    def fit(m):
        if m is None or m.shape[-1] == kv_len:
            return m
        if m.shape[-1] == 1:
            return m
        if m.shape[-1] < kv_len:
            raise ValueError(f"clattn attention ({type(module).__name__}): mask/bias of shape "
                             f"{tuple(m.shape)} covers fewer keys than the {kv_len} given")
        return m[..., :kv_len]

    attention_mask = fit(attention_mask)
    position_bias = fit(position_bias)

    # sdpa's rule: the causal flag stands in for a mask only when there is none
    is_causal = kwargs.get("is_causal")
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    causal = bool(is_causal) and q_len > 1 and attention_mask is None

    # with no mask and more keys than queries (a static cache's prefill) the
    # top-left causal rows see only the first q_len keys
    if causal and kv_len > q_len and not want_weights:
        key, value = key[:, :, :q_len], value[:, :, :q_len]
        if position_bias is not None and position_bias.shape[-1] != 1:
            position_bias = position_bias[..., :q_len]
        kv_len = q_len

    # T5's relative bias goes in as clattn's additive bias next to the
    # boolean padding mask, both read in place; only a float mask has to be
    # added to it here
    mask, bias = attention_mask, position_bias
    if bias is not None and mask is not None and mask.dtype != torch.bool:
        mask, bias = bias + mask, None

    if sinks is not None:
        sinks = sinks.detach().to(torch.float32).reshape(-1)
    if softcap is not None:
        softcap = float(softcap)
        if softcap == 0.0:
            softcap = None

    extra = dict(enable_gqa=True, causal="top_left" if causal else None, softcap=softcap,
                 sinks=sinks, bias=bias)
    out = scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling,
                                       **extra)
    weights = None
    if want_weights:
        weights = attention_weights(query, key, attn_mask=mask, scale=scaling, **extra)
        weights = weights.to(query.dtype)
    return out.transpose(1, 2).contiguous(), weights


def mask(*args, **kwargs):
    """transformers' mask-interface function for clattn: the masks sdpa
    gets (see the module's docstring), which clattn reads in place."""
    from transformers.masking_utils import sdpa_mask
    return sdpa_mask(*args, **kwargs)


def register():
    """Registers "clattn" with transformers' AttentionInterface and
    AttentionMaskInterface (again on each call: cheap, and it restores
    clattn's functions if the name was taken over). Returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface
    AttentionInterface.register(NAME, attention_forward)
    AttentionMaskInterface.register(NAME, mask)
    return NAME


def use(model, example_inputs=None):
    """Registers clattn, switches `model` (and its sub-models) to it and
    checks with check_model that every attention layer that runs dispatches
    to clattn. Returns the model; ValueError naming the class otherwise."""
    register()
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "set_attn_implementation"):
        raise ValueError(f"{type(model).__name__} is not a transformers PreTrainedModel; "
                         "clattn.transformers.use() needs one")
    model.set_attn_implementation(NAME)
    if config._attn_implementation != NAME:
        raise ValueError(
            f"{type(model).__name__} does not let its attention implementation be set to "
            f"'clattn' (it stays '{config._attn_implementation}'): its attention does not go "
            "through transformers' AttentionInterface")
    check_model(model, example_inputs)
    return model


def _default_inputs(model):
    config = model.config
    main = getattr(model, "main_input_name", "input_ids")
    if main != "input_ids":
        raise ValueError(
            f"check_model: {type(model).__name__} takes '{main}', not input_ids; pass "
            "example_inputs= (a dict of the model's forward arguments) for the check")
    vocab = getattr(config, "vocab_size", None) or getattr(
        getattr(config, "get_text_config", lambda: config)(), "vocab_size", None) or 8
    ids = (torch.arange(1, 7).reshape(1, 6) % max(int(vocab), 1)).long()
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if getattr(config, "is_encoder_decoder", False):
        start = getattr(config, "decoder_start_token_id", None)
        start = 0 if start is None else int(start)
        dec = torch.tensor([[start, 1, 2]]) % max(int(vocab), 1)
        inputs["decoder_input_ids"] = dec.long()
    return inputs


def _is_attention_class(module):
    return "Attention" in type(module).__name__


def check_model(model, example_inputs=None):
    """Runs one forward pass of `model` (no gradients, eval mode, then
    restored) and raises ValueError naming the model class when its
    attention does not go through clattn: when the configured
    implementation is not 'clattn', when no attention call reached clattn,
    or when a module whose class name contains 'Attention' (the innermost
    such modules) ran without calling clattn's attention function. Returns
    the number of attention calls clattn served in the pass.

    example_inputs: the forward's keyword arguments (default: six token ids,
    plus three decoder ids for encoder-decoders)."""
    register()
    name = type(model).__name__
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    if impl != NAME:
        raise ValueError(f"{name}: config._attn_implementation is {impl!r}, not 'clattn'; "
                         "load it with attn_implementation='clattn' or call "
                         "clattn.transformers.use(model)")
    inputs = dict(example_inputs) if example_inputs is not None else _default_inputs(model)

    # the innermost attention-named modules, each watched through its forward
    named = [(n, m) for n, m in model.named_modules() if _is_attention_class(m)]
    leaves = [(n, m) for n, m in named
              if not any(_is_attention_class(c) for c in list(m.modules())[1:])]
    ran = {}  # name -> [class name, dispatched]
    handles = []

    def pre(n):
        def hook(mod, args, kwargs=None):
            entry = [n, False]
            _trace.active.append(entry)
        return hook

    def post(n):
        def hook(mod, args, output):
            entry = _trace.active.pop()
            prev = ran.get(n)
            ran[n] = [type(mod).__name__, entry[1] or (prev[1] if prev else False)]
        return hook

    for n, m in leaves:
        handles.append(m.register_forward_pre_hook(pre(n)))
        handles.append(m.register_forward_hook(post(n)))
    was_training = model.training
    _trace.active, _trace.calls = [], 0
    try:
        model.eval()
        with torch.no_grad():
            try:
                model(**inputs)
            except (ValueError, TypeError, IndexError, RuntimeError) as e:
                if isinstance(e, ClattnError) or "clattn" in str(e):
                    raise  # clattn's own refusal, or the library's error
                raise ValueError(f"check_model: the trial forward pass of {name} failed "
                                 f"({type(e).__name__}: {e}); pass example_inputs= with valid "
                                 "forward arguments") from e
        calls = _trace.calls
    finally:
        _trace.active = None
        for h in handles:
            h.remove()
        model.train(was_training)

    bypass = sorted({cls for cls, ok in ran.values() if not ok})
    if bypass:
        raise ValueError(
            f"{name} is not supported by clattn: its attention module(s) {', '.join(bypass)} "
            "compute attention themselves instead of calling transformers' AttentionInterface, "
            "so attn_implementation='clattn' would not be used")
    if calls == 0:
        raise ValueError(
            f"{name} is not supported by clattn: a forward pass made no call to the "
            "attention function registered as 'clattn' (its attention does not go through "
            "transformers' AttentionInterface)")
    return calls
