"""Typed settings: defaults, then the project's telesynth.toml, then TELESYNTH_* variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from telesynth_tui.errors import TelesynthError

SETTINGS_FILE = "telesynth.toml"
DATABASE_FILE = "telesynth.db"
DEFAULT_PROJECT = Path("telesynth-project")
REPO_ROOT = Path(__file__).resolve().parent.parent


class IngestSettings(BaseModel):
    chunk_tokens: int = Field(300, ge=32, le=4096, description="token budget of one chunk")
    max_file_mb: float = Field(50.0, gt=0, description="larger files are refused")
    candidate_entities: bool = Field(True, description="turn new mentions into candidates")
    extract_relations: bool = Field(
        True, description="extract typed relations from documents (structure-aware)"
    )
    accept_confidence: float = Field(
        0.7, ge=0.0, le=1.01, description="extracted relations at this confidence are accepted"
    )


class RetrievalSettings(BaseModel):
    budget_tokens: int = Field(1200, ge=16, description="context token budget")
    top_k: int = Field(12, ge=1, le=200, description="items returned at most")
    per_source_k: int = Field(30, ge=1, le=1000, description="candidates from each ranker")
    hops: int = Field(1, ge=0, le=3, description="graph expansion depth")
    rrf_k: int = Field(60, ge=1, description="reciprocal rank fusion constant")
    max_fanout: int = Field(200, ge=1, description="edges followed per entity")


def _cores() -> int:
    return os.cpu_count() or 1


class ModelSettings(BaseModel):
    dir: Path = Field(REPO_ROOT / "models", description="shipped and built models, manifests")
    generator: str = Field("tiny-telesynth", description="default generator model name")
    encoder: str = Field("minilm-l6-int8", description="default encoder model name")
    llama_threads: int | None = Field(
        None,
        ge=1,
        description="llama.cpp threads (default: every core; the encoder never runs "
        "at the same time as the generator)",
    )
    onnx_threads: int = Field(1, ge=1, description="onnxruntime intra-op threads")
    n_ctx: int = Field(2048, ge=128, description="generator context (capped by the model's)")
    n_batch: int = Field(256, ge=8, description="prompt batch size")
    parallel: int = Field(
        1, ge=1, le=64, description="plans a GGUF generator decodes together (generate --parallel)"
    )


class EnergySettings(BaseModel):
    tdp_watts: float = Field(15.0, gt=0, description="package power at full load (estimate)")
    idle_watts: float = Field(2.0, ge=0, description="package power when idle (estimate)")
    powercap_root: Path = Field(Path("/sys/class/powercap"), description="RAPL counters")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELESYNTH_", env_nested_delimiter="__", extra="ignore"
    )

    bundled_kg: Path = REPO_ROOT / "kg"
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    energy: EnergySettings = Field(default_factory=EnergySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def load_settings(project_dir: Path | None) -> Settings:
    """Settings for a project folder; a broken telesynth.toml is a one-line error."""
    toml_file = project_dir / SETTINGS_FILE if project_dir else None

    class ProjectSettings(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": toml_file})

    try:
        return ProjectSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TelesynthError(f"{toml_file}: invalid setting {where}: {first['msg']}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise TelesynthError(f"{toml_file}: invalid TOML: {exc}") from None


def default_project_dir() -> Path:
    return Path(os.environ.get("TELESYNTH_PROJECT", DEFAULT_PROJECT))


DEFAULT_SETTINGS_TOML = """\
# telesynth project settings (environment variables TELESYNTH_<SECTION>__<KEY> override them)

[ingest]
chunk_tokens = 300        # token budget of one chunk
max_file_mb = 50.0        # larger files are refused
candidate_entities = true # new parameter/counter/spec mentions become candidate entities
extract_relations = true  # typed relations from document structure, as candidates
accept_confidence = 0.7   # extracted relations at this confidence are accepted

[retrieval]
budget_tokens = 1200      # context token budget
top_k = 12                # items returned at most
hops = 1                  # graph expansion depth

[models]
generator = "tiny-telesynth"  # default generator (telesynth models list)
encoder = "minilm-l6-int8"    # default encoder
# llama_threads = 2           # default: every core (the encoder runs only between model calls)
onnx_threads = 1
parallel = 1              # plans a GGUF generator decodes together (generate --parallel N)

[energy]
# used only where RAPL counters are not readable: idle + (tdp - idle) x CPU utilisation
tdp_watts = 15.0
idle_watts = 2.0
"""
