"""Is the validation signal big enough to tune on? A search picks the best of T noisy scores; when the noise lifts
the best score by more than the differences between settings, the winner is chosen by noise.

A trial's score is its accuracy on the n validation examples it is scored on (the validation split; with folds,
every training example once). As an estimate of the setting's accuracy on new data it carries binomial noise, of
standard error ``sqrt(p (1 - p) / n)``; before any trial the accuracy p is unknown, so we take the largest,
``0.5 / sqrt(n)`` (p = 0.5). The search keeps the best of its T trials. Were the T settings equally good, noise alone
would put the best validation score above its true accuracy by, on average, the standard error times the expected
maximum of T standard normals (0.56 for T = 2, 1.54 for 10, 1.87 for 20): the selection bias of model selection
(Cawley and Talbot, JMLR 2010). Differences between settings smaller than this *selection lift* are invisible to
the search: what it finds above the recipe is then mostly lift, and it does not carry to the test split.

The threshold, :data:`SEARCH_GAIN`, is the gain a search is for. Recipes that train at all differ by a few points
(the issue's goal for tuning is +2 points over the default recipe; TREC's full fine-tuning varies by 9 points across
seeds alone), so a search that cannot see 5 points through its noise is not worth its compute: we warn when the lift
exceeds 0.05. The lift is an upper estimate (the trials share their validation examples, which makes their noise
partly common and the lift smaller; the folds' own training noise, not counted, makes it larger). Examples, at T = 20:
n = 50 (10 shots of 5 classes, folds) lifts 0.132 and warns; n = 384 (64 shots of 6 classes) lifts 0.048 and does
not; our 10-shot benchmark (n = 50, T = 8: lift 0.10) found tuned 0.627 against the default recipe's 0.690 on test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# The smallest gain over the recipe a search must be able to see (see the module's docstring).
SEARCH_GAIN = 0.05


def expected_maximum(trials: int) -> float:
    """E[max of ``trials`` independent standard normals] (0 for one trial): the maximum's quantile function
    integrated, ``∫_0^1 Φ⁻¹(u^(1/T)) du``, with ``Φ⁻¹(u^(1/T))`` taken as the upper quantile of
    ``-expm1(ln(u) / T)``, exact for any T. (The density form ``∫ x T φ(x) Φ(x)^(T-1) dx`` agrees to 1e-8 up to
    10^9 trials and then breaks down: 3559 for 10^20 trials, where the maximum is about 9.)"""
    import numpy as np
    from scipy import integrate
    from scipy.stats import norm

    if trials <= 1:
        return 0.0
    value, _ = integrate.quad(lambda u: norm.isf(-np.expm1(np.log(u) / trials)), 0.0, 1.0, limit=200)
    return float(value)


@dataclass(frozen=True)
class ValidationNoise:
    """How noisy a search's scores are: ``examples`` scored per trial, ``trials`` in the search."""

    examples: int
    trials: int

    @property
    def standard_error(self) -> float:
        """The binomial standard error of one trial's validation accuracy, at its largest (accuracy 0.5)."""
        return 0.5 / math.sqrt(max(1, self.examples))

    @property
    def selection_lift(self) -> float:
        """How far noise alone lifts the best of the trials' scores above its true accuracy, on average (at most 1:
        an accuracy cannot be lifted further)."""
        return min(1.0, self.standard_error * expected_maximum(self.trials))

    @property
    def too_small(self) -> bool:
        return self.selection_lift > SEARCH_GAIN

    @property
    def warning(self) -> str | None:
        if not self.too_small:
            return None
        return (f"the validation signal is too small to tune on: each trial is scored on {self.examples} examples "
                f"(standard error of its accuracy up to {self.standard_error:.3f}), so noise alone lifts the best of "
                f"{self.trials} trials by about {self.selection_lift:.3f}, more than the {SEARCH_GAIN:.2f} a search "
                "is for; the winner's validation accuracy will not carry to the test split. Score more examples "
                "(more shots or a larger --val-fraction), run fewer --trials, or keep the default recipe (finetune)")

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "trials": self.trials, "standard_error": self.standard_error,
                "selection_lift": self.selection_lift, "threshold": SEARCH_GAIN, "warning": self.warning}
