"""How text tables (.csv, .tsv, .jsonl, .parquet) are read, for training and for predict: every cell kept by
position, values that are no text refused where a text or label is read, and errors that say where and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmstart.data.text import load_text_table, read_table
from warmstart.errors import WarmstartError

arrow = pytest.importorskip("pyarrow")
parquet = pytest.importorskip("pyarrow.parquet")


def write_parquet(path: Path, columns: dict) -> Path:
    parquet.write_table(arrow.table(columns), path)
    return path


def test_unnamed_columns_keep_their_own_cells_by_position(tmp_path):
    """Rows as dicts by name gave every unnamed column the last one's value: 1,0,5 was read (and predicted) as 1,5,5."""
    (tmp_path / "t.csv").write_text("f1,,\n1,0,5\n1,5,0\n")
    table = read_table(tmp_path / "t.csv")
    assert table.columns == ["f1", "", ""]
    assert table.cells == [["1", "0", "5"], ["1", "5", "0"]]


@pytest.mark.parametrize("suffix, separator", [(".csv", ","), (".tsv", "\t")])
def test_a_short_row_is_filled_for_training_and_refused_when_asked(tmp_path, suffix, separator):
    path = tmp_path / f"t{suffix}"
    path.write_text(f"id{separator}text\n1{separator}who wrote\nHamlet ?\n")
    assert read_table(path).cells == [["1", "who wrote"], ["Hamlet ?", ""]]  # training: as before
    with pytest.raises(WarmstartError, match=rf"t\{suffix}, line 3: 1 field\(s\), but the header has 2") as error:
        read_table(path, fill_short_rows=False)  # predict
    assert "quote a field that holds a line break or a " + ("tab" if suffix == ".tsv" else "comma") in error.value.hint


@pytest.mark.parametrize("column, value, kind", [
    ("label", ["a"], "list"),
    ("text", {"body": "what is it"}, "struct"),
])
def test_a_parquet_list_or_struct_as_text_or_label_is_refused(tmp_path, column, value, kind):
    """They were read as their Python repr: the label ['a'] made a class named "['a']"."""
    rows = {"text": [f"question {i} ?" for i in range(6)], "label": ["ab"[i % 2] for i in range(6)],
            "meta": [{"id": i} for i in range(6)]}  # a nested column nobody reads is fine
    train, _ = load_text_table(write_parquet(tmp_path / "ok.parquet", rows), "text", "label")
    assert train.class_names == ("a", "b")
    rows[column] = [value] * 6
    with pytest.raises(WarmstartError, match=rf"bad\.parquet, row 1: the column '{column}' holds a Parquet {kind}") \
            as error:
        load_text_table(write_parquet(tmp_path / "bad.parquet", rows), "text", "label")
    assert f"({json.dumps(value)})" in str(error.value)  # shown as JSON, not as its Python repr
    assert f"give '{column}' a string in every row" in error.value.hint


def test_a_parquet_map_as_text_is_refused(tmp_path):
    column = arrow.array([[("body", "what is it")]] * 2, type=arrow.map_(arrow.string(), arrow.string()))
    with pytest.raises(WarmstartError, match="row 1: the column 'text' holds a Parquet map"):
        load_text_table(write_parquet(tmp_path / "m.parquet", {"text": column, "label": ["a", "b"]}), "text", "label")


def test_parquet_bytes_are_read_as_utf8_text_and_refused_where_they_are_not(tmp_path):
    rows = {"text": ["what is it ?".encode(), "où est-il ?".encode()], "label": [b"a", b"b"],
            "blob": [b"\xff\x00", b"\x80"]}  # bytes nobody reads may be anything
    train, _ = load_text_table(write_parquet(tmp_path / "b.parquet", rows), "text", "label")
    assert train.class_names == ("a", "b") and list(train.x) == ["what is it ?", "où est-il ?"]
    rows["text"][1] = "café".encode("latin-1")
    with pytest.raises(WarmstartError, match=r"row 2: the column 'text' holds bytes that are not UTF-8 text") as error:
        load_text_table(write_parquet(tmp_path / "latin.parquet", rows), "text", "label")
    assert "as UTF-8 text" in error.value.hint


def test_a_parquet_file_naming_a_column_twice_is_refused_by_name(tmp_path):
    table = arrow.Table.from_arrays([arrow.array(["hi"]), arrow.array(["a"]), arrow.array(["b"])],
                                    names=["text", "label", "label"])
    parquet.write_table(table, tmp_path / "twice.parquet")
    with pytest.raises(WarmstartError, match=r"twice\.parquet: the table names a column twice \('label'\)") as error:
        load_text_table(tmp_path / "twice.parquet", "text", "label")
    assert "its own name" in error.value.hint and "FieldRef" not in str(error.value)


def test_json_lines_messages_name_lines_and_objects_without_keys(tmp_path):
    (tmp_path / "nested.jsonl").write_text('{"text": "hi", "label": "a"}\n\n{"text": ["hi"], "label": "a"}\n')
    with pytest.raises(WarmstartError, match=r"nested\.jsonl, line 3: the field 'text' holds a JSON list"):
        load_text_table(tmp_path / "nested.jsonl", "text", "label")
    (tmp_path / "keyless.jsonl").write_text("{}\n{}\n")
    with pytest.raises(WarmstartError, match=r"the columns are none \(every JSON object in it is \{\}, with no keys"):
        load_text_table(tmp_path / "keyless.jsonl", "text", "label")


def test_a_tsv_text_starting_with_a_quote_names_its_line_and_the_fix(tmp_path):
    (tmp_path / "t.tsv").write_text('text\tlabel\nfine film\ta\n"Great" movie\tb\n')
    with pytest.raises(WarmstartError, match=r"t\.tsv, line 3: cannot be read as TSV") as error:
        read_table(tmp_path / "t.tsv")
    assert '"""Great"" movie"' in error.value.hint
    (tmp_path / "quoted.tsv").write_text('text\tlabel\nfine film\ta\n"""Great"" movie"\tb\n')
    assert read_table(tmp_path / "quoted.tsv").cells[1] == ['"Great" movie', "b"]
