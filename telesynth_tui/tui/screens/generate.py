"""Generate: configure a run, start, pause, cancel (Escape, within one token), resume; progress
per stage, the live token stream, tok/s and J/token sparklines, rejections as they happen."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Select,
    Sparkline,
    Static,
)
from textual.worker import Worker, WorkerState, get_current_worker

from telesynth_tui.pipeline.gate import DEFAULT_MIN_QUALITY
from telesynth_tui.tui.base import BaseScreen

TEMPLATE = "kg-template"  # the realizer's name (telesynth_tui.pipeline.store.TEMPLATE)
DEFAULT_TYPES = "troubleshooting=0.3,multi_hop=0.2,maths=0.25,factual=0.15,definition=0.1"
STAGES = ("retrieve", "generate", "refine", "filter", "score", "store")


class TokenBuffer:
    """Collects streamed pieces in the worker thread and hands them on every `interval` s."""

    def __init__(self, emit: Callable[[str], None], interval: float = 0.05) -> None:
        self.emit = emit
        self.interval = interval
        self.pieces: list[str] = []
        self.last = time.monotonic()

    def add(self, piece: str) -> None:
        self.pieces.append(piece)
        if time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pieces:
            self.emit("".join(self.pieces))
            self.pieces = []
        self.last = time.monotonic()


class GenerateScreen(BaseScreen):
    BINDINGS = [
        ("s", "start", "Start"),
        ("p", "pause", "Pause/continue"),
        ("escape", "cancel", "Cancel"),
        ("c", "resume", "Resume last"),
    ]

    class Started(Message):
        def __init__(self, run_id: int, total: int, generator: str) -> None:
            super().__init__()
            self.run_id, self.total, self.generator = run_id, total, generator

    class Tokens(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Advanced(Message):
        def __init__(
            self,
            progress: Any,
            stages: dict[str, float],
            rejections: list[tuple[int, str, str]],
            sample: str,
        ) -> None:
            super().__init__()
            self.progress, self.stages = progress, stages
            self.rejections, self.sample = rejections, sample

    class Finished(Message):
        def __init__(self, summary: dict[str, Any], cancelled: bool) -> None:
            super().__init__()
            self.summary, self.cancelled = summary, cancelled

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class Models(Message):
        def __init__(self, names: list[str]) -> None:
            super().__init__()
            self.names = names

    def __init__(self) -> None:
        super().__init__()
        self.paused = threading.Event()
        self.rates: list[float] = []
        self.joules: list[float] = []
        self.last_run: int | None = None
        self.running = False
        self.worker: Worker[None] | None = None
        self.stream_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="form-row"):
            yield Label("n")
            yield Input("20", id="n", type="integer", compact=True)
            yield Label("seed")
            yield Input("0", id="seed", type="integer", compact=True)
            yield Label("min q")
            yield Input(str(DEFAULT_MIN_QUALITY), id="min-quality", type="number", compact=True)
            yield Label("parallel")
            parallel = self.backends.project.settings.models.parallel
            yield Input(str(parallel), id="parallel", type="integer", compact=True)
        with Horizontal(classes="form-row"):
            yield Label("types")
            yield Input(DEFAULT_TYPES, id="types", compact=True)
        with Horizontal(classes="form-row"):
            yield Select(
                [(TEMPLATE, TEMPLATE)],
                value=TEMPLATE,
                id="generator",
                compact=True,
                allow_blank=False,
                prompt="generator",
            )
            yield Select([], id="refiner", compact=True, prompt="no refiner")
            yield Select([], id="judge", compact=True, prompt="no judge")
        with Horizontal(classes="form-row", id="buttons"):
            yield Button("Start", id="start", variant="primary", compact=True)
            yield Button("Pause", id="pause", compact=True, disabled=True)
            yield Button("Cancel", id="cancel", variant="error", compact=True, disabled=True)
            yield Static("ready", id="gen-status", classes="status-line")
        yield ProgressBar(total=1, id="gen-progress", show_eta=False)  # 0% until a run starts
        yield Static("", id="stages", classes="status-line")
        with Horizontal(id="sparks"):
            yield Label("tok/s")
            yield Sparkline([], id="rate-spark")
            yield Label("J/tok")
            yield Sparkline([], id="joule-spark")
        with Horizontal(id="logs"):
            with VerticalScroll(id="stream"):
                yield Static("", id="stream-text", markup=False)
            yield RichLog(id="rejections", wrap=True, markup=True, max_lines=400)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stream", VerticalScroll).border_title = "live output"
        self.query_one("#rejections", RichLog).border_title = "rejections"
        self.query_one("#start", Button).focus()
        self.load_models()

    @work(thread=True, exclusive=True, group="generate-models", exit_on_error=False)
    def load_models(self) -> None:
        entries = self.backends.project.registry().entries()
        self.post_message(self.Models([e.name for e in entries if e.text_model]))

    def on_generate_screen_models(self, message: Models) -> None:
        options = [(n, n) for n in message.names]
        self.query_one("#generator", Select).set_options([(TEMPLATE, TEMPLATE), *options])
        self.query_one("#refiner", Select).set_options(options)
        self.query_one("#judge", Select).set_options(options)

    # --- actions ----------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"start": self.action_start, "pause": self.action_pause, "cancel": self.action_cancel}[
            str(event.button.id)
        ]()

    def _config(self) -> Any:
        from telesynth_tui.errors import TelesynthError
        from telesynth_tui.pipeline.plans import parse_mix
        from telesynth_tui.pipeline.store import RunConfig

        def value(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        def chosen(widget_id: str) -> str | None:
            v = self.query_one(f"#{widget_id}", Select).value
            return None if v is Select.NULL else str(v)

        try:
            n, seed, min_quality = int(value("n")), int(value("seed")), float(value("min-quality"))
            mix = parse_mix(value("types"))
        except (ValueError, TelesynthError) as exc:
            raise ValueError(f"check the form: {exc}") from None
        return RunConfig(
            n=n,
            mix=mix,
            seed=seed,
            generator=chosen("generator") or TEMPLATE,
            refiner=chosen("refiner"),
            judge=chosen("judge"),
            min_quality=min_quality,
        )

    def _parallel(self) -> int:
        """Plans decoded together by a GGUF generator."""
        text = self.query_one("#parallel", Input).value.strip()
        if not text.isdigit() or not 1 <= int(text) <= 64:
            raise ValueError("check the form: parallel must be between 1 and 64")
        return int(text)

    def action_start(self) -> None:
        if self.running:
            self.notify("a run is in progress (Escape cancels it)", severity="warning")
            return
        try:
            config, parallel = self._config(), self._parallel()
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        self._begin()
        self.worker = self.generate(config, None, parallel)

    def action_resume(self) -> None:
        if self.running:
            return
        if self.last_run is None:
            self.notify("no run to resume in this session", severity="warning")
            return
        try:
            parallel = self._parallel()
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        self._begin()
        self.worker = self.generate(None, self.last_run, parallel)

    def action_pause(self) -> None:
        if not self.running:
            return
        if self.paused.is_set():
            self.paused.clear()
            self._status("running")
        else:
            self.paused.set()
            self._status("paused (p continues)")
        self.query_one("#pause", Button).label = "Continue" if self.paused.is_set() else "Pause"

    def action_cancel(self) -> None:
        if not self.running:
            return
        self.paused.clear()
        if self.worker is not None:
            self.worker.cancel()  # the run stops at the next token it checks
        self._status("cancelling…")

    def _begin(self) -> None:
        self.running = True
        self.paused.clear()
        self.rates, self.joules = [], []
        self._show_stream("")
        self.query_one("#rejections", RichLog).clear()
        self.query_one("#start", Button).disabled = True
        self.query_one("#pause", Button).disabled = False
        self.query_one("#cancel", Button).disabled = False
        self._status("starting…")

    def _end(self) -> None:
        self.running = False
        self.paused.clear()
        self.query_one("#start", Button).disabled = False
        self.query_one("#pause", Button).disabled = True
        self.query_one("#pause", Button).label = "Pause"
        self.query_one("#cancel", Button).disabled = True

    def _show_stream(self, text: str) -> None:
        """The streamed text, wrapped, its tail kept and in view."""
        self.stream_text = text[-4000:]
        self.query_one("#stream-text", Static).update(self.stream_text)
        self.query_one("#stream", VerticalScroll).scroll_end(animate=False)

    def _status(self, text: str) -> None:
        self.query_one("#gen-status", Static).update(text)

    # --- the worker ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def generate(self, config: Any, resume: int | None, parallel: int = 1) -> None:
        from telesynth_tui.pipeline import store
        from telesynth_tui.pipeline.store import samples_after
        from telesynth_tui.runs import start_generation

        worker = get_current_worker()
        conn = self.backends.connect()
        try:
            run_id, config, total = start_generation(self.backends.project, conn, config, resume)
            self.post_message(self.Started(run_id, total, config.generator))
            with store.writing(conn, run_id):  # a start that fails marks the run failed
                runner = self.backends.runner(conn, config)  # loads models; embeds new chunks
            self.post_message(self.Tokens(f"run {run_id}: models ready\n"))

            def emit(text: str) -> None:
                self.post_message(self.Tokens(text))

            tokens = TokenBuffer(emit)
            seen = 0

            def progress(p: Any) -> None:
                nonlocal seen
                tokens.flush()
                rows = samples_after(conn, run_id, seen)
                seen = max([seen, *(r.id or 0 for r in rows)])
                rejected = [
                    (int(r.id or 0), r.type, r.reason or "") for r in rows if r.status == "rejected"
                ]
                shown = next((r for r in rows if r.accepted), None)
                sample = f"[{shown.type}] Q: {shown.question}\nA: {shown.answer}\n" if shown else ""
                self.post_message(
                    self.Advanced(
                        p, dict(runner.stage_seconds), rejected, "" if runner.llm else sample
                    )
                )

            def cancel() -> bool:
                while self.paused.is_set() and not worker.is_cancelled:
                    time.sleep(0.05)
                return worker.is_cancelled

            summary = runner.execute(run_id, progress, cancel, tokens.add, parallel)
            tokens.flush()
            self.post_message(self.Finished(summary, worker.is_cancelled))
        except Exception as exc:  # shown in the screen; a cancelled worker reports nothing else
            self.post_message(self.Failed(str(exc).splitlines()[0] if str(exc) else repr(exc)))
            raise
        finally:
            conn.close()

    # --- messages from the worker ------------------------------------------------------------

    def on_generate_screen_started(self, message: Started) -> None:
        self.last_run = message.run_id
        bar = self.query_one("#gen-progress", ProgressBar)
        bar.update(total=message.total, progress=0)
        self._status(f"run {message.run_id}: loading {message.generator} and the encoder…")

    def on_generate_screen_tokens(self, message: Tokens) -> None:
        self._show_stream(self.stream_text + message.text)

    def on_generate_screen_advanced(self, message: Advanced) -> None:
        p = message.progress
        self.query_one("#gen-progress", ProgressBar).update(total=p.total, progress=p.done)
        paused = " · paused" if self.paused.is_set() else ""
        self._status(
            f"run {p.run_id}: {p.done}/{p.total} plans · {p.accepted} accepted · "
            f"{p.rejected} rejected{paused}"
        )
        spent = sum(message.stages.values()) or 1.0
        parts = [f"{s} {message.stages[s] / spent:.0%}" for s in STAGES if message.stages.get(s)]
        if p.tokens_per_s:
            parts.append(f"{p.tokens_per_s:.0f} tok/s")
        if p.joules_per_token:
            parts.append(f"{p.joules_per_token:.4f} J/token ({p.energy_source})")
        self.query_one("#stages", Static).update(" · ".join(parts))
        if p.tokens_per_s:
            self.rates = [*self.rates, p.tokens_per_s][-60:]
            self.query_one("#rate-spark", Sparkline).data = self.rates
        if p.joules_per_token:
            self.joules = [*self.joules, p.joules_per_token][-60:]
            self.query_one("#joule-spark", Sparkline).data = self.joules
        if message.sample:
            self._show_stream(self.stream_text + message.sample + "\n")
        log = self.query_one("#rejections", RichLog)
        for sample_id, type_, reason in message.rejections:
            log.write(f"[b]#{sample_id}[/b] {type_}: [red]{reason}[/red]")

    def on_generate_screen_finished(self, message: Finished) -> None:
        s = message.summary
        self._end()
        state = "cancelled (c resumes)" if message.cancelled else "finished"
        self._status(f"run {s['run_id']} {state}: {s['accepted']} ok, {s['rejected']} dropped")
        if s.get("why_nothing_accepted"):
            self.notify(s["why_nothing_accepted"], severity="warning")

    def on_generate_screen_failed(self, message: Failed) -> None:
        self._end()
        self._status(f"failed: {message.error}")
        if self.worker is not None and self.worker.state == WorkerState.CANCELLED:
            self.notify(message.error, title="generation failed", severity="error")

    def commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Start generation", "Start a run with the form's settings", self.action_start
        )
        yield SystemCommand("Cancel generation", "Stop within one token", self.action_cancel)
        yield SystemCommand("Resume last run", "Continue the run stopped here", self.action_resume)
