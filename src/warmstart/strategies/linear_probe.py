"""Linear probe on cached features: the backbone runs once over the data, then only the head trains.

Freezing the backbone and training a linear head is the classic transfer baseline (Donahue et al., DeCAF, 2014;
Kornblith et al., "Do Better ImageNet Models Transfer Better?", CVPR 2019). Because the backbone is frozen, its
features never change: warmstart computes them once, keyed by the backbone's weights and the inputs, and trains
the head on the cache, so each epoch costs a matrix product instead of a forward pass through the backbone.
"""

from __future__ import annotations

import torch

from ..config import TrainConfig, is_int, is_number
from ..data.augment import AUGMENTATIONS, augment
from ..errors import WarmstartError
from ..search_space import SearchParam
from .base import STRATEGIES, ViewTransform, check_option
from .freeze import FrozenBackbone


@STRATEGIES.register("linear-probe")
class LinearProbe(FrozenBackbone):
    """The backbone is frozen and runs once; the head trains on its cached features (cache: memory or disk).

    Gives the same result as ``freeze`` without augmentation (the backbone in eval mode computes the same features
    every epoch), many times faster; like ``freeze``, the head trains at ``head_lr_scale`` x lr.

    ``views=N`` adds augmentation the cached way: the training set's features are computed for the clean images and
    for N-1 augmented views of each (``augment``, seeded by the view number, so they are cached too), and the head
    trains on all N x n of them; validation and test stay clean. Images only.

    ``cache="disk"`` also keeps the features under ``~/.cache/warmstart/features`` (or ``$WARMSTART_CACHE_DIR``) for
    later runs on the same checkpoint and data.

    ``solver="lbfgs"`` fits the head to convergence instead of training it for ``epochs`` in the loop: an
    L2-regularised multinomial logistic regression (scikit-learn's objective) by L-BFGS, with the inverse strength
    ``C`` chosen by cross-validation on the training features (``C="auto"``) or given. See engine/logistic.py.
    """

    name = "linear-probe"

    def __init__(self, *, cache: str = "memory", views: int = 1, augment: str = "light",
                 head_lr_scale: float = 10.0, solver: str = "loop", C: float | str = "auto"):
        super().__init__(head_lr_scale=head_lr_scale)
        check_option(cache in ("memory", "disk"), "cache", "memory or disk", cache)
        check_option(is_int(views) and views >= 1, "views", "a positive integer", views)
        check_option(augment in AUGMENTATIONS, "augment", f"one of {', '.join(AUGMENTATIONS.names())}", augment)
        check_option(solver in ("loop", "lbfgs"), "solver", "loop (the training loop, for --epochs) or lbfgs "
                     "(logistic regression fitted to convergence)", solver)
        check_option(C == "auto" or (is_number(C) and C > 0), "C", "auto or a positive number", C)
        self.cache = cache
        self.views = views
        self.augment = augment
        self.solver = solver
        self.C = C

    @property
    def search_space(self) -> tuple[SearchParam, ...]:
        """The L-BFGS head has one setting, C; a head trained in the loop on cached features has no per-batch
        augmentation (the cached way is ``views``)."""
        if self.solver == "lbfgs":
            return (SearchParam("C", 1e-3, 1e3, log=True),)
        return tuple(p for p in FrozenBackbone.search_space if p.name != "augment")

    def unused_settings(self) -> dict[str, str]:
        unused = super().unused_settings()
        if self.solver != "lbfgs":
            unused["C"] = "C is the L-BFGS head's (solver=lbfgs); the head trained in the loop does not read it"
        return unused

    @property
    def feature_cache(self) -> str:
        return self.cache

    @property
    def head_solver(self) -> str:
        return self.solver

    def feature_views(self) -> list[tuple[str, ViewTransform | None]]:
        """The clean inputs, then ``views - 1`` augmented copies, each seeded by its number (so cached too)."""
        return [("", None)] + [(f"{self.augment}:{view}", lambda x, v=view: augment(x, self.augment, seed=v))
                               for view in range(1, self.views)]

    def check(self, config: TrainConfig, *, train: tuple[torch.Tensor, torch.Tensor], distributed: bool,
              resume: bool, aligned: bool, augmented: bool) -> None:
        if self.views > 1 and train[0].ndim != 4:
            raise WarmstartError(f"{self.name}: views={self.views} augments images, but the inputs are vectors of "
                                 f"shape {tuple(train[0].shape[1:])}", hint="use views=1 for vector data")
