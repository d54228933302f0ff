"""What a distillation run bought (``distillation.json``), as the rows that report.html and the model card show."""

from __future__ import annotations

from typing import Any

DISTILLATION = "distillation.json"


def _speed(side: dict[str, Any], runtime: str, key: str, digits: int) -> str:
    value = (side.get("speed") or {}).get(runtime, {}).get(key)
    return "not measured" if value is None else f"{value:.{digits}f}"


def comparison_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the student-against-teacher table."""
    student, teacher = comparison["student"], comparison["teacher"]
    rows = [["test accuracy", f"{student['accuracy']:.4f}", f"{teacher['accuracy']:.4f}"],
            ["parameters", f"{student['parameters']:,}", f"{teacher['parameters']:,}"],
            ["file size (MB)", f"{student['file_bytes'] / 1e6:.2f}", f"{teacher['file_bytes'] / 1e6:.2f}"]]
    for runtime, label in (("pytorch", "PyTorch"), ("onnx", "ONNX Runtime")):
        rows.append([f"CPU latency, batch 1, {label} (ms)", _speed(student, runtime, "latency_ms", 2),
                     _speed(teacher, runtime, "latency_ms", 2)])
        rows.append([f"CPU throughput, batch 64, {label} (examples/s)",
                     _speed(student, runtime, "throughput_per_s", 0), _speed(teacher, runtime, "throughput_per_s", 0)])
    return ["", "student", "teacher"], rows


def comparison_sentence(comparison: dict[str, Any]) -> str:
    """One sentence: agreement, the accuracy gap and the size ratio."""
    summary = comparison["summary"]
    gap = summary["accuracy_gap_points"]
    return (f"The student agrees with its teacher (`{comparison['teacher'].get('checkpoint', '?')}`) on "
            f"{summary['agreement']:.1%} of the {summary['test_examples']} test examples, "
            f"{abs(gap):.2f} accuracy points {'below' if gap >= 0 else 'above'} it, with "
            f"{summary['parameter_ratio']:.1f}x fewer parameters and a {summary['file_size_ratio']:.1f}x smaller file.")
