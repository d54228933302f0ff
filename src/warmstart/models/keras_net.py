"""A Keras model as a PyTorch network behind the backbone contract: ``--from keras:model.keras`` (or a full-model
``.h5``) rebuilds the model from its stored config and converts its weights, without TensorFlow or Keras.

Supported: Sequential models and functional models that are one chain of layers (no branches or merges), built
from Dense, Conv2D, BatchNormalization, Dropout, Flatten, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
GlobalMaxPooling2D, Activation, ReLU, LeakyReLU and Softmax, with the activations of :data:`ACTIVATIONS`. Anything
else, a Lambda layer or a custom object above all, is refused by layer name and class: the config is data, and no
code in it is ever run.

The conversion, layer by layer:

- Dense: the kernel (in, out) becomes the weight (out, in). Conv2D: HWIO kernels become OIHW (Keras stores them
  HWIO whatever the data_format); ``padding="same"`` pads as TensorFlow does (the odd pixel at the bottom and right,
  whatever the stride).
- BatchNormalization: gamma, beta, moving mean and variance; ``epsilon`` as it is; the momentum converted, as
  Keras keeps ``m * moving + (1 - m) * batch`` and PyTorch ``(1 - m) * running + m * batch``: PyTorch's is 1 - Keras'.
  (Keras updates the moving variance with the biased batch variance, PyTorch with the unbiased one: the same at
  inference, a hair apart while training.)
- Channels: warmstart's images are channels-first (N, C, H, W), so a channels-last model's input (H, W, C) becomes
  (C, H, W); a channels-first model's is taken as it is. Keras' Flatten gives an image's values in (H, W, C) order
  under either data_format (with channels_first it moves the channels last before flattening), so warmstart's
  Flatten moves the channels last too, and the next Dense's kernel rows meet the values in Keras' order.
  Every layer's own data_format is read: a model whose layers disagree (a channels_last Conv2D, then a
  channels_first pooling) is refused, as each such layer reads the axes of the same tensor differently.
- The last Dense layer is the head (its softmax is dropped: the head gives logits); everything before it is the
  backbone, one layer group per weighted layer, so every strategy applies.

The config is checked as it is read, since a ``.keras`` file is a zip anyone can edit: every field warmstart uses
must have Keras' type (a positive integer, a pair of them, a number in range, true or false), every size is worked
out before anything is allocated (no example's tensor, layer or model above :data:`MAX_ELEMENTS` values), and the
weights the config implies must be the shapes the file holds. A config that fails is refused with a
:class:`~warmstart.errors.WarmstartError` naming the file, the layer and the field.
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
from .keras_file import ROLES, KerasFile, KerasLayerWeights, storage_names

SUPPORTED = ("Dense", "Conv2D", "BatchNormalization", "Dropout", "Flatten", "MaxPooling2D", "AveragePooling2D",
             "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Activation", "ReLU", "LeakyReLU", "Softmax",
             "InputLayer")
# the layers that read an image's axes by their data_format
IMAGE_LAYERS = ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten")
# Keras' names of the activations (Keras 3's definitions; gelu is the exact one, as Keras' default)
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU, "selu": nn.SELU,
               "gelu": nn.GELU, "swish": nn.SiLU, "silu": nn.SiLU, "softplus": nn.Softplus, "softsign": nn.Softsign,
               "relu6": nn.ReLU6, "leaky_relu": lambda: nn.LeakyReLU(0.2)}
SUPPORTED_HINT = (f"warmstart converts these layers: {', '.join(SUPPORTED)}, with the activations "
                  f"{', '.join(sorted(ACTIVATIONS))}, linear (and softmax on the last layer); rebuild the model "
                  "from them, or save its weights and load them into a registered architecture "
                  "(--from keras:WEIGHTS.h5 --model mlp)")
CONFIG_HINT = ("the model config is not as Keras writes it (the file was edited or damaged): save the model again "
               "with Keras' model.save('model.keras')")
# No model warmstart can train has more values than this (8 GiB of float32) in one example's tensor, one layer's
# parameters or the whole model's: a config asking for more is damaged or crafted, and is refused before anything
# is allocated.
MAX_ELEMENTS = 2**31
DATA_FORMATS = ("channels_last", "channels_first")
_REQUIRED = object()


# ---------------------------------------------------------------------------------------------------------------
# the stored config, read into plain layer specs (JSON: they are the "keras" architecture's arch_args)


def _refuse(where: str, message: str, hint: str = SUPPORTED_HINT) -> WarmstartError:
    return WarmstartError(f"{where}: {message}", hint=hint)


def _shown(value: Any) -> str:
    """A config value as an error message quotes it: short, whatever it is."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: Any) -> str:
    names = {dict: "a JSON object", list: "a JSON array", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(config: dict[str, Any], field: str, default: Any, where: str, described: str, expected: str) -> Any:
    value = config.get(field, default)
    if value is _REQUIRED:
        raise _refuse(where, f"{described} has no field {field!r} ({expected} expected)", hint=CONFIG_HINT)
    return value


def _wrong(where: str, described: str, field: str, value: Any, expected: str) -> WarmstartError:
    return _refuse(where, f"{described}: field {field!r} is {_shown(value)}; expected {expected}", hint=CONFIG_HINT)


def _positive_int(config: dict[str, Any], field: str, where: str, described: str, default: Any = _REQUIRED) -> int:
    expected = "a positive integer"
    value = _field(config, field, default, where, described, expected)
    if not _is_int(value) or value < 1:
        raise _wrong(where, described, field, value, expected)
    return value


def _pair(config: dict[str, Any], field: str, where: str, described: str, default: Any = _REQUIRED) -> list[int]:
    expected = "a positive integer or a pair of them"
    value = _field(config, field, default, where, described, expected)
    values = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if len(values) != 2 or not all(_is_int(v) and v >= 1 for v in values):
        raise _wrong(where, described, field, value, expected)
    return values


def _number(config: dict[str, Any], field: str, default: Any, low: float, high: float, where: str,
            described: str) -> float:
    expected = f"a number from {low} to {high}" if math.isfinite(high) else f"a number of at least {low}"
    value = _field(config, field, default, where, described, expected)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise _wrong(where, described, field, value, expected)  # NaN fails the range too
    return float(value)


def _flag(config: dict[str, Any], field: str, default: bool, where: str, described: str) -> bool:
    value = config.get(field, default)
    if not isinstance(value, bool):
        raise _wrong(where, described, field, value, "true or false")
    return value


def _data_format(config: dict[str, Any], where: str, described: str) -> str:
    value = config.get("data_format")
    if value is None:  # Keras' default
        return "channels_last"
    if value not in DATA_FORMATS:
        raise _wrong(where, described, "data_format", value, "'channels_last' or 'channels_first'")
    return value


def _described(layer: dict[str, Any], index: int | None = None) -> str:
    """``layer 'conv' (Conv2D)``, the way every message names a layer (by its position when it has no name)."""
    config = layer.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    named = f"layer {str(name)!r}" if name is not None else f"layer {index}"
    return f"{named} ({layer.get('class_name')})"


def _activation(value: Any, where: str, layer: str) -> str | None:
    """The name of a stored activation; Keras 3 may store a built-in one as a small dict."""
    if isinstance(value, dict) and value.get("module") in ("keras.activations", None) \
            and isinstance(value.get("config"), str):
        value = value["config"]
    if value is None or value == "linear":
        return None
    if value == "softmax" or (isinstance(value, str) and value in ACTIVATIONS):
        return value
    raise _refuse(where, f"layer {layer!r} has the activation {_shown(value)}, which warmstart cannot convert "
                         "(custom activations are never deserialized)")


def _inbound(layer: dict[str, Any], where: str, described: str) -> list[list[str]]:
    """The names of the layers feeding each of ``layer``'s calls (Keras 3's and Keras 2's layouts)."""
    nodes = layer.get("inbound_nodes") or []
    calls = []
    try:
        for node in nodes:
            if isinstance(node, dict):  # Keras 3: {"args": [keras tensors], "kwargs": {...}}
                args = node.get("args", [])
                tensors = [a for a in args if isinstance(a, dict)]
                nested = [t for a in args if isinstance(a, list) for t in a if isinstance(t, dict)]
                calls.append([t["config"]["keras_history"][0] for t in tensors + nested
                              if t.get("class_name") == "__keras_tensor__"])
            else:  # Keras 2: [["name", node_index, tensor_index, kwargs], ...]
                calls.append([entry[0] for entry in node])
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _refuse(where, f"{described}: field 'inbound_nodes' is {_shown(nodes)}, not Keras' list of calls",
                      hint=CONFIG_HINT) from None
    return calls


def _input_shape(layers: list[dict[str, Any]], where: str) -> list[int]:
    for index, layer in enumerate(layers[:2]):
        config = layer.get("config", {})
        build = layer.get("build_config")
        built = build.get("input_shape") if isinstance(build, dict) else None
        # Keras 3's Input, Keras 2's input_shape=..., or a Keras 3 model built by its first call (build_config)
        for field, shape in (("batch_shape", config.get("batch_shape")),
                             ("batch_input_shape", config.get("batch_input_shape")),
                             ("build_config.input_shape", built)):
            if shape is None:
                continue
            expected = "a list [None, dimension, ...] of positive integer dimensions"
            if not isinstance(shape, list) or len(shape) < 2:
                raise _wrong(where, _described(layer, index), field, shape, expected)
            if any(s is None for s in shape[1:]):
                raise _refuse(where, f"its input shape {tuple(shape[1:])} has unknown dimensions",
                              hint="build the Keras model with a fixed input shape: keras.Input(shape=(28, 28, 1))")
            if not all(_is_int(s) and s >= 1 for s in shape[1:]):
                raise _wrong(where, _described(layer, index), field, shape, expected)
            return list(shape[1:])
    raise _refuse(where, "its config records no input shape",
                  hint="build the Keras model with keras.Input(shape=...) before saving it")


def model_layers(config: Any, where: str) -> tuple[list[int], list[dict[str, Any]]]:
    """The input shape (as Keras has it) and the layers, in order, of a Sequential or chain-like functional
    model's config; each layer a JSON object with a class name and a config object."""
    if not isinstance(config, dict):
        raise _refuse(where, f"its model config is {_json_type(config)}, not a JSON object with 'class_name' and "
                             "'config'", hint=CONFIG_HINT)
    kind = config.get("class_name")
    body = config.get("config")
    if kind not in ("Sequential", "Functional", "Model"):
        kind = kind if isinstance(kind, str) else _shown(kind)
        raise _refuse(where, f"the stored model is a {kind}, not a Sequential or functional model",
                      hint="save a keras.Sequential or keras.Model (functional) model")
    if isinstance(body, dict):
        layers = body.get("layers", [])
    elif isinstance(body, list):  # Keras 2's Sequential: the layers themselves
        layers = body
    else:
        raise _refuse(where, f"the model's field 'config' is {_json_type(body)}; expected a JSON object holding "
                             "'layers'", hint=CONFIG_HINT)
    if not isinstance(layers, list):
        raise _refuse(where, f"the model's field 'layers' is {_json_type(layers)}; expected a list of layers",
                      hint=CONFIG_HINT)
    if not layers:
        raise _refuse(where, "its config holds no layers", hint="save a model that has layers")
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise _refuse(where, f"layer {index} of the model's 'layers' is {_json_type(layer)}; expected a JSON "
                                 "object with 'class_name' and 'config'", hint=CONFIG_HINT)
        if not isinstance(layer.get("class_name"), str):
            raise _wrong(where, _described(layer, index), "class_name", layer.get("class_name"), "a string")
        if not isinstance(layer.get("config", {}), dict):
            raise _refuse(where, f"{_described(layer, index)}: field 'config' is {_json_type(layer['config'])}; "
                                 "expected a JSON object", hint=CONFIG_HINT)
    names = [layer.get("config", {}).get("name") for layer in layers]
    repeated = sorted({name for name in names if isinstance(name, str) and names.count(name) > 1})
    if repeated:  # Keras names each layer once; a legacy .h5's weights are found by name, so two would share one's
        raise _refuse(where, f"layer name(s) {', '.join(map(repr, repeated))} appear more than once in the model's "
                             "config", hint=CONFIG_HINT)
    shape = _input_shape(layers, where)
    if kind != "Sequential":
        previous = None
        for index, layer in enumerate(layers):
            calls = _inbound(layer, where, _described(layer, index))
            name = layer.get("config", {}).get("name")
            if previous is not None and calls != [[previous]]:
                raise _refuse(where, f"layer {name!r} ({layer.get('class_name')}) takes "
                                     f"{_shown(calls) if calls else 'no input'}, not just the layer before it "
                                     f"({previous!r}): branches and merges are not supported",
                              hint="warmstart converts models that are one chain of layers (Sequential, or "
                                   "functional without branches)")
            previous = name
    return shape, [layer for layer in layers if layer.get("class_name") != "InputLayer"]


def _image_format(layers: list[dict[str, Any]], where: str) -> tuple[str, str | None]:
    """The model's data_format, and the layer that first states it (each layer is then checked against it)."""
    for index, layer in enumerate(layers):
        config = layer.get("config", {})
        if "data_format" in config:
            return _data_format(config, where, _described(layer, index)), _described(layer, index)
    return "channels_last", None


def layer_specs(config: Any, where: str) -> dict[str, Any]:
    """The ``keras`` architecture's options for a stored model: ``shape`` (warmstart's, channels first),
    ``channels_last``, ``layers`` (one spec per layer before the head) and ``head`` (the last Dense's spec).
    Every field used is checked, and every size worked out, here (see the module's docstring)."""
    keras_shape, layers = model_layers(config, where)
    image_format = _image_format(layers, where)
    channels_last = image_format[0] == "channels_last"
    if len(keras_shape) == 3:
        shape = [keras_shape[2], keras_shape[0], keras_shape[1]] if channels_last else keras_shape
    elif len(keras_shape) == 2:  # (H, W): grey images, as warmstart holds them (1, H, W)
        shape = [1, *keras_shape]
    elif len(keras_shape) == 1:
        shape = keras_shape
    else:
        raise _refuse(where, f"its input shape {tuple(keras_shape)} is neither vectors nor images",
                      hint="warmstart converts models of vectors (D,) and images (H, W, C)")
    _check_size(shape, 0, "the input", where)
    classes = [layer["class_name"] for layer in layers]
    storage = storage_names(classes)
    specs = []
    current, total = shape, 0
    for index, (layer, store) in enumerate(zip(layers, storage)):
        # Keras holds a 2-D input (H, W) without a channel axis until it is flattened
        grey = len(keras_shape) == 2 and len(current) == 3
        spec = _spec(layer, index, current, image_format, grey, where)
        current, parameters = _output_shape(spec, current, where)
        total += parameters
        specs.append({**spec, "storage": store})
    _check_size([total], 0, "the model's parameters", where)
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


def _spec(layer: dict[str, Any], index: int, shape: list[int], image_format: tuple[str, str | None], grey: bool,
          where: str) -> dict[str, Any]:
    """One layer's spec, given the shape (warmstart's: (C, H, W) or (D,)) of one example of its input."""
    kind, config = layer["class_name"], layer.get("config", {})
    name = str(config.get("name", kind))
    described = _described(layer, index)
    if kind not in SUPPORTED:
        extra = " (a Lambda layer holds code, which warmstart never runs)" if kind == "Lambda" else ""
        raise _refuse(where, f"layer {name!r} is a {kind}, which warmstart cannot convert{extra}")
    images = len(shape) == 3
    if kind in IMAGE_LAYERS and images:
        layer_format, (model_format, first) = _data_format(config, where, described), image_format
        if layer_format != model_format:
            raise _refuse(where, f"{described} has data_format {layer_format!r}, but {first} has {model_format!r}: "
                                 "the two read the axes of the same images differently, which warmstart does not "
                                 "convert", hint="build the model with one data_format for every layer "
                                                 "(keras.config.set_image_data_format before building it, or the "
                                                 "same data_format=... on each image layer)")
        if grey and (kind != "Flatten" or layer_format == "channels_first"):
            raise _refuse(where, f"{described} is applied to the 2-D input {tuple(shape[1:])} (no channel axis), "
                                 "which warmstart does not convert",
                          hint="give the model a channel axis: keras.Input(shape=(H, W, 1))")
    base = {"name": name}
    if kind == "Dense":
        if images:
            raise _refuse(where, f"{described} is applied to images (no Flatten or global pooling before it)",
                          hint="put a Flatten or GlobalAveragePooling2D layer before the first Dense layer")
        return {**base, "type": "dense", "units": _positive_int(config, "units", where, described),
                "bias": _flag(config, "use_bias", True, where, described),
                "activation": _activation(config.get("activation"), where, name)}
    if kind == "Conv2D":
        if not images:
            raise _refuse(where, f"{described} is applied to vectors", hint="Conv2D layers take images")
        padding = config.get("padding", "valid")
        if padding not in ("valid", "same"):
            raise _refuse(where, f"{described} has padding {_shown(padding)}", hint="use padding 'valid' or 'same'")
        activation = _activation(config.get("activation"), where, name)
        if activation == "softmax":
            raise _refuse(where, f"{described} has a softmax activation")
        return {**base, "type": "conv2d", "filters": _positive_int(config, "filters", where, described),
                "kernel": _pair(config, "kernel_size", where, described),
                "strides": _pair(config, "strides", where, described, 1),
                "dilation": _pair(config, "dilation_rate", where, described, 1),
                "groups": _positive_int(config, "groups", where, described, 1), "padding": padding,
                "bias": _flag(config, "use_bias", True, where, described), "activation": activation}
    if kind == "BatchNormalization":
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        channels_last = image_format[0] == "channels_last"
        channel_axes = ((-1, 3) if channels_last else (1,)) if images else (-1, 1)
        if grey or axis not in channel_axes:
            raise _refuse(where, f"{described} normalises axis {_shown(axis)}, not the channels",
                          hint="warmstart converts BatchNormalization over the channels (axis=-1)")
        if not _flag(config, "center", True, where, described) or not _flag(config, "scale", True, where, described):
            raise _refuse(where, f"{described} has center or scale off",
                          hint="use BatchNormalization with center=True and scale=True (Keras' default)")
        return {**base, "type": "batch_normalization",
                "epsilon": _number(config, "epsilon", 1e-3, 0, math.inf, where, described),
                "momentum": 1.0 - _number(config, "momentum", 0.99, 0, 1, where, described)}
    if kind == "Dropout":
        return {**base, "type": "dropout", "rate": _number(config, "rate", 0.0, 0, 1, where, described)}
    if kind == "Flatten":
        # Keras flattens an image in (H, W, C) order under either data_format (see the module's docstring)
        return {**base, "type": "flatten", "order": "hwc"}
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        if not images or config.get("padding", "valid") != "valid":
            raise _refuse(where, f"{described} on vectors, or with padding 'same'",
                          hint="warmstart converts pooling with padding 'valid' (Keras' default) on images")
        pool = _pair(config, "pool_size", where, described, 2)
        strides = pool if config.get("strides") is None else _pair(config, "strides", where, described)
        return {**base, "type": "max_pool" if kind == "MaxPooling2D" else "average_pool", "pool": pool,
                "strides": strides}
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        if not images or config.get("keepdims", False):
            raise _refuse(where, f"{described} on vectors, or with keepdims=True",
                          hint="use global pooling with keepdims=False (Keras' default) on images")
        return {**base, "type": "global_average_pool" if kind == "GlobalAveragePooling2D" else "global_max_pool"}
    if kind == "ReLU":
        if config.get("threshold") or config.get("negative_slope"):
            raise _refuse(where, f"{described} has a threshold or negative slope",
                          hint="use ReLU() or LeakyReLU() layers")
        maximum = config.get("max_value")
        if maximum not in (None, 6, 6.0):
            raise _refuse(where, f"{described} has max_value {_shown(maximum)}",
                          hint="use ReLU() or ReLU(max_value=6)")
        return {**base, "type": "activation", "activation": "relu" if maximum is None else "relu6"}
    if kind == "LeakyReLU":
        slope = _number(config, "negative_slope", config.get("alpha", 0.3), 0, math.inf, where, described)
        return {**base, "type": "activation", "activation": "leaky_relu", "negative_slope": slope}
    activation = "softmax" if kind == "Softmax" else _activation(config.get("activation"), where, name)
    if activation == "softmax":
        # Keras' softmax runs over its axis (the last by default), warmstart's over the channels (dim 1)
        axis = config.get("axis", -1) if kind == "Softmax" else -1
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        channel_axes = ((-1, 3) if image_format[0] == "channels_last" else (1,)) if images else (-1, 1)
        if grey or axis not in channel_axes:
            raise _refuse(where, f"{described} takes the softmax over axis {_shown(axis)}, not the channels",
                          hint="take the softmax over the channels (the last axis of a channels_last model)")
    return {**base, "type": "activation", "activation": activation}


def _check_size(shape: Sequence[int], parameters: int, what: str, where: str) -> None:
    values = math.prod(shape)
    if values > MAX_ELEMENTS or parameters > MAX_ELEMENTS:
        found = f"{values:,} values per example" if values > MAX_ELEMENTS else f"{parameters:,} parameters"
        raise _refuse(where, f"{what} would hold {found}, more than any model warmstart converts "
                             f"({MAX_ELEMENTS:,}, 2**31)", hint=CONFIG_HINT)


def _output_shape(spec: dict[str, Any], shape: list[int], where: str) -> tuple[list[int], int]:
    """The shape of one example after the layer ``spec`` and the layer's parameters (BatchNorm's statistics
    counted), worked out, and checked, before anything is allocated."""
    kind = spec["type"]
    described = f"layer {spec['name']!r} ({kind})"
    parameters = 0
    if kind == "dense":
        units = int(spec["units"])
        output, parameters = [units], (shape[0] + 1) * units
    elif kind == "conv2d":
        channels, groups, filters = shape[0], int(spec["groups"]), int(spec["filters"])
        if channels % groups or filters % groups:
            raise _refuse(where, f"{described} has groups={groups}, which must divide both its {channels} "
                                 f"input channels and its {filters} filters", hint=CONFIG_HINT)
        sizes = [-(-size // s) if spec["padding"] == "same" else (size - d * (k - 1) - 1) // s + 1
                 for size, k, s, d in zip(shape[1:], spec["kernel"], spec["strides"], spec["dilation"])]
        output = [filters, *sizes]
        parameters = (math.prod(spec["kernel"]) * (channels // groups) + 1) * filters
        if spec["padding"] == "same":  # the padded input SamePadding makes: a huge dilation pads a huge image
            padded = [(out - 1) * s + (k - 1) * d + 1
                      for out, k, s, d in zip(sizes, spec["kernel"], spec["strides"], spec["dilation"])]
            _check_size([channels, *padded], 0, f"{described}'s padded input", where)
    elif kind in ("max_pool", "average_pool"):
        output = [shape[0], *[(size - k) // s + 1 for size, k, s in zip(shape[1:], spec["pool"], spec["strides"])]]
    elif kind in ("global_average_pool", "global_max_pool"):
        output = [shape[0]]
    elif kind == "flatten":
        output = [math.prod(shape)]
    else:
        output = list(shape)
        parameters = 4 * shape[0] if kind == "batch_normalization" else 0
    if min(output) < 1:
        raise _refuse(where, f"{described} would give an output of shape {tuple(output)}: its window does not fit "
                             f"its input {tuple(shape)}", hint=CONFIG_HINT)
    _check_size(output, parameters, described, where)
    return output, parameters


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
    """Keras' Flatten: an image's values in (H, W, C) order (``order="hwc"``), under either data_format;
    warmstart's images are (C, H, W). ``order="chw"`` flattens them as they are: what a channels_first model's
    Flatten did before warmstart read each layer's data_format, kept so that such checkpoints rebuild as trained."""

    def __init__(self, order: str = "hwc"):
        super().__init__()
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and self.order == "hwc":
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


def _module(spec: dict[str, Any], shape: Sequence[int], channels_last: bool) -> nn.Module:
    """The layer ``spec`` as a module, ``shape`` being one example of its input (C, H, W) or (D,)."""
    kind, channels = spec["type"], shape[0]
    if kind == "dense":
        return KerasLayer(nn.Linear(channels, spec["units"], bias=spec["bias"]), _activation_module(spec))
    if kind == "conv2d":
        same = spec["padding"] == "same"
        conv = nn.Conv2d(channels, spec["filters"], spec["kernel"], spec["strides"], 0, spec["dilation"],
                         spec["groups"], bias=spec["bias"])
        padding = SamePadding(spec["kernel"], spec["strides"], spec["dilation"]) if same else None
        return KerasLayer(conv, _activation_module(spec), padding)
    if kind == "batch_normalization":
        norm = nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d
        return KerasLayer(norm(channels, eps=spec["epsilon"], momentum=spec["momentum"]))
    if kind == "dropout":
        return nn.Dropout(spec["rate"])
    if kind == "flatten":  # a spec written before "order" existed: the order it was converted (and trained) with
        return KerasFlatten(spec.get("order") or ("hwc" if channels_last else "chw"))
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
    where = "the keras architecture's options"
    _check_size(shape, 0, "the input", where)
    backbone = nn.Sequential()
    taken: set[str] = set()
    by_layer: dict[str, str] = {}
    current, total = shape, 0
    for spec in layers:
        if spec["type"] == "dense" and len(current) != 1:
            raise TypeError(f"the keras layer {spec['name']!r} (dense) is applied to a {len(current) + 1}-D input")
        output, parameters = _output_shape(spec, current, where)  # sizes checked before anything is allocated
        total += parameters
        _check_size([total], 0, "the model's parameters", where)
        module = _module(spec, current, channels_last)
        name = module_name(spec["name"], taken)
        backbone.add_module(name, module)
        by_layer[spec["name"]] = name
        current = output
    if len(current) != 1:
        raise TypeError(f"the layers before the head give a {len(current) + 1}-D output; the head needs vectors")
    model = KerasNetwork(backbone, current[0], num_classes, arch="keras",
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


def _stored_weights(file: KerasFile, spec: dict[str, Any], where: str) -> KerasLayerWeights:
    """The file's weights of the layer ``spec``, found by its name (legacy H5) or its storage name (Keras 3)."""
    stored = file.layer(spec["name"] if file.by_layer_name else spec["storage"])
    if stored is None or stored.kind != spec["type"]:
        raise WarmstartError(f"{where}: no weights for layer {spec['name']!r} ({spec['type']}) in the file",
                             hint="save the model with Keras' model.save; the file may be damaged")
    return stored


def _weight_shapes(spec: dict[str, Any], shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """The shapes, as Keras stores them, of the weights of the layer ``spec`` given one example's input ``shape``."""
    if spec["type"] == "dense":
        shapes = {"kernel": (shape[0], spec["units"]), "bias": (spec["units"],)}
    elif spec["type"] == "conv2d":
        shapes = {"kernel": (*spec["kernel"], shape[0] // spec["groups"], spec["filters"]), "bias": (spec["filters"],)}
    else:
        return {role: (shape[0],) for role in ROLES["batch_normalization"]}
    if not spec["bias"]:
        del shapes["bias"]
    return shapes


def _check_weight_shapes(options: dict[str, Any], file: KerasFile, where: str) -> None:
    """The weights the config implies must be the ones the file holds: an edited config (units=100000000 over a
    Dense of 4) is refused here, before the network is built."""
    shape = options["shape"]
    for spec in [*options["layers"], options["head"]]:
        if spec["type"] in ROLES:
            expected = _weight_shapes(spec, shape)
            found = {role: tuple(array.shape) for role, array in _stored_weights(file, spec, where).arrays.items()}
            if found != expected:
                raise _refuse(where, f"layer {spec['name']!r} ({spec['type']}): its config makes weights of shapes "
                                     f"{_shown(expected)}, and the file holds {_shown(found)}",
                              hint="the file's config.json and its weights disagree (edited or damaged): save the "
                                   "model again with Keras' model.save")
        shape, _ = _output_shape(spec, shape, where)


def keras_state_dict(model: KerasNetwork, file: KerasFile) -> dict[str, torch.Tensor]:
    """The converted network's full state dict (backbone and the source's head) from ``file``'s weights, each
    Keras layer found by its name (legacy H5) or its storage name (Keras 3)."""
    where = f"Keras file {file.path}"
    specs = [*model.arch_args["layers"], model.arch_args["head"]]
    state: dict[str, torch.Tensor] = {}
    for spec in specs:
        if spec["type"] not in ROLES:
            continue
        stored = _stored_weights(file, spec, where)
        is_head = spec is model.arch_args["head"]
        prefix = "head." if is_head else f"backbone.{model.modules_by_layer[spec['name']]}.core."
        for key, tensor in convert_weights(stored.kind, stored.arrays).items():
            state[prefix + key] = tensor
    if "head.weight" in state and "head.bias" not in state:  # a Keras head without a bias adds zero
        state["head.bias"] = torch.zeros(state["head.weight"].shape[0])
    return state


def keras_architecture(path: Path, file: KerasFile) -> dict[str, Any]:
    """The ``keras`` architecture's options for a full-model file, checked against the weights it holds."""
    where = f"Keras file {path}"
    options = layer_specs(file.config, where)
    _check_weight_shapes(options, file, where)
    return options
