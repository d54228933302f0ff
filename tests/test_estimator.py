"""warmstart.Transfer: the scikit-learn contract (clone, get/set_params, cross_val_score) over the same API."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score

import warmstart
from warmstart import ModelConfig, Transfer


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    pick = np.random.default_rng(0).permutation(len(bunch.target))[:400]
    return bunch.data[pick].astype(np.float32) / 16.0, np.array(list("abcdefghij"))[bunch.target[pick]]


def test_fit_predict_evaluate_save(digits, tmp_path):
    x, y = digits
    clf = Transfer(None, "full", model=ModelConfig("mlp", {"hidden": [32]}), epochs=15, lr=3e-3)
    assert clf.get_params()["epochs"] == 15 and not hasattr(clf, "result_")
    clf.fit(x[:300], y[:300])
    assert list(clf.classes_) == list("abcdefghij")
    probabilities = clf.predict_proba(x[300:])
    assert probabilities.shape == (100, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    accuracy = clf.score(x[300:], y[300:])
    assert accuracy > 0.7  # learnt: chance is 0.1
    assert clf.evaluate(x[300:], y[300:]).accuracy == pytest.approx(accuracy)
    clf.save(tmp_path / "model")
    again = warmstart.evaluate(tmp_path / "model", warmstart.DataConfig((x[300:], y[300:])))
    assert again.accuracy == pytest.approx(accuracy)


def test_clone_and_cross_val_score(digits):
    x, y = digits
    clf = Transfer(None, "full", model="mlp", epochs=3).set_params(lr=3e-3)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    scores = cross_val_score(clf, x[:200], y[:200], cv=2)
    assert scores.shape == (2,) and (scores > 0.2).all()


def test_adapt_on_self_runs_the_stage_on_the_fitted_inputs(digits):
    from warmstart.config import AdaptConfig

    x, y = digits
    images = (x[:160].reshape(-1, 8, 8) * 255).astype(np.uint8)  # digits as 8x8 images: SimCLR's kind of input
    stage = AdaptConfig("self", epochs=1, batch_size=32, lr=1e-3)
    clf = Transfer(None, "full", model=ModelConfig("cnn", {"widths": [4, 8]}), epochs=1, adapt_on=stage)
    assert clone(clf).get_params()["adapt_on"] == stage
    clf.fit(images, y[:160])
    recorded = clf.result_.info.extra["self_supervised"]
    assert (recorded["objective"]["name"], recorded["data"]) == ("simclr", "self")
    # the training split only: the validation share finetune holds out (18 of 160) is never the stage's
    assert recorded["examples"] == 142 and recorded["steps"] == 5  # at batch 32
    plain = Transfer(None, "full", model=ModelConfig("cnn", {"widths": [4, 8]}), epochs=1).fit(images, y[:160])
    assert "self_supervised" not in plain.result_.info.extra
    assert not np.allclose(clf.predict_proba(images[:20]), plain.predict_proba(images[:20]))


def test_labels_that_cannot_be_classes_are_refused_before_training_and_mixed_ones_are_kept():
    from sklearn.exceptions import NotFittedError

    from warmstart.errors import WarmstartError

    digits = load_digits()
    x = digits.data[:120].astype(np.float32)
    with pytest.raises(NotFittedError):  # not an AttributeError on classes_
        warmstart.Transfer(None, "full", model="mlp").predict(x[:2])
    y = digits.target[:120].astype(float)
    y[7] = np.nan  # a missing label used to become the class 'nan'
    with pytest.raises(WarmstartError, match=r"y has 1 missing label\(s\) \(None or NaN; first at index 7\)"):
        warmstart.Transfer(None, "full", model="mlp", epochs=1).fit(x, y)
    mixed = np.asarray([1 if i % 2 else "odd" for i in range(120)], dtype=object)  # np.unique failed after training
    clf = warmstart.Transfer(None, "full", model="mlp", epochs=1, progress=False).fit(x, mixed)
    assert sorted(map(str, clf.classes_)) == ["1", "odd"] and clf.classes_.dtype == object
    assert set(map(str, clf.predict(x[:10]))) <= {"1", "odd"}


def test_the_estimator_s_own_parameters_apply_over_a_train_config():
    from warmstart import TrainConfig

    clf = Transfer(None, "full", model="mlp", train=TrainConfig(epochs=2, batch_size=16), lr=0.05, seed=3)
    config = clf._train_config()
    assert (config.lr, config.epochs, config.batch_size, config.seed, config.progress) == (0.05, 2, 16, 3, False)
