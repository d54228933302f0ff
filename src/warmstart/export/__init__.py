"""Exporting a checkpoint for serving: ONNX (run by onnxruntime) or TorchScript, each checked against PyTorch.

``export_model`` writes into one folder the model file (``model.onnx`` or ``model.pt``) and ``export.json``: the
input and output names, the dynamic axes, the class names, the preprocessing the inputs need (normalisation
statistics, or the tokenizer and its maximum length) and the checkpoint's metadata. Before it returns, it runs the
exported model and the PyTorch model on real inputs (the checkpoint's own test data, or ``data``) at two batch
sizes (and, for text, two sequence lengths) and fails when their logits differ by more than ``tolerance``.

ONNX goes through ``torch.onnx.export`` with the ``torch.export``-based exporter (``dynamo=True``, PyTorch's
default since 2.9; the TorchScript-based one is deprecated) and ``dynamic_shapes`` for the batch (and sequence)
dimension; TorchScript through ``torch.jit.trace``. ``quantize="int8"`` then quantizes the checked ONNX graph
(:mod:`warmstart.export.quantize`) and checks the int8 model's top-1 agreement with PyTorch instead of its logits.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .._version import __version__
from ..errors import WarmstartError
from ..io import make_folder, write_json
from .onnx_model import METADATA, ONNX_FILE, OnnxClassifier, load_onnx_export, onnx_export_path
from .quantize import QUANTIZATIONS, agreement, check_agreement, check_quantize, quantize_int8
from .wrappers import exportable, is_text_model, model_inputs

__all__ = ["ExportResult", "export_model", "load_onnx_export", "onnx_export_path", "FORMATS", "QUANTIZATIONS"]

log = logging.getLogger("warmstart")
FORMATS = {"onnx": ONNX_FILE, "torchscript": "model.pt"}


@dataclass(frozen=True)
class ExportResult:
    format: str
    model_file: Path
    metadata_file: Path
    max_abs_difference: float  # the largest |exported - PyTorch| logit over every parity check
    tolerance: float
    examples: int  # real inputs in the parity check
    inputs_from: str  # which data they came from
    quantize: str | None = None  # "int8": the model file is the quantized graph
    agreement: float | None = None  # the quantized model's top-1 agreement with PyTorch on the parity inputs

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model_file"], d["metadata_file"] = str(self.model_file), str(self.metadata_file)
        return d


def _real_inputs(checkpoint: str | Path, info, data: str | None, n: int) -> tuple[torch.Tensor, str]:
    """``n`` preprocessed test inputs of the checkpoint's data (or of ``data``), drawn with a fixed seed."""
    from ..config import DataConfig
    from ..data import load_split
    from ..data.fit import fit_to_model
    from ..data.preprocess import preprocessing_from_dict

    saved = dict(info.extra.get("data") or {})
    if data is None and not saved:
        raise WarmstartError(f"checkpoint {checkpoint} records no data to check the export on",
                             hint="pass --data with inputs of the model's kind")
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    config = {k: v for k, v in saved.items() if k in fields and k != "shots"}
    if data is not None:
        config.update(source=data, classes=None)
    try:
        dataset = load_split(DataConfig(**config), "test")
    except WarmstartError as exc:
        raise WarmstartError(f"the parity check needs real inputs, and {config.get('source')!r} cannot be read: "
                             f"{exc.message}", hint="pass --data with inputs of the model's kind") from None
    name = f"checkpoint {checkpoint}"
    preprocessing = preprocessing_from_dict(info.preprocessing)
    try:
        dataset = fit_to_model(dataset, info.input_shape, preprocessing, model_name=name,
                               resize=bool(config.get("resize")), feature_names=info.extra.get("feature_names"))
    except WarmstartError as exc:
        if "--resize" not in exc.hint:
            raise
        # the fitting policy's hint names training's --resize, which export does not take
        shape = "x".join(map(str, info.input_shape))
        raise WarmstartError(exc.message, hint=f"pass --data with inputs of the model's shape ({shape}), or leave "
                                               "--data out to check on the checkpoint's own test data; export "
                                               "does not resize") from None
    if len(dataset) < 2:
        raise WarmstartError(f"{config['source']}: {len(dataset)} test example(s); the parity check needs 2 or more",
                             hint="pass --data with 2 or more test examples of the model's kind")
    chosen = np.sort(np.random.default_rng(0).permutation(len(dataset))[:n])
    x = preprocessing.apply(dataset.x[chosen])
    return x, f"{len(chosen)} test examples of {config['source']}"


def _dynamic_shapes(names: tuple[str, ...], text: bool):
    batch = torch.export.Dim("batch")
    if text:
        sequence = torch.export.Dim("sequence")
        return [{0: batch, 1: sequence} for _ in names]
    return [{0: batch} for _ in names]


def _onnx_runner(file: Path, names) -> Callable[..., np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    return lambda *inputs: session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]


def _export_onnx(module, args, names, text: bool, file: Path) -> Callable[..., np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress chatter and deprecation notes of its internals
        torch.onnx.export(module, args, str(file), input_names=list(names), output_names=["logits"], dynamo=True,
                          dynamic_shapes=_dynamic_shapes(names, text), external_data=False, verbose=False)
    return _onnx_runner(file, names)


def _export_torchscript(module, args, names, text: bool, file: Path) -> Callable[..., np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation note: TorchScript still loads in C++ and Python
        traced = torch.jit.trace(module, args, check_trace=False)
        traced.save(str(file))
        loaded = torch.jit.load(str(file))

    def run(*inputs):
        with torch.no_grad():
            return loaded(*inputs).numpy()

    return run


def _parity_batches(net, x: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """The inputs the check runs: every example, and a smaller batch (another batch size); for text, also cut to
    the longest text of the batch (another sequence length)."""
    half = max(1, len(x) // 2 + 1)
    batches = [model_inputs(net, x), model_inputs(net, x[:half])]
    if is_text_model(net):
        ids, mask = model_inputs(net, x)
        longest = max(int(mask.sum(1).max()), 1)
        batches.append((ids[:, :longest], mask[:, :longest]))
    return batches


def export_model(checkpoint: str | Path, format: str, *, out: str | Path | None = None, data: str | None = None,
                 tolerance: float = 1e-4, examples: int = 32, quantize: str | None = None,
                 min_agreement: float = 0.95) -> ExportResult:
    """Export ``checkpoint`` as ``format`` (``onnx`` or ``torchscript``) into ``out`` and check it; see the module's
    docstring. ``out`` defaults to ``export-FORMAT`` in the checkpoint's run folder. ``quantize="int8"`` (ONNX only)
    writes the int8 model instead, refused when its top-1 agreement with PyTorch on the parity inputs is below
    ``min_agreement``."""
    from ..models import load_checkpoint, resolve_path
    from ..run.folder import check_not_a_results_folder

    if format not in FORMATS:
        raise WarmstartError(f"--format {format!r}: expected one of {', '.join(FORMATS)}",
                             hint=f"pass --format {' or --format '.join(FORMATS)}")
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise WarmstartError(f"--tolerance: expected a number >= 0, got {tolerance!r}",
                             hint="set --tolerance to a number >= 0, e.g. --tolerance 1e-4")
    if examples < 2:
        raise WarmstartError(f"--examples: expected 2 or more, got {examples}",
                             hint="set --examples to 2 or more, e.g. --examples 16")
    check_quantize(quantize, format)
    if not (isinstance(min_agreement, (int, float)) and 0.0 <= min_agreement <= 1.0):
        raise WarmstartError(f"--min-agreement: expected a number in [0, 1], got {min_agreement!r}",
                             hint="set --min-agreement to a share of the parity inputs, e.g. --min-agreement 0.95")
    net, info = load_checkpoint(checkpoint)
    net = net.float().eval()
    default_out = resolve_path(checkpoint).parent.parent / f"export-{format}"
    out = Path(out) if out is not None else default_out
    # an export beside a run's files would be what `predict -c RUN` loads; refused before any work
    check_not_a_results_folder(out, "export", hint=f"pass a folder of its own as --out, or leave --out out to "
                                                   f"export into {default_out}")
    x, inputs_from = _real_inputs(checkpoint, info, data, examples)
    module, names = exportable(net)
    text = is_text_model(net)
    with torch.no_grad():
        references = [net(batch[0]).numpy() for batch in _parity_batches(net, x)]
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent if out.parent.exists() else None))
    try:
        model_file = staging / FORMATS[format]
        exporter = _export_onnx if format == "onnx" else _export_torchscript
        run = exporter(module, model_inputs(net, x), names, text, model_file)
        differences = [float(np.abs(np.asarray(run(*batch)) - ref).max())
                       for batch, ref in zip(_parity_batches(net, x), references)]
        worst = max(differences)
        if not worst <= tolerance:
            raise WarmstartError(f"the {format} export of {checkpoint} disagrees with PyTorch: max |difference| "
                                 f"{worst:.3g} over the logits of {inputs_from} > tolerance {tolerance:g}",
                                 hint="nothing was written; report it, or loosen --tolerance if the difference is "
                                      "rounding")
        quantization, agreed = None, None
        if quantize is not None:
            quantized_file = staging / "model.int8.onnx"
            quantize_int8(model_file, quantized_file)
            run = _onnx_runner(quantized_file, names)
            logits = [np.asarray(run(*batch)) for batch in _parity_batches(net, x)]
            agreed = min(agreement(ref, got) for ref, got in zip(references, logits))
            check_agreement(agreed, min_agreement, inputs_from, checkpoint)
            quantization = {"method": "onnxruntime dynamic quantization", "weights": "int8",
                            "activations": "uint8, quantized at run time", "agreement": agreed,
                            "min_agreement": float(min_agreement),
                            "max_abs_difference": max(float(np.abs(got - ref).max())
                                                      for ref, got in zip(references, logits)),
                            "float32_bytes": model_file.stat().st_size, "bytes": quantized_file.stat().st_size}
            quantized_file.replace(model_file)
        metadata = {
            "format": format, "model_file": model_file.name, "inputs": list(names), "outputs": ["logits"],
            "dynamic_axes": {name: ({"0": "batch", "1": "sequence"} if text else {"0": "batch"}) for name in names},
            "pad_id": int(net.backbone.pad_id) if text else None,
            "class_names": list(info.class_names), "kind": info.kind, "input_shape": list(info.input_shape),
            "preprocessing": info.preprocessing, "checkpoint": info.to_dict(), "source_checkpoint": str(checkpoint),
            "parity": {"max_abs_difference": worst, "tolerance": tolerance, "inputs_from": inputs_from,
                       "per_check": differences, **({"of": "the float32 graph, before quantization"}
                                                    if quantization else {})},
            "quantization": quantization,
            "exporter": ("torch.onnx.export(dynamo=True)" if format == "onnx" else "torch.jit.trace"),
            "torch_version": torch.__version__, "warmstart_version": __version__}
        write_json(staging / METADATA, metadata)
        make_folder(out)  # a WarmstartError naming --out when it cannot hold the export
        for other in set(FORMATS.values()) - {model_file.name}:
            # an earlier export of another format in the same folder: export.json will describe this one only, so
            # its model file would be read with this model's classes and preprocessing
            (out / other).unlink(missing_ok=True)
        for file in (model_file, staging / METADATA):
            file.replace(out / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.debug("%s export: max |exported - pytorch| = %.3g on %s", format, worst, inputs_from)
    return ExportResult(format=format, model_file=out / model_file.name, metadata_file=out / METADATA,
                        max_abs_difference=worst, tolerance=float(tolerance), examples=len(x),
                        inputs_from=inputs_from, quantize=quantize, agreement=agreed)


def load_predictor(path: str | Path):
    """A model to predict with and its metadata: an ONNX export (through onnxruntime) or a checkpoint. A folder
    that holds a checkpoint (a run folder, or its ``model/``) predicts with it, whatever else lies beside it: a
    ``model.onnx`` there is not the run's (export writes into a folder of its own)."""
    from ..models import load_checkpoint
    from ..models.checkpoint import WEIGHTS

    folder = Path(path).expanduser()
    holds_checkpoint = folder.is_dir() and any((where / WEIGHTS).is_file() for where in (folder, folder / "model"))
    if not holds_checkpoint and onnx_export_path(path) is not None:
        return load_onnx_export(path)
    if folder.is_dir() and (folder / FORMATS["torchscript"]).is_file() and (folder / METADATA).is_file():
        raise WarmstartError(f"{path}: a TorchScript export; predict runs checkpoints and ONNX exports",
                             hint="pass the checkpoint it was exported from, or export it with --format onnx")
    return load_checkpoint(path)


__all__ += ["load_predictor", "OnnxClassifier"]
