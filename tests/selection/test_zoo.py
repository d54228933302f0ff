"""The zoo listing survives crafted checkpoint headers: a bad file is skipped with its reason, the rest are listed
(issue 14, item 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.models import CheckpointInfo, create_model, save_checkpoint
from warmstart.models.checkpoint import METADATA_KEY
from warmstart.selection.zoo import list_zoo


def _checkpoint(folder: Path, **extra) -> Path:
    model = create_model("mlp", (4,), 2, hidden=[3])
    info = CheckpointInfo(arch=model.arch, arch_args=model.arch_args, input_shape=model.input_shape,
                          class_names=("a", "b"), preprocessing={"kind": "vector", "mean": [0.0] * 4,
                                                                 "std": [1.0] * 4},
                          kind="vector", extra={"data": {"source": "x.csv", "shots": 5},
                                                "metrics": {"accuracy": 0.75}, **extra})
    return save_checkpoint(model, folder / "model", info)


def _craft(file: Path, change) -> None:
    with safe_open(str(file), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        header = dict(f.metadata())
    header[METADATA_KEY] = json.dumps(change(json.loads(header[METADATA_KEY])))
    save_file(tensors, str(file), metadata=header)


@pytest.mark.parametrize("change, words", [
    (lambda m: {**m, "metrics": {"accuracy": "high"}}, "'metrics.accuracy' should be int or float"),
    (lambda m: {**m, "metrics": {"accuracy": 7}}, "'metrics.accuracy' should be a number from 0 to 1"),
    (lambda m: {**m, "data": ["x.csv"]}, "'data' should be dict"),
    (lambda m: {**m, "data": {"source": 3}}, "'data.source' should be str"),
    (lambda m: {**m, "data": {"shots": "5"}}, "'data.shots' should be int"),
    (lambda m: {**m, "created": 20261130}, "'created' should be str"),
    (lambda m: {**m, "parent": "runs/pre"}, "'parent' should be dict"),
    (lambda m: {**m, "class_names": "a,b"}, "'class_names' should be a non-empty list of strings"),
    (lambda m: {**m, "kind": "audio"}, "'kind' should be one of"),
])
def test_a_crafted_header_is_skipped_with_its_reason_and_the_rest_listed(tmp_path, capsys, change, words):
    good = _checkpoint(tmp_path / "good")
    bad = _checkpoint(tmp_path / "bad")
    _craft(bad, change)
    listing = list_zoo([tmp_path])
    assert [e.path for e in listing.entries] == [good.parent.parent]
    assert len(listing.skipped) == 1 and listing.skipped[0][0] == str(bad) and words in listing.skipped[0][1]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", str(tmp_path)])
    assert exit_info.value.code in (0, None)
    assert "1 checkpoint(s)" in capsys.readouterr().out


def test_a_file_given_as_a_zoo_folder_is_named_as_a_file(tmp_path):
    # "not found" for a file that exists
    (tmp_path / "t.csv").write_text("a,b\n")
    with pytest.raises(WarmstartError, match=r"zoo folder\(s\) .*t.csv \(a file, not a folder\), .*nope \(not found"):
        list_zoo([tmp_path / "t.csv", tmp_path / "nope"])


def test_a_run_named_state_is_listed_and_an_unfinished_overwrite_is_not(tmp_path, monkeypatch, caplog):
    """Every checkpoint under a folder named "state" was skipped without a word (meant for a run's own resumable
    state, which holds no model.safetensors); an overwriting run's hidden .NAME.partial is what must not be listed.
    A $WARMSTART_ZOO folder that does not exist was skipped silently."""
    named_state = _checkpoint(tmp_path / "runs" / "state")
    _checkpoint(tmp_path / "runs" / ".exp.partial")
    listing = list_zoo([tmp_path / "runs"])
    assert [e.path for e in listing.entries] == [named_state.parent.parent] and not listing.skipped
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WARMSTART_ZOO", str(tmp_path / "typo"))
    with caplog.at_level("WARNING", logger="warmstart"):
        list_zoo()
    assert f"$WARMSTART_ZOO names {tmp_path / 'typo'}, which is not a folder: skipped" in caplog.text
