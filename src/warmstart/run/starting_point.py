"""Where a run starts: a warmstart checkpoint, a pretrained model named in ``--from`` (``minilm``, ``hf:``,
``timm:``, ``torchvision:``), weights made outside warmstart (``keras:FILE``, ``torch:FILE``: loaded into ``--model``
by :mod:`warmstart.models.imported`), or an architecture trained from scratch; the data fitted to it; and its
lineage.

The one place that checks ``--model`` against ``--from``, decides whether the data fits a text or an image model,
and decides the head:

- **A new head** for the target's classes, always, unless the caller asks to keep the source's
  (``keep_head=True``). Equal class names are not the same task (integer labels 0..9 on two unrelated datasets), so
  they no longer keep the source classifier by accident. ``keep_head`` is refused when the class count or the
  class names differ. The run's notes say which was done.
- ``source_classifier=True`` leaves a checkpoint's classifier exactly as it was, whatever the target's classes:
  transferability ranking (LEEP, NCE) reads the source model's own predictions.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from ..config import DataConfig, ModelConfig, TrainConfig
from ..data import DataSplits, load_splits
from ..data.classes import names_alike
from ..data.fit import Preprocessing, fit_splits, model_kind
from ..data.preprocess import Normalization, Tokenization, fit_preprocessing, preprocessing_from_dict
from ..engine import seed_everything
from ..errors import WarmstartError
from ..io import file_sha256
from ..models import TransferModel, create_model, load_checkpoint, read_info, recorded_checkpoint, resolve_path
from ..models.imported import imported_architecture, imported_weights, load_imported
from ..models.sources import pretrained_spec

log = logging.getLogger("warmstart")

DEFAULT_MODELS = {"image": "cnn", "vector": "mlp", "text": "hf"}  # what --from none trains without --model


def data_config(data: DataConfig | str) -> DataConfig:
    """A DataConfig from a DataConfig, or from what DataConfig takes as its source (a built-in's name, a path as a
    str or a Path, data in memory)."""
    return data if isinstance(data, DataConfig) else DataConfig(data)


def model_config(model: ModelConfig | str) -> ModelConfig:
    """A ModelConfig from a ModelConfig or a plain architecture name."""
    return ModelConfig(model) if isinstance(model, str) else model


_UNLOGGED: ContextVar[bool] = ContextVar("warmstart_notes_unlogged", default=False)


def note(notes: list[str], message: str) -> None:
    """Record ``message`` in a run's notes (they go to its config.json and result) and log it (not inside
    :func:`notes_unlogged`)."""
    notes.append(message)
    if not _UNLOGGED.get():
        log.info(message)


@contextmanager
def notes_unlogged() -> Iterator[None]:
    """Notes made inside are recorded but not logged: each of a search's trials resolves the starting point that the
    search has announced once already ("new head", the stage's weights), and would repeat it trial after trial."""
    token = _UNLOGGED.set(True)
    try:
        yield
    finally:
        _UNLOGGED.reset(token)


class HeadMismatch(WarmstartError):
    """``keep_head``, and the checkpoint's head predicts other classes than the target's: a caller that keeps the
    head for its own reasons (a student cut from its teacher) says so in its own words."""

    def __init__(self, message: str, *, hint: str, source: tuple[str, ...], target: tuple[str, ...]):
        super().__init__(message, hint=hint)
        self.source, self.target = source, target


@dataclass
class StartingPoint:
    """What training (or ranking) starts from. ``model`` is mutable: training changes it in place."""

    model: TransferModel
    splits: DataSplits
    preprocessing: Preprocessing
    lineage: dict[str, Any]
    notes: list[str]
    pretrained: bool  # from a checkpoint or a pretrained model, not from scratch


def check_model_flags(checkpoint: str | Path | None, model: ModelConfig | str | None) -> ModelConfig | None:
    """``--model`` against ``--from``: an architecture for scratch; for a pretrained source (``timm:NAME``), the
    same architecture with its options; for ``keras:``/``torch:`` weights, the architecture they load into;
    refused for a checkpoint, which fixes the architecture. Returns the pretrained source's architecture and
    options, or None for a checkpoint or scratch."""
    if checkpoint is None:
        return None
    given = None if model is None else model_config(model)
    imported = imported_weights(checkpoint)
    if imported is not None:  # keras:FILE, torch:FILE: --model names the architecture the weights load into
        return imported_architecture(imported, given)
    expected = pretrained_spec(checkpoint)
    if expected is None:
        if given is not None:
            raise WarmstartError("--model names an architecture for training from scratch (--from none); "
                                 f"the checkpoint {checkpoint} already fixes it", hint="drop --model")
        return None
    if given is not None and given.name != expected.name:
        raise WarmstartError(f"--from {checkpoint} builds a {expected.name} model; --model {given.name} "
                             "cannot change that", hint="drop --model; --model-option still applies")
    return pretrained_spec(checkpoint, None if given is None else given.options)


def resolve_starting_point(checkpoint: str | Path | None, data: DataConfig, model: ModelConfig | str | None,
                           train: TrainConfig, *, keep_head: bool = False, source_classifier: bool = False,
                           input_pipeline: str | Path | None = None, strict: bool = True,
                           splits: DataSplits | None = None) -> StartingPoint:
    """The seeded splits, the model (``checkpoint`` with the head the rule above gives, a pretrained model with a
    new head, or ``model`` from scratch), the preprocessing its inputs get, its lineage and notes on what changed.
    ``input_pipeline``: from scratch, the input shape (with ``data.resize``) and normalisation of that checkpoint,
    so that a comparison with fine-tuning it differs only in the starting point (``compare``'s scratch arm).
    ``strict``: weights imported with ``keras:`` or ``torch:`` must fit the architecture exactly (False: load what
    fits, and name the rest in the notes). ``splits``: the data to start on, when not ``data``'s seeded splits
    (self-supervised pretraining's unlabelled inputs)."""
    if input_pipeline is not None and checkpoint is not None:
        raise WarmstartError("input_pipeline applies to training from scratch; a checkpoint brings its own",
                             hint="pass checkpoint=None, or drop input_pipeline")
    pretrained = check_model_flags(checkpoint, model)
    if keep_head and (checkpoint is None or pretrained is not None):
        raise WarmstartError("keep_head keeps a warmstart checkpoint's classifier, and this run starts from "
                             f"{'scratch' if checkpoint is None else checkpoint}, which has none for these classes",
                             hint="drop --keep-head, or start --from a warmstart checkpoint")
    seed_everything(train.seed)
    splits = load_splits(data, train.seed) if splits is None else splits
    if pretrained is not None and (model_kind(pretrained.name, ()) == "text") != (splits.train.kind == "text"):
        kind = "text encoder" if model_kind(pretrained.name, ()) == "text" else "image model"
        raise WarmstartError(f"{checkpoint!r}: a pretrained {kind}, but {data.source} holds {splits.train.kind} data",
                             hint="start from a checkpoint or pretrained model of the same kind, or from none")
    if checkpoint is None or pretrained is not None:
        start = _new_model(checkpoint, pretrained, data, model, splits, input_pipeline, strict)
    else:
        start = _from_checkpoint(checkpoint, data, train, splits, keep_head=keep_head,
                                 source_classifier=source_classifier)
    if splits.synthetic:
        note(start.notes, f"{splits.synthetic} of the {len(splits.train)} training examples are written from the "
                          f"class names ({data.class_name_examples} per class, {data.class_name_template!r})")
    alike = names_alike(splits.train.class_names)
    if alike:
        note(start.notes, f"{data.source}: class names that differ only in case or whitespace are separate classes: "
                          + "; ".join(", ".join(map(repr, group)) for group in alike)
                          + "; if each group is one class, write its label one way in the data")
    return start


def _new_model(checkpoint: str | Path | None, pretrained: ModelConfig | None, data: DataConfig,
               model: ModelConfig | str | None, splits: DataSplits,
               input_pipeline: str | Path | None = None, strict: bool = True) -> StartingPoint:
    notes: list[str] = []
    text = splits.train.kind == "text"
    input_shape = (data.max_length,) if text else splits.train.input_shape
    spec = pretrained or model_config(model or DEFAULT_MODELS[splits.train.kind])
    source = None if input_pipeline is None or text else read_info(input_pipeline)[1]
    net = create_model(spec.name, input_shape if source is None else source.input_shape, splits.train.num_classes,
                       **dict(spec.options))
    imported = imported_weights(checkpoint)
    if imported is not None:
        for message in load_imported(net, imported, strict=strict):
            note(notes, message)
    if source is not None:  # the input pipeline of the checkpoint this scratch run is compared with
        norm = preprocessing_from_dict(source.preprocessing)
        splits = fit_splits(splits, net.input_shape, norm, model_name=f"checkpoint {input_pipeline}",
                            resize=data.resize, feature_names=source.extra.get("feature_names"))
    else:
        norm = fit_preprocessing(splits.train, net.arch_args, data.max_length,
                                 net.pretrained_preprocessing)
    if source is None and not text and net.input_shape != tuple(input_shape):  # a pretrained model's own size
        splits = fit_splits(splits, net.input_shape, norm, model_name=f"{spec.name} model {spec.options.get('name')}",
                            resize=True)
    lineage: dict[str, Any] = {"parent": None if pretrained is None else _pretrained_lineage(checkpoint, spec, net)}
    if pretrained is not None:
        named = (f"encoder {pretrained.options['source']!r}" if model_kind(pretrained.name, ()) == "text"
                 else f"model {str(checkpoint)!r}")
        note(notes, f"starting from the pretrained {named} with a new "
                    f"{splits.train.num_classes}-class head" + _input_note(net, norm))
        if net.arch_args.get("intermediate_size") is not None:  # the hf model option, outside a distill cut
            note(notes, f"its feed-forward blocks pruned to {net.arch_args['intermediate_size']} neurons each, "
                        "chosen by their weights' magnitude alone (distill --student layers=K chooses them on the "
                        "training texts)")
    return StartingPoint(net, splits, norm, lineage, notes, pretrained=pretrained is not None)


def _from_checkpoint(checkpoint: str | Path, data: DataConfig, train: TrainConfig, splits: DataSplits, *,
                     keep_head: bool, source_classifier: bool) -> StartingPoint:
    notes: list[str] = []
    net, parent = load_checkpoint(checkpoint)
    norm = preprocessing_from_dict(parent.preprocessing)
    if isinstance(norm, Tokenization) and norm.max_length != data.max_length:
        # the data's --max-length is the run's, as config.json records it: the tokenizer stays the checkpoint's
        note(notes, f"texts are cut to {data.max_length} tokens (--max-length); checkpoint {checkpoint} cut them to "
                    f"{norm.max_length}")
        norm = Tokenization(norm.source, data.max_length)
        net.input_shape = (data.max_length,)
    splits = fit_splits(splits, net.input_shape, norm, model_name=f"checkpoint {checkpoint}", resize=data.resize,
                        feature_names=parent.extra.get("feature_names"))
    source, target = tuple(parent.class_names), splits.train.class_names
    described = (f"the checkpoint predicts {len(source)} classes ({', '.join(source)}); the target has "
                 f"{len(target)} ({', '.join(target)})")
    if keep_head:
        if source != target:
            differ = "class count" if len(source) != len(target) else "class names"
            raise HeadMismatch(f"keep_head: the source head cannot serve the target, the {differ} differ: "
                               f"{described}", hint="drop --keep-head: the target then gets a new head",
                               source=source, target=tuple(target))
        note(notes, f"kept the source head (keep_head): {described}")
    elif not source_classifier:
        torch.manual_seed(train.seed)
        net.reset_classifier(splits.train.num_classes)
        same = " (the same names, but not necessarily the same task)" if source == target else ""
        note(notes, f"new head: {described}{same}, so the classifier was re-initialised; pass --keep-head to keep "
                    "the source's")
    # the path made absolute, so that a replay (--config RUN/config.json) or a resume from another directory finds
    # it; the weights' checksum: a resume refuses a source replaced at the same path (l2-sp anchors to its weights)
    lineage = {"parent": {"checkpoint": recorded_checkpoint(checkpoint),
                          "sha256": file_sha256(resolve_path(checkpoint)),
                          "data": parent.extra.get("data"),
                          "class_names": list(parent.class_names), "arch": parent.arch,
                          # a source pretrained without labels: how (pretrain --objective, finetune --adapt-on)
                          **({"self_supervised": parent.extra["self_supervised"]}
                             if "self_supervised" in parent.extra else {})},
               "head": "kept" if keep_head or source_classifier else "new"}
    return StartingPoint(net, splits, norm, lineage, notes, pretrained=True)


def _pretrained_lineage(checkpoint: str | Path, spec: ModelConfig, net: TransferModel) -> dict[str, Any]:
    """``{"pretrained": "timm:resnet18", "weights": where they came from}``; an encoder's source as it was named."""
    if model_kind(spec.name, ()) == "text":  # as the model records it: a local folder made absolute, so that a
        return {"pretrained": str(net.arch_args["source"])}  # replay from another directory finds it
    weights = net.weights_source
    imported = imported_weights(checkpoint)  # keras:FILE, torch:FILE: the file made absolute, as a parent run's is
    return {"pretrained": str(checkpoint if imported is None else imported),
            **({} if weights is None else {"weights": weights})}


def _input_note(net: TransferModel, norm: Preprocessing) -> str:
    if not isinstance(norm, Normalization) or norm.input_size is None:
        return ""
    return (f"; inputs resized to {'x'.join(map(str, net.input_shape[1:]))} ({norm.interpolation}) and normalised "
            f"with its mean {[round(m, 4) for m in norm.mean]} and std {[round(v, 4) for v in norm.std]}")
