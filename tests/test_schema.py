from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from telesynth_tui import database as db
from telesynth_tui.errors import TelesynthError
from telesynth_tui.infra import transaction


def test_migrations_create_versioned_schema_in_wal_mode(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "t.db")
    assert db.migrate(conn) == db.SCHEMA_VERSION == len(db.MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    expected = {
        "source_files",
        "documents",
        "chunks",
        "chunks_fts",
        "entities",
        "entity_sources",
        "mentions",
        "relations",
        "relation_evidence",
        "formulas",
        "embeddings",
        "meta",
    }
    assert expected <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.migrate(conn) == db.SCHEMA_VERSION  # idempotent


def test_upgrade_from_first_version_keeps_data_and_indexes_old_chunks(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = db.connect(path)
    db.migrate(conn, target=1)
    assert db.schema_version(conn) == 1
    conn.execute(
        "INSERT INTO source_files(path, content_hash, kind) VALUES ('/a.md', 'h', 'document')"
    )
    conn.execute("INSERT INTO documents(source_file_id, title, kind) VALUES (1, 'A', 'markdown')")
    conn.execute(
        "INSERT INTO chunks(document_id, ordinal, heading, text, n_tokens)"
        " VALUES (1, 0, 'A', 'uplink interference raises RSSI', 4)"
    )
    conn.close()
    conn = db.connect(path)
    assert db.migrate(conn) == db.SCHEMA_VERSION
    assert conn.execute("SELECT title FROM documents").fetchone()[0] == "A"
    hits = conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'interference'")
    assert [r[0] for r in hits] == [1]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "t.db")
    db.migrate(conn)
    conn.execute(f"PRAGMA user_version={db.SCHEMA_VERSION + 5}")
    with pytest.raises(TelesynthError, match="newer"):
        db.migrate(conn)


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(database: object) -> None:
        conn.execute("CREATE TABLE half_done(x)")
        raise sqlite3.OperationalError("boom")

    conn = db.connect(tmp_path / "t.db")
    db.migrate(conn, target=1)
    monkeypatch.setattr(db, "MIGRATIONS", [db.MIGRATIONS[0], broken])
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(conn, target=2)
    assert db.schema_version(conn) == 1
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in names


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "t.db")
    db.migrate(conn)
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO meta(key, value) VALUES ('x', '1')")
        raise RuntimeError("crash mid-write")
    assert conn.execute("SELECT COUNT(*) FROM meta WHERE key='x'").fetchone()[0] == 0


def test_settings_layers_defaults_toml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telesynth_tui.config import load_settings

    (tmp_path / "telesynth.toml").write_text(
        "[ingest]\nchunk_tokens = 200\n[retrieval]\ntop_k = 4\n"
    )
    monkeypatch.setenv("TELESYNTH_RETRIEVAL__TOP_K", "6")
    settings = load_settings(tmp_path)
    assert settings.ingest.chunk_tokens == 200
    assert settings.retrieval.top_k == 6
    assert settings.retrieval.budget_tokens == 1200
    (tmp_path / "telesynth.toml").write_text("[ingest]\nchunk_tokens = 'many'\n")
    with pytest.raises(TelesynthError, match=r"invalid setting ingest\.chunk_tokens"):
        load_settings(tmp_path)
