"""Import problems reported to the user as one line each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImportIssue:
    """A problem with one input file (and line, where known)."""

    path: Path
    line: int | None
    message: str
    severity: str = "error"  # "error" (something was not imported) or "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.severity}: {self.message}"
