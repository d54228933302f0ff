"""Fine-tuning strategies, one per file, registered by name (``warmstart list strategies``)."""

from . import auto, freeze, full, gradual_unfreeze, l2_sp, layerwise_lr, linear_probe, lp_ft  # noqa: F401  (registers the strategies)
from .base import STRATEGIES, Strategy, create_strategy

__all__ = ["STRATEGIES", "Strategy", "create_strategy"]
