"""Bad user input: every mistake is a WarmstartError naming the file, field or parameter, and on the command line
one short ``error:`` message with exit code 2 and no traceback. A failed run leaves nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from warmstart import api
from warmstart.cli import main
from warmstart.config import DataConfig, ModelConfig, TrainConfig
from warmstart.engine import Callback
from warmstart.errors import WarmstartError

TINY = TrainConfig(epochs=1, batch_size=64, progress=False)
QUIET = ["--epochs", "1", "--quiet"]


def run_cli(argv: list[str], capsys) -> str:
    """Run the CLI expecting a user error; return its stderr after checking the exit code and the format."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error:"), err
    assert "Traceback" not in err
    return err


def run_cli_ok(argv: list[str], capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert exit_info.value.code in (0, None), err
    return out


def half_written(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")] \
        if folder.exists() else []


# ---------------------------------------------------------------- shared inputs

@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A tiny mlp pretrained on digits for one epoch, through the CLI."""
    out = tmp_path_factory.mktemp("ckpt") / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--model", "mlp", "--model-option", "hidden=[16]", *QUIET,
              "--out", str(out)])
    assert exit_info.value.code in (0, None)
    assert (out / "model" / "model.safetensors").is_file()
    return out


@pytest.fixture(scope="module")
def pretrained_28(tmp_path_factory) -> Path:
    """A tiny mlp pretrained on a 28x28 grey .npz with the digits' class names."""
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    path = folder / "big.npz"
    np.savez(path, x=rng.integers(0, 256, size=(60, 28, 28), dtype=np.uint8), y=np.arange(60) % 10)
    api.pretrain(DataConfig(str(path)), model="mlp", train=TINY, out=folder / "run")
    return folder / "run"


def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# Each case: a name, a function building the --data argument in tmp_path, extra CLI arguments, the API
# DataConfig fields, and words the message must contain ("{path}" is replaced by the data path).
DATA_CASES = {
    "unknown dataset": (lambda tmp: "imagenet-21k", {}, ["'imagenet-21k'", "digits", "fashion-mnist"]),
    "missing file": (lambda tmp: str(tmp / "nowhere" / "data.npz"), {}, ["{path}", "no such file"]),
    "unsupported file type": (lambda tmp: _csv(tmp / "data.xlsx", "x"), {}, ["{path}", ".xlsx"]),
    "csv without the label column": (
        lambda tmp: _csv(tmp / "t.csv", "height,width,kind\n1,2,a\n3,4,b\n"), {"label_column": "species"},
        ["{path}", "'species'", "height, width, kind", "--label-column"]),
    "csv with nan": (
        lambda tmp: _csv(tmp / "t.csv", "a,b,label\n1,2,x\n3,nan,y\n"), {},
        ["{path}", "line 3", "column 'b'", "nan"]),
    "csv with an empty feature": (
        lambda tmp: _csv(tmp / "t.csv", "a,b,label\n1,2,x\n3,4,y\n,5,x\n"), {},
        ["{path}", "line 4", "column 'a'", "missing"]),
    "csv with text in a feature": (
        lambda tmp: _csv(tmp / "t.csv", "a,b,label\n1,2,x\n3,four,y\n"), {},
        ["{path}", "line 3", "column 'b'", "'four'", "not a number"]),
    "csv with a short row": (
        lambda tmp: _csv(tmp / "t.csv", "a,b,label\n1,2,x\n3,y\n"), {}, ["{path}", "line 3", "2 fields"]),
    "csv naming a column twice": (
        lambda tmp: _csv(tmp / "t.csv", "a,b,a,label\n1,2,3,x\n3,4,5,y\n"), {},
        ["{path}", "names a column twice", "'a' in columns 1, 3"]),
    "text csv naming its text column twice": (
        lambda tmp: _csv(tmp / "t.csv", "text,text,label\nhello,there,x\nhow are,you,y\n"), {},
        ["{path}", "'text' in columns 1, 2"]),
    "jsonl naming a field twice": (
        lambda tmp: _csv(tmp / "t.jsonl", '{"text": "hi", "label": "x"}\n{"text": "a", "text": "b", "label": "y"}\n'),
        {}, ["{path}", "line 2", "'text' twice"]),
    "csv with an empty label": (
        lambda tmp: _csv(tmp / "t.csv", "a,b,label\n1,2,x\n3,4,\n"), {}, ["{path}", "line 3", "'label'", "empty"]),
    "npz with nan": (
        lambda tmp: _save(tmp / "n.npz", x=np.array([[0.0, 1.0], [2.0, np.nan], [1.0, 1.0]]), y=np.arange(3)),
        {}, ["{path}", "'x'", "NaN", "index 1"]),
    "npz with inf in x_test": (
        lambda tmp: _save(tmp / "n.npz", x=np.zeros((2, 2)), y=np.arange(2), x_test=np.full((1, 2), np.inf),
                          y_test=np.arange(1)),
        {}, ["{path}", "'x_test'", "infinite"]),
    "npz without y": (
        lambda tmp: _save(tmp / "n.npz", x=np.zeros((3, 2)), labels=np.arange(3)), {},
        ["{path}", "missing array(s) y", "found x, labels"]),
    "npz with object arrays": (
        lambda tmp: _save(tmp / "n.npz", x=np.array([{"a": 1}] * 3, dtype=object), y=np.arange(3)), {},
        ["{path}", "cannot be read"]),
    "npz that is not an npz": (lambda tmp: _csv(tmp / "n.npz", "just text"), {}, ["{path}", "cannot be read"]),
    "npz with more labels than examples": (
        lambda tmp: _save(tmp / "n.npz", x=np.zeros((3, 2)), y=np.arange(4)), {},
        ["{path}", "3 examples", "4 labels"]),
    "npz with labels in two columns": (
        lambda tmp: _save(tmp / "n.npz", x=np.zeros((3, 2)), y=np.zeros((3, 2), int)), {}, ["{path}", "'y'"]),
    "npz with no examples": (
        lambda tmp: _save(tmp / "n.npz", x=np.zeros((0, 2)), y=np.zeros(0, int)), {}, ["{path}", "no examples"]),
    "npz label outside class_names": (
        lambda tmp: _save(tmp / "n.npz", x=np.zeros((3, 2)), y=np.array([0, 1, 5]), class_names=np.array(["a", "b"])),
        {}, ["{path}", "label 5", "a, b"]),
    "npz channels-last": (
        lambda tmp: _save(tmp / "n.npz", x=np.zeros((3, 8, 8, 3), np.uint8), y=np.arange(3)), {},
        ["{path}", "channels-last"]),
    "image folder without class folders": (lambda tmp: _mkdir(tmp / "imgs"), {}, ["{path}", "no class sub-folders"]),
    "image folder with a broken image": (lambda tmp: _broken_image(tmp / "imgs"), {}, ["bad.png", "cannot be read"]),
    "shots above a class size": (lambda tmp: "digits", {"shots": 500}, ["--shots 500", "'0' has", "'9' has"]),
    "class id that does not exist": (lambda tmp: "digits", {"classes": "3,12"},
                                     ["--classes '3,12'", "no class of digits is labelled 12"]),
    "class name that does not exist": (
        lambda tmp: "digits", {"classes": "0,Sandal"}, ["--classes '0,Sandal'", "'Sandal'", "digits"]),
}

CLI_FLAGS = {"label_column": "--label-column", "shots": "--shots", "classes": "--classes"}


def _save(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _mkdir(path: Path) -> str:
    path.mkdir()
    (path / "readme.txt").write_text("no images here")
    return str(path)


def _broken_image(path: Path) -> str:
    from PIL import Image

    (path / "a").mkdir(parents=True)
    Image.new("L", (4, 4)).save(path / "a" / "good.png")
    (path / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return str(path)


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_through_the_api(case, tmp_path):
    make, fields, words = DATA_CASES[case]
    source = make(tmp_path)
    out = tmp_path / "run"
    with pytest.raises(WarmstartError) as err:
        api.finetune(None, DataConfig(source, **fields), model="mlp", train=TINY, out=out)
    message = str(err.value)
    for word in words:
        assert word.replace("{path}", source) in message, message
    assert not out.exists()  # the data is checked before anything is written


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_through_the_cli(case, tmp_path, capsys):
    make, fields, words = DATA_CASES[case]
    source = make(tmp_path)
    flags = [a for key, value in fields.items() for a in (CLI_FLAGS[key], value)]
    out = tmp_path / "run"
    err = run_cli(["finetune", "--from", "none", "--model", "mlp", "--data", source, *flags, *QUIET, "--out", out],
                  capsys)
    for word in words:
        assert word.replace("{path}", source) in err, err
    assert not out.exists() and not half_written(tmp_path)


def test_bad_data_through_evaluate(pretrained, tmp_path, capsys):
    err = run_cli(["evaluate", "--checkpoint", pretrained, "--data", tmp_path / "missing.csv"], capsys)
    assert str(tmp_path / "missing.csv") in err
    err = run_cli(["evaluate", "--checkpoint", pretrained, "--data", "digits", "--classes", "11"], capsys)
    assert "no class of digits is labelled 11" in err


def test_csv_label_column_is_found_with_the_flag(tmp_path, capsys):
    rows = "".join(f"{i % 5},{(i * 7) % 3},{'ab'[i % 2]}\n" for i in range(40))
    path = _csv(tmp_path / "t.csv", "f1,f2,kind\n" + rows)
    run_cli(["pretrain", "--data", path, "--model", "mlp", *QUIET, "--out", tmp_path / "a"], capsys)
    run_cli_ok(["pretrain", "--data", path, "--label-column", "kind", "--model", "mlp", *QUIET,
                "--out", tmp_path / "b"], capsys)
    assert (tmp_path / "b" / "model" / "model.safetensors").is_file()


# ---------------------------------------------------------------- checkpoints

def test_checkpoint_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    with pytest.raises(WarmstartError, match="no-such-run") as err:
        api.finetune(missing, "digits", train=TINY)
    assert "model.safetensors" in str(err.value)
    err = run_cli(["finetune", "--from", missing, "--data", "digits", *QUIET, "--out", tmp_path / "run"], capsys)
    assert str(missing) in err
    err = run_cli(["evaluate", "--checkpoint", missing, "--data", "digits"], capsys)
    assert str(missing) in err
    assert not (tmp_path / "run").exists()


def test_truncated_checkpoint(pretrained, tmp_path, capsys):
    broken = tmp_path / "broken"
    (broken / "model").mkdir(parents=True)
    weights = (pretrained / "model" / "model.safetensors").read_bytes()
    (broken / "model" / "model.safetensors").write_bytes(weights[:len(weights) // 2])
    with pytest.raises(WarmstartError) as err:
        api.evaluate(broken, "digits")
    assert "model.safetensors" in str(err.value) and "truncated" in str(err.value)
    for argv in (["evaluate", "--checkpoint", broken, "--data", "digits"],
                 ["finetune", "--from", broken, "--data", "digits", *QUIET, "--out", tmp_path / "run"]):
        err = run_cli(argv, capsys)
        assert str(broken / "model" / "model.safetensors") in err and "truncated" in err
    assert not half_written(tmp_path) and not (tmp_path / "run" / "model").exists()


def test_safetensors_that_is_not_a_warmstart_checkpoint(tmp_path, capsys):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}, str(foreign))
    with pytest.raises(WarmstartError, match="not a warmstart checkpoint") as err:
        api.finetune(foreign, "digits", train=TINY)
    assert str(foreign) in str(err.value)
    err = run_cli(["evaluate", "--checkpoint", foreign, "--data", "digits"], capsys)
    assert str(foreign) in err and "not a warmstart checkpoint" in err


def test_input_shape_mismatch_asks_for_resize(pretrained_28, tmp_path, capsys):
    data = DataConfig("digits", shots=2)
    with pytest.raises(WarmstartError) as err:
        api.finetune(pretrained_28, data, train=TINY, out=tmp_path / "a")
    message = str(err.value)
    assert "--resize" in message and "1x28x28" in message and "1x8x8" in message and "digits" in message
    assert not (tmp_path / "a").exists()
    with pytest.raises(WarmstartError, match="--resize"):
        api.evaluate(pretrained_28, "digits")

    err = run_cli(["finetune", "--from", pretrained_28, "--data", "digits", "--shots", "2", *QUIET,
                   "--out", tmp_path / "b"], capsys)
    assert "--resize" in err and "1x28x28" in err

    result = api.finetune(pretrained_28, DataConfig("digits", shots=2, resize=True), train=TINY, out=tmp_path / "c")
    assert result.model.input_shape == (1, 28, 28)
    assert 0.0 <= result.metrics.accuracy <= 1.0 and result.metrics.num_examples > 300
    metrics = api.evaluate(pretrained_28, DataConfig("digits", resize=True))
    assert len(metrics.class_names) == 10
    run_cli_ok(["evaluate", "--checkpoint", pretrained_28, "--data", "digits", "--resize", "--json"], capsys)


def test_vector_data_into_an_image_model(pretrained, tmp_path):
    path = _save(tmp_path / "v.npz", x=np.zeros((20, 5), np.float32), y=np.arange(20) % 2)
    with pytest.raises(WarmstartError) as err:
        api.finetune(pretrained, DataConfig(path, resize=True), train=TINY)
    assert "1x8x8" in str(err.value) and "5" in str(err.value)
    assert "--resize" not in str(err.value)  # resizing cannot help here



def test_texts_into_an_image_model_are_refused_by_every_command_that_reads_them(pretrained, tmp_path, capsys):
    texts = tmp_path / "texts.csv"  # labels that match the checkpoint's digit classes: only the kind is wrong
    texts.write_text("text,label\n" + "".join(f"some words {i},{i % 10}\n" for i in range(40)))
    for argv in (["finetune", "--from", pretrained, "--data", texts, *QUIET, "--out", tmp_path / "f"],
                 ["evaluate", "--checkpoint", pretrained, "--data", texts]):
        err = run_cli(argv, capsys)
        assert f"is an image model, but {texts.name} holds texts" in err, err
    assert not (tmp_path / "f").exists() or not half_written(tmp_path / "f")


# ---------------------------------------------------------------- parameters

@pytest.mark.parametrize("make, parameter", [
    (lambda: TrainConfig(epochs=0), "epochs"),
    (lambda: TrainConfig(optimizer="rmsprop"), "optimizer"),
    (lambda: TrainConfig(schedule="polynomial"), "schedule"),
    (lambda: TrainConfig(lr=0.0), "lr"),
    (lambda: TrainConfig(batch_size=0), "batch_size"),
    (lambda: TrainConfig(epochs=3, warmup_epochs=3), "warmup_epochs"),
    (lambda: TrainConfig(device="tpu"), "device"),
    (lambda: TrainConfig(momentum=1.0), "momentum"),
    (lambda: DataConfig("digits", shots=0), "shots"),
    (lambda: DataConfig("digits", val_fraction=1.0), "val_fraction"),
    (lambda: DataConfig("digits", test_fraction=0.0), "test_fraction"),
    (lambda: DataConfig("digits", image_size=(28,)), "image_size"),
    (lambda: DataConfig(""), "data"),
])
def test_bad_config_values_name_the_parameter(make, parameter):
    with pytest.raises(WarmstartError) as err:
        make()
    assert f"parameter {parameter}:" in str(err.value)


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(WarmstartError) as err:
        TrainConfig(optimizer="rmsprop")
    assert "'rmsprop'" in str(err.value) and "adam, adamw, sgd" in str(err.value)  # the registry's table


@pytest.mark.parametrize("flags, words", [
    (["--optimizer", "rmsprop"], ["optimizer", "'rmsprop'"]),
    (["--schedule", "polynomial"], ["schedule", "'polynomial'"]),
    (["--shots", "0"], ["shots"]),
    (["--val-fraction", "1.5"], ["val_fraction"]),
    (["--strategy", "magic"], ["--strategy", "'magic'"]),
    (["--model", "resnet9000"], ["--model", "'resnet9000'"]),
    (["--model-option", "hidden"], ["--model-option", "KEY=VALUE"]),
    (["--model-option", "depth=3"], ["'mlp'", "depth"]),
    (["--image-size", "1", "--image-size", "2", "--image-size", "3"], ["--image-size"]),
])
def test_bad_parameters_through_the_cli(flags, words, tmp_path, capsys):
    model = [] if "--model" in flags else ["--model", "mlp"]
    err = run_cli(["finetune", "--from", "none", *model, "--data", "digits", *flags, *QUIET,
                   "--out", tmp_path / "run"], capsys)
    for word in words:
        assert word in err, err
    assert not (tmp_path / "run").exists()


def test_model_flags_with_a_checkpoint_are_refused(pretrained, tmp_path, capsys):
    err = run_cli(["finetune", "--from", pretrained, "--model", "cnn", "--data", "digits", *QUIET,
                   "--out", tmp_path / "run"], capsys)
    assert "--model" in err and "--from none" in err


def test_bad_split_and_list_family(pretrained, capsys):
    assert "--split 'validation'" in run_cli(["evaluate", "--checkpoint", pretrained, "--data", "digits",
                                              "--split", "validation"], capsys)
    assert "'gadgets'" in run_cli(["list", "gadgets"], capsys)


def test_usage_errors_exit_2_without_traceback(tmp_path, capsys):
    # typer checks --epochs >= 1 itself; its usage error is short too and names the flag
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--epochs", "0", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "--epochs" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- nothing half-written

class _Boom(Callback):
    def on_batch_end(self, step, logs):
        if step == 2:
            raise KeyboardInterrupt  # as a user pressing Ctrl-C in the middle of training


def test_an_interrupted_run_leaves_no_partial_checkpoint(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        api.pretrain("digits", model=ModelConfig("mlp", {"hidden": [8]}), train=TINY, out=out, callbacks=(_Boom(),))
    assert not (out / "model").exists() and not (out / "metrics.json").exists()
    assert not half_written(tmp_path)
    # config.json comes with the results; only the log of the epochs that finished (none, here) is there
    assert not (out / "config.json").exists()
    assert (out / "train_log.jsonl").read_text() == ""


def test_ctrl_c_exits_130_and_says_that_resume_continues_the_run(tmp_path, capsys, monkeypatch):
    """Issue 14, item 8: Ctrl-C in epoch 2 stops without a traceback and says how to carry on; --resume does."""
    steps, real_step = [0], torch.optim.AdamW.step

    def step_then_ctrl_c(self, *args, **kwargs):
        steps[0] += 1
        if steps[0] == 8:  # digits' 1,150 training rows at batch 256: 5 steps an epoch, so this is epoch 2
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_ctrl_c)
    argv = ["pretrain", "--data", "digits", "--model", "mlp", "--epochs", "3", "--batch-size", "256", "--quiet",
            "--out", tmp_path / "run"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 130 and "Traceback" not in err, err
    assert "interrupted in epoch 2" in err and "after epoch 1" in err and "--resume" in err, err
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    run_cli_ok([*argv, "--resume"], capsys)
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_a_failed_rerun_keeps_the_previous_checkpoint_whole(pretrained, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    before = (run / "model" / "model.safetensors").read_bytes()
    run_cli(["finetune", "--from", pretrained, "--data", "digits", "--shots", "9999", *QUIET, "--out", run], capsys)
    assert (run / "model" / "model.safetensors").read_bytes() == before
    assert not half_written(run)
    api.evaluate(run, "digits")  # still loads
    assert sorted(os.listdir(run / "model")) == ["metadata.json", "model.safetensors"]


def test_repeated_cli_runs_print_each_note_once(tmp_path, monkeypatch):
    import io
    import logging
    import sys

    logger = logging.getLogger("warmstart")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))  # don't leave this test's handlers behind
    outputs = []
    for name in ("a", "b"):
        stream = io.StringIO()  # a fresh stderr per run, as a notebook cell or a test runner has
        monkeypatch.setattr(sys, "stderr", stream)
        with pytest.raises(SystemExit):
            main(["pretrain", "--data", "digits", "--model", "mlp", "--model-option", "hidden=[8]", "--json",
                  *QUIET, "--out", str(tmp_path / name)])
        outputs.append(stream.getvalue())
        stream.close()  # done with, as the runner closes its capture
    assert outputs[0].count("note: kept the weights") == 1
    assert outputs[1].count("note: kept the weights") == 1 and "Traceback" not in outputs[1], outputs[1]


def test_config_fields_of_the_wrong_type_are_refused_by_name():
    from pathlib import Path

    from warmstart import DataConfig, TrainConfig
    from warmstart.errors import WarmstartError

    for make, field in ((lambda: TrainConfig(nesterov="no"), "nesterov"), (lambda: TrainConfig(progress="no"),
                                                                           "progress"),
                        (lambda: DataConfig("digits", resize="no"), "resize"),
                        (lambda: DataConfig("digits", classes={5: 6}), "classes")):
        with pytest.raises(WarmstartError, match=f"parameter {field}"):
            make()
    # what the API can take as it is: a Path as the source, classes as a list of ids or one id
    assert DataConfig(Path("runs") / "x.npz").source == "runs/x.npz"
    assert DataConfig("digits", classes=[5, 6]).classes == "5,6" and DataConfig("digits", classes=3).classes == "3"


@pytest.mark.parametrize("arguments, name", [({"strategy": 3}, "strategy"), ({"model": {"name": "mlp"}}, "model"),
                                             ({"train": {"epochs": 1}}, "train")])
def test_api_arguments_of_the_wrong_type_are_named(arguments, name):
    import warmstart
    from warmstart.errors import WarmstartError

    with pytest.raises(WarmstartError, match=f"parameter {name}: expected"):
        warmstart.finetune(None, "digits", **{"model": "mlp", **arguments})


@pytest.mark.parametrize("name, options, words", [
    ("mlp", {"dropout": True}, "dropout must be a number in [0, 1), got True"),  # YAML's yes: p = 1, nothing learnt
    ("mlp", {"dropout": 1}, "dropout must be a number in [0, 1)"),
    ("mlp", {"hidden": "abc"}, "hidden must list one or more positive integer layer widths"),
    ("mlp", {"hidden": [32.5]}, "hidden must list one or more positive integer layer widths"),
    ("cnn", {"widths": [4, "x"]}, "model 'cnn' cannot be built"),
])
def test_model_options_of_the_wrong_type_or_range_are_named(name, options, words):
    from warmstart.errors import WarmstartError
    from warmstart.models import create_model

    with pytest.raises(WarmstartError) as error:
        create_model(name, (1, 8, 8), 3, **options)
    assert words in str(error.value)


def test_gradual_unfreeze_takes_one_boundary_as_a_number_and_names_other_scalars():
    from warmstart.errors import WarmstartError
    from warmstart.strategies import create_strategy

    assert create_strategy("gradual-unfreeze", boundaries=3).boundaries == [3]
    with pytest.raises(WarmstartError, match="boundaries"):
        create_strategy("gradual-unfreeze", boundaries="2,3")


@pytest.mark.parametrize("source, message", [
    (123, "got a value of type int"), (["runs/a"], "got a value of type list"), (b"runs/a", "of type bytes"),
    (True, "of type bool"), ("", "empty"), ("  ", "empty"),
])
def test_a_source_of_the_wrong_type_is_named(source, message):
    """finetune(123, ...) failed with an AttributeError deep inside, a list with 'unhashable', and '' meant the
    current folder."""
    import warmstart

    with pytest.raises(WarmstartError, match=message) as error:
        api.finetune(source, "digits", train=TrainConfig(epochs=1, progress=False))
    assert "run folder" in error.value.hint
    with pytest.raises(WarmstartError, match=message):
        warmstart.predict_proba(source, np.zeros((2, 64), np.float32))
    with pytest.raises(WarmstartError, match=message):
        warmstart.Transfer(source).fit(np.zeros((10, 4), np.float32), [0, 1] * 5)
