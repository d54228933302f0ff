"""The table of every registered family, by the name ``warmstart list`` takes: one place for the list command,
the help and :func:`warmstart.list_registered`. Each family is imported only when it is asked for."""

from __future__ import annotations

from importlib import import_module

from .errors import WarmstartError
from .registry import Registry

# family name -> (module, registry attribute); the per-image augmentation presets (--augment) and the batch mixes
# (--mix) are listed together as "augmentations"
FAMILIES: dict[str, tuple[tuple[str, str], ...]] = {
    "models": (("warmstart.models", "MODELS"),),
    "strategies": (("warmstart.strategies", "STRATEGIES"),),
    "objectives": (("warmstart.objectives", "OBJECTIVES"),),
    "datasets": (("warmstart.data", "DATASETS"),),
    "augmentations": (("warmstart.data.augment", "AUGMENTATIONS"), ("warmstart.data.augment", "MIXES")),
    "scores": (("warmstart.selection", "SCORES"),),
    "adaptations": (("warmstart.adaptation", "ADAPTATIONS"),),
    "corruptions": (("warmstart.data.corruptions", "CORRUPTIONS"),),
    "shift-measures": (("warmstart.shift", "SHIFT_MEASURES"),),
    "optimizers": (("warmstart.engine.optim", "OPTIMIZERS"),),
    "schedules": (("warmstart.engine.optim", "SCHEDULES"),),
}


def registries(family: str) -> list[Registry]:
    """The registries that make up ``family``."""
    if family not in FAMILIES:
        raise WarmstartError(f"nothing called {family!r} to list; expected one of {', '.join(FAMILIES)}",
                             hint="e.g. `warmstart list strategies`")
    return [getattr(import_module(module), name) for module, name in FAMILIES[family]]


def list_registered(family: str) -> dict[str, str]:
    """Names and one-line descriptions of every entry of ``family`` (one of :data:`FAMILIES`)."""
    described: dict[str, str] = {}
    for registry in registries(family):
        described.update(registry.describe())
    return described
