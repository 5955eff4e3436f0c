"""Results the screens read back: benchmarks saved as JSON under PROJECT/bench/ and the list of
stored evaluation runs."""

from __future__ import annotations

import json

from telesynth_tui.evaluate.history import list_eval_runs
from telesynth_tui.modelkit.bench import load_results, save_results
from telesynth_tui.project import Project


def test_bench_results_are_saved_atomically_and_loaded_oldest_first(project: Project) -> None:
    assert load_results(project.path) == []
    first = {"generators": [{"model": "g", "decode_tok_s": 10.0}], "encoders": [], "settings": {}}
    second = {"generators": [], "encoders": [{"model": "e", "sentences_per_s": 5.0}]}
    a = save_results(project.path, first, "2030-01-01T10:00:00+00:00")
    b = save_results(project.path, second, "2030-01-01T10:00:00+00:00")  # same second
    c = save_results(project.path, first, "2029-12-31T23:59:59+00:00")
    assert a.parent == project.path / "bench" and len({a, b, c}) == 3
    assert (a.name, b.name) == ("bench-20300101T100000.json", "bench-20300101T100000-2.json")
    assert not list((project.path / "bench").glob(".*"))  # no temporary file left behind
    (project.path / "bench" / "bench-broken.json").write_text("{not json")
    loaded = load_results(project.path)
    assert [r["created_at"] for r in loaded] == [
        "2029-12-31T23:59:59+00:00",
        "2030-01-01T10:00:00+00:00",
        "2030-01-01T10:00:00+00:00",
    ]
    assert loaded[1]["generators"][0]["model"] == "g" and loaded[2]["encoders"][0]["model"] == "e"
    assert loaded[2]["generators"] == []
    assert json.loads(a.read_text())["settings"] == {}


def test_list_eval_runs_newest_first_with_summary_figures(project: Project) -> None:
    conn = project.connect()
    for n, accuracy in enumerate((0.25, 0.75), start=1):
        summary = {
            "items": 4 * n,
            "accuracy": accuracy,
            "decode_tok_s": 30.0,
            "joules_per_output_token": 0.01,
            "energy_source": "estimate",
        }
        conn.execute(
            "INSERT INTO eval_runs(created_at, student, set_path, format, mode, summary)"
            " VALUES ('2030-01-01', 'tiny', '/data/sets/teleqna.json', 'teleqna', 'closed', ?)",
            (json.dumps(summary),),
        )
    conn.commit()
    runs = list_eval_runs(conn)
    assert [(r["id"], r["items"], r["accuracy"]) for r in runs] == [(2, 8, 0.75), (1, 4, 0.25)]
    assert runs[0]["set"] == "teleqna.json" and runs[0]["rouge_l"] is None
    assert runs[0]["energy_source"] == "estimate" and len(list_eval_runs(conn, limit=1)) == 1
