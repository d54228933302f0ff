"""From the options a command was given to the config objects the API takes: one function per option group.

Each reads the options by name from :class:`~warmstart.cli.command.Given`, so a command that takes a group (or part
of one) builds its config the same way as every other command that takes it.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from ..config import DataConfig, ModelConfig, TrainConfig
from ..errors import WarmstartError
from .command import Given


def key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, each value read as YAML (numbers, lists and strings as a user would write them)."""
    from .. import yaml_values

    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise WarmstartError(f"{flag} {pair!r}: expected KEY=VALUE", hint=f"e.g. {flag} name=0.5")
        try:
            options[key.strip().replace("-", "_")] = yaml_values.load(value)
        except yaml_values.YAMLError as exc:
            raise WarmstartError(f"{flag} {pair!r}: the value cannot be read ({exc})",
                                 hint="quote the value, or write it as YAML") from None
    return options


def listed(values: list[str] | None) -> list[str]:
    """Values given as ``a b c``, ``a,b,c`` or repeated options, in order."""
    return [v.strip() for value in values or [] for v in str(value).split(",") if v.strip()]


def whole_numbers(flag: str, values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise WarmstartError(f"{flag}: expected whole numbers, got {' '.join(values)}",
                             hint=f"e.g. {flag} 5 10 50") from None


def image_size(values: list[int] | None) -> tuple[int, int] | None:
    if not values:
        return None
    if len(values) in (1, 2):
        return (values[0], values[-1])
    raise WarmstartError(f"--image-size: expected H W or one size, got {values}",
                         hint="give the height then the width, e.g. --image-size 64 64 (or one size for square "
                              "images: --image-size 64)")


def data_config(given: Given, **changes: Any) -> DataConfig:
    """The DataConfig of the data options the command takes (``--data``, ``--classes``, ...)."""
    fields = {f.name for f in dataclasses.fields(DataConfig)} - {"source", "image_size"}
    values = {name: getattr(given, name) for name in fields if hasattr(given, name)}
    if hasattr(given, "image_size"):
        values["image_size"] = image_size(given.image_size)
    return DataConfig(given.data, **{**values, **changes})


def train_config(given: Given, **changes: Any) -> TrainConfig:
    """The command's training preset with the training, scaling, strategy and tracking options it takes."""
    from ..tracking import parse_trackers

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"progress", "trackers"}
    values = {name: getattr(given, name) for name in fields if hasattr(given, name)}
    if hasattr(given, "tracker"):
        values["trackers"] = parse_trackers(given.tracker)
    # progress bars only where a command has --quiet, and never under --json (stdout is the JSON)
    values["progress"] = hasattr(given, "quiet") and not (given.quiet or getattr(given, "as_json", False))
    return TrainConfig.for_command(given.command, **{**values, **changes})


def scratch(given: Given) -> bool:
    return given.checkpoint.lower() == "none"


def starting_checkpoint(given: Given) -> str | None:
    """``--from``: None for ``none`` (training from scratch)."""
    return None if scratch(given) else given.checkpoint


def starting_model(given: Given) -> ModelConfig | None:
    """The ``model`` argument of finetune/lr-find: ``--model`` and its options, or, for a pretrained source given
    options alone (``--from timm:NAME --model-option weights=PATH``), that source's architecture with them. Whether
    it fits ``--from`` is decided once, by the API (:func:`warmstart.run.starting_point.check_model_flags`)."""
    from ..models.sources import source_architecture

    options = key_values(given.model_option, "--model-option")
    if given.model is None and options and not scratch(given):
        source = source_architecture(given.checkpoint)
        if source is None:
            raise WarmstartError(f"--model-option: the checkpoint {given.checkpoint} fixes its architecture and its "
                                 "options", hint="drop --model-option (it applies with --from none and --model, or "
                                                 "with a pretrained --from timm:NAME, torchvision:NAME or hf:SOURCE)")
        return ModelConfig(source, options)
    return model_config(given)


def model_config(given: Given) -> ModelConfig | None:
    """``--model`` and its ``--model-option``s; None without ``--model``."""
    options = key_values(given.model_option, "--model-option")
    if options and given.model is None:
        raise WarmstartError("--model-option needs --model to say which architecture it configures",
                             hint="add --model cnn (or mlp, hf)")
    return None if given.model is None else ModelConfig(given.model, options)


def strategy(given: Given):
    from ..strategies import create_strategy

    return create_strategy(given.strategy, **key_values(given.strategy_option, "--strategy-option"))


def adaptation(given: Given):
    if given.adaptation is None:
        if given.adaptation_option:
            raise WarmstartError("--adaptation-option needs --adaptation", hint="add --adaptation dann, coral or adabn")
        return None
    from ..adaptation import create_adaptation

    return create_adaptation(given.adaptation, **key_values(given.adaptation_option, "--adaptation-option"))


def target_data(given: Given) -> DataConfig | None:
    """``--target-unlabeled`` (with its ``--target-corruption``), resized as ``--resize`` says."""
    if given.target_unlabeled is None:
        if given.target_corruption is not None:
            raise WarmstartError("--target-corruption needs --target-unlabeled", hint="add --target-unlabeled DATA")
        return None
    return DataConfig(given.target_unlabeled, corruption=given.target_corruption, resize=given.resize)


def checkpoint(given: Given) -> str:
    """``--checkpoint``, or the deprecated ``--model`` that meant it on evaluate, predict, export and shift."""
    if given.model_alias is not None:
        print(f"note: `warmstart {given.command} --model` is deprecated: it names a checkpoint; use --checkpoint "
              "(-c)", file=sys.stderr)
        if given.checkpoint is not None and given.checkpoint != given.model_alias:
            raise WarmstartError(f"--checkpoint {given.checkpoint} and --model {given.model_alias} name two "
                                 "checkpoints", hint="pass --checkpoint alone")
        return given.model_alias
    if given.checkpoint is None:
        raise WarmstartError(f"`warmstart {given.command}` needs the checkpoint to read: missing --checkpoint",
                             hint="add --checkpoint RUN_FOLDER (or -c)")
    return given.checkpoint


ARGV: list[str] = []  # the command line as given, for relaunching it under torchrun (main() fills it)


def launched(given: Given) -> bool:
    """Start this command in several processes when asked (and not already in one of them); True if it ran."""
    from ..engine.distributed import launched_by_torchrun
    from ..launch import LaunchSettings, launch

    settings = LaunchSettings(given.nproc, given.launcher, given.nnodes, given.node_rank, given.rdzv_endpoint,
                              given.rdzv_id, given.rdzv_backend)
    if not settings.distributed or launched_by_torchrun():
        return False
    launch(ARGV or sys.argv[1:], settings, use_gpu=given.device.startswith("cuda"))
    return True
