"""The documented error format (issue 14, item 14): every user error prints one ``error:`` line and a ``  fix:`` line
and exits with 2. The fix is part of the error type, so a raise site cannot leave it out; the scan below checks every
raise site in the package, and a sample of real mistakes is run end to end through the command line."""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import warmstart
from warmstart.cli import main
from warmstart.config import TrainConfig
from warmstart.errors import WarmstartError
from warmstart.launch.torchrun import LaunchError
from warmstart.strategies import create_strategy

PACKAGE = Path(warmstart.__file__).parent


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """WarmstartError and every class in the package derived from it (LaunchError, ...), by name."""
    names = {"WarmstartError"}
    while True:
        found = {node.name for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                 and any((getattr(b, "id", None) or getattr(b, "attr", None)) in names for b in node.bases)}
        if found <= names:
            return names
        names |= found


def test_every_raise_site_in_the_package_gives_a_hint():
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}
    classes = _error_classes(trees)
    assert "LaunchError" in classes
    missing, empty, calls = [], [], 0
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call)
                    and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) in classes):
                continue
            calls += 1
            where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
            hint = next((k.value for k in node.keywords if k.arg == "hint"), None)
            if hint is None:
                missing.append(where)
            elif isinstance(hint, ast.Constant) and not (isinstance(hint.value, str) and hint.value.strip()):
                empty.append(where)
    assert calls > 150  # the scan sees the package's raise sites
    assert not missing, f"raise sites without hint=: {missing}"
    assert not empty, f"raise sites with an empty or None hint: {empty}"


def test_a_hint_is_required_and_must_say_something():
    with pytest.raises(TypeError):
        WarmstartError("x")  # type: ignore[call-arg]
    for hint in (None, "", "  "):
        with pytest.raises(TypeError, match="hint"):
            WarmstartError("x", hint=hint)  # type: ignore[arg-type]
    err = WarmstartError("the message", hint="the fix")
    assert (err.message, err.hint, err.exit_code) == ("the message", "the fix", 2)
    assert str(err) == "the message\n  fix: the fix"


def test_an_error_survives_pickling_whole():
    """A worker's error (torchrun, Spark) crosses processes by pickle; the required hint must not break that."""
    for err in (WarmstartError("m", hint="h"), LaunchError("m", hint="h")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and (back.message, back.hint, str(back)) == (err.message, err.hint, str(err))


def test_a_bad_parameter_names_its_flag_in_the_fix():
    with pytest.raises(WarmstartError) as err:
        TrainConfig(batch_size=0)
    assert err.value.hint == "set --batch-size to a positive integer"
    with pytest.raises(WarmstartError) as err:
        create_strategy("lora", rank=0)
    assert "--strategy-option rank=" in err.value.hint


def run_cli(argv: list, capsys) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    return exit_info.value.code, capsys.readouterr().err


def assert_error_shape(code: int, err: str) -> tuple[str, str]:
    """Exit code 2, exactly one ``error:`` line, followed at once by a non-empty ``  fix:`` line, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert errors[0] + 1 < len(lines) and lines[errors[0] + 1].startswith("  fix: "), err
    fix = lines[errors[0] + 1][len("  fix: "):]
    assert fix.strip(), err
    return lines[errors[0]][len("error: "):], fix


TRAIN = ["finetune", "--from", "none", "--model", "mlp", "--epochs", "1", "--quiet"]


@pytest.mark.parametrize("flags, words", [
    (["--data", "no-such-file.csv"], ["no-such-file.csv"]),
    (["--data", "digits", "--strategy", "magic"], ["--strategy", "'magic'"]),
    (["--data", "digits", "--lr", "-1"], ["lr", "-1"]),
    (["--data", "digits", "--image-size", "1", "2", "3"], ["--image-size"]),
    (["--data", "digits", "--batch-size", "0"], ["batch_size"]),
    (["--data", "digits", "--strategy", "lora", "--strategy-option", "rank=0"], ["rank"]),
])
def test_real_mistakes_print_error_and_fix(flags, words, tmp_path, capsys):
    message, _ = assert_error_shape(*run_cli([*TRAIN, *flags, "--out", tmp_path / "run"], capsys))
    for word in words:
        assert word in message
    assert not (tmp_path / "run").exists()


def test_lr_fix_names_the_flag(tmp_path, capsys):
    _, fix = assert_error_shape(*run_cli([*TRAIN, "--data", "digits", "--lr", "-1", "--out", tmp_path / "r"], capsys))
    assert fix.startswith("set --lr to ")


def _mixed_size_folder(root: Path) -> Path:
    for c, cls in enumerate("ab"):
        for i in range(4):
            path = root / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.full((5 + i, 4 + i), 60 + 120 * c, dtype=np.uint8)
            Image.fromarray(pixels).save(path)
    return root


def test_the_suggested_image_size_parses_and_works(tmp_path, capsys):
    """The fix for images of different sizes suggests ``--image-size H W``; that exact command line must run (it
    was refused as extra arguments: only ``--image-size H --image-size W`` parsed)."""
    data = _mixed_size_folder(tmp_path / "images")
    message, fix = assert_error_shape(*run_cli([*TRAIN, "--data", data, "--out", tmp_path / "run"], capsys))
    assert "different sizes" in message
    suggested = re.search(r"--image-size (\d+) (\d+)", fix)
    assert suggested, fix
    code, err = run_cli([*TRAIN, "--data", data, "--image-size", *suggested.groups(), "--out", tmp_path / "run"],
                        capsys)
    assert code in (0, None), err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["image_size"] == [int(v) for v in suggested.groups()]


@pytest.mark.parametrize("sizes, expected", [(["6", "3"], [6, 3]), (["6"], [6, 6])])
def test_image_size_as_height_width_or_one_size(sizes, expected, tmp_path, capsys):
    data = _mixed_size_folder(tmp_path / "images")
    code, err = run_cli([*TRAIN, "--data", data, "--image-size", *sizes, "--out", tmp_path / "run"], capsys)
    assert code in (0, None), err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["image_size"] == expected


def test_the_image_size_error_suggests_a_form_that_parses(tmp_path, capsys):
    _, fix = assert_error_shape(*run_cli([*TRAIN, "--data", "digits", "--image-size", "1", "2", "3",
                                          "--out", tmp_path / "run"], capsys))
    for example in re.findall(r"--image-size(?: \d+)+", fix):
        code, err = run_cli([*TRAIN, "--data", _mixed_size_folder(tmp_path / example.replace(" ", "_")),
                             *example.split(), "--out", tmp_path / example.replace(" ", "-")], capsys)
        assert code in (0, None), err
