"""Export for serving: ONNX (through onnxruntime) and TorchScript agree with PyTorch within 1e-4 on real inputs,
at other batch sizes (and, for text, other sequence lengths); ``predict`` gives an ONNX export's predictions as it
gives the checkpoint's."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from tiny_models import tiny_bert_source

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.cli import main
from warmstart.errors import WarmstartError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def sentences(n, seed):
    rng = np.random.default_rng(seed)
    things = ["film", "meal", "book", "hotel", "song", "game", "phone", "trip"]
    return [(f"{label} {rng.choice(things)} , really {label}" + " indeed" * int(rng.integers(0, 4)), label)
            for label in (("good", "bad")[i % 2] for i in range(n))]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Real tiny runs: an MLP and a CNN on digits, and a tiny BERT fine-tuned on a sentiment CSV."""
    root = tmp_path_factory.mktemp("export")
    quiet = TrainConfig(epochs=2, batch_size=32, progress=False, trackers=())
    for name in ("mlp", "cnn"):
        options = {"widths": [8, 16]} if name == "cnn" else {}
        warmstart.pretrain(DataConfig("digits"), model=ModelConfig(name, options), train=quiet, out=root / name)
    write_csv(root / "text.csv", [["text", "label"], *sentences(60, seed=0)])
    warmstart.finetune("hf:" + tiny_bert_source(), DataConfig(str(root / "text.csv"), max_length=16),
                       train=TrainConfig(epochs=2, batch_size=8, progress=False, trackers=()), out=root / "text")
    return root


@pytest.mark.parametrize("model", ["mlp", "cnn", "text"])
def test_onnx_export_agrees_with_pytorch_on_real_inputs(models, model, tmp_path):
    result = warmstart.export_model(models / model, "onnx", out=tmp_path / "onnx")
    assert result.max_abs_difference <= 1e-4 and result.examples >= 2
    metadata = json.loads((tmp_path / "onnx" / "export.json").read_text())
    checks = metadata["parity"]["per_check"]
    assert len(checks) == (3 if model == "text" else 2) and max(checks) == result.max_abs_difference
    assert metadata["class_names"] == json.loads((models / model / "model" / "metadata.json").read_text())[
        "class_names"]
    assert metadata["preprocessing"]["kind"] == ("text" if model == "text" else "image")
    # dynamic axes, checked here too: onnxruntime takes batches (and sequences) of other sizes than the export's
    import onnxruntime

    session = onnxruntime.InferenceSession(str(result.model_file), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    if model == "text":
        assert set(shapes) == {"input_ids", "attention_mask"}
        assert all(isinstance(d, str) for d in shapes["input_ids"])
    else:
        assert isinstance(shapes["input"][0], str) and shapes["input"][1:] == metadata["input_shape"]


@pytest.mark.parametrize("model", ["mlp", "cnn", "text"])
def test_torchscript_export_agrees_with_pytorch(models, model, tmp_path):
    result = warmstart.export_model(models / model, "torchscript", out=tmp_path / "ts")
    assert result.max_abs_difference <= 1e-4
    assert result.model_file.name == "model.pt" and (tmp_path / "ts" / "export.json").is_file()


def test_export_command_prints_the_difference_and_rejects_bad_use(models, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--checkpoint", str(models / "mlp"), "--format", "onnx", "--out", str(tmp_path / "e")])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "max |exported - pytorch| = " in out and "tolerance 0.0001" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--checkpoint", str(models / "mlp"), "--format", "tflite"])
    assert exit_info.value.code == 2 and "expected one of onnx, torchscript" in capsys.readouterr().err
    # a tolerance that onnxruntime's float arithmetic cannot meet on a CNN: the export refuses and writes nothing
    with pytest.raises(WarmstartError, match="disagrees with PyTorch"):
        warmstart.export_model(models / "cnn", "onnx", out=tmp_path / "strict", tolerance=1e-30)
    assert not (tmp_path / "strict").exists()


def test_predict_with_an_onnx_export_matches_the_checkpoint(models, tmp_path):
    export = warmstart.export_model(models / "text", "onnx", out=tmp_path / "onnx")
    rows = sentences(20, seed=3)
    source = write_csv(tmp_path / "in.csv", [["text"], *[[text] for text, _ in rows]])
    warmstart.predict(models / "text", source, tmp_path / "torch.csv")
    for target in (tmp_path / "onnx", export.model_file):  # the folder or the .onnx file
        warmstart.predict(target, source, tmp_path / "onnx.csv")
        by_torch, by_onnx = read_csv(tmp_path / "torch.csv"), read_csv(tmp_path / "onnx.csv")
        assert [r[1] for r in by_onnx] == [r[1] for r in by_torch]
        assert np.allclose([float(r[2]) for r in by_onnx[1:]], [float(r[2]) for r in by_torch[1:]], atol=1e-5)


def test_predict_with_an_onnx_export_of_an_image_model_matches_the_checkpoint(models, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    (tmp_path / "img").mkdir()
    for i in range(12):
        Image.fromarray(np.round(digits.images[-1 - i] / 16 * 255).astype(np.uint8), mode="L").save(
            tmp_path / "img" / f"{i}.png")
    source = write_csv(tmp_path / "in.csv", [["path"], *[[f"img/{i}.png"] for i in range(12)]])
    export = warmstart.export_model(models / "cnn", "onnx", out=tmp_path / "onnx")
    warmstart.predict(models / "cnn", source, tmp_path / "torch.csv")
    warmstart.predict(export.model_file.parent, source, tmp_path / "onnx.csv")
    by_torch, by_onnx = read_csv(tmp_path / "torch.csv"), read_csv(tmp_path / "onnx.csv")
    assert [r[1] for r in by_onnx] == [r[1] for r in by_torch]
    assert np.allclose([float(r[2]) for r in by_onnx[1:]], [float(r[2]) for r in by_torch[1:]], atol=1e-5)


def test_an_onnx_text_model_is_run_on_the_batch_cut_to_its_longest_text_as_pytorch_is(models, tmp_path):
    from warmstart.export import load_onnx_export
    from warmstart.models import load_checkpoint

    export = warmstart.export_model(models / "text", "onnx", out=tmp_path / "onnx")
    onnx_model, _ = load_onnx_export(export.model_file.parent)
    net, _ = load_checkpoint(models / "text")
    pad = onnx_model.pad_id
    ids = torch.full((3, 16), pad, dtype=torch.long)
    ids[:, 0], ids[0, 1:5], ids[1, 1:3] = pad + 1, pad + 2, pad + 3  # texts of 5, 3 and 1 tokens, padded to 16
    fed = []
    run = onnx_model.session.run
    onnx_model.session.run = lambda names, feeds: fed.append(feeds) or run(names, feeds)
    logits = onnx_model(ids)
    assert fed[0]["input_ids"].shape == (3, 5) and fed[0]["attention_mask"].tolist()[2] == [1, 0, 0, 0, 0]
    untrimmed = run(None, {"input_ids": ids.numpy(), "attention_mask": (ids != pad).long().numpy()})[0]
    assert np.allclose(logits.numpy(), untrimmed, atol=1e-5)  # the padding columns changed nothing
    with torch.no_grad():
        assert np.allclose(logits.numpy(), net.eval()(ids).numpy(), atol=1e-4)


def test_an_export_folder_never_pairs_one_export_s_model_with_another_s_metadata(models, tmp_path):
    # an ONNX export, then a TorchScript export of another model into the same folder: export.json now describes the
    # TorchScript model, so the ONNX file beside it would be read with the wrong classes and preprocessing
    folder = tmp_path / "e"
    warmstart.export_model(models / "mlp", "onnx", out=folder)
    warmstart.export_model(models / "cnn", "torchscript", out=folder)
    assert not (folder / "model.onnx").exists() and (folder / "model.pt").is_file()
    # and a model.onnx put back beside a TorchScript export.json (a copy, a half-finished sync) is refused
    warmstart.export_model(models / "mlp", "onnx", out=tmp_path / "o")
    (tmp_path / "o" / "model.onnx").replace(folder / "model.onnx")
    from warmstart.export import load_onnx_export

    with pytest.raises(WarmstartError, match="describes a 'torchscript' export .'model.pt'., not model.onnx"):
        load_onnx_export(folder)


def test_export_refuses_an_out_holding_a_run_a_checkpoint_or_a_comparison(models, tmp_path):
    # `export -c mlp --out cnn` wrote model.onnx into the CNN's run, and `predict -c cnn` then ran the MLP's export
    comparison = tmp_path / "cmp"
    comparison.mkdir()
    (comparison / "compare.json").write_text("{}")
    for out, what in [(models / "cnn", "a training run"), (models / "mlp", "a training run"),
                      (models / "cnn" / "model", "a checkpoint"), (comparison, "a comparison")]:
        with pytest.raises(WarmstartError, match=f"holds {what}") as error:
            warmstart.export_model(models / "mlp", "onnx", out=out)
        assert "a folder of its own" in error.value.hint and "export-onnx" in error.value.hint
        assert not (out / "model.onnx").exists() and not (out / "export.json").exists()
    # an export folder is exported into again, and the default (RUN/export-FORMAT) stays fine
    warmstart.export_model(models / "mlp", "onnx", out=tmp_path / "e")
    warmstart.export_model(models / "mlp", "onnx", out=tmp_path / "e")
    assert warmstart.export_model(models / "mlp", "onnx").model_file == models / "mlp" / "export-onnx" / "model.onnx"


def test_a_run_folder_predicts_with_its_checkpoint_even_beside_an_onnx_export(models, tmp_path):
    import shutil

    from warmstart.export import OnnxClassifier, load_predictor

    warmstart.export_model(models / "mlp", "onnx", out=tmp_path / "e")
    run = shutil.copytree(models / "cnn", tmp_path / "run")
    for name in ("model.onnx", "export.json"):  # put there by hand, or by an export from before the refusal
        shutil.copy(tmp_path / "e" / name, run / name)
        shutil.copy(tmp_path / "e" / name, run / "model" / name)
    for folder in (run, run / "model"):
        net, info = load_predictor(folder)
        assert not isinstance(net, OnnxClassifier) and info.arch == "cnn"
    net, info = load_predictor(tmp_path / "e")  # an export folder predicts with its export
    assert isinstance(net, OnnxClassifier) and info.arch == "mlp"


def test_an_export_whose_metadata_lists_other_classes_than_its_model_outputs_is_refused(models, tmp_path):
    # two exports into one --out at once can leave one's model.onnx beside the other's export.json: predict died
    # with an IndexError on the class names
    from warmstart.export import load_onnx_export

    warmstart.export_model(models / "mlp", "onnx", out=tmp_path / "ten")  # 10 digit classes
    warmstart.export_model(models / "text", "onnx", out=tmp_path / "two")  # 2 classes
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (tmp_path / "ten" / "model.onnx").replace(mixed / "model.onnx")
    (tmp_path / "two" / "export.json").replace(mixed / "export.json")
    with pytest.raises(WarmstartError, match="model.onnx outputs 10 logits per example, but export.json lists 2 "
                                             "classes") as error:
        load_onnx_export(mixed)
    assert str(mixed) in error.value.message and "export the checkpoint again" in error.value.hint
    source = write_csv(tmp_path / "in.csv", [["text"], ["good film"]])
    with pytest.raises(WarmstartError, match="outputs 10 logits"):
        warmstart.predict(mixed, source, tmp_path / "out.csv")


def test_export_s_hint_for_data_of_another_image_size_names_what_export_takes(models, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    big = np.repeat(np.repeat(digits.images, 2, axis=1), 2, axis=2).astype(np.float32)  # 16x16 digits
    np.savez(tmp_path / "dig16.npz", x=big, y=digits.target)
    with pytest.raises(WarmstartError, match="1x16x16") as error:
        warmstart.export_model(models / "cnn", "onnx", data=str(tmp_path / "dig16.npz"), out=tmp_path / "e")
    assert "--resize" not in error.value.hint and "--data" in error.value.hint and "1x8x8" in error.value.hint
