"""The app with Textual's Pilot: dashboard, live generation with pause/cancel/resume, the review
stepper feeding exports, help and palette; snapshots at 80x24; one real generation."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.pipeline.export import export_run
from telesynth_tui.pipeline.filters import Filters, FilterSettings
from telesynth_tui.pipeline.generate_llm import LlmQA
from telesynth_tui.pipeline.runner import Runner, create_run
from telesynth_tui.pipeline.scoring import FastScorer
from telesynth_tui.pipeline.store import TEMPLATE, RunConfig
from telesynth_tui.project import Project
from telesynth_tui.tui.app import TelesynthApp, create_app
from telesynth_tui.tui.backends import Backends
from telesynth_tui.tui.screens.generate import GenerateScreen
from telesynth_tui.tui.screens.help import HelpScreen
from telesynth_tui.tui.screens.review import EditScreen, ReviewScreen

from .fakes import EndsCleanlyHead, FakeModel, filter_encoder

PAIRS = json.dumps(
    {
        "pairs": [
            {
                "question": "Which KPI does uplink interference degrade?",
                "answer": "Uplink interference degrades the RRC setup success.",
                "steps": [],
                "cited": [1],
            }
        ]
    }
)


def slow_model(delay: float = 0.005) -> FakeModel:
    """Streams a fixed JSON answer a few characters at a time, checking cancel between tokens;
    `produced` counts the pieces of the call in progress."""

    def figures(text: str, n: int) -> dict[str, Any]:
        return {
            "prompt_tokens": 50,
            "output_tokens": n,
            "decode_tok_s": 100.0 + n,
            "energy_j": 0.01 * n,
            "energy_source": "estimate",
        }

    return FakeModel(PAIRS, "slow-fake", stop="", piece_chars=4, delay=delay, figures=figures)


def fake_backends(project: Project, generator: FakeModel) -> Backends:
    def runner(conn: sqlite3.Connection, config: RunConfig) -> Runner:
        encoder = filter_encoder()
        filters = Filters(encoder, EndsCleanlyHead(), FilterSettings(), EndsCleanlyHead())  # type: ignore[arg-type]
        llm = None if config.generator == TEMPLATE else LlmQA(generator, 256)
        retriever = Retriever(conn, project.settings.retrieval)
        return Runner(conn, retriever, filters, FastScorer(), llm)

    def no_bench(names: list[str], progress: Callable[[str], None]) -> dict[str, Any]:
        return {"generators": [], "encoders": [], "settings": {}}

    return Backends(project, runner, lambda name: generator, filter_encoder, no_bench)


async def wait_until(pilot: Any, condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def run_status(project: Project, run_id: int) -> tuple[str, int, int]:
    conn = project.connect()
    status = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    done, total = conn.execute(
        "SELECT SUM(status = 'done'), COUNT(*) FROM plans WHERE run_id = ?", (run_id,)
    ).fetchone()
    return status, int(done or 0), int(total)


def test_dashboard_help_and_palette(bundled: Project) -> None:
    killed = create_run(bundled.connect(), RunConfig(n=2))  # stored as running, no writer

    async def scenario() -> None:
        app = create_app(bundled, fake_backends(bundled, slow_model()))
        async with app.run_test(size=(80, 24)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            text = str(app.screen.query_one("#project-line").render())
            assert "bundled" in text and "939 entities" in text and "2229 relations" in text
            runs = app.screen.query_one("#runs-table")
            assert runs.get_row_at(0)[:4] == [str(killed), "interrupted", TEMPLATE, "0/2"]
            models = app.screen.query_one("#models-table")
            assert "tiny-telesynth" in str(models.get_row_at(0) + models.get_row_at(1))
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.press("3")
            assert isinstance(app.screen, GenerateScreen)
            commands = [c.title for c in app.get_system_commands(app.screen)]
            assert "Go to Review (4)" in commands and "Start generation" in commands

    asyncio.run(scenario())


def test_generate_pause_cancel_within_a_token_and_resume(bundled: Project) -> None:
    generator = slow_model(delay=0.01)

    async def scenario() -> None:
        app = create_app(bundled, fake_backends(bundled, generator))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, GenerateScreen)
            await app.workers.wait_for_complete()
            screen.query_one("#n", Input).value = "6"
            screen.query_one("#generator").value = "tiny-telesynth"  # the fake runner's LLM
            await pilot.press("s")
            await wait_until(
                pilot,
                lambda: (
                    screen.last_run is not None
                    and "1/" in str(screen.query_one("#gen-status").render())
                ),
            )
            assert "Uplink interference degrades" in screen.stream_text
            await pilot.press("p")  # pause: no plan advances while paused
            await pilot.pause(0.3)
            status, done_paused, _ = run_status(bundled, screen.last_run)
            await pilot.pause(0.3)
            assert run_status(bundled, screen.last_run)[1] == done_paused
            await pilot.press("p")
            await pilot.press("escape")
            await wait_until(pilot, lambda: not screen.running)
            status, done, total = run_status(bundled, screen.last_run)
            assert status == "interrupted" and done < total == 6
            assert "cancelled" in str(screen.query_one("#gen-status").render())
            await pilot.press("c")  # resume the same run
            await wait_until(pilot, lambda: not screen.running)
            status, done, total = run_status(bundled, screen.last_run)
            assert (status, done, total) == ("finished", 6, 6)
            assert screen.rates and screen.joules  # the sparklines were fed

    asyncio.run(scenario())
    conn = bundled.connect()
    per_plan = conn.execute("SELECT COUNT(*) FROM samples GROUP BY plan_id").fetchall()
    assert len(per_plan) == 6 and all(n == 1 for (n,) in per_plan)  # no plan stored twice


def test_cancel_stops_generation_within_one_token(bundled: Project) -> None:
    generator = slow_model(delay=0.05)

    async def scenario() -> None:
        app = create_app(bundled, fake_backends(bundled, generator))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, GenerateScreen)
            screen.query_one("#n", Input).value = "3"
            screen.query_one("#generator").value = "tiny-telesynth"
            await pilot.press("s")
            await wait_until(pilot, lambda: generator.produced > 0)
            produced = generator.produced
            await pilot.press("escape")
            await wait_until(pilot, lambda: not screen.running)
            assert generator.produced <= produced + 2
            assert run_status(bundled, screen.last_run)[1] == 0  # the cut plan is not stored

    asyncio.run(scenario())


def _template_run(project: Project, n: int = 5) -> int:
    conn = project.connect()
    run_id = create_run(conn, RunConfig(n=n, seed=4))
    fake_backends(project, slow_model()).runner(conn, RunConfig(n=n)).execute(run_id)
    return run_id


def test_review_accept_reject_edit_undo_feed_the_exports(bundled: Project, tmp_path: Path) -> None:
    run_id = _template_run(bundled)
    conn = bundled.connect()
    ids = [
        r[0] for r in conn.execute("SELECT id FROM samples WHERE run_id = ? ORDER BY id", (run_id,))
    ]

    def review(sample_id: int) -> tuple[str | None, str]:
        row = conn.execute("SELECT review, answer FROM samples WHERE id = ?", (sample_id,))
        return tuple(row.fetchone())  # type: ignore[return-value]

    original = review(ids[2])[1]

    async def scenario() -> None:
        app = create_app(bundled, fake_backends(bundled, slow_model()))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("4")
            screen = app.screen
            assert isinstance(screen, ReviewScreen)
            await wait_until(pilot, lambda: screen.sample is not None)
            assert screen.sample is not None and screen.sample.id == ids[0]
            body = str(screen.query_one("#review-text").render())
            assert "Question" in body and "Context" in body and "Provenance" in body
            await pilot.press("a")
            await wait_until(pilot, lambda: review(ids[0])[0] == "accepted")
            await pilot.press("n", "x")
            await wait_until(pilot, lambda: review(ids[1])[0] == "rejected")
            await pilot.press("n")
            await wait_until(
                pilot, lambda: screen.sample is not None and screen.sample.id == ids[2]
            )
            await pilot.press("e")
            assert isinstance(app.screen, EditScreen)
            await pilot.press("f7", *"Fixed step one.", "enter", *"Fixed step two.")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: review(ids[2])[0] == "edited")
            assert review(ids[2])[1] == "Fixed step one.\nFixed step two."
            await wait_until(pilot, lambda: len(screen.history) == 3)
            await pilot.press("u")  # undo the edit: the original answer is back
            await wait_until(pilot, lambda: review(ids[2]) == (None, original))
            await pilot.press("e")
            await pilot.press(*" Checked.", "escape")  # the cursor starts at the end; Esc saves
            await wait_until(pilot, lambda: review(ids[2])[0] == "edited")
            await pilot.press("o")  # worst quality first
            await wait_until(pilot, lambda: screen.order == "quality")

    asyncio.run(scenario())
    assert review(ids[2])[1] == original + " Checked."
    out = tmp_path / "sft.jsonl"
    export_run(conn, run_id, "sft", out)
    exported = {json.loads(line)["metadata"]["sample_id"] for line in out.read_text().splitlines()}
    accepted = {
        r[0]
        for r in conn.execute(
            "SELECT id FROM samples WHERE run_id = ? AND status = 'accepted'", (run_id,)
        )
    }
    assert ids[1] not in exported and ids[0] in exported and ids[2] in exported
    assert exported == (accepted - {ids[1]}) | {ids[0], ids[2]}


def test_real_generation_through_the_ui(bundled: Project) -> None:
    """The embedded defaults (KG-template generator, ONNX encoder and filter heads)."""

    async def scenario() -> TelesynthApp:
        app = create_app(bundled)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, GenerateScreen)
            screen.query_one("#n", Input).value = "5"
            await pilot.press("s")
            await wait_until(pilot, lambda: screen.last_run is not None, 60)
            await wait_until(pilot, lambda: not screen.running, 240)
            status, done, total = run_status(bundled, screen.last_run)
            assert (status, done, total) == ("finished", 5, 5)
            assert "finished" in str(screen.query_one("#gen-status").render())
            assert "Q: " in screen.stream_text and "models ready" in screen.stream_text
        return app

    asyncio.run(scenario())
    accepted = bundled.connect().execute("SELECT COUNT(*) FROM samples WHERE status = 'accepted'")
    assert accepted.fetchone()[0] >= 3


# --- snapshots at 80x24 --------------------------------------------------------------------------


@pytest.fixture
def snap_project(bundled_template: Path, tmp_path: Path) -> Project:
    """The bundled project at a fixed folder name, so screens render the same every time."""
    import shutil

    target = tmp_path / "snapshots" / "telesynth-project"
    shutil.copytree(bundled_template, target)
    return Project.open(target)


def test_snapshot_dashboard(snap_project: Project, snap_compare: Any) -> None:
    app = create_app(snap_project, fake_backends(snap_project, slow_model()))

    async def settle(pilot: Any) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause(0.3)  # tables size their columns on the next refresh

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_snapshot_generate(snap_project: Project, snap_compare: Any) -> None:
    app = create_app(snap_project, fake_backends(snap_project, slow_model()))

    async def settle(pilot: Any) -> None:
        await pilot.press("3")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_snapshot_review(snap_project: Project, snap_compare: Any) -> None:
    _template_run(snap_project, 3)
    app = create_app(snap_project, fake_backends(snap_project, slow_model()))

    async def settle(pilot: Any) -> None:
        await pilot.press("4")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)
