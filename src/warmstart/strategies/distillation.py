"""Knowledge distillation: a student trained to match a fine-tuned teacher's softened outputs, in the one loop.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015 (arXiv:1503.02531). With the student's
logits z_s, the teacher's z_t, the temperature T and the labels y where an example has one::

    L = (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + alpha * CE(z_s, y)

T^2 keeps the soft term's gradients on the hard term's scale whatever T is. ``alpha`` mixes in the run's own
cross-entropy (label smoothing, class weights) over the examples that have a label; an unlabelled example (label
:data:`NO_LABEL`, or an all-zero row of soft targets) contributes only the KL term.

Beyer, Zhai, Royer, Markeeva, Anil & Kolesnikov, "Knowledge distillation: A good teacher is patient and
consistent", CVPR 2022: *function matching*. The teacher runs on the fly, in eval mode and without gradients, on the
very inputs the student sees in the same step: the same augmented, mixed images (``--augment``, ``--mix mixup``),
so the student matches the teacher's function on every point of the transfer set, not on fixed targets computed
once. Unlabelled examples extend that set (``unlabeled``).

The objective is a :class:`~warmstart.strategies.Strategy` that trains every layer group and defines the step
(``compute_loss``), its batches (``training_batches``: the labelled examples and the unlabelled ones, shuffled
together) and its inputs (``training_inputs``: a text student with its own tokenizer reads its token ids, the
teacher its own, stacked as ``(examples, 2, length)`` like SetFit's pairs). So schedules, precision, gradient
accumulation, DDP, resume, trackers and progress come from :func:`warmstart.engine.loop.fit` as for fine-tuning.
It is not registered as a strategy: it needs a teacher, which ``warmstart distill`` provides.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..config import TrainConfig, check_parameter, is_number
from ..data.fit import Preprocessing
from ..engine.batches import TensorBatches
from ..errors import WarmstartError
from ..models import TransferModel
from .base import Strategy

NO_LABEL = -100  # the label of an unlabelled example: CrossEntropyLoss's default ignore_index


def labelled_rows(targets: torch.Tensor) -> torch.Tensor:
    """Which rows of ``targets`` carry a label: class indices other than :data:`NO_LABEL`, or soft-target rows
    that are not all zero (a mixed row touching an unlabelled example is zeroed, see ``data.augment``)."""
    return targets >= 0 if targets.ndim == 1 else targets.sum(1) > 0


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      loss_fn: nn.Module, *, temperature: float, alpha: float) -> torch.Tensor:
    """The mean loss of a batch (the formula in the module's docstring): the KL term over every row, the hard term
    ``loss_fn`` over the labelled rows, weighted by their share of the batch (so that each labelled example adds
    its own cross-entropy, and an unlabelled one nothing)."""
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2
    if alpha == 0:
        return soft
    labelled = labelled_rows(targets)
    if not bool(labelled.any()):
        return (1 - alpha) * soft
    hard = loss_fn(student_logits[labelled], targets[labelled]) * labelled.float().mean()
    return (1 - alpha) * soft + alpha * hard


class Distillation(Strategy):
    """Train every layer of the student to match ``teacher`` (see the module's docstring).

    ``teacher_preprocessing``: the teacher's own, when it reads other inputs than the student (a text student
    with another tokenizer); None when both read the same tensor. ``unlabeled``: examples without labels, as read
    and fitted to the student's input (images, texts), that extend the transfer set.
    """

    name = "distill"
    loss_name = "distill_loss"

    def __init__(self, teacher: TransferModel, *, temperature: float = 2.0, alpha: float = 0.5,
                 teacher_preprocessing: Preprocessing | None = None, unlabeled: np.ndarray | None = None):
        check_parameter(is_number(temperature) and temperature > 0, "temperature", "a positive number", temperature,
                        hint="pass --temperature with a positive number, e.g. 2")
        check_parameter(is_number(alpha) and 0 <= alpha <= 1, "alpha", "a number in [0, 1]", alpha,
                        hint="pass --alpha from 0 (only the teacher's soft targets) to 1 (only the labels)")
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.teacher_preprocessing = teacher_preprocessing
        self.unlabeled = unlabeled
        self.unlabeled_inputs_: torch.Tensor | None = None

    @property
    def paired(self) -> bool:
        """Whether the loop's inputs hold the student's and the teacher's versions of each example."""
        return self.teacher_preprocessing is not None

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return [name for name, _ in model.layer_groups()]

    def check(self, config: TrainConfig, *, train: tuple[torch.Tensor, torch.Tensor], distributed: bool,
              resume: bool, aligned: bool, augmented: bool) -> None:
        if self.unlabeled is not None and config.class_balance == "sampler":
            raise WarmstartError("--class-balance sampler draws examples by their class, and the unlabelled "
                                 "examples (--unlabeled) have none",
                                 hint="use --class-balance weights (it weighs the labelled examples' loss), or drop "
                                      "--unlabeled")

    def training_inputs(self, examples: np.ndarray, inputs: torch.Tensor,
                        prepare: Callable[[np.ndarray], torch.Tensor]) -> torch.Tensor:
        if self.unlabeled is not None:
            self.unlabeled_inputs_ = self._with_teacher_view(self.unlabeled, prepare(self.unlabeled))
        return self._with_teacher_view(examples, inputs)

    def _with_teacher_view(self, examples: np.ndarray, inputs: torch.Tensor) -> torch.Tensor:
        if not self.paired:
            return inputs
        # both tokenisations are padded to the data's max_length, so they stack
        return torch.stack([inputs, self.teacher_preprocessing.apply(examples)], dim=1)

    def training_batches(self, train: tuple[torch.Tensor, torch.Tensor], config: TrainConfig,
                         generator: torch.Generator) -> TensorBatches | None:
        if self.unlabeled_inputs_ is None:
            return None  # the loop's own batches (class-balanced ones included)
        extra = self.unlabeled_inputs_
        return TensorBatches(torch.cat([train[0], extra]),
                             torch.cat([train[1], torch.full((len(extra),), NO_LABEL, dtype=train[1].dtype)]),
                             config.batch_size, shuffle=True, generator=generator)

    def training_module(self, model: TransferModel) -> nn.Module:
        # the loop calls this once the student is on its device: the teacher follows it there
        self.teacher.to(next(model.parameters()).device)
        return model

    def compute_loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        student_inputs, teacher_inputs = (inputs[:, 0], inputs[:, 1]) if self.paired else (inputs, inputs)
        logits = module(student_inputs)
        with torch.no_grad():
            teacher_logits = self.teacher(teacher_inputs)
        loss = distillation_loss(logits.float(), teacher_logits.float(), targets, loss_fn,
                                 temperature=self.temperature, alpha=self.alpha)
        # with unlabelled examples in the batch, an accuracy against their placeholder labels would mean nothing
        return loss, logits if self.unlabeled is None else None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "alpha": self.alpha,
                "teacher_inputs": "own" if self.paired else "shared",
                "unlabeled_examples": 0 if self.unlabeled is None else len(self.unlabeled)}
