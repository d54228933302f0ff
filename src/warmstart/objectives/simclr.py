"""SimCLR: an image backbone learns from unlabelled images by telling two augmentations of each apart from the rest.

Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual Representations", ICML
2020. Every image of a batch is augmented twice (random crop, flip, colour jitter, grey; the ``simclr`` preset of
:mod:`warmstart.data.augment`, or any other preset); the backbone and a projection MLP embed both views, and the
NT-Xent loss (:func:`~warmstart.objectives.contrastive.nt_xent_loss`) pulls each view towards its partner and away
from the other 2N - 2 embeddings of the batch. The projection head is dropped afterwards: the backbone's features
are what transfers.

The batch is the source of negatives, so its size matters (the paper: 4096 on TPUs; 256 already works on small
images). Gradient accumulation does not give a larger batch here and is refused (``Objective.check``). Under DDP
each process embeds its share, and ``gather=True`` (the default) gathers the embeddings of every process with
gradients before the loss, so the contrast spans the global batch, as one process with the whole batch would.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..data.augment import AUGMENTATIONS, TwoViews
from .base import OBJECTIVES, Objective, Transform, check_option, check_projection, check_temperature
from .contrastive import gather_with_gradients, nt_xent_loss


@OBJECTIVES.register("simclr")
class SimCLR(Objective):
    """SimCLR (Chen et al. 2020): two augmented views per image, a projection MLP, the NT-Xent loss; for images."""

    name = "simclr"
    kinds = ("image",)

    def __init__(self, *, temperature: float = 0.5, augment: str = "simclr", projection_dim: int = 128,
                 gather: bool = True):
        check_temperature(temperature)
        check_option(augment in AUGMENTATIONS, "augment", f"one of {', '.join(AUGMENTATIONS.names())}", augment)
        check_projection(projection_dim)
        check_option(isinstance(gather, bool), "gather", "true or false", gather)
        self.temperature, self.augment, self.projection_dim, self.gather = temperature, augment, projection_dim, gather

    def views_transform(self, normalize: Callable[[torch.Tensor], torch.Tensor],
                        generator: torch.Generator) -> Transform:
        return TwoViews(self.augment, normalize, generator)

    def compute_loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: nn.Module) -> tuple[torch.Tensor, None]:
        # inputs: (n, 2, C, H, W); both views in one forward pass
        z1, z2 = module(inputs.transpose(0, 1).flatten(0, 1)).float().chunk(2)
        rows = None
        if self.gather:
            (z1, rows), (z2, _) = gather_with_gradients(z1), gather_with_gradients(z2)
        return nt_xent_loss(z1, z2, self.temperature, rows=rows), None

    def epoch_logs(self, examples: int) -> dict[str, Any]:
        return {"views": 2 * examples}
