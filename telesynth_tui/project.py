"""A project: a folder with one SQLite file and a telesynth.toml. The one factory for settings,
database connections and the knowledge-graph services, used by the CLI, the tests and bench/."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telesynth_tui.config import (
    DATABASE_FILE,
    DEFAULT_SETTINGS_TOML,
    SETTINGS_FILE,
    Settings,
    load_settings,
)
from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph import db

if TYPE_CHECKING:
    from telesynth_tui.dta.runner import DtaConfig, DtaModels
    from telesynth_tui.inference.encoder import OnnxEncoder
    from telesynth_tui.inference.energy import EnergyMeter
    from telesynth_tui.inference.generator import LlamaGenerator
    from telesynth_tui.inference.registry import Registry
    from telesynth_tui.pipeline.runner import RunConfig, Runner


@dataclass(frozen=True)
class Project:
    path: Path
    settings: Settings
    exists: bool = True

    @property
    def database(self) -> Path:
        return self.path / DATABASE_FILE

    @classmethod
    def open(cls, path: Path) -> Project:
        path = path.expanduser()
        if not (path / DATABASE_FILE).is_file():
            raise TelesynthError(
                f"no telesynth project at {path} (create one with: telesynth init --project {path})"
            )
        return cls(path, load_settings(path))

    @classmethod
    def create(cls, path: Path) -> Project:
        """Create the folder, settings file and database (an existing project is reused)."""
        path = path.expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
            settings_file = path / SETTINGS_FILE
            if not settings_file.exists():
                write_atomic(settings_file, DEFAULT_SETTINGS_TOML)
        except OSError as exc:
            raise TelesynthError(f"{path}: cannot create project: {exc.strerror or exc}") from None
        project = cls(path, load_settings(path))
        project.connect().close()
        return project

    @classmethod
    def optional(cls, path: Path) -> Project:
        """The project at `path` if there is one, otherwise defaults with no project folder."""
        path = path.expanduser()
        if (path / DATABASE_FILE).is_file():
            return cls.open(path)
        return cls(path, load_settings(None), exists=False)

    # --- models -----------------------------------------------------------------------------

    def registry(self) -> Registry:
        from telesynth_tui.inference.registry import Registry

        return Registry(self.settings.models.dir, self.path if self.exists else None)

    def energy_meter(self) -> EnergyMeter:
        from telesynth_tui.inference.energy import EnergyMeter, PowerModel

        e = self.settings.energy
        return EnergyMeter(PowerModel(e.tdp_watts, e.idle_watts), e.powercap_root)

    def encoder(self, name: str | None = None) -> OnnxEncoder:
        from telesynth_tui.inference.encoder import OnnxEncoder
        from telesynth_tui.inference.registry import RegistryError

        entry = self.registry().get(name or self.settings.models.encoder)
        if "encoder" not in entry.roles or entry.tokenizer is None:
            raise RegistryError(f"model {entry.name!r} is not an encoder")
        return OnnxEncoder(entry.path, entry.tokenizer, entry.name,
                           threads=self.settings.models.onnx_threads,
                           energy=self.energy_meter())  # fmt: skip

    def generator(self, name: str | None = None) -> LlamaGenerator:
        from telesynth_tui.inference.generator import LlamaGenerator
        from telesynth_tui.inference.registry import RegistryError

        entry = self.registry().get(name or self.settings.models.generator)
        if entry.format != "gguf":
            raise RegistryError(f"model {entry.name!r} is not a GGUF generator")
        problem = self.registry().check(entry)
        if problem:
            raise RegistryError(problem)
        m = self.settings.models
        return LlamaGenerator(entry.path, entry.name, threads=m.llama_threads, n_ctx=m.n_ctx,
                              n_batch=m.n_batch, energy=self.energy_meter())  # fmt: skip

    def runner(self, conn: sqlite3.Connection, config: RunConfig) -> Runner:
        """The pipeline for one run, wired to this project's models and settings."""
        from telesynth_tui.graph.retrieval import Retriever, embed_chunks
        from telesynth_tui.inference.build import UNFINISHED_HEAD, UNRELATED_HEAD
        from telesynth_tui.pipeline.filters import ClassifierHead, Filters, FilterSettings
        from telesynth_tui.pipeline.generate_llm import LlmQA
        from telesynth_tui.pipeline.runner import TEMPLATE, Runner
        from telesynth_tui.pipeline.scoring import FastScorer

        encoder = self.encoder()
        embed_chunks(conn, encoder)
        registry = self.registry()
        filters = Filters(
            encoder,
            ClassifierHead(registry.get(UNFINISHED_HEAD).path),
            FilterSettings(**config.filters),
            ClassifierHead(registry.get(UNRELATED_HEAD).path),
        )
        retriever = Retriever(conn, self.settings.retrieval, encoder=encoder)
        llm = None
        if config.generator != TEMPLATE:
            llm = LlmQA(self.generator(config.generator), config.max_tokens, config.seed)
        refiner = None
        if config.refiner:
            same = llm is not None and config.refiner == config.generator
            refiner = llm if same else LlmQA(self.generator(config.refiner), config.max_tokens)
        scorer: Any = FastScorer()
        if config.judge:
            from telesynth_tui.pipeline.judge import JudgeScorer

            same = llm is not None and config.judge == config.generator
            judge = llm.generator if same else self.generator(config.judge)
            scorer = JudgeScorer(scorer, judge, encoder)
        return Runner(conn, retriever, filters, scorer, llm, refiner)

    def dta_models(self, config: DtaConfig) -> DtaModels:
        """The student, teachers, rewriter and judge of a DTA run; a model named in several
        roles is loaded once."""
        from telesynth_tui.dta.runner import DtaModels
        from telesynth_tui.dta.select import ModelJudge
        from telesynth_tui.dta.solutions import SOLVER, ModelTeacher, SolverTeacher, Teacher
        from telesynth_tui.dta.style import Rewriter

        loaded: dict[str, LlamaGenerator] = {}

        def load(name: str) -> LlamaGenerator:
            if name not in loaded:
                loaded[name] = self.generator(name)
            return loaded[name]

        student = load(config.student)
        teachers: list[Teacher] = [
            SolverTeacher() if name == SOLVER else ModelTeacher(load(name))
            for name in config.teacher_names()
        ]
        rewriter = None
        if config.rewriter:
            rewriter = Rewriter(student if config.rewriter == "student" else load(config.rewriter))
        judge = ModelJudge(load(config.judge)) if config.judge else None
        return DtaModels(student, teachers, self.encoder(), rewriter, judge)

    def connect(self) -> sqlite3.Connection:
        """A new connection (one per thread), migrated to the current schema."""
        try:
            conn = db.connect(self.database)
            db.migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise TelesynthError(f"{self.database}: not a usable SQLite database: {exc}") from None
        return conn


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
