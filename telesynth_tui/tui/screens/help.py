"""The help screen: every key of the app and of the screen it was opened from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

INTRO = (
    "[b]telesynth[/b]: telecom knowledge into fine-tuning data, offline.\n"
    "Screens: 1 Dashboard · 2 Knowledge graph · 3 Generate · 4 Review · 5 Evaluate · 6 Bench.\n"
    "Ctrl+P opens the command palette. Escape cancels a running generation. Mouse optional."
)


def _keys(bindings: list[Binding]) -> list[str]:
    lines = []
    for b in bindings:
        if b.description:
            lines.append(f"  [b]{b.key_display or b.key:>10}[/b]  {b.description}")
    return lines


class HelpScreen(ModalScreen[None]):
    BINDINGS = [("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, screen: Screen[object], app_bindings: list[Binding]) -> None:
        super().__init__()
        self.for_screen = screen
        self.app_bindings = app_bindings

    def compose(self) -> ComposeResult:
        own = [b for b in self.for_screen.BINDINGS if isinstance(b, Binding)] + [
            Binding(*b) for b in self.for_screen.BINDINGS if isinstance(b, tuple)
        ]
        text = "\n".join(
            [
                INTRO,
                "",
                "[b]Everywhere[/b]",
                *_keys(self.app_bindings),
                "",
                f"[b]{type(self.for_screen).__name__.removesuffix('Screen')}[/b]",
                *_keys(own),
            ]
        )
        with VerticalScroll(id="help-box"):
            yield Static(text)
