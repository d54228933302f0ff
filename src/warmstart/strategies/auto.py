"""``auto``: a strategy chosen from the number of labelled examples per class and the compute budget.

The rule is the evidence of ``benchmarks/results/strategies.md`` (Fashion-MNIST classes 0-4 -> 5-9, a CNN, every
strategy against scratch at K = 5, 10, 50 and all 6,000 images per class, 3 seeds), written down:

- Up to ``FEW_SHOT_LIMIT`` examples per class, ``gradual-unfreeze``: it was the best or tied for best at K = 5, 10
  and 50 (0.804, 0.853, 0.933 test accuracy against 0.781, 0.852, 0.933 for full fine-tuning), with the smallest
  spread over seeds; unfreezing from the top keeps a handful of examples from wrecking the lower features.
- Above it, ``full``: with thousands of examples per class every layer can move safely; at K = all, full
  fine-tuning (0.975) beat gradual-unfreeze (0.954), lp-ft (0.933), layerwise-lr (0.969) and l2-sp (0.971), which
  spend part of a short budget with layers frozen or held back. Between 50 and 6,000 per class the table has no
  point, so the switch is put at the last K where the phased strategy was still ahead.
- ``budget="minimal"``: ``linear-probe``, whatever the data. The backbone runs once and only a linear head trains,
  10-100x cheaper per epoch; the table shows what it can cost in accuracy when source and target differ.

For a pretrained transformer text encoder (the ``hf`` models) the rule is the evidence of the text benchmarks
(all-MiniLM-L6-v2 on TREC, SST-2, emotion and Banking77, 3 seeds; benchmarks/results/text_*.md):

- Up to ``TEXT_FEW_SHOT_LIMIT`` (16) examples per class and up to ``SETFIT_CLASS_LIMIT`` (20) classes,
  ``setfit``: at 8 per class it was the best on TREC
  (0.707 against 0.669 for full fine-tuning and 0.629 for lp-ft) and emotion (0.380 against 0.346 and 0.344), level
  on SST-2 (0.670 against 0.677 and 0.666); at 32 per class on SST-2 it reached 0.752, SetFit's published 0.751.
  SetFit's budget of 20 rounds of pairs is kept whatever ``--epochs`` says: the rounds are spread over the epochs.
  With many classes it fell behind: on Banking77 (77 classes, 8 per class, 5 rounds of pairs, since 20 would cost
  about 25 minutes a run here) it reached 0.797 against 0.839 for lp-ft. The class limit sits between the 6 classes
  where it won and the 77 where it lost.
- Above it, ``lp-ft`` from the head fitted by L-BFGS: never far from the best, and the only safe choice with many
  classes. At 64 per class it was within 1.7, 0.7 and 3.5 points of full fine-tuning (TREC, SST-2, emotion; the
  differences are within 1-2 seed standard deviations); on Banking77's 77 classes it led full fine-tuning by 14 points
  at 8 per class (0.839 against 0.698) and by 3.7 on the whole set (0.939 against 0.902), where a fresh 77-way head
  drags the encoder around before it is any good. The switch sits between the measured 8-32 and 64 per class.
- ``budget="minimal"``: the linear probe fitted by L-BFGS (the encoder runs once): on the whole training sets it
  was within 1 point of the peers' frozen-encoder baseline or ahead (0.932 against 0.908 on Banking77).

The choice and its reason are reported in the run's notes and recorded in its config. The rule reads the
*smallest* class ("smallest class: 470 examples"), and a training set whose largest class has more than
``IMBALANCE_RATIO`` times the examples of its smallest is flagged.

How long ``auto`` trains, when the user gives no ``--epochs`` (:meth:`Auto.epochs`): a target number of optimizer
steps, as the benchmarks ran, not a fixed 10 epochs whatever the data (10 full-encoder epochs over 4,136 texts take
about an hour on 2 cores; 10 epochs of 7 steps leave a vector MLP far from trained):

- images, vectors: ``TARGET_STEPS`` = 600 steps, within 3 to 40 epochs. benchmarks/results/strategies.md and
  transfer_vs_scratch.md trained K = 5-100 per class for 40 epochs (batch 16: 60-1,250 steps; at K = 10, 160
  steps) and all 30,000 images for 3 epochs (batch 128: about 700 steps), and those runs are what the rule above
  rests on. So few-shot data gets the 40 epochs the benchmarks gave it, and large data about 600 steps, never
  fewer than 3 epochs.
- a transformer text encoder: ``TEXT_TARGET_STEPS`` = 100 steps, within 2 to 20 epochs, the budget of every text
  benchmark (benchmarks/text_few_shot.py: epochs = clamp(1600 examples / n, 2, 20) at batch 16, so 20 epochs at 8
  per class; whole training sets 2 epochs at batch 32: TREC 0.956-0.960, Banking77 0.939, emotion 0.915;
  benchmarks/results/text_fine_tuning_full_set*.md). 4,136 texts at batch 64 get 2 epochs, not 10.

:func:`time_estimate_note` turns one measured step (:func:`measure_step_seconds`) into a note printed before a run
expected to take longer than ``LONG_RUN_SECONDS``.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import torch

from ..config import check_parameter, is_int
from ..models import TransferModel
from .base import STRATEGIES, Strategy, check_option

FEW_SHOT_LIMIT = 50
TEXT_FEW_SHOT_LIMIT = 16
SETFIT_CLASS_LIMIT = 20
SETFIT_ROUNDS = 20  # SetFit's num_iterations for one epoch, spread over the run's epochs
IMBALANCE_RATIO = 3.0  # largest over smallest class, as the model card's warning (reporting/model_card.py)
TARGET_STEPS, MIN_EPOCHS, MAX_EPOCHS = 600, 3, 40  # images and vectors; see the module docstring
TEXT_TARGET_STEPS, TEXT_MIN_EPOCHS, TEXT_MAX_EPOCHS = 100, 2, 20  # transformer text encoders
LONG_RUN_SECONDS = 120.0  # a run expected to take longer is announced with its estimate


def scaled_epochs(train_examples: int, batch_size: int, *, text: bool = False) -> int:
    """Epochs that give about the target number of optimizer steps for ``train_examples`` at ``batch_size``,
    within the limits (a pure function; see the module docstring for the constants' evidence)."""
    check_parameter(is_int(train_examples) and train_examples >= 1, "train_examples", "a positive integer",
                    train_examples, hint="train on at least one example: check --data, --classes and --shots")
    check_parameter(is_int(batch_size) and batch_size >= 1, "batch_size", "a positive integer", batch_size)
    target, low, high = ((TEXT_TARGET_STEPS, TEXT_MIN_EPOCHS, TEXT_MAX_EPOCHS) if text
                         else (TARGET_STEPS, MIN_EPOCHS, MAX_EPOCHS))
    steps_per_epoch = math.ceil(train_examples / batch_size)
    return max(low, min(high, round(target / steps_per_epoch)))


def class_balance_note(class_counts: Sequence[int], class_names: Sequence[str] | None = None) -> str | None:
    """A warning when the largest class has more than ``IMBALANCE_RATIO`` times the examples of the smallest."""
    counts = [int(n) for n in class_counts]
    if len(counts) < 2 or min(counts) == 0:
        return None
    largest, smallest = counts.index(max(counts)), counts.index(min(counts))
    ratio = counts[largest] / counts[smallest]
    if ratio <= IMBALANCE_RATIO:
        return None

    def named(i: int) -> str:
        return f"{counts[i]:,}" + (f" ({class_names[i]})" if class_names is not None else "")

    return (f"imbalanced classes: the largest has {named(largest)} examples, the smallest {named(smallest)}, "
            f"{ratio:.1f}x (more than {IMBALANCE_RATIO:g}x): accuracy flatters the large classes, so read the "
            "macro-F1 and per-class recall; --class-balance weights or sampler evens them out in training")


def measure_step_seconds(model: TransferModel, x: torch.Tensor, y: torch.Tensor, *, repeats: int = 2) -> float:
    """Seconds of one training step's forward and backward pass on the batch ``(x, y)``, the fastest of
    ``repeats`` (the first pays one-off costs). The model is left exactly as it was: eval mode (BatchNorm
    statistics untouched, no dropout draws from the random generator), gradients taken with
    ``torch.autograd.grad`` (nothing written to ``.grad``), and its train/eval mode restored."""
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    fastest = math.inf
    try:
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            if params:
                torch.autograd.grad(loss, params, allow_unused=True)
            fastest = min(fastest, time.perf_counter() - started)
    finally:
        model.train(was_training)
    return fastest


def time_estimate_note(step_seconds: float, train_examples: int, batch_size: int, epochs: int, *,
                       long_run_seconds: float = LONG_RUN_SECONDS) -> str | None:
    """``"estimated training time: about 14 minutes (...)"`` when ``epochs`` epochs at ``step_seconds`` per step
    would take longer than ``long_run_seconds``; None for a short run. The optimizer step and data loading come
    on top of the measured forward and backward pass: 10% is added for them (step_time.md: the loop costs within
    1% of a bare loop, the optimizer a few percent)."""
    steps = epochs * math.ceil(train_examples / batch_size)
    seconds = 1.1 * step_seconds * steps
    if seconds <= long_run_seconds:
        return None
    shown = f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{seconds / 60:.0f} minutes"
    return (f"estimated training time: about {shown} ({epochs} epochs of {math.ceil(train_examples / batch_size)} "
            f"steps at {step_seconds:.2f} s per step, measured on this machine); --epochs or --strategy "
            "linear-probe train for less")


@STRATEGIES.register("auto")
class Auto(Strategy):
    """Picks gradual-unfreeze up to 50 examples per class, full above, linear-probe with budget=minimal; for a text
    encoder setfit up to 16 per class, lp-ft (fitted probe first) above, the L-BFGS probe with budget=minimal."""

    name = "auto"
    resolved_per_run = True  # the API replaces it by the strategy it chooses before training

    def __init__(self, *, budget: str = "normal", few_shot_limit: int = FEW_SHOT_LIMIT):
        check_option(budget in ("normal", "minimal"), "budget", "normal or minimal", budget)
        check_option(is_int(few_shot_limit) and few_shot_limit >= 1, "few_shot_limit", "a positive integer",
                     few_shot_limit)
        self.budget = budget
        self.few_shot_limit = few_shot_limit

    def epochs(self, train_examples: int, batch_size: int, *, text: bool = False,
               given: int | None = None) -> tuple[int, str | None]:
        """The epochs to train ``auto``'s choice for, and a note saying why: the user's ``given`` epochs, always
        (no note); otherwise :func:`scaled_epochs` (a target number of optimizer steps for the data's size)."""
        if given is not None:
            return given, None
        epochs = scaled_epochs(train_examples, batch_size, text=text)
        steps = math.ceil(train_examples / batch_size)
        target = TEXT_TARGET_STEPS if text else TARGET_STEPS
        return epochs, (f"auto trains {epochs} epochs ({epochs * steps:,} steps of {batch_size}): about {target} "
                        f"optimizer steps for {train_examples:,} examples, within "
                        f"{TEXT_MIN_EPOCHS if text else MIN_EPOCHS}-{TEXT_MAX_EPOCHS if text else MAX_EPOCHS} "
                        "epochs, as the benchmarks trained; --epochs sets it yourself")

    def choose(self, examples_per_class: int, *, pretrained: bool = True, text: bool = False, classes: int = 2,
               epochs: int = 1, class_counts: Sequence[int] | None = None,
               class_names: Sequence[str] | None = None) -> tuple[Strategy, str]:
        """The strategy for a training set whose smallest class has ``examples_per_class`` examples, and why;
        ``text``: the model is a transformer text encoder, for ``classes`` classes, trained for ``epochs`` (from
        :meth:`epochs`). ``class_counts`` (and their ``class_names``): the reason flags an imbalance."""
        strategy, reason = self._choose(examples_per_class, pretrained, text, classes, epochs)
        imbalance = None if class_counts is None else class_balance_note(class_counts, class_names)
        return strategy, reason if imbalance is None else f"{reason}; {imbalance}"

    def _choose(self, examples_per_class: int, pretrained: bool, text: bool, classes: int,
                epochs: int) -> tuple[Strategy, str]:
        from . import create_strategy

        if not pretrained:
            return create_strategy("full"), "no pretrained weights to protect: every layer trains from scratch"
        if text:
            return self._choose_for_text(examples_per_class, classes, epochs)
        if self.budget == "minimal":
            return create_strategy("linear-probe"), ("budget=minimal: the backbone runs once and only the head "
                                                     "trains")
        if examples_per_class <= self.few_shot_limit:
            return create_strategy("gradual-unfreeze"), (
                f"smallest class: {examples_per_class} examples <= {self.few_shot_limit}: gradual-unfreeze was the best or "
                "tied for best at 5, 10 and 50 per class (benchmarks/results/strategies.md)")
        return create_strategy("full"), (
            f"smallest class: {examples_per_class} examples > {self.few_shot_limit}: enough data for every layer to train "
            "from the start (benchmarks/results/strategies.md)")

    def _choose_for_text(self, examples_per_class: int, classes: int, epochs: int) -> tuple[Strategy, str]:
        from . import create_strategy

        if self.budget == "minimal":
            return create_strategy("linear-probe", solver="lbfgs"), (
                "budget=minimal: the encoder runs once and the head is fitted as a logistic regression (whole "
                "training sets: within 1 point of the peers' probe or ahead; benchmarks/results/text_full_set.md)")
        if examples_per_class <= TEXT_FEW_SHOT_LIMIT and classes <= SETFIT_CLASS_LIMIT:
            rounds = max(1, round(SETFIT_ROUNDS / epochs))
            return create_strategy("setfit", iterations=rounds), (
                f"smallest class: {examples_per_class} examples <= {TEXT_FEW_SHOT_LIMIT} and {classes} classes <= "
                f"{SETFIT_CLASS_LIMIT} for a text encoder: setfit (pairs of examples; {rounds} rounds per epoch for "
                f"{epochs} epochs, SetFit's 20 rounds in all) led or tied at 8 per class on TREC, SST-2 and emotion "
                "(benchmarks/results/text_summary.md)")
        why = (f"smallest class: {examples_per_class} examples > {TEXT_FEW_SHOT_LIMIT}" if examples_per_class >
               TEXT_FEW_SHOT_LIMIT else f"{classes} classes > {SETFIT_CLASS_LIMIT}")
        return create_strategy("lp-ft", probe="lbfgs"), (
            f"{why} for a text encoder: lp-ft from the fitted probe, which never fell far behind and held up with "
            "many classes (benchmarks/results/text_summary.md)")

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        raise TypeError("the auto strategy trains nothing itself: call choose() and train with its choice")
