"""Pretrained starting points named in ``--from``: ``minilm`` or ``hf:SOURCE`` (a Hugging Face encoder),
``timm:NAME`` (any timm model) and ``torchvision:NAME`` (a torchvision classification model).

``pretrained_spec`` turns such a name, with the user's model options (``weights=PATH`` for a local weights file,
``input_size=64``, ...), into the registered architecture and options that build it with its pretrained weights.
Anything else (a checkpoint folder or file) is not a pretrained source, and gets None.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..config import ModelConfig
from ..errors import WarmstartError
from .checkpoint import check_source_type

# prefix -> (registered architecture, the option that names the model)
PREFIXES = {"hf": ("hf", "source"), "timm": ("timm", "name"), "torchvision": ("torchvision", "name")}


def pretrained_spec(checkpoint: str | Path | None, options: Mapping[str, Any] | None = None) -> ModelConfig | None:
    """The architecture and options of a pretrained source (``timm:resnet18`` ->
    ``ModelConfig("timm", {"name": "resnet18", "pretrained": True})``), or None for a checkpoint."""
    if checkpoint is None:
        return None
    check_source_type(checkpoint, "checkpoint")
    if isinstance(checkpoint, os.PathLike):
        return None
    from .hf import ALIASES

    if checkpoint in ALIASES:
        prefix, name = "hf", checkpoint
    else:
        prefix, sep, name = checkpoint.partition(":")
        if not sep or prefix not in PREFIXES:
            return None
    arch, option = PREFIXES[prefix]
    if not name:
        raise WarmstartError(f"--from {checkpoint!r}: no model named after {prefix}:",
                             hint=f"e.g. --from {prefix}:{'minilm' if prefix == 'hf' else 'resnet18'}")
    given = dict(options or {})
    clash = [k for k in (option, "pretrained") if k in given]
    if clash:
        raise WarmstartError(f"--from {checkpoint} already says {', '.join(clash)}; it cannot be a model option too",
                             hint=f"drop --model-option {clash[0]}=...")
    return ModelConfig(arch, {option: name, **({} if arch == "hf" else {"pretrained": True}), **given})


def source_architecture(checkpoint: str) -> str | None:
    """The registered architecture a ``--from`` pretrained source builds (for the CLI's --model-option)."""
    from .imported import FORMATS

    if isinstance(checkpoint, str) and checkpoint.partition(":")[0] in FORMATS:
        raise WarmstartError(f"--model-option: --from {checkpoint} loads weights into the architecture --model names",
                             hint="add --model (e.g. --model mlp --model-option hidden=[64,32])")
    spec = pretrained_spec(checkpoint) if isinstance(checkpoint, str) else None
    return None if spec is None else spec.name
