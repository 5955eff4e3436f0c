"""Dashboard: the project, its knowledge graph, registered models and recent runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from telesynth_tui.tui.base import BaseScreen, size

# fmt: off
KG_KEYS = ("documents", "chunks", "entities", "candidate_entities", "relations", "formulas",
           "embeddings")
# fmt: on


class DashboardScreen(BaseScreen):
    BINDINGS = [("f5", "refresh", "Refresh")]

    class Loaded(Message):
        def __init__(self, overview: dict[str, Any]) -> None:
            super().__init__()
            self.overview = overview

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading…", id="project-line")
        with Horizontal(id="dash-top"):
            with Vertical(id="kg-box"):
                yield Static("Knowledge graph", classes="section-title")
                yield DataTable(id="kg-table", cursor_type="none", zebra_stripes=True)
            with Vertical(id="models-box"):
                yield Static("Models", classes="section-title")
                yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        yield Static("Recent runs", classes="section-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#kg-table", DataTable).add_columns("what", "count")
        self.query_one("#models-table", DataTable).add_columns(
            "model", "quant", "size", "ctx", "tok/s", "roles"
        )
        self.query_one("#runs-table", DataTable).add_columns(
            "run", "status", "generator", "plans", "accepted", "dropped", "reviewed"
        )

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False)
    def load(self) -> None:
        from telesynth_tui.overview import project_overview

        conn = self.backends.connect()
        try:
            self.post_message(self.Loaded(project_overview(self.backends.project, conn)))
        finally:
            conn.close()

    def on_dashboard_screen_loaded(self, message: Loaded) -> None:
        data = message.overview
        kg = data["kg"]
        self.query_one("#project-line", Static).update(
            f"Project [b]{Path(data['project']).name}[/b] · {kg['documents']} documents, "
            f"{kg['entities']} entities, {kg['relations']} relations, "
            f"{len(data['runs'])} recent runs"
        )
        table = self.query_one("#kg-table", DataTable)
        table.clear()
        for key in KG_KEYS:
            table.add_row(key.replace("_", " "), str(kg[key]))
        models = self.query_one("#models-table", DataTable)
        models.clear()
        for m in data["models"]:
            rate = f"{m['decode_tok_s']:.0f}" if m["decode_tok_s"] else "-"
            models.add_row(
                m["name"],
                m["quantization"] or "-",
                size(m["size_bytes"]),
                str(m["context"] or "-"),
                rate,
                ",".join(m["roles"]),
            )
        runs = self.query_one("#runs-table", DataTable)
        runs.clear()
        for r in data["runs"]:
            runs.add_row(
                str(r.run),
                r.status,
                r.generator,
                f"{r.plans_done}/{r.plans}",
                str(r.accepted),
                str(r.rejected),
                str(r.reviewed),
                key=str(r.run),
            )
        if not data["runs"]:
            runs.add_row("-", "no runs yet: press 3 to generate", "", "", "", "", "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "runs-table" and event.row_key.value:
            self.app.review_run(int(event.row_key.value))  # type: ignore[attr-defined]
