"""The `telesynth` command line: a thin layer over the core (heavy imports inside commands)."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from telesynth_tui.config import DEFAULT_PROJECT
from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline.gate import DEFAULT_MIN_QUALITY

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
        f"{c.mentions} mentions, {c.extracted} extracted relations"
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
    if stats.get("relations_missing_evidence"):
        typer.echo(
            f"  warning: {stats['relations_missing_evidence']} relations lost their evidence "
            "(an interrupted import); restore it with: telesynth kg repair"
        )
    for label, key in (("entities", "entities_by_type"), ("relations", "relations_by_predicate"),
                       ("technology", "entities_by_technology")):  # fmt: skip
        parts = ", ".join(f"{k} {v}" for k, v in stats[key].items())
        typer.echo(f"  {label}: {parts or '-'}")
    for rel in stats["cross_technology_relations"]:
        typer.echo(
            f"  warning: {rel['subject']} ({rel['subject_technology']}) -{rel['predicate']}-> "
            f"{rel['object']} ({rel['object_technology']}) mixes technologies "
            f"({rel['file']}:{rel['line']})"
        )


@kg_app.command("stats")
def kg_stats_cmd(as_json: JsonOpt = False) -> None:
    """Counts of documents, chunks, entities, relations and formulas."""
    from telesynth_tui.graph.stats import kg_stats

    stats = kg_stats(_project().connect())
    if as_json:
        _echo_json(stats)
    else:
        _print_stats(stats)


@kg_app.command("repair")
def kg_repair_cmd(as_json: JsonOpt = False) -> None:
    """Recompute the evidence of every relation (after an interrupted import)."""
    from telesynth_tui.graph.stats import repair_graph

    result = repair_graph(_project().connect())
    if as_json:
        _echo_json(result)
        return
    typer.echo(f"relations with evidence: {result['with_evidence_before']} before, "
               f"{result['with_evidence_after']} after, of {result['relations']}; "
               f"missing evidence: {result['missing_before']} before, "
               f"{result['missing_after']} after")  # fmt: skip


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

    if top_k is not None and not 1 <= top_k <= 1000:
        raise TelesynthError(f"--top-k must be between 1 and 1000, not {top_k}")
    if budget is not None and not 1 <= budget <= 1_000_000:
        raise TelesynthError(f"--budget must be between 1 and 1000000 tokens, not {budget}")
    if not query.strip():
        raise TelesynthError("the search query is empty")
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
    tech = f", {details['technology']}" if details["technology"] else ""
    typer.echo(f"{details['name']} [{details['type']}, {details['status']}{tech}]")
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
    if details["candidate_relations"]:
        typer.echo(f"  {details['candidate_relations']} extracted relations await review "
                   "(telesynth kg review)")  # fmt: skip


@kg_app.command("review")
def kg_review(
    accept: Annotated[
        list[int] | None, typer.Option("--accept", help="Accept this extracted relation (id).")
    ] = None,
    reject: Annotated[
        list[int] | None, typer.Option("--reject", help="Reject this extracted relation (id).")
    ] = None,
    status: Annotated[
        str, typer.Option(help="List: candidate, accepted, rejected or all.")
    ] = "candidate",
    document: Annotated[
        str | None, typer.Option(help="Only relations from documents whose path contains this.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Relations listed at most.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Relations extracted from documents: list them with their evidence, accept or reject them
    (plans use accepted relations only; decisions survive re-imports)."""
    from telesynth_tui.graph.candidates import list_candidates, review, review_counts

    conn = _project().connect()
    decisions = [(i, "accepted") for i in accept or []] + [(i, "rejected") for i in reject or []]
    if decisions:
        done = review(conn, decisions)
        if as_json:
            _echo_json({"decisions": done, "counts": review_counts(conn)})
            return
        for d in done:
            typer.echo(f"relation {d['id']}: {d['status']}")
        return
    rows = list_candidates(conn, status, limit, document=document)
    counts = review_counts(conn)
    if as_json:
        _echo_json({"counts": counts, "relations": rows})
        return
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()) + " extracted relations")
    for r in rows:
        typer.echo(
            f"{r['id']:>6}  {r['subject']} -{r['predicate']}-> {r['object']}  "
            f"[{r['status']}, {r['confidence']:.2f} {r['rule']}, {Path(r['source']).name}]"
        )
        typer.echo(f"        {r['evidence'][:150]}")


@kg_app.command("extract")
def kg_extract(
    model: Annotated[
        str, typer.Option("--model", help="A registered GGUF (models list) or a .gguf path.")
    ],
    document: Annotated[
        list[str] | None,
        typer.Option("--document", help="Only documents whose path contains this (repeatable)."),
    ] = None,
    limit_chunks: Annotated[
        int | None, typer.Option("--limit-chunks", help="Stop after this many chunks.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Extract relations from the imported documents with a GGUF model: schema-constrained
    triples, kept only when subject and object occur in the chunk; they enter as candidates
    and are accepted where the structure-aware extractor agrees."""
    from telesynth_tui.graph.candidates import review_counts
    from telesynth_tui.graph.llm_extraction import extract_with_llm

    project = _project()
    conn = project.connect()
    progress = None if as_json else (lambda line: typer.echo(line, err=True))
    report = extract_with_llm(project, conn, model, document, limit_chunks, progress)
    data = {
        "chunks": report.chunks, "kept": report.kept, "new_relations": report.stored.relations,
        "supported": report.stored.supported, "dropped": dict(report.dropped.most_common()),
        "seconds": report.seconds, "review": review_counts(conn),
    }  # fmt: skip
    if as_json:
        _echo_json(data)
        return
    typer.echo(
        f"{report.chunks} chunks, {report.kept} triples kept ({report.stored.relations} new, "
        f"{report.stored.supported} already extracted), {sum(report.dropped.values())} dropped, "
        f"{report.seconds} s"
    )
    for reason, n in report.dropped.most_common(8):
        typer.echo(f"  dropped {n}: {reason}")


@kg_app.command("remove")
def kg_remove(
    paths: Annotated[list[Path], typer.Argument(help="Imported files to forget.")],
    as_json: JsonOpt = False,
) -> None:
    """Forget imported files and everything only they supported (chunks, extracted entities
    and relations, declared relations)."""
    from telesynth_tui.graph.candidates import remove_documents

    removed = remove_documents(_project().connect(), [str(p) for p in paths])
    if as_json:
        _echo_json({"removed": removed})
    else:
        for path in removed:
            typer.echo(f"removed {path}")
    missing = len(paths) - len(removed)
    if missing:
        raise TelesynthError(f"{missing} of the paths were never imported")


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

    if limit < 1:
        raise TelesynthError(f"--limit must be at least 1, not {limit}")
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


# --- generate / runs / samples ---------------------------------------------------------------


def _parse_mix(types: str | None) -> dict[str, float] | None:
    from telesynth_tui.pipeline.plans import parse_mix

    try:
        return parse_mix(types) if types else None
    except TelesynthError as exc:
        raise TelesynthError(f"--types: {exc}") from None


def _check_served(registry: Any, entry: Any) -> None:
    """A model on a server must answer before a run is created (one line when it does not)."""
    if entry.remote:
        problem = registry.check(entry)
        if problem:
            raise TelesynthError(problem)


class _ProgressLine:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.enabled

    def __call__(self, p: Any) -> None:
        """A run's progress (pipeline.runner.Progress)."""
        rate = f" {p.tokens_per_s:.0f} tok/s" if p.tokens_per_s else ""
        energy = (f" {p.joules_per_token:.4f} J/token ({p.energy_source})"
                  if p.joules_per_token else "")  # fmt: skip
        self.show(p.done, p.total, f"plans, {p.accepted} accepted, {p.rejected} rejected"
                                   f"{rate}{energy}")  # fmt: skip

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


def _threads_origin() -> str:
    return "set" if _project().settings.models.llama_threads else "auto: every core"


def _print_summary(summary: dict[str, Any]) -> None:
    typer.echo(f"run {summary['run_id']}: {summary['plans_done']}/{summary['plans']} plans, "
               f"{summary['generated']} generated, {summary['accepted']} accepted, "
               f"{summary['rejected']} rejected")  # fmt: skip
    if summary["rejected_by_filter"]:
        parts = ", ".join(f"{k} {v}" for k, v in summary["rejected_by_filter"].items())
        typer.echo(f"  rejected by: {parts}")
    for type_, counts in summary["by_type"].items():
        typer.echo(f"  {type_}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if summary["model_calls"]:
        typer.echo(f"  model calls {summary['model_calls']}, tokens {summary['prompt_tokens']} "
                   f"in / {summary['output_tokens']} out, {summary['model_seconds']} s, "
                   f"{summary['energy_j']} J ({summary['energy_source']})")  # fmt: skip
        if summary.get("llama_threads"):
            threads = ",".join(map(str, summary["llama_threads"]))
            typer.echo(f"  llama.cpp threads {threads} ({_threads_origin()})")
    if "why_nothing_accepted" in summary:
        typer.echo(f"  nothing accepted: {summary['why_nothing_accepted']}")


@app.command()
def generate(
    n: Annotated[
        int | None,
        typer.Option("--n", help="Question plans (100); with --from-docs: sections (all)."),
    ] = None,
    types: Annotated[
        str | None,
        typer.Option(
            help="Types and weights: troubleshooting,multi_hop,maths,factual,definition "
            "(e.g. 'troubleshooting=0.5,maths=0.5')."
        ),
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(help="A registered GGUF generator; default: the KG-template realizer."),
    ] = None,
    refiner: Annotated[str | None, typer.Option(help="A registered GGUF refiner.")] = None,
    judge: Annotated[str | None, typer.Option(help="A registered GGUF judge (LLM RAGAS).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the plans and phrasings.")] = 0,
    pairs: Annotated[
        int, typer.Option(help="QA pairs per document section with --from-docs (at most 10).")
    ] = 10,
    from_docs: Annotated[
        bool,
        typer.Option(
            "--from-docs",
            help="Plans from your imported documents (every one that is not bundled knowledge, "
            "or those of --docs), up to --pairs QA per section.",
        ),
    ] = False,
    docs: Annotated[
        str | None,
        typer.Option(
            help="With --from-docs: a file or folder you imported, or document ids '3,7'."
        ),
    ] = None,
    min_quality: Annotated[
        float, typer.Option(help="Drop samples scoring below this.")
    ] = DEFAULT_MIN_QUALITY,
    resume: Annotated[int | None, typer.Option(help="Continue an interrupted run.")] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run the model calls on Ray workers: 'local' (a Ray instance on this machine), "
            "'auto' (the cluster this machine joined) or the head's HOST:PORT.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="With --ray: workers (default: the cluster's CPUs).", min=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate QA samples: plan, retrieve, generate, refine, filter, score; every step stored."""
    from telesynth_tui.pipeline import lease
    from telesynth_tui.pipeline.runner import TEMPLATE, RunConfig, create_run, load_run

    if workers is not None and ray is None:
        raise TelesynthError("--workers needs --ray ADDRESS")
    if ray is not None:  # a head that does not answer is refused before a run is created
        from telesynth_tui.pipeline.sharded import check_address

        check_address(ray)
    project = _project()
    conn = project.connect()
    if resume is not None:
        if conn.execute("SELECT 1 FROM dta_runs WHERE run_id = ?", (resume,)).fetchone():
            raise TelesynthError(
                f"run {resume} is a DTA run: resume it with telesynth dta --resume"
            )
        config, _ = load_run(conn, resume)
        run_id = resume
    else:
        if not 1 <= pairs <= 10:
            raise TelesynthError("--pairs must be between 1 and 10")
        config = RunConfig(
            n=100 if n is None else n, seed=seed, generator=generator or TEMPLATE,
            refiner=refiner, judge=judge, pairs_per_context=pairs, min_quality=min_quality,
        )  # fmt: skip
        if docs is not None and not from_docs:
            raise TelesynthError("--docs needs --from-docs")
        if from_docs:
            from telesynth_tui.pipeline.documents import select_documents

            config.documents = select_documents(conn, docs or "", project.settings.bundled_kg)
            config.n = 1_000_000 if n is None else n
        mix = _parse_mix(types)
        if mix:
            config.mix = mix
        if not math.isfinite(min_quality) or not 0 <= min_quality <= 1:
            raise TelesynthError(f"--min-quality must be between 0 and 1, not {min_quality}")
        if not 1 <= pairs <= 100:
            raise TelesynthError(f"--pairs must be between 1 and 100, not {pairs}")
        registry = project.registry()
        for name in filter(None, (generator, refiner, judge)):
            _check_served(registry, registry.get(name))
        run_id = create_run(conn, config)
        _, planned = load_run(conn, run_id)
        if planned < config.n:
            typer.echo(f"note: the knowledge graph allows {planned} of {config.n} plans "
                       "(import more knowledge for more)", err=True)  # fmt: skip
    progress = _ProgressLine(not as_json)
    with lease.writing(conn, run_id):
        pool = None
        if ray is not None:
            from telesynth_tui.pipeline.sharded import sharded_runner

            runner, pool = sharded_runner(project, conn, config, ray, workers)
        else:
            runner = project.runner(conn, config)
        if not as_json:
            refining = f", refining with {config.refiner}" if config.refiner else ""
            sharded = f" on {len(pool.actors)} Ray workers" if pool else ""
            typer.echo(f"run {run_id}: generating with {config.generator}{refining}{sharded}",
                       err=True)  # fmt: skip
        try:
            summary = runner.execute(run_id, progress)
        finally:
            progress.close()
            if pool is not None:
                pool.close()
    if as_json:
        _echo_json(summary)
    else:
        _print_summary(summary)


@app.command()
def dta(
    student: Annotated[str | None, typer.Option(help="The registered GGUF student.")] = None,
    teachers: Annotated[
        str, typer.Option(help="Registered GGUF teachers, comma-separated (the solver is added).")
    ] = "",
    n: Annotated[int, typer.Option("--n", help="Number of problems.")] = 20,
    types: Annotated[
        str, typer.Option(help="maths and/or troubleshooting, with weights (maths=0.7,...).")
    ] = "maths=0.7,troubleshooting=0.3",
    rewriter: Annotated[
        str, typer.Option(help="A registered GGUF, 'student' (default) or 'none' (layout only).")
    ] = "student",
    judge: Annotated[
        str | None, typer.Option(help="A registered GGUF reflection judge (step checker always).")
    ] = None,
    probes: Annotated[int, typer.Option(help="Probe problems for the student's style.")] = 3,
    no_solver: Annotated[
        bool, typer.Option("--no-solver", help="Leave the deterministic solver out.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the problems.")] = 0,
    resume: Annotated[int | None, typer.Option(help="Continue an interrupted DTA run.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Data Trajectory Alignment: teachers solve planned problems, solutions are rewritten into the
    student's style and the best exemplar per problem is kept when answers agree and the judge
    approves; export it with telesynth export RUN."""
    from telesynth_tui.dta.runner import DtaConfig, DtaRunner, create_dta_run, load_dta_config
    from telesynth_tui.pipeline import lease

    project = _project()
    conn = project.connect()
    if resume is not None:
        config = load_dta_config(conn, resume)
        if config is None:
            raise TelesynthError(f"no DTA run {resume} (see: telesynth runs)")
        run_id = resume
    else:
        if not student:
            raise TelesynthError("dta needs --student NAME")
        config = DtaConfig(
            student=student, teachers=[t.strip() for t in teachers.split(",") if t.strip()],
            n=n, mix=_parse_mix(types) or {}, seed=seed,
            rewriter=None if rewriter == "none" else rewriter, judge=judge, probes=probes,
            use_solver=not no_solver,
        )  # fmt: skip
        registry = project.registry()
        for name in {config.student, *config.teachers, config.judge, config.rewriter} - {
            None,
            "student",
            "solver",
        }:
            _check_served(registry, registry.get(str(name)))
        run_id = create_dta_run(conn, config)
    progress = _ProgressLine(not as_json)
    with lease.writing(conn, run_id):
        runner = DtaRunner(conn, project.dta_models(config))
        if not as_json:
            typer.echo(f"run {run_id}: DTA for {config.student} with teachers "
                       f"{', '.join(config.teacher_names())}", err=True)  # fmt: skip
        try:
            summary = runner.execute(run_id, progress)
        finally:
            progress.close()
    if as_json:
        _echo_json(summary)
        return
    _print_summary(summary)
    profile = summary["profile"]
    marker = profile.get("marker") or "(unmarked)"
    typer.echo(f"  student style: {profile.get('words')} words, {profile.get('steps')} steps, "
               f"{profile.get('layout')}, final answer {marker}")  # fmt: skip
    typer.echo(f"  exemplars: {summary['problems_with_exemplar']} problems, none for "
               f"{summary['problems_without_exemplar']}; selected by teacher "
               f"{summary['selected_by_teacher']}; rewrites {summary['rewrites']}")  # fmt: skip
    typer.echo(f"  export: telesynth export {run_id} --format sft (or rft)")


@app.command()
def runs(as_json: JsonOpt = False) -> None:
    """The project's runs with their counts."""
    from telesynth_tui.pipeline.lease import failure_reason, shown_status
    from telesynth_tui.pipeline.runner import run_summary

    conn = _project().connect()
    rows = conn.execute("SELECT id, created_at, status, config FROM runs ORDER BY id").fetchall()
    data = []
    for run_id, created, stored_status, config in rows:
        status = shown_status(conn, run_id, stored_status)
        summary = run_summary(conn, run_id)
        cfg = json.loads(config)
        data.append({"run": run_id, "created_at": created, "status": status,
                     "generator": cfg["generator"], "seed": cfg["seed"], "n": cfg["n"],
                     **{k: summary[k] for k in ("plans", "plans_done", "generated", "accepted",
                                                "rejected")},
                     "error": failure_reason(conn, run_id)})  # fmt: skip
    if as_json:
        _echo_json(data)
        return
    if not data:
        typer.echo("no runs yet (telesynth generate --n 100)")
    for r in data:
        typer.echo(f"run {r['run']:3d}  {r['created_at']}  {r['status']:11s} {r['generator']:16s} "
                   f"seed {r['seed']}  plans {r['plans_done']}/{r['plans']}  accepted "
                   f"{r['accepted']}  rejected {r['rejected']}"
                   + (f"  ({r['error']})" if r["error"] else ""))  # fmt: skip


@app.command()
def samples(
    run: Annotated[int, typer.Argument(help="Run id.")],
    status: Annotated[str | None, typer.Option(help="accepted or rejected.")] = None,
    limit: Annotated[int, typer.Option(help="Rows at most.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Samples of a run with their scores and, for rejections, the reason."""
    if status is not None and status not in ("accepted", "rejected"):
        raise TelesynthError(f"--status must be accepted or rejected, not {status!r}")
    if limit < 1:
        raise TelesynthError(f"--limit must be at least 1, not {limit}")
    conn = _project().connect()
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run,)).fetchone() is None:
        raise TelesynthError(f"no run {run} (see: telesynth runs)")
    sql = "SELECT id, type, status, reason, quality, question, answer, scores FROM samples"
    sql += " WHERE run_id = ?" + (" AND status = ?" if status else "") + " ORDER BY id LIMIT ?"
    params: list[Any] = [run, status, limit] if status else [run, limit]
    rows = [dict(r) for r in conn.execute(sql, params)]
    for r in rows:
        r["scores"] = json.loads(r["scores"] or "{}")
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        q = f"{r['quality']:.2f}" if r["quality"] is not None else "  - "
        typer.echo(f"#{r['id']:<5d} {r['type']:15s} {r['status']:8s} q={q}  {r['question'] or ''}")
        if r["reason"]:
            typer.echo(f"       reason: {r['reason']}")


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
        _echo_json([v.to_dict() for v in verdicts])
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

    project = _project()
    if out is not None and not hf:
        check_output_path(project.path, out, force)
    elif out is not None and out.resolve() == project.path.resolve():
        raise TelesynthError(f"{out}: is the project folder; choose another --out")
    target_path = out or default_out(project.path, run, fmt, layout, target, hf)
    required = tokenizer is not None or bool(max_tokens)
    counter = None if fmt == "csv" else lambda: project_tokenizer(project, tokenizer, required)
    result = export_run(project.connect(), run, fmt, target_path, with_context, layout=layout,
                        target=target, hf=hf, max_tokens=max_tokens, tokenizer=counter,
                        validation=validation, seed=seed, license_id=license_id)  # fmt: skip
    for warning in result["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        _echo_json(result)
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

    project = _project()
    conn = project.connect()
    if compare_runs:
        rows = compare(conn, *compare_runs)
        if as_json:
            _echo_json({k: {"a": a, "b": b} for k, a, b in rows})
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

        check_address(ray)
        _check_served(project.registry(), project.registry().get(student))
        generator = sharded_model(project, student, ray, workers)
    else:
        generator = project.generator(student)
    progress = _ProgressLine(not as_json)
    try:
        summary = run_evaluation(
            conn, generator, project.encoder(), set_path, fmt, mode, limit, max_tokens,
            lambda done, total: progress.show(done, total, "items"),
        )  # fmt: skip
    finally:
        progress.close()
        generator.close()
    if as_json:
        _echo_json(summary)
        return
    for key, value in summary.items():
        if key != "skipped_reasons":
            typer.echo(f"{key}: {value}")


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


# --- models ----------------------------------------------------------------------------------


def _optional_project() -> Any:
    from telesynth_tui.project import Project

    return Project.optional(State.project_dir)


def _size(n: int | None) -> str:
    if n is None:
        return "missing"
    if n < 1e6:
        return f"{n / 1e3:.1f} kB"
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
        params = ""
        if e.parameters:
            count = e.parameters
            params = f"{count / 1e6:.1f}M params" if count >= 1e5 else f"{count} params"
        ctx = f"ctx {e.context_length}" if e.context_length else ""
        details = ", ".join(x for x in (e.format, e.quantization, params, ctx) if x)
        if e.remote:
            typer.echo(f"{e.name:22s} {','.join(e.roles):40s} {details}, {e.model_id} at "
                       f"{e.url}  [{e.origin}]")  # fmt: skip
            continue
        typer.echo(f"{e.name:22s} {','.join(e.roles):40s} {details}, {_size(d['size_bytes'])}"
                   f"  [{e.origin}]")  # fmt: skip


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
        entry = _project().registry().add(path, name, roles, tokenizer)
    else:
        entry = _project().registry().add_remote(url, name, roles, model, api_key_env, n_ctx)
    if as_json:
        _echo_json(entry.to_dict())
        return
    if entry.remote:
        typer.echo(f"registered {entry.name}: {entry.model_id} at {entry.url}, context "
                   f"{entry.context_length} ({entry.notes})")  # fmt: skip
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
    from telesynth_tui.infra import write_atomic
    from telesynth_tui.modelkit.bench import render_markdown, run_model_bench

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
    except sqlite3.DatabaseError as exc:
        from telesynth_tui.config import DATABASE_FILE
        from telesynth_tui.project import database_error

        typer.echo(f"error: {database_error(State.project_dir / DATABASE_FILE, exc)}", err=True)
        sys.exit(2)
    except MemoryError:
        typer.echo(f"error: out of memory running: {' '.join(sys.argv[1:])}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("TELESYNTH_DEBUG"):
            raise
        where = _where(exc)
        typer.echo(
            f"error: unexpected {type(exc).__name__}{where}: {exc} while running "
            f"'{' '.join(sys.argv[1:])}' (set TELESYNTH_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(1)


def _where(exc: BaseException) -> str:
    """The innermost place of the product's code an unexpected error came from."""
    tb = exc.__traceback__
    place = ""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "telesynth_tui" in name:
            place = f" at {Path(name).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return place


if __name__ == "__main__":
    main()
