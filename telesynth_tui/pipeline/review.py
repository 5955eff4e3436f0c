"""A person's decisions on samples: accept, reject, edit, undo. Every change is written at once
(one statement, autocommit), so nothing typed is lost; exports follow the decisions."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.records import Sample

DECISIONS = ("accepted", "rejected")


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
        return store.latest_run(conn)
    if not store.run_exists(conn, run_id):
        raise TelesynthError(f"no run {run_id}")
    return run_id


def load_sample(conn: sqlite3.Connection, sample_id: int) -> Sample:
    return store.sample(conn, sample_id)


def sample_facts(conn: sqlite3.Connection, sample: Sample) -> list[str]:
    """The sample's provenance spelled out: its plan's facts by name."""
    from telesynth_tui.graph.queries import relation_names

    return relation_names(conn, sample.provenance.relation_ids)


def _state(conn: sqlite3.Connection, sample_id: int) -> SampleState:
    return SampleState(sample_id, *store.review_state(conn, sample_id))


def decide(conn: sqlite3.Connection, sample_id: int, decision: str) -> SampleState:
    """Accept or reject a sample; returns its state before, for undo."""
    if decision not in DECISIONS:
        raise TelesynthError(f"a decision is one of {', '.join(DECISIONS)}")
    before = _state(conn, sample_id)
    store.set_review(conn, sample_id, decision)
    return before


def edit(conn: sqlite3.Connection, sample_id: int, answer: str) -> SampleState:
    """Replace the answer (its steps become its lines); the first edit keeps the original
    answer in the scores as `original_answer`. Returns the state before, for undo."""
    if not answer.strip():
        raise TelesynthError("an edited answer cannot be empty")
    before = _state(conn, sample_id)
    steps = [line.strip() for line in answer.splitlines() if line.strip()]
    store.edit_answer(conn, sample_id, answer, steps)
    return before


def restore(conn: sqlite3.Connection, state: SampleState) -> None:
    """Undo: put the sample back as it was."""
    store.restore_review(conn, state.sample_id, state.review, state.answer, state.steps)
