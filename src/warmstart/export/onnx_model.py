"""An exported ONNX model run through onnxruntime, wearing the shape of a PyTorch module so that ``predict``
treats it as it treats a checkpoint: ``model(x)`` gives logits for the same preprocessed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import WarmstartError
from ..models import CheckpointInfo
from ..models.checkpoint import info_from_metadata
from ..models.hf import trim_padding

ONNX_FILE = "model.onnx"
METADATA = "export.json"


def onnx_export_path(path: str | Path) -> Path | None:
    """The ``model.onnx`` that ``path`` names (the file, or an export folder holding it), or None."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".onnx":
        return p
    if p.is_dir() and (p / ONNX_FILE).is_file():
        return p / ONNX_FILE
    return None


class OnnxClassifier(nn.Module):
    """Logits from an ONNX model; text models get the attention mask from the padding id and are cut to the batch's
    longest text, as in training."""

    def __init__(self, path: Path, metadata: dict):
        super().__init__()
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.pad_id = metadata.get("pad_id")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().cpu()
        if self.input_names == ["input_ids", "attention_mask"]:
            ids, mask = trim_padding(x.long(), self.pad_id)  # as the PyTorch model does: the sequence axis is dynamic
            feeds = {"input_ids": ids.numpy(), "attention_mask": mask.long().numpy()}
        else:
            feeds = {self.input_names[0]: x.float().numpy()}
        return torch.from_numpy(np.asarray(self.session.run(None, feeds)[0]))


def load_onnx_export(path: str | Path) -> tuple[OnnxClassifier, CheckpointInfo]:
    model_file = onnx_export_path(path)
    if model_file is None:
        raise WarmstartError(f"{path}: not an ONNX export (no {ONNX_FILE})",
                             hint=f"pass the folder `warmstart export --format onnx` wrote (it holds {ONNX_FILE})")
    metadata_file = model_file.with_name(METADATA)
    if not metadata_file.is_file():
        raise WarmstartError(f"{model_file}: no {METADATA} beside it, so its classes and preprocessing are unknown",
                             hint="export with `warmstart export`, which writes both")
    try:
        metadata = json.loads(metadata_file.read_text())
        meta = metadata["checkpoint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise WarmstartError(f"{metadata_file}: damaged export metadata ({type(exc).__name__}: {exc})",
                             hint="export the checkpoint again with `warmstart export`") from None
    if metadata.get("format") != "onnx" or metadata.get("model_file") != model_file.name:
        raise WarmstartError(f"{metadata_file} describes a {metadata.get('format')!r} export "
                             f"({metadata.get('model_file')!r}), not {model_file.name}: the two files come from "
                             "different exports, so its classes and preprocessing may not be this model's",
                             hint="export the checkpoint again with `warmstart export --format onnx` into its own "
                                  "folder")
    info = info_from_metadata(meta, str(metadata_file))  # the checks a checkpoint header gets
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise WarmstartError("predicting with an ONNX model needs onnxruntime, which is not installed",
                             hint="pip install 'warmstart[export]'") from None
    model = OnnxClassifier(model_file, metadata).eval()
    # a model.onnx and an export.json of two exports (two exports into one --out at once, a copy) that disagree on
    # the classes would name the wrong class for every row, or none (an index past the class names)
    width = model.session.get_outputs()[0].shape[-1]
    if isinstance(width, int) and width != len(info.class_names):
        raise WarmstartError(f"{model_file.parent}: {model_file.name} outputs {width} logits per example, but "
                             f"{METADATA} lists {len(info.class_names)} classes: the two files come from different "
                             "exports", hint="export the checkpoint again with `warmstart export --format onnx` into "
                                             "a folder of its own")
    return model, info
