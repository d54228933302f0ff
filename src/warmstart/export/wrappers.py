"""The modules that are exported: what an exported model computes from which named inputs.

Image and vector models export as they are: one input (normalised pixels or features), logits out. A text model's
own forward trims each batch to its longest text, a data-dependent shape an exported graph cannot hold; its export
takes ``input_ids`` and ``attention_mask`` (as a tokenizer gives them, any batch size and sequence length) and
pools over the real tokens exactly as :class:`~warmstart.models.hf.TextEncoder` does.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import TransferModel


class TextClassifierForExport(nn.Module):
    def __init__(self, model: TransferModel):
        super().__init__()
        self.encoder = model.backbone.encoder
        self.pooling = model.backbone.pooling
        self.normalize = model.backbone.normalize
        self.head = model.head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return self.head(pooled)


def is_text_model(model: TransferModel) -> bool:
    return hasattr(model.backbone, "encoder") and hasattr(model.backbone, "pad_id")


def exportable(model: TransferModel) -> tuple[nn.Module, tuple[str, ...]]:
    """The module to export and its input names."""
    if is_text_model(model):
        return TextClassifierForExport(model).eval(), ("input_ids", "attention_mask")
    return model.eval(), ("input",)


def model_inputs(model: TransferModel, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The exported module's inputs for ``x`` as the PyTorch model takes it (token ids for text)."""
    if is_text_model(model):
        return x, (x != model.backbone.pad_id).long()
    return (x,)
