"""Unsupervised domain adaptation on Fashion-MNIST with known shifts, and across to scikit-learn's digits.

Setting. A small residual CNN (warmstart's ``cnn``) is pretrained on labelled Fashion-MNIST (the source: 6,000
training images, 3 epochs), once per seed. Each shifted target is warmstart's own corrupted copy of Fashion-MNIST
(``--corruption NAME:3``): 2,000 *other* training images as the unlabelled target, and 2,000 test images, corrupted
the same way, as the labelled target test set (its labels are used for scoring only). Per target and seed:

- source only: the pretrained model as it is;
- source only +1 epoch: one more epoch on the labelled source (200 images per class), no adaptation; the
  compute-matched baseline for CORAL and DANN, which get the same epoch plus unlabelled target batches;
- target batches, no loss: the CORAL run with weight 0: the same epoch, target batches through the backbone with
  each source batch (so BatchNorm's running statistics mix both domains, as in DANN and CORAL), but no alignment
  loss; it separates what the loss does from what the shared BatchNorm statistics do;
- AdaBN: the pretrained model with its BatchNorm statistics re-estimated on the unlabelled target;
- CORAL / DANN: the pretrained model fine-tuned for that one epoch with the Deep CORAL / DANN loss (default
  options: weight 1; DANN with Ganin's lambda schedule).

The shift scores (MMD with its permutation p-value, proxy A-distance) are measured in the seed-0 model's feature
space between the source and target test sets (1,000 examples each).

Cross-domain case with real data: the same seed-0 Fashion-MNIST model against scikit-learn's 8x8 digits, resized
to 28x28 (``resize``). The label sets are disjoint, so no source classifier can score on digits: reported are the
shift scores, and the accuracy of a linear probe (logistic regression) trained on 10 labelled digits per class on
the frozen features, before and after AdaBN re-estimates the BatchNorm statistics on all unlabelled digits
training images. This asks whether AdaBN makes the source backbone's features more useful on the new domain.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/domain_adaptation.py`` (about 12 minutes on one CPU
thread); writes benchmarks/results/domain_adaptation.{md,json}.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from warmstart import api  # noqa: E402
from warmstart.adaptation import create_adaptation  # noqa: E402
from warmstart.config import DataConfig, TrainConfig  # noqa: E402
from warmstart.data import fashion_mnist  # noqa: E402

from _common import RESULTS, command_line, machine_info, pretrain_source, write_results  # noqa: E402

SEEDS = (0, 1, 2)
SEVERITY = 3
ADAPTATION_SHOTS = 200  # labelled source images per class in the adaptation epoch
CORRUPTIONS = ("invert", "rotate", "blur", "noise", "contrast")
METHODS = ("source only", "source only +1 epoch", "target batches, no loss", "adabn", "coral", "dann")


def write_subsets(folder: Path) -> tuple[str, str]:
    """source.npz: 6,000 train + 2,000 test images; target.npz: 2,000 other train images + the same test images."""
    train, test = fashion_mnist.load()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train.y))
    source_idx, target_idx = np.sort(order[:6000]), np.sort(order[6000:8000])
    test_idx = np.sort(rng.permutation(len(test.y))[:2000])

    def as_bytes(x):
        return (x[:, 0] * 255).round().astype(np.uint8)

    names = np.array(fashion_mnist.CLASS_NAMES)
    paths = []
    for name, idx in (("source", source_idx), ("target", target_idx)):
        path = folder / f"{name}.npz"
        np.savez(path, x=as_bytes(train.x[idx]), y=train.y[idx], x_test=as_bytes(test.x[test_idx]),
                 y_test=test.y[test_idx], class_names=names)
        paths.append(str(path))
    return paths[0], paths[1]


def accuracy(checkpoint, data: DataConfig, target_unlabeled: DataConfig | None = None) -> float:
    return api.evaluate(checkpoint, data, target_unlabeled=target_unlabeled, device="cpu").accuracy


def digits_probe(checkpoint: str, adapted: bool, seed: int) -> float:
    """Linear-probe accuracy on digits' test split from 10 labelled digits per class, on the frozen features of the
    Fashion-MNIST model (after AdaBN on the unlabelled digits training images when ``adapted``)."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from warmstart.adaptation import adapt_batchnorm
    from warmstart.data import load_split
    from warmstart.data.preprocess import adapt_inputs, preprocessing_from_dict
    from warmstart.engine.features import extract_features
    from warmstart.models import load_checkpoint

    net, info = load_checkpoint(checkpoint)
    norm = preprocessing_from_dict(info.preprocessing)
    digits = DataConfig("digits", resize=True)
    train = adapt_inputs(load_split(digits, "train"), net.input_shape, resize=True, model_name="fmnist")
    test = adapt_inputs(load_split(digits, "test"), net.input_shape, resize=True, model_name="fmnist")
    if adapted:
        adapt_batchnorm(net, norm.apply(train.x))
    rng = np.random.default_rng(seed)
    labelled = np.concatenate([rng.choice(np.flatnonzero(train.y == c), 10, replace=False) for c in range(10)])
    device = torch.device("cpu")
    features_train = extract_features(net, norm.apply(train.x[labelled]), device).numpy()
    features_test = extract_features(net, norm.apply(test.x), device).numpy()
    probe = LogisticRegression(max_iter=2000).fit(features_train, train.y[labelled])
    return float(probe.score(features_test, test.y))


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "runs": values}


def main(seeds: tuple[int, ...] = SEEDS, corruptions: tuple[str, ...] = CORRUPTIONS,
         out: Path = RESULTS) -> None:
    started = time.perf_counter()
    load = os.getloadavg()
    commit = _commit()  # the code that runs: taken at the start
    results: dict = {"command": command_line("benchmarks/domain_adaptation.py"), "seeds": list(seeds),
                     "severity": SEVERITY, "targets": {},
                     "settings": {"source_train": 6000, "target_unlabeled": 2000, "target_test": 2000,
                                  "pretrain": "cnn, 3 epochs, batch 128, lr 2e-3, adamw, cosine",
                                  "adaptation_epoch": f"1 epoch on {ADAPTATION_SHOTS} source images per class, "
                                                      "batch 64, lr 1e-3, cosine",
                                  "shift_samples": 1000, "permutations": 200},
                     "machine": machine_info(load_average_at_start=load,
                                             threads=os.environ.get("OMP_NUM_THREADS"))}
    with tempfile.TemporaryDirectory(prefix="warmstart-da-") as tmp:
        folder = Path(tmp)
        source_path, target_path = write_subsets(folder)
        source = DataConfig(source_path, val_fraction=0.0)
        adapt_source = DataConfig(source_path, shots=ADAPTATION_SHOTS, val_fraction=0.0)
        pretrained, baseline = {}, {}
        for seed in seeds:
            run = pretrain_source(folder / f"pretrain{seed}", dataset=source, epochs=3, seed=seed, device="cpu")
            pretrained[seed] = run.run_dir
            results.setdefault("source_test_accuracy", []).append(run.metrics.accuracy)
            # the compute-matched baseline does not depend on the target: train it once per seed
            baseline[seed] = api.finetune(run.run_dir, adapt_source, out=folder / f"baseline{seed}",
                                          train=TrainConfig(epochs=1, batch_size=64, seed=seed, progress=False,
                                                            device="cpu")).run_dir
            print(f"seed {seed}: pretrained, source test accuracy {run.metrics.accuracy:.4f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)

        for name in corruptions:
            spec = f"{name}:{SEVERITY}"
            target_test = DataConfig(target_path, corruption=spec)
            target_unlabeled = DataConfig(target_path, corruption=spec)
            shift = api.shift(DataConfig(source_path), target_test, pretrained[0], samples=1000, permutations=200,
                              device="cpu")
            cells: dict[str, list[float]] = {m: [] for m in METHODS}
            for seed in seeds:
                cells["source only"].append(accuracy(pretrained[seed], target_test))
                cells["source only +1 epoch"].append(accuracy(baseline[seed], target_test))
                cells["adabn"].append(accuracy(pretrained[seed], target_test, target_unlabeled))
                for method, adaptation in (("target batches, no loss", create_adaptation("coral", weight=0.0)),
                                           ("coral", "coral"), ("dann", "dann")):
                    run = api.finetune(pretrained[seed], adapt_source, out=folder / f"{name}-{method}{seed}",
                                       target_unlabeled=target_unlabeled, adaptation=adaptation,
                                       train=TrainConfig(epochs=1, batch_size=64, seed=seed, progress=False,
                                                         device="cpu"))
                    cells[method].append(accuracy(run.run_dir, target_test))
            results["targets"][spec] = {"shift": {k: shift.scores[k] for k in
                                                  ("mmd2", "mmd_p_value", "proxy_a_distance",
                                                   "domain_classifier_error")},
                                        "verdict": shift.verdict,
                                        "accuracy": {m: mean_std(v) for m, v in cells.items()}}
            print(f"{spec}: " + ", ".join(f"{m} {statistics.mean(v):.3f}" for m, v in cells.items())
                  + f" ({time.perf_counter() - started:.0f} s)", flush=True)

        digits_shift = api.shift(DataConfig(source_path), DataConfig("digits", resize=True), pretrained[0],
                                 samples=1000, permutations=200, device="cpu")
        probes = {"before adabn": [digits_probe(pretrained[seed], False, seed) for seed in seeds],
                  "after adabn": [digits_probe(pretrained[seed], True, seed) for seed in seeds]}
        results["digits"] = {"shift": digits_shift.scores, "verdict": digits_shift.verdict,
                             "linear_probe_10_per_class": {k: mean_std(v) for k, v in probes.items()}}
    results["wall_time_s"] = time.perf_counter() - started
    results["commit"] = commit
    results["machine"]["load_average_at_end"] = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    write_results(out, "domain_adaptation", results, to_markdown(results))
    print(to_markdown(results))


def to_markdown(r: dict) -> str:
    def cell(d: dict) -> str:
        return f"{d['mean']:.3f} ± {d['std']:.3f}"

    source = mean_std(r["source_test_accuracy"])
    lines = ["# Unsupervised domain adaptation: Fashion-MNIST to shifted targets, and to digits", "",
             f"Command: `{r['command']}` (wall time {r['wall_time_s'] / 60:.1f} min; load average at start "
             f"{', '.join(f'{x:.2f}' for x in r['machine']['load_average_at_start'])}; 2 cores shared with other "
             f"jobs). Code: commit {r['commit']}.", "",
             f"Source: a `cnn` pretrained on 6,000 labelled Fashion-MNIST images (3 epochs); clean source test "
             f"accuracy {cell(source)} over seeds {', '.join(map(str, r['seeds']))}. Targets: warmstart's "
             f"corruptions at severity {r['severity']} of 2,000 other training images (unlabelled) and of 2,000 "
             "test images (labelled, scoring only). Accuracy on the target test set, mean ± std over "
             f"{len(r['seeds'])} seeds. "
             "*+1 epoch* is one more epoch on the labelled source without adaptation, the compute-matched "
             "baseline for CORAL and DANN (same epoch, plus unlabelled target batches). Shift scores are in the "
             "seed-0 model's feature space (1,000 test examples a side, 200 permutations; the smallest possible "
             "p-value is 1/201 = 0.005).", "",
             "| target | MMD² | p | proxy A-dist. | " + " | ".join(METHODS) + " |",
             "|---|---|---|---|" + "---|" * len(METHODS)]
    for spec, t in r["targets"].items():
        s = t["shift"]
        lines.append(f"| {spec} | {s['mmd2']:.3f} | {s['mmd_p_value']:.3f} | {s['proxy_a_distance']:.2f} | "
                     + " | ".join(cell(t["accuracy"][m]) for m in METHODS) + " |")
    gains = {m: statistics.mean(t["accuracy"][m]["mean"] - t["accuracy"]["source only +1 epoch"]["mean"]
                                for t in r["targets"].values()) for m in METHODS[2:]}
    lines += ["", "Mean gain over *source only +1 epoch* across the five targets (points): "
              + ", ".join(f"{m} {100 * g:+.1f}" for m, g in gains.items()) + ".", ""]
    d = r["digits"]
    s = d["shift"]
    probe = d["linear_probe_10_per_class"]
    lines += ["## Cross-domain: Fashion-MNIST model vs scikit-learn digits (8x8, resized to 28x28)", "",
              f"Shift: MMD² {s['mmd2']:.3f} (p = {s['mmd_p_value']:.3f}), proxy A-distance "
              f"{s['proxy_a_distance']:.2f}, label total variation {s['label_total_variation']:.2f} "
              f"({s['shared_classes']} shared classes). Verdict: {d['verdict']}.", "",
              "The label sets are disjoint, so the source classifier cannot be scored on digits. Instead: a "
              "logistic-regression probe on the frozen features from 10 labelled digits per class, scored on the "
              "digits test split (360 images), before and after AdaBN on the 1,437 unlabelled digits training "
              f"images: {cell(probe['before adabn'])} before, {cell(probe['after adabn'])} after.", "",
              "## Reading", ""]
    baseline = {spec: t["accuracy"]["source only +1 epoch"]["mean"] for spec, t in r["targets"].items()}
    for m in METHODS[2:]:
        hurt = [spec for spec, t in r["targets"].items() if t["accuracy"][m]["mean"] < baseline[spec]]
        lines.append(f"- {m}: {100 * gains[m]:+.1f} points on average; below the +1-epoch baseline on "
                     + (", ".join(hurt) if hurt else "no target") + ".")
    loss_share = gains["coral"] - gains["target batches, no loss"]
    lines += ["", "CORAL and DANN send target batches through the backbone with every source batch (as TLlib does), so "
              "BatchNorm's running statistics follow both domains; the weight-0 control shows that this alone "
              f"accounts for {100 * gains['target batches, no loss']:+.1f} of CORAL's {100 * gains['coral']:+.1f} "
              f"points (the CORAL loss adds {100 * loss_share:+.1f}), and that DANN's adversarial loss, after one "
              f"epoch with default options, costs {100 * (gains['target batches, no loss'] - gains['dann']):.1f} "
              "points against it. AdaBN, which only re-estimates those statistics on the target, gains most: the "
              "corruptions that change low-level intensity statistics (noise, blur, lowered contrast) are what "
              "BatchNorm statistics can correct (our reading, not tested further), while on the rotated and the "
              "inverted targets every method stays far below the clean source accuracy.", "",
              "## What to expect from adaptation", "",
              "TLlib's published ResNet-50 averages on Office-31 are 79.5% source-only and 86.1% with DANN (+6.6 "
              "points), with an ImageNet-pretrained backbone, many epochs and tuned trade-offs, on real domain "
              "changes (Amazon, webcam, DSLR photos). The runs here are a small CNN, one adaptation epoch and default "
              "options on synthetic corruptions, so they are not comparable one to one: the large AdaBN gains come "
              "from shifts that are mostly BatchNorm statistics, and DANN would need its trade-off and schedule "
              "tuned (and more epochs) before its Office-31 gain could be expected.", ""]
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    if "--markdown" in sys.argv:  # re-render the table from the committed JSON
        saved = json.loads((RESULTS / "domain_adaptation.json").read_text())
        (RESULTS / "domain_adaptation.md").write_text(to_markdown(saved))
    elif "--smoke" in sys.argv:  # one seed, one target, results to a temporary folder: checks the script runs
        main(seeds=(0,), corruptions=("noise",), out=Path(tempfile.mkdtemp(prefix="warmstart-da-smoke-")))
    else:
        main()
