"""Extracted knowledge as candidates: storage with sources, acceptance by rule or by a person,
and removal when the documents that support it change or go.

An extracted triple becomes a relation with origin 'extracted' and status 'candidate'; every
extractor and chunk that stated it is a row of `relation_extractions` (with its rule, confidence
and evidence span). A relation is accepted by rule when two extractor families agree or its best
confidence reaches the project's threshold, or by a person (`kg review`, the TUI). A person's
decision is kept by the triple's names, so it survives re-imports. Plans and retrieval read
accepted relations only; relations declared in triple files are accepted.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction import EXTRACTOR, Known, XEntity, XTriple, extract
from telesynth_tui.graph.resolution import EntityIndex, split_abbreviation
from telesynth_tui.graph.store import ENTITY_TYPES, PREDICATES
from telesynth_tui.infra import now
from telesynth_tui.text import normalize_name

REVIEW_STATUSES = ("candidate", "accepted", "rejected")


@dataclass
class StoreReport:
    entities: int = 0  # new entities
    relations: int = 0  # new relations
    supported: int = 0  # extractions that support a relation already known
    dropped: list[str] = field(default_factory=list)  # reasons


def extractor_family(extractor: str) -> str:
    return extractor.split(":", 1)[0]


def store_extractions(
    conn: sqlite3.Connection,
    source_id: int,
    chunk_ids: list[int],
    triples: list[XTriple],
    extractor: str,
    index: EntityIndex | None = None,
    entities: Sequence[tuple[XEntity, int]] = (),
) -> StoreReport:
    """Write one document's extractions (inside the caller's transaction)."""
    report = StoreReport()
    index = index or EntityIndex(conn)
    for ent, chunk in entities:
        if 0 <= chunk < len(chunk_ids):
            _, created = _entity(conn, index, ent, source_id, chunk_ids[chunk], extractor, 0.9)
            report.entities += created
    path_row = conn.execute("SELECT path FROM source_files WHERE id = ?", (source_id,)).fetchone()
    doc_path = path_row[0] if path_row else None
    for t in triples:
        if t.predicate not in PREDICATES:
            report.dropped.append(f"unknown predicate {t.predicate!r}")
            continue
        if not 0 <= t.chunk < len(chunk_ids):
            report.dropped.append(f"no chunk {t.chunk}")
            continue
        chunk_id = chunk_ids[t.chunk]
        ids = []
        for ent in (t.subject, t.object):
            entity_id, created = _entity(
                conn, index, ent, source_id, chunk_id, extractor, t.confidence
            )
            report.entities += created
            ids.append(entity_id)
        if ids[0] == ids[1]:
            report.dropped.append(f"{t.subject.name} -{t.predicate}-> itself")
            continue
        allowed_s, allowed_o = PREDICATES[t.predicate]
        types = (index.types[ids[0]], index.types[ids[1]])
        if allowed_s is not None and types[0] not in allowed_s:
            report.dropped.append(f"{t.predicate} cannot start at a {types[0]} ({t.subject.name})")
            continue
        if allowed_o is not None and types[1] not in allowed_o:
            report.dropped.append(f"{t.predicate} cannot end at a {types[1]} ({t.object.name})")
            continue
        row = conn.execute(
            "SELECT id FROM relations WHERE subject_id = ? AND predicate = ? AND object_id = ?",
            (ids[0], t.predicate, ids[1]),
        ).fetchone()
        if row is None:
            status, decided = "candidate", None
            review = _person_decision(conn, ids[0], t.predicate, ids[1])
            if review:
                status, decided = review, "person"
            cur = conn.execute(
                "INSERT INTO relations(subject_id, predicate, object_id, source_file_id, line,"
                " evidence_path, status, origin, confidence, decided_by)"
                " VALUES (?, ?, ?, ?, NULL, ?, ?, 'extracted', ?, ?)",
                (ids[0], t.predicate, ids[1], source_id, doc_path, status, t.confidence, decided),
            )
            relation_id = int(cur.lastrowid or 0)
            report.relations += 1
        else:
            relation_id = int(row[0])
            conn.execute(
                "UPDATE relations SET confidence = MAX(COALESCE(confidence, 0), ?) WHERE id = ?",
                (t.confidence, relation_id),
            )
            report.supported += 1
        conn.execute(
            "INSERT OR IGNORE INTO relation_extractions(relation_id, source_file_id, chunk_id,"
            " extractor, rule, confidence, evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (relation_id, source_id, chunk_id, extractor, t.rule, t.confidence, t.evidence),
        )
        if row is None or _origin(conn, relation_id) == "extracted":
            conn.execute(
                "INSERT OR IGNORE INTO relation_evidence(relation_id, chunk_id) VALUES (?, ?)",
                (relation_id, chunk_id),
            )
    return report


def _origin(conn: sqlite3.Connection, relation_id: int) -> str:
    row = conn.execute("SELECT origin FROM relations WHERE id = ?", (relation_id,)).fetchone()
    return str(row[0]) if row else ""


def _retypes(stored: str, extracted: str) -> bool:
    """Whether an extraction's type replaces a candidate's guessed one: 'Passive
    intermodulation (PIM)' spotted as a concept, then named by a section that types it (a
    likely cause); 'gNB-CU' taken for a parameter by its identifier shape, then named as the
    standard's network element."""
    if stored == "Concept":
        return extracted != "Concept"
    return stored in ("Parameter", "Counter") and extracted in ("NetworkElement", "Interface")


def _entity(
    conn: sqlite3.Connection,
    index: EntityIndex,
    ent: XEntity,
    source_id: int,
    chunk_id: int,
    extractor: str,
    confidence: float,
) -> tuple[int, bool]:
    """The entity an extracted name resolves to, created as a candidate when new."""
    if ent.type not in ENTITY_TYPES:
        raise TelesynthError(f"unknown entity type {ent.type!r}")
    entity_id = index.find(ent.name)
    created = False
    name, aliases = split_abbreviation(ent.name)
    aliases = tuple(dict.fromkeys([*aliases, *ent.aliases]))
    if entity_id is None:
        cur = conn.execute(
            "INSERT INTO entities(name, norm_name, type, aliases, description, status,"
            " created_at) VALUES (?, ?, ?, ?, ?, 'candidate', ?)",
            (
                name,
                normalize_name(name),
                ent.type,
                json.dumps(list(aliases)),
                ent.description,
                now(),
            ),
        )
        entity_id = int(cur.lastrowid or 0)
        index.add(entity_id, ent.type, [name, *aliases])
        created = True
    else:  # the same thing under another spelling: keep the new names as aliases
        row = conn.execute(
            "SELECT name, aliases, description, type, status FROM entities WHERE id = ?",
            (entity_id,),
        ).fetchone()
        if row[4] == "candidate" and _retypes(row[3], ent.type):
            conn.execute("UPDATE entities SET type = ? WHERE id = ?", (ent.type, entity_id))
            index.types[entity_id] = ent.type
        known = [row[0], *json.loads(row[1] or "[]")]
        keys = {normalize_name(k) for k in known}
        new = [a for a in (name, *aliases) if normalize_name(a) not in keys]
        if new or (ent.description and not row[2]):
            conn.execute(
                "UPDATE entities SET aliases = ?, description = ? WHERE id = ?",
                (
                    json.dumps([*json.loads(row[1] or "[]"), *new]),
                    row[2] or ent.description,
                    entity_id,
                ),
            )
            index.add(entity_id, index.types[entity_id], new)
    conn.execute(
        "INSERT OR IGNORE INTO entity_extractions(entity_id, source_file_id, chunk_id, extractor,"
        " surface, confidence) VALUES (?, ?, ?, ?, ?, ?)",
        (entity_id, source_id, chunk_id, extractor, ent.name, confidence),
    )
    return entity_id, created


def _names(conn: sqlite3.Connection, subject_id: int, object_id: int) -> tuple[str, str]:
    rows = dict(
        conn.execute(
            "SELECT id, norm_name FROM entities WHERE id IN (?, ?)", (subject_id, object_id)
        ).fetchall()
    )
    return rows.get(subject_id, ""), rows.get(object_id, "")


def _person_decision(
    conn: sqlite3.Connection, subject_id: int, predicate: str, object_id: int
) -> str | None:
    s, o = _names(conn, subject_id, object_id)
    row = conn.execute(
        "SELECT decision FROM triple_reviews WHERE subject = ? AND predicate = ? AND object = ?",
        (s, predicate, o),
    ).fetchone()
    return str(row[0]) if row else None


def known_names(conn: sqlite3.Connection) -> Known:
    """The graph's entities as a gazetteer for the extractors."""
    return Known(
        [
            (name, type_, json.loads(aliases or "[]"))
            for name, type_, aliases in conn.execute(
                "SELECT name, type, aliases FROM entities ORDER BY status = 'candidate', id"
            )
        ]
    )


def extract_document(
    conn: sqlite3.Connection, source_id: int, title: str, chunks: list[Chunk]
) -> StoreReport:
    """Run the structure-aware extractor on a document just imported (its chunks are the last
    document of the source) and store what it finds as candidates."""
    chunk_ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT c.id FROM chunks c WHERE c.document_id = (SELECT MAX(id) FROM documents"
            " WHERE source_file_id = ?) ORDER BY c.ordinal",
            (source_id,),
        )
    ]
    result = extract(chunks, title, known_names(conn))
    return store_extractions(
        conn, source_id, chunk_ids, result.triples, EXTRACTOR, entities=result.entities
    )


def apply_acceptance(conn: sqlite3.Connection, threshold: float) -> dict[str, int]:
    """Accept extracted relations by rule (two extractor families agree, or confidence at the
    threshold); others not decided by a person go back to candidate. Returns status counts.

    Only extractions from documents without curated relations count: when triple files state
    a document's facts (their `source` column), what the extractors add to it waits for a
    person."""
    conn.execute(
        """
        WITH curated(path) AS (  -- documents whose relations are written in triple files
            SELECT DISTINCT evidence_path FROM relations
            WHERE origin = 'declared' AND evidence_path IS NOT NULL
        ), open_extraction(relation_id, extractor, confidence) AS (
            SELECT x.relation_id, x.extractor, x.confidence FROM relation_extractions x
            JOIN source_files sf ON sf.id = x.source_file_id
            WHERE sf.path NOT IN (SELECT path FROM curated)
        )
        UPDATE relations SET
          decided_by = CASE
            WHEN (SELECT COUNT(DISTINCT CASE WHEN extractor LIKE 'llm:%' THEN 'llm'
                                        ELSE extractor END)
                  FROM open_extraction x WHERE x.relation_id = relations.id) >= 2
              THEN 'rule:agree'
            WHEN (SELECT MAX(confidence) FROM open_extraction x
                  WHERE x.relation_id = relations.id) >= ? THEN 'rule:confidence'
            ELSE NULL END
        WHERE origin = 'extracted' AND COALESCE(decided_by, '') != 'person'
        """,
        (threshold,),
    )
    conn.execute(
        "UPDATE relations SET status = CASE WHEN decided_by IS NULL THEN 'candidate'"
        " ELSE 'accepted' END WHERE origin = 'extracted' AND COALESCE(decided_by, '') != 'person'"
    )
    return review_counts(conn)


def review_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = {s: 0 for s in REVIEW_STATUSES}
    for status, n in conn.execute(
        "SELECT status, COUNT(*) FROM relations WHERE origin = 'extracted' GROUP BY status"
    ):
        counts[str(status)] = int(n)
    return counts


def list_candidates(
    conn: sqlite3.Connection,
    status: str = "candidate",
    limit: int = 50,
    offset: int = 0,
    document: str | None = None,
) -> list[dict[str, Any]]:
    """Extracted relations with their best extraction (rule, confidence, evidence, source)."""
    if status not in (*REVIEW_STATUSES, "all"):
        raise TelesynthError(f"unknown status {status!r} (candidate, accepted, rejected, all)")
    where = ["r.origin = 'extracted'"]
    params: list[Any] = []
    if status != "all":
        where.append("r.status = ?")
        params.append(status)
    if document:
        where.append("sf.path LIKE ?")
        params.append(f"%{document}%")
    rows = conn.execute(
        f"""
        SELECT r.id, s.name, s.type, r.predicate, o.name, o.type, r.status, r.confidence,
               r.decided_by, sf.path,
               (SELECT GROUP_CONCAT(DISTINCT extractor) FROM relation_extractions x
                WHERE x.relation_id = r.id),
               (SELECT x.rule || char(31) || x.evidence || char(31) || x.chunk_id
                FROM relation_extractions x WHERE x.relation_id = r.id
                ORDER BY x.confidence DESC LIMIT 1)
        FROM relations r JOIN entities s ON s.id = r.subject_id
        JOIN entities o ON o.id = r.object_id JOIN source_files sf ON sf.id = r.source_file_id
        WHERE {" AND ".join(where)}
        ORDER BY r.confidence DESC, r.id LIMIT ? OFFSET ?
        """,
        [*params, limit, offset],
    ).fetchall()
    out = []
    for r in rows:
        rule, evidence, chunk = (r[11] or "\x1f\x1f").split("\x1f")
        out.append(
            {
                "id": r[0],
                "subject": r[1],
                "subject_type": r[2],
                "predicate": r[3],
                "object": r[4],
                "object_type": r[5],
                "status": r[6],
                "confidence": round(float(r[7] or 0.0), 3),
                "decided_by": r[8],
                "source": r[9],
                "extractors": (r[10] or "").split(","),
                "rule": rule,
                "evidence": evidence,
                "chunk_id": int(chunk) if chunk else None,
            }
        )
    return out


def review_relation(conn: sqlite3.Connection, relation_id: int, decision: str) -> dict[str, Any]:
    """A person accepts or rejects an extracted relation (inside the caller's transaction);
    the decision is remembered by the triple's names and applies after re-imports."""
    if decision not in ("accepted", "rejected"):
        raise TelesynthError(f"unknown decision {decision!r} (accepted or rejected)")
    row = conn.execute(
        "SELECT subject_id, predicate, object_id, origin FROM relations WHERE id = ?",
        (relation_id,),
    ).fetchone()
    if row is None:
        raise TelesynthError(f"no relation {relation_id}")
    if row[3] != "extracted":
        raise TelesynthError(f"relation {relation_id} is declared in a triple file, not extracted")
    conn.execute(
        "UPDATE relations SET status = ?, decided_by = 'person' WHERE id = ?",
        (decision, relation_id),
    )
    s, o = _names(conn, row[0], row[2])
    conn.execute(
        "INSERT INTO triple_reviews(subject, predicate, object, decision, decided_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(subject, predicate, object)"
        " DO UPDATE SET decision = excluded.decision, decided_at = excluded.decided_at",
        (s, row[1], o, decision, now()),
    )
    return {"id": relation_id, "status": decision}


def review(conn: sqlite3.Connection, decisions: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """Apply a person's decisions (relation id, 'accepted' | 'rejected') in one transaction and
    mark the graph as changed; an unknown or declared relation stops it with nothing written."""
    from telesynth_tui import database as db
    from telesynth_tui.infra import transaction

    with transaction(conn):
        done = [review_relation(conn, relation_id, decision) for relation_id, decision in decisions]
        db.bump_revision(conn)
    return done


def remove_documents(conn: sqlite3.Connection, paths: Sequence[str], threshold: float) -> list[str]:
    """Forget imported files (by path) and what only they supported; returns those removed.
    What the other documents still state is accepted by rule again on what remains (an
    agreement that needed a removed document no longer accepts)."""
    from pathlib import Path

    from telesynth_tui import database as db
    from telesynth_tui.graph.store import KnowledgeGraph
    from telesynth_tui.infra import transaction

    kg = KnowledgeGraph(conn)
    removed = []
    with transaction(conn):
        for path in paths:
            key = str(Path(path).expanduser().resolve())
            if kg.remove_source(key):
                removed.append(key)
        if removed:
            apply_acceptance(conn, threshold)
            db.bump_revision(conn)
    return removed
