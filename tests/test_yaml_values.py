"""YAML as users write it: ``1e-3`` is a number (YAML 1.2), everything else reads as PyYAML's safe loader reads it,
and the three places a user's YAML comes in (``--space``, ``--config``, ``KEY=VALUE`` options) use it."""

from __future__ import annotations

import pytest
import yaml

from warmstart import yaml_values
from warmstart.cli.build import key_values
from warmstart.cli.config_file import read_document
from warmstart.errors import WarmstartError
from warmstart.search_space import read_space_file


@pytest.mark.parametrize("text, value", [
    ("1e-3", 1e-3), ("1E2", 100.0), ("-2e+4", -2e4), ("+5e-05", 5e-5), ("1_000e3", 1e6),
])
def test_an_exponent_without_a_dot_is_a_float(text, value):
    assert yaml.safe_load(text) == text  # PyYAML's YAML 1.1: a string, the cause of the refusals
    got = yaml_values.load(text)
    assert isinstance(got, float) and got == value


@pytest.mark.parametrize("text", [
    "0.001", "1.0e-05", "12", "-3", ".inf", "true", "null", "e5", "1e", "1e-3x", "resnet18", "[1, 2e1]",
    "{low: 1.0e-4, high: 0.1}", "'1e-3'", "0x1f", "2001-12-14",
])
def test_everything_else_reads_as_the_safe_loader_reads_it(text):
    expected = yaml.safe_load(text)
    if text == "[1, 2e1]":
        expected = [1, 20.0]
    assert yaml_values.load(text) == expected


def test_no_object_is_built_from_a_tag():
    with pytest.raises(yaml_values.YAMLError):
        yaml_values.load("!!python/object/apply:os.system ['echo owned']")


def test_the_three_ways_in_read_exponents_as_numbers(tmp_path):
    assert key_values(["head_lr_scale=1e2", "name=resnet18"], "--strategy-option") == {
        "head_lr_scale": 100.0, "name": "resnet18"}
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 1e-5, high: 1e-3, log: true}\n")
    param = read_space_file(space)["lr"]
    assert (param.low, param.high, param.log) == (1e-5, 1e-3, True)
    config = tmp_path / "run.yaml"
    config.write_text("lr: 3e-4\nstrategy_option: {head_lr_scale: 1e2}\n")
    assert read_document(config) == {"lr": 3e-4, "strategy_option": {"head_lr_scale": 100.0}}


def test_a_space_bound_that_is_still_not_a_number_is_refused_naming_the_key(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 1e-5x, high: 1e-3}\n")
    with pytest.raises(WarmstartError, match="key 'lr'"):
        read_space_file(space)


def test_aliases_are_refused_before_they_expand():
    """Nine levels of aliases ("billion laughs") in a --config file held 3.7 GB and growing after a minute."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(yaml_values.YAMLError, match=r"found the alias \*a0: warmstart reads no YAML aliases"):
        yaml_values.load("\n".join(levels) + "\n")
    assert yaml_values.load("a: &anchor 1\n") == {"a": 1}  # an anchor alone expands nothing


def test_a_key_written_twice_is_refused_naming_it_and_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys without a word: in a --space file (or a --config) the version of
    the setting that ran could not be told from the file."""
    with pytest.raises(yaml_values.YAMLError, match=r"found the key 'lr' a second time \(first on line 1\)") as error:
        yaml_values.load("lr: {low: 1.0e-4, high: 1.0e-3}\nepochs: 4\nlr: {low: 1, high: 2}\n")
    assert "line 3" in str(error.value)
    with pytest.raises(yaml_values.YAMLError, match="found the key 'a' a second time"):
        yaml_values.load("outer: {a: 1, a: 2}\n")  # nested mappings too
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 1.0e-4, high: 1.0e-3}\nlr: {low: 1, high: 2}\n")
    with pytest.raises(WarmstartError, match=f"(?s)--space {space}: cannot be read as YAML.*the key 'lr' a second"):
        read_space_file(space)
    assert yaml_values.load("a: 1\nb: {a: 2}\n") == {"a": 1, "b": {"a": 2}}  # one key per mapping is fine


@pytest.mark.parametrize("text, message", [
    # a choice listed twice was drawn twice as often (Optuna counts each entry as a category)
    ("optimizer: {choices: [adam, adam, sgd]}\n", r"key 'optimizer': choices list 'adam' more than once"),
    # an int beyond a float's range: a bare OverflowError traceback
    ("epochs: {low: 1, high: " + "1" * 400 + ", int: true}\n", "key 'epochs': expected numbers low <= high"),
])
def test_space_values_that_would_mislead_the_search_are_refused(tmp_path, text, message):
    space = tmp_path / "space.yaml"
    space.write_text(text)
    with pytest.raises(WarmstartError, match=message):
        read_space_file(space)
    space.write_text("lr: {choices: [1, 1.0, true]}\n")  # three ways of writing, three choices
    assert read_space_file(space)["lr"].choices == (1, 1.0, True)
