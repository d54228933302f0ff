"""A Keras model as a PyTorch network behind the backbone contract: ``--from keras:model.keras`` (or a full-model
``.h5``) rebuilds the model from its stored config and converts its weights, without TensorFlow or Keras.

Supported: Sequential models and functional models that are one chain of layers (no branches or merges), built
from Dense, Conv2D, BatchNormalization, Dropout, Flatten, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
GlobalMaxPooling2D, Activation, ReLU, LeakyReLU and Softmax, with the activations of :data:`ACTIVATIONS`. Anything
else, a Lambda layer or a custom object above all, is refused by layer name and class: the config is data, and no
code in it is ever run.

The conversion, layer by layer:

- Dense: the kernel (in, out) becomes the weight (out, in). Conv2D: HWIO kernels become OIHW; ``padding="same"``
  pads as TensorFlow does (the odd pixel at the bottom and right, whatever the stride).
- BatchNormalization: gamma, beta, moving mean and variance; ``epsilon`` as it is; the momentum converted, as
  Keras keeps ``m * moving + (1 - m) * batch`` and PyTorch ``(1 - m) * running + m * batch``: PyTorch's is 1 - Keras'.
  (Keras updates the moving variance with the biased batch variance, PyTorch with the unbiased one: the same at
  inference, a hair apart while training.)
- Channels: warmstart's images are channels-first (N, C, H, W), so a channels-last model's input (H, W, C) becomes
  (C, H, W), and a Flatten after a convolution first moves the channels last again, so that the next Dense's
  kernel rows meet the values in Keras' (H, W, C) order.
- The last Dense layer is the head (its softmax is dropped: the head gives logits); everything before it is the
  backbone, one layer group per weighted layer, so every strategy applies.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WarmstartError
from .base import MODELS, TransferModel
from .keras_file import KerasFile, storage_names

SUPPORTED = ("Dense", "Conv2D", "BatchNormalization", "Dropout", "Flatten", "MaxPooling2D", "AveragePooling2D",
             "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Activation", "ReLU", "LeakyReLU", "Softmax",
             "InputLayer")
# Keras' names of the activations (Keras 3's definitions; gelu is the exact one, as Keras' default)
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU, "selu": nn.SELU,
               "gelu": nn.GELU, "swish": nn.SiLU, "silu": nn.SiLU, "softplus": nn.Softplus, "softsign": nn.Softsign,
               "relu6": nn.ReLU6, "leaky_relu": lambda: nn.LeakyReLU(0.2)}
SUPPORTED_HINT = (f"warmstart converts these layers: {', '.join(SUPPORTED)}, with the activations "
                  f"{', '.join(sorted(ACTIVATIONS))}, linear (and softmax on the last layer); rebuild the model "
                  "from them, or save its weights and load them into a registered architecture "
                  "(--from keras:WEIGHTS.h5 --model mlp)")


# ---------------------------------------------------------------------------------------------------------------
# the stored config, read into plain layer specs (JSON: they are the "keras" architecture's arch_args)


def _refuse(where: str, message: str, hint: str = SUPPORTED_HINT) -> WarmstartError:
    return WarmstartError(f"{where}: {message}", hint=hint)


def _activation(value: Any, where: str, layer: str) -> str | None:
    """The name of a stored activation; Keras 3 may store a built-in one as a small dict."""
    if isinstance(value, dict) and value.get("module") in ("keras.activations", None) \
            and isinstance(value.get("config"), str):
        value = value["config"]
    if value is None or value == "linear":
        return None
    if value == "softmax" or (isinstance(value, str) and value in ACTIVATIONS):
        return value
    raise _refuse(where, f"layer {layer!r} has the activation {value!r}, which warmstart cannot convert "
                         "(custom activations are never deserialized)")


def _pair(value: Any) -> list[int]:
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else (value, value))]


def _inbound(layer: dict[str, Any]) -> list[list[str]]:
    """The names of the layers feeding each of ``layer``'s calls (Keras 3's and Keras 2's layouts)."""
    nodes = layer.get("inbound_nodes") or []
    calls = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3: {"args": [keras tensors], "kwargs": {...}}
            tensors = [a for a in node.get("args", []) if isinstance(a, dict)]
            nested = [t for a in node.get("args", []) if isinstance(a, list) for t in a if isinstance(t, dict)]
            calls.append([t["config"]["keras_history"][0] for t in tensors + nested
                          if t.get("class_name") == "__keras_tensor__"])
        else:  # Keras 2: [["name", node_index, tensor_index, kwargs], ...]
            calls.append([entry[0] for entry in node])
    return calls


def _input_shape(layers: list[dict[str, Any]], where: str) -> list[int]:
    for layer in layers[:2]:
        config = layer.get("config", {})
        # Keras 3's Input, Keras 2's input_shape=..., or a Keras 3 model built by its first call (build_config)
        shape = config.get("batch_shape") or config.get("batch_input_shape") or \
            (layer.get("build_config") or {}).get("input_shape")
        if shape is not None:
            if any(s is None for s in shape[1:]):
                raise _refuse(where, f"its input shape {tuple(shape[1:])} has unknown dimensions",
                              hint="build the Keras model with a fixed input shape: keras.Input(shape=(28, 28, 1))")
            return [int(s) for s in shape[1:]]
    raise _refuse(where, "its config records no input shape",
                  hint="build the Keras model with keras.Input(shape=...) before saving it")


def model_layers(config: dict[str, Any], where: str) -> tuple[list[int], list[dict[str, Any]]]:
    """The input shape (as Keras has it) and the layers, in order, of a Sequential or chain-like functional
    model's config."""
    kind = config.get("class_name")
    body = config.get("config")
    if kind not in ("Sequential", "Functional", "Model"):
        raise _refuse(where, f"the stored model is a {kind}, not a Sequential or functional model",
                      hint="save a keras.Sequential or keras.Model (functional) model")
    layers = body if isinstance(body, list) else (body or {}).get("layers", [])
    if not layers:
        raise _refuse(where, "its config holds no layers", hint="save a model that has layers")
    shape = _input_shape(layers, where)
    if kind != "Sequential":
        previous = None
        for layer in layers:
            calls = _inbound(layer)
            name = layer.get("config", {}).get("name")
            if previous is not None and calls != [[previous]]:
                raise _refuse(where, f"layer {name!r} ({layer.get('class_name')}) takes "
                                     f"{calls or 'no input'}, not just the layer before it ({previous!r}): "
                                     "branches and merges are not supported",
                              hint="warmstart converts models that are one chain of layers (Sequential, or "
                                   "functional without branches)")
            previous = name
    return shape, [layer for layer in layers if layer.get("class_name") != "InputLayer"]


def layer_specs(config: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``keras`` architecture's options for a stored model: ``shape`` (warmstart's, channels first),
    ``channels_last``, ``layers`` (one spec per layer before the head) and ``head`` (the last Dense's spec)."""
    keras_shape, layers = model_layers(config, where)
    formats = [layer["config"]["data_format"] for layer in layers if layer.get("config", {}).get("data_format")]
    channels_last = (formats[0] if formats else "channels_last") == "channels_last"
    if len(keras_shape) == 3:
        shape = [keras_shape[2], keras_shape[0], keras_shape[1]] if channels_last else keras_shape
    elif len(keras_shape) == 2:  # (H, W): grey images, as warmstart holds them (1, H, W)
        shape = [1, *keras_shape]
    elif len(keras_shape) == 1:
        shape = keras_shape
    else:
        raise _refuse(where, f"its input shape {tuple(keras_shape)} is neither vectors nor images",
                      hint="warmstart converts models of vectors (D,) and images (H, W, C)")
    classes = [layer.get("class_name") for layer in layers]
    storage = storage_names(classes)
    rank = 4 if len(shape) == 3 else 2
    specs = []
    for layer, store in zip(layers, storage):
        spec, rank = _spec(layer, rank, channels_last, where)
        specs.append({**spec, "storage": store})
    dense = [i for i, s in enumerate(specs) if s["type"] == "dense"]
    if not dense:
        raise _refuse(where, "it has no Dense layer to serve as the classifier head",
                      hint="warmstart fine-tunes classifiers: the model must end with a Dense layer")
    last = dense[-1]
    for spec in specs[last + 1:]:
        if not (spec["type"] == "activation" and spec["activation"] in (None, "softmax")):
            raise _refuse(where, f"layer {spec['name']!r} follows the last Dense layer {specs[last]['name']!r}; "
                                 "only a softmax or linear activation may",
                          hint="end the model with its classifier Dense layer (softmax or linear)")
    head = specs[last]
    if head["activation"] not in (None, "softmax"):
        raise _refuse(where, f"the last Dense layer {head['name']!r} has the activation {head['activation']!r}; "
                             "the head of a softmax classifier gives logits",
                      hint="save a classifier whose last Dense layer has a softmax or linear activation")
    return {"shape": shape, "channels_last": channels_last, "layers": specs[:last], "head": head}


def _spec(layer: dict[str, Any], rank: int, channels_last: bool, where: str) -> tuple[dict[str, Any], int]:
    """One layer's spec and the rank (2 or 4) of its output."""
    kind, config = layer.get("class_name"), layer.get("config", {})
    name = str(config.get("name", kind))
    described = f"layer {name!r} ({kind})"
    if kind not in SUPPORTED:
        extra = " (a Lambda layer holds code, which warmstart never runs)" if kind == "Lambda" else ""
        raise _refuse(where, f"layer {name!r} is a {kind}, which warmstart cannot convert{extra}")
    base = {"name": name}
    if kind == "Dense":
        if rank != 2:
            raise _refuse(where, f"{described} is applied to images (no Flatten or global pooling before it)",
                          hint="put a Flatten or GlobalAveragePooling2D layer before the first Dense layer")
        return {**base, "type": "dense", "units": int(config["units"]), "bias": bool(config.get("use_bias", True)),
                "activation": _activation(config.get("activation"), where, name)}, 2
    if kind == "Conv2D":
        if rank != 4:
            raise _refuse(where, f"{described} is applied to vectors", hint="Conv2D layers take images")
        padding = config.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise _refuse(where, f"{described} has padding {padding!r}", hint="use padding 'valid' or 'same'")
        activation = _activation(config.get("activation"), where, name)
        if activation == "softmax":
            raise _refuse(where, f"{described} has a softmax activation")
        return {**base, "type": "conv2d", "filters": int(config["filters"]),
                "kernel": _pair(config["kernel_size"]), "strides": _pair(config.get("strides", 1)),
                "dilation": _pair(config.get("dilation_rate", 1)), "groups": int(config.get("groups", 1)),
                "padding": padding, "bias": bool(config.get("use_bias", True)), "activation": activation}, 4
    if kind == "BatchNormalization":
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        channel_axes = (-1, 1) if rank == 2 else ((-1, 3) if channels_last else (1,))
        if axis not in channel_axes:
            raise _refuse(where, f"{described} normalises axis {axis}, not the channels",
                          hint="warmstart converts BatchNormalization over the channels (axis=-1)")
        if not config.get("center", True) or not config.get("scale", True):
            raise _refuse(where, f"{described} has center or scale off",
                          hint="use BatchNormalization with center=True and scale=True (Keras' default)")
        return {**base, "type": "batch_normalization", "epsilon": float(config.get("epsilon", 1e-3)),
                "momentum": 1.0 - float(config.get("momentum", 0.99))}, rank
    if kind == "Dropout":
        return {**base, "type": "dropout", "rate": float(config.get("rate", 0.0))}, rank
    if kind == "Flatten":
        return {**base, "type": "flatten"}, 2
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        if rank != 4 or config.get("padding", "valid") != "valid":
            raise _refuse(where, f"{described} on vectors, or with padding 'same'",
                          hint="warmstart converts pooling with padding 'valid' (Keras' default) on images")
        pool = _pair(config.get("pool_size", 2))
        strides = pool if config.get("strides") is None else _pair(config["strides"])
        return {**base, "type": "max_pool" if kind == "MaxPooling2D" else "average_pool", "pool": pool,
                "strides": strides}, 4
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        if rank != 4 or config.get("keepdims", False):
            raise _refuse(where, f"{described} on vectors, or with keepdims=True",
                          hint="use global pooling with keepdims=False (Keras' default) on images")
        return {**base, "type": "global_average_pool" if kind == "GlobalAveragePooling2D" else "global_max_pool"}, 2
    if kind == "ReLU":
        if config.get("threshold") or config.get("negative_slope"):
            raise _refuse(where, f"{described} has a threshold or negative slope",
                          hint="use ReLU() or LeakyReLU() layers")
        maximum = config.get("max_value")
        if maximum not in (None, 6, 6.0):
            raise _refuse(where, f"{described} has max_value {maximum}", hint="use ReLU() or ReLU(max_value=6)")
        return {**base, "type": "activation", "activation": "relu" if maximum is None else "relu6"}, rank
    if kind == "LeakyReLU":
        slope = float(config.get("negative_slope", config.get("alpha", 0.3)))
        return {**base, "type": "activation", "activation": "leaky_relu", "negative_slope": slope}, rank
    if kind == "Softmax":
        return {**base, "type": "activation", "activation": "softmax"}, rank
    # Activation
    return {**base, "type": "activation", "activation": _activation(config.get("activation"), where, name)}, rank


# ---------------------------------------------------------------------------------------------------------------
# the PyTorch network


class SamePadding(nn.Module):
    """TensorFlow's ``padding="same"``: the output is ceil(input / stride), the odd pixel padded at the end."""

    def __init__(self, kernel: Sequence[int], strides: Sequence[int], dilation: Sequence[int]):
        super().__init__()
        self.kernel, self.strides, self.dilation = list(kernel), list(strides), list(dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(reversed(x.shape[2:]), reversed(self.kernel), reversed(self.strides),
                                 reversed(self.dilation)):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)


class KerasFlatten(nn.Module):
    """Keras' Flatten of a channels-last model flattens (H, W, C); warmstart's images are (C, H, W)."""

    def __init__(self, channels_last: bool):
        super().__init__()
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and self.channels_last:
            x = x.permute(0, 2, 3, 1)
        return x.flatten(1)


class GlobalPool(nn.Module):
    def __init__(self, reduce: str):
        super().__init__()
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if self.reduce == "average" else x.amax(dim=(2, 3))


class KerasLayer(nn.Module):
    """One Keras layer: its padding, its operation (``core``, which holds the weights) and its activation."""

    def __init__(self, core: nn.Module, activation: nn.Module | None = None, padding: nn.Module | None = None):
        super().__init__()
        self.padding = padding
        self.core = core
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding is not None:
            x = self.padding(x)
        x = self.core(x)
        return x if self.activation is None else self.activation(x)


def _activation_module(spec: dict[str, Any]) -> nn.Module | None:
    name = spec.get("activation")
    if name is None:
        return None
    if name == "softmax":
        return nn.Softmax(dim=1)
    if name == "leaky_relu" and "negative_slope" in spec:
        return nn.LeakyReLU(float(spec["negative_slope"]))
    return ACTIVATIONS[name]()


def _module(spec: dict[str, Any], channels: int, channels_last: bool) -> nn.Module:
    """The layer ``spec`` as a module, ``channels`` being its input's channels (images) or width (vectors)."""
    kind = spec["type"]
    if kind == "dense":
        return KerasLayer(nn.Linear(channels, spec["units"], bias=spec["bias"]), _activation_module(spec))
    if kind == "conv2d":
        same = spec["padding"] == "same"
        conv = nn.Conv2d(channels, spec["filters"], spec["kernel"], spec["strides"], 0, spec["dilation"],
                         spec["groups"], bias=spec["bias"])
        padding = SamePadding(spec["kernel"], spec["strides"], spec["dilation"]) if same else None
        return KerasLayer(conv, _activation_module(spec), padding)
    if kind == "batch_normalization":
        norm = nn.BatchNorm1d if spec.get("rank") == 2 else nn.BatchNorm2d
        return KerasLayer(norm(channels, eps=spec["epsilon"], momentum=spec["momentum"]))
    if kind == "dropout":
        return nn.Dropout(spec["rate"])
    if kind == "flatten":
        return KerasFlatten(channels_last)
    if kind == "max_pool":
        return nn.MaxPool2d(spec["pool"], spec["strides"])
    if kind == "average_pool":
        return nn.AvgPool2d(spec["pool"], spec["strides"])
    if kind in ("global_average_pool", "global_max_pool"):
        return GlobalPool("average" if kind == "global_average_pool" else "max")
    return KerasLayer(nn.Identity(), _activation_module(spec))


def module_name(layer: str, taken: set[str]) -> str:
    """A Keras layer name as a PyTorch module name (no dots), unique in the network."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", layer) or "layer"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


class KerasNetwork(TransferModel):
    """A converted Keras model; ``modules_by_layer`` maps each Keras layer name to its module's name."""

    modules_by_layer: dict[str, str]

    def backbone_groups(self) -> list[tuple[str, nn.Module]]:
        return [(name, module) for name, module in self.backbone.named_children()
                if any(True for _ in module.parameters())]


@MODELS.register("keras")
def keras_network(input_shape: tuple[int, ...], num_classes: int, shape: Sequence[int] = (),
                  channels_last: bool = True, layers: Sequence[dict] = (), head: dict | None = None) -> KerasNetwork:
    """A Keras model converted to PyTorch (``--from keras:FILE`` fills these options from the file's config)."""
    if not shape or head is None:
        raise TypeError("the keras architecture is built from a Keras model file: use --from keras:FILE")
    shape = [int(s) for s in shape]
    backbone = nn.Sequential()
    taken: set[str] = set()
    by_layer: dict[str, str] = {}
    probe = torch.zeros(2, *shape)  # two examples: BatchNorm in training mode needs more than one
    for spec in layers:
        rank = probe.dim()
        module = _module({**spec, "rank": rank}, probe.shape[1], channels_last)
        name = module_name(spec["name"], taken)
        backbone.add_module(name, module)
        by_layer[spec["name"]] = name
        with torch.no_grad():
            probe = module.eval()(probe)
        module.train()
    if probe.dim() != 2:
        raise TypeError(f"the layers before the head give a {probe.dim()}-D output; the head needs vectors")
    model = KerasNetwork(backbone, int(probe.shape[1]), num_classes, arch="keras",
                         arch_args={"shape": shape, "channels_last": channels_last, "layers": list(layers),
                                    "head": head},
                         input_shape=tuple(shape))
    model.modules_by_layer = by_layer
    if not head.get("bias", True):  # a Keras head without a bias: ours starts at zero, as Keras' missing one is
        with torch.no_grad():
            model.head.bias.zero_()
    return model


# ---------------------------------------------------------------------------------------------------------------
# the weights


def convert_weights(kind: str, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """One Keras layer's arrays as the PyTorch module's state (relative keys: ``weight``, ``bias``, ``running_mean``,
    ``running_var``)."""
    tensors = {role: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for role, a in arrays.items()}
    if kind == "dense":
        state = {"weight": tensors["kernel"].T.contiguous()}
    elif kind == "conv2d":
        state = {"weight": tensors["kernel"].permute(3, 2, 0, 1).contiguous()}  # HWIO -> OIHW
    else:
        return {"weight": tensors["gamma"], "bias": tensors["beta"], "running_mean": tensors["moving_mean"],
                "running_var": tensors["moving_variance"]}
    if "bias" in tensors:
        state["bias"] = tensors["bias"]
    return state


def keras_state_dict(model: KerasNetwork, file: KerasFile) -> dict[str, torch.Tensor]:
    """The converted network's full state dict (backbone and the source's head) from ``file``'s weights, each
    Keras layer found by its name (legacy H5) or its storage name (Keras 3)."""
    where = f"Keras file {file.path}"
    specs = [*model.arch_args["layers"], model.arch_args["head"]]
    state: dict[str, torch.Tensor] = {}
    for spec in specs:
        if spec["type"] not in ("dense", "conv2d", "batch_normalization"):
            continue
        stored = file.layer(spec["name"] if file.by_layer_name else spec["storage"])
        if stored is None or stored.kind != spec["type"]:
            raise WarmstartError(f"{where}: no weights for layer {spec['name']!r} ({spec['type']}) in the file",
                                 hint="save the model with Keras' model.save; the file may be damaged")
        is_head = spec is model.arch_args["head"]
        prefix = "head." if is_head else f"backbone.{model.modules_by_layer[spec['name']]}.core."
        for key, tensor in convert_weights(stored.kind, stored.arrays).items():
            state[prefix + key] = tensor
    if "head.weight" in state and "head.bias" not in state:  # a Keras head without a bias adds zero
        state["head.bias"] = torch.zeros(state["head.weight"].shape[0])
    return state


def keras_architecture(path: Path, file: KerasFile) -> dict[str, Any]:
    """The ``keras`` architecture's options for a full-model file."""
    return layer_specs(file.config, f"Keras file {path}")
