"""The project database: one SQLite file, WAL mode, schema versioned by ordered migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from telesynth_tui.errors import TelesynthError

Migration = Callable[[sqlite_utils.Database], None]


def _m001_knowledge_graph(db: sqlite_utils.Database) -> None:
    db["source_files"].create(
        {"id": int, "path": str, "content_hash": str, "kind": str, "size": int,
         "imported_at": str},
        pk="id", not_null={"path", "content_hash", "kind"},
    )  # fmt: skip
    db["source_files"].create_index(["path"], unique=True)
    db["documents"].create(
        {"id": int, "source_file_id": int, "title": str, "kind": str},
        pk="id", foreign_keys=[("source_file_id", "source_files", "id")],
    )  # fmt: skip
    db["chunks"].create(
        {"id": int, "document_id": int, "ordinal": int, "heading": str, "text": str,
         "n_tokens": int},
        pk="id", foreign_keys=[("document_id", "documents", "id")],
    )  # fmt: skip
    db["chunks"].create_index(["document_id", "ordinal"], unique=True)
    db["entities"].create(
        {"id": int, "name": str, "norm_name": str, "type": str, "aliases": str,
         "description": str, "status": str, "created_at": str},
        pk="id", not_null={"name", "norm_name", "type"}, defaults={"status": "curated"},
    )  # fmt: skip
    db["entities"].create_index(["norm_name"], unique=True)
    db["entities"].create_index(["type"])
    # which source files declare an entity (an entity may be declared by several files)
    db["entity_sources"].create(
        {"entity_id": int, "source_file_id": int},
        pk=("entity_id", "source_file_id"),
        foreign_keys=[("entity_id", "entities", "id"), ("source_file_id", "source_files", "id")],
    )
    db["mentions"].create(
        {"chunk_id": int, "entity_id": int, "surface": str, "start": int},
        pk=("chunk_id", "entity_id", "start"),
        foreign_keys=[("chunk_id", "chunks", "id"), ("entity_id", "entities", "id")],
    )
    db["mentions"].create_index(["entity_id"])
    db["relations"].create(
        {"id": int, "subject_id": int, "predicate": str, "object_id": int,
         "source_file_id": int, "line": int, "evidence_path": str},
        pk="id",
        foreign_keys=[("subject_id", "entities", "id"), ("object_id", "entities", "id"),
                      ("source_file_id", "source_files", "id")],
    )  # fmt: skip
    db["relations"].create_index(["subject_id", "predicate", "object_id"], unique=True)
    db["relations"].create_index(["object_id"])
    db["relations"].create_index(["source_file_id"])
    db["relation_evidence"].create(
        {"relation_id": int, "chunk_id": int},
        pk=("relation_id", "chunk_id"),
        foreign_keys=[("relation_id", "relations", "id"), ("chunk_id", "chunks", "id")],
    )
    db["relation_evidence"].create_index(["chunk_id"])
    db["formulas"].create(
        {"id": int, "slug": str, "name": str, "description": str, "expression": str,
         "variables": str, "output_symbol": str, "output_unit": str, "example": str,
         "reference": str, "entity_id": int, "source_file_id": int},
        pk="id",
        foreign_keys=[("entity_id", "entities", "id"), ("source_file_id", "source_files", "id")],
    )  # fmt: skip
    db["formulas"].create_index(["slug"], unique=True)
    db["embeddings"].create(
        {"id": int, "owner_kind": str, "owner_id": int, "model_id": str, "dim": int,
         "vector": bytes},
        pk="id",
    )  # fmt: skip
    db["embeddings"].create_index(["owner_kind", "owner_id", "model_id"], unique=True)
    db["embeddings"].create_index(["model_id"])


def _m002_chunk_search(db: sqlite_utils.Database) -> None:
    db["chunks"].enable_fts(
        ["heading", "text"], fts_version="FTS5", create_triggers=True, tokenize="porter"
    )
    db["meta"].create({"key": str, "value": str}, pk="key")
    db.execute("INSERT INTO meta(key, value) VALUES ('kg_revision', '0')")


MIGRATIONS: list[Migration] = [_m001_knowledge_graph, _m002_chunk_search]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open a connection (one per thread) in autocommit mode; transactions are explicit."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=True)
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


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All or nothing: BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def bump_revision(conn: sqlite3.Connection) -> None:
    """Mark the graph as changed (caches keyed on the revision rebuild)."""
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'kg_revision'")


def kg_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'kg_revision'").fetchone()
    return int(row[0]) if row else 0
