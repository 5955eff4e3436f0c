"""Core modules never import the UI toolkit nor torch."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "telesynth_tui.cli",
    "telesynth_tui.project",
    "telesynth_tui.graph.importer",
    "telesynth_tui.graph.retrieval",
    "telesynth_tui.graph.views",
]


def test_core_imports_neither_textual_nor_torch() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in CORE)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'torch'))\n"
        + "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
