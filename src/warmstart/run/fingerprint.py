"""A fingerprint of the data a run trains on, so that ``resume`` can refuse to carry on when the data changed
(issue 14, item 11: only the path used to be compared).

It is the SHA-256 of the loaded splits (inputs, labels, class names, and for text the texts themselves), not of
the files: exact whatever the source (a built-in, an .npz, a CSV, an image folder), unchanged by a copy or a
touch of the file, and cheap next to training (hashing runs at about 1 GB/s; the splits are in memory anyway).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import numpy as np

from ..data import DataSplits, Dataset


def _update(digest, dataset: Dataset) -> None:
    digest.update("\x1f".join(dataset.class_names).encode())
    if dataset.x.dtype == object:  # texts
        digest.update("\x1e".join(map(str, dataset.x)).encode("utf-8", "surrogatepass"))
    else:
        digest.update(str((dataset.x.dtype.str, dataset.x.shape)).encode())
        digest.update(np.ascontiguousarray(dataset.x).data)
    digest.update(np.ascontiguousarray(dataset.y, dtype=np.int64).data)


def data_fingerprint(splits: DataSplits) -> str:
    """``sha256:HEX`` of the train, validation and test splits as loaded."""
    digest = hashlib.sha256()
    for name, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        digest.update(name.encode())
        if dataset is not None:
            _update(digest, dataset)
    return f"sha256:{digest.hexdigest()}"


def inputs_fingerprint(dataset: Dataset) -> str:
    """``sha256:HEX`` of one dataset as loaded (an ``--adapt-on`` stage's unlabelled inputs)."""
    return data_fingerprint(DataSplits(dataset, None, dataset.subset(np.arange(0))))


# (the --config file, the fingerprint it records) while a command replays a run's config.json: see replaying()
_REPLAYED: ContextVar[tuple[str, str] | None] = ContextVar("warmstart_replayed", default=None)


@contextmanager
def replaying(config_file: str, fingerprint: str) -> Iterator[None]:
    """Within: the command replays ``config_file``, a run's config.json whose data had ``fingerprint``, on the data
    it names (no data option was given beside it), so the data should be the same. A replay reads the data's path
    again, and the file there may have changed, or be another file of that name (a relative path read from another
    directory): :func:`replayed_data_note` says so before the run trains."""
    token = _REPLAYED.set((config_file, fingerprint))
    try:
        yield
    finally:
        _REPLAYED.reset(token)


def replayed_data_note(fingerprint: str) -> str | None:
    """The warning for a replay whose data is not the replayed run's; None when it is, or nothing is replayed."""
    replayed = _REPLAYED.get()
    if replayed is None or replayed[1] == fingerprint:
        return None
    return (f"--config {replayed[0]}: the data read now is not the data the replayed run trained on (fingerprint "
            f"{replayed[1]} then, {fingerprint} now): the file at the recorded path changed, or another file of "
            "that name was read; this is not a replay of that run")
