"""The GGUF export recipe: llama.cpp reproduces the torch model's logits and tokenization."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from telesynth_tui.inference.generator import new_llama

from .conftest import BUNDLED_KG, MODELS

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")
sys.path.insert(0, str(MODELS))
import tinyllama  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, Path]:
    texts = [p.read_text() for p in sorted((BUNDLED_KG / "docs").rglob("*.md"))[:20]]
    tokenizer = tinyllama.train_tokenizer(texts, 400)
    cfg = tinyllama.TinyConfig(
        vocab_size=tokenizer.get_vocab_size(),
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_dim=128,
        context=256,
    )
    torch.manual_seed(0)
    model = tinyllama.TinyLlama(cfg).eval()
    with torch.no_grad():  # non-trivial norms so a missing permutation or norm shows
        for block in model.blocks:
            block.attn_norm.weight.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("gguf") / "small-f32.gguf"
    tinyllama.export_gguf(model, tokenizer, path, "small")
    return model, tokenizer, path


def test_llama_cpp_logits_match_torch(exported: tuple[object, object, Path]) -> None:

    model, tokenizer, path = exported
    text = "The gNodeB raised a VSWR alarm; check pmVswrValue and the feeder on sector 2."
    ids = tokenizer.encode(text).ids  # type: ignore[attr-defined]
    llm = new_llama(model_path=str(path), n_ctx=256, logits_all=True, verbose=False, n_threads=1)
    try:
        llm.eval(ids)
        ours = np.array(llm.scores[: len(ids)])
    finally:
        llm.close()
    with torch.no_grad():
        reference = model(torch.tensor([ids]))[0].numpy()  # type: ignore[operator]
    assert np.abs(ours - reference).max() < 1e-2


def test_rope_permutation_is_needed(exported: tuple[object, object, Path]) -> None:
    """Without the permutation the logits differ: the check above is not vacuous."""
    weight = np.arange(32 * 8, dtype=np.float32).reshape(32, 8)
    assert not np.array_equal(tinyllama.permute_rope(weight, 4), weight)


def test_tokenizer_id_parity(exported: tuple[object, object, Path]) -> None:
    import llama_cpp

    _, tokenizer, path = exported
    llm = llama_cpp.Llama(str(path), n_ctx=256, verbose=False, n_threads=1, vocab_only=True)
    try:
        for text in [
            "RRC Setup Success Rate fell to 91.5 % at 18:00.",
            "qRxLevMin = -128 dBm",
            "<|im_start|>user\nhi<|im_end|>\n",
            "ü 🙂  two  spaces",
        ]:
            special = text.startswith("<|")
            expected = tokenizer.encode(text).ids  # type: ignore[attr-defined]
            got = llm.tokenize(text.encode(), add_bos=False, special=special)
            assert got == expected, text
    finally:
        llm.close()
