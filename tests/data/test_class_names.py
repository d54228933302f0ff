"""Training examples written from the class names (SetFit's templated examples): what is written, where it goes,
what is refused, and that it teaches a real encoder what the names mean."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.data import Dataset, load_splits
from warmstart.data.class_names import class_name_examples, with_class_name_examples
from warmstart.errors import WarmstartError
from warmstart.run.trial import fold_splits
from warmstart.strategies import create_strategy

from cli_runner import run_cli

EMOTION = Path(__file__).resolve().parents[3] / "shared" / "data" / "emotion"


def texts(names: tuple[str, ...], per_class: int = 6) -> Dataset:
    x = np.array([f"text {i} of {name}" for name in names for i in range(per_class)], dtype=object)
    y = np.repeat(np.arange(len(names)), per_class)
    return Dataset(x, y, names, "text", "toy")


def test_each_class_gets_its_sentences_with_underscores_written_as_spaces():
    written = class_name_examples(texts(("card_arrival", "joy")), 3)
    assert list(written.x) == ["This sentence is card arrival"] * 3 + ["This sentence is joy"] * 3
    assert list(written.y) == [0, 0, 0, 1, 1, 1] and written.class_names == ("card_arrival", "joy")
    other = class_name_examples(texts(("joy", "fear")), 1, "I feel {} today")
    assert list(other.x) == ["I feel joy today", "I feel fear today"]


def test_written_examples_follow_the_data_own_and_keep_long_texts_whole():
    data = texts(("a_very_long_class_name_indeed", "b"))
    data = Dataset(data.x.astype(str), data.y, data.class_names, "text", "toy")  # a fixed-width str array
    both = with_class_name_examples(data, 2)
    assert len(both) == len(data) + 4 and list(both.x[:len(data)]) == list(data.x)
    assert both.x[len(data)] == "This sentence is a very long class name indeed"


@pytest.mark.parametrize("dataset, message", [
    (Dataset(np.zeros((4, 3), np.float32), np.array([0, 0, 1, 1]), ("a", "b"), "vectors", "v.csv"),
     "v.csv holds vectors data"),
    (texts(("0", "1")), "named by numbers ('0', '1')"),
    (texts(("1.5", "-2")), "named by numbers"),
])
def test_data_the_names_cannot_describe_is_refused(dataset, message):
    with pytest.raises(WarmstartError, match="class-name-examples") as caught:
        class_name_examples(dataset, 2)
    assert message in str(caught.value)


@pytest.mark.parametrize("template", ["This sentence is", "{} and {}", "{0}", 7, "Label: {{}}", "{name}", "{!r}",
                                      "{:>9}", "a { b {}", '{"label": {}}'])
def test_a_template_without_one_place_for_the_name_is_refused(template):
    with pytest.raises(WarmstartError, match="class_name_template") as caught:
        DataConfig("x.csv", class_name_template=template)
    assert "one {}" in str(caught.value)


def test_literal_braces_are_written_as_str_format_writes_them():
    """SetFit fills its template with str.format; "{}" was replaced as plain text instead, so "Topic: {{}}" wrote
    "Topic: {joy}" while "{{x}} {}" kept its doubled braces."""
    written = class_name_examples(texts(("joy", "fear")), 1, "Topic: {{{}}} ({{x}})")
    assert list(written.x) == ["Topic: {joy} ({x})", "Topic: {fear} ({x})"]
    assert class_name_examples(texts(("joy", "fear")), 1, "{{}} is {}").x[0] == "{} is joy"


def test_a_template_whose_only_braces_are_escaped_is_refused_on_the_command_line(tmp_path, capsys):
    code, _, err = run_cli(["finetune", "--from", "none", "--data", "digits", "--class-name-examples", "2",
                            "--class-name-template", "Label: {{}}", "--out", tmp_path / "r"], capsys)
    assert code == 2
    assert "--class-name-template 'Label: {{}}'" in err and "one {}" in err  # the flag, what was expected
    assert "found no {}: its {{}} is a literal '{}'" in err  # what was found
    assert '"Topic: {{{}}}"' in err  # how to put the name in braces
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("count", [-1, 1.5, "2", True])
def test_a_count_that_is_not_a_whole_number_is_refused(count):
    with pytest.raises(WarmstartError, match="class_name_examples"):
        DataConfig("x.csv", class_name_examples=count)


def write_csv(path: Path, names: tuple[str, ...], per_class: int) -> str:
    rows = [(f"sentence {i} about {name}", name) for name in names for i in range(per_class)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return str(path)


def test_written_examples_join_training_only_after_validation_is_held_out(tmp_path):
    path = write_csv(tmp_path / "d.csv", ("anger", "joy", "fear"), 20)
    plain = load_splits(DataConfig(path, val_fraction=0.25), seed=3)
    splits = load_splits(DataConfig(path, val_fraction=0.25, class_name_examples=4), seed=3)
    assert splits.synthetic == 12 and len(splits.train) == len(plain.train) + 12
    assert list(splits.train.x[:len(plain.train)]) == list(plain.train.x)  # the same sampled examples, then the new
    assert all(t.startswith("This sentence is ") for t in splits.train.x[-12:])
    for split in (splits.val, splits.test):
        assert not any(t.startswith("This sentence is ") for t in split.x)
    assert list(splits.val.x) == list(plain.val.x) and list(splits.test.x) == list(plain.test.x)


def test_search_folds_train_on_written_examples_and_never_score_them(tmp_path):
    path = write_csv(tmp_path / "d.csv", ("anger", "joy"), 15)
    splits = load_splits(DataConfig(path, shots=6, class_name_examples=3), seed=0)
    folds = fold_splits(splits, 3, seed=0)
    real = {t for t in splits.train.x if not t.startswith("This sentence is ")}
    scored = []
    for fold in folds:
        assert fold.synthetic == 6 and list(fold.train.x[-6:]) == list(splits.train.x[-6:])
        assert set(fold.val.x) <= real
        scored += list(fold.val.x)
    assert sorted(scored) == sorted(real)  # each labelled example is scored once


def test_the_cli_records_the_written_examples_and_only_training_commands_take_them(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", ("anger", "joy"), 12)
    out = tmp_path / "run"
    code, _, err = run_cli(["finetune", "--from", "minilm", "--data", path, "--class-name-examples", "2",
                            "--class-name-template", "It is about {}.", "--strategy", "linear-probe",
                            "--epochs", "1", "--max-length", "16", "--out", out, "--quiet"], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["class_name_examples"] == 2
    assert config["data"]["class_name_template"] == "It is about {}."
    assert any(note.startswith("4 of the") and "written from the class names" in note for note in config["notes"])
    assert config["resolved"]["written_examples"] == 4 and config["resolved"]["train_examples"] == 18
    card = (out / "MODEL_CARD.md").read_text()
    assert "18 training" in card and "4 training examples written from the class names" in card
    code, _, err = run_cli(["finetune", "--config", out / "config.json", "--out", tmp_path / "again", "--quiet"],
                           capsys)
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["data"]["class_name_template"] == "It is about {}." and again["data"]["class_name_examples"] == 2
    code, _, err = run_cli(["evaluate", "--checkpoint", out, "--data", path, "--class-name-examples", "2"], capsys)
    assert code != 0 and "No such option" in err


@pytest.fixture(scope="module")
def emotion_subset(tmp_path_factory) -> str:
    """Emotion's real texts: a training pool of 60 per class and a test split of 40 per class."""
    if not (EMOTION / "train.csv").is_file():
        pytest.skip(f"{EMOTION} is not here: the shared datasets sit beside the repository")
    folder = tmp_path_factory.mktemp("emotion")
    for split, per_class in (("train", 60), ("test", 40)):
        frame = pd.read_csv(EMOTION / f"{split}.csv")
        frame.groupby("label").head(per_class).to_csv(folder / f"{split}.csv", index=False)
    return str(folder)


def test_the_names_teach_minilm_what_the_classes_mean(emotion_subset):
    """Four labelled texts per class of six emotions, three seeds: the sentences written from the names raise a
    linear probe of all-MiniLM-L6-v2 (measured: 0.306 -> 0.385 in the mean, +5.0 to +11.7 points
    per seed, on these 240 test texts)."""
    def accuracy(written: int, seed: int) -> float:
        data = DataConfig(emotion_subset, shots=4, max_length=32, class_name_examples=written)
        strategy = create_strategy("linear-probe", solver="lbfgs", C="auto")
        result = warmstart.finetune("minilm", data, strategy=strategy, train=TrainConfig(seed=seed, progress=False))
        return result.metrics.accuracy

    without = [accuracy(0, seed) for seed in range(3)]
    written = [accuracy(4, seed) for seed in range(3)]
    assert statistics.mean(written) - statistics.mean(without) > 0.04, (without, written)


def test_names_that_are_written_alike_or_are_numbers_with_underscores_are_refused():
    with pytest.raises(WarmstartError, match=r"the classes 'a b', 'a_b' of toy are both written 'a b'"):
        class_name_examples(texts(("a b", "a_b", "c")), 2)
    with pytest.raises(WarmstartError, match="named by numbers"):
        class_name_examples(texts(("1_000", "2_000")), 2)  # written "1 000": still numbers


def test_a_count_beyond_what_identical_copies_can_add_is_refused():
    """10**6 copies per class filled 7 GB before the first step."""
    with pytest.raises(WarmstartError, match="class_name_examples: expected an integer from 0 to 1000"):
        DataConfig("x.csv", class_name_examples=10**6)


def test_the_probe_never_chooses_c_on_the_written_copies(tmp_path):
    """choose_c's folds held out written copies (identical to training rows): 'cross-validated' accuracy 0.88 where
    the labelled examples gave 0.1. Written rows now train every fold and are never scored."""
    import torch

    from warmstart.engine.logistic import choose_c

    generator = torch.Generator().manual_seed(0)
    labelled = torch.randn(12, 5, generator=generator)  # noise: nothing to learn from these
    labels = torch.arange(12) % 2
    written = torch.tensor([[5.0, 0, 0, 0, 0], [-5.0, 0, 0, 0, 0]]).repeat_interleave(20, dim=0)
    features = torch.cat([labelled, written])
    all_labels = torch.cat([labels, torch.tensor([0, 1]).repeat_interleave(20)])
    _, scored_with_copies = choose_c(features, all_labels, 2, folds=3)
    _, scored = choose_c(features, all_labels, 2, folds=3, written=40)
    assert min(scored_with_copies.values()) > 0.7  # the copies were scored: they are easy
    assert max(scored.values()) < 0.8 and scored.keys() == scored_with_copies.keys()


def test_rank_and_auto_read_the_labelled_examples_only(tmp_path):
    path = write_csv(tmp_path / "d.csv", ("anger", "joy", "fear"), 12)
    data = DataConfig(path, shots=2, class_name_examples=30, max_length=16)
    ranking = warmstart.rank(data, ["minilm"])
    assert ranking.train_examples == 6
    result = warmstart.finetune("minilm", data, strategy="auto", train=TrainConfig(epochs=1, progress=False))
    assert any(n.startswith("auto chose setfit") for n in result.notes), result.notes  # 2 per class, not 32


def test_pretrain_and_evaluate_refuse_the_field_as_the_cli_does(tmp_path):
    path = write_csv(tmp_path / "d.csv", ("anger", "joy"), 12)
    data = DataConfig(path, class_name_examples=2)
    for call in (lambda: warmstart.pretrain(data, model="hf"), lambda: warmstart.evaluate(tmp_path, data)):
        with pytest.raises(WarmstartError, match="class_name_examples=2 applies to fine-tuning") as error:
            call()
        assert "class_name_examples=0" in error.value.hint


def test_a_template_without_examples_to_write_is_refused():
    with pytest.raises(WarmstartError, match="class_name_template 'I feel {}' is set, but class_name_examples is 0"):
        DataConfig("x.csv", class_name_template="I feel {}")
    assert DataConfig("x.csv", class_name_template="I feel {}", class_name_examples=2).class_name_examples == 2


@pytest.mark.parametrize("key", ["class_name_examples", "shots", "epochs"])
def test_yaml_true_is_not_taken_for_the_number_1(tmp_path, capsys, key):
    """click read True as 1: `shots: true` in a --config file trained on one example per class."""
    path = write_csv(tmp_path / "d.csv", ("anger", "joy"), 12)
    (tmp_path / "c.yaml").write_text(f"{key}: true\n")
    code, _, err = run_cli(["finetune", "--from", "minilm", "--data", path, "--config", tmp_path / "c.yaml",
                            "--out", tmp_path / "r"], capsys)
    assert code != 0 and f"'{key}' is true, and the option takes a number" in err
