"""What does int8 quantization buy a fine-tuned text model, alone and on top of distillation? MiniLM on TREC.

A teacher (all-MiniLM-L6-v2 fine-tuned on every TREC training question, or ``--teacher RUN``) and optionally a
student distilled from it (``--student-layers 0,1,2``: the teacher's encoder cut to those layers, or
``--student RUN``), each served three ways: the PyTorch checkpoint, its float32 ONNX export, and its int8 ONNX export
(``warmstart export --quantize int8``: onnxruntime's dynamic quantization). For each: accuracy on TREC's 500 test
questions through ``warmstart predict`` (the serving path), the agreement with the PyTorch model's predictions, the
file size, and CPU latency at batch 1 and throughput at batch 64, the models of one runtime timed in turn within each
round (``warmstart.evaluation.speed.measure_speeds``; torch and onnxruntime at their default threads, one per core;
PyTorch first, as onnxruntime's spinning threads would slow it).
Speed needs a quiet machine; ``--speed-rounds 0`` skips it.

    python benchmarks/quantization.py [--teacher RUN] [--student-layers 0,1,2 | --student RUN] [--speed-rounds 50]

Writes benchmarks/results/NAME.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.models import read_info

from _common import RESULTS, command_line, machine_info, write_results

TREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec"
QUIET = dict(progress=False, trackers=())


def labels_of(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row["label"] for row in csv.DictReader(f)]


def served(model: Path, folder: Path, name: str) -> list[str]:
    """The predicted labels of TREC's test questions, through ``warmstart predict`` on ``model``."""
    out = folder / f"{name}.csv"
    warmstart.predict(model, TREC / "test.csv", out)
    with open(out, newline="", encoding="utf-8") as f:
        return [row["predicted_label"] for row in csv.DictReader(f)]


def variants(checkpoint: Path, folder: Path, name: str) -> dict[str, Path]:
    """The checkpoint and its float32 and int8 ONNX exports."""
    fp32 = warmstart.export_model(checkpoint, "onnx", out=folder / f"{name}-onnx")
    int8 = warmstart.export_model(checkpoint, "onnx", out=folder / f"{name}-int8", quantize="int8", examples=128)
    return {f"{name} pytorch": checkpoint, f"{name} onnx fp32": fp32.model_file, f"{name} onnx int8": int8.model_file}


def speeds(models: dict[str, Path], rounds: int) -> dict[str, dict[str, float]]:
    from warmstart.data import load_split
    from warmstart.data.preprocess import preprocessing_from_dict
    from warmstart.evaluation.speed import measure_speeds
    from warmstart.export import load_predictor

    test = load_split(DataConfig(str(TREC)), "test")
    calls = {}
    for name, path in models.items():
        net, info = load_predictor(path)  # a checkpoint on the CPU, or an ONNX export run by onnxruntime
        calls[name] = (net.eval(), preprocessing_from_dict(info.preprocessing).apply(test.x[:64]))
    # one runtime at a time, PyTorch first: onnxruntime's thread pool spins for a while after each run (its
    # default), which starves a PyTorch call timed right after it (107 ms instead of 6 at batch 1 when interleaved)
    measured = {}
    for runtime in ("pytorch", "onnx"):
        measured |= measure_speeds({n: c for n, c in calls.items() if runtime in n}, rounds=rounds)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, help="a fine-tuned TREC checkpoint (default: fine-tune one)")
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--teacher-out", type=Path, help="keep the teacher trained here")
    parser.add_argument("--student", type=Path, help="a student distilled from the teacher")
    parser.add_argument("--student-layers", help="distil a student of the teacher's layers, e.g. 0,1,2")
    parser.add_argument("--student-epochs", type=int, default=5)
    parser.add_argument("--student-out", type=Path, help="keep the distilled student here")
    parser.add_argument("--speed-rounds", type=int, default=50)
    parser.add_argument("--name", default="quantization")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.perf_counter()
    truth = labels_of(TREC / "test.csv")
    report: dict[str, Any] = {"command": command_line("benchmarks/quantization.py"),
                              "arguments": {k: str(v) for k, v in vars(args).items() if k != "out"}}
    with tempfile.TemporaryDirectory(prefix="warmstart-bench-quantize-") as tmp:
        folder = Path(tmp)
        teacher = args.teacher
        if teacher is None:
            teacher = args.teacher_out or folder / "teacher"
            warmstart.finetune("minilm", DataConfig(str(TREC), max_length=64), out=teacher, overwrite=True,
                               train=TrainConfig.for_command("finetune", epochs=args.teacher_epochs, **QUIET))
        models = variants(teacher, folder, "teacher")
        student = args.student
        if student is None and args.student_layers:
            student = args.student_out or folder / "student"
            warmstart.distill(teacher, DataConfig(str(TREC), max_length=64), student=f"layers={args.student_layers}",
                              out=student, overwrite=True, speed_rounds=0,
                              train=TrainConfig.for_command("distill", epochs=args.student_epochs, **QUIET))
        if student is not None:
            models |= variants(student, folder, "student")
        predictions = {name: served(path, folder, name.replace(" ", "-")) for name, path in models.items()}
        rows = []
        for name, path in models.items():
            reference = predictions[name.split()[0] + " pytorch"]
            size = (path if path.suffix == ".onnx" else read_info(path)[0]).stat().st_size
            rows.append({"model": name, "accuracy": sum(p == t for p, t in zip(predictions[name], truth)) / len(truth),
                         "agreement_with_pytorch": sum(p == r for p, r in zip(predictions[name], reference))
                         / len(truth), "file_bytes": size})
        if args.speed_rounds:
            measured = speeds(models, args.speed_rounds)
            for row in rows:
                row.update(measured[row["model"]])
    report |= {"rows": rows, "test_examples": len(truth), "total_s": time.perf_counter() - started,
               "machine": machine_info()}
    fastest = {row["model"]: row for row in rows}
    baseline = fastest["teacher pytorch"]
    lines = ["# int8 quantization of MiniLM on TREC, alone and on top of distillation", "",
             f"Command: `{report['command']}` (total {report['total_s']:.0f} s; load average "
             f"{report['machine']['load_average'][0]:.1f} at the end).", "",
             "| model | accuracy (500 test questions) | agreement with its PyTorch model | file MB |"
             + (" batch-1 latency ms | speed-up vs teacher PyTorch | batch-64 texts/s |" if args.speed_rounds else ""),
             "|---|---|---|---|" + ("---|---|---|" if args.speed_rounds else "")]
    for row in rows:
        line = (f"| {row['model']} | {row['accuracy']:.4f} | {row['agreement_with_pytorch']:.4f} | "
                f"{row['file_bytes'] / 1e6:.1f} |")
        if args.speed_rounds:
            line += (f" {row['latency_ms']:.2f} | {baseline['latency_ms'] / row['latency_ms']:.2f}x | "
                     f"{row['throughput_per_s']:.0f} |")
        lines.append(line)
    write_results(args.out, args.name, report, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
