"""Checkpoints: one safetensors file holding the weights and, in its header, warmstart's JSON metadata.

One file means one atomic rename: a checkpoint is never half-written. ``metadata.json`` beside it is a readable
copy for people and tools; loading trusts only the header. Nothing is unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .._version import __version__
from ..errors import WarmstartError
from ..io import atomic_write, write_json
from .base import TransferModel, create_model

FORMAT = "warmstart.checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
METADATA_KEY = "warmstart"


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself, besides its weights."""

    arch: str
    arch_args: dict[str, Any]
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    preprocessing: dict[str, Any]
    kind: str
    extra: dict[str, Any] = field(default_factory=dict)  # data, training config, metrics, lineage

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "warmstart_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "arch": self.arch, "arch_args": self.arch_args, "input_shape": list(self.input_shape),
                "class_names": list(self.class_names), "kind": self.kind, "preprocessing": self.preprocessing,
                **self.extra}


def check_source_type(source: object, parameter: str) -> None:
    """A checkpoint or model source must be a non-empty path or name: ``finetune(123, ...)`` failed with an
    AttributeError deep inside, a list with "unhashable", and ``""`` meant the current folder."""
    if isinstance(source, bool) or not isinstance(source, (str, os.PathLike)):
        raise WarmstartError(f"{parameter} {source!r}: expected a path or a name (a str or a Path), got a "
                             f"value of type {type(source).__name__}",
                             hint="pass a run folder, a checkpoint file, or a pretrained model's name such as "
                                  "'minilm' or 'timm:resnet18'")
    if not str(source).strip():
        raise WarmstartError(f"{parameter} {str(source)!r}: empty", hint="pass a run folder, a checkpoint file, or a "
                                                                       "pretrained model's name")


def resolve_path(path: str | Path) -> Path:
    """Accept the weights file, the ``model/`` folder, or the run folder that holds ``model/``."""
    check_source_type(path, "checkpoint")
    p = Path(path).expanduser()
    for candidate in (p, p / WEIGHTS, p / "model" / WEIGHTS):
        if candidate.is_file():
            return candidate
    if (p / "best" / "model" / WEIGHTS).is_file():  # a search's folder: its model is the winner's, in best/
        raise WarmstartError(f"checkpoint {str(path)!r}: a `warmstart tune` folder, whose model is in its best/ "
                             "folder", hint=f"pass {p / 'best'}")
    raise WarmstartError(f"checkpoint {str(path)!r}: "
                         + (f"a folder with no {WEIGHTS} in it or in its model/ folder" if p.is_dir() else
                            f"no such file, and no {WEIGHTS} in it or in its model/ folder"),
                         hint="pass the run folder written by `warmstart pretrain` or `finetune`, or its model/")


def recorded_checkpoint(path: str | Path) -> str:
    """How a run records the checkpoint it started from (its lineage, config.json): the path as named (a run
    folder, its ``model/`` or the weights file), made absolute. A relative one would be looked for in the working
    directory of whoever replays or resumes the run. Symbolic links are kept, as for a local ``hf:`` folder
    (:func:`warmstart.models.hf.recorded_source`): the folder the user named."""
    return os.path.abspath(Path(path).expanduser())


def save_checkpoint(model: TransferModel, folder: str | Path, info: CheckpointInfo) -> Path:
    """Write ``model`` and ``info`` atomically; ``info`` must describe the model, or it could never be loaded."""
    declared = (info.arch, json.dumps(info.arch_args, sort_keys=True), tuple(info.input_shape), len(info.class_names))
    actual = (model.arch, json.dumps(model.arch_args, sort_keys=True), model.input_shape, model.num_classes)
    if declared != actual:
        raise ValueError(f"checkpoint info (arch, arch_args, input_shape, number of class names) {declared} does "
                         f"not describe the model {actual}")
    folder = Path(folder)
    meta = info.to_dict()
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    target = atomic_write(folder / WEIGHTS,
                          lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(meta)}))
    write_json(folder / "metadata.json", meta)
    return target


def save_weights(model: torch.nn.Module, path: str | Path) -> Path:
    """Only ``model``'s state dict, as safetensors, written atomically: weights to load into a model built the same
    way (a search's trials, tune's ``--adapt-on`` stage), not a checkpoint that rebuilds its model."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, tmp))


def read_info(path: str | Path) -> tuple[Path, CheckpointInfo]:
    file = resolve_path(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        foreign = FOREIGN_HINTS.get(file.suffix.lower())
        if foreign is not None:  # a Keras or PyTorch file given as a checkpoint: say how to load it
            raise WarmstartError(f"checkpoint {file}: a {foreign[0]} file, not a warmstart checkpoint",
                                 hint=foreign[1].format(file=file)) from None
        raise WarmstartError(f"checkpoint {file}: cannot be read as safetensors ({exc}); it may be truncated",
                             hint="re-create it with `warmstart pretrain`, or point at an intact copy") from None
    if METADATA_KEY not in header:
        raise WarmstartError(f"checkpoint {file}: a safetensors file, but not a warmstart checkpoint (no "
                             f"{METADATA_KEY!r} metadata in its header)",
                             hint="pass a checkpoint written by warmstart; for a plain state dict, name its "
                                  f"architecture: --from torch:{file} --model ARCH")
    try:
        meta = json.loads(header[METADATA_KEY])
    except ValueError as exc:
        raise WarmstartError(f"checkpoint {file}: damaged metadata: not valid JSON ({exc})",
                             hint=DAMAGED_HINT) from None
    return file, info_from_metadata(meta, f"checkpoint {file}")


# what a file that is not a warmstart checkpoint is, by its suffix, and how to start from it instead
_KERAS = ("Keras", "load it with --from keras:{file} (a weights-only file also needs --model, e.g. --model mlp)")
_TORCH = ("PyTorch", "load the state dict into an architecture: --from torch:{file} --model ARCH (e.g. mlp, cnn)")
FOREIGN_HINTS = {".h5": _KERAS, ".hdf5": _KERAS, ".keras": _KERAS, ".pt": _TORCH, ".pth": _TORCH, ".bin": _TORCH,
                 ".ckpt": _TORCH}

KINDS = ("image", "vector", "text")
DAMAGED_HINT = "re-create it with `warmstart pretrain` or `finetune`, or point at an intact copy"
# written by warmstart itself, not part of what the checkpoint describes
_BOOKKEEPING = ("format", "format_version", "warmstart_version", "created")


def info_from_metadata(meta: Any, where: str) -> CheckpointInfo:
    """The :class:`CheckpointInfo` a checkpoint header's metadata describes, every field checked for its type and
    value first: a header is user input (it can be edited or crafted), and a wrong type found later would surface
    as a traceback deep in model building, prediction or the zoo listing. One precise error per field."""

    def bad(field: str, expected: str, found: Any) -> WarmstartError:
        shown = repr(found) if len(repr(found)) <= 80 else repr(found)[:77] + "..."
        return WarmstartError(f"{where}: damaged metadata: the field {field!r} should be {expected}, found {shown}",
                              hint=DAMAGED_HINT)

    if not isinstance(meta, dict):
        raise bad("(the metadata)", "a JSON object", type(meta).__name__)
    if meta.get("format") != FORMAT:
        raise bad("format", repr(FORMAT), meta.get("format"))
    version = meta.get("format_version", 0)
    if not _is_int(version) or version < 0:
        raise bad("format_version", "a non-negative integer", version)
    if version > FORMAT_VERSION:
        raise WarmstartError(f"{where}: format version {version} is newer than this warmstart understands "
                             f"({FORMAT_VERSION})", hint="upgrade warmstart")
    missing = [k for k in ("arch", "arch_args", "input_shape", "class_names", "preprocessing", "kind")
               if k not in meta]
    if missing:
        raise WarmstartError(f"{where}: damaged metadata: it lacks the field(s) {', '.join(missing)}", hint=DAMAGED_HINT)
    arch, arch_args, shape = meta["arch"], meta["arch_args"], meta["input_shape"]
    names, preprocessing, kind = meta["class_names"], meta["preprocessing"], meta["kind"]
    if not isinstance(arch, str) or not arch:
        raise bad("arch", "an architecture name (a non-empty string)", arch)
    if not isinstance(arch_args, dict):
        raise bad("arch_args", "a JSON object of model options", arch_args)
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(_is_int(n) and n >= 1 for n in shape):
        raise bad("input_shape", "a list of 1 to 3 positive integers", shape)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise bad("class_names", "a non-empty list of strings", names)
    if len(set(names)) != len(names):
        raise bad("class_names", "a list of distinct names", names)
    if kind not in KINDS:
        raise bad("kind", f"one of {', '.join(KINDS)}", kind)
    _check_preprocessing(preprocessing, kind, bad)
    return CheckpointInfo(arch=arch, arch_args=arch_args, input_shape=tuple(shape), class_names=tuple(names),
                          preprocessing=preprocessing, kind=kind,
                          extra={k: v for k, v in meta.items() if k not in _KNOWN and k not in _BOOKKEEPING})


_KNOWN = {"arch", "arch_args", "input_shape", "class_names", "preprocessing", "kind"}


MIN_STD = 1e-6  # data.preprocess.Normalization.fit's floor: below it an input is taken as constant


def _check_preprocessing(preprocessing: Any, kind: str, bad) -> None:
    if not isinstance(preprocessing, dict):
        raise bad("preprocessing", "a JSON object", preprocessing)
    if preprocessing.get("kind") != kind:
        raise bad("preprocessing.kind", f"{kind!r} (the checkpoint's kind)", preprocessing.get("kind"))
    if kind == "text":
        if not isinstance(preprocessing.get("source"), str) or not preprocessing["source"]:
            raise bad("preprocessing.source", "the tokenizer's source (a non-empty string)", preprocessing.get("source"))
        if not _is_int(preprocessing.get("max_length")) or preprocessing["max_length"] < 1:
            raise bad("preprocessing.max_length", "a positive integer", preprocessing.get("max_length"))
        return
    mean, std = preprocessing.get("mean"), preprocessing.get("std")
    for key, values in (("mean", mean), ("std", std)):
        if not isinstance(values, list) or not values or not all(_is_finite_number(v) for v in values):
            raise bad(f"preprocessing.{key}", "a non-empty list of finite numbers", values)
    if len(mean) != len(std):
        raise bad("preprocessing.std", f"{len(mean)} numbers, one per mean", std)
    if not all(v >= MIN_STD for v in std):  # fitting records 1 for a constant input: never less than MIN_STD
        raise bad("preprocessing.std", f"numbers >= {MIN_STD:g} (inputs are divided by them)", std)
    size = preprocessing.get("input_size")
    if size is not None and (not isinstance(size, list) or not all(_is_int(n) and n >= 1 for n in size)):
        raise bad("preprocessing.input_size", "a list of positive integers", size)
    for key in ("interpolation", "source"):
        if preprocessing.get(key) is not None and not isinstance(preprocessing[key], str):
            raise bad(f"preprocessing.{key}", "a string", preprocessing[key])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[TransferModel, CheckpointInfo]:
    """Rebuild the model from its metadata and load its weights, checking every key and shape; the model is
    returned in eval mode, ready to predict."""
    file, info = read_info(path)
    try:
        model = create_model(info.arch, info.input_shape, len(info.class_names), **info.arch_args)
    except (ValueError, KeyError, RuntimeError) as exc:  # create_model itself reports unknown options (TypeError)
        raise WarmstartError(f"checkpoint {file}: its metadata's arch_args do not build a {info.arch} for input "
                             f"shape {info.input_shape} ({type(exc).__name__}: {exc})", hint=DAMAGED_HINT) from None
    expected = model.state_dict()
    try:
        with safe_open(str(file), framework="pt") as f:
            stored = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise WarmstartError(f"checkpoint {file}: weights cannot be read ({exc}); it may be truncated",
                             hint=DAMAGED_HINT) from None
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong = [f"{k}: {tuple(stored[k].shape)} stored, {tuple(v.shape)} expected" for k, v in expected.items()
             if k in stored and stored[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = ([f"missing keys {missing[:5]}"] if missing else []) + \
                ([f"unexpected keys {unexpected[:5]}"] if unexpected else []) + wrong[:5]
        raise WarmstartError(f"checkpoint {file}: weights do not fit the {info.arch} architecture it describes: "
                             + "; ".join(parts), hint=DAMAGED_HINT)
    check_weight_values(stored, expected, f"checkpoint {file}", hint=DAMAGED_HINT)
    model.load_state_dict(stored, strict=True)
    return model.to(device).eval(), info


def check_weight_values(stored: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], where: str, *,
                        hint: str) -> None:
    """Weights that would load but compute nothing sensible: a float parameter stored as integers or booleans
    (load_state_dict casts them without a word), or holding NaN or infinite values (every prediction is then
    class 0, or training 'diverges' at its first step)."""
    for key, target in expected.items():
        value = stored.get(key)
        if value is None or not target.is_floating_point():
            continue  # integer buffers (BatchNorm's num_batches_tracked) are integers
        if not value.is_floating_point():
            raise WarmstartError(f"{where}: {key} holds {str(value.dtype).removeprefix('torch.')} values where "
                                 f"float weights are expected", hint=hint)
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise WarmstartError(f"{where}: {key} holds {bad} NaN or infinite value(s) of {value.numel()}", hint=hint)
