"""What a project holds at a glance: knowledge-graph counts, registered models with the speed
measured in this project, recent runs and evaluations. Shaped for display (TUI dashboard)."""

from __future__ import annotations

import sqlite3
import statistics
from typing import Any

from telesynth_tui.evaluate import history
from telesynth_tui.graph.stats import kg_stats
from telesynth_tui.pipeline import store
from telesynth_tui.runs import list_runs


def measured_speeds(conn: sqlite3.Connection) -> dict[str, float]:
    """Median decode tok/s per model over its generation calls recorded in this project."""
    rates: dict[str, list[float]] = {}
    for model, rate in [*store.decode_rates(conn), *history.decode_rates(conn)]:
        rates.setdefault(model, []).append(rate)
    return {m: statistics.median(v) for m, v in rates.items()}


def project_overview(project: Any, conn: sqlite3.Connection) -> dict[str, Any]:
    speeds = measured_speeds(conn)
    models = []
    for entry in project.registry().entries():
        size = entry.path.stat().st_size if entry.path.exists() else None
        models.append(
            {
                "name": entry.name,
                "roles": entry.roles,
                "format": entry.format,
                "quantization": entry.quantization,
                "size_bytes": size,
                "context": entry.context_length,
                "origin": entry.origin,
                "decode_tok_s": speeds.get(entry.name),
            }
        )
    return {
        "project": str(project.path),
        "kg": kg_stats(conn),
        "models": models,
        "runs": list_runs(conn, limit=10, newest_first=True),
    }
