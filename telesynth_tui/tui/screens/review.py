"""Review: step through a run's samples one at a time and accept, reject, edit or undo. Every
decision is written at once and the exports follow it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Static, TextArea

from telesynth_tui.pipeline.records import Sample
from telesynth_tui.tui.base import BaseScreen, bar

SHOW = ("all", "rejected", "accepted", "unreviewed")
ORDER = ("id", "quality")
SCORE_LABELS = {
    "answer_relevancy": "relevancy",
    "faithfulness": "faithful",
    "context_precision": "ctx precision",
    "context_recall": "ctx recall",
    "style": "style",
    "selection_score": "selection",
}


class EditScreen(ModalScreen[str | None]):
    """The answer in a text area; Ctrl+S or Escape saves (nothing typed is lost), Ctrl+D drops
    the changes."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "save", "Save and close"),
        Binding("ctrl+d", "discard", "Discard changes"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.original = text

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-box"):
            yield Static(
                "Edit the answer · Ctrl+S or Esc saves · Ctrl+D discards · F7 selects all",
                classes="status-line",
            )
            yield TextArea(self.original, id="edit-area", soft_wrap=True)

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.move_cursor(area.document.end)  # ready to add to the end
        area.focus()

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        self.dismiss(text if text.strip() and text != self.original else None)

    def action_discard(self) -> None:
        self.dismiss(None)


class RunPrompt(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="run-box"):
            yield Static("Review which run? (number, Enter)")
            yield Input(id="run-id", type="integer", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(int(event.value) if event.value.strip() else None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ReviewScreen(BaseScreen):
    BINDINGS = [
        Binding("a", "decide('accepted')", "Accept"),
        Binding("x", "decide('rejected')", "Reject"),
        Binding("e", "edit", "Edit"),
        Binding("u", "undo", "Undo"),
        Binding("n,right", "step(1)", "Next", key_display="→"),
        Binding("p,left", "step(-1)", "Prev", key_display="←"),
        Binding("f", "cycle_show", "Filter"),
        Binding("o", "cycle_order", "Order"),
        Binding("g", "choose_run", "Run"),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class Listed(Message):
        def __init__(self, run_id: int, ids: list[int], keep: int | None) -> None:
            super().__init__()
            self.run_id, self.ids, self.keep = run_id, ids, keep

    class Loaded(Message):
        def __init__(self, sample: Sample, facts: list[str]) -> None:
            super().__init__()
            self.sample = sample
            self.facts = facts

    class Changed(Message):
        def __init__(self, state: Any, note: str) -> None:
            super().__init__()
            self.state, self.note = state, note

    def __init__(self) -> None:
        super().__init__()
        self.run_id: int | None = None
        self.ids: list[int] = []
        self.index = 0
        self.show = "all"
        self.order = "id"
        self.history: list[Any] = []  # states before each change, for undo
        self.change_lock = threading.Lock()  # changes are applied one at a time, in order
        self.sample: Sample | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("no run open: press g to choose one", id="review-status")
        with VerticalScroll(id="review-body"):
            yield Static("", id="review-text")
        yield Footer()

    def on_mount(self) -> None:
        self.list_samples(None, None)

    # --- workers -----------------------------------------------------------------------------

    def _with_conn(self, job: Callable[[Any], None]) -> None:
        conn = self.backends.connect()
        try:
            with self.change_lock:
                job(conn)
        finally:
            conn.close()

    @work(thread=True, exclusive=True, group="review-list", exit_on_error=False)
    def list_samples(self, run_id: int | None, keep: int | None) -> None:
        from telesynth_tui.pipeline.review import review_run
        from telesynth_tui.runs import sample_ids

        def job(conn: Any) -> None:
            chosen = review_run(conn, run_id)
            if chosen is not None:
                ids = sample_ids(conn, chosen, self.show, self.order)
                self.post_message(self.Listed(chosen, ids, keep))

        self._with_conn(job)

    @work(thread=True, exclusive=True, group="review-load", exit_on_error=False)
    def load(self, sample_id: int) -> None:
        def job(conn: Any) -> None:
            self.post_message(self.loaded(conn, sample_id))

        self._with_conn(job)

    @work(thread=True, group="review-change", exit_on_error=False)
    def change(self, kind: str, sample_id: int, value: Any) -> None:
        from telesynth_tui.pipeline import review

        def job(conn: Any) -> None:
            if kind == "decide":
                before = review.decide(conn, sample_id, value)
                note = f"#{sample_id} {value}"
            elif kind == "edit":
                before = review.edit(conn, sample_id, value)
                note = f"#{sample_id} edited and saved"
            else:
                review.restore(conn, value)
                before, note = None, f"#{sample_id} restored"
            self.post_message(self.Changed(before, note))
            self.post_message(self.loaded(conn, sample_id))

        self._with_conn(job)

    def loaded(self, conn: Any, sample_id: int) -> Loaded:
        from telesynth_tui.pipeline.review import load_sample, sample_facts

        sample = load_sample(conn, sample_id)
        return self.Loaded(sample, sample_facts(conn, sample))

    # --- actions ------------------------------------------------------------------------------

    def open_run(self, run_id: int) -> None:
        self.history = []
        self.list_samples(run_id, None)

    def action_choose_run(self) -> None:
        def chosen(run_id: int | None) -> None:
            if run_id is not None:
                self.open_run(run_id)

        self.app.push_screen(RunPrompt(), chosen)

    def action_step(self, delta: int) -> None:
        if self.ids:
            self.index = max(0, min(len(self.ids) - 1, self.index + delta))
            self.load(self.ids[self.index])

    def action_jump(self, index: int) -> None:
        if self.ids:
            self.index = index % len(self.ids)
            self.load(self.ids[self.index])

    def action_decide(self, decision: str) -> None:
        if self.sample is not None:
            self.change("decide", self.sample.id, decision)

    def action_edit(self) -> None:
        sample = self.sample
        if sample is None:
            return
        if sample.answer is None or sample.id is None:
            self.notify("this sample has no answer to edit (the model output was unusable)")
            return

        def saved(text: str | None) -> None:
            if text is not None:
                self.change("edit", sample_id, text)

        sample_id, answer = sample.id, sample.answer
        self.app.push_screen(EditScreen(answer), saved)

    def action_undo(self) -> None:
        if not self.history:
            self.notify("nothing to undo")
            return
        state = self.history.pop()
        if state.sample_id in self.ids:
            self.index = self.ids.index(state.sample_id)
        self.change("restore", state.sample_id, state)

    def action_cycle_show(self) -> None:
        self.show = SHOW[(SHOW.index(self.show) + 1) % len(SHOW)]
        if self.run_id is not None:
            self.list_samples(self.run_id, None)

    def action_cycle_order(self) -> None:
        self.order = ORDER[(ORDER.index(self.order) + 1) % len(ORDER)]
        if self.run_id is not None:
            current = self.sample.id if self.sample else None
            self.list_samples(self.run_id, current)

    # --- messages -------------------------------------------------------------------------------

    def on_review_screen_listed(self, message: Listed) -> None:
        self.run_id, self.ids = message.run_id, message.ids
        self.index = self.ids.index(message.keep) if message.keep in self.ids else 0
        if self.ids:
            self.load(self.ids[self.index])
        else:
            self.sample = None
            self.query_one("#review-text", Static).update(
                f"run {self.run_id} has no samples to show ({self.show}); f changes the filter"
            )
            self._status()

    def on_review_screen_changed(self, message: Changed) -> None:
        if message.state is not None:
            self.history.append(message.state)
        self.notify(message.note, timeout=2)

    def on_review_screen_loaded(self, message: Loaded) -> None:
        self.sample = message.sample
        self._status()
        self.query_one("#review-text", Static).update(render_sample(message.sample, message.facts))
        self.query_one("#review-body", VerticalScroll).scroll_home(animate=False)

    def _status(self) -> None:
        s = self.sample
        where = f"{self.index + 1}/{len(self.ids)}" if self.ids else "0/0"
        text = f"run {self.run_id} · {where} · showing {self.show} by {self.order}"
        if s is not None:
            quality = f"{s.quality:.2f}" if s.quality is not None else "-"
            view = (
                "" if (self.show, self.order) == ("all", "id") else f" · {self.show}/{self.order}"
            )
            text = (
                f"run {self.run_id} · {where} · #{s.id} {s.type} · pipeline "
                f"{s.status} · review [b]{s.review or '-'}[/b] · "
                f"q {quality}{view}"
            )
        self.query_one("#review-status", Static).update(text)

    def commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Review another run", "Open a run by number", self.action_choose_run)
        yield SystemCommand(
            "Show only rejected / accepted / unreviewed", "Cycle the filter", self.action_cycle_show
        )
        yield SystemCommand(
            "Order by quality (worst first)", "Toggle id / quality order", self.action_cycle_order
        )


def render_sample(s: Sample, facts: list[str]) -> str:
    """The sample as Rich markup: question, answer, steps, scores as bars, filter verdicts,
    context with the cited items highlighted, provenance."""
    e = escape
    question = s.question or "(none: the model output was unusable)"
    lines = [
        f"[b $accent]Question[/]\n{e(question)}",
        f"\n[b $accent]Answer[/]\n{e(s.answer or '-')}",
    ]
    if s.reason:
        lines.append(f"\n[b red]Rejected by the pipeline:[/] {e(s.reason)}")
    if len(s.steps) > 1:
        lines.append("\n[b $accent]Steps[/]")
        lines += [f"  {i}. {e(str(step))}" for i, step in enumerate(s.steps, 1)]
    scores = s.scores
    shown = [
        (label, scores.get(k))
        for k, label in SCORE_LABELS.items()
        if isinstance(scores.get(k), int | float)
    ]
    judge = scores.get("judge", {})
    if isinstance(judge, dict) and "score" in judge:
        shown.append((f"judge ({judge.get('by')})", judge["score"]))
    if s.quality is not None:
        shown.append(("quality", s.quality))
    if shown:
        lines.append("\n[b $accent]Scores[/]")
        lines += [f"  {name:>14} {bar(float(v))}" for name, v in shown]
    if scores.filters:
        lines.append("\n[b $accent]Filters[/]")
        for name, v in scores.filters.items():
            mark = "[green]pass[/]" if v.passed else "[red]FAIL[/]"
            lines.append(f"  {mark} {name}: {e(v.detail)}")
    agreement = scores.get("agreement")
    if agreement:
        others = ", ".join(agreement.get("agree_with", [])) or "no other teacher"
        lines.append(
            f"\n[b $accent]Agreement[/] {e(str(agreement.get('detail', '')))}; "
            f"agrees with {e(others)}"
        )
    cited = set(s.cited)
    if s.context:
        lines.append("\n[b $accent]Context[/] (cited items highlighted)")
        for i, item in enumerate(s.context, 1):
            text = e(" ".join(item.text.split())[:400])
            if item.key in cited:
                lines.append(f"  [reverse][{i}] {e(item.key)}[/reverse] [b]{text}[/b]")
            else:
                lines.append(f"  [dim][{i}] {e(item.key)} {text}[/dim]")
    prov = s.provenance
    lines.append("\n[b $accent]Provenance[/]")
    lines.append(
        f"  plan {prov.plan_id} ({prov.plan_type}) · generator "
        f"{e(str(s.generator))}" + (f" · formula {prov.formula}" if prov.formula else "")
    )
    lines += [f"  {e(fact)}" for fact in facts]
    if prov.chunk_ids:
        lines.append(f"  chunks {', '.join(str(c) for c in prov.chunk_ids)}")
    return "\n".join(lines)
