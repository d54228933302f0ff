"""Input preprocessing recorded with every checkpoint: normalisation statistics, and adapting image shapes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import WarmstartError
from .dataset import Dataset


@dataclass(frozen=True)
class Normalization:
    """Per-channel (images) or per-feature (vectors) mean and standard deviation, taken from training data, or
    from a pretrained model's config. A pretrained image model also says what its inputs are resized to
    (``input_size``, C H W) and how (``interpolation``), and where that came from (``source``); ``extra`` keeps
    the rest of what it recorded."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    kind: str
    input_size: tuple[int, ...] | None = None
    interpolation: str | None = None
    source: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def fit(cls, dataset: Dataset) -> "Normalization":
        axes = (0, 2, 3) if dataset.kind == "image" else (0,)
        mean = dataset.x.mean(axis=axes, dtype=np.float64)
        std = dataset.x.std(axis=axes, dtype=np.float64)
        std = np.where(std < 1e-6, 1.0, std)  # a constant input carries nothing; don't divide by zero
        return cls(tuple(mean.tolist()), tuple(std.tolist()), dataset.kind)

    def apply(self, x: np.ndarray) -> torch.Tensor:
        shape = (1, -1, 1, 1) if self.kind == "image" else (1, -1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(shape)
        std = torch.tensor(self.std, dtype=torch.float32).view(shape)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) - mean) / std

    def to_dict(self) -> dict:
        recorded = {"input_size": None if self.input_size is None else list(self.input_size),
                    "interpolation": self.interpolation, "source": self.source, **dict(self.extra)}
        return {"kind": self.kind, "mean": list(self.mean), "std": list(self.std),
                **{k: v for k, v in recorded.items() if v is not None}}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        known = {"kind", "mean", "std", "input_size", "interpolation", "source"}
        return cls(tuple(d["mean"]), tuple(d["std"]), d["kind"],
                   input_size=None if d.get("input_size") is None else tuple(d["input_size"]),
                   interpolation=d.get("interpolation"), source=d.get("source"),
                   extra=tuple((k, v) for k, v in d.items() if k not in known))


@dataclass(frozen=True)
class Tokenization:
    """Texts to token ids with the model's own tokenizer, cut to ``max_length`` and padded to it; the model trims
    each batch to its longest text, so the padding costs nothing in training."""

    source: str
    max_length: int
    kind: str = "text"

    def apply(self, texts: np.ndarray) -> torch.Tensor:
        from ..models.hf import load_tokenizer

        tokenizer = _tokenizer(self.source, load_tokenizer)
        encoded = tokenizer([str(t) for t in texts], padding="max_length", truncation=True,
                            max_length=self.max_length, return_tensors="pt")
        return encoded["input_ids"]

    def to_dict(self) -> dict:
        return {"kind": "text", "source": self.source, "max_length": self.max_length}


_TOKENIZERS: dict[str, object] = {}


def _tokenizer(source: str, load):
    if source not in _TOKENIZERS:
        _TOKENIZERS[source] = load(source)
    return _TOKENIZERS[source]


def resizes_inputs(preprocessing: "Normalization | Tokenization") -> bool:
    """Whether a model's recorded preprocessing resizes images to its input size (pretrained models' does)."""
    return isinstance(preprocessing, Normalization) and preprocessing.input_size is not None


def preprocessing_from_dict(d: dict) -> "Normalization | Tokenization":
    if d.get("kind") == "text":
        return Tokenization(d["source"], int(d["max_length"]))
    return Normalization.from_dict(d)


def fit_preprocessing(dataset: Dataset, arch_args: dict, max_length: int,
                      pretrained: dict | None = None) -> "Normalization | Tokenization":
    """What a new model's inputs get: the model's tokenizer for text, the normalisation its pretrained weights
    expect (``pretrained``, a :meth:`Normalization.to_dict`), statistics of the training set otherwise."""
    if pretrained is not None:
        return Normalization.from_dict(pretrained)
    if dataset.kind == "text":
        if "source" not in arch_args:
            raise WarmstartError(f"{dataset.name} is text, and this model has no tokenizer",
                                 hint="use a text model: --model hf (the alias minilm by default)")
        return Tokenization(arch_args["source"], max_length)
    return Normalization.fit(dataset)


def align_features(dataset: Dataset, feature_names: list[str] | tuple[str, ...] | None, model_name: str) -> Dataset:
    """Put a CSV's feature columns in the order the model was trained on, matching them by name. Data that names
    no columns (an .npz) is taken in its own order, which a note says: nothing can check it."""
    if feature_names is not None and dataset.feature_names is None and dataset.kind == "vector":
        shown = ", ".join(feature_names[:6]) + (", ..." if len(feature_names) > 6 else "")
        logging.getLogger("warmstart").info(
            f"{dataset.name} names no feature columns, so its columns are taken by position as {model_name}'s "
            f"features ({shown}): check that they come in that order")
    if feature_names is None or dataset.feature_names is None or tuple(feature_names) == dataset.feature_names:
        return dataset
    missing = [n for n in feature_names if n not in dataset.feature_names]
    if missing:
        raise WarmstartError(f"{model_name} was trained on feature columns that {dataset.name} lacks: "
                             f"{', '.join(missing[:5])}", hint="use data with the model's feature columns")
    order = [dataset.feature_names.index(n) for n in feature_names]
    return Dataset(dataset.x[:, order], dataset.y, dataset.class_names, dataset.kind, dataset.name,
                   feature_names=tuple(feature_names))


def adapt_inputs(dataset: Dataset, input_shape: tuple[int, ...], *, resize: bool, model_name: str,
                 interpolation: str = "bilinear") -> Dataset:
    """Make the data fit a model's input shape: unchanged when it does, resized when asked (with
    ``interpolation``: bilinear, bicubic or nearest), else a clear error."""
    if dataset.input_shape == tuple(input_shape) or dataset.kind == "text":
        return dataset
    found = "x".join(map(str, dataset.input_shape))
    wanted = "x".join(map(str, input_shape))
    if dataset.kind != "image" or len(input_shape) != 3 or not resize:
        hint = ("pass --resize to resize the images (and convert grey <-> colour) to the model's input"
                if dataset.kind == "image" and len(input_shape) == 3 else
                "use data with the same number of features, or train a new model with --from none")
        raise WarmstartError(f"{model_name} expects inputs of shape {wanted}, but {dataset.name} has {found}",
                             hint=hint)
    x = torch.from_numpy(np.ascontiguousarray(dataset.x))
    channels, height, width = input_shape
    if x.shape[1] != channels:
        if channels == 3 and x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        elif channels == 1 and x.shape[1] in (3, 4):
            luminance = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x[:, :3] * luminance).sum(dim=1, keepdim=True)
        else:
            raise WarmstartError(f"cannot convert {x.shape[1]}-channel images to {channels} channels for "
                                 f"{model_name}",
                                 hint=f"use images with 1, 3 or 4 channels, or train a model on {x.shape[1]}-channel "
                                      "inputs (--from none)")
    if tuple(x.shape[2:]) != (height, width):
        mode = interpolation if interpolation in ("bilinear", "bicubic") else "nearest"
        x = F.interpolate(x, size=(height, width), mode=mode, antialias=mode != "nearest",
                          **({} if mode == "nearest" else {"align_corners": False}))
        if mode == "bicubic":  # bicubic overshoots; keep the images in their range
            x = x.clamp(float(dataset.x.min()), float(dataset.x.max()))
    return Dataset(x.numpy(), dataset.y, dataset.class_names, dataset.kind, dataset.name)
