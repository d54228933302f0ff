"""Fine-tuning strategies, one per file, registered by name (``warmstart list strategies``)."""

# importing each strategy's module registers it
from . import auto, bitfit, freeze, full, gradual_unfreeze, l2_sp, layerwise_lr, linear_probe, lora, lp_ft  # noqa: F401
from . import setfit  # noqa: F401
from .base import STRATEGIES, Strategy, create_strategy

__all__ = ["STRATEGIES", "Strategy", "create_strategy"]
