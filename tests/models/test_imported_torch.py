"""``--from torch:FILE``: a plain state dict, a wrapped training checkpoint, a timm checkpoint, a user's own
``nn.Sequential``, each loaded into a registered architecture; what does not fit is named."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from warmstart.errors import WarmstartError
from warmstart.models import create_model, read_info
from warmstart.models.imported import ImportedWeights, imported_architecture, imported_weights, load_imported
from tests.cli_runner import run_cli


def features(net, x):
    with torch.no_grad():
        return net.eval().forward_features(x)


def test_a_warmstart_layout_state_dict_wrapped_and_prefixed(tmp_path):
    torch.manual_seed(0)
    source = create_model("mlp", (12,), 5, hidden=[8, 6])
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    torch.save(wrapped, tmp_path / "model.pt")
    net = create_model("mlp", (12,), 2, hidden=[8, 6])
    notes = load_imported(net, imported_weights(f"torch:{tmp_path / 'model.pt'}"))
    x = torch.randn(4, 12)
    assert torch.equal(features(net, x), features(source, x))
    assert "head.bias, head.weight) is not loaded" in notes[0]
    assert not torch.equal(net.head.weight[:2], source.head.weight[:2])  # a new head


def test_a_users_own_sequential_is_matched_by_position(tmp_path):
    torch.manual_seed(1)
    theirs = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    save_file(theirs.state_dict(), tmp_path / "model.safetensors")
    net = create_model("mlp", (12,), 3, hidden=[8, 6])
    notes = load_imported(net, imported_weights(f"torch:{tmp_path / 'model.safetensors'}"))
    x = torch.randn(4, 12)
    assert torch.allclose(features(net, x), theirs[:4](x))
    assert any("matched by position" in n for n in notes)
    with pytest.raises(WarmstartError, match=r"tensor 2 is 2.weight \(6, 8\) in the file, backbone.3.weight \(5, 8\)"):
        load_imported(create_model("mlp", (12,), 3, hidden=[8, 5]), ImportedWeights("torch", tmp_path /
                                                                                      "model.safetensors"))


def test_strict_names_missing_and_unexpected_keys(tmp_path):
    torch.manual_seed(2)
    state = create_model("mlp", (12,), 3, hidden=[8, 6]).state_dict()
    state["backbone.9.weight"] = torch.zeros(2)
    del state["backbone.3.bias"]
    torch.save(state, tmp_path / "model.pth")
    source = imported_weights(f"torch:{tmp_path / 'model.pth'}")
    with pytest.raises(WarmstartError, match=r"missing from the file: backbone.3.bias; not in the mlp model: "
                                             r"backbone.9.weight") as error:
        load_imported(create_model("mlp", (12,), 3, hidden=[8, 6]), source)
    assert "--no-strict" in error.value.hint
    notes = load_imported(create_model("mlp", (12,), 3, hidden=[8, 6]), source, strict=False)
    assert "loaded 3 tensors" in notes[0] and "backbone.3.bias" in notes[1] and "backbone.9.weight" in notes[1]


def test_a_timm_checkpoint_into_the_timm_family(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(3)
    theirs = timm.create_model("test_resnet", num_classes=7)
    torch.save({"state_dict": theirs.state_dict(), "arch": "test_resnet"}, tmp_path / "checkpoint.pth.tar")
    net = create_model("timm", (3, 32, 32), 2, name="test_resnet")
    notes = load_imported(net, ImportedWeights("torch", tmp_path / "checkpoint.pth.tar"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = theirs.eval().forward_head(theirs.forward_features(x), pre_logits=True)
    assert torch.allclose(features(net, x), expected, atol=1e-5)
    assert "classifier (head.bias, head.weight)" in notes[0]  # timm's fc, recognised as the classifier


def test_a_torchvision_state_dict_into_the_torchvision_family(tmp_path):
    import torchvision

    torch.manual_seed(4)
    theirs = torchvision.models.resnet18(num_classes=7)
    torch.save(theirs.state_dict(), tmp_path / "resnet18.pth")
    net = create_model("torchvision", (3, 32, 32), 2, name="resnet18")
    notes = load_imported(net, ImportedWeights("torch", tmp_path / "resnet18.pth"))
    theirs.fc = nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(features(net, x), theirs.eval()(x), atol=1e-5)
    assert "classifier (head.bias, head.weight)" in notes[0]  # torchvision's fc, recognised as the classifier


def test_torch_source_needs_an_architecture_and_a_file(tmp_path):
    torch.save({}, tmp_path / "empty.pt")
    with pytest.raises(WarmstartError, match="no such file"):
        imported_weights("torch:nowhere.pt")
    with pytest.raises(WarmstartError, match="holds no architecture") as error:
        imported_architecture(imported_weights(f"torch:{tmp_path / 'empty.pt'}"), None)
    assert "--model" in error.value.hint
    with pytest.raises(WarmstartError, match="not a state dict of tensors"):
        load_imported(create_model("mlp", (4,), 2), imported_weights(f"torch:{tmp_path / 'empty.pt'}"))


def test_a_pytorch_file_given_as_a_checkpoint_says_how_to_load_it(tmp_path):
    torch.save(create_model("mlp", (4,), 2).state_dict(), tmp_path / "model.pt")
    with pytest.raises(WarmstartError) as error:
        read_info(tmp_path / "model.pt")
    assert "a PyTorch file" in error.value.message and f"--from torch:{tmp_path / 'model.pt'} --model" in \
        error.value.hint


def test_safetensors_tensors_whose_names_do_not_give_their_order_are_not_matched_by_position(tmp_path):
    """safetensors sorts its keys, so b_first, a_second, c_out came back as a_second, b_first: the two layers were
    swapped without a word (torch.save keeps the order, and the same model from a .pt loaded right)."""
    torch.manual_seed(3)
    theirs = nn.Module()
    theirs.b_first, theirs.a_second, theirs.c_out = nn.Linear(12, 12), nn.Linear(12, 12), nn.Linear(12, 3)
    save_file(theirs.state_dict(), tmp_path / "model.safetensors")
    torch.save(theirs.state_dict(), tmp_path / "model.pt")
    with pytest.raises(WarmstartError, match="do not say which module comes first") as error:
        load_imported(create_model("mlp", (12,), 3, hidden=[12, 12]), imported_weights(
            f"torch:{tmp_path / 'model.safetensors'}"))
    assert "torch.save" in error.value.hint
    net = create_model("mlp", (12,), 3, hidden=[12, 12])
    load_imported(net, imported_weights(f"torch:{tmp_path / 'model.pt'}"))
    assert torch.equal(net.state_dict()["backbone.1.weight"], theirs.b_first.weight)


@pytest.mark.parametrize("poison, message", [
    (lambda w: w.fill_(float("nan")), "holds 96 NaN or infinite value"),
    (lambda w: w.fill_(float("inf")), "holds 96 NaN or infinite value"),
    (lambda w: w.to(torch.int64), "holds int64 values where float weights are expected"),
])
def test_weights_that_compute_nothing_are_refused(tmp_path, poison, message):
    """NaN weights used to load, then 'training diverged: lower the learning rate'; integer ones were cast."""
    state = create_model("mlp", (12,), 3, hidden=[8]).state_dict()
    state["backbone.1.weight"] = poison(state["backbone.1.weight"].clone())
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(WarmstartError, match=f"backbone.1.weight {message}"):
        load_imported(create_model("mlp", (12,), 3, hidden=[8]), imported_weights(f"torch:{tmp_path / 'model.pt'}"))


def test_an_empty_weights_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WarmstartError, match=r"empty.pt cannot be read as a PyTorch state dict \(EOFError"):
        load_imported(create_model("mlp", (12,), 3, hidden=[8]), imported_weights(f"torch:{tmp_path / 'empty.pt'}"))


def test_a_relative_weights_file_is_recorded_absolute_so_a_replay_elsewhere_finds_it(tmp_path, monkeypatch, capsys):
    import json

    import warmstart
    from warmstart import ModelConfig, TrainConfig

    torch.manual_seed(0)
    (tmp_path / "work").mkdir()
    torch.save(create_model("mlp", (64,), 10, hidden=[16]).state_dict(), tmp_path / "work" / "mlp.pt")
    monkeypatch.chdir(tmp_path / "work")
    warmstart.finetune("torch:mlp.pt", "digits", model=ModelConfig("mlp", {"hidden": [16]}), out="run",
                       train=TrainConfig(epochs=1, progress=False, trackers=()))
    parent = json.loads((tmp_path / "work" / "run" / "config.json").read_text())["parent"]
    assert parent["pretrained"] == f"torch:{tmp_path / 'work' / 'mlp.pt'}"
    monkeypatch.chdir(tmp_path)  # the replay, from another directory
    code, _, err = run_cli(["finetune", "--config", str(tmp_path / "work" / "run" / "config.json"), "--quiet",
                            "--tracker", "none", "--out", str(tmp_path / "replayed")], capsys)
    assert code == 0, err
