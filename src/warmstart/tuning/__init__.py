"""Searching how to fine-tune: ``warmstart tune`` (an Optuna study over the strategy's declared space, on the one
training loop) and the starting-point race (:mod:`warmstart.tuning.race`)."""

from .study import TuneResult, TuneSettings, run_tune

__all__ = ["TuneResult", "TuneSettings", "run_tune"]
