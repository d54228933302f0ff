"""Structured pruning of a transformer's feed-forward blocks: each layer keeps the ``width`` hidden neurons (rows of
its first feed-forward matrix, columns of its second) that carry the most of the block's output.

Why the feed-forward block: at the short inputs of text classification it holds two thirds of a BERT layer's
multiply-adds (``2 * d * 4d`` of the ``4 * d * d + 2 * d * 4d`` per token; attention's ``T * d`` terms are small
for T of a few dozen tokens), so halving it cuts a layer's time by about a third, where dropping attention heads
cuts little. A student of three of MiniLM's layers with half their neurons runs about as fast as one of two whole
layers, and keeps a third layer of attention.

The score of neuron ``j`` of a layer is FLAP's fluctuation (An, Zhao, Yu, Tang & Wang, "Fluctuation-based
adaptive structured pruning for large language models", AAAI 2024), with its bias compensation::

    score_j = Var(a_j) * ||W_out[:, j]||_2 ** 2        b_out += W_out[:, dropped] @ mean(a_dropped)

``a_j``: the neuron's activations (after the nonlinearity) over the real tokens of some training texts;
``W_out[:, j]``: the weights that carry it back to the hidden width. A neuron whose output hardly varies from text
to text is, once its mean is folded into the bias, nearly free to remove; the score is the squared error that
removing it leaves in the block's output. On MiniLM's bottom two or three layers, keeping 384 to 768 of each
block's 1536 neurons, chosen on 512 TREC questions and measured on 256 others, the relative error of the last
hidden state was 0.41-0.50 with these scores, 0.43-0.54 with Wanda's (``||a_j|| * ||W_out[:, j]||``, Sun et al.
2024), 0.45-0.61 by weight magnitude and 0.47-0.60 for a random choice (the mean of three), the lowest of the four
in each of the six settings (benchmarks/results/ffn_pruning_error.md). Fine-tuning (``distill``) then recovers what
is left.

Without texts, :func:`magnitude_scores` (``||W_in[j, :]|| * ||W_out[:, j]||``, no compensation) chooses: used only
where a checkpoint's weights replace the chosen neurons' anyway (rebuilding a saved student) or no texts are at
hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import WarmstartError


def feed_forward_blocks(layers: nn.ModuleList) -> list[tuple[nn.Linear, nn.Linear]]:
    """Each BERT-layout layer's two feed-forward matrices: ``intermediate.dense`` (hidden to neurons) and
    ``output.dense`` (neurons back to hidden)."""
    blocks = []
    for index, layer in enumerate(layers):
        inner = getattr(getattr(layer, "intermediate", None), "dense", None)
        outer = getattr(getattr(layer, "output", None), "dense", None)
        if not (isinstance(inner, nn.Linear) and isinstance(outer, nn.Linear)
                and inner.out_features == outer.in_features):
            raise WarmstartError(f"transformer layer {index} has no BERT-style feed-forward block "
                                 "(intermediate.dense, output.dense), so its neurons cannot be pruned",
                                 hint="drop intermediate_size, or distil into another student (hf:SOURCE)")
        blocks.append((inner, outer))
    return blocks


@dataclass(frozen=True)
class NeuronScores:
    """One feed-forward block's neuron scores and, when they come from texts, the neurons' mean activations (the
    bias that stands in for the dropped ones)."""

    score: torch.Tensor
    mean: torch.Tensor | None = None


def magnitude_scores(layers: nn.ModuleList) -> list[NeuronScores]:
    """Data-free neuron scores: ``||W_in[j, :]|| * ||W_out[:, j]||`` per layer."""
    return [NeuronScores(inner.weight.detach().norm(dim=1) * outer.weight.detach().norm(dim=0))
            for inner, outer in feed_forward_blocks(layers)]


@torch.no_grad()
def activation_scores(encoder: nn.Module, layers: nn.ModuleList, ids: torch.Tensor, pad_id: int, *,
                      batch_size: int = 64) -> list[NeuronScores]:
    """FLAP's fluctuation scores and the mean activations (the module docstring) over the texts ``ids`` (token ids
    padded with ``pad_id``), run through ``encoder`` (a Hugging Face model whose transformer layers are ``layers``)
    in eval mode."""
    blocks = feed_forward_blocks(layers)
    sums = [torch.zeros(inner.out_features, dtype=torch.float64) for inner, _ in blocks]
    squares = [torch.zeros(inner.out_features, dtype=torch.float64) for inner, _ in blocks]
    current: dict[str, torch.Tensor] = {}

    def recorder(index: int):
        def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
            real = output[current["mask"]].double().cpu()  # (real tokens, neurons): padding adds nothing
            sums[index] += real.sum(0)
            squares[index] += real.pow(2).sum(0)
        return hook

    handles = [layer.intermediate.register_forward_hook(recorder(i)) for i, layer in enumerate(layers)]
    was_training, tokens = encoder.training, 0
    encoder.eval()
    try:
        for start in range(0, len(ids), batch_size):
            batch = ids[start:start + batch_size]
            mask = batch != pad_id
            longest = max(int(mask.sum(1).max()), 1)
            batch, mask = batch[:, :longest], mask[:, :longest]
            current["mask"] = mask
            tokens += int(mask.sum())
            encoder(input_ids=batch, attention_mask=mask.long())
    finally:
        for handle in handles:
            handle.remove()
        encoder.train(was_training)
    tokens = max(tokens, 1)
    scores = []
    for total, square, (_, outer) in zip(sums, squares, blocks):
        mean = total / tokens
        variance = (square / tokens - mean.pow(2)).clamp(min=0.0)
        weight = outer.weight.detach().double().cpu().pow(2).sum(0)
        scores.append(NeuronScores((variance * weight).float(), mean.float()))
    return scores


def keep_neurons(layers: nn.ModuleList, scores: Sequence[NeuronScores], width: int) -> list[list[int]]:
    """Cut every layer's feed-forward block to its ``width`` best-scored neurons (kept in their order), in place,
    folding the dropped neurons' mean output into the block's bias where the scores carry means; returns the kept
    neurons' indices per layer. Every layer keeps the same number, as a Hugging Face config has one
    ``intermediate_size``."""
    blocks = feed_forward_blocks(layers)
    current = {inner.out_features for inner, _ in blocks}
    if isinstance(width, bool) or not isinstance(width, int) or not all(1 <= width <= n for n in current):
        raise WarmstartError(f"intermediate_size={width!r}: expected a whole number from 1 to "
                             f"{min(current)}, the neurons of each feed-forward block",
                             hint=f"e.g. intermediate_size={min(current) // 2} for half of them")
    kept = []
    for (inner, outer), scored in zip(blocks, scores):
        index = torch.topk(scored.score, width).indices.sort().values
        weight = outer.weight.detach()
        if scored.mean is not None and outer.bias is not None:
            dropped = torch.ones(len(scored.score), dtype=torch.bool)
            dropped[index] = False
            mean = scored.mean.to(weight.device, weight.dtype)
            outer.bias = nn.Parameter(outer.bias.detach() + weight[:, dropped] @ mean[dropped])
        inner.weight = nn.Parameter(inner.weight.detach()[index].clone())
        if inner.bias is not None:
            inner.bias = nn.Parameter(inner.bias.detach()[index].clone())
        inner.out_features = width
        outer.weight = nn.Parameter(weight[:, index].clone())
        outer.in_features = width
        kept.append(index.tolist())
    return kept
