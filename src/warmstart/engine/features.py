"""Backbone features computed once and kept: the linear probe trains its head on these instead of re-running a
frozen backbone every epoch (what the peers do), which on a CPU is the difference between seconds and hours.

The cache key is a fingerprint of the backbone's weights, of the preprocessed inputs and of the extraction settings,
so a changed checkpoint, different data or a different preprocessing never reuses stale features. Entries live in
memory (a small LRU) and, when a folder is given, on disk as safetensors files written atomically.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from ..io import atomic_write
from ..models import TransferModel
from .distributed import gather_rows

_MEMORY: "OrderedDict[str, torch.Tensor]" = OrderedDict()
MEMORY_ENTRIES = 16


def default_cache_dir() -> Path:
    if env := os.environ.get("WARMSTART_CACHE_DIR"):
        return Path(env) / "features"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "warmstart" / "features"


def _digest(h: "hashlib._Hash", tensor: torch.Tensor) -> None:
    t = tensor.detach().to("cpu").contiguous()
    h.update(str((t.dtype, tuple(t.shape))).encode())
    if t.numel():
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # no copy of the bytes


def fingerprint(model: TransferModel, x: torch.Tensor, view: str = "") -> str:
    """A key for the features of ``x`` (or of its augmented ``view``) under ``model``'s backbone (weights and
    buffers, e.g. BatchNorm statistics)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(view.encode())
    h.update(f"{model.arch}:{sorted(model.arch_args.items())}".encode())
    for name, tensor in model.backbone.state_dict().items():
        h.update(name.encode())
        _digest(h, tensor)
    _digest(h, x)
    return h.hexdigest()


@torch.no_grad()
def extract_features(model: TransferModel, x: torch.Tensor, device: torch.device,
                     batch_size: int = 128) -> torch.Tensor:
    """The backbone's features of ``x``, in eval mode (BatchNorm uses its pretrained statistics); batches of 128, as
    for predictions, since larger ones run slower on a CPU."""
    was_training = model.training
    model.eval().to(device)
    try:
        parts = [model.forward_features(x[i:i + batch_size].to(device)).float().cpu()
                 for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, model.num_features)


def cached_features(model: TransferModel, x: torch.Tensor, device: torch.device, *, disk: Path | None = None,
                    view: str = "", transform: Callable[[torch.Tensor], torch.Tensor] | None = None
                    ) -> tuple[torch.Tensor, bool]:
    """Features of ``x`` from the cache, computing and storing them on a miss; returns (features, was_cached).

    ``transform`` (deterministic, named by ``view``) makes an augmented view of ``x``; it runs only on a miss.
    """
    key = fingerprint(model, x, view)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key], True
    file = disk / f"{key}.safetensors" if disk is not None else None
    if file is not None and file.is_file():
        features, hit = load_file(str(file))["features"], True
    else:
        features, hit = extract_features(model, x if transform is None else transform(x), device), False
        if file is not None:
            atomic_write(file, lambda tmp: save_file({"features": features.contiguous()}, tmp))
    _MEMORY[key] = features
    while len(_MEMORY) > MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)
    return features, hit


def clear_memory_cache() -> None:
    _MEMORY.clear()


def shared_features(model: TransferModel, x: torch.Tensor, device: torch.device, *, disk: Path | None = None,
                    view: str = "", transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """:func:`cached_features` of ``x``; under DDP each rank extracts (and caches) its share of the rows and the
    shares are gathered, so the backbone runs over the data once in all."""
    return gather_rows(lambda rows: cached_features(model, rows, device, disk=disk, view=view,
                                                    transform=transform)[0], x)
