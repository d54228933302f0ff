"""``export --quantize int8``: onnxruntime's dynamic int8 quantization, checked by top-1 agreement with PyTorch on
real inputs; the int8 model is smaller, is what ``predict`` runs, and a quantization that changes too many
predictions is refused with nothing written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.export.quantize import agreement, check_agreement

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An MLP and a CNN trained on digits long enough to be confident (int8 rounding flips no clear prediction)."""
    root = tmp_path_factory.mktemp("quantize")
    train = TrainConfig(epochs=4, batch_size=32, progress=False, trackers=())
    for name in ("mlp", "cnn"):
        options = {"widths": [8, 16]} if name == "cnn" else {}
        warmstart.pretrain(DataConfig("digits"), model=ModelConfig(name, options), train=train, out=root / name)
    return root


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_an_int8_export_is_smaller_quantized_and_agrees_with_pytorch(models, model, tmp_path):
    import onnx

    plain = warmstart.export_model(models / model, "onnx", out=tmp_path / "fp32")
    result = warmstart.export_model(models / model, "onnx", out=tmp_path / "int8", quantize="int8", examples=64)
    assert result.quantize == "int8" and result.agreement >= 0.95
    metadata = json.loads((tmp_path / "int8" / "export.json").read_text())
    record = metadata["quantization"]
    assert record["weights"] == "int8" and record["agreement"] == result.agreement
    assert record["float32_bytes"] == plain.model_file.stat().st_size
    assert record["bytes"] == result.model_file.stat().st_size < record["float32_bytes"]
    # the graph really runs integer arithmetic, and the float export has none
    ops = {node.op_type for node in onnx.load(str(result.model_file)).graph.node}
    assert "DynamicQuantizeLinear" in ops and ops & {"MatMulInteger", "ConvInteger"}
    assert not {node.op_type for node in onnx.load(str(plain.model_file)).graph.node} & {"MatMulInteger",
                                                                                         "ConvInteger"}
    # the logits moved (it is not the float model under another name), the predictions did not
    assert record["max_abs_difference"] > 1e-6 and metadata["parity"]["of"].startswith("the float32 graph")


def test_predict_runs_the_int8_model_and_mostly_agrees_with_the_checkpoint(models, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    (tmp_path / "img").mkdir()
    for i in range(200):  # digits is an image set: predict reads image files
        Image.fromarray(np.round(digits.images[-1 - i] / 16 * 255).astype(np.uint8), mode="L").save(
            tmp_path / "img" / f"{i}.png")
    with open(tmp_path / "in.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path"], *[[f"img/{i}.png"] for i in range(200)]])
    int8 = warmstart.export_model(models / "mlp", "onnx", out=tmp_path / "int8", quantize="int8")
    warmstart.predict(models / "mlp", tmp_path / "in.csv", tmp_path / "torch.csv")
    warmstart.predict(int8.model_file.parent, tmp_path / "in.csv", tmp_path / "int8.csv")
    by_torch, by_int8 = read_csv(tmp_path / "torch.csv")[1:], read_csv(tmp_path / "int8.csv")[1:]
    same = np.mean([a[-2] == b[-2] for a, b in zip(by_torch, by_int8)])
    assert same >= 0.95
    # probabilities are close, not equal: the int8 model really ran
    difference = np.abs(np.array([float(a[-1]) for a in by_torch]) - np.array([float(b[-1]) for b in by_int8]))
    assert 0 < difference.max() < 0.2


def test_a_quantization_below_the_agreement_asked_for_is_refused_and_writes_nothing(models, tmp_path, monkeypatch):
    # the gate itself
    with pytest.raises(WarmstartError, match=r"predicts the same class as PyTorch on 87\.5% of 8 test inputs, below "
                                             r"--min-agreement 0\.95"):
        check_agreement(0.875, 0.95, "8 test inputs", "runs/x")
    check_agreement(0.95, 0.95, "8 test inputs", "runs/x")
    # end to end, with a "quantizer" that scrambles the weights: refused, and the --out folder never made
    import warmstart.export as export

    def scramble(fp32, out):
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(fp32))
        for i, tensor in enumerate(model.graph.initializer):
            values = numpy_helper.to_array(tensor)
            if values.dtype == np.float32:
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(
                    np.random.default_rng(i).permutation(values.ravel()).reshape(values.shape), tensor.name))
        onnx.save(model, str(out))

    monkeypatch.setattr(export, "quantize_int8", scramble)
    with pytest.raises(WarmstartError, match="below --min-agreement 0.95"):
        warmstart.export_model(models / "mlp", "onnx", out=tmp_path / "bad", quantize="int8", examples=64)
    assert not (tmp_path / "bad").exists()


def test_agreement_counts_top1_matches():
    reference = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1]])
    candidate = np.array([[1.5, 1.0], [0.0, 2.0], [0.1, 0.5], [0.3, 0.1]])
    assert agreement(reference, candidate) == 0.75
    with pytest.raises(ValueError):
        agreement(reference, candidate[:3])


def test_the_export_command_quantizes_and_refuses_bad_use(models, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--checkpoint", str(models / "mlp"), "--format", "onnx", "--quantize", "int8", "--out",
              str(tmp_path / "e")])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "int8: the quantized model predicts the same class as PyTorch on" in out
    for args, message in ((["--format", "torchscript", "--quantize", "int8"], "needs --format onnx"),
                          (["--format", "onnx", "--quantize", "int4"], "--quantize 'int4': expected int8"),
                          (["--format", "onnx", "--quantize", "int8", "--min-agreement", "1.5"],
                           "--min-agreement: expected a number in [0, 1]")):
        with pytest.raises(SystemExit) as exit_info:
            main(["export", "--checkpoint", str(models / "mlp"), "--out", str(tmp_path / "x"), *args])
        assert exit_info.value.code != 0 and message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()
