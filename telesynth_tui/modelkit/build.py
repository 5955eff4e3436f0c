"""`models build`: run the recipes in models/ (in a subprocess, so torch never enters this
process) and record what they built in models/build/manifest.toml."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.registry import (
    MANIFEST,
    ModelEntry,
    inspect_model,
    sha256_file,
    write_manifest,
)

if TYPE_CHECKING:
    from telesynth_tui.project import Project

BUILD_MODULES = ("torch", "optimum.exporters.onnx", "sentence_transformers", "gguf")
GENERATOR = "tiny-telesynth"
GENERATOR_FILE = "tiny-telesynth-q8_0.gguf"
GENERATOR_ROLES = ("generator", "refiner", "teacher", "student", "judge")
UNFINISHED_HEAD = "unfinished-head"
UNRELATED_HEAD = "unrelated-head"
HEADS = {UNFINISHED_HEAD: "unfinished", UNRELATED_HEAD: "unrelated"}
ENCODERS = {"minilm-l6-fp32": "model.onnx", "minilm-l6-int8": "model.int8.onnx"}


def _missing_build_extra() -> list[str]:
    missing = []
    for module in BUILD_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                missing.append(module)
        except ModuleNotFoundError:
            missing.append(module)
    return missing


def _run(script: str, project: Project) -> None:
    path = project.settings.models.dir / script
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TelesynthError(f"{path}: build failed: {last}")


def _encoder_is_current(out: Path) -> bool:
    info = out / "build.json"
    if not info.is_file():
        return False
    files = json.loads(info.read_text()).get("files", {})
    return bool(files) and all(
        (out / name).is_file() and sha256_file(out / name) == digest
        for name, digest in files.items()
    )


def heads_fingerprint(models_dir: Path, kg_dir: Path, encoder_sha: str) -> str:
    """What the heads are trained from: the recipe, the example maker, the corpus, the encoder."""
    import hashlib

    from telesynth_tui.pipeline import labelled

    digest = hashlib.sha256(encoder_sha.encode())
    sources = [models_dir / "build_heads.py", Path(labelled.__file__)]
    sources += sorted(p for p in kg_dir.rglob("*") if p.is_file())
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _heads_are_current(heads: Path, fingerprint: str) -> bool:
    info = heads / "heads.json"
    if not info.is_file():
        return False
    data = json.loads(info.read_text())
    for name in HEADS.values():
        entry = data.get(name, {})
        path = heads / f"{name}.onnx"
        if not path.is_file() or sha256_file(path) != entry.get("sha256"):
            return False
        if entry.get("inputs_sha256") != fingerprint:
            return False
    return True


def build_models(project: Project, generator: bool = False) -> Iterator[str]:
    missing = _missing_build_extra()
    if missing:
        raise TelesynthError(
            f"the build extra is not installed ({', '.join(missing)} missing): run "
            "scripts/setup.sh build"
        )
    models_dir = project.settings.models.dir
    out = models_dir / "build" / "encoder"
    if _encoder_is_current(out):
        yield f"encoder: up to date in {out}"
    else:
        yield "encoder: exporting all-MiniLM-L6-v2 to ONNX (fp32 + int8)…"
        _run("build_encoder.py", project)
        yield f"encoder: built in {out}"
    entries: list[ModelEntry] = []
    for name, filename in ENCODERS.items():
        entry = inspect_model(out / filename, name, ["encoder"], out / "tokenizer.json")
        entry.notes = "all-MiniLM-L6-v2, mean pooling + L2 norm in the graph"
        entries.append(entry)
    heads = models_dir / "build" / "heads"
    fingerprint = heads_fingerprint(models_dir, project.settings.bundled_kg, entries[-1].sha256)
    if _heads_are_current(heads, fingerprint):
        yield f"filter heads: up to date in {heads}"
    else:
        yield "filter heads: training the unfinished and unrelated classifiers…"
        _run("build_heads.py", project)
        yield f"filter heads: built in {heads}"
    for model_name, file_stem in HEADS.items():
        head = inspect_model(heads / f"{file_stem}.onnx", model_name, ["classifier"])
        head.notes = f"{file_stem} filter head on minilm-l6-int8 features; threshold in heads.json"
        entries.append(head)
    project.registry().record_built(entries)
    if generator:
        yield "generator: training the tiny model (fixed seed and steps)…"
        _run("build_generator.py", project)
        shipped = inspect_model(models_dir / GENERATOR_FILE, GENERATOR, list(GENERATOR_ROLES))
        shipped.notes = "tiny Llama trained on the bundled knowledge; exercises the code paths"
        write_manifest(models_dir / MANIFEST, [shipped])
        yield f"generator: rebuilt {shipped.path.name} (sha256 {shipped.sha256[:12]}…)"
    yield from (
        f"{entry.name}: {'ok' if problem is None else problem}"
        for entry, problem in project.registry().verify()
    )
