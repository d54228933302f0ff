"""Any timm image model behind the backbone contract (``--model timm --model-option name=NAME``, or
``--from timm:NAME`` for its pretrained weights).

The timm model is built with ``num_classes=0``, so it returns its pooled (pre-logits) features; the head is the
TransferModel's own linear layer. Layer groups come from timm's ``group_matcher`` (stem, each block, ...), so
gradual unfreezing and layer-wise learning rates work as timm's own layer decay does.

Pretrained weights (``pretrained=True``) come, in this order, from ``weights=FILE`` (a .safetensors or .pth state
dict, loaded by timm through ``pretrained_cfg_overlay=dict(file=...)``), from the Hugging Face / torch hub cache, or
from timm's own download when online. With ``WARMSTART_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` nothing is downloaded: a
model that is not cached is a clear error saying how to provide the weights. When the data's channels differ from
the weights' (grey Fashion-MNIST on an RGB model), timm adapts the first convolution as it loads
(``adapt_input_conv``: a grey model's filters are the sum of the colour filters).

The preprocessing the weights expect (input size, mean, std, interpolation) comes from timm's pretrained config
(``resolve_model_data_config``); warmstart records it in the checkpoint and uses it whenever the model sees data.
"""

from __future__ import annotations

import logging
import os
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from safetensors import SafetensorError
from torch import nn

from ..errors import WarmstartError, first_line
from .base import MODELS, TransferModel
from .groups import ParameterGroup, parameter_groups


def offline() -> bool:
    return os.environ.get("WARMSTART_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


def import_timm():
    try:
        import timm
    except ImportError:
        raise WarmstartError("timm models need the package timm", hint="pip install 'warmstart[images]'") from None
    return timm


class TimmModel(TransferModel):
    """A TransferModel around a timm model; ``pretrained_preprocessing`` is what its weights expect (None when it
    starts from random weights)."""

    pretrained_preprocessing: dict[str, Any] | None = None
    weights_source: str | None = None

    def backbone_groups(self) -> list[tuple[str, nn.Module]]:
        from timm.models import group_parameters

        try:
            matcher = self.backbone.group_matcher(coarse=False)
        except (AttributeError, NotImplementedError):
            matcher = None
        if not matcher:  # a model without a matcher: its top-level modules
            return parameter_groups(self.backbone, lambda name: name.split(".")[0])
        group_of = group_parameters(self.backbone, matcher, reverse=True)
        return parameter_groups(self.backbone, lambda name: group_of.get(name))


def check_model_name(name: str) -> None:
    timm = import_timm()
    if not isinstance(name, str) or not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:8] if isinstance(name, str) else []
        raise WarmstartError(f"timm has no model called {name!r}",
                             hint=(f"close names: {', '.join(close)}" if close else
                                   "see timm.list_models() for the names (e.g. resnet18, efficientnet_b0, "
                                   "vit_tiny_patch16_224)"))


def _cached_weights(name: str) -> str | None:
    """The local file of ``name``'s pretrained weights in the Hugging Face or torch hub cache, if there is one."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in ([cfg.hf_hub_filename] if cfg.hf_hub_filename else
                         ["open_clip_model.safetensors", "model.safetensors", "open_clip_pytorch_model.bin",
                          "pytorch_model.bin"]):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(found, str):
                return found
    if cfg.url:
        import torch.hub

        file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if file.is_file():
            return str(file)
    return None


@contextmanager
def _timm_load_report() -> Iterator[list[logging.LogRecord]]:
    """timm reports keys it could not load on its own logger and carries on; collect those reports."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger, handler = logging.getLogger("timm.models._builder"), Collect(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _pretrained_file(name: str, weights: str | None) -> str | None:
    """The weights file to load: ``weights``, else the cached copy; None means timm downloads them."""
    if weights is not None:
        file = Path(str(weights)).expanduser()
        if not file.is_file():
            raise WarmstartError(f"timm model {name}: weights file {str(file)!r} not found",
                                 hint="pass an existing .safetensors or .pth state dict with --model-option "
                                      "weights=PATH")
        return str(file)
    cached = _cached_weights(name)
    if cached is None and offline():
        raise WarmstartError(f"timm model {name}: no pretrained weights in the Hugging Face or torch hub cache, "
                             "and downloads are off (WARMSTART_OFFLINE=1 or HF_HUB_OFFLINE=1)",
                             hint="give a local weights file with --model-option weights=PATH (a .safetensors "
                                  "state dict of this architecture), or download them once while online")
    return cached


def build_timm(name: str, in_chans: int, *, pretrained: bool, weights: str | None,
               img_size: tuple[int, int] | None, **kwargs: Any) -> tuple[nn.Module, str | None]:
    """The timm model (``num_classes=0``: pooled features out) and where its weights came from."""
    timm = import_timm()
    check_model_name(name)
    file = _pretrained_file(name, weights) if pretrained else None
    options: dict[str, Any] = dict(kwargs)
    if file is not None:
        options["pretrained_cfg_overlay"] = {"file": file}

    def create() -> nn.Module:
        # vision transformers size their position embeddings by img_size (timm resamples pretrained ones to it);
        # convolutional models take any size and no such argument
        try:
            return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans,
                                     **options, **({} if img_size is None else {"img_size": img_size}))
        except TypeError as exc:
            if img_size is None or "img_size" not in str(exc):
                raise
            return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **options)

    with _timm_load_report() as report:
        try:
            model = create()
        except (RuntimeError, OSError, ValueError, KeyError, AssertionError, EOFError, pickle.UnpicklingError,
                SafetensorError) as exc:  # what a damaged, empty or cut weights file raises
            where = f"weights file {file}" if file else "its pretrained weights"
            raise WarmstartError(f"timm model {name}: cannot load {where} ({first_line(exc, 300)})",
                                 hint="the file must hold a state dict of this same architecture; or give "
                                      "--model-option weights=PATH") from None
    missing = [r.getMessage() for r in report if "Missing keys" in r.getMessage()
               or "Unexpected keys" in r.getMessage()]
    if pretrained and missing:
        raise WarmstartError(f"timm model {name}: the weights{' file ' + file if file else ''} do not fit this "
                             f"architecture: {missing[0][:400]}",
                             hint="use weights saved from this same timm model name")
    source = None if not pretrained else (file or f"timm hub ({model.pretrained_cfg.get('hf_hub_id') or name})")
    return model, source


def pretrained_preprocessing(data_config: dict[str, Any], channels: int, source: str,
                             size: tuple[int, int]) -> dict[str, Any]:
    """What a pretrained model's inputs get: its weights' mean and std, for ``channels`` input channels (a grey
    input of an RGB model, whose first convolution's filters were summed, gets the mean of the channel means and
    stds), images resized to ``size`` with the weights' interpolation. ``pretrained_input_size`` is the size the
    weights were trained at."""
    mean, std = list(data_config["mean"]), list(data_config["std"])
    if channels != len(mean):
        mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    return {"kind": "image", "mean": mean, "std": std, "input_size": [channels, *map(int, size)],
            "pretrained_input_size": [int(s) for s in data_config["input_size"]],
            "interpolation": str(data_config.get("interpolation", "bilinear")), "source": source}


def image_size(value: int | Sequence[int] | None, parameter: str = "input_size") -> tuple[int, int] | None:
    if value is None:
        return None
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise TypeError(f"{parameter} must be a positive size or [height, width], got {value!r}")
    return size  # type: ignore[return-value]


@MODELS.register("timm")
def timm_model(input_shape: tuple[int, ...], num_classes: int, name: str = "resnet18", pretrained: bool = False,
               weights: str | None = None, input_size: int | Sequence[int] | None = None,
               drop_rate: float = 0.0, drop_path_rate: float | None = None) -> TimmModel:
    """Any timm image model by name; pretrained=True loads its weights (weights=FILE, the cache, or the hub).

    ``input_size`` (H or [H, W]): what images are resized to; by default the pretrained config's size with
    pretrained weights, the data's own size without.
    """
    if len(input_shape) != 3:
        raise TypeError(f"timm models need images (C, H, W), got input shape {tuple(input_shape)}")
    channels = int(input_shape[0])
    size = image_size(input_size)
    pretrained = bool(pretrained or weights is not None)
    timm = import_timm()
    check_model_name(name)
    default_cfg = timm.models.get_pretrained_cfg(name)
    if size is None:
        size = (tuple(default_cfg.input_size[1:]) if pretrained and default_cfg is not None
                else tuple(int(s) for s in input_shape[1:]))
    extra = {"drop_rate": drop_rate} | ({} if drop_path_rate is None else {"drop_path_rate": drop_path_rate})
    backbone, source = build_timm(name, channels, pretrained=pretrained, weights=weights,
                                  img_size=size, **extra)
    arch_args = {"name": name, "input_size": list(size), "drop_rate": drop_rate, "drop_path_rate": drop_path_rate}
    model = TimmModel(backbone, backbone.num_features, num_classes, arch="timm", arch_args=arch_args,
                      input_shape=(channels, *size))
    if pretrained:
        model.pretrained_preprocessing = pretrained_preprocessing(
            timm.data.resolve_model_data_config(backbone), channels, f"timm:{name}", size)
        model.weights_source = source
    return model


__all__ = ["TimmModel", "ParameterGroup", "build_timm", "check_model_name", "offline", "timm_model"]
