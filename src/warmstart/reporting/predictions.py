"""What the report needs of a run's test predictions, saved when the run is scored.

``predictions.npz``: the labels and softmax probabilities of every test example (float32: a few hundred KB for
10,000 examples of 10 classes), enough for calibration and bootstrap intervals without the model.
``examples.json``: a small sample of misclassified examples for the most confused class pairs, with their inputs in
a form a page can show: a PNG thumbnail (base64) for images, the text for texts, the first values for vectors.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..data.files import NPZ_ERRORS
from ..errors import WarmstartError
from ..io import atomic_write, write_json
from .run_files import DAMAGED_HINT, read_json

PREDICTIONS = "predictions.npz"
EXAMPLES = "examples.json"
THUMBNAIL = 96  # pixels, the longer side of an example image
TEXT_CHARACTERS = 500  # a longer example text is cut here (with an ellipsis)


def confused_pairs(confusion: np.ndarray, top: int = 5) -> list[tuple[int, int, int]]:
    """``(true, predicted, count)`` of the ``top`` largest off-diagonal cells, largest first (ties by index)."""
    cm = np.asarray(confusion).copy()
    np.fill_diagonal(cm, 0)
    order = np.argsort(-cm, axis=None, kind="stable")[:top]
    return [(int(i // cm.shape[1]), int(i % cm.shape[1]), int(cm.flat[i])) for i in order if cm.flat[i] > 0]


def _image_thumbnail(image: np.ndarray) -> str:
    """A base64 PNG of one (C, H, W) image in [0, 1] (or any range: it is rescaled to its own min and max)."""
    from PIL import Image

    x = np.asarray(image, dtype=np.float32)
    if x.min() < 0 or x.max() > 1:
        x = (x - x.min()) / max(float(x.max() - x.min()), 1e-12)
    pixels = (x * 255).round().astype(np.uint8)
    img = Image.fromarray(pixels[0], "L") if pixels.shape[0] == 1 else Image.fromarray(pixels[:3].transpose(1, 2, 0))
    img.thumbnail((THUMBNAIL, THUMBNAIL))  # large images shrink (keeping their aspect); small ones stay as they are
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _example_input(x: Any, kind: str) -> dict[str, Any]:
    if kind == "image":
        return {"image_png_base64": _image_thumbnail(x)}
    if kind == "text":
        text = str(x)
        return {"text": text if len(text) <= TEXT_CHARACTERS else text[:TEXT_CHARACTERS] + "…"}
    values = np.asarray(x, dtype=np.float64).ravel()
    return {"values": [round(float(v), 4) for v in values[:12]], "dimensions": int(values.size)}


def save_predictions(run_dir: str | Path, x: Any, y_true: np.ndarray, probabilities: np.ndarray,
                     class_names: tuple[str, ...], kind: str, *, pairs: int = 5, per_pair: int = 4) -> None:
    """Write ``predictions.npz`` and ``examples.json`` into ``run_dir``; ``x`` holds the inputs as the data gave them
    (before normalisation), so the thumbnails show what a person would see."""
    run_dir = Path(run_dir)
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    atomic_write(run_dir / PREDICTIONS, lambda tmp: _savez(tmp, y_true=y_true, probabilities=probabilities,
                                                           class_names=np.asarray(class_names, dtype=str)))
    y_pred = probabilities.argmax(axis=1)
    confusion = np.zeros((len(class_names), len(class_names)), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    confidence = probabilities.max(axis=1)
    sample = []
    for true, predicted, count in confused_pairs(confusion, pairs):
        where = np.flatnonzero((y_true == true) & (y_pred == predicted))
        where = where[np.argsort(-confidence[where], kind="stable")][:per_pair]  # the most confident mistakes
        sample.append({"true": true, "predicted": predicted, "count": count,
                       "examples": [{"index": int(i), "confidence": float(confidence[i]),
                                     **_example_input(x[i], kind)} for i in where]})
    write_json(run_dir / EXAMPLES, {"kind": kind, "class_names": list(class_names), "pairs": sample})


def _savez(tmp: str, **arrays: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # a file object: np.savez would otherwise append .npz to the temporary name
        np.savez_compressed(f, **arrays)


def load_predictions(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(y_true, probabilities)`` of a run folder, or None when it has none (runs from before they were saved);
    a damaged file (truncated, not an archive, arrays missing or of the wrong shape) is a WarmstartError."""
    path = Path(run_dir) / PREDICTIONS
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            y_true, probabilities = data["y_true"], data["probabilities"]
    except NPZ_ERRORS as exc:
        raise WarmstartError(f"{path}: cannot be read as the run's test predictions ({type(exc).__name__}: {exc})",
                             hint=DAMAGED_HINT) from None
    if y_true.ndim != 1 or y_true.dtype.kind not in "iu" or probabilities.ndim != 2 \
            or probabilities.dtype.kind != "f" or len(y_true) != len(probabilities):
        raise WarmstartError(f"{path}: expected integer labels y_true (N,) and probabilities (N, C); found "
                             f"{y_true.dtype} {y_true.shape} and {probabilities.dtype} {probabilities.shape}",
                             hint=DAMAGED_HINT)
    if len(y_true) and (y_true.min() < 0 or y_true.max() >= probabilities.shape[1]):
        raise WarmstartError(f"{path}: labels outside 0..{probabilities.shape[1] - 1}", hint=DAMAGED_HINT)
    if not np.isfinite(probabilities).all():
        raise WarmstartError(f"{path}: probabilities hold NaN or infinite values", hint=DAMAGED_HINT)
    return y_true, probabilities.astype(np.float64)


def load_examples(run_dir: str | Path) -> dict[str, Any] | None:
    return read_json(Path(run_dir) / EXAMPLES)
