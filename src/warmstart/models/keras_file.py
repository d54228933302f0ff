"""Reading a Keras model file without TensorFlow or Keras: its architecture (the stored JSON config) and its weights
(NumPy arrays, by layer), with h5py, zipfile and json only. Nothing is executed: the config is read as data, and
:mod:`warmstart.models.keras_net` refuses every layer it does not know (Lambda layers, custom objects) by name.

The formats, as Keras writes them (checked against files made by Keras 3.15 in ``tests/models/test_keras.py``):

- **legacy HDF5** (``.h5``): Keras 2's ``model.save``/``save_weights``, Keras 3's ``model.save("x.h5")``. A full
  model has the attribute ``model_config`` (JSON) and a group ``model_weights``; a weights-only file has the layer
  groups at its root. Either way the attribute ``layer_names`` lists the layers in order, and each layer's group
  lists its arrays in ``weight_names`` (``dense/kernel:0`` in Keras 2, ``sequential/dense/kernel`` in Keras 3).
- **Keras 3 zip** (``.keras``): ``config.json`` and ``model.weights.h5``.
- **Keras 3 weights** (``.weights.h5``, ``save_weights`` in Keras 3): ``layers/NAME/vars/0, 1, ...``. NAME is not the
  layer's own name but its class in snake case, numbered in the model's layer order (``dense``, ``dense_1``, ...;
  Keras' ``saving_lib``), and the arrays are unnamed: their order is the layer's (Dense and Conv2D: kernel, bias;
  BatchNormalization: gamma, beta, moving mean, moving variance).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WarmstartError

# the arrays of each weighted layer, in Keras' order (BatchNormalization without center or scale is refused)
ROLES = {"dense": ("kernel", "bias"), "conv2d": ("kernel", "bias"),
         "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance")}
SUFFIXES = (".h5", ".hdf5", ".keras")


@dataclass(frozen=True)
class KerasLayerWeights:
    """One weighted layer of a file: its name (the layer's own in a legacy file, Keras' class-based storage name in
    a ``.weights.h5``), its kind (``dense``, ``conv2d`` or ``batch_normalization``) and its arrays by role."""

    name: str
    kind: str
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class KerasFile:
    """What a Keras file holds: the model config (None for a weights-only file) and the weighted layers in order
    (by kind, the order of their kind in the model: see :func:`read_keras_file`)."""

    path: Path
    config: dict[str, Any] | None
    layers: tuple[KerasLayerWeights, ...]
    by_layer_name: bool  # layers are named by the model's layer names (legacy H5), not by class-based storage names

    def layer(self, name: str) -> KerasLayerWeights | None:
        return next((layer for layer in self.layers if layer.name == name), None)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise WarmstartError("reading a Keras .h5 or .keras file needs the package h5py",
                             hint="pip install h5py (or 'warmstart[keras]')") from None
    return h5py


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _names(attribute: Any) -> list[str]:
    return [_text(v) for v in np.asarray(attribute).reshape(-1).tolist()]


def _kind(name: str, arrays: list[tuple[str, np.ndarray]], path: Path) -> str:
    """A weighted layer's kind, from its arrays' names (legacy files name them) or, unnamed, from its storage name
    and shapes."""
    roles = {role for role, _ in arrays}
    if roles & {"gamma", "beta", "moving_mean", "moving_variance"}:
        return "batch_normalization"
    kernel = next((a for role, a in arrays if role in ("kernel", "0")), None)
    base = re.sub(r"_\d+$", "", name)
    if base in ROLES:
        return base
    if kernel is not None and kernel.ndim == 2:
        return "dense"
    if kernel is not None and kernel.ndim == 4:
        return "conv2d"
    raise WarmstartError(f"Keras file {path}: layer {name!r} holds weights of shapes "
                         f"{[tuple(a.shape) for _, a in arrays]}, which are not a Dense, Conv2D or "
                         "BatchNormalization layer's",
                         hint="warmstart reads Dense, Conv2D and BatchNormalization weights; other weighted layers "
                              "(Embedding, LSTM, DepthwiseConv2D, ...) are not supported")


def _layer(name: str, arrays: list[tuple[str, np.ndarray]], path: Path) -> KerasLayerWeights:
    kind = _kind(name, arrays, path)
    named = all(role in ROLES[kind] for role, _ in arrays)
    if not named:  # unnamed arrays (a .weights.h5): Keras' order
        order = ROLES[kind]
        if len(arrays) > len(order):
            raise WarmstartError(f"Keras file {path}: layer {name!r} ({kind}) holds {len(arrays)} arrays, more than "
                                 f"its {len(order)} ({', '.join(order)})",
                                 hint="save the model with Keras' model.save or save_weights")
        arrays = [(order[i], a) for i, (_, a) in enumerate(arrays)]
    return KerasLayerWeights(name, kind, {role: np.asarray(a, dtype=np.float32) for role, a in arrays})


def _legacy_layers(group: Any, path: Path) -> tuple[KerasLayerWeights, ...]:
    names = _names(group.attrs["layer_names"])
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # one HDF5 group per name: a repeated name would load one layer's weights into two layers
        raise WarmstartError(f"Keras file {path}: its attribute layer_names lists {', '.join(map(repr, repeated))} "
                             "more than once", hint="save the model again with Keras' save_weights or model.save; "
                                                    "the file was edited or damaged")
    layers = []
    for name in names:
        weights = group[name]
        arrays = [(_text(w).split("/")[-1].split(":")[0], weights[_text(w)][()])
                  for w in _names(weights.attrs.get("weight_names", []))]
        if arrays:
            layers.append(_layer(name, arrays, path))
    return tuple(layers)


def _storage_order(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("_")
    return (base, int(number)) if base and number.isdigit() else (name, 0)


def _keras3_layers(file: Any, path: Path) -> tuple[KerasLayerWeights, ...]:
    if "layers" not in file:
        raise WarmstartError(f"Keras file {path}: no 'layers' group, and no 'layer_names' attribute: not a Keras "
                             "weights file", hint="pass a file written by Keras' model.save or save_weights")
    layers = []
    # h5py lists groups alphabetically (dense_10 before dense_2): within one class, the number is the layer order
    for name in sorted(file["layers"], key=_storage_order):
        variables = file["layers"][name].get("vars")
        if variables is None or not len(variables):
            continue
        arrays = [(str(i), variables[str(i)][()]) for i in range(len(variables))]
        layers.append(_layer(name, arrays, path))
    return tuple(layers)


def storage_names(layer_classes: list[str]) -> list[str]:
    """Keras 3's storage name of each layer of a model, given their classes in the model's order: the class in snake
    case, numbered from the second of a class on (``saving_lib._get_unique_name``)."""
    used: dict[str, int] = {}
    names = []
    for class_name in layer_classes:
        name = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name)))
        name = name.lower()
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        names.append(name)
    return names


def _model_config(text: str | bytes, what: str, path: Path) -> dict[str, Any]:
    """A stored model config: a JSON object (what is in it is checked by :mod:`warmstart.models.keras_net`)."""
    config = json.loads(text)
    if not isinstance(config, dict):
        kind = "null" if config is None else f"a JSON {type(config).__name__.replace('list', 'array')}"
        raise WarmstartError(f"Keras file {path}: {what} is {kind}, not the JSON object Keras writes "
                             "(with 'class_name' and 'config')",
                             hint="the file was edited or damaged: save the model again with Keras' "
                                  "model.save('model.keras')")
    return config


def read_keras_file(path: str | Path) -> KerasFile:
    """The config and weights of ``path`` (``.h5``, ``.hdf5``, ``.keras``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WarmstartError(f"Keras file {str(path)!r}: no such file",
                             hint="pass the .h5 or .keras file written by Keras' model.save or save_weights")
    h5py = _h5py()
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path, h5py)
        with h5py.File(path, "r") as file:
            if "model_config" in file.attrs:
                config = _model_config(_text(file.attrs["model_config"]), "its attribute model_config", path)
                return KerasFile(path, config, _legacy_layers(file["model_weights"], path), True)
            if "layer_names" in file.attrs:
                return KerasFile(path, None, _legacy_layers(file, path), True)
            return KerasFile(path, None, _keras3_layers(file, path), False)
    except WarmstartError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise WarmstartError(f"Keras file {path}: cannot be read as a Keras model or weights file "
                             f"({type(exc).__name__}: {str(exc)[:200]})",
                             hint="pass a .h5 or .keras file written by Keras' model.save or save_weights") from None


def _read_zip(path: Path, h5py: Any) -> KerasFile:
    import io

    with zipfile.ZipFile(path) as archive:
        members = set(archive.namelist())
        missing = [m for m in ("config.json", "model.weights.h5") if m not in members]
        if missing:
            raise WarmstartError(f"Keras file {path}: a zip without {', '.join(missing)}, so not a .keras model",
                                 hint="pass a file written by Keras 3's model.save('model.keras')")
        config = _model_config(archive.read("config.json"), "its config.json", path)
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights), "r") as file:
        return KerasFile(path, config, _keras3_layers(file, path), False)
