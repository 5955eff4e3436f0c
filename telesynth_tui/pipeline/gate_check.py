"""`telesynth check`: the accept gate on QA items a user brings, as JSON lines.

Each line: `type`, `plan` (optional), `context` (a list of `{key, text}`), `question`, `answer`,
`steps` (optional), `draft` (optional, the answer before a refinement), `id` (optional);
other keys are ignored. A line that cannot be read is rejected with the reason `input`.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telesynth_tui import database
from telesynth_tui.config import Settings
from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.gate import Gate, GateItem, KnowledgeIndex, Reason
from telesynth_tui.pipeline.plans import PLAN_TYPES


@dataclass
class Verdict:
    id: str
    line: int
    accepted: bool
    reasons: list[Reason]
    type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "accepted": self.accepted, "reasons": [str(r) for r in self.reasons]}


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string")
    return value


def parse_item(record: Any) -> GateItem:
    """A GateItem from one decoded line; ValueError names what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    type_ = record.get("type", "")
    if type_ not in PLAN_TYPES:
        raise ValueError(f"'type' must be one of {', '.join(PLAN_TYPES)}")
    context = record.get("context") or []
    if not isinstance(context, list):
        raise ValueError("'context' must be a list of {key, text}")
    texts = []
    for c in context:
        if isinstance(c, dict) and isinstance(c.get("text"), str):
            texts.append(c["text"])
        elif isinstance(c, str):
            texts.append(c)
        else:
            raise ValueError("'context' items must be {key, text}")
    steps = record.get("steps") or []
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise ValueError("'steps' must be a list of strings")
    plan = record.get("plan")
    if plan is not None and not isinstance(plan, dict):
        raise ValueError("'plan' must be an object")
    return GateItem(
        type=type_,
        question=_text(record.get("question"), "question"),
        answer=_text(record.get("answer"), "answer"),
        steps=steps,
        context=texts,
        plan=plan,
        draft=_text(record.get("draft"), "draft") or None,
    )


def gate_for(conn: sqlite3.Connection | None, settings: Settings | None = None) -> Gate:
    """The gate over a project's graph and accepted samples; without a project, over the
    bundled knowledge of `settings` (read into an in-memory database), else over the items'
    plans alone."""
    if conn is not None:
        return Gate.for_project(conn, store.accepted_pairs(conn))
    if settings is None or not settings.bundled_kg.is_dir():
        return Gate(KnowledgeIndex())
    memory = database.connect(Path(":memory:"))
    try:
        database.migrate(memory)
        import_paths(memory, [settings.bundled_kg], settings.ingest)
        return Gate.for_project(memory)
    finally:
        memory.close()


def check_file(path: Path, gate: Gate) -> list[Verdict]:
    """Verdicts of every non-empty line, in order; accepted items count for duplicates."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TelesynthError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TelesynthError(f"{path}: cannot read: {exc}") from None
    verdicts: list[Verdict] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item_id = f"line {number}"
        try:
            record = json.loads(line)
            if isinstance(record, dict) and record.get("id") is not None:
                item_id = str(record["id"])
            item = parse_item(record)
        except (json.JSONDecodeError, ValueError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            verdicts.append(
                Verdict(
                    item_id, number, False, [Reason("input", f"{path.name}:{number}: {detail}")]
                )
            )
            continue
        reasons = gate.check(item)
        if not reasons:
            gate.accept(item, item_id)
        verdicts.append(Verdict(item_id, number, not reasons, reasons, item.type))
    if not verdicts:
        raise TelesynthError(f"{path}: no items (expected JSON lines)")
    return verdicts


def counts(verdicts: list[Verdict]) -> dict[str, Any]:
    rules: Counter[str] = Counter()
    for v in verdicts:
        rules.update({r.rule for r in v.reasons})
    accepted = sum(v.accepted for v in verdicts)
    return {
        "items": len(verdicts),
        "accepted": accepted,
        "rejected": len(verdicts) - accepted,
        "rejected_by_rule": dict(rules.most_common()),
    }
