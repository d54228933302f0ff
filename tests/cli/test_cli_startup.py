"""The command line answers --help and --version without importing torch (no timing here: that is
benchmarks/cli_startup.py's job)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import warmstart
from warmstart.cli.command import COMMAND_OPTIONS

from cli_runner import run_cli

HEAVY = ("torch", "torchvision", "matplotlib", "transformers")


def python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(warmstart.__file__).parents[1])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def test_importing_the_command_line_imports_no_torch():
    loaded = python("import sys, warmstart.cli; print(' '.join(m for m in sys.modules))").split()
    assert not [m for m in HEAVY if m in loaded]


def test_every_help_is_built_without_torch():
    commands = sorted(COMMAND_OPTIONS)
    loaded = python("import sys, contextlib, io\nfrom warmstart.cli import main\n"
                    f"for args in [['--help'], ['--version'], *[[c, '--help'] for c in {commands!r}]]:\n"
                    "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                    "        main(args)\n"
                    "print(' '.join(sys.modules))").split()
    assert not [m for m in HEAVY if m in loaded]


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"warmstart {warmstart.__version__}"


def test_the_package_root_exports_lazily_and_compare_stays_the_function():
    loaded = python("import sys, warmstart\nbefore = 'warmstart.api' in sys.modules\n"
                    "import warmstart.compare as c\n"
                    "print(before, callable(warmstart.compare), callable(c), type(warmstart.DataConfig).__name__)")
    assert loaded.split() == ["False", "True", "True", "type"]  # the submodule does not hide the function
