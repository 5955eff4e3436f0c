"""A person's decisions on samples: accept, reject, edit, undo. Every change is written at once
(one statement, autocommit), so nothing typed is lost; exports follow the decisions."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline.records import Sample

DECISIONS = ("accepted", "rejected")
ORDERS = {"id": "s.id", "quality": "COALESCE(s.quality, -1), s.id"}
FILTERS = {
    "all": "1",
    "accepted": "s.status = 'accepted'",
    "rejected": "s.status = 'rejected'",
    "unreviewed": "s.review IS NULL",
    "reviewed": "s.review IS NOT NULL",
}


@dataclass(frozen=True)
class SampleState:
    """What a sample looked like before a change (enough to undo it)."""

    sample_id: int
    review: str | None
    answer: str | None
    steps: str | None


def review_run(conn: sqlite3.Connection, run_id: int | None) -> int | None:
    """The run to review: the one asked for (which must exist) or the latest (None if none)."""
    if run_id is None:
        row = conn.execute("SELECT MAX(id) FROM runs").fetchone()
        return None if row[0] is None else int(row[0])
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
        raise TelesynthError(f"no run {run_id}")
    return run_id


def sample_ids(conn: sqlite3.Connection, run_id: int, show: str = "all",
               order: str = "id") -> list[int]:  # fmt: skip
    if show not in FILTERS or order not in ORDERS:
        raise TelesynthError(f"unknown filter {show!r} or order {order!r}")
    rows = conn.execute(
        f"SELECT s.id FROM samples s WHERE s.run_id = ? AND {FILTERS[show]}"
        f" ORDER BY {ORDERS[order]}",
        (run_id,),
    )
    return [r[0] for r in rows]


def load_sample(conn: sqlite3.Connection, sample_id: int) -> Sample:
    row = conn.execute("SELECT * FROM samples WHERE id = ?", (sample_id,)).fetchone()
    if row is None:
        raise TelesynthError(f"no sample {sample_id}")
    return Sample.from_row(row)


def sample_facts(conn: sqlite3.Connection, sample: Sample) -> list[str]:
    """The sample's provenance spelled out: its plan's facts by name."""
    rel_ids = list(sample.provenance.relation_ids)
    if not rel_ids:
        return []
    marks = ",".join("?" * len(rel_ids))
    return [
        f"{a} -{p}-> {b}"
        for a, p, b in conn.execute(
            "SELECT e1.name, r.predicate, e2.name FROM relations r"
            " JOIN entities e1 ON e1.id = r.subject_id JOIN entities e2 ON e2.id = r.object_id"
            f" WHERE r.id IN ({marks}) ORDER BY r.id",
            rel_ids,
        )
    ]


def _state(conn: sqlite3.Connection, sample_id: int) -> SampleState:
    row = conn.execute(
        "SELECT review, answer, steps FROM samples WHERE id = ?", (sample_id,)
    ).fetchone()
    if row is None:
        raise TelesynthError(f"no sample {sample_id}")
    return SampleState(sample_id, row[0], row[1], row[2])


def decide(conn: sqlite3.Connection, sample_id: int, decision: str) -> SampleState:
    """Accept or reject a sample; returns its state before, for undo."""
    if decision not in DECISIONS:
        raise TelesynthError(f"a decision is one of {', '.join(DECISIONS)}")
    before = _state(conn, sample_id)
    conn.execute("UPDATE samples SET review = ? WHERE id = ?", (decision, sample_id))
    return before


def edit(conn: sqlite3.Connection, sample_id: int, answer: str) -> SampleState:
    """Replace the answer (its steps become its lines); the first edit keeps the original
    answer in the scores as `original_answer`. Returns the state before, for undo."""
    if not answer.strip():
        raise TelesynthError("an edited answer cannot be empty")
    before = _state(conn, sample_id)
    steps = [line.strip() for line in answer.splitlines() if line.strip()]
    conn.execute(
        "UPDATE samples SET answer = ?, steps = ?, review = 'edited',"
        " scores = json_set(COALESCE(scores, '{}'), '$.original_answer',"
        " COALESCE(json_extract(scores, '$.original_answer'), answer)) WHERE id = ?",
        (answer, json.dumps(steps), sample_id),
    )
    return before


def restore(conn: sqlite3.Connection, state: SampleState) -> None:
    """Undo: put the sample back as it was."""
    conn.execute(
        "UPDATE samples SET review = ?, answer = ?, steps = ? WHERE id = ?",
        (state.review, state.answer, state.steps, state.sample_id),
    )
