"""A DTA run sharded over Ray workers, with this process the only writer of the project.

Each Ray worker holds the run's models (student, teachers, rewriter, judge: GGUFs loaded on its
machine or clients of their servers) and the ONNX encoder, and does the whole model work of a
problem (`solve_problem`: every teacher's solution, the rewrites, the checks, the judge and the
selection). This process poses each problem from the graph, hands it to a worker a few problems
ahead of the one it stores, asks the workers for the student's style probes, and stores every
problem in plan order, once, under its plan. The workers run the same code as a local run, so a
sharded run at temperature 0 stores the same samples.

A worker that dies mid-problem is restarted by Ray and its problems are run again (after that
they go to another worker); `dta --resume RUN` continues an interrupted sharded run like any
other. Nothing here imports Ray at module level.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telesynth_tui.dta.runner import (
    DtaConfig,
    DtaRun,
    build_dta_models,
    solve_problem,
)
from telesynth_tui.dta.select import Exemplar
from telesynth_tui.dta.solutions import SOLVER, Problem
from telesynth_tui.dta.style import StyleProfile
from telesynth_tui.inference.base import Encoder
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.parallel import PlanSteps
from telesynth_tui.pipeline.sharded import (
    ModelHost,
    ModelSpec,
    ShardedModel,
    ShardError,
    WorkerPool,
    _Pending,
)

Calls = list[tuple[str, str, dict[str, Any]]]


@dataclass
class EncoderSpec:
    """What a worker needs to load the ONNX encoder on its own machine."""

    name: str
    path: str
    tokenizer: str
    threads: int = 1

    def load(self) -> Encoder:
        from telesynth_tui.inference.encoder import OnnxEncoder

        for file in (self.path, self.tokenizer):
            if not Path(file).is_file():
                raise ShardError(f"{file}: no such file (encoder {self.name})")
        return OnnxEncoder(Path(self.path), Path(self.tokenizer), self.name, self.threads)


class DtaHost(ModelHost):
    """A Ray worker holding a DTA run's models: the student answers whole calls (the style
    probes, as `ModelHost`), and `solve` does the model work of one problem."""

    def __init__(
        self,
        student: ModelSpec,
        others: dict[str, ModelSpec],
        encoder: EncoderSpec,
        config: DtaConfig,
    ) -> None:
        super().__init__(student)
        self.config = config

        def load(name: str) -> Any:
            return self.model if name == student.name else others[name].load()

        self.models = build_dta_models(config, load, encoder.load())

    def facts(self) -> dict[str, Any]:
        rewriter = self.models.rewriter
        return {**super().facts(), "rewriter": rewriter.name if rewriter else "layout"}

    def solve(
        self, problem: Problem, profile: StyleProfile, example: str
    ) -> tuple[list[Exemplar], Calls] | None:
        """The problem's candidates and model calls; None when cancelled (`cancel`)."""
        with self.running.call() as cancelled:
            solved = solve_problem(self.models, problem, self.config, profile, example, cancelled)
        if solved is None:
            return None
        for _, _, metrics in solved[1]:
            metrics.setdefault("extra", {})["ray_worker"] = self.where
        return solved


@dataclass
class _Handed:
    problem: Problem
    pending: _Pending


class ShardedDtaRunner(DtaRun):
    """A DTA run whose problems are solved on Ray workers, `lookahead` problems ahead of the one
    being stored; the style probes go to the workers' student."""

    def __init__(self, conn: sqlite3.Connection, pool: WorkerPool, lookahead: int) -> None:
        super().__init__(conn, ShardedModel(pool), str(pool.facts[0]["rewriter"]))
        self.pool = pool
        self.lookahead = lookahead

    def steps(
        self,
        run_id: int,
        config: DtaConfig,
        profile: StyleProfile,
        example: str,
        cancel: Callable[[], bool] = lambda: False,
    ) -> PlanSteps[sqlite3.Row, Any, list[tuple[str, str]]]:
        pending = [p for p in store.plans(self.conn, run_id) if p["status"] != "done"]
        order = {int(p["id"]): i for i, p in enumerate(pending)}
        handed: dict[int, _Handed] = {}
        next_up = 0

        def hand_out(until: int) -> None:
            nonlocal next_up
            while next_up < min(until, len(pending)):
                plan = pending[next_up]
                next_up += 1
                problem = self.problem(config, plan)
                job = self.pool.submit("solve", problem, profile, example)
                handed[int(plan["id"])] = _Handed(problem, job)

        def draft(plan: sqlite3.Row) -> tuple[Problem, list[Exemplar], Calls] | None:
            hand_out(order.get(int(plan["id"]), 0) + self.lookahead)
            job = handed.pop(int(plan["id"]), None)
            if job is None:  # not handed out ahead: now
                problem = self.problem(config, plan)
                job = _Handed(problem, self.pool.submit("solve", problem, profile, example))
            result = self.pool.result(job.pending, cancel)
            if result is None:
                return None
            candidates, calls = result
            return job.problem, candidates, calls

        def finish(
            plan: sqlite3.Row, drafted: tuple[Problem, list[Exemplar], Calls]
        ) -> list[tuple[str, str]]:
            problem, candidates, calls = drafted
            return self.store(run_id, plan, problem, candidates, calls)

        return PlanSteps(draft, finish)


def sharded_dta(
    project: Any,
    conn: sqlite3.Connection,
    config: DtaConfig,
    address: str,
    workers: int | None = None,
) -> tuple[ShardedDtaRunner, WorkerPool]:
    """The DTA run's storing in this process and its model work on Ray workers."""
    registry = project.registry()
    m = project.settings.models
    names = [config.student, *config.teachers, config.judge]
    if config.rewriter not in (None, "student"):
        names.append(config.rewriter)
    specs: dict[str, ModelSpec] = {}
    for name in names:
        if not name or name == SOLVER or name in specs:
            continue
        entry = registry.get(name)
        if not entry.text_model:
            raise ShardError(f"model {name!r} is not a GGUF or a served model")
        specs[name] = ModelSpec.of(entry, m.llama_threads or 1, m.n_ctx, m.n_batch)
    student = specs.pop(config.student)
    entry = registry.get(m.encoder)
    if "encoder" not in entry.roles or entry.tokenizer is None:
        raise ShardError(f"model {entry.name!r} is not an encoder")
    encoder = EncoderSpec(entry.name, str(entry.path), str(entry.tokenizer), m.onnx_threads)
    served = all(s.format == "openai" for s in (student, *specs.values()))
    pool = WorkerPool(address, workers, DtaHost, student, specs, encoder, config, served=served)
    return ShardedDtaRunner(conn, pool, lookahead=2 * len(pool.actors)), pool
