"""How much of a cut MiniLM's output each way of choosing feed-forward neurons keeps, before any training.

MiniLM's bottom 2 or 3 transformer layers (a ``distill --student layers=0,1`` or ``layers=0,1,2`` student), each
feed-forward block pruned to WIDTH of its 1536 neurons, chosen on 512 TREC training questions; the figure is the
relative error ``||pruned - whole|| / ||whole||`` of the last hidden state on 256 other training questions (lower
is better). The choices:

- ``flap``: warmstart's (:mod:`warmstart.models.ffn_pruning`): the fluctuation ``Var(a_j) * ||W_out[:, j]||^2``,
  the dropped neurons' mean folded into the bias (An et al., AAAI 2024);
- ``wanda``: ``||a_j|| * ||W_out[:, j]||`` (Sun et al., ICLR 2024), no compensation;
- ``magnitude``: ``||W_in[j]|| * ||W_out[:, j]||``, no texts;
- ``random``: the mean of 3 random choices.

Deterministic (no training): ``python benchmarks/ffn_pruning_error.py``.
Writes benchmarks/results/ffn_pruning_error.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import numpy as np
import torch

from warmstart.data.preprocess import Tokenization
from warmstart.models import create_model
from warmstart.models.ffn_pruning import NeuronScores, activation_scores, magnitude_scores
from warmstart.models.hf import keep_feed_forward

from _common import RESULTS, command_line, machine_info, write_results

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHOICES = ("flap", "wanda", "magnitude", "random")


def questions(count: int, skip: int) -> np.ndarray:
    with open(SHARED / "trec" / "train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return np.array([row["text"] for row in rows[skip:skip + count]], dtype=object)


def last_hidden(encoder, ids: torch.Tensor) -> torch.Tensor:
    return encoder(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state


@torch.no_grad()
def error(layers: list[int], width: int, choice: str, calibration: torch.Tensor, held_out: torch.Tensor,
          seed: int = 0) -> float:
    encoder = create_model("hf", (32,), 2, source="minilm", layers=layers).backbone.encoder.eval()
    stack = encoder.encoder.layer
    whole = last_hidden(encoder, held_out)
    if choice == "flap":
        scores = activation_scores(encoder, stack, calibration, 0)
    elif choice == "wanda":  # ||a_j|| = sqrt(tokens * (Var + mean^2)): the same statistics, no compensation
        tokens = int((calibration != 0).sum())
        scores = []
        for scored, layer in zip(activation_scores(encoder, stack, calibration, 0), stack):
            column = layer.output.dense.weight.pow(2).sum(0)
            variance = scored.score / column.clamp(min=1e-30)
            scores.append(NeuronScores((tokens * (variance + scored.mean.pow(2))).sqrt() * column.sqrt()))
    elif choice == "magnitude":
        scores = magnitude_scores(stack)
    else:
        generator = torch.Generator().manual_seed(seed)
        scores = [NeuronScores(torch.rand(layer.intermediate.dense.out_features, generator=generator))
                  for layer in stack]
    keep_feed_forward(encoder, width, "minilm", scores)
    return float((last_hidden(encoder, held_out) - whole).norm() / whole.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[768, 512, 384])
    parser.add_argument("--name", default="ffn_pruning_error")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.manual_seed(0)
    tokenize = Tokenization("minilm", 32).apply
    calibration, held_out = tokenize(questions(512, 0)), tokenize(questions(256, 1000))
    rows = []
    for layers in ([0, 1], [0, 1, 2]):
        for width in args.widths:
            row = {"layers": layers, "width": width}
            for choice in CHOICES:
                seeds = range(3) if choice == "random" else range(1)
                row[choice] = statistics.mean(error(layers, width, choice, calibration, held_out, s) for s in seeds)
            rows.append(row)
            print(row, flush=True)
    setting = __doc__.split("\n\n", 1)[1].split("Deterministic")[0].strip()
    lines = ["# Choosing a cut MiniLM's feed-forward neurons: what of its output each choice keeps", "",
             f"Command: `{command_line('benchmarks/ffn_pruning_error.py')}`", "", setting, "",
             "| layers | neurons kept of 1536 | " + " | ".join(CHOICES) + " |",
             "|---|---|" + "---|" * len(CHOICES)]
    for row in rows:
        best = min(row[c] for c in CHOICES)
        cells = [f"**{row[c]:.3f}**" if row[c] == best else f"{row[c]:.3f}" for c in CHOICES]
        lines.append(f"| {','.join(map(str, row['layers']))} | {row['width']} | " + " | ".join(cells) + " |")
    write_results(args.out, args.name, {"rows": rows, "machine": machine_info()}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
