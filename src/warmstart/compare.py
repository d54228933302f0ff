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

The statistics are small pure functions (:func:`summarize`, :func:`paired_gain`, :func:`gain_flag`); the report
writers (:func:`to_csv`, :func:`to_markdown`, :func:`plot_compare`) only read a :class:`CompareResult`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .config import DataConfig, ModelConfig, TrainConfig, is_int, to_dict
from .errors import WarmstartError
from .io import atomic_write, write_json, write_text
from .reporting import write_model_card, write_report as write_html_report

log = logging.getLogger("warmstart")

SCRATCH = "scratch"
CONFIDENCE = 0.95
ALPHA = 0.05


# ---------------------------------------------------------------------------------------------------------------
# Pure statistics


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float | None,
                                                                                   float | None]:
    """``(mean, std, ci_low, ci_high)`` of a sample: sample std (ddof=1, 0 for one value) and the Student t
    confidence interval of the mean. One value has no interval: its bounds are None."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("summarize needs at least one value")
    mean = float(x.mean())
    if x.size < 2:
        return mean, 0.0, None, None
    std = float(x.std(ddof=1))
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1)) * std / math.sqrt(x.size)
    return mean, std, mean - half, mean + half


def paired_gain(transfer: Sequence[float], scratch: Sequence[float]) -> tuple[float, float, float | None]:
    """``(mean, std, p_value)`` of the per-seed differences ``transfer - scratch`` (in the units given).

    p is the two-sided paired t-test (``scipy.stats.ttest_rel``); None with fewer than 2 pairs. Differences that are
    all equal have no spread: p is 1 when they are all 0 (no evidence of a difference), else 0, as scipy's t = ±inf.
    """
    t, s = np.asarray(transfer, dtype=np.float64), np.asarray(scratch, dtype=np.float64)
    if t.shape != s.shape or t.ndim != 1 or t.size == 0:
        raise ValueError(f"paired_gain needs two equally long, non-empty sequences; got {t.shape} and {s.shape}")
    d = t - s
    mean, std = float(d.mean()), float(d.std(ddof=1)) if d.size > 1 else 0.0
    if d.size < 2:
        return mean, std, None
    if np.allclose(d, d[0], rtol=0.0, atol=1e-12):
        return mean, 0.0, 1.0 if abs(mean) <= 1e-12 else 0.0
    from scipy import stats

    return mean, std, float(stats.ttest_rel(t, s).pvalue)


def is_significant(p_value: float | None, alpha: float = ALPHA) -> bool | None:
    """True when p < alpha; None when there is no p-value (fewer than 2 seeds)."""
    return None if p_value is None else p_value < alpha


def is_negative_transfer(gain_mean: float) -> bool:
    """Transfer hurts when it does worse than scratch on average."""
    return gain_mean < 0


def gain_flag(gain_mean: float, p_value: float | None, alpha: float = ALPHA) -> str:
    """A short verdict on a gain over scratch: its sign, and whether a paired t-test finds it significant."""
    if p_value is None:
        verdict = "no p-value: needs 2+ seeds"
        return f"negative transfer ({verdict})" if is_negative_transfer(gain_mean) else verdict
    significance = "significant" if p_value < alpha else "not significant"
    if is_negative_transfer(gain_mean):
        return f"negative transfer ({significance})"
    if gain_mean > 0:
        return f"gain ({significance})"
    return "no difference"


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
    train_time_s: float  # mean over the seeds
    wall_time_s: float  # mean over the seeds: data loading, training and evaluation


@dataclass(frozen=True)
class CompareResult:
    checkpoint: str
    data: Mapping[str, Any]  # the target DataConfig; its shots are set per cell
    strategies: tuple[str, ...]
    shots: tuple[int, ...]
    seeds: tuple[int, ...]
    train: Mapping[str, Any]  # the TrainConfig every arm used, seed aside
    scratch_model: Mapping[str, Any]
    cells: tuple[CompareCell, ...]
    runs: tuple[CompareRun, ...]
    warnings: tuple[str, ...]  # one per negative-transfer cell
    notes: tuple[str, ...]  # the fine-tuning runs' notes, each once
    wall_time_s: float
    out: Path | None
    confidence: float = CONFIDENCE
    alpha: float = ALPHA

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
                train_time_s=float(np.mean([r.train_time_s for r in arm])),
                wall_time_s=float(np.mean([r.wall_time_s for r in arm]))))
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
            strategy_options: Mapping[str, Mapping[str, Any]] | None = None) -> CompareResult:
    """Fine-tune ``checkpoint`` with each strategy and train from scratch, for every shot count and seed.

    ``model`` is the scratch architecture; by default the checkpoint's own (its arch and arch_args), so that only
    the starting point differs. Seeds are 0..seeds-1; every arm of seed s trains on the same K examples per class.
    With ``out``, each run gets a folder ``out/runs/<arm>/shots<K>/seed<s>/`` and the report is written as
    ``compare.csv`` (one row per cell), ``compare.json`` (everything, per-run results too), ``compare.md`` and
    ``compare.png``.
    """
    from .api import finetune
    from .data import load_splits
    from .strategies import STRATEGIES, create_strategy

    started = time.perf_counter()
    data = DataConfig(data) if isinstance(data, str) else data
    train = train or TrainConfig.for_command("compare")
    strategies, shots = _check_arguments(strategies, shots, seeds)
    for name in strategies:  # a typo fails before any training
        STRATEGIES.get(name, parameter="strategies")
    scratch_model = (_scratch_architecture(checkpoint) if model is None
                     else ModelConfig(model) if isinstance(model, str) else model)
    load_splits(replace(data, shots=max(shots)), 0)  # the data exists and has enough examples for every cell

    run_root = None if out is None else Path(out) / "runs"
    arms: list[tuple[str, str | Path | None]] = [(SCRATCH, None), *((name, checkpoint) for name in strategies)]
    runs: list[CompareRun] = []
    notes: list[str] = []
    total = len(shots) * seeds * len(arms)
    with _each_note_once(), _Progress(total, enabled=train.progress) as progress:
        for k in shots:
            target = replace(data, shots=k)
            for seed in range(seeds):
                run_train = replace(train, seed=seed, progress=False)
                for name, start in arms:
                    progress.describe(f"{name}, {k} shots, seed {seed}")
                    run_dir = None if run_root is None else run_root / name / f"shots{k}" / f"seed{seed}"
                    strategy = ("full" if start is None  # scratch takes no strategy options
                                else create_strategy(name, **(strategy_options or {}).get(name, {})))
                    result = finetune(start, target, strategy=strategy,
                                      model=scratch_model if start is None else None, train=run_train,
                                      out=run_dir, overwrite=True)  # compare owns out/runs: a rerun replaces them
                    notes.extend(n for n in result.notes if n not in notes)
                    runs.append(CompareRun(strategy=name, shots=k, seed=seed, accuracy=result.metrics.accuracy,
                                           macro_f1=result.metrics.macro_f1, train_time_s=result.train_time_s,
                                           wall_time_s=result.wall_time_s,
                                           run_dir=None if run_dir is None else str(run_dir)))
                    progress.advance()

    cells = summarize_cells(runs, strategies, shots)
    warnings = tuple(w for w in map(negative_transfer_warning, cells) if w is not None)
    result = CompareResult(
        checkpoint=str(checkpoint), data=to_dict(replace(data, shots=None)), strategies=strategies, shots=shots,
        seeds=tuple(range(seeds)), train={k: v for k, v in to_dict(train).items() if k not in ("seed", "progress")},
        scratch_model={"arch": scratch_model.name, "arch_args": dict(scratch_model.options)},
        cells=cells, runs=tuple(runs), warnings=warnings, notes=tuple(notes),
        wall_time_s=time.perf_counter() - started, out=None if out is None else Path(out))
    if out is not None:
        write_report(result, Path(out))
    return result


def _scratch_architecture(checkpoint: str | Path) -> ModelConfig:
    """The starting point's own architecture, randomly initialised: ``pretrained=False`` for pretrained models
    (``minilm``, ``hf:...``, ``timm:...``, ``torchvision:...`` or a checkpoint of one), whose factory would
    otherwise load the pretrained weights."""
    from .models import read_info
    from .models.sources import pretrained_spec

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
        raise WarmstartError(f"parameter shots: expected positive integers (examples per class), got {bad}")
    if not (is_int(seeds) and seeds >= 1):
        raise WarmstartError(f"parameter seeds: expected a positive integer (the number of seeds), got {seeds!r}")
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
    """One progress bar over all the runs on stderr (each run's own bar would be one bar per run)."""

    def __init__(self, total: int, *, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            import sys

            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.description}"), TimeElapsedColumn(),
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

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


# ---------------------------------------------------------------------------------------------------------------
# Reports: CSV, Markdown, plot


CSV_COLUMNS = tuple(f.name for f in fields(CompareCell))


def to_csv(result: CompareResult) -> str:
    """One row per cell; empty fields where a value does not exist (scratch's gain, p with one seed)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for cell in result.cells:
        writer.writerow({k: "" if v is None else v for k, v in asdict(cell).items()})
    return buffer.getvalue()


def _interval(low: float | None, high: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "n/a" if low is None or high is None else f"[{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def _arch_args(args: Mapping[str, Any]) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in args.items())})" if args else ""


def _lr_text(lr: float | None) -> str:
    return "each strategy's default lr for the model" if lr is None else f"lr {lr:g}"


def to_markdown(result: CompareResult) -> str:
    n = len(result.seeds)
    data = result.data
    classes = f" classes {data['classes']}" if data.get("classes") else ""
    lines = [f"# Transfer vs scratch: {result.checkpoint} -> {data['source']}{classes}", "",
             f"Strategies: {', '.join(result.strategies)}. Scratch: the {result.scratch_model['arch']} "
             f"architecture{_arch_args(result.scratch_model['arch_args'])} from random initialisation.",
             f"Every arm trains with the same budget ({result.train['epochs']} epochs, batch size "
             f"{result.train['batch_size']}, {result.train['optimizer']} {_lr_text(result.train['lr'])}, "
             f"{result.train['schedule']} schedule); seed s draws the same K examples per class for every arm.",
             f"Accuracy on the test split: mean ± std over {n} seed{'s' if n != 1 else ''}, with a "
             f"{100 * result.confidence:.0f}% Student t interval. Gain: strategy - scratch in accuracy points, "
             f"paired by seed; p: paired t-test, significant below {result.alpha:g}.", ""]
    if n < 2:
        lines += ["With one seed there is no spread, no interval and no p-value: run --seeds 2 or more.", ""]
    lines += ["| strategy | shots | accuracy | 95% CI | gain (points) | p | flag | train time (s) | wall time (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for c in result.cells:
        gain = "—" if c.gain_points_mean is None else f"{c.gain_points_mean:+.2f} ± {c.gain_points_std:.2f}"
        p = "—" if c.p_value is None else f"{c.p_value:.3g}"
        lines.append(f"| {c.strategy} | {c.shots} | {c.accuracy_mean:.4f} ± {c.accuracy_std:.4f} | "
                     f"{_interval(c.accuracy_ci_low, c.accuracy_ci_high)} | {gain} | {p} | {c.flag} | "
                     f"{c.train_time_s:.2f} | {c.wall_time_s:.2f} |")
    if result.warnings:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in result.warnings)]
    lines += ["", f"{len(result.runs)} runs in {result.wall_time_s:.1f} s.", ""]
    return "\n".join(lines)


def plot_compare(result: CompareResult, path: str | Path) -> Path:
    """Accuracy against shots, one line per arm (scratch dashed), with the confidence bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name in (SCRATCH, *result.strategies):
        cells = sorted((c for c in result.cells if c.strategy == name), key=lambda c: c.shots)
        x = [c.shots for c in cells]
        y = [c.accuracy_mean for c in cells]
        style = {"color": "black", "linestyle": "--"} if name == SCRATCH else {}
        line, = ax.plot(x, y, marker="o", label="scratch (same budget)" if name == SCRATCH else name, **style)
        if all(c.accuracy_ci_low is not None for c in cells):
            ax.fill_between(x, [c.accuracy_ci_low for c in cells], [c.accuracy_ci_high for c in cells],
                            color=line.get_color(), alpha=0.15, linewidth=0)
    if max(result.shots) >= 10 * min(result.shots):
        ax.set_xscale("log")
    ax.set_xticks(list(result.shots))
    ax.set_xticklabels([str(k) for k in result.shots])
    ax.minorticks_off()
    ax.set_xlabel("labelled examples per class (shots)")
    ax.set_ylabel("test accuracy")
    n = len(result.seeds)
    bands = f", {100 * result.confidence:.0f}% CI bands" if n > 1 else ""
    ax.set_title(f"{Path(str(result.data['source'])).name}: mean over {n} seed{'s' if n != 1 else ''}{bands}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)


def write_report(result: CompareResult, out: Path) -> dict[str, Path]:
    """``compare.csv``, ``compare.md``, ``compare.png``, ``compare.json`` and ``report.html`` in ``out``, each written
    atomically; then each fine-tuned run's model card again, now that its cell's transfer gain is known."""
    files = {"csv": write_text(out / "compare.csv", to_csv(result)),
             "markdown": write_text(out / "compare.md", to_markdown(result)),
             "plot": plot_compare(result, out / "compare.png")}
    files["json"] = write_json(out / "compare.json", result.to_dict())
    files["html"] = write_html_report(out)  # report.html: accuracy against shots and the transfer-gain table
    for run in result.runs:  # the fine-tuned models' cards can now state the gain their cell measured
        if run.strategy != SCRATCH and run.run_dir is not None and (Path(run.run_dir) / "model").is_dir():
            write_model_card(run.run_dir)
    return files
