"""The knowledge-graph, evaluate and bench screens driven with Textual's Pilot at 80x24 with fake
models: search, neighbourhood tree, evidence and paths; evaluations with progress, stored runs
and a comparison; benchmarks shown, saved under PROJECT/bench/ and shown again after a restart.
One snapshot per screen."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, SelectionList, Static, Tree

from telesynth_tui.graph.queries import path_between
from telesynth_tui.project import Project
from telesynth_tui.tui.app import TelesynthApp, create_app
from telesynth_tui.tui.backends import Backends
from telesynth_tui.tui.screens.bench import BenchScreen
from telesynth_tui.tui.screens.evaluate import EvaluateScreen
from telesynth_tui.tui.screens.kg import KgScreen

from .fakes import FakeModel, HashEncoder

# four TeleQnA questions; the fake student always answers "A" (option 1): items 1 and 2 right
TELEQNA = {
    f"question {i}": {
        "question": f"Which option is right in question {i}?",
        "option 1": "first",
        "option 2": "second",
        "option 3": "third",
        "answer": f"option {answer}: x",
        "category": "Standards specifications",
    }
    for i, answer in enumerate((1, 1, 2, 3))
}


def answers_a(name: str) -> FakeModel:
    """A student answering every question with "A" and fixed metrics (so tables and snapshots
    are stable)."""

    def figures(text: str, n: int) -> dict[str, Any]:
        return {
            "prompt_tokens": 30,
            "output_tokens": 2,
            "ttft_s": 0.01,
            "decode_tok_s": 50.0,
            "wall_s": 0.05,
            "energy_j": 0.02,
            "energy_source": "estimate",
        }

    return FakeModel("A", name, n_ctx=2048, stop="", figures=figures)


def fake_bench(names: list[str], progress: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {"generators": [], "encoders": [], "settings": {"n_ctx": 512}}
    for name in names:
        progress(f"{name}: run 1/1")
        if name.startswith("minilm"):
            out["encoders"].append(
                {
                    "model": name,
                    "sentences": 64,
                    "batch_size": 32,
                    "sentences_per_s": 812.5,
                    "bare_sentences_per_s": 850.0,
                    "R_enc": 0.956,
                    "joules_per_sentence": 0.0123,
                    "energy_source": "estimate",
                    "peak_rss_mb": 310.2,
                }
            )
        else:
            out["generators"].append(
                {
                    "model": name,
                    "quantization": "Q8_0",
                    "ttft_s": 0.0123,
                    "prefill_tok_s": 2345.6,
                    "decode_tok_s": 456.7,
                    "peak_rss_mb": 123.4,
                    "joules_per_token": 0.0021,
                    "energy_source": "estimate",
                }
            )
    return out


def backends(project: Project, bench: Callable[..., dict[str, Any]] = fake_bench) -> Backends:
    def no_runner(conn: sqlite3.Connection, config: Any) -> Any:
        raise AssertionError("these screens never start a generation run")

    return Backends(project, no_runner, answers_a, HashEncoder, bench)


async def settle(pilot: Pilot[None]) -> None:
    """Let workers finish and their messages reach the widgets."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], seconds: float = 20
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def tree_labels(tree: Tree[Any]) -> list[str]:
    out = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        out.append(str(node.label))
        stack.extend(reversed(node.children))
    return out


def detail(app: TelesynthApp) -> str:
    return str(app.screen.query_one("#kg-detail", Static).render())


def notifications(app: TelesynthApp) -> list[str]:
    return [n.message for n in app._notifications]


async def type_into(pilot: Pilot[None], selector: str, text: str) -> None:
    pilot.app.screen.query_one(selector, Input).focus()
    await pilot.press(*text)


# --- knowledge graph -----------------------------------------------------------------------------


def test_kg_search_tree_evidence_and_path(bundled: Project) -> None:
    conn = bundled.connect()
    expected_path = path_between(conn, "pmRrcConnEstabAtt", "Uplink interference")
    isolated = conn.execute(
        "SELECT name FROM entities e WHERE NOT EXISTS (SELECT 1 FROM relations r"
        " WHERE r.subject_id = e.id OR r.object_id = e.id) ORDER BY id LIMIT 1"
    ).fetchone()[0]
    conn.close()

    async def scenario() -> None:
        app = create_app(bundled, backends(bundled))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2")
            assert isinstance(app.screen, KgScreen)
            commands = [c.title for c in app.get_system_commands(app.screen)]
            assert "Search the knowledge graph (/)" in commands
            await pilot.press("slash")
            assert app.focused is app.screen.query_one("#kg-search")
            await pilot.press(*"rrc ssr", "enter")
            await settle(pilot)
            results = app.screen.query_one("#kg-results", DataTable)
            table = rows(results)
            assert table[0][:2] == ["RRC Setup Success Rate (RRC SSR)", "KPI"]
            # the first entity opens by itself: tree by predicate and direction, evidence below
            tree = app.screen.query_one("#kg-tree", Tree)
            labels = tree_labels(tree)
            assert labels[0] == "RRC Setup Success Rate (KPI)"
            assert "measured_by → 2" in labels and "pmRrcConnEstabAtt" in labels
            assert any(label.startswith("← degrades") for label in labels)
            assert "Uplink interference" in labels
            text = detail(app)
            assert "Share of RRC connection establishment attempts" in text
            assert "Evidence (" in text and "RRC Setup Failures" in text
            # Enter on a neighbour in the tree opens that entity
            await pilot.press("t")
            leaf = next(
                n for n in tree.root.children[2].children if str(n.label) == "pmRrcConnEstabAtt"
            )
            tree.move_cursor(leaf)
            await pilot.press("enter")
            await settle(pilot)
            assert str(tree.root.label) == "pmRrcConnEstabAtt (Counter)"
            assert "← measured_by 1" in tree_labels(tree)

            # passages found by FTS are listed too and open their text
            await pilot.press("slash")
            app.screen.query_one("#kg-search", Input).value = "rrc setup failure"
            await pilot.press("enter")
            await settle(pilot)
            keys = [k.value or "" for k in results.rows]
            assert any(k.startswith("c:") for k in keys)
            results.move_cursor(row=keys.index(next(k for k in keys if k.startswith("c:"))))
            await pilot.press("enter")
            await settle(pilot)
            assert "RRC" in detail(app) and "›" in detail(app)

            # shortest path, written a -predicate-> b
            await pilot.press("escape", "p")
            assert app.focused is app.screen.query_one("#kg-from")
            await pilot.press(*"pmRrcConnEstabAtt", "enter")
            assert app.focused is app.screen.query_one("#kg-to")
            app.screen.query_one("#kg-to", Input).value = "uplink interference"
            await pilot.press("enter")
            await settle(pilot)
            text = detail(app)
            assert f"({len(expected_path)} steps)" in text
            for step in expected_path:
                assert f"{step['subject']} -{step['predicate']}-> {step['object']}" in text
            # no path, and an unknown name is a notification, not a crash
            app.screen.query_one("#kg-to", Input).value = isolated
            await pilot.click("#kg-path-button")
            await settle(pilot)
            assert "no path" in detail(app)
            app.screen.query_one("#kg-to", Input).value = "no such thing"
            app.screen.query_one("#kg-to", Input).focus()
            await pilot.press("enter")
            await settle(pilot)
            assert any("no entity named 'no such thing'" in n for n in notifications(app))
            assert isinstance(app.screen, KgScreen)

    asyncio.run(scenario())


def test_kg_search_nothing_found(project: Project) -> None:
    async def scenario() -> None:
        app = create_app(project, backends(project))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2", "slash", *"zzz", "enter")
            await settle(pilot)
            assert "nothing matches 'zzz'" in rows(app.screen.query_one("#kg-results"))[0][0]

    asyncio.run(scenario())


# --- evaluate --------------------------------------------------------------------------------


def write_teleqna(folder: Path) -> Path:
    path = folder / "mini_teleqna.json"
    path.write_text(json.dumps(TELEQNA))
    return path


async def run_evaluation_in_ui(pilot: Pilot[None], path: Path, limit: str = "") -> None:
    screen = pilot.app.screen
    screen.query_one("#ev-set", Input).value = str(path)
    screen.query_one("#ev-limit", Input).value = limit
    screen.query_one("#ev-runs").focus()
    await pilot.press("ctrl+r")
    await wait_until(pilot, lambda: not screen.running)  # type: ignore[attr-defined]
    await settle(pilot)


def test_evaluate_runs_stores_compares_and_reports_errors(project: Project, tmp_path: Path) -> None:
    teleqna = write_teleqna(tmp_path)
    odd = tmp_path / "odd.txt"
    odd.write_text("what is this")

    async def scenario() -> None:
        app = create_app(project, backends(project))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            assert isinstance(app.screen, EvaluateScreen)
            await settle(pilot)
            screen = app.screen
            commands = [c.title for c in app.get_system_commands(screen)]
            assert "Evaluate the student (ctrl+r)" in commands
            assert screen.query_one("#ev-student").value == "tiny-telesynth"
            assert "none yet" in rows(screen.query_one("#ev-runs"))[0][1]
            await run_evaluation_in_ui(pilot, teleqna)
            progress = screen.query_one("#ev-progress")
            assert progress.progress == progress.total == 4
            assert "4 items, accuracy 0.50" in str(screen.query_one("#ev-status").render())
            await run_evaluation_in_ui(pilot, teleqna, limit="2")
            table = screen.query_one("#ev-runs", DataTable)
            assert [r[1:6] for r in rows(table)] == [
                ["tiny-telesynth", "teleqna", "closed", "2", "1.00"],
                ["tiny-telesynth", "teleqna", "closed", "4", "0.50"],
            ]
            assert rows(table)[0][7:] == ["50", "0.0100"]  # tok/s, J/token of the fake
            conn = project.connect()
            stored = conn.execute(
                "SELECT id, student, summary FROM eval_runs ORDER BY id"
            ).fetchall()
            conn.close()
            assert [json.loads(s)["accuracy"] for _, _, s in stored] == [0.5, 1.0]
            assert {student for _, student, _ in stored} == {"tiny-telesynth"}

            # mark both runs: the comparison shows them side by side with a chart
            compare = screen.query_one("#ev-compare")
            assert not compare.display or "shown" not in compare.classes
            table.focus()
            await pilot.press("m", "down", "m")
            await settle(pilot)
            assert screen.marked == [stored[1][0], stored[0][0]]  # type: ignore[attr-defined]
            assert rows(table)[0][0].startswith("●") and rows(table)[1][0].startswith("●")
            assert "shown" in compare.classes
            side = {r[0]: r[1:] for r in rows(screen.query_one("#ev-compare-table"))}
            assert side["accuracy"] == ["1.00", "0.50"] and side["items"] == ["2", "4"]
            assert side["student"] == ["tiny-telesynth", "tiny-telesynth"]
            await pilot.press("x")
            assert "shown" not in compare.classes and screen.marked == []  # type: ignore[attr-defined]

            # a missing file or an unknown format is a notification and a status, not a crash
            await run_evaluation_in_ui(pilot, tmp_path / "missing.json")
            assert any("missing.json: no such file" in n for n in notifications(app))
            assert "evaluation failed" in str(screen.query_one("#ev-status").render())
            await run_evaluation_in_ui(pilot, odd)
            assert any("unknown evaluation format" in n for n in notifications(app))
            assert isinstance(app.screen, EvaluateScreen) and table.row_count == 2

    asyncio.run(scenario())


# --- bench -----------------------------------------------------------------------------------


def test_bench_runs_saves_and_shows_saved_results_after_restart(project: Project) -> None:
    async def first_session() -> None:
        app = create_app(project, backends(project))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("6")
            assert isinstance(app.screen, BenchScreen)
            await settle(pilot)
            screen = app.screen
            commands = [c.title for c in app.get_system_commands(screen)]
            assert "Run the benchmark (ctrl+r)" in commands
            models = screen.query_one("#bench-models", SelectionList)
            assert models.selected == ["tiny-telesynth"]  # the project's generator
            names = [models.get_option_at_index(i).value for i in range(models.option_count)]
            assert "minilm-l6-int8" in names and "unfinished-head" not in names
            assert "no benchmark yet" in rows(screen.query_one("#bench-gen"))[0][1]
            models.focus()
            models.highlighted = names.index("minilm-l6-int8")
            await pilot.press("space", "ctrl+r")
            await wait_until(pilot, lambda: not screen.running)  # type: ignore[attr-defined]
            await settle(pilot)
            assert rows(screen.query_one("#bench-gen")) == [
                ["1", "tiny-telesynth", "12.3", "2345.6", "456.7", "123.4", "0.0021 estimate"]
            ]
            assert rows(screen.query_one("#bench-enc")) == [
                ["1", "minilm-l6-int8", "812.5", "850.0", "0.96", "0.0123 estimate", "310.2"]
            ]
            assert "benchmark 1 done" in str(screen.query_one("#bench-status").render())
            await pilot.press("ctrl+r")  # a second run is appended
            await wait_until(pilot, lambda: not screen.running)  # type: ignore[attr-defined]
            await settle(pilot)
            assert [r[0] for r in rows(screen.query_one("#bench-gen"))] == ["1", "2"]

    asyncio.run(first_session())
    saved = sorted((project.path / "bench").glob("bench-*.json"))
    assert len(saved) == 2
    record = json.loads(saved[0].read_text())
    assert record["generators"][0]["decode_tok_s"] == 456.7 and record["created_at"]

    async def second_session() -> None:
        app = create_app(project, backends(project))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("6")
            await settle(pilot)
            table = rows(app.screen.query_one("#bench-gen"))
            assert [r[:2] for r in table] == [["1", "tiny-telesynth"], ["2", "tiny-telesynth"]]

    asyncio.run(second_session())


def test_bench_failure_is_a_notification(project: Project) -> None:
    def broken(names: list[str], progress: Callable[[str], None]) -> dict[str, Any]:
        from telesynth_tui.errors import TelesynthError

        raise TelesynthError("model file missing: tiny.gguf")

    async def scenario() -> None:
        app = create_app(project, backends(project, broken))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("6")
            await settle(pilot)
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert "model file missing" in " ".join(notifications(app))
            assert "benchmark failed" in str(app.screen.query_one("#bench-status").render())
            assert not (project.path / "bench").exists()

    asyncio.run(scenario())


# --- snapshots at 80x24 ----------------------------------------------------------------------


def test_snapshot_kg(bundled: Project, snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("2", "slash", *"rrc ssr", "enter")
        await settle(pilot)

    app = create_app(bundled, backends(bundled))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_evaluate(project: Project, tmp_path: Path, snap_compare: Any) -> None:
    teleqna = write_teleqna(tmp_path)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("5")
        await settle(pilot)
        await run_evaluation_in_ui(pilot, teleqna)
        await run_evaluation_in_ui(pilot, teleqna, limit="2")
        await pilot.press("m", "down", "m")
        await settle(pilot)
        pilot.app.screen.query_one("#ev-set", Input).value = ""  # no temporary path on screen
        pilot.app.screen.query_one("#ev-limit", Input).value = ""
        pilot.app.clear_notifications()
        await pilot.pause()

    app = create_app(project, backends(project))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_bench(project: Project, snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("6")
        await settle(pilot)
        pilot.app.screen.query_one("#bench-models").highlighted = 2
        await pilot.press("space", "ctrl+r")
        await wait_until(pilot, lambda: not pilot.app.screen.running)  # type: ignore[attr-defined]
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    app = create_app(project, backends(project))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
