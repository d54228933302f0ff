"""One small registry shared by every family of named things (models, strategies, datasets, optimizers, ...)."""

from __future__ import annotations

import fnmatch
import inspect
from typing import Any, Callable, Generic, TypeVar

from .errors import WarmstartError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``@registry.register("name")`` adds one, ``registry.get("name")`` finds it."""

    def __init__(self, family: str, plural: str | None = None):
        self.family = family
        self.plural = plural or f"{family}s"
        self._entries: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, *, description: str | None = None) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._entries[name] = entry
            doc = description or (getattr(entry, "__doc__", None) or "").strip().splitlines()
            self._descriptions[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")
            return entry

        return add

    def get(self, name: str, *, parameter: str | None = None) -> T:
        try:
            return self._entries[name]
        except KeyError:
            where = f" (parameter {parameter})" if parameter else ""
            raise WarmstartError(
                f"unknown {self.family} {name!r}{where}; expected one of: {', '.join(self.names())}",
                hint=f"run `warmstart list {self.plural}` to see them with descriptions",
            ) from None

    def create(self, name: str, /, *args: Any, parameter: str | None = None, **options: Any):
        """Build the entry ``name``: ``factory(*args, **options)``. ``args`` are what every entry of the family takes
        (a model's input shape and class count, a shift measure's two samples); ``options`` are the entry's own, and
        one it does not take is a clear error that lists the ones it does. ``name`` is positional-only, so an entry
        may take an option called ``name`` (a timm model's)."""
        factory = self.get(name, parameter=parameter)
        accepted = option_names(factory)[len(args):]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise WarmstartError(f"{self.family} {name!r} has no option {', '.join(unknown)}",
                                 hint=f"{name} takes {', '.join(accepted) or 'no options'}")
        return factory(*args, **options)

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def describe(self) -> dict[str, str]:
        return {name: self._descriptions[name] for name in self.names()}

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:  # an unhashable value (a list from a YAML file) names nothing: the caller says what's wrong
            return False

    def __iter__(self):
        return iter(self.names())


def option_names(factory: Callable) -> list[str]:
    """The keyword options a factory (a class or a function) takes."""
    return [p.name for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def option_defaults(factory: Callable) -> dict[str, Any]:
    """The keyword options of a factory that have a default, with it."""
    return {p.name: p.default for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty}
