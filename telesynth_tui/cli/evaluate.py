"""Evaluate a student model (`eval`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    ProgressLine,
    app,
    echo_json,
    open_project,
)
from telesynth_tui.errors import TelesynthError


@app.command("eval")
def evaluate(
    student: Annotated[str | None, typer.Option(help="A registered GGUF student.")] = None,
    set_path: Annotated[Path | None, typer.Option("--set", help="Evaluation file.")] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="teleqna, mm-telcobench, oran or telesynth (default: detected)."
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="closed (question only) or open (with context).")
    ] = "closed",
    limit: Annotated[int | None, typer.Option(help="Items at most.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Answer tokens at most.")] = 64,
    compare_runs: Annotated[
        tuple[int, int] | None, typer.Option("--compare", help="Two evaluation runs side by side.")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Answer the items on Ray workers: 'local', 'auto' or the head's HOST:PORT.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="With --ray: workers (default: the cluster's CPUs).", min=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a student: MCQ accuracy, numeric pass@1, ROUGE-L/BLEU/embedding F1, latency and
    energy per output token."""
    from telesynth_tui.evaluate.student import compare, run_evaluation

    project = open_project()
    conn = project.connect()
    if compare_runs:
        rows = compare(conn, *compare_runs)
        if as_json:
            echo_json({k: {"a": a, "b": b} for k, a, b in rows})
            return

        def cell(value: Any) -> str:
            return f"{value:.4g}" if isinstance(value, float) else str(value)

        for key, a, b in rows:
            typer.echo(f"{key:26s} {cell(a):>24.24s} {cell(b):>24.24s}")
        return
    if not student or set_path is None:
        raise TelesynthError("eval needs --student NAME and --set PATH (or --compare A B)")
    if limit is not None and limit < 1:
        raise TelesynthError(f"--limit must be at least 1, not {limit}")
    if not 1 <= max_tokens <= 32_768:
        raise TelesynthError(f"--max-tokens must be between 1 and 32768, not {max_tokens}")

    if workers is not None and ray is None:
        raise TelesynthError("--workers needs --ray ADDRESS")
    if ray is not None:
        from telesynth_tui.pipeline.sharded import check_address, sharded_model
        from telesynth_tui.runs import check_models

        check_address(ray)
        check_models(project, [student])
        generator: Any = sharded_model(project, student, ray, workers)
    else:
        generator = project.generator(student)
    progress = ProgressLine(not as_json)
    try:
        summary = run_evaluation(
            conn,
            generator,
            project.encoder(),
            set_path,
            fmt,
            mode,
            limit,
            max_tokens,
            lambda done, total: progress.show(done, total, "items"),
        )
    finally:
        progress.close()
        generator.close()
    if as_json:
        echo_json(summary)
        return
    for key, value in summary.items():
        if key != "skipped_reasons":
            typer.echo(f"{key}: {value}")
