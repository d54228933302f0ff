"""--config: option values from a file, under the flags of the command line; a run's config.json replays it."""

from __future__ import annotations

import json

from safetensors.torch import load_file

from cli_runner import run_cli

TINY = ["--model", "mlp", "--model-option", "hidden=[8]", "--data", "digits", "--classes", "0-2", "--epochs", "2",
        "--quiet", "--tracker", "none"]


def weights(run_dir):
    return load_file(str(run_dir / "model" / "model.safetensors"))


def test_a_runs_config_json_replays_it_bit_for_bit(tmp_path, capsys):
    code, _, err = run_cli(["finetune", "--from", "none", *TINY, "--out", tmp_path / "a"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["finetune", "--config", tmp_path / "a" / "config.json", "--quiet", "--out",
                            tmp_path / "b"], capsys)
    assert code == 0, err
    first, again = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert first.keys() == again.keys() and all((first[k] == again[k]).all() for k in first)
    recorded = [json.loads((tmp_path / run / "config.json").read_text()) for run in ("a", "b")]
    for config in recorded:
        config.pop("notes"), config["train"].pop("progress")
    assert recorded[0] == recorded[1]


def test_flags_on_the_command_line_win_over_the_file(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("from: none\nmodel: mlp\nmodel-option: {hidden: [8]}\ndata: digits\nclasses: 0-2\n"
                      "epochs: 2\nbatch_size: 32\ntracker: none\nstrategy_option: {head_lr_scale: 2}\n")
    code, _, err = run_cli(["finetune", "--config", config, "--epochs", "1", "--quiet", "--out", tmp_path / "r"],
                           capsys)
    assert code == 0, err
    written = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (written["train"]["epochs"], written["train"]["batch_size"]) == (1, 32)
    assert written["strategy"]["head_lr_scale"] == 2 and written["model"]["arch_args"]["hidden"] == [8]


def test_an_unknown_key_names_the_key_and_the_file(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"epochs": 1, "epoch_count": 3}))
    code, _, err = run_cli(["finetune", "--from", "none", "--data", "digits", "--config", config, "--out", tmp_path],
                           capsys)
    assert code == 2
    assert "'epoch_count'" in err and str(config) in err and "fix:" in err and "batch-size" in err


def test_a_config_of_another_command_is_refused(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"command": "evaluate", "checkpoint": "x", "data": {"source": "digits"}}))
    code, _, err = run_cli(["finetune", "--config", config, "--out", tmp_path / "r"], capsys)
    assert code == 2 and "`evaluate` run" in err and "warmstart evaluate --config" in err


def test_a_run_from_a_pretrained_source_replays_its_model_options(tmp_path):
    from warmstart.cli.command import COMMAND_OPTIONS
    from warmstart.cli.config_file import option_values

    weights = tmp_path / "test_resnet.safetensors"
    weights.write_bytes(b"")
    runs = {"hf": ("hf", {"pretrained": "/models/tiny-bert"},
                   {"source": "/models/tiny-bert", "pooling": "cls", "pretrained": True, "normalize": False}),
            "timm": ("timm", {"pretrained": "timm:test_resnet", "weights": str(weights)},
                     {"name": "test_resnet", "input_size": [32, 32], "drop_rate": 0.2, "drop_path_rate": None}),
            "hub": ("timm", {"pretrained": "timm:test_resnet", "weights": "timm hub (timm/test_resnet.r160_in1k)"},
                    {"name": "test_resnet", "input_size": [160, 160], "drop_rate": 0.0, "drop_path_rate": None}),
            "torch": ("mlp", {"pretrained": "torch:/models/mlp.pt", "weights": "torch:/models/mlp.pt"},
                      {"hidden": [16], "dropout": 0.0})}
    replayed = {}
    for name, (arch, parent, arch_args) in runs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"command": "finetune", "data": {"source": "digits"}, "strategy": {"name": "full"},
                                    "model": {"arch": arch, "arch_args": arch_args}, "parent": parent}))
        replayed[name] = option_values(path, "finetune", COMMAND_OPTIONS["finetune"])
    assert replayed["hf"]["checkpoint"] == "hf:/models/tiny-bert"
    assert replayed["hf"]["model_option"] == ["pooling=cls", "normalize=false"]  # what --from names is not repeated
    assert replayed["timm"]["checkpoint"] == "timm:test_resnet"
    assert replayed["timm"]["model_option"] == ["input_size=[32, 32]", "drop_rate=0.2", "drop_path_rate=null",
                                                f"weights={weights}"]  # a weights file it loaded from disk
    assert not any(option.startswith("weights=") for option in replayed["hub"]["model_option"])
    # imported weights: the architecture they were loaded into, which --from alone cannot say
    assert (replayed["torch"]["checkpoint"], replayed["torch"]["model"]) == ("torch:/models/mlp.pt", "mlp")
    assert replayed["torch"]["model_option"] == ["hidden=[16]", "dropout=0.0"]


def test_a_run_from_a_checkpoint_replays_with_its_head_rule(tmp_path):
    from warmstart.cli.command import COMMAND_OPTIONS
    from warmstart.cli.config_file import option_values

    replayed = {}
    for head in ("new", "kept"):
        path = tmp_path / f"{head}.json"
        path.write_text(json.dumps({"command": "finetune", "data": {"source": "digits"}, "strategy": {"name": "full"},
                                    "model": {"arch": "mlp", "arch_args": {"hidden": [8]}}, "head": head,
                                    "parent": {"checkpoint": "runs/source", "arch": "mlp"}}))
        replayed[head] = option_values(path, "finetune", COMMAND_OPTIONS["finetune"])
    assert replayed["new"]["checkpoint"] == "runs/source" and "keep_head" not in replayed["new"]
    assert replayed["kept"]["keep_head"] is True


def recorded_config(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    config.pop("notes"), config["train"].pop("progress")
    return config


def test_self_supervised_runs_replay_their_objective_and_stage(tmp_path, capsys):
    # pretrain --objective records its objective, finetune --adapt-on its stage: both replay bit for bit, and a
    # self-supervised pretrain is no finetune to replay
    tiny = ["--model", "mlp", "--model-option", "hidden=[8]", "--data", "digits", "--epochs", "1", "--quiet",
            "--tracker", "none"]
    code, _, err = run_cli(["pretrain", "--objective", "simclr", "--ignore-labels", "--objective-option",
                            "projection_dim=16", *tiny, "--out", tmp_path / "p"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["finetune", "--from", "none", *tiny, "--shots", "10", "--adapt-on", "self",
                            "--adapt-epochs", "2", "--adapt-lr", "0.002", "--out", tmp_path / "a"], capsys)
    assert code == 0, err
    for command, run in (("pretrain", "p"), ("finetune", "a")):
        code, _, err = run_cli([command, "--config", tmp_path / run / "config.json", "--quiet", "--out",
                                tmp_path / f"{run}2"], capsys)
        assert code == 0, err
        first, again = weights(tmp_path / run), weights(tmp_path / f"{run}2")
        assert first.keys() == again.keys() and all((first[k] == again[k]).all() for k in first)
        assert recorded_config(tmp_path / run) == recorded_config(tmp_path / f"{run}2")
    assert recorded_config(tmp_path / "a")["self_supervised"]["epochs"] == 2
    code, _, err = run_cli(["finetune", "--config", tmp_path / "p" / "config.json", "--out", tmp_path / "f"], capsys)
    assert code == 2 and "self-supervised `pretrain`" in err and "warmstart pretrain --config" in err


def test_a_run_with_relative_paths_replays_from_another_directory(tmp_path, capsys, monkeypatch):
    """Paths are recorded as typed: ``--config RUN/config.json`` from another directory looked for the run's data
    (and evaluate's checkpoint) there. The run records the directory it started in, and the replay reads from it."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "d.npz", x=digits.data[:300].astype(np.float32), y=digits.target[:300])
    monkeypatch.chdir(tmp_path)
    tiny = [*TINY[:TINY.index("--data")], "--data", "d.npz", *TINY[TINY.index("--data") + 2:]]
    assert run_cli(["finetune", "--from", "none", *tiny, "--out", "a"], capsys)[0] == 0
    assert run_cli(["evaluate", "--checkpoint", "a", "--data", "d.npz", "--out", "e"], capsys)[0] == 0
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    for command, run in (("finetune", "a"), ("evaluate", "e")):
        code, _, err = run_cli([command, "--config", tmp_path / run / "config.json", "--out", f"{run}2"], capsys)
        assert code == 0, err
        first, again = (json.loads(path.read_text()) for path in (tmp_path / run / "config.json",
                                                                  tmp_path / "other" / f"{run}2" / "config.json"))
        assert first["data"]["source"] == "d.npz" and again["data"]["source"] == str(tmp_path / "d.npz")
    assert again["checkpoint"] == str(tmp_path / "a")
    assert json.loads((tmp_path / "other" / "e2" / "metrics.json").read_text())["accuracy"] == \
        json.loads((tmp_path / "e" / "metrics.json").read_text())["accuracy"]
    # the file gone from where the run started, another of that name here: the replay says it is not one
    (tmp_path / "d.npz").rename(tmp_path / "moved.npz")
    np.savez(tmp_path / "other" / "d.npz", x=digits.data[300:600].astype(np.float32), y=digits.target[300:600])
    code, _, err = run_cli(["finetune", "--config", tmp_path / "a" / "config.json", "--out", "a3"], capsys)
    assert code == 0, err
    assert "is not the data the replayed run trained on" in err and "this is not a replay of that run" in err
    notes = json.loads((tmp_path / "other" / "a3" / "config.json").read_text())["notes"]
    assert any("is not the data the replayed run trained on" in n for n in notes)
    # a data option given beside the file asks for other data: nothing to say
    code, _, err = run_cli(["finetune", "--config", tmp_path / "a" / "config.json", "--data", "d.npz", "--out", "a4"],
                           capsys)
    assert code == 0 and "replayed run" not in err, err
