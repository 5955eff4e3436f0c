"""The knowledge graph: import, stats, repair, search, show, review, extract, remove, path,
pattern."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    echo_json,
    kg_app,
    open_project,
)
from telesynth_tui.errors import TelesynthError

# --- kg import -------------------------------------------------------------------------------


def print_report(report: Any) -> None:
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

    project = open_project()
    report = import_paths(project.connect(), paths, project.settings.ingest)
    if as_json:
        echo_json(
            {
                "files": [
                    {
                        "path": str(f.path),
                        "kind": f.kind,
                        "status": f.status,
                        "counts": vars(f.counts),
                        "issues": [str(i) for i in f.issues],
                    }
                    for f in report.files
                ],
                "counts": vars(report.counts),
            }
        )
    else:
        print_report(report)
    if report.nothing_imported:
        raise typer.Exit(1)


# --- kg stats / search / show / path ---------------------------------------------------------


def print_stats(stats: dict[str, Any]) -> None:
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
    for label, key in (
        ("entities", "entities_by_type"),
        ("relations", "relations_by_predicate"),
        ("technology", "entities_by_technology"),
    ):
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

    stats = kg_stats(open_project().connect())
    if as_json:
        echo_json(stats)
    else:
        print_stats(stats)


@kg_app.command("repair")
def kg_repair_cmd(as_json: JsonOpt = False) -> None:
    """Recompute the evidence of every relation (after an interrupted import)."""
    from telesynth_tui.graph.stats import repair_graph

    result = repair_graph(open_project().connect())
    if as_json:
        echo_json(result)
        return
    typer.echo(
        f"relations with evidence: {result['with_evidence_before']} before, "
        f"{result['with_evidence_after']} after, of {result['relations']}; "
        f"missing evidence: {result['missing_before']} before, "
        f"{result['missing_after']} after"
    )


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
    project = open_project()
    retriever = Retriever(project.connect(), project.settings.retrieval)
    result = retriever.retrieve(query, budget_tokens=budget, top_k=top_k)
    if as_json:
        echo_json(result_to_json(result))
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

    conn = open_project().connect()
    details = entity_details(conn, _entity_id(conn, entity))
    if as_json:
        echo_json(details)
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
        typer.echo(
            f"  {details['candidate_relations']} extracted relations await review "
            "(telesynth kg review)"
        )


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

    conn = open_project().connect()
    decisions = [(i, "accepted") for i in accept or []] + [(i, "rejected") for i in reject or []]
    if decisions:
        done = review(conn, decisions)
        if as_json:
            echo_json({"decisions": done, "counts": review_counts(conn)})
            return
        for d in done:
            typer.echo(f"relation {d['id']}: {d['status']}")
        return
    rows = list_candidates(conn, status, limit, document=document)
    counts = review_counts(conn)
    if as_json:
        echo_json({"counts": counts, "relations": rows})
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
    parallel: Annotated[
        int,
        typer.Option("--parallel", help="Chunks a GGUF decodes together (one batch scheduler)."),
    ] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Extract relations from the imported documents with a GGUF model: schema-constrained
    triples, kept only when subject and object occur in the chunk; they enter as candidates
    and are accepted where the structure-aware extractor agrees."""
    from telesynth_tui.graph.candidates import review_counts
    from telesynth_tui.graph.llm_extraction import extract_with_llm

    project = open_project()
    conn = project.connect()
    progress = None if as_json else (lambda line: typer.echo(line, err=True))
    report = extract_with_llm(project, conn, model, document, limit_chunks, progress, parallel)
    data = {
        "chunks": report.chunks,
        "kept": report.kept,
        "new_relations": report.stored.relations,
        "supported": report.stored.supported,
        "dropped": dict(report.dropped.most_common()),
        "seconds": report.seconds,
        "parallel": parallel,
        "review": review_counts(conn),
    }
    if as_json:
        echo_json(data)
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

    project = open_project()
    removed = remove_documents(
        project.connect(), [str(p) for p in paths], project.settings.ingest.accept_confidence
    )
    if as_json:
        echo_json({"removed": removed})
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

    conn = open_project().connect()
    a, b = _entity_id(conn, source), _entity_id(conn, target)
    graph = load_graph(conn)
    edges = describe_edges(graph, shortest_path(graph, a, b))
    if as_json:
        echo_json({"from": source, "to": target, "path": edges})
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
    conn = open_project().connect()
    start_id = _entity_id(conn, start) if start else None
    graph = load_graph(conn)
    paths = [describe_edges(graph, p) for p in pattern_paths(graph, pattern, start_id, limit)]
    if as_json:
        echo_json({"pattern": pattern, "paths": paths})
        return
    for path in paths:
        chain = path[0]["subject"] + "".join(f" -{e['predicate']}-> {e['object']}" for e in path)
        typer.echo(chain)
    typer.echo(f"{len(paths)} paths")
