"""``compare``: does transfer pay here? Scratch and each strategy, over seeds and shot counts, with honest statistics.

For every shot count K and seed s, every arm (training from scratch, and fine-tuning the checkpoint with each
strategy) trains on the same K examples per class, drawn with seed s, under the same :class:`TrainConfig` (the same
budget). Each cell (strategy x shots) then reports:

- accuracy mean ± sample std over the seeds, and a 95% confidence interval, Student t with n - 1 degrees of freedom:
  ``mean ± t_{0.975, n-1} · std / sqrt(n)``;
- the transfer gain over scratch in accuracy points, paired by seed (``d_s = 100 · (acc_strategy,s - acc_scratch,s)``),
  its mean ± std and the p-value of a paired t-test (Student, 1908; ``scipy.stats.ttest_rel``), significant when
  p < 0.05. With a single seed there is no p-value, and the report says so;
- negative transfer (Rosenstein et al., "To transfer or not to transfer", 2005) where the mean gain is below 0,
  called significant when p < 0.05;
- train and wall time, means over the seeds.

Task-adaptive pretraining (``adapt_on``, ``compare --adapt-on``): the self-supervised stage belongs to the transfer
recipe, so it runs before every transfer arm's supervised training (each run its own stage, on its own K-shot
training inputs with ``self``), and the equal budget is the supervised one: the transfer arms spend the stage's
steps on top, and the report says how many. Scratch trains without it unless ``adapt_scratch`` gives it the same
stage from its random initialisation (the gain then measures what the source adds beyond the stage).

Each arm to its plateau (``plateau=True``, the default): the equal-budget gain answers "which is better at the same
compute?", not "does transfer pay once each arm has learned what it can?" (scratch often needs longer). So every
arm also trains once more per seed until its own loss plateaus: validation loss when the cell holds a validation
split out, else training loss (few-shot cells hold none), stopping when it has not improved by ``PLATEAU_MIN_DELTA``
for ``PLATEAU_PATIENCE`` epochs, capped at ``PLATEAU_EPOCHS_FACTOR`` x the equal budget's epochs (the schedule
spans the cap). Those cells report the epochs and steps each arm took and the gain at the plateau.

The statistics are pure functions in :mod:`warmstart.evaluation.stats`; the report files are written by
:mod:`warmstart.reporting.compare_tables` and the plot by :mod:`warmstart.evaluation.plots`.
"""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .config import (DEFAULT_EPOCHS, AdaptConfig, DataConfig, ModelConfig, TrainConfig, adapt_config, is_int,
                     to_dict)
from .errors import WarmstartError
from .evaluation.stats import (ALPHA, CONFIDENCE, gain_flag, is_negative_transfer, is_significant, paired_gain,
                               summarize)

log = logging.getLogger("warmstart")

SCRATCH = "scratch"
# each arm to its plateau: the loss must improve by more than PLATEAU_MIN_DELTA within PLATEAU_PATIENCE epochs, and
# no arm trains longer than PLATEAU_EPOCHS_FACTOR times the equal budget (the cap keeps compare's cost bounded)
PLATEAU_PATIENCE = 5
PLATEAU_MIN_DELTA = 1e-3
PLATEAU_EPOCHS_FACTOR = 4


# ---------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class CompareRun:
    """One training run: an arm (``scratch`` or a strategy), a shot count and a seed."""

    strategy: str
    shots: int
    seed: int
    accuracy: float
    macro_f1: float
    train_time_s: float
    wall_time_s: float
    run_dir: str | None
    epochs: int = 0  # the epochs it trained (fewer than the budget when it stopped on a plateau)
    steps: int = 0  # the batches it trained on, over those epochs
    adapt_steps: int = 0  # the --adapt-on stage's optimizer steps before them (0: no stage)


@dataclass(frozen=True)
class CompareCell:
    """One arm at one shot count, over the seeds. Gain fields are in accuracy points and None for scratch."""

    strategy: str
    shots: int
    seeds: int
    accuracy_mean: float
    accuracy_std: float
    accuracy_ci_low: float | None  # 95% Student t interval of the mean; None with one seed
    accuracy_ci_high: float | None
    macro_f1_mean: float
    macro_f1_std: float
    gain_points_mean: float | None
    gain_points_std: float | None
    gain_points_ci_low: float | None
    gain_points_ci_high: float | None
    p_value: float | None  # paired t-test against scratch; None for scratch and with one seed
    significant: bool | None
    negative_transfer: bool
    flag: str
    epochs_mean: float  # epochs trained, mean over the seeds
    steps_mean: float  # batches trained on, mean over the seeds
    train_time_s: float  # mean over the seeds
    wall_time_s: float  # mean over the seeds: data loading, training and evaluation
    adapt_steps_mean: float = 0.0  # the --adapt-on stage's steps, mean over the seeds (0: no stage)


@dataclass(frozen=True)
class CompareResult:
    checkpoint: str
    data: Mapping[str, Any]  # the target DataConfig; its shots are set per cell
    strategies: tuple[str, ...]
    shots: tuple[int, ...]
    seeds: tuple[int, ...]
    train: Mapping[str, Any]  # the TrainConfig every arm used, seed aside
    scratch_model: Mapping[str, Any]
    cells: tuple[CompareCell, ...]  # equal budget
    runs: tuple[CompareRun, ...]
    warnings: tuple[str, ...]  # one per negative-transfer cell
    notes: tuple[str, ...]  # the fine-tuning runs' notes, each once
    wall_time_s: float
    out: Path | None
    input_shape: tuple[int, ...] = ()  # what every arm's model reads (the checkpoint's input)
    strategy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plateau: Mapping[str, Any] | None = None  # the rule each arm trained to its plateau by; None: not measured
    plateau_cells: tuple[CompareCell, ...] = ()
    plateau_runs: tuple[CompareRun, ...] = ()
    confidence: float = CONFIDENCE
    alpha: float = ALPHA
    # the --adapt-on stage's settings (AdaptConfig) and the objectives it ran (``auto``'s choice); None: no stage
    adapt_on: Mapping[str, Any] | None = None
    adapt_scratch: bool = False  # whether scratch ran the stage too

    @property
    def baseline(self) -> str:
        """The arm every strategy's gain is measured against."""
        return SCRATCH

    def cell(self, strategy: str, shots: int) -> CompareCell:
        for c in self.cells:
            if c.strategy == strategy and c.shots == shots:
                return c
        raise KeyError(f"no cell for strategy {strategy!r} at {shots} shots")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = None if self.out is None else str(self.out)
        return d


def summarize_cells(runs: Sequence[CompareRun], strategies: Sequence[str], shots: Sequence[int],
                    confidence: float = CONFIDENCE, alpha: float = ALPHA) -> tuple[CompareCell, ...]:
    """The cells, by shots then arm (scratch first), from the runs; gains are paired with scratch by seed."""
    cells = []
    for k in shots:
        scratch = {r.seed: r for r in runs if r.strategy == SCRATCH and r.shots == k}
        for name in (SCRATCH, *strategies):
            arm = sorted((r for r in runs if r.strategy == name and r.shots == k), key=lambda r: r.seed)
            acc_mean, acc_std, acc_low, acc_high = summarize([r.accuracy for r in arm], confidence)
            f1_mean, f1_std, _, _ = summarize([r.macro_f1 for r in arm], confidence)
            gain: dict[str, Any] = dict.fromkeys(("gain_points_mean", "gain_points_std", "gain_points_ci_low",
                                                  "gain_points_ci_high", "p_value", "significant"))
            negative, flag = False, "baseline"
            if name != SCRATCH:
                transfer = [100 * r.accuracy for r in arm]
                base = [100 * scratch[r.seed].accuracy for r in arm]
                mean, std, p = paired_gain(transfer, base)
                _, _, low, high = summarize([t - b for t, b in zip(transfer, base)], confidence)
                gain = {"gain_points_mean": mean, "gain_points_std": std, "gain_points_ci_low": low,
                        "gain_points_ci_high": high, "p_value": p, "significant": is_significant(p, alpha)}
                negative, flag = is_negative_transfer(mean), gain_flag(mean, p, alpha)
            cells.append(CompareCell(
                strategy=name, shots=k, seeds=len(arm), accuracy_mean=acc_mean, accuracy_std=acc_std,
                accuracy_ci_low=acc_low, accuracy_ci_high=acc_high, macro_f1_mean=f1_mean, macro_f1_std=f1_std,
                **gain, negative_transfer=negative, flag=flag,
                epochs_mean=float(np.mean([r.epochs for r in arm])), steps_mean=float(np.mean([r.steps for r in arm])),
                train_time_s=float(np.mean([r.train_time_s for r in arm])),
                wall_time_s=float(np.mean([r.wall_time_s for r in arm])),
                adapt_steps_mean=float(np.mean([r.adapt_steps for r in arm]))))
    return tuple(cells)


def negative_transfer_warning(cell: CompareCell) -> str | None:
    """A one-line warning for a cell where transfer does worse than scratch; None elsewhere."""
    if not cell.negative_transfer or cell.gain_points_mean is None:
        return None
    if cell.p_value is None:
        evidence = "one seed, so no p-value"
    else:
        evidence = f"p = {cell.p_value:.3g}, {'significant' if cell.significant else 'not significant'}"
    return (f"negative transfer: {cell.strategy} at {cell.shots} shots is {-cell.gain_points_mean:.2f} ± "
            f"{cell.gain_points_std:.2f} accuracy points below scratch ({evidence})")


# ---------------------------------------------------------------------------------------------------------------
# The experiment


def compare(checkpoint: str | Path, data: DataConfig | str, *, strategies: Sequence[str] = ("full",),
            shots: Sequence[int] = (5, 10), seeds: int = 3, train: TrainConfig | None = None,
            model: ModelConfig | str | None = None, out: str | Path | None = None,
            strategy_options: Mapping[str, Mapping[str, Any]] | None = None, plateau: bool = True,
            adapt_on: AdaptConfig | str | None = None, adapt_scratch: bool = False,
            overwrite: bool = False) -> CompareResult:
    """Fine-tune ``checkpoint`` with each strategy and train from scratch, for every shot count and seed.

    Only the starting point differs between the arms: each trains with every setting of ``train`` (budget,
    optimizer, augmentation, precision, ...), and scratch is ``model`` (by default the checkpoint's own architecture)
    with the checkpoint's input pipeline (its input size, channels and normalisation, so ``data.resize`` resizes
    the scratch arm's inputs as it does the checkpoint's). ``strategy_options`` maps a strategy name to its options
    (``{"full": {"head_lr_scale": 100}}``, as ``create_strategy(name, **options)``); scratch takes none.

    Seeds are 0..seeds-1; every arm of seed s trains on the same K examples per class. With ``plateau`` (the
    default), every arm also trains until its own loss plateaus (see the module's docstring): the result then holds
    both gains, at equal budget (``cells``) and each to its plateau (``plateau_cells``, with the epochs and steps
    each arm took). With ``out``, each run gets a folder ``out/runs/<arm>/shots<K>/seed<s>/`` (plateau runs under
    ``out/plateau-runs/``) and the report is written as ``compare.csv`` (one row per cell), ``compare.json``
    (everything, per-run results too), ``compare.md``, ``compare.png`` and ``report.html``.

    ``adapt_on`` (as ``finetune``'s): the task-adaptive stage before each transfer arm's run; scratch gets it only
    with ``adapt_scratch`` (see the module's docstring). The report states who ran it and its steps.

    An ``out`` that holds a comparison or a run is refused unless ``overwrite``, which replaces it once every check
    has passed, just before the first run trains.
    """
    from .data import load_splits
    from .models.imported import imported_weights
    from .strategies import create_strategy

    started = time.perf_counter()
    data = DataConfig(data) if isinstance(data, str) else data
    train = train or TrainConfig.for_command("compare")
    strategies, shots = _check_arguments(strategies, shots, seeds)
    adapt_on = adapt_config(adapt_on)
    if adapt_scratch and adapt_on is None:
        raise WarmstartError("parameter adapt_scratch: it gives scratch the --adapt-on stage, and there is none",
                             hint="add --adapt-on DATA (or --adapt-on self), or drop --adapt-scratch")
    options = _check_strategy_options(strategy_options, strategies)
    for name in strategies:  # a typo in a name or an option fails before any training
        create_strategy(name, **options[name])
    given_model = None if model is None else ModelConfig(model) if isinstance(model, str) else model
    scratch_model = _scratch_architecture(checkpoint) if given_model is None else given_model
    # keras:FILE and torch:FILE load into an architecture: --model's, or a full Keras model's own (None)
    source_model = given_model if imported_weights(checkpoint) is not None else None
    pipeline = _input_pipeline(checkpoint)
    load_splits(replace(data, shots=max(shots)), 0)  # the data exists and has enough examples for every cell
    if adapt_on is not None:  # the stage's objective, data and model, checked before the first arm trains
        _check_stage(adapt_on, replace(data, shots=max(shots)), train, checkpoint, source_model,
                     (scratch_model, pipeline) if adapt_scratch else None)
    if out is not None:
        _claim_folder(Path(out), overwrite, reads=(checkpoint, data, None if adapt_on is None else adapt_on.data))

    rule = _plateau_rule(data, shots, train) if plateau else None
    arms: list[tuple[str, str | Path | None]] = [(SCRATCH, None), *((name, checkpoint) for name in strategies)]
    budgets = [("runs", train, None), *((("plateau-runs", replace(train, epochs=rule["max_epochs"]), rule),)
                                       if rule is not None else ())]
    runs: dict[str, list[CompareRun]] = {folder: [] for folder, _, _ in budgets}
    notes: list[str] = []
    input_shapes: set[tuple[int, ...]] = set()
    stage_objectives: set[str] = set()
    total = len(shots) * seeds * len(arms) * len(budgets)
    first_round = len(arms) * len(budgets)  # one seed at the first shot count: what the estimate is timed on
    with _each_note_once(), _Progress(total, first_round, enabled=train.progress,
                                      growing=len(shots) > 1 and max(shots) > shots[0]) as progress, \
            _discarded_when_refused(out, [folder for folder, _, _ in budgets], runs["runs"], len(arms)):
        for k in shots:
            target = replace(data, shots=k)
            for seed in range(seeds):
                for folder, budget, stop in budgets:
                    run_train = replace(budget, seed=seed, progress=False, **plateau_settings(stop))
                    for name, start in arms:
                        progress.describe(f"{name}, {k} shots, seed {seed}" + (", to its plateau" if stop else ""))
                        run_dir = None if out is None else Path(out) / folder / name / f"shots{k}" / f"seed{seed}"
                        adapt = adapt_on if start is not None or adapt_scratch else None
                        result = _train_arm(name, start, target, run_train, scratch_model, pipeline, options,
                                            run_dir, source_model, adapt)
                        notes.extend(n for n in result.notes if n not in notes)
                        input_shapes.add(tuple(result.info.input_shape))
                        if "self_supervised" in result.info.extra:  # the objective auto chose, for the report
                            stage_objectives.add(result.info.extra["self_supervised"]["objective"]["name"])
                        runs[folder].append(_run(name, k, seed, result, run_dir))
                        progress.advance()
    if len(input_shapes) != 1:  # "only the starting point differs" would not hold: never report such a comparison
        raise RuntimeError(f"compare's arms read inputs of different shapes: {sorted(input_shapes)}")

    cells = summarize_cells(runs["runs"], strategies, shots)
    plateau_cells = () if rule is None else summarize_cells(runs["plateau-runs"], strategies, shots)
    warnings = tuple(w for w in map(negative_transfer_warning, cells) if w is not None)
    warnings += tuple(f"{w} (each arm to its plateau)" for w in map(negative_transfer_warning, plateau_cells)
                      if w is not None)
    result = CompareResult(
        checkpoint=str(checkpoint), data=to_dict(replace(data, shots=None)), strategies=strategies, shots=shots,
        seeds=tuple(range(seeds)), train={k: v for k, v in to_dict(train).items() if k not in ("seed", "progress")},
        scratch_model={"arch": scratch_model.name, "arch_args": dict(scratch_model.options)},
        cells=cells, runs=tuple(runs["runs"]), warnings=warnings, notes=tuple(notes),
        wall_time_s=time.perf_counter() - started, out=None if out is None else Path(out),
        input_shape=input_shapes.pop(), strategy_options={name: options[name] for name in strategies},
        plateau=rule, plateau_cells=plateau_cells, plateau_runs=tuple(runs.get("plateau-runs", ())),
        adapt_on=None if adapt_on is None else {**to_dict(adapt_on), "objectives_run": sorted(stage_objectives)},
        adapt_scratch=adapt_scratch)
    if out is not None:
        from .reporting.compare_tables import write_compare_report

        write_compare_report(result, Path(out))
    return result


@contextmanager
def _discarded_when_refused(out: str | Path | None, folders: list[str], done: list[CompareRun], arms: int):
    """A comparison refused by an arm's first run (LoRA on a CNN, ``--augment`` on text: checks the training makes
    itself) removes the run folders it made: what the arms before it trained means nothing without it, and they
    would block the corrected command ("already holds a comparison"). An interrupted one says how to start over."""
    try:
        yield
    except WarmstartError:
        if out is not None and len(done) < arms:
            for folder in folders:
                shutil.rmtree(Path(out) / folder, ignore_errors=True)
        raise
    except KeyboardInterrupt:  # Ctrl-C: a comparison cannot be resumed; say what is left and how to start again
        if out is not None:
            log.warning("compare: interrupted after %d finished run(s), kept in %s but not summarised (a "
                        "comparison is not resumed): run the command again with --overwrite to start over", len(done),
                        Path(out))
        raise


def _check_stage(adapt_on: AdaptConfig, data: DataConfig, train: TrainConfig, checkpoint: str | Path,
                 source_model: ModelConfig | None, scratch: tuple[ModelConfig, Any] | None) -> None:
    """The ``--adapt-on`` stage's checks (its objective for the model, its data) on the transfer arms' starting
    point, and on scratch's when it runs the stage too: refused here, not after the arms before it had trained."""
    from .run.self_supervised import stage_inputs
    from .run.starting_point import notes_unlogged, resolve_starting_point

    with notes_unlogged():
        stage_inputs(resolve_starting_point(checkpoint, data, source_model, train), adapt_on, data)
        if scratch is not None:
            model, pipeline = scratch
            stage_inputs(resolve_starting_point(None, data, model, train, input_pipeline=pipeline), adapt_on, data)


def _claim_folder(out: Path, overwrite: bool, reads: Sequence[Any] = ()) -> None:
    """``out`` for this comparison: refused when it holds a comparison or a run, unless ``overwrite`` (then
    emptied; never the working directory, a folder holding it, or one holding what the comparison ``reads``)."""
    from .run.folder import check_sources_kept, holds_run

    if out.exists() and not out.is_dir():
        raise WarmstartError(f"--out {str(out)!r}: a file is in the way; compare writes a folder",
                             hint="pass another --out")
    if not (holds_run(out) or any((out / name).exists() for name in ("compare.json", "runs", "plateau-runs"))):
        return
    if not overwrite:
        raise WarmstartError(f"--out {str(out)!r} already holds a comparison or a run",
                             hint="pass another --out, or --overwrite to replace it")
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise WarmstartError(f"--out {str(out)!r} is the working directory (or holds it), which --overwrite would "
                             "empty", hint="pass a folder of its own as --out")
    check_sources_kept(out, reads)
    shutil.rmtree(out)


def _train_arm(name: str, start: str | Path | None, target: DataConfig, train: TrainConfig, scratch_model: ModelConfig,
               pipeline: str | Path | None, options: Mapping[str, Mapping[str, Any]], run_dir: Path | None,
               source_model: ModelConfig | None = None, adapt_on: AdaptConfig | None = None):
    """One run: scratch (``start`` None) trains ``scratch_model`` with full fine-tuning's defaults and the
    checkpoint's input pipeline; a strategy fine-tunes ``start`` with its options; ``adapt_on``: the stage first.
    compare owns its run folders: a rerun replaces them (overwrite)."""
    from .api import finetune
    from .strategies import create_strategy

    if start is None:
        return finetune(None, target, strategy="full", model=scratch_model, train=train, out=run_dir,
                        input_pipeline=pipeline, overwrite=True, adapt_on=adapt_on)
    return finetune(start, target, strategy=create_strategy(name, **options[name]), model=source_model, train=train,
                    out=run_dir, overwrite=True, adapt_on=adapt_on)


def _run(name: str, shots: int, seed: int, result, run_dir: Path | None) -> CompareRun:
    return CompareRun(strategy=name, shots=shots, seed=seed, accuracy=result.metrics.accuracy,
                      macro_f1=result.metrics.macro_f1, train_time_s=result.train_time_s,
                      wall_time_s=result.wall_time_s, run_dir=None if run_dir is None else str(run_dir),
                      epochs=len(result.history), steps=sum(e.get("steps_per_epoch", 0) for e in result.history),
                      adapt_steps=(result.info.extra.get("self_supervised") or {}).get("steps") or 0)


def plateau_rule(train: TrainConfig, *, validation: bool, epochs_factor: int = PLATEAU_EPOCHS_FACTOR
                 ) -> dict[str, Any]:
    """How an arm trains to its plateau, given the equal budget ``train``: the monitored loss (validation loss when
    there is a validation split, else training loss), the patience, the minimum improvement and the epoch cap
    (``epochs_factor`` x the equal budget's epochs)."""
    monitor = "val_loss" if validation else "train_loss"
    cap = epochs_factor * (DEFAULT_EPOCHS if train.epochs is None else train.epochs)
    loss = "validation loss" if validation else "training loss (no validation split is held out)"
    text = (f"Every arm trains until its {loss} has not improved by more than "
            f"{PLATEAU_MIN_DELTA:g} for {PLATEAU_PATIENCE} epochs, at most {cap} epochs "
            f"({epochs_factor}x the equal budget, whose schedule then spans the cap); every other setting "
            "is the equal budget's.")
    return {"monitor": monitor, "patience": PLATEAU_PATIENCE, "min_delta": PLATEAU_MIN_DELTA, "max_epochs": cap,
            "rule": text}


def _plateau_rule(data: DataConfig, shots: Sequence[int], train: TrainConfig) -> dict[str, Any]:
    # one monitor for every cell, so that the plateau cells compare: validation loss only when every cell holds a
    # validation split out (few-shot cells hold none unless val_fraction is given)
    validation = all(replace(data, shots=k).resolved_val_fraction > 0 for k in shots)
    return plateau_rule(train, validation=validation)


def plateau_settings(rule: Mapping[str, Any] | None) -> dict[str, Any]:
    """The TrainConfig settings of a run to its plateau by ``rule`` (the cap aside); none for an equal-budget run."""
    if rule is None:
        return {}
    return {"early_stopping": rule["patience"], "early_stopping_monitor": rule["monitor"],
            "early_stopping_min_delta": rule["min_delta"]}


def _input_pipeline(checkpoint: str | Path) -> str | Path | None:
    """The checkpoint whose input pipeline scratch takes: a warmstart checkpoint. A pretrained model's name
    (``minilm``, ``timm:...``) needs none: scratch builds the same model, whose factory fixes its inputs."""
    from .models.imported import imported_weights
    from .models.sources import pretrained_spec

    outside = imported_weights(checkpoint) is not None  # keras:, torch:: the architecture fixes the input shape
    return None if outside or pretrained_spec(checkpoint) is not None else checkpoint


def _check_strategy_options(strategy_options: Mapping[str, Mapping[str, Any]] | None,
                            strategies: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Every compared strategy's options (none by default); options for a strategy not compared are an error."""
    given = dict(strategy_options or {})
    stray = [name for name in given if name not in strategies]
    if stray:
        raise WarmstartError(f"parameter strategy_options: options for {', '.join(map(repr, stray))}, which "
                             f"{'is' if len(stray) == 1 else 'are'} not among the strategies compared "
                             f"({', '.join(strategies)})",
                             hint="add the strategy to --strategies, or drop its --strategy-option (scratch takes "
                                  "no options)")
    bad = [name for name, options in given.items() if not isinstance(options, Mapping)]
    if bad:
        raise WarmstartError(f"parameter strategy_options: the options of {', '.join(bad)} are not a mapping of "
                             "option names to values", hint='e.g. {"full": {"head_lr_scale": 100}}')
    return {name: dict(given.get(name, {})) for name in strategies}


def _scratch_architecture(checkpoint: str | Path) -> ModelConfig:
    """The starting point's own architecture, randomly initialised: ``pretrained=False`` for pretrained models
    (``minilm``, ``hf:...``, ``timm:...``, ``torchvision:...`` or a checkpoint of one), whose factory would
    otherwise load the pretrained weights."""
    from .models import read_info
    from .models.imported import imported_architecture, imported_weights
    from .models.sources import pretrained_spec

    imported = imported_weights(checkpoint)
    if imported is not None:  # keras:FILE (a full model: its own architecture); torch:FILE needs --model
        return imported_architecture(imported, None)
    spec = pretrained_spec(checkpoint)
    if spec is not None:  # minilm, hf:, timm:, torchvision:
        return ModelConfig(spec.name, {**spec.options, "pretrained": False})
    _, info = read_info(checkpoint)
    options = dict(info.arch_args)
    if "pretrained" in options:
        options["pretrained"] = False
    return ModelConfig(info.arch, options)


def _check_arguments(strategies: Sequence[str] | str, shots: Sequence[int] | int,
                     seeds: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if isinstance(strategies, str):
        strategies = (strategies,)
    if isinstance(shots, int):
        shots = (shots,)
    strategies = tuple(dict.fromkeys(strategies))  # duplicates run once, in the order first given
    if not strategies:
        raise WarmstartError("parameter strategies: expected at least one strategy, got none",
                             hint="e.g. --strategies full freeze (see `warmstart list strategies`)")
    if SCRATCH in strategies:
        raise WarmstartError("parameter strategies: scratch is always run as the baseline; it is not a strategy",
                             hint="drop scratch from --strategies")
    if not shots:
        raise WarmstartError("parameter shots: expected at least one shot count, got none", hint="e.g. --shots 5 10")
    bad = [k for k in shots if not (is_int(k) and k >= 1)]
    if bad:
        raise WarmstartError(f"parameter shots: expected positive integers (examples per class), got {bad}",
                             hint="give --shots whole numbers of 1 or more, e.g. --shots 5 10")
    if not (is_int(seeds) and seeds >= 1):
        raise WarmstartError(f"parameter seeds: expected a positive integer (the number of seeds), got {seeds!r}",
                             hint="set --seeds to 1 or more, e.g. --seeds 3")
    return strategies, tuple(sorted(set(shots)))


@contextmanager
def _each_note_once() -> Iterator[None]:
    """Repeated runs repeat their notes (a new head, every run): let each distinct one through once."""
    seen: set[str] = set()

    def first_time(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in seen:
            return False
        seen.add(message)
        return True

    log.addFilter(first_time)
    try:
        yield
    finally:
        log.removeFilter(first_time)


class _Progress:
    """One progress bar over all the runs on stderr (each run's own bar would be one bar per run), and once the
    first ``first_round`` runs are done (every arm of one seed), the time the rest should take when it is long (each
    run announces only its own, so ``--seeds 1000`` of short runs started with no word of the hours ahead).
    ``growing``: later shot counts train on more examples, so the estimate is a lower bound."""

    def __init__(self, total: int, first_round: int, *, enabled: bool, growing: bool = False):
        self.total, self.first_round, self.enabled, self.growing, self.bar = total, first_round, enabled, growing, None
        self.done, self.started = 0, time.perf_counter()

    def __enter__(self) -> "_Progress":
        if self.enabled:
            import sys

            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.description}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                console=Console(file=sys.stderr))
            self.bar.start()
            self.task = self.bar.add_task("", total=self.total)
        return self

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=text)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)
        self.done += 1
        if self.done == self.first_round < self.total:
            message = remaining_time_note(time.perf_counter() - self.started, self.done, self.total, self.growing)
            if message is not None:
                log.warning(message)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def remaining_time_note(elapsed: float, done: int, total: int, growing: bool) -> str | None:
    """``compare``'s estimate of the runs left, at the pace of the ``done`` first ones; None when short."""
    from .strategies.auto import LONG_RUN_SECONDS

    seconds = elapsed / done * (total - done)
    if seconds <= LONG_RUN_SECONDS:
        return None
    shown = (f"{seconds / 86400:.1f} days" if seconds >= 2 * 86400 else f"{seconds / 3600:.1f} hours"
             if seconds >= 5400 else f"{seconds / 60:.0f} minutes")
    bound, why = ("at least ", " (the larger shot counts train longer)") if growing else ("", "")
    took = f"{elapsed:.1f}" if elapsed < 10 else f"{elapsed:.0f}"  # "took 1 s" for 0.5 s read as wrong arithmetic
    return (f"compare: {total} runs in all; the first {done} took {took} s, so the other {total - done} should "
            f"take {bound}about {shown}{why}; fewer --seeds or --shots train for less")
