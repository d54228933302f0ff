"""Every ``warmstart`` command in the README's recipes is one the command line accepts as written: its command,
its flags and their values' types (a recipe once lacked the required --out, another used a flag that had been
renamed). The commands are parsed by the real app with each command's body replaced by nothing, so nothing runs;
what the bodies check (files, data) is for the tests of each command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from warmstart.cli.app import app
from warmstart.cli.command import COMMAND_OPTIONS, spread_values
from warmstart.errors import WarmstartError

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    """The README's ``warmstart`` lines from its bash blocks, continuation lines joined; lines written as a
    shorthand (``...`` for the rest of the flags, ``a | b`` for alternatives) are left out."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.strip()
            if line.startswith("warmstart ") and "..." not in line and " | " not in line:
                commands.append(line)
    return commands


@pytest.fixture(scope="module")
def parse_only():
    group = typer.main.get_command(app)
    seen = []

    def silence(command):
        for sub in getattr(command, "commands", {}).values():
            silence(sub)
        if not hasattr(command, "commands"):
            command.callback = lambda **values: seen.append(values)

    silence(group)

    def parse(line: str) -> dict:
        seen.clear()
        args = spread_values(shlex.split(line, comments=True)[1:], COMMAND_OPTIONS)
        group.main(args, prog_name="warmstart", standalone_mode=False)
        assert len(seen) == 1, line  # the command's body was reached, with its options parsed
        return seen[0]

    return parse


def test_the_readme_has_recipes_to_check():
    assert len(readme_commands()) >= 40


@pytest.mark.parametrize("line", readme_commands(), ids=lambda line: line.removeprefix("warmstart ")[:70])
def test_every_readme_command_parses_as_written(line, parse_only):
    try:
        values = parse_only(line)
    except WarmstartError as error:  # --config reads its file while parsing; the README made it a recipe earlier
        assert "--config" in line and "no such file" in error.message, (line, error.message)
        return
    assert values, line
