"""Technology of entities (LTE, NR, both): every bundled entity has one, no bundled relation
joins LTE-only and NR-only entities, and every plan stays within one technology."""

from __future__ import annotations

import json
from pathlib import Path

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.technology import (
    compatible,
    cross_technology_relations,
    normalize_technology,
)
from telesynth_tui.pipeline.plans import Planner
from telesynth_tui.project import Project

from .conftest import run_cli

KG = Path(__file__).resolve().parents[1] / "kg"


def test_every_bundled_entity_declares_its_technology() -> None:
    seen: dict[str, str] = {}
    for path in sorted((KG / "entities").glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(line)
            assert row.get("technology") in ("LTE", "NR", "both"), f"{path.name}:{number}"
            # an entity declared in several files has the same technology everywhere
            assert seen.setdefault(row["name"].lower(), row["technology"]) == row["technology"]


def test_the_issue_examples_have_their_technology(bundled: Project) -> None:
    conn = bundled.connect()
    tech = dict(conn.execute("SELECT name, technology FROM entities"))
    assert tech["S1 Setup Failure"] == "LTE" and tech["pmNgSetupFail"] == "NR"
    assert tech["PDU Session Setup Success Rate"] == "NR"
    assert tech["E-RAB Setup Success Rate"] == "LTE" and tech["UE"] == "both"


def test_no_bundled_relation_mixes_technologies(bundled: Project) -> None:
    assert cross_technology_relations(bundled.connect()) == []


def test_the_check_lists_a_mixing_relation(bundled: Project, tmp_path: Path) -> None:
    folder = tmp_path / "mix"
    (folder / "triples").mkdir(parents=True)
    (folder / "triples" / "mixed.csv").write_text(
        "subject,predicate,object,source\nS1 Setup Failure,indicates,Wrong SSB frequency,\n",
        encoding="utf-8",
    )
    conn = bundled.connect()
    report = import_paths(conn, [folder], bundled.settings.ingest)
    assert not [i for i in report.issues if i.severity == "error"], report.issues
    found = cross_technology_relations(conn)
    assert [(r["subject"], r["predicate"], r["object"]) for r in found] == [
        ("S1 Setup Failure", "indicates", "Wrong SSB frequency")
    ]
    assert found[0]["line"] == 2 and str(found[0]["file"]).endswith("mixed.csv")


def _mixed(conn: object, entity_ids: list[int]) -> set[str]:
    marks = ",".join("?" * len(entity_ids))
    rows = conn.execute(  # type: ignore[attr-defined]
        f"SELECT DISTINCT technology FROM entities WHERE id IN ({marks})", entity_ids
    )
    return {r[0] for r in rows} & {"LTE", "NR"}


def test_plans_stay_within_one_technology(bundled: Project) -> None:
    conn = bundled.connect()
    planner = Planner(conn, 5)
    plans = planner.plans({"troubleshooting": 60, "multi_hop": 40, "factual": 60})
    assert len(plans) == 160
    for plan in plans:
        techs = _mixed(conn, plan.entity_ids)
        assert len(techs) <= 1, (plan.type, plan.payload, techs)
        assert plan.payload["technology"] in ("", *techs)
    # the issue's case: an LTE S1 Setup Failure is never checked with NR NG counters
    lte = [p for p in plans if p.type == "troubleshooting" and p.payload["technology"] == "LTE"]
    assert lte and all("pmNgSetupFail" not in json.dumps(p.payload) for p in lte)


def test_a_troubleshooting_plan_for_s1_setup_failure_keeps_to_lte(bundled: Project) -> None:
    conn = bundled.connect()
    planner = Planner(conn, 1)
    symptom = conn.execute("SELECT id FROM entities WHERE name = 'S1 Setup Failure'").fetchone()[0]
    for entity_id in planner.names:  # make the S1 alarm the least used symptom
        if entity_id != symptom:
            planner.entity_use[entity_id] += 100
    plan = planner.troubleshooting()
    assert plan is not None and plan.payload["symptom"] == "S1 Setup Failure"
    text = json.dumps(plan.payload)
    assert "pmS1SetupFail" in text and "NG Setup" not in text and "pmNgSetupFail" not in text
    assert plan.payload["technology"] == "LTE"


def test_technology_spellings_and_compatibility() -> None:
    assert normalize_technology(" lte ") == "LTE" and normalize_technology("5G") == "NR"
    assert normalize_technology("Both") == "both" and normalize_technology("") == ""
    assert normalize_technology("wifi") is None
    assert compatible("", "NR") and compatible("LTE", "both") and not compatible("LTE", "NR")
    assert compatible("both", "LTE") and compatible("NR", "NR")


def test_an_unknown_technology_is_a_warning_naming_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "kg"
    (folder / "entities").mkdir(parents=True)
    (folder / "entities" / "e.jsonl").write_text(
        '{"name": "Foo Alarm", "type": "Alarm", "technology": "wifi"}\n'
        '{"name": "Bar Alarm", "type": "Alarm", "technology": "NR"}\n',
        encoding="utf-8",
    )
    proj = Project.create(tmp_path / "p")
    conn = proj.connect()
    report = import_paths(conn, [folder], proj.settings.ingest)
    warnings = [str(i) for i in report.issues]
    assert any("e.jsonl:1" in w and "unknown technology 'wifi'" in w for w in warnings), warnings
    tech = dict(conn.execute("SELECT name, technology FROM entities"))
    assert tech == {"Foo Alarm": "", "Bar Alarm": "NR"}


def test_kg_stats_warns_about_a_mixing_relation_and_kg_show_names_the_technology(
    bundled: Project, tmp_path: Path
) -> None:
    folder = tmp_path / "mix"
    (folder / "triples").mkdir(parents=True)
    (folder / "triples" / "mixed.csv").write_text(
        "subject,predicate,object,source\nS1 Setup Failure,indicates,Wrong SSB frequency,\n",
        encoding="utf-8",
    )
    stats = run_cli("kg", "stats", project=bundled.path, check=True).stdout
    assert "technology: both" in stats and "mixes technologies" not in stats
    run_cli("kg", "import", str(folder), project=bundled.path, check=True)
    stats = run_cli("kg", "stats", project=bundled.path, check=True).stdout
    warning = [line for line in stats.splitlines() if "mixes technologies" in line]
    assert len(warning) == 1 and "S1 Setup Failure (LTE) -indicates-> Wrong SSB" in warning[0]
    assert warning[0].endswith("mixed.csv:2)")
    shown = run_cli("kg", "show", "S1 Setup Failure", project=bundled.path, check=True).stdout
    assert shown.splitlines()[0] == "S1 Setup Failure [Alarm, curated, LTE]"
