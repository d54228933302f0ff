"""``export --quantize int8``: dynamic int8 quantization of an ONNX export, checked against PyTorch's predictions.

onnxruntime's dynamic quantization (``onnxruntime.quantization.quantize_dynamic``; Jacob et al., CVPR 2018, for the
integer arithmetic) stores the weights of every MatMul, Gemm and Conv as int8 with one scale per tensor and quantizes
the activations to uint8 at run time, batch by batch, from their observed range: no calibration data, no retraining.
Those layers then run as integer MatMul/Conv. What it buys on a CPU: weights 4x smaller, and the transformer layers
of a MiniLM text model about 2.5x faster at batch 1 (benchmarks/results/quantization.md).

What it costs cannot be bounded in advance, so it is measured: the quantized model's logits no longer match PyTorch's
to 1e-4, and the check that an export gets becomes top-1 agreement with the PyTorch model on the same real inputs
(:func:`agreement`), which must reach ``min_agreement``. onnxruntime's own pre-processing step (symbolic shape
inference) is not run: it fails on the text models' dynamic sequence axis, and dynamic quantization does not need it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import WarmstartError

QUANTIZATIONS = ("int8",)


def check_quantize(quantize: str | None, format: str) -> None:
    """Refuses, before any work, a quantization that is not known or not possible in ``format``."""
    if quantize is None:
        return
    if quantize not in QUANTIZATIONS:
        raise WarmstartError(f"--quantize {quantize!r}: expected {' or '.join(QUANTIZATIONS)}",
                             hint="pass --quantize int8, or leave it out for a float32 export")
    if format != "onnx":
        raise WarmstartError(f"--quantize {quantize} needs --format onnx (onnxruntime quantizes the ONNX graph); got "
                             f"--format {format}", hint="pass --format onnx, or leave --quantize out")


def agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The share of rows whose top-1 class is the same in the two ``(rows, classes)`` logit arrays."""
    if reference.shape != candidate.shape or reference.ndim != 2 or len(reference) == 0:
        raise ValueError(f"expected two (rows, classes) arrays of one shape, got {reference.shape} and "
                         f"{candidate.shape}")
    return float(np.mean(reference.argmax(1) == candidate.argmax(1)))


def quantize_int8(fp32: Path, out: Path) -> None:
    """Writes to ``out`` the dynamic int8 quantization of the ONNX model ``fp32`` (weights int8, activations uint8
    quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()  # onnxruntime's quantizer warns on the root logger that pre-processing was skipped
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    except Exception as exc:  # onnxruntime raises plain Exceptions for graphs it cannot quantize
        raise WarmstartError(f"onnxruntime could not quantize the ONNX export to int8 ({type(exc).__name__}: {exc})",
                             hint="export without --quantize; nothing was written") from None
    finally:
        quiet.setLevel(level)


def check_agreement(value: float, min_agreement: float, inputs_from: str, checkpoint) -> None:
    """Refuses a quantized model whose predictions agree with PyTorch's on fewer than ``min_agreement`` of the
    parity inputs."""
    if value < min_agreement:
        raise WarmstartError(f"the int8 export of {checkpoint} predicts the same class as PyTorch on {value:.1%} of "
                             f"{inputs_from}, below --min-agreement {min_agreement:g}",
                             hint="nothing was written; export without --quantize, or lower --min-agreement if that "
                                  "loss is acceptable (check the accuracy with `warmstart predict` on labelled data)")
