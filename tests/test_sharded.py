"""Generation sharded over a local Ray cluster started by the test (`ray.init(num_cpus=2)`):
the same samples as a local run at temperature 0, a worker killed mid-run still gives a complete
run with no plan stored twice, and a run without --ray never imports Ray."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.runner import create_run
from telesynth_tui.pipeline.store import Progress, RunConfig, load_run
from telesynth_tui.project import Project

from .conftest import OFFLINE_DIR, copy_project

pytestmark = [pytest.mark.slow, pytest.mark.real_models]

PLANS = 8


def _samples(conn: sqlite3.Connection, run_id: int) -> list[tuple[Any, ...]]:
    """What a run stored, by plan ordinal (ids differ between projects)."""
    return conn.execute(
        "SELECT p.ordinal, s.type, s.status, s.reason, s.question, s.answer, s.steps, s.cited,"
        " s.context, s.raw_text, s.quality FROM samples s JOIN plans p ON p.id = s.plan_id"
        " WHERE s.run_id = ? ORDER BY p.ordinal, s.id",
        (run_id,),
    ).fetchall()


def _local_run(project: Project, config: RunConfig) -> tuple[sqlite3.Connection, int]:
    conn = project.connect()
    run_id = create_run(conn, config)
    with store.writing(conn, run_id):
        project.runner(conn, config).execute(run_id)
    return conn, run_id


def _sharded_run(
    project: Project, config: RunConfig, on_progress: Any = None
) -> tuple[sqlite3.Connection, int, dict[str, Any]]:
    from telesynth_tui.pipeline.sharded import sharded_runner

    conn = project.connect()
    run_id = create_run(conn, config)
    with store.writing(conn, run_id):
        runner, pool = sharded_runner(project, conn, config, "auto", workers=2)
        try:
            summary = runner.execute(run_id, lambda p: on_progress and on_progress(p, pool))
        finally:
            pool.close()
    return conn, run_id, summary


def test_a_sharded_run_equals_a_local_run(
    ray_cluster: Any, bundled_template: Path, tmp_path: Path
) -> None:
    config = RunConfig(n=PLANS, seed=3, generator="tiny-telesynth", max_tokens=200)
    local_conn, local_id = _local_run(copy_project(bundled_template, tmp_path, "local"), config)
    conn, run_id, summary = _sharded_run(
        copy_project(bundled_template, tmp_path, "sharded"), config
    )
    assert summary["plans_done"] == PLANS
    local = _samples(local_conn, local_id)
    assert len(local) >= PLANS and _samples(conn, run_id) == local
    workers = {
        json.loads(m)["extra"]["ray_worker"]
        for (m,) in conn.execute("SELECT metrics FROM model_calls WHERE stage = 'generate'")
    }
    assert len(workers) == 2  # both workers wrote


def test_a_worker_killed_mid_run_still_gives_a_complete_run(
    ray_cluster: Any, bundled_template: Path, tmp_path: Path
) -> None:
    config = RunConfig(n=PLANS, seed=5, generator="tiny-telesynth", max_tokens=200)
    local_conn, local_id = _local_run(copy_project(bundled_template, tmp_path, "local"), config)
    killed: list[int] = []

    def kill_one(progress: Progress, pool: Any) -> None:
        if progress.done == 2 and not killed:  # plans 3.. are in the workers' hands
            ray_cluster.kill(pool.actors[0], no_restart=False)
            killed.append(progress.done)

    conn, run_id, summary = _sharded_run(
        copy_project(bundled_template, tmp_path, "sharded"), config, kill_one
    )
    assert killed and summary["plans_done"] == PLANS
    assert _samples(conn, run_id) == _samples(local_conn, local_id)
    per_plan = conn.execute(
        "SELECT plan_id, COUNT(*) FROM model_calls WHERE run_id = ? AND stage = 'generate'"
        " GROUP BY plan_id",
        (run_id,),
    ).fetchall()
    assert len(per_plan) == PLANS and {n for _, n in per_plan} == {1}  # no plan stored twice
    workers = {
        json.loads(m)["extra"]["ray_worker"]
        for (m,) in conn.execute("SELECT metrics FROM model_calls WHERE stage = 'generate'")
    }
    assert len(workers) == 3  # the killed worker came back as a new process


def test_an_interrupted_sharded_run_resumes_to_the_local_result(
    ray_cluster: Any, bundled_template: Path, tmp_path: Path
) -> None:
    from telesynth_tui.pipeline.sharded import sharded_runner

    config = RunConfig(n=PLANS, seed=7, generator="tiny-telesynth", max_tokens=200)
    local_conn, local_id = _local_run(copy_project(bundled_template, tmp_path, "local"), config)
    project = copy_project(bundled_template, tmp_path, "sharded")
    conn = project.connect()
    run_id = create_run(conn, config)
    stored: list[int] = []
    for stop_after in (3, None):  # stopped after 3 plans, then resumed to the end
        with store.writing(conn, run_id):
            runner, pool = sharded_runner(project, conn, load_run(conn, run_id)[0], "auto", 2)
            try:
                summary = runner.execute(
                    run_id,
                    lambda p: stored.append(p.done),
                    lambda stop=stop_after: stop is not None and len(stored) >= stop,
                )
            finally:
                pool.close()
        if stop_after is not None:
            assert summary["plans_done"] == 3
    assert summary["plans_done"] == PLANS
    assert _samples(conn, run_id) == _samples(local_conn, local_id)


TELEQNA = {
    f"question {i}": {"question": q, "option 1": a, "option 2": b, "answer": f"option 1: {a}"}
    for i, (q, a, b) in enumerate(
        [
            ("Which channel carries the random access preamble?", "PRACH", "PDSCH"),
            ("Which counter counts RRC setup attempts?", "pmRrcConnEstabAtt", "pmPrbUsedDl"),
            ("What does VSWR measure?", "antenna mismatch", "paging load"),
            ("Which parameter sets the PRACH root sequence?", "rootSequenceIndex", "qRxLevMin"),
            ("What raises the uplink interference alarm?", "high RSSI", "low traffic"),
        ]
    )
}


def test_eval_on_ray_workers_equals_a_local_eval(
    ray_cluster: Any, bundled_template: Path, tmp_path: Path
) -> None:
    from telesynth_tui.evaluate.student import run_evaluation
    from telesynth_tui.pipeline.sharded import sharded_model

    items = tmp_path / "teleqna.json"
    items.write_text(json.dumps(TELEQNA))
    project = copy_project(bundled_template, tmp_path, "eval")
    conn = project.connect()
    encoder = project.encoder()
    outputs = []
    for student in (
        project.generator("tiny-telesynth"),
        sharded_model(project, "tiny-telesynth", "auto", workers=2),
    ):
        try:
            summary = run_evaluation(conn, student, encoder, items, "teleqna", max_tokens=12)
        finally:
            student.close()
        outputs.append(
            conn.execute(
                "SELECT item_id, output, correct FROM eval_items WHERE eval_run_id = ?"
                " ORDER BY item_id",
                (summary["eval_run"],),
            ).fetchall()
        )
        assert summary["items"] == len(TELEQNA)
    assert outputs[0] == outputs[1] and any(output for _, output, _ in outputs[0])
    workers = {
        json.loads(m)["extra"]["ray_worker"]
        for (m,) in conn.execute(
            "SELECT metrics FROM eval_items WHERE eval_run_id = ?", (summary["eval_run"],)
        )
    }
    assert len(workers) == 2


def test_without_ray_nothing_of_ray_is_imported(bundled_template: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(bundled_template, project)
    code = (
        "import sys\n"
        "from telesynth_tui.cli import app\n"
        "import telesynth_tui.pipeline.sharded\n"
        f"sys.argv = ['telesynth', '--project', {str(project)!r}, 'generate', '--n', '2']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('ray loaded' if any(m == 'ray' or m.startswith('ray.') for m in sys.modules)"
        " else 'no ray')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(OFFLINE_DIR)}  # the network blocked, as run_cli does
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("no ray")


def test_the_local_dashboard_is_started_with_a_home_that_stops_its_cloud_probe(
    tmp_path: Path,
) -> None:
    """Ray's head dashboard asks cloud metadata addresses which cloud it runs on unless its home
    holds `ray_bootstrap_config.yaml`: a local start gives that process such a home."""
    pytest.importorskip("ray")
    from ray._private import ray_constants, services

    from telesynth_tui.pipeline.sharded import _dashboard_asks_no_cloud

    start = services.start_ray_process
    said = tmp_path / "said"
    show_home = [sys.executable, "-c", "import os; print(os.environ['HOME'])"]
    with _dashboard_asks_no_cloud(), said.open("w") as out:
        for kind in (ray_constants.PROCESS_TYPE_DASHBOARD, ray_constants.PROCESS_TYPE_MONITOR):
            services.start_ray_process(
                show_home, kind, stdout_file=out, fate_share=False
            ).process.wait()
    dashboard_home, monitor_home = said.read_text().split()
    assert (Path(dashboard_home) / "ray_bootstrap_config.yaml").read_text() == "{}\n"
    assert monitor_home == os.environ["HOME"]  # the other processes keep the user's home
    assert services.start_ray_process is start
