"""Typed, frozen configuration for every step. The CLI and YAML files parse into these; the API consumes them.

Each config checks its own values when built, and a bad value raises :class:`WarmstartError` naming the parameter,
what was allowed and what was given.
"""

from __future__ import annotations

import dataclasses
import os
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .errors import WarmstartError

CLASS_BALANCE = ("none", "weights", "sampler")
# The training budget of a run that sets none (TrainConfig.epochs=None), except --strategy auto, which scales it to the
# data (strategies/auto.py: about 600 optimizer steps, 100 for a text encoder).
DEFAULT_EPOCHS = 10
PRECISIONS = ("fp32", "bf16", "fp16")
EARLY_STOPPING_MONITORS = ("val_accuracy", "val_loss", "train_loss")


def check_parameter(condition: bool, parameter: str, expected: str, given: Any, *, hint: str | None = None) -> None:
    """Refuse ``given`` for ``parameter`` unless ``condition``. The fix names the command-line flag the parameter is
    set by (``batch_size`` -> ``--batch-size``); a parameter set another way passes its own ``hint``."""
    if not condition:
        raise WarmstartError(f"parameter {parameter}: expected {expected}, got {given!r}",
                             hint=hint or f"set {flag_for(parameter)} to {expected}")


def flag_for(parameter: str) -> str:
    """The command-line flag of a config parameter: its name with dashes."""
    return "--" + parameter.replace("_", "-")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number: an int, or a finite float (inf and nan pass every comparison-based check, and a run given
    them diverges or writes invalid JSON)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and which part of it to use.

    source: a built-in name (``fashion-mnist``, ``digits``) or a path to an ``.npz``, a ``.csv`` or an image folder;
        or data in memory: arrays ``(x, y)`` or ``(x, y, x_test, y_test)``, a pandas DataFrame (with
        ``label_column``, and ``text_column`` for text), or a torch Dataset (see :mod:`warmstart.data.memory`).
    classes: a class spec, ``"0-4"``, ``"5,6,9"`` or class names; None keeps every class.
    shots: K training examples per class, sampled stratified with the training seed; None keeps all.
    val_fraction: share of the (possibly few-shot) training set held out for validation each epoch. None means
        0.1 without ``shots`` and 0 with them: choosing a checkpoint on a handful of held-out examples is noise
        (Perez et al., "True Few-Shot Learning", 2021), so few-shot runs train for a fixed budget unless asked.
    test_fraction: for data without its own test split, the share held out as the test split; the hold-out is
        fixed (seed 0), so ``pretrain``, ``finetune`` and ``evaluate`` on the same file agree on it.
    label_column: the label column of a CSV, TSV or JSON-lines file.
    text_column: the text column of a text classification file (a .tsv, a .jsonl or a folder with train.csv are
        read as text with column ``text`` by default).
    max_length: texts are cut to this many tokens; batches are padded only to their longest text.
    image_size: (height, width) images of an image folder are resized to; needed when their sizes differ.
    resize: resize images (and convert grey <-> colour) to the checkpoint's input shape when they differ.
    corruption: ``NAME:SEVERITY`` (``rotate:3``), a known shift applied to every image of every split, seeded so the
        corrupted set is always the same (see :mod:`warmstart.data.corruptions`; ``warmstart list corruptions``).
    class_name_examples: text only: this many training examples per class written from its name into
        ``class_name_template`` (SetFit's templated examples; see :mod:`warmstart.data.class_names`); 0: none.
    class_name_template: the sentence a class name is written into, at its one ``{}``; a literal brace is
        written twice (``{{``, ``}}``), as ``str.format`` reads it.
    """

    source: str
    classes: str | None = None
    shots: int | None = None
    val_fraction: float | None = None
    test_fraction: float = 0.2
    label_column: str = "label"
    text_column: str | None = None
    max_length: int = 64
    image_size: tuple[int, int] | None = None
    resize: bool = False
    corruption: str | None = None
    class_name_examples: int = 0
    class_name_template: str = "This sentence is {}"

    def __post_init__(self) -> None:
        if isinstance(self.source, os.PathLike):
            object.__setattr__(self, "source", os.fspath(self.source))
        if isinstance(self.classes, (list, tuple)) and all(isinstance(c, (str, int)) and not isinstance(c, bool)
                                                           for c in self.classes):
            object.__setattr__(self, "classes", ",".join(map(str, self.classes)))  # [5, 6]: "5,6"
        elif is_int(self.classes):
            object.__setattr__(self, "classes", str(self.classes))
        check_parameter(self.classes is None or isinstance(self.classes, str), "classes",
                        'a class spec such as "0-4", "5,6,9" or names (or a list of ids or names)', self.classes)
        check_parameter(isinstance(self.resize, bool), "resize", "True or False", self.resize)
        if not isinstance(self.source, str):  # arrays, DataFrames, a torch Dataset: held in memory, named by a str
            from .data.memory import in_memory

            object.__setattr__(self, "source", in_memory(self.source, label_column=self.label_column,
                                                         text_column=self.text_column))
        if self.corruption is not None:
            from .data.corruptions import parse_corruption

            parse_corruption(self.corruption, parameter="corruption")
        check_parameter(isinstance(self.source, str) and self.source != "", "data", "a dataset name or path",
                        self.source)
        check_parameter(self.shots is None or (is_int(self.shots) and self.shots >= 1), "shots",
                        "a positive integer", self.shots)
        check_parameter(self.val_fraction is None or (is_number(self.val_fraction) and 0.0 <= self.val_fraction < 1.0),
                        "val_fraction", "a number in [0, 1)", self.val_fraction)
        check_parameter(is_int(self.max_length) and self.max_length >= 2, "max_length", "an integer >= 2",
                        self.max_length)
        check_parameter(is_number(self.test_fraction) and 0.0 < self.test_fraction < 1.0, "test_fraction",
                        "a number in (0, 1)", self.test_fraction)
        from .data.class_names import MAX_PER_CLASS, check_template

        check_parameter(is_int(self.class_name_examples) and 0 <= self.class_name_examples <= MAX_PER_CLASS,
                        "class_name_examples", f"an integer from 0 to {MAX_PER_CLASS}", self.class_name_examples,
                        hint="pass --class-name-examples 8 (SetFit's default is 2; the copies are identical, so more "
                             "only weigh the name harder)")

        check_template(self.class_name_template)
        if self.class_name_template != DataConfig.class_name_template and not self.class_name_examples:
            raise WarmstartError(f"class_name_template {self.class_name_template!r} is set, but class_name_examples "
                                 "is 0, so no example is written with it",
                                 hint="add --class-name-examples N (e.g. 8), or drop --class-name-template")
        if self.image_size is not None:
            size = tuple(self.image_size)
            check_parameter(len(size) == 2 and all(is_int(s) and s > 0 for s in size), "image_size",
                            "two positive integers (height, width)", self.image_size)
            object.__setattr__(self, "image_size", size)

    @property
    def resolved_val_fraction(self) -> float:
        if self.val_fraction is not None:
            return self.val_fraction
        return 0.0 if self.shots is not None else 0.1


@dataclass(frozen=True)
class ModelConfig:
    """An architecture from the model registry (``warmstart list models``) and its keyword arguments."""

    name: str = "cnn"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, schedule, budget, regularisation and reproducibility.

    Schedules multiply each parameter group's own learning rate, step by step: ``step`` by ``gamma`` every
    ``step_size`` epochs; ``exponential`` by ``gamma`` per epoch; ``cosine`` anneals to zero over ``epochs``;
    ``one-cycle`` (Smith & Topin, 2019) rises from lr/25 to lr over the first 30% of steps and anneals to lr/250,000.
    ``warmup_epochs`` ramps linearly from lr/10 first (not with one-cycle, which warms up by itself).
    ``frozen_batchnorm``: in layer groups a strategy keeps frozen, ``eval`` keeps BatchNorm's pretrained
    statistics (the default: a few target batches estimate them badly), ``train`` lets them follow the target.
    ``early_stopping``: stop when ``early_stopping_monitor`` (validation accuracy by default; ``val_loss``, or
    ``train_loss`` for a training-loss plateau without a validation split) has not improved by more than
    ``early_stopping_min_delta`` for this many epochs; the best epoch's weights (by validation accuracy) are kept
    whenever there is a validation split.
    ``trackers``: where a run with a folder also logs its curves and results (see :mod:`warmstart.tracking`);
    TensorBoard by default, ``()`` for none.
    ``class_balance``: ``weights`` weighs the loss by n / (C * n_c) (scikit-learn's "balanced"); ``sampler`` draws
    each epoch's examples with probability 1 / n_c, with replacement.
    ``augment``: an augmentation preset (``warmstart list augmentations``) applied to every training image, batch by
    batch, before normalisation; ``mix``: ``mixup`` or ``cutmix`` over each batch with Beta(``mix_alpha``,
    ``mix_alpha``) mixing weights (soft targets). Images only; seeded from the run's generator.

    Scaling (see :mod:`warmstart.engine.precision` and :mod:`warmstart.engine.distributed`): ``precision`` ``bf16``
    runs the training steps under bfloat16 autocast (CPU and CUDA), ``fp16`` under float16 autocast with a gradient
    scaler (CUDA only); ``grad_accumulation`` K sums the gradients of K batches of ``batch_size`` before each
    optimizer step (the step sees K x batch_size examples); ``channels_last`` stores images and convolution weights
    channels-last; ``compile`` wraps the model in ``torch.compile``. Under DDP ``batch_size`` stays global: each of
    W processes takes 1/W of every batch, so W processes follow the one-process run step for step.
    """

    epochs: int | None = None  # None: DEFAULT_EPOCHS, or for --strategy auto a budget scaled to the data
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float | None = None  # None: the strategy's default for the model (Strategy.default_lr)
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"
    step_size: int | None = None
    gamma: float = 0.1
    warmup_epochs: int = 0
    early_stopping: int | None = None
    early_stopping_monitor: str = "val_accuracy"
    early_stopping_min_delta: float = 0.0
    grad_clip_norm: float | None = None
    label_smoothing: float = 0.0
    class_balance: str = "none"
    frozen_batchnorm: str = "eval"
    augment: str = "none"
    mix: str = "none"
    mix_alpha: float = 1.0
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    trackers: tuple[str, ...] = ("tensorboard",)  # experiment trackers of runs with a folder: tensorboard, mlflow
    precision: str = "fp32"
    grad_accumulation: int = 1
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        check_parameter(isinstance(self.trackers, (tuple, list)) and all(isinstance(t, str) for t in self.trackers),
                        "trackers", "a tuple of tracker names (tensorboard, mlflow)", self.trackers,
                        hint="pass --tracker NAME once per tracker, e.g. --tracker tensorboard")
        object.__setattr__(self, "trackers", tuple(self.trackers))
        check_parameter(self.lr is None or is_number(self.lr), "lr", "a number, or None for the strategy's "
                        "default", self.lr,
                        hint="set --lr to a positive number, or leave it out for the strategy's default")
        for name in ("weight_decay", "momentum", "gamma", "label_smoothing"):
            check_parameter(is_number(getattr(self, name)), name, "a number", getattr(self, name))
        for name in ("batch_size", "warmup_epochs", "seed"):
            check_parameter(is_int(getattr(self, name)), name, "an integer", getattr(self, name))
        for name in ("nesterov", "progress", "channels_last", "compile"):  # "no" would be truthy
            check_parameter(isinstance(getattr(self, name), bool), name, "True or False", getattr(self, name))
        check_parameter(self.epochs is None or (is_int(self.epochs) and self.epochs >= 1), "epochs",
                        "a positive integer, or None for the default budget", self.epochs)
        check_parameter(self.batch_size >= 1, "batch_size", "a positive integer", self.batch_size)
        # torch.Generator.manual_seed refuses negative seeds deep inside a run; say so up front
        check_parameter(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        self._check_optimization()
        check_parameter(self.lr is None or self.lr > 0, "lr", "a positive number", self.lr)
        check_parameter(self.weight_decay >= 0, "weight_decay", "a number >= 0", self.weight_decay)
        check_parameter(0 <= self.momentum < 1, "momentum", "a number in [0, 1)", self.momentum)
        check_parameter(self.step_size is None or (is_int(self.step_size) and self.step_size >= 1), "step_size",
                        "a positive number of epochs", self.step_size)
        check_parameter(0 < self.gamma <= 1, "gamma", "a number in (0, 1]", self.gamma)
        epochs = DEFAULT_EPOCHS if self.epochs is None else self.epochs
        check_parameter(0 <= self.warmup_epochs < epochs, "warmup_epochs", f"an integer in [0, epochs={epochs})",
                        self.warmup_epochs)
        check_parameter(not (self.schedule == "one-cycle" and self.warmup_epochs), "warmup_epochs",
                        "0 with the one-cycle schedule, which warms up by itself", self.warmup_epochs)
        check_parameter(self.early_stopping is None or (is_int(self.early_stopping) and self.early_stopping >= 1),
                        "early_stopping", "a positive number of epochs (patience)", self.early_stopping)
        check_parameter(self.early_stopping_monitor in EARLY_STOPPING_MONITORS, "early_stopping_monitor",
                        f"one of {', '.join(EARLY_STOPPING_MONITORS)}", self.early_stopping_monitor,
                        hint=f"set TrainConfig.early_stopping_monitor to one of {', '.join(EARLY_STOPPING_MONITORS)}")
        check_parameter(is_number(self.early_stopping_min_delta) and self.early_stopping_min_delta >= 0,
                        "early_stopping_min_delta", "a number >= 0", self.early_stopping_min_delta,
                        hint="set TrainConfig.early_stopping_min_delta to a number >= 0, e.g. 0")
        check_parameter(self.grad_clip_norm is None or (is_number(self.grad_clip_norm) and self.grad_clip_norm > 0),
                        "grad_clip_norm", "a positive number", self.grad_clip_norm)
        check_parameter(0 <= self.label_smoothing < 1, "label_smoothing", "a number in [0, 1)",
                        self.label_smoothing)
        check_parameter(self.class_balance in CLASS_BALANCE, "class_balance", f"one of {', '.join(CLASS_BALANCE)}",
                        self.class_balance)
        check_parameter(self.frozen_batchnorm in ("eval", "train"), "frozen_batchnorm", "eval or train",
                        self.frozen_batchnorm)
        self._check_augmentation()
        check_parameter(isinstance(self.device, str) and (self.device == "auto" or self.device.split(":")[0] in
                                                          ("cpu", "cuda", "mps")),
                        "device", "auto, cpu, cuda or cuda:N", self.device)
        check_parameter(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        check_parameter(is_int(self.grad_accumulation) and self.grad_accumulation >= 1, "grad_accumulation",
                        "a positive integer (batches per optimizer step)", self.grad_accumulation)
        for name in ("channels_last", "compile"):
            check_parameter(isinstance(getattr(self, name), bool), name, "true or false", getattr(self, name))

    def _check_optimization(self) -> None:
        from .engine.optim import OPTIMIZERS, SCHEDULES  # the registries: one table for validation, help and list

        check_parameter(self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS.names())}",
                        self.optimizer)
        check_parameter(self.schedule in SCHEDULES, "schedule", f"one of {', '.join(SCHEDULES.names())}",
                        self.schedule)

    @classmethod
    def for_command(cls, command: str, **changes: Any) -> "TrainConfig":
        """The training preset of ``command`` (see :data:`TRAIN_PRESETS`) with ``changes``: what ``warmstart
        COMMAND`` and the API function of the same name train with when not told otherwise."""
        return cls(**{**train_preset(command), **changes})

    def _check_augmentation(self) -> None:
        from .data.augment import AUGMENTATIONS, MIXES

        check_parameter(self.augment in AUGMENTATIONS, "augment", f"one of {', '.join(AUGMENTATIONS.names())}",
                        self.augment)
        check_parameter(self.mix == "none" or self.mix in MIXES, "mix", f"none, {', '.join(MIXES.names())}",
                        self.mix)
        check_parameter(is_number(self.mix_alpha) and self.mix_alpha > 0, "mix_alpha", "a positive number",
                        self.mix_alpha)


@dataclass(frozen=True)
class AdaptConfig:
    """Task-adaptive pretraining (Gururangan et al., ACL 2020): a short self-supervised stage on the target's
    unlabelled inputs before fine-tuning (``finetune --adapt-on``).

    data: a dataset of unlabelled inputs (see :mod:`warmstart.data.unlabelled`; a labelled one's training split with
        its labels ignored), or ``self``: the run's own training split, labels ignored (never the test split).
    objective: ``auto`` (images: ``simclr``; text: ``mlm`` where the encoder has a masked-language-model head,
        ``simcse`` otherwise) or an objective's name (``warmstart list objectives``).
    epochs, batch_size, lr: the stage's budget, batch and rate (None: the objective's default for the model);
        every other training setting is the fine-tuning run's.
    temperature: the contrastive objectives' temperature (None: the objective's default).
    """

    data: str
    objective: str = "auto"
    epochs: int = 1
    batch_size: int = 64
    lr: float | None = None
    temperature: float | None = None

    def __post_init__(self) -> None:
        check_parameter(isinstance(self.data, str) and self.data != "", "adapt_on", "a dataset, or self",
                        self.data)
        check_parameter(is_int(self.epochs) and self.epochs >= 1, "adapt_epochs", "a positive integer", self.epochs)
        check_parameter(is_int(self.batch_size) and self.batch_size >= 2, "adapt_batch_size",
                        "an integer >= 2 (contrastive objectives need negatives)", self.batch_size)
        check_parameter(self.lr is None or (is_number(self.lr) and self.lr > 0), "adapt_lr",
                        "a positive number, or None for the objective's default", self.lr)
        check_parameter(self.temperature is None or (is_number(self.temperature) and self.temperature > 0),
                        "adapt_temperature", "a positive number, or None for the objective's default",
                        self.temperature)


def adapt_config(adapt_on: AdaptConfig | str | None) -> AdaptConfig | None:
    """``adapt_on`` as every API function takes it: None (no stage), a dataset or ``self``, or an AdaptConfig."""
    check_parameter(adapt_on is None or isinstance(adapt_on, (str, AdaptConfig)), "adapt_on",
                    "None, a dataset of unlabelled inputs, 'self' or an AdaptConfig", adapt_on,
                    hint="pass adapt_on='self', a path to unlabelled inputs, or AdaptConfig(DATA, epochs=...)")
    return AdaptConfig(adapt_on) if isinstance(adapt_on, str) else adapt_on


# Each command's training preset: the TrainConfig fields where it differs from the dataclass's defaults. The command
# line and the API (``train=None``) both start from these, so ``warmstart finetune ...`` and ``warmstart.finetune(...)``
# train alike. The values are the ones the README's figures and recipes were measured with: a small batch for few-shot
# fine-tuning, a larger batch at a higher rate for pretraining from scratch.
TRAIN_PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "pretrain": MappingProxyType({"batch_size": 128, "lr": 2e-3}),
    "finetune": MappingProxyType({"batch_size": 16}),
    "lr-find": MappingProxyType({"batch_size": 16}),
    "compare": MappingProxyType({"batch_size": 16}),
    "tune": MappingProxyType({"batch_size": 16}),
    "rank": MappingProxyType({}),
    "distill": MappingProxyType({}),  # the dataclass defaults (batch 64): a transfer set, not a few shots
})


def train_preset(command: str) -> Mapping[str, Any]:
    try:
        return TRAIN_PRESETS[command]
    except KeyError:
        raise WarmstartError(f"no training preset for {command!r}; expected one of {', '.join(TRAIN_PRESETS)}",
                             hint="name a command that trains") from None


def train_defaults(command: str) -> dict[str, Any]:
    """Every TrainConfig field's default for ``command``, without building (and so validating) a TrainConfig:
    validation imports the augmentation registry, and the command line's ``--help`` must not import torch."""
    return {**field_defaults(TrainConfig), **train_preset(command)}


def field_defaults(config_class: type) -> dict[str, Any]:
    """The default of each field of a config dataclass that has one."""
    return {f.name: f.default for f in dataclasses.fields(config_class) if f.default is not dataclasses.MISSING}


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(config))


def json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value
