from __future__ import annotations

from pathlib import Path

import pytest

from telesynth_tui.inference.gguf_header import GGUFError, read_gguf_header

from .conftest import SHIPPED_GGUF


def test_shipped_generator_header() -> None:
    header = read_gguf_header(SHIPPED_GGUF)
    assert header.architecture == "llama"
    assert header.quantization == "Q8_0"
    assert header.context_length == 512
    assert header.chat_template and "<|im_start|>" in header.chat_template
    names = {t.name for t in header.tensors}
    assert {"token_embd.weight", "blk.0.attn_q.weight", "output_norm.weight"} <= names
    assert "output.weight" not in names  # tied to the embedding
    assert 1_000_000 <= header.parameter_count <= 4_000_000
    norm = next(t for t in header.tensors if t.name == "blk.0.attn_norm.weight")
    assert norm.ggml_type == 0  # norms stay F32


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a GGUF file"),
        (b"NOPE" + b"\x00" * 40, "not a GGUF file (bad magic)"),
        (b"GGUF" + (99).to_bytes(4, "little") + b"\x00" * 40, "unsupported GGUF version 99"),
    ],
)
def test_bad_headers(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_gguf_header(path)


@pytest.mark.parametrize("keep", [100, 5000, -1000])
def test_truncated_files_are_caught_before_llama_cpp(tmp_path: Path, keep: int) -> None:
    data = SHIPPED_GGUF.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[:keep])
    with pytest.raises(GGUFError, match="truncated GGUF"):
        read_gguf_header(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="no such file"):
        read_gguf_header(tmp_path / "none.gguf")
