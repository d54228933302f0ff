"""The command line's options, declared once and grouped as ``--help`` shows them (data, model, strategy, training,
precision and distributed, adaptation, tracking, output). A command takes whole groups, or a group's
:meth:`Group.pick` of them; its module then turns each group into its config object with one function
(:mod:`warmstart.cli.build`).

Every default that the API also has is read from there (:mod:`warmstart.cli.defaults`); only options that exist on
the command line alone (``--json``, ``--quiet``, ``--config``, ...) hold their own.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, replace
from typing import Any, List, Optional

from ..config import DataConfig, TrainConfig
from .defaults import Default, from_api, from_data, from_launch, from_train

REQUIRED = ...  # typer's marker of an option without a default

DATA, MODEL, STRATEGY, TRAINING, SCALING = "Data", "Model", "Strategy", "Training", "Precision and distributed"
ADAPTATION, TRACKING, OUTPUT, SELECTION = "Adaptation", "Tracking", "Output", "Automatic model selection"


@dataclass(frozen=True)
class Opt:
    """One option: the parameter name the command reads, its flags and type, and where its default comes from."""

    name: str
    flags: tuple[str, ...]
    type: Any
    help: str
    default: Any = None  # a value, REQUIRED, or a Default read for each command
    panel: str | None = None
    hidden: bool = False
    min: int | None = None
    spread: bool = False  # takes several values after one flag: --shots 5 10 50 (or 5,10,50)
    key_values: bool = False  # KEY=VALUE pairs, each value read as YAML
    when_set: bool = False  # passed to the API only when the user sets it (its parameter may be newer than ours)
    argument: bool = False  # positional (no flags)

    @property
    def takes_list(self) -> bool:
        """A repeatable option (``List[...]``, optional or not)."""
        types = typing.get_args(self.type) if typing.get_origin(self.type) is typing.Union else (self.type,)
        return any(typing.get_origin(t) is list for t in types)

    def default_for(self, command: str) -> Any:
        value = self.default.value(command) if isinstance(self.default, Default) else self.default
        return list(value) if isinstance(value, tuple) else value

    def typer_option(self, command: str):
        import typer

        if self.argument:
            return typer.Argument(self.default_for(command), help=self.help, show_default=False)
        return typer.Option(self.default_for(command), *self.flags, help=self.help, rich_help_panel=self.panel,
                            hidden=self.hidden, min=self.min, show_default=self.default is not REQUIRED)

    def with_(self, **changes: Any) -> "Opt":
        return replace(self, **changes)


class Group(tuple):
    """Options shown under one panel; ``pick`` and ``without`` choose the ones a command takes."""

    def __new__(cls, *options: Opt) -> "Group":
        return super().__new__(cls, options)

    def pick(self, *names: str) -> "Group":
        missing = set(names) - {o.name for o in self}
        if missing:
            raise KeyError(f"no option {', '.join(sorted(missing))} in this group")
        return Group(*(o for o in self if o.name in names))

    def without(self, *names: str) -> "Group":
        return Group(*(o for o in self if o.name not in names))

    def with_help(self, **helps: str) -> "Group":
        return Group(*(o.with_(help=helps[o.name]) if o.name in helps else o for o in self))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _data(field: str, help: str, **more: Any) -> Opt:
    return Opt(field, (_flag(field),), typing.get_type_hints(DataConfig)[field], help, from_data(field), DATA, **more)


_TRAIN_TYPES = typing.get_type_hints(TrainConfig)


def _train(field: str, help: str, panel: str = TRAINING, **more: Any) -> Opt:
    return Opt(field, (_flag(field),), _TRAIN_TYPES[field], help, from_train(field), panel, **more)


def _launch(name: str, type: Any, help: str) -> Opt:
    return Opt(name, (_flag(name),), type, help, from_launch(name), SCALING)


KEY_VALUE = Optional[List[str]]

DATA_OPTIONS = Group(
    Opt("data", ("--data",), str, "Built-in name (fashion-mnist, digits) or a path: .npz, .csv, image folder.",
        REQUIRED, DATA),
    _data("classes", "Class subset: 0-4, 5,6,9 or class names."),
    _data("shots", "K training examples per class."),
    _data("test_fraction", "For data without a test split: the share held out as one (fixed, seed 0)."),
    _data("val_fraction", "Share of the training split held out for validation (default 0.1, or 0 with --shots)."),
    _data("label_column", "Label column of a CSV, TSV or JSON-lines file."),
    _data("text_column", "Text column: reads the file as text classification."),
    _data("max_length", "Texts are cut to this many tokens."),
    Opt("image_size", ("--image-size",), Optional[List[int]], "Resize an image folder's images to H W, e.g. 64 64.",
        None, DATA, spread=True),
    _data("resize", "Resize images to the checkpoint's input shape."),
    _data("corruption", "Shift every image of --data: NAME:SEVERITY, e.g. rotate:3 (`warmstart list corruptions`)."),
    _data("class_name_examples", "Text: add N training examples per class written from its name (SetFit's templated "
          "examples; names of words, not numbers).", min=0),
    _data("class_name_template", "The sentence a class name is written into, at its {} (a literal brace is "
          "written twice, {{ or }}, as in Python's str.format)."),
)
# what only training reads: the examples written from the class names
TRAINING_DATA = ("class_name_examples", "class_name_template")

START = Opt("checkpoint", ("--from",), str, "Checkpoint (run folder), a pretrained model (timm:NAME, torchvision:NAME, "
            "hf:FOLDER, minilm), outside weights (keras:FILE.h5|.keras, torch:FILE.pt with --model), or `none` for "
            "scratch.", REQUIRED, MODEL)

MODEL_OPTIONS = Group(
    Opt("model", ("--model",), Optional[str], "Architecture, with --from none (default: cnn for images, mlp for "
        "vectors, hf for text; `warmstart list models`).", from_api("model"), MODEL),
    Opt("model_option", ("--model-option",), KEY_VALUE, "KEY=VALUE, repeatable: the architecture's options.",
        None, MODEL, key_values=True),
)

STRATEGY_OPTIONS = Group(
    Opt("strategy", ("--strategy",), str, "See `warmstart list strategies`.", from_api("strategy"), STRATEGY),
    Opt("strategy_option", ("--strategy-option",), KEY_VALUE,
        "KEY=VALUE, repeatable: e.g. layer_decay=0.7, boundaries=[3,6].", None, STRATEGY, key_values=True),
    _train("frozen_batchnorm", "BatchNorm in frozen layers: eval (keep statistics) or train.", STRATEGY),
)

TRAINING_OPTIONS = Group(
    _train("epochs", "Passes over the training split (default 10; --strategy auto scales it to the data).", min=1),
    _train("batch_size", "Examples per optimizer step (global under DDP)."),
    _train("optimizer", "sgd, adam or adamw."),
    _train("lr", "Base learning rate. Default: the strategy's for the model, 1e-3 (for a transformer encoder 5e-5; "
                 "lp-ft and setfit 2e-5, lora and bitfit 5e-4, freeze and linear-probe 1e-3)."),
    _train("weight_decay", "Decoupled weight decay (off for biases and norms)."),
    _train("momentum", "SGD momentum."),
    _train("nesterov", "Nesterov momentum (SGD)."),
    _train("schedule", "constant, step, exponential, cosine, linear or one-cycle."),
    _train("step_size", "Epochs between the step schedule's decays."),
    _train("gamma", "Decay factor of the step and exponential schedules."),
    _train("warmup_epochs", "Linear warm-up from lr/10 over these epochs."),
    _train("early_stopping", "Patience in epochs (needs a validation split unless --early-stopping-monitor is "
                             "train_loss)."),
    _train("early_stopping_monitor", "What early stopping watches: val_accuracy, val_loss or train_loss."),
    _train("early_stopping_min_delta", "The least change of the monitored value that counts as improving."),
    _train("grad_clip_norm", "Clip the gradients' global norm to this value."),
    _train("label_smoothing", "Label smoothing in [0, 1)."),
    _train("class_balance", "none, weights (loss) or sampler (balanced batches)."),
    _train("augment", "Augmentation preset for training images: see `warmstart list augmentations`."),
    _train("mix", "Batch mixing of training images: none, mixup or cutmix."),
    _train("mix_alpha", "Beta(alpha, alpha) mixing weights of --mix."),
    _train("seed", "Seeds the data split, the few-shot draw, initialisation and batch order."),
)

SCALING_OPTIONS = Group(
    _train("device", "auto, cpu, cuda or cuda:N.", SCALING),
    _train("precision", "fp32, bf16 (autocast, CPU or CUDA) or fp16 (CUDA only).", SCALING),
    _train("grad_accumulation", "Batches whose gradients add up to one step.", SCALING),
    _train("channels_last", "Channels-last memory format for CNNs.", SCALING),
    _train("compile", "torch.compile the model (slow first steps).", SCALING),
)

LAUNCH_OPTIONS = Group(
    _launch("nproc", int, "Data-parallel processes (per machine); starts torchrun."),
    _launch("launcher", str, "torchrun, spark (TorchDistributor on this machine) or spark-cluster (executors)."),
    _launch("nnodes", str, "Machines for torchrun (N or MIN:MAX); needs --rdzv-endpoint."),
    _launch("node_rank", Optional[int], "This machine's rank (torchrun static rendezvous)."),
    _launch("rdzv_endpoint", Optional[str], "HOST:PORT where the machines meet (torchrun)."),
    _launch("rdzv_id", Optional[str], "A run id shared by the machines of one run (torchrun)."),
    _launch("rdzv_backend", str, "torchrun rendezvous backend."),
)

ADAPTATION_OPTIONS = Group(
    Opt("target_unlabeled", ("--target-unlabeled",), Optional[str],
        "Unlabelled target data to adapt to (its train split's inputs; labels unused).", None, ADAPTATION),
    Opt("target_corruption", ("--target-corruption",), Optional[str],
        "Shift every image of --target-unlabeled: NAME:SEVERITY.", None, ADAPTATION),
    Opt("adaptation", ("--adaptation",), Optional[str], "dann, coral or adabn (needs --target-unlabeled).",
        from_api("adaptation"), ADAPTATION),
    Opt("adaptation_option", ("--adaptation-option",), KEY_VALUE, "KEY=VALUE, repeatable: e.g. weight=0.5.",
        None, ADAPTATION, key_values=True),
)

SELECTION_OPTIONS = Group(
    Opt("candidates", ("--candidates",), Optional[List[str]],
        "With --from auto: the models to rank (checkpoints, minilm, hf:, timm:).", None, SELECTION, spread=True),
    Opt("rank_score", ("--rank-score",), str, "The score that orders the candidates (`warmstart list scores`).",
        from_api("rank_score"), SELECTION),
)

TRACKING_OPTIONS = Group(
    Opt("tracker", ("--tracker",), Optional[List[str]], "Experiment trackers: tensorboard, mlflow, or none; "
        "repeatable or comma-separated.", from_train("trackers"), TRACKING),
)

OUTPUT_OPTIONS = Group(
    Opt("out", ("--out",), str, "Run folder to write.", REQUIRED, OUTPUT),
    Opt("resume", ("--resume",), bool, "Continue the interrupted run in --out (same settings).", from_api("resume"),
        OUTPUT),
    Opt("overwrite", ("--overwrite",), bool, "Replace a finished run in --out.", False, OUTPUT, when_set=True),
    Opt("as_json", ("--json",), bool, "Print the results as JSON on stdout.", False, OUTPUT),
    Opt("quiet", ("--quiet",), bool, "No progress bars.", False, OUTPUT),
)

# The commands that read a checkpoint name it with --checkpoint; --model meant that there once, and still works
# (hidden, with a note), so that old scripts keep running.
CHECKPOINT_OPTIONS = Group(
    Opt("checkpoint", ("--checkpoint", "-c"), Optional[str], "Checkpoint: run folder, model/ folder or file.", None,
        MODEL),
    Opt("model_alias", ("--model",), Optional[str], "Deprecated: use --checkpoint.", None, MODEL, hidden=True),
)

CONFIG = Opt("config", ("--config",), Optional[str], "A YAML or JSON file of option values (flags given here win), "
             "or a run folder's config.json to replay the run.", None, OUTPUT)
