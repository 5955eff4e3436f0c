"""The error type shown to the user as one line (never a traceback)."""


class TelesynthError(Exception):
    """A problem the user can act on; the CLI prints it as one line and exits non-zero."""

    exit_code = 2
