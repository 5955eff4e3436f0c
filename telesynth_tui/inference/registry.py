"""The model registry: TOML manifests of the models telesynth may run.

Three manifests are read, in order: the shipped defaults (models/manifest.toml), the models
built on this machine (models/build/manifest.toml, written by `models build`), and the project's
own (PROJECT/models.toml, written by `models add`). Paths are relative to their manifest, or,
for an entry with `package = "name"`, to that installed Python package's folder (found without
importing the package). A GGUF is checked by reading its header; an ONNX encoder by loading its
graph.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.gguf_header import GGUFError, read_gguf_header

ROLES = ("generator", "refiner", "teacher", "student", "judge", "encoder", "classifier")
TEXT_ROLES = ("generator", "refiner", "teacher", "student", "judge")
REMOTE_FORMAT = "openai"
MANIFEST = "manifest.toml"
PROJECT_MANIFEST = "models.toml"


class RegistryError(TelesynthError):
    """A manifest, model name, role or model file that is not usable."""


@dataclass
class ModelEntry:
    name: str
    roles: list[str]
    path: Path
    format: str  # gguf | onnx | openai (a model behind an OpenAI-compatible server)
    quantization: str = ""
    parameters: int = 0
    context_length: int = 0
    chat_template: str = ""
    sha256: str = ""
    tokenizer: Path | None = None
    origin: str = ""  # shipped | built | project
    notes: str = ""
    package: str = ""  # the installed Python package that carries the file, if any
    url: str = ""  # openai: the server's API base URL (http://HOST:PORT/v1)
    model_id: str = ""  # openai: the model id the server serves it under
    api_key_env: str = ""  # openai: the environment variable holding the API key (never the key)
    size: int = field(default=0, compare=False)

    @property
    def remote(self) -> bool:
        return self.format == REMOTE_FORMAT

    @property
    def text_model(self) -> bool:
        """A model that writes text: a GGUF or a served model."""
        return self.format == "gguf" or self.remote

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "size"}
        if self.remote:
            data["path"] = None
            data["tokenizer"] = None
            data["size_bytes"] = None
            return data
        data["path"] = str(self.path)
        data["tokenizer"] = str(self.tokenizer) if self.tokenizer else None
        data["size_bytes"] = self.path.stat().st_size if self.path.exists() else None
        return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def write_manifest(path: Path, entries: list[ModelEntry]) -> None:
    from telesynth_tui.infra import write_atomic

    lines = ["# telesynth model manifest (paths are relative to this file)", ""]
    for entry in entries:
        record = entry.to_dict()
        base = path.parent
        if entry.package:  # relative to the package that carries the file
            base = package_dir(entry.package) or entry.path.parent
        if not entry.remote:
            record["path"] = _relative(entry.path, base)
            record["tokenizer"] = (
                _relative(entry.tokenizer, path.parent) if entry.tokenizer else None
            )
        lines.append("[[model]]")
        for key in (
            "name",
            "roles",
            "path",
            "format",
            "quantization",
            "parameters",
            "context_length",
            "chat_template",
            "sha256",
            "tokenizer",
            "notes",
            "package",
            "url",
            "model_id",
            "api_key_env",
        ):
            if record.get(key) not in (None, ""):
                lines.append(f"{key} = {_toml_value(record[key])}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "\n".join(lines))


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())


def package_dir(name: str) -> Path | None:
    """An installed package's folder, without importing it (find_spec on a top-level name only
    locates it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _model_path(manifest: Path, raw: dict[str, Any]) -> Path:
    package = str(raw.get("package", ""))
    if not package:
        return (manifest.parent / str(raw["path"])).resolve()
    import sysconfig

    base = package_dir(package) or Path(sysconfig.get_paths()["purelib"]) / package
    return base / str(raw["path"])


def read_manifest(path: Path, origin: str) -> list[ModelEntry]:
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: invalid manifest: {exc}") from None
    entries = []
    for index, raw in enumerate(data.get("model", []), start=1):
        try:
            tokenizer = raw.get("tokenizer")
            remote = raw.get("format") == REMOTE_FORMAT
            entries.append(
                ModelEntry(
                    name=str(raw["name"]),
                    roles=[str(r) for r in raw["roles"]],
                    path=Path(str(raw["url"])) if remote else _model_path(path, raw),
                    format=str(raw["format"]),
                    quantization=str(raw.get("quantization", "")),
                    parameters=int(raw.get("parameters", 0)),
                    context_length=int(raw.get("context_length", 0)),
                    chat_template=str(raw.get("chat_template", "")),
                    sha256=str(raw.get("sha256", "")),
                    tokenizer=(path.parent / str(tokenizer)).resolve() if tokenizer else None,
                    origin=origin,
                    notes=str(raw.get("notes", "")),
                    package=str(raw.get("package", "")),
                    url=str(raw.get("url", "")),
                    model_id=str(raw.get("model_id", "")),
                    api_key_env=str(raw.get("api_key_env", "")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"{path}: model #{index}: missing or bad field {exc}") from None
    return entries


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(name: str) -> None:
    """A model name is a slug: letters, digits, '.', '_' and '-', starting with a letter or
    digit, at most 64 characters, never '..'."""
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise RegistryError(
            f"--name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )


def inspect_model(
    path: Path, name: str, roles: list[str], tokenizer: Path | None = None
) -> ModelEntry:
    """Check a model file and describe it (header for GGUF, graph for ONNX)."""
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise RegistryError(f"unknown role {', '.join(bad) or '(none)'}: use {', '.join(ROLES)}")
    check_name(name)
    if not path.exists():
        raise RegistryError(f"{path}: no such file")
    if not path.is_file():
        raise RegistryError(f"{path}: not a regular file (a folder, device or FIFO)")
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        if "encoder" in roles or "classifier" in roles:
            raise RegistryError(f"{path}: a GGUF is a generator; encoders are ONNX files")
        try:
            header = read_gguf_header(path)
        except GGUFError as exc:
            raise RegistryError(str(exc)) from None
        return ModelEntry(
            name,
            roles,
            path.resolve(),
            "gguf",
            header.quantization,
            header.parameter_count,
            header.context_length or 0,
            "gguf" if header.chat_template else "",
            sha256_file(path),
            None,
        )
    if suffix == ".onnx":
        if set(roles) - {"encoder", "classifier"}:
            raise RegistryError(f"{path}: an ONNX model can be an encoder or a classifier")
        if "encoder" in roles:
            tokenizer = tokenizer or path.with_name("tokenizer.json")
            from telesynth_tui.inference.encoder import OnnxEncoder

            OnnxEncoder(path, tokenizer, name, threads=1)  # raises EncoderError if unusable
        return ModelEntry(
            name,
            roles,
            path.resolve(),
            "onnx",
            _onnx_quantization(path),
            _onnx_parameters(path),
            0,
            "",
            sha256_file(path),
            tokenizer.resolve() if tokenizer else None,
        )
    raise RegistryError(f"{path}: unsupported model format {suffix!r} (use .gguf or .onnx)")


def _onnx_parameters(path: Path) -> int:
    """Weights in the graph's initializers (needs the `onnx` package; 0 without it)."""
    try:
        import onnx
    except ImportError:
        return 0
    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for init in model.graph.initializer:
        if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8):
            n = 1
            for d in init.dims:
                n *= d
            total += n if len(init.dims) >= 2 else 0
    return total


def _onnx_quantization(path: Path) -> str:
    return "int8" if "int8" in path.name else "fp32"


class Registry:
    def __init__(self, models_dir: Path, project_dir: Path | None = None) -> None:
        self.models_dir = models_dir
        self.project_dir = project_dir
        self.shipped = models_dir / MANIFEST
        self.built = models_dir / "build" / MANIFEST
        self.project = project_dir / PROJECT_MANIFEST if project_dir else None

    def entries(self) -> list[ModelEntry]:
        entries = read_manifest(self.shipped, "shipped") + read_manifest(self.built, "built")
        if self.project:
            entries += read_manifest(self.project, "project")
        return entries

    def get(self, name: str) -> ModelEntry:
        entries = self.entries()
        for entry in entries:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in entries) or "none"
        raise RegistryError(f"unknown model {name!r} (registered: {known})")

    def with_role(self, role: str) -> list[ModelEntry]:
        if role not in ROLES:
            raise RegistryError(f"unknown role {role!r}: use {', '.join(ROLES)}")
        return [e for e in self.entries() if role in e.roles]

    def add(
        self, path: Path, name: str, roles: list[str], tokenizer: Path | None = None
    ) -> ModelEntry:
        if self.project is None:
            raise RegistryError("models add needs a project (telesynth init)")
        check_name(name)
        if any(e.name == name for e in self.entries()):
            raise RegistryError(f"a model named {name!r} is already registered")
        entry = inspect_model(path, name, roles, tokenizer)
        entry.origin = "project"
        own = read_manifest(self.project, "project")
        write_manifest(self.project, [*own, entry])
        return entry

    def add_remote(
        self,
        url: str,
        name: str,
        roles: list[str],
        model_id: str = "",
        api_key_env: str = "",
        context_length: int = 0,
    ) -> ModelEntry:
        """Register a model served over the OpenAI-compatible API, after asking the server that
        it answers and serves that model (the key stays in `api_key_env`, never in the file)."""
        from telesynth_tui.inference.remote import RemoteModel

        if self.project is None:
            raise RegistryError("models add needs a project (telesynth init)")
        check_name(name)
        bad = [r for r in roles if r not in TEXT_ROLES]
        if bad or not roles:
            raise RegistryError(
                f"unknown role {', '.join(bad) or '(none)'} for a served model: use "
                f"{', '.join(TEXT_ROLES)}"
            )
        if api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
            raise RegistryError(f"--api-key-env {api_key_env!r}: not an environment variable name")
        if any(e.name == name for e in self.entries()):
            raise RegistryError(f"a model named {name!r} is already registered")
        model = RemoteModel(name, url, model_id, api_key_env, context_length)
        try:
            entry = ModelEntry(
                name,
                roles,
                Path(model.url),
                REMOTE_FORMAT,
                context_length=model.n_ctx,
                origin="project",
                url=model.url,
                model_id=model.model_id,
                api_key_env=api_key_env,
                notes=f"served by {model.info.kind} at {model.url}",
            )
        finally:
            model.close()
        own = read_manifest(self.project, "project")
        write_manifest(self.project, [*own, entry])
        return entry

    def record_built(self, entries: list[ModelEntry]) -> None:
        for entry in entries:
            entry.origin = "built"
        write_manifest(self.built, entries)

    def verify(self) -> list[tuple[ModelEntry, str | None]]:
        """Each entry with None when it checks out, or the problem."""
        results: list[tuple[ModelEntry, str | None]] = []
        for entry in self.entries():
            results.append((entry, self.check(entry)))
        return results

    @staticmethod
    def check(entry: ModelEntry) -> str | None:
        if entry.remote:
            return check_remote(entry)
        if entry.package and not entry.path.is_file():
            return (
                f"{entry.name}: the Python package {entry.package} that carries it is not "
                f"installed here (expected {entry.path})"
            )
        if not entry.path.is_file():
            return f"{entry.path}: no such file"
        if entry.sha256 and sha256_file(entry.path) != entry.sha256:
            return f"{entry.path}: SHA-256 does not match the manifest (file changed or corrupt)"
        if entry.format == "gguf":
            try:
                read_gguf_header(entry.path)
            except GGUFError as exc:
                return str(exc)
        if entry.tokenizer is not None and not entry.tokenizer.is_file():
            return f"{entry.tokenizer}: tokenizer missing"
        return None


def check_remote(entry: ModelEntry) -> str | None:
    """None when the entry's server answers and serves its model, else the problem."""
    from telesynth_tui.inference.remote import RemoteModel

    try:
        RemoteModel(entry.name, entry.url, entry.model_id, entry.api_key_env).close()
    except TelesynthError as exc:
        return f"{entry.name}: {exc}"
    return None
