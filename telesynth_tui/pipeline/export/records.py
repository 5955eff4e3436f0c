"""The exported records: one fixed, versioned layout per format.

Every key is present in every record (null where it does not apply) and `metadata` has one
shape for every run kind, so exports of different runs load together. The prompt (system and
user messages) is the same in the sft, rft and dpo exports of a sample.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.records import ContextItem, Sample, Scores

LAYOUT_VERSION = 1
FORMATS = ("sft", "rft", "dpo", "csv")
LAYOUTS = ("messages", "prompt-completion")
TARGETS = ("trl", "openai")
SYSTEM = "You are a RAN troubleshooting and telecom engineering assistant."

# scores of generation runs (fast and judge), then the selection figures of DTA runs
# fmt: off
FLOAT_SCORES = ("answer_relevancy", "faithfulness", "context_precision", "context_recall",
                "llm_faithfulness", "llm_answer_relevancy", "llm_context_precision",
                "llm_context_recall", "selection_score", "style", "judge_score")
# fmt: on
SCORE_KEYS = (*FLOAT_SCORES, "judge_by", "agrees_with")

Message = dict[str, str]


@dataclass(frozen=True)
class Shape:
    """What one export writes: the format, its layout and the tool it is meant for."""

    fmt: str
    layout: str = "messages"
    target: str = "trl"

    @property
    def name(self) -> str:
        """The layout's name, written in the card: e.g. `sft-prompt-completion/1`."""
        parts = [self.fmt]
        if self.layout != "messages":
            parts.append(self.layout)
        if self.target != "trl":
            parts.append(self.target)
        return "-".join(parts) + f"/{LAYOUT_VERSION}"

    def check(self) -> None:
        if self.fmt not in FORMATS:
            raise TelesynthError(f"unknown format {self.fmt!r}: use {', '.join(FORMATS)}")
        if self.layout not in LAYOUTS:
            raise TelesynthError(f"unknown --layout {self.layout!r}: use {', '.join(LAYOUTS)}")
        if self.target not in TARGETS:
            raise TelesynthError(f"unknown --target {self.target!r}: use {', '.join(TARGETS)}")
        if self.layout != "messages" and self.fmt != "sft":
            raise TelesynthError("--layout prompt-completion applies to --format sft only")
        if self.target == "openai" and self.fmt == "csv":
            raise TelesynthError("--target openai applies to sft, rft and dpo")
        if self.target == "openai" and self.layout != "messages":
            raise TelesynthError("--target openai writes chat messages: drop --layout")


# --- the parts every layout shares -----------------------------------------------------------


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values or []]


def scores(sample_scores: Scores) -> dict[str, Any]:
    """Every score key, null where the run kind does not produce it."""
    raw = sample_scores.values
    judge = raw.get("judge") or {}
    agreement = raw.get("agreement") or {}
    out: dict[str, Any] = {k: None for k in SCORE_KEYS}
    for key in FLOAT_SCORES:
        if isinstance(raw.get(key), int | float) and not isinstance(raw.get(key), bool):
            out[key] = float(raw[key])
    if isinstance(judge.get("score"), int | float):
        out["judge_score"] = float(judge["score"])
    out["judge_by"] = judge.get("by")
    if "agree_with" in agreement:
        out["agrees_with"] = [str(a) for a in agreement["agree_with"]]
    return out


def metadata(
    s: Sample, kind: str, with_context: bool = False, context_kept: int | None = None
) -> dict[str, Any]:
    """Provenance and scores, one shape for every run kind and format. `context_items` is how
    many context items the prompt holds, `context_trimmed` how many were dropped to fit."""
    prov = s.provenance
    n_context = len(s.context) if with_context else 0
    kept = n_context if context_kept is None else context_kept
    return {
        "sample_id": s.id,
        "run_id": s.run_id,
        "run_kind": kind,
        "plan_id": s.plan_id,
        "type": s.type,
        "generator": s.generator,
        "quality": float(s.quality) if s.quality is not None else None,
        "review": s.review,
        "context_ids": [str(k) for k in prov.context_keys],
        "cited": [str(k) for k in s.cited],
        "entity_ids": _ints(prov.entity_ids),
        "relation_ids": _ints(prov.relation_ids),
        "chunk_ids": _ints(prov.chunk_ids),
        "formula": prov.formula,
        "context_items": kept,
        "context_trimmed": n_context - kept,
        "scores": scores(s.scores),
        "rejected_sample_id": None,
        "rejected_reason": None,
    }


def context_order(s: Sample) -> list[ContextItem]:
    """The context items in the order they are dropped to fit a token limit: uncited items
    from the end first, then cited ones from the end."""
    items = list(s.context)
    cited = set(s.cited)
    return [i for i in reversed(items) if i.key not in cited] + [
        i for i in reversed(items) if i.key in cited
    ]


def user_message(s: Sample, with_context: bool, keep: int | None = None) -> str:
    """The question, or with context the numbered context items (the first `keep` of them in
    their order, less those dropped to fit) and the question."""
    if not with_context:
        return str(s.question)
    items = list(s.context)
    if keep is not None and keep < len(items):
        dropped = {id(i) for i in context_order(s)[: len(items) - keep]}
        items = [i for i in items if id(i) not in dropped]
    if not items:
        return str(s.question)
    context = "\n".join(f"[{n}] {c.text}" for n, c in enumerate(items, 1))
    return f"Context:\n{context}\n\nQuestion: {s.question}"


def prompt(
    s: Sample, with_context: bool, keep: int | None = None, system_role: str = "system"
) -> list[Message]:
    return [
        {"role": system_role, "content": SYSTEM},
        {"role": "user", "content": user_message(s, with_context, keep)},
    ]


def assistant(text: str | None) -> list[Message]:
    return [{"role": "assistant", "content": text or ""}]


# --- rft references ------------------------------------------------------------------------


def _g(value: float) -> str:
    return f"{value:.6g}"


def rubric(s: Sample) -> list[dict[str, Any]]:
    """Grading criteria; `terms` are phrases whose words an answer that meets the criterion
    contains (empty when only a person or a model grader can judge it)."""
    payload = s.payload or {}
    if s.type == "maths":
        symbol = payload.get("output_symbol") or "the result"
        unit = payload.get("unit", "")
        return [
            {
                "criterion": f"States {symbol} = {_g(payload['answer'])} {unit} within "
                f"{payload['tolerance']:.3g}".strip(),
                "terms": [],
            },
            {"criterion": f"Uses {payload.get('expression')}", "terms": []},
            {
                "criterion": "Shows the inputs with their units",
                "terms": [_g(float(v)) for v in payload.get("inputs", {}).values()],
            },
        ]
    if s.type == "troubleshooting":
        causes = payload.get("causes", [])
        items = [
            {"criterion": f"Names the possible cause '{c['cause']}'", "terms": [c["cause"]]}
            for c in causes
        ]
        items += [
            {"criterion": f"Includes the check '{x}'", "terms": [x]}
            for c in causes
            for x in c.get("checks", [])
        ]
        items += [
            {"criterion": f"Proposes the action '{x}'", "terms": [x]}
            for c in causes
            for x in c.get("actions", [])
        ]
        items.append({"criterion": "Says how to verify the fix", "terms": []})
        return items
    return [
        {"criterion": f"Agrees with: {step}", "terms": [step]}
        for step in (s.steps or [s.answer or ""])[:4]
    ]


def references(s: Sample) -> dict[str, Any]:
    """The reference fields of an rft record (numeric ones null unless maths)."""
    payload = s.payload or {}
    maths = s.type == "maths"
    return {
        "reference_answer": s.answer,
        "rubric": rubric(s),
        "type": s.type,
        "numeric_answer": float(payload["answer"]) if maths else None,
        "unit": str(payload.get("unit", "")) if maths else None,
        "tolerance": float(payload["tolerance"]) if maths else None,
    }


# --- records -------------------------------------------------------------------------------


@dataclass
class Item:
    """One record to write: the chosen sample, for dpo the rejected one, and how many context
    items the prompt keeps (None: all)."""

    sample: Sample
    rejected: Sample | None = None
    keep: int | None = None


def record(item: Item, shape: Shape, kind: str, with_context: bool) -> dict[str, Any]:
    """One record of the shape; the openai target has no metadata (see `side_record`)."""
    s = item.sample
    openai = shape.target == "openai"
    msgs = prompt(s, with_context, item.keep)
    meta = metadata(s, kind, with_context, item.keep)
    if shape.fmt == "sft":
        if shape.layout == "prompt-completion":
            return {"prompt": msgs, "completion": assistant(s.answer), "metadata": meta}
        out: dict[str, Any] = {"messages": [*msgs, *assistant(s.answer)]}
    elif shape.fmt == "rft":
        if openai:  # reasoning models take instructions as a developer message
            return {"messages": prompt(s, with_context, item.keep, "developer"), **references(s)}
        out = {"messages": msgs, "prompt": msgs, **references(s)}
    else:
        assert item.rejected is not None
        r = item.rejected
        meta.update(rejected_sample_id=r.id, rejected_reason=r.reason)
        if openai:
            return {
                "input": {"messages": msgs},
                "preferred_output": assistant(s.answer),
                "non_preferred_output": assistant(r.answer),
            }
        out = {"prompt": msgs, "chosen": assistant(s.answer), "rejected": assistant(r.answer)}
    if openai:
        return out
    return {**out, "metadata": meta}


def side_record(line: int, item: Item, kind: str, with_context: bool) -> dict[str, Any]:
    """The provenance of an openai-target record, keyed by sample id and line number."""
    meta = metadata(item.sample, kind, with_context, item.keep)
    if item.rejected is not None:
        meta.update(rejected_sample_id=item.rejected.id, rejected_reason=item.rejected.reason)
    return {"line": line, "sample_id": item.sample.id, "metadata": meta}


def _same_question(a: Sample, b: Sample) -> bool:
    return " ".join(str(a.question).lower().split()) == " ".join(str(b.question).lower().split())


def items(conn: sqlite3.Connection, run_id: int, fmt: str) -> list[Item]:
    """What the run exports in this format. DPO pairs an exported answer with a dropped answer
    to the same question; a run that cannot make pairs is refused with the reason."""
    if fmt != "dpo":
        return [
            Item(s) for s in store.samples(conn, run_id, "all" if fmt == "csv" else "exportable")
        ]
    good = store.samples(conn, run_id, "exportable")
    bad = store.samples(conn, run_id, "dropped")
    by_plan: dict[int, list[Sample]] = {}
    for s in bad:
        by_plan.setdefault(s.plan_id, []).append(s)
    pairs = [Item(s, r) for s in good for r in by_plan.get(s.plan_id, []) if _same_question(s, r)]
    if not pairs:
        why = (
            "a DTA run pairs each problem's exemplar with its rejected candidates"
            if store.run_kind(conn, run_id) == "dta"
            else "the KG-template generator writes one answer per plan; DTA runs (telesynth dta) "
            "or LLM runs with dropped answers to the same question make pairs"
        )
        raise TelesynthError(
            f"run {run_id} has no DPO pairs: DPO needs an exported answer and a dropped answer "
            f"to the same question ({len(good)} exported, {len(bad)} dropped with an answer; "
            f"{why}); nothing written"
        )
    return pairs
