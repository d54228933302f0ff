"""Checkpoints: a bit-exact, atomic, self-describing round trip, and clear errors for damaged or foreign files."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file as real_save_file
from torch import nn

from warmstart.errors import WarmstartError
from warmstart.models import CheckpointInfo, create_model, load_checkpoint, read_info, resolve_path, save_checkpoint

checkpoint_module = importlib.import_module("warmstart.models.checkpoint")
WEIGHTS = checkpoint_module.WEIGHTS
METADATA_KEY = checkpoint_module.METADATA_KEY

CLASS_NAMES = ("cat", "dog", "bird")
PREPROCESSING = {"kind": "image", "mean": [0.286], "std": [0.353], "scale": 255.0}
EXTRA = {"data": {"source": "fashion_mnist", "classes": [0, 1, 2]},
         "training": {"epochs": 2, "lr": 0.001, "strategy": "full"},
         "metrics": {"accuracy": 0.75, "macro_f1": 0.5},
         "parent": {"checkpoint": "runs/pre/model/model.safetensors"}}


def info_for(model, *, class_names=CLASS_NAMES, extra=EXTRA) -> CheckpointInfo:
    return CheckpointInfo(arch=model.arch, arch_args=model.arch_args, input_shape=model.input_shape,
                          class_names=tuple(class_names), preprocessing=PREPROCESSING, kind="image", extra=extra)


def trained_cnn(seed: int = 0, steps: int = 3):
    """A small CNN after a few training steps, so that BatchNorm running statistics are no longer their defaults."""
    torch.manual_seed(seed)
    model = create_model("cnn", (1, 16, 16), len(CLASS_NAMES), widths=(4, 8), blocks=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        x = torch.randn(8, 1, 16, 16, generator=generator) * 2 + 0.5
        y = torch.randint(0, len(CLASS_NAMES), (8,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    return model


def inputs(n: int = 6, seed: int = 99) -> torch.Tensor:
    return torch.randn(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def assert_state_equal(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), f"{key} differs after the round trip"


def rewrite(file: Path, *, tensors=None, meta=None) -> None:
    """Rewrite a checkpoint with safetensors directly, changing its tensors and/or its warmstart metadata."""
    with safe_open(str(file), framework="pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
        header = dict(f.metadata())
    if tensors is not None:
        stored = tensors(stored)
    if meta is not None:
        header[METADATA_KEY] = json.dumps(meta(json.loads(header[METADATA_KEY])))
    real_save_file(stored, str(file), metadata=header)


def test_round_trip_is_bit_exact_with_batchnorm_statistics(tmp_path):
    model = trained_cnn()
    bn = model.backbone.stem[1]
    assert int(bn.num_batches_tracked) == 3
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))

    file = save_checkpoint(model, tmp_path / "model", info_for(model))
    assert file == tmp_path / "model" / WEIGHTS
    loaded, info = load_checkpoint(file)

    assert type(loaded) is type(model)
    assert_state_equal(model, loaded)
    loaded.eval()
    x = inputs()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        assert torch.equal(model.forward_features(x), loaded.forward_features(x))


@pytest.mark.parametrize(("arch", "shape", "options"), [
    ("mlp", (20,), {}),
    ("mlp", (1, 8, 8), {"hidden": [16, 8, 4], "dropout": 0.25}),
    ("cnn", (3, 32, 32), {"widths": [4, 8, 16], "blocks": 2}),
])
def test_round_trip_other_architectures(tmp_path, arch, shape, options):
    torch.manual_seed(1)
    model = create_model(arch, shape, len(CLASS_NAMES), **options).eval()
    save_checkpoint(model, tmp_path, info_for(model))
    loaded, info = load_checkpoint(tmp_path)
    assert_state_equal(model, loaded)
    assert info.arch == arch
    assert info.arch_args == model.arch_args
    assert info.input_shape == shape
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(model(x), loaded.eval()(x))


def test_metadata_survives(tmp_path):
    model = trained_cnn()
    save_checkpoint(model, tmp_path / "run" / "model", info_for(model))
    loaded, info = load_checkpoint(tmp_path / "run")

    assert info.arch == "cnn"
    assert info.arch_args == {"widths": [4, 8], "blocks": 1}
    assert info.input_shape == (1, 16, 16)
    assert isinstance(info.input_shape, tuple)
    assert info.class_names == CLASS_NAMES
    assert info.preprocessing == PREPROCESSING
    assert info.kind == "image"
    assert info.extra == EXTRA
    assert (loaded.arch, loaded.arch_args, loaded.input_shape) == (model.arch, model.arch_args, model.input_shape)
    assert loaded.num_classes == len(CLASS_NAMES)

    # read_info gives the same without loading weights, and metadata.json is a readable copy of the header.
    file, info2 = read_info(tmp_path / "run")
    assert info2 == info
    readable = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    with safe_open(str(file), framework="pt") as f:
        header = json.loads(f.metadata()[METADATA_KEY])
    assert readable == header
    assert header["format"] == "warmstart.checkpoint"
    assert header["format_version"] == checkpoint_module.FORMAT_VERSION
    assert {"warmstart_version", "created"} <= header.keys()


def test_saving_twice_overwrites(tmp_path):
    first, second = trained_cnn(seed=0), trained_cnn(seed=1)
    save_checkpoint(first, tmp_path, info_for(first))
    save_checkpoint(second, tmp_path, info_for(second, class_names=("a", "b", "c")))
    loaded, info = load_checkpoint(tmp_path)
    assert_state_equal(second, loaded)
    assert info.class_names == ("a", "b", "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json", WEIGHTS]


def test_resolve_path_accepts_run_folder_model_folder_and_file(tmp_path):
    model = trained_cnn()
    run = tmp_path / "run"
    file = save_checkpoint(model, run / "model", info_for(model))
    for path in (run, run / "model", file, str(run), str(file)):
        assert resolve_path(path) == file
        loaded, _ = load_checkpoint(path)
        assert_state_equal(model, loaded)


def test_resolve_path_rejects_missing(tmp_path):
    with pytest.raises(WarmstartError, match="no such file") as excinfo:
        resolve_path(tmp_path / "nowhere")
    assert "nowhere" in str(excinfo.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmstartError, match=WEIGHTS):
        load_checkpoint(tmp_path / "empty")


def test_write_leaves_no_temporary_files(tmp_path):
    model = trained_cnn()
    for _ in range(3):
        save_checkpoint(model, tmp_path / "model", info_for(model))
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["metadata.json", WEIGHTS]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    old = trained_cnn(seed=0)
    folder = tmp_path / "model"
    file = save_checkpoint(old, folder, info_for(old))
    old_bytes = file.read_bytes()
    old_metadata = (folder / "metadata.json").read_text()

    def half_then_fail(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])
        raise OSError("disk full (injected)")

    monkeypatch.setattr(checkpoint_module, "save_file", half_then_fail)
    new = trained_cnn(seed=1)
    with pytest.raises(WarmstartError, match="cannot be written .disk full .injected"):  # named, with a fix
        save_checkpoint(new, folder, info_for(new, class_names=("x", "y", "z")))

    assert file.read_bytes() == old_bytes
    assert (folder / "metadata.json").read_text() == old_metadata
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", WEIGHTS]
    loaded, info = load_checkpoint(folder)
    assert_state_equal(old, loaded)
    assert info.class_names == CLASS_NAMES


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    def fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module, "save_file", fail)
    model = trained_cnn()
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, tmp_path / "model", info_for(model))
    assert list((tmp_path / "model").iterdir()) == []


def test_truncated_file_is_a_clear_error(tmp_path):
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(WarmstartError, match="truncated"):
        load_checkpoint(file)


def test_missing_key_is_named(tmp_path):
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    rewrite(file, tensors=lambda t: {k: v for k, v in t.items() if k != "backbone.stage2.0.bn1.running_var"})
    with pytest.raises(WarmstartError, match=r"missing keys \['backbone\.stage2\.0\.bn1\.running_var'\]") as e:
        load_checkpoint(file)
    assert "cnn" in str(e.value)
    assert "unexpected" not in str(e.value)


def test_unexpected_key_is_named(tmp_path):
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    rewrite(file, tensors=lambda t: {**t, "backbone.extra.weight": torch.zeros(2)})
    with pytest.raises(WarmstartError, match=r"unexpected keys \['backbone\.extra\.weight'\]") as e:
        load_checkpoint(file)
    assert "missing" not in str(e.value)


def test_weights_of_another_shape_are_named(tmp_path):
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    # The metadata now declares five classes; the stored head has three.
    rewrite(file, meta=lambda m: {**m, "class_names": ["a", "b", "c", "d", "e"]})
    with pytest.raises(WarmstartError, match=r"head\.weight: \(3, 8\) stored, \(5, 8\) expected"):
        load_checkpoint(file)


def test_metadata_declaring_another_architecture(tmp_path):
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    # Two blocks per stage declared, one stored: the second block's keys are missing.
    rewrite(file, meta=lambda m: {**m, "arch_args": {"widths": [4, 8], "blocks": 2}})
    with pytest.raises(WarmstartError, match=r"do not fit the cnn architecture.*missing keys \['backbone\.stage1\.1\."):
        load_checkpoint(file)
    # Declared an MLP: every CNN key is unexpected and every MLP key missing.
    rewrite(file, meta=lambda m: {**m, "arch": "mlp", "arch_args": {"hidden": [8], "dropout": 0.0}})
    with pytest.raises(WarmstartError, match=r"do not fit the mlp.*missing keys \[.*backbone\.1\.weight.*"
                                             r"unexpected keys \['backbone\.st"):
        load_checkpoint(file)


def test_newer_format_version_is_refused(tmp_path):
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    newer = checkpoint_module.FORMAT_VERSION + 1
    rewrite(file, meta=lambda m: {**m, "format_version": newer})
    with pytest.raises(WarmstartError, match=f"format version {newer} is newer") as e:
        read_info(file)
    assert e.value.hint and "upgrade" in e.value.hint
    with pytest.raises(WarmstartError, match="newer"):
        load_checkpoint(file)


def test_foreign_safetensors_file_is_refused(tmp_path):
    file = tmp_path / WEIGHTS
    real_save_file({"w": torch.zeros(3)}, str(file))
    with pytest.raises(WarmstartError, match="not a warmstart checkpoint"):
        load_checkpoint(tmp_path)
    real_save_file({"w": torch.zeros(3)}, str(file), metadata={METADATA_KEY: json.dumps({"format": "other"})})
    with pytest.raises(WarmstartError, match="damaged"):
        load_checkpoint(tmp_path)
    file.write_bytes(b"not safetensors at all")
    with pytest.raises(WarmstartError, match="cannot be read as safetensors"):
        load_checkpoint(tmp_path)


def test_metadata_with_a_missing_field_is_damaged(tmp_path):
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    rewrite(file, meta=lambda m: {k: v for k, v in m.items() if k != "class_names"})
    with pytest.raises(WarmstartError, match="damaged.*class_names"):
        load_checkpoint(file)


def test_save_refuses_info_that_does_not_describe_the_model(tmp_path):
    """A checkpoint that could never be loaded back must not be written."""
    model = trained_cnn()
    with pytest.raises(ValueError, match="does not describe the model"):
        save_checkpoint(model, tmp_path, info_for(model, class_names=("a", "b")))
    wrong_arch = CheckpointInfo(arch="mlp", arch_args={"hidden": [8]}, input_shape=model.input_shape,
                                class_names=CLASS_NAMES, preprocessing={}, kind="image")
    with pytest.raises(ValueError, match="'mlp'"):
        save_checkpoint(model, tmp_path, wrong_arch)
    wrong_shape = CheckpointInfo(arch="cnn", arch_args=model.arch_args, input_shape=(1, 28, 28),
                                 class_names=CLASS_NAMES, preprocessing={}, kind="image")
    with pytest.raises(ValueError, match=r"\(1, 28, 28\)"):
        save_checkpoint(model, tmp_path, wrong_shape)
    assert not (tmp_path / WEIGHTS).exists()


def test_save_accepts_equivalent_arch_args(tmp_path):
    model = trained_cnn()
    info = CheckpointInfo(arch="cnn", arch_args={"blocks": 1, "widths": (4, 8)}, input_shape=[1, 16, 16],
                          class_names=CLASS_NAMES, preprocessing=PREPROCESSING, kind="image")
    save_checkpoint(model, tmp_path, info)
    loaded, _ = load_checkpoint(tmp_path)
    assert_state_equal(model, loaded)


# ---------------------------------------------------------------- metadata validation (issue 14, items 11 and 13)

def _valid_meta(tmp_path) -> tuple[Path, dict]:
    model = trained_cnn()
    file = save_checkpoint(model, tmp_path, info_for(model))
    with safe_open(str(file), framework="pt") as f:
        return file, json.loads(f.metadata()[METADATA_KEY])


@pytest.mark.parametrize("field, value, words", [
    ("class_names", "cat,dog,bird", "'class_names' should be a non-empty list of strings, found 'cat,dog,bird'"),
    ("class_names", ["cat", 1, "bird"], "'class_names' should be a non-empty list of strings"),
    ("class_names", ["cat", "cat", "bird"], "'class_names' should be a list of distinct names"),
    ("class_names", [], "'class_names' should be a non-empty list"),
    ("kind", "audio", "'kind' should be one of image, vector, text, found 'audio'"),
    ("kind", 3, "'kind' should be one of"),
    ("arch", ["cnn"], "'arch' should be an architecture name"),
    ("arch_args", "widths=4", "'arch_args' should be a JSON object"),
    ("input_shape", "1x16x16", "'input_shape' should be a list of 1 to 3 positive integers"),
    ("input_shape", [1, 16, -16], "'input_shape' should be a list of 1 to 3 positive integers"),
    ("input_shape", [1, 16, 16.5], "'input_shape'"),
    ("input_shape", [True, 16, 16], "'input_shape'"),
    ("preprocessing", [0.5], "'preprocessing' should be a JSON object"),
    ("preprocessing", {"kind": "vector", "mean": [0.1], "std": [0.2]}, "'preprocessing.kind' should be 'image'"),
    ("preprocessing", {"kind": "image", "mean": ["a"], "std": [0.2]}, "'preprocessing.mean' should be"),
    ("preprocessing", {"kind": "image", "mean": [0.1], "std": [0.0]}, "'preprocessing.std' should be numbers >= 1e-06"),
    ("preprocessing", {"kind": "image", "mean": [0.1, 0.2], "std": [0.2]}, "'preprocessing.std' should be 2"),
    ("format_version", "one", "'format_version' should be a non-negative integer"),
])
def test_metadata_of_the_wrong_type_or_value_is_named(tmp_path, field, value, words):
    file, _ = _valid_meta(tmp_path)
    rewrite(file, meta=lambda m: {**m, field: value})
    for read in (read_info, load_checkpoint):
        with pytest.raises(WarmstartError) as info:
            read(file)
        assert words in info.value.message and str(file) in info.value.message
        assert info.value.hint


def test_metadata_that_is_not_an_object_is_named(tmp_path):
    file, _ = _valid_meta(tmp_path)
    rewrite(file, meta=lambda m: [m])
    with pytest.raises(WarmstartError, match="should be a JSON object, found 'list'"):
        read_info(file)


def test_arch_args_that_do_not_build_the_model_are_named(tmp_path):
    file, _ = _valid_meta(tmp_path)
    rewrite(file, meta=lambda m: {**m, "arch_args": {**m["arch_args"], "widths": "x"}})
    with pytest.raises(WarmstartError) as info:
        load_checkpoint(file)
    assert info.value.hint


def test_metadata_of_the_right_types_still_loads(tmp_path):
    file, meta = _valid_meta(tmp_path)
    assert meta["preprocessing"]["kind"] == meta["kind"] == "image"
    _, info = load_checkpoint(file)
    assert info.class_names == CLASS_NAMES


@pytest.mark.parametrize("tensors, message", [
    (lambda s: {**s, "head.weight": torch.full_like(s["head.weight"], float("nan"))}, "head.weight holds"),
    (lambda s: {**s, "head.bias": torch.full_like(s["head.bias"], float("-inf"))}, "head.bias holds"),
    (lambda s: {**s, "head.weight": s["head.weight"].to(torch.bool)}, "holds bool values where float weights"),
])
def test_weights_that_compute_nothing_are_refused(tmp_path, tensors, message):
    """A checkpoint of NaN weights was scored at accuracy 0.2 (every prediction class 0) without a word."""
    file = save_checkpoint(trained_cnn(), tmp_path / "ck", info_for(trained_cnn()))
    rewrite(file, tensors=tensors)
    with pytest.raises(WarmstartError, match=message):
        load_checkpoint(file)


def test_a_recorded_std_too_small_to_divide_by_is_refused(tmp_path):
    file = save_checkpoint(trained_cnn(), tmp_path / "ck", info_for(trained_cnn()))
    rewrite(file, meta=lambda m: {**m, "preprocessing": {**m["preprocessing"], "std": [1e-308]}})
    with pytest.raises(WarmstartError, match=r"preprocessing.std.*numbers >= 1e-06"):
        read_info(file)
