"""Class specs and subsets, few-shot sampling, stratified splits, and the splits a run uses."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from warmstart.config import DataConfig
from warmstart.data import Dataset, few_shot, load_split, load_splits, parse_class_spec, select_classes
from warmstart.data import stratified_split
from warmstart.data.fashion_mnist import CLASS_NAMES as FASHION
from warmstart.errors import WarmstartError

DIGITS = tuple(str(i) for i in range(10))


def _toy(counts: list[int], names: tuple[str, ...] | None = None) -> Dataset:
    """Class c has counts[c] examples; x holds each example's index, so picks can be traced back."""
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype(np.int64)
    y = np.random.default_rng(123).permutation(y)
    x = np.arange(len(y), dtype=np.float32)[:, None]
    names = names or tuple(f"c{c}" for c in range(len(counts)))
    return Dataset(x, y, names, "vector", "toy")


def _ids(dataset: Dataset) -> set[int]:
    return set(dataset.x[:, 0].astype(int).tolist())


# ---------------------------------------------------------------- class specs

@pytest.mark.parametrize("spec, expected", [
    ("0-4", [0, 1, 2, 3, 4]),
    ("5,6,9", [5, 6, 9]),
    ("9,5,6", [9, 5, 6]),  # order kept
    (" 7 - 9 , 0 ", [7, 8, 9, 0]),
    ("3", [3]),
    ("0-1,8-9", [0, 1, 8, 9]),
])
def test_class_spec_ids_and_ranges(spec, expected):
    assert parse_class_spec(spec, DIGITS) == expected


def test_class_spec_names_including_slashes_and_dashes():
    assert parse_class_spec("T-shirt/top,Trouser", FASHION) == [0, 1]
    assert parse_class_spec("Sandal,Bag", FASHION) == [5, 8]
    assert parse_class_spec("Ankle boot , Sneaker", FASHION) == [9, 7]  # order kept, spaces trimmed


def test_class_spec_names_are_case_insensitive():
    assert parse_class_spec("t-shirt/TOP,ankle BOOT", FASHION) == [0, 9]


def test_names_alike_groups_names_that_differ_only_in_case_or_whitespace():
    from warmstart.data.classes import names_alike

    assert names_alike(("FEAR", "anger", " fear", "fear", "joy", "Anger ")) == [("FEAR", " fear", "fear"),
                                                                                 ("anger", "Anger ")]
    assert names_alike(("fear", "joy", "love", "0", "1")) == []
    assert names_alike(("a b", "a  b", "ab")) == [("a b", "a  b")]


def test_labels_that_differ_only_in_case_or_whitespace_stay_classes_and_the_run_notes_them(tmp_path):
    """"fear", "FEAR" and " fear" became three classes without a word; they stay three (a dataset may mean the
    case), and the run's notes name them."""
    import json

    import warmstart
    from warmstart import TrainConfig

    rng = np.random.default_rng(0)
    labels = np.array(["fear", "FEAR", " fear", "joy"])
    x = np.concatenate([rng.standard_normal((12, 4)) + 3 * i for i in range(4)]).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.repeat(labels, 12))
    result = warmstart.finetune(None, str(tmp_path / "d.npz"), model="mlp", out=tmp_path / "run",
                                train=TrainConfig(epochs=1, progress=False, trackers=()))
    assert result.info.class_names == (" fear", "FEAR", "fear", "joy")  # as before: sorted, none merged
    expected = "class names that differ only in case or whitespace are separate classes: ' fear', 'FEAR', 'fear'"
    noted = [n for n in result.notes if expected in n]
    assert len(noted) == 1 and "write its label one way in the data" in noted[0], result.notes
    assert any(expected in n for n in json.loads((tmp_path / "run" / "config.json").read_text())["notes"])
    apart = warmstart.finetune(None, DataConfig(str(tmp_path / "d.npz"), classes="fear,joy"), model="mlp",
                               train=TrainConfig(epochs=1, progress=False, trackers=()))
    assert not any("differ only in case" in n for n in apart.notes)  # the classes trained on are told apart


def test_class_spec_mixes_names_and_ids():
    assert parse_class_spec("Bag,0-1", FASHION) == [8, 0, 1]


def test_class_spec_names_win_over_ids():
    # a dataset whose class names are numbers: "5" names the class "5", which is id 1
    assert parse_class_spec("5,3", ("3", "5", "7")) == [1, 0]


@pytest.mark.parametrize("spec, words", [
    ("10", ["class id 10", "10 classes"]),
    ("8-12", ["class id 10"]),
    ("Sandal,Parka", ["'Parka'", "neither"]),
    ("4-2", ["runs backwards"]),
    ("1,1", ["named twice"]),
    ("Bag,8", ["named twice"]),
    (" , ", ["names no class"]),
])
def test_class_spec_errors(spec, words):
    with pytest.raises(WarmstartError) as err:
        parse_class_spec(spec, FASHION, source="fashion-mnist")
    for word in words:
        assert word in str(err.value)
    assert repr(spec) in str(err.value)  # the message quotes what the user typed


def test_select_classes_relabels_in_the_given_order_and_keeps_names():
    data = _toy([3, 4, 5, 6], names=("w", "x", "y", "z"))
    picked = select_classes(data, [3, 1])
    assert picked.class_names == ("z", "x")
    assert picked.num_classes == 2
    assert picked.class_counts().tolist() == [6, 4]
    # every kept example carries its old class under its new id
    old = dict(zip(data.x[:, 0].astype(int).tolist(), data.y.tolist()))
    for xi, yi in zip(picked.x[:, 0].astype(int).tolist(), picked.y.tolist()):
        assert old[xi] == (3, 1)[yi]
    assert len(picked) == 10 and picked.kind == "vector" and picked.name == "toy"


# ---------------------------------------------------------------- few-shot sampling

def test_few_shot_takes_exactly_k_of_every_class():
    data = _toy([20, 7, 13])
    picked = few_shot(data, 5, np.random.default_rng(0))
    assert picked.class_counts().tolist() == [5, 5, 5]
    assert len(_ids(picked)) == 15  # without replacement
    assert _ids(picked) <= _ids(data)
    assert picked.class_names == data.class_names


def test_few_shot_is_deterministic_for_a_seed_and_differs_across_seeds():
    data = _toy([50, 50, 50])
    draws = {seed: few_shot(data, 4, np.random.default_rng(seed)) for seed in (0, 1, 2)}
    again = few_shot(data, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(draws[0].x, again.x)
    np.testing.assert_array_equal(draws[0].y, again.y)
    assert len({frozenset(_ids(d)) for d in draws.values()}) == 3


def test_few_shot_all_of_a_class():
    data = _toy([3, 8])
    picked = few_shot(data, 3, np.random.default_rng(0))
    assert picked.class_counts().tolist() == [3, 3]


def test_few_shot_too_many_names_the_short_class():
    data = _toy([10, 2, 10, 3], names=("ok", "rare", "fine", "scarce"))
    with pytest.raises(WarmstartError) as err:
        few_shot(data, 5, np.random.default_rng(0))
    message = str(err.value)
    assert "--shots 5" in message and "'rare' has 2" in message and "'scarce' has 3" in message
    assert "'ok'" not in message
    assert "--shots 2" in message  # the hint: the most that works


# ---------------------------------------------------------------- stratified splits

@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_stratified_split_takes_the_fraction_of_every_class(fraction):
    counts = [40, 20, 100]
    first, held = stratified_split(_toy(counts), fraction, np.random.default_rng(0))
    assert held.class_counts().tolist() == [round(n * fraction) for n in counts]
    assert (first.class_counts() + held.class_counts()).tolist() == counts
    assert not _ids(first) & _ids(held)


def test_stratified_split_every_class_keeps_at_least_one():
    first, held = stratified_split(_toy([1, 2, 10]), 0.9, np.random.default_rng(0))
    assert first.class_counts().tolist() == [1, 1, 1]
    assert held.class_counts().tolist() == [0, 1, 9]


def test_stratified_split_zero_fraction_or_nothing_to_hold():
    data = _toy([5, 5])
    assert stratified_split(data, 0.0, np.random.default_rng(0)) == (data, None)
    first, held = stratified_split(_toy([1, 1]), 0.5, np.random.default_rng(0))
    assert held is None and len(first) == 2


def test_stratified_split_is_seeded():
    data = _toy([30, 30])
    a = stratified_split(data, 0.3, np.random.default_rng(4))[1]
    b = stratified_split(data, 0.3, np.random.default_rng(4))[1]
    c = stratified_split(data, 0.3, np.random.default_rng(5))[1]
    assert _ids(a) == _ids(b) != _ids(c)


# ---------------------------------------------------------------- the splits a run uses

def _digit_keys(dataset: Dataset) -> set[bytes]:
    return {row.tobytes() + bytes([label]) for row, label in zip(dataset.x, dataset.y)}


def test_test_holdout_does_not_move_with_the_training_seed():
    runs = [load_splits(DataConfig("digits"), seed=s) for s in (0, 1, 7)]
    tests = [_digit_keys(r.test) for r in runs]
    assert tests[0] == tests[1] == tests[2]
    assert len(runs[0].test) == pytest.approx(0.2 * 1797, abs=10)
    # while the train/validation split does move
    assert _digit_keys(runs[0].val) != _digit_keys(runs[1].val)
    # and train, val and test never share an example
    for r in runs:
        assert not _digit_keys(r.train) & tests[0] and not _digit_keys(r.val) & tests[0]
        assert not _digit_keys(r.train) & _digit_keys(r.val)


def test_pretrain_finetune_and_evaluate_agree_on_the_holdout():
    # finetune: few-shot with its own seed; evaluate: the whole test split
    finetune = load_splits(DataConfig("digits", classes="3,1", shots=4), seed=11)
    evaluate = load_split(DataConfig("digits", classes="3,1"), "test")
    pretrain = load_splits(DataConfig("digits"), seed=3)
    assert _digit_keys(finetune.test) == _digit_keys(evaluate)
    # the class subset of the hold-out is the subset of the full hold-out, relabelled
    full = pretrain.test
    subset = select_classes(full, [3, 1])
    assert _digit_keys(subset) == _digit_keys(evaluate)
    assert evaluate.class_names == ("3", "1")
    # and none of the few-shot training examples is a test example
    assert not _digit_keys(finetune.train) & _digit_keys(full)


def test_load_split_train_is_the_rest():
    train = load_split(DataConfig("digits"), "train")
    test = load_split(DataConfig("digits"), "test")
    assert len(train) + len(test) == 1797
    assert not _digit_keys(train) & _digit_keys(test)


def test_val_fraction_defaults():
    full = load_splits(DataConfig("digits"), seed=0)
    n = len(full.train) + len(full.val)
    assert len(full.val) == pytest.approx(0.1 * n, abs=10)

    shots = load_splits(DataConfig("digits", shots=5), seed=0)
    assert shots.val is None
    assert shots.train.class_counts().tolist() == [5] * 10
    assert DataConfig("digits", shots=5).resolved_val_fraction == 0.0
    assert DataConfig("digits").resolved_val_fraction == 0.1

    # asked for, few-shot runs do hold out validation examples from the K
    asked = load_splits(DataConfig("digits", shots=10, val_fraction=0.2), seed=0)
    assert asked.val.class_counts().tolist() == [2] * 10
    assert asked.train.class_counts().tolist() == [8] * 10


def test_few_shot_draw_follows_the_seed():
    a = load_splits(DataConfig("digits", shots=3), seed=0).train
    b = load_splits(DataConfig("digits", shots=3), seed=0).train
    c = load_splits(DataConfig("digits", shots=3), seed=1).train
    assert _digit_keys(a) == _digit_keys(b) != _digit_keys(c)


def test_class_selection_drops_the_other_classes_everywhere():
    splits = load_splits(DataConfig("digits", classes="7-9"), seed=0)
    for part in (splits.train, splits.val, splits.test):
        assert part.class_names == ("7", "8", "9")
        assert set(part.y.tolist()) == {0, 1, 2}


def test_classes_without_training_examples_are_reported(tmp_path):
    path = tmp_path / "gap.npz"
    x = np.zeros((6, 2), np.float32)
    np.savez(path, x=x, y=np.array([0, 0, 0, 2, 2, 2]), x_test=x[:3], y_test=np.array([0, 1, 2]),
             class_names=np.array(["a", "b", "c"]))
    with pytest.raises(WarmstartError, match="'b' have no training examples"):
        load_splits(DataConfig(str(path)), seed=0)
    assert load_splits(DataConfig(str(path), classes="a,c"), seed=0).train.class_names == ("a", "c")


# ---------------------------------------------------------------- classes labelled with numbers, and by case

def test_numeric_labels_are_read_as_labels_by_ranges_and_single_numbers_alike():
    # labels 1, 2, 3 (no 0): a range used to count positions, so 1-2 picked "2" and "3" while 1,2 picked "1" and "2"
    labels = ("1", "2", "3")
    assert parse_class_spec("1-2", labels) == parse_class_spec("1,2", labels) == [0, 1]
    assert parse_class_spec("2-9", labels) == [1, 2]
    with pytest.raises(WarmstartError, match="no class of data is labelled 0; its classes are labelled with numbers"):
        parse_class_spec("0", labels)
    with pytest.raises(WarmstartError, match="no class of data is labelled 5 to 9"):
        parse_class_spec("5-9", labels)
    # names that are not all numbers keep ids as positions
    assert parse_class_spec("1-2", ("a", "b", "c")) == [1, 2]


def test_an_exact_class_name_wins_over_one_that_differs_in_case():
    names = ("A", "a", "b")
    assert parse_class_spec("A,b", names) == [0, 2]
    assert parse_class_spec("a", names) == [1]
    assert parse_class_spec("B", names) == [2]  # no exact match: the one name equal regardless of case
    with pytest.raises(WarmstartError, match="'ab' matches 'Ab' and 'aB' when case is ignored"):
        parse_class_spec("ab", ("Ab", "aB", "c"))


def test_the_class_order_of_numeric_labels_is_numeric_for_text_and_files_alike(tmp_path):
    from warmstart.data.files import class_order

    with open(tmp_path / "t.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text", "label"], *[[f"text number {i} of {c}", c] for c in range(11)
                                                        for i in range(3)]])
    names = load_splits(DataConfig(str(tmp_path / "t.csv"), classes="0-4"), 0).train.class_names
    assert names == ("0", "1", "2", "3", "4")  # not "0", "1", "10", "2", "3"
    # labels equal as numbers are ordered as strings, whatever the set's iteration order (PYTHONHASHSEED)
    assert class_order(["1", "01", "2", "001"]) == ("001", "01", "1", "2")
    # digits that int() does not read are names, not numbers (isdigit() accepted them, then int() crashed)
    assert class_order(["m²", "²", "1", "①"]) == ("1", *sorted(["m²", "²", "①"]))
