"""Metrics cross-checked against scikit-learn, the result's dictionary, the confusion-matrix PNG and the report."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from sklearn import metrics as skm

from warmstart.evaluation import (EvaluationResult, accuracy, confusion_matrix, evaluate_predictions, f1_score,
                                  per_class_scores, plot_confusion_matrix, render_report)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SEEDS = range(40)


def random_labels(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Random labels where some classes are never predicted and some never occur in y_true."""
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(2, 13))
    n = int(rng.integers(1, 300))
    true_classes = rng.choice(num_classes, size=int(rng.integers(1, num_classes + 1)), replace=False)
    pred_classes = rng.choice(num_classes, size=int(rng.integers(1, num_classes + 1)), replace=False)
    y_true = rng.choice(true_classes, size=n)
    y_pred = rng.choice(pred_classes, size=n)
    # Make some predictions right, so that the scores are not all near zero.
    right = rng.random(n) < rng.random()
    y_pred = np.where(right & np.isin(y_true, pred_classes), y_true, y_pred)
    return y_true.astype(np.int64), y_pred.astype(np.int64), num_classes


def sklearn_scores(y_true, y_pred, num_classes, average):
    """scikit-learn's scores: per class over every class; macro averages over its default labels, the classes in
    y_true or y_pred (a class that neither holds counts in no average)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = None if average == "macro" else list(range(num_classes))
        return skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average, zero_division=0)


def test_random_cases_cover_the_edge_cases():
    """The generator really produces classes absent from y_true and classes never predicted."""
    absent_true = never_predicted = 0
    for seed in SEEDS:
        y_true, y_pred, c = random_labels(seed)
        absent_true += len(set(range(c)) - set(y_true.tolist())) > 0
        never_predicted += len(set(range(c)) - set(y_pred.tolist())) > 0
    assert absent_true >= 10 and never_predicted >= 10


@pytest.mark.parametrize("seed", SEEDS)
def test_against_sklearn(seed):
    y_true, y_pred, c = random_labels(seed)
    labels = list(range(c))

    cm = confusion_matrix(y_true, y_pred, num_classes=c)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=labels))
    assert cm.shape == (c, c)
    assert cm.sum() == len(y_true)

    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)

    scores = per_class_scores(cm)
    precision, recall, f1, support = sklearn_scores(y_true, y_pred, c, None)
    np.testing.assert_allclose(scores["precision"], precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores["recall"], recall, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores["f1"], f1, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(scores["support"], support)

    result = evaluate_predictions(y_true, y_pred, [f"class{i}" for i in labels])
    for average in ("macro", "weighted"):
        p, r, f, _ = sklearn_scores(y_true, y_pred, c, average)
        assert getattr(result, f"precision_{average}") == pytest.approx(p, abs=1e-12)
        assert getattr(result, f"recall_{average}") == pytest.approx(r, abs=1e-12)
        assert getattr(result, f"{average}_f1") == pytest.approx(f, abs=1e-12)
        assert f1_score(y_true, y_pred, num_classes=c, average_by=average) == pytest.approx(f, abs=1e-12)
    assert result.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert result.num_examples == len(y_true)
    np.testing.assert_array_equal(np.array(result.confusion_matrix), cm)
    for i, cls in enumerate(result.per_class):
        assert cls.name == f"class{i}"
        assert (cls.precision, cls.recall, cls.f1) == pytest.approx((precision[i], recall[i], f1[i]), abs=1e-12)
        assert cls.support == support[i]


def test_hand_computed_example():
    # Class 2 is never predicted; class 3 never occurs.
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 3, 0])
    cm = confusion_matrix(y_true, y_pred, num_classes=4)
    np.testing.assert_array_equal(cm, [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]])
    s = per_class_scores(cm)
    np.testing.assert_allclose(s["precision"], [2 / 3, 1 / 2, 0, 0])
    np.testing.assert_allclose(s["recall"], [2 / 3, 1 / 2, 0, 0])
    np.testing.assert_allclose(s["f1"], [2 / 3, 1 / 2, 0, 0])
    np.testing.assert_array_equal(s["support"], [3, 2, 1, 0])
    assert accuracy(y_true, y_pred) == pytest.approx(0.5)
    assert f1_score(y_true, y_pred, num_classes=4) == pytest.approx((2 / 3 + 1 / 2) / 4)
    assert f1_score(y_true, y_pred, num_classes=4, average_by="weighted") == pytest.approx((2 + 1) / 6)


def test_perfect_and_all_wrong():
    y = np.array([0, 1, 2, 2, 1, 0, 3])
    perfect = evaluate_predictions(y, y, ["a", "b", "c", "d"])
    assert (perfect.accuracy, perfect.macro_f1, perfect.weighted_f1) == (1.0, 1.0, 1.0)
    assert (perfect.precision_macro, perfect.recall_macro) == (1.0, 1.0)
    wrong = evaluate_predictions(y, (y + 1) % 4, ["a", "b", "c", "d"])
    assert (wrong.accuracy, wrong.macro_f1, wrong.weighted_f1, wrong.precision_macro) == (0.0, 0.0, 0.0, 0.0)


def test_input_checks():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix([0, 1], [0], num_classes=2)
    with pytest.raises(ValueError, match="y_pred.*0..2"):
        confusion_matrix([0, 1], [0, 3], num_classes=3)  # would otherwise be counted in cell (1, 0)
    with pytest.raises(ValueError, match="y_true"):
        confusion_matrix([2, 1], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="y_pred"):
        confusion_matrix([0, 1], [-1, 1], num_classes=2)
    with pytest.raises(ValueError, match="y_pred"):
        evaluate_predictions(np.array([0, 1]), np.array([0, 2]), ["a", "b"])
    with pytest.raises(ValueError, match="average"):
        f1_score([0], [0], num_classes=1, average_by="micro")


def test_empty_predictions():
    result = evaluate_predictions(np.array([], dtype=np.int64), np.array([], dtype=np.int64), ["a", "b"])
    assert result.num_examples == 0
    assert (result.accuracy, result.macro_f1, result.weighted_f1) == (0.0, 0.0, 0.0)
    assert result.confusion_matrix == ((0, 0), (0, 0))


def example_result(seed: int = 3, names=("T-shirt", "Trouser", "Pullover")) -> EvaluationResult:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, len(names), 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, len(names), 60))
    return evaluate_predictions(y_true, y_pred, list(names))


def test_to_dict_is_complete_and_json_serialisable():
    result = example_result()
    d = result.to_dict()
    assert {"accuracy", "macro_f1", "weighted_f1", "precision_macro", "recall_macro", "per_class",
            "confusion_matrix"} <= d.keys()
    assert json.loads(json.dumps(d)) == d  # plain JSON types only, nothing lost
    assert d["accuracy"] == result.accuracy
    assert d["macro_f1"] == result.macro_f1
    assert list(d["per_class"]) == ["T-shirt", "Trouser", "Pullover"]
    for cls in result.per_class:
        assert d["per_class"][cls.name] == {"precision": cls.precision, "recall": cls.recall, "f1": cls.f1,
                                            "support": cls.support}
        assert type(d["per_class"][cls.name]["support"]) is int
    assert d["confusion_matrix"] == [list(row) for row in result.confusion_matrix]
    assert sum(map(sum, d["confusion_matrix"])) == 60
    assert all(type(v) is int for row in d["confusion_matrix"] for v in row)
    for key in ("accuracy", "macro_f1", "weighted_f1", "precision_macro", "recall_macro"):
        assert type(d[key]) is float


def test_to_dict_from_numpy_inputs_of_other_dtypes_is_json_serialisable():
    result = evaluate_predictions(np.array([0, 1, 1], dtype=np.int32), np.array([0, 1, 0], dtype=np.uint8),
                                  np.array(["a", "b"]))
    json.dumps(result.to_dict())


@pytest.mark.parametrize("num_classes", [3, 12])
def test_plot_confusion_matrix_writes_a_png(tmp_path, num_classes):
    names = [f"class {i}" for i in range(num_classes)]
    rng = np.random.default_rng(num_classes)
    y_true = rng.integers(0, num_classes, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, num_classes, 200))
    result = evaluate_predictions(y_true, y_pred, names)

    path = tmp_path / "plots" / "confusion_matrix.png"
    written = plot_confusion_matrix(result, path)
    assert written == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = len(np.unique(pixels, axis=0))
    assert 300 <= width <= 3000 and 300 <= height <= 3000
    assert abs(width - height) <= 0.05 * width  # a square figure
    assert colours > 10, "the image is blank"
    assert [p.name for p in path.parent.iterdir()] == ["confusion_matrix.png"]  # no temporary file left


def test_plot_grows_with_the_number_of_classes(tmp_path):
    small = plot_confusion_matrix(evaluate_predictions([0, 1], [0, 1], ["a", "b"]), tmp_path / "small.png")
    names = [str(i) for i in range(20)]
    big = plot_confusion_matrix(evaluate_predictions(list(range(20)), list(range(20)), names), tmp_path / "big.png",
                                title="twenty classes")
    with Image.open(small) as a, Image.open(big) as b:
        assert b.size[0] > a.size[0]


def render_text(result: EvaluationResult, **kwargs) -> str:
    console = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    console.print(render_report(result, **kwargs))
    return console.export_text()


def test_render_report():
    result = example_result()
    text = render_text(result, title="fashion test")
    for name in result.class_names:
        assert name in text
    assert "fashion test: 60 examples" in text
    assert table_rows(text, 0) == [[f"{v:.4f}" for v in (result.accuracy, result.macro_f1, result.weighted_f1,
                                                          result.precision_macro, result.recall_macro)]]
    assert "confusion matrix" in text
    assert table_rows(text, 1) == [[c.name, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support)]
                                   for c in result.per_class]
    assert matrix_rows(text) == [[f"{i} {name}", *map(str, row)]
                                 for i, (name, row) in enumerate(zip(result.class_names, result.confusion_matrix))]


def test_render_report_with_numeric_class_names():
    result = evaluate_predictions([0, 1, 2, 2], [0, 1, 2, 1], ["0", "1", "2"])
    text = render_text(result)
    assert "evaluation: 4 examples" in text
    # A class named by its index is not printed twice ("0 0").
    assert matrix_rows(text) == [["0", "1", "0", "0"], ["1", "0", "1", "0"], ["2", "0", "1", "1"]]


def table_rows(text: str, index: int) -> list[list[str]]:
    """The body cells of the report's table number ``index`` (0: summary, 1: per class, 2: confusion matrix)."""
    body = text.split("┡")[index + 1].split("└")[0].splitlines()[1:]
    return [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in body if line.startswith("│")]


def matrix_rows(text: str) -> list[list[str]]:
    return table_rows(text, 2)
