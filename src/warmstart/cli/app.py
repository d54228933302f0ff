"""The ``warmstart`` command: the typer app, ``--version``, and :func:`main`, which turns the user's errors into a
message and exit code 2.

Importing this module imports no torch: commands import the API inside their bodies, and every ``--help`` is built
from static text and defaults read without importing the API (see :mod:`warmstart.cli.defaults`).
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from .._version import __version__
from ..errors import WarmstartError
from .command import PanelledGroup

app = typer.Typer(cls=PanelledGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="warmstart: pretrain, fine-tune and evaluate models, and measure what transfer gained.")


def _print_version(value: bool) -> None:
    if value:
        print(f"warmstart {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                                 help="Print the version and exit.")) -> None:
    """warmstart: pretrain, fine-tune and evaluate models, and measure what transfer gained."""


# the command modules register themselves on `app` (imported after it exists)
from . import train, tune, distill, inspect, select, demo  # noqa: E402,F401  (this order is --help's)
from .build import ARGV  # noqa: E402
from .command import COMMAND_OPTIONS, spread_values  # noqa: E402


class _NotesToStderr(logging.Handler):
    """Prints log records as ``note:`` lines (``warning:`` from warnings) on whatever ``sys.stderr`` is when they
    are emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        kind = "warning" if record.levelno >= logging.WARNING else "note"
        print(f"{kind}: {record.getMessage()}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    # the API's notes (a new head, the epoch whose weights were kept, ...) reach the terminal as they happen
    logger = logging.getLogger("warmstart")
    if not any(isinstance(h, _NotesToStderr) for h in logger.handlers):
        logger.addHandler(_NotesToStderr())
    logger.setLevel(logging.INFO)
    args = spread_values(sys.argv[1:] if argv is None else [str(a) for a in argv], COMMAND_OPTIONS)
    ARGV[:] = args
    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun worker other than rank 0: only rank 0 prints
        logger.setLevel(logging.WARNING)
        sys.stdout = open(os.devnull, "w")
    try:
        app(args=args)  # standalone: usage errors print their message and exit with 2
    except WarmstartError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
