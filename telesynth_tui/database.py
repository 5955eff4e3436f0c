"""The project database: one SQLite file, WAL mode, schema versioned by ordered migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from telesynth_tui.errors import TelesynthError

if TYPE_CHECKING:  # imported when a migration runs: sqlite-utils loads pandas when it can
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]


_M001_SQL = """
CREATE TABLE source_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER,
    imported_at TEXT
);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_file_id INTEGER NOT NULL REFERENCES source_files(id),
    title TEXT,
    kind TEXT
);
CREATE INDEX idx_documents_source ON documents(source_file_id);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    heading TEXT,
    text TEXT NOT NULL,
    n_tokens INTEGER NOT NULL,
    UNIQUE (document_id, ordinal)
);
CREATE TABLE entities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    norm_name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]',
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'curated',  -- curated (declared) or candidate (spotted in text)
    created_at TEXT
);
CREATE INDEX idx_entities_type ON entities(type);
CREATE TABLE entity_sources (  -- which files declare an entity (several may)
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    source_file_id INTEGER NOT NULL REFERENCES source_files(id),
    PRIMARY KEY (entity_id, source_file_id)
);
CREATE TABLE mentions (
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    surface TEXT NOT NULL,
    start INTEGER NOT NULL,
    PRIMARY KEY (chunk_id, entity_id, start)
);
CREATE INDEX idx_mentions_entity ON mentions(entity_id);
CREATE TABLE relations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id INTEGER NOT NULL REFERENCES entities(id),
    predicate TEXT NOT NULL,
    object_id INTEGER NOT NULL REFERENCES entities(id),
    source_file_id INTEGER NOT NULL REFERENCES source_files(id),
    line INTEGER,
    evidence_path TEXT,  -- the document that states the fact
    UNIQUE (subject_id, predicate, object_id)
);
CREATE INDEX idx_relations_object ON relations(object_id);
CREATE INDEX idx_relations_source ON relations(source_file_id);
CREATE TABLE relation_evidence (
    relation_id INTEGER NOT NULL REFERENCES relations(id),
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    PRIMARY KEY (relation_id, chunk_id)
);
CREATE INDEX idx_relation_evidence_chunk ON relation_evidence(chunk_id);
CREATE TABLE formulas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    expression TEXT NOT NULL,
    variables TEXT NOT NULL,  -- JSON: symbol, unit, min, max, description, integer
    output_symbol TEXT,
    output_unit TEXT,
    example TEXT,             -- JSON: inputs, output, tolerance
    reference TEXT,
    entity_id INTEGER REFERENCES entities(id),
    source_file_id INTEGER NOT NULL REFERENCES source_files(id)
);
CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_kind TEXT NOT NULL,  -- chunk or entity
    owner_id INTEGER NOT NULL,
    model_id TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,      -- float32, L2-normalised
    UNIQUE (owner_kind, owner_id, model_id)
);
CREATE INDEX idx_embeddings_model ON embeddings(model_id);
"""


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    """Statements one by one, inside the migration's transaction (no executescript COMMIT)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_knowledge_graph(db: sqlite_utils.Database) -> None:
    # Ids are AUTOINCREMENT: a deleted chunk's id is never given to new text, so provenance
    # stored elsewhere can never point at the wrong content.
    _run_script(db, _M001_SQL)


def _m002_chunk_search(db: sqlite_utils.Database) -> None:
    db.table("chunks").enable_fts(
        ["heading", "text"], fts_version="FTS5", create_triggers=True, tokenize="porter"
    )
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.execute("INSERT INTO meta(key, value) VALUES ('kg_revision', '0')")


_M003_SQL = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,        -- running | finished | failed
    config TEXT NOT NULL,        -- JSON: n, types, mix, models, seed, thresholds
    summary TEXT                 -- JSON, written when the run ends
);
CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    ordinal INTEGER NOT NULL,
    type TEXT NOT NULL,          -- factual | multi_hop | troubleshooting | maths | definition
    payload TEXT NOT NULL,       -- JSON: entities, relation path, formula inputs and truth
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | done
    UNIQUE (run_id, ordinal)
);
CREATE TABLE samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    plan_id INTEGER NOT NULL REFERENCES plans(id),
    type TEXT NOT NULL,
    question TEXT,
    answer TEXT,
    steps TEXT,                  -- JSON list
    context TEXT NOT NULL,       -- JSON list of context items (kind, id, text, provenance)
    cited TEXT,                  -- JSON list of context keys
    provenance TEXT NOT NULL,    -- JSON: plan, entity ids, relation ids, formula, chunk ids
    generator TEXT NOT NULL,
    raw_text TEXT,               -- what the model wrote, kept for rejections
    status TEXT NOT NULL,        -- accepted | rejected
    reason TEXT,                 -- why it was rejected (filter and detail)
    scores TEXT,                 -- JSON: every score
    quality REAL,
    review TEXT,                 -- accepted | rejected | edited (a person's decision)
    created_at TEXT NOT NULL
);
CREATE INDEX idx_samples_run ON samples(run_id, status);
CREATE TABLE model_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id),
    plan_id INTEGER REFERENCES plans(id),
    stage TEXT NOT NULL,         -- generate | refine | filter | score
    model TEXT NOT NULL,
    metrics TEXT NOT NULL        -- JSON CallMetrics
);
CREATE INDEX idx_model_calls_run ON model_calls(run_id);
"""


def _m003_runs(db: sqlite_utils.Database) -> None:
    _run_script(db, _M003_SQL)


_M004_SQL = """
CREATE TABLE eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    student TEXT NOT NULL,
    set_path TEXT NOT NULL,
    format TEXT NOT NULL,
    mode TEXT NOT NULL,          -- closed | open
    summary TEXT NOT NULL        -- JSON: accuracy, metrics, latency, tokens/s, J/token + source
);
CREATE TABLE eval_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    eval_run_id INTEGER NOT NULL REFERENCES eval_runs(id),
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    prompt TEXT NOT NULL,
    output TEXT NOT NULL,
    correct INTEGER,             -- 1 / 0, NULL when not graded (free-form)
    scores TEXT NOT NULL,        -- JSON
    metrics TEXT NOT NULL        -- JSON CallMetrics of the student's answer
);
CREATE INDEX idx_eval_items_run ON eval_items(eval_run_id);
"""


def _m004_evaluations(db: sqlite_utils.Database) -> None:
    _run_script(db, _M004_SQL)


_M005_SQL = """
CREATE TABLE dta_runs (          -- a DTA run is a run whose samples are teacher candidates
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    student TEXT NOT NULL,
    config TEXT NOT NULL,        -- JSON: teachers, rewriter, judge, thresholds
    profile TEXT NOT NULL,       -- JSON: the student's style profile
    probes TEXT NOT NULL         -- JSON: probe questions and the student's answers
);
"""


def _m005_dta(db: sqlite_utils.Database) -> None:
    _run_script(db, _M005_SQL)


def _m_formula_conditions_and_technology(db: sqlite_utils.Database) -> None:
    # a formula's validity conditions across its inputs (JSON list of expressions), and the
    # radio technology an entity belongs to: 'LTE', 'NR', 'both' or '' (not radio-specific)
    db.execute("ALTER TABLE formulas ADD COLUMN conditions TEXT NOT NULL DEFAULT '[]'")
    db.execute("ALTER TABLE entities ADD COLUMN technology TEXT NOT NULL DEFAULT ''")


_RUN_LEASES_SQL = """
CREATE TABLE run_leases (        -- the one process writing a run's samples
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    owner TEXT NOT NULL,         -- host:pid:process start time
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    heartbeat REAL NOT NULL      -- unix time of the last stored plan
)
"""
# A plan's samples are stored once: never after its done mark (one statement, so not split).
_SAMPLES_ONCE_SQL = """
CREATE TRIGGER samples_once_per_plan BEFORE INSERT ON samples
WHEN (SELECT status FROM plans WHERE id = NEW.plan_id) = 'done'
BEGIN
    SELECT RAISE(ABORT, 'plan already stored');
END
"""


def _m_run_leases(db: sqlite_utils.Database) -> None:
    _run_script(db, _RUN_LEASES_SQL)
    db.execute(_SAMPLES_ONCE_SQL)


_M_EXTRACTION_SQL = """
ALTER TABLE relations ADD COLUMN status TEXT NOT NULL DEFAULT 'accepted';  -- | candidate | rejected
ALTER TABLE relations ADD COLUMN origin TEXT NOT NULL DEFAULT 'declared';  -- | extracted
ALTER TABLE relations ADD COLUMN confidence REAL;  -- best extraction confidence
ALTER TABLE relations ADD COLUMN decided_by TEXT;  -- rule:agree | rule:confidence | person
CREATE INDEX idx_relations_status ON relations(status);
CREATE TABLE relation_extractions (  -- every extractor and chunk that stated a relation
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    relation_id INTEGER NOT NULL REFERENCES relations(id),
    source_file_id INTEGER NOT NULL REFERENCES source_files(id),
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    extractor TEXT NOT NULL,     -- structure | llm:<model name>
    rule TEXT NOT NULL,          -- the rule (structure) or 'schema' (llm)
    confidence REAL NOT NULL,
    evidence TEXT NOT NULL,      -- the span of the chunk that states it
    UNIQUE (relation_id, chunk_id, extractor, rule)
);
CREATE INDEX idx_relation_extractions_relation ON relation_extractions(relation_id);
CREATE INDEX idx_relation_extractions_source ON relation_extractions(source_file_id);
CREATE TABLE entity_extractions (  -- every chunk an extracted entity (or its alias) came from
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    source_file_id INTEGER NOT NULL REFERENCES source_files(id),
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    extractor TEXT NOT NULL,
    surface TEXT NOT NULL,
    confidence REAL NOT NULL,
    PRIMARY KEY (entity_id, chunk_id, extractor, surface)
);
CREATE INDEX idx_entity_extractions_source ON entity_extractions(source_file_id);
CREATE TABLE triple_reviews (  -- a person's decision on a triple, kept across re-imports
    subject TEXT NOT NULL,       -- normalised names
    predicate TEXT NOT NULL,
    object TEXT NOT NULL,
    decision TEXT NOT NULL,      -- accepted | rejected
    decided_at TEXT NOT NULL,
    PRIMARY KEY (subject, predicate, object)
)
"""


def _m_relation_extraction(db: sqlite_utils.Database) -> None:
    """Relations extracted from documents enter as candidates with their sources and
    confidence; declared (triple-file) relations stay accepted."""
    _run_script(db, _M_EXTRACTION_SQL)


MIGRATIONS: list[Migration] = [
    _m001_knowledge_graph,
    _m002_chunk_search,
    _m003_runs,
    _m004_evaluations,
    _m005_dta,
    _m_formula_conditions_and_technology,
    _m_run_leases,
    _m_relation_extraction,
]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open a connection in autocommit mode; transactions are explicit. A connection is used by
    one thread at a time: a run's plan threads take turns (`pipeline.parallel.Turn`)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the pending migrations in order, each in its own transaction; returns the version."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise TelesynthError(
            f"database schema v{current} is newer than this telesynth (v{SCHEMA_VERSION})"
        )
    if current >= target:
        return current
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version - 1](db)
            conn.execute(f"PRAGMA user_version={version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return schema_version(conn)


def bump_revision(conn: sqlite3.Connection) -> None:
    """Mark the graph as changed (caches keyed on the revision rebuild)."""
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'kg_revision'")


def kg_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'kg_revision'").fetchone()
    return int(row[0]) if row else 0
