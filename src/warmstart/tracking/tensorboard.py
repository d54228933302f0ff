"""TensorBoard event files in ``RUN_DIR/tensorboard``, through ``torch.utils.tensorboard.SummaryWriter``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from .base import TRACKERS, Tracker, epoch_scalars

log = logging.getLogger("warmstart")
FOLDER = "tensorboard"


@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    """Per-epoch scalars (train/loss, val/accuracy, lr, ...), the config as text, and the final test metrics
    (test/accuracy, ...) in ``RUN_DIR/tensorboard``; view with ``tensorboard --logdir RUN_DIR``."""

    name = "tensorboard"

    def __init__(self, run_dir: Path, config: Mapping[str, Any]):
        super().__init__(run_dir, config)
        # imported here: tensorboard takes a noticeable time to import, and only runs that log pay it
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.run_dir / FOLDER))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)
        self._last_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for tag, value in epoch_scalars(logs).items():
            self.writer.add_scalar(tag, value, epoch)
        self._last_epoch = epoch

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self.writer.flush()
        super().on_train_end(logs)

    def finish(self, metrics: Mapping[str, float], artifacts: Sequence[Path] = ()) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"test/{key}", float(value), self._last_epoch)
        self.close()

    def close(self) -> None:
        self.writer.close()
