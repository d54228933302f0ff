"""One table of every text benchmark's results: accuracy per dataset, examples per class and strategy.

Reads the results of benchmarks/text_few_shot.py (benchmarks/results/text_*.json, each from its own command; the
runs with examples written from the class names as rows of their own) and
writes benchmarks/results/text_summary.md. Each cell is the mean ± std over its seeds, from the file named in the
last column; the peers' figures are ../shared/BASELINES.md's. No training happens here.

    .venv/bin/python benchmarks/text_summary.py
"""

from __future__ import annotations

import json

from warmstart.io import write_text

from _common import RESULTS

SOURCES = ["text_few_shot", "text_full_set", "text_fine_tuning", "text_fine_tuning_more", "text_fine_tuning_64",
           "text_fine_tuning_full_set", "text_fine_tuning_full_set_more", "text_setfit", "text_setfit_sst2_32",
           "text_setfit_banking77"]
COLUMNS = ["linear-probe-lbfgs", "full", "lp-ft", "lora", "setfit"]
# ../shared/BASELINES.md: frozen encoder + LogisticRegression (C=1); SetFit 1.2; the Trainer's full fine-tuning
PEERS = {("trec", 8): "probe 0.544", ("trec", 64): "probe 0.760", ("trec", "all"): "probe 0.914, Trainer 0.960",
         ("sst2", 8): "probe 0.607, SetFit 0.621", ("sst2", 32): "SetFit card 0.751", ("sst2", 64): "probe 0.746",
         ("sst2", "all"): "probe 0.811", ("emotion", 8): "probe 0.329, SetFit 0.395 (paper 0.391)",
         ("emotion", 64): "probe 0.464", ("emotion", "all"): "probe 0.687", ("banking77", 8): "probe 0.802",
         ("banking77", "all"): "probe 0.908, Trainer 0.700"}
# the same runs with 8 examples per class written from the class's name (DataConfig.class_name_examples), in the order
# they were measured: a later file's cell replaces an earlier one's (the *_probe files remeasured the probe and lp-ft
# after the fix to its cross-validation; see text_few_shot_class_names.md)
CLASS_NAME_SOURCES = ["text_few_shot_class_names", "text_few_shot_class_names_probe", "text_few_shot_class_names_64",
                      "text_few_shot_class_names_64_probe", "text_few_shot_class_names_banking77"]
CLASS_NAMES = " + 8 from class names"
ORDER = ["trec", "sst2", "emotion", "banking77"]


def main() -> None:
    cells: dict[tuple, dict] = {}
    used = []
    for name in SOURCES + CLASS_NAME_SOURCES:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            continue
        used.append(name)
        variant = CLASS_NAMES if name in CLASS_NAME_SOURCES else ""
        for cell in json.loads(path.read_text())["cells"]:
            cells[cell["dataset"], f"{cell['shots']}{variant}", cell["strategy"]] = {**cell, "source": name}
    rows = sorted({(d, k) for d, k, _ in cells},
                  key=lambda r: (ORDER.index(r[0]), r[1].startswith("all"), r[1].split(" ")[0].zfill(4), r[1]))
    lines = ["# Text transfer with all-MiniLM-L6-v2: every benchmark in one table", "",
             "Test accuracy, mean ± std over 3 sampling seeds (one run on a whole training set); the best of each row "
             f"in bold. Rows \"K{CLASS_NAMES}\": the same sampled examples and recipes, with 8 more per class written "
             "from the class's name into 'This sentence is NAME' (`--class-name-examples 8`). Recipes and commands: "
             "the source files, " + ", ".join(f"[{n}.md]({n}.md)" for n in used)
             + ". Peers: ../shared/BASELINES.md. Written by `python benchmarks/text_summary.py`.", "",
             "| dataset | per class | " + " | ".join(COLUMNS) + " | peers |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for dataset, shots in rows:
        found = {s: cells[dataset, shots, s] for s in COLUMNS if (dataset, shots, s) in cells}
        best = max((c["accuracy_mean"] for c in found.values()), default=None)
        texts = []
        for strategy in COLUMNS:
            c = found.get(strategy)
            if c is None:
                texts.append("-")
                continue
            text = f"{c['accuracy_mean']:.3f}" + (f" ± {c['accuracy_std']:.3f}" if len(c["runs"]) > 1 else "")
            texts.append(f"**{text}**" if c["accuracy_mean"] == best else text)
        peers = PEERS.get((dataset, int(shots) if shots.isdigit() else shots), "-") if CLASS_NAMES not in shots else "-"
        lines.append(f"| {dataset} | {shots} | " + " | ".join(texts) + f" | {peers} |")
    write_text(RESULTS / "text_summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
