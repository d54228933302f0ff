"""The unlabelled target of a run with domain adaptation: loaded, checked and preprocessed once, then handed to the
method (its loss module during training, or its after-training step)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from ..config import DataConfig, to_dict
from ..errors import WarmstartError
from ..models import TransferModel
from .alignment import FeatureAlignment

log = logging.getLogger("warmstart")


def _note(notes: list[str], message: str) -> None:
    notes.append(message)
    log.info(message)
from .base import Adaptation, create_adaptation


def check_adaptation(target_unlabeled: Any, adaptation: "str | Adaptation | None", resume: bool) -> Adaptation | None:
    """The adaptation method to run, or None; a clear error when only one of the two settings is given."""
    if adaptation is None and target_unlabeled is None:
        return None
    if target_unlabeled is None:
        raise WarmstartError("--adaptation needs unlabelled target data to adapt to",
                             hint="add --target-unlabeled DATA (its inputs are used, never its labels)")
    if adaptation is None:
        raise WarmstartError("--target-unlabeled is given, but no --adaptation method to use it",
                             hint="add --adaptation dann, coral or adabn (`warmstart list adaptations`)")
    if resume:
        raise WarmstartError("--resume is not supported with --adaptation", hint="start the run again without --resume")
    return create_adaptation(adaptation) if isinstance(adaptation, str) else adaptation


@dataclass
class TargetAdaptation:
    method: Adaptation
    data: DataConfig
    inputs: torch.Tensor  # preprocessed as the model's inputs
    name: str

    @classmethod
    def load(cls, method: Adaptation, data: DataConfig, model: TransferModel, preprocessing: Any,
             strategy: Any) -> "TargetAdaptation":
        """The train split's inputs of ``data``, fitted to the model's input (:mod:`warmstart.data.fit`) and
        preprocessed; clear errors for an empty set, another kind of data, or another input shape."""
        from ..data import load_split
        from ..data.fit import fit_to_model, model_kind, resizes

        if getattr(strategy, "uses_feature_cache", False) and method.aligns_features:
            raise WarmstartError(f"--adaptation {method.name} aligns the backbone's features, but --strategy "
                                 f"{strategy.name} keeps the backbone frozen and trains the head on cached features",
                                 hint="use a strategy that trains the backbone (full, lp-ft, ...), or adabn")
        try:
            dataset = load_split(data, "train")
        except WarmstartError as exc:  # say which of the run's datasets it is
            raise WarmstartError(f"--target-unlabeled: {exc.message}", hint=exc.hint) from None
        if len(dataset) == 0:
            raise WarmstartError(f"--target-unlabeled {data.source!r} holds no examples",
                                 hint="pass a dataset with unlabelled target inputs")
        kind = model_kind(model.arch, model.input_shape)
        if dataset.kind != kind:
            raise WarmstartError(f"--target-unlabeled {data.source!r} holds {dataset.kind} data, but the model "
                                 f"takes {kind} data", hint="adapt to target data of the source's kind")
        if dataset.kind != "text" and dataset.input_shape != tuple(model.input_shape) and \
                not resizes(preprocessing, data.resize):
            found, wanted = ("x".join(map(str, s)) for s in (dataset.input_shape, model.input_shape))
            raise WarmstartError(f"--target-unlabeled {data.source!r} has inputs of shape {found}, but the model "
                                 f"(and its source data) take {wanted}",
                                 hint="pass --resize to resize the target images to the model's input, or use "
                                      "target data of the source's shape")
        # the model's own input pipeline (its recorded resize and interpolation), as the labelled data gets it
        dataset = fit_to_model(dataset, model.input_shape, preprocessing, model_name="the model", resize=data.resize)
        return cls(method, data, preprocessing.apply(dataset.x), dataset.name)

    def alignment(self, model: TransferModel, seed: int) -> FeatureAlignment | None:
        """The loss-module side for the training loop (None for AdaBN, which only acts after training); the
        target batches draw from their own generator, seeded from the run's seed."""
        if not self.method.aligns_features:
            return None
        return FeatureAlignment(self.method, model, self.inputs, torch.Generator().manual_seed(seed + 1))

    def after_training(self, model: TransferModel, device: torch.device, notes: list[str]) -> None:
        self.method.after_training(model, self.inputs, device)
        if self.method.name == "adabn":
            _note(notes, f"adabn: BatchNorm statistics re-estimated on {len(self.inputs)} unlabelled target "
                         f"inputs ({self.name})")

    def describe(self) -> dict[str, Any]:
        return {"method": self.method.describe(), "target_unlabeled": to_dict(self.data),
                "target_examples": len(self.inputs), "target_name": self.name}
