"""Run the command line in-process, as a user would, and capture what it printed."""

from __future__ import annotations

import pytest

from warmstart.cli import main


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``warmstart ARGS``: its exit code, stdout and stderr (paths and numbers are passed as strings)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err
