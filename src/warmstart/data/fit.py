"""The one policy that fits a dataset to a model's input, used by every command that feeds a model data it was not
built on: fine-tuning from a checkpoint or a pretrained model, ``evaluate``, ``predict``, ``shift``, export's parity
check and ``--target-unlabeled`` adaptation. Each used to fit data its own way, and only training applied the
model's recorded resize and interpolation, so the other commands could see other inputs than training did.

The policy, in order:

0. **Kind.** Texts go only to a text model and a text model takes only texts (:func:`check_kind`): the tokenizer
   would be handed pixels, or the normalisation strings (a ValueError deep in training, before).
1. **Features by name.** A CSV's feature columns are put in the order the model was trained on (the names travel
   with the checkpoint), so a file with the same columns in another order still fits.
2. **Resize.** Images are resized to the model's input size when the user asked (``--resize``) or when the model's
   recorded preprocessing names an input size (a pretrained timm or torchvision model, which always sees inputs
   at its own size), with the recorded interpolation (bilinear when none is recorded; bicubic is clamped to the
   images' range, as it overshoots).
3. **Channels.** Grey images become RGB by repetition, RGB(A) grey by the ITU-R 601 luma (as PIL's ``convert("L")``).

Text needs none of this: the model's tokenizer (its recorded preprocessing) does the fitting.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from ..errors import WarmstartError
from .dataset import DataSplits, Dataset
from .preprocess import Normalization, Tokenization, adapt_inputs, align_features

Preprocessing = Normalization | Tokenization

# the architectures whose inputs are token ids: the one answer to "is this a text model"
TEXT_ARCHITECTURES = frozenset({"hf"})


def model_kind(arch: str, input_shape: Sequence[int]) -> str:
    """``text``, ``image`` or ``vector``: the kind of data a model of ``arch`` with ``input_shape`` takes."""
    if arch in TEXT_ARCHITECTURES:
        return "text"
    return "image" if len(input_shape) == 3 else "vector"


def resizes(preprocessing: Preprocessing, asked: bool) -> bool:
    """Whether images are resized to the model's input: when asked, or when the model records its input size."""
    return asked or (isinstance(preprocessing, Normalization) and preprocessing.input_size is not None)


def interpolation(preprocessing: Preprocessing) -> str:
    """The recorded interpolation of a model's inputs (timm's are often bicubic); bilinear when none is recorded."""
    return (preprocessing.interpolation if isinstance(preprocessing, Normalization) else None) or "bilinear"


_MODEL_OF_KIND = {"text": "a text model", "image": "an image model", "vector": "a vector model"}
_DATA_OF_KIND = {"text": "texts", "image": "images", "vector": "feature vectors"}


def check_kind(dataset: Dataset, preprocessing: Preprocessing, *, model_name: str) -> None:
    """A clear error when texts meet a model of images or vectors, or a text model meets anything but texts."""
    if (preprocessing.kind == "text") == (dataset.kind == "text"):
        return
    hint = ("pass texts (a CSV, JSONL or Parquet file with a text column, --text-column naming it), or a model of "
            "this data's kind" if preprocessing.kind == "text" else
            "pass data of the model's kind, or start from a text encoder (--from minilm, or hf:NAME) for texts")
    raise WarmstartError(f"{model_name} is {_MODEL_OF_KIND[preprocessing.kind]}, but {dataset.name} holds "
                         f"{_DATA_OF_KIND[dataset.kind]}", hint=hint)


def fit_to_model(dataset: Dataset, input_shape: Sequence[int], preprocessing: Preprocessing, *, model_name: str,
                 resize: bool = False, feature_names: Sequence[str] | None = None) -> Dataset:
    """``dataset`` in the model's input: feature columns by name, then resized and channel-converted as the policy
    above says; a clear error (naming ``model_name`` and the way out) when it cannot fit."""
    check_kind(dataset, preprocessing, model_name=model_name)
    dataset = align_features(dataset, None if feature_names is None else list(feature_names), model_name)
    return adapt_inputs(dataset, tuple(input_shape), resize=resizes(preprocessing, resize), model_name=model_name,
                        interpolation=interpolation(preprocessing))


def fit_splits(splits: DataSplits, input_shape: Sequence[int], preprocessing: Preprocessing, *, model_name: str,
               resize: bool = False, feature_names: Sequence[str] | None = None) -> DataSplits:
    """Every split of a run fitted to the model's input with :func:`fit_to_model`."""
    train, val, test = (None if s is None else fit_to_model(s, input_shape, preprocessing, model_name=model_name,
                                                             resize=resize, feature_names=feature_names)
                        for s in (splits.train, splits.val, splits.test))
    return dataclasses.replace(splits, train=train, val=val, test=test)
