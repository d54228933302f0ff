"""``predict``: a table in (.csv, .tsv, .jsonl or .parquet, as training reads them), the same rows plus
predicted_label and probability out as CSV, for vector, image and text checkpoints trained here on real (small) data;
errors exit with code 2, and a failed prediction leaves the old output as it was."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tiny_models import tiny_bert_source

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig

from cli_runner import run_cli


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def write_csv(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


# --- vectors: wine as a CSV --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """An MLP trained on 140 wine rows; the other 38 rows, never seen in training, are for predicting."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    train, held = order[:140], order[140:]
    folder = tmp_path_factory.mktemp("wine")
    write_csv(folder / "train.csv", [[*bunch.feature_names, "label"]] +
              [[*(f"{v:.4f}" for v in bunch.data[i]), bunch.target_names[bunch.target[i]]] for i in train])
    result = warmstart.pretrain(DataConfig(str(folder / "train.csv")), model="mlp",
                                train=TrainConfig(epochs=30, batch_size=16, progress=False), out=folder / "run")
    return bunch, held, folder, result


def test_a_csv_model_records_its_feature_columns(wine):
    bunch, _, folder, result = wine
    assert result.info.extra["feature_names"] == list(bunch.feature_names)
    meta = json.loads((folder / "run" / "model" / "metadata.json").read_text())
    assert meta["feature_names"] == list(bunch.feature_names)


def test_vector_predictions_select_features_by_name_and_keep_every_column(wine, tmp_path, capsys):
    bunch, held, folder, _ = wine
    # the features reversed, an id column first and the true label in the middle: predict selects by name
    header = ["id", *reversed(bunch.feature_names[7:]), "label", *reversed(bunch.feature_names[:7])]
    rows = [[f"w{i}", *(f"{v:.4f}" for v in reversed(bunch.data[i][7:])), bunch.target_names[bunch.target[i]],
             *(f"{v:.4f}" for v in reversed(bunch.data[i][:7]))] for i in held]
    source = write_csv(tmp_path / "in.csv", [header, *rows])
    code, out, err = run_cli(["predict", "--checkpoint", folder / "run", "--input", source, "--out",
                              tmp_path / "p.csv"], capsys)
    assert code == 0, err
    assert f"predicted {len(held)} of {len(held)} rows" in out and str(tmp_path / "p.csv") in out
    written = read_csv(tmp_path / "p.csv")
    assert written[0] == [*header, "predicted_label", "probability"]
    assert [r[:-2] for r in written[1:]] == rows  # the input's rows, in order, untouched
    predicted = [r[-2] for r in written[1:]]
    probabilities = [float(r[-1]) for r in written[1:]]
    assert set(predicted) <= set(bunch.target_names)
    assert all(0 < p <= 1 for p in probabilities)
    accuracy = np.mean([p == r[header.index("label")] for p, r in zip(predicted, rows)])
    assert accuracy > 0.8  # chance is about 0.4


def test_the_python_api_and_the_json_summary_agree(wine, tmp_path, capsys):
    bunch, held, folder, _ = wine
    source = write_csv(tmp_path / "in.csv", [list(bunch.feature_names)] +
                       [[f"{v:.4f}" for v in bunch.data[i]] for i in held[:10]])
    result = warmstart.predict(folder / "run", source, tmp_path / "api.csv")
    assert result.rows == result.predicted == 10 and sum(result.class_counts.values()) == 10
    assert list(result.class_counts) == list(bunch.target_names)
    code, out, _ = run_cli(["predict", "--checkpoint", folder / "run", "--input", source, "--out", tmp_path / "cli.csv",
                            "--json"], capsys)
    assert code == 0
    assert json.loads(out)["class_counts"] == result.class_counts
    assert (tmp_path / "cli.csv").read_text() == (tmp_path / "api.csv").read_text()


def test_a_missing_feature_column_is_named(wine, tmp_path, capsys):
    bunch, _, folder, _ = wine
    keep = [name for name in bunch.feature_names if name != "proline"]
    source = write_csv(tmp_path / "in.csv", [keep, *[["1.0"] * len(keep)] * 3])
    code, _, err = run_cli(["predict", "--checkpoint", folder / "run", "--input", source, "--out", tmp_path / "p.csv"],
                           capsys)
    assert code == 2
    assert "error:" in err and "missing the feature column(s) 'proline'" in err and "fix:" in err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("cell, message", [("", "line 3, column 'alcohol': the value is missing"),
                                           ("abc", "line 3, column 'alcohol': 'abc' is not a number")])
def test_a_bad_feature_value_names_its_line_and_column(wine, tmp_path, cell, message):
    bunch, held, folder, _ = wine
    rows = [[f"{v:.4f}" for v in bunch.data[i]] for i in held[:3]]
    rows[1][0] = cell
    source = write_csv(tmp_path / "in.csv", [list(bunch.feature_names), *rows])
    with pytest.raises(warmstart.WarmstartError, match=message):
        warmstart.predict(folder / "run", source, tmp_path / "p.csv")


def test_a_model_without_feature_names_needs_exactly_its_number_of_columns(tmp_path):
    from sklearn.datasets import load_wine

    bunch = load_wine()
    np.savez(tmp_path / "wine.npz", x=bunch.data.astype(np.float32), y=bunch.target)
    warmstart.pretrain(DataConfig(str(tmp_path / "wine.npz")), model="mlp",
                       train=TrainConfig(epochs=2, progress=False), out=tmp_path / "run")
    columns = [f"f{j}" for j in range(13)]
    good = write_csv(tmp_path / "good.csv", [[*columns, "label"], *[[*map(str, bunch.data[i]), "x"] for i in (0, 1)]])
    assert warmstart.predict(tmp_path / "run", good, tmp_path / "p.csv").predicted == 2
    # unnamed columns keep their own cells, by position: read into dicts by name, every "" column took the last
    # one's value, and the model was fed (and the output written with) other numbers than the file's
    unnamed = write_csv(tmp_path / "unnamed.csv", [["f0", *[""] * 12, "label"],
                                                   *[[*map(str, bunch.data[i]), "x"] for i in (0, 1)]])
    warmstart.predict(tmp_path / "run", unnamed, tmp_path / "p_unnamed.csv")
    assert read_csv(tmp_path / "p_unnamed.csv")[1:] == read_csv(tmp_path / "p.csv")[1:]  # the cells and predictions
    short = write_csv(tmp_path / "short.csv", [columns[:12], *[list(map(str, bunch.data[i][:12])) for i in (0, 1)]])
    with pytest.raises(warmstart.WarmstartError, match="12 feature column.*expects 13 features"):
        warmstart.predict(tmp_path / "run", short, tmp_path / "p.csv")


def test_missing_input_and_non_checkpoints_exit_2(wine, tmp_path, capsys):
    _, _, folder, _ = wine
    code, _, err = run_cli(["predict", "--checkpoint", folder / "run", "--input", tmp_path / "nope.csv",
                            "--out", tmp_path / "p.csv"], capsys)
    assert code == 2 and "nope.csv" in err and "no such file" in err
    (tmp_path / "model.safetensors").write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["predict", "--checkpoint", tmp_path, "--input", folder / "train.csv",
                            "--out", tmp_path / "p.csv"], capsys)
    assert code == 2 and "error: checkpoint" in err


# --- images: digits as PNG files ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    result = warmstart.pretrain("digits", model=ModelConfig("cnn", {"widths": [16, 32]}),
                                train=TrainConfig(epochs=6, batch_size=64, progress=False), out=out)
    assert result.metrics.accuracy > 0.85
    return out


def write_digit_images(folder: Path, count: int = 20) -> tuple[list[str], list[str]]:
    """``count`` digits as PNG files: grey 8x8 in a sub-folder, a few as colour and a few enlarged to 16x16;
    returns their paths (relative to ``folder``) and their true labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    (folder / "img").mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for n, i in enumerate(range(len(bunch.target) - count, len(bunch.target))):
        img = Image.fromarray(np.round(bunch.images[i] / 16 * 255).astype(np.uint8), mode="L")
        if n % 5 == 1:
            img = img.convert("RGB")
        elif n % 5 == 2:
            img = img.resize((16, 16), Image.NEAREST)
        img.save(folder / "img" / f"d{n}.png")
        paths.append(f"img/d{n}.png")
        labels.append(str(bunch.target[i]))
    return paths, labels


def test_image_paths_are_loaded_converted_and_predicted(digits_model, tmp_path, capsys):
    paths, labels = write_digit_images(tmp_path / "data")
    paths[0] = str((tmp_path / "data" / paths[0]).resolve())  # absolute paths work too
    source = write_csv(tmp_path / "data" / "images.csv", [["path", "note"], *[[p, f"n{i}"] for i, p in
                                                                               enumerate(paths)]])
    code, _, err = run_cli(["predict", "--checkpoint", digits_model, "--input", source, "--out", tmp_path / "p.csv",
                            "--batch-size", "8"], capsys)
    assert code == 0, err
    written = read_csv(tmp_path / "p.csv")
    assert written[0] == ["path", "note", "predicted_label", "probability"]
    assert [r[:2] for r in written[1:]] == [[p, f"n{i}"] for i, p in enumerate(paths)]
    accuracy = np.mean([r[2] == label for r, label in zip(written[1:], labels)])
    assert accuracy >= 0.8, written


def test_a_failed_prediction_leaves_the_previous_output_untouched(digits_model, tmp_path, capsys):
    paths, _ = write_digit_images(tmp_path, count=10)
    good = write_csv(tmp_path / "good.csv", [["file"], *[[p] for p in paths]])
    assert warmstart.predict(digits_model, good, tmp_path / "p.csv", image_column="file").predicted == 10
    before = (tmp_path / "p.csv").read_bytes()
    (tmp_path / "img" / "broken.png").write_text("not an image")
    bad = write_csv(tmp_path / "bad.csv", [["file"], *[[p] for p in paths], ["img/broken.png"]])
    code, _, err = run_cli(["predict", "--checkpoint", digits_model, "--input", bad, "--out", tmp_path / "p.csv",
                            "--image-column", "file", "--batch-size", "4"], capsys)
    assert code == 2 and "line 12, column 'file'" in err and "cannot be read as an image" in err
    assert (tmp_path / "p.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "img", "p.csv"]  # no temp files
    code, _, err = run_cli(["predict", "--checkpoint", digits_model, "--input", good, "--out", tmp_path / "p.csv"],
                           capsys)
    assert code == 2 and "no image path column 'path'; the columns are file" in err and "--image-column" in err


@pytest.mark.timeout(60)
def test_a_fifo_image_path_is_refused_without_blocking(digits_model, tmp_path, capsys):
    import os

    paths, _ = write_digit_images(tmp_path, count=3)
    os.mkfifo(tmp_path / "img" / "pipe.png")  # opening it would wait for a writer forever (issue 14, item 12)
    source = write_csv(tmp_path / "in.csv", [["path"], *[[p] for p in paths], ["img/pipe.png"]])
    code, _, err = run_cli(["predict", "--checkpoint", digits_model, "--input", source, "--out", tmp_path / "p.csv"],
                           capsys)
    assert code == 2 and "line 5, column 'path'" in err and "FIFO" in err and "fix:" in err, err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("side", [12, 20], ids=["warning", "error"])
def test_a_decompression_bomb_is_refused(digits_model, tmp_path, capsys, monkeypatch, side):
    from PIL import Image

    paths, _ = write_digit_images(tmp_path, count=2)
    # PIL warns above MAX_IMAGE_PIXELS and raises above twice it: a small limit makes a small file a bomb
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    Image.new("L", (side, side), 0).save(tmp_path / "img" / "bomb.png")
    source = write_csv(tmp_path / "in.csv", [["path"], *[[p] for p in paths], ["img/bomb.png"]])
    code, _, err = run_cli(["predict", "--checkpoint", digits_model, "--input", source, "--out", tmp_path / "p.csv"],
                           capsys)
    assert code == 2 and "bomb.png" in err and "decompression bomb" in err and "fix:" in err, err


# --- text: a tiny BERT fine-tuned on good/bad sentences ----------------------------------------------------------

def sentences(n: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    things = ["film", "meal", "book", "hotel", "song", "game", "phone", "trip"]
    rows = []
    for i in range(n):
        label = ("good", "bad")[i % 2]
        rows.append((f"{label} {rng.choice(things)} , really {label}", label))
    return rows


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    write_csv(folder / "train.csv", [["text", "label"], *sentences(48, seed=0)])
    warmstart.finetune("hf:" + tiny_bert_source(), DataConfig(str(folder / "train.csv"), max_length=16),
                       train=TrainConfig(epochs=4, batch_size=8, lr=1e-3, progress=False), out=folder / "run")
    return folder / "run"


def test_text_rows_are_predicted_and_an_empty_text_is_left_unpredicted(text_model, tmp_path, capsys):
    rows = sentences(12, seed=1)
    table = [["id", "text"], *[[str(i), text] for i, (text, _) in enumerate(rows)]]
    table.insert(4, ["empty", "   "])
    source = write_csv(tmp_path / "in.csv", table)
    code, out, err = run_cli(["predict", "--checkpoint", text_model, "--input", source, "--out", tmp_path / "p.csv"],
                             capsys)
    assert code == 0, err
    assert "note:" in err and "1 row(s) with an empty text in column 'text' were left unpredicted (first: line 5)" \
        in err
    assert "predicted 12 of 13 rows" in out and "(1 left unpredicted)" in out
    written = read_csv(tmp_path / "p.csv")
    assert [r[:2] for r in written] == [row[:2] for row in [["id", "text"], *table[1:]]]
    assert written[4][2:] == ["", ""]
    predicted = [r for r in written[1:] if r[0] != "empty"]
    assert all(r[2] in ("bad", "good") and 0 < float(r[3]) <= 1 for r in predicted)
    accuracy = np.mean([r[2] == label for r, (_, label) in zip(predicted, rows)])
    assert accuracy >= 0.75, written


def test_text_models_name_a_missing_text_column(text_model, tmp_path):
    source = write_csv(tmp_path / "in.csv", [["sentence"], ["good film"]])
    with pytest.raises(warmstart.WarmstartError, match="no text column 'text'; the columns are sentence"):
        warmstart.predict(text_model, source, tmp_path / "p.csv")
    assert warmstart.predict(text_model, source, tmp_path / "p.csv", text_column="sentence").predicted == 1


def test_evaluate_matches_csv_feature_columns_by_name(tmp_path):
    """A CSV whose feature columns come in another order is read by name, not by position."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    names = [n.replace("/", "_") for n in wine.feature_names]
    rows = [[*(f"{v:.4f}" for v in x), wine.target_names[t]] for x, t in zip(wine.data, wine.target)]
    ordered, reversed_ = tmp_path / "wine.csv", tmp_path / "wine_reversed.csv"
    with open(ordered, "w", newline="") as f:
        csv.writer(f).writerows([[*names, "label"], *rows])
    with open(reversed_, "w", newline="") as f:
        csv.writer(f).writerows([["label", *names[::-1]], *([r[-1], *r[:-1][::-1]] for r in rows)])
    run = warmstart.pretrain(str(ordered), model="mlp", train=TrainConfig(epochs=20, batch_size=16, progress=False),
                             out=tmp_path / "run")
    same = warmstart.evaluate(tmp_path / "run", str(reversed_), split="test")  # the run's own hold-out
    assert same.accuracy == pytest.approx(run.metrics.accuracy)


def test_rows_of_empty_cells_are_kept_in_place_not_dropped(text_model, wine, tmp_path, capsys):
    # a one-column CSV's empty text ("" or spaces) is a row, left unpredicted; only a blank line is no row
    source = tmp_path / "in.csv"
    source.write_text('text\ngood film really good\n""\nbad meal really bad\n   \n\ngood song\n')
    code, out, err = run_cli(["predict", "--checkpoint", text_model, "--input", source, "--out", tmp_path / "p.csv"],
                             capsys)
    assert code == 0, err
    written = read_csv(tmp_path / "p.csv")
    assert [r[0] for r in written[1:]] == ["good film really good", "", "bad meal really bad", "   ", "good song"]
    assert written[2][1:] == ["", ""] and written[4][1:] == ["", ""]
    assert "2 row(s) with an empty text" in err and "predicted 3 of 5 rows" in out
    # a vector row of empty cells is a row with missing values, not a blank line to skip
    bunch, held, folder, _ = wine
    rows = [[*bunch.feature_names], [f"{v:.4f}" for v in bunch.data[held[0]]], [""] * len(bunch.feature_names)]
    code, _, err = run_cli(["predict", "--checkpoint", folder / "run", "--input", write_csv(tmp_path / "v.csv", rows),
                            "--out", tmp_path / "v_out.csv"], capsys)
    assert code == 2 and "line 3, column 'alcohol': the value is missing" in err


def write_table(path: Path, rows: list[list]) -> Path:
    """``rows`` (a header, then data) as the file ``path`` names: .tsv, .jsonl (one object per row) or .parquet."""
    header, data = rows[0], rows[1:]
    if path.suffix == ".tsv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter="\t").writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, row))) + "\n" for row in data), encoding="utf-8")
    else:
        arrow = pytest.importorskip("pyarrow")
        import pyarrow.parquet

        pyarrow.parquet.write_table(arrow.table({name: [row[j] for row in data] for j, name in enumerate(header)}),
                                    path)
    return path


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl", ".parquet"])
def test_every_table_format_training_reads_predicts_as_its_csv(text_model, wine, suffix, tmp_path, capsys):
    # text: the same rows as .csv and as another format give the same output file, the empty text's place included
    table = [["id", "text"], *[[str(i), text] for i, (text, _) in enumerate(sentences(10, seed=2))]]
    table.insert(3, ["empty", ""])
    warmstart.predict(text_model, write_csv(tmp_path / "in.csv", table), tmp_path / "from_csv.csv")
    code, out, err = run_cli(["predict", "--checkpoint", text_model, "--input", write_table(tmp_path / f"in{suffix}",
                              table), "--out", tmp_path / "other.csv"], capsys)
    assert code == 0, err
    assert "predicted 10 of 11 rows" in out
    place = "row 3" if suffix == ".parquet" else "line 4" if suffix == ".tsv" else "line 3"
    assert f"(first: {place})" in err
    assert (tmp_path / "other.csv").read_text() == (tmp_path / "from_csv.csv").read_text()
    # vectors: JSON numbers (and Parquet doubles) are read as training reads them; the predictions are the CSV's
    bunch, held, folder, _ = wine
    header = [*bunch.feature_names, "label"]
    numbers = [[*(round(float(v), 4) for v in bunch.data[i]), str(bunch.target_names[bunch.target[i]])]
               for i in held]
    expected = warmstart.predict(folder / "run", write_csv(tmp_path / "v.csv", [header, *numbers]),
                                 tmp_path / "v_csv.csv")
    result = warmstart.predict(folder / "run", write_table(tmp_path / f"v{suffix}", [header, *numbers]),
                               tmp_path / "v_other.csv")
    assert result.to_dict() | {"out": ""} == expected.to_dict() | {"out": ""}
    assert [r[-2:] for r in read_csv(tmp_path / "v_other.csv")] == [r[-2:] for r in read_csv(tmp_path / "v_csv.csv")]


def test_a_json_list_as_text_is_refused_naming_the_line(text_model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "good film"}\n\n{"text": ["bad", "meal"]}\n')
    with pytest.raises(warmstart.WarmstartError, match=r"in\.jsonl, line 3: the field 'text' holds a JSON list"):
        warmstart.predict(text_model, source, tmp_path / "p.csv")


def test_unnamed_columns_are_written_back_each_with_its_own_cells(text_model, tmp_path):
    source = write_csv(tmp_path / "in.csv", [["text", "", ""], ["good film", "a", "b"], ["bad meal", "c", "d"]])
    warmstart.predict(text_model, source, tmp_path / "p.csv")
    assert [r[:3] for r in read_csv(tmp_path / "p.csv")] == [["text", "", ""], ["good film", "a", "b"],
                                                              ["bad meal", "c", "d"]]


def test_a_row_with_fewer_fields_than_the_header_is_refused(text_model, tmp_path, capsys):
    """A text broken over two lines by an unquoted line break is two short rows; filled with empty cells, its halves
    were predicted as rows of their own."""
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,who wrote\nHamlet ?\n2,where is it\n")
    code, _, err = run_cli(["predict", "--checkpoint", text_model, "--input", source, "--out", tmp_path / "p.csv"],
                           capsys)
    assert code == 2 and "in.csv, line 3: 1 field(s), but the header has 2" in err, err
    assert "quote a field that holds a line break" in err
    assert not (tmp_path / "p.csv").exists()


def test_parquet_lists_and_structs_are_refused_and_bytes_read_as_text(text_model, tmp_path):
    """They were read as their Python repr: the text [['what', 'is']] was predicted as "['what', 'is']"."""
    arrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet

    texts = [text for text, _ in sentences(6, seed=3)]
    for name, column in (("list", arrow.array([text.split() for text in texts])),
                         ("struct", arrow.array([{"body": text} for text in texts]))):
        pyarrow.parquet.write_table(arrow.table({"text": column}), tmp_path / f"{name}.parquet")
        with pytest.raises(warmstart.WarmstartError, match=rf"{name}\.parquet, row 1: the column 'text' holds a "
                                                           rf"Parquet {name}") as error:
            warmstart.predict(text_model, tmp_path / f"{name}.parquet", tmp_path / "p.csv")
        assert "give 'text' a string" in error.value.hint
    pyarrow.parquet.write_table(arrow.table({"text": texts}), tmp_path / "str.parquet")
    pyarrow.parquet.write_table(arrow.table({"text": [text.encode() for text in texts]}), tmp_path / "bytes.parquet")
    warmstart.predict(text_model, tmp_path / "str.parquet", tmp_path / "str.csv")
    warmstart.predict(text_model, tmp_path / "bytes.parquet", tmp_path / "bytes.csv")
    assert (tmp_path / "bytes.csv").read_text() == (tmp_path / "str.csv").read_text()


def test_a_json_lines_file_of_empty_objects_is_said_to_have_no_keys(text_model, tmp_path):
    (tmp_path / "in.jsonl").write_text("{}\n{}\n")
    with pytest.raises(warmstart.WarmstartError, match=r"in\.jsonl: every JSON object in it is \{\}: no keys"):
        warmstart.predict(text_model, tmp_path / "in.jsonl", tmp_path / "p.csv")


def test_predict_names_what_it_cannot_read_instead_of_misreading_it(text_model, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("good film\n")
    code, _, err = run_cli(["predict", "--checkpoint", text_model, "--input", source, "--out", tmp_path / "p.csv"],
                           capsys)
    assert code == 2 and "a .txt file; predict reads a .csv, .tsv, .jsonl or .parquet table of rows" in err
    assert "fix: add a header line" in err
    warmstart.export_model(text_model, "torchscript", out=tmp_path / "ts")
    write_csv(tmp_path / "in.csv", [["text"], ["good film"]])
    code, _, err = run_cli(["predict", "--checkpoint", tmp_path / "ts", "--input", tmp_path / "in.csv", "--out",
                            tmp_path / "p.csv"], capsys)
    assert code == 2 and "a TorchScript export; predict runs checkpoints and ONNX exports" in err
