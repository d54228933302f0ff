"""`warmstart rank`, `warmstart zoo` and `finetune --from auto` end to end, on tiny real checkpoints pretrained on a
real Fashion-MNIST subset in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.cli import main
from warmstart.data import load_splits
from warmstart.data.preprocess import Normalization, preprocessing_from_dict
from warmstart.errors import WarmstartError
from warmstart.models import CheckpointInfo, create_model, load_checkpoint, save_checkpoint
from warmstart.selection import SCORES

from cli_runner import run_cli


TEXT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "trec"



@pytest.fixture(scope="module")
def zoo(tmp_path_factory, fashion_subset_npz):
    """Three checkpoints of Fashion-MNIST classes 0-4: a small CNN and an MLP (3 epochs each), and a random MLP."""
    folder = tmp_path_factory.mktemp("zoo")
    source = DataConfig(fashion_subset_npz, classes="0-4")
    train = TrainConfig(epochs=3, batch_size=64, lr=2e-3, progress=False)
    warmstart.pretrain(source, model=ModelConfig("cnn", {"widths": [8, 16]}), train=train, out=folder / "cnn")
    warmstart.pretrain(source, model=ModelConfig("mlp"), train=train, out=folder / "mlp")
    splits = load_splits(source, 0)
    torch.manual_seed(0)
    model = create_model("mlp", splits.train.input_shape, 5)
    save_checkpoint(model, folder / "random" / "model",
                    CheckpointInfo(arch="mlp", arch_args=model.arch_args, input_shape=model.input_shape,
                                   class_names=splits.train.class_names,
                                   preprocessing=Normalization.fit(splits.train).to_dict(), kind="image"))
    return folder


def target(npz: str, **more) -> DataConfig:
    return DataConfig(npz, classes="5-9", shots=30, **more)


def test_rank_scores_every_candidate_with_every_score_from_its_own_features(zoo, fashion_subset_npz):
    candidates = [str(zoo / name) for name in ("cnn", "mlp", "random")]
    result = warmstart.rank(target(fashion_subset_npz), candidates, train=TrainConfig(seed=1, progress=False))
    assert [c.candidate for c in result.candidates] == candidates
    assert result.train_examples == 150 and result.num_classes == 5
    for c in result.candidates:
        assert set(c.scores) == set(SCORES.names()) and all(v is not None for v in c.scores.values())
        assert c.feature_time_s > 0 and c.scoring_time_s > 0 and set(c.score_time_s) == set(SCORES.names())
    # the pipeline's numbers are the pure functions applied to the candidate's own features of the training draw
    net, info = load_checkpoint(zoo / "mlp")
    train = load_splits(target(fashion_subset_npz), 1).train
    with torch.no_grad():
        features = net.forward_features(preprocessing_from_dict(info.preprocessing).apply(train.x))
        probabilities = torch.softmax(net.forward_head(features).double(), 1).numpy()
    mlp = result.candidates[1]
    assert mlp.scores["logme"] == pytest.approx(SCORES.get("logme")(features.numpy(), train.y), rel=1e-6)
    assert mlp.scores["leep"] == pytest.approx(SCORES.get("leep")(probabilities, train.y), rel=1e-6)
    ranked = result.ranked("hscore")
    assert [c.scores["hscore"] for c in ranked] == sorted((c.scores["hscore"] for c in ranked), reverse=True)
    # the feature cache: ranking again embeds nothing
    again = warmstart.rank(target(fashion_subset_npz), candidates, scores=["logme"],
                           train=TrainConfig(seed=1, progress=False))
    assert all(c.features_cached for c in again.candidates)
    assert [c.scores["logme"] for c in again.candidates] == [c.scores["logme"] for c in result.candidates]


def test_rank_cli_table_and_json(zoo, fashion_subset_npz, tmp_path, capsys):
    code, out, err = run_cli(["rank", "--data", fashion_subset_npz, "--classes", "5-9", "--shots", "20",
                              "--candidates", zoo / "cnn", zoo / "mlp", "--scores", "logme", "knn",
                              "--out", tmp_path / "rank"], capsys)
    assert code == 0, err
    assert "best first by logme" in out and "logme" in out and "knn" in out
    written = json.loads((tmp_path / "rank" / "ranking.json").read_text())
    assert written["scores"] == ["logme", "knn"] and len(written["candidates"]) == 2
    assert written["ranking"][0] == max(written["candidates"], key=lambda c: c["scores"]["logme"])["candidate"]
    code, out, err = run_cli(["rank", "--data", fashion_subset_npz, "--classes", "5-9", "--shots", "20",
                              "--candidates", zoo / "cnn", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["candidates"][0]["scores"]["nce"] is not None


@pytest.mark.parametrize("args, message", [
    (["--data", "digits", "--candidates", "{zoo}/cnn"], "expects inputs of shape 1x28x28, but digits has 1x8x8"),
    (["--data", "{npz}", "--candidates", "{zoo}/cnn", "--scores", "logmee"], "unknown score 'logmee'"),
    (["--data", "{npz}", "--candidates", "{zoo}/cnn", "--scores", "knn", "--rank-score", "leep"],
     "--rank-score leep: not among the computed --scores"),
    (["--data", "{npz}", "--candidates", "{zoo}/cnn", "{zoo}/cnn"], "names a candidate twice"),
    # one checkpoint by two paths (the run folder and its weights file) was scored twice, as two candidates
    (["--data", "{npz}", "--candidates", "{zoo}/cnn", "{zoo}/mlp", "{zoo}/cnn/model/model.safetensors"],
     "{zoo}/cnn and {zoo}/cnn/model/model.safetensors are one checkpoint"),
    (["--data", "{npz}", "--candidates", "minilm"], "a pretrained text encoder, but"),
    (["--data", "{npz}", "--candidates", "{zoo}/nothing"], "no such file"),
    # ranking.json was written into a training run's folder, beside its files
    (["--data", "{npz}", "--candidates", "{zoo}/mlp", "--out", "{zoo}/cnn"], "holds a training run or an evaluation"),
])
def test_rank_misuse_exits_2_with_a_message(zoo, fashion_subset_npz, capsys, args, message):
    args = [a.format(zoo=zoo, npz=fashion_subset_npz) for a in args]
    code, _, err = run_cli(["rank", *args], capsys)
    message = message.format(zoo=zoo)
    assert code == 2 and err.startswith("error:") and message in err, err


def test_rank_without_candidates_is_a_clear_error(fashion_subset_npz):
    with pytest.raises(WarmstartError, match="no candidate models given"):
        warmstart.rank(target(fashion_subset_npz), [])


def test_one_candidate_or_score_as_a_string_is_one_name_and_none_is_refused(zoo, fashion_subset_npz):
    # a string used to be split into its characters: candidate "/", score "l"
    result = warmstart.rank(target(fashion_subset_npz), str(zoo / "mlp"), scores="logme")
    assert [c.candidate for c in result.candidates] == [str(zoo / "mlp")] and result.score_names == ("logme",)
    with pytest.raises(WarmstartError, match="parameter candidates: expected a name or a list of names, got None"):
        warmstart.rank(target(fashion_subset_npz), None)
    with pytest.raises(WarmstartError, match="parameter scores: expected a name or a list of names, got 3"):
        warmstart.rank(target(fashion_subset_npz), [str(zoo / "mlp")], scores=3)


def test_resize_lets_a_28x28_candidate_rank_on_8x8_digits(zoo):
    result = warmstart.rank(DataConfig("digits", classes="0-4", shots=20, resize=True), [str(zoo / "cnn")],
                            scores=["logme", "leep"], train=TrainConfig(progress=False))
    assert result.candidates[0].scores["logme"] is not None and result.candidates[0].scores["leep"] is not None


def test_text_encoders_rank_without_source_head_scores():
    from tiny_models import tiny_bert_source

    if not (TEXT_DATA / "train.csv").is_file():
        pytest.skip(f"{TEXT_DATA} is not here")
    result = warmstart.rank(DataConfig(str(TEXT_DATA), shots=8, max_length=32),
                            ["minilm", f"hf:{tiny_bert_source()}"], train=TrainConfig(progress=False))
    minilm, tiny = result.candidates
    for c in (minilm, tiny):
        assert c.scores["leep"] is None and c.scores["nce"] is None
        assert "needs the source model's classifier" in c.not_applicable["leep"]
    # MiniLM's sentence embeddings carry TREC's question types; a random 2-layer BERT's hardly do
    assert minilm.scores["logme"] > tiny.scores["logme"]
    assert minilm.scores["knn"] > tiny.scores["knn"]
    assert result.best().candidate == "minilm"
    with pytest.raises(WarmstartError, match="no candidate has a leep score"):
        result.best("leep")


def test_zoo_lists_checkpoints_from_their_headers(zoo, tmp_path, capsys, monkeypatch):
    (tmp_path / "broken" / "model").mkdir(parents=True)
    (tmp_path / "broken" / "model" / "model.safetensors").write_bytes(b"not safetensors")
    code, out, err = run_cli(["zoo", zoo, tmp_path, "--json"], capsys)
    assert code == 0, err
    listing = json.loads(out)
    by_name = {Path(e["path"]).name: e for e in listing["checkpoints"]}
    assert set(by_name) == {"cnn", "mlp", "random"}
    net, _ = load_checkpoint(zoo / "cnn")
    cnn = by_name["cnn"]
    assert cnn["parameters"] == sum(t.numel() for t in net.state_dict().values())
    assert cnn["arch"] == "cnn" and cnn["source_classes_spec"] == "0-4" and len(cnn["class_names"]) == 5
    assert 0 < cnn["test_accuracy"] <= 1 and cnn["created"] and cnn["size_bytes"] > 0
    assert by_name["random"]["test_accuracy"] is None
    assert [s["file"] for s in listing["skipped"]] == [str(tmp_path / "broken" / "model" / "model.safetensors")]
    # the default folders: runs/ under the working directory and $WARMSTART_ZOO
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WARMSTART_ZOO", str(zoo))
    code, out, err = run_cli(["zoo"], capsys)
    assert code == 0 and "3 checkpoint(s)" in out and "skipped" not in out, out + err
    code, _, err = run_cli(["zoo", tmp_path / "missing"], capsys)
    assert code == 2 and "not found" in err


def test_finetune_from_auto_ranks_picks_the_best_and_records_why(zoo, fashion_subset_npz, tmp_path, capsys):
    out = tmp_path / "auto"
    code, _, err = run_cli(["finetune", "--from", "auto", "--candidates", zoo / "cnn", zoo / "mlp", zoo / "random",
                            "--rank-score", "hscore", "--data", fashion_subset_npz, "--classes", "5-9",
                            "--shots", "20", "--epochs", "3", "--quiet", "--out", out], capsys)
    assert code == 0, err
    selection = json.loads((out / "selection.json").read_text())
    best = max(selection["candidates"], key=lambda c: c["scores"]["hscore"])["candidate"]
    assert selection["chosen"] == best and selection["rank_score"] == "hscore"
    assert selection["ranking"][0] == best and len(selection["candidates"]) == 3
    assert f"{best} has the highest hscore" in selection["why"]
    assert selection["fine_tuned_test_accuracy"] > 0.2  # 5 classes: chance is 0.2
    config = json.loads((out / "config.json").read_text())
    assert config["parent"]["checkpoint"] == best and config["selection"]["chosen"] == best
    assert any(note.startswith("--from auto: ranked 3 candidates by hscore") for note in config["notes"])
    assert "note: --from auto: ranked 3 candidates" in err
    assert json.loads((out / "model" / "metadata.json").read_text())["parent"]["checkpoint"] == best


def test_candidates_without_auto_is_a_clear_error(zoo, fashion_subset_npz, tmp_path, capsys):
    code, _, err = run_cli(["finetune", "--from", zoo / "cnn", "--candidates", zoo / "mlp", "--data",
                            fashion_subset_npz, "--classes", "5-9", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "--candidates only applies with --from auto" in err


def test_list_scores(capsys):
    code = None
    try:
        main(["list", "scores"])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr().out
    assert code in (None, 0)
    for name in ("logme", "hscore", "leep", "nce", "knn"):
        assert name in out


def test_auto_with_a_linear_probe_reuses_the_ranking_features(zoo, fashion_subset_npz, monkeypatch):
    import warmstart.engine.features as features_module
    from warmstart.engine.features import clear_memory_cache

    clear_memory_cache()
    embedded = []
    original = features_module.extract_features

    def counting(model, x, *args, **kwargs):
        embedded.append(len(x))
        return original(model, x, *args, **kwargs)

    monkeypatch.setattr(features_module, "extract_features", counting)
    data = DataConfig(fashion_subset_npz, classes="5-9", shots=12)
    result = warmstart.finetune("auto", data, candidates=[str(zoo / "cnn"), str(zoo / "mlp")],
                                strategy="linear-probe", train=TrainConfig(epochs=2, progress=False))
    # ranking embeds each candidate's 60 training images; the probe then finds the chosen one's in the cache and
    # embeds only the 500 test images
    assert embedded == [60, 60, 500]
    assert result.notes[0].startswith("--from auto: ranked 2 candidates by logme")
