"""The `telesynth` command line: a thin layer over the core, one module per command group
(heavy imports inside commands). `main` runs it and prints every error as one line."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import NoReturn

import typer

from telesynth_tui.cli import check, dta, evaluate, export, generate, init, kg, models, runs
from telesynth_tui.cli.common import State, app
from telesynth_tui.errors import TelesynthError

COMMAND_MODULES = (init, kg, generate, dta, runs, check, export, evaluate, models)


def fail(message: str, code: int = 1) -> NoReturn:
    """The one way a command reports an error: one line on stderr and a non-zero exit."""
    typer.echo(message, err=True)
    sys.exit(code)


def main() -> None:
    try:
        app()
    except TelesynthError as exc:
        fail(f"error: {exc}", exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except SystemExit as exc:
        if exc.code == 130:  # Ctrl-C inside a command: the CLI library exits 130 silently
            typer.echo("interrupted", err=True)
        raise
    except sqlite3.DatabaseError as exc:
        from telesynth_tui.config import DATABASE_FILE
        from telesynth_tui.project import database_error

        fail(f"error: {database_error(State.project_dir / DATABASE_FILE, exc)}", 2)
    except MemoryError:
        fail(f"error: out of memory running: {' '.join(sys.argv[1:])}")
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("TELESYNTH_DEBUG"):
            raise
        fail(
            f"error: unexpected {type(exc).__name__}{_where(exc)}: {exc} while running "
            f"'{' '.join(sys.argv[1:])}' (set TELESYNTH_DEBUG=1 for details)"
        )


def _where(exc: BaseException) -> str:
    """The innermost place of the product's code an unexpected error came from."""
    tb = exc.__traceback__
    place = ""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "telesynth_tui" in name:
            place = f" at {Path(name).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return place
