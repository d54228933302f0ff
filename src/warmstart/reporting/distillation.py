"""What a distillation run bought (``distillation.json``), as the rows that report.html and the model card show."""

from __future__ import annotations

from typing import Any

DISTILLATION = "distillation.json"
RUNTIMES = (("pytorch", "PyTorch"), ("onnx", "ONNX Runtime"))


def _speed(side: dict[str, Any], runtime: str, key: str, digits: int) -> str:
    value = (side.get("speed") or {}).get(runtime, {}).get(key)
    return "not measured" if value is None else f"{value:.{digits}f}"


def _ratio(summary: dict[str, Any], key: str, words: str) -> str:
    value = summary.get(key)
    return "not measured" if value is None else f"{value:.1f}x {words}"


def comparison_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the student-against-teacher table; its last column is what the student bought (the
    speed-ups: the teacher's latency over the student's, the student's throughput over the teacher's)."""
    student, teacher, summary = comparison["student"], comparison["teacher"], comparison["summary"]
    rows = [["test accuracy", f"{student['accuracy']:.4f}", f"{teacher['accuracy']:.4f}",
             f"{-summary['accuracy_gap_points']:+.2f} points, {summary['agreement']:.1%} agreement"],
            ["parameters", f"{student['parameters']:,}", f"{teacher['parameters']:,}",
             _ratio(summary, "parameter_ratio", "fewer")],
            ["file size (MB)", f"{student['file_bytes'] / 1e6:.2f}", f"{teacher['file_bytes'] / 1e6:.2f}",
             _ratio(summary, "file_size_ratio", "smaller")]]
    for runtime, label in RUNTIMES:
        rows.append([f"CPU latency, batch 1, {label} (ms)", _speed(student, runtime, "latency_ms", 2),
                     _speed(teacher, runtime, "latency_ms", 2), _ratio(summary, f"{runtime}_latency_speedup",
                                                                       "as fast")])
        rows.append([f"CPU throughput, batch 64, {label} (examples/s)",
                     _speed(student, runtime, "throughput_per_s", 0), _speed(teacher, runtime, "throughput_per_s", 0),
                     _ratio(summary, f"{runtime}_throughput_speedup", "the throughput")])
    return ["", "student", "teacher", "student against teacher"], rows


def comparison_sentence(comparison: dict[str, Any]) -> str:
    """Agreement, the accuracy gap, the size ratio and, when measured, the speed-ups at batch 1 and batch 64."""
    summary = comparison["summary"]
    gap = summary["accuracy_gap_points"]
    sentence = (f"The student agrees with its teacher (`{comparison['teacher'].get('checkpoint', '?')}`) on "
                f"{summary['agreement']:.1%} of the {summary['test_examples']} test examples, "
                f"{abs(gap):.2f} accuracy points {'below' if gap >= 0 else 'above'} it, with "
                f"{summary['parameter_ratio']:.1f}x fewer parameters and a {summary['file_size_ratio']:.1f}x smaller "
                "file.")
    if "pytorch_latency_speedup" not in summary:
        return sentence + " Its speed was not measured (--speed-rounds 0)."
    latency, throughput = ([f"{summary[f'{runtime}_{key}_speedup']:.1f}x" for runtime, _ in RUNTIMES]
                           for key in ("latency", "throughput"))
    return (sentence + f" On the CPU it answers one example {latency[0]} as fast as its teacher in PyTorch and "
            f"{latency[1]} through ONNX Runtime, and serves batches of 64 at {throughput[0]} and {throughput[1]} "
            "its throughput.")
