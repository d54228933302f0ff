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


def test_a_legacy_h5_naming_one_layer_twice_is_refused(relu_mlp, tmp_path):
    """layer_names ['hidden1', 'hidden1', 'out'] reads the one group twice: hidden1's weights would load into two
    layers (an edited file; Keras writes each name once)."""
    import h5py

    from warmstart.models.keras_file import read_keras_file

    file = tmp_path / "edited.h5"
    legacy_weights_only(relu_mlp, file)
    with h5py.File(file, "a") as f:
        names = list(f.attrs["layer_names"])
        f.attrs["layer_names"] = [names[0], names[0], *names[2:]]
    with pytest.raises(WarmstartError, match=r"layer_names lists 'hidden1' more than once") as error:
        read_keras_file(file)
    assert str(file) in error.value.message and "save_weights" in error.value.hint


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
    # a legacy .h5 finds a layer's weights by its name: two layers of one name would both load the first's
    with pytest.raises(WarmstartError, match=r"layer name\(s\) 'd' appear more than once") as error:
        layer_specs(spec(dense("d", 8, "relu"), dense("d", 8, "relu"), dense("out", 2)), "m")
    assert "model.save" in error.value.hint


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


# ---------------------------------------------------------------------------------------------------------------
# data_format: each layer's own is read


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_channels_first_cnn_parity(tmp_path, suffix):
    """Keras' Flatten gives (H, W, C) order under channels_first too (it moves the channels last first): the
    converted model must agree with Keras', not flatten warmstart's (C, H, W) as it is."""
    first = {"data_format": "channels_first"}
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((3, 9, 7)), layers.Conv2D(4, 3, padding="same", activation="relu", **first),
        layers.BatchNormalization(axis=1), layers.MaxPooling2D(**first), layers.Conv2D(5, 2, **first),
        layers.Flatten(**first), layers.Dense(6, activation="relu"), layers.Dense(5)])
    randomise_batchnorm(model, 5)
    model.save(tmp_path / f"cf{suffix}")
    net = full_network(tmp_path / f"cf{suffix}", 5)
    assert net.input_shape == (3, 9, 7)  # a channels-first model's input is warmstart's as it is
    x = np.random.default_rng(5).normal(size=(8, 3, 9, 7)).astype(np.float32)
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).numpy()
    theirs = np.asarray(model.predict(x, verbose=0))
    assert np.abs(ours - theirs).max() < TOLERANCE
    assert np.abs(theirs).max() > 0.1


def image_layer(kind, name, **config):
    return {"class_name": kind, "config": {"name": name, **config}}


CONV_LAST = image_layer("Conv2D", "c", filters=3, kernel_size=[3, 3], data_format="channels_last")
CONV_FIRST = image_layer("Conv2D", "c", filters=3, kernel_size=[3, 3], data_format="channels_first")


@pytest.mark.parametrize("body, input_shape, message", [
    # a channels_last Conv2D, then pooling that reads the axes as channels_first: Keras would average over W and C
    ((CONV_LAST, image_layer("GlobalAveragePooling2D", "g", data_format="channels_first")), (6, 6, 2),
     (r"layer 'g' \(GlobalAveragePooling2D\) has data_format 'channels_first', but layer 'c' \(Conv2D\) has "
     r"'channels_last'")),
    ((CONV_FIRST, image_layer("Flatten", "f", data_format="channels_last")), (2, 6, 6),
     r"layer 'f' \(Flatten\) has data_format 'channels_last', but layer 'c' \(Conv2D\) has 'channels_first'"),
    # Keras holds a (H, W) input without a channel axis: a channels_first Flatten orders it (W, H)
    ((image_layer("Flatten", "f", data_format="channels_first"),), (6, 5), r"'f' \(Flatten\) is applied to the 2-D"),
    ((image_layer("BatchNormalization", "bn"), image_layer("Flatten", "f")), (6, 5), "normalises axis -1"),
    # a softmax over Keras' last axis is over W in a channels_first model, warmstart's over the channels
    ((CONV_FIRST, image_layer("Activation", "s", activation="softmax"), image_layer("Flatten", "f",
      data_format="channels_first")), (2, 6, 6), r"'s' \(Activation\) takes the softmax over axis -1"),
    ((CONV_LAST, image_layer("Softmax", "s", axis=1), image_layer("Flatten", "f")), (6, 6, 2),
     r"'s' \(Softmax\) takes the softmax over axis 1"),
    ((image_layer("Conv2D", "c", filters=3, kernel_size=3, data_format="nchw"),), (6, 6, 2),
     r"'c' \(Conv2D\): field 'data_format' is 'nchw'; expected 'channels_last' or 'channels_first'"),
])
def test_what_is_not_converted_exactly_is_refused(body, input_shape, message):
    with pytest.raises(WarmstartError, match=message) as error:
        layer_specs(spec(*body, dense("out", 2), input_shape=input_shape), "Keras file m.keras")
    assert error.value.message.startswith("Keras file m.keras: ") and error.value.hint


def test_one_data_format_converts_and_older_flatten_specs_rebuild_as_they_were():
    options = layer_specs(spec(CONV_FIRST, image_layer("Softmax", "s", axis=1), image_layer("Flatten", "f",
                               data_format="channels_first"), dense("out", 2), input_shape=(2, 6, 6)), "m")
    assert options["shape"] == [2, 6, 6] and not options["channels_last"]
    assert options["layers"][-1] == {"name": "f", "type": "flatten", "order": "hwc", "storage": "flatten"}
    # a checkpoint written before "order" existed keeps the order its channels_first model was converted with
    head = {"name": "out", "type": "dense", "units": 2, "bias": True, "activation": None}
    for channels_last, order in ((False, "chw"), (True, "hwc")):
        net = create_model("keras", (2, 4, 4), 2, shape=[2, 4, 4], channels_last=channels_last,
                           layers=[{"name": "f", "type": "flatten"}], head=head)
        assert net.backbone.f.order == order


# ---------------------------------------------------------------------------------------------------------------
# crafted configs: a .keras file is a zip anyone can edit


@pytest.fixture
def no_large_allocation(monkeypatch):
    """Fail at once, rather than allocate gigabytes, if a tensor of more than 10 million values is made."""
    import math

    def guard(name):
        original = getattr(torch, name)

        def guarded(*size, **kwargs):
            dims = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
            if math.prod(int(d) for d in dims) > 10**7:
                raise AssertionError(f"torch.{name}{tuple(dims)}: a large allocation from a crafted config")
            return original(*size, **kwargs)
        return guarded

    for name in ("empty", "zeros"):
        monkeypatch.setattr(torch, name, guard(name))


@pytest.fixture(scope="module")
def tiny_keras_zip(tmp_path_factory):
    """The members of a real tiny .keras file (8 -> Dense 'dense' 4 -> Dense 'out' 3) and its parsed config.json."""
    import json
    import zipfile

    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((8,), name="input"), layers.Dense(4, activation="relu", name="dense"),
                              layers.Dense(3, activation="softmax", name="out")])
    path = tmp_path_factory.mktemp("crafted") / "tiny.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return members, json.loads(members["config.json"])


def write_keras_zip(members: dict[str, bytes], config, path: Path) -> Path:
    import json
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, json.dumps(config) if name == "config.json" else data)
    return path


def _edit_layer(index, **fields):
    def edit(config):
        config["config"]["layers"][index]["config"].update(fields)
        return config
    return edit


def _without_units(config):
    del config["config"]["layers"][1]["config"]["units"]
    return config


def _set(key, value, index=None):
    def edit(config):
        (config["config"] if index is None else config["config"]["layers"][index])[key] = value
        return config
    return edit


CRAFTED = {
    "units missing": (_without_units, r"layer 'dense' \(Dense\) has no field 'units' \(a positive integer expected\)"),
    "units a string": (_edit_layer(1, units="abc"), (r"layer 'dense' \(Dense\): field 'units' is 'abc'; expected a "
                                                    "positive integer")),
    "units zero": (_edit_layer(1, units=0), r"'dense' \(Dense\): field 'units' is 0; expected a positive integer"),
    "units a float": (_edit_layer(1, units=1e8), r"'units' is 100000000.0; expected a positive integer"),
    # fits the size limit, but not the weights the file holds: refused before the network is built
    "units 1e8": (_edit_layer(1, units=10**8), (r"layer 'dense' \(dense\): its config makes weights of shapes "
                                               r"\{'kernel': \(8, 100000000\), 'bias': \(100000000,\)\}, and the "
                                               r"file holds \{'kernel': \(8, 4\), 'bias': \(4,\)\}")),
    "units 1e10": (_edit_layer(1, units=10**10), (r"layer 'dense' \(dense\) would hold 10,000,000,000 values per "
                                                 r"example, more than any model warmstart converts "
                                                 r"\(2,147,483,648, 2\*\*31\)")),
    "use_bias a string": (_edit_layer(1, use_bias="yes"), (r"'dense' \(Dense\): field 'use_bias' is 'yes'; expected "
                                                          "true or false")),
    "config.json an array": (lambda config: [config], "its config.json is a JSON array, not the JSON object"),
    "config.json null": (lambda config: None, "its config.json is null"),
    "model config a string": (lambda config: {**config, "config": "abc"},
                              r"the model's field 'config' is a string; expected a JSON object holding 'layers'"),
    "layers a string": (_set("layers", "abc"), r"the model's field 'layers' is a string; expected a list of layers"),
    "a layer a string": (lambda config: {**config, "config": {**config["config"], "layers": [
        config["config"]["layers"][0], "dense"]}}, r"layer 1 of the model's 'layers' is a string"),
    "a layer's config a string": (_set("config", "abc", index=1), r"layer 1 \(Dense\): field 'config' is a string"),
    "class_name a list": (_set("class_name", ["Dense"], index=1), (r"field 'class_name' is \['Dense'\]; expected a "
                                                                  "string")),
    "negative input": (_edit_layer(0, batch_shape=[None, -5]), (r"layer 'input' \(InputLayer\): field "
                                                               r"'batch_shape' is \[None, -5\]; expected a list")),
    "float input": (_edit_layer(0, batch_shape=[None, 1e9]), r"'batch_shape' is \[None, 1000000000.0\]"),
    "input a string": (_edit_layer(0, batch_shape="8"), r"'batch_shape' is '8'; expected a list"),
    "huge input": (_edit_layer(0, batch_shape=[None, 10**9]), (r"layer 'dense' \(dense\) would hold 4,000,000,004 "
                                                              "parameters")),
    "huge image input": (_edit_layer(0, batch_shape=[None, 10**5, 10**5, 3]), (r"the input would hold "
                                                                              r"30,000,000,000 values per example")),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_keras_config_is_refused_clearly_before_allocating(tiny_keras_zip, tmp_path, no_large_allocation,
                                                                    case):
    import copy

    members, config = tiny_keras_zip
    edit, message = CRAFTED[case]
    path = write_keras_zip(members, edit(copy.deepcopy(config)), tmp_path / "crafted.keras")
    with pytest.raises(WarmstartError, match=message) as error:
        full_network(path, 3)  # the way --from keras:FILE goes: read, convert the config, build, load
    assert str(path) in error.value.message and "model.save" in error.value.hint


def test_the_unedited_rewritten_file_converts(tiny_keras_zip, tmp_path, no_large_allocation):
    members, config = tiny_keras_zip
    net = full_network(write_keras_zip(members, config, tmp_path / "same.keras"), 3)
    assert net.input_shape == (8,) and net.num_features == 4


@pytest.mark.parametrize("layer, message", [
    (image_layer("Conv2D", "c", filters=3, kernel_size="x"), (r"'c' \(Conv2D\): field 'kernel_size' is 'x'; expected "
                                                             "a positive integer or a pair of them")),
    (image_layer("Conv2D", "c", kernel_size=3), r"'c' \(Conv2D\) has no field 'filters'"),
    (image_layer("Conv2D", "c", filters=3, kernel_size=[3, 3], strides=[0, 1]), r"field 'strides' is \[0, 1\]"),
    (image_layer("Conv2D", "c", filters=3, kernel_size=9), (r"layer 'c' \(conv2d\) would give an output of shape "
                                                           r"\(3, -2, -2\): its window does not fit its input")),
    (image_layer("Conv2D", "c", filters=3, kernel_size=3, groups=3), (r"'c' \(conv2d\) has groups=3, which must "
                                                                     "divide both its 2 input channels")),
    (image_layer("Conv2D", "c", filters=2**30, kernel_size=3), "more than any model warmstart converts"),
    (image_layer("Conv2D", "c", filters=3, kernel_size=3, padding="same", dilation_rate=10**6),
     r"'c' \(conv2d\)'s padded input would hold 8,000,048,000,072 values per example"),
    (image_layer("BatchNormalization", "b", epsilon=float("inf")), r"field 'epsilon' is inf; expected a number of at"),
    (image_layer("MaxPooling2D", "p", pool_size=[2, "2"]), r"'p' \(MaxPooling2D\): field 'pool_size' is \[2, '2'\]"),
    (image_layer("Dropout", "d", rate=2), r"'d' \(Dropout\): field 'rate' is 2; expected a number from 0 to 1"),
    (image_layer("BatchNormalization", "b", momentum="x"), r"'b' \(BatchNormalization\): field 'momentum' is 'x'"),
    (image_layer("LeakyReLU", "l", negative_slope=[0.2]), r"'l' \(LeakyReLU\): field 'negative_slope' is \[0.2\]"),
])
def test_crafted_image_layer_fields_are_refused(layer, message):
    with pytest.raises(WarmstartError, match=message) as error:
        layer_specs(spec(layer, image_layer("Flatten", "f"), dense("out", 2), input_shape=(6, 6, 2)), "Keras file m")
    assert error.value.message.startswith("Keras file m: ") and "model.save" in error.value.hint


def test_crafted_architecture_options_are_refused_before_allocating(no_large_allocation):
    """A checkpoint's arch_args rebuild through the same size checks."""
    head = {"name": "out", "type": "dense", "units": 2, "bias": True, "activation": None}
    huge = {"name": "d", "type": "dense", "units": 10**10, "bias": True, "activation": None}
    with pytest.raises(WarmstartError, match=r"the keras architecture's options: layer 'd' \(dense\) would hold"):
        create_model("keras", (8,), 2, shape=[8], layers=[huge], head=head)
