"""The command line: it parses arguments into config objects and makes one call into the Python API.

Errors that are the user's (WarmstartError, bad usage) print one short message and exit with code 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
import yaml

from . import api
from .adaptation import create_adaptation
from .config import DataConfig, ModelConfig, TrainConfig
from .errors import WarmstartError
from .strategies import create_strategy
from .tracking import parse_trackers

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="warmstart: pretrain, fine-tune and evaluate models, and measure what transfer gained.")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def _key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, each value read as YAML (numbers, lists and strings as a user would write them)."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise WarmstartError(f"{flag} {pair!r}: expected KEY=VALUE", hint=f"e.g. {flag} name=0.5")
        try:
            options[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise WarmstartError(f"{flag} {pair!r}: the value cannot be read ({exc})") from None
    return options


def _model_options(pairs: list[str] | None) -> dict[str, Any]:
    return _key_values(pairs, "--model-option")


def _data(data: str, classes: str | None, text_column: str | None, max_length: int, **more: Any) -> DataConfig:
    return DataConfig(data, classes=classes, text_column=text_column, max_length=max_length, **more)


def _check_model_flags(scratch: bool, model: str | None, model_option: list[str] | None) -> None:
    if not scratch and (model is not None or model_option):
        raise WarmstartError("--model and --model-option only apply with --from none (training from scratch), and "
                             "--model-option with a pretrained --from timm:NAME, torchvision:NAME or hf:SOURCE",
                             hint="drop them: the checkpoint fixes the architecture")
    if model_option and model is None:
        raise WarmstartError("--model-option needs --model to say which architecture it configures",
                             hint="add --model cnn (or mlp, hf)")


def _starting_model(scratch: bool, checkpoint: str, model: str | None,
                    model_option: list[str] | None) -> ModelConfig | None:
    """The ``model`` argument of finetune/lr-find: the scratch architecture, or the options of a pretrained
    source (``--from timm:NAME --model-option weights=PATH``); None for a checkpoint."""
    from .models.sources import source_architecture

    source = None if scratch else source_architecture(checkpoint)
    if source is not None:
        if model is not None and model != source:
            raise WarmstartError(f"--from {checkpoint} builds a {source} model, not {model}",
                                 hint="drop --model; --model-option still applies")
        return ModelConfig(source, _model_options(model_option)) if model_option else None
    _check_model_flags(scratch, model, model_option)
    return ModelConfig(model, _model_options(model_option)) if scratch and model else None


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
        if (Path(run_dir) / "report.html").is_file():
            out.print(f"report: {Path(run_dir) / 'report.html'}")


# Options shared by the training commands.
DataOpt = typer.Option(..., "--data", help="Built-in name (fashion-mnist, digits) or a path: .npz, .csv, image folder.")
ClassesOpt = typer.Option(None, "--classes", help="Class subset: 0-4, 5,6,9 or class names.")
LabelOpt = typer.Option("label", "--label-column", help="Label column of a CSV, TSV or JSON-lines file.")
TextColumnOpt = typer.Option(None, "--text-column", help="Text column: reads the file as text classification.")
MaxLengthOpt = typer.Option(64, "--max-length", help="Texts are cut to this many tokens.")
ImageSizeOpt = typer.Option(None, "--image-size", help="Resize an image folder's images to H W.")
EpochsOpt = typer.Option(10, "--epochs", min=1)
LrOpt = typer.Option(None, "--lr", help="Base learning rate. Default: the strategy's for the model, 1e-3 (for a "
                     "transformer encoder 5e-5; lp-ft and setfit 2e-5, lora and bitfit 5e-4, freeze and "
                     "linear-probe 1e-3).")
SeedOpt = typer.Option(0, "--seed")
OutOpt = typer.Option(..., "--out", help="Run folder to write.")
JsonOpt = typer.Option(False, "--json", help="Print the test metrics as JSON on stdout.")


ModelOptionOpt = typer.Option(None, "--model-option", help="KEY=VALUE, repeatable.")
OptimizerOpt = typer.Option("adamw", "--optimizer", help="sgd, adam or adamw.")
WeightDecayOpt = typer.Option(1e-4, "--weight-decay")
WarmupOpt = typer.Option(0, "--warmup-epochs")
ValFractionOpt = typer.Option(None, "--val-fraction")
ResizeOpt = typer.Option(False, "--resize", help="Resize images to the checkpoint's input shape.")
DeviceOpt = typer.Option("auto", "--device")
QuietOpt = typer.Option(False, "--quiet")
ScratchModelOpt = typer.Option(None, "--model",
                               help="Architecture, with --from none (default: cnn for images, mlp for vectors, "
                                    "hf for text).")
ScheduleOpt = typer.Option("cosine", "--schedule", help="constant, step, exponential, cosine, linear or one-cycle.")
EarlyStoppingOpt = typer.Option(None, "--early-stopping", help="Patience in epochs (needs a validation split).")
ClipOpt = typer.Option(None, "--grad-clip-norm", help="Clip the gradients' global norm to this value.")
SmoothingOpt = typer.Option(0.0, "--label-smoothing", help="Label smoothing in [0, 1).")
BalanceOpt = typer.Option("none", "--class-balance", help="none, weights (loss) or sampler (balanced batches).")
FrozenBatchNormOpt = typer.Option("eval", "--frozen-batchnorm",
                                  help="BatchNorm in frozen layers: eval (keep statistics) or train.")
AugmentOpt = typer.Option("none", "--augment",
                          help="Augmentation preset for training images: see `warmstart list augmentations`.")
MixOpt = typer.Option("none", "--mix", help="Batch mixing of training images: none, mixup or cutmix.")
MixAlphaOpt = typer.Option(1.0, "--mix-alpha", help="Beta(alpha, alpha) mixing weights of --mix.")
ResumeOpt = typer.Option(False, "--resume", help="Continue the interrupted run in --out (same settings).")
TrackerOpt = typer.Option(None, "--tracker",
                          help="Experiment trackers: tensorboard (the default), mlflow, or none; repeatable or "
                               "comma-separated.")
CorruptionOpt = typer.Option(None, "--corruption",
                             help="Shift every image of --data: NAME:SEVERITY, e.g. rotate:3 (`warmstart list "
                                  "corruptions`).")
TargetUnlabeledOpt = typer.Option(None, "--target-unlabeled",
                                  help="Unlabelled target data to adapt to (its train split's inputs; labels unused).")
TargetCorruptionOpt = typer.Option(None, "--target-corruption",
                                   help="Shift every image of --target-unlabeled: NAME:SEVERITY.")


def _target(data: str | None, corruption: str | None, resize: bool) -> DataConfig | None:
    if data is None:
        if corruption is not None:
            raise WarmstartError("--target-corruption needs --target-unlabeled", hint="add --target-unlabeled DATA")
        return None
    return DataConfig(data, corruption=corruption, resize=resize)

# Scaling out (README "Scaling out"): precision and memory format, and the launcher's options.
PrecisionOpt = typer.Option("fp32", "--precision", help="fp32, bf16 (autocast, CPU or CUDA) or fp16 (CUDA only).")
GradAccumulationOpt = typer.Option(1, "--grad-accumulation", help="Batches whose gradients add up to one step.")
ChannelsLastOpt = typer.Option(False, "--channels-last", help="Channels-last memory format for CNNs.")
CompileOpt = typer.Option(False, "--compile", help="torch.compile the model (slow first steps).")
NprocOpt = typer.Option(1, "--nproc", help="Data-parallel processes (per machine); starts torchrun.")
LauncherOpt = typer.Option("torchrun", "--launcher",
                           help="torchrun, spark (TorchDistributor on this machine) or spark-cluster (executors).")
NnodesOpt = typer.Option("1", "--nnodes", help="Machines for torchrun (N or MIN:MAX); needs --rdzv-endpoint.")
NodeRankOpt = typer.Option(None, "--node-rank", help="This machine's rank (torchrun static rendezvous).")
RdzvEndpointOpt = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT where the machines meet (torchrun).")
RdzvIdOpt = typer.Option(None, "--rdzv-id", help="A run id shared by the machines of one run (torchrun).")
RdzvBackendOpt = typer.Option("c10d", "--rdzv-backend", help="torchrun rendezvous backend.")
_ARGV: list[str] = []  # the command line as given, for relaunching it under torchrun


def _launched(nproc: int, launcher: str, nnodes: str, node_rank: int | None, rdzv_endpoint: str | None,
              rdzv_id: str | None, rdzv_backend: str, device: str) -> bool:
    """Start this command in several processes when asked (and not already in one of them); True if it ran."""
    from .engine.distributed import launched_by_torchrun
    from .launch import LaunchSettings, launch

    settings = LaunchSettings(nproc, launcher, nnodes, node_rank, rdzv_endpoint, rdzv_id, rdzv_backend)
    if not settings.distributed or launched_by_torchrun():
        return False
    launch(_ARGV or sys.argv[1:], settings, use_gpu=device.startswith("cuda"))
    return True


def _train_config(epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, seed, device,
                  quiet, **more: Any) -> TrainConfig:
    """The TrainConfig of a command's flags; ``more`` holds the newer options a command offers."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                       schedule=schedule, warmup_epochs=warmup_epochs, seed=seed, device=device,
                       progress=not quiet, **more)


@app.command()
def pretrain(data: str = DataOpt, classes: Optional[str] = ClassesOpt,
             model: str = typer.Option("cnn", "--model", help="Architecture: see `warmstart list models`."),
             model_option: Optional[List[str]] = ModelOptionOpt,
             epochs: int = EpochsOpt, batch_size: int = typer.Option(128, "--batch-size"),
             optimizer: str = OptimizerOpt,
             lr: float = typer.Option(2e-3, "--lr"), weight_decay: float = WeightDecayOpt,
             schedule: str = ScheduleOpt, warmup_epochs: int = WarmupOpt,
             early_stopping: Optional[int] = EarlyStoppingOpt, grad_clip_norm: Optional[float] = ClipOpt,
             label_smoothing: float = SmoothingOpt, class_balance: str = BalanceOpt,
             augment: str = AugmentOpt, mix: str = MixOpt, mix_alpha: float = MixAlphaOpt,
             val_fraction: Optional[float] = ValFractionOpt,
             label_column: str = LabelOpt, text_column: Optional[str] = TextColumnOpt,
             max_length: int = MaxLengthOpt, image_size: Optional[List[int]] = ImageSizeOpt,
             seed: int = SeedOpt, device: str = DeviceOpt, out: Path = OutOpt,
             resume: bool = ResumeOpt, as_json: bool = JsonOpt, quiet: bool = QuietOpt,
             tracker: Optional[List[str]] = TrackerOpt,
             corruption: Optional[str] = CorruptionOpt,
             precision: str = PrecisionOpt, grad_accumulation: int = GradAccumulationOpt,
             channels_last: bool = ChannelsLastOpt, compile: bool = CompileOpt,
             nproc: int = NprocOpt, launcher: str = LauncherOpt, nnodes: str = NnodesOpt,
             node_rank: Optional[int] = NodeRankOpt, rdzv_endpoint: Optional[str] = RdzvEndpointOpt,
             rdzv_id: Optional[str] = RdzvIdOpt, rdzv_backend: str = RdzvBackendOpt):
    """Train a model on a source dataset and save it as a checkpoint."""
    if _launched(nproc, launcher, nnodes, node_rank, rdzv_endpoint, rdzv_id, rdzv_backend, device):
        return
    result = api.pretrain(
        _data(data, classes, text_column, max_length, val_fraction=val_fraction, label_column=label_column,
                   image_size=_image_size(image_size), corruption=corruption),
        model=ModelConfig(model, _model_options(model_option)),
        train=_train_config(epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, seed, device,
                            quiet or as_json, early_stopping=early_stopping, grad_clip_norm=grad_clip_norm,
                            label_smoothing=label_smoothing, class_balance=class_balance,
                            trackers=parse_trackers(tracker), augment=augment, mix=mix, mix_alpha=mix_alpha,
                            precision=precision, grad_accumulation=grad_accumulation, channels_last=channels_last,
                            compile=compile),
        out=out, resume=resume)
    _print_result(result.metrics, f"pretrain test ({data})", as_json, result.run_dir)


@app.command()
def finetune(checkpoint: str = typer.Option(..., "--from",
                                           help="Checkpoint (run folder), a pretrained model (timm:NAME, "
                                                "torchvision:NAME, hf:FOLDER, minilm), `none` for scratch, or "
                                                "`auto` to rank --candidates and start from the best."),
             data: str = DataOpt, classes: Optional[str] = ClassesOpt,
             shots: Optional[int] = typer.Option(None, "--shots", help="K training examples per class."),
             strategy: str = typer.Option("full", "--strategy", help="See `warmstart list strategies`."),
             strategy_option: Optional[List[str]] = typer.Option(
                 None, "--strategy-option", help="KEY=VALUE, repeatable: e.g. layer_decay=0.7, boundaries=[3,6]."),
             frozen_batchnorm: str = FrozenBatchNormOpt,
             model: Optional[str] = ScratchModelOpt,
             model_option: Optional[List[str]] = ModelOptionOpt,
             epochs: int = EpochsOpt, batch_size: int = typer.Option(16, "--batch-size"),
             optimizer: str = OptimizerOpt,
             lr: Optional[float] = LrOpt, weight_decay: float = WeightDecayOpt,
             schedule: str = ScheduleOpt, warmup_epochs: int = WarmupOpt,
             early_stopping: Optional[int] = EarlyStoppingOpt, grad_clip_norm: Optional[float] = ClipOpt,
             label_smoothing: float = SmoothingOpt, class_balance: str = BalanceOpt,
             augment: str = AugmentOpt, mix: str = MixOpt, mix_alpha: float = MixAlphaOpt,
             val_fraction: Optional[float] = ValFractionOpt,
             resize: bool = ResizeOpt,
             label_column: str = LabelOpt, text_column: Optional[str] = TextColumnOpt,
             max_length: int = MaxLengthOpt, image_size: Optional[List[int]] = ImageSizeOpt,
             seed: int = SeedOpt, device: str = DeviceOpt, out: Path = OutOpt,
             resume: bool = ResumeOpt, as_json: bool = JsonOpt, quiet: bool = QuietOpt,
             tracker: Optional[List[str]] = TrackerOpt,
             candidates: Optional[List[str]] = typer.Option(
                 None, "--candidates", help="With --from auto: the models to rank (checkpoints, minilm, hf:, timm:)."),
             rank_score: str = typer.Option("logme", "--rank-score",
                                            help="With --from auto: the score that picks (see `warmstart list "
                                                 "scores`)."),
             corruption: Optional[str] = CorruptionOpt, target_unlabeled: Optional[str] = TargetUnlabeledOpt,
             target_corruption: Optional[str] = TargetCorruptionOpt,
             adaptation: Optional[str] = typer.Option(None, "--adaptation",
                                                      help="dann, coral or adabn (needs --target-unlabeled)."),
             adaptation_option: Optional[List[str]] = typer.Option(
                 None, "--adaptation-option", help="KEY=VALUE, repeatable: e.g. weight=0.5."),
             precision: str = PrecisionOpt, grad_accumulation: int = GradAccumulationOpt,
             channels_last: bool = ChannelsLastOpt, compile: bool = CompileOpt,
             nproc: int = NprocOpt, launcher: str = LauncherOpt, nnodes: str = NnodesOpt,
             node_rank: Optional[int] = NodeRankOpt, rdzv_endpoint: Optional[str] = RdzvEndpointOpt,
             rdzv_id: Optional[str] = RdzvIdOpt, rdzv_backend: str = RdzvBackendOpt):
    """Start from a checkpoint, give it a head for the target's classes, fine-tune it and save it."""
    if _launched(nproc, launcher, nnodes, node_rank, rdzv_endpoint, rdzv_id, rdzv_backend, device):
        return
    scratch = checkpoint.lower() == "none"
    starting_model = _starting_model(scratch, checkpoint, model, model_option)
    if adaptation_option and adaptation is None:
        raise WarmstartError("--adaptation-option needs --adaptation", hint="add --adaptation dann, coral or adabn")
    result = api.finetune(
        None if scratch else checkpoint,
        _data(data, classes, text_column, max_length, shots=shots, val_fraction=val_fraction, label_column=label_column,
                   image_size=_image_size(image_size), resize=resize, corruption=corruption),
        target_unlabeled=_target(target_unlabeled, target_corruption, resize),
        adaptation=None if adaptation is None else create_adaptation(
            adaptation, **_key_values(adaptation_option, "--adaptation-option")),
        strategy=create_strategy(strategy, **_key_values(strategy_option, "--strategy-option")),
        model=starting_model,
        train=_train_config(epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, seed, device,
                            quiet or as_json, early_stopping=early_stopping, grad_clip_norm=grad_clip_norm,
                            label_smoothing=label_smoothing, class_balance=class_balance,
                            frozen_batchnorm=frozen_batchnorm, trackers=parse_trackers(tracker), augment=augment,
                            mix=mix, mix_alpha=mix_alpha, precision=precision, grad_accumulation=grad_accumulation,
                            channels_last=channels_last, compile=compile),
        out=out, resume=resume, candidates=_listed("--candidates", candidates), rank_score=rank_score)
    _print_result(result.metrics, f"finetune test ({data})", as_json, result.run_dir)


@app.command()
def evaluate(model: str = typer.Option(..., "--model", help="Checkpoint: run folder, model/ folder or file."),
             data: str = DataOpt, split: str = typer.Option("test", "--split", help="test or train."),
             classes: Optional[str] = ClassesOpt, label_column: str = LabelOpt,
             text_column: Optional[str] = TextColumnOpt, max_length: int = MaxLengthOpt,
             image_size: Optional[List[int]] = ImageSizeOpt,
             resize: bool = ResizeOpt,
             out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json and the plot."),
             device: str = DeviceOpt, as_json: bool = JsonOpt, corruption: Optional[str] = CorruptionOpt,
             target_unlabeled: Optional[str] = typer.Option(
                 None, "--target-unlabeled", help="AdaBN first: re-estimate BatchNorm statistics on this data's "
                                                  "train-split inputs (the checkpoint is not changed)."),
             target_corruption: Optional[str] = TargetCorruptionOpt):
    """Accuracy, precision, recall, F1, a per-class table and the confusion matrix of a checkpoint."""
    metrics = api.evaluate(model, _data(data, classes, text_column, max_length, label_column=label_column,
                                             image_size=_image_size(image_size), resize=resize, corruption=corruption),
                           split=split, out=out, device=device,
                           target_unlabeled=_target(target_unlabeled, target_corruption, resize))
    _print_result(metrics, f"{model} on {data} ({split})", as_json, run_dir=out)


@app.command()
def predict(model: str = typer.Option(..., "--model", help="Checkpoint (run folder, model/ folder or file), or an "
                                                           "ONNX export (its folder or model.onnx)."),
            input: Path = typer.Option(..., "--input", help="CSV of the rows to predict."),
            out: Path = typer.Option(..., "--out", help="CSV to write: the input plus predicted_label, probability."),
            text_column: str = typer.Option("text", "--text-column", help="Text column (text models)."),
            image_column: str = typer.Option("path", "--image-column",
                                             help="Image path column (image models); relative to the CSV's folder."),
            label_column: str = typer.Option("label", "--label-column",
                                             help="A label column, not a feature (vector models without "
                                                  "recorded feature names)."),
            batch_size: int = typer.Option(128, "--batch-size", min=1),
            device: str = DeviceOpt,
            as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout.")):
    """Predict every row of a CSV: write its rows and columns plus predicted_label and probability."""
    result = api.predict(model, input, out, text_column=text_column, image_column=image_column,
                         label_column=label_column, batch_size=batch_size, device=device)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    counts = ", ".join(f"{name} {n}" for name, n in result.class_counts.items() if n)
    unpredicted = result.rows - result.predicted
    print(f"predicted {result.predicted} of {result.rows} rows" + (f": {counts}" if counts else "")
          + (f" ({unpredicted} left unpredicted)" if unpredicted else ""))
    print(f"written: {result.out}")


@app.command()
def demo(shots: int = typer.Option(10, "--shots", min=1, help="Labelled target images per class."),
         seeds: int = typer.Option(3, "--seeds", min=1, help="Few-shot draws (and training seeds) to average."),
         pretrain_epochs: int = typer.Option(6, "--pretrain-epochs", min=1),
         finetune_epochs: int = typer.Option(40, "--finetune-epochs", min=1),
         data: str = typer.Option("fashion-mnist", "--data", help="Images with at least 10 classes."),
         out: Path = typer.Option(Path("runs/demo"), "--out"), as_json: bool = JsonOpt,
         quiet: bool = QuietOpt):
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


def _listed(option: str, values: list[str] | None) -> list[str]:
    """Values given as ``a b c``, ``a,b,c`` or repeated options, in order."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _whole_numbers(option: str, values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise WarmstartError(f"{option}: expected whole numbers, got {' '.join(values)}",
                             hint=f"e.g. {option} 5 10 50") from None


def _print_compare(result) -> None:
    from rich.table import Table

    n = len(result.seeds)
    table = Table(title=f"transfer vs scratch over {n} seed{'s' if n != 1 else ''}: test accuracy")
    for column in ("strategy", "shots", "accuracy", "95% CI", "gain (points)", "p", "flag"):
        table.add_column(column, justify="left" if column in ("strategy", "flag") else "right", overflow="fold")
    for c in result.cells:
        ci = "n/a" if c.accuracy_ci_low is None else f"{c.accuracy_ci_low:.3f} to {c.accuracy_ci_high:.3f}"
        gain = "" if c.gain_points_mean is None else f"{c.gain_points_mean:+.1f} ± {c.gain_points_std:.1f}"
        p = "" if c.p_value is None else f"{c.p_value:.3g}"
        flag = f"[red]{c.flag}[/red]" if c.negative_transfer else c.flag
        table.add_row(c.strategy, str(c.shots), f"{c.accuracy_mean:.3f} ± {c.accuracy_std:.3f}", ci, gain, p, flag)
    out = _console()
    out.print(table)
    if len(result.seeds) < 2:
        out.print("no p-values: one seed has no spread; run --seeds 2 or more")
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if result.out is not None:
        out.print(f"report: {result.out}/report.html; tables: compare.md, .csv, .json, .png")


@app.command()
def compare(checkpoint: str = typer.Option(..., "--from", help="Source checkpoint (run folder)."),
            data: str = DataOpt, classes: Optional[str] = ClassesOpt,
            strategies: List[str] = typer.Option(["full"], "--strategies",
                                                 help="Strategies to test against scratch: full freeze."),
            shots: List[str] = typer.Option(["5", "10"], "--shots", help="Shots (K per class): 5 10 50, or 5,10,50."),
            seeds: int = typer.Option(3, "--seeds", help="Seeds 0..N-1; each draws its own K examples."),
            model: Optional[str] = typer.Option(None, "--model",
                                                help="Scratch architecture (default: the checkpoint's)."),
            model_option: Optional[List[str]] = ModelOptionOpt,
            epochs: int = EpochsOpt, batch_size: int = typer.Option(16, "--batch-size"),
            optimizer: str = OptimizerOpt,
            lr: Optional[float] = LrOpt, weight_decay: float = WeightDecayOpt,
            schedule: str = ScheduleOpt, warmup_epochs: int = WarmupOpt,
            early_stopping: Optional[int] = EarlyStoppingOpt, grad_clip_norm: Optional[float] = ClipOpt,
            label_smoothing: float = SmoothingOpt, class_balance: str = BalanceOpt,
            val_fraction: Optional[float] = ValFractionOpt,
            frozen_batchnorm: str = FrozenBatchNormOpt,
            resize: bool = ResizeOpt,
            label_column: str = LabelOpt, text_column: Optional[str] = TextColumnOpt,
             max_length: int = MaxLengthOpt, image_size: Optional[List[int]] = ImageSizeOpt,
            device: str = DeviceOpt, out: Path = OutOpt,
            as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON on stdout."),
            quiet: bool = QuietOpt, tracker: Optional[List[str]] = TrackerOpt):
    """Scratch and each strategy over seeds and shot counts: mean ± std, 95% CI, paired gain and its p-value."""
    from .compare import compare as run_compare

    if model is None and model_option:
        raise WarmstartError("--model-option needs --model (the scratch architecture)",
                             hint="add --model cnn, or drop it")
    result = run_compare(
        checkpoint,
        _data(data, classes, text_column, max_length, val_fraction=val_fraction, label_column=label_column,
                   image_size=_image_size(image_size), resize=resize),
        strategies=_listed("--strategies", strategies), shots=_whole_numbers("--shots", _listed("--shots", shots)),
        seeds=seeds, model=None if model is None else ModelConfig(model, _model_options(model_option)),
        train=_train_config(epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, 0, device,
                            quiet or as_json, early_stopping=early_stopping, grad_clip_norm=grad_clip_norm,
                            label_smoothing=label_smoothing, class_balance=class_balance,
                            frozen_batchnorm=frozen_batchnorm, trackers=parse_trackers(tracker)),
        out=out)
    if as_json:
        print(json.dumps(result.to_dict()))
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return
    _print_compare(result)


@app.command("lr-find")
def lr_find(checkpoint: str = typer.Option(..., "--from", help="Checkpoint (run folder), or `none` for scratch."),
            data: str = DataOpt, classes: Optional[str] = ClassesOpt,
            shots: Optional[int] = typer.Option(None, "--shots", help="K training examples per class."),
            strategy: str = typer.Option("full", "--strategy", help="See `warmstart list strategies`."),
            strategy_option: Optional[List[str]] = typer.Option(None, "--strategy-option",
                                                                help="KEY=VALUE, repeatable."),
            model: Optional[str] = ScratchModelOpt,
            model_option: Optional[List[str]] = ModelOptionOpt,
            epochs: int = typer.Option(10, "--epochs", min=1,
                                       help="The planned fine-tune's epochs: they place the strategy's phases."),
            batch_size: int = typer.Option(16, "--batch-size"),
            optimizer: str = OptimizerOpt,
            weight_decay: float = WeightDecayOpt,
            start_lr: float = typer.Option(1e-7, "--start-lr", help="The first step's learning rate."),
            end_lr: float = typer.Option(10.0, "--end-lr", help="The last step's learning rate."),
            steps: int = typer.Option(100, "--steps", help="Mini-batches, at exponentially growing rates."),
            resize: bool = ResizeOpt,
            label_column: str = LabelOpt, text_column: Optional[str] = TextColumnOpt,
             max_length: int = MaxLengthOpt, image_size: Optional[List[int]] = ImageSizeOpt,
            seed: int = SeedOpt, device: str = DeviceOpt,
            out: Path = typer.Option(..., "--out", help="Folder for lr_find.json and lr_find.png."),
            as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON on stdout.")):
    """Learning-rate range test: train briefly at exponentially growing rates and suggest one (no checkpoint
    changes). The test runs in the strategy's first phase."""
    scratch = checkpoint.lower() == "none"
    starting_model = _starting_model(scratch, checkpoint, model, model_option)
    result = api.lr_find(
        None if scratch else checkpoint,
        _data(data, classes, text_column, max_length, shots=shots, label_column=label_column,
              image_size=_image_size(image_size), resize=resize),
        strategy=create_strategy(strategy, **_key_values(strategy_option, "--strategy-option")),
        model=starting_model,
        train=TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
                          seed=seed, device=device, progress=False),
        start_lr=start_lr, end_lr=end_lr, steps=steps, out=out)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    print(f"suggested learning rate: {result.suggestion:.3g} (steepest descent of the smoothed loss)")
    print(f"other candidate: {result.min_loss_lr_over_10:.3g} (the lowest smoothed loss's rate / 10)")
    print(f"{result.steps_run} of {result.steps} steps, {result.start_lr:.3g} to {result.lrs[-1]:.3g}"
          + ("; stopped early: the loss diverged" if result.stopped_early else ""))
    print(f"plot: {out / 'lr_find.png'}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder written by pretrain, finetune, evaluate or "
                                                     "compare.")):
    """(Re)build a run folder's self-contained report.html, and its MODEL_CARD.md when it holds a model."""
    for path in api.report(run_dir):
        print(f"written: {path}")


@app.command()
def export(model: str = typer.Option(..., "--model", help="Checkpoint: run folder, model/ folder or file."),
           format: str = typer.Option(..., "--format", help="onnx or torchscript."),
           out: Optional[Path] = typer.Option(None, "--out",
                                              help="Folder to write (default: export-FORMAT beside the model)."),
           data: Optional[str] = typer.Option(None, "--data", help="Data for the parity check (default: the "
                                                                   "checkpoint's own data)."),
           tolerance: float = typer.Option(1e-4, "--tolerance", help="Largest allowed |exported - PyTorch| logit."),
           examples: int = typer.Option(32, "--examples", min=2, help="Real inputs in the parity check.")):
    """Export a checkpoint to ONNX or TorchScript, with its preprocessing and class names beside it, after checking
    that the exported model's logits match PyTorch's on real inputs."""
    result = api.export_model(model, format, out=out, data=data, tolerance=tolerance, examples=examples)
    print(f"parity on {result.examples} real inputs ({result.inputs_from}): max |exported - pytorch| = "
          f"{result.max_abs_difference:.3g} (tolerance {result.tolerance:g})")
    print(f"written: {result.model_file}")
    print(f"written: {result.metadata_file}")


@app.command()
def shift(source: str = typer.Option(..., "--source", help="Source data (what the model was trained on)."),
          target: str = typer.Option(..., "--target", help="Target data to compare with it."),
          model: str = typer.Option(..., "--model", help="Checkpoint whose feature space is measured."),
          source_corruption: Optional[str] = typer.Option(None, "--source-corruption", help="NAME:SEVERITY."),
          target_corruption: Optional[str] = typer.Option(None, "--target-corruption", help="NAME:SEVERITY."),
          resize: bool = typer.Option(False, "--resize", help="Resize images to the model's input shape."),
          samples: int = typer.Option(1000, "--samples", help="At most this many test examples per side."),
          permutations: int = typer.Option(200, "--permutations", help="Permutations of the MMD test."),
          seed: int = SeedOpt, device: str = DeviceOpt,
          out: Optional[Path] = typer.Option(None, "--out", help="Folder for shift.json."),
          as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout.")):
    """Measure the shift from source to target in the model's feature space: MMD (permutation p-value), proxy
    A-distance and label shift, with a verdict."""
    result = api.shift(DataConfig(source, corruption=source_corruption, resize=resize),
                       DataConfig(target, corruption=target_corruption, resize=resize), model, out=out,
                       samples=samples, permutations=permutations, seed=seed, device=device)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    scores = result.scores
    print(f"source: {result.source} ({result.source_examples} test examples); target: {result.target} "
          f"({result.target_examples})")
    print(f"MMD²: {scores['mmd2']:.4g} (permutation p = {scores['mmd_p_value']:.3g}, {scores['mmd_permutations']} "
          f"permutations, bandwidth {scores['mmd_bandwidth']:.3g})")
    print(f"proxy A-distance: {scores['proxy_a_distance']:.3f} (domain classifier error "
          f"{scores['domain_classifier_error']:.3f})")
    print(f"label shift: total variation {scores['label_total_variation']:.3f}, Jensen-Shannon distance "
          f"{scores['label_js_distance']:.3f} ({scores['shared_classes']} shared classes)")
    print(f"verdict: {result.verdict}")
    if out is not None:
        print(f"written: {out / 'shift.json'}")


@app.command("list")
def list_(family: str = typer.Argument(..., help="models, strategies, datasets, augmentations, scores, "
                                                 "adaptations, corruptions or shift-measures")):
    """List the registered models, strategies, datasets, augmentations, transferability scores, adaptations,
    corruptions or shift measures."""
    for name, description in api.list_registered(family).items():
        print(f"{name:16s} {description}")


def _wide_console():
    """A console at least 120 columns wide, so that score tables stay readable when piped."""
    from rich.console import Console

    return Console(width=max(Console().width, 120))


def _print_ranking(result) -> None:
    from rich.table import Table

    from .selection.ranking import rank_table_rows

    table = Table(title=f"transferability on {result.data.source} ({result.train_examples} training examples, "
                        f"{result.num_classes} classes): best first by {result.rank_score}, higher is better")
    for column in ("#", "candidate", "arch", *result.score_names, "features s", "scores s"):
        table.add_column(column, justify="left" if column in ("candidate", "arch") else "right", overflow="fold")
    for row in rank_table_rows(result):
        table.add_row(*row)
    out = _wide_console()
    out.print(table)
    reasons = {reason for c in result.candidates for reason in c.not_applicable.values()}
    for reason in sorted(reasons):
        out.print(f"n/a: {reason}", highlight=False)
    if result.out is not None:
        out.print(f"written: {result.out / 'ranking.json'}")


@app.command()
def rank(data: str = DataOpt, classes: Optional[str] = ClassesOpt,
         candidates: List[str] = typer.Option(..., "--candidates",
                                              help="Models to rank: checkpoint folders, minilm, hf:FOLDER, "
                                                   "timm:NAME."),
         scores: Optional[List[str]] = typer.Option(None, "--scores",
                                                    help="Scores to compute (default: all; `warmstart list scores`)."),
         rank_score: str = typer.Option("logme", "--rank-score", help="The score that orders the table."),
         shots: Optional[int] = typer.Option(None, "--shots", help="K training examples per class."),
         val_fraction: float = typer.Option(0.0, "--val-fraction",
                                            help="Share of the training split left out of the ranking."),
         resize: bool = ResizeOpt, label_column: str = LabelOpt, text_column: Optional[str] = TextColumnOpt,
         max_length: int = MaxLengthOpt, image_size: Optional[List[int]] = ImageSizeOpt,
         seed: int = SeedOpt, device: str = DeviceOpt,
         out: Optional[Path] = typer.Option(None, "--out", help="Folder for ranking.json."),
         as_json: bool = typer.Option(False, "--json", help="Print the whole ranking as JSON on stdout.")):
    """Rank candidate pretrained models for a target with transferability scores (LogME, H-score, LEEP, NCE, k-NN),
    before fine-tuning any of them."""
    result = api.rank(
        _data(data, classes, text_column, max_length, shots=shots, val_fraction=val_fraction,
              label_column=label_column, image_size=_image_size(image_size), resize=resize),
        _listed("--candidates", candidates), scores=_listed("--scores", scores), rank_score=rank_score,
        train=TrainConfig(seed=seed, device=device, progress=False), out=out)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    _print_ranking(result)


@app.command()
def zoo(folders: Optional[List[Path]] = typer.Argument(None, help="Folders to search (default: runs/ and "
                                                                   "$WARMSTART_ZOO)."),
        as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON on stdout.")):
    """List the local pretrained checkpoints with their source data, classes, architecture, metrics and size, read
    from their safetensors headers."""
    listing = api.zoo(folders)
    if as_json:
        print(json.dumps(listing.to_dict()))
        return
    from rich.table import Table

    table = Table(title=f"{len(listing.entries)} checkpoint(s) in {', '.join(map(str, listing.folders))}")
    for column in ("checkpoint", "arch", "source data", "classes", "test acc", "params", "size", "created"):
        table.add_column(column, justify="right" if column in ("test acc", "params", "size") else "left",
                         overflow="fold")
    for e in listing.entries:
        spec = e.source_classes_spec
        source = (e.source or "?") + (f" [{spec}]" if spec else "") + (f", {e.shots}-shot" if e.shots else "")
        parent = e.parent or {}
        if parent.get("checkpoint") or parent.get("pretrained"):
            source += f" <- {parent.get('checkpoint') or parent.get('pretrained')}"
        names = ", ".join(e.class_names)
        table.add_row(str(e.path), e.arch, source,
                      f"{len(e.class_names)}: {names if len(names) <= 40 else names[:39] + '…'}",
                      "" if e.test_accuracy is None else f"{e.test_accuracy:.3f}", f"{e.parameters:,}",
                      f"{e.size_bytes / 1e6:.2f} MB", (e.created or "")[:16].replace("T", " "))
    out = _wide_console()
    out.print(table)
    for file, reason in listing.skipped:
        out.print(f"[yellow]skipped[/yellow] {file}: {reason}", highlight=False)


class _NotesToStderr(logging.Handler):
    """Prints log records as ``note:`` lines on whatever ``sys.stderr`` is when they are emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"note: {record.getMessage()}", file=sys.stderr)


# Options that take several values after one flag; click gives an option one value per flag.
MULTI_VALUE_OPTIONS = {"compare": ("--strategies", "--shots"), "rank": ("--candidates", "--scores"),
                       "finetune": ("--candidates",)}


def _spread_values(args: list[str]) -> list[str]:
    """``compare --shots 5 10 50`` becomes ``compare --shots 5 --shots 10 --shots 50``, which click parses."""
    command = next((a for a in args if not a.startswith("-")), None)
    options = MULTI_VALUE_OPTIONS.get(command or "", ())
    spread: list[str] = []
    current, values = None, 0
    for arg in args:
        if arg.startswith("-"):
            current, values = (arg, 0) if arg in options else (None, 0)
        elif current is not None:
            if values:
                spread.append(current)
            values += 1
        spread.append(arg)
    return spread


def main(argv: list[str] | None = None) -> None:
    # the API's notes (a new head, the epoch whose weights were kept, ...) reach the terminal as they happen
    logger = logging.getLogger("warmstart")
    if not any(isinstance(h, _NotesToStderr) for h in logger.handlers):
        logger.addHandler(_NotesToStderr())
    logger.setLevel(logging.INFO)
    args = _spread_values(sys.argv[1:] if argv is None else list(argv))
    _ARGV[:] = args
    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun worker other than rank 0: only rank 0 prints
        logger.setLevel(logging.WARNING)
        sys.stdout = open(os.devnull, "w")
    try:
        # standalone: usage errors print their message and exit with 2
        app(args=args)
    except WarmstartError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C: the training loop has said how to resume; no traceback
        print("interrupted", file=sys.stderr)
        sys.exit(130)
