"""Distillation (issue 16): the loss, the students (a smaller registered model, a text encoder cut to k layers),
unlabelled examples, what the run reports against its teacher, and the student as an ordinary checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.data.augment import BatchAugmentation
from warmstart.data.preprocess import Tokenization
from warmstart.errors import WarmstartError
from warmstart.models import create_model, load_checkpoint
from warmstart.models.hf import chosen_layers, spaced_layers
from warmstart.reporting.distillation import comparison_rows, comparison_sentence
from warmstart.run.distillation import cut_layers
from warmstart.strategies.distillation import NO_LABEL, Distillation, distillation_loss
from tests.cli_runner import run_cli
from tests.tiny_models import tiny_bert_source

QUIET = dict(progress=False, trackers=())


def test_the_loss_is_t2_kl_plus_alpha_ce_and_unlabelled_rows_add_only_the_kl_term():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    labels = torch.tensor([0, 2, NO_LABEL, 1])
    T, alpha = 3.0, 0.25
    p_t = F.softmax(teacher / T, 1)
    kl_rows = (p_t * (p_t.log() - F.log_softmax(student / T, 1))).sum(1) * T * T
    ce_rows = F.cross_entropy(student, labels.clamp(min=0), reduction="none")
    labelled = torch.tensor([1.0, 1.0, 0.0, 1.0])
    expected = ((1 - alpha) * kl_rows + alpha * ce_rows * labelled).mean()
    loss = distillation_loss(student, teacher, labels, nn.CrossEntropyLoss(), temperature=T, alpha=alpha)
    assert torch.isclose(loss, expected, atol=1e-6)
    # soft targets (mixup): an all-zero row is unlabelled, as a NO_LABEL index is
    soft = F.one_hot(labels.clamp(min=0), 3).float()
    soft[2] = 0.0
    assert torch.isclose(distillation_loss(student, teacher, soft, nn.CrossEntropyLoss(), temperature=T,
                                           alpha=alpha), expected, atol=1e-6)
    # a student equal to its teacher has no KL term left
    assert float(distillation_loss(teacher, teacher, labels, nn.CrossEntropyLoss(), temperature=T, alpha=0)) < 1e-6


def test_mixing_a_batch_with_unlabelled_images_leaves_their_rows_without_a_label():
    x = torch.rand(6, 1, 8, 8)
    y = torch.tensor([0, 1, NO_LABEL, 2, 1, 0])
    mix = BatchAugmentation("none", "mixup", 1.0, 3, lambda images: images, torch.Generator().manual_seed(0))
    _, targets = mix(x, y)
    # v2's mixup pairs each image with the one before it: rows 2 (unlabelled) and 3 (mixed with row 2) lose theirs
    assert torch.equal(targets.sum(1) > 0, torch.tensor([True, True, False, False, True, True]))
    assert torch.allclose(targets[[0, 1, 4, 5]].sum(1), torch.ones(4))


def test_a_student_with_its_own_tokenizer_reads_its_ids_and_the_teacher_its_own():
    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.seen, self.linear = None, nn.Linear(1, 2)

        def forward(self, ids):
            self.seen = ids
            return self.linear(ids[:, :1].float())

    teacher, student = Recorder(), Recorder()
    objective = Distillation(teacher, teacher_preprocessing=Tokenization(tiny_bert_source(), 8))
    texts = np.array(["what is a cat", "who wrote it"], dtype=object)
    student_ids = torch.full((2, 8), 7)
    inputs = objective.training_inputs(texts, student_ids, lambda x: student_ids)
    assert inputs.shape == (2, 2, 8)
    objective.compute_loss(student, inputs, torch.tensor([0, 1]), nn.CrossEntropyLoss())
    assert torch.equal(student.seen, student_ids)
    assert teacher.seen[0, 0] == 101 and not torch.equal(teacher.seen, student_ids)  # [CLS] of its own tokenizer


def test_every_other_layer_and_a_cut_encoder_reloads_from_its_metadata(tmp_path):
    assert spaced_layers(6, 3) == [0, 2, 4] and spaced_layers(6, 2) == [0, 3] and spaced_layers(12, 6)[-1] == 10
    with pytest.raises(WarmstartError, match="layers=7"):
        spaced_layers(6, 7)
    assert chosen_layers(6, [1, 0]) == [0, 1]
    for bad in ([], [0, 0], [6], [-1]):
        with pytest.raises(WarmstartError, match="expected distinct layer numbers from 0 to 5"):
            chosen_layers(6, bad)
    assert cut_layers("layers=3") == 3 and cut_layers("layers=0,1") == [0, 1] and cut_layers("cnn") is None
    with pytest.raises(WarmstartError, match="layer numbers separated by commas"):
        cut_layers("layers=0;1")
    model = create_model("hf", (16,), 2, source=tiny_bert_source(), layers=[1])
    assert len(model.backbone.encoder.encoder.layer) == 1 and model.backbone.encoder.config.num_hidden_layers == 1
    assert model.arch_args["layers"] == [1]
    assert [name for name, _ in model.layer_groups()] == ["embeddings", "layer0", "head"]


@pytest.fixture(scope="module")
def digits_teacher(tmp_path_factory) -> Path:
    """An MLP teacher fine-tuned on digits: 128-64 hidden units."""
    out = tmp_path_factory.mktemp("teacher") / "run"
    warmstart.pretrain("digits", model=ModelConfig("mlp", {"hidden": [128, 64]}),
                       train=TrainConfig(epochs=5, **QUIET), out=out)
    return out


def test_a_smaller_mlp_learns_from_the_teacher_and_the_run_reports_what_it_bought(digits_teacher, tmp_path,
                                                                                   capsys):
    out = tmp_path / "student"
    code, stdout, stderr = run_cli(["distill", "--teacher", digits_teacher, "--student", "mlp", "--model-option",
                                    "hidden=[16]", "--data", "digits", "--epochs", "8", "--lr", "0.01",
                                    "--temperature", "2", "--speed-rounds", "1", "--tracker", "none", "--quiet",
                                    "--out", out], capsys)
    assert code == 0, stderr
    assert "agrees with its teacher" in stdout
    report = json.loads((out / "distillation.json").read_text())
    student, teacher, summary = report["student"], report["teacher"], report["summary"]
    assert student["accuracy"] > 0.8 and summary["agreement"] > 0.8  # chance is 0.1: the student learnt
    assert teacher["parameters"] > 5 * student["parameters"] and summary["parameter_ratio"] > 5
    assert teacher["file_bytes"] > student["file_bytes"] > 0
    for side in (student, teacher):
        for runtime in ("pytorch", "onnx"):
            assert side["speed"][runtime]["latency_ms"] > 0 and side["speed"][runtime]["throughput_per_s"] > 0
    metadata = json.loads((out / "model" / "metadata.json").read_text())
    assert metadata["teacher"]["checkpoint"] == str(digits_teacher) and metadata["teacher"]["arch"] == "mlp"
    assert summary["pytorch_latency_speedup"] > 0 and summary["onnx_throughput_speedup"] > 0
    page, card = (out / "report.html").read_text(), (out / "MODEL_CARD.md").read_text()
    assert "Student against teacher" in page and "Distilled from the teacher" in card
    for text in (page, card):  # the speed-ups themselves, not only the two sides' figures
        assert f"{summary['onnx_latency_speedup']:.1f}x as fast" in text
        assert f"{summary['pytorch_throughput_speedup']:.1f}x the throughput" in text
    # the ONNX figures come from warmstart.export_model on the student's checkpoint, parity-checked there
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "distill" and config["strategy"]["name"] == "distill"


def test_the_report_states_the_speed_ups_at_batch_1_and_batch_64_in_pytorch_and_onnx():
    side = {"accuracy": 0.9, "parameters": 100, "file_bytes": 1000}
    comparison = {"student": side, "teacher": {**side, "checkpoint": "runs/t"},
                  "summary": {"test_examples": 10, "agreement": 0.95, "accuracy_gap_points": 1.5,
                              "parameter_ratio": 4.0, "file_size_ratio": 3.9, "pytorch_latency_speedup": 2.46,
                              "pytorch_throughput_speedup": 3.14, "onnx_latency_speedup": 1.96,
                              "onnx_throughput_speedup": 2.71}}
    sentence = comparison_sentence(comparison)
    assert "one example 2.5x as fast as its teacher in PyTorch and 2.0x through ONNX Runtime" in sentence
    assert "batches of 64 at 3.1x and 2.7x its throughput" in sentence
    header, rows = comparison_rows(comparison)
    gains = {row[0]: row[3] for row in rows}
    assert header[3] == "student against teacher" and gains["parameters"] == "4.0x fewer"
    assert gains["CPU latency, batch 1, ONNX Runtime (ms)"] == "2.0x as fast"
    assert gains["CPU throughput, batch 64, PyTorch (examples/s)"] == "3.1x the throughput"
    unmeasured = {**comparison, "summary": {k: v for k, v in comparison["summary"].items() if "speedup" not in k}}
    assert "not measured" in comparison_sentence(unmeasured) and comparison_rows(unmeasured)[1][3][3] == \
        "not measured"


def test_unlabelled_images_without_class_folders_and_a_replay_of_the_run_from_its_config_json(digits_teacher,
                                                                                               tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = tmp_path / "unlabelled"  # what a user has: images, no class sub-folders
    folder.mkdir()
    for i, image in enumerate(load_digits().images[-30:]):
        Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    common = ["--speed-rounds", "0", "--quiet"]
    code, _, stderr = run_cli(["distill", "--teacher", digits_teacher, "--student", "mlp", "--model-option",
                               "hidden=[16]", "--data", "digits", "--unlabeled", folder, "--epochs", "1",
                               "--temperature", "3", "--tracker", "none", *common, "--out", tmp_path / "a"], capsys)
    assert code == 0, stderr
    first = json.loads((tmp_path / "a" / "config.json").read_text())
    assert first["strategy"]["unlabeled_examples"] == 30 and first["unlabeled"]["source"] == str(folder)
    # the replay: teacher, student SPEC and options, unlabelled data, temperature, training; a flag given wins
    code, _, stderr = run_cli(["distill", "--config", tmp_path / "a" / "config.json", "--alpha", "0.8", *common,
                               "--out", tmp_path / "b"], capsys)
    assert code == 0, stderr
    again = json.loads((tmp_path / "b" / "config.json").read_text())
    assert again["strategy"] == {**first["strategy"], "alpha": 0.8}
    for config in (first, again):
        for key in ("notes", "strategy"):
            config.pop(key)
    assert again == first
    code, _, stderr = run_cli(["finetune", "--config", tmp_path / "a" / "config.json", "--out", tmp_path / "c"],
                              capsys)
    assert code == 2 and "`distill` run" in stderr and "warmstart distill --config" in stderr
    (tmp_path / "texts.txt").write_text("a fish swims\n")
    code, _, stderr = run_cli(["distill", "--teacher", digits_teacher, "--student", "mlp", "--data", "digits",
                               "--unlabeled", tmp_path / "texts.txt", "--out", tmp_path / "d"], capsys)
    assert code == 2 and f"--unlabeled '{tmp_path / 'texts.txt'}' holds text data" in stderr
    assert "reads image" in stderr and "fix: pass unlabelled image examples: a folder of images" in stderr


def test_a_distillation_run_refuses_a_teacher_of_other_classes_and_a_cut_of_a_non_text_teacher(digits_teacher,
                                                                                               tmp_path):
    with pytest.raises(WarmstartError, match="--teacher .* predicts"):
        warmstart.distill(digits_teacher, DataConfig("digits", classes="0-4"), student="mlp", out=tmp_path / "a")
    with pytest.raises(WarmstartError, match="cutting layers applies to a transformer"):
        warmstart.distill(digits_teacher, "digits", student="layers=2", out=tmp_path / "b")
    with pytest.raises(WarmstartError, match="--student 'nothing'"):
        warmstart.distill(digits_teacher, "digits", student="nothing", out=tmp_path / "c")


def _texts(path: Path, rows: list[tuple[str, str]]) -> str:
    path.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in rows))
    return str(path)


def test_a_text_teacher_cut_to_one_layer_distils_with_unlabelled_texts(tmp_path):
    animals = ["the cat sleeps", "a dog barks", "the horse runs", "my bird sings", "a cow eats grass"]
    numbers = ["one two three", "seven and nine", "forty two", "ten times ten", "six plus one"]
    rows = [(t, "animal") for t in animals * 3] + [(t, "number") for t in numbers * 3]
    data = DataConfig(_texts(tmp_path / "train.csv", rows), max_length=16, val_fraction=0.0)
    teacher = warmstart.finetune(f"hf:{tiny_bert_source()}", data, train=TrainConfig(epochs=1, lr=1e-3, **QUIET),
                                 out=tmp_path / "teacher")
    unlabeled = tmp_path / "more.txt"  # what a user has: one text per line, no label column
    unlabeled.write_text("a fish swims\nthree and four\n\nthe goat\n")
    result = warmstart.distill(teacher.run_dir, data, student="layers=1", unlabeled=str(unlabeled),
                               train=TrainConfig(epochs=2, lr=1e-3, **QUIET), out=tmp_path / "student",
                               speed_rounds=0)
    assert result.run.history[-1]["distill_loss"] < result.run.history[0]["distill_loss"]
    student, info = load_checkpoint(result.run.checkpoint)
    assert info.arch_args["layers"] == [0] and len(student.backbone.encoder.encoder.layer) == 1
    assert result.comparison["summary"]["parameter_ratio"] > 1
    assert "speed" not in result.comparison["student"]
    # the cut student is an ordinary checkpoint: predict rebuilds it from its metadata
    predicted = warmstart.predict(result.run.run_dir, _texts(tmp_path / "new.csv", [("a cat runs", "animal")]),
                                  tmp_path / "predicted.csv")
    assert predicted.predicted == 1 and "predicted_label" in (tmp_path / "predicted.csv").read_text()
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["strategy"]["unlabeled_examples"] == 3 and config["unlabeled"]["source"] == str(unlabeled)
    assert config["unlabeled"]["max_length"] == 16  # a path alone is read as --data is


def test_feature_matching_adds_distilberts_cosine_loss_through_one_forward_pass():
    from warmstart.strategies.distillation import FeaturesAndLogits, feature_matching_loss

    f = torch.randn(4, 8)
    assert float(feature_matching_loss(f, 3 * f)) == pytest.approx(0.0, abs=1e-6)  # direction, not scale
    assert float(feature_matching_loss(f, -f)) == pytest.approx(2.0, abs=1e-6)
    torch.manual_seed(0)
    teacher, student = create_model("mlp", (8,), 3, hidden=[16]), create_model("mlp", (8,), 3, hidden=[16])
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    plain = Distillation(teacher, alpha=0.5)
    matched = Distillation(teacher, alpha=0.5, feature_weight=2.0)
    assert matched.describe()["feature_weight"] == 2.0
    module = matched.training_module(student)
    assert isinstance(module, FeaturesAndLogits) and plain.training_module(student) is student
    loss, logits = matched.compute_loss(module, x, y, nn.CrossEntropyLoss())
    base, _ = plain.compute_loss(student, x, y, nn.CrossEntropyLoss())
    expected = base + 2.0 * feature_matching_loss(student.forward_features(x), teacher.forward_features(x))
    assert torch.isclose(loss, expected, atol=1e-6) and torch.equal(logits, student(x))
    with pytest.raises(WarmstartError, match="feature_weight"):
        Distillation(teacher, feature_weight=-1)
    with pytest.raises(WarmstartError, match="--student mlp has 4 features where the teacher has 16"):
        matched.check_student(create_model("mlp", (8,), 3, hidden=[4]), "mlp")


def test_a_cut_student_with_feature_matching_comes_closer_to_its_teachers_features(tmp_path, capsys):
    texts = ["what is the capital of france", "who wrote hamlet", "how far is the moon", "when did rome fall",
             "why is the sky blue", "where is mount everest", "which river is longest", "who painted the mona lisa"]
    rows = [(t, "question") for t in texts] + [(t.replace(" ", " the "), "other") for t in texts]
    data = DataConfig(_texts(tmp_path / "train.csv", rows * 2), max_length=16, val_fraction=0.0)
    teacher = warmstart.finetune(f"hf:{tiny_bert_source()}", data, train=TrainConfig(epochs=1, lr=1e-3, **QUIET),
                                 out=tmp_path / "teacher")
    teacher_model, _ = load_checkpoint(teacher.run_dir)

    def distance(out: Path, weight: float) -> float:
        """Mean cosine distance between the student's and the teacher's feature vectors on the training texts."""
        result = warmstart.distill(teacher.run_dir, data, student="layers=1", feature_weight=weight,
                                   train=TrainConfig(epochs=10, lr=3e-3, **QUIET), out=out, speed_rounds=0)
        student, _ = load_checkpoint(result.run.checkpoint)
        from warmstart.data.preprocess import preprocessing_from_dict

        prep = preprocessing_from_dict(json.loads((out / "model" / "metadata.json").read_text())["preprocessing"])
        x = prep.apply(np.array(texts, dtype=object))
        with torch.no_grad():
            return float(1 - F.cosine_similarity(student.eval().forward_features(x),
                                                 teacher_model.eval().forward_features(x)).mean())

    matched, plain = distance(tmp_path / "matched", 100.0), distance(tmp_path / "plain", 0.0)
    assert matched < 0.5 * plain
    config = json.loads((tmp_path / "matched" / "config.json").read_text())
    assert config["strategy"]["feature_weight"] == 100.0
    code, _, err = run_cli(["distill", "--config", tmp_path / "matched" / "config.json", "--speed-rounds", "0",
                            "--quiet", "--out", tmp_path / "replayed"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "replayed" / "config.json").read_text())["strategy"]["feature_weight"] == 100.0


def test_token_masking_replaces_a_share_of_the_ordinary_tokens_and_never_a_special_one():
    from warmstart.strategies.distillation import mask_random_tokens

    keep = torch.tensor([0, 101, 102])  # padding, [CLS], [SEP]
    ids = torch.tensor([[101] + [2000 + i for i in range(60)] + [102, 0, 0]] * 50)
    torch.manual_seed(0)
    masked = mask_random_tokens(ids, 0.25, 103, keep)
    changed = masked != ids
    assert torch.equal(masked[changed], torch.full((int(changed.sum()),), 103))
    assert not changed[:, [0, 61, 62, 63]].any()  # special tokens and padding stay
    assert 0.22 < float(changed[:, 1:61].float().mean()) < 0.28
    torch.manual_seed(0)
    assert torch.equal(mask_random_tokens(ids, 0.25, 103, keep), masked)  # the run's generator decides: resumable
    assert torch.equal(mask_random_tokens(ids, 0.0, 103, keep), ids)


def test_with_token_masking_the_teacher_reads_the_students_masked_copy_and_other_students_are_refused(
        digits_teacher):
    class Recorder(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model, self.seen = model, None

        def forward(self, ids):
            self.seen = ids
            return self.model(ids)

    teacher = create_model("hf", (12,), 2, source=tiny_bert_source())
    student = create_model("hf", (12,), 2, source=tiny_bert_source(), layers=[0])
    objective = Distillation(Recorder(teacher), mask_tokens=0.5)
    objective.check_student(student, "layers=1")
    assert objective.describe()["mask_tokens"] == 0.5
    ids = Tokenization(tiny_bert_source(), 12).apply(np.array(["what is a cat", "who wrote hamlet"], dtype=object))
    recorded = Recorder(student)
    torch.manual_seed(0)
    objective.compute_loss(recorded, ids, torch.tensor([0, 1]), nn.CrossEntropyLoss())
    assert torch.equal(recorded.seen, objective.teacher.seen)  # one masked copy for both
    assert (recorded.seen != ids).any() and (recorded.seen[recorded.seen != ids] == objective.mask_id_).all()
    with pytest.raises(WarmstartError, match="mask_tokens"):
        Distillation(teacher, mask_tokens=1.0)
    mlp_teacher, _ = load_checkpoint(digits_teacher)
    with pytest.raises(WarmstartError, match=r"(?s)--student mlp is not a text encoder \(mlp\).*--augment"):
        Distillation(mlp_teacher, mask_tokens=0.1).check_student(create_model("mlp", (64,), 10), "mlp")
    paired = Distillation(teacher, teacher_preprocessing=Tokenization(tiny_bert_source(), 12), mask_tokens=0.1)
    with pytest.raises(WarmstartError, match=r"the same token ids, and --student hf:other has a tokenizer of its own"):
        paired.check_student(student, "hf:other")


QUESTIONS = ["what is the capital of france", "who wrote hamlet", "how far is the moon", "when did rome fall"]
# two classes a tiny teacher tells apart in one epoch: the questions, and the same with "the" between every word
QUESTION_ROWS = ([(t, "question") for t in QUESTIONS] + [(t.replace(" ", " the "), "other") for t in QUESTIONS]) * 3


def _question_teacher(tmp_path: Path) -> tuple[DataConfig, warmstart.RunResult]:
    """The question data, and a tiny BERT fine-tuned on it for one epoch (tmp_path/teacher)."""
    data = DataConfig(_texts(tmp_path / "train.csv", QUESTION_ROWS), max_length=16, val_fraction=0.0)
    return data, warmstart.finetune(f"hf:{tiny_bert_source()}", data, out=tmp_path / "teacher",
                                    train=TrainConfig(epochs=1, lr=1e-3, **QUIET))


def test_a_cut_student_distils_on_masked_texts_and_the_run_replays_with_its_masking(tmp_path, capsys):
    data, teacher = _question_teacher(tmp_path)
    # layers=I,J: those layers (here both of the tiny teacher's, named out of order)
    code, _, err = run_cli(["distill", "--teacher", teacher.run_dir, "--student", "layers=1,0", "--data", data.source,
                            "--max-length", "16", "--val-fraction", "0", "--mask-tokens", "0.2", "--epochs", "2",
                            "--speed-rounds", "0", "--quiet", "--tracker", "none", "--out", tmp_path / "masked"],
                           capsys)
    assert code == 0, err
    config = json.loads((tmp_path / "masked" / "config.json").read_text())
    assert config["strategy"]["mask_tokens"] == 0.2 and config["student"]["layers"] == [0, 1]
    # both of the tiny teacher's layers: the student is the teacher's size, and the notes say so
    assert any("nothing is cut" in n and "self-distillation" in n for n in config["notes"])
    assert config["speed_rounds"] == 0
    # the replay masks the same share and skips the speed comparison as the recorded run did
    code, _, err = run_cli(["distill", "--config", tmp_path / "masked" / "config.json", "--quiet",
                            "--out", tmp_path / "replayed"], capsys)
    assert code == 0, err
    replayed = json.loads((tmp_path / "replayed" / "config.json").read_text())
    assert replayed["strategy"]["mask_tokens"] == 0.2 and replayed["speed_rounds"] == 0
    assert "speed" not in json.loads((tmp_path / "replayed" / "distillation.json").read_text())["student"]


def test_early_stopping_on_train_loss_watches_the_distillation_loss(digits_teacher, tmp_path):
    """Distillation logs its loss as distill_loss: early stopping on train_loss failed with a ValueError after the
    first epoch."""
    result = warmstart.distill(digits_teacher, "digits", student=ModelConfig("mlp", {"hidden": [8]}),
                               out=tmp_path / "s", speed_rounds=0,
                               train=TrainConfig(epochs=4, early_stopping=1, early_stopping_monitor="train_loss",
                                                 early_stopping_min_delta=100.0, **QUIET))
    assert len(result.run.history) == 2


def test_pruning_feed_forward_neurons_keeps_those_that_carry_the_output():
    from warmstart.models.ffn_pruning import activation_scores, keep_neurons, magnitude_scores
    from warmstart.models.hf import keep_feed_forward

    model = create_model("hf", (12,), 2, source=tiny_bert_source())
    encoder = model.backbone.encoder
    ids = Tokenization(tiny_bert_source(), 12).apply(np.array(["what is a cat", "who wrote hamlet", "the moon",
                                                               "how far is rome from here"], dtype=object))
    mask = (ids != 0).long()
    dead = torch.arange(0, 64, 2)  # half of each block's 64 neurons write nothing back: removing them is free
    with torch.no_grad():
        for layer in encoder.encoder.layer:
            layer.output.dense.weight[:, dead] = 0.0
        before = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    for scores in (activation_scores(encoder, encoder.encoder.layer, ids, 0), magnitude_scores(encoder.encoder.layer)):
        assert all(float(s.score[dead].max()) == 0.0 and float(s.score[1::2].min()) > 0 for s in scores)
    kept = keep_feed_forward(encoder, 32, "tiny", activation_scores(encoder, encoder.encoder.layer, ids, 0))
    assert kept == [list(range(1, 64, 2))] * 2 and encoder.config.intermediate_size == 32
    with torch.no_grad():
        after = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(before, after, atol=1e-5)
    assert encoder.encoder.layer[0].intermediate.dense.weight.shape == (32, 32)
    for bad in (0, 33, 2.5, True):
        with pytest.raises(WarmstartError, match="intermediate_size"):
            keep_neurons(encoder.encoder.layer, magnitude_scores(encoder.encoder.layer), bad)


def test_the_activation_scores_lose_less_of_the_output_than_a_random_choice():
    """FLAP's scores (with the dropped neurons' mean in the bias) against the weights' magnitude and a random
    half of each block, on a real encoder (MiniLM's bottom layers) and real questions: the pruned encoder's output
    stays nearer to the whole one's."""
    from warmstart.models.ffn_pruning import NeuronScores, activation_scores, magnitude_scores
    from warmstart.models.hf import keep_feed_forward

    texts = np.array(["what is the capital of france", "who wrote hamlet", "how far away is the moon",
                      "when did the roman empire fall", "why is the sky blue", "where is mount everest",
                      "which river is the longest in africa", "who painted the mona lisa"], dtype=object)
    ids = Tokenization("minilm", 16).apply(texts)
    mask = (ids != 0).long()

    def error(choice: str, seed: int) -> float:
        model = create_model("hf", (16,), 2, source="minilm", layers=[0, 1])
        encoder = model.backbone.encoder
        with torch.no_grad():
            whole = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            layers = encoder.encoder.layer
            scores = activation_scores(encoder, layers, ids, 0) if choice == "activations" else \
                magnitude_scores(layers) if choice == "magnitude" else \
                [NeuronScores(torch.rand(1536, generator=torch.Generator().manual_seed(seed + i))) for i in range(2)]
            keep_feed_forward(encoder, 384, "minilm", scores)
            pruned = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return float((pruned - whole).norm() / whole.norm())

    random = sum(error("random", seed) for seed in range(3)) / 3
    chosen, magnitude = error("activations", 0), error("magnitude", 0)
    print(chosen, magnitude, random)
    assert chosen < 0.9 * random and chosen < 0.95 * magnitude  # measured: 0.41, 0.49 by magnitude, 0.51 random


def test_a_cut_student_with_pruned_feed_forward_blocks_distils_reloads_and_exports(tmp_path, capsys):
    data, teacher = _question_teacher(tmp_path)
    code, _, err = run_cli(["distill", "--teacher", teacher.run_dir, "--student", "layers=1", "--model-option",
                            "intermediate_size=16", "--data", data.source, "--max-length", "16", "--val-fraction",
                            "0", "--epochs", "2", "--speed-rounds", "1", "--quiet", "--tracker", "none",
                            "--out", tmp_path / "pruned"], capsys)
    assert code == 0, err
    student, info = load_checkpoint(tmp_path / "pruned" / "model")
    assert info.arch_args["layers"] == [0] and info.arch_args["intermediate_size"] == 16
    assert student.backbone.encoder.encoder.layer[0].intermediate.dense.out_features == 16
    config = json.loads((tmp_path / "pruned" / "config.json").read_text())
    assert config["student"]["intermediate_size"] == 16 and config["student"]["model_options"] == \
        {"intermediate_size": 16}
    assert any("pruned from 64 to 16 neurons" in n for n in config["notes"])
    comparison = json.loads((tmp_path / "pruned" / "distillation.json").read_text())
    assert comparison["student"]["speed"]["onnx"]["latency_ms"] > 0  # exported, parity-checked, timed
    predicted = warmstart.predict(tmp_path / "pruned", _texts(tmp_path / "new.csv", [("who wrote it", "question")]),
                                  tmp_path / "predicted.csv")
    assert predicted.predicted == 1
    # any other model option, or a width the blocks do not have, is refused by name before training
    code, _, err = run_cli(["distill", "--teacher", teacher.run_dir, "--student", "layers=1", "--model-option",
                            "widths=[4]", "--data", data.source, "--out", tmp_path / "bad"], capsys)
    assert code != 0 and "takes one model option, intermediate_size" in err and "widths" in err
    code, _, err = run_cli(["distill", "--teacher", teacher.run_dir, "--student", "layers=1", "--model-option",
                            "intermediate_size=65", "--data", data.source, "--max-length", "16",
                            "--out", tmp_path / "bad"], capsys)
    assert code != 0 and "intermediate_size=65: expected a whole number from 1 to 64" in err
    assert not (tmp_path / "bad").exists()


def test_pruning_a_pretrained_encoder_outside_a_cut_says_how_its_neurons_were_chosen(tmp_path):
    data = DataConfig(_texts(tmp_path / "train.csv", QUESTION_ROWS), max_length=16, val_fraction=0.0)
    run = warmstart.finetune(f"hf:{tiny_bert_source()}", data, model=ModelConfig("hf", {"intermediate_size": 16}),
                             train=TrainConfig(epochs=1, lr=1e-3, **QUIET), out=tmp_path / "pruned")
    assert run.model.backbone.encoder.config.intermediate_size == 16
    assert any("pruned to 16 neurons each, chosen by their weights' magnitude alone" in n for n in run.notes)


def test_a_teacher_trained_elsewhere_on_a_relative_path_is_timed_and_exported_from_here(tmp_path, monkeypatch):
    """The speed comparison exports both models, and its parity check read the teacher's recorded data, a path
    relative to where the teacher was trained: from another directory the run failed after training."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _texts(tmp_path / "a" / "train.csv", QUESTION_ROWS)
    monkeypatch.chdir(tmp_path / "a")
    warmstart.finetune(f"hf:{tiny_bert_source()}", DataConfig("train.csv", max_length=16, val_fraction=0.0),
                       train=TrainConfig(epochs=1, lr=1e-3, **QUIET), out="teacher")
    monkeypatch.chdir(tmp_path / "b")
    result = warmstart.distill(tmp_path / "a" / "teacher", DataConfig(str(tmp_path / "a" / "train.csv"),
                                                                      max_length=16, val_fraction=0.0),
                               student="layers=1", train=TrainConfig(epochs=1, lr=1e-3, **QUIET), out="student",
                               speed_rounds=1)
    assert result.comparison["teacher"]["speed"]["onnx"]["latency_ms"] > 0
    assert result.comparison["teacher"]["checkpoint"] == str(tmp_path / "a" / "teacher")


def test_a_cut_student_on_data_of_other_classes_is_refused_in_distills_words(tmp_path, capsys):
    data, teacher = _question_teacher(tmp_path)
    other = _texts(tmp_path / "other.csv", [(t, "query") for t in QUESTIONS] * 3
                   + [(t, "other") for t in QUESTIONS] * 3)
    code, _, err = run_cli(["distill", "--teacher", teacher.run_dir, "--student", "layers=1", "--data", other,
                            "--max-length", "16", "--out", tmp_path / "bad"], capsys)
    assert code != 0 and "a student cut from the teacher keeps its head, so it needs the teacher's classes" in err
    assert "--keep-head" not in err and not (tmp_path / "bad").exists()
