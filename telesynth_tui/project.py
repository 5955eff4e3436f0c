"""A project: a folder with one SQLite file and a telesynth.toml. The one factory for settings,
database connections and the knowledge-graph services, used by the CLI, the tests and bench/."""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from telesynth_tui import database as db
from telesynth_tui.config import (
    DATABASE_FILE,
    DEFAULT_SETTINGS_TOML,
    SETTINGS_FILE,
    Settings,
    load_settings,
)
from telesynth_tui.errors import TelesynthError
from telesynth_tui.infra import _kind_of_special, write_atomic

if TYPE_CHECKING:
    from telesynth_tui.dta.runner import DtaConfig, DtaModels
    from telesynth_tui.inference.base import TextModel
    from telesynth_tui.inference.encoder import OnnxEncoder
    from telesynth_tui.inference.energy import EnergyMeter
    from telesynth_tui.inference.registry import Registry
    from telesynth_tui.pipeline.runner import Runner
    from telesynth_tui.pipeline.store import RunConfig


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
        check_database_file(path / DATABASE_FILE)
        check_integrity(path / DATABASE_FILE)
        return cls(path, load_settings(path))

    @classmethod
    def create(cls, path: Path) -> Project:
        """Create the folder, settings file and database (an existing project is reused)."""
        path = path.expanduser()
        database = path / DATABASE_FILE
        if database.exists() or database.is_symlink():
            check_database_file(database)
            check_integrity(database)
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
        return OnnxEncoder(
            entry.path,
            entry.tokenizer,
            entry.name,
            threads=self.settings.models.onnx_threads,
            energy=self.energy_meter(),
        )

    def generator(self, name: str | None = None) -> TextModel:
        """A registered text model: a GGUF loaded here, or a client of the server of a model
        registered with --url (asked first whether it answers and serves the model)."""
        from telesynth_tui.inference.generator import LlamaGenerator
        from telesynth_tui.inference.registry import RegistryError

        entry = self.registry().get(name or self.settings.models.generator)
        if entry.remote:
            from telesynth_tui.inference.remote import RemoteModel

            return RemoteModel(
                entry.name, entry.url, entry.model_id, entry.api_key_env, entry.context_length
            )
        if entry.format != "gguf":
            raise RegistryError(f"model {entry.name!r} is not a GGUF generator")
        problem = self.registry().check(entry)
        if problem:
            raise RegistryError(problem)
        m = self.settings.models
        return LlamaGenerator(
            entry.path,
            entry.name,
            threads=m.llama_threads,
            n_ctx=m.n_ctx,
            n_batch=m.n_batch,
            energy=self.energy_meter(),
        )

    def runner(self, conn: sqlite3.Connection, config: RunConfig) -> Runner:
        """The pipeline for one run, wired to this project's models and settings."""
        from telesynth_tui.graph.retrieval import Retriever, embed_chunks
        from telesynth_tui.modelkit.build import UNFINISHED_HEAD, UNRELATED_HEAD
        from telesynth_tui.pipeline.filters import ClassifierHead, Filters, FilterSettings
        from telesynth_tui.pipeline.generate_llm import LlmQA
        from telesynth_tui.pipeline.runner import Runner
        from telesynth_tui.pipeline.scoring import FastScorer, Scorer
        from telesynth_tui.pipeline.store import TEMPLATE

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
        scorer: Scorer = FastScorer()
        if config.judge:
            from telesynth_tui.pipeline.llm_scoring import LlmScorer

            if llm is not None and config.judge == config.generator:
                judge = llm.generator
            else:
                judge = self.generator(config.judge)
            scorer = LlmScorer(scorer, judge, encoder)
        return Runner(conn, retriever, filters, scorer, llm, refiner)

    def dta_models(self, config: DtaConfig) -> DtaModels:
        """The student, teachers, rewriter and judge of a DTA run; a model named in several
        roles is loaded once."""
        from telesynth_tui.dta.runner import build_dta_models

        return build_dta_models(config, self.generator, self.encoder())

    def connect(self) -> sqlite3.Connection:
        """A new connection (one per thread), migrated to the current schema."""
        try:
            conn = db.connect(self.database)
            db.migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise database_error(self.database, exc) from None
        return conn


SQLITE_MAGIC = b"SQLite format 3\x00"
QUICK_CHECK_MAX_BYTES = 128_000_000  # larger databases are checked page by page as they are read


def damaged_message(database: Path, problem: str) -> str:
    problem = " ".join(problem.replace("*** in database main ***", "").split())[:160]
    return (
        f"{database}: the project database is damaged ({problem}); restore it from a backup or "
        f"recover what is readable with: sqlite3 {database} .recover | sqlite3 recovered.db"
    )


def database_error(database: Path, exc: sqlite3.DatabaseError) -> TelesynthError:
    """One line for a database error: a damaged file says so and how to recover."""
    text = str(exc)
    damaged = ("malformed", "not a database", "disk image", "corrupt", "file is encrypted")
    if any(d in text.lower() for d in damaged):
        return TelesynthError(damaged_message(database, text))
    return TelesynthError(f"{database}: database error: {text}")


def check_database_file(database: Path) -> None:
    """Refuse a project database that is not a regular SQLite file (a 0-byte or foreign file is
    never silently turned into a new, empty project)."""
    try:
        info = os.stat(database)
        if not stat.S_ISREG(info.st_mode):
            raise TelesynthError(f"{database}: is not a regular file")
        with open(database, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise TelesynthError(f"{database}: cannot read: {exc.strerror or exc}") from None
    if info.st_size == 0:
        raise TelesynthError(damaged_message(database, "the file is empty (0 bytes)"))
    if head != SQLITE_MAGIC:
        raise TelesynthError(damaged_message(database, "not an SQLite file"))


PROJECT_FILES = (
    DATABASE_FILE,
    f"{DATABASE_FILE}-wal",
    f"{DATABASE_FILE}-shm",
    SETTINGS_FILE,
    "models.toml",
)


def check_output_path(project_dir: Path, path: Path, force: bool = False) -> None:
    """Refuse an output path that is one of the project's own files, anything but a regular file,
    or (without `force`) an existing file."""
    target = path.expanduser()
    try:
        resolved_dir = project_dir.expanduser().resolve()
        resolved = target.parent.resolve() / target.name
    except OSError as exc:
        raise TelesynthError(f"{path}: cannot resolve: {exc.strerror or exc}") from None
    if resolved.parent == resolved_dir and target.name in PROJECT_FILES:
        raise TelesynthError(f"{path}: is the project's own {target.name}; choose another --out")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TelesynthError(f"{path}: cannot check: {exc.strerror or exc}") from None
    if special := _kind_of_special(mode):
        raise TelesynthError(f"{path}: is {special}; refusing to write over it")
    if not force:
        raise TelesynthError(f"{path}: already exists (add --force to overwrite it)")


def check_integrity(database: Path) -> None:
    """SQLite's quick check of a project database (~30 ms for a bundled-knowledge project), so a
    damaged file is named before any command reads half of it."""
    if database.stat().st_size > QUICK_CHECK_MAX_BYTES:
        return
    try:
        conn = sqlite3.connect(database, timeout=30.0)
        try:
            rows = conn.execute("PRAGMA quick_check(1)").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise database_error(database, exc) from None
    if rows != [("ok",)]:
        raise TelesynthError(damaged_message(database, str(rows[0][0]) if rows else "no answer"))
