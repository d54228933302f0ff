"""Experiment trackers: TensorBoard (by default) and MLflow, each a training callback behind ``--tracker``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import WarmstartError
from .base import TRACKERS, Tracker, epoch_scalars, flatten
from . import mlflow as _mlflow, tensorboard as _tensorboard  # noqa: F401  (register the trackers)

__all__ = ["TRACKERS", "Tracker", "epoch_scalars", "flatten", "open_trackers", "parse_trackers"]

log = logging.getLogger("warmstart")
DEFAULT_TRACKERS = ("tensorboard",)


def parse_trackers(values: Sequence[str] | str | None) -> tuple[str, ...]:
    """``--tracker`` values, repeated or comma-separated, checked against the registry; ``none`` means no tracker
    (alone: ``none`` with another tracker is a contradiction)."""
    if values is None:
        return DEFAULT_TRACKERS
    items = [values] if isinstance(values, str) else list(values)
    names = list(dict.fromkeys(v.strip() for value in items for v in str(value).split(",") if v.strip()))
    if "none" in names:
        if len(names) > 1:
            raise WarmstartError(f"--tracker: 'none' turns tracking off, but {', '.join(names)} were given together",
                                 hint="pass --tracker none alone, or only the trackers to use")
        return ()
    for name in names:
        TRACKERS.get(name, parameter="--tracker")
    return tuple(names)


def open_trackers(names: Sequence[str], run_dir: Path, config: Mapping[str, Any]) -> list[Tracker]:
    """One open tracker per name. TensorBoard is the default: without the tensorboard package it is skipped with a
    note rather than failing the run; a tracker asked for by name that cannot start is an error."""
    opened: list[Tracker] = []
    for name in names:
        try:
            opened.append(TRACKERS.create(name, run_dir, config, parameter="--tracker"))
        except ImportError as exc:
            if name == "tensorboard":
                log.info("tensorboard tracking skipped: %s (pip install tensorboard, or pass --tracker none)", exc)
                continue
            raise
    return opened
