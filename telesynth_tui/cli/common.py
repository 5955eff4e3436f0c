"""What every command shares: the Typer apps, the project of `--project`, JSON output, the
progress line and the run summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from telesynth_tui.config import DEFAULT_PROJECT
from telesynth_tui.errors import TelesynthError

app = typer.Typer(
    help="telesynth: turn telecom knowledge into fine-tuning data, offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
kg_app = typer.Typer(help="The knowledge graph: import, inspect, search.", no_args_is_help=True)
app.add_typer(kg_app, name="kg")
models_app = typer.Typer(
    help="Local models: build, register, verify, benchmark.", no_args_is_help=True
)
app.add_typer(models_app, name="models")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


class State:
    project_dir: Path = DEFAULT_PROJECT


def open_project() -> Any:
    from telesynth_tui.project import Project

    return Project.open(State.project_dir)


def echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@app.callback()
def _global(
    project: Annotated[
        Path,
        typer.Option(
            "--project",
            "-p",
            envvar="TELESYNTH_PROJECT",
            help="Project folder (holds telesynth.db and telesynth.toml).",
            show_default=True,
        ),
    ] = DEFAULT_PROJECT,
) -> None:
    State.project_dir = project


def optional_project() -> Any:
    from telesynth_tui.project import Project

    return Project.optional(State.project_dir)


def parse_mix_option(types: str | None) -> dict[str, float] | None:
    from telesynth_tui.pipeline.plans import parse_mix

    try:
        return parse_mix(types) if types else None
    except TelesynthError as exc:
        raise TelesynthError(f"--types: {exc}") from None


class ProgressLine:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.enabled

    def __call__(self, p: Any) -> None:
        """A run's progress (pipeline.runner.Progress)."""
        rate = f" {p.tokens_per_s:.0f} tok/s" if p.tokens_per_s else ""
        energy = (
            f" {p.joules_per_token:.4f} J/token ({p.energy_source})" if p.joules_per_token else ""
        )
        self.show(
            p.done, p.total, f"plans, {p.accepted} accepted, {p.rejected} rejected{rate}{energy}"
        )

    def show(self, done: int, total: int, detail: str) -> None:
        width = 24
        filled = int(width * done / max(total, 1))
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {detail}"
        if self.enabled:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        elif self.plain and (done % 10 == 0 or done == total):
            typer.echo(line, err=True)

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def threads_origin(ray_workers: int = 0) -> str:
    """Where the llama.cpp thread count came from: the project's setting, or the default of
    the process that ran the model (every core here, one thread on a Ray worker)."""
    if open_project().settings.models.llama_threads:
        return "set"
    return "default for a Ray worker: 1" if ray_workers else "auto: every core"


def print_summary(summary: dict[str, Any]) -> None:
    typer.echo(
        f"run {summary['run_id']}: {summary['plans_done']}/{summary['plans']} plans, "
        f"{summary['generated']} generated, {summary['accepted']} accepted, "
        f"{summary['rejected']} rejected"
    )
    if summary["rejected_by_filter"]:
        parts = ", ".join(f"{k} {v}" for k, v in summary["rejected_by_filter"].items())
        typer.echo(f"  rejected by: {parts}")
    for type_, counts in summary["by_type"].items():
        typer.echo(f"  {type_}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if summary["model_calls"]:
        typer.echo(
            f"  model calls {summary['model_calls']}, tokens {summary['prompt_tokens']} "
            f"in / {summary['output_tokens']} out, {summary['model_seconds']} s, "
            f"{summary['energy_j']} J ({summary['energy_source']})"
        )
        workers = summary.get("ray_workers", 0)
        if summary.get("llama_threads"):
            threads = ",".join(map(str, summary["llama_threads"]))
            together = summary.get("parallel", 1)
            batched = f", {together} plans decoded together" if together > 1 else ""
            where = f" per Ray worker, {workers} worker processes" if workers else ""
            typer.echo(f"  llama.cpp threads {threads}{where} ({threads_origin(workers)}){batched}")
        elif workers:
            typer.echo(f"  model calls on {workers} Ray worker processes")
    if "why_nothing_accepted" in summary:
        typer.echo(f"  nothing accepted: {summary['why_nothing_accepted']}")
