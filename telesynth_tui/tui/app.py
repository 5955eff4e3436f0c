"""The telesynth terminal app: six screens switched by number keys, a command palette, help."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from telesynth_tui.tui.backends import Backends
from telesynth_tui.tui.screens.bench import BenchScreen
from telesynth_tui.tui.screens.dashboard import DashboardScreen
from telesynth_tui.tui.screens.evaluate import EvaluateScreen
from telesynth_tui.tui.screens.generate import GenerateScreen
from telesynth_tui.tui.screens.help import HelpScreen
from telesynth_tui.tui.screens.kg import KgScreen
from telesynth_tui.tui.screens.review import ReviewScreen

if TYPE_CHECKING:
    from telesynth_tui.project import Project

SCREENS = {
    "dashboard": ("1", "Dashboard", "Project, knowledge graph, models, recent runs"),
    "kg": ("2", "Knowledge graph", "Search entities and documents, neighbourhoods, paths"),
    "generate": ("3", "Generate", "Configure and run a generation with live progress"),
    "review": ("4", "Review", "Step through samples: accept, reject, edit, undo"),
    "evaluate": ("5", "Evaluate", "Evaluate a student model, compare evaluations"),
    "bench": ("6", "Bench", "Benchmark models: TTFT, tokens/s, memory, J/token"),
}


class TelesynthApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "telesynth"
    SUB_TITLE = "1 Dash 2 KG 3 Gen 4 Review 5 Eval 6 Bench"
    MODES = {
        "dashboard": DashboardScreen,
        "kg": KgScreen,
        "generate": GenerateScreen,
        "review": ReviewScreen,
        "evaluate": EvaluateScreen,
        "bench": BenchScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        *(
            Binding(key, f"switch_mode('{mode}')", title, show=False)
            for mode, (key, title, _) in SCREENS.items()
        ),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, backends: Backends) -> None:
        super().__init__()
        self.backends = backends

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            bindings = [b for b in self.BINDINGS if isinstance(b, Binding)]  # all of them
            self.push_screen(HelpScreen(self.screen, bindings))

    def review_run(self, run_id: int) -> None:
        """Open the review screen on a run."""
        self.switch_mode("review")
        self.call_after_refresh(lambda: self._open_review(run_id))

    def _open_review(self, run_id: int) -> None:
        screen = self.screen
        if isinstance(screen, ReviewScreen):
            screen.open_run(run_id)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (key, title, help_text) in SCREENS.items():
            yield SystemCommand(
                f"Go to {title} ({key})", help_text, lambda mode=mode: self.switch_mode(mode)
            )
        yield SystemCommand("Keys and help (?)", "Every key of this screen", self.action_help)
        yield from getattr(screen, "commands", lambda: [])()


def create_app(project: Project, backends: Backends | None = None) -> TelesynthApp:
    """The one app factory: the CLI, the tests and bench/ build the app here."""
    return TelesynthApp(backends or Backends.for_project(project))
