"""The accept gate on QA items a person brings (`check`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    State,
    app,
    echo_json,
)


@app.command()
def check(
    file: Annotated[
        Path,
        typer.Argument(
            help="QA items as JSON lines (type, plan, context, question, answer, steps)."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Run the accept gate on QA items you bring (no generation): each item's verdict and
    reasons, then the counts. Uses the project's graph, or the bundled knowledge without one."""
    from telesynth_tui.pipeline.gate_check import check_file, counts, gate_for
    from telesynth_tui.project import Project

    project = Project.optional(State.project_dir)
    conn = project.connect() if project.exists else None
    verdicts = check_file(file, gate_for(conn, project.settings))
    totals = counts(verdicts)
    if as_json:
        echo_json([v.to_dict() for v in verdicts])
        typer.echo(
            f"{totals['accepted']} accepted, {totals['rejected']} rejected of {totals['items']}",
            err=True,
        )
        return
    for v in verdicts:
        typer.echo(f"{v.id}: {'accepted' if v.accepted else 'rejected'}")
        for reason in v.reasons:
            typer.echo(f"    {reason}")
    typer.echo(
        f"{totals['items']} items: {totals['accepted']} accepted, {totals['rejected']} rejected"
    )
    if totals["rejected_by_rule"]:
        typer.echo(
            "  rejected by: " + ", ".join(f"{k} {n}" for k, n in totals["rejected_by_rule"].items())
        )
