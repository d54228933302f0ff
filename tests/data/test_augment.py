"""Augmentation presets and batch mixes: shapes, ranges, determinism, mixup's convex targets, the order against
normalisation, training with them, and the errors for data they do not fit. Real Fashion-MNIST images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.data.augment import AUGMENTATIONS, MIXES, BatchAugmentation, augment
from warmstart.errors import WarmstartError


@pytest.fixture(scope="module")
def images(fashion_subset_npz) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(fashion_subset_npz) as npz:
        x = torch.from_numpy(npz["x"][:32, None] / 255.0).float()
        y = torch.from_numpy(npz["y"][:32]).long()
    return x, y


@pytest.mark.parametrize("preset", AUGMENTATIONS.names())
def test_preset_keeps_shape_dtype_range_and_is_seeded(preset, images):
    x, _ = images
    out = augment(x, preset, seed=3)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, augment(x, preset, seed=3))
    if preset == "none":
        assert torch.equal(out, x)
        return
    assert not torch.equal(out, x)
    assert not torch.equal(out, augment(x, preset, seed=4))
    changed = (out - x).abs().flatten(1).amax(1) > 1e-6
    assert changed.float().mean() > 0.5, f"{preset} left most images untouched"


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def test_mixup_targets_are_convex_combinations_of_the_pixels_weights(images):
    x, _ = images
    x = x[:6]
    y = torch.tensor([0, 1, 2, 3, 4, 1])  # every example's neighbour (the batch rolled by one) has another class
    mix = BatchAugmentation("none", "mixup", 1.0, 5, _identity, torch.Generator().manual_seed(0))
    out, targets = mix(x, y)
    assert targets.shape == (6, 5)
    torch.testing.assert_close(targets.sum(1), torch.ones(6))
    assert (targets >= 0).all()
    lam = float(targets[0, 0])
    assert 0 < lam < 1
    one_hot = torch.nn.functional.one_hot(y, 5).float()
    torch.testing.assert_close(targets, lam * one_hot + (1 - lam) * one_hot.roll(1, 0))
    torch.testing.assert_close(out, lam * x + (1 - lam) * x.roll(1, 0))


def test_cutmix_pastes_a_box_and_weights_labels_by_its_area(images):
    x, _ = images
    x = x[:6]
    y = torch.tensor([0, 1, 2, 3, 4, 1])
    mix = BatchAugmentation("none", "cutmix", 1.0, 5, _identity, torch.Generator().manual_seed(1))
    out, targets = mix(x, y)
    torch.testing.assert_close(targets.sum(1), torch.ones(6))
    pasted = (out != x) & (out == x.roll(1, 0))  # pixels that came from the neighbour (and differ from own)
    own_weight = float(targets[0, y[0]])
    from_neighbour = ((out == x.roll(1, 0)) & (x != x.roll(1, 0))).float().sum() / (x != x.roll(1, 0)).sum()
    assert pasted.any()
    assert abs(float(from_neighbour) - (1 - own_weight)) < 0.1


def test_batch_augmentation_is_seeded_by_the_runs_generator(images):
    x, y = images
    def run(seed):
        transform = BatchAugmentation("trivialaugment", "mixup", 0.4, 10, _identity,
                                      torch.Generator().manual_seed(seed))
        return [transform(x, y) for _ in range(2)]
    a, b, c = run(0), run(0), run(1)
    for (xa, ta), (xb, tb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ta, tb)
    assert not torch.equal(a[0][0], a[1][0]), "each batch draws new parameters"
    assert not torch.equal(a[0][0], c[0][0])
    state = torch.random.get_rng_state()
    run(2)
    assert torch.equal(state, torch.random.get_rng_state()), "torch's global generator is left untouched"


def test_augmentation_happens_before_normalisation(fashion_subset_npz, monkeypatch):
    """The loop gets the images as they are ([0, 1]); the batch transform augments, then normalises with the
    model's recorded statistics."""
    import warmstart.engine.trainer as trainer

    seen = {}
    real_fit = trainer.fit

    def spy(model, strategy, train, val, config, **kwargs):
        transform = kwargs["batch_transform"]
        seen["raw"] = (float(train[0].min()), float(train[0].max()))
        inputs, _ = transform(train[0][:64], train[1][:64])
        seen["inputs_mean"] = float(inputs.mean())
        return real_fit(model, strategy, train, val, config, **kwargs)

    monkeypatch.setattr(trainer, "fit", spy)
    warmstart.finetune(None, DataConfig(fashion_subset_npz, classes="0-1"), model="cnn",
                       train=TrainConfig(epochs=1, augment="light", progress=False))
    assert seen["raw"][0] >= 0.0 and seen["raw"][1] <= 1.0
    assert abs(seen["inputs_mean"]) < 0.3  # normalised by the training set's mean and std, not left in [0, 1]


def test_training_with_augmentation_learns_and_is_reproducible(fashion_subset_npz, tmp_path):
    data = DataConfig(fashion_subset_npz, classes="0-2", val_fraction=0.0)
    train = TrainConfig(epochs=3, batch_size=64, lr=3e-3, augment="light", mix="mixup", mix_alpha=0.4,
                        progress=False)
    first = warmstart.finetune(None, data, model="cnn", train=train, out=tmp_path / "run")
    assert first.metrics.accuracy > 0.7  # chance is 1/3
    again = warmstart.finetune(None, data, model="cnn", train=train)
    assert again.metrics.accuracy == first.metrics.accuracy
    assert [e["train_loss"] for e in again.history] == [e["train_loss"] for e in first.history]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["train"]["augment"], config["train"]["mix"], config["train"]["mix_alpha"]) == ("light", "mixup",
                                                                                                   0.4)


def test_augmentation_refuses_what_it_cannot_augment(fashion_subset_npz, tmp_path):
    rows = ["a,b,label"] + [f"{i % 7},{i % 3},{i % 2}" for i in range(40)]
    (tmp_path / "vectors.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(WarmstartError, match="--augment light: augmentation applies to images.*vector"):
        warmstart.finetune(None, DataConfig(str(tmp_path / "vectors.csv")),
                           train=TrainConfig(epochs=1, augment="light", progress=False))
    with pytest.raises(WarmstartError, match="--mix mixup: linear-probe trains the head on backbone features"):
        warmstart.finetune(None, DataConfig(fashion_subset_npz, classes="0-1"), strategy="linear-probe",
                           model="cnn", train=TrainConfig(epochs=1, mix="mixup", progress=False))
    with pytest.raises(WarmstartError, match="parameter augment: expected one of .*trivialaugment"):
        TrainConfig(augment="heavy")
    with pytest.raises(WarmstartError, match="parameter mix: expected none, cutmix, mixup"):
        TrainConfig(mix="mosaic")
    with pytest.raises(WarmstartError, match="parameter mix_alpha"):
        TrainConfig(mix="mixup", mix_alpha=0)


def test_cli_lists_every_augmentation(capsys):
    from warmstart.cli import main

    with pytest.raises(SystemExit):
        main(["list", "augmentations"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert set(listed) == {"none", "light", "strong", "randaugment", "trivialaugment", "simclr", *MIXES.names()}
    assert {"mixup", "cutmix"} <= set(listed)


def test_an_interrupted_augmented_run_resumes_to_the_same_model(fashion_subset_npz, tmp_path):
    """Each batch's augmentation seed comes from the run's generator, whose state is saved every epoch: a resumed
    run draws the same augmented batches as one that was never interrupted."""
    from warmstart.models import load_checkpoint

    class Interrupt(warmstart.engine.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                raise KeyboardInterrupt

    data = DataConfig(fashion_subset_npz, classes="0-4", shots=10)
    train = TrainConfig(epochs=4, batch_size=16, seed=2, augment="trivialaugment", mix="cutmix", progress=False)
    warmstart.finetune(None, data, model="cnn", train=train, out=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        warmstart.finetune(None, data, model="cnn", train=train, out=tmp_path / "b", callbacks=(Interrupt(),))
    warmstart.finetune(None, data, model="cnn", train=train, out=tmp_path / "b", resume=True)
    a, _ = load_checkpoint(tmp_path / "a")
    b, _ = load_checkpoint(tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_lp_ft_lbfgs_probe_sees_the_clean_normalised_images(fashion_subset_npz, monkeypatch):
    """Only the loop's batches are augmented: lp-ft's L-BFGS probe fits the head on the clean, normalised images."""
    import warmstart.engine.features as features_module
    from warmstart.strategies import create_strategy

    seen = []
    real = features_module.cached_features

    def spy(model, x, *args, **kwargs):
        seen.append(float(x.min()))
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(features_module, "cached_features", spy)
    warmstart.finetune(None, DataConfig(fashion_subset_npz, classes="0-1", shots=10),
                       strategy=create_strategy("lp-ft", probe="lbfgs"), model="cnn",
                       train=TrainConfig(epochs=2, augment="light", progress=False))
    assert seen and min(seen) < 0  # normalised: the background is below the mean
