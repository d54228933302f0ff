"""``MODEL_CARD.md``: what a fine-tuned model is, where it came from, how well it does and where it may fail
(after Mitchell et al., "Model Cards for Model Reporting", FAT* 2019), from the files of its run folder.

Accuracy gets a Wilson score interval and macro-F1 a percentile bootstrap interval over the test examples. The
transfer gain over training from scratch is taken from a ``compare`` (or ``demo``) run that holds this run; a
plain ``finetune`` never measured it, and the card says so rather than guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from ..io import write_text
from .distillation import DISTILLATION, comparison_rows, comparison_sentence
from .predictions import load_predictions
from .run_files import read_json

MODEL_CARD = "MODEL_CARD.md"
FEW_SHOTS = 20  # below this many training examples per class, the card warns
IMBALANCE_RATIO = 3.0  # largest over smallest class support in the test split
ECE_WARNING = 0.1


def measured_gain(run_dir: Path, levels: int = 4) -> dict[str, Any] | None:
    """The transfer gain of the compare cell (or demo arm) this run belongs to, from ``compare.json`` or
    ``demo.json`` in a folder above it; None when no such run holds it."""
    run_dir = run_dir.resolve()
    for parent in list(run_dir.parents)[:levels]:
        compare = read_json(parent / "compare.json")
        if compare is not None:
            where = run_dir.relative_to(parent).parts  # runs/<arm>/shots<K>/seed<s>, wherever compare ran
            for run in compare.get("runs", []):
                if where == ("runs", run["strategy"], f"shots{run['shots']}", f"seed{run['seed']}") and \
                        run["strategy"] != "scratch":
                    cell = next(c for c in compare["cells"]
                                if c["strategy"] == run["strategy"] and c["shots"] == run["shots"])
                    return {"source": str(parent / "compare.json"), "strategy": run["strategy"],
                            "shots": run["shots"], "seeds": cell["seeds"], "mean": cell["gain_points_mean"],
                            "std": cell["gain_points_std"], "p_value": cell["p_value"], "flag": cell["flag"]}
        demo = read_json(parent / "demo.json")
        if demo is not None and run_dir.parent.name == "transfer-full":
            return {"source": str(parent / "demo.json"), "strategy": "full", "shots": demo["shots"],
                    "seeds": len(demo["seeds"]), "mean": demo["gain_points_mean"], "std": demo["gain_points_std"],
                    "p_value": None, "flag": f"transfer won on {demo['transfer_wins']} of {len(demo['seeds'])} seeds"}
    return None


def _data_line(data: dict[str, Any] | None) -> str:
    if not data:
        return "not recorded"
    parts = [f"`{data.get('source')}`"]
    if data.get("classes") is not None:
        parts.append(f"classes {data['classes']}")
    if data.get("shots") is not None:
        parts.append(f"{data['shots']} shots per class")
    return ", ".join(parts)


def _stage_line(stage: dict) -> str:
    """A self-supervised stage of the lineage: which objective, on which data, how long."""
    objective = dict(stage.get("objective") or {})
    name = objective.pop("name", "?")
    objective.pop("kind", None)
    options = ", ".join(f"{k}={v}" for k, v in objective.items())
    data = stage.get("data")
    data = data.get("source") if isinstance(data, dict) else data
    loss = stage.get("final_loss")
    return (f"`{name}`" + (f" ({options})" if options else "") + f" on {stage.get('examples', '?')} unlabelled inputs "
            f"of `{data}`, {stage.get('epochs', '?')} epoch(s), {stage.get('steps', '?')} optimizer steps of "
            f"{stage.get('batch_size', '?')}" + ("" if loss is None else f", final loss {loss:.4f}"))


def render_model_card(run_dir: str | Path) -> str:
    from ..evaluation.metrics import (bootstrap_interval, expected_calibration_error, f1_score, wilson_interval)

    run_dir = Path(run_dir)
    meta = read_json(run_dir / "model" / "metadata.json") or {}
    config = read_json(run_dir / "config.json") or {}
    metrics = read_json(run_dir / "metrics.json") or {}
    parent = meta.get("parent") or config.get("parent")
    strategy = config.get("strategy") or (meta.get("training") or {}).get("strategy") or {}
    resolved = config.get("resolved", {})
    class_names = meta.get("class_names") or metrics.get("class_names") or []
    what = (f"classifier of {meta.get('kind', '?')} inputs into {len(class_names)} classes "
            f"({', '.join(map(str, class_names))})")
    if (meta.get("training") or {}).get("strategy", {}).get("kind") == "self-supervised":
        what = f"backbone of {meta.get('kind', '?')} inputs pretrained without labels (a source for finetune)"
    lines = [f"# Model card: {run_name(run_dir)}", "",
             f"A `{meta.get('arch', '?')}` {what}, written by `warmstart {config.get('command', '?')}` "
             f"(warmstart {meta.get('warmstart_version', '?')}, {meta.get('created', 'date not recorded')}).", "",
             "## Lineage", ""]
    if parent is None:
        lines.append("- Source model: none; trained from random initialisation.")
    elif "pretrained" in parent:
        lines.append(f"- Source model: the pretrained encoder `{parent['pretrained']}`.")
    else:
        lines += [f"- Source model: checkpoint `{parent.get('checkpoint')}` ({parent.get('arch')}), predicting "
                  f"{', '.join(map(str, parent.get('class_names') or []))}.",
                  f"- Source data: {_data_line(parent.get('data'))}."]
    teacher = meta.get("teacher") or config.get("teacher")
    if teacher is not None:
        accuracy = teacher.get("test_accuracy")
        lines.append(f"- Distilled from the teacher `{teacher.get('checkpoint')}` ({teacher.get('arch')}"
                     + ("" if accuracy is None else f", test accuracy {accuracy:.4f}") + "), trained on "
                     f"{_data_line(teacher.get('data'))}.")
    for who, stage in (("Source model's", (parent or {}).get("self_supervised")),
                       ("This run's", meta.get("self_supervised") or config.get("self_supervised"))):
        if stage:
            lines.append(f"- {who} self-supervised pretraining: {_stage_line(stage)}.")
    lines += [f"- Target data: {_data_line(meta.get('data') or config.get('data'))}; "
              f"{resolved.get('train_examples', '?')} training, {resolved.get('val_examples', '?')} validation and "
              f"{resolved.get('test_examples', metrics.get('num_examples', '?'))} test examples"
              + (f"; and {resolved['written_examples']} training examples written from the class names "
                 f"({_written_line(config.get('data') or {})})" if resolved.get("written_examples") else "") + ".",
              f"- Strategy: `{strategy.get('name', '?')}`"
              + (f" ({', '.join(f'{k}={v}' for k, v in strategy.items() if k != 'name')})" if len(strategy) > 1
                 else "") + ".",
              f"- Preprocessing: `{json.dumps(meta.get('preprocessing', {}))[:200]}`.", "", "## Metrics (test split)",
              ""]
    loaded = load_predictions(run_dir)
    n = int(metrics.get("num_examples", 0))
    ece = None
    if metrics:
        low, high = wilson_interval(round(metrics["accuracy"] * n), n)
        lines.append("| metric | value | 95% interval |")
        lines.append("|---|---|---|")
        lines.append(f"| accuracy | {metrics['accuracy']:.4f} | {low:.4f} to {high:.4f} (Wilson, n={n}) |")
        if loaded is not None:
            y_true, probabilities = loaded
            y_pred = probabilities.argmax(axis=1)
            k = probabilities.shape[1]
            f1_low, f1_high = bootstrap_interval(
                y_true, y_pred, lambda t, p: f1_score(t, p, num_classes=k), resamples=500)
            lines.append(f"| macro F1 | {metrics['macro_f1']:.4f} | {f1_low:.4f} to {f1_high:.4f} "
                         f"(bootstrap, 500 resamples) |")
            ece = expected_calibration_error(y_true, probabilities)
            lines.append(f"| expected calibration error | {ece:.4f} | (15 bins) |")
        else:
            lines.append(f"| macro F1 | {metrics['macro_f1']:.4f} | not computed (no predictions.npz) |")
        worst = sorted(metrics.get("per_class", {}).items(), key=lambda item: item[1]["f1"])[:3]
        if worst:
            lines += ["", "Weakest classes by F1: " + ", ".join(f"{name} ({s['f1']:.3f})" for name, s in worst) + "."]
    else:
        lines.append("Not measured: this run wrote no metrics.json.")
    distillation = read_json(run_dir / DISTILLATION)
    if distillation is not None:
        header, rows = comparison_rows(distillation)
        lines += ["", "## Distilled: the student against its teacher", "", comparison_sentence(distillation), "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                  *("| " + " | ".join(row) + " |" for row in rows)]
    lines += ["", "## Transfer gain over training from scratch", ""]
    gain = measured_gain(run_dir)
    if gain is not None:
        p = "" if gain["p_value"] is None else f", paired t-test p = {gain['p_value']:.3g}"
        lines.append(f"{gain['mean']:+.2f} ± {gain['std']:.2f} accuracy points for `{gain['strategy']}` at "
                     f"{gain['shots']} shots over {gain['seeds']} seeds{p} ({gain['flag']}); from `{gain['source']}`.")
    elif parent is None:
        lines.append("Not applicable: this model was trained from scratch.")
    else:
        lines.append("Not measured: run `warmstart compare` with this source and target to measure it.")
    lines += ["", "## Known limits", ""]
    limits = []
    supports = [s["support"] for s in metrics.get("per_class", {}).values()]
    if supports and min(supports) > 0 and max(supports) / min(supports) >= IMBALANCE_RATIO:
        limits.append(f"Class imbalance in the test split: class supports range from {min(supports)} to "
                      f"{max(supports)}; accuracy favours the large classes, read macro F1.")
    train_examples = resolved.get("train_examples")
    if train_examples and class_names and train_examples / len(class_names) < FEW_SHOTS:
        limits.append(f"Few shots: {train_examples} training examples for {len(class_names)} classes "
                      f"(~{train_examples / len(class_names):.0f} per class); expect variance between seeds.")
    if n and n < 100:
        limits.append(f"Small test split ({n} examples): the intervals above are wide.")
    if ece is not None:
        limits.append(f"Calibration: ECE {ece:.3f}; " + ("the probabilities overstate or understate accuracy, "
                                                          "recalibrate before using them as risks."
                                                          if ece > ECE_WARNING else "close to calibrated on this "
                                                          "test split."))
    limits.append("Domain: measured only on the test split of the target data above; inputs from another "
                  "distribution (other sources, devices, languages or time) may score lower.")
    lines += [f"- {item}" for item in limits]
    return "\n".join(lines) + "\n"


def write_model_card(run_dir: str | Path) -> Path:
    return write_text(Path(run_dir) / MODEL_CARD, render_model_card(run_dir))


def _written_line(data: dict) -> str:
    return (f"{data.get('class_name_examples', '?')} per class, {data.get('class_name_template', '?')!r}; they are "
            "not counted as labelled examples")


def run_name(run_dir: Path) -> str:
    """The run folder's name as the user gave it: an ``--overwrite`` run is written in a hidden ``.NAME.partial``
    folder beside it (swapped in at the end), whose name the card and report must not show."""
    name = run_dir.name
    return name[1:-len(".partial")] if name.startswith(".") and name.endswith(".partial") else name
