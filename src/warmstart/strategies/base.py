"""What a fine-tuning strategy is: a rule for which layer groups train, and how, phrased on the backbone contract.

A strategy sees only :class:`~warmstart.models.TransferModel`'s ``layer_groups()``; it never names layers of a
particular architecture. Its parameter groups are data (name, parameters, ``lr_scale``, weight decay) and the
scheduler multiplies each group's own learning rate, so per-group scales survive every schedule. A strategy may
also add a regulariser to the training loss (``penalty``), as L2-SP does.

Options are keyword arguments of the strategy's constructor, checked when it is built:
``create_strategy("layerwise-lr", layer_decay=0.7)``.

The training loop (engine/loop.py) and the trainer around it (engine/trainer.py) ask a strategy only what is
declared here, each with its default: what a step minimises (``compute_loss``, on the module ``training_module``
names), where its batches come from (``training_batches``), how the head is solved (``head_solver``: by gradient
steps in the loop, or fitted by L-BFGS after every epoch), whether the backbone runs once into a feature cache
(``feature_cache``, ``feature_views``), whether the head is fitted before training starts (``probe_first``), and
what it refuses (``check``, the one place a strategy says no). A new strategy therefore touches only this package.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig, check_parameter
from ..data.fit import model_kind
from ..models import TransferModel
from ..registry import Registry, option_names
from ..search_space import SearchParam

# (inputs) -> inputs: a deterministic view of the training inputs (an augmented copy) whose features are cached
ViewTransform = Callable[[torch.Tensor], torch.Tensor]


def check_option(condition: bool, option: str, expected: str, given: Any) -> None:
    """:func:`~warmstart.config.check_parameter` for a strategy's own option, whose fix names how it is set:
    ``--strategy-option NAME=VALUE`` (a strategy's options have no flags of their own)."""
    check_parameter(condition, option, expected, given,
                    hint=f"pass --strategy-option {option}=VALUE with {expected} as VALUE")


# The settings only gradient steps read: inert for a head fitted in closed form (Strategy.unused_settings).
GRADIENT_SETTINGS = ("lr", "epochs", "optimizer", "weight_decay", "momentum", "nesterov", "schedule", "step_size",
                     "gamma", "warmup_epochs", "grad_clip_norm", "label_smoothing", "class_balance", "mix", "mix_alpha",
                     "head_lr_scale")


class Strategy:
    """Base class: subclasses say which groups train in each epoch (``trainable``) and may scale their rates.

    Phases are a pure function of the epoch number, so a run resumed at epoch e is in the same phase as the run
    that was interrupted there. Every group that trains in any phase is in the optimizer from the start; a frozen
    group's parameters get no gradient, and PyTorch's optimizers skip parameters without one, so its optimizer
    state waits untouched until its phase begins.

    Within a group that trains, ``trains_parameter`` may leave some parameters frozen (BitFit trains only the
    biases); after training, ``finalize`` may fold what the strategy added back into the model (LoRA merges its
    adapters), so the checkpoint is a plain model of the same architecture.
    """

    name = "base"
    # None: the backbone runs on every batch. "memory" or "disk": the backbone is frozen, so the trainer runs it
    # once over the data and only the head trains, on the cached features ("disk" keeps them for later runs).
    feature_cache: str | None = None
    # "loop": the head trains by gradient steps like every other group. "lbfgs": after each epoch's steps the head
    # is fitted to convergence as an L2 logistic regression on the backbone's embeddings (engine/logistic.py), with
    # the inverse strength C ("auto": chosen by cross-validation).
    head_solver = "loop"
    C: float | str = "auto"
    # True: before training, the head is fitted by L-BFGS on the frozen backbone's features (LP-FT's probe).
    probe_first = False
    # the name of the epoch's mean training loss in the logs
    loss_name = "train_loss"
    head_lr_scale = 1.0
    # The learning rate of a run given none (TrainConfig.lr=None, no --lr): 1e-3 suits a new head and the small
    # networks warmstart pretrains (Adam's own default). A pretrained transformer encoder's weights move at 2e-5 to
    # 5e-5 (BERT's fine-tuning grid, Devlin et al. 2019; the Hugging Face Trainer's 5e-5): at 1e-3 full fine-tuning
    # wrecks it. Strategies that train the encoder differently set their own, as benchmarked in
    # benchmarks/results/text_*.md.
    base_lr = 1e-3
    transformer_lr = 5e-5
    # What `warmstart tune` searches (search_space.py): training fields and this strategy's options, as data. The
    # rate and the epochs range around the run's own (a tenth to ten times the rate, half to twice the epochs).
    # A strategy adds its options' ranges: `search_space = Strategy.search_space + (SearchParam(...),)`.
    search_space: tuple[SearchParam, ...] = (
        SearchParam("lr", 0.1, 10.0, log=True, relative=True),
        SearchParam("weight_decay", 1e-6, 1e-1, log=True),
        SearchParam("epochs", 0.5, 2.0, integer=True, relative=True),
        SearchParam("warmup_epochs", 0, 2, integer=True),
        SearchParam("label_smoothing", 0.0, 0.2),
        SearchParam("augment", choices=("none", "light", "strong"), kinds=("image",)),
    )

    def unused_settings(self) -> dict[str, str]:
        """The settings this strategy, with its options, never reads, each with why: a search over one would spend
        its budget on a setting that changes nothing, and report it as part of the winning recipe (``tune``
        refuses them in a ``--space`` file). A head fitted in closed form reads none of the gradient loop's."""
        if self.trains_by_gradient:
            return {}
        why = f"{self.name} with solver={self.head_solver} fits its head in closed form, with no gradient step"
        return {name: why for name in GRADIENT_SETTINGS}

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        """Names of the layer groups that train in ``epoch`` (1-based)."""
        raise NotImplementedError

    def default_lr(self, model: TransferModel) -> float:
        """The base learning rate for ``model`` when the run sets none: ``transformer_lr`` for a transformer
        encoder (the ``hf`` family), ``base_lr`` for every other model."""
        return self.transformer_lr if model_kind(model.arch, model.input_shape) == "text" else self.base_lr

    def lr_scale(self, group: str, index: int, num_groups: int) -> float:
        """The factor on the learning rate of a group: the head's ``head_lr_scale`` for strategies that take one."""
        return self.head_lr_scale if group == "head" else 1.0

    def group_weight_decay(self, group: str, index: int, num_groups: int, weight_decay: float) -> float:
        """The weight decay of a group's weights (1-D parameters never decay); the configured one by default."""
        return weight_decay

    def trains_parameter(self, group: str, name: str, parameter: nn.Parameter) -> bool:
        """Whether ``parameter`` (called ``name`` inside layer group ``group``) trains when its group does."""
        return True

    def prepare(self, model: TransferModel, epochs: int = 1) -> None:
        """Called once before training ``epochs`` epochs: checks the settings and enters the first phase."""
        self.epochs_ = epochs
        self.current_: set[str] | None = None
        self.begin_epoch(model, 1)

    def ever_trainable(self, model: TransferModel) -> list[str]:
        """The groups that train in some epoch, in ``layer_groups()`` order."""
        names = set().union(*(self.trainable(model, e) for e in range(1, getattr(self, "epochs_", 1) + 1)))
        return [name for name, _ in model.layer_groups() if name in names]

    def begin_epoch(self, model: TransferModel, epoch: int) -> str | None:
        """Freeze what does not train in ``epoch``; returns a note when the phase changes."""
        trainable = set(self.trainable(model, epoch))
        for name, module in model.layer_groups():
            for parameter_name, p in module.named_parameters():
                p.requires_grad_(name in trainable and self.trains_parameter(name, parameter_name, p))
        previous, self.current_ = getattr(self, "current_", None), trainable
        if previous is None or previous == trainable:
            return None
        order = [name for name, _ in model.layer_groups() if name in trainable]
        return f"{self.name}: from epoch {epoch}, training {', '.join(order)}"

    def param_groups(self, model: TransferModel, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer groups: per layer group that ever trains, weights with decay and 1-D parameters (biases,
        norms) without."""
        trainable = set(self.ever_trainable(model))
        groups = model.layer_groups()
        out = []
        for index, (name, module) in enumerate(groups):
            if name not in trainable:
                continue
            scale = self.lr_scale(name, index, len(groups))
            group_decay = self.group_weight_decay(name, index, len(groups), weight_decay)
            params = [p for parameter_name, p in module.named_parameters()
                      if self.trains_parameter(name, parameter_name, p)]
            decay = [p for p in params if p.ndim > 1]
            no_decay = [p for p in params if p.ndim <= 1]
            for suffix, members, wd in (("", decay, group_decay), (".no_decay", no_decay, 0.0)):
                if members:
                    out.append({"params": members, "name": name + suffix, "lr": lr * scale, "lr_scale": scale,
                                "weight_decay": wd})
        return out

    def penalty(self, model: TransferModel) -> torch.Tensor | None:
        """A term the training loop adds to the loss (a scalar tensor), or None for none."""
        return None

    def train_mode(self, model: TransferModel, *, frozen_batchnorm: str = "eval") -> None:
        """Training mode for the groups that train now. Frozen groups stay in eval mode by default, so their
        BatchNorm keeps its pretrained statistics; ``frozen_batchnorm="train"`` lets those statistics follow the
        target's batches (their weights stay frozen either way)."""
        model.train()
        if frozen_batchnorm == "train":
            return
        for name, module in model.layer_groups():
            if name not in self.current_:
                module.eval()

    @property
    def uses_feature_cache(self) -> bool:
        """Whether only the head trains, on backbone features computed once (``feature_cache`` set)."""
        return self.feature_cache is not None

    @property
    def trains_by_gradient(self) -> bool:
        """Whether the loop takes gradient steps: False for a head-only strategy whose head is solved by L-BFGS
        (one closed-form "epoch" then; there is nothing to repeat)."""
        return not (self.uses_feature_cache and self.head_solver == "lbfgs")

    def feature_views(self) -> list[tuple[str, ViewTransform | None]]:
        """With a feature cache, the views of the training inputs whose features the head trains on: ``(name,
        transform)``, the clean inputs first (name "", no transform)."""
        return [("", None)]

    def check(self, config: TrainConfig, *, train: tuple[torch.Tensor, torch.Tensor], distributed: bool,
              resume: bool, aligned: bool, augmented: bool) -> None:
        """Refuse, with a :class:`WarmstartError` and its fix, what this strategy cannot do with these settings:
        ``distributed`` (DDP), ``resume``, ``aligned`` (feature-alignment domain adaptation), ``augmented``
        (per-batch augmentation or mixing). Everything is supported by default."""

    def training_module(self, model: TransferModel) -> nn.Module:
        """The module a training step runs on the batch inputs: the whole model (its logits) by default."""
        return model

    def training_inputs(self, examples: np.ndarray, inputs: torch.Tensor,
                        prepare: Callable[[np.ndarray], torch.Tensor]) -> torch.Tensor:
        """The inputs the loop trains on, given the training split's ``examples`` as read (images, texts) and
        ``inputs = prepare(examples)``, already computed (the model's preprocessing; the raw images when the loop
        augments them). ``inputs`` by default; an objective may add to them (distillation: the teacher's
        tokenisation beside the student's) and ``prepare`` more examples of its own (its unlabelled ones)."""
        return inputs

    def training_batches(self, train: tuple[torch.Tensor, torch.Tensor], config: TrainConfig,
                         generator: torch.Generator) -> "Iterable[tuple[torch.Tensor, torch.Tensor]] | None":
        """The batches of an epoch, ``(inputs, targets)``, when the strategy draws its own (SetFit's pairs); the
        object also has ``__len__``, ``batch_size`` and ``num_examples``, and iterating it again starts a new epoch.
        None (the default): the loop's shuffled (or class-balanced) batches of examples."""
        return None

    def compute_loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The mean loss of a batch and the logits it came from (None when the step predicts no classes, and the
        loop then reports no training accuracy for it). ``module`` is ``training_module(model)`` as the loop runs
        it (compiled, or in DDP); ``loss_fn`` the run's cross-entropy (label smoothing, class weights)."""
        logits = module(inputs)
        return loss_fn(logits.float(), targets), logits

    def epoch_logs(self, examples: int) -> dict[str, Any]:
        """What the strategy adds to an epoch's logs, given the training examples the epoch's steps saw."""
        return {}

    def finalize(self, model: TransferModel) -> None:
        """Called once after training, before the model is evaluated and saved; nothing to do by default."""

    def describe(self) -> dict[str, Any]:
        """The name and the options, as stored by the constructor (each option is an attribute of its name)."""
        return {"name": self.name, **{option: getattr(self, option) for option in option_names(type(self))}}


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", plural="strategies")


def create_strategy(name: str, **options: Any) -> Strategy:
    """Build a registered strategy with its options: ``create_strategy("l2-sp", alpha=0.1)``."""
    return STRATEGIES.create(name, parameter="--strategy", **options)
