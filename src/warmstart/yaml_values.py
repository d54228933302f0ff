"""YAML as a user writes it: PyYAML's safe loader, with YAML 1.2's floats.

PyYAML implements YAML 1.1, whose float needs a dot: ``1e-3`` and ``1E2`` are read as the strings ``'1e-3'`` and
``'1E2'``, so ``--strategy-option head_lr_scale=1e2`` or ``lr: {low: 1e-5, high: 1e-3}`` in a ``--space`` file was
refused as "not a number". YAML 1.2 (2009) reads them as floats, as every other reader of numbers does. This loader
adds that one rule to ``yaml.SafeLoader`` (no object construction: a user's file is never executed) and changes
nothing else: ``0.001``, ``1.0e-05`` (what ``yaml.safe_dump`` writes), ``.inf`` and strings read as before.

Every YAML a user hands warmstart (``--config``, ``--space``, ``KEY=VALUE`` options) is read through :func:`load`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

YAMLError = yaml.YAMLError

# YAML 1.2's core-schema float without a dot: digits, then an exponent (``1e-3``, ``-2E+4``); digit separators
# (``1_000e3``) as PyYAML's own 1.1 numbers allow them.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also resolves ``1e-3``-style scalars as floats (a copy of its resolver table), and
    reads no aliases: nested ``*name`` references expand a file of a few lines into gigabytes ("billion laughs"; a
    --config file of nine levels held 3.7 GB and growing after a minute), and a settings file has no need of them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"found the alias *{event.anchor}: warmstart reads no YAML "
                                              "aliases (write the value out where it is used)", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Refuses a key written twice in one mapping: PyYAML keeps the last without a word, so of two versions of
        a setting (an edit half done) the one that ran could not be seen in the file."""
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: PyYAML's own error names it
                continue
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found the key {key!r} a second time (first on line {first.line + 1}): write each key once",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


def load(text: str) -> Any:
    """The YAML document in ``text`` (None when empty); :class:`YAMLError` when it is not YAML."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass: no custom objects are built
