"""Export a run (`export`) with its dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    app,
    echo_json,
    open_project,
)
from telesynth_tui.errors import TelesynthError


@app.command()
def export(
    run: Annotated[int, typer.Argument(help="Run id.")],
    fmt: Annotated[str, typer.Option("--format", help="sft, rft, dpo or csv.")] = "sft",
    out: Annotated[
        Path | None,
        typer.Option(help="Output file (.jsonl, .parquet or .csv), or with --hf a folder."),
    ] = None,
    with_context: Annotated[
        bool, typer.Option("--with-context", help="Open-book prompts: context + question.")
    ] = False,
    layout: Annotated[
        str, typer.Option(help="sft: messages, or prompt-completion (loss on the answer only).")
    ] = "messages",
    target: Annotated[
        str, typer.Option(help="trl, or openai (documented keys only; provenance beside).")
    ] = "trl",
    hf: Annotated[
        bool, typer.Option("--hf", help="A Hugging Face dataset folder: parquet splits, README.")
    ] = False,
    max_tokens: Annotated[
        int | None, typer.Option(help="Trim context (or warn) where a record exceeds N tokens.")
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="Registered GGUF whose chat template counts tokens (default: the "
            "default generator)."
        ),
    ] = None,
    validation: Annotated[
        float, typer.Option(help="With --hf: share of plans held out for validation.")
    ] = 0.1,
    seed: Annotated[
        int | None, typer.Option(help="With --hf: split seed (default: the run's seed).")
    ] = None,
    license_id: Annotated[
        str, typer.Option("--license", help="License id written in the dataset card.")
    ] = "other",
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing file given with --out.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a run (SFT, RFT, DPO, CSV) with a dataset card beside it."""
    from telesynth_tui.pipeline.export import default_out, export_run, project_tokenizer
    from telesynth_tui.project import check_output_path

    project = open_project()
    if out is not None and not hf:
        check_output_path(project.path, out, force)
    elif out is not None and out.resolve() == project.path.resolve():
        raise TelesynthError(f"{out}: is the project folder; choose another --out")
    target_path = out or default_out(project.path, run, fmt, layout, target, hf)
    required = tokenizer is not None or bool(max_tokens)
    counter = None if fmt == "csv" else lambda: project_tokenizer(project, tokenizer, required)
    result = export_run(
        project.connect(),
        run,
        fmt,
        target_path,
        with_context,
        layout=layout,
        target=target,
        hf=hf,
        max_tokens=max_tokens,
        tokenizer=counter,
        validation=validation,
        seed=seed,
        license_id=license_id,
    )
    for warning in result["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        echo_json(result)
        return
    if hf:
        splits = ", ".join(f"{k} {v}" for k, v in result["splits"].items())
        typer.echo(f"wrote {result['records']} {fmt} records to {result['folder']} ({splits})")
    else:
        typer.echo(f"wrote {result['records']} {fmt} records to {result['file']}")
    if result.get("readme"):
        typer.echo(f"folder configs for load_dataset: {result['readme']}")
    if result.get("provenance"):
        typer.echo(f"provenance: {result['provenance']}")
    typer.echo(f"dataset card: {result['card']}")
