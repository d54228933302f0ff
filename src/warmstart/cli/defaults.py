"""Where the command line's defaults come from: the config dataclasses, the commands' training presets
(:data:`warmstart.config.TRAIN_PRESETS`), and the API functions' own signatures. The command line keeps no default of
its own for anything the API also takes, so ``warmstart COMMAND`` and ``warmstart.COMMAND(...)`` cannot differ.

The API's signatures are read from the source with :mod:`ast`, not by importing the API: importing it imports torch,
and ``warmstart --help`` must answer without it. ``tests/cli/test_defaults.py`` checks the reading against
:func:`inspect.signature` of the imported functions.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import DataConfig, field_defaults, train_defaults

# command -> (module, function) of the API call it makes
API_FUNCTIONS = {
    "pretrain": ("warmstart.api", "pretrain"), "finetune": ("warmstart.api", "finetune"),
    "lr-find": ("warmstart.api", "lr_find"), "compare": ("warmstart.compare", "compare"),
    "evaluate": ("warmstart.api", "evaluate"), "predict": ("warmstart.api", "predict"),
    "export": ("warmstart.api", "export_model"), "shift": ("warmstart.api", "shift"),
    "rank": ("warmstart.api", "rank"), "demo": ("warmstart.demo", "demo"), "zoo": ("warmstart.api", "zoo"),
    "report": ("warmstart.api", "report"), "list": ("warmstart.api", "list_registered"),
    "tune": ("warmstart.api", "tune"),
}
API_FUNCTIONS["distill"] = ("warmstart.api", "distill")


@lru_cache(maxsize=None)
def _source(module: str) -> str:
    return Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def signature_defaults(module: str, function: str) -> dict[str, Any]:
    """The literal defaults of ``module.function``'s parameters, read from its source without importing it. Only
    the ``def`` line(s) are parsed, not the whole module: this runs for every command at every start-up."""
    found = re.search(rf"^def {function}\(.*?\)(?:\s*->[^\n]*)?:[ \t]*(?:#[^\n]*)?$", _source(module), re.S | re.M)
    if found is None:
        raise LookupError(f"{module}.{function} is not defined at the top level of its module")
    node = ast.parse(found.group(0) + "\n    pass").body[0]
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    pairs = [*zip(positional[len(positional) - len(args.defaults):], args.defaults),
             *((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)]
    return {arg.arg: ast.literal_eval(default) for arg, default in pairs}


def api_default(command: str, parameter: str) -> Any:
    return signature_defaults(*API_FUNCTIONS[command])[parameter]


@dataclass(frozen=True)
class Default:
    """Where an option's default comes from; ``value(command)`` reads it for one command."""

    kind: str  # "train" (the command's preset), "data" (DataConfig), "adapt" (AdaptConfig), "launch"
    # (LaunchSettings), "api" (signature)
    name: str

    def value(self, command: str) -> Any:
        if self.kind == "train":
            return train_defaults(command)[self.name]
        if self.kind == "data":
            return field_defaults(DataConfig)[self.name]
        if self.kind == "adapt":
            from ..config import AdaptConfig

            return field_defaults(AdaptConfig)[self.name]
        if self.kind == "launch":
            from ..launch.torchrun import LaunchSettings  # no torch: the launcher only builds a command line

            return field_defaults(LaunchSettings)[self.name]
        return api_default(command, self.name)


def from_train(field: str) -> Default:
    return Default("train", field)


def from_data(field: str) -> Default:
    return Default("data", field)


def from_adapt(field: str) -> Default:
    return Default("adapt", field)


def from_launch(field: str) -> Default:
    return Default("launch", field)


def from_api(parameter: str) -> Default:
    return Default("api", parameter)
