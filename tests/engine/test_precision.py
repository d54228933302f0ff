"""Mixed precision, gradient accumulation, channels-last and compile: settings around the same loop."""

from __future__ import annotations

import pytest
import torch

from warmstart.config import TrainConfig
from warmstart.engine import fit
from warmstart.errors import WarmstartError
from warmstart.models import create_model
from warmstart.strategies import create_strategy

CPU = torch.device("cpu")


def _toy_images(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 12, 12, generator=g) + y.view(-1, 1, 1, 1).float()  # class 1 is brighter
    return x, y


def _train(model_name: str, data, seed: int = 0, **config):
    torch.manual_seed(seed)
    options = {"widths": [4, 8]} if model_name == "cnn" else {"hidden": [32]}
    model = create_model(model_name, tuple(data[0].shape[1:]), 2, **options)
    history = fit(model, create_strategy("full"), data, None, TrainConfig(progress=False, seed=seed, **config),
                  device=CPU, generator=torch.Generator().manual_seed(seed))
    return model, history.epochs


def test_k_accumulated_batches_of_b_take_the_step_of_one_batch_of_k_times_b():
    data = _toy_images(96)
    settings = {"epochs": 3, "optimizer": "sgd", "momentum": 0.9, "lr": 0.05, "weight_decay": 1e-4}
    big, big_log = _train("mlp", data, batch_size=32, **settings)
    accumulated, acc_log = _train("mlp", data, batch_size=8, grad_accumulation=4, **settings)
    assert acc_log[0]["steps_per_epoch"] == big_log[0]["steps_per_epoch"] == 3
    for (name, a), b in zip(big.state_dict().items(), accumulated.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name  # float32 rounding: the sums run in another order
    different, _ = _train("mlp", data, batch_size=8, **settings)  # without accumulation: 12 smaller steps
    assert not torch.allclose(big.head.weight, different.head.weight, atol=1e-3)


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_bf16_autocast_training_learns_and_keeps_float32_weights(model_name):
    accuracies = []
    for seed in (0, 1):
        model, log = _train(model_name, _toy_images(96, seed), seed=seed, epochs=4, batch_size=16, lr=0.01,
                            precision="bf16")
        assert log[-1]["train_loss"] < log[0]["train_loss"]
        assert all(p.dtype == torch.float32 for p in model.parameters())
        with torch.no_grad():
            x, y = _toy_images(200, seed=10 + seed)
            accuracies.append(float((model.eval()(x).argmax(1) == y).float().mean()))
    assert sum(accuracies) / len(accuracies) > 0.9, accuracies


def test_fp16_needs_cuda_and_says_so():
    with pytest.raises(WarmstartError, match="--precision fp16 needs a CUDA device"):
        _train("mlp", _toy_images(32), epochs=1, precision="fp16")


@pytest.mark.parametrize("field, value", [("precision", "fp8"), ("grad_accumulation", 0),
                                          ("grad_accumulation", 1.5), ("channels_last", "yes"), ("compile", 1)])
def test_scaling_settings_are_validated(field, value):
    with pytest.raises(WarmstartError, match=f"parameter {field}"):
        TrainConfig(**{field: value})


def test_channels_last_trains_a_cnn_to_the_same_weights():
    data = _toy_images(64)
    settings = {"epochs": 2, "batch_size": 16, "optimizer": "sgd", "lr": 0.05}
    plain, _ = _train("cnn", data, **settings)
    last, _ = _train("cnn", data, channels_last=True, **settings)
    convolution = next(p for p in last.parameters() if p.ndim == 4)
    assert convolution.is_contiguous(memory_format=torch.channels_last)
    for (name, a), b in zip(plain.state_dict().items(), last.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4), name


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one():
    """torch.compile needs a C compiler (inductor); on 2 busy CPU cores compiling took about 70 s."""
    import shutil

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile's CPU backend needs a C compiler, and there is none")
    data = _toy_images(32)
    settings = {"epochs": 2, "batch_size": 16, "optimizer": "sgd", "lr": 0.05}
    eager, _ = _train("mlp", data, **settings)
    compiled, log = _train("mlp", data, compile=True, **settings)
    for (name, a), b in zip(eager.state_dict().items(), compiled.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_scaling_flags_reach_the_run_config_through_the_cli(tmp_path, capsys):
    import json

    from warmstart.cli import main

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--model", "cnn", "--model-option", "widths=[4, 8]", "--epochs", "1",
              "--precision", "bf16", "--grad-accumulation", "2", "--channels-last", "--quiet", "--out", str(out)])
    assert exit_info.value.code == 0, capsys.readouterr().err
    train = json.loads((out / "config.json").read_text())["train"]
    assert (train["precision"], train["grad_accumulation"], train["channels_last"]) == ("bf16", 2, True)
    assert (out / "model" / "model.safetensors").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--precision", "fp16", "--device", "cpu", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "fix: use --precision bf16 on a CPU" in capsys.readouterr().err
