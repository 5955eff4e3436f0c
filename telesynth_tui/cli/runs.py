"""The project's runs (`runs`) and a run's samples (`samples`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    app,
    echo_json,
    open_project,
)


@app.command()
def runs(as_json: JsonOpt = False) -> None:
    """The project's runs with their counts."""
    from telesynth_tui.runs import list_runs

    data = list_runs(open_project().connect())
    if as_json:
        echo_json([asdict(r) for r in data])
        return
    if not data:
        typer.echo("no runs yet (telesynth generate --n 100)")
    for r in data:
        typer.echo(
            f"run {r.run:3d}  {r.created_at}  {r.status:11s} {r.generator:16s} "
            f"seed {r.seed}  plans {r.plans_done}/{r.plans}  accepted {r.accepted}  "
            f"rejected {r.rejected}  reviewed {r.reviewed}" + (f"  ({r.error})" if r.error else "")
        )


@app.command()
def samples(
    run: Annotated[int, typer.Argument(help="Run id.")],
    show: Annotated[
        str,
        typer.Option("--show", "--status", help="all, accepted, rejected, unreviewed or reviewed."),
    ] = "all",
    order: Annotated[str, typer.Option(help="id or quality (lowest first).")] = "id",
    limit: Annotated[int, typer.Option(help="Rows at most.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Samples of a run with their scores and, for rejections, the reason."""
    from telesynth_tui.runs import list_samples

    rows = [s.listing() for s in list_samples(open_project().connect(), run, show, order, limit)]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        q = f"{r['quality']:.2f}" if r["quality"] is not None else "  - "
        typer.echo(f"#{r['id']:<5d} {r['type']:15s} {r['status']:8s} q={q}  {r['question'] or ''}")
        if r["reason"]:
            typer.echo(f"       reason: {r['reason']}")
