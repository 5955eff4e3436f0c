"""Local models: list, add, info, verify, build, bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    echo_json,
    models_app,
    open_project,
    optional_project,
)
from telesynth_tui.errors import TelesynthError

# --- models ----------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    if n is None:
        return "missing"
    if n < 1e6:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Registered models: shipped defaults, built ones and the project's own."""
    entries = optional_project().registry().entries()
    if as_json:
        echo_json([e.to_dict() for e in entries])
        return
    if not entries:
        typer.echo("no models registered (run: telesynth models build)")
        return
    for e in entries:
        d = e.to_dict()
        params = ""
        if e.parameters:
            count = e.parameters
            params = f"{count / 1e6:.1f}M params" if count >= 1e5 else f"{count} params"
        ctx = f"ctx {e.context_length}" if e.context_length else ""
        details = ", ".join(x for x in (e.format, e.quantization, params, ctx) if x)
        if e.remote:
            typer.echo(
                f"{e.name:22s} {','.join(e.roles):40s} {details}, {e.model_id} at "
                f"{e.url}  [{e.origin}]"
            )
            continue
        typer.echo(
            f"{e.name:22s} {','.join(e.roles):40s} {details}, {_size(d['size_bytes'])}"
            f"  [{e.origin}]"
        )


@models_app.command("add")
def models_add(
    path: Annotated[
        Path | None, typer.Argument(help="A .gguf generator or an .onnx encoder.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Name to register it under.")] = "",
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            help="Role(s): generator, refiner, teacher, student, "
            "judge, encoder, classifier (repeat or comma-separate).",
        ),
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
    tokenizer: Annotated[
        Path | None, typer.Option(help="tokenizer.json of an ONNX encoder.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A model served over the OpenAI-compatible API: http://HOST:PORT/v1."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="With --url: the served model id (default: the first).")
    ] = "",
    api_key_env: Annotated[
        str, typer.Option(help="With --url: the environment variable that holds the API key.")
    ] = "",
    n_ctx: Annotated[
        int, typer.Option(help="With --url: its context size, when the server does not say.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Register a model file in the project (its header is checked first), or with --url a
    model on an OpenAI-compatible server (asked first whether it serves it)."""
    roles = [r.strip() for value in role for r in value.split(",") if r.strip()]
    if not name:
        raise TelesynthError("models add needs --name NAME")
    if not roles:
        raise TelesynthError("models add needs --role (e.g. --role generator)")
    if (path is None) == (url is None):
        raise TelesynthError("models add needs a model file or --url (one of them)")
    if url is None:
        assert path is not None
        entry = open_project().registry().add(path, name, roles, tokenizer)
    else:
        entry = open_project().registry().add_remote(url, name, roles, model, api_key_env, n_ctx)
    if as_json:
        echo_json(entry.to_dict())
        return
    if entry.remote:
        typer.echo(
            f"registered {entry.name}: {entry.model_id} at {entry.url}, context "
            f"{entry.context_length} ({entry.notes})"
        )
        return
    typer.echo(
        f"registered {entry.name}: {entry.format} {entry.quantization}, "
        f"{entry.parameters / 1e6:.1f}M parameters, context {entry.context_length}, "
        f"sha256 {entry.sha256[:12]}…"
    )


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: JsonOpt = False,
) -> None:
    """One model: manifest entry and, for GGUF, what its header says."""
    from telesynth_tui.inference.gguf_header import read_gguf_header

    entry = optional_project().registry().get(name)
    info = entry.to_dict()
    if entry.format == "gguf" and entry.path.is_file():
        info["header"] = read_gguf_header(entry.path).summary()
    if as_json:
        echo_json(info)
        return
    for key, value in info.items():
        if key == "header":
            for k, v in value.items():
                typer.echo(f"  header.{k}: {v}")
        elif value not in (None, "", 0, []):
            typer.echo(f"{key}: {value}")


@models_app.command("verify")
def models_verify(as_json: JsonOpt = False) -> None:
    """Check every registered model: file present, SHA-256 as recorded, header readable."""
    results = optional_project().registry().verify()
    if as_json:
        echo_json([{"name": e.name, "ok": p is None, "problem": p} for e, p in results])
    else:
        for entry, problem in results:
            typer.echo(
                f"{'ok  ' if problem is None else 'FAIL'} {entry.name}: "
                f"{problem or (entry.url if entry.remote else entry.path)}"
            )
    if any(p for _, p in results):
        raise typer.Exit(1)


@models_app.command("build")
def models_build(
    generator: Annotated[
        bool, typer.Option("--generator", help="Also retrain the tiny generator (3-10 min).")
    ] = False,
) -> None:
    """Build the embedded ONNX encoder (fp32 + int8); --generator also retrains the GGUF."""
    from telesynth_tui.modelkit.build import build_models

    for line in build_models(optional_project(), generator=generator):
        typer.echo(line)


@models_app.command("bench")
def models_bench(
    names: Annotated[list[str] | None, typer.Argument(help="Models (default: all).")] = None,
    runs: Annotated[int, typer.Option(help="Measured runs per model.")] = 5,
    tokens: Annotated[int, typer.Option(help="Output tokens at most per generator run.")] = 256,
    out: Annotated[Path | None, typer.Option(help="Folder for models.json and models.md.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """TTFT, prefill/decode tok/s, R_decode, grammar penalty, J/token, peak RSS; encoder R_enc."""
    from telesynth_tui.infra import write_atomic
    from telesynth_tui.modelkit.bench import render_markdown, run_model_bench

    project = optional_project()
    results = run_model_bench(
        project, names or [], runs, tokens, lambda line: typer.echo(line, err=True)
    )
    folder = out or (project.path / "bench" if project.exists else None)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "models.json", json.dumps(results, indent=2) + "\n")
        write_atomic(folder / "models.md", render_markdown(results))
    if as_json:
        echo_json(results)
    else:
        typer.echo(render_markdown(results))
        if folder is not None:
            typer.echo(f"results: {folder / 'models.json'}, {folder / 'models.md'}")
