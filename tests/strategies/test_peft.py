"""Parameter-efficient fine-tuning: BitFit (biases and head) and LoRA (adapters and head, merged after training).

The common contract (tests/strategies/test_strategies.py) covers both on every model where they apply; here, what
each promises: exactly which parameters train, that only those move, and that a LoRA run saves a plain checkpoint
whose merged weights and trained head give the predictions the adapted model gave.
"""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import example_inputs, tiny_bert_source
from torch import nn

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.engine import Callback, fit
from warmstart.engine.loop import predict_logits
from warmstart.errors import WarmstartError
from warmstart.models import create_model, load_checkpoint
from warmstart.strategies import create_strategy

SHAPES = {"mlp": (1, 8, 8), "cnn": (1, 16, 16), "hf": (12,)}
CPU = torch.device("cpu")


def build(model_name, num_classes=3):
    options = {"source": tiny_bert_source()} if model_name == "hf" else {}
    torch.manual_seed(0)
    return create_model(model_name, SHAPES[model_name], num_classes, **options)


def _count(params):
    return sum(p.numel() for p in params)


def _toy_task(model_name, n=32, seed=0):
    x = example_inputs(model_name, SHAPES[model_name], n, seed=seed)
    return x, torch.arange(n) % 2


# bitfit

@pytest.mark.parametrize("model_name", ["mlp", "cnn", "hf"])
def test_bitfit_trains_exactly_the_backbone_biases_and_the_head(model_name):
    model = build(model_name)
    strategy = create_strategy("bitfit")
    strategy.prepare(model, 2)
    biases = [p for name, p in model.backbone.named_parameters() if name.endswith("bias")]
    expected = _count(biases) + _count(model.head.parameters())
    assert biases and _count(biases) < 0.1 * _count(model.backbone.parameters())
    assert _count(p for p in model.parameters() if p.requires_grad) == expected
    assert _count(p for g in strategy.param_groups(model, 0.01, 0.1) for p in g["params"]) == expected
    assert all(p.ndim == 1 for p in biases)  # so every backbone group is free of weight decay
    assert create_strategy("bitfit").describe() == {"name": "bitfit"}


@pytest.mark.parametrize("model_name", ["mlp", "hf"])
def test_a_bitfit_run_moves_only_the_biases_and_the_head(model_name):
    model = build(model_name, num_classes=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, create_strategy("bitfit"), _toy_task(model_name), None,
        TrainConfig(epochs=2, batch_size=8, lr=0.01, progress=False), device=CPU,
        generator=torch.Generator().manual_seed(0))
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    may_move = {k for k in before if k.startswith("head.") or k.endswith(".bias")}
    assert changed <= may_move
    assert {"head.weight", "head.bias"} <= changed
    assert len(changed - {"head.weight", "head.bias"}) >= 0.5 * len(may_move - {"head.weight", "head.bias"})


def test_bitfit_on_a_cnn_moves_batchnorm_shifts_and_nothing_else_that_trains():
    model = build("cnn", num_classes=2)
    before = {k: v.clone() for k, v in model.named_parameters()}
    fit(model, create_strategy("bitfit"), _toy_task("cnn", n=16), None,
        TrainConfig(epochs=1, batch_size=8, lr=0.01, progress=False), device=CPU,
        generator=torch.Generator().manual_seed(0))
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("head.") or k.endswith(".bias") for k in changed)
    assert not any(k.endswith("conv1.weight") for k in changed)


# lora: what trains, and the merge

def _lora_parameter_count(model, rank):
    """Rank-r factors A (r x in) and B (out x r) on every query and value projection."""
    return sum(rank * (m.in_features + m.out_features) for name, m in model.backbone.named_modules()
               if name.endswith((".query", ".value")) and isinstance(m, nn.Linear))


def test_lora_trains_only_the_adapters_and_the_head():
    model = build("hf")
    expected = _lora_parameter_count(model, rank=8) + _count(model.head.parameters())
    total = _count(model.parameters())
    strategy = create_strategy("lora")
    strategy.prepare(model, 2)
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n or n.startswith("head.") for n in trainable)
    assert _count(trainable.values()) == expected
    assert _count(p for g in strategy.param_groups(model, 0.01, 0.1) for p in g["params"]) == expected
    assert _count(trainable.values()) < 0.01 * total  # frozen: every pretrained weight, the embeddings included
    # the adapters sit inside the layer groups: the groups are the same modules, holding more parameters
    assert [n for n, _ in model.layer_groups()] == ["embeddings", "layer0", "layer1", "head"]
    strategy.prepare(model, 2)  # a second prepare of the same model adds no second adapter
    assert _count(p for p in model.parameters() if p.requires_grad) == expected


def test_lora_options_reach_the_adapters_and_are_checked():
    model = build("hf")
    create_strategy("lora", rank=2, target_modules=["query", "key", "value"]).prepare(model)
    assert _count(p for n, p in model.named_parameters() if ".lora_" in n) == \
        2 * 2 * 3 * (32 + 32)  # 2 layers x 3 projections x rank 2 x (in + out)
    for bad, message in [({"rank": 0}, "rank: expected a positive integer"), ({"alpha": -1}, "alpha"),
                         ({"dropout": 1.0}, r"dropout: expected a number in \[0, 1\)"),
                         ({"target_modules": "query"}, "target_modules: expected a list of module names")]:
        with pytest.raises(WarmstartError, match=message):
            create_strategy("lora", **bad)


def test_lora_refuses_to_replace_a_whole_layer_group():
    with pytest.raises(WarmstartError, match="the target layers 1 are layer groups themselves"):
        create_strategy("lora", target_modules=["1"]).prepare(build("mlp"))


def test_finalize_merges_the_adapters_into_a_plain_model_with_the_same_predictions():
    model = build("hf")
    plain_keys = set(model.state_dict())
    strategy = create_strategy("lora")
    strategy.prepare(model)
    with torch.no_grad():  # as if trained: B starts at zero, which would make the merge trivially right
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.5)
    x = example_inputs("hf", SHAPES["hf"], 8)
    adapted = predict_logits(model, x, CPU)
    strategy.finalize(model)
    assert set(model.state_dict()) == plain_keys
    assert torch.allclose(predict_logits(model, x, CPU), adapted, atol=1e-5)
    assert not torch.allclose(predict_logits(build("hf"), x, CPU), adapted, atol=1e-3)  # the adapters did matter
    assert strategy.describe()["merged"] is True


# lora end to end: finetune, save, load, evaluate

def _reviews_csv(tmp_path):
    good = ["great", "lovely", "excellent", "wonderful", "superb", "delightful"]
    bad = ["awful", "terrible", "dreadful", "horrible", "boring", "poor"]
    # quoted: the texts hold a comma (unquoted, the reader took "a great film" as the text and " lovely acting" as
    # the label, without a word, until text CSV rows with extra fields were refused)
    rows = [f'"a {words[i % 6]} film, {words[(i + 2) % 6]} acting",{label}'
            for i in range(24) for words, label in ((good, "pos"), (bad, "neg"))]
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return DataConfig(str(path), text_column="text", val_fraction=0.0, test_fraction=0.25, max_length=16)


class _Interrupt(Callback):
    def on_epoch_end(self, epoch, logs):  # during epoch 2's callbacks: the state saved is epoch 1's
        if epoch == 2:
            raise KeyboardInterrupt


TRAIN = TrainConfig(epochs=3, batch_size=8, lr=0.005, seed=1, progress=False)


def test_a_lora_run_saves_a_plain_checkpoint_with_merged_weights_and_its_trained_head(tmp_path):
    data = _reviews_csv(tmp_path)
    ids = example_inputs("hf", (16,), 12)
    strategy = create_strategy("lora")
    seen = {}
    finalize = strategy.finalize

    def finalize_and_record(model):  # the adapted model's predictions, just before the merge
        seen["adapter_keys"] = sum(".lora_" in k for k in model.state_dict())
        seen["logits"] = predict_logits(model, ids, CPU)
        finalize(model)

    strategy.finalize = finalize_and_record
    result = warmstart.finetune("hf:" + tiny_bert_source(), data, strategy=strategy, train=TRAIN,
                                out=tmp_path / "run")
    assert seen["adapter_keys"] == 8  # A and B on query and value of 2 layers
    model, info = load_checkpoint(tmp_path / "run")  # strict: the keys of a plain hf model, no peft structure
    assert not any("lora" in k or "base_layer" in k for k in model.state_dict())
    assert torch.allclose(predict_logits(model, ids, CPU), seen["logits"], atol=1e-5)  # the merge is exact
    assert torch.equal(model.head.weight, result.model.head.weight.cpu())
    evaluated = warmstart.evaluate(tmp_path / "run", data, split="test")  # the run's own hold-out
    assert evaluated.accuracy == pytest.approx(result.metrics.accuracy)

    pretrained = build("hf").backbone.encoder.encoder.layer[0].attention.self
    trained = model.backbone.encoder.encoder.layer[0].attention.self
    assert not torch.equal(trained.query.weight, pretrained.query.weight)  # B A merged in
    assert torch.equal(trained.key.weight, pretrained.key.weight)  # not a target: frozen
    assert torch.equal(trained.query.bias, pretrained.query.bias)  # bias="none": frozen

    meta = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    assert meta["training"]["strategy"] == {"name": "lora", "rank": 8, "alpha": 16.0, "dropout": 0.0,
                                            "target_modules": None, "head_lr_scale": 1.0,
                                            "target_modules_resolved": ["query", "value"], "merged": True}
    assert info.extra["training"]["strategy"]["name"] == "lora"


def test_an_interrupted_lora_run_resumes_to_the_same_model(tmp_path):
    data = _reviews_csv(tmp_path)
    source = "hf:" + tiny_bert_source()
    straight = warmstart.finetune(source, data, strategy="lora", train=TRAIN, out=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        warmstart.finetune(source, data, strategy="lora", train=TRAIN, out=tmp_path / "b", callbacks=(_Interrupt(),))
    from safetensors import safe_open

    with safe_open(str(tmp_path / "b" / "state" / "weights.safetensors"), framework="pt") as f:
        assert any(".lora_A." in k for k in f.keys())  # noqa: SIM118 (not a dict); the saved state holds the adapters under peft's names
    resumed = warmstart.finetune(source, data, strategy="lora", train=TRAIN, out=tmp_path / "b", resume=True)
    assert resumed.metrics.confusion_matrix == straight.metrics.confusion_matrix
    a, _ = load_checkpoint(tmp_path / "a")
    b, _ = load_checkpoint(tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
