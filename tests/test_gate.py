"""The accept gate: every rule on small hand-made items, `telesynth check`, and the runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.pipeline.filters import Filters, FilterSettings
from telesynth_tui.pipeline.gate import (
    Gate,
    GateItem,
    KnowledgeIndex,
    Reason,
    technology,
    valid_set,
)
from telesynth_tui.pipeline.runner import Runner, create_run
from telesynth_tui.pipeline.scoring import FastScorer
from telesynth_tui.pipeline.store import RunConfig, run_summary
from telesynth_tui.project import Project

from .conftest import REPO_ROOT, run_cli
from .fakes import CopyingSource, EndsCleanlyHead, filter_encoder

LABELLED = REPO_ROOT.parent / "shared" / "data" / "labelled" / "qa_labelled_dev.jsonl"

TS_PLAN: dict[str, Any] = {
    "symptom": "VSWR Over Threshold",
    "symptom_type": "Alarm",
    "causes": [
        {
            "cause": "Antenna feeder damage",
            "checks": ["Measure return loss"],
            "reads": ["pmVswrValue"],
            "actions": ["Repair antenna feeder"],
            "adjusts": [],
            "verify": ["pmVswrValue"],
        }
    ],
}
TS_CONTEXT = [
    "VSWR Over Threshold indicates Antenna feeder damage",
    "Antenna feeder damage checked by Measure return loss",
    "Measure return loss reads pmVswrValue",
    "Antenna feeder damage resolved by Repair antenna feeder",
    "Repair antenna feeder verified by pmVswrValue",
    "A damaged feeder raises the VSWR above 1.5; the alarm threshold is usually 1.5 or 2.",
]
TS_GOOD = (
    "1. Likely causes of VSWR Over Threshold: Antenna feeder damage. 2. To confirm Antenna "
    "feeder damage: Measure return loss, reading pmVswrValue. 3. If confirmed: Repair antenna "
    "feeder. 4. Verify the fix with pmVswrValue."
)
MATHS_PLAN: dict[str, Any] = {
    "formula": "fade_margin_lognormal_db",
    "name": "Log-Normal Fade Margin from z-Value",
    "expression": "z * sigma_db",
    "inputs": {"z": 1.64, "sigma_db": 8.0},
    "units": {"z": "1", "sigma_db": "dB"},
    "descriptions": {"z": "Standard normal quantile", "sigma_db": "Shadowing deviation"},
    "answer": 13.12,
    "unit": "dB",
    "output_symbol": "M_sh",
    "tolerance": 0.1312,
}
MATHS_Q = "Find M_sh = z * sigma_db for z = 1.64 and sigma_db = 8 dB."
MATHS_CONTEXT = ["Log-Normal Fade Margin from z-Value: M_sh = z * sigma_db [dB]."]


def ts_item(answer: str = TS_GOOD, question: str | None = None, **kw: Any) -> GateItem:
    q = question or "How would you troubleshoot the alarm 'VSWR Over Threshold'?"
    return GateItem("troubleshooting", q, answer, kw.pop("steps", []), TS_CONTEXT, TS_PLAN, **kw)


def rules(reasons: list[Reason]) -> set[str]:
    return {r.rule for r in reasons}


@pytest.fixture
def gate() -> Gate:
    return Gate()


def test_good_items_pass(gate: Gate) -> None:
    assert gate.check(ts_item()) == []
    maths = GateItem("maths", MATHS_Q, "M_sh = 1.64 * 8 = 13.12 dB.", [], MATHS_CONTEXT, MATHS_PLAN)
    assert gate.check(maths) == []


def test_duplicates_exact_and_near(gate: Gate) -> None:
    first = ts_item()
    assert gate.check(first) == []
    gate.accept(first, "the first")
    again = gate.check(ts_item())
    assert rules(again) == {"duplicate"} and "the first" in str(again[0])
    near = ts_item(TS_GOOD.replace("Verify the fix", "Then verify the fix"))
    assert rules(gate.check(near)) == {"duplicate"}
    other = ts_item(
        "Antenna feeder damage is the likely cause; repair antenna feeder and "
        "measure return loss, reading pmVswrValue, then check pmVswrValue again."
    )
    assert "duplicate" not in rules(gate.check(other))


@pytest.mark.parametrize(
    ("question", "answer", "steps", "expected"),
    [
        ("What is the purpose of the", "The VSWR Over Threshold alarm.", [], "question cut off"),
        ("6. Check VSWR Over Threshold", "6. Check VSWR Over Threshold", [], "list item"),
        (
            "What does VSWR Over Threshold indicate?",
            "VSWR Over Threshold indicates Antenna feeder damage, which can",
            [],
            "ends on",
        ),
        (
            "What does VSWR Over Threshold indicate?",
            "VSWR Over Threshold indicates Antenna feeder damage.",
            ["Measure return loss and Thr"],
            "cut short",
        ),
        (
            "What is the most recent update to the [insert tag_name]?",
            "The VSWR Over Threshold is [insert tag_name].",
            [],
            "placeholder",
        ),
        ("What does VSWR Over Threshold indicate?", "Antenna feeder damage}, {", [], "JSON"),
        ("What does VSWR Over Threshold indicate?", "2022-08-24 14:22:22.143", [], "timestamp"),
        (
            "What does VSWR Over Threshold indicate?",
            "Antenna feeder damage 温度.",
            [],
            "foreign script",
        ),
        (
            "What does VSWR Over Threshold indicate?",
            "Antenna feeder damage.",
            ["Measure return loss."] * 4,
            "repetitive steps",
        ),
        (
            "What does VSWR Over Threshold indicate?",
            "Antenna feeder damage.",
            ["cite_id"],
            "junk step",
        ),
        (
            "What does VSWR Over Threshold indicate?",
            "Antenna feeder damage and and and and and and and.",
            [],
            "degenerate repetition",
        ),
    ],
)
def test_malformed(gate: Gate, question: str, answer: str, steps: list[str], expected: str) -> None:
    reasons = gate.check(ts_item(answer, question, steps=steps))
    assert any(r.rule == "malformed" and expected in r.detail for r in reasons), reasons


@pytest.mark.parametrize(
    ("question", "answer", "steps"),
    [
        ("What is the purpose of the context item 1?", TS_GOOD, []),
        ("How would you troubleshoot VSWR Over Threshold?", "Draft answer: " + TS_GOOD, []),
        ("How would you troubleshoot VSWR Over Threshold?", TS_GOOD, ["Context [4] says so."]),
        ("How would you troubleshoot VSWR Over Threshold?", TS_GOOD, ["From the context, fix it."]),
        ("How would you troubleshoot VSWR Over Threshold?", TS_GOOD + " See [2].", []),
    ],
)
def test_prompt_leaks(gate: Gate, question: str, answer: str, steps: list[str]) -> None:
    assert "prompt_leak" in rules(gate.check(ts_item(answer, question, steps=steps)))


def test_tautology_and_off_topic(gate: Gate) -> None:
    taut = ts_item("To repair the antenna feeder.", "What is the purpose of Repair antenna feeder?")
    assert "trivial" in rules(gate.check(taut))
    nmap = ts_item(
        "Use a network monitor such as Nmap to scan the network.",
        "What is the best way to check the performance of a network?",
    )
    assert "off_topic" in rules(gate.check(nmap))


def test_cause_questions_need_causes_and_actions_are_not_causes(gate: Gate) -> None:
    q = "What is the cause of the VSWR Over Threshold?"
    good = gate.check(ts_item("VSWR Over Threshold is caused by Antenna feeder damage.", q))
    assert good == []
    action = gate.check(ts_item("VSWR Over Threshold is caused by repair antenna feeder.", q))
    assert {"not_answering", "relation"} <= rules(action)
    assert any("Action, given as a cause" in r.detail for r in action)
    vague = gate.check(ts_item("The VSWR Over Threshold value grows at the same time.", q))
    assert "not_answering" in rules(vague)


def test_troubleshooting_plans_must_cover_the_plan(gate: Gate) -> None:
    only_cause = gate.check(
        ts_item("1. Likely causes of VSWR Over Threshold: Antenna feeder damage.")
    )
    assert any(r.rule == "not_answering" and "no actions" in r.detail for r in only_cause)
    thin = ts_item("Antenna feeder damage: Repair antenna feeder.")
    assert any("covers 2 of the plan's 4" in r.detail for r in gate.check(thin))


def test_graph_relation_of_the_wrong_direction_or_symptom() -> None:
    index = KnowledgeIndex()
    index.edges.add(("vswr over threshold", "indicates", "loose rf connector"))
    index.types.update({"loose rf connector": "RootCause", "cell congestion": "RootCause"})
    index.gazetteer.add(1, ["Cell congestion"])
    index.names[1] = "cell congestion"
    gate = Gate(index)
    q = "What is the cause of the VSWR Over Threshold?"
    reasons = gate.check(ts_item("VSWR Over Threshold is caused by Cell congestion.", q))
    assert any("no 'vswr over threshold indicates cell congestion'" in r.detail for r in reasons)


def test_numbers_must_be_grounded(gate: Gate) -> None:
    q = "Which alarm threshold does Antenna feeder damage exceed?"
    grounded = ts_item("Antenna feeder damage raises the VSWR above 1.5: VSWR Over Threshold.", q)
    assert gate.check(grounded) == []
    invented = ts_item("Antenna feeder damage raises the VSWR above 3.7: VSWR Over Threshold.", q)
    assert any("number 3.7" in r.detail for r in gate.check(invented))


def test_technology_mixing() -> None:
    assert technology("pmPduSessResSetupFailTnl") == "NR"
    assert technology("E-RAB Setup Success Rate") == "LTE"
    assert technology("TS 36.413") == "LTE" and technology("Cell Availability") == ""
    plan = {
        "fact": {
            "subject": "pmPduSessResSetupFailTnl",
            "subject_type": "Counter",
            "predicate": "verified_by",
            "object": "QoS Flow Setup Success Rate",
            "object_type": "KPI",
        }
    }
    context = [
        "pmPduSessResSetupFailTnl verified by QoS Flow Setup Success Rate",
        "E-RAB Setup Success Rate",
    ]
    q = "Which KPI verifies a fix for pmPduSessResSetupFailTnl?"
    ok = GateItem(
        "factual", q, "pmPduSessResSetupFailTnl: QoS Flow Setup Success Rate.", [], context, plan
    )
    assert Gate().check(ok) == []
    index = KnowledgeIndex()
    index.gazetteer.add(5, ["E-RAB Setup Success Rate"])
    index.names[5] = "e rab setup success rate"
    index.display["e rab setup success rate"] = "E-RAB Setup Success Rate"
    index.edges.add(("pmpdusessressetupfailtnl", "verified_by", "e rab setup success rate"))
    mixed = GateItem(
        "factual", q, "pmPduSessResSetupFailTnl: E-RAB Setup Success Rate.", [], context, plan
    )
    assert any("mixes technologies" in r.detail for r in Gate(index).check(mixed))


def test_maths_rules(gate: Gate) -> None:
    def check(question: str, answer: str, plan: dict[str, Any] = MATHS_PLAN) -> list[Reason]:
        return gate.check(GateItem("maths", question, answer, [], MATHS_CONTEXT, plan))

    assert any(
        "does not state z" in r.detail
        for r in check("Find M_sh for sigma_db = 8 dB.", "M_sh = 13.12 dB.")
    )
    wrong = check(MATHS_Q, "M_sh = 15.2 dB.")
    assert any(r.rule == "maths" and "is not 13.12" in r.detail for r in wrong)
    unit = check(MATHS_Q, "M_sh = 13.12 ms.")
    assert "maths" in rules(unit)
    assert "not_answering" in rules(check(MATHS_Q, "Log-Normal Fade Margin from z-Value."))
    # the truth is recomputed from the expression: a wrong plan answer does not mislead
    assert check(MATHS_Q, "M_sh = 13.12 dB.", {**MATHS_PLAN, "answer": 99.0}) == []
    scs = {
        **MATHS_PLAN,
        "expression": "15/scs_khz",
        "inputs": {"scs_khz": 489.0},
        "descriptions": {"scs_khz": "Subcarrier spacing (15, 30, 60, 120, 240, 480 or 960)"},
        "units": {"scs_khz": "kHz"},
        "unit": "ms",
        "answer": 15 / 489,
        "tolerance": 0.0003,
    }
    bad = check("Find T_slot for scs_khz = 489 kHz.", "T_slot = 0.03067 ms.", scs)
    assert any("outside its valid set" in r.detail for r in bad)


def test_valid_sets_from_descriptions() -> None:
    assert valid_set("Subcarrier spacing (15, 30, 60 or 120)") == ([15, 30, 60, 120], [])
    values, _ = valid_set("alpha (0, 0.4 ... 0.9, 1)") or ([], [])
    assert values[:3] == [0, 0.4, 0.5] and values[-1] == 1 and 0.954 not in values
    assert valid_set("Timing advance (0-3846 in the response)") == ([], [(0.0, 3846.0)])
    assert valid_set("Probability (e.g. 0.99)") is None


def test_refinement_must_keep_the_drafts_facts(gate: Gate) -> None:
    kept = ts_item(TS_GOOD, draft=TS_GOOD)
    assert gate.check(kept) == []
    dropped = ts_item(
        "1. Likely causes of VSWR Over Threshold: Antenna feeder damage. 2. If "
        "confirmed: Repair antenna feeder. 3. Measure return loss and verify it "
        "with the alarm.",
        draft=TS_GOOD,
    )
    assert any(r.rule == "refinement" and "pmvswrvalue" in r.detail for r in gate.check(dropped))


# --- telesynth check --------------------------------------------------------------------------


def _line(**kw: Any) -> str:
    base = {
        "type": "troubleshooting",
        "plan": TS_PLAN,
        "context": [{"key": f"fact:{i}", "text": t} for i, t in enumerate(TS_CONTEXT)],
        "question": "How would you troubleshoot the alarm 'VSWR Over Threshold'?",
        "answer": TS_GOOD,
        "steps": [],
        "label": "ignored",
    }
    return json.dumps({**base, **kw})


def test_check_command(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    lines = [
        _line(id="a"),
        _line(id="b"),
        "{not json",
        _line(id="c", type="poem"),
        _line(id="d", answer="Draft answer: see context item 2."),
    ]
    path.write_text("\n".join(lines) + "\n")
    result = run_cli("check", str(path), "--json", project=tmp_path / "none")
    assert result.returncode == 0, result.stderr
    verdicts = {v["id"]: v for v in json.loads(result.stdout)}
    assert verdicts["a"]["accepted"] and verdicts["a"]["reasons"] == []
    assert verdicts["b"]["reasons"][0].startswith("duplicate: same question and answer as a")
    assert verdicts["line 3"]["reasons"][0].startswith("input: items.jsonl:3:")
    assert "'type' must be one of" in verdicts["c"]["reasons"][0]
    assert any(r.startswith("prompt_leak") for r in verdicts["d"]["reasons"])
    assert "1 accepted, 4 rejected of 5" in result.stderr
    text = run_cli("check", str(path), project=tmp_path / "none")
    assert text.returncode == 0 and "a: accepted" in text.stdout
    assert "5 items: 1 accepted, 4 rejected" in text.stdout and "Traceback" not in text.stderr
    missing = run_cli("check", str(tmp_path / "nope.jsonl"), project=tmp_path / "none")
    assert missing.returncode != 0 and "nope.jsonl: no such file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_check_uses_the_project_graph_or_the_bundled_one(bundled: Project, tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    q = "What is the cause of the VSWR Over Threshold?"
    # without a plan only the project's graph knows that this is an action
    path.write_text(
        json.dumps(
            {
                "type": "troubleshooting",
                "context": [],
                "question": q,
                "answer": "It is caused by Repair antenna feeder.",
            }
        )
        + "\n"
    )
    empty = tmp_path / "empty"
    assert run_cli("init", "--empty", project=empty).returncode == 0
    alone = json.loads(run_cli("check", str(path), "--json", project=empty).stdout)
    assert alone[0]["accepted"]
    for project in (bundled.path, tmp_path / "none"):  # no project: the bundled knowledge
        with_graph = json.loads(run_cli("check", str(path), "--json", project=project).stdout)
        assert not with_graph[0]["accepted"]
        assert any("given as a cause" in r for r in with_graph[0]["reasons"])


@pytest.mark.skipif(not LABELLED.is_file(), reason="labelled set not present")
def test_check_reads_the_labelled_set(tmp_path: Path) -> None:
    result = run_cli("check", str(LABELLED), "--json", project=tmp_path / "none")
    assert result.returncode == 0, result.stderr
    verdicts = json.loads(result.stdout)
    assert len(verdicts) == len(LABELLED.read_text().splitlines())
    assert all(v["accepted"] or v["reasons"] for v in verdicts)


# --- the runner -------------------------------------------------------------------------------


def test_runner_rejects_duplicates_within_one_plan(bundled: Project) -> None:
    conn = bundled.connect()
    config = RunConfig(n=2, mix={"definition": 1.0}, seed=4, generator="copying", min_quality=0.0)
    run_id = create_run(conn, config)
    encoder = filter_encoder()
    settings = FilterSettings(question_context=0.0, answer_context=0.0)  # the gate decides
    filters = Filters(encoder, EndsCleanlyHead(), settings)  # type: ignore[arg-type]
    retriever = Retriever(conn, bundled.settings.retrieval)
    runner = Runner(conn, retriever, filters, FastScorer(), CopyingSource())  # type: ignore[arg-type]
    runner.execute(run_id)
    rows = conn.execute(
        "SELECT plan_id, status, reason, raw_text FROM samples WHERE run_id = ? ORDER BY id",
        (run_id,),
    ).fetchall()
    assert len(rows) == 6
    for plan_id in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == plan_id]
        assert [r[1] for r in mine] == ["accepted", "rejected", "rejected"], mine
        assert all(r[2].startswith("gate: duplicate: same question and answer") for r in mine[1:])
        assert all(r[3] == "{...}" for r in mine)  # the raw text is kept
    summary = run_summary(conn, run_id)
    assert summary["rejected_by_filter"] == {"gate: duplicate": 4}


def test_ranking_causes_the_graph_does_not_rank() -> None:
    plan = {
        **TS_PLAN,
        "causes": [*TS_PLAN["causes"], {**TS_PLAN["causes"][0], "cause": "Loose RF connector"}],
    }
    context = [*TS_CONTEXT, "VSWR Over Threshold indicates Loose RF connector"]
    q = "Which action resolves the most likely cause behind VSWR Over Threshold?"
    item = GateItem(
        "multi_hop", q, "Repair antenna feeder, for Antenna feeder damage.", [], context, plan
    )
    assert any("does not rank" in r.detail for r in Gate().check(item))
    single = GateItem(
        "multi_hop", q, "Repair antenna feeder, for Antenna feeder damage.", [], TS_CONTEXT, TS_PLAN
    )
    assert "relation" not in rules(Gate().check(single))


def test_worked_maths_may_state_intermediate_values(gate: Gate) -> None:
    steps = ["10^(0.8) = 6.31 is not needed: M_sh = 1.64 * 8 = 13.12 dB.", "So M_sh is 13.12 dB."]
    ok = GateItem("maths", MATHS_Q, "M_sh = 13.12 dB.", steps, MATHS_CONTEXT, MATHS_PLAN)
    assert gate.check(ok) == []
    prose = GateItem(
        "maths",
        MATHS_Q,
        "M_sh = 13.12 dB. That is 4.4 dB above typical.",
        [],
        MATHS_CONTEXT,
        MATHS_PLAN,
    )
    assert any("number 4.4" in r.detail for r in gate.check(prose))


def test_a_reversed_relation_is_rejected(gate: Gate) -> None:
    q = "What is the cause of Antenna feeder damage?"
    item = ts_item("Antenna feeder damage is caused by VSWR Over Threshold.", q)
    assert any(
        "reverses the graph's 'vswr over threshold indicates antenna feeder damage'" in r.detail
        for r in gate.check(item)
    )
