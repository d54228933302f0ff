"""Self-supervised objectives, one per file, registered by name: SimCLR for images, SimCSE and masked-language
modelling for text (the default, ``supervised``, plain cross-entropy on labels, is not an objective here). Each is a
strategy of the one training loop; see :mod:`warmstart.objectives.base`."""

# importing each objective's module registers it
from . import mlm, simclr, simcse  # noqa: F401
from .base import OBJECTIVES, Objective, create_objective
from .contrastive import info_nce_loss, nt_xent_loss

__all__ = ["OBJECTIVES", "Objective", "create_objective", "info_nce_loss", "nt_xent_loss"]
