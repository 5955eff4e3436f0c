"""The resumable runner: plan -> retrieve -> generate -> (refine) -> filter -> score -> store.

All plans of a run are stored when it starts; each plan's samples, model calls and its `done`
mark are written in one transaction (`store.store_plan`), so a killed process loses at most the
plan in flight and `generate --resume RUN` continues where it stopped. Nothing is dropped
silently: a rejected sample keeps its reason and the raw model text. Context assembly lives in
`context.py`, the accept policy in `accept.py`, the SQL in `store.py`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.inference.base import CallContext
from telesynth_tui.inference.generator import LlamaGenerator
from telesynth_tui.inference.scheduler import BatchScheduler
from telesynth_tui.infra import Stopwatch
from telesynth_tui.pipeline import lease, store
from telesynth_tui.pipeline.accept import AcceptPolicy
from telesynth_tui.pipeline.context import (
    LLM_CONTEXT_TOKENS,
    plan_context,
    provenance,
    with_retrieved,
)
from telesynth_tui.pipeline.documents import document_plans
from telesynth_tui.pipeline.filters import Filters
from telesynth_tui.pipeline.gate import Gate
from telesynth_tui.pipeline.generate_llm import DOCUMENT, LlmQA
from telesynth_tui.pipeline.parallel import PlanSteps, Turn
from telesynth_tui.pipeline.plans import Planner, allocate
from telesynth_tui.pipeline.realize import Candidate, TemplateRealizer
from telesynth_tui.pipeline.records import ContextItem, Sample
from telesynth_tui.pipeline.scoring import Scorer
from telesynth_tui.pipeline.sources import QARequest
from telesynth_tui.pipeline.store import TEMPLATE, Progress, RunConfig


@dataclass
class PlanDraft:
    """A plan between its model calls and the accept policy: its candidates (each with the
    answer it refines, if any), their context, and the call contexts of its stages."""

    payload: dict[str, Any]
    context: list[dict[str, Any]]
    judged: list[tuple[Candidate | str, str | None]]
    stages: dict[str, CallContext]


def create_run(conn: sqlite3.Connection, config: RunConfig) -> int:
    """Store the run and all of its plans (reproducible by seed) in one transaction."""
    if config.n < 1:
        raise TelesynthError("--n must be at least 1")
    if config.documents:
        if config.generator == TEMPLATE:
            raise TelesynthError(
                "--from-docs needs a GGUF generator (--generator NAME, e.g. smollm2-135m-instruct)"
            )
        plans = document_plans(conn, config.documents, config.pairs_per_context, config.n)
        if not plans:
            raise TelesynthError("--from-docs: the documents have no section with text to ask")
        config.n = len(plans)
        return store.insert_run(conn, config, plans)
    planner = Planner(conn, config.seed, store.sample_provenances(conn))
    return store.insert_run(conn, config, planner.plans(allocate(config.n, config.mix)))


Outcome = list[tuple[str, str]]  # (status, reason) of a plan's samples


def plan_seed(config: RunConfig, ordinal: int) -> int:
    """The seed of one plan's writing: the run's seed and the plan's place in the run."""
    return config.seed * 100_003 + ordinal


def run_pending_plans(
    conn: sqlite3.Connection,
    run_id: int,
    steps: PlanSteps[sqlite3.Row, Any, Outcome],
    progress: Callable[[Progress], None],
    cancel: Callable[[], bool],
) -> bool:
    """Process the run's pending plans in order. `steps` stores one plan and gives the
    (status, reason) of its samples, or None when it was cancelled before storing. Returns
    whether every plan is done; the run is marked running meanwhile, and this process holds the
    run's lease (one writer per run)."""
    with lease.hold(conn, run_id):
        store.mark_running(conn, run_id)
        plans = store.plans(conn, run_id)
        counts = store.status_counts(conn, run_id)
        done = sum(1 for p in plans if p["status"] == "done")

        def finished(plan: sqlite3.Row, outcome: Outcome) -> None:
            nonlocal done
            counts.update(status for status, _ in outcome)
            done += 1
            status, reason = outcome[-1] if outcome else ("", "")
            rates = store.last_rates(conn, run_id)
            progress(
                Progress(
                    run_id,
                    done,
                    len(plans),
                    counts["accepted"],
                    counts["rejected"],
                    plan["type"],
                    status,
                    reason,
                    *rates,
                )
            )

        steps.run([p for p in plans if p["status"] != "done"], finished, cancel)
        return done == len(plans)


class Runner:
    def __init__(
        self,
        conn: sqlite3.Connection,
        retriever: Retriever,
        filters: Filters,
        scorer: Scorer,
        llm: LlmQA | None = None,
        refiner: LlmQA | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.conn = conn
        self.retriever = retriever
        self.filters = filters
        self.llm = llm
        self.refiner = refiner
        self.templates = TemplateRealizer()  # the QA source when there is no LLM writer
        self.clock = Stopwatch()  # wall time per stage in this process
        # the accept gate over the project's graph knows the project's accepted samples
        if gate is None:
            gate = Gate.for_project(conn, store.accepted_pairs(conn))
        self.policy = AcceptPolicy(retriever, filters, scorer, gate, self.clock)

    @property
    def stage_seconds(self) -> dict[str, float]:
        return self.clock.seconds

    # --- context --------------------------------------------------------------------------

    def _context(self, query: str, base: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
        with self._timed("retrieve"):
            return with_retrieved(self.retriever, query, base, budget)

    # --- one plan -------------------------------------------------------------------------

    def _candidates(
        self,
        config: RunConfig,
        plan_type: str,
        payload: dict[str, Any],
        seed: int,
        ctx: CallContext,
    ) -> tuple[list[Candidate | str], list[dict[str, Any]]]:
        """The plan's candidates from its QA source and the context they are grounded in."""
        base = plan_context(self.conn, plan_type, payload)
        request = QARequest(plan_type, payload, [], seed, config.pairs_per_context)
        if self.llm is None:  # the templates write from the plan; retrieve for the question
            with self._timed("generate"):
                (candidate,) = self.templates.write(request, ctx)
            assert isinstance(candidate, Candidate)
            candidate.cited = [i["key"] for i in base] or candidate.cited
            context = self._context(candidate.question, base, config.budget_tokens)
            return [candidate], context
        context = self.llm_context(config, plan_type, payload, base)
        if plan_type == DOCUMENT and not context:  # the section is the grounding
            return ["generate: the section's text is gone (its document was re-imported)\n"], []
        request.context = context
        with self._timed("generate"):
            found = self.llm.write(request, ctx)
        for item in found:
            if isinstance(item, Candidate) and not item.cited:
                item.cited = [i["key"] for i in base]
        return found, context

    def llm_context(
        self,
        config: RunConfig,
        plan_type: str,
        payload: dict[str, Any],
        base: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The context a model writes a plan's QA from: a document plan's section, or the plan's
        own facts and what the retriever adds within the model's context budget."""
        assert self.llm is not None
        if base is None:
            base = plan_context(self.conn, plan_type, payload)
        if plan_type == DOCUMENT:
            return base
        topic = " ".join(i["text"] for i in base) or json.dumps(payload)[:300]
        budget = min(config.budget_tokens, self.llm.context_budget, LLM_CONTEXT_TOKENS)
        return self._context(topic, base, budget)

    def _timed(self, stage: str) -> AbstractContextManager[None]:
        return self.clock.timed(stage)

    def _refine(
        self,
        candidate: Candidate,
        context: list[dict[str, Any]],
        plan_type: str,
        payload: dict[str, Any],
        ctx: CallContext,
    ) -> Candidate | str:
        assert self.refiner is not None
        with self._timed("refine"):
            return self.refiner.refine(candidate, context, plan_type, payload, ctx)

    def draft_plan(
        self,
        config: RunConfig,
        plan: sqlite3.Row,
        cancel: Callable[[], bool] = lambda: False,
        on_token: Callable[[str], None] | None = None,
    ) -> PlanDraft | None:
        """The plan's candidates (written, then refined) and their context; None when
        cancelled. `on_token` sees the writer's and the refiner's output as it is decoded."""
        payload = json.loads(plan["payload"])
        # where each stage's model calls go: (stage, its call context)
        stages = {stage: CallContext(cancel, on_token) for stage in ("generate", "refine")}
        stages.update({stage: CallContext(cancel) for stage in ("filter", "score")})
        found, context = self._candidates(
            config,
            plan["type"],
            payload,
            plan_seed(config, plan["ordinal"]),
            stages["generate"],
        )
        if cancel():
            return None
        # (item, the draft it refines): a failed refinement is kept and its draft judged too
        judged: list[tuple[Candidate | str, str | None]] = []
        for item in found:
            if isinstance(item, Candidate) and self.refiner is not None:
                refined = self._refine(item, context, plan["type"], payload, stages["refine"])
                if isinstance(refined, str):
                    judged += [(refined, None), (item, None)]
                else:
                    judged.append((refined, item.answer))
            else:
                judged.append((item, None))
        if cancel():
            return None
        return PlanDraft(payload, context, judged, stages)

    def finish_plan(
        self,
        run_id: int,
        plan: sqlite3.Row,
        drafted: PlanDraft,
        cancel: Callable[[], bool] = lambda: False,
    ) -> list[Sample] | None:
        """The plan's samples through the accept policy, stored in one transaction; None when
        cancelled first (nothing of the plan is stored, so it runs again on resume)."""
        payload, context, stages = drafted.payload, drafted.context, drafted.stages
        generator = self.llm.name if self.llm else TEMPLATE
        texts = [c["text"] for c in context]
        template = Sample(
            run_id,
            plan["id"],
            plan["type"],
            generator,
            "",
            context=[ContextItem.from_dict(c) for c in context],
            provenance=provenance(plan, payload, context, generator),
        )
        samples: list[Sample] = []
        vectors: list[np.ndarray | None] = []
        for item, draft in drafted.judged:
            sample, vector = self.policy.assess(
                item, template, payload, context, texts, draft, stages["filter"], stages["score"]
            )
            samples.append(sample)
            vectors.append(vector)
        calls = [
            (stage, m.model, m.to_dict()) for stage, ctx in stages.items() for m in ctx.metrics
        ]
        if cancel():
            return None
        t_store = time.perf_counter()
        if not store.store_plan(self.conn, run_id, plan["id"], samples, calls):
            return []  # stored already (by an earlier writer): nothing is written twice
        self.stage_seconds["store"] += time.perf_counter() - t_store
        for s, vector in zip(samples, vectors, strict=True):
            if s.accepted and vector is not None:
                self.filters.accept(vector)
        return samples

    def process_plan(
        self,
        run_id: int,
        config: RunConfig,
        plan: sqlite3.Row,
        cancel: Callable[[], bool] = lambda: False,
        on_token: Callable[[str], None] | None = None,
    ) -> list[Sample] | None:
        """Draft and finish one plan; None when cancelled before it was stored."""
        drafted = self.draft_plan(config, plan, cancel, on_token)
        return None if drafted is None else self.finish_plan(run_id, plan, drafted, cancel)

    # --- the run --------------------------------------------------------------------------

    def _restore_duplicates(self, run_id: int) -> None:
        questions = store.accepted_questions(self.conn, run_id)
        if questions:
            for vec in self.filters.encoder.embed(questions):
                self.filters.accept(np.asarray(vec))

    def execute(
        self,
        run_id: int,
        progress: Callable[[Progress], None] = lambda _: None,
        cancel: Callable[[], bool] = lambda: False,
        on_token: Callable[[str], None] | None = None,
        parallel: int = 1,
    ) -> dict[str, Any]:
        """Run the run's pending plans. With `parallel` N > 1, N plans are drafted at once and
        a GGUF writer (and refiner) decodes their calls together (`batched`); plans are still
        finished and stored one at a time, in plan order."""
        config, _ = store.load_run(self.conn, run_id)
        self.policy.min_quality = config.min_quality
        self._restore_duplicates(run_id)
        if parallel < 1:
            raise TelesynthError(f"--parallel must be at least 1, not {parallel}")

        def finish(plan: sqlite3.Row, drafted: PlanDraft) -> Outcome | None:
            samples = self.finish_plan(run_id, plan, drafted, cancel)
            if samples is None:
                return None
            return [(s.status, s.reason or "") for s in samples]

        with self.batched(parallel) as turn:
            steps: PlanSteps[sqlite3.Row, PlanDraft, Outcome] = PlanSteps(
                lambda plan: self.draft_plan(config, plan, cancel, on_token),
                finish,
                parallel,
                turn,
            )
            finished = run_pending_plans(self.conn, run_id, steps, progress, cancel)
        summary = store.run_summary(self.conn, run_id)
        summary["parallel"] = parallel
        return store.finish_run(self.conn, run_id, finished, summary)

    @contextmanager
    def batched(self, parallel: int) -> Iterator[Turn]:
        """For the block, the writer and refiner decode through one batch scheduler of
        `parallel` sequences whose steps take the returned turn (nothing changes at 1)."""
        turn = Turn()
        if parallel == 1 or self.llm is None:
            yield turn
            return
        writer, refiner = self.llm, self.refiner
        model = writer.generator
        if not isinstance(model, LlamaGenerator):
            raise TelesynthError(
                f"--parallel decodes GGUF models together; {writer.name} is not one "
                "(a served model batches the requests it receives itself)"
            )
        with BatchScheduler(model, parallel, model.n_ctx, turn.lock) as scheduler:
            batched = scheduler.model(turn.released)
            self.llm = LlmQA(batched, writer.max_tokens, writer.seed)
            if refiner is writer:
                self.refiner = self.llm
            elif refiner is not None and refiner.generator is model:
                self.refiner = LlmQA(batched, refiner.max_tokens, refiner.seed)
            try:
                yield turn
            finally:
                self.llm, self.refiner = writer, refiner
