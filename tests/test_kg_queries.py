"""Search and browsing helpers of graph/queries.py: entity search by name and alias, passages by
FTS5 with user text that is never FTS syntax, evidence passages, relation groups and paths."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.queries import (
    entity_details,
    entity_evidence,
    evidence_chunks,
    find_entities,
    path_between,
    relation_groups,
    search_chunks,
)
from telesynth_tui.graph.store import KnowledgeGraph
from telesynth_tui.project import Project

from .test_import import write_small_kg


@pytest.fixture
def conn(project: Project, tmp_path: Path) -> sqlite3.Connection:
    connection = project.connect()
    import_paths(connection, [write_small_kg(tmp_path / "kg")], project.settings.ingest)
    return connection


def test_find_entities_ranks_exact_alias_and_word_matches_first(conn: sqlite3.Connection) -> None:
    found = find_entities(conn, "rssi")
    assert [e["name"] for e in found] == [
        "Received Signal Strength Indicator",  # exact alias
        "High RSSI alarm",  # a word of the name
        "pmUlRssiAvg",  # inside a name
    ]
    assert found[0]["matched_alias"] == "RSSI" and found[0]["type"] == "KPI"
    assert found[1]["matched_alias"] is None
    assert [e["name"] for e in find_entities(conn, "p0NominalPUSCH")] == ["pZeroNominalPusch"]
    assert find_entities(conn, "pusch")[0]["status"] == "candidate"
    assert len(find_entities(conn, "u", limit=2)) == 2
    assert find_entities(conn, "  --  ") == [] and find_entities(conn, "nothing like it") == []


def test_search_chunks_by_fts_with_any_user_text(conn: sqlite3.Connection) -> None:
    found = search_chunks(conn, "spectrum scan")
    assert [c["heading"] for c in found] == ["Uplink interference > Actions"]
    assert found[0]["document"] == "Uplink interference" and "spectrum scan" in found[0]["text"]
    assert found[0]["source"].endswith("ul.md")
    # every word is required first; with no chunk holding all, any word will do (porter stems)
    assert {c["heading"] for c in search_chunks(conn, "interferer zebra")} == {
        "Uplink interference > Symptoms",
        "Uplink interference > Actions",
    }
    # FTS syntax in the user's text is only words
    for text in ('"', "NEAR(a b)", "rssi OR", "*", "a:b", "(", "-"):
        search_chunks(conn, text)
    assert search_chunks(conn, "") == []


def test_evidence_chunks_keep_order_and_skip_unknown_ids(conn: sqlite3.Connection) -> None:
    ids = [r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id DESC")]
    found = evidence_chunks(conn, [*ids, 9999, ids[0]])
    assert [c["id"] for c in found] == ids
    assert evidence_chunks(conn, []) == []


def test_relation_groups_evidence_and_paths(conn: sqlite3.Connection) -> None:
    kg = KnowledgeGraph(conn)
    details = entity_details(conn, kg.resolve("Uplink interference"))  # type: ignore[arg-type]
    groups = relation_groups(details)
    assert [(g["label"], g["entities"]) for g in groups] == [
        ("resolved_by →", ["Find the interferer"]),
        ("← indicates", ["High RSSI alarm"]),
    ]
    evidence = entity_evidence(conn, details)
    # the passage evidencing both relations comes first
    assert evidence and "High RSSI alarm" in evidence[0]["text"]
    assert len({c["id"] for c in evidence}) == len(evidence)

    path = path_between(conn, "High RSSI alarm", "p0NominalPUSCH")  # an alias works too
    assert [(s["subject"], s["predicate"], s["object"]) for s in path] == [
        ("High RSSI alarm", "indicates", "Uplink interference"),
        ("Uplink interference", "resolved_by", "Find the interferer"),
        ("Find the interferer", "adjusts", "pZeroNominalPusch"),
    ]
    reverse = path_between(conn, "pZeroNominalPusch", "High RSSI alarm")
    assert [s["relation_id"] for s in reverse] == [s["relation_id"] for s in reversed(path)]
    assert path_between(conn, "pmUlRssiAvg", "High RSSI alarm") == []  # not connected
    with pytest.raises(TelesynthError, match="no entity named 'Nowhere'"):
        path_between(conn, "High RSSI alarm", "Nowhere")
