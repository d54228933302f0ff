"""The engine: the training loop (the only place training steps happen), the trainer around it, optimizers and
schedules, callbacks, devices and seeds."""

from .batches import TensorBatches
from .callbacks import BestWeights, Callback, EarlyStopping, JsonLinesLogger, ProgressBar
from .device import resolve_device, seed_everything
from .loop import History, fit, predict_logits
from .optim import build_optimizer, build_scheduler, lr_multiplier
from .trainer import train

__all__ = ["TensorBatches", "BestWeights", "Callback", "EarlyStopping", "JsonLinesLogger", "ProgressBar",
           "resolve_device",
           "seed_everything", "History", "fit", "predict_logits", "build_optimizer", "build_scheduler",
           "lr_multiplier", "train"]
