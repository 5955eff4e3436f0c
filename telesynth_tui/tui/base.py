"""What every screen shares: a title line, and errors of thread workers shown as notifications
instead of crashing the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from telesynth_tui.tui.app import TelesynthApp
    from telesynth_tui.tui.backends import Backends


class BaseScreen(Screen[None]):
    @property
    def backends(self) -> Backends:
        app: TelesynthApp = self.app  # type: ignore[assignment]
        return app.backends

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.notify(message, title=f"{event.worker.name} failed", severity="error", timeout=10)
            self.worker_failed(event.worker.name, message)

    def worker_failed(self, name: str, message: str) -> None:
        """Hook for screens that show the failure in place as well."""


def bar(value: float | None, width: int = 20) -> str:
    """A score 0..1 as a text bar."""
    if value is None:
        return "·" * width + "   -"
    filled = round(max(0.0, min(1.0, value)) * width)
    return "█" * filled + "░" * (width - filled) + f" {value:.2f}"


def size(n: int | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
