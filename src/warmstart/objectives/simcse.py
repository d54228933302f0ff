"""Unsupervised SimCSE: a text encoder learns from unlabelled sentences, dropout being the only augmentation.

Gao, Yao & Chen, "SimCSE: Simple Contrastive Learning of Sentence Embeddings", EMNLP 2021. Each batch of sentences
goes through the encoder twice, in training mode, in one forward pass (the batch concatenated with itself), so
every sentence gets two embeddings that differ by their dropout masks; the in-batch InfoNCE loss
(:func:`~warmstart.objectives.contrastive.info_nce_loss`, temperature 0.05) makes each sentence's two embeddings
nearer than any other sentence's. The paper trains BERT at lr 3e-5, batch 64, on a million Wikipedia sentences, and
reports it beating the MLM-pretrained encoder on semantic similarity; as task-adaptive pretraining (Gururangan et
al., ACL 2020) it runs on the target's own texts. It needs no MLM head, so it works with sentence-transformers
encoders such as all-MiniLM-L6-v2.

The paper's unsupervised model trains with an MLP over [CLS] and drops it for use; with mean pooling (the
sentence-transformers way) no MLP is needed, so ``projection_dim`` is 0 by default. Under DDP ``gather`` contrasts
every sentence with the whole global batch, as for SimCLR.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import OBJECTIVES, Objective, check_option, check_projection, check_temperature
from .contrastive import gather_with_gradients, info_nce_loss


@OBJECTIVES.register("simcse")
class SimCSE(Objective):
    """Unsupervised SimCSE (Gao et al. 2021): each text twice through dropout, in-batch negatives; for text."""

    name = "simcse"
    kinds = ("text",)
    transformer_lr = 3e-5  # the paper's, for BERT-base at batch 64

    def __init__(self, *, temperature: float = 0.05, projection_dim: int = 0, gather: bool = True):
        check_temperature(temperature)
        check_projection(projection_dim)
        check_option(isinstance(gather, bool), "gather", "true or false", gather)
        self.temperature, self.projection_dim, self.gather = temperature, projection_dim, gather

    def compute_loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: nn.Module) -> tuple[torch.Tensor, None]:
        # the batch twice in one pass: dropout draws its masks per row, so the two copies differ
        z1, z2 = module(torch.cat([inputs, inputs])).float().chunk(2)
        rows = None
        if self.gather:
            (z1, rows), (z2, _) = gather_with_gradients(z1), gather_with_gradients(z2)
        return info_nce_loss(z1, z2, self.temperature, rows=rows), None

    def epoch_logs(self, examples: int) -> dict[str, Any]:
        return {"texts": examples}
