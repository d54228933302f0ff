"""Masked-language-model continued pretraining: the encoder's own pretraining task, on the target's texts.

Devlin, Chang, Lee & Toutanova, "BERT", NAACL 2019: 15% of the tokens are chosen; 80% of those become [MASK], 10% a
random token, 10% stay; the encoder predicts the originals (cross-entropy over the vocabulary on the chosen tokens
only). Gururangan et al., "Don't Stop Pretraining", ACL 2020, continue it on the task's own unlabelled text
(task-adaptive pretraining, TAPT: +1 to +4 F1 over eight tasks, most in low-resource settings).

It needs the encoder's MLM head, the weights that map hidden states back to the vocabulary: a checkpoint saved as a
masked language model has them (``bert-base-uncased``); sentence-transformers encoders such as all-MiniLM-L6-v2 are
saved without, so :func:`has_mlm_head` says no and ``--adapt-on`` takes SimCSE for them. The head (loaded from the
encoder's source with ``transformers.AutoModelForMaskedLM``) runs on this model's own encoder, is attached while
training (so the saved training state holds it) and dropped by ``finalize``. Its output layer is untied from the
input embeddings (a copy) so that the checkpoint's weights stay plain tensors. Masking is
``transformers.DataCollatorForLanguageModeling``'s.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import is_number
from ..errors import WarmstartError
from ..models import TransferModel
from .base import OBJECTIVES, Objective, check_option

HEAD = "mlm_head"  # the MLM head's attribute on the model while it trains


def _source(model: TransferModel) -> str:
    if model.arch != "hf":
        raise WarmstartError(f"--objective mlm needs a Hugging Face text encoder, and this model is {model.arch}",
                             hint="start from minilm or hf:SOURCE, or use --objective simcse")
    return str(model.arch_args["source"])


def _load_masked_lm(source: str):
    from transformers import AutoModelForMaskedLM

    from ..models.hf import check_safe_weights, load_from_source

    check_safe_weights(source)
    return load_from_source(source, "masked-language-model head", lambda path: AutoModelForMaskedLM.from_pretrained(
        path, use_safetensors=True, output_loading_info=True, trust_remote_code=False))


def _masked_lm_with_head(model: TransferModel):
    """The encoder's source loaded with its MLM head, or None when it holds no trained head weights (only the
    encoder's), cannot be loaded so, or the model is not a pretrained ``hf`` encoder."""
    if model.arch != "hf" or not model.arch_args.get("pretrained", True):
        return None
    try:
        masked_lm, info = _load_masked_lm(_source(model))
    except WarmstartError:
        return None
    prefix = masked_lm.base_model_prefix
    return None if any(not key.startswith(prefix) for key in info["missing_keys"]) else masked_lm


def has_mlm_head(model: TransferModel) -> bool:
    """Whether the encoder's source holds trained MLM head weights (not only the encoder's)."""
    return _masked_lm_with_head(model) is not None


def _without_head(model: TransferModel, flag: str) -> WarmstartError:
    return WarmstartError(f"{flag} mlm: the encoder {_source(model)!r} was saved without a masked-language-model "
                          "head", hint=f"use {flag} simcse")


@OBJECTIVES.register("mlm")
class MaskedLanguageModel(Objective):
    """Masked-language-model continued pretraining (BERT's task; Gururangan et al. 2020's TAPT); text encoders with an
    MLM head."""

    name = "mlm"
    kinds = ("text",)
    contrastive = False
    transformer_lr = 1e-4  # Gururangan et al.'s TAPT rate (RoBERTa, batch 256); lower it for small batches

    def __init__(self, *, probability: float = 0.15):
        check_option(is_number(probability) and 0 < probability < 1, "probability",
                     "a number in (0, 1): the share of tokens masked", probability)
        self.probability = probability

    def check_model(self, model: TransferModel, flag: str = "--objective") -> None:
        if model.arch == "hf" and not has_mlm_head(model):
            raise _without_head(model, flag)

    def prepare(self, model: TransferModel, epochs: int = 1) -> None:
        if not hasattr(model, HEAD):
            from transformers import DataCollatorForLanguageModeling

            from ..models.hf import load_tokenizer

            masked_lm = _masked_lm_with_head(model)  # loaded once: the check and the head are the same load
            if masked_lm is None:
                raise _without_head(model, "--objective")
            encoder = model.backbone.encoder
            setattr(masked_lm, masked_lm.base_model_prefix, encoder)  # the head runs on this model's encoder
            output = masked_lm.get_output_embeddings()
            output.weight = nn.Parameter(output.weight.detach().clone())  # untied: a plain tensor to save
            heads = nn.ModuleDict({name: child for name, child in masked_lm.named_children()
                                   if name != masked_lm.base_model_prefix})
            setattr(model, HEAD, heads.to(next(encoder.parameters()).device))
            self.masked_lm_ = masked_lm
            self.collator_ = DataCollatorForLanguageModeling(load_tokenizer(_source(model)),
                                                             mlm_probability=self.probability)
            self.pad_id_ = model.backbone.pad_id
        super().prepare(model, epochs)

    def param_groups(self, model: TransferModel, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        groups = super().param_groups(model, lr, weight_decay)
        seen = {id(p) for g in groups for p in g["params"]}
        params = [p for p in getattr(model, HEAD).parameters() if id(p) not in seen]
        for suffix, members, wd in (("", [p for p in params if p.ndim > 1], weight_decay),
                                    (".no_decay", [p for p in params if p.ndim <= 1], 0.0)):
            if members:
                groups.append({"params": members, "name": HEAD + suffix, "lr": lr, "lr_scale": 1.0,
                               "weight_decay": wd})
        return groups

    def training_module(self, model: TransferModel) -> nn.Module:
        return self.masked_lm_

    def compute_loss(self, module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: nn.Module) -> tuple[torch.Tensor, None]:
        mask = inputs != self.pad_id_
        longest = max(int(mask.sum(1).max()), 1)  # dynamic padding, as the encoder does
        ids, mask = inputs[:, :longest], mask[:, :longest]
        masked, labels = self.collator_.torch_mask_tokens(ids.cpu().clone())
        out = module(input_ids=masked.to(ids.device), attention_mask=mask.long(), labels=labels.to(ids.device))
        return out.loss, None

    def finalize(self, model: TransferModel) -> None:
        if hasattr(model, HEAD):
            delattr(model, HEAD)
        self.__dict__.pop("masked_lm_", None)
