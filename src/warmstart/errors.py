"""The one error type a user sees.

Anything that is the user's mistake (a missing file, a bad parameter, a checkpoint that is not ours) is raised as
:class:`WarmstartError`. Its message names the file, field or parameter, what was expected, what was found and how
to fix it. The CLI prints the message alone and exits with code 2; programming errors keep their traceback.
"""

from __future__ import annotations


class WarmstartError(Exception):
    """A problem with the user's input, reported without a traceback (CLI exit code 2)."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  fix: {hint}")
