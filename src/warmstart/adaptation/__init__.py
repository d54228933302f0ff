"""Unsupervised domain adaptation: one method per file, registered by name (``warmstart list adaptations``).

DANN and Deep CORAL are loss modules on source and target features; AdaBN is a pure function on BatchNorm
statistics. :mod:`.alignment` is the one place that joins a loss module to the training loop.
"""

# importing each method's module registers it
from . import adabn, coral, dann  # noqa: F401
from .adabn import adapt_batchnorm
from .alignment import FeatureAlignment
from .base import ADAPTATIONS, Adaptation, create_adaptation
from .coral import CorrelationAlignmentLoss
from .dann import DomainAdversarialLoss, GradientReversal, ganin_lambda

__all__ = ["ADAPTATIONS", "Adaptation", "create_adaptation", "adapt_batchnorm", "FeatureAlignment",
           "CorrelationAlignmentLoss", "DomainAdversarialLoss", "GradientReversal", "ganin_lambda"]
