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

The choice and its reason are reported in the run's notes and recorded in its config.
"""

from __future__ import annotations

from ..config import check_parameter, is_int
from ..models import TransferModel
from .base import STRATEGIES, Strategy

FEW_SHOT_LIMIT = 50
TEXT_FEW_SHOT_LIMIT = 16
SETFIT_CLASS_LIMIT = 20
SETFIT_ROUNDS = 20  # SetFit's num_iterations for one epoch, spread over the run's epochs


@STRATEGIES.register("auto")
class Auto(Strategy):
    """Picks gradual-unfreeze up to 50 examples per class, full above, linear-probe with budget=minimal; for a text
    encoder setfit up to 16 per class, lp-ft (fitted probe first) above, the L-BFGS probe with budget=minimal."""

    name = "auto"
    resolved_per_run = True  # the API replaces it by the strategy it chooses before training

    def __init__(self, *, budget: str = "normal", few_shot_limit: int = FEW_SHOT_LIMIT):
        check_parameter(budget in ("normal", "minimal"), "budget", "normal or minimal", budget)
        check_parameter(is_int(few_shot_limit) and few_shot_limit >= 1, "few_shot_limit", "a positive integer",
                        few_shot_limit)
        self.budget = budget
        self.few_shot_limit = few_shot_limit

    def choose(self, examples_per_class: int, *, pretrained: bool = True, text: bool = False, classes: int = 2,
               epochs: int = 1) -> tuple[Strategy, str]:
        """The strategy for a training set whose smallest class has ``examples_per_class`` examples, and why;
        ``text``: the model is a transformer text encoder, for ``classes`` classes, trained for ``epochs``."""
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
                f"{examples_per_class} examples per class <= {self.few_shot_limit}: gradual-unfreeze was the best or "
                "tied for best at 5, 10 and 50 per class (benchmarks/results/strategies.md)")
        return create_strategy("full"), (
            f"{examples_per_class} examples per class > {self.few_shot_limit}: enough data for every layer to train "
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
                f"{examples_per_class} examples per class <= {TEXT_FEW_SHOT_LIMIT} and {classes} classes <= "
                f"{SETFIT_CLASS_LIMIT} for a text encoder: setfit (pairs of examples; {rounds} rounds per epoch for "
                f"{epochs} epochs, SetFit's 20 rounds in all) led or tied at 8 per class on TREC, SST-2 and emotion "
                "(benchmarks/results/text_summary.md)")
        why = (f"{examples_per_class} examples per class > {TEXT_FEW_SHOT_LIMIT}" if examples_per_class >
               TEXT_FEW_SHOT_LIMIT else f"{classes} classes > {SETFIT_CLASS_LIMIT}")
        return create_strategy("lp-ft", probe="lbfgs"), (
            f"{why} for a text encoder: lp-ft from the fitted probe, which never fell far behind and held up with "
            "many classes (benchmarks/results/text_summary.md)")

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        raise TypeError("the auto strategy trains nothing itself: call choose() and train with its choice")
