"""Knowledge distillation: a student trained to match a fine-tuned teacher's softened outputs, in the one loop.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015 (arXiv:1503.02531). With the student's
logits z_s, the teacher's z_t, the temperature T and the labels y where an example has one::

    L = (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + alpha * CE(z_s, y)

T^2 keeps the soft term's gradients on the hard term's scale whatever T is. ``alpha`` mixes in the run's own
cross-entropy (label smoothing, class weights) over the examples that have a label; an unlabelled example (label
:data:`NO_LABEL`, or an all-zero row of soft targets) contributes only the KL term.

Feature matching (``feature_weight`` beta > 0): the student's feature vector f_s (``forward_features``: the pooled
sentence embedding of a text encoder, the pooled map of a CNN) is also pulled towards the teacher's f_t by the cosine
embedding loss of DistilBERT (Sanh, Debut, Chaumond & Wolf, 2019, arXiv:1910.01108), which aligned the directions of
student and teacher hidden states::

    L + beta * mean(1 - cos(f_s, f_t))

Hints on intermediate representations (FitNets, Romero et al. ICLR 2015; TinyBERT, Jiao et al. 2020) carry more
of the teacher per example than its few logits; the pooled vector is the one the head reads. It needs feature
vectors of one width (a student cut from its teacher, an encoder of the same hidden size), and covers every example,
labelled or not.

Token masking (``mask_tokens`` p > 0), text only: each training text is read with a share p of its tokens (every one
but the tokenizer's special and padding tokens, each with probability p) replaced by the mask token, a new draw every
step, and the teacher reads that very copy. It is Beyer et al.'s consistent teaching for text: the transfer set grows
from the training texts alone to their neighbourhoods, on which the student matches the teacher's function, labelled
examples included (token cutoff, Shen et al. 2020, arXiv:2009.13818; TinyBERT's augmentation, Jiao et al. 2020,
made such neighbours with word replacements). It needs one tokenization for both: a student cut from its teacher, or
an encoder with the teacher's tokenizer.

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


def feature_matching_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """DistilBERT's cosine embedding loss with every pair a positive one: the batch mean of ``1 - cos(f_s, f_t)``."""
    return (1.0 - F.cosine_similarity(student_features, teacher_features, dim=1)).mean()


def mask_random_tokens(ids: torch.Tensor, probability: float, mask_id: int, keep_ids: torch.Tensor) -> torch.Tensor:
    """``ids`` with each token not in ``keep_ids`` (the special and padding tokens) replaced by ``mask_id`` with
    ``probability``; the draw comes from torch's CPU generator (the one a run saves and resumes), whatever the
    device."""
    chosen = torch.rand(ids.shape) < probability
    chosen &= ~torch.isin(ids.cpu(), keep_ids)
    return ids.masked_fill(chosen.to(ids.device), mask_id)


class FeaturesAndLogits(nn.Module):
    """The student as the loop runs it under feature matching: one forward pass returning its feature vectors and
    its logits (a module of its own, so that DistributedDataParallel sees the call)."""

    def __init__(self, model: TransferModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x)
        return features, self.model.forward_head(features)


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
    and fitted to the student's input (images, texts), that extend the transfer set. ``feature_weight``: beta of
    the feature-matching term (0: none).
    """

    name = "distill"
    loss_name = "distill_loss"

    def __init__(self, teacher: TransferModel, *, temperature: float = 2.0, alpha: float = 0.5,
                 teacher_preprocessing: Preprocessing | None = None, unlabeled: np.ndarray | None = None,
                 feature_weight: float = 0.0, mask_tokens: float = 0.0):
        check_parameter(is_number(temperature) and temperature > 0, "temperature", "a positive number", temperature,
                        hint="pass --temperature with a positive number, e.g. 2")
        check_parameter(is_number(alpha) and 0 <= alpha <= 1, "alpha", "a number in [0, 1]", alpha,
                        hint="pass --alpha from 0 (only the teacher's soft targets) to 1 (only the labels)")
        check_parameter(is_number(feature_weight) and feature_weight >= 0, "feature_weight", "a number >= 0",
                        feature_weight, hint="pass --feature-weight 0 (no feature matching) or a positive weight, "
                                             "e.g. 1")
        check_parameter(is_number(mask_tokens) and 0 <= mask_tokens < 1, "mask_tokens", "a number in [0, 1)",
                        mask_tokens, hint="pass --mask-tokens 0 (none) or the share of tokens to mask, e.g. 0.15")
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature, self.alpha, self.feature_weight = float(temperature), float(alpha), float(feature_weight)
        self.mask_tokens = float(mask_tokens)
        self.mask_id_: int | None = None
        self.keep_ids_: torch.Tensor | None = None
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

    def check_student(self, student: TransferModel, spec: str) -> None:
        """Feature matching compares vectors of one width: the student's features must be the teacher's size.
        Token masking needs a text student that reads the teacher's token ids, and its tokenizer's mask token."""
        if self.feature_weight > 0 and student.num_features != self.teacher.num_features:
            raise WarmstartError(f"--feature-weight matches the student's feature vectors to the teacher's, and "
                                 f"--student {spec} has {student.num_features} features where the teacher has "
                                 f"{self.teacher.num_features}",
                                 hint="use a student of the teacher's feature width (--student layers=K cuts the "
                                      "teacher), or --feature-weight 0")
        if self.mask_tokens > 0:
            self.mask_id_, self.keep_ids_ = self._mask_token(student, spec)

    def _mask_token(self, student: TransferModel, spec: str) -> tuple[int, torch.Tensor]:
        """The student's mask token id and the ids never masked (special tokens, padding)."""
        if student.arch != "hf":
            raise WarmstartError(f"--mask-tokens masks the tokens of texts, and --student {spec} is not a text "
                                 f"encoder ({student.arch})",
                                 hint="use --mask-tokens 0; for images, --augment (and --mix mixup) gives the teacher "
                                      "the student's augmented images")
        if self.paired:
            raise WarmstartError(f"--mask-tokens needs the student and the teacher to read the same token ids, and "
                                 f"--student {spec} has a tokenizer of its own",
                                 hint="use --student layers=K (the teacher cut to K layers), or --mask-tokens 0")
        from ..models.hf import load_tokenizer

        source = str(student.arch_args["source"])
        tokenizer = load_tokenizer(source)
        if tokenizer.mask_token_id is None:
            raise WarmstartError(f"--mask-tokens: the tokenizer of {source} has no mask token",
                                 hint="use --mask-tokens 0 with this student")
        keep = set(tokenizer.all_special_ids) | {student.backbone.pad_id}
        return int(tokenizer.mask_token_id), torch.tensor(sorted(keep))

    def training_module(self, model: TransferModel) -> nn.Module:
        # the loop calls this once the student is on its device: the teacher follows it there
        self.teacher.to(next(model.parameters()).device)
        if self.mask_tokens > 0 and self.mask_id_ is None:  # a caller that skipped check_student
            self.mask_id_, self.keep_ids_ = self._mask_token(model, model.arch)
        return FeaturesAndLogits(model) if self.feature_weight > 0 else model

    def compute_loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.mask_tokens > 0:  # one masked copy, read by both (check_student refused paired inputs)
            inputs = mask_random_tokens(inputs, self.mask_tokens, self.mask_id_, self.keep_ids_)
        student_inputs, teacher_inputs = (inputs[:, 0], inputs[:, 1]) if self.paired else (inputs, inputs)
        if self.feature_weight > 0:
            features, logits = module(student_inputs)
            with torch.no_grad():
                teacher_features = self.teacher.forward_features(teacher_inputs)
                teacher_logits = self.teacher.forward_head(teacher_features)
        else:
            logits = module(student_inputs)
            with torch.no_grad():
                teacher_logits = self.teacher(teacher_inputs)
        loss = distillation_loss(logits.float(), teacher_logits.float(), targets, loss_fn,
                                 temperature=self.temperature, alpha=self.alpha)
        if self.feature_weight > 0:
            loss = loss + self.feature_weight * feature_matching_loss(features.float(), teacher_features.float())
        # with unlabelled examples in the batch, an accuracy against their placeholder labels would mean nothing
        return loss, logits if self.unlabeled is None else None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "alpha": self.alpha,
                "feature_weight": self.feature_weight, "mask_tokens": self.mask_tokens,
                "teacher_inputs": "own" if self.paired else "shared",
                "unlabeled_examples": 0 if self.unlabeled is None else len(self.unlabeled)}
