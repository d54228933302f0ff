"""Class specs (``0-4``, ``5,6,9``, names) and relabelling a dataset to a subset of its classes."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..errors import WarmstartError
from .dataset import Dataset
from .files import is_int

_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_class_spec(spec: str, class_names: Sequence[str], *, source: str = "data") -> list[int]:
    """Class ids named by ``spec``, in the order given.

    A token is a class name (matched exactly first, then regardless of case when that is unambiguous, so names such
    as ``T-shirt/top`` work), a range ``a-b``, or one number. Numbers index the dataset's classes in their natural
    order, unless every class name is an integer (labels such as 1, 2, 3): then numbers and ranges are the labels
    themselves, so ``1-2`` and ``1,2`` name the same classes.
    """
    names = list(class_names)
    by_label = {int(name): i for i, name in enumerate(names)} if names and all(is_int(n) for n in names) else None
    chosen: list[int] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        named = _by_name(token, names, spec)
        if named is not None:
            ids = [named]
        elif match := _RANGE.match(token):
            low, high = int(match.group(1)), int(match.group(2))
            if low > high:
                raise WarmstartError(f"--classes {spec!r}: the range {token!r} runs backwards",
                                     hint=f"write it as {high}-{low}")
            if by_label is None:
                ids = list(range(low, high + 1))
            else:
                ids = [i for label, i in sorted(by_label.items()) if low <= label <= high]
                if not ids:
                    raise WarmstartError(f"--classes {spec!r}: no class of {source} is labelled {low} to {high}",
                                         hint=f"its labels: {', '.join(names)}")
        elif token.isdigit() and by_label is not None:
            raise WarmstartError(f"--classes {spec!r}: no class of {source} is labelled {token}; its classes are "
                                 "labelled with numbers, which --classes reads as labels, not positions",
                                 hint=f"its labels: {', '.join(names)}")
        elif re.fullmatch(r"[0-9]+", token):
            ids = [int(token)]
        else:
            raise WarmstartError(
                f"--classes {spec!r}: {token!r} is neither a class id nor a class name of {source}",
                hint=f"use ids 0-{len(names) - 1} or names from: {', '.join(names)}",
            )
        for i in ids:
            if i >= len(names):
                raise WarmstartError(
                    f"--classes {spec!r}: class id {i} does not exist; {source} has {len(names)} classes "
                    f"(ids 0-{len(names) - 1})",
                    hint=f"names: {', '.join(names)}",
                )
            if i in chosen:
                raise WarmstartError(f"--classes {spec!r}: class {names[i]!r} is named twice",
                                     hint=f"name each class once (drop the second {names[i]!r})")
            chosen.append(i)
    if not chosen:
        raise WarmstartError(f"--classes {spec!r} names no class", hint="for example 0-4, 5,6,9 or Sandal,Bag")
    return chosen


def _by_name(token: str, names: list[str], spec: str) -> int | None:
    """The class named ``token``: exactly, else regardless of case when only one name matches so; None if none."""
    if token in names:
        return names.index(token)
    folded = [i for i, name in enumerate(names) if name.lower() == token.lower()]
    if len(folded) > 1:
        raise WarmstartError(f"--classes {spec!r}: {token!r} matches {' and '.join(repr(names[i]) for i in folded)} "
                             "when case is ignored, and none exactly",
                             hint="write the class name with its exact case")
    return folded[0] if folded else None


def names_alike(class_names: Sequence[str]) -> list[tuple[str, ...]]:
    """Groups of class names that differ only in case or whitespace (``"fear"``, ``"FEAR"``, ``" fear"``), in
    class order. Each stays a class of its own: a dataset may mean the case (``"CO"`` and ``"Co"``, ``"US"`` and
    ``"us"``), and merging them would change the class ids of data that is right. A run names them in its notes,
    as most often one label was typed several ways."""
    groups: dict[str, list[str]] = {}
    for name in class_names:
        groups.setdefault(" ".join(str(name).split()).casefold(), []).append(name)
    return [tuple(group) for group in groups.values() if len(group) > 1]


def select_classes(dataset: Dataset, class_ids: Sequence[int]) -> Dataset:
    """Keep the examples of ``class_ids``, relabelled 0..len-1 in that order, with their names kept."""
    mapping = np.full(dataset.num_classes, -1, dtype=np.int64)
    mapping[np.asarray(class_ids)] = np.arange(len(class_ids))
    keep = np.flatnonzero(mapping[dataset.y] >= 0)
    names = tuple(dataset.class_names[i] for i in class_ids)
    return Dataset(dataset.x[keep], mapping[dataset.y[keep]], names, dataset.kind, dataset.name,
                   dataset.feature_names)
