"""The resumable runner: plan -> retrieve -> generate -> (refine) -> filter -> score -> store.

All plans of a run are stored when it starts; each plan's samples, model calls and its `done`
mark are written in one transaction, so a killed process loses at most the plan in flight and
`generate --resume RUN` continues where it stopped. Nothing is dropped silently: a rejected
sample keeps its reason and the raw model text.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.inference.base import CallContext
from telesynth_tui.infra import now, transaction
from telesynth_tui.pipeline import lease
from telesynth_tui.pipeline.documents import document_plans, section_context
from telesynth_tui.pipeline.filters import Filters, FilterSettings
from telesynth_tui.pipeline.gate import DEFAULT_MIN_QUALITY, Gate, GateItem
from telesynth_tui.pipeline.generate_llm import DOCUMENT, LlmQA
from telesynth_tui.pipeline.plans import DEFAULT_MIX, Plan, Planner, allocate
from telesynth_tui.pipeline.realize import Candidate, TemplateRealizer
from telesynth_tui.pipeline.scoring import Scorer, quality
from telesynth_tui.pipeline.sources import QARequest
from telesynth_tui.text import has_control_tokens, strip_control_tokens

TEMPLATE = "kg-template"
LLM_CONTEXT_TOKENS = 300  # a small model writes better from the plan and a little context


@dataclass
class RunConfig:
    n: int = 100
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 0
    generator: str = TEMPLATE
    refiner: str | None = None
    judge: str | None = None
    pairs_per_context: int = 10
    budget_tokens: int = 900
    min_quality: float = DEFAULT_MIN_QUALITY
    max_tokens: int = 1536  # output budget of a GGUF generator (capped at half its context)
    documents: list[int] = field(default_factory=list)  # document-driven: plans per section
    filters: dict[str, float] = field(default_factory=lambda: asdict(FilterSettings()))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls(**json.loads(text))


@dataclass
class Progress:
    run_id: int
    done: int
    total: int
    accepted: int
    rejected: int
    last_type: str = ""
    last_status: str = ""
    last_reason: str = ""
    tokens_per_s: float | None = None
    joules_per_token: float | None = None
    energy_source: str = ""


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
        return insert_run(conn, config, plans)
    planner = Planner(conn, config.seed)
    return insert_run(conn, config, planner.plans(allocate(config.n, config.mix)))


def insert_run(
    conn: sqlite3.Connection,
    config: RunConfig,
    plans: list[Plan],
    extra: Callable[[int], None] = lambda run_id: None,
) -> int:
    """The run row, its plans and whatever `extra` adds for the new run id, all or nothing."""
    if not plans:
        raise TelesynthError("the knowledge graph has nothing to plan from (run telesynth init)")
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO runs(created_at, status, config) VALUES (?, 'running', ?)",
            (now(), json.dumps(asdict(config))),
        )
        run_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO plans(run_id, ordinal, type, payload) VALUES (?, ?, ?, ?)",
            [(run_id, i, p.type, p.to_json()) for i, p in enumerate(plans)],
        )
        extra(run_id)
    return run_id


SAMPLE_COLUMNS = (
    "run_id", "plan_id", "type", "question", "answer", "steps", "context", "cited",
    "provenance", "generator", "raw_text", "status", "reason", "scores", "quality",
)  # fmt: skip


def plan_seed(config: RunConfig, ordinal: int) -> int:
    """The seed of one plan's writing: the run's seed and the plan's place in the run."""
    return config.seed * 100_003 + ordinal


def record_calls(conn: sqlite3.Connection, run_id: int, plan_id: int | None,
                 calls: list[tuple[str, str, dict[str, Any]]]) -> None:  # fmt: skip
    """Model calls (stage, model, metrics) of a run, inside the caller's transaction."""
    conn.executemany(
        "INSERT INTO model_calls(run_id, plan_id, stage, model, metrics) VALUES (?, ?, ?, ?, ?)",
        [(run_id, plan_id, stage, model, json.dumps(metrics)) for stage, model, metrics in calls],
    )


def store_plan(conn: sqlite3.Connection, run_id: int, plan_id: int, samples: list[dict[str, Any]],
               calls: list[tuple[str, str, dict[str, Any]]]) -> bool:  # fmt: skip
    """A plan's samples (SAMPLE_COLUMNS, JSON fields encoded), its model calls and its done mark,
    all or nothing, and only once: False (nothing written) when the plan is already stored.
    Refused when another process holds the run's lease."""
    marks = ", ".join("?" * (len(SAMPLE_COLUMNS) + 1))
    with transaction(conn):
        lease.check_writer(conn, run_id)
        row = conn.execute("SELECT status FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is not None and row[0] == "done":
            return False
        conn.executemany(
            f"INSERT INTO samples({', '.join(SAMPLE_COLUMNS)}, created_at) VALUES ({marks})",
            [(*(s[c] for c in SAMPLE_COLUMNS), now()) for s in samples],
        )
        record_calls(conn, run_id, plan_id, calls)
        conn.execute("UPDATE plans SET status = 'done' WHERE id = ?", (plan_id,))
    return True


def run_pending_plans(
    conn: sqlite3.Connection,
    run_id: int,
    process: Callable[[sqlite3.Row], list[tuple[str, str]] | None],
    progress: Callable[[Progress], None],
    cancel: Callable[[], bool],
) -> bool:
    """Process the run's pending plans in order. `process` stores one plan and returns the
    (status, reason) of its samples, or None when it was cancelled before storing. Returns
    whether every plan is done; the run is marked running meanwhile, and this process holds the
    run's lease (one writer per run)."""
    with lease.hold(conn, run_id):
        conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run_id,))
        query = "SELECT * FROM plans WHERE run_id = ? ORDER BY ordinal"
        plans = conn.execute(query, (run_id,)).fetchall()
        counts = Counter(
            r[0] for r in conn.execute("SELECT status FROM samples WHERE run_id = ?", (run_id,))
        )
        done = sum(1 for p in plans if p["status"] == "done")
        for plan in plans:
            if plan["status"] == "done":
                continue
            if cancel():
                break
            outcome = process(plan)
            if outcome is None:
                break
            counts.update(status for status, _ in outcome)
            done += 1
            status, reason = outcome[-1] if outcome else ("", "")
            progress(Progress(run_id, done, len(plans), counts["accepted"], counts["rejected"],
                              plan["type"], status, reason, *last_rates(conn, run_id)))  # fmt: skip
        return done == len(plans)


def finish_run(conn: sqlite3.Connection, run_id: int, finished: bool,
               summary: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    with transaction(conn):
        conn.execute(
            "UPDATE runs SET status = ?, summary = ? WHERE id = ?",
            ("finished" if finished else "interrupted", json.dumps(summary), run_id),
        )
    return summary


def load_run(conn: sqlite3.Connection, run_id: int) -> tuple[RunConfig, int]:
    """A stored run's configuration and its number of plans."""
    row = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise TelesynthError(f"no run {run_id} (see: telesynth runs)")
    plans = conn.execute("SELECT COUNT(*) FROM plans WHERE run_id = ?", (run_id,)).fetchone()
    return RunConfig.from_json(row[0]), int(plans[0])


def samples_after(conn: sqlite3.Connection, run_id: int, after_id: int) -> list[sqlite3.Row]:
    """The run's samples stored after sample `after_id` (id, type, status, reason, Q, A)."""
    return conn.execute(
        "SELECT id, type, status, reason, question, answer FROM samples"
        " WHERE run_id = ? AND id > ? ORDER BY id",
        (run_id, after_id),
    ).fetchall()


def last_rates(conn: sqlite3.Connection, run_id: int) -> tuple[float | None, float | None, str]:
    """Decode tok/s, J/token and energy source of the run's latest model call."""
    row = conn.execute(
        "SELECT metrics FROM model_calls WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)
    ).fetchone()
    if row is None:
        return None, None, ""
    m = json.loads(row[0])
    return m.get("decode_tok_s"), m.get("joules_per_token"), m.get("energy_source", "")


def without_control_tokens(candidate: Candidate) -> Candidate:
    """The candidate with chat-template control tokens removed from what it says."""
    texts = [candidate.question, candidate.answer, *candidate.steps]
    if not any(has_control_tokens(t) for t in texts):
        return candidate
    return replace(candidate, question=strip_control_tokens(candidate.question),
                   answer=strip_control_tokens(candidate.answer),
                   steps=[strip_control_tokens(s) for s in candidate.steps])  # fmt: skip


def plan_context(
    conn: sqlite3.Connection, plan_type: str, payload: dict[str, Any]
) -> list[dict[str, Any]]:
    """The plan's own facts (or formula, or document section) as context items, so the context
    holds what the answer is grounded in."""
    if plan_type == DOCUMENT:
        return section_context(conn, payload)
    items: list[dict[str, Any]] = []
    rel_ids = payload.get("relation_ids", [])
    if rel_ids:
        marks = ",".join("?" * len(rel_ids))
        for rid, s, p, o in conn.execute(
            f"SELECT r.id, s.name, r.predicate, o.name FROM relations r JOIN entities s"
            f" ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id"
            f" WHERE r.id IN ({marks}) ORDER BY r.id",
            rel_ids,
        ):
            items.append(
                {
                    "key": f"fact:{rid}",
                    "kind": "fact",
                    "id": rid,
                    "text": f"{s} {p.replace('_', ' ')} {o}",
                }
            )
    if plan_type == "maths":
        variables = "; ".join(
            f"{k}: {payload['descriptions'].get(k, '')} [{u}]" for k, u in payload["units"].items()
        )
        items.append(
            {
                "key": f"formula:{payload['formula']}",
                "kind": "formula",
                "id": payload["formula"],
                "text": f"{payload['name']}: {payload['output_symbol'] or 'result'} = "
                f"{payload['expression']} [{payload['unit']}]. {variables}",
            }
        )
    if plan_type == "definition":
        items.append(
            {
                "key": f"entity:{payload['entity_ids'][0]}",
                "kind": "entity",
                "id": payload["entity_ids"][0],
                "text": f"{payload['entity']}: {payload['description']}",
            }
        )
    return items


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
        # the accept gate over the project's graph; it knows the project's accepted samples
        self.gate = gate if gate is not None else Gate.for_project(conn)
        self.retriever = retriever
        self.filters = filters
        self.scorer = scorer
        self.llm = llm
        self.refiner = refiner
        self.min_quality = 0.0
        # wall time per stage in this process
        self.stage_seconds: dict[str, float] = defaultdict(float)
        self.templates = TemplateRealizer()  # the QA source when there is no LLM writer

    # --- context --------------------------------------------------------------------------

    def _context(self, query: str, base: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
        used = sum(len(i["text"].split()) for i in base)
        with self._timed("retrieve"):
            result = self.retriever.retrieve(query, budget_tokens=max(64, budget - used))
        keys = {i["key"] for i in base}
        items = list(base)
        for item in result.items:
            if item.key not in keys:
                items.append(
                    {
                        "key": item.key,
                        "kind": item.kind,
                        "id": item.id,
                        "text": item.text,
                        "provenance": item.provenance,
                    }
                )
        return items

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

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[stage] += time.perf_counter() - t0

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

    def process_plan(
        self,
        run_id: int,
        config: RunConfig,
        plan: sqlite3.Row,
        cancel: Callable[[], bool] = lambda: False,
        on_token: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]] | None:
        """The plan's samples, stored in one transaction; None when cancelled mid-plan (nothing
        of the plan is stored, so it runs again on resume). `on_token` sees the writer's and the
        refiner's output as it is decoded."""
        payload = json.loads(plan["payload"])
        # where each stage's model calls go: (stage, its call context)
        stages = {stage: CallContext(cancel, on_token) for stage in ("generate", "refine")}
        stages.update({stage: CallContext(cancel) for stage in ("filter", "score")})
        found, context = self._candidates(
            config, plan["type"], payload, plan_seed(config, plan["ordinal"]),
            stages["generate"],
        )  # fmt: skip
        if cancel():
            return None
        generator = self.llm.name if self.llm else TEMPLATE
        texts = [c["text"] for c in context]
        samples: list[dict[str, Any]] = []
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
        for item, draft in judged:
            sample = self._decide(item, plan["type"], payload, context, texts, draft,
                                 stages["filter"], stages["score"])  # fmt: skip
            sample.update(
                {
                    "run_id": run_id,
                    "plan_id": plan["id"],
                    "type": plan["type"],
                    "generator": generator,
                }
            )
            samples.append(sample)
        calls = [
            (stage, m.model, m.to_dict()) for stage, ctx in stages.items() for m in ctx.metrics
        ]
        if cancel():
            return None
        t_store = time.perf_counter()
        shared = {
            "context": json.dumps(context),
            "provenance": json.dumps(self._provenance(plan, payload, context, generator)),
        }
        rows = [
            {**{k: s[k] for k in ("run_id", "plan_id", "type", "question", "answer",
                                  "generator", "raw_text", "status", "reason", "quality")},
             **shared, "steps": json.dumps(s["steps"]), "cited": json.dumps(s["cited"]),
             "scores": json.dumps(s["scores"])}
            for s in samples
        ]  # fmt: skip
        if not store_plan(self.conn, run_id, plan["id"], rows, calls):
            return []  # stored already (by an earlier writer): nothing is written twice
        self.stage_seconds["store"] += time.perf_counter() - t_store
        for s in samples:
            if s["status"] == "accepted":
                self.filters.accept(s["_q_vec"])
        return samples

    @staticmethod
    def _provenance(
        plan: sqlite3.Row, payload: dict[str, Any], context: list[dict[str, Any]], generator: str
    ) -> dict[str, Any]:
        return {
            "plan_id": plan["id"],
            "plan_type": plan["type"],
            "entity_ids": payload.get("entity_ids", []),
            "relation_ids": payload.get("relation_ids", []),
            "formula": payload.get("formula"),
            "chunk_ids": [c["id"] for c in context if c["kind"] == "chunk"],
            "context_keys": [c["key"] for c in context],
            "generator": generator,
        }

    def _decide(
        self,
        item: Candidate | str,
        plan_type: str,
        payload: dict[str, Any],
        context: list[dict[str, Any]],
        texts: list[str],
        draft: str | None = None,
        filter_ctx: CallContext | None = None,
        score_ctx: CallContext | None = None,
    ) -> dict[str, Any]:
        """The accept policy: filter, score and gate one item, then accept or reject it."""
        reason: str | None
        if isinstance(item, str):  # the model's output could not be used: keep it and say why
            reason, _, raw = item.partition("\n")
            return {
                "question": None,
                "answer": None,
                "steps": [],
                "cited": [],
                "raw_text": raw,
                "status": "rejected",
                "reason": reason,
                "scores": {},
                "quality": None,
                "_q_vec": None,
            }
        item = without_control_tokens(item)
        known = {}
        for position, c in enumerate(context):
            if c["kind"] == "chunk":
                vector = self.retriever.chunk_vector(int(c["id"]))
                if vector is not None:
                    known[position] = vector
        with self._timed("filter"):
            verdicts, vectors = self.filters.run(
                item.question, item.answer, texts, plan_type, payload, known, filter_ctx
            )
        by_key = {c["key"]: c["text"] for c in context}
        references = [by_key[k] for k in item.cited if k in by_key]
        with self._timed("score"):
            scores: dict[str, Any] = self.scorer.score(
                vectors["question"],
                vectors["answer"],
                item.answer,
                texts,
                references,
                question=item.question,
                ctx=score_ctx,
            )
        q = quality(scores)
        scores["filters"] = {v.filter: v.to_dict() for v in verdicts}
        gated = GateItem(plan_type, item.question, item.answer, list(item.steps), texts, payload,
                         draft)  # fmt: skip
        with self._timed("filter"):
            gate_reasons = self.gate.check(gated)
        scores["gate"] = [str(r) for r in gate_reasons]
        failed = next((v for v in verdicts if not v.passed), None)
        if failed is not None:
            status, reason = "rejected", f"{failed.filter}: {failed.detail}"
        elif gate_reasons:
            status, reason = "rejected", f"gate: {gate_reasons[0]}"
        elif q < self.min_quality:
            status, reason = "rejected", f"quality: {q:.2f} below {self.min_quality:.2f}"
        else:
            status, reason = "accepted", None
            self.gate.accept(gated, "an accepted sample of this run")
        return {
            "question": item.question,
            "answer": item.answer,
            "steps": item.steps,
            "cited": item.cited,
            "raw_text": item.raw_text or None,
            "status": status,
            "reason": reason,
            "scores": scores,
            "quality": q,
            "_q_vec": vectors["question"],
        }

    # --- the run --------------------------------------------------------------------------

    def _restore_duplicates(self, run_id: int) -> None:
        questions = [
            r[0]
            for r in self.conn.execute(
                "SELECT question FROM samples WHERE run_id = ? AND status = 'accepted'", (run_id,)
            )
        ]
        if questions:
            for vec in self.filters.encoder.embed(questions):
                self.filters.accept(np.asarray(vec))

    def execute(
        self,
        run_id: int,
        progress: Callable[[Progress], None] = lambda _: None,
        cancel: Callable[[], bool] = lambda: False,
        on_token: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        config, _ = load_run(self.conn, run_id)
        self.min_quality = config.min_quality
        self._restore_duplicates(run_id)

        def process(plan: sqlite3.Row) -> list[tuple[str, str]] | None:
            samples = self.process_plan(run_id, config, plan, cancel, on_token)
            if samples is None:
                return None
            return [(s["status"], s.get("reason") or "") for s in samples]

        finished = run_pending_plans(self.conn, run_id, process, progress, cancel)
        return finish_run(self.conn, run_id, finished, run_summary(self.conn, run_id))


def run_summary(conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    """Generated, accepted, rejected per reason and per type; tokens, model time and energy."""
    rows = conn.execute(
        "SELECT type, status, reason FROM samples WHERE run_id = ?", (run_id,)
    ).fetchall()
    by_type: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    for type_, status, reason in rows:
        by_type.setdefault(type_, Counter())[status] += 1
        if reason:  # the filter, or "gate: <rule>"
            parts = reason.split(":", 2)
            reasons[":".join(parts[:2]) if parts[0] == "gate" else parts[0]] += 1
    calls = [
        json.loads(r[0])
        for r in conn.execute("SELECT metrics FROM model_calls WHERE run_id = ?", (run_id,))
    ]
    plans = conn.execute(
        "SELECT COUNT(*), SUM(status = 'done') FROM plans WHERE run_id = ?", (run_id,)
    ).fetchone()
    accepted = sum(c["accepted"] for c in by_type.values())
    summary: dict[str, Any] = {
        "run_id": run_id,
        "plans": plans[0],
        "plans_done": plans[1] or 0,
        "generated": len(rows),
        "accepted": accepted,
        "rejected": len(rows) - accepted,
        "rejected_by_filter": dict(reasons.most_common()),
        "by_type": {t: dict(c) for t, c in sorted(by_type.items())},
        "model_calls": len(calls),
        "prompt_tokens": sum(c.get("prompt_tokens", 0) for c in calls),
        "output_tokens": sum(c.get("output_tokens", 0) for c in calls),
        "model_seconds": round(sum(c.get("wall_s", 0.0) for c in calls), 3),
        "energy_j": round(sum(c.get("energy_j", 0.0) for c in calls), 3),
        "energy_source": ",".join(sorted({c.get("energy_source", "") for c in calls} - {""})),
        "llama_threads": sorted(
            {c["extra"]["threads"] for c in calls if "threads" in c.get("extra", {})}
        ),
    }
    if rows and not accepted:
        top = reasons.most_common(1)
        summary["why_nothing_accepted"] = (
            f"every sample was rejected; most often by {top[0][0]} ({top[0][1]}x)"
            if top
            else "every sample was rejected"
        )
    return summary
