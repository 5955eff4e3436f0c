"""Writes and reads of the knowledge graph tables (callers own the transactions)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.formulas import FormulaSpec
from telesynth_tui.graph.linking import Gazetteer, find_candidates
from telesynth_tui.infra import now
from telesynth_tui.text import normalize_name

# fmt: off
ENTITY_TYPES = ("Alarm", "KPI", "Counter", "Parameter", "RootCause", "Check", "Action",
                "NetworkElement", "Interface", "Procedure", "Formula", "Concept", "Specification")
# fmt: on

# predicate -> (allowed subject types, allowed object types); None means any type
PREDICATES: dict[str, tuple[frozenset[str] | None, frozenset[str] | None]] = {
    "indicates": (frozenset({"Alarm", "KPI", "Counter"}), frozenset({"RootCause"})),
    "degrades": (frozenset({"RootCause", "Parameter"}), frozenset({"KPI"})),
    "checked_by": (frozenset({"RootCause"}), frozenset({"Check"})),
    "reads": (frozenset({"Check"}), frozenset({"KPI", "Counter", "Parameter", "Alarm"})),
    "resolved_by": (frozenset({"RootCause", "Alarm"}), frozenset({"Action"})),
    "adjusts": (frozenset({"Action"}), frozenset({"Parameter"})),
    "verified_by": (frozenset({"Action"}), frozenset({"KPI", "Counter", "Check"})),
    "measured_by": (frozenset({"KPI"}), frozenset({"Counter"})),
    "raised_by": (frozenset({"Alarm"}), frozenset({"NetworkElement"})),
    "affects": (
        frozenset({"Parameter", "Concept"}),
        frozenset({"KPI", "Procedure", "Concept"}),
    ),
    "triggers": (
        frozenset({"Parameter", "Concept", "Alarm", "Procedure"}),
        frozenset({"Procedure"}),
    ),
    "part_of": (None, frozenset({"NetworkElement", "Procedure", "Concept", "Interface"})),
    "connects": (frozenset({"Interface"}), frozenset({"NetworkElement"})),
    "uses": (
        frozenset({"Procedure", "Action", "Check", "NetworkElement"}),
        frozenset({"Interface", "Parameter", "Concept", "Procedure"}),
    ),
    "defined_in": (None, frozenset({"Specification"})),
    "computes": (frozenset({"Formula"}), frozenset({"KPI", "Concept", "Parameter"})),
    "has_input": (frozenset({"Formula"}), frozenset({"KPI", "Concept", "Parameter"})),
    "is_a": (None, frozenset({"Concept"})),
    "related_to": (None, None),
}


@dataclass
class Counts:
    documents: int = 0
    chunks: int = 0
    mentions: int = 0
    entities: int = 0
    candidates: int = 0
    relations: int = 0
    formulas: int = 0
    extracted: int = 0  # relations extracted from documents (candidates until accepted)

    def add(self, other: Counts) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)


@dataclass
class EntityUpsert:
    entity_id: int
    created: bool
    warning: str | None = None


@dataclass
class KnowledgeGraph:
    """Operations on one connection; writes must run inside `infra.transaction`."""

    conn: sqlite3.Connection
    _gazetteer: Gazetteer | None = field(default=None, repr=False)

    # --- source files ---------------------------------------------------------------------

    def source_hash(self, path: str) -> str | None:
        row = self.conn.execute(
            "SELECT content_hash FROM source_files WHERE path = ?", (path,)
        ).fetchone()
        return row[0] if row else None

    def replace_source(self, path: str, kind: str, content_hash: str, size: int) -> int:
        """Register a (changed) source file, removing everything derived from its old version."""
        row = self.conn.execute("SELECT id FROM source_files WHERE path = ?", (path,)).fetchone()
        if row:
            self.delete_derived(row[0])
            self.conn.execute(
                "UPDATE source_files SET content_hash=?, kind=?, size=?, imported_at=? WHERE id=?",
                (content_hash, kind, size, now(), row[0]),
            )
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO source_files(path, content_hash, kind, size, imported_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (path, content_hash, kind, size, now()),
        )
        return int(cur.lastrowid or 0)

    def delete_derived(self, source_id: int) -> None:
        c = self.conn
        remove_source_extractions(c, source_id)
        rel = "SELECT id FROM relations WHERE source_file_id = ?"
        c.execute(f"DELETE FROM relation_evidence WHERE relation_id IN ({rel})", (source_id,))
        c.execute("DELETE FROM relations WHERE source_file_id = ?", (source_id,))
        c.execute("DELETE FROM formulas WHERE source_file_id = ?", (source_id,))
        c.execute("DELETE FROM entity_sources WHERE source_file_id = ?", (source_id,))
        chunk_ids = (
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE d.source_file_id = ?"
        )
        c.execute(f"DELETE FROM relation_evidence WHERE chunk_id IN ({chunk_ids})", (source_id,))
        c.execute(f"DELETE FROM mentions WHERE chunk_id IN ({chunk_ids})", (source_id,))
        c.execute(
            f"DELETE FROM embeddings WHERE owner_kind = 'chunk' AND owner_id IN ({chunk_ids})",
            (source_id,),
        )
        c.execute(
            "DELETE FROM chunks WHERE document_id IN"
            " (SELECT id FROM documents WHERE source_file_id = ?)",
            (source_id,),
        )
        c.execute("DELETE FROM documents WHERE source_file_id = ?", (source_id,))
        self.delete_orphan_entities()

    def remove_source(self, path: str) -> bool:
        """Forget an imported file and everything only it supported; False if unknown."""
        row = self.conn.execute("SELECT id FROM source_files WHERE path = ?", (path,)).fetchone()
        if row is None:
            return False
        self.delete_derived(int(row[0]))
        self.conn.execute("DELETE FROM source_files WHERE id = ?", (row[0],))
        return True

    def delete_orphan_entities(self) -> None:
        unused = (
            "NOT EXISTS (SELECT 1 FROM entity_sources s WHERE s.entity_id = e.id)"
            " AND NOT EXISTS (SELECT 1 FROM relations r WHERE r.subject_id = e.id"
            " OR r.object_id = e.id)"
            " AND NOT EXISTS (SELECT 1 FROM formulas f WHERE f.entity_id = e.id)"
            " AND NOT EXISTS (SELECT 1 FROM entity_extractions x WHERE x.entity_id = e.id)"
        )
        orphans = (
            f"SELECT id FROM entities e WHERE {unused} AND (status = 'curated'"
            " OR NOT EXISTS (SELECT 1 FROM mentions m WHERE m.entity_id = e.id))"
        )
        ids = [r[0] for r in self.conn.execute(orphans)]
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        self.conn.execute(f"DELETE FROM mentions WHERE entity_id IN ({marks})", ids)
        self.conn.execute(
            f"DELETE FROM embeddings WHERE owner_kind = 'entity' AND owner_id IN ({marks})", ids
        )
        self.conn.execute(f"DELETE FROM entities WHERE id IN ({marks})", ids)
        self._gazetteer = None

    # --- entities -------------------------------------------------------------------------

    def gazetteer(self) -> Gazetteer:
        if self._gazetteer is None:
            gaz = Gazetteer()
            # curated entities first so their names win over candidates with the same alias
            rows = self.conn.execute(
                "SELECT id, name, aliases FROM entities ORDER BY status = 'candidate', id"
            )
            for entity_id, name, aliases in rows:
                gaz.add(entity_id, [name, *json.loads(aliases or "[]")])
            self._gazetteer = gaz
        return self._gazetteer

    def resolve(self, name: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM entities WHERE norm_name = ?", (normalize_name(name),)
        ).fetchone()
        return int(row[0]) if row else self.gazetteer().lookup(name)

    def upsert_entity(
        self,
        name: str,
        type_: str,
        aliases: Sequence[str] = (),
        description: str = "",
        source_id: int | None = None,
        status: str = "curated",
        technology: str = "",
    ) -> EntityUpsert:
        norm = normalize_name(name)
        row = self.conn.execute(
            "SELECT id, type, aliases, description, status, technology FROM entities"
            " WHERE norm_name = ?",
            (norm,),
        ).fetchone()
        warning = None
        if row is None:
            cur = self.conn.execute(
                "INSERT INTO entities(name, norm_name, type, aliases, description, status,"
                " created_at, technology) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    norm,
                    type_,
                    json.dumps(list(dict.fromkeys(aliases))),
                    description,
                    status,
                    now(),
                    technology,
                ),
            )
            entity_id, created = int(cur.lastrowid or 0), True
        else:
            if technology and row["technology"] != technology:
                if row["technology"] and row["status"] == "curated":
                    warning = f"entity {name!r} is already {row['technology']}, not {technology}"
                else:
                    self.conn.execute(
                        "UPDATE entities SET technology = ? WHERE id = ?", (technology, row["id"])
                    )
            entity_id, created = int(row["id"]), False
            merged = list(dict.fromkeys([*json.loads(row["aliases"] or "[]"), *aliases]))
            if row["status"] == "candidate" and status == "curated":
                self.conn.execute(
                    "UPDATE entities SET name=?, type=?, aliases=?, description=?,"
                    " status='curated' WHERE id=?",
                    (name, type_, json.dumps(merged), description, entity_id),
                )
            else:
                if row["type"] != type_ and status == "curated":
                    warning = f"entity {name!r} is already a {row['type']}, not a {type_}"
                self.conn.execute(
                    "UPDATE entities SET aliases=?, description=COALESCE(NULLIF(description,''),?)"
                    " WHERE id=?",
                    (json.dumps(merged), description, entity_id),
                )
        if source_id is not None:
            self.conn.execute(
                "INSERT OR IGNORE INTO entity_sources(entity_id, source_file_id) VALUES (?, ?)",
                (entity_id, source_id),
            )
        self._gazetteer = None
        return EntityUpsert(entity_id, created, warning)

    # --- documents ------------------------------------------------------------------------

    def add_document(
        self,
        source_id: int,
        title: str,
        kind: str,
        chunks: Sequence[Chunk],
        candidates: bool = True,
    ) -> Counts:
        counts = Counts(documents=1)
        cur = self.conn.execute(
            "INSERT INTO documents(source_file_id, title, kind) VALUES (?, ?, ?)",
            (source_id, title, kind),
        )
        doc_id = cur.lastrowid
        gaz = self.gazetteer()
        for ordinal, chunk in enumerate(chunks):
            cur = self.conn.execute(
                "INSERT INTO chunks(document_id, ordinal, heading, text, n_tokens)"
                " VALUES (?, ?, ?, ?, ?)",
                (doc_id, ordinal, chunk.heading, chunk.text, chunk.n_tokens),
            )
            chunk_id = int(cur.lastrowid or 0)
            counts.chunks += 1
            if candidates:
                for cand in find_candidates(chunk.text):
                    if gaz.lookup(cand.name) is None and not any(
                        gaz.lookup(a) for a in cand.aliases
                    ):
                        self.upsert_entity(cand.name, cand.type, cand.aliases, status="candidate")
                        counts.candidates += 1
                        gaz = self.gazetteer()
            mentions = gaz.find(chunk.text)
            self.conn.executemany(
                "INSERT OR IGNORE INTO mentions(chunk_id, entity_id, surface, start)"
                " VALUES (?, ?, ?, ?)",
                [(chunk_id, m.entity_id, m.surface, m.start) for m in mentions],
            )
            counts.mentions += len(mentions)
        return counts

    def link_new_entities(self, entity_ids: Iterable[int]) -> int:
        """Find mentions of entities added after the chunks that name them (FTS phrase search)."""
        added = 0
        for entity_id in entity_ids:
            name, aliases = self.conn.execute(
                "SELECT name, aliases FROM entities WHERE id = ?", (entity_id,)
            ).fetchone()
            gaz = Gazetteer()
            names = [name, *json.loads(aliases or "[]")]
            gaz.add(entity_id, names)
            for surface in names:
                phrase = " ".join(normalize_name(surface).split())
                if not phrase:
                    continue
                rows = self.conn.execute(
                    "SELECT rowid, text FROM chunks_fts WHERE chunks_fts MATCH ?",
                    ('"' + phrase.replace('"', "") + '"',),
                ).fetchall()
                for chunk_id, text in rows:
                    for m in gaz.find(text):
                        cur = self.conn.execute(
                            "INSERT OR IGNORE INTO mentions(chunk_id, entity_id, surface, start)"
                            " VALUES (?, ?, ?, ?)",
                            (chunk_id, m.entity_id, m.surface, m.start),
                        )
                        added += cur.rowcount
        return added

    # --- relations ------------------------------------------------------------------------

    def add_relation(
        self,
        subject_id: int,
        predicate: str,
        object_id: int,
        source_id: int,
        line: int | None,
        evidence_path: str | None,
    ) -> int | None:
        """Insert a relation (None if it exists); call `link_evidence` for the new ids after."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO relations(subject_id, predicate, object_id, source_file_id,"
            " line, evidence_path) VALUES (?, ?, ?, ?, ?, ?)",
            (subject_id, predicate, object_id, source_id, line, evidence_path),
        )
        if cur.rowcount:
            return int(cur.lastrowid or 0)
        # the same triple extracted from a document becomes a declared (accepted) relation
        cur = self.conn.execute(
            "UPDATE relations SET origin = 'declared', status = 'accepted', decided_by = NULL,"
            " source_file_id = ?, line = ?, evidence_path = ? WHERE subject_id = ?"
            " AND predicate = ? AND object_id = ? AND origin = 'extracted' RETURNING id",
            (source_id, line, evidence_path, subject_id, predicate, object_id),
        )
        row = cur.fetchone()
        return int(row[0]) if row else None

    def link_evidence(self, relation_ids: Sequence[int] | None = None) -> None:
        """Evidence of a relation: chunks of its source document mentioning subject or object.

        Without a source document, chunks that mention both subject and object."""
        if relation_ids is None:
            self._link_evidence("", [])
            return
        for start in range(0, len(relation_ids), 5000):  # stay under SQLite's variable limit
            batch = list(relation_ids[start : start + 5000])
            self._link_evidence(f"WHERE r.id IN ({','.join('?' * len(batch))})", batch)

    def _link_evidence(self, where: str, params: list[int]) -> None:
        self.conn.execute(
            "DELETE FROM relation_evidence WHERE relation_id IN"
            f" (SELECT r.id FROM relations r {where})",
            params,
        )
        self.conn.execute(
            f"""
            INSERT OR IGNORE INTO relation_evidence(relation_id, chunk_id)
            SELECT r.id, m.chunk_id FROM relations r
            JOIN source_files sf ON sf.path = r.evidence_path
            JOIN documents d ON d.source_file_id = sf.id
            JOIN chunks c ON c.document_id = d.id
            JOIN mentions m ON m.chunk_id = c.id
                AND (m.entity_id = r.subject_id OR m.entity_id = r.object_id)
            {where}
            """,
            params,
        )
        self.conn.execute(
            f"""
            INSERT OR IGNORE INTO relation_evidence(relation_id, chunk_id)
            SELECT r.id, ms.chunk_id FROM relations r
            JOIN mentions ms ON ms.entity_id = r.subject_id
            JOIN mentions mo ON mo.entity_id = r.object_id AND mo.chunk_id = ms.chunk_id
            {where} {"AND" if where else "WHERE"} r.evidence_path IS NULL
            """,
            params,
        )
        self.conn.execute(  # the chunks an extractor read the relation from
            f"""
            INSERT OR IGNORE INTO relation_evidence(relation_id, chunk_id)
            SELECT r.id, x.chunk_id FROM relations r
            JOIN relation_extractions x ON x.relation_id = r.id
            {where} {"AND" if where else "WHERE"} r.origin = 'extracted'
            """,
            params,
        )

    def relink_document(self, source_id: int, path: str) -> None:
        """After a document is (re)imported, inside its transaction: recompute the evidence of
        the relations that cite it, and of uncited relations whose subject and object it names."""
        ids = [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM relations WHERE evidence_path = ?"
                " UNION SELECT r.id FROM relations r"
                " JOIN mentions ms ON ms.entity_id = r.subject_id"
                " JOIN mentions mo ON mo.entity_id = r.object_id AND mo.chunk_id = ms.chunk_id"
                " JOIN chunks c ON c.id = ms.chunk_id"
                " JOIN documents d ON d.id = c.document_id"
                " WHERE d.source_file_id = ? AND r.evidence_path IS NULL",
                (path, source_id),
            )
        ]
        self.link_evidence(ids)

    def missing_evidence(self) -> int:
        """Relations with no evidence although their documents name their subject or object
        (what an interrupted import can leave behind; `repair` restores it)."""
        sql = """
            SELECT COUNT(*) FROM relations r
            WHERE NOT EXISTS (SELECT 1 FROM relation_evidence e WHERE e.relation_id = r.id)
            AND (
                (r.evidence_path IS NOT NULL AND EXISTS (
                    SELECT 1 FROM source_files sf
                    JOIN documents d ON d.source_file_id = sf.id
                    JOIN chunks c ON c.document_id = d.id
                    JOIN mentions m ON m.chunk_id = c.id
                    WHERE sf.path = r.evidence_path
                    AND (m.entity_id = r.subject_id OR m.entity_id = r.object_id)))
                OR (r.evidence_path IS NULL AND EXISTS (
                    SELECT 1 FROM mentions ms JOIN mentions mo ON mo.chunk_id = ms.chunk_id
                    WHERE ms.entity_id = r.subject_id AND mo.entity_id = r.object_id))
            )
        """
        return int(self.conn.execute(sql).fetchone()[0])

    # --- formulas -------------------------------------------------------------------------

    def add_formula(self, spec: FormulaSpec, source_id: int, entity_id: int | None) -> bool:
        record = spec.to_record()
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO formulas(slug, name, description, expression, variables,"
            " output_symbol, output_unit, example, reference, entity_id, source_file_id,"
            " conditions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["slug"],
                record["name"],
                record["description"],
                record["expression"],
                json.dumps(record["variables"]),
                record["output_symbol"],
                record["output_unit"],
                json.dumps(record["example"]),
                record["reference"],
                entity_id,
                source_id,
                json.dumps(record["conditions"]),
            ),
        )
        return cur.rowcount == 1


def remove_source_extractions(conn: sqlite3.Connection, source_id: int) -> None:
    """Before a source's derived data goes: drop its extractions; relations that only it
    supported go too, the others move to a source that still states them."""
    conn.execute("DELETE FROM relation_extractions WHERE source_file_id = ?", (source_id,))
    conn.execute("DELETE FROM entity_extractions WHERE source_file_id = ?", (source_id,))
    touched = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM relations WHERE source_file_id = ?"
            " AND (origin = 'extracted' OR EXISTS (SELECT 1 FROM relation_extractions x"
            " WHERE x.relation_id = relations.id))",
            (source_id,),
        )
    ]
    for relation_id in touched:
        other = conn.execute(
            "SELECT x.source_file_id, sf.path FROM relation_extractions x JOIN source_files sf"
            " ON sf.id = x.source_file_id WHERE x.relation_id = ? ORDER BY x.id LIMIT 1",
            (relation_id,),
        ).fetchone()
        if other is None:
            conn.execute("DELETE FROM relation_evidence WHERE relation_id = ?", (relation_id,))
            conn.execute("DELETE FROM relations WHERE id = ?", (relation_id,))
            continue
        # still stated elsewhere: a declared relation whose file goes becomes an extracted one
        conn.execute(
            "UPDATE relations SET source_file_id = ?, evidence_path = ?, line = NULL,"
            " origin = 'extracted', status = CASE WHEN origin = 'declared' THEN 'candidate'"
            " ELSE status END, confidence = (SELECT MAX(confidence) FROM relation_extractions"
            " WHERE relation_id = ?) WHERE id = ?",
            (other[0], other[1], relation_id, relation_id),
        )
