"""SetFit: contrastive fine-tuning of a sentence encoder on pairs of examples, then a logistic-regression head.

Tunstall, Reimers, Jo, Bates, Korat, Wasserblat & Pereg, "Efficient Few-Shot Learning Without Prompts", 2022
(arXiv:2209.11055). With 8 labelled examples per class a classification head trained by cross-entropy sees 8
gradients per class; pairs of examples give it n^2. SetFit first fine-tunes the encoder so that the cosine
similarity of two examples' embeddings is 1 when they share a label and 0 when they do not (sentence-transformers'
``CosineSimilarityLoss``), then fits a logistic regression on the fine-tuned embeddings. The paper reports it
beating full fine-tuning and in-context learning at 8 examples per class, with the same encoder.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..config import TrainConfig, is_int, is_number
from ..errors import WarmstartError
from ..models import TransferModel
from ..search_space import SearchParam
from .base import STRATEGIES, Strategy, check_option


@STRATEGIES.register("setfit")
class SetFit(Strategy):
    """Contrastive pairs train every encoder layer; then the head is fitted by L-BFGS on the new embeddings.

    Each epoch draws ``iterations`` rounds of pairs (SetFit's ``num_iterations``): in each round every training
    example gets one partner of its own class (target similarity 1) and one of another class (target 0), so an
    epoch holds ``2 * iterations * n`` pairs, ``--batch-size`` pairs per step, at ``--lr`` (the paper: 2e-5 and one
    epoch). Fresh pairs are drawn every epoch from the run's seeded generator.

    After every epoch the head is fitted to convergence as an L2 logistic regression on the encoder's embeddings
    of the training examples (engine/logistic.py), so validation accuracy, best-epoch selection and early stopping
    work as with the other strategies. ``C`` is 1 by default, SetFit's (scikit-learn's LogisticRegression default):
    cross-validation (``C="auto"``) is biased here, because the encoder has already learned every training example,
    held-out folds included, so it picks the weakest regularisation on the grid (C=1000 in each run looked at: TREC
    seed 0, emotion seeds 0 and 2).
    Over 3 seeds at 8 per class, C=1 against cross-validation: emotion 0.380 against 0.370, TREC 0.707 against
    0.739, SST-2 0.670 either way (benchmarks/results/text_setfit*.md): differences within seed noise, so the
    default follows SetFit rather than a choice known to be biased. Text and any
    backbone whose embedding similarity means something.

    The pairs train in the one training loop (engine/loop.py): each step embeds both members of ``--batch-size``
    pairs in one forward pass of the backbone (dynamic padding trims the batch to its longest text) and regresses
    their cosine similarity on the pair's target with a mean squared error (sentence-transformers'
    ``CosineSimilarityLoss``). So resume (the pairs replay from the saved generator), gradient accumulation,
    precision and DDP work as for the other strategies.
    """

    name = "setfit"
    # the pair loss reads no label smoothing (and no class weights), and check refuses augmentation: not searched
    search_space = tuple(p for p in Strategy.search_space if p.name not in ("label_smoothing", "augment")) + (
        SearchParam("C", 0.01, 100.0, log=True),)
    transformer_lr = 2e-5  # SetFit's body learning rate
    head_solver = "lbfgs"  # the head is fitted on the embeddings after every epoch
    loss_name = "pair_loss"

    def __init__(self, *, iterations: int = 20, C: float | str = 1.0):
        check_option(is_int(iterations) and iterations >= 1, "iterations", "a positive integer (rounds of pairs "
                     "per epoch; SetFit's num_iterations)", iterations)
        check_option(C == "auto" or (is_number(C) and C > 0), "C", "auto or a positive number", C)
        self.iterations = iterations
        self.C = C

    def unused_settings(self) -> dict[str, str]:
        why = ("setfit trains on pairs with a cosine-similarity loss (no labels to smooth or weigh) and fits its head "
               "by L-BFGS")
        return {"label_smoothing": why, "class_balance": why}

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        # the head is not trained by gradients: it is fitted on the embeddings after each epoch
        return [name for name, _ in model.backbone_groups()]

    def check(self, config: TrainConfig, *, train: tuple[torch.Tensor, torch.Tensor], distributed: bool,
              resume: bool, aligned: bool, augmented: bool) -> None:
        refusals = [(len(train[1].unique()) < 2, "needs at least two classes", "use data with two or more labels"),
                    (aligned, "does not combine with --adaptation", "drop --adaptation"),
                    (augmented, "does not combine with --augment or --mix", "drop them")]
        for refused, what, hint in refusals:
            if refused:
                raise WarmstartError(f"--strategy {self.name} {what}", hint=hint)

    def training_module(self, model: TransferModel) -> nn.Module:
        return model.backbone  # the embeddings are compared; the head is fitted afterwards

    def training_batches(self, train: tuple[torch.Tensor, torch.Tensor], config: TrainConfig,
                         generator: torch.Generator) -> "PairBatches":
        return PairBatches(train[0], train[1], config.batch_size, self.draw_pairs, generator,
                           pairs=2 * self.iterations * len(train[1]))

    def compute_loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: nn.Module) -> tuple[torch.Tensor, None]:
        # inputs: (pairs, 2, ...); first members then second members in one pass, as one batch
        u, v = module(inputs.transpose(0, 1).flatten(0, 1)).float().chunk(2)
        return nn.functional.mse_loss(nn.functional.cosine_similarity(u, v), targets.float()), None

    def epoch_logs(self, examples: int) -> dict[str, Any]:
        return {"pairs": examples}

    def draw_pairs(self, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``(first, second, target)``: example indices of the pairs, shuffled, and 1.0 (same class) or 0.0.

        A positive partner is drawn uniformly from the example's class without the example itself (itself only
        when it is alone in its class); a negative partner uniformly from every other class's examples."""
        labels = labels.cpu().long()
        n = len(labels)
        if len(labels.unique()) < 2:
            raise ValueError("setfit needs examples of at least two classes to draw negative pairs")
        by_class = torch.argsort(labels, stable=True)  # example indices, class by class
        count = torch.bincount(labels)
        start = torch.cumsum(count, 0) - count  # where each class's block begins in by_class
        rank = torch.empty(n, dtype=torch.long)
        rank[by_class] = torch.arange(n) - start[labels[by_class]]  # each example's place in its block
        first, second, target = [], [], []
        for _ in range(self.iterations):
            own, block = count[labels], start[labels]
            r = (torch.rand(n, generator=generator) * (own - 1).clamp(min=1)).long()
            r = r + (r >= rank).long()  # skip the example itself: uniform over the others of its class
            # an example alone in its class is its own positive partner
            positive = torch.where(own > 1, by_class[(block + r).clamp(max=n - 1)], torch.arange(n))
            r = (torch.rand(n, generator=generator) * (n - own)).long()
            negative = by_class[torch.where(r < block, r, r + own)]  # skip the example's own class block
            first += [torch.arange(n), torch.arange(n)]
            second += [positive, negative]
            target += [torch.ones(n), torch.zeros(n)]
        first, second, target = torch.cat(first), torch.cat(second), torch.cat(target)
        order = torch.randperm(len(first), generator=generator)
        return first[order], second[order], target[order]


class PairBatches:
    """An epoch of pairs: ``draw(labels, generator)`` draws fresh pairs each time it is iterated, and each batch is
    ``(inputs, targets)`` with inputs of shape ``(pairs, 2, ...)`` (the two members of each pair) and the target
    similarities. Every pair is used: the last batch may be short."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                 draw: Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, ...]],
                 generator: torch.Generator, *, pairs: int):
        self.x, self.y, self.batch_size, self.draw, self.generator = x, y, batch_size, draw, generator
        self.num_examples = pairs  # what draw returns each epoch

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        first, second, target = self.draw(self.y, self.generator)
        for b in range(len(self)):
            rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield torch.stack([self.x[first[rows]], self.x[second[rows]]], dim=1), target[rows]
