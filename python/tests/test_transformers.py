"""clattn.transformers against transformers' eager attention, on tiny
random-weight models built from configs (nothing is downloaded).

For each family: prefill logits of a padded batch with
attn_implementation="clattn" vs "eager" (float32; compared at the
non-padding positions: a padding query row that sees no key gives zeros in
clattn and an average in eager, and no other position reads it), and for
generative models greedy generation (token ids equal, per-step scores
close), plus direct checks of the attention function and the refusal of
models that bypass the AttentionInterface.

Tolerance: max |clattn - eager| <= TOL * max(1, max |eager|) with
TOL = 1e-4 (measured differences are printed with -s; they are ~1e-7..1e-6).
"""
import pytest
import torch
from torch import nn

import transformers  # required, as torch (see conftest): a missing one fails

import clattn  # noqa: E402
import clattn.transformers as ct  # noqa: E402

TOL = 1e-4
VOCAB = 128
SEQ = 14
NEW = 8
MEASURED = {}


@pytest.fixture(scope="module", autouse=True)
def _registered():
    ct.register()
    yield
    if MEASURED:
        print("\nclattn vs eager, max |diff| / max(1, max |eager|):")
        for k in sorted(MEASURED):
            print(f"  {k:28s} {MEASURED[k]:.3e}")


def _seeded(build):
    torch.manual_seed(1234)
    model = build()
    model.eval()
    return model


def _rel_diff(a, b):
    return ((a - b).abs().max() / max(1.0, b.abs().max().item())).item()


def _check(name, got, want):
    """Records and bounds the difference; -inf entries (logits processors
    of generate) must match exactly."""
    assert not torch.isnan(got).any(), f"{name}: clattn output has NaN"
    fin = torch.isfinite(want)
    assert torch.equal(torch.isfinite(got), fin) and torch.equal(got[~fin], want[~fin]), \
        f"{name}: infinite entries differ"
    got, want = got[fin], want[fin]
    d = _rel_diff(got, want)
    MEASURED[name] = max(MEASURED.get(name, 0.0), d)
    assert d <= TOL, f"{name}: max relative difference {d:.3e} > {TOL}"
    return d


def _run(model, impl, fn):
    model.set_attn_implementation(impl)
    assert model.config._attn_implementation == impl
    with torch.no_grad():
        return fn()


def _ids(batch, seq, low=3):
    g = torch.Generator().manual_seed(7)
    return torch.randint(low, VOCAB, (batch, seq), generator=g)


def _padded(batch=2, seq=SEQ, side="left", pad=0, n_pad=4):
    """ids and mask with row 0 padded by n_pad tokens on `side`."""
    ids = _ids(batch, seq)
    mask = torch.ones_like(ids)
    if side == "left":
        ids[0, :n_pad], mask[0, :n_pad] = pad, 0
    else:
        ids[0, seq - n_pad:], mask[0, seq - n_pad:] = pad, 0
    return ids, mask


# ---- model builders ------------------------------------------------------

def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2,
                                      n_head=4, initializer_range=0.1, bos_token_id=1,
                                      eos_token_id=2, attn_implementation="eager"))


def llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    return LlamaForCausalLM(LlamaConfig(hidden_size=64, num_attention_heads=4,
                                        num_key_value_heads=2, num_hidden_layers=2,
                                        intermediate_size=128, vocab_size=VOCAB,
                                        initializer_range=0.1, pad_token_id=0,
                                        attn_implementation="eager"))


def mistral():
    from transformers import MistralConfig, MistralForCausalLM
    return MistralForCausalLM(MistralConfig(hidden_size=64, num_attention_heads=4,
                                            num_key_value_heads=1, num_hidden_layers=2,
                                            intermediate_size=128, vocab_size=VOCAB,
                                            sliding_window=5, initializer_range=0.1,
                                            pad_token_id=0, attn_implementation="eager"))


def qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM
    return Qwen2ForCausalLM(Qwen2Config(hidden_size=64, num_attention_heads=4,
                                        num_key_value_heads=2, num_hidden_layers=2,
                                        intermediate_size=128, vocab_size=VOCAB,
                                        use_sliding_window=True, sliding_window=6,
                                        max_window_layers=1, initializer_range=0.1,
                                        pad_token_id=0, attn_implementation="eager"))


def gemma2():
    from transformers import Gemma2Config, Gemma2ForCausalLM
    # a small softcap so that it bends the scores of these tiny models
    return Gemma2ForCausalLM(Gemma2Config(hidden_size=64, num_attention_heads=4,
                                          num_key_value_heads=2, head_dim=16,
                                          num_hidden_layers=2, intermediate_size=128,
                                          vocab_size=VOCAB, query_pre_attn_scalar=16,
                                          sliding_window=5, attn_logit_softcapping=0.5,
                                          final_logit_softcapping=30.0,
                                          layer_types=["sliding_attention", "full_attention"],
                                          initializer_range=0.1, attn_implementation="eager"))


def gemma3():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    # Gemma 3's attention passes no softcap to the interface (its eager
    # ignores attn_logit_softcapping): set it to see that clattn follows eager
    return Gemma3ForCausalLM(Gemma3TextConfig(hidden_size=64, num_attention_heads=4,
                                              num_key_value_heads=2, head_dim=16,
                                              num_hidden_layers=2, intermediate_size=128,
                                              vocab_size=VOCAB, query_pre_attn_scalar=16,
                                              sliding_window=5, attn_logit_softcapping=0.5,
                                              layer_types=["sliding_attention",
                                                           "full_attention"],
                                              initializer_range=0.1,
                                              attn_implementation="eager"))


def gpt_oss():
    from transformers import GptOssConfig, GptOssForCausalLM
    # every token takes both experts: no top-k routing whose flips (from
    # rounding anywhere) would make the comparisons discontinuous
    m = GptOssForCausalLM(GptOssConfig(hidden_size=64, num_attention_heads=4,
                                       num_key_value_heads=2, head_dim=16, num_hidden_layers=2,
                                       intermediate_size=64, num_local_experts=2,
                                       num_experts_per_tok=2, vocab_size=VOCAB,
                                       sliding_window=5,
                                       layer_types=["sliding_attention", "full_attention"],
                                       initializer_range=0.1, pad_token_id=0,
                                       attn_implementation="eager"))
    with torch.no_grad():  # sinks large enough to take a visible share
        for layer in m.model.layers:
            layer.self_attn.sinks.copy_(torch.linspace(-1.0, 2.0, 4))
    return m


def bert():
    from transformers import BertConfig, BertForMaskedLM
    return BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=128,
                                      max_position_embeddings=64, initializer_range=0.1,
                                      attn_implementation="eager"))


def modernbert():
    from transformers import ModernBertConfig, ModernBertForMaskedLM
    # layers: sliding (window 8 = 4 each side) then full; SEQ > 8
    return ModernBertForMaskedLM(ModernBertConfig(vocab_size=VOCAB, hidden_size=64,
                                                  num_hidden_layers=2, num_attention_heads=4,
                                                  intermediate_size=128, local_attention=8,
                                                  layer_types=["sliding_attention",
                                                               "full_attention"],
                                                  max_position_embeddings=64, pad_token_id=0,
                                                  bos_token_id=1, eos_token_id=2,
                                                  cls_token_id=1, sep_token_id=2,
                                                  initializer_range=0.1,
                                                  attn_implementation="eager"))


def t5():
    from transformers import T5Config, T5ForConditionalGeneration
    return T5ForConditionalGeneration(T5Config(vocab_size=VOCAB, d_model=64, d_kv=16,
                                               d_ff=128, num_layers=2, num_heads=4,
                                               relative_attention_num_buckets=8,
                                               relative_attention_max_distance=16,
                                               decoder_start_token_id=0, pad_token_id=0,
                                               eos_token_id=1, initializer_factor=1.0,
                                               attn_implementation="eager"))


def bart():
    from transformers import BartConfig, BartForConditionalGeneration
    return BartForConditionalGeneration(BartConfig(vocab_size=VOCAB, d_model=64,
                                                   encoder_layers=2, decoder_layers=2,
                                                   encoder_attention_heads=4,
                                                   decoder_attention_heads=4,
                                                   encoder_ffn_dim=128, decoder_ffn_dim=128,
                                                   max_position_embeddings=64, init_std=0.1,
                                                   pad_token_id=1, bos_token_id=0,
                                                   eos_token_id=2, decoder_start_token_id=2,
                                                   forced_eos_token_id=None,
                                                   attn_implementation="eager"))


DECODERS = {"gpt2": gpt2, "llama": llama, "mistral": mistral, "qwen2": qwen2,
            "gemma2": gemma2, "gemma3": gemma3, "gpt_oss": gpt_oss}
ENCODERS = {"bert": bert, "modernbert": modernbert}
SEQ2SEQ = {"t5": t5, "bart": bart}


def _generate(model, impl, **inputs):
    def go():
        out = model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False,
                             num_beams=1, output_scores=True, return_dict_in_generate=True)
        return out.sequences, torch.stack(out.scores, 1)
    return _run(model, impl, go)


def _compare_generation(name, model, **inputs):
    seq_e, sc_e = _generate(model, "eager", **inputs)
    seq_c, sc_c = _generate(model, "clattn", **inputs)
    _check(name + " decode scores", sc_c, sc_e)
    assert torch.equal(seq_c, seq_e), f"{name}: greedy tokens differ\n{seq_c}\n{seq_e}"


# ---- decoder-only models --------------------------------------------------

@pytest.mark.parametrize("family", sorted(DECODERS))
def test_decoder_prefill_and_greedy(family):
    model = _seeded(DECODERS[family])
    ids, mask = _padded(side="left")
    e = _run(model, "eager", lambda: model(input_ids=ids, attention_mask=mask).logits)
    c = _run(model, "clattn", lambda: model(input_ids=ids, attention_mask=mask).logits)
    valid = mask.bool()
    _check(f"{family} prefill", c[valid], e[valid])
    # no padding at all: masks are skipped and clattn's causal flag is used
    full = ids[1:]
    e = _run(model, "eager", lambda: model(input_ids=full).logits)
    c = _run(model, "clattn", lambda: model(input_ids=full).logits)
    _check(f"{family} prefill", c, e)
    _compare_generation(family, model, input_ids=ids, attention_mask=mask, pad_token_id=0)
    assert ct.check_model(model) > 0  # config is 'clattn' after the run above


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_static_cache_generation(family):
    """StaticCache: keys and masks span the whole cache (max length), the
    unfilled part masked; without padding the prefill mask is skipped and
    the keys are longer than the queries (sdpa's top-left rule). Gemma 3
    mixes full layers with sliding ones, whose static cache rolls."""
    model = _seeded(DECODERS[family])
    ids, mask = _padded(side="left")
    _compare_generation(f"{family} static", model, input_ids=ids, attention_mask=mask,
                        pad_token_id=0, cache_implementation="static")
    _compare_generation(f"{family} static", model, input_ids=ids[1:], pad_token_id=0,
                        cache_implementation="static")


# ---- encoders -------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(ENCODERS))
def test_encoder_padded(family):
    model = _seeded(ENCODERS[family])
    ids, mask = _padded(side="right", n_pad=5)
    e = _run(model, "eager", lambda: model(input_ids=ids, attention_mask=mask).logits)
    c = _run(model, "clattn", lambda: model(input_ids=ids, attention_mask=mask).logits)
    valid = mask.bool()
    _check(f"{family} padded", c[valid], e[valid])
    e = _run(model, "eager", lambda: model(input_ids=ids[1:]).logits)
    c = _run(model, "clattn", lambda: model(input_ids=ids[1:]).logits)
    _check(f"{family} unpadded", c, e)
    assert ct.check_model(model) > 0


# ---- encoder-decoders -----------------------------------------------------

@pytest.mark.parametrize("family", sorted(SEQ2SEQ))
def test_seq2seq_prefill_and_greedy(family):
    model = _seeded(SEQ2SEQ[family])
    pad = model.config.pad_token_id
    ids, mask = _padded(side="right", pad=pad, n_pad=5)
    dec = _ids(2, 6)
    dec[:, 0] = model.config.decoder_start_token_id

    def fwd():
        return model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    e = _run(model, "eager", fwd)
    c = _run(model, "clattn", fwd)
    _check(f"{family} prefill", c, e)

    def unpadded():  # no masks at all: bidirectional encoder and cross-attention
        return model(input_ids=ids[1:], decoder_input_ids=dec[1:]).logits
    e = _run(model, "eager", unpadded)
    c = _run(model, "clattn", unpadded)
    _check(f"{family} prefill", c, e)
    _compare_generation(family, model, input_ids=ids, attention_mask=mask)
    assert ct.check_model(model) > 0


# ---- output_attentions ----------------------------------------------------

@pytest.mark.parametrize("family", ["llama", "gpt_oss", "t5"])
def test_output_attentions(family):
    builders = {**DECODERS, **SEQ2SEQ}
    model = _seeded(builders[family])
    if family == "t5":
        ids, mask = _padded(side="right", n_pad=5)
        dec = _ids(2, 5)
        dec[:, 0] = 0

        def fwd():
            return model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec,
                         output_attentions=True)
    else:
        ids, mask = _padded(side="left")

        def fwd():
            return model(input_ids=ids, attention_mask=mask, output_attentions=True)
    e = _run(model, "eager", fwd)
    c = _run(model, "clattn", fwd)
    groups = ["encoder_attentions", "decoder_attentions", "cross_attentions"] \
        if family == "t5" else ["attentions"]
    for g in groups:
        we, wc = getattr(e, g), getattr(c, g)
        assert wc is not None and len(wc) == len(we) > 0, f"{family}: no {g} from clattn"
        for layer, (a, b) in enumerate(zip(wc, we)):
            assert a.shape == b.shape, f"{family} {g}[{layer}]: {a.shape} vs {b.shape}"
            rows = torch.ones(a.shape[0], a.shape[2], dtype=torch.bool)
            if g == "attentions":  # padding query rows: zeros in clattn
                rows = mask.bool()
            elif g == "encoder_attentions":
                rows = mask.bool()
            _check(f"{family} weights", a.permute(0, 2, 1, 3)[rows], b.permute(0, 2, 1, 3)[rows])


# ---- the attention function itself ----------------------------------------

class _Probe(nn.Module):
    def __init__(self, is_causal=True):
        super().__init__()
        self.is_causal = is_causal


def _reference(q, k, v, mask=None, scale=None, softcap=None, sinks=None, bias=None,
               causal=False):
    """Plain torch attention with eager's order of operations; rows that
    see no key give zeros (clattn's rule)."""
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, 1)
    v = v.repeat_interleave(rep, 1)
    s = (q @ k.transpose(-1, -2)) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    if bias is not None:
        s = s + bias
    vis = torch.ones(s.shape, dtype=torch.bool)
    if mask is not None:
        if mask.dtype == torch.bool:
            vis = vis & mask[..., :s.shape[-1]]
        else:
            s = s + mask[..., :s.shape[-1]]
    if causal:
        L, S = s.shape[-2:]
        vis = vis & (torch.arange(S)[None, :] <= torch.arange(L)[:, None])
    s = s.masked_fill(~vis, float("-inf"))
    if sinks is not None:
        s = torch.cat([s, sinks.reshape(1, -1, 1, 1).expand(s.shape[0], -1, s.shape[2], 1)], -1)
    p = torch.softmax(s, -1).nan_to_num(0.0)
    if sinks is not None:
        p = p[..., :-1]
    return (p @ v).transpose(1, 2), p


def test_attention_function_features():
    torch.manual_seed(0)
    B, H, Hk, Q, S, D = 2, 4, 2, 5, 9, 16
    q = torch.randn(B, Q, H, D).transpose(1, 2)  # transformers' strided views
    k = torch.randn(B, S, Hk, D).transpose(1, 2)
    v = torch.randn(B, S, Hk, D).transpose(1, 2)
    probe = _Probe(is_causal=False)
    # a boolean mask built for 4 more keys than given (static-cache style)
    long_mask = torch.rand(B, 1, Q, S + 4) > 0.3
    long_mask[..., 0] = True
    out, w = ct.attention_forward(probe, q, k, v, long_mask, scaling=0.3, softcap=2.0,
                                  output_attentions=True)
    ref, p = _reference(q, k, v, long_mask, scale=0.3, softcap=2.0)
    _check("fn bool mask+softcap", out, ref)
    _check("fn weights", w, p)
    assert out.shape == (B, Q, H, D) and out.is_contiguous()
    # an additive float mask (eager style) and attention sinks
    fmask = torch.where(long_mask, 0.0, torch.finfo(torch.float32).min)
    sinks = torch.randn(H)
    out, _ = ct.attention_forward(probe, q, k, v, fmask, s_aux=sinks)
    ref, _ = _reference(q, k, v, fmask, sinks=sinks)
    _check("fn float mask+sinks", out, ref)
    # T5: a per-head position bias with a padding mask, and with causality alone
    bias = torch.randn(1, H, Q, S)
    out, _ = ct.attention_forward(probe, q, k, v, long_mask, scaling=1.0, position_bias=bias)
    ref, _ = _reference(q, k, v, long_mask, scale=1.0, bias=bias)
    _check("fn position bias+mask", out, ref)
    causal_probe = _Probe(is_causal=True)
    out, _ = ct.attention_forward(causal_probe, q, k[:, :, :Q], v[:, :, :Q], None, scaling=1.0,
                                  position_bias=bias[..., :Q])
    ref, _ = _reference(q, k[:, :, :Q], v[:, :, :Q], scale=1.0, bias=bias[..., :Q], causal=True)
    _check("fn position bias+causal", out, ref)
    # no mask, more keys than queries, causal: top-left (sdpa's static-cache prefill)
    out, _ = ct.attention_forward(causal_probe, q, k, v, None)
    ref, _ = _reference(q, k, v, causal=True)
    _check("fn causal kv>q", out, ref)
    # one query row (decode): no causal restriction; is_causal kwarg overrides the module
    out, _ = ct.attention_forward(causal_probe, q[:, :, :1], k, v, None)
    ref, _ = _reference(q[:, :, :1], k, v)
    _check("fn decode", out, ref)
    out, _ = ct.attention_forward(causal_probe, q, k, v, None, is_causal=False)
    ref, _ = _reference(q, k, v)
    _check("fn is_causal=False", out, ref)


def test_attention_function_dtypes_and_grad():
    torch.manual_seed(0)
    q = torch.randn(1, 2, 4, 8, dtype=torch.bfloat16)
    k = torch.randn(1, 1, 6, 8, dtype=torch.bfloat16)
    v = torch.randn(1, 1, 6, 8, dtype=torch.bfloat16)
    out, _ = ct.attention_forward(_Probe(False), q, k, v, None, s_aux=torch.zeros(2,
                                  dtype=torch.bfloat16))
    ref, _ = _reference(q.float(), k.float(), v.float(), sinks=torch.zeros(2))
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 2e-2
    # eval mode: inputs that require grad are detached; training mode refuses
    probe = _Probe(False).eval()
    qg = q.float().requires_grad_()
    out, _ = ct.attention_forward(probe, qg, k.float(), v.float(), None)
    assert not out.requires_grad
    probe.train()
    with pytest.raises(ValueError, match="no gradients"):
        ct.attention_forward(probe, qg, k.float(), v.float(), None)
    with pytest.raises(ValueError, match="dropout"):
        ct.attention_forward(probe, q.float(), k.float(), v.float(), None, dropout=0.1)


# ---- refusals -------------------------------------------------------------

def _bloom():
    from transformers import BloomConfig, BloomForCausalLM
    return BloomForCausalLM(BloomConfig(vocab_size=VOCAB, hidden_size=64, n_layer=2, n_head=4))


def test_use_refuses_model_without_interface():
    """Bloom computes attention in BloomAttention itself: use() refuses it
    by name (transformers itself only logs a warning)."""
    model = _seeded(_bloom)
    with pytest.raises(ValueError, match="BloomForCausalLM"):
        ct.use(model)


def test_check_model_refuses_attention_that_bypasses_interface():
    """Built with attn_implementation='clattn' (transformers accepts any
    registered name) yet computing attention itself: the dry forward finds
    the attention modules that never called clattn."""
    from transformers import BloomConfig, BloomForCausalLM
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(vocab_size=VOCAB, hidden_size=64, n_layer=2, n_head=4,
                                         attn_implementation="clattn")).eval()
    assert model.config._attn_implementation == "clattn"
    with pytest.raises(ValueError, match="BloomForCausalLM.*BloomAttention"):
        ct.check_model(model)


class TinySelfAttentionConfig(transformers.PretrainedConfig):
    model_type = "tiny_self_attention_clattn_test"

    def __init__(self, vocab_size=VOCAB, hidden_size=32, **kwargs):
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        super().__init__(**kwargs)


class TinyOwnAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, -1)
        return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1) @ v


class TinyOwnAttentionModel(transformers.PreTrainedModel):
    config_class = TinySelfAttentionConfig
    main_input_name = "input_ids"

    def __init__(self, config):
        super().__init__(config)
        self.emb = nn.Embedding(config.vocab_size, config.hidden_size)
        self.attn = TinyOwnAttention(config.hidden_size)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        return self.attn(self.emb(input_ids))


def test_check_model_refuses_custom_model():
    torch.manual_seed(0)
    model = TinyOwnAttentionModel(TinySelfAttentionConfig()).eval()
    model.config._attn_implementation = "clattn"
    with pytest.raises(ValueError, match="TinyOwnAttentionModel.*TinyOwnAttention"):
        ct.check_model(model)
    with pytest.raises(ValueError, match="TinyOwnAttentionModel"):
        ct.use(model)


def test_use_accepts_supported_model():
    model = _seeded(llama)
    assert ct.use(model) is model
    assert model.config._attn_implementation == "clattn"
    assert ct.check_model(model) == model.config.num_hidden_layers
    assert ct.check_model(model, {"input_ids": _ids(2, 5)}) == model.config.num_hidden_layers
    with pytest.raises(ValueError, match="example_inputs"):
        ct.check_model(model, {"pixel_values": torch.zeros(1, 3, 4, 4)})
    with pytest.raises(ValueError, match="not 'clattn'"):
        model.set_attn_implementation("eager")
        ct.check_model(model)


# ---- 16-bit models ----------------------------------------------------------

LOW_TOL = {torch.bfloat16: 0.05, torch.float16: 0.01}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt_oss"])
def test_16bit_model_against_float32(family, dtype):
    """A bfloat16/float16 model under clattn stays within LOW_TOL of the
    float32 eager logits (relative to their scale); eager in the same dtype
    is measured for reference."""
    ids, mask = _padded(side="left")
    valid = mask.bool()
    model = _seeded(DECODERS[family])
    ref = _run(model, "eager", lambda: model(input_ids=ids, attention_mask=mask).logits)[valid]
    model = model.to(dtype)
    c = _run(model, "clattn", lambda: model(input_ids=ids, attention_mask=mask).logits)
    e = _run(model, "eager", lambda: model(input_ids=ids, attention_mask=mask).logits)
    assert c.dtype == dtype
    d_c = _rel_diff(c[valid].float(), ref)
    d_e = _rel_diff(e[valid].float(), ref)
    tag = "bf16" if dtype == torch.bfloat16 else "f16"
    MEASURED[f"{family} {tag} vs fp32"] = d_c
    MEASURED[f"{family} {tag} eager vs fp32"] = d_e
    assert d_c <= LOW_TOL[dtype], f"{family} {dtype}: clattn {d_c:.3e} from fp32 (eager {d_e:.3e})"


def test_gqa_keys_not_repeated(monkeypatch):
    """clattn gets the model's kv heads as they are (no repeat_kv)."""
    seen = []
    real = ct.scaled_dot_product_attention

    def spy(query, key, value, **kw):
        seen.append((query.shape[1], key.shape[1], value.shape[1], kw.get("enable_gqa")))
        return real(query, key, value, **kw)
    monkeypatch.setattr(ct, "scaled_dot_product_attention", spy)
    model = _seeded(mistral)  # 4 query heads, 1 kv head
    ids, mask = _padded(side="left")
    _run(model, "clattn", lambda: model(input_ids=ids, attention_mask=mask))
    assert seen and all(s == (4, 1, 1, True) for s in seen), seen
