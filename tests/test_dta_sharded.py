"""DTA sharded over a local Ray cluster started by the test (`ray.init(num_cpus=2)`): the same
samples as a local run at temperature 0 with the tiny GGUF as student, teacher, rewriter and
judge; a worker killed mid-run still gives a complete run with nothing stored twice; an
interrupted sharded run resumes to the local result; the CLI's `dta --ray`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from telesynth_tui.dta.runner import DtaConfig, DtaRunner, create_dta_run
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.store import Progress
from telesynth_tui.project import Project

from .conftest import copy_project, run_cli
from .servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.real_models]

PROBLEMS = 6
TINY = "tiny-telesynth"


def test_dta_cli_on_ray_workers(tmp_path: Path) -> None:
    pytest.importorskip("ray")  # first: its own Ray instance, before the module's cluster
    proj = tmp_path / "p"
    run_cli("init", project=proj, check=True)
    bad = run_cli("dta", "--student", TINY, "--ray", f"127.0.0.1:{free_port()}", project=proj)
    assert bad.returncode != 0 and "no Ray head answers" in bad.stderr
    assert "Traceback" not in bad.stderr
    lone = run_cli("dta", "--student", TINY, "--workers", "2", project=proj)
    assert lone.returncode != 0 and "--workers needs --ray" in lone.stderr
    # Ray's own node processes inherit the tests' network guard, which refuses the address
    # probe they start with (getaddrinfo of 192.0.2.2), so this run goes without the guard
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELESYNTH_", "RAY_"))}
    result = subprocess.run(
        [sys.executable, "-m", "telesynth_tui.cli", "--project", str(proj), "dta", "--student",
         TINY, "--teachers", TINY, "--n", "3", "--ray", "local", "--workers", "2"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "on 2 Ray workers" in result.stderr
    assert "run 1: 3/3 plans, 6 generated" in result.stdout
    assert "per Ray worker" in result.stdout


def _config(seed: int) -> DtaConfig:
    return DtaConfig(student=TINY, teachers=[TINY], n=PROBLEMS, seed=seed, judge=TINY, probes=2)


def _samples(conn: sqlite3.Connection, run_id: int) -> list[tuple[Any, ...]]:
    """What a run stored, by plan ordinal (ids differ between projects)."""
    return conn.execute(
        "SELECT p.ordinal, s.generator, s.type, s.status, s.reason, s.question, s.answer,"
        " s.steps, s.raw_text, s.scores, s.quality FROM samples s"
        " JOIN plans p ON p.id = s.plan_id WHERE s.run_id = ? ORDER BY p.ordinal, s.id",
        (run_id,),
    ).fetchall()


def _profile(conn: sqlite3.Connection, run_id: int) -> tuple[Any, ...]:
    row = conn.execute("SELECT profile, probes FROM dta_runs WHERE run_id = ?", (run_id,))
    profile, probes = row.fetchone()
    return json.loads(profile), [p["answer"] for p in json.loads(probes)]


def _local_run(project: Project, config: DtaConfig) -> tuple[sqlite3.Connection, int]:
    conn = project.connect()
    run_id = create_dta_run(conn, config)
    with store.writing(conn, run_id):
        DtaRunner(conn, project.dta_models(config)).execute(run_id)
    return conn, run_id


def _sharded_run(
    project: Project, config: DtaConfig, on_progress: Any = None
) -> tuple[sqlite3.Connection, int, dict[str, Any]]:
    from telesynth_tui.dta.sharded import sharded_dta

    conn = project.connect()
    run_id = create_dta_run(conn, config)
    with store.writing(conn, run_id):
        runner, pool = sharded_dta(project, conn, config, "auto", workers=2)
        try:
            summary = runner.execute(run_id, lambda p: on_progress and on_progress(p, pool))
        finally:
            pool.close()
    return conn, run_id, summary


def _stages(conn: sqlite3.Connection, run_id: int) -> list[tuple[Any, ...]]:
    """The model calls of a run: stage, model and output tokens, in order."""
    return conn.execute(
        "SELECT stage, model, json_extract(metrics, '$.output_tokens') FROM model_calls"
        " WHERE run_id = ? ORDER BY id",
        (run_id,),
    ).fetchall()


def _workers(conn: sqlite3.Connection, run_id: int, stage: str) -> set[str]:
    return {
        json.loads(m)["extra"]["ray_worker"]
        for (m,) in conn.execute(
            "SELECT metrics FROM model_calls WHERE run_id = ? AND stage = ?", (run_id, stage)
        )
    }


def test_a_sharded_dta_run_equals_a_local_run(
    ray_cluster: Any, bundled_template: Path, tmp_path: Path
) -> None:
    config = _config(seed=2)
    local_conn, local_id = _local_run(copy_project(bundled_template, tmp_path, "local"), config)
    conn, run_id, summary = _sharded_run(
        copy_project(bundled_template, tmp_path, "sharded"), config
    )
    assert summary["plans_done"] == PROBLEMS and summary["generated"] == 2 * PROBLEMS
    local = _samples(local_conn, local_id)
    assert len(local) == 2 * PROBLEMS and _samples(conn, run_id) == local
    assert _profile(conn, run_id) == _profile(local_conn, local_id)
    stages = [_stages(c, r) for c, r in ((conn, run_id), (local_conn, local_id))]
    assert stages[0] == stages[1] and {"probe", "solve", "judge"} <= {s for s, *_ in stages[0]}
    assert len(_workers(conn, run_id, "solve")) == 2  # both workers solved problems
    assert summary["ray_workers"] == 2


def test_a_dta_worker_killed_mid_run_still_gives_a_complete_run(
    ray_cluster: Any, bundled_template: Path, tmp_path: Path
) -> None:
    config = _config(seed=4)
    local_conn, local_id = _local_run(copy_project(bundled_template, tmp_path, "local"), config)
    killed: list[int] = []

    def kill_one(progress: Progress, pool: Any) -> None:
        if progress.done == 2 and not killed:  # problems 3.. are in the workers' hands
            ray_cluster.kill(pool.actors[0], no_restart=False)
            killed.append(progress.done)

    conn, run_id, summary = _sharded_run(
        copy_project(bundled_template, tmp_path, "sharded"), config, kill_one
    )
    assert killed and summary["plans_done"] == PROBLEMS
    assert _samples(conn, run_id) == _samples(local_conn, local_id)
    per_plan = conn.execute(
        "SELECT plan_id, COUNT(*) FROM samples WHERE run_id = ? GROUP BY plan_id", (run_id,)
    ).fetchall()
    assert len(per_plan) == PROBLEMS and {n for _, n in per_plan} == {2}  # solver + tiny
    solves = conn.execute(
        "SELECT plan_id, COUNT(*) FROM model_calls WHERE run_id = ? AND stage = 'solve'"
        " GROUP BY plan_id",
        (run_id,),
    ).fetchall()
    assert len(solves) == PROBLEMS and {n for _, n in solves} == {1}  # no problem stored twice
    assert len(_workers(conn, run_id, "solve")) == 3  # the killed worker came back


def test_an_interrupted_sharded_dta_run_resumes_to_the_local_result(
    ray_cluster: Any, bundled_template: Path, tmp_path: Path
) -> None:
    from telesynth_tui.dta.runner import load_dta_config
    from telesynth_tui.dta.sharded import sharded_dta

    config = _config(seed=6)
    local_conn, local_id = _local_run(copy_project(bundled_template, tmp_path, "local"), config)
    project = copy_project(bundled_template, tmp_path, "sharded")
    conn = project.connect()
    run_id = create_dta_run(conn, config)
    stored: list[int] = []
    for stop_after in (3, None):  # stopped after 3 problems, then resumed to the end
        stored_config = load_dta_config(conn, run_id)
        assert stored_config is not None
        with store.writing(conn, run_id):
            runner, pool = sharded_dta(project, conn, stored_config, "auto", 2)
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
    assert summary["plans_done"] == PROBLEMS
    assert _samples(conn, run_id) == _samples(local_conn, local_id)
    probes = conn.execute(
        "SELECT COUNT(*) FROM model_calls WHERE run_id = ? AND stage = 'probe'", (run_id,)
    ).fetchone()[0]
    assert probes == 2  # the stored profile is reused on resume
