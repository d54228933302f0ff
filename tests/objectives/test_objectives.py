"""Self-supervised objectives (issue 17): the losses against their formulas, SimCLR and SimCSE through the one
training loop, unlabelled data, pretrain --objective and finetune --adapt-on."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig, api
from warmstart.config import AdaptConfig
from warmstart.data.unlabelled import load_unlabelled
from warmstart.errors import WarmstartError
from warmstart.models import load_checkpoint
from warmstart.objectives import create_objective, info_nce_loss, nt_xent_loss
from warmstart.strategies import create_strategy


def quiet(**options) -> TrainConfig:
    return TrainConfig.for_command("pretrain", **{"progress": False, "trackers": (), **options})


def direct_nt_xent(z1, z2, tau):
    """Chen et al. 2020, eq. (1), term by term."""
    u = [F.normalize(v, dim=0) for v in torch.cat([z1, z2])]
    n, total = len(z1), 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        denominator = sum(math.exp(float(u[i] @ u[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(u[i] @ u[partner]) / tau) / denominator)
    return total / (2 * n)


def direct_info_nce(z1, z2, tau):
    """Gao et al. 2021, eq. (1), term by term."""
    n, total = len(z1), 0.0
    for i in range(n):
        sims = [float(F.cosine_similarity(z1[i], z2[j], dim=0)) / tau for j in range(n)]
        total += -math.log(math.exp(sims[i]) / sum(math.exp(s) for s in sims))
    return total / n


def test_the_losses_are_their_papers_formulas():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    assert float(nt_xent_loss(z1, z2, 0.5)) == pytest.approx(direct_nt_xent(z1, z2, 0.5), rel=1e-5)
    assert float(info_nce_loss(z1, z2, 0.05)) == pytest.approx(direct_info_nce(z1, z2, 0.05), rel=1e-5)
    # a perfect pair (the views equal, the examples orthogonal) costs less than a random one
    eye = torch.eye(6, 5)
    assert float(nt_xent_loss(eye, eye, 0.1)) < float(nt_xent_loss(z1, z2, 0.1))


@pytest.mark.parametrize("loss", [nt_xent_loss, info_nce_loss])
def test_process_shares_of_a_gathered_batch_add_up_to_the_whole_batch(loss):
    """Under DDP each process averages the loss over its own anchors against the gathered batch, weighted by the loop
    as W * n_rank / n; DDP averages over W processes: the sum must be the one-process loss and its gradient."""
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(7, 4, generator=g).requires_grad_()
    z2 = torch.randn(7, 4, generator=g).requires_grad_()
    whole = loss(z1, z2, 0.2)
    (whole_g1, whole_g2) = torch.autograd.grad(whole, (z1, z2))
    shares = torch.tensor_split(torch.arange(7), 3)  # uneven: 3, 2, 2
    summed = sum(len(rows) / 7 * loss(z1, z2, 0.2, rows=rows) for rows in shares)
    g1, g2 = torch.autograd.grad(summed, (z1, z2))
    assert float(summed.detach()) == pytest.approx(float(whole.detach()), rel=1e-6)
    torch.testing.assert_close((g1, g2), (whole_g1, whole_g2))


@pytest.fixture(scope="module")
def unlabelled_npz(tmp_path_factory, fashion_subset_npz) -> str:
    with np.load(fashion_subset_npz) as archive:
        x = archive["x"][:128]
    path = tmp_path_factory.mktemp("unlabelled") / "images.npz"
    np.savez(path, x=x)  # inputs only: no y
    return str(path)


@pytest.fixture(scope="module")
def simclr_run(tmp_path_factory, unlabelled_npz):
    out = tmp_path_factory.mktemp("simclr") / "run"
    model = ModelConfig("cnn", {"widths": [8, 16]})
    return api.pretrain(unlabelled_npz, model=model, objective=create_objective("simclr", temperature=0.2),
                        train=quiet(epochs=3, batch_size=32), out=out)


def test_simclr_learns_and_saves_a_plain_checkpoint(simclr_run):
    result = simclr_run
    losses = [e["pretext_loss"] for e in result.history]
    assert losses[-1] < losses[0] - 0.1, losses  # learning happened
    assert result.metrics is None and (result.run_dir / "pretext.json").is_file()
    model, info = load_checkpoint(result.run_dir)
    assert not any(k.startswith("projection") for k in model.state_dict())  # the projection head was dropped
    assert info.extra["self_supervised"]["objective"]["temperature"] == 0.2
    card = (result.run_dir / "MODEL_CARD.md").read_text()
    assert "self-supervised pretraining: `simclr`" in card and "128 unlabelled inputs" in card
    assert "pretrained without labels" in card


def test_finetune_from_a_simclr_checkpoint_records_its_lineage(simclr_run, fashion_subset_npz, tmp_path):
    from warmstart.reporting.model_card import render_model_card

    source = simclr_run
    result = api.finetune(source.run_dir, DataConfig(fashion_subset_npz, classes="5-9", shots=10),
                          strategy=create_strategy("linear-probe", solver="lbfgs", C=1.0),
                          train=TrainConfig(progress=False, trackers=()))
    assert result.metrics.accuracy > 0.4  # 5 classes: chance is 0.2
    assert result.info.extra["parent"]["self_supervised"]["objective"]["name"] == "simclr"
    (tmp_path / "model").mkdir()  # the card of a run folder holding this checkpoint's metadata
    (tmp_path / "model" / "metadata.json").write_text(json.dumps({**result.info.extra, "arch": "cnn"}))
    assert "Source model's self-supervised pretraining: `simclr`" in render_model_card(tmp_path)


def test_the_default_objective_is_the_supervised_pretrain(fashion_subset_npz):
    """--objective supervised is today's pretrain, the very same call: bit-identical weights."""
    from warmstart.run.trainer import train_run

    data, train = DataConfig(fashion_subset_npz, classes="0-1"), quiet(epochs=1, batch_size=64)
    ours = api.pretrain(data, model="mlp", train=train).model.state_dict()
    before = train_run("pretrain", None, data, strategy="full", model="mlp", train=train, out=None).model.state_dict()
    assert all(torch.equal(ours[k], before[k]) for k in ours)


def test_what_a_contrastive_objective_refuses_names_the_setting(unlabelled_npz, fashion_subset_npz, tmp_path):
    with pytest.raises(WarmstartError, match="grad-accumulation 2.*not a larger batch") as error:
        api.pretrain(unlabelled_npz, objective="simclr", train=quiet(grad_accumulation=2))
    assert "--nproc" in error.value.hint
    with pytest.raises(WarmstartError, match="holds labels") as error:
        api.pretrain(fashion_subset_npz, objective="simclr", train=quiet())
    assert "--ignore-labels" in error.value.hint
    with pytest.raises(WarmstartError, match="simcse trains on text"):
        api.pretrain(unlabelled_npz, objective="simcse", train=quiet())
    with pytest.raises(WarmstartError, match="--augment applies to supervised training") as error:
        api.pretrain(unlabelled_npz, objective="simclr", train=quiet(augment="strong"))
    assert "augment=PRESET" in error.value.hint
    with pytest.raises(WarmstartError, match="temperature"):
        create_objective("simclr", temperature=0)
    # a batch of one has no negatives: the loss was exactly 0 and the run 'succeeded' having learnt nothing
    with pytest.raises(WarmstartError, match="--batch-size 1: a contrastive loss") as error:
        api.pretrain(unlabelled_npz, objective="simclr", train=quiet(batch_size=1))
    assert "--batch-size 2 or more" in error.value.hint
    # there is no validation split to watch; it used to fail after the first epoch with a ValueError
    with pytest.raises(WarmstartError, match="early stopping cannot watch val_accuracy") as error:
        api.pretrain(unlabelled_npz, objective="simclr", train=quiet(early_stopping=1), out=tmp_path / "run")
    assert "--early-stopping-monitor train_loss" in error.value.hint and not (tmp_path / "run").exists()


def test_early_stopping_on_train_loss_watches_the_pretext_loss(unlabelled_npz):
    result = api.pretrain(unlabelled_npz, objective="simclr", model=ModelConfig("cnn", {"widths": [4, 8]}),
                          train=quiet(epochs=3, batch_size=32, early_stopping=1, early_stopping_monitor="train_loss",
                                      early_stopping_min_delta=100.0))
    assert len(result.history) == 2  # no epoch improves on the first by 100: stopped after the patience of 1


def test_ignore_labels_takes_the_training_split_only(fashion_subset_npz):
    dataset = load_unlabelled(DataConfig(fashion_subset_npz, classes="0-4"), ignore_labels=True)
    assert len(dataset) == 1500 and set(dataset.y) == {0} and dataset.class_names == ("unlabelled",)  # no test rows


def test_unlabelled_texts_and_image_folders(tmp_path):
    from PIL import Image

    (tmp_path / "texts.txt").write_text("one text\n\n  another  \n")
    assert list(load_unlabelled(DataConfig(str(tmp_path / "texts.txt"))).x) == ["one text", "another"]
    (tmp_path / "table.jsonl").write_text('{"body": "a"}\n{"body": "b"}\n')
    assert len(load_unlabelled(DataConfig(str(tmp_path / "table.jsonl"), text_column="body"))) == 2
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((6, 5), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    images = load_unlabelled(DataConfig(str(folder)))
    assert images.x.shape == (3, 1, 6, 5) and images.kind == "image"
    (folder / "cats").mkdir()  # class folders: labelled data
    with pytest.raises(WarmstartError, match="holds labels"):
        load_unlabelled(DataConfig(str(folder)))


def test_finetune_adapt_on_self_runs_simcse_first_and_records_it(tmp_path):
    from tiny_models import tiny_bert_source

    rows = ["text,label"] + [f"{w} is {'good' if i % 2 else 'bad'} number {i},{i % 2}"
                             for i, w in enumerate(["this", "that", "it", "the film", "a play", "our show"] * 5)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    result = api.finetune(f"hf:{tiny_bert_source()}", DataConfig(str(tmp_path / "train.csv"), val_fraction=0.0),
                          adapt_on=AdaptConfig("self", epochs=2, batch_size=8, lr=1e-3), strategy="linear-probe",
                          train=TrainConfig(epochs=1, progress=False, trackers=()))
    stage = result.info.extra["self_supervised"]
    assert (stage["objective"]["name"], stage["data"], stage["epochs"]) == ("simcse", "self", 2)
    assert stage["examples"] == 24  # the training split (30 rows less the fixed 20% test hold-out): never the test
    assert stage["steps"] == 2 * 3
    assert stage["final_loss"] < math.log(8)  # below chance among a batch's 8 candidates: the encoder learned


def test_adapt_on_takes_masked_language_modelling_where_the_encoder_has_an_mlm_head(tmp_path):
    """auto: MLM continued pretraining for a source saved with its MLM head; the head is dropped afterwards."""
    import shutil
    from pathlib import Path

    from tiny_models import tiny_bert_source
    from transformers import BertConfig, BertForMaskedLM

    source = tmp_path / "masked-lm"
    source.mkdir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(tiny_bert_source()) / name, source / name)
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=64)).save_pretrained(source)
    rows = ["text,label"] + [f"the {w} was {'good' if i % 2 else 'bad'},{i % 2}" for i, w in enumerate(["film"] * 20)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    result = api.finetune(f"hf:{source}", DataConfig(str(tmp_path / "train.csv"), val_fraction=0.0),
                          adapt_on=AdaptConfig("self", epochs=3, batch_size=8, lr=1e-2), strategy="linear-probe",
                          train=TrainConfig(epochs=1, progress=False, trackers=()))
    stage = result.info.extra["self_supervised"]
    assert stage["objective"]["name"] == "mlm"
    assert stage["final_loss"] < math.log(30522)  # below a uniform guess over the vocabulary: the head learned
    assert not any(k.startswith("mlm_head") for k in result.model.state_dict())
    with pytest.raises(WarmstartError, match="saved without a masked-language-model head"):
        api.finetune(f"hf:{tiny_bert_source()}", DataConfig(str(tmp_path / "train.csv"), val_fraction=0.0),
                     adapt_on=AdaptConfig("self", objective="mlm"), train=TrainConfig(epochs=1, progress=False))


def test_an_interrupted_simclr_run_resumes_exactly(unlabelled_npz, tmp_path):
    """The projection head is part of the saved training state: a resumed run ends with the uninterrupted run's
    weights, bit for bit."""
    from warmstart.engine import Callback

    class Interrupt(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:  # before epoch 2's state is saved: the resumed run redoes it from epoch 1's
                raise KeyboardInterrupt

    settings = dict(model=ModelConfig("cnn", {"widths": [4, 8]}), objective="simclr",
                    train=quiet(epochs=2, batch_size=32))
    with np.load(unlabelled_npz) as archive:
        np.savez(tmp_path / "few.npz", x=archive["x"][:64])
    data = str(tmp_path / "few.npz")
    whole = api.pretrain(data, **settings).model.state_dict()
    with pytest.raises(KeyboardInterrupt):
        api.pretrain(data, out=tmp_path / "run", callbacks=(Interrupt(),), **settings)
    resumed = api.pretrain(data, out=tmp_path / "run", resume=True, **settings).model.state_dict()
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_simcse_views_differ_by_dropout_alone():
    """The same batch twice in one pass: in training mode the two embeddings differ (dropout), in eval mode not."""
    from tiny_models import example_inputs, tiny_bert_source

    from warmstart.models import create_model

    model = create_model("hf", (16,), 2, source=tiny_bert_source())
    objective = create_objective("simcse")
    objective.prepare(model, 1)
    objective.train_mode(model)
    x, module = example_inputs("hf", (16,), 4), objective.training_module(model)
    with torch.no_grad():  # dropout draws its masks all the same
        z1, z2 = module(torch.cat([x, x])).chunk(2)
        assert float((z1 - z2).abs().max()) > 1e-3
        model.eval()
        z1, z2 = module(torch.cat([x, x])).chunk(2)
    assert torch.equal(z1, z2)


def test_mlm_without_a_head_is_refused_before_any_folder_or_run(tmp_path):
    """Refused only once the stage trained: tune left a study, compare had trained its scratch arm (and left its
    runs), finetune left adapt/state/; each then blocked the corrected command. The message named --objective for
    --adapt-objective."""
    from tiny_models import tiny_bert_source

    rows = ["text,label"] + [f"the {w} was {'good' if i % 2 else 'bad'},{i % 2}" for i, w in enumerate(["film"] * 20)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    data = DataConfig(str(tmp_path / "train.csv"), val_fraction=0.25)
    source, stage = f"hf:{tiny_bert_source()}", AdaptConfig("self", objective="mlm")
    quick = TrainConfig(epochs=1, progress=False, trackers=())
    refused = "--adapt-objective mlm: the encoder .* was saved without a masked-language-model head"
    calls = {"finetune": lambda out: api.finetune(source, data, adapt_on=stage, train=quick, out=out),
             "compare": lambda out: warmstart.compare(source, data, shots=(4,), seeds=1, adapt_on=stage, train=quick,
                                                plateau=False, out=out)}
    if importlib.util.find_spec("optuna") is not None:
        calls["tune"] = lambda out: api.tune(source, data, adapt_on=stage, train=quick, trials=1, out=out)
    for name, call in calls.items():
        with pytest.raises(WarmstartError, match=refused) as error:
            call(tmp_path / name)
        assert "--adapt-objective simcse" in error.value.hint and not (tmp_path / name).exists(), name
    with pytest.raises(WarmstartError, match="--objective mlm: the encoder .* without a masked-language-model head"):
        api.pretrain(data, checkpoint=source, objective="mlm", ignore_labels=True, train=quick,
                     out=tmp_path / "pretrain")
    assert not (tmp_path / "pretrain").exists()
