"""Relation extraction from documents: rules, storage as candidates, acceptance, re-import,
removal and entity resolution."""

from __future__ import annotations

import json
from pathlib import Path

from telesynth_tui.graph.candidates import (
    apply_acceptance,
    list_candidates,
    review_relation,
)
from telesynth_tui.graph.chunking import chunk_markdown
from telesynth_tui.graph.extraction import Known, XEntity, extract, section_role
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.resolution import merge_entities, resolve_duplicates, variant_key
from telesynth_tui.graph.store import KnowledgeGraph
from telesynth_tui.infra import transaction
from telesynth_tui.pipeline.plans import Planner
from telesynth_tui.project import Project

RUNBOOK = """# Paging failures in the tracking area

Paging Success Rate = pmPagRespSucc / pmPagAttempts x 100 %, per tracking area.

## Symptoms

- pmPagDiscarded rises in busy hours, the signature of Paging channel overload.
- A Paging Overload alarm is active on the node.

## Likely causes

- **Paging channel overload**: too many records per paging occasion.
- **Short paging cycle**: defaultPagingCycle set below the planned value.

## Checks

1. **Check paging load counters**: read pmPagDiscarded and pmPagAttempts per hour; a high
   discard share confirms Paging channel overload.
2. **Review paging cycle settings**: list defaultPagingCycle and nB of every cell.

## Actions

- **Increase defaultPagingCycle** from rf32 to rf64 when the Short paging cycle is confirmed.
- **Split the tracking area** to spread Paging channel overload over more cells.

## Verification

After the tracking area split, Paging Success Rate and pmPagDiscarded should recover.

## Alarm table

| Alarm | Root cause | Action |
|---|---|---|
| Paging Overload | Paging channel overload | Split the tracking area |

## Parameters

| Parameter | Range | Default |
|---|---|---|
| defaultPagingCycle (in TS 36.331) | rf32 to rf256 | rf128 |

## Abbreviations

| Abbreviation | Expansion |
|---|---|
| PO | Paging Occasion |

- **Paging frame**: the radio frame that may contain paging occasions.

The Mobility Management Entity (MME) starts paging, as defined in TS 36.413.

## References

- TS 36.304: paging occasions and the Paging Procedure.
- TS 36.331: paging parameters.
"""


def _triples(text: str, known: Known | None = None) -> set[tuple[str, str, str, str]]:
    chunks = chunk_markdown(text, "doc", 300)
    return {
        (t.subject.name, t.predicate, t.object.name, t.rule)
        for t in extract(chunks, "doc", known).triples
    }


def _has(found: set[tuple[str, str, str, str]], s: str, p: str, o: str, rule: str) -> bool:
    """The triple was found by that rule (alone, or with others that agree)."""
    return any((s, p, o) == f[:3] and rule in f[3].split("+") for f in found)


def test_section_roles_from_headings() -> None:
    assert section_role("Doc > Likely causes") == "causes"
    assert section_role("Doc > Checks") == "checks"
    assert section_role("Doc > Corrective actions") == "actions"
    assert section_role("Doc > Verification") == "verification"
    assert section_role("Doc > Symptoms and alarms") == "symptoms"
    assert section_role("Doc > References") == "references"
    assert section_role("Doc > Abbreviations") == "definitions"
    assert section_role("Doc > Background") is None


def test_runbook_rules() -> None:
    found = _triples(RUNBOOK)
    expected = [
        ("Paging Success Rate", "measured_by", "pmPagRespSucc", "kpi_formula"),
        ("Paging Success Rate", "measured_by", "pmPagAttempts", "kpi_formula"),
        ("pmPagDiscarded", "indicates", "Paging channel overload", "symptom_names_cause"),
        (
            "Paging channel overload",
            "degrades",
            "Paging Success Rate",
            "cause_degrades_formula_kpi",
        ),
        ("Check paging load counters", "reads", "pmPagDiscarded", "check_reads"),
        ("Review paging cycle settings", "reads", "defaultPagingCycle", "check_reads"),
        (
            "Paging channel overload",
            "checked_by",
            "Check paging load counters",
            "check_names_cause",
        ),
        ("Increase defaultPagingCycle", "adjusts", "defaultPagingCycle", "action_adjusts_name"),
        ("Short paging cycle", "resolved_by", "Increase defaultPagingCycle", "action_names_cause"),
        ("Paging channel overload", "resolved_by", "Split the tracking area", "action_names_cause"),
        (
            "Split the tracking area",
            "verified_by",
            "Paging Success Rate",
            "verification_echoes_action",
        ),
        ("Paging Overload", "indicates", "Paging channel overload", "table_row"),
        ("Paging Overload", "resolved_by", "Split the tracking area", "table_row"),
        # stated twice (table cell and References list): one triple naming both rules
        ("defaultPagingCycle", "defined_in", "TS 36.331", "spec_reference_parameters"),
        ("defaultPagingCycle", "defined_in", "TS 36.331", "spec_inline"),
    ]
    for triple in expected:
        assert _has(found, *triple), triple
    # a check that names no cause links to the cause sharing most words with its name, only
    assert _has(
        found,
        "Short paging cycle",
        "checked_by",
        "Review paging cycle settings",
        "check_overlaps_cause",
    )
    assert not _has(
        found,
        "Paging channel overload",
        "checked_by",
        "Review paging cycle settings",
        "check_overlaps_cause",
    )


def test_spec_references_and_definitions() -> None:
    known = Known([("Paging Procedure", "Procedure", []), ("MME", "NetworkElement", [])])
    chunks = chunk_markdown(RUNBOOK, "doc", 300)
    result = extract(chunks, "doc", known)
    found = {(t.subject.name, t.predicate, t.object.name, t.rule) for t in result.triples}
    assert _has(found, "Paging Procedure", "defined_in", "TS 36.304", "spec_reference_list")
    assert _has(found, "defaultPagingCycle", "defined_in", "TS 36.331", "spec_reference_parameters")
    entities = {e.name: e for e, _ in result.entities}
    assert entities["Paging Occasion"].aliases == ("PO",)
    assert entities["Paging frame"].description.startswith("the radio frame")
    assert "MME" in entities["Mobility Management Entity"].aliases
    # every triple points at a chunk whose text holds its evidence
    for t in result.triples:
        assert 0 <= t.chunk < len(chunks) and t.evidence


def test_numbered_procedure_without_bold_names_its_steps() -> None:
    text = """# Doc

## Likely causes

1. Backhaul congestion: the transport link is full at peak.

## Troubleshooting steps

1. Check the transport utilisation: read pmTnlUsage on the backhaul port.
2. Compare the queue drops with the backhaul congestion threshold.
"""
    found = _triples(text)
    # named by their first clause: the same rules, at a lower confidence
    assert _has(
        found, "Check the transport utilisation", "reads", "pmTnlUsage", "check_reads_clause"
    )
    assert _has(
        found,
        "Backhaul congestion",
        "checked_by",
        "Compare the queue drops with the backhaul congestion threshold",
        "check_names_cause_clause",
    )


def _import(project: Project, *paths: Path) -> None:
    conn = project.connect()
    import_paths(conn, list(paths), project.settings.ingest)
    conn.close()


def test_import_stores_candidates_with_sources(project: Project, tmp_path: Path) -> None:
    doc = tmp_path / "paging.md"
    doc.write_text(RUNBOOK)
    _import(project, doc)
    conn = project.connect()
    rows = conn.execute(
        "SELECT r.status, r.origin, x.extractor, x.rule, x.confidence, x.chunk_id, x.evidence"
        " FROM relations r JOIN relation_extractions x ON x.relation_id = r.id"
    ).fetchall()
    assert rows and all(r["origin"] == "extracted" and r["extractor"] == "structure" for r in rows)
    assert {r["status"] for r in rows} == {"accepted", "candidate"}
    threshold = project.settings.ingest.accept_confidence
    for r in rows:  # accepted exactly when the rule's confidence reaches the threshold
        assert (r["status"] == "accepted") == (r["confidence"] >= threshold)
        chunk_text = conn.execute("SELECT text FROM chunks WHERE id = ?", (r["chunk_id"],))
        assert chunk_text.fetchone()[0]
    # the extracted entity keeps its source chunk
    cause = KnowledgeGraph(conn).resolve("Paging channel overload")
    assert cause is not None
    assert conn.execute(
        "SELECT COUNT(*) FROM entity_extractions WHERE entity_id = ?", (cause,)
    ).fetchone()[0]
    # plans see accepted relations only
    planner = Planner(conn, seed=1)
    accepted = {r[0] for r in conn.execute("SELECT id FROM relations WHERE status='accepted'")}
    assert {e[0] for e in planner.edges} == accepted
    assert planner.troubleshooting() is not None or planner.factual() is not None


def test_threshold_and_person_review(project: Project, tmp_path: Path) -> None:
    doc = tmp_path / "paging.md"
    doc.write_text(RUNBOOK)
    _import(project, doc)
    conn = project.connect()
    with transaction(conn):
        counts = apply_acceptance(conn, 0.0)
    assert counts["candidate"] == 0
    with transaction(conn):
        counts = apply_acceptance(conn, 1.01)
    assert counts["accepted"] == 0
    first = list_candidates(conn)[0]
    with transaction(conn):
        review_relation(conn, first["id"], "accepted")
        apply_acceptance(conn, 1.01)  # a rule never overrides a person
    status = conn.execute("SELECT status FROM relations WHERE id = ?", (first["id"],))
    assert status.fetchone()[0] == "accepted"
    # the decision survives a changed document
    doc.write_text(RUNBOOK + "\nOne more line.\n")
    conn.close()
    _import(project, doc)
    conn = project.connect()
    again = [
        c
        for c in list_candidates(conn, "accepted")
        if (c["subject"], c["predicate"], c["object"])
        == (first["subject"], first["predicate"], first["object"])
    ]
    assert again and again[0]["decided_by"] == "person"


def test_reimport_replaces_and_removal_keeps_shared(project: Project, tmp_path: Path) -> None:
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text(RUNBOOK)
    b.write_text(
        "# Other\n\n## Likely causes\n\n- **Short paging cycle**: cycle too short.\n\n"
        "## Actions\n\n- **Increase defaultPagingCycle** for the Short paging cycle.\n"
    )
    _import(project, a, b)
    conn = project.connect()

    def triple_ids() -> dict[tuple[str, str, str], int]:
        return {
            (c["subject"], c["predicate"], c["object"]): c["id"]
            for c in list_candidates(conn, "all", limit=1000)
        }

    before = triple_ids()
    shared = ("Short paging cycle", "resolved_by", "Increase defaultPagingCycle")
    only_a = ("Paging channel overload", "resolved_by", "Split the tracking area")
    assert shared in before and only_a in before
    # a changed document replaces its extractions
    a.write_text(RUNBOOK.replace("Split the tracking area", "Add paging capacity"))
    conn.close()
    _import(project, a)
    conn = project.connect()
    after = triple_ids()
    assert only_a not in after
    assert ("Paging channel overload", "resolved_by", "Add paging capacity") in after
    assert shared in after
    assert KnowledgeGraph(conn).resolve("Split the tracking area") is None
    # removing a document removes what only it supported; shared triples keep b as source
    with transaction(conn):
        assert KnowledgeGraph(conn).remove_source(str(a.resolve()))
    after = triple_ids()
    assert shared in after
    assert ("Paging channel overload", "resolved_by", "Add paging capacity") not in after
    sources = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT sf.path FROM relation_extractions x JOIN source_files sf"
            " ON sf.id = x.source_file_id"
        )
    }
    assert sources == {str(b.resolve())}
    orphans = conn.execute(
        "SELECT COUNT(*) FROM relations r WHERE r.origin = 'extracted' AND NOT EXISTS"
        " (SELECT 1 FROM relation_extractions x WHERE x.relation_id = r.id)"
    ).fetchone()[0]
    assert orphans == 0


def test_declared_triple_takes_over_an_extracted_one(project: Project, tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "paging.md"
    doc.parent.mkdir()
    doc.write_text(RUNBOOK)
    _import(project, doc)
    triples = tmp_path / "t.csv"
    triples.write_text(
        "subject,predicate,object,source\n"
        "Short paging cycle,resolved_by,Increase defaultPagingCycle,docs/paging.md\n"
    )
    conn = project.connect()
    report = import_paths(conn, [triples], project.settings.ingest)
    assert report.counts.relations == 1 and not report.issues
    row = conn.execute(
        "SELECT r.status, r.origin FROM relations r JOIN entities s ON s.id = r.subject_id"
        " WHERE s.name = 'Short paging cycle' AND r.predicate = 'resolved_by'"
    ).fetchone()
    assert tuple(row) == ("accepted", "declared")


def test_variant_keys() -> None:
    assert variant_key("PRACH root sequence conflicts") == variant_key(
        "PRACH Root Sequence Conflict"
    )
    assert variant_key("ra-ResponseWindow") == variant_key("raResponseWindow")
    assert variant_key("Physical Random Access Channel (PRACH)") == variant_key(
        "physical random access channel"
    )
    assert variant_key("Status") == "status"


def test_entity_merges_keep_every_source(project: Project, tmp_path: Path) -> None:
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text(
        "# A\n\n## Likely causes\n\n- **Loose RF connector**: torque too low.\n\n"
        "## Actions\n\n- **Tighten RF connector** when a Loose RF connector is found.\n"
    )
    b.write_text(
        "# B\n\n## Likely causes\n\n- **Loose RF connectors**: vibration.\n\n"
        "## Actions\n\n- **Retorque the jumpers** to fix Loose RF connectors.\n"
    )
    _import(project, a, b)
    conn = project.connect()
    rows = conn.execute(
        "SELECT id, name, aliases FROM entities WHERE type = 'RootCause'"
    ).fetchall()
    assert len(rows) == 1
    entity_id = rows[0]["id"]
    assert "Loose RF connectors" in json.loads(rows[0]["aliases"])
    sources = conn.execute(
        "SELECT COUNT(DISTINCT source_file_id) FROM entity_extractions WHERE entity_id = ?",
        (entity_id,),
    ).fetchone()[0]
    assert sources == 2
    actions = {
        r[0]
        for r in conn.execute(
            "SELECT o.name FROM relations r JOIN entities o ON o.id = r.object_id"
            " WHERE r.subject_id = ? AND r.predicate = 'resolved_by'",
            (entity_id,),
        )
    }
    assert actions == {"Tighten RF connector", "Retorque the jumpers"}


def test_merge_entities_moves_relations_mentions_and_sources(
    project: Project, tmp_path: Path
) -> None:
    ents = tmp_path / "e.jsonl"
    ents.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"name": "Uplink RSSI", "type": "KPI"},
                {"name": "UL RSSI level", "type": "KPI"},
                {"name": "Interference", "type": "RootCause"},
                {"name": "pmUlRssi", "type": "Counter"},
            ]
        )
    )
    triples = tmp_path / "t.csv"
    triples.write_text(
        "subject,predicate,object,source\n"
        "Uplink RSSI,indicates,Interference,\n"
        "UL RSSI level,indicates,Interference,\n"
        "UL RSSI level,measured_by,pmUlRssi,\n"
    )
    _import(project, ents, triples)
    conn = project.connect()
    kg = KnowledgeGraph(conn)
    keep, drop = kg.resolve("Uplink RSSI"), kg.resolve("UL RSSI level")
    assert keep and drop
    with transaction(conn):
        merge_entities(conn, keep, drop)
    kg = KnowledgeGraph(conn)
    assert kg.resolve("UL RSSI level") == keep
    rels = conn.execute(
        "SELECT predicate FROM relations WHERE subject_id = ? ORDER BY predicate", (keep,)
    ).fetchall()
    assert [r[0] for r in rels] == ["indicates", "measured_by"]  # the duplicate folded
    sources = conn.execute(
        "SELECT COUNT(*) FROM entity_sources WHERE entity_id = ?", (keep,)
    ).fetchone()[0]
    assert sources == 1  # one file declared both
    assert resolve_duplicates(conn) == 0


def test_known_gazetteer_types_mentions() -> None:
    known = Known([("Interference over Thermal", "KPI", ["IoT"])])
    text = "# D\n\n## Checks\n\n- **Check noise rise**: read IoT and pmUlRssi per PRB.\n"
    found = _triples(text, known)
    assert _has(found, "Check noise rise", "reads", "Interference over Thermal", "check_reads")
    assert _has(found, "Check noise rise", "reads", "pmUlRssi", "check_reads")
    assert XEntity("x", "KPI") == XEntity("x", "KPI")
