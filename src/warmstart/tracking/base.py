"""What an experiment tracker is: a training callback (plain dict logs, epoch by epoch) that also records the run's
parameters when it opens and its final test metrics and files when the run is done."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..engine.callbacks import Callback
from ..registry import Registry

# The epoch logs that are not measurements: they are not logged as scalars.
NOT_SCALARS = {"epoch", "steps_per_epoch", "phase", "trainable"}


def epoch_scalars(logs: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of one epoch's logs, as ``train/loss``, ``val/accuracy``, ``lr``, ... (the loop's ``train_loss``
    becomes ``train/loss``, so trackers group training and validation curves)."""
    scalars = {}
    for key, value in logs.items():
        if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        split, _, name = key.partition("_")
        scalars[f"{split}/{name}" if split in ("train", "val") and name else key] = float(value)
    return scalars


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config dicts as ``section.key`` strings, the shape trackers store parameters in."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


class Tracker(Callback):
    """A callback that logs to an experiment tracker. ``finish`` logs the final metrics and files and closes it;
    ``close`` closes it without them (a failed run)."""

    name = "base"

    def __init__(self, run_dir: Path, config: Mapping[str, Any]):
        self.run_dir, self.config = Path(run_dir), config

    def on_train_end(self, logs: dict[str, Any]) -> None:
        # the loop calls this from a ``finally``: an exception in flight means training failed, and nothing will
        # call ``finish``, so the tracker closes here (an MLflow run is marked FAILED)
        if sys.exc_info()[0] is not None:
            self.close()

    def finish(self, metrics: Mapping[str, float], artifacts: Sequence[Path] = ()) -> None:
        self.close()

    def close(self) -> None: ...


TRACKERS: Registry[type[Tracker]] = Registry("tracker")
