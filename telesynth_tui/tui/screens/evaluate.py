"""Evaluate: run a registered GGUF student on an evaluation set with live progress, list the
stored evaluations, and compare two of them side by side with a bar chart."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    ProgressBar,
    Select,
    Static,
)
from textual_plotext import PlotextPlot

from telesynth_tui.tui.base import BaseScreen

MODES = [("closed book", "closed"), ("open book", "open")]
MARK = "●"


class _LazyEncoder:
    """The metrics encoder, loaded only when a free-form answer needs it (an MCQ set then runs
    without an encoder model)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._encoder: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._encoder is None:
            self._encoder = self._factory()
        return getattr(self._encoder, name)


def _num(value: Any, digits: int = 2) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


class EvaluateScreen(BaseScreen):
    BINDINGS = [
        Binding("m", "mark", "Mark to compare"),
        Binding("x", "clear_marks", "Clear"),
        Binding("ctrl+r", "evaluate", "Evaluate"),
        Binding("f5", "refresh", "Refresh", show=False),
        Binding("escape", "leave_input", "Back to the table", show=False),
    ]
    AUTO_FOCUS = "#ev-runs"
    DEFAULT_CSS = """
    EvaluateScreen .ev-row { height: 3; }
    EvaluateScreen #ev-student { width: 28; }
    EvaluateScreen #ev-set { width: 1fr; }
    EvaluateScreen #ev-mode { width: 19; }
    EvaluateScreen #ev-limit { width: 13; }
    EvaluateScreen #ev-run { width: 12; min-width: 12; }
    EvaluateScreen #ev-progress { width: 1fr; height: 3; padding: 1 1 0 2; }
    EvaluateScreen #ev-progress Bar { width: 1fr; }
    EvaluateScreen #ev-status { height: 1; padding: 0 1; color: $text-muted; }
    EvaluateScreen #ev-runs { height: 1fr; }
    EvaluateScreen #ev-compare { height: 10; display: none; }
    EvaluateScreen #ev-compare.shown { display: block; }
    EvaluateScreen #ev-compare-box { width: 48; }
    EvaluateScreen #ev-plot { width: 1fr; height: 1fr; }
    """

    class Loaded(Message):
        def __init__(self, students: list[str], default: str, runs: list[dict[str, Any]]) -> None:
            super().__init__()
            self.students = students
            self.default = default
            self.runs = runs

    class Progress(Message):
        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

    class Finished(Message):
        def __init__(self, summary: dict[str, Any]) -> None:
            super().__init__()
            self.summary = summary

    class Compared(Message):
        def __init__(self, runs: tuple[int, int], rows: list[tuple[str, Any, Any]]) -> None:
            super().__init__()
            self.runs = runs
            self.rows = rows

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[int] = []
        self.running = False
        self._run_label = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="ev-row"):
            yield Select[str]([], prompt="student model", id="ev-student")
            yield Input(placeholder="set path: .json, .csv, .jsonl", id="ev-set")
        with Horizontal(classes="ev-row"):
            yield Select[str](MODES, value="closed", allow_blank=False, id="ev-mode")
            yield Input(placeholder="limit", type="integer", id="ev-limit")
            yield Button("Evaluate", id="ev-run", variant="primary")
            yield ProgressBar(total=1, show_eta=False, id="ev-progress")
        yield Static("", id="ev-status")
        yield Static("Evaluations · m marks two runs to compare", classes="section-title")
        yield DataTable(id="ev-runs", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="ev-compare"):
            with Vertical(id="ev-compare-box"):
                yield DataTable(id="ev-compare-table", cursor_type="row", zebra_stripes=True)
            yield PlotextPlot(id="ev-plot")
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#ev-runs", DataTable)
        for label, key, width in (
            ("run", "id", 5),
            ("student", "student", 14),
            ("format", "format", 9),
            ("mode", "mode", 6),
            ("items", "items", 5),
            ("acc", "accuracy", 5),
            ("R-L", "rouge_l", 5),
            ("tok/s", "tok_s", 6),
            ("J/tok", "j_tok", 7),
        ):
            runs.add_column(label, width=width, key=key)
        self.query_one("#ev-compare-table", DataTable).add_columns("", "run a", "run b")
        self._status("Pick a student and a set, then Evaluate (ctrl+r).")

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Evaluate the student (ctrl+r)", "Run the evaluation set", self.action_evaluate
        )
        yield SystemCommand(
            "Clear the comparison (x)", "Unmark the evaluation runs", self.action_clear_marks
        )

    # --- actions ---------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load()

    def action_leave_input(self) -> None:
        self.query_one("#ev-runs", DataTable).focus()

    def action_mark(self) -> None:
        table = self.query_one("#ev-runs", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if not key:
            return
        run = int(key)
        if run in self.marked:
            self.marked.remove(run)
        else:
            self.marked = [*self.marked, run][-2:]
        self._show_marks()
        if len(self.marked) == 2:
            self.compare_runs(self.marked[0], self.marked[1])
        else:
            self.query_one("#ev-compare").remove_class("shown")

    def action_clear_marks(self) -> None:
        self.marked = []
        self._show_marks()
        self.query_one("#ev-compare").remove_class("shown")

    @on(Button.Pressed, "#ev-run")
    @on(Input.Submitted, "#ev-set, #ev-limit")
    def _run_requested(self) -> None:
        self.action_evaluate()

    def action_evaluate(self) -> None:
        if self.running:
            self.notify("An evaluation is already running.", severity="warning")
            return
        student = self.query_one("#ev-student", Select).value
        set_path = self.query_one("#ev-set", Input).value.strip()
        limit_text = self.query_one("#ev-limit", Input).value.strip()
        if not isinstance(student, str):
            self.notify("Pick a student model first.", severity="warning")
            return
        if not set_path:
            self.notify("Type the path of an evaluation set.", severity="warning")
            self.query_one("#ev-set", Input).focus()
            return
        limit = int(limit_text) if limit_text.lstrip("-").isdigit() else None
        if limit is not None and limit < 1:
            self.notify("The limit is a positive number of items.", severity="warning")
            return
        mode = str(self.query_one("#ev-mode", Select).value)
        self.running = True
        self.query_one("#ev-run", Button).disabled = True
        self.query_one("#ev-progress", ProgressBar).update(total=None, progress=0)
        path = Path(set_path).expanduser()
        self._run_label = f"{student} · {path.name} · {mode}"
        self._status(f"loading {student}…")
        self.evaluate(student, path, mode, limit)

    def worker_failed(self, name: str, message: str) -> None:
        if name == "evaluate":
            self.query_one("#ev-progress", ProgressBar).update(total=1, progress=0)
            self._done(f"evaluation failed: {message}")

    # --- workers ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="evaluate-load", exit_on_error=False)
    def load(self) -> None:
        from telesynth_tui.evaluate.history import list_eval_runs

        project = self.backends.project
        entries = project.registry().entries()
        students = [e.name for e in entries if e.text_model]
        default = next(
            (e.name for e in entries if e.text_model and "student" in e.roles),
            students[0] if students else "",
        )
        conn = self.backends.connect()
        try:
            runs = list_eval_runs(conn)
        finally:
            conn.close()
        self.post_message(self.Loaded(students, default, runs))

    @work(thread=True, exclusive=True, group="evaluate-run", exit_on_error=False)
    def evaluate(self, student_name: str, path: Path, mode: str, limit: int | None) -> None:
        from telesynth_tui.evaluate.student import run_evaluation

        def progress(done: int, total: int) -> None:
            self.post_message(self.Progress(done, total))

        student = self.backends.generator(student_name)
        conn = self.backends.connect()
        try:
            summary = run_evaluation(
                conn,
                student,
                _LazyEncoder(self.backends.encoder),
                path,
                mode=mode,
                limit=limit,
                progress=progress,
            )
        finally:
            conn.close()
            student.close()
        self.post_message(self.Finished(summary))

    @work(thread=True, exclusive=True, group="evaluate-compare", exit_on_error=False)
    def compare_runs(self, a: int, b: int) -> None:
        from telesynth_tui.evaluate.student import compare

        conn = self.backends.connect()
        try:
            rows = compare(conn, a, b)
        finally:
            conn.close()
        self.post_message(self.Compared((a, b), rows))

    # --- results back on the UI thread -----------------------------------------------------

    def on_evaluate_screen_loaded(self, message: Loaded) -> None:
        select: Select[str] = self.query_one("#ev-student", Select)
        current = select.value
        select.set_options([(name, name) for name in message.students])
        if isinstance(current, str) and current in message.students:
            select.value = current
        elif message.default:
            select.value = message.default
        table = self.query_one("#ev-runs", DataTable)
        cursor = table.cursor_row
        table.clear()
        present = {run["id"] for run in message.runs}
        self.marked = [m for m in self.marked if m in present]
        for run in message.runs:
            table.add_row(
                self._id_cell(run["id"]),
                Text(run["student"]),
                Text(run["format"]),
                run["mode"],
                _num(run["items"]),
                _num(run["accuracy"]),
                _num(run["rouge_l"]),
                _num(run["decode_tok_s"], 0),
                _num(run["joules_per_output_token"], 4),
                key=str(run["id"]),
            )
        if not message.runs:
            table.add_row("-", Text("none yet", style="dim"), *[""] * 7)
        elif cursor:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def on_evaluate_screen_progress(self, message: Progress) -> None:
        self.query_one("#ev-progress", ProgressBar).update(
            total=message.total, progress=message.done
        )
        self._status(f"{self._run_label}: {message.done}/{message.total} items")

    def on_evaluate_screen_finished(self, message: Finished) -> None:
        s = message.summary
        accuracy = "-" if s.get("accuracy") is None else f"{s['accuracy']:.2f}"
        skipped = f", {s['skipped']} skipped" if s.get("skipped") else ""
        self._done(
            f"run {s['eval_run']}: {self._run_label}: {s['items']} items, "
            f"accuracy {accuracy}{skipped}"
        )
        self.notify(f"Evaluation {s['eval_run']} stored: accuracy {accuracy}", timeout=4)
        self.load()

    def on_evaluate_screen_compared(self, message: Compared) -> None:
        a, b = message.runs
        table = self.query_one("#ev-compare-table", DataTable)
        table.clear(columns=True)
        table.add_column("", key="key", width=12)
        table.add_column(f"run {a}", key="a", width=14)
        table.add_column(f"run {b}", key="b", width=14)
        values: dict[str, tuple[Any, Any]] = {}
        for key, value_a, value_b in message.rows:
            values[key] = (value_a, value_b)
            digits = 4 if key == "joules_per_output_token" else 2
            table.add_row(
                key.replace("joules_per_output_token", "J/token").replace("_", " "),
                Text(_num(value_a, digits)),
                Text(_num(value_b, digits)),
            )
        self.query_one("#ev-compare").add_class("shown")
        self._plot(a, b, values)

    # --- helpers ---------------------------------------------------------------------------

    def _plot(self, a: int, b: int, values: dict[str, tuple[Any, Any]]) -> None:
        plot = self.query_one("#ev-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.subplots(1, 2)
        labels = [f"#{a}", f"#{b}"]
        for column, (key, title) in enumerate(
            (("accuracy", "accuracy"), ("joules_per_output_token", "J/token")), start=1
        ):
            pair = values.get(key, (None, None))
            sub = plt.subplot(1, column)
            sub.bar(labels, [float(v or 0.0) for v in pair], width=0.4)
            sub.title(title)
            if key == "accuracy":
                sub.ylim(0, 1)
        plot.refresh()

    def _id_cell(self, run: int) -> Text:
        marked = run in self.marked
        return Text(f"{MARK if marked else ' '}{run}", style="bold" if marked else "")

    def _show_marks(self) -> None:
        table = self.query_one("#ev-runs", DataTable)
        for row_key in table.rows:
            if row_key.value and row_key.value.isdigit():
                table.update_cell(row_key, "id", self._id_cell(int(row_key.value)))

    def _status(self, text: str) -> None:
        self.query_one("#ev-status", Static).update(Text(text))

    def _done(self, text: str) -> None:
        self.running = False
        self.query_one("#ev-run", Button).disabled = False
        self._status(text)
