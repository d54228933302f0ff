"""A distillation run, ``warmstart distill``'s work: the teacher, the student's starting point, the training (the
one loop, with :class:`~warmstart.strategies.distillation.Distillation` as its objective), then what the smaller
model bought, written to ``distillation.json`` beside the run's usual files.

The student (``student``, the ``--student`` SPEC):

- ``layers=K`` (text): the teacher itself, its encoder cut to K of its transformer layers, evenly spaced from the
  first (every other layer for half of them: DistilBERT's initialisation), with the teacher's head and tokenizer;
  ``layers=0,1``: those layers (the bottom ones: layer dropping's choice); with the model option
  ``intermediate_size=N``, each kept layer's feed-forward block also pruned to the N neurons that carry the most of
  its output on the training texts (:mod:`warmstart.models.ffn_pruning`);
- ``hf:SOURCE`` or ``minilm`` (text): a smaller pretrained encoder with a new head; when its tokenizer differs
  from the teacher's, each training example carries both tokenisations;
- a registered architecture (``cnn``, ``mlp``, ``timm``, ...) with its options (``--model-option``), trained from
  scratch on the teacher's input pipeline (its input shape and normalisation), so that the teacher and the student
  see one and the same input tensor.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig, ModelConfig, TrainConfig, to_dict
from ..data.fit import Preprocessing, fit_to_model, model_kind
from ..data.preprocess import Tokenization, preprocessing_from_dict
from ..data.unlabelled import load_unlabelled
from ..engine import Callback, resolve_device
from ..engine.loop import predict_logits
from ..errors import WarmstartError
from ..evaluation.speed import measure_speeds
from ..models import MODELS, CheckpointInfo, TransferModel, load_checkpoint, read_info, recorded_checkpoint
from ..models.ffn_pruning import activation_scores
from ..models.hf import chosen_layers, keep_feed_forward, keep_layers, spaced_layers, transformer_layers
from ..models.sources import pretrained_spec
from ..strategies.distillation import Distillation
from .folder import write_distillation
from .starting_point import HeadMismatch, StartingPoint, data_config, note, resolve_starting_point
from .trainer import RunResult, check_trainable, open_run_folder, resolve_strategy, train_and_save

log = logging.getLogger("warmstart")

COMMAND = "distill"


@dataclass(frozen=True)
class DistillationResult:
    """What ``distill`` returns: the student's run, and the student against the teacher (``distillation.json``)."""

    run: RunResult
    comparison: dict[str, Any]


def student_spec(student: str | ModelConfig) -> tuple[str, dict[str, Any]]:
    """The SPEC and its model options from a SPEC string or a ModelConfig (SPEC as its name)."""
    if isinstance(student, ModelConfig):
        return student.name, dict(student.options)
    if not isinstance(student, str) or not student.strip():
        raise WarmstartError(f"--student: expected a SPEC (layers=K, hf:SOURCE, or a registered model), got "
                             f"{student!r}", hint="e.g. --student layers=3, or --student cnn")
    return student.strip(), {}


def cut_layers(spec: str) -> int | list[int] | None:
    """K of ``layers=K``, the list of ``layers=I,J,...``, or None for another SPEC."""
    key, sep, value = spec.partition("=")
    if not sep or key.strip() != "layers":
        return None
    try:
        numbers = [int(part) for part in value.split(",")]
    except ValueError:
        raise WarmstartError(f"--student {spec!r}: expected a whole number of layers, or layer numbers separated "
                             "by commas", hint="e.g. --student layers=3, or --student layers=0,1") from None
    return numbers if "," in value else numbers[0]


def resolve_student(teacher: str | Path, teacher_model: TransferModel, data: DataConfig, student: str | ModelConfig,
                    train: TrainConfig) -> StartingPoint:
    """The student's starting point for each kind of SPEC (see the module's docstring)."""
    spec, options = student_spec(student)
    layers = cut_layers(spec)
    if layers is not None:
        if set(options) - {"intermediate_size"}:
            raise WarmstartError(f"--student {spec}: a student cut from the teacher takes one model option, "
                                 f"intermediate_size (its feed-forward neurons), and got "
                                 f"{', '.join(sorted(set(options) - {'intermediate_size'}))}",
                                 hint="drop those --model-option values, e.g. keep --model-option "
                                      "intermediate_size=768")
        if model_kind(teacher_model.arch, teacher_model.input_shape) != "text" or \
                transformer_layers(teacher_model.backbone.encoder) is None:
            raise WarmstartError(f"--student {spec}: cutting layers applies to a transformer text encoder, and the "
                                 f"teacher {teacher} is a {teacher_model.arch} model",
                                 hint="name a smaller registered model instead, e.g. --student cnn --model-option "
                                      "widths=[4,8,16]")
        # the teacher itself with its head (keep_head checks that the classes are the teacher's), then cut
        try:
            start = resolve_starting_point(teacher, data, None, train, keep_head=True)
        except HeadMismatch as exc:  # its message would tell the user to drop a --keep-head they never passed
            raise WarmstartError(f"--teacher {teacher} predicts {', '.join(exc.source)}, and --data {data.source} "
                                 f"holds {', '.join(exc.target)}: a student cut from the teacher keeps its head, "
                                 "so it needs the teacher's classes",
                                 hint="distil on the teacher's classes (check --data and --classes), or name "
                                      "another --student (hf:SOURCE, minilm) with a head of its own") from None
        encoder = start.model.backbone.encoder
        kept_before = start.model.arch_args.get("layers") or list(range(len(transformer_layers(encoder))))
        chosen = chosen_layers(len(kept_before), layers) if isinstance(layers, list) else \
            spaced_layers(len(kept_before), layers)
        keep_layers(encoder, chosen, str(teacher))
        start.model.arch_args["layers"] = [kept_before[i] for i in chosen]
        start.lineage["student"] = {"cut_from_teacher": True, "layers": start.model.arch_args["layers"]}
        if len(chosen) < len(kept_before):
            note(start.notes, f"student: the teacher cut to {len(chosen)} of its {len(kept_before)} transformer "
                              f"layers (layers {', '.join(map(str, chosen))}), with its head")
        pruned = "intermediate_size" in options and prune_feed_forward(start, options["intermediate_size"],
                                                                        str(teacher))
        if len(chosen) == len(kept_before) and not pruned:
            smaller = (f"layers=K with K below {len(kept_before)}, or " if len(kept_before) > 1 else "") + \
                "--model-option intermediate_size=N below its feed-forward width"
            note(start.notes, f"student: all {len(chosen)} of the teacher's transformer layers, whole, so nothing is "
                              f"cut: the student is as large as its teacher (self-distillation); pass {smaller} for "
                              "a smaller one")
        return start
    if pretrained_spec(spec) is not None:
        model = None if not options else ModelConfig(pretrained_spec(spec).name, options)
        return resolve_starting_point(spec, data, model, train)
    if spec not in MODELS:
        raise WarmstartError(f"--student {spec!r}: not layers=K, a pretrained source (hf:SOURCE, minilm, timm:NAME) "
                             f"or a registered model ({', '.join(MODELS.names())})",
                             hint="e.g. --student layers=3 for text, --student cnn --model-option widths=[4,8,16] "
                                  "for images")
    text = model_kind(teacher_model.arch, teacher_model.input_shape) == "text"
    # from scratch on the teacher's input pipeline (images, vectors): one input tensor serves both
    return resolve_starting_point(None, data, ModelConfig(spec, options), train,
                                  input_pipeline=None if text else teacher)


PRUNING_TEXTS = 2048  # training texts that score the feed-forward neurons: a few seconds on a CPU


def prune_feed_forward(start: StartingPoint, width: int, teacher: str) -> bool:
    """Prune the cut student's feed-forward blocks to ``width`` neurons each, those that carry the most of the
    block's output on (up to PRUNING_TEXTS of) the labelled training texts: :mod:`warmstart.models.ffn_pruning`.
    Returns whether any neuron was dropped."""
    encoder = start.model.backbone
    before = encoder.encoder.config.intermediate_size
    texts = start.splits.labelled_train.x[:PRUNING_TEXTS]  # not the texts written from the class names
    ids = start.preprocessing.apply(texts)
    stack = transformer_layers(encoder.encoder)
    scores = activation_scores(encoder.encoder, stack, ids, encoder.pad_id)
    keep_feed_forward(encoder.encoder, width, teacher, scores)
    start.model.arch_args["intermediate_size"] = width
    start.lineage["student"]["intermediate_size"] = width
    if width < before:
        note(start.notes, f"student: each feed-forward block pruned from {before} to {width} neurons, those "
                          f"carrying the most of its output on {len(texts)} training texts")
    return width < before


def teacher_view(teacher_prep: Preprocessing, start: StartingPoint, teacher: str | Path,
                 teacher_model: TransferModel, data: DataConfig) -> Preprocessing | None:
    """How the teacher reads a training example when the student's input is not its own: its tokenizer at the
    data's ``max_length`` (so both tokenisations stack); None when the two read the same tensor. A student on
    another image or vector pipeline is refused: function matching needs one input for both."""
    student_prep = start.preprocessing
    if isinstance(teacher_prep, Tokenization):
        if isinstance(student_prep, Tokenization) and student_prep.source == teacher_prep.source:
            return None
        return Tokenization(teacher_prep.source, data.max_length)
    if teacher_prep.to_dict() != student_prep.to_dict() or tuple(start.model.input_shape) != \
            tuple(teacher_model.input_shape):
        raise WarmstartError(f"--student: the student reads other inputs than the teacher {teacher} (input shape "
                             f"{tuple(start.model.input_shape)} against {tuple(teacher_model.input_shape)}, or "
                             "another normalisation), and the teacher must see the student's very input",
                             hint="name a registered architecture (--student timm --model-option name=NAME, "
                                  "--student cnn): it is trained on the teacher's input pipeline")
    return None


def unlabeled_config(unlabeled: DataConfig | str, data: DataConfig) -> DataConfig:
    """``--unlabeled`` as a DataConfig: a path alone is read with ``--data``'s text and label columns, image size,
    resizing and hold-out (the two sets feed one model; the same file's test rows are never read)."""
    if isinstance(unlabeled, DataConfig):
        return unlabeled
    return DataConfig(unlabeled, label_column=data.label_column, text_column=data.text_column,
                      max_length=data.max_length, image_size=data.image_size, resize=data.resize,
                      test_fraction=data.test_fraction)  # the --data file's own test rows are never read


KIND_FILES = {"text": "a .txt (one text per line), or a .csv, .jsonl or .parquet text column",
              "image": "a folder of images, or an .npz holding x (images)",
              "vector": "an .npz holding x (feature vectors)"}


def unlabeled_examples(unlabeled: DataConfig, start: StartingPoint, teacher: str | Path,
                       data: DataConfig) -> np.ndarray:
    """The inputs of ``unlabeled`` (:func:`~warmstart.data.unlabelled.load_unlabelled`: a file without labels, or a
    labelled dataset's training split with its labels ignored, which the run's notes say), fitted to the student's
    input."""
    dataset = load_unlabelled(unlabeled, ignore_labels=True, flag="--unlabeled", notes=start.notes,
                              run_classes=data.classes)
    kind = start.splits.train.kind
    if dataset.kind != kind:
        raise WarmstartError(f"--unlabeled {unlabeled.source!r} holds {dataset.kind} data, and the teacher {teacher} "
                             f"reads {kind} (as --data {data.source} holds)",
                             hint=f"pass unlabelled {kind} examples: {KIND_FILES[kind]}")
    try:
        return fit_to_model(dataset, start.model.input_shape, start.preprocessing, model_name="the student",
                            resize=unlabeled.resize).x
    except WarmstartError as exc:  # its size or channels: say which data it was
        raise WarmstartError(f"--unlabeled {unlabeled.source!r}: {exc.message}", hint=exc.hint) from None


def teacher_lineage(teacher: str | Path, info: CheckpointInfo) -> dict[str, Any]:
    """Where the teacher came from, for the student's metadata and config.json."""
    metrics = info.extra.get("metrics") or {}
    return {"checkpoint": recorded_checkpoint(teacher), "arch": info.arch, "arch_args": info.arch_args,
            "class_names": list(info.class_names), "data": info.extra.get("data"),
            "test_accuracy": metrics.get("accuracy"), "parent": info.extra.get("parent")}


def distill_run(teacher: str | Path, data: DataConfig | str, student: str | ModelConfig, *,
                unlabeled: DataConfig | str | None, temperature: float, alpha: float, feature_weight: float,
                mask_tokens: float, train: TrainConfig | None,
                out: str | Path, callbacks: tuple[Callback, ...], resume: bool, overwrite: bool,
                speed_rounds: int) -> DistillationResult:
    """The whole run: checks, the teacher and the student, training, the saved run, and distillation.json."""
    started = time.perf_counter()
    data = data_config(data)
    train = train or TrainConfig.for_command(COMMAND)
    if not (isinstance(speed_rounds, int) and speed_rounds >= 0):
        raise WarmstartError(f"--speed-rounds: expected a whole number >= 0, got {speed_rounds!r}",
                             hint="pass --speed-rounds 20, or 0 to skip the speed measurement")
    folder = open_run_folder(out, resume=resume, overwrite=overwrite, reads=(teacher, data, unlabeled))
    teacher_model, teacher_info = load_checkpoint(teacher)
    start = resolve_student(teacher, teacher_model, data, student, train)
    spec, options = student_spec(student)  # as given, so that `distill --config RUN/config.json` replays it
    start.lineage["student"] = {"spec": spec, "model_options": options, **start.lineage.get("student", {})}
    check_trainable(data, start.splits, train)
    if tuple(teacher_info.class_names) != tuple(start.splits.train.class_names):
        raise WarmstartError(f"--teacher {teacher} predicts {', '.join(teacher_info.class_names)}, and --data "
                             f"{data.source} holds {', '.join(start.splits.train.class_names)}",
                             hint="distil on the teacher's classes (check --classes)")
    teacher_prep = preprocessing_from_dict(teacher_info.preprocessing)
    view = teacher_view(teacher_prep, start, teacher, teacher_model, data)
    unlabeled = None if unlabeled is None else unlabeled_config(unlabeled, data)
    extra = None if unlabeled is None else unlabeled_examples(unlabeled, start, teacher, data)
    objective = Distillation(teacher_model, temperature=temperature, alpha=alpha, teacher_preprocessing=view,
                             unlabeled=extra, feature_weight=feature_weight, mask_tokens=mask_tokens)
    objective.check_student(start.model, spec)
    if extra is not None:
        note(start.notes, f"{len(extra)} unlabelled examples of {unlabeled.source} extend the transfer set")
        start.lineage["unlabeled"] = to_dict(unlabeled)
    start.lineage["teacher"] = teacher_lineage(teacher, teacher_info)
    start.lineage["speed_rounds"] = speed_rounds  # so that `distill --config` times (or skips) the same way
    objective, train = resolve_strategy(objective, start, train)
    run = train_and_save(COMMAND, start, objective, data, train, folder=folder, callbacks=callbacks,
                         started=started, resume=resume)
    comparison: dict[str, Any] = {}
    if folder.writes:  # the main process (under DDP, the others write nothing)
        comparison = compare_with_teacher(run, start, teacher, teacher_model, teacher_prep, data,
                                          device=resolve_device(train.device), rounds=speed_rounds)
        write_distillation(run.run_dir, comparison)
    return DistillationResult(run=run, comparison=comparison)


def compare_with_teacher(run: RunResult, start: StartingPoint, teacher: str | Path, teacher_model: TransferModel,
                         teacher_prep: Preprocessing, data: DataConfig, *, device: torch.device,
                         rounds: int) -> dict[str, Any]:
    """The student against the teacher on the test split: accuracy, the rate at which they agree, parameters, file
    size, and (``rounds`` > 0) CPU latency at batch 1 and throughput at batch 64, in PyTorch and through ONNX."""
    test = start.splits.test
    student_x, teacher_x = start.preprocessing.apply(test.x), teacher_prep.apply(test.x)
    student_pred = predict_logits(run.model, student_x, device).argmax(1)
    teacher_pred = predict_logits(teacher_model, teacher_x, device).argmax(1)
    y = torch.from_numpy(test.y)
    sides = {}
    for name, model, x, pred, checkpoint in (("student", run.model, student_x, student_pred, run.checkpoint),
                                             ("teacher", teacher_model, teacher_x, teacher_pred, teacher)):
        sides[name] = {"accuracy": float((pred == y).float().mean()),
                       "parameters": sum(p.numel() for p in model.parameters()),
                       "file_bytes": read_info(checkpoint)[0].stat().st_size}
    student, teacher_side = sides["student"], sides["teacher"]
    summary = {"test_examples": len(y), "agreement": float((student_pred == teacher_pred).float().mean()),
               "accuracy_gap_points": 100.0 * (teacher_side["accuracy"] - student["accuracy"]),
               "parameter_ratio": teacher_side["parameters"] / student["parameters"],
               "file_size_ratio": teacher_side["file_bytes"] / student["file_bytes"]}
    if rounds > 0:
        speeds = _speeds({"student": (run.model, run.checkpoint, student_x),
                          "teacher": (teacher_model, teacher, teacher_x)}, rounds, data)
        student["speed"], teacher_side["speed"] = speeds["student"], speeds["teacher"]
        for runtime in ("pytorch", "onnx"):
            summary[f"{runtime}_latency_speedup"] = (teacher_side["speed"][runtime]["latency_ms"]
                                                     / student["speed"][runtime]["latency_ms"])
            summary[f"{runtime}_throughput_speedup"] = (student["speed"][runtime]["throughput_per_s"]
                                                        / teacher_side["speed"][runtime]["throughput_per_s"])
    return {"student": student, "teacher": {**teacher_side, "checkpoint": recorded_checkpoint(teacher)},
            "summary": summary,
            "note": ("speed: CPU, the median of the rounds after a warm-up, the student and the teacher timed in "
                     "turn within each round; it depends on the machine and its load")}


def _speeds(models: dict[str, tuple[TransferModel, str | Path, torch.Tensor]], rounds: int,
            data: DataConfig) -> dict[str, Any]:
    """CPU speed of each model in PyTorch and of its ONNX export (made in a temporary folder and checked against
    PyTorch by :func:`warmstart.export.export_model` on this run's data: the teacher's own records the path it was
    trained from as it was typed, which another working directory cannot read), the models timed interleaved in
    each runtime."""
    from ..export import export_model, load_onnx_export

    source = data.source if isinstance(data.source, str) else None  # in memory: the checkpoints' own records

    pytorch = {name: (copy.deepcopy(model).float().cpu().eval(), x) for name, (model, _, x) in models.items()}
    with tempfile.TemporaryDirectory(prefix="warmstart-distill-onnx-") as folder:
        onnx = {}
        for name, (_, checkpoint, x) in models.items():
            exported = export_model(checkpoint, "onnx", out=Path(folder) / name, data=source)
            onnx[name] = (load_onnx_export(exported.model_file.parent)[0], x)
        by_runtime = {"pytorch": measure_speeds(pytorch, rounds=rounds), "onnx": measure_speeds(onnx, rounds=rounds)}
    return {name: {runtime: figures[name] for runtime, figures in by_runtime.items()} for name in models}
