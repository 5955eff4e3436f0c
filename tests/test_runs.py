"""Runs and samples are listed by one core function each, for the command line and the app."""

from __future__ import annotations

import json
from dataclasses import asdict

from telesynth_tui.overview import measured_speeds, project_overview
from telesynth_tui.pipeline import review, store
from telesynth_tui.pipeline.plans import Planner, allocate
from telesynth_tui.pipeline.runner import create_run
from telesynth_tui.pipeline.store import RunConfig
from telesynth_tui.project import Project
from telesynth_tui.runs import list_runs, sample_ids

from .conftest import run_cli


def test_the_dashboard_and_the_cli_list_the_same_runs(bundled: Project) -> None:
    run_cli("generate", "--n", "4", "--seed", "3", project=bundled.path, check=True)
    conn = bundled.connect()
    killed = create_run(conn, RunConfig(n=2))  # stored as running, no process writes it
    cli = json.loads(run_cli("runs", "--json", project=bundled.path, check=True).stdout)
    shown = [asdict(r) for r in project_overview(bundled, conn)["runs"]]
    assert shown == cli[::-1]
    assert [r["status"] for r in shown] == ["interrupted", "finished"]
    assert shown[0]["run"] == killed and shown[1]["plans_done"] == shown[1]["plans"] == 4
    assert [asdict(r) for r in list_runs(conn, limit=1, newest_first=True)] == shown[:1]


def test_samples_list_what_the_review_screen_steps_through(bundled: Project) -> None:
    run_cli("generate", "--n", "6", "--seed", "5", project=bundled.path, check=True)
    conn = bundled.connect()
    everything = sample_ids(conn, 1)
    assert len(everything) >= 4
    review.decide(conn, everything[0], "rejected")

    def listed(*args: str) -> list[int]:
        out = run_cli("samples", "1", *args, "--json", project=bundled.path, check=True)
        return [row["id"] for row in json.loads(out.stdout)]

    assert listed() == everything
    assert listed("--show", "reviewed") == sample_ids(conn, 1, "reviewed") == everything[:1]
    unreviewed = sample_ids(conn, 1, "unreviewed", "quality")
    assert listed("--show", "unreviewed", "--order", "quality") == unreviewed
    assert sorted(unreviewed) == everything[1:]
    assert listed("--limit", "2") == everything[:2]
    runs = run_cli("runs", project=bundled.path, check=True).stdout
    assert "reviewed 1" in runs


def test_model_speeds_are_medians_over_generation_and_evaluation_calls(project: Project) -> None:
    conn = project.connect()
    conn.execute(
        "INSERT INTO eval_runs(created_at, student, set_path, format, mode, summary)"
        " VALUES ('t', 'student-a', 'x.jsonl', 'ours', 'open', '{}')"
    )
    for rate in (10.0, 30.0, None):
        metrics = json.dumps({} if rate is None else {"decode_tok_s": rate})
        conn.execute(
            "INSERT INTO eval_items(eval_run_id, item_id, kind, prompt, output, scores, metrics)"
            " VALUES (1, 'i', 'open', 'p', 'o', '{}', ?)",
            (metrics,),
        )
    conn.execute(
        "INSERT INTO model_calls(stage, model, metrics) VALUES ('generate', 'student-a', ?)",
        (json.dumps({"decode_tok_s": 50.0}),),
    )
    assert measured_speeds(conn) == {"student-a": 30.0}


def test_a_dta_runs_own_record_goes_through_the_store(bundled: Project) -> None:
    conn = bundled.connect()
    generation = create_run(conn, RunConfig(n=1))
    assert store.dta_run(conn, generation) is None
    assert store.run_kind(conn, generation) == "generation"
    dta = store.insert_run(
        conn,
        RunConfig(n=1, generator="dta"),
        Planner(conn, 0, []).plans(allocate(1, {"factual": 1.0})),
        lambda run: store.insert_dta_run(conn, run, "student-x", {"teachers": ["a"]}),
    )
    record = store.dta_run(conn, dta)
    assert record is not None and store.run_kind(conn, dta) == "dta"
    assert (record.student, record.config, record.profile, record.probes) == (
        "student-x",
        {"teachers": ["a"]},
        {},
        [],
    )
    store.set_dta_style(conn, dta, {"words": 12.0}, [{"answer": "x"}])
    again = store.dta_run(conn, dta)
    assert again is not None and again.profile == {"words": 12.0}
    assert again.probes == [{"answer": "x"}]
