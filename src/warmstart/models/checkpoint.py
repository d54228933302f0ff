"""Checkpoints: one safetensors file holding the weights and, in its header, warmstart's JSON metadata.

One file means one atomic rename: a checkpoint is never half-written. ``metadata.json`` beside it is a readable
copy for people and tools; loading trusts only the header. Nothing is unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
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


def resolve_path(path: str | Path) -> Path:
    """Accept the weights file, the ``model/`` folder, or the run folder that holds ``model/``."""
    p = Path(path).expanduser()
    for candidate in (p, p / WEIGHTS, p / "model" / WEIGHTS):
        if candidate.is_file():
            return candidate
    raise WarmstartError(f"checkpoint {str(path)!r}: no such file, and no {WEIGHTS} in it or in its model/ folder",
                         hint="pass the run folder written by `warmstart pretrain` or `finetune`, or its model/")


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


def read_info(path: str | Path) -> tuple[Path, CheckpointInfo]:
    file = resolve_path(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WarmstartError(f"checkpoint {file}: cannot be read as safetensors ({exc}); it may be truncated",
                             hint="re-create it with `warmstart pretrain`, or point at an intact copy") from None
    if METADATA_KEY not in header:
        raise WarmstartError(f"checkpoint {file}: a safetensors file, but not a warmstart checkpoint (no "
                             f"{METADATA_KEY!r} metadata in its header)",
                             hint="pass a checkpoint written by warmstart")
    try:
        meta = json.loads(header[METADATA_KEY])
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise WarmstartError(f"checkpoint {file}: format version {meta['format_version']} is newer than this "
                                 f"warmstart understands ({FORMAT_VERSION})", hint="upgrade warmstart")
        known = {"arch", "arch_args", "input_shape", "class_names", "preprocessing", "kind"}
        info = CheckpointInfo(arch=meta["arch"], arch_args=meta["arch_args"],
                              input_shape=tuple(meta["input_shape"]), class_names=tuple(meta["class_names"]),
                              preprocessing=meta["preprocessing"], kind=meta["kind"],
                              extra={k: v for k, v in meta.items() if k not in known and k not in
                                     ("format", "format_version", "warmstart_version", "created")})
    except (ValueError, KeyError, TypeError) as exc:
        raise WarmstartError(f"checkpoint {file}: its warmstart metadata is damaged ({exc})") from None
    return file, info


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[TransferModel, CheckpointInfo]:
    """Rebuild the model from its metadata and load its weights, checking every key and shape; the model is
    returned in eval mode, ready to predict."""
    file, info = read_info(path)
    model = create_model(info.arch, info.input_shape, len(info.class_names), **info.arch_args)
    expected = model.state_dict()
    try:
        with safe_open(str(file), framework="pt") as f:
            stored = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise WarmstartError(f"checkpoint {file}: weights cannot be read ({exc}); it may be truncated") from None
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong = [f"{k}: {tuple(stored[k].shape)} stored, {tuple(v.shape)} expected" for k, v in expected.items()
             if k in stored and stored[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = ([f"missing keys {missing[:5]}"] if missing else []) + \
                ([f"unexpected keys {unexpected[:5]}"] if unexpected else []) + wrong[:5]
        raise WarmstartError(f"checkpoint {file}: weights do not fit the {info.arch} architecture it describes: "
                             + "; ".join(parts))
    model.load_state_dict(stored, strict=True)
    return model.to(device).eval(), info
