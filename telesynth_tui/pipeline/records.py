"""The typed records that flow through the pipeline and into the project database.

A QA sample (`Sample`) carries its context items, provenance and scores (with the filter
verdicts and gate reasons); a model call (`ModelCall`) names the stage, the model and its
metrics; an unusable model output is a `Rejection`. `Sample.to_row` and `Sample.from_row` are
the one place a sample becomes a database row and back (JSON columns encoded and decoded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# the columns a stored sample writes (JSON-encoded where they hold lists or objects)
# fmt: off
SAMPLE_COLUMNS = ("run_id", "plan_id", "type", "question", "answer", "steps", "context", "cited",
                  "provenance", "generator", "raw_text", "status", "reason", "scores", "quality")
# fmt: on
ACCEPTED = "accepted"
REJECTED = "rejected"


class ModelCall(NamedTuple):
    """One model call of a run: the pipeline stage, the model's name and its metrics
    (`inference.metrics.CallMetrics.to_dict()`, or what a judge reports)."""

    stage: str
    model: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class DtaRunRecord:
    """What a DTA run keeps beside its run row: the student, the run's configuration (as
    stored), and the student's style profile with the probe answers it was measured on (empty
    until measured)."""

    run: int
    student: str
    config: dict[str, Any]
    profile: dict[str, Any]
    probes: list[dict[str, Any]]


@dataclass(frozen=True)
class RunListing:
    """One run as the run lists show it: kind, status as users should read it, progress and
    sample counts (every field is shown by `telesynth runs` and the dashboard)."""

    run: int
    created_at: str
    status: str
    kind: str  # generate or dta
    generator: str  # the generator, or "dta → <student>"
    seed: int
    n: int
    plans: int
    plans_done: int
    generated: int
    accepted: int
    rejected: int
    reviewed: int
    error: str | None


@dataclass(frozen=True)
class Rejection:
    """A model output that could not be used: why, and the model's raw text (kept)."""

    reason: str
    raw_text: str

    @classmethod
    def parse(cls, text: str) -> Rejection:
        """From a QA source's `"<reason>\\n<raw text>"` string."""
        reason, _, raw = text.partition("\n")
        return cls(reason, raw)


@dataclass(frozen=True)
class ContextItem:
    """One item of a sample's context: a chunk, a fact, a formula or an entity."""

    key: str  # "chunk:12", "fact:7", "formula:slug", "entity:3"
    kind: str
    id: int | str
    text: str
    provenance: dict[str, Any] | None = None  # where a retrieved item comes from

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ContextItem:
        return cls(
            str(d.get("key", "")),
            str(d.get("kind", "")),
            d.get("id", ""),
            str(d.get("text", "")),
            d.get("provenance"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "kind": self.kind, "id": self.id, "text": self.text}
        if self.provenance is not None:
            out["provenance"] = self.provenance
        return out


@dataclass
class Provenance:
    """What a sample was made from: the plan, the graph items, the context and the models.
    `extra` holds what one run kind adds (DTA: teacher, rewriter, judge)."""

    plan_id: int | None = None
    plan_type: str | None = None
    entity_ids: list[int] = field(default_factory=list)
    relation_ids: list[int] = field(default_factory=list)
    formula: str | None = None
    chunk_ids: list[int] = field(default_factory=list)
    context_keys: list[str] = field(default_factory=list)
    generator: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS = (
        "plan_id",
        "plan_type",
        "entity_ids",
        "relation_ids",
        "formula",
        "chunk_ids",
        "context_keys",
        "generator",
    )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Provenance:
        d = d or {}
        return cls(
            d.get("plan_id"),
            d.get("plan_type"),
            list(d.get("entity_ids") or []),
            list(d.get("relation_ids") or []),
            d.get("formula"),
            list(d.get("chunk_ids") or []),
            [str(k) for k in d.get("context_keys") or []],
            d.get("generator"),
            {k: v for k, v in d.items() if k not in cls.FIELDS},
        )

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.FIELDS}, **self.extra}


@dataclass(frozen=True)
class FilterVerdict:
    """One quality filter's verdict on a QA pair."""

    filter: str
    passed: bool
    score: float | None
    detail: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FilterVerdict:
        return cls(
            str(d.get("filter", "")),
            bool(d.get("passed")),
            d.get("score"),
            str(d.get("detail", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "filter": self.filter,
            "passed": self.passed,
            "score": self.score,
            "detail": self.detail,
        }


@dataclass
class Scores:
    """A sample's figures: `values` are the scorers' metrics (fast or judge) or a DTA run's
    selection figures (agreement, judge, style, rewrite, selection_score), and a reviewer's
    `original_answer`; `filters` the filter verdicts by filter and `gate` the gate's reasons
    (None where the run kind has none)."""

    values: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, FilterVerdict] | None = None
    gate: list[str] | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Scores:
        d = dict(d or {})
        filters = d.pop("filters", None)
        gate = d.pop("gate", None)
        return cls(
            d,
            None
            if filters is None
            else {k: FilterVerdict.from_dict(v) for k, v in filters.items()},
            None if gate is None else [str(r) for r in gate],
        )

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.values)
        if self.filters is not None:
            out["filters"] = {k: v.to_dict() for k, v in self.filters.items()}
        if self.gate is not None:
            out["gate"] = list(self.gate)
        return out


def _json(text: str | bytes | None) -> Any:
    return json.loads(text) if text else None


@dataclass
class Sample:
    """A QA sample, accepted or rejected (with the reason and the model's raw text)."""

    run_id: int
    plan_id: int
    type: str
    generator: str
    status: str
    question: str | None = None
    answer: str | None = None
    steps: list[str] = field(default_factory=list)
    context: list[ContextItem] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)
    provenance: Provenance = field(default_factory=Provenance)
    raw_text: str | None = None
    reason: str | None = None
    scores: Scores = field(default_factory=Scores)
    quality: float | None = None
    # set once stored
    id: int | None = None
    review: str | None = None  # a person's decision: accepted, rejected or edited
    created_at: str | None = None
    # the plan's payload, when read together with the plan
    payload: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def to_row(self) -> dict[str, Any]:
        """The SAMPLE_COLUMNS of the row, JSON columns encoded."""
        return {
            "run_id": self.run_id,
            "plan_id": self.plan_id,
            "type": self.type,
            "question": self.question,
            "answer": self.answer,
            "steps": json.dumps(self.steps),
            "context": json.dumps([c.to_dict() for c in self.context]),
            "cited": json.dumps(self.cited),
            "provenance": json.dumps(self.provenance.to_dict()),
            "generator": self.generator,
            "raw_text": self.raw_text,
            "status": self.status,
            "reason": self.reason,
            "scores": json.dumps(self.scores.to_dict()),
            "quality": self.quality,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Sample:
        """A stored sample (a `samples` row, optionally with the plan's `payload`)."""
        keys = set(row.keys())

        def get(key: str) -> Any:
            return row[key] if key in keys else None

        quality = get("quality")
        payload = get("payload")
        return cls(
            run_id=int(row["run_id"]),
            plan_id=int(row["plan_id"]),
            type=str(row["type"]),
            generator=str(get("generator") or ""),
            status=str(row["status"]),
            question=get("question"),
            answer=get("answer"),
            steps=[str(s) for s in _json(get("steps")) or []],
            context=[ContextItem.from_dict(c) for c in _json(get("context")) or []],
            cited=[str(k) for k in _json(get("cited")) or []],
            provenance=Provenance.from_dict(_json(get("provenance"))),
            raw_text=get("raw_text"),
            reason=get("reason"),
            scores=Scores.from_dict(_json(get("scores"))),
            quality=None if quality is None else float(quality),
            id=get("id"),
            review=get("review"),
            created_at=get("created_at"),
            payload=_json(payload) if isinstance(payload, str | bytes) else payload,
        )

    def listing(self) -> dict[str, Any]:
        """The fields a sample list shows (`telesynth samples`), scores decoded."""
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "quality": self.quality,
            "question": self.question,
            "answer": self.answer,
            "scores": self.scores.to_dict(),
        }
