"""Pipeline stages with fake models, and runs on the real embedded defaults."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from telesynth_tui.graph.formulas import formula_from_mapping
from telesynth_tui.pipeline.filters import Filters, FilterSettings
from telesynth_tui.pipeline.plans import PLAN_TYPES, Planner, allocate
from telesynth_tui.pipeline.realize import TemplateRealizer
from telesynth_tui.project import Project
from telesynth_tui.units import check_numeric

from .conftest import OFFLINE_DIR, run_cli
from .fakes import EndsCleanlyHead, filter_encoder


def test_allocate_covers_every_type() -> None:
    counts = allocate(100, {t: 1.0 for t in PLAN_TYPES})
    assert sum(counts.values()) == 100 and set(counts) == set(PLAN_TYPES)
    assert allocate(7, {"maths": 0.9, "factual": 0.1}) == {"maths": 6, "factual": 1}


def test_plans_are_reproducible_by_seed(bundled: Project) -> None:
    conn = bundled.connect()
    counts = allocate(20, {t: 1.0 for t in PLAN_TYPES})
    first = [p.to_json() for p in Planner(conn, 5).plans(counts)]
    again = [p.to_json() for p in Planner(conn, 5).plans(counts)]
    other = [p.to_json() for p in Planner(conn, 6).plans(counts)]
    assert first == again and first != other
    assert {json.loads(p).get("entity_ids") is not None for p in first} == {True}


def test_planner_prefers_least_used_relations(bundled: Project) -> None:
    planner = Planner(bundled.connect(), 1)
    seen = [planner.factual().relation_ids[0] for _ in range(30)]
    assert len(set(seen)) == 30  # nothing reused while unused relations remain


def test_maths_plans_sample_valid_inputs_and_the_realized_answer_verifies(bundled: Project) -> None:
    conn = bundled.connect()
    planner = Planner(conn, 3)
    realizer = TemplateRealizer(3)
    for _ in range(40):
        plan = planner.maths()
        assert plan is not None
        p = plan.payload
        row = conn.execute(
            "SELECT expression, variables, conditions FROM formulas WHERE slug = ?", (p["formula"],)
        ).fetchone()
        raw = {
            "id": p["formula"],
            "name": p["name"],
            "expression": row[0],
            "conditions": json.loads(row[2]),
        }
        spec = formula_from_mapping({**raw, "variables": json.loads(row[1])})
        for var in spec.variables:
            assert var.min <= p["inputs"][var.symbol] <= var.max
        assert spec.evaluate(p["inputs"]) == pytest.approx(p["answer"])
        answer = realizer.realize("maths", p).answer
        assert check_numeric(answer, p["answer"], p["unit"]).ok, answer
        assert not check_numeric(answer, p["answer"] * 1.2 + 1, p["unit"]).ok


def test_filters_with_fake_models() -> None:
    head = EndsCleanlyHead()
    filters = Filters(filter_encoder(), head, FilterSettings(duplicate=0.95))  # type: ignore[arg-type]
    context = ["uplink interference raises the rssi of the cell"]
    verdicts, vectors = filters.run(
        "why is rssi high on the cell", "The context does not say.", context, "factual", {}
    )
    by = {v.filter: v for v in verdicts}
    assert not by["unanswered"].passed and "declines" in by["unanswered"].detail
    verdicts, vectors = filters.run(
        "why is rssi high on the cell", "uplink interference raises", context, "factual", {}
    )
    by = {v.filter: v for v in verdicts}
    assert by["unanswered"].passed and not by["unfinished"].passed
    filters.accept(vectors["question"])
    verdicts, _ = filters.run(
        "why is rssi high on the cell", "Uplink interference raises it.", context, "factual", {}
    )
    assert not {v.filter: v for v in verdicts}["duplicate"].passed
    verdicts, _ = filters.run(
        "what is the weather in paris", "It is sunny today.", context, "factual", {}
    )
    assert not {v.filter: v for v in verdicts}["unrelated"].passed
    maths = {"answer": 47.67, "unit": "dB"}
    ok, _ = filters.run("fspl?", "L = 47.67 dB.", ["fspl formula"], "maths", maths)
    bad, _ = filters.run("fspl?", "L = 52 dB.", ["fspl formula"], "maths", maths)
    assert {v.filter: v.passed for v in ok}["maths"] and not {v.filter: v.passed for v in bad}[
        "maths"
    ]


# --- the real embedded defaults ---------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    proj = tmp_path_factory.mktemp("gen") / "p"
    run_cli("init", project=proj, check=True)
    result = run_cli("generate", "--n", "100", "--seed", "11", "--json", project=proj, check=True)
    (proj / "summary.json").write_text(result.stdout)
    return proj


def test_generate_100_on_the_embedded_defaults(generated: Path) -> None:
    summary = json.loads((generated / "summary.json").read_text())
    assert summary["plans_done"] == 100 and summary["generated"] >= 100
    assert summary["accepted"] >= 70
    assert set(summary["by_type"]) == set(PLAN_TYPES)
    assert all(c.get("accepted", 0) > 0 for c in summary["by_type"].values())
    conn = sqlite3.connect(generated / "telesynth.db")
    rows = conn.execute(
        "SELECT question, type, answer, scores, status, reason FROM samples"
    ).fetchall()
    assert all(r[4] == "accepted" or r[5] for r in rows)  # every rejection says why
    accepted = [r for r in rows if r[4] == "accepted"]
    proj = Project.open(generated)
    vectors = proj.encoder().embed([r[0] for r in accepted])
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, 0)
    assert sims.max() <= 0.95
    for _, type_, answer, scores, _, _ in accepted:
        if type_ == "maths":
            assert json.loads(scores)["filters"]["maths"]["passed"], answer


def test_exports_parse_back(generated: Path, tmp_path: Path) -> None:
    for fmt in ("sft", "rft", "csv"):
        out = tmp_path / f"out.{'csv' if fmt == 'csv' else 'jsonl'}"
        args = ("export", "1", "--format", fmt, "--out", str(out), "--force", "--json")
        data = json.loads(run_cli(*args, project=generated, check=True).stdout)
        card = out.with_suffix(".card.md").read_text()
        assert card.startswith("---\n") and "# Dataset card: run 1" in card
        if fmt == "csv":
            import csv

            rows = list(csv.DictReader(out.open()))
            assert len(rows) == data["records"] >= 100
            continue
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == data["records"]
        if fmt == "sft":
            assert len(records) >= 70
            for r in records:
                roles = [m["role"] for m in r["messages"]]
                assert roles == ["system", "user", "assistant"] and r["messages"][2]["content"]
                assert r["metadata"]["context_ids"] and r["metadata"]["plan_id"]
        if fmt == "rft":
            maths = [r for r in records if r["type"] == "maths"]
            assert maths and all({"numeric_answer", "unit", "tolerance"} <= set(r) for r in maths)
            assert all(r["rubric"] and r["reference_answer"] for r in records)
    # the KG-template generator writes one answer per plan: no DPO pairs, no file, non-zero exit
    dpo = run_cli(
        "export", "1", "--format", "dpo", "--out", str(tmp_path / "d.jsonl"), project=generated
    )
    assert dpo.returncode == 2 and "no DPO pairs" in dpo.stderr
    assert not (tmp_path / "d.jsonl").exists()


def test_resume_after_kill_loses_nothing(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", project=proj, check=True)
    env = {**os.environ, "PYTHONPATH": str(OFFLINE_DIR)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "telesynth_tui.cli",
            "--project",
            str(proj),
            "generate",
            "--n",
            "40",
            "--seed",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    db_path = proj / "telesynth.db"
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and done < 5:
        time.sleep(0.5)
        try:
            with sqlite3.connect(db_path, timeout=5) as conn:
                done = conn.execute("SELECT COUNT(*) FROM plans WHERE status='done'").fetchone()[0]
        except sqlite3.OperationalError:
            continue
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 5 <= done < 40
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0] == "running"
    before = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    result = json.loads(
        run_cli("generate", "--resume", "1", "--json", project=proj, check=True).stdout
    )
    assert result["plans_done"] == 40
    per_plan = conn.execute("SELECT plan_id, COUNT(*) FROM samples GROUP BY plan_id").fetchall()
    assert len(per_plan) == 40 and all(n == 1 for _, n in per_plan)  # no plan run twice
    assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] >= before
    assert conn.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0] == "finished"


@pytest.mark.real_models
def test_tiny_gguf_run_completes_and_rejections_keep_raw_text(generated: Path) -> None:
    result = run_cli(
        "generate",
        "--n",
        "6",
        "--generator",
        "tiny-telesynth",
        "--seed",
        "5",
        "--json",
        project=generated,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["plans_done"] == 6
    assert summary["output_tokens"] > 0 and summary["energy_source"] in ("rapl", "estimate")
    conn = sqlite3.connect(generated / "telesynth.db")
    stages = dict(
        conn.execute(
            "SELECT stage, COUNT(*) FROM model_calls WHERE run_id = ? GROUP BY stage",
            (summary["run_id"],),
        ).fetchall()
    )
    assert stages["generate"] == 6 and summary["model_calls"] == sum(stages.values())
    rows = conn.execute(
        "SELECT status, reason, raw_text FROM samples WHERE run_id = ?", (summary["run_id"],)
    ).fetchall()
    assert rows and all(reason for status, reason, _ in rows if status == "rejected")
    # every rejection of what the model wrote keeps its raw text (a plan whose prompt or answer
    # cannot fit the context is refused before the model is called, so it has none)
    unwritten = ("output budget cannot hold", "does not fit")
    written = [(r, raw) for _, r, raw in rows if r and r.startswith(("generate", "cut"))]
    assert all(raw for r, raw in written if not any(u in r for u in unwritten))
    if summary["accepted"] == 0:
        assert "why_nothing_accepted" in summary


def test_planner_steers_away_from_what_stored_samples_asked(bundled: Project) -> None:
    conn = bundled.connect()
    first = Planner(conn, 1).factual().relation_ids[0]
    asked = [{"relation_ids": [first], "entity_ids": []}]
    assert Planner(conn, 1, asked).factual().relation_ids[0] != first
