"""The command line's defaults are the API's: for every option of every command, the default --help shows is the
one the API would use when the option is not given."""

from __future__ import annotations

import importlib
import inspect

import pytest
import typer

from warmstart.cli import app
from warmstart.cli.command import COMMAND_OPTIONS
from warmstart.cli.defaults import API_FUNCTIONS, Default, signature_defaults
from warmstart.config import AdaptConfig, DataConfig, TrainConfig
from warmstart.launch import LaunchSettings

# options that exist on the command line alone: how it prints, where a file comes from, positional arguments
CLI_ONLY = {"as_json", "quiet", "config", "model_alias", "checkpoint", "data", "out", "input", "format", "source",
            "target", "source_corruption", "target_corruption", "target_unlabeled", "model_option",
            "strategy_option", "adaptation_option", "objective_option", "temperature", "candidates", "scores",
            "image_size", "run_dir", "folders", "family"}
CLI_ONLY |= {"teacher", "student"}  # distill's required options


def api_function(command: str):
    module, name = API_FUNCTIONS[command]
    return getattr(importlib.import_module(module), name)


def expected_default(command: str, source: Default):
    if source.kind == "train":
        return getattr(TrainConfig.for_command(command), source.name)
    if source.kind == "data":
        return getattr(DataConfig("digits"), source.name)
    if source.kind == "launch":
        return getattr(LaunchSettings(), source.name)
    if source.kind == "adapt":
        return getattr(AdaptConfig("self"), source.name)
    return inspect.signature(api_function(command)).parameters[source.name].default


def normalised(value):
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_every_default_of_the_command_line_is_the_apis(command):
    click_command = typer.main.get_command(app).commands[command]
    options = {o.name: o for o in COMMAND_OPTIONS[command]}
    for param in click_command.params:
        if param.name == "help":
            continue
        option = options[param.name]
        if isinstance(option.default, Default):
            assert normalised(param.default) == normalised(expected_default(command, option.default)), param.name
        elif option.when_set:  # passed only when given; where the API takes it, its default must agree
            parameters = inspect.signature(api_function(command)).parameters
            if param.name in parameters:
                assert parameters[param.name].default == param.default, param.name
        else:
            assert param.name in CLI_ONLY, f"{command} --{param.name}: a default of the command line's own"


def test_the_training_presets_are_the_ones_the_readme_was_measured_with():
    assert (TrainConfig.for_command("finetune").batch_size, TrainConfig.for_command("finetune").lr) == (16, None)
    assert (TrainConfig.for_command("pretrain").batch_size, TrainConfig.for_command("pretrain").lr) == (128, 2e-3)
    assert TrainConfig.for_command("compare").batch_size == TrainConfig.for_command("lr-find").batch_size == 16


def test_the_api_trains_with_the_preset_when_given_no_config():
    """warmstart.finetune(train=None) trains with the finetune preset, warmstart.pretrain with its own."""
    import warmstart

    data, model = DataConfig("digits", classes="0-1"), warmstart.ModelConfig("mlp", {"hidden": [4]})
    tuned = warmstart.finetune(None, data, model=model).info.extra["training"]
    source = warmstart.pretrain(data, model=model).info.extra["training"]
    assert (tuned["batch_size"], source["batch_size"], source["lr"]) == (16, 128, 2e-3)


@pytest.mark.parametrize("command", sorted(API_FUNCTIONS))
def test_signature_defaults_read_from_source_match_inspect(command):
    read = signature_defaults(*API_FUNCTIONS[command])
    parameters = inspect.signature(api_function(command)).parameters
    for name, value in read.items():
        assert parameters[name].default == value, name
