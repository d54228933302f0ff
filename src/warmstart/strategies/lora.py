"""LoRA: low-rank adapters beside frozen weights, merged into them when training ends.

Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang & Chen, "LoRA: Low-Rank Adaptation of Large Language Models",
ICLR 2022. A frozen weight ``W`` (d x k) is adapted by a trainable low-rank product::

    h = W x + (alpha / r) * B A x,    A: r x k (random),  B: d x r (zeros, so training starts from W exactly)

On the attention query and value projections of a transformer, r = 8 trains well under 1% of the parameters and
matched full fine-tuning on GLUE. The adapters come from Hugging Face's peft (the ``text`` extra).

How it fits warmstart: the adapters are injected in place inside the backbone's own modules, so every layer group
keeps its identity and now also holds its adapters; the strategy contract (phases, parameter groups, training
mode) works unchanged. When training ends, ``finalize`` merges ``B A`` into ``W`` (peft's ``merge_and_unload``), so
the checkpoint is a plain model of the original architecture, head included: it loads anywhere without peft, and
peft's own trap of a classification head left out of the saved adapter (peft #310, #577) cannot occur. The
checkpoint's training config records the LoRA settings. An interrupted run resumes: ``prepare`` re-injects the
adapters before the saved state (which holds them under peft's names) is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..config import is_int, is_number
from ..errors import WarmstartError, first_line
from ..models import TransferModel
from ..search_space import SearchParam
from .base import STRATEGIES, Strategy, check_option

FALLBACK_TARGET_MODULES = ["query", "value"]  # BERT's attention projections, LoRA's choice in the paper


@STRATEGIES.register("lora")
class LoRA(Strategy):
    """Low-rank adapters on the backbone's attention layers and the head train, then merge in (LoRA, ICLR 2022).

    ``alpha`` scales the update by ``alpha / rank``; ``dropout`` applies to the adapters' input. ``target_modules``
    names layers of the backbone (a name matches a module whose dotted path ends in it); by default peft's choice
    for the Hugging Face model type (``query`` and ``value`` for BERT), else ``query`` and ``value``. Models without
    such layers inside their layer groups (``mlp``, ``cnn``) are refused with an error that says so: LoRA is meant
    for transformer encoders (``--model hf``). After training the adapters are merged into the weights.
    ``head_lr_scale`` multiplies the new head's learning rate (see ``full``).
    """

    name = "lora"
    search_space = Strategy.search_space + (SearchParam("rank", choices=(4, 8, 16)),)
    transformer_lr = 5e-4  # adapters start at zero and need larger steps (Hu et al.: 4e-4 .. 5e-4 on GLUE)

    def __init__(self, *, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 target_modules: Sequence[str] | None = None, head_lr_scale: float = 1.0):
        check_option(is_number(head_lr_scale) and head_lr_scale > 0, "head_lr_scale", "a positive number",
                     head_lr_scale)
        self.head_lr_scale = head_lr_scale
        check_option(is_int(rank) and rank >= 1, "rank", "a positive integer", rank)
        check_option(is_number(alpha) and alpha > 0, "alpha", "a positive number", alpha)
        check_option(is_number(dropout) and 0 <= dropout < 1, "dropout", "a number in [0, 1)", dropout)
        if target_modules is not None:
            check_option(isinstance(target_modules, (list, tuple)) and len(target_modules) > 0
                         and all(isinstance(t, str) and t for t in target_modules), "target_modules",
                         "a list of module names, such as [query, value]", target_modules)
            target_modules = list(target_modules)
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules

    def trains_parameter(self, group: str, name: str, parameter: nn.Parameter) -> bool:
        return group == "head" or ".lora_" in f".{name}"

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return [group for group, module in model.layer_groups()
                if any(self.trains_parameter(group, name, p) for name, p in module.named_parameters())]

    def prepare(self, model: TransferModel, epochs: int = 1) -> None:
        if getattr(self, "adapted_", None) is not model.backbone:  # a second prepare of one model injects nothing
            self._inject(model)
        super().prepare(model, epochs)

    def _inject(self, model: TransferModel) -> None:
        try:
            from peft import LoraConfig, LoraModel
        except ImportError:
            raise WarmstartError("strategy lora needs the package peft",
                                 hint="pip install 'warmstart[text]' (or pip install peft)") from None
        targets = self.target_modules or _default_target_modules(model.backbone)
        matched = [path for path, _ in model.backbone.named_modules()
                   if any(path == t or path.endswith("." + t) for t in targets)]
        if not matched:
            raise WarmstartError(
                f"strategy lora: the {model.arch} model has no layers named {', '.join(targets)} in its backbone "
                "to adapt", hint="LoRA adapts the attention layers of transformer encoders (--model hf); or set "
                "target_modules to names of the backbone's Linear layers")
        group_modules = {id(module) for _, module in model.layer_groups()}
        whole = [path for path, module in model.backbone.named_modules() if path in matched
                 and id(module) in group_modules]
        if whole:
            raise WarmstartError(
                f"strategy lora: on the {model.arch} model, the target layers {', '.join(whole)} are layer groups "
                "themselves, and LoRA only adapts layers inside a group",
                hint="LoRA adapts the attention layers of transformer encoders (--model hf); use bitfit or freeze "
                "on this model")
        config = LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets,
                            bias="none")
        try:
            # LoraModel replaces the target layers of the module it is given in place: the backbone stays itself
            self.lora_ = LoraModel(model.backbone, config, "default")
        except ValueError as exc:  # a target peft cannot adapt (a layer type it does not support)
            raise WarmstartError(f"strategy lora: cannot adapt the {model.arch} model's {', '.join(targets)} "
                                 f"layers ({first_line(exc)})",
                                 hint="set target_modules to names of the backbone's Linear layers") from None
        self.adapted_, self.resolved_target_modules_, self.merged_ = model.backbone, list(targets), False

    def finalize(self, model: TransferModel) -> None:
        """Merge the adapters into the frozen weights: the model becomes a plain one of its own architecture."""
        if getattr(self, "adapted_", None) is model.backbone:
            self.lora_.merge_and_unload()  # in place: each adapted layer becomes its base layer, B A merged in
            self.adapted_ = self.lora_ = None
            self.merged_ = True

    def describe(self) -> dict[str, Any]:
        merged = {"target_modules_resolved": self.resolved_target_modules_, "merged": True} \
            if getattr(self, "merged_", False) else {}
        return {**super().describe(), **merged}


def _default_target_modules(backbone: nn.Module) -> list[str]:
    """peft's default LoRA targets for the backbone's Hugging Face model type; query and value otherwise."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model_type = next((getattr(m.config, "model_type", None) for m in backbone.modules() if hasattr(m, "config")),
                      None)
    return list(DEFAULTS.get(model_type, FALLBACK_TARGET_MODULES))
