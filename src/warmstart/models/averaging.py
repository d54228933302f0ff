"""Weight averaging, as pure functions of state dicts: WiSE-FT's interpolation, uniform averages, greedy soups.

WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022) interpolates the fine-tuned weights
with the pretrained ones, ``theta(alpha) = (1 - alpha) * theta_pretrained + alpha * theta_finetuned``; alpha = 1 is
the fine-tuned model itself, so choosing alpha on validation over a grid that holds 1.0 is never worse there. A new
head has no pretrained counterpart: it is taken whole from the fine-tuned model (``keys`` names what is mixed).

A model soup (Wortsman et al., "Model soups", ICML 2022) averages models fine-tuned from the same starting point
with different hyperparameters. The greedy soup adds them in order of validation accuracy, each kept only when the
soup's validation score does not drop.

Averaged weights do not average the BatchNorm statistics that go with them: :func:`recompute_batchnorm` estimates
them again on training inputs (``torch.optim.swa_utils.update_bn``).

Nothing here trains or knows about runs; the run layer (``run/averaging.py``) applies these to a trained model.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence, TypeVar

import torch
from torch import nn

State = Mapping[str, torch.Tensor]
Score = TypeVar("Score")


def interpolate(pretrained: State, finetuned: State, alpha: float, keys: Iterable[str]) -> dict[str, torch.Tensor]:
    """``finetuned`` with each floating-point tensor named in ``keys`` replaced by ``(1 - alpha) * pretrained +
    alpha * finetuned``; every other tensor (the head, integer counters) is the fine-tuned one."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    mixed = {k: v.clone() for k, v in finetuned.items()}
    for key in keys:
        if finetuned[key].is_floating_point():
            mixed[key] = torch.lerp(pretrained[key].to(finetuned[key].dtype), finetuned[key], alpha)
    return mixed


def average(states: Sequence[State]) -> dict[str, torch.Tensor]:
    """The uniform average of ``states`` (the same keys and shapes); integer tensors are the first state's."""
    if not states:
        raise ValueError("nothing to average")
    first = states[0]
    return {k: (torch.stack([s[k].to(v.dtype) for s in states]).mean(0) if v.is_floating_point() else v.clone())
            for k, v in first.items()}


def choose_mixing(grid: Sequence[float], evaluate: Callable[[float], Score]) -> tuple[float, dict[float, Score]]:
    """The mixing weight of ``grid`` whose ``evaluate(alpha)`` is highest (the first of equals in grid order), and
    every weight's score. ``evaluate`` returns something comparable: (accuracy, -loss) breaks ties in accuracy."""
    if not grid:
        raise ValueError("empty grid")
    scores = {alpha: evaluate(alpha) for alpha in grid}
    best = max(grid, key=lambda alpha: scores[alpha])  # max returns the first maximal element
    return best, scores


def greedy_soup(states: Sequence[State], evaluate: Callable[[State, int], Score],
                ) -> tuple[list[int], dict[str, torch.Tensor], Score, list[Score]]:
    """The greedy soup of ``states``, given best first (by their own validation score): start from the first, try
    adding each next one, keep it when ``evaluate(soup, ingredients)`` of the averaged soup is not lower (so the soup
    never scores below the first state alone). Returns the kept indices, the soup's weights, its score, and the score
    of each attempt (the first: the first state alone)."""
    if not states:
        raise ValueError("no ingredients")
    kept, soup = [0], {k: v.clone() for k, v in states[0].items()}
    best = evaluate(soup, 1)
    attempts = [best]
    for index in range(1, len(states)):
        candidate = average([states[i] for i in kept] + [states[index]])
        score = evaluate(candidate, len(kept) + 1)
        attempts.append(score)
        if score >= best:
            kept, soup, best = kept + [index], candidate, score
    return kept, soup, best, attempts


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, inputs: torch.Tensor, device: torch.device, batch_size: int = 128) -> bool:
    """Re-estimate every BatchNorm layer's running statistics on ``inputs`` (a cumulative average over one pass,
    as ``torch.optim.swa_utils.update_bn`` does); returns False when the model has no BatchNorm."""
    if not has_batchnorm(model):
        return False
    from torch.optim.swa_utils import update_bn

    model.to(device)
    update_bn((inputs[i:i + batch_size] for i in range(0, len(inputs), batch_size)), model, device=device)
    model.eval()
    return True
