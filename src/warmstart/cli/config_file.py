"""``--config FILE``: option values from a YAML or JSON file, under the flags given on the command line.

A file holds either the options by name (``epochs: 5``, ``strategy_option: {head_lr_scale: 100}``; a flag's
spelling, ``batch-size``, works too), or is a run folder's ``config.json``, whose sections (``data``, ``train``,
``strategy``, ``model``, ``parent``, ``head``, ``adaptation``; a ``distill`` run's ``teacher``, ``student`` and
``unlabeled``) are read back into the options that made the run: that replays it. A key that is no option of the
command is an error naming the key and the file.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Mapping, Optional

import typer

from ..errors import WarmstartError
from .command import COMMAND_OPTIONS
from .options import Opt

# what a run's config.json records about the run but is no setting of it (``selection``: why --from auto chose the
# parent, which the replay starts from directly; ``averaging``: what --average chose, which the replay chooses again)
RECORDED_ONLY = ("resolved", "warmstart_version", "notes", "data_fingerprint", "selection", "averaging",
                 "working_directory")
RUN_SECTIONS = ("command", "data", "train", "strategy", "model", "parent", "head", "adaptation")
# what a distill run records of its teacher, student and unlabelled data (its ``model`` and ``parent``: the student)
DISTILLATION_SECTIONS = ("teacher", "student", "unlabeled")
# what a self-supervised run records: ``pretrain --objective``'s objective, and its stage (or ``--adapt-on``'s)
SELF_SUPERVISED_SECTIONS = ("objective", "self_supervised")


def load_into_context(ctx: typer.Context, value: Optional[str]) -> Optional[str]:
    """The eager ``--config`` callback: the file's values become the defaults of the other options, so that click
    still checks and converts them, and flags on the command line still win."""
    if value is None or ctx.resilient_parsing:
        return value
    document = read_document(Path(value))
    values = option_values(Path(value), ctx.info_name, COMMAND_OPTIONS[ctx.info_name], document)
    ctx.default_map = {**(ctx.default_map or {}), **values}
    fingerprint = document.get("data_fingerprint")
    if isinstance(fingerprint, str):  # a run's config.json: what its data was (see replayed_data)
        ctx.meta[REPLAYED] = (value, fingerprint)
    return value


REPLAYED = "warmstart.replayed"  # ctx.meta: (the --config file, its run's data fingerprint)
# the options that choose the rows a run trains and is scored on (the seed draws the shots and the validation split)
DATA_SHAPING = ("data", "classes", "shots", "val_fraction", "test_fraction", "label_column", "text_column",
                "max_length", "image_size", "resize", "corruption", "class_name_examples", "class_name_template",
                "seed")


def replayed_data(ctx: typer.Context) -> AbstractContextManager:
    """Around a command: when it replays a run's config.json with none of the data options given beside it, the
    data should be the run's; the training checks it (:func:`warmstart.run.fingerprint.replaying`)."""
    replayed = ctx.meta.get(REPLAYED)
    given = [name for name in DATA_SHAPING  # by the source's name: typer bundles its own click
             if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")]
    if replayed is None or given:
        return nullcontext()
    from ..run.fingerprint import replaying

    return replaying(*replayed)


def option_values(path: Path, command: str, options: tuple[Opt, ...],
                  document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The options ``path`` (its ``document``, when read already) sets for ``command``."""
    document = read_document(path) if document is None else document
    if isinstance(document.get("data"), Mapping) or "command" in document:
        document = run_options(document, command, path)
        taken = {o.name for o in options}
        # a recorded setting at its default needs no option: evaluate records every DataConfig field, say
        document = {k: v for k, v in document.items() if k in taken or not _at_default(k, v, command)}
    by_spelling = {o.name: o for o in options}
    by_spelling.update({flag.lstrip("-").replace("-", "_"): o for o in options for flag in o.flags if
                        flag.startswith("--")})
    values = {}
    for key, value in document.items():
        option = by_spelling.get(str(key).replace("-", "_"))
        if option is None or option.name == "config":
            raise WarmstartError(f"{path}: unknown key {key!r} for `warmstart {command}`",
                                 hint=f"the keys are {command}'s options, spelled as flags or with underscores: "
                                      f"{', '.join(_spellings(options))}")
        if isinstance(value, bool) and option.type in NUMBERS:  # click reads True as 1
            raise WarmstartError(f"{path}: {key!r} is {str(value).lower()}, and the option takes a number",
                                 hint=f"write a number: {key}: 1")
        if value is not None:  # null means the option's own default, as click reads a default_map
            values[option.name] = _as_option_value(option, value)
    return values


NUMBERS = (int, float, Optional[int], Optional[float])


def _spellings(options: tuple[Opt, ...]) -> list[str]:
    return [o.flags[0].lstrip("-") if o.flags else o.name for o in options if not o.hidden and o.name != "config"]


def read_document(path: Path) -> dict[str, Any]:
    from .. import yaml_values

    if not path.is_file():
        raise WarmstartError(f"--config {path}: no such file", hint="pass a .yaml, .yml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml_values.load(text)
    except (ValueError, yaml_values.YAMLError, UnicodeDecodeError) as exc:
        raise WarmstartError(f"--config {path}: cannot be read as {path.suffix.lstrip('.') or 'YAML'} ({exc})",
                             hint="check the file's syntax") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise WarmstartError(f"--config {path}: expected a mapping of option names to values, found a "
                             f"{type(document).__name__}", hint="write one `name: value` per line")
    return document


def _as_option_value(option: Opt, value: Any) -> Any:
    if option.key_values and isinstance(value, Mapping):
        return key_value_pairs(value)
    if option.takes_list:
        return list(value) if isinstance(value, (list, tuple)) else [value]
    return value


def key_value_pairs(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``{"a": 1}`` as ``["a=1"]``; ``{"full": {"a": 1}}`` as ``["full:a=1"]`` (per-strategy options of compare)."""
    pairs = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            pairs.extend(key_value_pairs(value, f"{prefix}{key}:"))
        else:
            pairs.append(f"{prefix}{key}={yaml_text(value)}")
    return pairs


def yaml_text(value: Any) -> str:
    """A value written so that ``yaml.safe_load`` reads it back exactly (``1e-05`` would come back a string)."""
    import yaml

    from ..config import json_ready

    return yaml.safe_dump(json_ready(value), default_flow_style=True, width=2**20).removesuffix("\n...\n").strip()


def run_options(run: Mapping[str, Any], command: str, path: Path) -> dict[str, Any]:
    """The options that made a run, from its folder's ``config.json``."""
    recorded = run.get("command", command)
    if recorded != command and (recorded, command) != ("pretrain", "finetune"):
        raise WarmstartError(f"--config {path}: the file records a `{recorded}` run, which `warmstart {command}` "
                             "cannot replay", hint=f"run `warmstart {recorded} --config {path}`")
    values: dict[str, Any] = {}
    data = dict(run.get("data") or {})
    if data:
        values["data"] = data.pop("source")
        values.update(data)
    train = dict(run.get("train") or {})
    train.pop("progress", None)  # progress bars are the terminal's business, not the run's
    if "trackers" in train:
        values["tracker"] = list(train.pop("trackers")) or ["none"]
    values.update(train)
    strategy = dict(run.get("strategy") or {})
    sections = (*RUN_SECTIONS, *RECORDED_ONLY)
    if command == "distill":  # the strategy section is the distillation objective; the student is its SPEC
        values.update(_distillation(run, strategy))
        sections += DISTILLATION_SECTIONS
    else:
        if strategy and command != "pretrain":  # pretrain always trains all layers (full, with its defaults)
            values["strategy"] = strategy.pop("name")
            values["strategy_option"] = strategy
        values.update(_starting_point(run, command))
    values.update(_adaptation(run.get("adaptation")))
    values.update(_self_supervised(run, command, path))
    sections += SELF_SUPERVISED_SECTIONS
    extra = {k: v for k, v in run.items() if k not in sections}
    # evaluate's checkpoint and split, or a key no command takes (an error later)
    return _where_it_was_typed({**values, **extra}, run.get("working_directory"))


# the options a run reads files from, recorded as typed (a relative path is relative to where the run started)
PATH_OPTIONS = ("data", "unlabeled", "adapt_on", "target_unlabeled", "checkpoint")


def _where_it_was_typed(values: dict[str, Any], directory: Any) -> dict[str, Any]:
    """A replay from another directory reads the files the run read: a relative path that names a file or
    folder in the directory the run started in (``working_directory``, recorded since it was) is taken from there.
    A built-in dataset's name, ``--adapt-on self`` and anything not found there stay as they were."""
    from ..data.sources import DATASETS
    from ..run.folder import named_file
    from ..run.self_supervised import SELF

    if not isinstance(directory, str) or not directory:
        return values
    resolved = dict(values)
    for key in PATH_OPTIONS:
        value = values.get(key)
        if not isinstance(value, str) or value in DATASETS or value == SELF or Path(value).is_absolute():
            continue
        typed = named_file(value, directory)
        if typed is not None:
            resolved[key] = str(typed)
    return resolved


def _at_default(name: str, value: Any, command: str) -> bool:
    from ..config import DataConfig, TRAIN_PRESETS, field_defaults, train_defaults

    defaults = {**field_defaults(DataConfig),
                **(train_defaults(command) if command in TRAIN_PRESETS else train_defaults("rank"))}
    return name in defaults and json_equal(defaults[name], value)


def json_equal(a: Any, b: Any) -> bool:
    from ..config import json_ready

    return json_ready(a) == json_ready(b)


def _starting_point(run: Mapping[str, Any], command: str) -> dict[str, Any]:
    if "parent" not in run:
        return {}
    parent, model = run["parent"], run.get("model") or {}
    scratch = {"model": model.get("arch"), "model_option": dict(model.get("arch_args") or {})}
    if command == "pretrain":
        return scratch
    if parent is None:
        return {"from": "none", **scratch}
    if "checkpoint" in parent:  # "head": "kept" records --keep-head
        return {"from": parent["checkpoint"], **({"keep_head": True} if run.get("head") == "kept" else {})}
    source = str(parent["pretrained"])  # a text encoder is recorded by its folder or hub name
    source = source if ":" in source or source == "minilm" else f"hf:{source}"
    return {"from": source, **_pretrained_model(source, parent, model)}


def _pretrained_model(source: str, parent: Mapping[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    """``--model`` and ``--model-option`` of a run from a pretrained source. A named model (``timm:NAME``,
    ``hf:SOURCE``): the architecture's recorded arguments but those ``--from`` itself sets (they restate the defaults
    where none was given: the replay builds the same model), and a weights file it loaded from disk. Imported weights
    (``keras:FILE``, ``torch:FILE``): the architecture they were loaded into, with its arguments."""
    from ..models.sources import pretrained_spec

    arch_args = dict(model.get("arch_args") or {})
    spec = pretrained_spec(source)
    if spec is None:
        return {"model": model.get("arch"), "model_option": arch_args}
    options = {k: v for k, v in arch_args.items() if k not in spec.options and k != "pretrained"}
    weights = parent.get("weights")  # a file, or where the library found them ("timm hub (...)")
    if isinstance(weights, str) and Path(weights).is_file():
        options["weights"] = weights
    return {"model_option": options}


def _distillation(run: Mapping[str, Any], objective: Mapping[str, Any]) -> dict[str, Any]:
    """A distill run's own options: its teacher, the student SPEC and its options, the unlabelled data, and the
    objective's temperature, alpha, feature weight and token masking (what else its strategy section holds was
    measured, not set), and the rounds of its speed comparison."""
    teacher, student = run.get("teacher") or {}, run.get("student") or {}
    values = {"teacher": teacher.get("checkpoint"), "student": student.get("spec"),
              "model_option": student.get("model_options") or None,
              "unlabeled": (run.get("unlabeled") or {}).get("source"), "speed_rounds": run.get("speed_rounds")}
    values.update({k: objective[k] for k in ("temperature", "alpha", "feature_weight", "mask_tokens")
                   if k in objective})
    return {k: v for k, v in values.items() if v is not None}


def _self_supervised(run: Mapping[str, Any], command: str, path: Path) -> dict[str, Any]:
    """``pretrain --objective``'s options, or ``finetune --adapt-on``'s, from the stage the run records. A
    self-supervised pretrain made no classifier, so it replays as a pretrain only."""
    stage = run.get("self_supervised")
    if not stage:
        return {}
    objective = dict(stage.get("objective") or {})
    name = objective.pop("name")
    objective.pop("kind", None)  # what the objective is, not a setting of it
    temperature = objective.pop("temperature", None)
    if run.get("command") == "pretrain":
        if command != "pretrain":
            raise WarmstartError(f"--config {path}: the file records a self-supervised `pretrain` ({name}), which "
                                 f"`warmstart {command}` cannot replay",
                                 hint=f"run `warmstart pretrain --config {path}`, or `warmstart {command} --from "
                                      "RUN` to fine-tune from what it made")
        # labels were never read: --ignore-labels says so for a labelled source and changes nothing for another
        return {"objective": name, "objective_option": objective or None, "temperature": temperature,
                "ignore_labels": True}
    data = stage.get("data")
    return {"adapt_on": data.get("source") if isinstance(data, Mapping) else data, "adapt_objective": name,
            "adapt_epochs": stage.get("epochs"), "adapt_batch_size": stage.get("batch_size"),
            "adapt_lr": stage.get("lr"), "adapt_temperature": temperature}


def _adaptation(adaptation: Mapping[str, Any] | None) -> dict[str, Any]:
    if not adaptation:
        return {}
    if "method" not in adaptation:  # evaluate's AdaBN: the method is implied by --target-unlabeled
        target = adaptation.get("target_unlabeled") or {}
        return {"target_unlabeled": target.get("source"), "target_corruption": target.get("corruption")}
    method = dict(adaptation.get("method") or {"name": adaptation["name"]})
    target = adaptation.get("target_unlabeled") or {}
    return {"adaptation": method.pop("name"), "adaptation_option": method,
            "target_unlabeled": target.get("source"), "target_corruption": target.get("corruption")}
