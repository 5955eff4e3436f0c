"""A DTA run: problems planned from the graph, the student probed for its style, every teacher's
solution rewritten, checked, judged, and the best exemplar per problem kept.

A DTA run is stored as a pipeline run (`runs`, `plans`, `samples`, `model_calls`) plus a row in
`dta_runs` with its configuration, the student's style profile and the probe answers. Each teacher
solution is one sample: the selected exemplar is accepted, the others are rejected with the
reason, the teacher's own text kept in `raw_text`. So `telesynth export RUN` writes SFT/RFT/DPO
from it, the review screen steps through it, and it resumes like a generation run.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from telesynth_tui.dta.select import (
    Exemplar,
    ModelStepChecker,
    Thresholds,
    agree_numeric,
    agree_text,
    check_steps,
    numeric_value,
    select,
)
from telesynth_tui.dta.solutions import (
    DTA_TYPES,
    SOLVER,
    ModelTeacher,
    Problem,
    SolverTeacher,
    Teacher,
    make_problem,
)
from telesynth_tui.dta.style import Rewriter, StyleProfile, lay_out, measure, segments, similarity
from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Encoder, SamplingParams, TextModel
from telesynth_tui.infra import transaction
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.context import plan_context
from telesynth_tui.pipeline.parallel import PlanSteps
from telesynth_tui.pipeline.plans import Planner, allocate
from telesynth_tui.pipeline.records import ContextItem, Provenance, Sample, Scores
from telesynth_tui.pipeline.runner import run_pending_plans
from telesynth_tui.pipeline.store import Progress, RunConfig
from telesynth_tui.text import strip_control_tokens

PROBE_SYSTEM = "Answer the telecom engineering question. Show your working briefly."


@dataclass
class DtaConfig:
    student: str
    teachers: list[str]  # registered GGUF names; the solver is added unless use_solver is off
    n: int = 20
    mix: dict[str, float] = field(default_factory=lambda: {"maths": 0.7, "troubleshooting": 0.3})
    seed: int = 0
    rewriter: str | None = None  # a GGUF name, "student" (the default) or None (layout only)
    judge: str | None = None  # a GGUF judge; the step checker always runs
    probes: int = 3
    use_solver: bool = True
    thresholds: dict[str, float] = field(default_factory=lambda: asdict(Thresholds()))

    def teacher_names(self) -> list[str]:
        return ([SOLVER] if self.use_solver else []) + [t for t in self.teachers if t != SOLVER]


def create_dta_run(conn: sqlite3.Connection, config: DtaConfig) -> int:
    if not config.teacher_names():
        raise TelesynthError("DTA needs at least one teacher (--teachers, or keep the solver)")
    unknown = set(config.mix) - set(DTA_TYPES)
    if unknown:
        raise TelesynthError(f"DTA plans maths and troubleshooting only, not {sorted(unknown)}")
    if config.n < 1:
        raise TelesynthError("--n must be at least 1")
    run_config = RunConfig(
        n=config.n,
        mix=config.mix,
        seed=config.seed,
        generator="dta",
        refiner=config.rewriter,
        judge=config.judge,
        min_quality=0.0,
        filters={},
    )

    def dta_row(run_id: int) -> None:
        store.insert_dta_run(conn, run_id, config.student, asdict(config))

    plans = Planner(conn, config.seed, store.sample_provenances(conn)).plans(
        allocate(config.n, config.mix)
    )
    return store.insert_run(conn, run_config, plans, dta_row)


def load_dta_config(conn: sqlite3.Connection, run_id: int) -> DtaConfig | None:
    record = store.dta_run(conn, run_id)
    return DtaConfig(**record.config) if record else None


@dataclass
class DtaModels:
    """The models of a DTA run, by role (the tests pass fakes)."""

    student: TextModel
    teachers: list[Teacher]
    encoder: Encoder
    rewriter: Rewriter | None = None
    step_checker: ModelStepChecker | None = None  # the reflection judge's model


def build_dta_models(
    config: DtaConfig, load: Callable[[str], TextModel], encoder: Encoder
) -> DtaModels:
    """The student, teachers, rewriter and judge of a DTA run, each model loaded by `load` once
    whatever roles it has."""
    loaded: dict[str, TextModel] = {}

    def model(name: str) -> TextModel:
        if name not in loaded:
            loaded[name] = load(name)
        return loaded[name]

    student = model(config.student)
    teachers: list[Teacher] = [
        SolverTeacher() if name == SOLVER else ModelTeacher(model(name))
        for name in config.teacher_names()
    ]
    rewriter = None
    if config.rewriter:
        rewriter = Rewriter(student if config.rewriter == "student" else model(config.rewriter))
    checker = ModelStepChecker(model(config.judge)) if config.judge else None
    return DtaModels(student, teachers, encoder, rewriter, checker)


def _restyle(
    models: DtaModels,
    problem: Problem,
    c: Exemplar,
    profile: StyleProfile,
    example: str,
    thresholds: Thresholds,
    calls: list[tuple[str, str, dict]],
    cancel: Callable[[], bool] | None = None,
) -> None:
    """The exemplar text: the rewriter's, when it keeps the final answer; otherwise the
    teacher's steps laid out in the student's style."""
    laid_out = lay_out(c.solution.steps, c.solution.final, profile)
    rewriter = models.rewriter
    if rewriter is None:
        c.text, c.rewrite = laid_out, {"by": "layout", "kept_final": True}
        return
    try:
        text, metrics = rewriter.rewrite(problem, c.solution, profile, example, cancel)
    except TelesynthError as exc:
        c.text = laid_out
        c.rewrite = {
            "by": rewriter.name,
            "kept_final": False,
            "detail": str(exc),
            "fallback": "layout",
        }
        return
    calls.append(("rewrite", rewriter.name, metrics))
    if problem.type == "maths":
        value, detail = numeric_value(text, problem)
        original = c.value if c.value is not None else problem.truth
        kept = (
            value is not None
            and original is not None
            and abs(value - original) <= float(problem.payload["tolerance"])
        )
    else:
        vectors = models.encoder.embed([text or " ", c.solution.text])
        cos = float(sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True)))
        kept = cos >= thresholds.rewrite_keeps
        detail = f"cosine {cos:.2f} with the teacher's solution"
    c.rewrite = {"by": rewriter.name, "kept_final": kept, "detail": detail, "text": text}
    if kept:
        c.text = text
    else:
        c.text = laid_out
        c.rewrite["fallback"] = "layout"


def solve_problem(
    models: DtaModels,
    problem: Problem,
    config: DtaConfig,
    profile: StyleProfile,
    example: str,
    cancel: Callable[[], bool] = lambda: False,
) -> tuple[list[Exemplar], list[tuple[str, str, dict[str, Any]]]] | None:
    """The model work of one problem, with no database: every teacher's solution, rewritten,
    checked, judged and selected, and the metrics of its model calls (stage, model, metrics).
    None when `cancel` is set meanwhile (the model call running stops within a token)."""
    thresholds = Thresholds(**config.thresholds)
    calls: list[tuple[str, str, dict[str, Any]]] = []
    candidates = []
    for teacher in models.teachers:  # Phase I: every teacher solves the problem
        solution = teacher.solve(problem, cancel)
        if cancel():
            return None
        if solution.metrics:
            calls.append(("solve", teacher.name, solution.metrics))
        candidates.append(Exemplar(solution))
    usable = [c for c in candidates if not c.solution.error]
    if problem.type == "maths":
        agree_numeric(problem, usable)
    elif usable:
        agree_text(problem, usable, models.encoder, thresholds)
    for c in usable:  # Phase II: rewrite, check, judge
        _restyle(models, problem, c, profile, example, thresholds, calls, cancel)
        if cancel():
            return None
        c.style = similarity(c.text, profile)
        _, steps = segments(c.text)
        *body, final = steps or [""]
        c.judge = check_steps(problem, body, final, models.encoder, thresholds)
        checker = models.step_checker
        if checker is not None:
            ctx = CallContext(cancel=cancel)
            verdict = checker.check(problem, body, final, ctx)
            if cancel():
                return None
            calls += [("judge", m.model, m.to_dict()) for m in ctx.metrics]
            if "score" in verdict:
                verdict["step_check"] = c.judge["score"]
                c.judge = verdict
            else:
                c.judge["model_judge_error"] = f"{checker.name}: {verdict['error']}"
    select(candidates, thresholds)
    return candidates, calls


class DtaRun(ABC):
    """What every DTA run does in the process that writes the project: the student's style,
    the problems, and storing each problem's candidates. Subclasses say where the model work
    of a problem runs (`steps`)."""

    def __init__(self, conn: sqlite3.Connection, student: TextModel, rewriter: str) -> None:
        self.conn = conn
        self.student = student  # answers the style probes
        self.rewriter = rewriter  # the rewriter's name, "layout" without one

    # --- the student's style ------------------------------------------------------------------

    def profile(self, run_id: int, config: DtaConfig) -> tuple[StyleProfile, list[str]]:
        """The stored profile, or one measured now on the student's answers to probe problems
        (planned with another seed, so they are not the run's own problems)."""
        record = store.dta_run(self.conn, run_id)
        if record and record.profile:
            return StyleProfile(**record.profile), [p["answer"] for p in record.probes]
        planner = Planner(self.conn, config.seed + 7919, store.sample_provenances(self.conn))
        counts = allocate(config.probes, config.mix) if config.probes else {}
        probes: list[dict[str, Any]] = []
        student = self.student
        for i, plan in enumerate(planner.plans(counts)):
            problem = make_problem(0, plan.type, json.loads(plan.to_json()), i, [])
            messages = [
                {"role": "system", "content": PROBE_SYSTEM},
                {"role": "user", "content": problem.question},
            ]
            params = SamplingParams(max_tokens=min(200, student.n_ctx // 2))
            try:
                done = student.complete(messages, params)
            except TelesynthError as exc:
                answer, metrics = "", {"error": str(exc)}
            else:
                answer, metrics = done.text.strip(), done.metrics.to_dict()
            probes.append(
                {
                    "type": plan.type,
                    "question": problem.question,
                    "answer": answer,
                    "metrics": metrics,
                }
            )
        profile = measure([p["answer"] for p in probes])
        with transaction(self.conn):
            store.set_dta_style(self.conn, run_id, profile.to_dict(), probes)
            calls = [
                ("probe", p["metrics"]["model"], p["metrics"])
                for p in probes
                if p["metrics"].get("model")
            ]
            store.record_calls(self.conn, run_id, None, calls)
        return profile, [p["answer"] for p in probes]

    # --- one problem ----------------------------------------------------------------------------

    def problem(self, config: DtaConfig, plan: sqlite3.Row) -> Problem:
        """The plan posed as a problem, with its context from the graph."""
        payload = json.loads(plan["payload"])
        context = plan_context(self.conn, plan["type"], payload)
        return make_problem(
            plan["id"], plan["type"], payload, config.seed * 100_003 + plan["ordinal"], context
        )

    def store(
        self,
        run_id: int,
        plan: sqlite3.Row,
        problem: Problem,
        candidates: list[Exemplar],
        calls: list[tuple[str, str, dict]],
    ) -> list[tuple[str, str]]:
        """The problem's candidates stored (once: a plan already done is not written again);
        their (status, reason), the selected one last."""
        cited = [c["key"] for c in problem.context]
        rewriter = self.rewriter
        context = [ContextItem.from_dict(c) for c in problem.context]
        samples = []
        for c in candidates:
            s = c.solution
            _, steps = segments(c.text) if c.text else ("", [])
            scores = {
                "agreement": c.agreement,
                "judge": c.judge,
                "style": c.style,
                "rewrite": c.rewrite,
                "selection_score": c.score,
            }
            provenance = Provenance(
                plan_id=plan["id"],
                plan_type=plan["type"],
                entity_ids=problem.payload.get("entity_ids", []),
                relation_ids=problem.payload.get("relation_ids", []),
                formula=problem.payload.get("formula"),
                chunk_ids=[],
                context_keys=cited,
                generator=s.teacher,
                extra={
                    "teacher": s.teacher,
                    "rewriter": c.rewrite.get("by", rewriter),
                    "judge": c.judge.get("by"),
                },
            )
            samples.append(
                Sample(
                    run_id=run_id,
                    plan_id=plan["id"],
                    type=plan["type"],
                    generator=s.teacher,
                    status=c.status,
                    question=problem.question,
                    answer=strip_control_tokens(c.text) or None,
                    steps=[strip_control_tokens(x) for x in steps],
                    context=context,
                    cited=cited,
                    provenance=provenance,
                    raw_text=s.raw_text or s.text,
                    reason=c.reason or None,
                    scores=Scores(scores),
                    quality=c.score,
                )
            )
        store.store_plan(self.conn, run_id, plan["id"], samples, calls)
        chosen = [c for c in candidates if c.status == "accepted"]
        others = [c for c in candidates if c.status != "accepted"]
        return [(c.status, c.reason) for c in others + chosen]  # the outcome shown last

    # --- the run ----------------------------------------------------------------------------------

    def execute(
        self,
        run_id: int,
        progress: Callable[[Progress], None] = lambda _: None,
        cancel: Callable[[], bool] = lambda: False,
    ) -> dict[str, Any]:
        config = load_dta_config(self.conn, run_id)
        if config is None:
            raise TelesynthError(f"run {run_id} is not a DTA run")
        profile, answers = self.profile(run_id, config)
        example = " ".join(next((a for a in answers if a.strip()), "").split()[:60])

        steps = self.steps(run_id, config, profile, example, cancel)
        finished = run_pending_plans(self.conn, run_id, steps, progress, cancel)
        return store.finish_run(self.conn, run_id, finished, dta_summary(self.conn, run_id))

    @abstractmethod
    def steps(
        self,
        run_id: int,
        config: DtaConfig,
        profile: StyleProfile,
        example: str,
        cancel: Callable[[], bool] = lambda: False,
    ) -> PlanSteps[sqlite3.Row, Any, list[tuple[str, str]]]:
        """How the run's pending problems are solved and stored, in plan order (`cancel` is
        polled between problems, and by a model call that can stop sooner)."""


class DtaRunner(DtaRun):
    """A DTA run with its models in this process."""

    def __init__(self, conn: sqlite3.Connection, models: DtaModels) -> None:
        super().__init__(
            conn, models.student, models.rewriter.name if models.rewriter else "layout"
        )
        self.models = models

    def process(
        self,
        run_id: int,
        config: DtaConfig,
        plan: sqlite3.Row,
        profile: StyleProfile,
        example: str,
        cancel: Callable[[], bool] = lambda: False,
    ) -> list[tuple[str, str]] | None:
        """The problem solved and stored; None (nothing stored) when cancelled meanwhile."""
        problem = self.problem(config, plan)
        solved = solve_problem(self.models, problem, config, profile, example, cancel)
        if solved is None:
            return None
        return self.store(run_id, plan, problem, *solved)

    def steps(
        self,
        run_id: int,
        config: DtaConfig,
        profile: StyleProfile,
        example: str,
        cancel: Callable[[], bool] = lambda: False,
    ) -> PlanSteps[sqlite3.Row, Any, list[tuple[str, str]]]:
        return PlanSteps.single(
            lambda plan: self.process(run_id, config, plan, profile, example, cancel)
        )


def dta_summary(conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    """The run summary plus DTA figures: exemplars per teacher, rewrites kept, the profile."""
    summary = store.run_summary(conn, run_id)
    record = store.dta_run(conn, run_id)
    selected: Counter[str] = Counter()
    candidates: Counter[str] = Counter()
    rewrites: Counter[str] = Counter()
    for sample in store.samples(conn, run_id):
        teacher = sample.generator
        candidates[teacher] += 1
        if sample.accepted:
            selected[teacher] += 1
        rewrite = sample.scores.get("rewrite", {})
        if rewrite.get("by") == "layout":
            rewrites["laid out (no rewriter)"] += 1
        elif rewrite:
            rewrites["lost the answer, laid out" if rewrite.get("fallback") else "rewritten"] += 1
    problems = summary["plans_done"]
    summary.update(
        {
            "student": record.student if record else None,
            "profile": record.profile if record else {},
            "problems_with_exemplar": sum(selected.values()),
            "problems_without_exemplar": problems - sum(selected.values()),
            "candidates_by_teacher": dict(candidates),
            "selected_by_teacher": dict(selected),
            "rewrites": dict(rewrites),
        }
    )
    return summary
