"""The backbone contract, checked for every registered architecture (and any registered later)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from warmstart.errors import WarmstartError
from warmstart.models import MODELS, TransferModel, create_model

from tiny_models import example_inputs, model_options

# Input shapes each architecture must handle; an architecture registered later without an entry here is checked on
# small grey and colour images, which every image model in warmstart must accept.
SHAPES: dict[str, list[tuple[int, ...]]] = {
    "cnn": [(1, 16, 16), (1, 28, 28), (3, 32, 32), (3, 64, 64)],
    "mlp": [(20,), (1, 8, 8)],
    "hf": [(16,)],  # token ids, padded to 16
    "keras": [(1, 16, 16)],  # a converted Keras model's input is fixed by its config (tiny_models)
}
DEFAULT_SHAPES = [(1, 16, 16), (3, 32, 32)]
NUM_CLASSES = 5
BATCH = 3


def shapes_for(name: str) -> list[tuple[int, ...]]:
    return SHAPES.get(name, DEFAULT_SHAPES)


CASES = [(name, shape) for name in MODELS.names() for shape in shapes_for(name)]
CASE_IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, shape in CASES]


def build(name: str, shape: tuple[int, ...], num_classes: int = NUM_CLASSES, seed: int = 0) -> TransferModel:
    torch.manual_seed(seed)
    model = create_model(name, shape, num_classes, **model_options(name))
    model.eval()
    return model


def batch(shape: tuple[int, ...], n: int = BATCH, seed: int = 1, name: str = "") -> torch.Tensor:
    return example_inputs(name, shape, n, seed)


def test_registry_has_the_builtin_architectures():
    assert {"mlp", "cnn"} <= set(MODELS.names())


@pytest.mark.parametrize(("name", "shape"), CASES, ids=CASE_IDS)
def test_logits_shape(name, shape):
    model = build(name, shape)
    assert isinstance(model, TransferModel)
    assert model.arch == name
    assert model.input_shape == shape
    assert model.num_classes == NUM_CLASSES
    with torch.no_grad():
        for n in (1, BATCH):
            logits = model(batch(shape, n, name=name))
            assert logits.shape == (n, NUM_CLASSES)
            assert logits.dtype == torch.float32
            assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("name", "shape"), CASES, ids=CASE_IDS)
def test_forward_is_head_of_features(name, shape):
    model = build(name, shape)
    x = batch(shape, name=name)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (BATCH, model.num_features)
        assert torch.isfinite(features).all()
        assert torch.equal(model(x), model.forward_head(features))
        assert model.forward_head(features).shape == (BATCH, NUM_CLASSES)


@pytest.mark.parametrize(("name", "shape"), CASES, ids=CASE_IDS)
def test_backward_reaches_every_parameter(name, shape):
    model = build(name, shape)
    model.train()
    loss = nn.functional.cross_entropy(model(batch(shape, 4, name=name)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"


@pytest.mark.parametrize(("name", "shape"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("k", [1, 2, 11])
def test_reset_classifier_changes_only_the_head(name, shape, k):
    model = build(name, shape)
    x = batch(shape, name=name)
    backbone_before = {key: v.clone() for key, v in model.backbone.state_dict().items()}
    old_head = model.head
    with torch.no_grad():
        features_before = model.forward_features(x)

    model.reset_classifier(k)

    assert model.num_classes == k
    assert model.head is not old_head
    assert model.head.in_features == model.num_features
    assert model.head.out_features == k
    backbone_after = model.backbone.state_dict()
    assert backbone_after.keys() == backbone_before.keys()
    for key, value in backbone_before.items():
        assert torch.equal(backbone_after[key], value), f"reset_classifier changed backbone tensor {key}"
    # Only the head's parameters differ from before, in name and shape.
    head_keys = {key for key in model.state_dict() if key.startswith("head.")}
    assert head_keys == {"head.weight", "head.bias"}
    assert model.state_dict()["head.weight"].shape == (k, model.num_features)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), features_before)
        assert model(x).shape == (BATCH, k)
    assert model.layer_groups()[-1] == ("head", model.head)
    # The new head is trainable.
    assert all(p.requires_grad for p in model.head.parameters())


def test_reset_classifier_keeps_the_head_on_the_models_device():
    model = build("mlp", (20,))
    model.reset_classifier(3)
    assert model.head.weight.device == next(model.backbone.parameters()).device


@pytest.mark.parametrize(("name", "shape"), CASES, ids=CASE_IDS)
def test_layer_groups_cover_every_parameter_once_in_order(name, shape):
    model = build(name, shape)
    groups = model.layer_groups()
    names = [group_name for group_name, _ in groups]
    assert len(groups) >= 2, "a backbone group and the head at least"
    assert names[-1] == "head"
    assert groups[-1][1] is model.head
    assert len(set(names)) == len(names), f"duplicate group names {names}"
    for group_name, module in groups:
        assert isinstance(module, nn.Module)
        assert any(True for _ in module.parameters()), f"group {group_name} has no parameters"

    grouped = [p for _, module in groups for p in module.parameters()]
    ids = [id(p) for p in grouped]
    assert len(ids) == len(set(ids)), "a parameter appears in more than one group"
    all_ids = [id(p) for p in model.parameters()]
    assert set(ids) == set(all_ids), "the groups together are not exactly the model's parameters"
    # Ordered from input to head, in the order the model registers its parameters ...
    assert ids == all_ids


@pytest.mark.parametrize(("name", "shape"), CASES, ids=CASE_IDS)
def test_layer_groups_run_in_forward_order(name, shape):
    """... and in the order the forward pass actually runs them (a group of a timm or torchvision model is a view of
    the modules that own its parameters: those modules run, the view itself does not)."""
    model = build(name, shape)
    calls: list[str] = []
    handles = [sub.register_forward_hook(lambda m, i, o, group=group: calls.append(group))
               for group, module in model.layer_groups() for sub in module.modules()]
    try:
        with torch.no_grad():
            model(batch(shape, name=name))
    finally:
        for handle in handles:
            handle.remove()
    runs = [group for i, group in enumerate(calls) if i == 0 or calls[i - 1] != group]
    assert runs == [group for group, _ in model.layer_groups()]


@pytest.mark.parametrize(("name", "shape"), CASES, ids=CASE_IDS)
def test_deterministic_given_seed(name, shape):
    a, b = build(name, shape, seed=123), build(name, shape, seed=123)
    c = build(name, shape, seed=124)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert any(not torch.equal(sa[key], sc[key]) for key in sa if sa[key].is_floating_point())
    x = batch(shape, name=name)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("name", MODELS.names())
def test_unknown_option_is_a_clear_error(name):
    with pytest.raises(WarmstartError, match="no_such_option"):
        create_model(name, shapes_for(name)[0], 3, no_such_option=1)


def test_unknown_model_name():
    with pytest.raises(WarmstartError, match="unknown model 'nope'.*cnn.*mlp"):
        create_model("nope", (1, 28, 28), 3)


def test_mlp_default_hidden_layers():
    model = build("mlp", (20,), num_classes=4)
    linears = [m for m in model.backbone.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 64), (64, 32)]
    assert model.num_features == 32
    assert model.arch_args["hidden"] == [64, 32]
    assert [name for name, _ in model.layer_groups()] == ["layer1", "layer2", "head"]
    assert (model.head.in_features, model.head.out_features) == (32, 4)


def test_mlp_flattens_images():
    model = build("mlp", (1, 8, 8))
    first = next(m for m in model.backbone.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 64


def test_mlp_custom_hidden_and_bad_hidden():
    model = create_model("mlp", (20,), 3, hidden=[16])
    assert model.num_features == 16
    assert [name for name, _ in model.layer_groups()] == ["layer1", "head"]
    with pytest.raises(WarmstartError, match="hidden"):
        create_model("mlp", (20,), 3, hidden=[])
    with pytest.raises(WarmstartError, match="hidden"):
        create_model("mlp", (20,), 3, hidden=[8, 0])


def test_cnn_rejects_vector_input():
    with pytest.raises(WarmstartError, match=r"cnn needs images \(C, H, W\).*\(20,\).*mlp"):
        create_model("cnn", (20,), 3)
    with pytest.raises(WarmstartError, match="cnn needs images"):
        create_model("cnn", (28, 28), 3)


def test_cnn_options_shape_the_backbone():
    torch.manual_seed(0)
    model = create_model("cnn", (1, 28, 28), 3, widths=(8, 16), blocks=2)
    assert model.num_features == 16
    assert [name for name, _ in model.layer_groups()] == ["stem", "stage1", "stage2", "head"]
    assert model.arch_args == {"widths": [8, 16], "blocks": 2}
    with torch.no_grad():
        assert model.eval()(batch((1, 28, 28))).shape == (BATCH, 3)


@pytest.mark.parametrize("name", MODELS.names())
def test_reset_classifier_keeps_the_models_dtype(name):
    shape = shapes_for(name)[0]
    model = build(name, shape).double()
    model.reset_classifier(4)
    assert model.head.weight.dtype == torch.float64
    with torch.no_grad():
        x = batch(shape, name=name)
        assert model(x.double() if x.is_floating_point() else x).shape == (BATCH, 4)


@pytest.mark.parametrize("options", [{"widths": []}, {"widths": [8, 0]}, {"blocks": 0}])
def test_cnn_rejects_bad_options(options):
    with pytest.raises(WarmstartError, match="widths.*blocks"):
        create_model("cnn", (1, 16, 16), 3, **options)
