"""A Hugging Face source folder whose weights are a pickle (``pytorch_model.bin``) is refused with a fix, and never
unpickled (issue 14, item 13); safetensors weights load as before."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_bert_source

from warmstart.errors import WarmstartError
from warmstart.models import create_model


@pytest.fixture(scope="module")
def bert() -> Path:
    return Path(tiny_bert_source())


def _with_pickled_weights(bert: Path, folder: Path, keep_safetensors: bool) -> Path:
    shutil.copytree(bert, folder)
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    if not keep_safetensors:
        (folder / "model.safetensors").unlink()
    return folder


def test_a_folder_with_only_pickled_weights_is_refused_without_unpickling(bert, tmp_path, monkeypatch):
    folder = _with_pickled_weights(bert, tmp_path / "pickled", keep_safetensors=False)

    def never(*args, **kwargs):
        raise AssertionError("a user's pickle was opened")

    monkeypatch.setattr(torch, "load", never)
    monkeypatch.setattr(pickle, "load", never)
    with pytest.raises(WarmstartError, match="pytorch_model.bin.*never unpickles") as info:
        create_model("hf", (16,), 2, source=str(folder))
    assert "safetensors" in info.value.hint and str(folder) in info.value.hint


def test_the_cli_reports_it_as_an_error_with_a_fix(bert, tmp_path, capsys):
    from warmstart.cli import main

    folder = _with_pickled_weights(bert, tmp_path / "pickled", keep_safetensors=False)
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(f"good {i},a\nbad {i},b\n" for i in range(6)))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "--from", f"hf:{folder}", "--data", str(tmp_path / "t.csv"), "--epochs", "1", "--quiet",
              "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error:") and "fix:" in err and "pickled" in err, err


def test_safetensors_beside_a_pickle_load_from_the_safetensors(bert, tmp_path, monkeypatch):
    folder = _with_pickled_weights(bert, tmp_path / "both", keep_safetensors=True)
    monkeypatch.setattr(torch, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("unpickled")))
    model = create_model("hf", (16,), 2, source=str(folder))
    assert model.num_features == 32
