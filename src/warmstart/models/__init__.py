"""Models: the backbone contract, the registered architectures and checkpoints."""

from . import cnn, hf, keras_net, mlp, timm_backbone, torchvision_backbone  # noqa: F401  (registers the architectures)
from .base import MODELS, TransferModel, create_model
from .checkpoint import (CheckpointInfo, load_checkpoint, read_info, recorded_checkpoint, resolve_path,
                         save_checkpoint, save_weights)

__all__ = ["MODELS", "TransferModel", "create_model", "CheckpointInfo", "load_checkpoint", "read_info",
           "recorded_checkpoint", "resolve_path", "save_checkpoint", "save_weights"]
