"""The local model zoo: every warmstart checkpoint under some folders, described from its safetensors header alone.

A checkpoint's header holds warmstart's JSON metadata and every tensor's shape, so the source data and classes,
architecture, test metrics, parameter count and creation time all come without loading a single weight: listing a
folder of many checkpoints stays instant. The folders searched by default are ``runs/`` (relative to the working
directory) and those in the environment variable ``WARMSTART_ZOO`` (several separated by ``os.pathsep``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from safetensors import SafetensorError, safe_open

from ..errors import WarmstartError
from ..models.checkpoint import METADATA_KEY, WEIGHTS, read_info

log = logging.getLogger("warmstart")

ZOO_ENV = "WARMSTART_ZOO"


@dataclass(frozen=True)
class ZooEntry:
    path: Path  # the run folder (what --from and --candidates take)
    arch: str
    arch_args: dict[str, Any]
    kind: str
    input_shape: tuple[int, ...]
    source: str | None  # the data it was trained on
    source_classes_spec: str | None
    shots: int | None
    class_names: tuple[str, ...]
    test_accuracy: float | None
    parameters: int
    size_bytes: int
    created: str | None
    parent: dict[str, Any] | None  # what it was fine-tuned from, if anything

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path), "input_shape": list(self.input_shape),
                "class_names": list(self.class_names)}


@dataclass(frozen=True)
class ZooListing:
    folders: tuple[Path, ...]
    entries: tuple[ZooEntry, ...]
    skipped: tuple[tuple[str, str], ...]  # (file, why) for safetensors files that are not readable checkpoints

    def to_dict(self) -> dict[str, Any]:
        return {"folders": [str(f) for f in self.folders], "checkpoints": [e.to_dict() for e in self.entries],
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped]}


def default_folders() -> list[Path]:
    folders = [Path("runs")]
    folders += [Path(p).expanduser() for p in os.environ.get(ZOO_ENV, "").split(os.pathsep) if p.strip()]
    return folders


def describe_checkpoint(file: Path) -> ZooEntry:
    """One checkpoint's zoo entry, read from its header: metadata, tensor shapes (parameter count), file size.
    Every field the listing shows is checked for its type: a crafted header is a WarmstartError for this file
    (which the listing skips, with the reason), never a crash of the whole listing."""
    file, info = read_info(file)
    try:
        with safe_open(str(file), framework="pt") as f:
            header = f.metadata() or {}
            parameters = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    except (SafetensorError, OSError, ValueError, OverflowError) as exc:
        raise WarmstartError(f"checkpoint {file}: its tensor table cannot be read ({exc})",
                             hint="re-create it, or move it out of the zoo folder") from None
    meta = json.loads(header[METADATA_KEY])  # read_info parsed it already
    where = f"checkpoint {file}"
    data = _field(info.extra, "data", dict, where) or {}
    metrics = _field(info.extra, "metrics", dict, where) or {}
    accuracy = _field(metrics, "accuracy", (int, float), where, "metrics.accuracy")
    if accuracy is not None and not 0.0 <= accuracy <= 1.0:
        raise _bad(where, "metrics.accuracy", "a number from 0 to 1", accuracy)
    classes = _field(data, "classes", (str, list), where, "data.classes")
    return ZooEntry(path=file.parent.parent if file.parent.name == "model" else file.parent, arch=info.arch,
                    arch_args=info.arch_args, kind=info.kind, input_shape=info.input_shape,
                    source=_field(data, "source", str, where, "data.source"),
                    source_classes_spec=None if classes is None else str(classes),
                    shots=_field(data, "shots", int, where, "data.shots"), class_names=info.class_names,
                    test_accuracy=None if accuracy is None else float(accuracy), parameters=int(parameters),
                    size_bytes=file.stat().st_size, created=_field(meta, "created", str, where),
                    parent=_field(info.extra, "parent", dict, where))


def _field(record: dict[str, Any], key: str, types: type | tuple[type, ...], where: str, name: str | None = None):
    """``record[key]`` when it is None or of ``types`` (never a bool standing in for a number)."""
    value = record.get(key)
    if value is None or (isinstance(value, types) and not isinstance(value, bool)):
        return value
    expected = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
    raise _bad(where, name or key, f"{expected} (or absent)", value)


def _bad(where: str, name: str, expected: str, value: Any) -> WarmstartError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return WarmstartError(f"{where}: damaged metadata: the field {name!r} should be {expected}, found {shown}",
                          hint="re-create the checkpoint, or move it out of the zoo folder")


def list_zoo(folders: Sequence[str | Path] | None = None) -> ZooListing:
    """Every warmstart checkpoint (``model.safetensors``) under ``folders`` (default: ``runs/`` and
    ``$WARMSTART_ZOO``), newest first. Given folders must exist; a default one that does not is skipped."""
    given = folders is not None and len(folders) > 0
    roots = [Path(f).expanduser() for f in folders] if given else default_folders()
    missing = [f"{r} ({'a file, not a folder' if r.exists() else 'not found'})" for r in roots if not r.is_dir()]
    if given and missing:
        raise WarmstartError(f"zoo folder(s) {', '.join(missing)}",
                             hint="pass folders that hold run folders written by `warmstart pretrain`/`finetune`")
    if not given:  # runs/ may well not exist; a folder the user set in the variable should (a typo, else)
        for root in roots[1:]:
            if not root.is_dir():
                log.warning("$%s names %s, which is not a folder: skipped", ZOO_ENV, root)
    entries, skipped, seen = [], [], set()
    for root in roots:
        if not root.is_dir():
            continue
        for file in sorted(root.rglob(WEIGHTS)):
            # a hidden folder is an overwriting run still training (.NAME.partial) or one left by a kill
            # (.NAME.replaced): not a checkpoint to start from. A folder the user named "state" is listed.
            if file.resolve() in seen or any(part.startswith(".") for part in file.relative_to(root).parts[:-1]):
                continue
            seen.add(file.resolve())
            try:
                entries.append(describe_checkpoint(file))
            except WarmstartError as exc:
                skipped.append((str(file), exc.message))
    entries.sort(key=lambda e: (e.created or "", str(e.path)), reverse=True)
    return ZooListing(folders=tuple(roots), entries=tuple(entries), skipped=tuple(skipped))
