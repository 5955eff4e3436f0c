"""`telesynth models ...` on the real shipped and built models, and bad model files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import SHIPPED_GGUF, run_cli


def test_models_list_info_verify(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    models = json.loads(run_cli("models", "list", "--json", project=proj, check=True).stdout)
    by_name = {m["name"]: m for m in models}
    tiny = by_name["tiny-telesynth"]
    assert tiny["format"] == "gguf" and tiny["quantization"] == "Q8_0"
    assert "generator" in tiny["roles"] and tiny["context_length"] == 512
    assert len(tiny["sha256"]) == 64 and 1_000_000 < tiny["size_bytes"] < 5_000_000
    assert by_name["minilm-l6-int8"]["roles"] == ["encoder"]
    info = json.loads(
        run_cli("models", "info", "tiny-telesynth", "--json", project=proj, check=True).stdout
    )
    assert info["header"]["architecture"] == "llama" and info["header"]["chat_template"]
    verify = run_cli("models", "verify", project=proj, check=True)
    assert "ok   tiny-telesynth" in verify.stdout


def test_models_add_checks_the_file_and_keeps_the_manifest_intact(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(SHIPPED_GGUF, copy)
    added = run_cli(
        "models",
        "add",
        str(copy),
        "--name",
        "mine",
        "--role",
        "student,teacher",
        project=proj,
        check=True,
    )
    assert "registered mine: gguf Q8_0" in added.stdout
    manifest = (proj / "models.toml").read_text()
    assert 'name = "mine"' in manifest and 'roles = ["student", "teacher"]' in manifest

    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(SHIPPED_GGUF.read_bytes()[:4096])
    text = tmp_path / "notes.gguf"
    text.write_text("this is not a model")
    cases = [
        ([str(truncated), "--name", "cut", "--role", "generator"], "truncated GGUF"),
        ([str(text), "--name", "txt", "--role", "generator"], "not a GGUF file"),
        ([str(tmp_path / "none.gguf"), "--name", "none", "--role", "generator"], "no such file"),
        ([str(copy), "--name", "again", "--role", "wizard"], "unknown role wizard"),
        ([str(copy), "--name", "mine", "--role", "judge"], "already registered"),
        ([str(copy), "--name", "enc", "--role", "encoder"], "encoders are ONNX"),
    ]
    for args, message in cases:
        result = run_cli("models", "add", *args, project=proj)
        assert result.returncode == 2, result
        assert message in result.stderr and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
        assert (proj / "models.toml").read_text() == manifest

    unknown = run_cli("models", "info", "nope", project=proj)
    assert unknown.returncode == 2 and "unknown model 'nope'" in unknown.stderr

    copy.write_bytes(copy.read_bytes()[:-10] + b"0123456789")  # same size, other content
    verify = run_cli("models", "verify", project=proj)
    assert verify.returncode == 1
    assert "FAIL mine" in verify.stdout and "SHA-256 does not match" in verify.stdout


def test_a_model_larger_than_free_memory_is_refused(monkeypatch: object) -> None:
    import psutil
    import pytest

    from telesynth_tui.inference.generator import GeneratorError, LlamaGenerator

    class Tiny:
        available = 1_000_000  # 1 MB free

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())  # type: ignore[attr-defined]
    with pytest.raises(GeneratorError, match=r"needs about .* GiB .* only 0\.0 GiB is free"):
        LlamaGenerator(SHIPPED_GGUF, threads=1, n_ctx=256)


@pytest.mark.real_models
def test_models_bench_reports_ratios_with_energy_source(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = run_cli(
        "models",
        "bench",
        "tiny-telesynth",
        "minilm-l6-int8",
        "--runs",
        "1",
        "--tokens",
        "16",
        "--out",
        str(out),
        "--json",
        project=tmp_path / "none",
        check=True,
    )
    data = json.loads(result.stdout)
    [gen] = data["generators"]
    assert gen["R_decode"] > 0 and gen["grammar_penalty"] > 0
    assert gen["decode_tok_s"] > 0 and gen["prefill_tok_s"] > 0 and gen["ttft_s"] > 0
    assert gen["energy_source"] in ("rapl", "estimate") and gen["energy_detail"]
    [enc] = data["encoders"]
    assert enc["R_enc"] > 0 and enc["sentences_per_s"] > 0
    table = (out / "models.md").read_text()
    assert "| tiny-telesynth | Q8_0 |" in table and "Energy: " in table
    assert (
        json.loads((out / "models.json").read_text())["generators"][0]["model"] == "tiny-telesynth"
    )
