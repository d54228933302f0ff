"""The command line: it parses arguments into config objects and makes one call into the Python API.

Errors that are the user's (WarmstartError, bad usage) print one short message and exit with code 2.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
import yaml

from . import api
from .config import DataConfig, ModelConfig, TrainConfig
from .errors import WarmstartError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="warmstart: pretrain, fine-tune and evaluate models, and measure what transfer gained.")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def _model_options(pairs: list[str] | None) -> dict[str, Any]:
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise WarmstartError(f"--model-option {pair!r}: expected KEY=VALUE", hint="e.g. --model-option widths=[32,64]")
        options[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return options


def _image_size(values: list[int] | None) -> tuple[int, int] | None:
    if not values:
        return None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise WarmstartError(f"--image-size: expected H W or one size, got {values}")


def _print_result(metrics, title: str, as_json: bool, run_dir: Path | None = None):
    from .evaluation import render_report

    if as_json:
        print(json.dumps(metrics.to_dict()))
        return
    out = _console()
    out.print(render_report(metrics, title))
    if run_dir is not None:
        out.print(f"run folder: {run_dir}")


# Options shared by the training commands.
DataOpt = typer.Option(..., "--data", help="Built-in name (fashion-mnist, digits) or a path: .npz, .csv, image folder.")
ClassesOpt = typer.Option(None, "--classes", help="Class subset: 0-4, 5,6,9 or class names.")
LabelOpt = typer.Option("label", "--label-column", help="Label column of a CSV file.")
ImageSizeOpt = typer.Option(None, "--image-size", help="Resize an image folder's images to H W.")
EpochsOpt = typer.Option(10, "--epochs", min=1)
SeedOpt = typer.Option(0, "--seed")
OutOpt = typer.Option(..., "--out", help="Run folder to write.")
JsonOpt = typer.Option(False, "--json", help="Print the test metrics as JSON on stdout.")


def _train_config(epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, seed, device,
                  quiet) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                       schedule=schedule, warmup_epochs=warmup_epochs, seed=seed, device=device,
                       progress=not quiet)


@app.command()
def pretrain(data: str = DataOpt, classes: Optional[str] = ClassesOpt,
             model: str = typer.Option("cnn", "--model", help="Architecture: see `warmstart list models`."),
             model_option: Optional[List[str]] = typer.Option(None, "--model-option", help="KEY=VALUE, repeatable."),
             epochs: int = EpochsOpt, batch_size: int = typer.Option(128, "--batch-size"),
             optimizer: str = typer.Option("adamw", "--optimizer", help="sgd, adam or adamw."),
             lr: float = typer.Option(2e-3, "--lr"), weight_decay: float = typer.Option(1e-4, "--weight-decay"),
             schedule: str = typer.Option("cosine", "--schedule", help="constant, step or cosine."),
             warmup_epochs: int = typer.Option(0, "--warmup-epochs"),
             val_fraction: Optional[float] = typer.Option(None, "--val-fraction"),
             label_column: str = LabelOpt, image_size: Optional[List[int]] = ImageSizeOpt,
             seed: int = SeedOpt, device: str = typer.Option("auto", "--device"), out: Path = OutOpt,
             as_json: bool = JsonOpt, quiet: bool = typer.Option(False, "--quiet")):
    """Train a model on a source dataset and save it as a checkpoint."""
    result = api.pretrain(
        DataConfig(data, classes=classes, val_fraction=val_fraction, label_column=label_column,
                   image_size=_image_size(image_size)),
        model=ModelConfig(model, _model_options(model_option)),
        train=_train_config(epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, seed, device,
                            quiet or as_json),
        out=out)
    _print_result(result.metrics, f"pretrain test ({data})", as_json, result.run_dir)


@app.command()
def finetune(checkpoint: str = typer.Option(..., "--from", help="Checkpoint (run folder), or `none` for scratch."),
             data: str = DataOpt, classes: Optional[str] = ClassesOpt,
             shots: Optional[int] = typer.Option(None, "--shots", help="K training examples per class."),
             strategy: str = typer.Option("full", "--strategy", help="See `warmstart list strategies`."),
             model: Optional[str] = typer.Option(None, "--model", help="Architecture, with --from none."),
             model_option: Optional[List[str]] = typer.Option(None, "--model-option", help="KEY=VALUE, repeatable."),
             epochs: int = EpochsOpt, batch_size: int = typer.Option(16, "--batch-size"),
             optimizer: str = typer.Option("adamw", "--optimizer", help="sgd, adam or adamw."),
             lr: float = typer.Option(1e-3, "--lr"), weight_decay: float = typer.Option(1e-4, "--weight-decay"),
             schedule: str = typer.Option("cosine", "--schedule", help="constant, step or cosine."),
             warmup_epochs: int = typer.Option(0, "--warmup-epochs"),
             val_fraction: Optional[float] = typer.Option(None, "--val-fraction"),
             resize: bool = typer.Option(False, "--resize", help="Resize images to the checkpoint's input shape."),
             label_column: str = LabelOpt, image_size: Optional[List[int]] = ImageSizeOpt,
             seed: int = SeedOpt, device: str = typer.Option("auto", "--device"), out: Path = OutOpt,
             as_json: bool = JsonOpt, quiet: bool = typer.Option(False, "--quiet")):
    """Start from a checkpoint, give it a head for the target's classes, fine-tune it and save it."""
    scratch = checkpoint.lower() == "none"
    if not scratch and (model is not None or model_option):
        raise WarmstartError("--model and --model-option only apply with --from none (training from scratch)",
                             hint="drop them: the checkpoint fixes the architecture")
    result = api.finetune(
        None if scratch else checkpoint,
        DataConfig(data, classes=classes, shots=shots, val_fraction=val_fraction, label_column=label_column,
                   image_size=_image_size(image_size), resize=resize),
        strategy=strategy,
        model=ModelConfig(model or "cnn", _model_options(model_option)) if scratch else None,
        train=_train_config(epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, seed, device,
                            quiet or as_json),
        out=out)
    _print_result(result.metrics, f"finetune test ({data})", as_json, result.run_dir)


@app.command()
def evaluate(model: str = typer.Option(..., "--model", help="Checkpoint: run folder, model/ folder or file."),
             data: str = DataOpt, split: str = typer.Option("test", "--split", help="test or train."),
             classes: Optional[str] = ClassesOpt, label_column: str = LabelOpt,
             image_size: Optional[List[int]] = ImageSizeOpt,
             resize: bool = typer.Option(False, "--resize", help="Resize images to the checkpoint's input shape."),
             out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json and the plot."),
             device: str = typer.Option("auto", "--device"), as_json: bool = JsonOpt):
    """Accuracy, precision, recall, F1, a per-class table and the confusion matrix of a checkpoint."""
    metrics = api.evaluate(model, DataConfig(data, classes=classes, label_column=label_column,
                                             image_size=_image_size(image_size), resize=resize),
                           split=split, out=out, device=device)
    _print_result(metrics, f"{model} on {data} ({split})", as_json, run_dir=out)


@app.command()
def demo(shots: int = typer.Option(10, "--shots", min=1, help="Labelled target images per class."),
         seeds: int = typer.Option(3, "--seeds", min=1, help="Few-shot draws (and training seeds) to average."),
         pretrain_epochs: int = typer.Option(6, "--pretrain-epochs", min=1),
         finetune_epochs: int = typer.Option(40, "--finetune-epochs", min=1),
         data: str = typer.Option("fashion-mnist", "--data", help="Images with at least 10 classes."),
         out: Path = typer.Option(Path("runs/demo"), "--out"), as_json: bool = JsonOpt,
         quiet: bool = typer.Option(False, "--quiet")):
    """Pretrain on Fashion-MNIST 0-4, fine-tune on 5-9 from K images per class, compare with scratch."""
    from .demo import demo as run_demo, to_markdown

    result = run_demo(shots=shots, seeds=seeds, pretrain_epochs=pretrain_epochs, finetune_epochs=finetune_epochs,
                      data=data, out=out, progress=not (quiet or as_json))
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    from rich.markdown import Markdown

    _console().print(Markdown(to_markdown(result)))
    _console().print(f"run folder: {out}")


@app.command("list")
def list_(family: str = typer.Argument(..., help="models, strategies or datasets")):
    """List the registered models, strategies or datasets."""
    for name, description in api.list_registered(family).items():
        print(f"{name:16s} {description}")


class _NotesToStderr(logging.Handler):
    """Prints log records as ``note:`` lines on whatever ``sys.stderr`` is when they are emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"note: {record.getMessage()}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    # the API's notes (a new head, the epoch whose weights were kept, ...) reach the terminal as they happen
    logger = logging.getLogger("warmstart")
    if not any(isinstance(h, _NotesToStderr) for h in logger.handlers):
        logger.addHandler(_NotesToStderr())
    logger.setLevel(logging.INFO)
    try:
        app(args=argv)  # standalone: usage errors print their message and exit with 2
    except WarmstartError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
