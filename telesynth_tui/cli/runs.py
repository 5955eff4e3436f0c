"""The project's runs (`runs`) and a run's samples (`samples`)."""

from __future__ import annotations

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
        echo_json(data)
        return
    if not data:
        typer.echo("no runs yet (telesynth generate --n 100)")
    for r in data:
        typer.echo(
            f"run {r['run']:3d}  {r['created_at']}  {r['status']:11s} {r['generator']:16s} "
            f"seed {r['seed']}  plans {r['plans_done']}/{r['plans']}  accepted "
            f"{r['accepted']}  rejected {r['rejected']}"
            + (f"  ({r['error']})" if r["error"] else "")
        )


@app.command()
def samples(
    run: Annotated[int, typer.Argument(help="Run id.")],
    status: Annotated[str | None, typer.Option(help="accepted or rejected.")] = None,
    limit: Annotated[int, typer.Option(help="Rows at most.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Samples of a run with their scores and, for rejections, the reason."""
    from telesynth_tui.runs import list_samples

    rows = [s.listing() for s in list_samples(open_project().connect(), run, status, limit)]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        q = f"{r['quality']:.2f}" if r["quality"] is not None else "  - "
        typer.echo(f"#{r['id']:<5d} {r['type']:15s} {r['status']:8s} q={q}  {r['question'] or ''}")
        if r["reason"]:
            typer.echo(f"       reason: {r['reason']}")
