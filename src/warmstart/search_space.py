"""What ``warmstart tune`` searches: parameters as data, declared by each strategy, overridden by a YAML file.

A :class:`SearchParam` names a :class:`~warmstart.config.TrainConfig` field (``lr``, ``epochs``, ``augment``, ...) or
an option of the strategy (``head_lr_scale``, ``layer_decay``, ``C``, ...), and the values it may take: a range
(uniform, log-uniform, whole numbers) or a list of choices. A ``relative`` range multiplies the run's own value of
the field (the learning rate the run would train at, its epochs), so one declaration suits a small CNN (1e-3) and a
transformer (5e-5) alike. ``kinds`` says which data it applies to (augmentation presets: images only).

Each strategy declares its space in ``Strategy.search_space`` (strategies/base.py); ``--space FILE.yaml`` changes it
key by key (:func:`read_space_file`)::

    lr: {low: 1.0e-4, high: 1.0e-2, log: true}    # a range (absolute values)
    epochs: {low: 2, high: 6, int: true}
    augment: {choices: [none, light]}              # a list of choices
    weight_decay: 0.0                              # fixed at one value
    label_smoothing: null                          # not searched: the run's own value

The file's keys are checked against what the run can set (the training fields and the strategy's options), and a
wrong key or value raises an error that names the file and the key. This module imports nothing of warmstart but
its error type, so every layer can use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Mapping

from .config import is_number
from .errors import WarmstartError

log = logging.getLogger("warmstart")

ALL_KINDS = ("image", "vector", "text")
# training settings that apply to some kinds of data only, whoever declares them (a strategy or a --space file)
SETTING_KINDS = {"augment": ("image",), "mix": ("image",)}


@dataclass(frozen=True)
class SearchParam:
    """One searched parameter: a range ``[low, high]`` (``log``: log-uniform; ``integer``: whole numbers), or
    ``choices``. ``relative``: the bounds multiply the run's own value of the field."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None
    relative: bool = False
    kinds: tuple[str, ...] = ALL_KINDS

    def __post_init__(self) -> None:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError(f"search parameter {self.name}: give choices, or low and high, not both")
            object.__setattr__(self, "choices", tuple(self.choices))
        elif self.low is None or self.high is None or not self.low <= self.high or (self.log and self.low <= 0):
            raise ValueError(f"search parameter {self.name}: needs low <= high (> 0 for log), got {self.low}, "
                             f"{self.high}")

    def bounds(self, own: Any) -> tuple[float, float]:
        """``(low, high)``, scaled by the run's own value ``own`` when ``relative`` (whole numbers stay whole, >= 1)."""
        low, high = (self.low * own, self.high * own) if self.relative else (self.low, self.high)
        if self.integer:
            low, high = (max(1, round(low)), max(1, round(high))) if self.relative else (int(low), int(high))
        return low, high

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log, "int": self.integer,
                **({"relative": True} if self.relative else {})}


def fixed(name: str, value: Any) -> SearchParam:
    """A parameter held at one value (a one-choice parameter: the trial records it like the others)."""
    return SearchParam(name, choices=(value,))


def _fail(path: Path, key: str, message: str, hint: str) -> WarmstartError:
    return WarmstartError(f"--space {path}: key {key!r}: {message}", hint=hint)


def parse_param(name: str, value: Any, path: Path) -> SearchParam | None:
    """One entry of a ``--space`` file: a mapping (a range or choices), a scalar (fixed), or null (not searched)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        if isinstance(value, (list, tuple)):
            raise _fail(path, name, f"a bare list ({value!r}) is ambiguous",
                        f"write {name}: {{choices: {list(value)}}}")
        return fixed(name, value)
    allowed = {"low", "high", "log", "int", "choices"}
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise _fail(path, name, f"unknown field(s) {', '.join(unknown)}; expected low, high, log, int, or choices",
                    f"write {name}: {{low: 0.001, high: 0.1, log: true}} or {name}: {{choices: [a, b]}}")
    if "choices" in value:
        choices = value["choices"]
        if set(value) - {"choices"} or not isinstance(choices, (list, tuple)) or not choices:
            raise _fail(path, name, f"choices must be a non-empty list, alone; got {dict(value)!r}",
                        f"write {name}: {{choices: [a, b]}}")
        shown = [repr(c) for c in choices]  # by how each is written: 1, 1.0 and true are three choices
        repeated = sorted({c for c in shown if shown.count(c) > 1})
        if repeated:  # a choice listed twice is drawn twice as often: a weight nobody asked for
            raise _fail(path, name, f"choices list {', '.join(repeated)} more than once",
                        f"list each choice once: {name}: {{choices: {list(dict.fromkeys(choices))}}}")
        return SearchParam(name, choices=tuple(choices))
    low, high = value.get("low"), value.get("high")
    # whole numbers beyond 2**63 are no bound a training setting has (and overflow a float)
    numbers = all(is_number(v) and abs(v) < 2**63 for v in (low, high))
    log, integer = value.get("log", False), value.get("int", False)
    if not numbers or low > high or not isinstance(log, bool) or not isinstance(integer, bool) or (log and low <= 0):
        raise _fail(path, name, f"expected numbers low <= high (both > 0 with log: true) and true/false for log and "
                                f"int; got {dict(value)!r}", f"e.g. {name}: {{low: 0.0001, high: 0.01, log: true}}")
    if integer and not (float(low).is_integer() and float(high).is_integer()):
        raise _fail(path, name, f"int: true needs whole-number bounds, got {low} and {high}",
                    f"e.g. {name}: {{low: 2, high: 8, int: true}}")
    return SearchParam(name, low=int(low) if integer else float(low), high=int(high) if integer else float(high),
                       log=log, integer=integer)


def read_space_file(path: str | Path, allowed: Iterable[str] | None = None) -> dict[str, SearchParam | None]:
    """The ``--space`` file's entries by name (None: take the parameter out of the search). Read with
    :func:`warmstart.yaml_values.load` (a safe loader). Which names are allowed is checked by
    :func:`apply_overrides`, and here already when ``allowed`` is given: a wrong name is named as such, before
    advice on how to write its value that would not make it searchable."""
    from . import yaml_values

    if not isinstance(path, (str, PathLike)):  # a --config's `space:` written as the mapping itself
        raise WarmstartError(f"--space: expected the path of a YAML file, got {type(path).__name__} {path!r}",
                             hint="write the ranges in a file and name it: --space space.yaml (or space: space.yaml "
                                  "in a --config)")
    path = Path(path)
    if not path.is_file():
        raise WarmstartError(f"--space {path}: {'a folder, not a file' if path.is_dir() else 'no such file'}",
                             hint="pass a YAML file of parameter: range entries")
    try:
        document = yaml_values.load(path.read_text(encoding="utf-8"))
    except (yaml_values.YAMLError, UnicodeDecodeError) as exc:
        raise WarmstartError(f"--space {path}: cannot be read as YAML ({exc})", hint="check the file's syntax") \
            from None
    if document is None:  # an empty file changes nothing: say so, in case it was meant to
        log.warning("--space %s is empty: the strategy's own space is searched", path)
        return {}
    if not isinstance(document, Mapping):
        raise WarmstartError(f"--space {path}: expected a mapping of parameter names to ranges, found a "
                             f"{type(document).__name__}", hint="write one `name: {low: ..., high: ...}` per line")
    if allowed is not None:
        check_names(map(str, document), allowed, path)
    return {str(name): parse_param(str(name), value, path) for name, value in document.items()}


def check_names(names: Iterable[str], allowed: Iterable[str], path: str | Path) -> None:
    """Every name in ``allowed``: the training fields and the strategy's options."""
    allowed = sorted(set(allowed))
    for name in names:
        if name not in allowed:
            raise _fail(Path(path), name, "not a training setting or an option of this strategy",
                        f"use one of: {', '.join(allowed)}")


def apply_overrides(declared: Iterable[SearchParam], overrides: Mapping[str, SearchParam | None],
                    allowed: Iterable[str], *, path: str | Path = "--space",
                    unused: Mapping[str, str] | None = None) -> tuple[SearchParam, ...]:
    """The declared space with the file's entries: each replaces the declared parameter of its name (or adds one),
    None removes it. Every name must be in ``allowed`` (the training fields and the strategy's options), and none
    searched over more than one value may be in ``unused`` (what the strategy never reads, and why)."""
    check_names(overrides, allowed, path)
    for name, param in overrides.items():
        searched = param is not None and (param.choices is None or len(param.choices) > 1)
        if searched and name in (unused or {}):
            raise _fail(Path(path), name, f"searching it changes nothing: {unused[name]}",
                        f"take {name} out of the space file")
    space = {p.name: p for p in declared}
    for name, param in overrides.items():
        if param is None:
            space.pop(name, None)
            continue
        if name in space and space[name].integer and param.choices is None and not param.integer and \
                float(param.low).is_integer() and float(param.high).is_integer():
            # a range of a whole-number setting (epochs: {low: 1, high: 3}) is whole numbers without `int: true`
            param = replace(param, low=int(param.low), high=int(param.high), integer=True)
        space[name] = replace(param, kinds=space[name].kinds if name in space else SETTING_KINDS.get(name, ALL_KINDS))
    return tuple(space.values())


def check_kind(space: Iterable[SearchParam], overrides: Mapping[str, SearchParam | None], kind: str, *,
               path: str | Path = "--space") -> None:
    """Refuses a parameter the file asks to search that does not apply to ``kind`` data (it would be dropped
    without a word, or fail inside the first trial)."""
    for param in space:
        if overrides.get(param.name) is not None and kind not in param.kinds:
            raise _fail(Path(path), param.name, f"applies to {' and '.join(param.kinds)} data, and this data is "
                        f"{kind}", f"remove {param.name!r} from the file (or set it to null)")


def for_kind(space: Iterable[SearchParam], kind: str) -> tuple[SearchParam, ...]:
    """The parameters that apply to ``kind`` data (``image``, ``vector``, ``text``)."""
    return tuple(p for p in space if kind in p.kinds)
