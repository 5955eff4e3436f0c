"""The `telesynth` command line: a thin layer over the core (heavy imports inside commands)."""

from __future__ import annotations

import json
import os
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


def _project() -> Any:
    from telesynth_tui.project import Project

    return Project.open(State.project_dir)


def _echo_json(data: object) -> None:
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
        _echo_json({"project": str(project.path), "stats": stats,
                    "issues": [str(i) for i in report.issues] if report else []})  # fmt: skip
        return
    typer.echo(f"project: {project.path.resolve()}")
    if report:
        _print_report(report)
    _print_stats(stats)


# --- kg import -------------------------------------------------------------------------------


def _print_report(report: Any) -> None:
    for issue in report.issues:
        typer.echo(str(issue), err=True)
    c = report.counts
    typer.echo(
        "files: "
        + ", ".join(
            f"{len(report.by_status(s))} {s}"
            for s in ("imported", "unchanged", "failed", "skipped")
        )
    )
    typer.echo(
        f"added: {c.documents} documents, {c.chunks} chunks, {c.entities} entities, "
        f"{c.candidates} candidate entities, {c.relations} relations, {c.formulas} formulas, "
        f"{c.mentions} mentions"
    )


@kg_app.command("import")
def kg_import(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to import.")],
    as_json: JsonOpt = False,
) -> None:
    """Import documents (Markdown, text, HTML, PDF), entities and triples (CSV/JSONL) and
    formulas (TOML)."""
    from telesynth_tui.graph.importer import import_paths

    project = _project()
    report = import_paths(project.connect(), paths, project.settings.ingest)
    if as_json:
        _echo_json(
            {
                "files": [
                    {"path": str(f.path), "kind": f.kind, "status": f.status,
                     "counts": vars(f.counts), "issues": [str(i) for i in f.issues]}
                    for f in report.files
                ],
                "counts": vars(report.counts),
            }
        )  # fmt: skip
    else:
        _print_report(report)
    if report.nothing_imported:
        raise typer.Exit(1)


# --- kg stats / search / show / path ---------------------------------------------------------


def _print_stats(stats: dict[str, Any]) -> None:
    typer.echo(
        f"knowledge graph: {stats['documents']} documents, {stats['chunks']} chunks "
        f"({stats['chunk_tokens']} tokens), {stats['entities']} entities "
        f"(+{stats['candidate_entities']} candidates), {stats['relations']} relations "
        f"({stats['relations_with_evidence']} with evidence), {stats['formulas']} formulas"
    )
    for label, key in (("entities", "entities_by_type"), ("relations", "relations_by_predicate")):
        parts = ", ".join(f"{k} {v}" for k, v in stats[key].items())
        typer.echo(f"  {label}: {parts or '-'}")


@kg_app.command("stats")
def kg_stats_cmd(as_json: JsonOpt = False) -> None:
    """Counts of documents, chunks, entities, relations and formulas."""
    from telesynth_tui.graph.stats import kg_stats

    stats = kg_stats(_project().connect())
    if as_json:
        _echo_json(stats)
    else:
        _print_stats(stats)


@kg_app.command("search")
def kg_search(
    query: Annotated[
        str, typer.Argument(help="Free text, e.g. 'RRC setup failures after PCI change'.")
    ],
    budget: Annotated[int | None, typer.Option(help="Context token budget.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Items at most.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid retrieval (BM25 + graph expansion, fused by reciprocal rank) with provenance."""
    from telesynth_tui.graph.retrieval import Retriever, result_to_json

    project = _project()
    retriever = Retriever(project.connect(), project.settings.retrieval)
    result = retriever.retrieve(query, budget_tokens=budget, top_k=top_k)
    if as_json:
        _echo_json(result_to_json(result))
        return
    typer.echo(f"query entities: {', '.join(result.entities) or '-'}")
    typer.echo(f"{len(result.items)} items, {result.n_tokens}/{result.budget_tokens} tokens")
    for rank, item in enumerate(result.items, 1):
        via = ",".join(f"{k}#{v}" for k, v in item.ranks.items())
        p = item.provenance
        if item.kind == "chunk":
            where = f"{Path(str(p['source'])).name} § {p['heading']}"
            text = " ".join(item.text.split())
        else:
            where = f"{Path(str(p['source'])).name}:{p['line']} evidence {p['evidence_chunk_ids']}"
            text = item.text
        typer.echo(
            f"{rank:2d}. [{item.kind} {item.id}] {item.score:.4f} ({via}) {item.n_tokens} tok"
        )
        typer.echo(f"    {where}")
        typer.echo(f"    {text[:220]}{'…' if len(text) > 220 else ''}")


def _entity_id(conn: Any, name: str) -> int:
    from telesynth_tui.graph.store import KnowledgeGraph

    entity_id = KnowledgeGraph(conn).resolve(name)
    if entity_id is None:
        raise TelesynthError(f"no entity named {name!r} (try: telesynth kg search {name!r})")
    return entity_id


@kg_app.command("show")
def kg_show(
    entity: Annotated[str, typer.Argument(help="Entity name or alias.")],
    as_json: JsonOpt = False,
) -> None:
    """An entity: type, aliases, description, relations and evidence."""
    from telesynth_tui.graph.queries import entity_details

    conn = _project().connect()
    details = entity_details(conn, _entity_id(conn, entity))
    if as_json:
        _echo_json(details)
        return
    typer.echo(f"{details['name']} [{details['type']}, {details['status']}]")
    if details["aliases"]:
        typer.echo(f"  aliases: {', '.join(details['aliases'])}")
    if details["description"]:
        typer.echo(f"  {details['description']}")
    typer.echo(f"  declared in: {', '.join(details['sources']) or '-'}")
    typer.echo(f"  mentioned in {details['mention_chunks']} chunks")
    for rel in details["relations"]:
        typer.echo(f"  {rel['subject']} -{rel['predicate']}-> {rel['object']}  ({rel['source']})")
    for formula in details["formulas"]:
        typer.echo(
            f"  formula {formula['slug']}: {formula['expression']} [{formula['output_unit']}]"
        )


@kg_app.command("path")
def kg_path(
    source: Annotated[str, typer.Argument(help="From entity.")],
    target: Annotated[str, typer.Argument(help="To entity.")],
    as_json: JsonOpt = False,
) -> None:
    """The shortest chain of relations between two entities."""
    from telesynth_tui.graph.queries import describe_edges
    from telesynth_tui.graph.views import load_graph, shortest_path

    conn = _project().connect()
    a, b = _entity_id(conn, source), _entity_id(conn, target)
    graph = load_graph(conn)
    edges = describe_edges(graph, shortest_path(graph, a, b))
    if as_json:
        _echo_json({"from": source, "to": target, "path": edges})
        return
    if not edges:
        typer.echo(f"no path between {source!r} and {target!r}")
        raise typer.Exit(1)
    for edge in edges:
        typer.echo(f"{edge['subject']} -{edge['predicate']}-> {edge['object']}")


@kg_app.command("pattern")
def kg_pattern(
    pattern: Annotated[
        str, typer.Argument(help="e.g. 'Alarm -indicates-> RootCause -resolved_by-> Action'")
    ],
    start: Annotated[str | None, typer.Option("--from", help="Start entity.")] = None,
    limit: Annotated[int, typer.Option(help="Paths at most.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Paths whose entity types and predicates follow a pattern ('*' matches any)."""
    from telesynth_tui.graph.queries import describe_edges
    from telesynth_tui.graph.views import load_graph, pattern_paths

    conn = _project().connect()
    start_id = _entity_id(conn, start) if start else None
    graph = load_graph(conn)
    paths = [describe_edges(graph, p) for p in pattern_paths(graph, pattern, start_id, limit)]
    if as_json:
        _echo_json({"pattern": pattern, "paths": paths})
        return
    for path in paths:
        chain = path[0]["subject"] + "".join(f" -{e['predicate']}-> {e['object']}" for e in path)
        typer.echo(chain)
    typer.echo(f"{len(paths)} paths")


# --- models ----------------------------------------------------------------------------------


def _optional_project() -> Any:
    from telesynth_tui.project import Project

    return Project.optional(State.project_dir)


def _size(n: int | None) -> str:
    if n is None:
        return "missing"
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Registered models: shipped defaults, built ones and the project's own."""
    entries = _optional_project().registry().entries()
    if as_json:
        _echo_json([e.to_dict() for e in entries])
        return
    if not entries:
        typer.echo("no models registered (run: telesynth models build)")
        return
    for e in entries:
        d = e.to_dict()
        params = f"{e.parameters / 1e6:.1f}M params" if e.parameters else ""
        ctx = f"ctx {e.context_length}" if e.context_length else ""
        details = ", ".join(x for x in (e.format, e.quantization, params, ctx) if x)
        typer.echo(f"{e.name:22s} {','.join(e.roles):40s} {details}, {_size(d['size_bytes'])}"
                   f"  [{e.origin}]")  # fmt: skip


@models_app.command("add")
def models_add(
    path: Annotated[Path, typer.Argument(help="A .gguf generator or an .onnx encoder.")],
    name: Annotated[str, typer.Option("--name", help="Name to register it under.")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            help="Role(s): generator, refiner, teacher, student, "
            "judge, encoder, classifier (repeat or comma-separate).",
        ),
    ],
    tokenizer: Annotated[
        Path | None, typer.Option(help="tokenizer.json of an ONNX encoder.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a model file in the project (its header is checked first)."""
    roles = [r.strip() for value in role for r in value.split(",") if r.strip()]
    entry = _project().registry().add(path, name, roles, tokenizer)
    if as_json:
        _echo_json(entry.to_dict())
        return
    typer.echo(f"registered {entry.name}: {entry.format} {entry.quantization}, "
               f"{entry.parameters / 1e6:.1f}M parameters, context {entry.context_length}, "
               f"sha256 {entry.sha256[:12]}…")  # fmt: skip


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: JsonOpt = False,
) -> None:
    """One model: manifest entry and, for GGUF, what its header says."""
    from telesynth_tui.inference.gguf_header import read_gguf_header

    entry = _optional_project().registry().get(name)
    info = entry.to_dict()
    if entry.format == "gguf" and entry.path.is_file():
        info["header"] = read_gguf_header(entry.path).summary()
    if as_json:
        _echo_json(info)
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
    results = _optional_project().registry().verify()
    if as_json:
        _echo_json([{"name": e.name, "ok": p is None, "problem": p} for e, p in results])
    else:
        for entry, problem in results:
            typer.echo(
                f"{'ok  ' if problem is None else 'FAIL'} {entry.name}: {problem or entry.path}"
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
    from telesynth_tui.inference.build import build_models

    for line in build_models(_optional_project(), generator=generator):
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
    from telesynth_tui.inference.bench import render_markdown, run_model_bench
    from telesynth_tui.project import write_atomic

    project = _optional_project()
    results = run_model_bench(project, names or [], runs, tokens,
                              lambda line: typer.echo(line, err=True))  # fmt: skip
    folder = out or (project.path / "bench" if project.exists else None)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "models.json", json.dumps(results, indent=2) + "\n")
        write_atomic(folder / "models.md", render_markdown(results))
    if as_json:
        _echo_json(results)
    else:
        typer.echo(render_markdown(results))
        if folder is not None:
            typer.echo(f"results: {folder / 'models.json'}, {folder / 'models.md'}")


def main() -> None:
    try:
        app()
    except TelesynthError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("TELESYNTH_DEBUG"):
            raise
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (set TELESYNTH_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
