"""Class specs (``0-4``, ``5,6,9``, names) and relabelling a dataset to a subset of its classes."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..errors import WarmstartError
from .dataset import Dataset

_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_class_spec(spec: str, class_names: Sequence[str], *, source: str = "data") -> list[int]:
    """Class ids named by ``spec``, in the order given.

    A token is a class name (matched first, so names such as ``T-shirt/top`` work), a range ``a-b`` of ids, or one
    id. Ids index the dataset's classes in their natural order.
    """
    names = list(class_names)
    lowered = {name.lower(): i for i, name in enumerate(names)}
    chosen: list[int] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if token.lower() in lowered:
            ids = [lowered[token.lower()]]
        elif match := _RANGE.match(token):
            low, high = int(match.group(1)), int(match.group(2))
            if low > high:
                raise WarmstartError(f"--classes {spec!r}: the range {token!r} runs backwards",
                                     hint=f"write it as {high}-{low}")
            ids = list(range(low, high + 1))
        elif token.isdigit():
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


def select_classes(dataset: Dataset, class_ids: Sequence[int]) -> Dataset:
    """Keep the examples of ``class_ids``, relabelled 0..len-1 in that order, with their names kept."""
    mapping = np.full(dataset.num_classes, -1, dtype=np.int64)
    mapping[np.asarray(class_ids)] = np.arange(len(class_ids))
    keep = np.flatnonzero(mapping[dataset.y] >= 0)
    names = tuple(dataset.class_names[i] for i in class_ids)
    return Dataset(dataset.x[keep], mapping[dataset.y[keep]], names, dataset.kind, dataset.name,
                   dataset.feature_names)
