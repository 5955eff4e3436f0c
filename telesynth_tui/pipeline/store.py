"""The run store: the one place that reads and writes runs, plans, samples, model calls and a
DTA run's own row (its student, configuration and style profile).

Generation, DTA, export, review, the CLI and the TUI go through these functions; samples go in
and come out as `records.Sample`. A plan's samples, its model calls and its `done` mark are
written in one transaction, so a killed process loses at most the plan in flight.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.infra import now, transaction
from telesynth_tui.pipeline import lease
from telesynth_tui.pipeline.filters import FilterSettings
from telesynth_tui.pipeline.gate import DEFAULT_MIN_QUALITY
from telesynth_tui.pipeline.plans import DEFAULT_MIX, Plan
from telesynth_tui.pipeline.records import (
    SAMPLE_COLUMNS,
    DtaRunRecord,
    ModelCall,
    RunListing,
    Sample,
)

TEMPLATE = "kg-template"  # the generator name of the KG-template realizer


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


# --- runs and plans --------------------------------------------------------------------------


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


def load_run(conn: sqlite3.Connection, run_id: int) -> tuple[RunConfig, int]:
    """A stored run's configuration and its number of plans."""
    row = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise TelesynthError(f"no run {run_id} (see: telesynth runs)")
    plans = conn.execute("SELECT COUNT(*) FROM plans WHERE run_id = ?", (run_id,)).fetchone()
    return RunConfig.from_json(row[0]), int(plans[0])


def run_config(conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    """A stored run's configuration as stored (generation or DTA run alike)."""
    row = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise TelesynthError(f"no run {run_id} (see: telesynth runs)")
    return dict(json.loads(row[0]))


def run_exists(conn: sqlite3.Connection, run_id: int) -> bool:
    return conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None


def check_run(conn: sqlite3.Connection, run_id: int) -> None:
    """Refuse a run id that is not in the project."""
    if not run_exists(conn, run_id):
        raise TelesynthError(f"no run {run_id} (see: telesynth runs)")


def latest_run(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MAX(id) FROM runs").fetchone()
    return None if row[0] is None else int(row[0])


def run_kind(conn: sqlite3.Connection, run_id: int) -> str:
    """`dta` for a Data Trajectory Alignment run, else `generation`."""
    return "dta" if dta_run(conn, run_id) else "generation"


def insert_dta_run(
    conn: sqlite3.Connection, run_id: int, student: str, config: dict[str, Any]
) -> None:
    """The DTA row of a new run (inside `insert_run`'s transaction): no profile yet."""
    conn.execute(
        "INSERT INTO dta_runs(run_id, student, config, profile, probes)"
        " VALUES (?, ?, ?, '{}', '[]')",
        (run_id, student, json.dumps(config)),
    )


def dta_run(conn: sqlite3.Connection, run_id: int) -> DtaRunRecord | None:
    """A DTA run's own record, None for a generation run."""
    row = conn.execute(
        "SELECT student, config, profile, probes FROM dta_runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    if row is None:
        return None
    return DtaRunRecord(
        run_id, str(row[0]), json.loads(row[1]), json.loads(row[2]), json.loads(row[3])
    )


def set_dta_style(
    conn: sqlite3.Connection, run_id: int, profile: dict[str, Any], probes: list[dict[str, Any]]
) -> None:
    """The student's measured style profile and the probe answers behind it."""
    conn.execute(
        "UPDATE dta_runs SET profile = ?, probes = ? WHERE run_id = ?",
        (json.dumps(profile), json.dumps(probes), run_id),
    )


def plans(conn: sqlite3.Connection, run_id: int) -> list[sqlite3.Row]:
    """The run's plans in order (id, ordinal, type, payload, status)."""
    query = "SELECT * FROM plans WHERE run_id = ? ORDER BY ordinal"
    return conn.execute(query, (run_id,)).fetchall()


def mark_running(conn: sqlite3.Connection, run_id: int) -> None:
    conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run_id,))


def finish_run(
    conn: sqlite3.Connection, run_id: int, finished: bool, summary: dict[str, Any]
) -> dict[str, Any]:
    with transaction(conn):
        conn.execute(
            "UPDATE runs SET status = ?, summary = ? WHERE id = ?",
            ("finished" if finished else "interrupted", json.dumps(summary), run_id),
        )
    return summary


def list_runs(
    conn: sqlite3.Connection, limit: int | None = None, newest_first: bool = False
) -> list[RunListing]:
    """The runs in id order (or newest first), at most `limit`, with their shown status,
    plan progress, sample counts and failure reason."""
    rows = conn.execute(
        "SELECT r.id, r.created_at, r.status, r.config, d.student,"
        " (SELECT COUNT(*) FROM plans p WHERE p.run_id = r.id),"
        " (SELECT COUNT(*) FROM plans p WHERE p.run_id = r.id AND p.status = 'done'),"
        " COUNT(s.id), COALESCE(SUM(s.status = 'accepted'), 0),"
        " COALESCE(SUM(s.review IS NOT NULL), 0)"
        " FROM runs r LEFT JOIN samples s ON s.run_id = r.id"
        " LEFT JOIN dta_runs d ON d.run_id = r.id"
        f" GROUP BY r.id ORDER BY r.id {'DESC' if newest_first else 'ASC'} LIMIT ?",
        (-1 if limit is None else limit,),
    ).fetchall()
    out = []
    for run_id, created, stored, config, student, plans, done, made, accepted, reviewed in rows:
        cfg = json.loads(config)
        out.append(
            RunListing(
                run=run_id,
                created_at=created,
                status=lease.shown_status(conn, run_id, stored),
                kind="dta" if student else "generate",
                generator=f"dta → {student}" if student else cfg["generator"],
                seed=cfg["seed"],
                n=cfg["n"],
                plans=plans,
                plans_done=done,
                generated=made,
                accepted=accepted,
                rejected=made - accepted,
                reviewed=reviewed,
                error=failure_reason(conn, run_id),
            )
        )
    return out


# --- samples and model calls -----------------------------------------------------------------


def record_calls(
    conn: sqlite3.Connection,
    run_id: int,
    plan_id: int | None,
    calls: Iterable[tuple[str, str, dict[str, Any]]],
) -> None:
    """Model calls (`ModelCall`s, or (stage, model, metrics) tuples) of a run, inside the
    caller's transaction."""
    conn.executemany(
        "INSERT INTO model_calls(run_id, plan_id, stage, model, metrics) VALUES (?, ?, ?, ?, ?)",
        [
            (run_id, plan_id, c.stage, c.model, json.dumps(c.metrics))
            for c in (ModelCall(*call) for call in calls)
        ],
    )


def store_plan(
    conn: sqlite3.Connection,
    run_id: int,
    plan_id: int,
    samples: Sequence[Sample],
    calls: Iterable[tuple[str, str, dict[str, Any]]],
) -> bool:
    """A plan's samples, its model calls and its done mark, all or nothing, and only once:
    False (nothing written) when the plan is already stored. Refused when another process holds
    the run's lease."""
    marks = ", ".join("?" * (len(SAMPLE_COLUMNS) + 1))
    with transaction(conn):
        lease.check_writer(conn, run_id)
        row = conn.execute("SELECT status FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is not None and row[0] == "done":
            return False
        conn.executemany(
            f"INSERT INTO samples({', '.join(SAMPLE_COLUMNS)}, created_at) VALUES ({marks})",
            [(*(row[c] for c in SAMPLE_COLUMNS), now()) for row in map(Sample.to_row, samples)],
        )
        record_calls(conn, run_id, plan_id, calls)
        conn.execute("UPDATE plans SET status = 'done' WHERE id = ?", (plan_id,))
    return True


def status_counts(conn: sqlite3.Connection, run_id: int) -> Counter[str]:
    """How many of the run's samples are accepted and rejected."""
    rows = conn.execute("SELECT status FROM samples WHERE run_id = ?", (run_id,))
    return Counter(r[0] for r in rows)


def accepted_pairs(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
    """(id, question, answer) of every accepted sample of the project."""
    rows = conn.execute(
        "SELECT id, question, answer FROM samples WHERE status = 'accepted'"
        " AND question IS NOT NULL AND answer IS NOT NULL ORDER BY id"
    )
    return [(int(i), str(q), str(a)) for i, q, a in rows]


def sample_provenances(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The provenance of every stored sample (what plans have asked about)."""
    return [json.loads(r[0]) for r in conn.execute("SELECT provenance FROM samples ORDER BY id")]


def accepted_questions(conn: sqlite3.Connection, run_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT question FROM samples WHERE run_id = ? AND status = 'accepted'", (run_id,)
    )
    return [r[0] for r in rows]


def samples_after(conn: sqlite3.Connection, run_id: int, after_id: int) -> list[Sample]:
    """The run's samples stored after sample `after_id`, in id order."""
    rows = conn.execute(
        "SELECT * FROM samples WHERE run_id = ? AND id > ? ORDER BY id", (run_id, after_id)
    ).fetchall()
    return [Sample.from_row(r) for r in rows]


# which samples a reader asks for; EXPORTABLE is the pipeline's verdict unless a reviewer
# decided otherwise
EXPORTABLE = (
    "s.answer IS NOT NULL AND CASE WHEN s.review IN ('accepted', 'edited') THEN 1"
    " WHEN s.review = 'rejected' THEN 0 ELSE s.status = 'accepted' END"
)
SELECTIONS = {
    "all": "1",
    "accepted": "s.status = 'accepted'",
    "rejected": "s.status = 'rejected'",
    "unreviewed": "s.review IS NULL",
    "reviewed": "s.review IS NOT NULL",
    "exportable": EXPORTABLE,
    "dropped": f"s.answer IS NOT NULL AND NOT ({EXPORTABLE})",
}
ORDERS = {"id": "s.id", "quality": "COALESCE(s.quality, -1), s.id"}


def _where(which: str, order: str = "id") -> tuple[str, str]:
    if which not in SELECTIONS or order not in ORDERS:
        raise TelesynthError(f"unknown filter {which!r} or order {order!r}")
    return SELECTIONS[which], ORDERS[order]


def samples(
    conn: sqlite3.Connection, run_id: int, which: str = "all", limit: int | None = None
) -> list[Sample]:
    """The run's samples of one selection (SELECTIONS), with their plan's payload, in id
    order; at most `limit`."""
    where, order = _where(which)
    rows = conn.execute(
        "SELECT s.*, p.payload FROM samples s JOIN plans p ON p.id = s.plan_id"
        f" WHERE s.run_id = ? AND {where} ORDER BY {order} LIMIT ?",
        (run_id, -1 if limit is None else limit),
    ).fetchall()
    return [Sample.from_row(r) for r in rows]


def sample_ids(
    conn: sqlite3.Connection, run_id: int, which: str = "all", order: str = "id"
) -> list[int]:
    where, order_by = _where(which, order)
    rows = conn.execute(
        f"SELECT s.id FROM samples s WHERE s.run_id = ? AND {where} ORDER BY {order_by}",
        (run_id,),
    )
    return [r[0] for r in rows]


def sample(conn: sqlite3.Connection, sample_id: int) -> Sample:
    row = conn.execute("SELECT * FROM samples WHERE id = ?", (sample_id,)).fetchone()
    if row is None:
        raise TelesynthError(f"no sample {sample_id}")
    return Sample.from_row(row)


def review_state(
    conn: sqlite3.Connection, sample_id: int
) -> tuple[str | None, str | None, str | None]:
    """A sample's review, answer and steps (JSON) as stored."""
    row = conn.execute(
        "SELECT review, answer, steps FROM samples WHERE id = ?", (sample_id,)
    ).fetchone()
    if row is None:
        raise TelesynthError(f"no sample {sample_id}")
    return row[0], row[1], row[2]


def set_review(conn: sqlite3.Connection, sample_id: int, decision: str) -> None:
    conn.execute("UPDATE samples SET review = ? WHERE id = ?", (decision, sample_id))


def edit_answer(conn: sqlite3.Connection, sample_id: int, answer: str, steps: list[str]) -> None:
    """A reviewer's answer; the first edit keeps the original in the scores."""
    conn.execute(
        "UPDATE samples SET answer = ?, steps = ?, review = 'edited',"
        " scores = json_set(COALESCE(scores, '{}'), '$.original_answer',"
        " COALESCE(json_extract(scores, '$.original_answer'), answer)) WHERE id = ?",
        (answer, json.dumps(steps), sample_id),
    )


def restore_review(
    conn: sqlite3.Connection,
    sample_id: int,
    review: str | None,
    answer: str | None,
    steps: str | None,
) -> None:
    conn.execute(
        "UPDATE samples SET review = ?, answer = ?, steps = ? WHERE id = ?",
        (review, answer, steps, sample_id),
    )


# --- figures ---------------------------------------------------------------------------------


def last_rates(conn: sqlite3.Connection, run_id: int) -> tuple[float | None, float | None, str]:
    """Decode tok/s, J/token and energy source of the run's latest model call."""
    row = conn.execute(
        "SELECT metrics FROM model_calls WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)
    ).fetchone()
    if row is None:
        return None, None, ""
    m = json.loads(row[0])
    return m.get("decode_tok_s"), m.get("joules_per_token"), m.get("energy_source", "")


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
        # a batched call counts its share of the steps it was decoded in, not its wall time
        "model_seconds": round(sum(model_seconds(c) for c in calls), 3),
        "energy_j": round(sum(c.get("energy_j", 0.0) for c in calls), 3),
        "energy_source": ",".join(sorted({c.get("energy_source", "") for c in calls} - {""})),
        "llama_threads": sorted(
            {c["extra"]["threads"] for c in calls if "threads" in c.get("extra", {})}
        ),
        # the Ray worker processes that ran the model calls (a restarted worker is a new one)
        "ray_workers": len(
            {c["extra"]["ray_worker"] for c in calls if "ray_worker" in c.get("extra", {})}
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


def decode_rates(conn: sqlite3.Connection) -> list[tuple[str, float]]:
    """(model, decode tok/s) of every stored model call that has a decode rate."""
    rows = conn.execute(
        "SELECT model, json_extract(metrics, '$.decode_tok_s') FROM model_calls"
        " WHERE json_extract(metrics, '$.decode_tok_s') IS NOT NULL"
    )
    return [(str(model), float(rate)) for model, rate in rows]


def model_seconds(call: dict[str, Any]) -> float:
    """The time a stored call kept its model busy: its wall time, or for a call decoded in a
    batch with others, its share of the batch's steps."""
    busy = call.get("extra", {}).get("busy_s")
    return float(busy if busy is not None else call.get("wall_s", 0.0))


def fail_run(conn: sqlite3.Connection, run_id: int, reason: str) -> None:
    """Mark a run failed with its reason (a start or a stage that raised)."""
    with transaction(conn):
        row = conn.execute("SELECT summary FROM runs WHERE id = ?", (run_id,)).fetchone()
        summary = json.loads(row[0]) if row and row[0] else {}
        summary["error"] = reason
        conn.execute(
            "UPDATE runs SET status = 'failed', summary = ? WHERE id = ?",
            (json.dumps(summary), run_id),
        )


def failure_reason(conn: sqlite3.Connection, run_id: int) -> str | None:
    row = conn.execute("SELECT status, summary FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row[0] != "failed" or not row[1]:
        return None
    return json.loads(row[1]).get("error")


@contextmanager
def writing(conn: sqlite3.Connection, run_id: int) -> Iterator[None]:
    """Hold the run's lease while models load and plans run; a start or stage that fails marks
    the run failed with its reason (a busy run is left to its writer)."""
    try:
        with lease.hold(conn, run_id):
            yield
    except lease.RunBusyError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        reason = text[0] if text else type(exc).__name__
        with suppress(sqlite3.Error):  # the database itself failed: the original error says more
            fail_run(conn, run_id, reason)
        raise
