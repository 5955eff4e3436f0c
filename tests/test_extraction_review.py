"""Reviewing extracted relations: `telesynth kg review` and the knowledge-graph screen's keys."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from textual.widgets import DataTable

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.project import Project
from telesynth_tui.tui.app import create_app
from telesynth_tui.tui.screens.kg import KgScreen

from .conftest import run_cli
from .test_extraction import RUNBOOK
from .test_tui_screens import backends, detail, notifications, rows, settle


def _status(project: Project, relation_id: int) -> str:
    conn = project.connect()
    row = conn.execute("SELECT status FROM relations WHERE id = ?", (relation_id,)).fetchone()
    conn.close()
    return str(row[0])


def test_cli_review_lists_accepts_and_rejects(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "paging.md").write_text(RUNBOOK)
    run_cli("init", "--empty", project=proj, check=True)
    # a stricter acceptance leaves more to review
    settings = proj / "telesynth.toml"
    settings.write_text(
        settings.read_text().replace("accept_confidence = 0.7 ", "accept_confidence = 0.9 ")
    )
    out = run_cli("kg", "import", str(docs), project=proj, check=True).stdout
    assert "extracted relations" in out
    listed = json.loads(run_cli("kg", "review", "--json", project=proj, check=True).stdout)
    candidates = listed["relations"]
    assert candidates and all(r["status"] == "candidate" for r in candidates)
    assert all(
        r["evidence"] and r["rule"] and r["source"].endswith("paging.md") for r in candidates
    )
    first, second = candidates[0]["id"], candidates[1]["id"]
    text = run_cli("kg", "review", project=proj, check=True).stdout
    assert f"{listed['counts']['candidate']} candidate" in text
    out = run_cli(
        "kg", "review", "--accept", str(first), "--reject", str(second), project=proj, check=True
    ).stdout
    assert f"relation {first}: accepted" in out and f"relation {second}: rejected" in out
    project = Project.open(proj)
    assert _status(project, first) == "accepted" and _status(project, second) == "rejected"
    rejected = json.loads(
        run_cli("kg", "review", "--status", "rejected", "--json", project=proj).stdout
    )
    assert [r["id"] for r in rejected["relations"]] == [second]
    # an unknown id is a one-line error and writes nothing
    bad = run_cli("kg", "review", "--accept", "999999", "--reject", str(first), project=proj)
    assert bad.returncode != 0 and bad.stderr.strip() == "error: no relation 999999"
    assert _status(project, first) == "accepted"
    bad = run_cli("kg", "review", "--status", "maybe", project=proj)
    assert bad.returncode != 0 and "unknown status 'maybe'" in bad.stderr
    # removing the document removes its extracted relations
    out = run_cli("kg", "remove", str(docs / "paging.md"), project=proj, check=True).stdout
    assert "removed" in out
    after = json.loads(run_cli("kg", "review", "--status", "all", "--json", project=proj).stdout)
    assert after["relations"] == []
    bad = run_cli("kg", "remove", str(docs / "paging.md"), project=proj)
    assert bad.returncode != 0 and "never imported" in bad.stderr


def test_tui_review_keys(project: Project, tmp_path: Path) -> None:
    doc = tmp_path / "paging.md"
    doc.write_text(RUNBOOK)
    conn = project.connect()
    # a stricter acceptance leaves more to review
    import_paths(conn, [doc], project.settings.ingest.model_copy(update={"accept_confidence": 0.9}))
    conn.close()

    async def scenario() -> None:
        app = create_app(project, backends(project))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2")
            assert isinstance(app.screen, KgScreen)
            await pilot.press("c")
            await settle(pilot)
            table = app.screen.query_one("#kg-results", DataTable)
            keys = [k.value or "" for k in table.rows]
            assert keys and all(k.startswith("r:") for k in keys)
            first, second = int(keys[0][2:]), int(keys[1][2:])
            assert "-" in rows(table)[0][0] and "->" in rows(table)[0][0]
            assert "confidence" in detail(app) and "rule" in detail(app)
            await pilot.press("a")
            await settle(pilot)
            assert _status(project, first) == "accepted"
            assert rows(table)[0][0].startswith("✓ ")
            assert table.cursor_row == 1  # the next one is up
            await pilot.press("x")
            await settle(pilot)
            assert _status(project, second) == "rejected"
            assert rows(table)[1][0].startswith("✗ ")
            assert any(n.endswith(": rejected") for n in notifications(app))
            # the list again: the decided relations are no longer waiting
            await pilot.press("c")
            await settle(pilot)
            keys = [k.value or "" for k in table.rows]
            assert f"r:{first}" not in keys and f"r:{second}" not in keys
            # a and x on an entity row explain themselves instead of acting
            await pilot.press("slash", *"paging", "enter")
            await settle(pilot)
            await pilot.press("a")
            await settle(pilot)
            assert any("Press c to list extracted relations" in n for n in notifications(app))

    asyncio.run(scenario())
