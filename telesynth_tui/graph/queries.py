"""Read-only views of entities and relations, shaped for display (CLI, TUI, JSON)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.retrieval import query_terms
from telesynth_tui.graph.store import KnowledgeGraph
from telesynth_tui.graph.views import Edge, load_graph, shortest_path
from telesynth_tui.text import normalize_name


def entity_details(conn: sqlite3.Connection, entity_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, name, type, aliases, description, status, technology FROM entities"
        " WHERE id = ?",
        (entity_id,),
    ).fetchone()
    relations = [
        {
            "id": r[0],
            "subject": r[1],
            "predicate": r[2],
            "object": r[3],
            "source": r[4].rsplit("/", 1)[-1] + (f":{r[5]}" if r[5] is not None else ""),
            "evidence_chunk_ids": [int(x) for x in (r[6] or "").split(",") if x],
            "status": r[7],
        }
        for r in conn.execute(
            """
            SELECT r.id, s.name, r.predicate, o.name, sf.path, r.line,
                   (SELECT GROUP_CONCAT(chunk_id) FROM relation_evidence e
                    WHERE e.relation_id = r.id), r.status
            FROM relations r JOIN entities s ON s.id = r.subject_id
            JOIN entities o ON o.id = r.object_id JOIN source_files sf ON sf.id = r.source_file_id
            WHERE (r.subject_id = ? OR r.object_id = ?) AND r.status = 'accepted'
            ORDER BY r.predicate, o.name
            """,
            (entity_id, entity_id),
        )
    ]
    sources = [
        r[0]
        for r in conn.execute(
            "SELECT sf.path FROM entity_sources es JOIN source_files sf"
            " ON sf.id = es.source_file_id WHERE es.entity_id = ?",
            (entity_id,),
        )
    ]
    formulas = [
        dict(r)
        for r in conn.execute(
            "SELECT slug, name, expression, output_unit FROM formulas WHERE entity_id = ?",
            (entity_id,),
        )
    ]
    waiting = conn.execute(  # extracted relations not accepted (yet): see `kg review`
        "SELECT COUNT(*) FROM relations WHERE (subject_id = ? OR object_id = ?)"
        " AND status = 'candidate'",
        (entity_id, entity_id),
    ).fetchone()[0]
    mention_chunks = conn.execute(
        "SELECT COUNT(DISTINCT chunk_id) FROM mentions WHERE entity_id = ?", (entity_id,)
    ).fetchone()[0]
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "status": row["status"],
        "technology": row["technology"],
        "aliases": json.loads(row["aliases"] or "[]"),
        "description": row["description"] or "",
        "sources": sources,
        "mention_chunks": mention_chunks,
        "relations": relations,
        "candidate_relations": waiting,
        "formulas": formulas,
    }


def describe_edges(graph: nx.MultiDiGraph, edges: list[Edge]) -> list[dict[str, Any]]:
    return [
        {
            "relation_id": e.relation_id,
            "subject": graph.nodes[e.subject_id]["name"],
            "subject_type": graph.nodes[e.subject_id]["type"],
            "predicate": e.predicate,
            "object": graph.nodes[e.object_id]["name"],
            "object_type": graph.nodes[e.object_id]["type"],
        }
        for e in edges
    ]


# --- search and browsing (TUI knowledge-graph screen, CLI) ---------------------------------------


def find_entities(conn: sqlite3.Connection, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Entities whose name or an alias contains the words of `text` (case and punctuation
    ignored). Best first: exact name, exact alias, name prefix, a name word, an alias word,
    inside a name, inside an alias; curated before candidates, then shorter names."""
    wanted = normalize_name(text)
    if not wanted:
        return []
    ranked: list[tuple[tuple[int, bool, int, str], dict[str, Any]]] = []
    for row in conn.execute("SELECT id, name, norm_name, type, aliases, status FROM entities"):
        aliases: list[str] = json.loads(row["aliases"] or "[]")
        norms = [normalize_name(a) for a in aliases]
        name = row["norm_name"]
        tiers = [
            name == wanted,
            wanted in norms,
            name.startswith(wanted),
            f" {wanted}" in f" {name}",
            any(f" {wanted}" in f" {n}" for n in norms),
            wanted in name,
            any(wanted in n for n in norms),
        ]
        rank = next((i for i, hit in enumerate(tiers) if hit), None)
        if rank is None:
            continue
        matched = None
        if rank in (1, 4, 6):
            matched = next(a for a, n in zip(aliases, norms, strict=True) if wanted in n)
        entity = {
            "id": row["id"],
            "name": row["name"],
            "type": row["type"],
            "status": row["status"],
            "aliases": aliases,
            "matched_alias": matched,
        }
        ranked.append(((rank, row["status"] != "curated", len(row["name"]), name), entity))
    ranked.sort(key=lambda pair: pair[0])
    return [entity for _, entity in ranked[:limit]]


def _chunk_rows(
    conn: sqlite3.Connection, where: str, params: Sequence[object]
) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT c.id, c.document_id, c.ordinal, c.heading, c.text, c.n_tokens, d.title,"
        " sf.path FROM chunks c JOIN documents d ON d.id = c.document_id"
        f" JOIN source_files sf ON sf.id = d.source_file_id WHERE {where}",
        list(params),
    ).fetchall()


def _chunk_dict(row: sqlite3.Row) -> dict[str, object]:
    return {
        "id": row["id"],
        "document_id": row["document_id"],
        "document": row["title"] or row["path"].rsplit("/", 1)[-1],
        "source": row["path"],
        "heading": row["heading"] or "",
        "ordinal": row["ordinal"],
        "text": row["text"],
        "n_tokens": row["n_tokens"],
    }


def search_chunks(conn: sqlite3.Connection, text: str, limit: int = 20) -> list[dict[str, object]]:
    """Chunks matching the words of free text by FTS5 (porter stems), best BM25 first: chunks
    holding every word, else chunks holding any. The user's text is never FTS syntax."""
    terms = query_terms(text)
    if not terms:
        return []
    ids: list[int] = []
    for match in (" AND ".join(terms), " OR ".join(terms)):
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?"
                " ORDER BY bm25(chunks_fts) LIMIT ?",
                (match, limit),
            )
        ]
        if ids or len(terms) == 1:
            break
    return evidence_chunks(conn, ids)


def evidence_chunks(conn: sqlite3.Connection, chunk_ids: Sequence[int]) -> list[dict[str, object]]:
    """The chunks with these ids (document title, heading, text), in the order given; ids of
    deleted chunks are left out."""
    wanted = list(dict.fromkeys(int(i) for i in chunk_ids))
    if not wanted:
        return []
    rows = _chunk_rows(conn, f"c.id IN ({','.join('?' * len(wanted))})", wanted)
    by_id = {row["id"]: _chunk_dict(row) for row in rows}
    return [by_id[i] for i in wanted if i in by_id]


def relation_groups(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The relations of `entity_details` grouped by predicate and direction, for a tree:
    outgoing groups first ("predicate →"), then incoming ("← predicate")."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for relation in details["relations"]:
        outgoing = relation["subject"] == details["name"]
        predicate = relation["predicate"]
        group = groups.setdefault(
            ("out" if outgoing else "in", predicate),
            {
                "direction": "out" if outgoing else "in",
                "predicate": predicate,
                "label": f"{predicate} →" if outgoing else f"← {predicate}",
                "entities": [],
                "evidence_chunk_ids": [],
            },
        )
        group["entities"].append(relation["object"] if outgoing else relation["subject"])
        group["evidence_chunk_ids"].extend(relation["evidence_chunk_ids"])
    return sorted(groups.values(), key=lambda g: (g["direction"] == "in", g["predicate"]))


def entity_evidence(conn: sqlite3.Connection, details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The evidence chunks of an entity's relations, each once: the chunks that evidence most of
    its relations first."""
    counts = Counter(i for r in details["relations"] for i in r["evidence_chunk_ids"])
    return evidence_chunks(conn, [i for i, _ in counts.most_common()])


def path_between(conn: sqlite3.Connection, source: str, target: str) -> list[dict[str, object]]:
    """The shortest chain of relations between two entities named by name or alias (edges are
    followed either way; each step keeps its real direction). [] when they are not connected."""
    kg = KnowledgeGraph(conn)
    ids = []
    for name in (source, target):
        entity_id = kg.resolve(name) if name.strip() else None
        if entity_id is None:
            raise TelesynthError(f"no entity named {name!r}")
        ids.append(entity_id)
    if ids[0] == ids[1]:
        return []
    graph = load_graph(conn)
    return describe_edges(graph, shortest_path(graph, ids[0], ids[1]))


def relation_names(conn: sqlite3.Connection, relation_ids: Sequence[int]) -> list[str]:
    """Relations spelled out by name (`subject -predicate-> object`), in id order."""
    if not relation_ids:
        return []
    marks = ",".join("?" * len(relation_ids))
    return [
        f"{a} -{p}-> {b}"
        for a, p, b in conn.execute(
            "SELECT e1.name, r.predicate, e2.name FROM relations r"
            " JOIN entities e1 ON e1.id = r.subject_id JOIN entities e2 ON e2.id = r.object_id"
            f" WHERE r.id IN ({marks}) ORDER BY r.id",
            list(relation_ids),
        )
    ]
