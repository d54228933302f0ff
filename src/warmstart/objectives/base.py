"""What a self-supervised objective is: a strategy whose step needs no labels, run by the one training loop.

An objective trains the backbone of a :class:`~warmstart.models.TransferModel` on its inputs alone (SimCLR's two
augmented views of an image, SimCSE's two dropout masks of a text, masked-token prediction). It is a
:class:`~warmstart.strategies.Strategy` and plugs into :func:`warmstart.engine.loop.fit` through the hooks declared
there (``compute_loss``, ``training_module``, ``check``, ``loss_name``), so progress, resume, DDP, precision and the
trackers work as for every run. What it adds, and only the run layer asks (``run/self_supervised.py``):

- ``kinds``: the data it trains on (``image``, ``text``);
- ``views_transform``: the batch transform that turns a batch of raw inputs into what ``compute_loss`` takes (SimCLR's
  two augmented views); None by default;
- a projection head (``projection_dim``): an MLP after the backbone, trained with it and dropped by ``finalize``, so
  the checkpoint is a plain model of the same architecture (SimCLR, section 4.2: the representation before the
  projection transfers better than after it). It is attached to the model while training, so the saved training
  state holds it and a resumed run carries on with it.

The classifier head does not train (there are no labels); a run that fine-tunes the checkpoint gives it a new one.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..config import TrainConfig, check_parameter, is_int, is_number
from ..errors import WarmstartError
from ..models import TransferModel
from ..registry import Registry
from ..strategies import Strategy

PROJECTION = "projection"  # the projection head's attribute on the model while it trains

# (x, y) -> (model inputs, targets): what the loop's batch transform is (engine/distributed.py)
Transform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def check_option(condition: bool, option: str, expected: str, given: Any) -> None:
    """An objective's option, checked when it is built; the fix names how it is set."""
    check_parameter(condition, option, expected, given,
                    hint=f"pass --objective-option {option}=VALUE with {expected} as VALUE")


def check_temperature(temperature: float) -> None:
    check_parameter(is_number(temperature) and temperature > 0, "temperature", "a positive number (e.g. 0.5)",
                    temperature, hint="pass --temperature (pretrain) or --adapt-temperature (finetune --adapt-on) "
                                      "with a positive number, e.g. 0.5 for simclr, 0.05 for simcse")


def projection_head(num_features: int, dim: int) -> nn.Module:
    """SimCLR's g: Linear, ReLU, Linear to ``dim`` (the hidden layer as wide as the features)."""
    return nn.Sequential(nn.Linear(num_features, num_features), nn.ReLU(), nn.Linear(num_features, dim))


class Embedder(nn.Module):
    """What a contrastive step runs: the backbone, then the projection head (the identity without one)."""

    def __init__(self, backbone: nn.Module, projection: nn.Module | None):
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Identity() if projection is None else projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(x))


class Objective(Strategy):
    """Base class: every backbone group trains, the classifier head does not; subclasses give the loss."""

    name = "objective"
    kinds: tuple[str, ...] = ()
    loss_name = "pretext_loss"
    projection_dim = 0  # 0: no projection head
    contrastive = True  # each example is contrasted with the rest of its batch (SimCLR, SimCSE); not MLM

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return [name for name, _ in model.backbone_groups()]

    def check_model(self, model: TransferModel, flag: str = "--objective") -> None:
        """What the objective needs of the model, checked before any folder is written or step is taken; ``flag``:
        the option that chose the objective (``pretrain --objective``, ``--adapt-objective``)."""

    def prepare(self, model: TransferModel, epochs: int = 1) -> None:
        if self.projection_dim and not hasattr(model, PROJECTION):
            device = next(model.backbone.parameters()).device
            setattr(model, PROJECTION, projection_head(model.num_features, self.projection_dim).to(device))
        super().prepare(model, epochs)

    def param_groups(self, model: TransferModel, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        groups = super().param_groups(model, lr, weight_decay)
        if hasattr(model, PROJECTION):
            params = list(getattr(model, PROJECTION).parameters())
            for suffix, members, wd in (("", [p for p in params if p.ndim > 1], weight_decay),
                                        (".no_decay", [p for p in params if p.ndim <= 1], 0.0)):
                groups.append({"params": members, "name": PROJECTION + suffix, "lr": lr, "lr_scale": 1.0,
                               "weight_decay": wd})
        return groups

    def training_module(self, model: TransferModel) -> nn.Module:
        return Embedder(model.backbone, getattr(model, PROJECTION, None))

    def finalize(self, model: TransferModel) -> None:
        if hasattr(model, PROJECTION):  # the checkpoint keeps the backbone's representation, not the projection's
            delattr(model, PROJECTION)

    def views_transform(self, normalize: Callable[[torch.Tensor], torch.Tensor],
                        generator: torch.Generator) -> Transform | None:
        """The batch transform from raw inputs to ``compute_loss``'s (None: the preprocessed inputs as they are)."""
        return None

    def check(self, config: TrainConfig, *, train: tuple[torch.Tensor, torch.Tensor], distributed: bool,
              resume: bool, aligned: bool, augmented: bool) -> None:
        # the loss of a batch of one is 0: its only other embedding is its own positive
        if self.contrastive and config.batch_size < 2:
            raise WarmstartError(f"--objective {self.name} with --batch-size {config.batch_size}: a contrastive loss "
                                 "contrasts each example with the rest of its batch, and a batch of one has none "
                                 "(the loss is 0 and nothing is learnt)",
                                 hint="pass --batch-size 2 or more (SimCLR and SimCSE use hundreds where memory "
                                      "allows)")
        if config.grad_accumulation > 1:
            # warn-and-run would silently train a different objective: each micro-batch contrasts only itself
            raise WarmstartError(
                f"--objective {self.name} with --grad-accumulation {config.grad_accumulation}: accumulating "
                "gradients is not a larger batch for a contrastive loss. Each accumulated batch contrasts its "
                f"examples only with each other ({config.batch_size} per batch, not "
                f"{config.batch_size * config.grad_accumulation}), so the negatives stay as few as one batch's",
                hint="drop --grad-accumulation and raise --batch-size; beyond one device's memory, run under DDP "
                     "(--nproc N): every process's embeddings are gathered, so each example is contrasted with "
                     "the whole global batch")
        if config.augment != "none":  # the loop's per-batch augmentation would be silently ignored here
            raise WarmstartError(f"--objective {self.name}: --augment applies to supervised training",
                                 hint="drop --augment; simclr makes its views with --objective-option augment=PRESET")
        if aligned:
            raise WarmstartError(f"--objective {self.name} does not combine with --adaptation",
                                 hint="drop --adaptation")
        if config.class_balance != "none" or config.label_smoothing or config.mix != "none":
            raise WarmstartError(f"--objective {self.name} uses no labels, so --class-balance, --label-smoothing "
                                 "and --mix do not apply", hint="drop them")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "self-supervised"}


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


def create_objective(name: str, **options: Any) -> Objective:
    """Build a registered objective with its options: ``create_objective("simclr", temperature=0.2)``."""
    return OBJECTIVES.create(name, parameter="--objective", **options)


def check_projection(projection_dim: int) -> None:
    check_option(is_int(projection_dim) and projection_dim >= 0, "projection_dim",
                 "an integer >= 0 (0: no projection head)", projection_dim)
