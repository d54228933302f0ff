"""The commands that read a checkpoint: evaluate, predict, export, shift, and report (of a run folder)."""

from __future__ import annotations

from typing import Optional

from . import build, render
from .app import app
from .command import Given, command
from .defaults import from_api
from .options import (ADAPTATION_OPTIONS, CHECKPOINT_OPTIONS, DATA, DATA_OPTIONS, OUTPUT, OUTPUT_OPTIONS,
                      SCALING_OPTIONS, TRAINING_DATA, Group, Opt)

OPTIONAL_OUT = OUTPUT_OPTIONS.pick("out")[0].with_(type=Optional[str], default=None)
DEVICE = Group(SCALING_OPTIONS.pick("device")[0].with_(default=from_api("device")))
JSON = OUTPUT_OPTIONS.pick("as_json")

EVALUATE_OPTIONS = Group(
    Opt("split", ("--split",), Optional[str], "The split to score: train, val, test or all.", from_api("split"), DATA),
    OPTIONAL_OUT.with_(help="Folder for metrics.json, the confusion matrix and report.html."),
    *OUTPUT_OPTIONS.pick("overwrite", "as_json"),
)


@command(app, "evaluate", CHECKPOINT_OPTIONS, DATA_OPTIONS.without("shots", "val_fraction", *TRAINING_DATA),
         ADAPTATION_OPTIONS.pick("target_unlabeled", "target_corruption").with_help(
             target_unlabeled="AdaBN first: re-estimate BatchNorm statistics on this data's train-split inputs (the "
                              "checkpoint is not changed)."), EVALUATE_OPTIONS, DEVICE)
def evaluate(given: Given) -> None:
    """Accuracy, precision, recall, F1, a per-class table and the confusion matrix of a checkpoint."""
    from .. import api

    checkpoint = build.checkpoint(given)
    metrics = api.evaluate(checkpoint, build.data_config(given), out=given.out, device=given.device,
                           target_unlabeled=build.target_data(given), **given.changed("split", "overwrite"))
    split = f" ({given.split})" if given.split else ""  # else the API's default split, which its note names
    render.print_metrics(metrics, f"{checkpoint} on {given.data}{split}", given.as_json, run_dir=given.out)


PREDICT_OPTIONS = Group(
    Opt("input", ("--input",), str, "Rows to predict: a .csv, .tsv, .jsonl or .parquet table.", ..., DATA),
    Opt("text_column", ("--text-column",), str, "Text column (text models).", from_api("text_column"), DATA),
    Opt("image_column", ("--image-column",), str, "Image path column (image models); relative to the input's "
        "folder.", from_api("image_column"), DATA),
    Opt("label_column", ("--label-column",), str, "A label column, not a feature (vector models without recorded "
        "feature names).", from_api("label_column"), DATA),
    Opt("batch_size", ("--batch-size",), int, "Rows per forward pass.", from_api("batch_size"), min=1),
    OUTPUT_OPTIONS.pick("out")[0].with_(help="CSV to write: the input plus predicted_label, probability."),
    *JSON,
)


@command(app, "predict", CHECKPOINT_OPTIONS.with_help(checkpoint="Checkpoint (run folder, model/ folder or file), "
                                                                 "or an ONNX export (its folder or model.onnx)."),
         PREDICT_OPTIONS, DEVICE)
def predict(given: Given) -> None:
    """Predict every row of a table (.csv, .tsv, .jsonl, .parquet): write its rows and columns plus predicted_label
    and probability, as a CSV."""
    from .. import api

    result = api.predict(build.checkpoint(given), given.input, given.out, text_column=given.text_column,
                         image_column=given.image_column, label_column=given.label_column,
                         batch_size=given.batch_size, device=given.device)
    if given.as_json:
        render.print_json(result)
    else:
        render.print_predictions(result)


EXPORT_OPTIONS = Group(
    Opt("format", ("--format",), str, "onnx or torchscript.", ..., OUTPUT),
    OPTIONAL_OUT.with_(help="Folder to write (default: export-FORMAT beside the model)."),
    Opt("data", ("--data",), Optional[str], "Data for the parity check (default: the checkpoint's own data).",
        from_api("data"), DATA),
    Opt("tolerance", ("--tolerance",), float, "Largest allowed |exported - PyTorch| logit.", from_api("tolerance")),
    Opt("examples", ("--examples",), int, "Real inputs in the parity check.", from_api("examples"), min=2),
    Opt("quantize", ("--quantize",), Optional[str], "int8: dynamic int8 quantization of the ONNX model.",
        from_api("quantize")),
    Opt("min_agreement", ("--min-agreement",), float,
        "With --quantize: least top-1 agreement with PyTorch on the parity inputs.", from_api("min_agreement")),
)


@command(app, "export", CHECKPOINT_OPTIONS, EXPORT_OPTIONS)
def export(given: Given) -> None:
    """Export a checkpoint to ONNX or TorchScript, with its preprocessing and class names beside it, after checking
    that the exported model's logits match PyTorch's on real inputs."""
    from .. import api

    result = api.export_model(build.checkpoint(given), given.format, out=given.out, data=given.data,
                              tolerance=given.tolerance, examples=given.examples, quantize=given.quantize,
                              min_agreement=given.min_agreement)
    render.print_export(result)


SHIFT_OPTIONS = Group(
    Opt("source", ("--source",), str, "Source data (what the model was trained on).", ..., DATA),
    Opt("target", ("--target",), str, "Target data to compare with it.", ..., DATA),
    Opt("source_corruption", ("--source-corruption",), Optional[str], "NAME:SEVERITY.", None, DATA),
    Opt("target_corruption", ("--target-corruption",), Optional[str], "NAME:SEVERITY.", None, DATA),
    DATA_OPTIONS.pick("resize")[0].with_(help="Resize images to the model's input shape."),
    Opt("samples", ("--samples",), int, "At most this many test examples per side.", from_api("samples")),
    Opt("permutations", ("--permutations",), int, "Permutations of the MMD test.", from_api("permutations")),
    Opt("seed", ("--seed",), int, "Seeds the sampling and the permutations.", from_api("seed")),
    *DEVICE,
    OPTIONAL_OUT.with_(help="Folder for shift.json."),
    *JSON,
)


@command(app, "shift", CHECKPOINT_OPTIONS.with_help(checkpoint="Checkpoint whose feature space is measured."),
         SHIFT_OPTIONS)
def shift(given: Given) -> None:
    """Measure the shift from source to target in the model's feature space: MMD (permutation p-value), proxy
    A-distance and label shift, with a verdict."""
    from .. import api
    from ..config import DataConfig

    result = api.shift(DataConfig(given.source, corruption=given.source_corruption, resize=given.resize),
                       DataConfig(given.target, corruption=given.target_corruption, resize=given.resize),
                       build.checkpoint(given), out=given.out, samples=given.samples,
                       permutations=given.permutations, seed=given.seed, device=given.device)
    if given.as_json:
        render.print_json(result)
    else:
        render.print_shift(result, given.out)


@command(app, "report", Group(Opt("run_dir", (), str, "A run folder written by pretrain, finetune, evaluate or "
                                  "compare.", ..., argument=True)))
def report(given: Given) -> None:
    """(Re)build a run folder's self-contained report.html, and its MODEL_CARD.md when it holds a model."""
    from .. import api

    for path in api.report(given.run_dir):
        print(f"written: {path}")
