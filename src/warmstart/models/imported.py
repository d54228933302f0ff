"""Weights from outside warmstart: ``--from keras:FILE`` (a Keras ``.h5`` or ``.keras`` file) and ``--from
torch:FILE`` (a PyTorch state dict in a ``.pt``, ``.pth`` or ``.safetensors`` file), loaded into a registered
architecture.

The architecture:

- ``keras:`` a full model (``model.save``): the ``keras`` architecture rebuilt from the file's config
  (:mod:`warmstart.models.keras_net`), unless ``--model`` names another, into which the weights then load as for a
  weights-only file. A weights-only file (``save_weights``) needs ``--model`` (``--model mlp --model-option
  hidden=[64,32]``): its Dense, Conv2D and BatchNormalization weights load into the architecture's Linear, Conv2d
  and BatchNorm modules of the same kind, in order, each shape checked.
- ``torch:`` always ``--model``. The state dict is unwrapped (``{"state_dict": ...}``, ``{"model": ...}``), stripped of
  wrappers' prefixes (``module.``, ``model.``, ``_orig_mod.``) and matched by name: warmstart's own key layout, or
  the backbone's bare keys (a timm or torchvision model's own state dict, for ``--model timm``/``torchvision``),
  whose classifier becomes the head's. Without a single name in common (a user's own ``nn.Sequential``), tensors
  are matched by position when every shape agrees, and the notes say so.

Either way the target gets a new head (the source's classifier is reported, not loaded), ``strict`` (the default)
refuses a missing, unexpected or misshapen tensor, naming it, and ``strict=False`` loads what fits and names the
rest. Inputs reach the model as the data holds them (no normalisation): the file does not say what the source model
was fed, so give the data as it was (pixels in [0, 1] as warmstart loads them, features as they were).
Nothing is unpickled (``torch.load(weights_only=True)``), and nothing of a Keras file is executed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import WarmstartError, first_line
from .base import TransferModel
from .checkpoint import check_weight_values

FORMATS = ("keras", "torch")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
STATE_KEYS = ("state_dict", "model_state_dict", "model", "state_dict_ema")


@dataclass(frozen=True)
class ImportedWeights:
    """A ``--from keras:FILE`` or ``--from torch:FILE`` source."""

    format: str
    file: Path

    def __str__(self) -> str:
        return f"{self.format}:{self.file}"


def imported_weights(checkpoint: Any) -> ImportedWeights | None:
    """The imported source ``checkpoint`` names, or None for anything else (a checkpoint, ``timm:``, ...)."""
    if not isinstance(checkpoint, str):
        return None
    prefix, sep, name = checkpoint.partition(":")
    if not sep or prefix not in FORMATS:
        return None
    if not name:
        raise WarmstartError(f"--from {checkpoint!r}: no file named after {prefix}:",
                             hint=f"e.g. --from {prefix}:{'model.keras' if prefix == 'keras' else 'model.pt'}")
    file = Path(name).expanduser()
    if not file.is_file():
        kinds = ".h5 or .keras" if prefix == "keras" else ".pt, .pth or .safetensors"
        raise WarmstartError(f"--from {checkpoint}: no such file {str(file)!r}", hint=f"pass an existing {kinds} file")
    # absolute, as a run records it (lineage, preprocessing): a replay or resume from another directory finds it
    return ImportedWeights(prefix, Path(os.path.abspath(file)))


def imported_architecture(source: ImportedWeights, given: ModelConfig | None) -> ModelConfig:
    """The architecture ``source``'s weights load into: ``given`` (``--model``), or a full Keras file's own."""
    if given is not None:
        return given
    if source.format == "keras":
        from .keras_file import read_keras_file
        from .keras_net import keras_architecture

        file = read_keras_file(source.file)
        if file.config is not None:
            return ModelConfig("keras", keras_architecture(source.file, file))
        raise WarmstartError(f"--from {source}: a weights-only Keras file (save_weights): it holds no architecture",
                             hint="name the architecture its weights fit, e.g. --model mlp --model-option "
                                  "hidden=[64,32] for Dense 64 -> 32 -> classes; or save the whole model with "
                                  "model.save('model.keras')")
    raise WarmstartError(f"--from {source}: a PyTorch state dict holds no architecture",
                         hint="name it: --model mlp (with --model-option hidden=[...]), --model cnn, --model timm "
                              "--model-option name=resnet18, ... (`warmstart list models`)")


def load_imported(net: TransferModel, source: ImportedWeights, *, strict: bool = True) -> list[str]:
    """Load ``source``'s weights into ``net``'s backbone (its head stays new) and return notes saying what was
    done; ``net`` then expects inputs as they are (identity normalisation)."""
    notes: list[str] = []
    where = f"--from {source}"
    if source.format == "keras":
        state, origin = _keras_state(net, source)
    else:
        state, origin = _torch_state(net, source, notes)
    _load(net, state, origin, where, strict, notes)
    _identity_preprocessing(net, str(source))
    return notes


def _identity_preprocessing(net: TransferModel, source: str) -> None:
    shape = net.input_shape
    channels = shape[0]  # an image's channels, or a vector's features
    preprocessing: dict[str, Any] = {"kind": "image" if len(shape) == 3 else "vector", "mean": [0.0] * channels,
                                     "std": [1.0] * channels, "source": source}
    if len(shape) == 3:  # a converted model has a fixed input: images are resized to it
        preprocessing.update(input_size=list(shape), interpolation="bilinear")
    net.pretrained_preprocessing = preprocessing
    net.weights_source = source


# ---------------------------------------------------------------------------------------------------------------
# Keras


def _keras_state(net: TransferModel, source: ImportedWeights) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from .keras_file import read_keras_file
    from .keras_net import KerasNetwork, convert_weights, keras_state_dict

    file = read_keras_file(source.file)
    if isinstance(net, KerasNetwork):
        state = keras_state_dict(net, file)
        return state, {}
    # a weights-only file, or a full one into another architecture: each kind of layer in order
    targets: dict[str, list[tuple[str, nn.Module]]] = {"dense": [], "conv2d": [], "batch_normalization": []}
    for path, module in net.named_modules():
        kind = ("dense" if isinstance(module, nn.Linear) else "conv2d" if isinstance(module, nn.Conv2d)
                else "batch_normalization" if isinstance(module, nn.modules.batchnorm._BatchNorm) else None)
        if kind is not None:
            targets[kind].append((path, module))
    state: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for kind, modules in targets.items():
        layers = [layer for layer in file.layers if layer.kind == kind]
        for (path, _), layer in zip(modules, layers):
            for key, tensor in convert_weights(kind, layer.arrays).items():
                state[f"{path}.{key}"] = tensor
                origin[f"{path}.{key}"] = f"Keras layer {layer.name!r} ({kind})"
        for layer in layers[len(modules):]:
            state[f"<unmatched>.{layer.name}"] = torch.empty(0)
            origin[f"<unmatched>.{layer.name}"] = f"Keras layer {layer.name!r} ({kind}: no {kind} module left)"
    return state, origin


# ---------------------------------------------------------------------------------------------------------------
# PyTorch


def read_state_dict(file: Path, where: str) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` file (weights only: nothing is unpickled),
    unwrapped from a training checkpoint's dict and stripped of wrappers' prefixes."""
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(file))
        else:
            state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unreadable file is the user's to fix)
        raise WarmstartError(f"{where}: {file} cannot be read as a PyTorch state dict "
                             f"({type(exc).__name__}: {first_line(exc)})",
                             hint="save it with torch.save(model.state_dict(), path) or safetensors' save_file; "
                                  "a pickled whole model (torch.save(model)) is never loaded") from None
    for _ in range(3):  # {"state_dict": {...}}, as timm's and Lightning's training checkpoints hold it
        if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
            inner = next((state[k] for k in STATE_KEYS if isinstance(state.get(k), dict)), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = type(state).__name__ if not isinstance(state, dict) else f"a dict with keys {list(state)[:8]}"
        raise WarmstartError(f"{where}: {file} holds {found}, not a state dict of tensors",
                             hint="save model.state_dict() (or a dict with it under 'state_dict')")
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                stripped = True
    return state


def _bookkeeping(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _torch_state(net: TransferModel, source: ImportedWeights,
                 notes: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    stored = read_state_dict(source.file, f"--from {source}")
    expected = net.state_dict()
    if any(k.startswith("backbone.") for k in stored):  # warmstart's own layout
        return stored, {}
    prefixed = {"backbone." + k: v for k, v in stored.items()}
    if any(k in expected for k in prefixed):  # the backbone's own keys: a timm or torchvision model's state dict
        mapped = {k: v for k, v in prefixed.items() if k in expected}
        rest = {k[len("backbone."):]: v for k, v in prefixed.items() if k not in expected}
        mapped.update(_classifier_as_head(rest, net))
        return mapped, {}
    if source.file.suffix == ".safetensors":  # safetensors sorts its keys: put them back in module order
        stored = dict(sorted(stored.items(), key=_module_order))
        ambiguous = _order_unknown([k for k in stored if not _bookkeeping(k)])
        if ambiguous:
            raise WarmstartError(f"--from {source}: no key names in common with the {net.arch} architecture, and a "
                                 "safetensors file does not keep the order of its tensors, so they cannot be matched "
                                 f"by position: the names {ambiguous[0]!r} and {ambiguous[1]!r} do not say which "
                                 "module comes first", hint="save the weights with torch.save(model.state_dict(), "
                                                            "'model.pt'), which keeps their order, or name them "
                                                            "as the warmstart model does (backbone.0.weight, ...)")
    return _by_position(stored, expected, net, source, notes), {}


def _order_unknown(keys: list[str]) -> tuple[str, str] | None:
    """Two modules whose order their names do not give, or None: after sorting by :func:`_module_order`, neighbours
    must first differ at a numbered level (``layers.2`` before ``layers.10``); ``b_first`` and ``a_second`` are
    sorted by the alphabet, whatever order the model ran them in."""
    modules = list(dict.fromkeys(k.rpartition(".")[0] for k in keys))
    for before, after in zip(modules, modules[1:]):
        a, b = before.split("."), after.split(".")
        level = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        if level >= min(len(a), len(b)) or not (a[level].isdigit() and b[level].isdigit()):
            return before, after
    return None


LEAF_ORDER = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _module_order(item: tuple[str, torch.Tensor]) -> tuple:
    """``2.bias`` after ``2.weight`` and before ``10.weight``: numbered modules by number, a module's tensors in
    PyTorch's order."""
    module, _, leaf = item[0].rpartition(".")
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in module.split("."))
    return parts, LEAF_ORDER.index(leaf) if leaf in LEAF_ORDER else len(LEAF_ORDER), leaf


def _classifier_as_head(rest: dict[str, torch.Tensor], net: TransferModel) -> dict[str, torch.Tensor]:
    """The keys the backbone lacks: the source's classifier (a weight (classes, features) and its bias, under one
    module: ``fc``, ``classifier.1``, ``head``) becomes ``head.*``; anything else stays, to be reported."""
    out = dict(rest)
    for key, weight in rest.items():
        module, _, leaf = key.rpartition(".")
        bias = rest.get(f"{module}.bias")
        if leaf == "weight" and weight.dim() == 2 and weight.shape[1] == net.num_features and bias is not None \
                and bias.shape == weight.shape[:1]:
            del out[key], out[f"{module}.bias"]
            out["head.weight"], out["head.bias"] = weight, bias
            break
    return out


def _by_position(stored: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], net: TransferModel,
                 source: ImportedWeights, notes: list[str]) -> dict[str, torch.Tensor]:
    """No name in common: the tensors in order, when every shape of the backbone agrees (the head may differ)."""
    theirs = [(k, v) for k, v in stored.items() if not _bookkeeping(k)]
    ours = [(k, v) for k, v in expected.items() if not _bookkeeping(k)]
    body = [k for k, _ in ours if not k.startswith("head.")]
    fits = len(theirs) >= len(body) and all(theirs[i][1].shape == expected[body[i]].shape for i in range(len(body)))
    if not fits:
        first = next((i for i in range(min(len(theirs), len(body))) if theirs[i][1].shape != expected[body[i]].shape),
                     min(len(theirs), len(body)))
        theirs_at = f"{theirs[first][0]} {tuple(theirs[first][1].shape)}" if first < len(theirs) else "nothing"
        ours_at = f"{body[first]} {tuple(expected[body[first]].shape)}" if first < len(body) else "nothing"
        raise WarmstartError(f"--from {source}: no key names in common with the {net.arch} architecture, and the "
                             f"tensors do not line up by position either: tensor {first} is {theirs_at} in the file, "
                             f"{ours_at} in the model (its keys: {', '.join(k for k, _ in ours[:6])}, ...)",
                             hint="check --model and --model-option (e.g. hidden=[64,32]) against the saved model")
    mapped = {body[i]: theirs[i][1] for i in range(len(body))}
    rest = theirs[len(body):]
    if len(rest) == 2 and rest[0][1].dim() == 2 and rest[1][1].dim() == 1:
        mapped["head.weight"], mapped["head.bias"] = rest[0][1], rest[1][1]
    else:
        mapped.update({k: v for k, v in rest})
    notes.append(f"--from {source}: no key names in common with the {net.arch} architecture; its {len(body)} "
                 "backbone tensors were matched by position, every shape agreeing "
                 f"({theirs[0][0]} -> {body[0]}, ..., {theirs[len(body) - 1][0]} -> {body[-1]})")
    return mapped


# ---------------------------------------------------------------------------------------------------------------


def _load(net: TransferModel, state: dict[str, torch.Tensor], origin: dict[str, str], where: str, strict: bool,
          notes: list[str]) -> None:
    """Load ``state`` into ``net``'s backbone, checking every key and shape; the source's head is reported."""
    expected = net.state_dict()
    named = lambda k: origin.get(k, k)  # noqa: E731
    head = sorted(k for k in state if k.startswith("head."))
    body = {k: v for k, v in state.items() if not k.startswith("head.")}
    unexpected = [k for k in body if k not in expected]
    missing = [k for k in expected if not k.startswith("head.") and k not in body and not _bookkeeping(k)]
    wrong = [f"{named(k)} {tuple(v.shape)} for {k} {tuple(expected[k].shape)}" for k, v in body.items()
             if k in expected and v.shape != expected[k].shape]
    problems = ([f"missing from the file: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"]
                if missing else []) + \
               ([f"not in the {net.arch} model: {', '.join(map(named, unexpected[:8]))}"] if unexpected else []) + \
               ([f"shapes differ: {'; '.join(wrong[:5])}"] if wrong else [])
    if problems and strict:
        raise WarmstartError(f"{where}: the weights do not fit the {net.arch} architecture: " + "; ".join(problems),
                             hint="check --model and --model-option against the saved model, or pass --no-strict "
                                  "(strict=False) to load what fits and train the rest from its initialisation")
    loadable = {k: v for k, v in body.items() if k in expected and v.shape == expected[k].shape}
    if not loadable:
        raise WarmstartError(f"{where}: none of its tensors fits the {net.arch} architecture",
                             hint="check --model and --model-option against the saved model")
    check_weight_values(loadable, expected, where, hint="save the source model's trained weights again; a file with "
                                                         "NaN or integer weights holds no usable model")
    net.load_state_dict(loadable, strict=False)
    notes.append(f"{where}: loaded {len(loadable)} tensors into the {net.arch} backbone"
                 + (f"; the source's classifier ({', '.join(head)}) is not loaded: the target gets a new head"
                    if head else ""))
    if problems:
        notes.append(f"{where}: not strict, so these were skipped: " + "; ".join(problems))
