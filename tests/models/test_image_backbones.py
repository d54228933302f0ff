"""timm and torchvision backbones: local weights, grey <-> colour adaptation of the first convolution, the
preprocessing a pretrained model expects (recorded in the checkpoint and reused), learning and transfer, and the
errors a user can meet. Tiny models (timm's test_resnet, torchvision's resnet18 at 32 px) on real Fashion-MNIST."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.errors import WarmstartError
from warmstart.models import create_model, load_checkpoint

timm = pytest.importorskip("timm")


def _save(state: dict, path) -> str:
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def timm_weights(tmp_path_factory) -> tuple[str, dict]:
    """A randomly initialised timm test_resnet (RGB, 1000 classes, as timm publishes it) saved as safetensors."""
    torch.manual_seed(0)
    source = timm.create_model("test_resnet", pretrained=False)
    state = source.state_dict()
    return _save(state, tmp_path_factory.mktemp("timm") / "test_resnet.safetensors"), state


@pytest.fixture(scope="module")
def torchvision_weights(tmp_path_factory) -> tuple[str, dict]:
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    return _save(state, tmp_path_factory.mktemp("tv") / "resnet18.safetensors"), state


def test_timm_loads_a_local_weights_file(timm_weights):
    path, state = timm_weights
    model = create_model("timm", (3, 32, 32), 4, name="test_resnet", weights=path, input_size=32)
    loaded = model.backbone.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            continue  # the classifier is the TransferModel's own head
        assert torch.equal(loaded[key], value), key
    assert model.head.out_features == 4 and model.input_shape == (3, 32, 32)
    pre = model.pretrained_preprocessing
    cfg = timm.models.get_pretrained_cfg("test_resnet")
    assert pre["mean"] == list(cfg.mean) and pre["std"] == list(cfg.std)
    assert pre["interpolation"] == cfg.interpolation and pre["input_size"] == [3, 32, 32]
    assert pre["pretrained_input_size"] == list(cfg.input_size)
    assert model.weights_source == path


def test_timm_grey_input_sums_the_colour_filters(timm_weights):
    path, state = timm_weights
    model = create_model("timm", (1, 32, 32), 4, name="test_resnet", weights=path, input_size=32)
    first = model.backbone.conv1[0].weight
    assert first.shape[1] == 1
    torch.testing.assert_close(first, state["conv1.0.weight"].sum(dim=1, keepdim=True))
    assert len(model.pretrained_preprocessing["mean"]) == 1  # one channel, one mean


def test_timm_pretrained_size_is_the_default_input_size(timm_weights):
    model = create_model("timm", (1, 28, 28), 3, name="test_resnet", weights=timm_weights[0])
    assert model.input_shape == (1, *timm.models.get_pretrained_cfg("test_resnet").input_size[1:])
    scratch = create_model("timm", (1, 28, 28), 3, name="test_resnet")
    assert scratch.input_shape == (1, 28, 28) and scratch.pretrained_preprocessing is None


def test_torchvision_loads_a_local_file_and_adapts_grey(torchvision_weights, tmp_path):
    path, state = torchvision_weights
    model = create_model("torchvision", (1, 32, 32), 3, name="resnet18", weights=path)
    torch.testing.assert_close(model.backbone.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model.backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert model.num_features == 512 and model.input_shape == (1, 224, 224)  # the weights' crop size
    assert model.pretrained_preprocessing["mean"] == pytest.approx([np.mean([0.485, 0.456, 0.406])])
    # a .pth state dict (read with weights_only=True) loads the same
    torch.save(state, tmp_path / "resnet18.pth")
    colour = create_model("torchvision", (3, 32, 32), 3, name="resnet18", weights=str(tmp_path / "resnet18.pth"),
                          input_size=32)
    assert torch.equal(colour.backbone.conv1.weight, state["conv1.weight"])
    assert colour.input_shape == (3, 32, 32)


def test_clear_errors(timm_weights, tmp_path, monkeypatch):
    with pytest.raises(WarmstartError, match="timm has no model called 'no_such_net'"):
        create_model("timm", (3, 32, 32), 2, name="no_such_net")
    with pytest.raises(WarmstartError, match="torchvision has no classification model called 'resnet19'"):
        create_model("torchvision", (3, 32, 32), 2, name="resnet19")
    with pytest.raises(WarmstartError, match=r"weights file .*missing.safetensors.* not found") as missing:
        create_model("timm", (3, 32, 32), 2, name="test_resnet", weights=str(tmp_path / "missing.safetensors"))
    assert "--model-option weights=PATH" in missing.value.hint
    with pytest.raises(WarmstartError, match="test_vit: .*do not fit|test_vit: cannot load"):
        create_model("timm", (3, 32, 32), 2, name="test_vit", weights=timm_weights[0], input_size=32)
    # offline, with empty caches: the model is named, and so is the way to give weights
    import huggingface_hub.constants

    monkeypatch.setenv("WARMSTART_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for arch, name in (("timm", "test_resnet"), ("torchvision", "resnet18")):
        with pytest.raises(WarmstartError, match=f"{arch} model {name}: .*cache.*downloads are off") as offline:
            create_model(arch, (3, 32, 32), 2, name=name, pretrained=True)
        assert "weights=PATH" in offline.value.hint


def test_finetune_from_timm_records_and_reuses_the_preprocessing(fashion_subset_npz, timm_weights, tmp_path):
    data = DataConfig(fashion_subset_npz, classes="0-2", val_fraction=0.0)
    result = warmstart.finetune("timm:test_resnet", data, model=ModelConfig("timm", {"weights": timm_weights[0],
                                                                                    "input_size": 32}),
                                train=TrainConfig(epochs=1, batch_size=64, progress=False), out=tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    pre = meta["preprocessing"]
    assert pre["mean"] == [0.5] and pre["std"] == [0.5] and pre["input_size"] == [1, 32, 32]
    assert pre["source"] == "timm:test_resnet" and pre["interpolation"] == "bilinear"
    assert meta["parent"] == {"pretrained": "timm:test_resnet", "weights": timm_weights[0]}
    assert meta["input_shape"] == [1, 32, 32]
    assert any("resized to 32x32" in note for note in result.notes)
    # evaluate resizes the 28x28 images and normalises them as recorded: the same accuracy as the run's test
    evaluated = warmstart.evaluate(tmp_path / "run", DataConfig(fashion_subset_npz, classes="0-2"))
    assert evaluated.accuracy == pytest.approx(result.metrics.accuracy)
    # predict reads image files, resizes and normalises them the same way
    from PIL import Image

    with np.load(fashion_subset_npz) as npz:
        images, labels = npz["x_test"][:60], npz["y_test"][:60]
    rows = ["path,label"]
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{label}")
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    warmstart.predict(tmp_path / "run", tmp_path / "in.csv", tmp_path / "out.csv")
    predicted = [line.split(",")[2] for line in (tmp_path / "out.csv").read_text().splitlines()[1:]]
    net, info = load_checkpoint(tmp_path / "run")
    x = torch.nn.functional.interpolate(torch.from_numpy(images[:, None] / 255.0).float(), size=(32, 32),
                                        mode="bilinear", antialias=True)
    with torch.no_grad():
        expected = [info.class_names[i] for i in net((x - 0.5) / 0.5).argmax(1).tolist()]
    agreement = np.mean([a == b for a, b in zip(predicted, expected)])
    assert agreement >= 0.9, agreement  # PIL's and torch's resizing differ by a few grey levels


def test_pretrain_a_timm_model_from_scratch_learns(fashion_subset_npz, tmp_path):
    result = warmstart.pretrain(DataConfig(fashion_subset_npz, classes="0-4"),
                                model=ModelConfig("timm", {"name": "test_resnet"}),
                                train=TrainConfig(epochs=3, batch_size=64, lr=3e-3, progress=False),
                                out=tmp_path / "run")
    assert result.metrics.accuracy > 0.6  # chance is 0.2
    meta = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    assert meta["arch"] == "timm" and meta["arch_args"]["name"] == "test_resnet"
    assert "input_size" not in meta["preprocessing"]  # from scratch: the data's own statistics and size
    net, _ = load_checkpoint(tmp_path / "run")
    assert net.input_shape == (1, 28, 28)


@pytest.mark.slow
def test_timm_model_pretrained_by_warmstart_transfers(fashion_subset_npz, tmp_path):
    """test_resnet pretrained on classes 0-4, fine-tuned on 10 images per class of 5-9, beats the same
    architecture from scratch, averaged over 3 seeds."""
    source = warmstart.pretrain(DataConfig(fashion_subset_npz, classes="0-4"),
                                model=ModelConfig("timm", {"name": "test_resnet"}),
                                train=TrainConfig(epochs=4, batch_size=64, lr=3e-3, progress=False),
                                out=tmp_path / "source")
    gains = []
    for seed in range(3):
        target = DataConfig(fashion_subset_npz, classes="5-9", shots=10)
        train = TrainConfig(epochs=15, batch_size=16, seed=seed, progress=False)
        transfer = warmstart.finetune(source.checkpoint, target, train=train)
        scratch = warmstart.finetune(None, target, model=ModelConfig("timm", {"name": "test_resnet"}), train=train)
        gains.append(transfer.metrics.accuracy - scratch.metrics.accuracy)
    assert statistics.mean(gains) > 0.03, gains


def test_cli_finetune_from_torchvision_with_a_weights_file(fashion_subset_npz, torchvision_weights, tmp_path):
    from warmstart.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["finetune", "--from", "torchvision:resnet18", "--model-option", f"weights={torchvision_weights[0]}",
              "--model-option", "input_size=32", "--data", fashion_subset_npz, "--classes", "0-1", "--epochs", "1",
              "--batch-size", "64", "--out", str(tmp_path / "run"), "--quiet"])
    assert exit_.value.code == 0
    meta = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    assert meta["arch"] == "torchvision" and meta["input_shape"] == [1, 32, 32]
    assert meta["parent"]["pretrained"] == "torchvision:resnet18"
    assert meta["preprocessing"]["source"] == "torchvision:resnet18"


def _fake_hub_cache(weights_file: str, tmp_path, monkeypatch) -> None:
    """The hub cache as a download leaves it (models--timm--NAME/snapshots/REVISION/model.safetensors), offline."""
    import shutil

    import huggingface_hub.constants

    hub_id = timm.models.get_pretrained_cfg("test_resnet").hf_hub_id
    repo = tmp_path / "hub" / f"models--{hub_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    shutil.copy(weights_file, repo / "snapshots" / ("0" * 40) / "model.safetensors")
    monkeypatch.setenv("WARMSTART_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_rank_scores_a_cached_timm_candidate(timm_weights, fashion_subset_npz, tmp_path, monkeypatch):
    """`warmstart rank --candidates timm:NAME` resolves the candidate through the timm backbone."""
    _fake_hub_cache(timm_weights[0], tmp_path, monkeypatch)
    result = warmstart.rank(DataConfig(fashion_subset_npz, classes="0-2", shots=10), ["timm:test_resnet"],
                            scores=["logme"])
    assert result.candidates[0].candidate == "timm:test_resnet"
    assert np.isfinite(result.candidates[0].scores["logme"])


def test_offline_timm_reads_its_weights_from_the_hugging_face_cache(timm_weights, tmp_path, monkeypatch):
    """A model downloaded once lies in the hub cache; offline, warmstart finds and loads it there."""
    path, state = timm_weights
    _fake_hub_cache(path, tmp_path, monkeypatch)
    model = create_model("timm", (3, 32, 32), 2, name="test_resnet", pretrained=True, input_size=32)
    assert torch.equal(model.backbone.state_dict()["layer4.0.conv2.weight"], state["layer4.0.conv2.weight"])
    assert model.weights_source.endswith("model.safetensors")
