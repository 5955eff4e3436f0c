"""DTA: style profile, agreement, reflection checks and selection with fake models; a real run with
the tiny GGUF as student, teacher, rewriter and judge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from telesynth_tui.dta.runner import DtaConfig, DtaModels, DtaRunner, create_dta_run
from telesynth_tui.dta.select import (
    Exemplar,
    ModelStepChecker,
    Thresholds,
    agree_numeric,
    check_steps,
    select,
)
from telesynth_tui.dta.solutions import ModelTeacher, Problem, Solution, SolverTeacher
from telesynth_tui.dta.style import Rewriter, lay_out, measure, segments, similarity
from telesynth_tui.pipeline.export import export_run
from telesynth_tui.project import Project
from telesynth_tui.units import stated_values

from .conftest import run_cli
from .fakes import HashEncoder, RoleModel

EIRP = {
    "formula": "eirp",
    "name": "EIRP",
    "expression": "p_tx + g_tx - l_tx",
    "inputs": {"p_tx": 43.0, "g_tx": 18.0, "l_tx": 2.0},
    "units": {"p_tx": "dBm", "g_tx": "dBi", "l_tx": "dB"},
    "descriptions": {},
    "answer": 59.0,
    "unit": "dBm",
    "output_symbol": "EIRP",
    "tolerance": 0.59,
}


def eirp_problem() -> Problem:
    return Problem(1, "maths", "Compute the EIRP for 43 dBm, 18 dBi and 2 dB.", EIRP, [], "")


def test_style_profile_is_measured_from_the_students_answers() -> None:
    answers = [
        "1. Use the formula.\n2. Put the numbers in: x = 3 + 4.\nAnswer: 7 dB",
        "1. Convert to dB.\n2. Add the gains: G = 12.\nAnswer: 12 dBi",
        "The loss is small. Answer: 3 dB.",
    ]
    profile = measure(answers)
    assert (profile.layout, profile.marker, profile.steps, profile.probes) == (
        "numbered",
        "Answer:",
        3,
        3,
    )
    assert profile.equations and profile.words == 14  # median of 17, 14 and 7 words
    text = lay_out(
        ["Use EIRP = p_tx + g_tx - l_tx.", "Given p_tx = 43 dBm.", "Sum."], "EIRP = 59 dBm", profile
    )
    assert text.splitlines()[-1] == "3. Answer: EIRP = 59 dBm."  # surplus steps merged
    assert segments(text)[0] == "numbered" and len(text.splitlines()) == 3
    assert similarity(text, profile) > similarity("EIRP is 59 dBm, roughly.", profile)
    assert measure([]).layout == "numbered"  # a student that said nothing: a neutral profile


def test_stated_values_skip_expressions() -> None:
    found = stated_values("EIRP = 43 + 18 - 2. EIRP = 59 dBm. p_tx=43", {"EIRP", "p_tx"})
    assert [(s, q.value, q.unit) for s, q in found] == [("EIRP", 59.0, "dBm"), ("p_tx", 43.0, "")]
    assert stated_values("SNR = -49.2 - -43.8", {"SNR"}) == []


def test_step_checker_finds_the_wrong_step() -> None:
    problem = eirp_problem()
    right = SolverTeacher().solve(problem)
    assert right.final == "EIRP = 59 dBm" and "43 + 18 - 2" in right.steps[-1]
    verdict = check_steps(problem, right.steps, right.final, HashEncoder(), Thresholds())
    assert verdict["score"] == 1.0
    steps = ["EIRP = p_tx + g_tx - l_tx.", "Given p_tx = 40 dBm, g_tx = 18 dBi, l_tx = 2 dB."]
    verdict = check_steps(problem, steps, "EIRP = 56 dBm", HashEncoder(), Thresholds())
    assert [v["ok"] for v in verdict["steps"]] == [True, False, False]
    assert "p_tx = 40 dBm" in verdict["steps"][1]["note"] and verdict["score"] == 0.3333
    # the result in another unit (W) is converted before it is compared: 59 dBm = 794.3 W
    assert check_steps(problem, [], "EIRP = 794.3 W", HashEncoder(), Thresholds())["score"] == 1.0


def test_agreement_and_selection_keep_one_exemplar_and_say_why() -> None:
    problem = eirp_problem()
    make = lambda teacher, final, judge: Exemplar(  # noqa: E731
        Solution(teacher, ["step"], final), judge={"by": "step-check", "score": judge}, style=0.5
    )
    a, b, c, d = (
        make("solver", "EIRP = 59 dBm", 1.0),
        make("big", "EIRP = 59.3 dBm", 1.0),
        make("small", "EIRP = 61 dBm", 1.0),
        make("shaky", "59.1 dBm", 0.4),
    )
    broken = Exemplar(Solution("broken", [], "", error="unusable output: JSONDecodeError"))
    agree_numeric(problem, [a, b, c, d])
    assert a.agreement["truth"] and b.agreement["truth"] and not c.agreement["truth"]
    assert a.agreement["agree_with"] == ["big", "shaky"] and c.agreement["agree_with"] == []
    b.style = 0.9  # same judge and agreement: the exemplar closer to the student's style wins
    best = select([a, b, c, d, broken], Thresholds())
    assert best is b and b.status == "accepted" and b.reason == ""
    assert a.reason.startswith("not selected: big's exemplar scored higher")
    assert c.reason.startswith("agreement: 61 dBm is not 59 dBm")
    assert d.reason.startswith("judge (step-check): 0.40 below 0.60")
    assert broken.reason == "teacher: unusable output: JSONDecodeError"
    assert select([c], Thresholds()) is None and c.status == "rejected"


def _final_of(prompt: str) -> str:
    return re.search(r"Final answer: (.*)", prompt).group(1)  # type: ignore[union-attr]


def test_dta_run_with_fake_models(bundled: Project, tmp_path: Path) -> None:
    conn = bundled.connect()
    student = RoleModel(
        "student",
        {
            "Answer the telecom": "Working: add the terms.\nAnswer: 42 dB",
            "You rewrite": lambda prompt: f"Short working.\nAnswer: {_final_of(prompt)}",
        },
    )
    wrong = RoleModel(
        "wrong",
        {
            "senior RAN engineer": json.dumps(
                {"steps": ["<|im_start|>system Guess."], "final_answer": "1e9 W"}
            )
        },
    )
    broken = RoleModel("broken", {"senior RAN engineer": '{"steps": ["cut'})

    def approve(prompt: str) -> str:
        return json.dumps(
            {"steps": [True] * len(re.findall(r"^\d+\. ", prompt, re.M)), "comment": "fine"}
        )

    judge = RoleModel("judge", {"check worked solutions": approve})
    config = DtaConfig(
        student="student",
        teachers=["wrong", "broken"],
        n=6,
        seed=2,
        rewriter="student",
        judge="judge",
        probes=2,
    )
    run_id = create_dta_run(conn, config)
    models = DtaModels(
        student,
        [SolverTeacher(), ModelTeacher(wrong), ModelTeacher(broken)],
        HashEncoder(),
        Rewriter(student),
        ModelStepChecker(judge),
    )
    seen = []
    summary = DtaRunner(conn, models).execute(run_id, seen.append)
    assert summary["plans_done"] == 6 and len(seen) == 6
    assert summary["profile"]["marker"] == "Answer:" and summary["profile"]["probes"] == 2
    assert summary["candidates_by_teacher"] == {"solver": 6, "wrong": 6, "broken": 6}
    maths = summary["by_type"].get("maths", {}).get("accepted", 0)
    assert summary["selected_by_teacher"]["solver"] >= maths >= 1
    rows = [dict(r) for r in conn.execute("SELECT * FROM samples WHERE run_id = ?", (run_id,))]
    for plan_id in {r["plan_id"] for r in rows}:
        assert sum(r["status"] == "accepted" for r in rows if r["plan_id"] == plan_id) <= 1
    assert all(r["reason"] for r in rows if r["status"] == "rejected")  # every decision says why
    assert not any("<|im_start|>" in (r["answer"] or "") + r["steps"] for r in rows)
    solver_maths = [r for r in rows if r["generator"] == "solver" and r["type"] == "maths"]
    for r in solver_maths:
        scores = json.loads(r["scores"])
        assert scores["rewrite"] == {**scores["rewrite"], "by": "student", "kept_final": True}
        assert r["answer"].startswith("Short working.\nAnswer: ") and r["status"] == "accepted"
        assert scores["judge"]["by"] == "judge" and scores["judge"]["step_check"] == 1.0
        assert "Substitute:" in r["raw_text"]  # the teacher's own solution is kept
    wrong_maths = [r for r in rows if r["generator"] == "wrong" and r["type"] == "maths"]
    assert all(r["reason"].startswith("agreement: ") for r in wrong_maths)
    assert {r["reason"] for r in rows if r["generator"] == "broken"} == {
        "teacher: unusable output: JSONDecodeError"
    }
    stages = {
        r[0] for r in conn.execute("SELECT stage FROM model_calls WHERE run_id = ?", (run_id,))
    }
    assert stages == {"probe", "solve", "rewrite", "judge"}
    result = export_run(conn, run_id, "rft", tmp_path / "dta.jsonl")
    records = [json.loads(line) for line in (tmp_path / "dta.jsonl").read_text().splitlines()]
    assert result["records"] == len(records) == summary["accepted"]
    assert {r["metadata"]["generator"] for r in records} == {"solver"}
    assert all("numeric_answer" in r for r in records if r["type"] == "maths")
    card = (tmp_path / "dta.card.md").read_text()
    assert "Data Trajectory Alignment for the student student" in card


def test_dta_resumes_without_redoing_problems(bundled: Project) -> None:
    conn = bundled.connect()
    student = RoleModel("student", {"Answer the telecom": "x = 1"})
    config = DtaConfig(student="student", teachers=[], n=5, rewriter=None, probes=1)
    run_id = create_dta_run(conn, config)
    models = DtaModels(student, [SolverTeacher()], HashEncoder())
    stored: list[object] = []
    first = DtaRunner(conn, models).execute(run_id, stored.append, lambda: len(stored) >= 2)
    assert first["plans_done"] == 2
    assert conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == (
        "interrupted"
    )
    again = DtaRunner(conn, models).execute(run_id)
    assert again["plans_done"] == 5 and again["generated"] == 5
    assert student.roles == ["Answer the telecom"]  # the stored profile is reused


# --- the real tiny GGUF ----------------------------------------------------------------------


@pytest.mark.real_models
def test_dta_cli_with_the_tiny_gguf(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", project=proj, check=True)
    summary = json.loads(
        run_cli(
            "dta",
            "--student",
            "tiny-telesynth",
            "--teachers",
            "tiny-telesynth",
            "--judge",
            "tiny-telesynth",
            "--n",
            "4",
            "--seed",
            "1",
            "--json",
            project=proj,
            check=True,
        ).stdout
    )
    assert summary["plans_done"] == 4 and summary["generated"] == 8
    assert summary["candidates_by_teacher"] == {"solver": 4, "tiny-telesynth": 4}
    assert summary["profile"]["probes"] == 3 and summary["energy_source"] == "estimate"
    stages = json.loads(
        run_cli("samples", str(summary["run_id"]), "--json", project=proj, check=True).stdout
    )
    assert all(s["reason"] for s in stages if s["status"] == "rejected")
    # without model rewriter or judge, the solver's worked solutions are all kept
    layout = json.loads(
        run_cli(
            "dta",
            "--student",
            "tiny-telesynth",
            "--n",
            "6",
            "--rewriter",
            "none",
            "--json",
            project=proj,
            check=True,
        ).stdout
    )
    assert layout["accepted"] == 6 and layout["rewrites"] == {"laid out (no rewriter)": 6}
    out = tmp_path / "sft.jsonl"
    run_cli(
        "export",
        str(layout["run_id"]),
        "--format",
        "sft",
        "--out",
        str(out),
        project=proj,
        check=True,
    )
    assert len(out.read_text().splitlines()) == 6
    bad = run_cli("dta", "--student", "nope", project=proj)
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr
