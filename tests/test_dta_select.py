"""DTA selection with real-teacher failure modes: the value read from an answer is the one given
for the asked quantity (never a restated input), a cut-off solution is never an exemplar, and
ties go to the verified solver."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from telesynth_tui.dta.runner import DtaConfig, DtaModels, DtaRunner, create_dta_run
from telesynth_tui.dta.select import (
    Exemplar,
    Thresholds,
    agree_numeric,
    numeric_value,
    select,
    unfinished,
)
from telesynth_tui.dta.solutions import ModelTeacher, Problem, Solution, SolverTeacher
from telesynth_tui.project import Project

from .fakes import HashEncoder, RoleModel


def _friis(nf1_db: float, g1_db: float, nf2_db: float) -> float:
    lin = lambda db: 10 ** (db / 10)  # noqa: E731
    return 10 * math.log10(lin(nf1_db) + (lin(nf2_db) - 1) / lin(g1_db))


def friis_problem() -> Problem:
    inputs = {"nf1_db": 5.08, "g1_db": 26.5, "nf2_db": 3.0}
    truth = _friis(**inputs)
    payload = {
        "formula": "friis_nf_two_stage_db",
        "name": "Two-stage cascade noise figure",
        "expression": "linear_to_db(db_to_linear(nf1_db) + (db_to_linear(nf2_db) - 1)"
        "/db_to_linear(g1_db))",
        "inputs": inputs,
        "units": {"nf1_db": "dB", "g1_db": "dB", "nf2_db": "dB"},
        "descriptions": {},
        "answer": truth,
        "unit": "dB",
        "output_symbol": "NF_total",
        "tolerance": max(abs(truth) * 0.01, 1e-6),
    }
    question = "Compute NF_total for nf1_db = 5.08 dB, g1_db = 26.5 dB and nf2_db = 3 dB."
    return Problem(1, "maths", question, payload, [], "")


CUT_TEACHER = Solution(
    "qwen-0.5b",
    [
        "NF_total = linear_to_db(db_to_linear(nf1_db) + (db_to_linear(nf2_db) - 1)"
        "/db_to_linear(g1_db))",
        "Given nf1_db = 5.08 dB, g1_db = 26.5 dB, nf2_db = 3 dB.",
    ],
    "nf1_db = 5.08 dB, so NF_total = linear_to_db(db_to_linear(5.08) + (db_to_l1.",
    metrics={"stop_reason": "stop"},
)


def test_the_truth_is_near_the_echoed_input() -> None:
    problem = friis_problem()
    assert abs(problem.truth - 5.08) <= problem.payload["tolerance"]  # type: ignore[operator]
    assert round(problem.truth, 3) == 5.083  # type: ignore[arg-type]


def test_an_echoed_input_is_never_the_final_value() -> None:
    problem = friis_problem()
    value, detail = numeric_value(CUT_TEACHER.final, problem)
    assert value is None, detail
    assert numeric_value("nf1_db = 5.08 dB.", problem)[0] is None
    # the output symbol's last statement wins over earlier restated inputs
    value, _ = numeric_value("nf1_db = 5.08 dB; NF_total = 5.083 dB", problem)
    assert value == 5.083
    # after a final-answer marker, restated inputs are skipped
    value, _ = numeric_value("With nf2_db = 3 dB. Final answer: 5.09 dB", problem)
    assert value == 5.09
    value, _ = numeric_value("Final answer: nf1_db = 5.08 dB", problem)
    assert value is None


def test_cut_or_unfinished_solutions_are_detected() -> None:
    assert unfinished(CUT_TEACHER) is not None
    assert "token limit" in (
        unfinished(Solution("t", ["a"], "x = 3 dB", metrics={"stop_reason": "length"})) or ""
    )
    assert unfinished(Solution("t", ["a"], "NF_total = 5.08 +")) is not None
    assert unfinished(Solution("t", ["a"], "x" * 100)) is not None  # cut by the schema's bound
    assert unfinished(Solution("t", ["a"], "NF_total = 5.08 dB")) is None
    assert unfinished(SolverTeacher().solve(friis_problem())) is None


def test_a_cut_teacher_answer_is_never_selected_over_the_solver() -> None:
    problem = friis_problem()
    solver = Exemplar(
        SolverTeacher().solve(problem), judge={"by": "step-check", "score": 0.98}, style=0.5
    )
    teacher = Exemplar(CUT_TEACHER, judge={"by": "step-check", "score": 0.98}, style=0.5)
    agree_numeric(problem, [teacher, solver])
    assert solver.agreement["truth"] and not teacher.agreement["truth"]
    best = select([teacher, solver], Thresholds())
    assert best is solver and teacher.status == "rejected"
    assert teacher.reason.startswith("cut: "), teacher.reason


def test_ties_go_to_the_verified_solver() -> None:
    problem = friis_problem()
    solver = Exemplar(SolverTeacher().solve(problem), judge={"score": 0.98}, style=0.5)
    teacher = Exemplar(
        Solution("qwen-0.5b", ["Use Friis."], "NF_total = 5.083 dB"),
        judge={"score": 0.98},
        style=0.5,
    )
    agree_numeric(problem, [teacher, solver])
    assert teacher.agreement["truth"] and teacher.score == solver.score
    assert select([teacher, solver], Thresholds()) is solver
    assert teacher.reason.startswith("not selected: solver's exemplar")


def _echo(cut: bool) -> Any:
    """A teacher that restates the question's first input as its answer (cut mid-formula when
    `cut`), the failure seen with a small real teacher."""

    def reply(prompt: str) -> str:
        question = prompt.split("Problem:", 1)[1]
        found = re.search(r"\((\w+)\) = ([-\d.e+]+) ?([^\s,.]*)", question)
        assert found, prompt
        symbol, value, unit = found.groups()
        final = f"{symbol} = {value} {unit}".strip()
        if cut:
            final += f", so the result = linear_to_db(db_to_linear({value}) + (db_to_l1."
        return json.dumps({"steps": [f"Given {symbol} = {value} {unit}."], "final_answer": final})

    return reply


def test_a_dta_run_never_selects_an_echoed_or_cut_teacher_answer(bundled: Project) -> None:
    conn = bundled.connect()
    student = RoleModel("student", {"Answer the telecom": "Working.\nAnswer: 1 dB"})
    cut = RoleModel("cut", {"senior RAN engineer": _echo(cut=True)})
    echo = RoleModel("echo", {"senior RAN engineer": _echo(cut=False)})
    config = DtaConfig(
        student="student",
        teachers=["cut", "echo"],
        n=8,
        seed=4,
        mix={"maths": 1.0},
        rewriter=None,
        probes=1,
    )
    run_id = create_dta_run(conn, config)
    models = DtaModels(
        student, [ModelTeacher(cut), ModelTeacher(echo), SolverTeacher()], HashEncoder()
    )
    summary = DtaRunner(conn, models).execute(run_id)
    assert summary["plans_done"] == 8 and summary["selected_by_teacher"] == {"solver": 8}
    rows = conn.execute(
        "SELECT generator, status, reason FROM samples WHERE run_id = ?", (run_id,)
    ).fetchall()
    reasons = {g: {r for gen, _, r in rows if gen == g} for g in ("cut", "echo")}
    assert all(r.startswith("cut: ") for r in reasons["cut"]), reasons["cut"]
    assert reasons["echo"] == {"agreement: no value stated for the asked quantity"}
