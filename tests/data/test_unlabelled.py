"""The one reader of unlabelled inputs (pretrain --objective, finetune --adapt-on, distill --unlabeled): what a user
really has, and errors that name the option, the file and the field."""

from __future__ import annotations

import numpy as np
import pytest

from warmstart import DataConfig
from warmstart.data import load_split
from warmstart.data.unlabelled import load_unlabelled
from warmstart.errors import WarmstartError

pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")


def test_a_parquet_text_column_without_labels_and_a_labelled_parquet_whose_labels_are_ignored(tmp_path):
    pq.write_table(pa.table({"text": ["a fish swims", " ", "three and four", None]}), tmp_path / "texts.parquet")
    texts = load_unlabelled(DataConfig(str(tmp_path / "texts.parquet")))
    assert list(texts.x) == ["a fish swims", "three and four"] and texts.kind == "text"  # empty rows dropped
    labelled = tmp_path / "labelled.parquet"
    pq.write_table(pa.table({"text": [f"text {i}" for i in range(10)], "label": ["a", "b"] * 5}), labelled)
    assert load_split(DataConfig(str(labelled)), "train").class_names == ("a", "b")  # a labelled Parquet table
    with pytest.raises(WarmstartError, match="--unlabeled .*labelled.parquet.* holds labels"):
        load_unlabelled(DataConfig(str(labelled)), flag="--unlabeled")
    notes: list[str] = []
    inputs = load_unlabelled(DataConfig(str(labelled)), ignore_labels=True, flag="--unlabeled", notes=notes)
    assert len(inputs) == 8 and set(inputs.y) == {0}  # the training split: the fixed hold-out keeps 2 out
    assert len(notes) == 1 and notes[0].startswith(f"--unlabeled {labelled}: holds labels, which are ignored")
    assert "--classes" not in notes[0]
    load_unlabelled(DataConfig(str(labelled)), ignore_labels=True, flag="--unlabeled", notes=notes, run_classes="a")
    assert notes[1].endswith("--classes a selects the labelled rows the run trains on, not these: they are inputs "
                             "of every class")


@pytest.mark.parametrize("name, write, words", [
    ("empty.txt", lambda path: path.write_text("\n  \n"), ["holds no text"]),
    ("body.parquet", lambda path: pq.write_table(pa.table({"body": ["a", "b"]}), path),
     ["no text column 'text'", "the columns are body", "--text-column"]),
    ("images.npz", lambda path: np.savez(path, images=np.ones((2, 4))),
     ["no array x", "found images", "numpy.savez"]),
    ("broken.parquet", lambda path: path.write_text("not parquet"), ["cannot be read as a Parquet file"]),
])
def test_errors_name_the_option_the_file_and_the_field_and_say_how_to_fix_it(tmp_path, name, write, words):
    write(tmp_path / name)
    with pytest.raises(WarmstartError) as caught:
        load_unlabelled(DataConfig(str(tmp_path / name)), ignore_labels=True, flag="--unlabeled")
    message = caught.value.message
    assert message.startswith(f"--unlabeled {tmp_path / name}") and all(word in message + caught.value.hint
                                                                         for word in words), message
    assert caught.value.hint


def test_a_folder_of_train_and_test_tables_is_read_as_a_table_and_its_test_file_never(tmp_path):
    texts_only, labelled = tmp_path / "texts", tmp_path / "labelled"
    texts_only.mkdir(), labelled.mkdir()
    (texts_only / "train.csv").write_text("text\na fish swims\nthree and four\n")
    assert list(load_unlabelled(DataConfig(str(texts_only))).x) == ["a fish swims", "three and four"]
    (labelled / "train.csv").write_text("text,label\n" + "".join(f"train text {i},{'ab'[i % 2]}\n" for i in range(6)))
    (labelled / "test.csv").write_text("text,label\nthe test text,a\nanother test text,b\n")
    with pytest.raises(WarmstartError, match="holds labels"):
        load_unlabelled(DataConfig(str(labelled)), flag="--unlabeled")
    inputs = load_unlabelled(DataConfig(str(labelled)), ignore_labels=True, flag="--unlabeled")
    assert sorted(inputs.x) == [f"train text {i}" for i in range(6)]  # the train file's texts, no test text
