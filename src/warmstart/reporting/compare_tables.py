"""``compare``'s report files: the cells as CSV and Markdown, the plot, the JSON, the HTML page, and the model
cards of its fine-tuned runs. The writers only read a :class:`~warmstart.compare.CompareResult`."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..io import write_json, write_text
from .html import write_report as write_html_report
from .model_card import write_model_card

if TYPE_CHECKING:  # the result type only: compare imports this module to write its report
    from ..compare import CompareCell, CompareResult


def to_csv(result: CompareResult) -> str:
    """One row per cell: ``budget`` (``equal``, or ``plateau`` when measured), then the cell's fields; empty fields
    where a value does not exist (scratch's gain, p with one seed)."""
    buffer = io.StringIO()
    columns = ("budget", *(f.name for f in fields(result.cells[0])))  # a result has a cell for every arm
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for budget, cells in (("equal", result.cells), ("plateau", result.plateau_cells)):
        for cell in cells:
            writer.writerow({"budget": budget, **{k: "" if v is None else v for k, v in asdict(cell).items()}})
    return buffer.getvalue()


def _interval(low: float | None, high: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "n/a" if low is None or high is None else f"[{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def _arch_args(args: Mapping[str, Any]) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in args.items())})" if args else ""


def _epochs_text(epochs: int | None) -> str:
    return ("epochs set by the training set's size, the same for every arm at a given K (the table gives them)"
            if epochs is None else f"{epochs} epochs")


def _lr_text(lr: float | None) -> str:
    return "each strategy's default lr for the model" if lr is None else f"lr {lr:g}"


def _options_text(result: CompareResult) -> str:
    given = [f"{name}: {', '.join(f'{k}={v}' for k, v in options.items())}"
             for name, options in result.strategy_options.items() if options]
    return f" Strategy options: {'; '.join(given)}." if given else ""


def _table(cells: tuple[CompareCell, ...], *, steps: bool) -> list[str]:
    head = "| strategy | shots | accuracy | 95% CI | gain (points) | p | flag |"
    rule = "|---|---|---|---|---|---|---|"
    if steps:
        head, rule = head + " epochs | steps |", rule + "---|---|"
    lines = [head + " train time (s) | wall time (s) |", rule + "---|---|"]
    for c in cells:
        gain = "—" if c.gain_points_mean is None else f"{c.gain_points_mean:+.2f} ± {c.gain_points_std:.2f}"
        p = "—" if c.p_value is None else f"{c.p_value:.3g}"
        budget = f" {c.epochs_mean:.1f} | {c.steps_mean:.0f} |" if steps else ""
        lines.append(f"| {c.strategy} | {c.shots} | {c.accuracy_mean:.4f} ± {c.accuracy_std:.4f} | "
                     f"{_interval(c.accuracy_ci_low, c.accuracy_ci_high)} | {gain} | {p} | {c.flag} |{budget} "
                     f"{c.train_time_s:.2f} | {c.wall_time_s:.2f} |")
    return lines


def adapt_statement(result: CompareResult) -> str | None:
    """The ``--adapt-on`` stage: who ran it, and the steps it cost each arm on top of the equal budget (None: no
    stage)."""
    if result.adapt_on is None:
        return None
    a = result.adapt_on
    data = "each run's own training inputs (its K examples per class, labels ignored)" if a["data"] == "self" \
        else f"the unlabelled inputs of {a['data']}"
    who = ("every arm, scratch included (--adapt-scratch: from its random initialisation, so the gain measures "
           "what the source adds beyond the stage)" if result.adapt_scratch else
           "the transfer arms only: the stage is part of the transfer recipe compared here, and scratch trains "
           "without it (--adapt-scratch gives scratch the same stage)")
    steps = "; ".join(f"{c.strategy} at {c.shots} shots {c.adapt_steps_mean:.0f}" for c in result.cells)
    objective = ", ".join(a.get("objectives_run") or [a["objective"]])
    return (f"Before its supervised training, a self-supervised stage ({objective} objective, {a['epochs']} "
            f"epoch(s) at batch size {a['batch_size']}) on {data} ran for {who}. The equal budget is the supervised "
            f"stage's: the stage's optimizer steps come on top of it, per run (mean over the seeds): {steps}.")


def to_markdown(result: CompareResult) -> str:
    n = len(result.seeds)
    data = result.data
    train = result.train
    classes = f" classes {data['classes']}" if data.get("classes") else ""
    size = "x".join(map(str, result.input_shape))
    lines = [f"# Transfer vs scratch: {result.checkpoint} -> {data['source']}{classes}", "",
             f"Strategies: {', '.join(result.strategies)}.{_options_text(result)} Scratch: the "
             f"{result.scratch_model['arch']} architecture{_arch_args(result.scratch_model['arch_args'])} from "
             f"random initialisation, with the checkpoint's input pipeline. Every arm sees inputs of shape {size}.",
             f"Equal budget: every arm trains with the same settings ({_epochs_text(train['epochs'])}, batch size "
             f"{train['batch_size']}, {train['optimizer']} {_lr_text(train['lr'])}, {train['schedule']} schedule, "
             f"augment {train['augment']}, precision {train['precision']}); seed s draws the same K examples per class "
             "for every arm.",
             f"Accuracy on the test split: mean ± std over {n} seed{'s' if n != 1 else ''}, with a "
             f"{100 * result.confidence:.0f}% Student t interval. Gain: strategy - scratch in accuracy points, "
             f"paired by seed; p: paired t-test, significant below {result.alpha:g}.", ""]
    if n < 2:
        lines += ["With one seed there is no spread, no interval and no p-value: run --seeds 2 or more.", ""]
    statement = adapt_statement(result)
    if statement is not None:
        lines += ["## Task-adaptive pretraining (--adapt-on)", "", statement, ""]
    # without --epochs each run's budget follows its training-set size: the table gives what each cell trained
    lines += ["## Equal budget", "", *_table(result.cells, steps=train["epochs"] is None)]
    if result.plateau is not None:
        lines += ["", "## Each arm to its plateau", "", result.plateau["rule"], "", *_table(result.plateau_cells,
                                                                                           steps=True)]
    if result.warnings:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in result.warnings)]
    runs = len(result.runs) + len(result.plateau_runs)
    lines += ["", f"{runs} runs in {result.wall_time_s:.1f} s.", ""]
    return "\n".join(lines)


def write_compare_report(result: CompareResult, out: Path) -> dict[str, Path]:
    """``compare.csv``, ``compare.md``, ``compare.png``, ``compare.json`` and ``report.html`` in ``out``, each written
    atomically; then each fine-tuned run's model card again, now that its cell's transfer gain is known."""
    from ..evaluation.plots import plot_compare

    n = len(result.seeds)
    bands = f", {100 * result.confidence:.0f}% CI bands" if n > 1 else ""
    title = f"{Path(str(result.data['source'])).name}: mean over {n} seed{'s' if n != 1 else ''}{bands}"
    files = {"csv": write_text(out / "compare.csv", to_csv(result)),
             "markdown": write_text(out / "compare.md", to_markdown(result)),
             "plot": plot_compare([asdict(c) for c in result.cells], out / "compare.png", baseline=result.baseline,
                                  arms=result.strategies, title=title)}
    files["json"] = write_json(out / "compare.json", result.to_dict())
    files["html"] = write_html_report(out)  # report.html: accuracy against shots and the transfer-gain table
    for run in result.runs:  # the fine-tuned models' cards can now state the gain their cell measured
        if run.strategy != result.baseline and run.run_dir is not None and (Path(run.run_dir) / "model").is_dir():
            write_model_card(run.run_dir)
    return files
