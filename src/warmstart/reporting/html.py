"""``report.html``: one self-contained page per run folder, built only from the files the run wrote.

Every figure is a base64 PNG inside the page and the style sheet is inline: the page opens offline and fetches
nothing. Every piece of text from the run (config values, class names, example texts) goes through
``html.escape``.
"""

from __future__ import annotations

import datetime as _dt
import json
from html import escape
from pathlib import Path
from typing import Any, Sequence

from ..errors import WarmstartError
from ..io import write_text
from ..evaluation import plots
from .distillation import DISTILLATION, comparison_rows, comparison_sentence
from .predictions import confused_pairs, load_examples, load_predictions
from .run_files import read_json, read_log
from .model_card import run_name

REPORT = "report.html"
ECE_BINS = 15

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f5f5f5; } td.name, th.name { text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .8em; }
img.plot { max-width: 100%; border: 1px solid #eee; }
.pair { margin: 1em 0; } .examples { display: flex; flex-wrap: wrap; gap: .8em; }
.example { border: 1px solid #ddd; padding: .4em; font-size: .85em; max-width: 320px; }
.example img { width: 84px; height: auto; image-rendering: pixelated; display: block; }
blockquote { margin: .2em 0; padding-left: .6em; border-left: 3px solid #ccc; }
.muted { color: #777; } .bad { color: #b00; }
"""


def _img(png_base64: str, alt: str, css: str = "plot") -> str:
    return f'<img class="{css}" alt="{escape(alt)}" src="data:image/png;base64,{png_base64}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], name_columns: int = 1) -> str:
    head = "".join(f'<th class="{"name" if i < name_columns else ""}">{escape(str(h))}</th>'
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"name" if i < name_columns else ""}">{escape(str(v))}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _summary(metrics: dict[str, Any]) -> str:
    keys = [("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("weighted_f1", "weighted F1"),
            ("precision_macro", "precision (macro)"), ("recall_macro", "recall (macro)"),
            ("num_examples", "examples")]
    cells = [metrics[k] if k == "num_examples" else _number(metrics.get(k)) for k, _ in keys]
    return _table([label for _, label in keys], [cells], name_columns=0)


def _curves_section(log: list[dict[str, Any]]) -> str:
    if not log:
        return ""
    rows = [[e.get("epoch"), e.get("trainable", ""), _number(e.get("train_loss")), _number(e.get("train_accuracy")),
             _number(e.get("val_loss")), _number(e.get("val_accuracy")), f"{e.get('lr', 0):.3g}"] for e in log]
    # a resumed or multi-phase command logs one file; the log's ``phase`` is the command that trained
    phases = plots.phases(log)
    listed = ("<p>Phases (the layer groups that trained): " + "; ".join(
        f"{escape(name)}, epochs {start}-{end}" for start, end, name, _ in phases) + ".</p>") if phases else ""
    return ("<h2>Learning curves</h2>" + listed + _img(plots.learning_curves(log), "learning curves")
            + "<details><summary>per-epoch log</summary>"
            + _table(["epoch", "training", "train loss", "train acc", "val loss", "val acc", "lr"], rows, 2)
            + "</details>")


def _per_class_section(metrics: dict[str, Any]) -> str:
    rows = [[name, _number(s["precision"], 3), _number(s["recall"], 3), _number(s["f1"], 3), s["support"]]
            for name, s in metrics.get("per_class", {}).items()]
    return "<h2>Per-class scores</h2>" + _table(["class", "precision", "recall", "F1", "support"], rows)


def _confusion_section(run_dir: Path, metrics: dict[str, Any]) -> str:
    png = run_dir / "confusion_matrix.png"
    if png.is_file():
        import base64

        image = base64.b64encode(png.read_bytes()).decode("ascii")
    else:
        image = plots.confusion_matrix_png(metrics["confusion_matrix"], metrics["class_names"],
                                           f"accuracy {metrics['accuracy']:.3f}")
    return "<h2>Confusion matrix</h2><p class='muted'>rows: true class, columns: predicted</p>" + \
        _img(image, "confusion matrix")


def _example_html(example: dict[str, Any]) -> str:
    caption = f"#{example['index']}, confidence {example['confidence']:.2f}"
    if "image_png_base64" in example:
        body = _img(example["image_png_base64"], f"example {example['index']}", css="thumb")
    elif "text" in example:
        body = f"<blockquote>{escape(example['text'])}</blockquote>"
    else:
        body = f"<code>{escape(', '.join(map(str, example.get('values', []))))}"\
               f"{' ...' if example.get('dimensions', 0) > 12 else ''}</code>"
    return f'<div class="example">{body}<div class="muted">{escape(caption)}</div></div>'


def _confused_section(metrics: dict[str, Any], examples: dict[str, Any] | None) -> str:
    names = metrics["class_names"]
    pairs = examples["pairs"] if examples else [{"true": t, "predicted": p, "count": n, "examples": []}
                                                 for t, p, n in confused_pairs(metrics["confusion_matrix"])]
    if not pairs:
        return "<h2>Most confused classes</h2><p>No test example was misclassified.</p>"
    support = [sum(row) for row in metrics["confusion_matrix"]]
    parts = ["<h2>Most confused classes</h2>"]
    for pair in pairs:
        share = pair["count"] / max(support[pair["true"]], 1)
        parts.append(f'<div class="pair"><b>{escape(names[pair["true"]])}</b> predicted as '
                     f'<b>{escape(names[pair["predicted"]])}</b>: {pair["count"]} times '
                     f'({share:.1%} of the true class)')
        if pair["examples"]:
            parts.append('<div class="examples">' + "".join(map(_example_html, pair["examples"])) + "</div>")
        parts.append("</div>")
    if examples is None:
        parts.append("<p class='muted'>no examples: this run saved no examples.json</p>")
    return "".join(parts)


def _calibration_section(run_dir: Path) -> str:
    from ..evaluation.metrics import expected_calibration_error, reliability_bins

    loaded = load_predictions(run_dir)
    if loaded is None:
        return "<h2>Calibration</h2><p class='muted'>not available: this run saved no predictions.npz</p>"
    y_true, probabilities = loaded
    bins = reliability_bins(y_true, probabilities, bins=ECE_BINS)
    ece = expected_calibration_error(y_true, probabilities, bins=ECE_BINS)
    mean_confidence = float(probabilities.max(axis=1).mean()) if len(y_true) else 0.0
    return ("<h2>Calibration</h2>"
            f"<p>Expected calibration error (ECE, {ECE_BINS} equal-width bins): <b>{ece:.4f}</b>; mean confidence "
            f"{mean_confidence:.3f} against accuracy {float((probabilities.argmax(1) == y_true).mean()):.3f}.</p>"
            + _img(plots.reliability_diagram(bins, ece), "reliability diagram"))


def _compare_section(result: dict[str, Any], run_dir: Path) -> str:
    cells = result["cells"]
    rows = []
    for c in cells:
        ci = "n/a" if c["accuracy_ci_low"] is None else f"{c['accuracy_ci_low']:.3f} to {c['accuracy_ci_high']:.3f}"
        gain = "" if c["gain_points_mean"] is None else f"{c['gain_points_mean']:+.1f} ± {c['gain_points_std']:.1f}"
        gain_ci = ("" if c.get("gain_points_ci_low") is None
                   else f"{c['gain_points_ci_low']:+.1f} to {c['gain_points_ci_high']:+.1f}")
        rows.append([c["strategy"], c["shots"], c["seeds"], f"{c['accuracy_mean']:.3f} ± {c['accuracy_std']:.3f}",
                     ci, gain, gain_ci, "" if c["p_value"] is None else f"{c['p_value']:.3g}", c["flag"]])
    links = "".join(f'<li><a href="{escape(link)}">{escape(r["strategy"])}, {r["shots"]} shots, seed {r["seed"]}'
                    f'</a>: accuracy {r["accuracy"]:.3f}</li>'
                    for r in result["runs"] for link in [_run_link(r)] if (run_dir / link).is_file())
    warnings = "".join(f"<li class='bad'>{escape(w)}</li>" for w in result.get("warnings", []))
    return ("<h2>Accuracy against shots</h2><p class='muted'>mean over seeds; bands: 95% confidence interval of the "
            "mean (Student t), cut at 0 and 1</p>" + _img(plots.accuracy_against_shots(cells), "accuracy against shots")
            + "<h2>Transfer gain over scratch</h2><p class='muted'>gain in accuracy points, paired by seed; p: paired "
              "t-test</p>"
            + _table(["strategy", "shots", "seeds", "accuracy", "95% CI", "gain (points)", "gain 95% CI", "p", "flag"],
                     rows)
            + (f"<ul>{warnings}</ul>" if warnings else "")
            + _plateau_section(result)
            + (f"<details><summary>the runs</summary><ul>{links}</ul></details>" if links else ""))


def _plateau_section(result: dict[str, Any]) -> str:
    """The gains with each arm trained to its own plateau, and the epochs and steps each took (when measured)."""
    if not result.get("plateau"):
        return ""
    rows = [[c["strategy"], c["shots"], f"{c['accuracy_mean']:.3f} ± {c['accuracy_std']:.3f}",
             "" if c["gain_points_mean"] is None else f"{c['gain_points_mean']:+.1f} ± {c['gain_points_std']:.1f}",
             "" if c["p_value"] is None else f"{c['p_value']:.3g}", f"{c['epochs_mean']:.1f}", f"{c['steps_mean']:.0f}"]
            for c in result.get("plateau_cells", [])]
    return ("<h2>Each arm to its plateau</h2><p class='muted'>" + escape(result["plateau"]["rule"]) + "</p>"
            + _table(["strategy", "shots", "accuracy", "gain (points)", "p", "epochs", "steps"], rows))


def _run_link(run: dict[str, Any]) -> str:
    """A compare run's report, relative to the compare folder (compare's own layout, wherever it was run from)."""
    return f"runs/{run['strategy']}/shots{run['shots']}/seed{run['seed']}/{REPORT}"


def _tuning_section(tuning: dict[str, Any], run_dir: Path) -> str:
    """A search (warmstart tune): the winner, the optimisation history, importances, parallel coordinates, trials."""
    trials = (read_json(run_dir / "trials.json") or {}).get("trials", [])
    best, counts = tuning["best"], tuning["trials"]
    logs = [name for name, p in tuning.get("space", {}).items() if p.get("log")]
    winner = (f"<p>Best of {counts['total']} trials ({counts['complete']} finished, {counts['pruned']} pruned): trial "
              f"{best['number']}, validation accuracy <b>{best['value']:.4f}</b>; trained again with its settings and "
              f"scored once on the test split: accuracy <b>{tuning['test_accuracy']:.4f}</b> "
              '(<a href="best/report.html">the winner\'s report</a>). Replay: <code>warmstart finetune --config '
              "best_config.yaml</code>.</p>")
    warning = (tuning.get("validation_noise") or {}).get("warning")
    if warning:  # tuning/validation_noise.py: the search's scores are too noisy for its winner to carry to test
        winner += f"<p class='bad'>Warning: {escape(warning)}.</p>"
    if counts.get("interrupted"):
        winner += (f"<p class='bad'>Trial(s) {', '.join(map(str, counts['interrupted']))} were left running by a "
                   "process that stopped; they were marked failed on --resume and are not counted.</p>")
    params = _table(["parameter", "best value", "searched"],
                    [[k, v, json.dumps(tuning["space"].get(k, {}))] for k, v in best["params"].items()])
    parts = ["<h2>Search</h2>", winner, params, "<h3>Optimisation history</h3>",
             _img(plots.optimization_history(trials), "optimisation history")]
    if tuning.get("importances"):
        parts += ["<h3>Parameter importances</h3>", _img(plots.parameter_importances(tuning["importances"]),
                                                         "parameter importances")]
    if sum(t["state"] == "complete" for t in trials) >= 2:
        parts += ["<h3>Parallel coordinates</h3>", _img(plots.parallel_coordinates(trials, logs),
                                                        "parallel coordinates")]
    if tuning.get("selection"):
        parts.append(_race_section(tuning["selection"]))
    rows = [[t["number"], t["state"], _number(t["value"]), t.get("epochs_run") or "", t.get("steps") or "",
             ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items()),
             t.get("note", "")] for t in trials]
    parts.append("<details><summary>every trial</summary>"
                 + _table(["trial", "state", "val accuracy", "epochs", "steps", "parameters", "note"], rows, 2)
                 + "</details>")
    return "".join(parts)


def _race_section(race: dict[str, Any]) -> str:
    """The starting-point race: each candidate's score, the size baseline beside it, and its rungs' accuracies."""
    rungs = race.get("rungs", [])
    rows = [[c["candidate"], _number(c["score"]), f"{c['parameters']:,}", _number(c.get("source_accuracy")),
             *(_number(r["validation_accuracy"].get(c["candidate"])) for r in rungs)] for c in race["candidates"]]
    return ("<h3>The starting-point race</h3><p>" + escape(race["why"]) + "</p>"
            + _table(["candidate", race["rank_score"], "parameters", "source accuracy",
                      *(f"val acc, {r['epochs']} epoch(s)" for r in rungs)], rows))


def render_report(run_dir: str | Path) -> str:
    """The page of ``run_dir`` as a string; see :func:`write_report`."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json") or {}
    metrics = read_json(run_dir / "metrics.json")
    compare = read_json(run_dir / "compare.json")
    tuning = read_json(run_dir / "tuning.json")
    pretext = read_json(run_dir / "pretext.json")  # self-supervised pretraining: no labels, so no metrics
    if metrics is None and compare is None and tuning is None and pretext is None:
        raise WarmstartError(f"{run_dir}: no metrics.json, compare.json, tuning.json or pretext.json, so nothing to "
                             "report", hint="pass a run folder written by pretrain, finetune, evaluate, compare, tune "
                                            "or distill")
    command = config.get("command", "compare" if compare is not None else "tune" if tuning is not None else "run")
    data = ((metrics or {}).get("data") or (compare or {}).get("data") or (tuning or {}).get("data")
            or config.get("data") or {})
    title = f"warmstart {command}: {data.get('source', run_name(run_dir))}"
    parts = [f"<h1>{escape(title)}</h1>",
             f"<p class='muted'>{escape(str(run_dir.parent / run_name(run_dir)))} · report built "
             f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}</p>"]
    if compare is not None:
        parts.append(_compare_section(compare, run_dir))
        config = config or {k: compare[k] for k in ("checkpoint", "data", "strategies", "shots", "seeds", "train",
                                                    "scratch_model") if k in compare}
    if tuning is not None:
        parts.append(_tuning_section(tuning, run_dir))
        config = config or {k: tuning[k] for k in ("from", "data", "strategy", "settings", "space") if k in tuning}
        config = {**config, "notes": tuning.get("notes", [])}
    if metrics is not None:
        parts.append(f"<h2>Test metrics ({escape(str(metrics.get('split', 'test')))} split)</h2>"
                     + _summary(metrics))
        parts.append(_curves_section(read_log(run_dir / "train_log.jsonl")))
        parts.append(_confusion_section(run_dir, metrics))
        parts.append(_per_class_section(metrics))
        parts.append(_confused_section(metrics, load_examples(run_dir)))
        parts.append(_calibration_section(run_dir))
    distillation = read_json(run_dir / DISTILLATION)
    if distillation is not None:
        header, rows = comparison_rows(distillation)
        parts.append("<h2>Student against teacher</h2><p>" + escape(comparison_sentence(distillation)).replace(
            "`", "") + "</p>" + _table(header, rows))
    if pretext is not None:
        rows = [[k, _number(v) if isinstance(v, float) else json.dumps(v)] for k, v in pretext.items()]
        parts.append("<h2>Self-supervised pretraining</h2><p class='muted'>no labels, so no test metrics; the "
                     "checkpoint is a source for finetune</p>" + _table(["", "value"], rows))
    notes = config.get("notes") or []
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    if (run_dir / "MODEL_CARD.md").is_file():
        parts.append('<p>Model card: <a href="MODEL_CARD.md">MODEL_CARD.md</a></p>')
    parts.append("<h2>Configuration</h2><pre>" + escape(json.dumps(config, indent=2)) + "</pre>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(p for p in parts if p) + "</body></html>\n")


def write_report(run_dir: str | Path) -> Path:
    """Build ``report.html`` in ``run_dir`` from its config, training log, metrics, predictions and examples (and
    ``compare.json`` for a compare run), replacing any older one."""
    return write_text(Path(run_dir) / REPORT, render_report(run_dir))
