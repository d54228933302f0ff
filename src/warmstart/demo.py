"""The main job: the three steps of transfer learning on real data, and an honest comparison with scratch.

Pretrain a small CNN on Fashion-MNIST classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat); fine-tune it on
classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) from only K labelled images per class; evaluate on all 5,000
test images of those classes; train the same architecture from scratch on the same K images with the same budget.
Each seed draws its own K images, and transfer and scratch see the same ones, so the gain is paired per seed.

Two budgets, two figures. Equal budget: every arm trains ``finetune_epochs`` epochs with the same optimizer, schedule
and batch size (the table). Each arm to its plateau: full fine-tuning and scratch train again until their training
loss stops improving (no validation split is held out from K images per class), capped at ``PLATEAU_EPOCHS_FACTOR``
x ``finetune_epochs`` to keep the demo affordable; the report gives the epochs and steps each took and the gain
there, since scratch often needs longer to learn what it can.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .api import RunResult, finetune, pretrain
from .compare import plateau_rule, plateau_settings
from .evaluation.stats import paired_gain, summarize
from .config import DataConfig, ModelConfig, TrainConfig
from .errors import WarmstartError
from .io import write_json, write_text
from .reporting import write_model_card


TRANSFER, SCRATCH = "transfer: full fine-tuning", "scratch (same budget)"
PLATEAU_EPOCHS_FACTOR = 2  # the demo's plateau runs stop at 2x the equal budget at most (compare's cap is 4x)


@dataclass(frozen=True)
class Arm:
    label: str
    folder: str
    start: Path | None  # the checkpoint to fine-tune, or None for scratch
    strategy: str


@dataclass(frozen=True)
class DemoRow:
    method: str
    accuracy_mean: float
    accuracy_std: float
    macro_f1_mean: float
    macro_f1_std: float
    train_time_s: float  # mean over seeds
    wall_time_s: float  # mean over seeds, data loading and evaluation included


@dataclass(frozen=True)
class PlateauRow:
    """An arm trained until its training loss plateaued, over the seeds."""

    method: str
    accuracy_mean: float
    accuracy_std: float
    epochs: tuple[int, ...]  # per seed: the epochs it trained before the plateau (or the cap)
    steps: tuple[int, ...]  # per seed: the batches it trained on
    train_time_s: float  # mean over seeds


@dataclass(frozen=True)
class DemoResult:
    data: str
    source_classes: str
    target_classes: str
    target_test_examples: int
    shots: int
    seeds: tuple[int, ...]
    source_accuracy: float
    pretrain_time_s: float
    rows: tuple[DemoRow, ...]
    gain_points_mean: float  # full fine-tuning minus scratch, accuracy points, paired by seed
    gain_points_std: float
    transfer_wins: int  # seeds on which full fine-tuning beat scratch
    run_dir: Path | None
    plateau: dict[str, Any] | None = None  # the rule each arm trained to its plateau by; None: not measured
    plateau_rows: tuple[PlateauRow, ...] = ()  # full fine-tuning and scratch, each to its plateau
    plateau_gain_points_mean: float | None = None
    plateau_gain_points_std: float | None = None
    plateau_transfer_wins: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        return d


def _row(method: str, runs: list[RunResult]) -> DemoRow:
    acc_mean, acc_std, _, _ = summarize([r.metrics.accuracy for r in runs])
    f1_mean, f1_std, _, _ = summarize([r.metrics.macro_f1 for r in runs])
    return DemoRow(method, acc_mean, acc_std, f1_mean, f1_std,
                   statistics.mean(r.train_time_s for r in runs), statistics.mean(r.wall_time_s for r in runs))


def demo(*, shots: int = 10, seeds: int = 3, pretrain_epochs: int = 6, finetune_epochs: int = 40,
         data: str = "fashion-mnist", source_classes: str = "0-4", target_classes: str = "5-9",
         model: ModelConfig | str = "cnn", out: str | Path | None = "runs/demo", progress: bool = True,
         plateau: bool = True) -> DemoResult:
    """Pretrain on the source classes, then :func:`compare_with_scratch` on the target classes (with ``plateau``,
    also each arm to its plateau)."""
    if seeds < 1:
        raise WarmstartError(f"parameter seeds: expected a positive integer, got {seeds}",
                             hint="set --seeds to 1 or more, e.g. --seeds 3")
    if out is None:
        with tempfile.TemporaryDirectory(prefix="warmstart-demo-") as tmp:
            return replace(demo(shots=shots, seeds=seeds, pretrain_epochs=pretrain_epochs,
                                finetune_epochs=finetune_epochs, data=data, source_classes=source_classes,
                                target_classes=target_classes, model=model, out=tmp, progress=progress,
                                plateau=plateau),
                           run_dir=None)
    run_dir = Path(out)
    # the demo owns its folder: running it again replaces its runs (overwrite)
    source = pretrain(DataConfig(data, classes=source_classes), model=model, out=run_dir / "pretrain",
                      train=TrainConfig(epochs=pretrain_epochs, batch_size=128, lr=2e-3, progress=progress),
                      overwrite=True)
    result = compare_with_scratch(source, data=data, target_classes=target_classes, shots=shots, seeds=seeds,
                                  finetune_epochs=finetune_epochs, model=model, out=run_dir, plateau=plateau)
    write_json(run_dir / "demo.json", result.to_dict())
    write_text(run_dir / "demo.md", to_markdown(result))
    for seed_dir in sorted((run_dir / "transfer-full").glob("seed*")):  # their cards can now state the gain
        write_model_card(seed_dir)
    return result


def compare_with_scratch(source: RunResult, *, data: str, target_classes: str, shots: int, seeds: int,
                         finetune_epochs: int, model: ModelConfig | str, out: Path, plateau: bool = True) -> DemoResult:
    """Fine-tune ``source`` (all layers, and frozen backbone) and train ``model`` from scratch on K images per class.

    Every arm gets the same optimizer, schedule and number of steps, so only the starting point differs (the
    ``freeze`` strategy trains its head at 10x the rate by its own default, as a linear probe needs). Seed s
    draws the same K images for every arm, so the gain is paired per seed. With ``plateau``, full fine-tuning and
    scratch then train again, each until its training loss plateaus (see the module's docstring), in
    ``out/plateau-full`` and ``out/plateau-scratch``; the equal-budget runs are unaffected.
    """
    if source.checkpoint is None:
        raise WarmstartError("compare_with_scratch needs a saved source checkpoint", hint="pretrain with out=...")
    arms = [Arm(TRANSFER, "transfer-full", source.checkpoint, "full"),
            Arm("transfer: frozen backbone", "transfer-freeze", source.checkpoint, "freeze"),
            Arm(SCRATCH, "scratch", None, "full")]
    runs: dict[str, list[RunResult]] = {arm.label: [] for arm in arms}
    target = DataConfig(data, classes=target_classes, shots=shots)
    for seed in range(seeds):
        for arm in arms:
            train = TrainConfig(epochs=finetune_epochs, batch_size=16, lr=1e-3, seed=seed,
                                progress=False)
            runs[arm.label].append(finetune(arm.start, target, strategy=arm.strategy, train=train,
                                            model=None if arm.start is not None else model,
                                            out=out / arm.folder / f"seed{seed}", overwrite=True))

    transfer, scratch = runs[TRANSFER], runs[SCRATCH]
    gains = [100 * (t.metrics.accuracy - s.metrics.accuracy) for t, s in zip(transfer, scratch)]
    gain_mean, gain_std, _ = paired_gain([100 * t.metrics.accuracy for t in transfer],
                                         [100 * s.metrics.accuracy for s in scratch])
    plateau_fields = _to_plateau(arms, target, seeds, finetune_epochs, model, out) if plateau else {}
    return DemoResult(data=data, source_classes=str(source.info.extra["data"]["classes"]),
                      target_classes=target_classes, target_test_examples=transfer[0].metrics.num_examples,
                      shots=shots, seeds=tuple(range(seeds)), source_accuracy=source.metrics.accuracy,
                      pretrain_time_s=source.train_time_s, rows=tuple(_row(n, r) for n, r in runs.items()),
                      gain_points_mean=gain_mean, gain_points_std=gain_std,
                      transfer_wins=sum(g > 0 for g in gains), run_dir=out, **plateau_fields)


def _to_plateau(arms: list[Arm], target: DataConfig, seeds: int, finetune_epochs: int, model: ModelConfig | str,
                out: Path) -> dict[str, Any]:
    """Full fine-tuning and scratch, each trained until its training loss plateaus, over the seeds: the
    :class:`DemoResult` fields of the second figure."""
    budget = TrainConfig(epochs=finetune_epochs, batch_size=16, lr=1e-3, progress=False)
    rule = plateau_rule(budget, validation=False, epochs_factor=PLATEAU_EPOCHS_FACTOR)
    chosen = [arm for arm in arms if arm.label in (TRANSFER, SCRATCH)]
    runs: dict[str, list[RunResult]] = {arm.label: [] for arm in chosen}
    for seed in range(seeds):
        for arm in chosen:
            train = replace(budget, epochs=rule["max_epochs"], seed=seed, **plateau_settings(rule))
            folder = "plateau-full" if arm.label == TRANSFER else "plateau-scratch"
            runs[arm.label].append(finetune(arm.start, target, strategy=arm.strategy, train=train,
                                            model=None if arm.start is not None else model,
                                            out=out / folder / f"seed{seed}", overwrite=True))
    rows = []
    for label, arm_runs in runs.items():
        mean, std, _, _ = summarize([r.metrics.accuracy for r in arm_runs])
        rows.append(PlateauRow(label.replace(" (same budget)", ""), mean, std,
                               tuple(len(r.history) for r in arm_runs),
                               tuple(sum(e.get("steps_per_epoch", 0) for e in r.history) for r in arm_runs),
                               statistics.mean(r.train_time_s for r in arm_runs)))
    transfer, scratch = runs[TRANSFER], runs[SCRATCH]
    gain_mean, gain_std, _ = paired_gain([100 * t.metrics.accuracy for t in transfer],
                                         [100 * s.metrics.accuracy for s in scratch])
    wins = sum(t.metrics.accuracy > s.metrics.accuracy for t, s in zip(transfer, scratch))
    return {"plateau": rule, "plateau_rows": tuple(rows), "plateau_gain_points_mean": gain_mean,
            "plateau_gain_points_std": gain_std, "plateau_transfer_wins": wins}


def to_markdown(result: DemoResult) -> str:
    lines = [f"# Transfer vs scratch: {result.data} {result.source_classes} -> {result.target_classes}, "
             f"{result.shots} images per class",
             "",
             f"Source model: test accuracy {result.source_accuracy:.4f} on classes {result.source_classes}, "
             f"pretrained in "
             f"{result.pretrain_time_s:.1f} s (once, shared by all seeds).",
             f"Target test set: all {result.target_test_examples} test images of classes {result.target_classes}; "
             f"mean ± std over {len(result.seeds)} seeds.",
             "",
             "| method | accuracy | macro-F1 | train time (s) | wall time (s) |",
             "|---|---|---|---|---|"]
    for r in result.rows:
        lines.append(f"| {r.method} | {r.accuracy_mean:.4f} ± {r.accuracy_std:.4f} | "
                     f"{r.macro_f1_mean:.4f} ± {r.macro_f1_std:.4f} | {r.train_time_s:.2f} | {r.wall_time_s:.2f} |")
    lines += ["", f"Transfer gain (full fine-tuning - scratch): {result.gain_points_mean:+.2f} ± "
                  f"{result.gain_points_std:.2f} accuracy points; transfer won on {result.transfer_wins} of "
                  f"{len(result.seeds)} seeds.", ""]
    if result.plateau is None:
        return "\n".join(lines)
    n = len(result.seeds)
    lines += ["## Each arm to its plateau", "",
              "The table above gives every arm the same budget, which answers \"which is better at equal compute?\". "
              "Scratch may need longer, so full fine-tuning and scratch also trained until their own loss "
              "plateaued. " + result.plateau["rule"], "",
              "| method | accuracy | epochs (per seed) | steps (per seed) | train time (s) |", "|---|---|---|---|---|"]
    for r in result.plateau_rows:
        lines.append(f"| {r.method} | {r.accuracy_mean:.4f} ± {r.accuracy_std:.4f} | "
                     f"{', '.join(map(str, r.epochs))} | {', '.join(map(str, r.steps))} | {r.train_time_s:.2f} |")
    capped = [r.method for r in result.plateau_rows if max(r.epochs) >= result.plateau["max_epochs"]]
    if capped:
        lines += ["", f"Reached the cap of {result.plateau['max_epochs']} epochs on some seed before a plateau: "
                      f"{', '.join(capped)}."]
    lines += ["", f"Transfer gain with each arm at its plateau: {result.plateau_gain_points_mean:+.2f} ± "
                  f"{result.plateau_gain_points_std:.2f} accuracy points; transfer won on "
                  f"{result.plateau_transfer_wins} of {n} seeds.", ""]
    return "\n".join(lines)
