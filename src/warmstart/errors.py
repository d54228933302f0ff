"""The one error type a user sees.

Anything that is the user's mistake (a missing file, a bad parameter, a checkpoint that is not ours) is raised as
:class:`WarmstartError`. Its message names the file, field or parameter, what was expected and what was found; its
hint says how to fix it. The CLI prints ``error: MESSAGE`` and ``  fix: HINT`` and exits with code 2; programming
errors keep their traceback.
"""

from __future__ import annotations


class WarmstartError(Exception):
    """A problem with the user's input, reported without a traceback (CLI exit code 2).

    ``hint`` is required, and must say something: the documented ``error:``/``fix:`` format cannot be left out by a
    raise site (issue 14, item 14)."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str):
        if not isinstance(hint, str) or not hint.strip():
            # a programming error at the raise site, so a TypeError with a traceback, not a user-facing error
            raise TypeError(f"WarmstartError needs a non-empty hint saying how to fix it, got {hint!r} "
                            f"(message: {message!r})")
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  fix: {hint}")

    def __reduce__(self):
        # the default rebuilds from ``args`` alone, which lacks the keyword ``hint``: an error raised in a worker
        # process (torchrun, Spark) or copied must arrive whole
        return _rebuild, (type(self), self.message, self.hint)


class TrainingDiverged(WarmstartError):
    """The training loss or the weights stopped being finite (a learning rate too high). A search treats such a
    trial as a poor one rather than stopping (warmstart tune)."""


def _rebuild(cls: type[WarmstartError], message: str, hint: str) -> WarmstartError:
    return cls(message, hint=hint)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``exc``'s message, cut to ``limit`` characters, for an error that quotes its cause; the
    exception's type when the message is empty (``str(exc).splitlines()[0]`` raised IndexError on those)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0][:limit] if lines else type(exc).__name__
