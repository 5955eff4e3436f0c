"""Bench: benchmark registered models (TTFT, prefill and decode tokens/s, peak memory, energy
per token; encoder sentences/s). Every result is saved under PROJECT/bench/ and shown again on
the next start."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, SelectionList, Static
from textual_plotext import PlotextPlot

from telesynth_tui.tui.base import BaseScreen


def _num(value: Any, scale: float = 1.0, digits: int = 1) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float):
        return f"{value * scale:.{digits}f}"
    return str(value)


def _energy(value: Any, source: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{_num(value, digits=digits)} {source or ''}".strip()


class BenchScreen(BaseScreen):
    BINDINGS = [
        Binding("ctrl+r", "run", "Run benchmark"),
        Binding("f5", "refresh", "Reload saved", show=False),
    ]
    AUTO_FOCUS = "#bench-models"
    DEFAULT_CSS = """
    BenchScreen #bench-top { height: 9; }
    BenchScreen #bench-left { width: 34; }
    BenchScreen #bench-models { height: 1fr; }
    BenchScreen #bench-run { width: 100%; }
    BenchScreen #bench-plot { width: 1fr; height: 1fr; }
    BenchScreen #bench-status { height: 1; padding: 0 1; color: $text-muted; }
    BenchScreen #bench-gen { height: 1fr; }
    BenchScreen #bench-enc-box { height: 4; }
    """

    class Loaded(Message):
        def __init__(
            self, models: list[tuple[str, str]], default: str, records: list[dict[str, Any]]
        ) -> None:
            super().__init__()
            self.models = models  # (name, label)
            self.default = default
            self.records = records

    class Progress(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Finished(Message):
        def __init__(self, record: dict[str, Any]) -> None:
            super().__init__()
            self.record = record

    class Saved(Message):
        def __init__(self, file_name: str) -> None:
            super().__init__()
            self.file_name = file_name

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []
        self.running = False
        self._loaded_models = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="bench-top"):
            with Vertical(id="bench-left"):
                yield SelectionList[str](id="bench-models")
                yield Button("Run benchmark", id="bench-run", variant="primary")
            yield PlotextPlot(id="bench-plot")
        yield Static("", id="bench-status")
        yield Static("Generators", classes="section-title")
        yield DataTable(id="bench-gen", cursor_type="row", zebra_stripes=True)
        yield Static("Encoders", classes="section-title")
        with Vertical(id="bench-enc-box"):
            yield DataTable(id="bench-enc", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        models = self.query_one("#bench-models", SelectionList)
        models.border_title = "Models (space selects)"
        gen = self.query_one("#bench-gen", DataTable)
        for label, width in (
            ("#", 2),
            ("model", 16),
            ("TTFT ms", 7),
            ("prefill", 7),
            ("decode", 7),
            ("RSS MB", 6),
            ("J/token src", 16),
        ):
            gen.add_column(label, width=width)
        enc = self.query_one("#bench-enc", DataTable)
        for label, width in (
            ("#", 2),
            ("model", 16),
            ("sent/s", 7),
            ("bare/s", 7),
            ("R_enc", 5),
            ("J/sentence src", 16),
            ("RSS MB", 6),
        ):
            enc.add_column(label, width=width)
        self._status("Select models (space), then Run benchmark (ctrl+r). Rates in tok/s.")
        self._show_results()
        self.load()

    def commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Run the benchmark (ctrl+r)", "Benchmark the selected models", self.action_run
        )

    # --- actions ---------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load()

    @on(Button.Pressed, "#bench-run")
    def _run_pressed(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        if self.running:
            self.notify("A benchmark is already running.", severity="warning")
            return
        names = list(self.query_one("#bench-models", SelectionList).selected)
        if not names:
            self.notify("Select at least one model (space).", severity="warning")
            return
        self.running = True
        self.query_one("#bench-run", Button).disabled = True
        self._status(f"benchmarking {', '.join(names)}…")
        self.run_bench(names)

    def worker_failed(self, name: str, message: str) -> None:
        if name == "run_bench":
            self.running = False
            self.query_one("#bench-run", Button).disabled = False
            self._status(f"benchmark failed: {message}")

    # --- workers ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="bench-load", exit_on_error=False)
    def load(self) -> None:
        from telesynth_tui.modelkit.bench import load_results

        project = self.backends.project
        entries = [e for e in project.registry().entries() if e.text_model or "encoder" in e.roles]
        models = [(e.name, f"{e.name} · {e.quantization or e.format}") for e in entries]
        default = project.settings.models.generator
        records = load_results(project.path) if project.exists else []
        self.post_message(self.Loaded(models, default, records))

    @work(thread=True, exclusive=True, group="bench-run", exit_on_error=False)
    def run_bench(self, names: list[str]) -> None:
        from telesynth_tui.infra import now
        from telesynth_tui.modelkit.bench import save_results

        def progress(text: str) -> None:
            self.post_message(self.Progress(text))

        created_at = now()
        results = self.backends.bench(names, progress)
        self.post_message(self.Finished({"created_at": created_at, **results}))
        path = save_results(self.backends.project.path, results, created_at)
        self.post_message(self.Saved(path.name))

    # --- results back on the UI thread -----------------------------------------------------

    def on_bench_screen_loaded(self, message: Loaded) -> None:
        models: SelectionList[str] = self.query_one("#bench-models", SelectionList)
        if not self._loaded_models:
            self._loaded_models = True
            models.clear_options()
            for name, label in message.models:
                models.add_option((label, name, name == message.default))
        saved = {r.get("created_at") for r in message.records}
        unsaved = [r for r in self.records if r.get("created_at") not in saved]
        self.records = [*message.records, *unsaved]
        self._show_results()

    def on_bench_screen_progress(self, message: Progress) -> None:
        self._status(message.text)

    def on_bench_screen_finished(self, message: Finished) -> None:
        self.running = False
        self.query_one("#bench-run", Button).disabled = False
        self.records.append(message.record)
        n_gen = len(message.record.get("generators", []))
        n_enc = len(message.record.get("encoders", []))
        self._status(f"benchmark {len(self.records)} done: {n_gen} generators, {n_enc} encoders")
        self._show_results()

    def on_bench_screen_saved(self, message: Saved) -> None:
        self.notify(f"Saved as bench/{message.file_name}", timeout=4)

    # --- helpers ---------------------------------------------------------------------------

    def _show_results(self) -> None:
        gen = self.query_one("#bench-gen", DataTable)
        enc = self.query_one("#bench-enc", DataTable)
        gen.clear()
        enc.clear()
        latest: dict[str, float] = {}
        for number, record in enumerate(self.records, start=1):
            for g in record.get("generators", []):
                gen.add_row(
                    str(number),
                    Text(str(g.get("model", "?"))),
                    _num(g.get("ttft_s"), 1000),
                    _num(g.get("prefill_tok_s")),
                    _num(g.get("decode_tok_s")),
                    _num(g.get("peak_rss_mb")),
                    Text(_energy(g.get("joules_per_token"), g.get("energy_source"))),
                )
                if g.get("decode_tok_s") is not None:
                    latest[str(g.get("model"))] = float(g["decode_tok_s"])
            for e in record.get("encoders", []):
                enc.add_row(
                    str(number),
                    Text(str(e.get("model", "?"))),
                    _num(e.get("sentences_per_s")),
                    _num(e.get("bare_sentences_per_s")),
                    _num(e.get("R_enc"), digits=2),
                    Text(_energy(e.get("joules_per_sentence"), e.get("energy_source"))),
                    _num(e.get("peak_rss_mb")),
                )
        if gen.row_count:
            gen.move_cursor(row=gen.row_count - 1)
        else:
            gen.add_row("", Text("no benchmark yet", style="dim"), *[""] * 5)
        if enc.row_count:
            enc.move_cursor(row=enc.row_count - 1)
        else:
            enc.add_row("", Text("no benchmark yet", style="dim"), *[""] * 5)
        self._plot(latest)

    def _plot(self, rates: dict[str, float]) -> None:
        plot = self.query_one("#bench-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        if rates:
            names = list(rates)
            plt.bar(names, [rates[n] for n in names], orientation="horizontal", width=0.5)
            plt.title("decode tok/s (latest per model)")
        else:
            plt.title("decode tok/s: no benchmark yet")
        plot.refresh()

    def _status(self, text: str) -> None:
        self.query_one("#bench-status", Static).update(Text(text))
