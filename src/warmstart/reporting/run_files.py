"""Reading what a run wrote, for the report and the model card: a damaged file (a log line cut off by a kill, a
config that is not JSON, a truncated ``predictions.npz``) is a WarmstartError naming the file, never a traceback.

A missing file is not damage: older runs lack some files, and the report leaves their sections out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import WarmstartError

DAMAGED_HINT = ("the run folder is damaged (an interrupted write, or an edit); rerun the command that wrote it, or "
                "remove that file to build the report without it")


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when there is no such file."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise WarmstartError(f"{path}: cannot be read as JSON ({exc})", hint=DAMAGED_HINT) from None
    if not isinstance(value, dict):
        raise WarmstartError(f"{path}: expected a JSON object, found {type(value).__name__}", hint=DAMAGED_HINT)
    return value


def read_log(path: Path) -> list[dict[str, Any]]:
    """The epochs of a JSON-lines training log (empty when there is none), each line an object."""
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (ValueError, OSError) as exc:
        raise WarmstartError(f"{path}: cannot be read ({exc})", hint=DAMAGED_HINT) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise WarmstartError(f"{path}, line {number}: not a whole JSON object ({exc}); a run killed while "
                                 "writing it leaves such a line", hint=DAMAGED_HINT) from None
        if not isinstance(record, dict):
            raise WarmstartError(f"{path}, line {number}: expected a JSON object, found {type(record).__name__}",
                                 hint=DAMAGED_HINT)
        records.append(record)
    return records
