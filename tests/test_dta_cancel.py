"""A DTA run cancelled while a teacher is writing: the call stops within a token, the problem is
not stored (no half-judged candidates), and a resume solves it again from the start."""

from __future__ import annotations

from telesynth_tui.dta.runner import DtaConfig, DtaModels, DtaRunner, create_dta_run
from telesynth_tui.dta.solutions import ModelTeacher, SolverTeacher
from telesynth_tui.project import Project

from .fakes import FakeModel, HashEncoder

SOLUTION = '{"steps": ["Use the formula.", "Put in the inputs."], "final_answer": "42 dB"}'


def test_a_cancel_stops_the_teacher_within_a_token_and_stores_nothing_of_the_problem(
    bundled: Project,
) -> None:
    conn = bundled.connect()
    config = DtaConfig(student="student", teachers=["teacher"], n=3, rewriter=None, probes=0)
    run_id = create_dta_run(conn, config)
    teacher = FakeModel(SOLUTION, "teacher", piece_chars=2)
    models = DtaModels(
        FakeModel("x", "student"), [SolverTeacher(), ModelTeacher(teacher)], HashEncoder()
    )
    cancelled = False

    def cancel() -> bool:
        nonlocal cancelled
        # the second problem's teacher call is cancelled after 5 pieces
        cancelled = cancelled or (len(teacher.calls) == 2 and teacher.produced >= 5)
        return cancelled

    first = DtaRunner(conn, models).execute(run_id, cancel=cancel)
    assert first["plans_done"] == 1 and first["generated"] == 2
    assert teacher.produced == 5 < len(SOLUTION) // 2  # stopped within a token
    rows = conn.execute("SELECT plan_id FROM samples WHERE run_id = ?", (run_id,)).fetchall()
    assert len({r[0] for r in rows}) == 1  # only the first problem is stored
    assert conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == (
        "interrupted"
    )
    again = DtaRunner(conn, models).execute(run_id)
    assert again["plans_done"] == 3 and again["generated"] == 6
    assert len(teacher.calls) == 2 + 2  # the cancelled problem solved again, then the third
    solves = conn.execute(
        "SELECT plan_id, COUNT(*) FROM model_calls WHERE run_id = ? AND stage = 'solve'"
        " GROUP BY plan_id",
        (run_id,),
    ).fetchall()
    assert len(solves) == 3 and {n for _, n in solves} == {1}
