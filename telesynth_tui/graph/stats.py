"""Counts that describe a knowledge graph."""

from __future__ import annotations

import sqlite3

from telesynth_tui import database as db
from telesynth_tui.database import schema_version
from telesynth_tui.graph.store import KnowledgeGraph
from telesynth_tui.graph.technology import cross_technology_relations
from telesynth_tui.infra import transaction


def kg_stats(conn: sqlite3.Connection) -> dict[str, object]:
    def scalar(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    def grouped(sql: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in conn.execute(sql)}

    return {
        "schema_version": schema_version(conn),
        "source_files": scalar("SELECT COUNT(*) FROM source_files"),
        "documents": scalar("SELECT COUNT(*) FROM documents"),
        "chunks": scalar("SELECT COUNT(*) FROM chunks"),
        "chunk_tokens": scalar("SELECT COALESCE(SUM(n_tokens), 0) FROM chunks"),
        "entities": scalar("SELECT COUNT(*) FROM entities WHERE status = 'curated'"),
        "candidate_entities": scalar("SELECT COUNT(*) FROM entities WHERE status = 'candidate'"),
        "mentions": scalar("SELECT COUNT(*) FROM mentions"),
        "relations": scalar("SELECT COUNT(*) FROM relations WHERE status = 'accepted'"),
        "extracted_relations": grouped(
            "SELECT status, COUNT(*) FROM relations WHERE origin = 'extracted' GROUP BY status"
        ),
        "relations_with_evidence": scalar(
            "SELECT COUNT(DISTINCT e.relation_id) FROM relation_evidence e"
            " JOIN relations r ON r.id = e.relation_id WHERE r.status = 'accepted'"
        ),
        "relations_missing_evidence": KnowledgeGraph(conn).missing_evidence(),
        "formulas": scalar("SELECT COUNT(*) FROM formulas"),
        "embeddings": scalar("SELECT COUNT(*) FROM embeddings"),
        "entities_by_type": grouped(
            "SELECT type, COUNT(*) FROM entities WHERE status = 'curated' GROUP BY type"
            " ORDER BY 2 DESC"
        ),
        "candidates_by_type": grouped(
            "SELECT type, COUNT(*) FROM entities WHERE status = 'candidate' GROUP BY type"
            " ORDER BY 2 DESC"
        ),
        "relations_by_predicate": grouped(
            "SELECT predicate, COUNT(*) FROM relations WHERE status = 'accepted'"
            " GROUP BY predicate ORDER BY 2 DESC"
        ),
        "entities_by_technology": grouped(
            "SELECT technology, COUNT(*) FROM entities WHERE status = 'curated'"
            " AND technology != '' GROUP BY technology ORDER BY 2 DESC"
        ),
        # relations joining an LTE-only entity with an NR-only one (a data problem)
        "cross_technology_relations": cross_technology_relations(conn),
    }


def repair_graph(conn: sqlite3.Connection) -> dict[str, int]:
    """Recompute every relation's evidence from the chunks in the graph, in one transaction."""

    def with_evidence() -> int:
        sql = (
            "SELECT COUNT(DISTINCT e.relation_id) FROM relation_evidence e"
            " JOIN relations r ON r.id = e.relation_id WHERE r.status = 'accepted'"
        )
        return int(conn.execute(sql).fetchone()[0])

    kg = KnowledgeGraph(conn)
    before, missing = with_evidence(), kg.missing_evidence()
    with transaction(conn):
        kg.link_evidence()
        db.bump_revision(conn)
    return {
        "relations": int(
            conn.execute("SELECT COUNT(*) FROM relations WHERE status = 'accepted'").fetchone()[0]
        ),
        "with_evidence_before": before,
        "missing_before": missing,
        "with_evidence_after": with_evidence(),
        "missing_after": kg.missing_evidence(),
    }
