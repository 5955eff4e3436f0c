"""Core modules (every module outside telesynth_tui.tui) never import the UI toolkit nor torch."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_neither_textual_nor_torch() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import telesynth_tui\n"
        "for m in pkgutil.walk_packages(telesynth_tui.__path__, 'telesynth_tui.'):\n"
        "    if not m.name.startswith('telesynth_tui.tui'):\n"
        "        importlib.import_module(m.name)\n"
        "assert 'telesynth_tui.dta.runner' in sys.modules\n"
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'torch'))\n"
        + "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
