"""Create a project (`init`) and open the terminal app on it (`tui`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    State,
    app,
    echo_json,
)
from telesynth_tui.cli.kg import print_report, print_stats
from telesynth_tui.errors import TelesynthError

# --- init ------------------------------------------------------------------------------------


@app.command()
def init(
    empty: Annotated[
        bool, typer.Option("--empty", help="Create without bundled knowledge.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a project and import the bundled telecom knowledge."""
    from telesynth_tui.graph.importer import import_paths
    from telesynth_tui.graph.stats import kg_stats
    from telesynth_tui.project import Project

    project = Project.create(State.project_dir)
    conn = project.connect()
    report = None
    if not empty:
        bundled = project.settings.bundled_kg
        if not bundled.is_dir():
            raise TelesynthError(f"{bundled}: bundled knowledge folder not found")
        report = import_paths(conn, [bundled], project.settings.ingest)
    stats = kg_stats(conn)
    if as_json:
        echo_json(
            {
                "project": str(project.path),
                "stats": stats,
                "issues": [str(i) for i in report.issues] if report else [],
            }
        )
        return
    typer.echo(f"project: {project.path.resolve()}")
    if report:
        print_report(report)
    print_stats(stats)


@app.command()
def tui(
    project: Annotated[
        Path | None, typer.Option("--project", "-p", help="Project folder (as the global option).")
    ] = None,
) -> None:
    """Open the terminal app on the project (created with the bundled knowledge if missing)."""
    from telesynth_tui.project import Project
    from telesynth_tui.tui.app import create_app

    path = project or State.project_dir
    opened = Project.open(path) if Project.optional(path).exists else _init_for_tui(path)
    create_app(opened).run()


def _init_for_tui(path: Path) -> Any:
    from telesynth_tui.graph.importer import import_paths
    from telesynth_tui.project import Project

    typer.echo(f"creating project {path} with the bundled knowledge…", err=True)
    project = Project.create(path)
    import_paths(project.connect(), [project.settings.bundled_kg], project.settings.ingest)
    return project
