"""generate --parallel: plans decoded together store what one plan at a time stores; cancel and
resume keep each plan stored once."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline.runner import create_run
from telesynth_tui.pipeline.store import RunConfig
from telesynth_tui.project import Project
from tests.conftest import run_cli

pytestmark = pytest.mark.real_models  # the shipped tiny GGUF writes every plan

COLUMNS = "p.ordinal, s.type, s.status, s.reason, s.question, s.answer, s.raw_text, s.quality"


def stored(db: Path, run_id: int = 1) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            f"SELECT {COLUMNS} FROM samples s JOIN plans p ON p.id = s.plan_id"
            " WHERE s.run_id = ? ORDER BY p.ordinal, s.id",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_parallel_run_stores_what_a_sequential_run_stores(
    bundled_template: Path, tmp_path: Path
) -> None:
    runs = {}
    for parallel in (1, 4):
        path = tmp_path / f"p{parallel}"
        shutil.copytree(bundled_template, path)
        args = ["--n", "10", "--generator", "tiny-telesynth", "--seed", "4"]
        result = run_cli(
            "generate", *args, "--parallel", str(parallel), "--json", project=path, check=True
        )
        summary = json.loads(result.stdout)
        assert summary["plans_done"] == 10 and summary["parallel"] == parallel
        runs[parallel] = stored(path / "telesynth.db")
    assert runs[4] == runs[1]  # temperature 0: the batch changes nothing but the speed
    text = run_cli(
        "generate",
        "--n",
        "2",
        "--generator",
        "tiny-telesynth",
        "--parallel",
        "2",
        project=tmp_path / "p4",
        check=True,
    )
    assert "2 plans decoded together" in text.stdout


def test_parallel_cancel_and_resume_store_each_plan_once(bundled: Project) -> None:
    conn = bundled.connect()
    config = RunConfig(n=12, seed=2, generator="tiny-telesynth")
    run_id = create_run(conn, config)
    runner = bundled.runner(conn, config)
    seen: list[int] = []
    summary = runner.execute(
        run_id, lambda p: seen.append(p.done), cancel=lambda: len(seen) >= 3, parallel=4
    )
    assert 3 <= summary["plans_done"] < 12
    done_first = summary["plans_done"]
    # the plans stored are the first ones, in order; none of the others left a sample
    ordinals = [r[0] for r in stored(bundled.database, run_id)]
    assert sorted(set(ordinals)) == list(range(done_first))
    summary = runner.execute(run_id, parallel=3)
    assert summary["plans_done"] == 12
    # one writer call stored per plan: no plan was stored twice
    per_plan = conn.execute(
        "SELECT plan_id, COUNT(*) FROM model_calls WHERE run_id = ? AND stage = 'generate'"
        " GROUP BY plan_id",
        (run_id,),
    ).fetchall()
    assert len(per_plan) == 12 and all(n == 1 for _, n in per_plan)
    done_marks = conn.execute(
        "SELECT COUNT(*) FROM plans WHERE run_id = ? AND status = 'done'", (run_id,)
    ).fetchone()[0]
    assert done_marks == 12
    calls = conn.execute(
        "SELECT metrics FROM model_calls WHERE run_id = ? AND stage = 'generate'", (run_id,)
    ).fetchall()
    batched = [json.loads(m)["extra"] for (m,) in calls]
    assert any(e.get("batched") for e in batched)


def test_parallel_needs_a_gguf_writer_and_a_positive_count(bundled: Project) -> None:
    conn = bundled.connect()
    config = RunConfig(n=2, seed=1)
    run_id = create_run(conn, config)
    runner = bundled.runner(conn, config)
    with pytest.raises(TelesynthError, match="--parallel must be at least 1"):
        runner.execute(run_id, parallel=0)
    # the template realizer has no model: --parallel changes nothing
    assert runner.execute(run_id, parallel=4)["plans_done"] == 2
    bad = run_cli("generate", "--n", "2", "--parallel", "0", project=bundled.path)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
