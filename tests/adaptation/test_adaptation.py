"""Domain adaptation: the gradient reversal layer, the CORAL loss, AdaBN, and adaptation measured on a shifted
target."""

from __future__ import annotations

import statistics

import pytest
import torch

from warmstart import api
from warmstart.adaptation import (ADAPTATIONS, CorrelationAlignmentLoss, DomainAdversarialLoss, FeatureAlignment,
                                  GradientReversal, adapt_batchnorm, create_adaptation, ganin_lambda)
from warmstart.adaptation.dann import domain_discriminator
from warmstart.config import DataConfig, ModelConfig, TrainConfig
from warmstart.errors import WarmstartError
from warmstart.models import create_model


@pytest.mark.parametrize("coefficient", [1.0, 0.25, 3.0])
def test_gradient_reversal_flips_and_scales_the_gradient(coefficient):
    x = torch.randn(5, 3, requires_grad=True)
    upstream = torch.randn(5, 3)
    out = GradientReversal(coefficient)(x)
    assert torch.equal(out, x)  # identity going forward
    out.backward(upstream)
    assert torch.allclose(x.grad, -coefficient * upstream)


def test_ganin_schedule_rises_from_zero_towards_one():
    values = [ganin_lambda(p / 10) for p in range(11)]
    assert values[0] == 0.0 and values[-1] > 0.99
    assert all(a < b for a, b in zip(values, values[1:]))


def test_dann_trains_the_discriminator_and_reverses_the_features_gradient():
    torch.manual_seed(0)
    loss_module = DomainAdversarialLoss(domain_discriminator(4, 8))
    f_s = (torch.randn(16, 4) + 2).requires_grad_()
    f_t = torch.randn(16, 4).requires_grad_()
    loss = loss_module(f_s, f_t)
    loss.backward()
    # descending the features' gradient (reversed) must make the domains *harder* to tell apart: the loss rises
    with torch.no_grad():
        later = loss_module(f_s - 0.1 * f_s.grad, f_t - 0.1 * f_t.grad)
    assert later > loss
    assert all(p.grad is not None for p in loss_module.discriminator.parameters())


def test_coral_loss_is_zero_for_equal_covariances_and_positive_otherwise():
    torch.manual_seed(0)
    f = torch.randn(64, 8)
    coral = CorrelationAlignmentLoss()
    assert float(coral(f, f + 5.0)) == pytest.approx(0.0, abs=1e-6)  # a shifted mean, the same covariance
    assert float(coral(f, f[torch.randperm(64)])) == pytest.approx(0.0, abs=1e-6)
    assert float(coral(f, 3.0 * f)) > 0.1
    manual = ((torch.cov(f.T) - torch.cov(3 * f.T)) ** 2).sum() / (4 * 8 * 8)
    assert float(coral(f, 3.0 * f)) == pytest.approx(float(manual), rel=1e-5)


def test_adabn_changes_only_batchnorm_running_statistics():
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 3, widths=[4, 8]).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = torch.randn(40, 1, 12, 12) * 3 + 1
    count = adapt_batchnorm(model, target, batch_size=20)
    after = model.state_dict()
    statistics_names = {k for k in after if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert count == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for name, tensor in after.items():
        if name in statistics_names:
            continue
        assert torch.equal(tensor, before[name]), name
    changed = [n for n in statistics_names if n.endswith("running_mean") and not torch.equal(after[n], before[n])]
    assert len(changed) == count  # every BatchNorm layer was re-estimated
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    # the stem's statistics are those of the target inputs at that layer (two equal batches: the mean of means)
    with torch.no_grad():
        stem_out = model.backbone.stem[0](target)
    assert torch.allclose(model.backbone.stem[1].running_mean, stem_out.mean(dim=(0, 2, 3)), atol=1e-5)
    assert not any(m.training for m in model.modules())  # the modes are restored


def test_adabn_needs_batchnorm_and_inputs():
    mlp = create_model("mlp", (6,), 2)
    if not any(isinstance(m, torch.nn.BatchNorm1d) for m in mlp.modules()):
        with pytest.raises(WarmstartError, match="no BatchNorm"):
            adapt_batchnorm(mlp, torch.randn(10, 6))
    with pytest.raises(WarmstartError, match="at least 2"):
        adapt_batchnorm(create_model("cnn", (1, 12, 12), 3, widths=[4]), torch.randn(0, 1, 12, 12))


def test_registry_and_options_are_checked():
    assert {"dann", "coral", "adabn"} <= set(ADAPTATIONS.names())
    assert create_adaptation("dann", weight=0.5).describe() == {"name": "dann", "weight": 0.5, "hidden": 256,
                                                                "schedule": "ganin"}
    with pytest.raises(WarmstartError, match="no option"):
        create_adaptation("coral", lam=1)
    with pytest.raises(WarmstartError, match="weight"):
        create_adaptation("coral", weight=-1)
    with pytest.raises(WarmstartError, match="unknown adaptation"):
        create_adaptation("mmd-loss")


def test_feature_alignment_rejects_an_empty_target_and_another_shape():
    model = create_model("cnn", (1, 12, 12), 3, widths=[4])
    with pytest.raises(WarmstartError, match="at least 2"):
        FeatureAlignment(create_adaptation("coral"), model, torch.empty(0, 1, 12, 12), torch.Generator())
    with pytest.raises(WarmstartError, match="shape"):
        FeatureAlignment(create_adaptation("coral"), model, torch.randn(8, 1, 8, 8), torch.Generator())


def test_finetune_rejects_a_target_of_another_shape_and_missing_settings(fashion_subset_npz, tmp_path):
    train = TrainConfig(epochs=1, progress=False)
    source = api.pretrain(DataConfig(fashion_subset_npz, classes="0-2"), model="cnn", out=tmp_path / "src",
                          train=TrainConfig(epochs=1, progress=False))
    with pytest.raises(WarmstartError, match=r"--target-unlabeled 'digits' has inputs of shape 1x8x8.*1x28x28"):
        api.finetune(source.run_dir, DataConfig(fashion_subset_npz, classes="0-2"), train=train,
                     target_unlabeled="digits", adaptation="coral")
    with pytest.raises(WarmstartError, match="needs unlabelled target data"):
        api.finetune(source.run_dir, DataConfig(fashion_subset_npz, classes="0-2"), train=train, adaptation="dann")
    with pytest.raises(WarmstartError, match="no --adaptation"):
        api.finetune(source.run_dir, DataConfig(fashion_subset_npz, classes="0-2"), train=train,
                     target_unlabeled="digits")
    with pytest.raises(WarmstartError, match="do not combine with --from auto"):
        api.finetune("auto", DataConfig(fashion_subset_npz, classes="0-2"), train=train,
                     candidates=[str(source.run_dir)], target_unlabeled=fashion_subset_npz, adaptation="coral")
    with pytest.raises(WarmstartError, match="keeps the backbone frozen"):
        api.finetune(source.run_dir, DataConfig(fashion_subset_npz, classes="0-2"), train=train,
                     strategy="linear-probe", target_unlabeled=fashion_subset_npz, adaptation="dann")


def test_empty_unlabelled_target_is_a_clear_error(fashion_subset_npz, tmp_path):
    import numpy as np

    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 28, 28), np.uint8), y=np.zeros(0, np.int64),
             x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.int64))
    source = api.pretrain(DataConfig(fashion_subset_npz, classes="0-2"), model="cnn",
                          train=TrainConfig(epochs=1, progress=False))
    net_dir = tmp_path / "src"
    from warmstart.models import save_checkpoint

    save_checkpoint(source.model, net_dir / "model", source.info)
    with pytest.raises(WarmstartError, match=r"--target-unlabeled: .*empty.npz.* holds no examples"):
        api.finetune(net_dir, DataConfig(fashion_subset_npz, classes="0-2"), train=TrainConfig(epochs=1,
                     progress=False), target_unlabeled=str(empty), adaptation="adabn")


def _subset(path: str, classes: str = "0-4") -> DataConfig:
    return DataConfig(path, classes=classes, val_fraction=0.0)


def test_adaptation_beats_source_only_on_a_noisy_target_averaged_over_seeds(fashion_subset_npz):
    """Pretrain a small CNN on clean Fashion-MNIST (5 classes); the target is the same data with Gaussian noise
    (severity 5). AdaBN and CORAL-fine-tuning should both beat the source-only model on the target test set."""
    target = DataConfig(fashion_subset_npz, classes="0-4", corruption="noise:5")
    source_only, adabn, coral, coral_baseline = [], [], [], []
    for seed in (0, 1):
        run = api.pretrain(_subset(fashion_subset_npz), model=ModelConfig("cnn", {"widths": [8, 16]}),
                           train=TrainConfig(epochs=2, batch_size=64, lr=3e-3, seed=seed, progress=False))
        model, info = run.model, run.info
        from warmstart.models import save_checkpoint
        import tempfile
        from pathlib import Path

        folder = Path(tempfile.mkdtemp(prefix="warmstart-adapt-test-"))
        save_checkpoint(model, folder / "model", info)
        source_only.append(api.evaluate(folder, target).accuracy)
        adabn.append(api.evaluate(folder, target, target_unlabeled=target).accuracy)
        for method, results in ((None, coral_baseline), ("coral", coral)):
            # the same classes and the same task: the source head is kept, as asked
            tuned = api.finetune(folder, _subset(fashion_subset_npz), target_unlabeled=None if method is None
                                 else target, adaptation=method, keep_head=True,
                                 train=TrainConfig(epochs=1, batch_size=64, seed=seed, progress=False))
            save_checkpoint(tuned.model, folder / f"tuned-{method}" / "model", tuned.info)
            results.append(api.evaluate(folder / f"tuned-{method}", target).accuracy)
    assert statistics.mean(adabn) > statistics.mean(source_only) + 0.05, (adabn, source_only)
    assert statistics.mean(coral) > statistics.mean(coral_baseline), (coral, coral_baseline)


@pytest.mark.parametrize("name", ADAPTATIONS.names())
def test_every_adaptation_runs_through_finetune_and_is_recorded(name, tmp_path):
    """The common contract: each registered method trains (or adapts) a small CNN on digits towards an inverted
    copy, and the run's config and checkpoint record it."""
    source = api.pretrain(DataConfig("digits", classes="0-2", val_fraction=0.0),
                          model=ModelConfig("cnn", {"widths": [4, 8]}), out=tmp_path / "source",
                          train=TrainConfig(epochs=1, progress=False))
    run = api.finetune(source.run_dir, DataConfig("digits", classes="0-2", val_fraction=0.0),
                       target_unlabeled=DataConfig("digits", classes="0-2", corruption="invert:5"), adaptation=name,
                       out=tmp_path / name, train=TrainConfig(epochs=1, progress=False))
    assert run.info.extra["adaptation"]["method"]["name"] == name
    assert run.info.extra["adaptation"]["target_examples"] > 0
    if create_adaptation(name).aligns_features:
        assert "adaptation_loss" in run.history[-1]
    else:
        assert any("re-estimated" in note for note in run.notes)
