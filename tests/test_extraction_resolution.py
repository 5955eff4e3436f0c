"""One thing, one entity: a likely cause named 'Long form (ABBR)' is the long form with the
abbreviation as alias, a check named with the abbreviation is matched to it, and the concept
candidate the 'Long form (ABBR)' pattern made first takes the cause's type instead of the
cause's relations being dropped; a phrase around a known concept name wins over it."""

from __future__ import annotations

import json
from pathlib import Path

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction import Known, XEntity, extract, spot
from telesynth_tui.graph.extraction.names import with_builtins
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.project import Project

RUNBOOK = """# Uplink noise

## Likely causes

1. **Passive intermodulation (PIM)**: loose connectors mix downlink carriers into the uplink.
2. **External jammer**: a device near the site transmits in the band.

## Checks

- **Check PIM signature**: correlate hourly uplink noise with downlink load of the site.

## Actions

- **Tighten the PIM source**: torque the connectors and rerun the PIM test.
"""


def _triples(text: str) -> set[tuple[str, str, str]]:
    result = extract([Chunk("Uplink noise > Likely causes", text, 40)], "Uplink noise")
    return {(t.subject.name, t.predicate, t.object.name) for t in result.triples}


def test_item_name_drops_a_trailing_abbreviation() -> None:
    result = extract(
        [
            Chunk("Uplink noise > Likely causes", RUNBOOK.split("## Checks")[0], 40),
            Chunk("Uplink noise > Checks", RUNBOOK.split("## Checks")[1], 40),
        ],
        "Uplink noise",
    )
    names = {t.subject.name for t in result.triples} | {t.object.name for t in result.triples}
    assert "Passive intermodulation" in names
    assert not [n for n in names if "(PIM)" in n]
    # the check named with the abbreviation checks the cause spelled out
    assert ("Passive intermodulation", "checked_by", "Check PIM signature") in {
        (t.subject.name, t.predicate, t.object.name) for t in result.triples
    }


def test_a_parenthesis_that_is_not_an_abbreviation_stays() -> None:
    text = "1. **Low power (all cells)**: the feeder loses power.\n"
    names = {s for s, _, _ in _triples(text)} | {o for _, _, o in _triples(text)}
    assert not [n for n in names if n == "Low power"]


def test_concept_candidate_takes_the_cause_type_on_import(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "uplink_noise.md").write_text(RUNBOOK)
    project = Project.create(tmp_path / "proj")
    conn = project.connect()
    import_paths(conn, [folder], project.settings.ingest)
    rows = conn.execute(
        "SELECT type, aliases FROM entities WHERE name = 'Passive intermodulation'"
    ).fetchall()
    assert [(r[0], json.loads(r[1])) for r in rows] == [("RootCause", ["PIM"])]
    stored = {
        (s, p, o)
        for s, p, o in conn.execute(
            "SELECT s.name, r.predicate, o.name FROM relations r"
            " JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id"
        )
    }
    assert ("Passive intermodulation", "checked_by", "Check PIM signature") in stored
    assert ("Passive intermodulation", "resolved_by", "Tighten the PIM source") in stored


def test_an_identifier_shaped_candidate_takes_the_element_type_on_import(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    # the first document names gNB-DU only in passing: its identifier shape makes a parameter
    (folder / "a_split.md").write_text("# Split\n\nThe gNB-DU value is in the export.\n")
    (folder / "b_alarms.md").write_text(
        "# Fronthaul\n\n## Symptoms\n\n- F1 Link Failure alarm raised by the gNB-DU.\n"
    )
    project = Project.create(tmp_path / "proj")
    conn = project.connect()
    import_paths(conn, [folder], project.settings.ingest)
    types = [r[0] for r in conn.execute("SELECT type FROM entities WHERE name = 'gNB-DU'")]
    assert types == ["NetworkElement"]
    stored = conn.execute(
        "SELECT COUNT(*) FROM relations r JOIN entities o ON o.id = r.object_id"
        " WHERE r.predicate = 'raised_by' AND o.name = 'gNB-DU'"
    ).fetchone()[0]
    assert stored == 1


def test_a_longer_phrase_wins_over_a_known_concept_inside_it() -> None:
    found = spot("SCTP Link Availability fell while SCTP retransmits.", with_builtins(Known()))
    assert found[0] == XEntity("SCTP Link Availability", "KPI")
    assert XEntity("SCTP", "Concept") in found
