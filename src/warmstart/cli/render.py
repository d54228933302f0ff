"""What the commands print: result tables and summaries (rich), or JSON on stdout with ``--json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def wide_console():
    """A console at least 120 columns wide, so that score tables stay readable when piped."""
    from rich.console import Console

    return Console(width=max(Console().width, 120))


def print_json(result: Any) -> None:
    print(json.dumps(result.to_dict()))


def print_metrics(metrics, title: str, as_json: bool, run_dir: Path | None = None) -> None:
    from ..evaluation import render_report

    if as_json:
        print_json(metrics)
        return
    out = console()
    out.print(render_report(metrics, title))
    if run_dir is not None:
        out.print(f"run folder: {run_dir}")
        if (Path(run_dir) / "report.html").is_file():
            out.print(f"report: {Path(run_dir) / 'report.html'}")


def print_pretext(result, as_json: bool) -> None:
    """A self-supervised pretraining run: no test metrics, its objective's loss and where the checkpoint is."""
    stage = result.info.extra["self_supervised"]
    if as_json:
        print(json.dumps({"self_supervised": stage, "run_dir": None if result.run_dir is None else
                          str(result.run_dir), "train_time_s": result.train_time_s}))
        return
    out = console()
    loss = stage["final_loss"]
    out.print(f"{stage['objective']['name']}: {stage['examples']} unlabelled inputs, {stage['epochs']} epoch(s), "
              f"{stage['steps']} steps; final loss {'n/a' if loss is None else f'{loss:.4f}'} (no labels, so no test "
              "metrics)")
    if result.run_dir is not None:
        out.print(f"checkpoint: {result.run_dir} (a source for `warmstart finetune --from`)")


def print_lr_find(result, out: Path) -> None:
    print(f"suggested learning rate: {result.suggestion:.3g} (steepest descent of the smoothed loss)")
    print(f"other candidate: {result.min_loss_lr_over_10:.3g} (the lowest smoothed loss's rate / 10)")
    print(f"{result.steps_run} of {result.steps} steps, {result.start_lr:.3g} to {result.lrs[-1]:.3g}"
          + ("; stopped early: the loss diverged" if result.stopped_early else ""))
    print(f"plot: {Path(out) / 'lr_find.png'}")


def _compare_table(cells, title: str, *, budgets: bool):
    from rich.table import Table

    table = Table(title=title)
    columns = ("strategy", "shots", "accuracy", "95% CI", "gain (points)", "p", "flag") + (
        ("epochs", "steps") if budgets else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("strategy", "flag") else "right", overflow="fold")
    for c in cells:
        ci = "n/a" if c.accuracy_ci_low is None else f"{c.accuracy_ci_low:.3f} to {c.accuracy_ci_high:.3f}"
        gain = "" if c.gain_points_mean is None else f"{c.gain_points_mean:+.1f} ± {c.gain_points_std:.1f}"
        p = "" if c.p_value is None else f"{c.p_value:.3g}"
        flag = f"[red]{c.flag}[/red]" if c.negative_transfer else c.flag
        spent = (f"{c.epochs_mean:.1f}", f"{c.steps_mean:.0f}") if budgets else ()
        table.add_row(c.strategy, str(c.shots), f"{c.accuracy_mean:.3f} ± {c.accuracy_std:.3f}", ci, gain, p, flag,
                      *spent)
    return table


def print_compare(result) -> None:
    n = len(result.seeds)
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    out = console()
    out.print(_compare_table(result.cells, f"transfer vs scratch over {seeds}, equal budget: test accuracy",
                             budgets=False))
    if result.plateau_cells:
        out.print(_compare_table(result.plateau_cells, f"each arm trained to its plateau, over {seeds}: test "
                                 "accuracy, with the mean epochs and steps each took", budgets=True))
        out.print(result.plateau["rule"], highlight=False)
    if result.adapt_on is not None:
        from ..reporting.compare_tables import adapt_statement

        out.print(adapt_statement(result), highlight=False)
    if len(result.seeds) < 2:
        out.print("no p-values: one seed has no spread; run --seeds 2 or more")
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if result.out is not None:
        out.print(f"report: {result.out}/report.html; tables: compare.md, .csv, .json, .png")


def print_compare_json(result) -> None:
    print_json(result)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def print_predictions(result) -> None:
    counts = ", ".join(f"{name} {n}" for name, n in result.class_counts.items() if n)
    unpredicted = result.rows - result.predicted
    print(f"predicted {result.predicted} of {result.rows} rows" + (f": {counts}" if counts else "")
          + (f" ({unpredicted} left unpredicted)" if unpredicted else ""))
    print(f"written: {result.out}")


def print_export(result) -> None:
    print(f"parity on {result.examples} real inputs ({result.inputs_from}): max |exported - pytorch| = "
          f"{result.max_abs_difference:.3g} (tolerance {result.tolerance:g})")
    if result.quantize is not None:
        print(f"{result.quantize}: the quantized model predicts the same class as PyTorch on {result.agreement:.1%} of "
              "those inputs")
    print(f"written: {result.model_file}")
    print(f"written: {result.metadata_file}")


def print_shift(result, out: Path | None) -> None:
    scores = result.scores
    print(f"source: {result.source} ({result.source_examples} test examples); target: {result.target} "
          f"({result.target_examples})")
    print(f"MMD²: {scores['mmd2']:.4g} (permutation p = {scores['mmd_p_value']:.3g}, {scores['mmd_permutations']} "
          f"permutations, bandwidth {scores['mmd_bandwidth']:.3g})")
    print(f"proxy A-distance: {scores['proxy_a_distance']:.3f} (domain classifier error "
          f"{scores['domain_classifier_error']:.3f})")
    print(f"label shift: total variation {scores['label_total_variation']:.3f}, Jensen-Shannon distance "
          f"{scores['label_js_distance']:.3f}, chi-square p = {scores['label_shift_p_value']:.3g} "
          f"({scores['shared_classes']} shared classes)")
    print(f"verdict: {result.verdict}")
    if out is not None:
        print(f"written: {Path(out) / 'shift.json'}")


def print_ranking(result) -> None:
    from rich.table import Table

    from ..selection.ranking import rank_table_rows, ranking_notes

    table = Table(title=f"transferability on {result.data.source} ({result.train_examples} training examples, "
                        f"{result.num_classes} classes): best first by {result.rank_score}, higher is better")
    for column in ("#", "candidate", "arch", *result.score_names, "features s", "scores s"):
        table.add_column(column, justify="left" if column in ("candidate", "arch") else "right", overflow="fold")
    for row in rank_table_rows(result):
        table.add_row(*row)
    out = wide_console()
    out.print(table)
    for line in ranking_notes(result):  # ties, and scores that cannot tell the candidates apart
        out.print(line, highlight=False)
    reasons = {reason for c in result.candidates for reason in c.not_applicable.values()}
    for reason in sorted(reasons):
        out.print(f"n/a: {reason}", highlight=False)
    if result.out is not None:
        out.print(f"written: {result.out / 'ranking.json'}")


def _zoo_source(entry) -> str:
    spec = entry.source_classes_spec
    source = (entry.source or "?") + (f" [{spec}]" if spec else "") + (f", {entry.shots}-shot" if entry.shots else "")
    parent = entry.parent or {}
    if parent.get("checkpoint") or parent.get("pretrained"):
        source += f" <- {parent.get('checkpoint') or parent.get('pretrained')}"
    return source


def print_zoo(listing) -> None:
    from rich.table import Table

    table = Table(title=f"{len(listing.entries)} checkpoint(s) in {', '.join(map(str, listing.folders))}")
    for column in ("checkpoint", "arch", "source data", "classes", "test acc", "params", "size", "created"):
        table.add_column(column, justify="right" if column in ("test acc", "params", "size") else "left",
                         overflow="fold")
    for e in listing.entries:
        names = ", ".join(e.class_names)
        table.add_row(str(e.path), e.arch, _zoo_source(e),
                      f"{len(e.class_names)}: {names if len(names) <= 40 else names[:39] + '…'}",
                      "" if e.test_accuracy is None else f"{e.test_accuracy:.3f}", f"{e.parameters:,}",
                      f"{e.size_bytes / 1e6:.2f} MB", (e.created or "")[:16].replace("T", " "))
    out = wide_console()
    out.print(table)
    for file, reason in listing.skipped:
        out.print(f"[yellow]skipped[/yellow] {file}: {reason}", highlight=False)


def print_demo(result, out: Path) -> None:
    from rich.markdown import Markdown

    from ..demo import to_markdown

    console().print(Markdown(to_markdown(result)))
    console().print(f"run folder: {out}")
