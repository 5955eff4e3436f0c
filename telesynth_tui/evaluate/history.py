"""Stored student evaluations, listed newest first and shaped for display (TUI, JSON)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


def decode_rates(conn: sqlite3.Connection) -> list[tuple[str, float]]:
    """(student, decode tok/s) of every evaluated item that measured one."""
    rows = conn.execute(
        "SELECT r.student, json_extract(i.metrics, '$.decode_tok_s') FROM eval_items i"
        " JOIN eval_runs r ON r.id = i.eval_run_id"
        " WHERE json_extract(i.metrics, '$.decode_tok_s') IS NOT NULL"
    ).fetchall()
    return [(str(model), float(rate)) for model, rate in rows]


def list_eval_runs(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The latest evaluation runs: id, student, set (file name), format, mode and the summary
    figures (items, accuracy, rouge_l, decode_tok_s, joules_per_output_token, energy_source)."""
    rows = conn.execute(
        "SELECT id, created_at, student, set_path, format, mode, summary FROM eval_runs"
        " ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for row in rows:
        try:
            summary = json.loads(row["summary"] or "{}")
        except json.JSONDecodeError:
            summary = {}
        out.append(
            {
                "id": row["id"],
                "created_at": row["created_at"],
                "student": row["student"],
                "set": Path(row["set_path"]).name,
                "format": row["format"],
                "mode": row["mode"],
                "items": summary.get("items"),
                "accuracy": summary.get("accuracy"),
                "rouge_l": summary.get("rouge_l"),
                "decode_tok_s": summary.get("decode_tok_s"),
                "joules_per_output_token": summary.get("joules_per_output_token"),
                "energy_source": summary.get("energy_source", ""),
            }
        )
    return out
