"""Callbacks receive plain dicts of logs, as in Keras. Progress, the JSON-lines log and best-weights come by
default; users may pass their own."""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

from torch import nn

from ..io import atomic_write


class Callback:
    """Hooks the loop calls. ``on_train_begin`` gets ``epochs``, ``steps_per_epoch`` and ``first_epoch`` (after
    a resume, the first epoch still to run); ``on_batch_end`` gets ``loss``, a function (reading the loss syncs the
    device, so only call it when needed); ``on_epoch_end`` the epoch's logs. Setting ``stop_training`` stops the run
    after the current step."""

    stop_training = False

    def on_optimizer(self, optimizer: Any) -> None:
        """Called once before training with the optimizer the loop steps (lr-find's callback steers its rate)."""

    def on_train_begin(self, logs: dict[str, Any]) -> None: ...
    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_train_end(self, logs: dict[str, Any]) -> None: ...


class JsonLinesLogger(Callback):
    """Appends one JSON object per epoch to ``path`` and flushes it, so a crash keeps every finished epoch.

    A resumed run (``first_epoch`` > 1) first cuts the file back to the epochs before ``first_epoch``, the ones in
    the saved state: a run killed after writing an epoch's line but before saving its state repeats that epoch,
    and its line must not appear twice."""

    def __init__(self, path: str | Path, **context: Any):
        self.path = Path(path)
        self.context = context

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        first_epoch = logs.get("first_epoch", 1)
        if first_epoch > 1 and self.path.is_file():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True)
                    if _epoch_of(line) is not None and _epoch_of(line) < first_epoch]
            atomic_write(self.path, lambda tmp: Path(tmp).write_text("".join(kept), encoding="utf-8"))
        self._file = open(self.path, "a", encoding="utf-8")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._file.write(json.dumps({**self.context, **logs}) + "\n")
        self._file.flush()

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self._file.close()


def _epoch_of(line: str) -> int | None:
    """The epoch a log line records; None for a cut-off or foreign line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    epoch = record.get("epoch") if isinstance(record, dict) else None
    return epoch if isinstance(epoch, int) else None


class BestWeights(Callback):
    """Keeps the weights of the epoch with the best ``monitor`` value and restores them when training ends."""

    def __init__(self, model: nn.Module, monitor: str = "val_accuracy", mode: str = "max"):
        self.model, self.monitor, self.mode = model, monitor, mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._state: dict | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.best_epoch = value, epoch
            self._state = copy.deepcopy(self.model.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "weights": self._state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self._state = state["best"], state["best_epoch"], state["weights"]

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self._state is not None:
            self.model.load_state_dict(self._state)
            logs["best_epoch"] = self.best_epoch
            logs[f"best_{self.monitor}"] = self.best


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs (the loop reads ``stop_training``).

    Pair it with :class:`BestWeights` to end on the best epoch's weights rather than the last one's.
    """

    def __init__(self, patience: int, monitor: str = "val_accuracy", mode: str = "max", min_delta: float = 0.0):
        self.patience, self.monitor, self.mode, self.min_delta = patience, monitor, mode, min_delta
        self.best: float | None = None
        self.wait = 0
        self.stop_training = False
        self.stopped_epoch: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], state["wait"]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(f"early stopping monitors {self.monitor!r}, which the epoch logs lack: {sorted(logs)}")
        better = self.best is None or (value > self.best + self.min_delta if self.mode == "max"
                                       else value < self.best - self.min_delta)
        if better:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stop_training, self.stopped_epoch = True, epoch

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self.stopped_epoch is not None:
            logs["stopped_epoch"] = self.stopped_epoch


class ProgressBar(Callback):
    """Progress on stderr: epochs and steps, loss, accuracy, elapsed time and time left.

    On a terminal, a rich progress bar. Anywhere else (a log file, nohup, a batch scheduler), where rich would draw
    only its final frame, one plain line per epoch, as Keras prints::

        finetune epoch 3/10 - 12.4s - loss 0.4123 - acc 0.861 - val_loss 0.5012 - val_acc 0.830
    """

    def __init__(self, description: str = "train", *, plain: bool | None = None):
        self.description = description
        self.plain = plain  # None: plain lines when stderr is not a terminal

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        console = Console(file=sys.stderr)
        self.total_epochs = logs["epochs"]
        self._plain = not console.is_terminal if self.plain is None else self.plain
        if self._plain:
            return
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("left"),
                                 TimeRemainingColumn(), console=console, transient=False)
        self.progress.start()
        done = logs.get("first_epoch", 1) - 1
        self.epochs = self.progress.add_task(self.description, total=logs["epochs"], completed=done, stats="")
        self.steps = self.progress.add_task("  steps", total=logs["epochs"] * logs["steps_per_epoch"],
                                            completed=done * logs["steps_per_epoch"], stats="")
        self._last = 0.0

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self._plain:
            return
        now = time.monotonic()
        if now - self._last > 0.2:  # reading the loss forces a device sync: not on every step
            self.progress.update(self.steps, completed=step, stats=f"loss {logs['loss']():.4f}")
            self._last = now

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._plain:
            parts = [f"{self.description} epoch {epoch}/{self.total_epochs}", f"{logs.get('epoch_time_s', 0):.1f}s"]
            parts += [f"{label} {logs[key]:{form}}" for key, label, form in _PLAIN_COLUMNS if key in logs]
            print(" - ".join(parts), file=sys.stderr, flush=True)
            return
        loss = logs.get("train_loss", logs.get("pair_loss", float("nan")))
        stats = f"loss {loss:.4f}"
        if "train_accuracy" in logs:
            stats += f" acc {logs['train_accuracy']:.3f}"
        if "val_accuracy" in logs:
            stats += f" | val acc {logs['val_accuracy']:.3f}"
        self.progress.update(self.epochs, completed=epoch, stats=stats)
        self.progress.update(self.steps, completed=epoch * logs["steps_per_epoch"])

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if not self._plain:
            self.progress.stop()


# what a plain progress line shows, when the epoch's logs have it: (key, label, format)
_PLAIN_COLUMNS = (("train_loss", "loss", ".4f"), ("pair_loss", "pair_loss", ".4f"), ("train_accuracy", "acc", ".3f"),
                  ("val_loss", "val_loss", ".4f"), ("val_accuracy", "val_acc", ".3f"))
