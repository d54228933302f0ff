"""torchvision's classification models behind the backbone contract (``--model torchvision --model-option
name=resnet18``, or ``--from torchvision:resnet18`` for its pretrained weights).

The model's last linear layer (``fc`` of a ResNet, the end of ``classifier`` of an EfficientNet or MobileNet,
``heads.head`` of a ViT) becomes an identity, so the model returns the features it fed; the TransferModel's own
linear head replaces it. Layer groups are the model's top-level modules (a ``features`` sequence is split into its
stages), in the order they run.

Pretrained weights come from ``weights=FILE`` (a .safetensors or .pth state dict of the same architecture), from
the torch hub cache, or from torchvision's own download (``Weights.get_state_dict``) when online; with
``WARMSTART_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` nothing is downloaded. When the data's channels differ from the
weights', the first convolution is adapted with timm's ``adapt_input_conv`` (grey: the colour filters summed).
The preprocessing the weights expect (crop size, mean, std, interpolation) comes from the weights' ``transforms()``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import WarmstartError, first_line
from .base import MODELS, TransferModel
from .groups import parameter_groups
from .timm_backbone import image_size, offline, pretrained_preprocessing

# models whose constructors need telling not to build auxiliary classifiers
_NO_AUX = {"googlenet": {"aux_logits": False, "init_weights": True}, "inception_v3": {"aux_logits": False,
                                                                                       "init_weights": True}}


def classification_models() -> list[str]:
    import torchvision.models

    return torchvision.models.list_models(module=torchvision.models)


def _check_name(name: str) -> None:
    names = classification_models()
    if name not in names:
        close = [n for n in names if isinstance(name, str) and (name in n or n in name)][:8]
        raise WarmstartError(f"torchvision has no classification model called {name!r}",
                             hint=f"close names: {', '.join(close)}" if close else
                             "e.g. resnet18, mobilenet_v3_small, efficientnet_b0 (torchvision.models.list_models())")


def _default_weights(name: str):
    import torchvision.models

    try:
        return torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError, KeyError):
        return None


def _read_state_dict(file: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(file))
        state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unreadable file is the user's to fix)
        raise WarmstartError(f"torchvision model {name}: weights file {file} cannot be read "
                             f"({first_line(exc)})",
                             hint="pass a .safetensors or .pth state dict") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WarmstartError(f"torchvision model {name}: weights file {file} holds no state dict",
                             hint="pass a .safetensors or .pth file saved from model.state_dict()")
    return state


def _pretrained_state(name: str, weights: str | None) -> tuple[dict[str, torch.Tensor], str]:
    if weights is not None:
        file = Path(str(weights)).expanduser()
        if not file.is_file():
            raise WarmstartError(f"torchvision model {name}: weights file {str(file)!r} not found",
                                 hint="pass an existing .safetensors or .pth state dict with --model-option "
                                      "weights=PATH")
        return _read_state_dict(file, name), str(file)
    enum = _default_weights(name)
    if enum is None:
        raise WarmstartError(f"torchvision model {name}: torchvision publishes no pretrained weights for it",
                             hint="give a weights file with --model-option weights=PATH, or train it from scratch")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)
    if cached.is_file():
        return _read_state_dict(cached, name), str(cached)
    if offline():
        raise WarmstartError(f"torchvision model {name}: its weights {enum} are not in the torch hub cache "
                             f"({cached.parent}), and downloads are off (WARMSTART_OFFLINE=1 or HF_HUB_OFFLINE=1)",
                             hint="give a local weights file with --model-option weights=PATH, or download them "
                                  "once while online")
    try:
        return enum.get_state_dict(progress=False, check_hash=True), str(enum)
    except Exception as exc:  # noqa: BLE001  (no network, a proxy, a bad download: all say the same to the user)
        raise WarmstartError(f"torchvision model {name}: cannot download {enum} ({first_line(exc)})",
                             hint="give a local weights file with --model-option weights=PATH") from None


def _last_linear(model: nn.Module, name: str) -> tuple[str, nn.Linear]:
    linears = [(path, m) for path, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise WarmstartError(f"torchvision model {name} has no linear classifier to replace",
                             hint="use a model with a linear classifier (resnet18, mobilenet_v3_small, ...)")
    return linears[-1]


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    return next((path, m) for path, m in model.named_modules() if isinstance(m, nn.Conv2d))


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def adapt_first_conv(model: nn.Module, in_chans: int) -> None:
    """Give the first convolution ``in_chans`` input channels, its weights adapted as timm does when it loads
    pretrained weights for another channel count (``timm.models.adapt_input_conv``)."""
    path, conv = _first_conv(model)
    if conv.in_channels == in_chans:
        return
    from .timm_backbone import import_timm

    import_timm()
    from timm.models import adapt_input_conv

    adapted = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                        conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        adapted.weight.copy_(adapt_input_conv(in_chans, conv.weight, base_chans=conv.in_channels))
        if conv.bias is not None:
            adapted.bias.copy_(conv.bias)
    _replace(model, path, adapted)


class TorchvisionModel(TransferModel):
    pretrained_preprocessing: dict[str, Any] | None = None
    weights_source: str | None = None

    def backbone_groups(self) -> list[tuple[str, nn.Module]]:
        def group_of(parameter: str) -> str:
            parts = parameter.split(".")
            # a sequence of stages (EfficientNet's, MobileNet's features): one group per stage
            return ".".join(parts[:2]) if parts[0] == "features" and len(parts) > 2 else parts[0]

        return parameter_groups(self.backbone, group_of)


@MODELS.register("torchvision")
def torchvision_model(input_shape: tuple[int, ...], num_classes: int, name: str = "resnet18",
                      pretrained: bool = False, weights: str | None = None,
                      input_size: int | Sequence[int] | None = None) -> TorchvisionModel:
    """A torchvision classification model by name; pretrained=True loads its weights (weights=FILE, the torch hub
    cache, or torchvision's download). ``input_size``: by default the weights' crop size, or the data's size."""
    import torchvision.models

    if len(input_shape) != 3:
        raise TypeError(f"torchvision models need images (C, H, W), got input shape {tuple(input_shape)}")
    _check_name(name)
    channels = int(input_shape[0])
    pretrained = bool(pretrained or weights is not None)
    size = image_size(input_size)
    enum = _default_weights(name)
    if size is None:
        crop = None if enum is None else enum.transforms().crop_size
        size = (tuple(crop) * 2)[:2] if pretrained and crop else tuple(int(s) for s in input_shape[1:])
    backbone = torchvision.models.get_model(name, weights=None, **_NO_AUX.get(name, {}))
    classifier_path, classifier = _last_linear(backbone, name)
    source = None
    if pretrained:
        state, source = _pretrained_state(name, weights)
        state = {k: v for k, v in state.items() if not k.startswith(classifier_path + ".")}
        try:
            result = backbone.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # tensors of other shapes: another architecture's weights
            raise WarmstartError(f"torchvision model {name}: the weights {source} do not fit this architecture "
                                 f"({str(exc).splitlines()[-1].strip()[:300]})",
                                 hint="use weights saved from this same torchvision model name") from None
        missing = [k for k in result.missing_keys if not k.startswith(classifier_path + ".")]
        if missing or result.unexpected_keys:
            raise WarmstartError(f"torchvision model {name}: the weights {source} do not fit this architecture "
                                 f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})",
                                 hint="use weights saved from this same torchvision model name")
    _replace(backbone, classifier_path, nn.Identity())
    adapt_first_conv(backbone, channels)
    model = TorchvisionModel(backbone, classifier.in_features, num_classes, arch="torchvision",
                             arch_args={"name": name, "input_size": list(size)}, input_shape=(channels, *size))
    if pretrained:
        crop = None if enum is None else enum.transforms().crop_size
        meta = {"input_size": (3, *((tuple(crop) * 2)[:2] if crop else size)), "interpolation": "bilinear",
                "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}  # ImageNet's, without weights meta
        if enum is not None:
            transforms = enum.transforms()
            meta.update(mean=tuple(transforms.mean), std=tuple(transforms.std),
                        interpolation=transforms.interpolation.value)
        model.pretrained_preprocessing = pretrained_preprocessing(meta, channels, f"torchvision:{name}", size)
        model.weights_source = source
    return model
