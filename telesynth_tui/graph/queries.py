"""Read-only views of entities and relations, shaped for display (CLI, TUI, JSON)."""

from __future__ import annotations

import json
import sqlite3

import networkx as nx

from telesynth_tui.graph.views import Edge


def entity_details(conn: sqlite3.Connection, entity_id: int) -> dict[str, object]:
    row = conn.execute(
        "SELECT id, name, type, aliases, description, status FROM entities WHERE id = ?",
        (entity_id,),
    ).fetchone()
    relations = [
        {"id": r[0], "subject": r[1], "predicate": r[2], "object": r[3],
         "source": f"{r[4].rsplit('/', 1)[-1]}:{r[5]}",
         "evidence_chunk_ids": [int(x) for x in (r[6] or "").split(",") if x]}
        for r in conn.execute(
            """
            SELECT r.id, s.name, r.predicate, o.name, sf.path, r.line,
                   (SELECT GROUP_CONCAT(chunk_id) FROM relation_evidence e
                    WHERE e.relation_id = r.id)
            FROM relations r JOIN entities s ON s.id = r.subject_id
            JOIN entities o ON o.id = r.object_id JOIN source_files sf ON sf.id = r.source_file_id
            WHERE r.subject_id = ? OR r.object_id = ? ORDER BY r.predicate, o.name
            """,
            (entity_id, entity_id),
        )
    ]  # fmt: skip
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
    mention_chunks = conn.execute(
        "SELECT COUNT(DISTINCT chunk_id) FROM mentions WHERE entity_id = ?", (entity_id,)
    ).fetchone()[0]
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "status": row["status"],
        "aliases": json.loads(row["aliases"] or "[]"),
        "description": row["description"] or "",
        "sources": sources,
        "mention_chunks": mention_chunks,
        "relations": relations,
        "formulas": formulas,
    }


def describe_edges(graph: nx.MultiDiGraph, edges: list[Edge]) -> list[dict[str, object]]:
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
