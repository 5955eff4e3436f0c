"""How the app reaches the core: the project and factories for the model-backed services, so
tests can hand the app fake models. The app factory used by `telesynth tui`, the tests and
bench/ is `create_app`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telesynth_tui.inference.base import Encoder, TextModel
    from telesynth_tui.pipeline.runner import Runner
    from telesynth_tui.pipeline.store import RunConfig
    from telesynth_tui.project import Project


@dataclass
class Backends:
    project: Project
    # (connection, run config) -> a pipeline runner wired to models
    runner: Callable[[sqlite3.Connection, RunConfig], Runner]
    # model name -> a text model (student in evaluations)
    generator: Callable[[str], TextModel]
    # () -> the encoder used by evaluation metrics
    encoder: Callable[[], Encoder]
    # (model names, progress callback) -> benchmark results
    bench: Callable[[list[str], Callable[[str], None]], dict[str, Any]]

    @classmethod
    def for_project(cls, project: Project) -> Backends:
        def bench(names: list[str], progress: Callable[[str], None]) -> dict[str, Any]:
            from telesynth_tui.modelkit.bench import run_model_bench

            return run_model_bench(project, names, runs=3, max_tokens=128, progress=progress)

        return cls(project, project.runner, project.generator, project.encoder, bench)

    def connect(self) -> sqlite3.Connection:
        """A connection for the calling thread (each worker opens its own)."""
        return self.project.connect()
