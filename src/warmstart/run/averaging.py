"""``--average``: weight averaging applied to a trained model before it is scored and saved (a plain checkpoint).

``wise-ft`` (finetune and tune) mixes the fine-tuned backbone with its pretrained weights, the mixing weight chosen
on the validation split over :data:`ALPHA_GRID` (which holds 1.0, the fine-tuned model itself: never worse there).
``soup`` (tune) averages the trained winner with the study's next-best trials, greedily (:class:`GreedySoup`).
The pure functions are in :mod:`warmstart.models.averaging`; this module only runs them on a run's model and data.
Both choose on validation only, so they need a validation split: refused before any training without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..data import DataSplits
from ..engine.loop import predict_logits
from ..errors import WarmstartError
from ..models import TransferModel
from ..models.averaging import choose_mixing, greedy_soup, interpolate, recompute_batchnorm
from .starting_point import note

AVERAGES = ("wise-ft", "soup")
# descending, so that among equal scores the weight nearest the fine-tuned model wins
ALPHA_GRID = tuple(round(1.0 - i / 10, 1) for i in range(11))


def validation_score(model: TransferModel, val: tuple[torch.Tensor, torch.Tensor],
                     device: torch.device) -> tuple[float, float]:
    """``(accuracy, -loss)`` on the validation split: higher is better, and the loss breaks ties in accuracy."""
    logits = predict_logits(model, val[0], device)
    return (float((logits.argmax(1) == val[1]).float().mean()), -float(nn.functional.cross_entropy(logits, val[1])))


class WeightAveraging:
    """What the trainer asks of an averaging method: ``check`` before training, ``before_training`` (a snapshot of
    the starting weights), and ``after_training``, which replaces the model's weights and returns the record that
    config.json keeps."""

    name = "none"

    def check(self, splits: DataSplits, *, pretrained: bool = True) -> None:
        """Refused before any training: no validation split to choose on. ``pretrained``: whether the run starts
        from trained weights (a checkpoint, a pretrained model, or an ``--adapt-on`` stage), not from scratch."""
        if splits.val is None:
            raise WarmstartError(f"--average {self.name} chooses on the validation split, and this run holds none out "
                                 "(--shots sets --val-fraction 0 by default)",
                                 hint="set --val-fraction (for example 0.2), or drop --average")

    def before_training(self, model: TransferModel) -> None:
        """Called once the model is built, before any step."""

    def after_training(self, model: TransferModel, *, train_x: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor],
                       device: torch.device, notes: list[str]) -> dict[str, Any]:
        raise NotImplementedError


def create_averaging(name: str | None, soup_trials: Sequence[tuple[str, Path]] = ()) -> WeightAveraging | None:
    """The method ``--average NAME`` names (None: none); ``soup`` takes the study's trial weights, best first."""
    if name is None or name == "none":
        return None
    if name == "wise-ft":
        return WiseFT()
    if name == "soup":
        return GreedySoup(soup_trials)
    raise WarmstartError(f"--average {name!r}: expected none, {' or '.join(AVERAGES)}",
                         hint="pass --average wise-ft (or soup with `warmstart tune`)")


def backbone_keys(model: TransferModel) -> list[str]:
    """The state-dict keys outside the head: what has pretrained weights to mix with."""
    head = {f"head.{k}" for k in model.head.state_dict()}
    return [k for k in model.state_dict() if k not in head]


class WiseFT(WeightAveraging):
    """WiSE-FT: ``(1 - alpha) * pretrained + alpha * fine-tuned`` on the backbone, the head fine-tuned, alpha chosen
    on validation over :data:`ALPHA_GRID`, BatchNorm statistics recomputed for every mixed model."""

    name = "wise-ft"

    def check(self, splits: DataSplits, *, pretrained: bool = True) -> None:
        super().check(splits, pretrained=pretrained)
        if not pretrained:  # the snapshot would be the random initialisation, reported as "pretrained"
            raise WarmstartError("--average wise-ft mixes the fine-tuned model with its pretrained weights, and a run "
                                 "from scratch has none (it would mix with the random initialisation)",
                                 hint="start --from a checkpoint or a pretrained model, or drop --average")

    def before_training(self, model: TransferModel) -> None:
        self.pretrained_ = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def after_training(self, model, *, train_x, val, device, notes):
        finetuned = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        keys = [k for k in backbone_keys(model) if k in self.pretrained_]
        if all(torch.equal(self.pretrained_[k], finetuned[k]) for k in keys):
            note(notes, "wise-ft: the backbone did not move in training (a frozen backbone), so there is nothing to "
                        "mix; the model is the fine-tuned one")
            return {"method": self.name, "alpha": 1.0, "skipped": "backbone unchanged"}
        recomputed = []

        def evaluate(alpha: float) -> tuple[float, float]:
            model.load_state_dict(interpolate(self.pretrained_, finetuned, alpha, keys))
            if alpha < 1.0:  # alpha 1 is the fine-tuned model, statistics and all
                recomputed.append(recompute_batchnorm(model, train_x, device))
            return validation_score(model, val, device)

        alpha, scores = choose_mixing(ALPHA_GRID, evaluate)
        evaluate(alpha)  # leaves the model at the chosen weights
        chosen, alone = scores[alpha], scores[1.0]
        note(notes, f"wise-ft: mixing weight alpha={alpha:g} chosen on validation (accuracy {chosen[0]:.4f}, the "
                    f"fine-tuned model alone {alone[0]:.4f}; pretrained alone {scores[0.0][0]:.4f})"
                    + ("; BatchNorm statistics recomputed on the training inputs" if any(recomputed) else ""))
        return {"method": self.name, "alpha": alpha, "batchnorm_recomputed": any(recomputed),
                "validation": [{"alpha": a, "accuracy": s[0], "loss": -s[1]} for a, s in scores.items()]}


class GreedySoup(WeightAveraging):
    """A greedy soup: the trained winner first, then the study's next-best trials (``trials``: label and weights
    file, best first), each kept only when the soup's validation score does not drop. A soup that keeps nothing
    but the winner falls back to it, and says so."""

    name = "soup"

    def __init__(self, trials: Sequence[tuple[str, Path]]):
        self.trials = list(trials)

    def after_training(self, model, *, train_x, val, device, notes):
        from safetensors.torch import load_file

        states = [{k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}]
        states += [load_file(str(path)) for _, path in self.trials]
        labels = ["the winner (retrained)", *(label for label, _ in self.trials)]

        recomputed = []

        def evaluate(state, ingredients: int) -> tuple[float, float]:
            model.load_state_dict(state)
            if ingredients > 1:
                recomputed.append(recompute_batchnorm(model, train_x, device))
            return validation_score(model, val, device)

        kept, soup, score, attempts = greedy_soup(states, evaluate)
        evaluate(soup, len(kept))
        record = {"method": self.name, "ingredients": [labels[i] for i in kept], "tried": labels,
                  "validation": [{"added": labels[i], "accuracy": s[0], "loss": -s[1]}
                                 for i, s in enumerate(attempts)], "accuracy": score[0]}
        if len(states) == 1:  # --trials 1, or no other trial finished: nothing to average the winner with
            note(notes, "soup: no other finished trial to average the winner with, so the soup is the best single "
                        f"model (validation accuracy {score[0]:.4f}); a soup needs --trials 2 or more")
            return {**record, "fell_back": True}
        if len(kept) == 1:
            note(notes, f"soup: none of the other {len(states) - 1} trial(s) kept the soup's validation score from "
                        f"dropping, so it fell back to the best single model (validation accuracy {score[0]:.4f})")
            return {**record, "fell_back": True}
        note(notes, f"soup: averaged {len(kept)} of {len(states)} models (validation accuracy {score[0]:.4f}, the "
                    f"best single model {attempts[0][0]:.4f})"
                    + ("; BatchNorm statistics recomputed" if any(recomputed) else ""))
        return {**record, "fell_back": False}
