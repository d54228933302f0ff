"""Keras models in: real Keras 3 files (made here, on Keras' torch backend), read without Keras, must give Keras'
own outputs within 1e-5 on the same inputs."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

from warmstart.errors import WarmstartError  # noqa: E402
from warmstart.models import create_model, load_checkpoint  # noqa: E402
from warmstart.models.imported import ImportedWeights, imported_architecture, load_imported  # noqa: E402
from warmstart.models.keras_file import read_keras_file  # noqa: E402
from warmstart.models.keras_net import keras_state_dict, layer_specs  # noqa: E402

layers = keras.layers
TOLERANCE = 1e-5


def randomise_batchnorm(model, seed: int = 0) -> None:
    """Moving statistics and scales away from their initial 0 and 1, so that a mix-up of them shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2, n)])


def full_network(path: Path, num_classes: int):
    """The converted network with the source's own head loaded, in eval mode."""
    spec = imported_architecture(ImportedWeights("keras", path), None)
    net = create_model("keras", tuple(spec.options["shape"]), num_classes, **spec.options)
    net.load_state_dict({**net.state_dict(), **keras_state_dict(net, read_keras_file(path))})
    return net.eval()


def channels_first(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2) if x.ndim == 4 else torch.from_numpy(x)


@pytest.fixture(scope="module")
def mlp_keras():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), layers.Dense(16, activation="relu"), layers.BatchNormalization(),
                              layers.Dropout(0.3), layers.Dense(8, activation="gelu"), layers.Dense(3)])
    randomise_batchnorm(model)
    return model


@pytest.fixture(scope="module")
def cnn_keras():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((12, 10, 3)), layers.Conv2D(4, 3, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.Conv2D(6, 3, strides=2, padding="same"), layers.LeakyReLU(), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(10, activation="tanh"), layers.Dense(5, activation="softmax")])
    randomise_batchnorm(model, 1)
    return model


def test_mlp_parity_keras_format(mlp_keras, tmp_path):
    mlp_keras.save(tmp_path / "mlp.keras")
    x = np.random.default_rng(0).normal(size=(16, 20)).astype(np.float32)
    net = full_network(tmp_path / "mlp.keras", 3)
    with torch.no_grad():
        ours = net(channels_first(x)).numpy()
    theirs = np.asarray(mlp_keras.predict(x, verbose=0))
    assert np.abs(ours - theirs).max() < TOLERANCE
    assert np.abs(theirs).max() > 0.1  # not a trivial agreement on zeros
    assert [name for name, _ in net.layer_groups()] == ["dense", "batch_normalization", "dense_1", "head"]
    bn = net.backbone.batch_normalization.core
    assert bn.eps == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.01)  # torch's = 1 - Keras' 0.99


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_cnn_with_batchnorm_parity(cnn_keras, tmp_path, suffix):
    cnn_keras.save(tmp_path / f"cnn{suffix}")
    x = np.random.default_rng(1).normal(size=(8, 12, 10, 3)).astype(np.float32)
    net = full_network(tmp_path / f"cnn{suffix}", 5)
    assert net.input_shape == (3, 12, 10)  # channels-last (H, W, C) read as warmstart's (C, H, W)
    with torch.no_grad():
        logits = net(channels_first(x))
    probabilities = np.asarray(cnn_keras.predict(x, verbose=0))
    assert np.abs(torch.softmax(logits, 1).numpy() - probabilities).max() < TOLERANCE
    # the logits themselves: Keras' last layer without its softmax
    head = cnn_keras.layers[-1]
    features = keras.Model(cnn_keras.inputs, cnn_keras.layers[-2].output).predict(x, verbose=0)
    keras_logits = np.asarray(features) @ head.get_weights()[0] + head.get_weights()[1]
    assert np.abs(logits.numpy() - keras_logits).max() < TOLERANCE


def legacy_weights_only(model, path: Path) -> None:
    """What Keras 2's ``model.save_weights("x.h5")`` writes (Keras 3 writes it with its legacy saver)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def relu_mlp():
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((20,)), layers.Dense(16, activation="relu", name="hidden1"),
                             layers.Dense(8, activation="relu", name="hidden2"),
                             layers.Dense(3, activation="softmax", name="out")])


@pytest.mark.parametrize("name", ["weights.h5", "model.weights.h5"])
def test_weights_only_into_the_mlp_architecture(relu_mlp, tmp_path, name):
    file = tmp_path / name
    if name == "weights.h5":
        legacy_weights_only(relu_mlp, file)
    else:
        relu_mlp.save_weights(file)  # Keras 3's own weights format
    source = ImportedWeights("keras", file)
    with pytest.raises(WarmstartError, match="(?s)weights-only.*--model mlp"):
        imported_architecture(source, None)
    net = create_model("mlp", (20,), 4, hidden=[16, 8])
    notes = load_imported(net, source)
    assert "not loaded: the target gets a new head" in notes[0]
    x = np.random.default_rng(2).normal(size=(9, 20)).astype(np.float32)
    features = keras.Model(relu_mlp.inputs, relu_mlp.layers[-2].output).predict(x, verbose=0)
    with torch.no_grad():
        ours = net.eval().forward_features(torch.from_numpy(x)).numpy()
    assert np.abs(ours - np.asarray(features)).max() < TOLERANCE
    assert net.pretrained_preprocessing["mean"] == [0.0] * 20  # inputs as they are, as Keras saw them
    wrong = create_model("mlp", (20,), 4, hidden=[16, 9])
    differ = r"shapes differ: Keras layer '(hidden2|dense_1)' \(dense\) \(8, 16\) for backbone.3.weight \(9, 16\)"
    with pytest.raises(WarmstartError, match=differ):
        load_imported(wrong, source)
    notes = load_imported(wrong, source, strict=False)
    assert "skipped" in notes[-1] and "backbone.3.weight" in notes[-1]


def test_weights_only_h5_through_the_command_line(relu_mlp, tmp_path, capsys):
    """finetune --from keras:weights.h5 --model mlp --model-option hidden=[16,8]: the run's checkpoint has Keras'
    backbone (a linear probe leaves it as it was), feature for feature."""
    from cli_runner import run_cli

    legacy_weights_only(relu_mlp, tmp_path / "pretrained_model.h5")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 20)).astype(np.float32)
    np.savez(tmp_path / "target.npz", x=x, y=np.arange(60) % 3)
    code, out, err = run_cli(["finetune", "--from", f"keras:{tmp_path / 'pretrained_model.h5'}", "--model", "mlp",
                      "--model-option", "hidden=[16,8]", "--data", str(tmp_path / "target.npz"),
                      "--strategy", "linear-probe", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"],
                             capsys)
    assert code == 0, err
    net, info = load_checkpoint(tmp_path / "run")
    features = keras.Model(relu_mlp.inputs, relu_mlp.layers[-2].output).predict(x, verbose=0)
    with torch.no_grad():
        ours = net.forward_features(torch.from_numpy(x)).numpy()
    assert np.abs(ours - np.asarray(features)).max() < TOLERANCE
    assert info.preprocessing["mean"] == [0.0] * 20
    code, out, err = run_cli(["finetune", "--from", f"keras:{tmp_path / 'pretrained_model.h5'}", "--model", "mlp",
                              "--model-option", "hidden=[16,9]", "--data", str(tmp_path / "target.npz"),
                              "--out", str(tmp_path / "run2"), "--strict"], capsys)
    assert code == 2 and "backbone.3.weight (9, 16)" in err and "--no-strict" in err


def test_finetune_from_a_full_keras_model_and_reload(cnn_keras, tmp_path):
    """A converted model trains with any strategy, and its checkpoint rebuilds without the Keras file."""
    import warmstart

    cnn_keras.save(tmp_path / "cnn.keras")
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "images.npz", x=rng.uniform(size=(40, 3, 12, 10)).astype(np.float32), y=np.arange(40) % 2)
    result = warmstart.finetune(f"keras:{tmp_path / 'cnn.keras'}", str(tmp_path / "images.npz"),
                                strategy="gradual-unfreeze", train=warmstart.TrainConfig(epochs=2, progress=False),
                                out=tmp_path / "run")
    assert any("not loaded: the target gets a new head" in n for n in result.notes)
    (tmp_path / "cnn.keras").unlink()
    net, info = load_checkpoint(tmp_path / "run")
    assert info.arch == "keras" and net.num_classes == 2


def spec(*body, input_shape=(8,)):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, *input_shape], "name": "input"}}, *body]}}


def dense(name, units, activation=None):
    return {"class_name": "Dense", "config": {"name": name, "units": units, "activation": activation}}


def test_unsupported_layers_are_refused_by_name_and_class():
    lam = {"class_name": "Lambda", "config": {"name": "my_lambda", "function": "<bytecode>"}}
    with pytest.raises(WarmstartError, match=r"'my_lambda' is a Lambda.*never runs") as error:
        layer_specs(spec(dense("d", 4, "relu"), lam, dense("out", 2)), "Keras file m.keras")
    assert "Dense, Conv2D, BatchNormalization" in error.value.hint
    custom = {"class_name": "MyLayer", "config": {"name": "mine"}, "registered_name": "Custom>MyLayer"}
    with pytest.raises(WarmstartError, match="'mine' is a MyLayer"):
        layer_specs(spec(custom, dense("out", 2)), "m")
    with pytest.raises(WarmstartError, match="'d' has the activation 'my_act'"):
        layer_specs(spec(dense("d", 4, "my_act"), dense("out", 2)), "m")
    built = {"class_name": "Sequential", "config": {"name": "s", "layers": [  # no Input: built by its first call
        {**dense("d", 4, "relu"), "build_config": {"input_shape": [None, 5]}}, dense("out", 2)]}}
    assert layer_specs(built, "m")["shape"] == [5]
    with pytest.raises(WarmstartError, match="last Dense layer 'out' has the activation 'sigmoid'"):
        layer_specs(spec(dense("out", 1, "sigmoid")), "m")


def test_a_keras_2_functional_config():
    """Keras 2 stores the input shape as batch_input_shape and each call's inputs as [[name, 0, 0, {}]]."""
    config = {"class_name": "Model", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6, 6, 2], "name": "in"},
         "inbound_nodes": []},
        {"class_name": "Conv2D", "config": {"name": "c", "filters": 3, "kernel_size": [3, 3], "activation": "relu"},
         "inbound_nodes": [[["in", 0, 0, {}]]]},
        {"class_name": "GlobalAveragePooling2D", "config": {"name": "g"}, "inbound_nodes": [[["c", 0, 0, {}]]]},
        {**dense("out", 4, "softmax"), "inbound_nodes": [[["g", 0, 0, {}]]]}]}}
    options = layer_specs(config, "m")
    assert options["shape"] == [2, 6, 6] and [s["type"] for s in options["layers"]] == ["conv2d", "global_average_pool"]
    net = create_model("keras", (2, 6, 6), 4, **options)
    assert net.num_features == 3 and net(torch.zeros(2, 2, 6, 6)).shape == (2, 4)


def test_branching_functional_models_are_refused():
    def node(*names):
        return [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [n, 0, 0]}}
                          for n in names], "kwargs": {}}]

    config = {"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 8], "name": "in"}, "inbound_nodes": []},
        {**dense("a", 4), "inbound_nodes": node("in")}, {**dense("b", 4), "inbound_nodes": node("in")},
        {"class_name": "Add", "config": {"name": "add"}, "inbound_nodes": node("a", "b")}]}}
    with pytest.raises(WarmstartError, match="layer 'b'.*branches and merges"):
        layer_specs(config, "m")


def test_a_keras_file_given_as_a_checkpoint_says_how_to_load_it(relu_mlp, tmp_path):
    from warmstart.models import read_info

    legacy_weights_only(relu_mlp, tmp_path / "pretrained_model.h5")
    with pytest.raises(WarmstartError) as error:
        read_info(tmp_path / "pretrained_model.h5")
    assert "a Keras file" in error.value.message and "--from keras:" in error.value.hint
