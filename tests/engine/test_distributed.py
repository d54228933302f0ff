"""DDP through torchrun: two gloo processes train to the weights one process reaches with the same global batch,
every strategy included; only rank 0 writes; a failing rank stops the run. Spark's TorchDistributor runs the same.

Tolerance: the two-process runs sum the same gradients in a different order (an all-reduce of two halves), so
weights agree to float32 rounding, not bit for bit; we allow 1e-5 absolute after 3 epochs of ~40 steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from warmstart import api
from warmstart.config import DataConfig, TrainConfig
from warmstart.engine.batches import TensorBatches
from warmstart.engine.distributed import Distributed, StepBatches
from warmstart.errors import WarmstartError
from warmstart.launch import LaunchSettings, worker_arguments
from warmstart.launch.torchrun import torchrun_arguments
from warmstart.models import load_checkpoint
from warmstart.strategies import create_strategy

WORKER = Path(__file__).with_name("ddp_worker.py")
TOLERANCE = 1e-5
TRAIN = {"epochs": 3, "batch_size": 32, "optimizer": "sgd", "momentum": 0.9, "lr": 0.05, "seed": 0}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WARMSTART_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


def _one_process(out: Path, strategy: str, train: dict, **strategy_options) -> None:
    """The reference run, at the workers' one intra-op thread (torchrun sets OMP_NUM_THREADS=1): with two threads
    the features' sums round differently (about 1e-7), and Adam, dividing by tiny second moments, makes that 1e-3
    in the linear probe's head; the comparison is of DDP against one process, not of thread counts."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        api.finetune(None, DataConfig("digits", val_fraction=0.1), model="mlp",
                     strategy=create_strategy(strategy, **strategy_options),
                     train=TrainConfig(**train, progress=False), out=out)
    finally:
        torch.set_num_threads(threads)


def _largest_difference(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def _torchrun(runs: list[dict], tmp_path: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    spec = tmp_path / "runs.json"
    spec.write_text(json.dumps(runs))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "--max-restarts=0", str(WORKER), str(spec)], capture_output=True, text=True,
                          timeout=timeout, env=_env())


# --- sharding and accumulation, without processes ---------------------------------------------------------------

def test_ranks_share_each_global_batch_and_their_weights_make_the_step_mean():
    x, y = torch.arange(22).float().unsqueeze(1), torch.arange(22)

    def steps(rank: int, world: int, accumulation: int = 1):
        batches = TensorBatches(x, y, 8, shuffle=True, generator=torch.Generator().manual_seed(3))
        return list(StepBatches(batches, accumulation, Distributed(rank, world)))
    one = steps(0, 1)
    two = [steps(0, 2), steps(1, 2)]
    assert len(one) == len(two[0]) == len(two[1]) == 3  # 8, 8, 6: the last batch is big enough for two ranks
    for step, micro in enumerate(one):
        union = torch.cat([two[0][step][0][2], two[1][step][0][2]])
        assert union.tolist() == micro[0][2].tolist()  # the same examples, in the same order, split in two
        # DDP averages over 2 ranks, so every example's loss counts weight / (2 n_rank): 1 / n_step, as in one
        for r in (0, 1):
            *_, yb, weight = two[r][step][0]
            assert weight / (2 * len(yb)) == pytest.approx(1 / len(union))
    accumulated = steps(0, 1, accumulation=2)
    assert [len(s) for s in accumulated] == [2, 1]
    assert sum(w for *_, w in accumulated[0]) == pytest.approx(1.0)


def test_a_last_batch_too_small_for_every_rank_is_dropped_under_ddp():
    x, y = torch.zeros(19, 1), torch.zeros(19, dtype=torch.long)  # batches 8, 8, 3: 3 < 2 x 2 ranks
    batches = TensorBatches(x, y, 8, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert len(StepBatches(batches, 1, Distributed(0, 1))) == 3
    assert len(StepBatches(batches, 1, Distributed(1, 2))) == 2


def test_launcher_options_never_reach_the_workers():
    argv = ["finetune", "--nproc", "2", "--launcher=torchrun", "--data", "digits", "--nnodes", "1", "--epochs", "2"]
    assert worker_arguments(argv) == ["finetune", "--data", "digits", "--epochs", "2"]


def test_multi_node_rendezvous_arguments_pass_through_to_torchrun():
    settings = LaunchSettings(nproc=4, nnodes="2", rdzv_endpoint="node0:29400", rdzv_id="run42")
    assert torchrun_arguments(settings) == ["--nproc-per-node=4", "--max-restarts=0", "--nnodes=2",
                                            "--rdzv-backend=c10d", "--rdzv-endpoint=node0:29400", "--rdzv-id=run42"]
    assert torchrun_arguments(LaunchSettings(nproc=2))[0] == "--standalone"  # one machine: a free local port
    with pytest.raises(WarmstartError, match="--nnodes 2 needs --rdzv-endpoint"):
        LaunchSettings(nproc=2, nnodes="2")
    with pytest.raises(WarmstartError, match="--launcher 'mpi'"):
        LaunchSettings(nproc=2, launcher="mpi")


# --- two real processes ----------------------------------------------------------------------------------------

@pytest.mark.slow  # 35-45 s on 2 busy cores: three to four processes each import torch
def test_two_processes_match_one_process_and_rank_0_writes_the_run_once(tmp_path):
    """Through the CLI: ``--nproc 2`` starts torchrun, which runs ``python -m warmstart`` in two gloo ranks."""
    args = ["finetune", "--from", "none", "--data", "digits", "--model", "mlp", "--val-fraction", "0.1",
            "--epochs", "3", "--batch-size", "32", "--optimizer", "sgd", "--lr", "0.05", "--quiet", "--json"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "warmstart", *args, "--nproc", "2", "--out", str(tmp_path / "two")],
                          capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip().splitlines()) == 1  # rank 0 printed the metrics; rank 1 printed nothing
    _one_process(tmp_path / "one", "full", {**TRAIN, "momentum": 0.9})
    assert _largest_difference(tmp_path / "one", tmp_path / "two") < TOLERANCE
    one, two = _log(tmp_path / "one"), _log(tmp_path / "two")
    assert len(two) == 3  # one line per epoch: a second writer would have appended three more
    assert [e["val_accuracy"] for e in two] == pytest.approx([e["val_accuracy"] for e in one], abs=1e-6)
    assert [e["train_loss"] for e in two] == pytest.approx([e["train_loss"] for e in one], rel=1e-5)
    run = tmp_path / "two"
    assert sorted(p.name for p in (run / "model").iterdir()) == ["metadata.json", "model.safetensors"]
    assert not (run / "state").exists() and not list(run.rglob("*.tmp"))
    model, info = load_checkpoint(run)  # complete: it loads, with its metadata
    assert info.extra["metrics"]["accuracy"] > 0.8
    assert json.loads((run / "config.json").read_text())["resolved"]["processes"] == 2
    print(f"two-process CLI run: {time.perf_counter() - started:.1f} s")


@pytest.mark.slow  # 35-45 s on 2 busy cores: three to four processes each import torch
def test_every_strategy_kind_runs_under_ddp_and_matches_one_process(tmp_path):
    """The cached linear probe (features extracted in shares and gathered), phase changes (gradual unfreezing,
    LP-FT: the DDP wrapper is rebuilt when the trainable set changes), gradient accumulation under no_sync, and
    augmentation with mixup (run on the whole batch in every rank, then shared out)."""
    runs = [("linear-probe", {}, {}), ("linear-probe", {"solver": "lbfgs"}, {}),
            ("gradual-unfreeze", {"boundaries": [2, 3]}, {}),
            ("lp-ft", {}, {}), ("full", {}, {"grad_accumulation": 2}),
            ("full", {}, {"augment": "light", "mix": "mixup"})]
    spec = [{"out": str(tmp_path / f"two-{i}"), "strategy": name, "strategy_options": options,
             "train": {**TRAIN, **extra}} for i, (name, options, extra) in enumerate(runs)]
    done = _torchrun(spec, tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "unused parameters" not in done.stderr.lower()
    for i, (name, options, extra) in enumerate(runs):
        _one_process(tmp_path / f"one-{i}", name, {**TRAIN, **extra}, **options)
        difference = _largest_difference(tmp_path / f"one-{i}", tmp_path / f"two-{i}")
        assert difference < TOLERANCE, (name, difference)
        log = _log(tmp_path / f"two-{i}")
        assert log[-1]["val_accuracy"] > 0.5, (name, log[-1])  # it learnt (mixup's train accuracy is on mixtures)


def test_a_failing_rank_stops_the_whole_run_and_the_run_resumes_under_ddp(tmp_path):
    spec = [{"out": str(tmp_path / "run"), "strategy": "full", "train": TRAIN, "fail_rank": 1, "fail_epoch": 2}]
    started = time.perf_counter()
    done = _torchrun(spec, tmp_path, timeout=180)  # a hang would end in TimeoutExpired, failing the test
    elapsed = time.perf_counter() - started
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "rank 1 failed on purpose at epoch 2" in output
    assert "ChildFailedError" in output  # torchrun's summary names the failed rank
    assert not (tmp_path / "run" / "model").exists()  # no checkpoint from a failed run
    assert (tmp_path / "run" / "state" / "trainer.pt").is_file()  # rank 0 saved the finished epochs
    print(f"failed run stopped after {elapsed:.1f} s")
    # resumed by two processes, it ends where an uninterrupted one-process run ends
    done = _torchrun([{"out": str(tmp_path / "run"), "strategy": "full", "train": TRAIN, "resume": True}], tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    _one_process(tmp_path / "one", "full", TRAIN)
    assert _largest_difference(tmp_path / "one", tmp_path / "run") < TOLERANCE
    assert _log(tmp_path / "run")[-1]["epoch"] == 3


def test_the_launcher_reports_a_failed_distributed_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "warmstart", "finetune", "--from", "none", "--data",
                           str(tmp_path / "missing.npz"), "--nproc", "2", "--out", str(tmp_path / "run"), "--quiet"],
                          capture_output=True, text=True, timeout=180, env=_env())
    assert done.returncode == 1
    assert "error: the distributed run failed" in done.stderr
    assert "missing.npz" in done.stderr  # the workers' own error is there too


@pytest.mark.slow
@pytest.mark.xdist_group("spark")  # one JVM at a time: Spark tests run on the same xdist worker
def test_spark_torch_distributor_runs_a_fine_tune_on_two_processes(tmp_path):
    pytest.importorskip("pyspark")
    out = tmp_path / "spark"
    done = subprocess.run([sys.executable, "-m", "warmstart", "finetune", "--from", "none", "--data", "digits",
                           "--model", "mlp", "--epochs", "2", "--batch-size", "32", "--launcher", "spark",
                           "--nproc", "2", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=280, env=_env())
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert len(_log(out)) == 2
    assert json.loads((out / "config.json").read_text())["resolved"]["processes"] == 2
    assert json.loads((out / "metrics.json").read_text())["accuracy"] > 0.6


@pytest.mark.slow  # 40-60 s on 2 busy cores
def test_setfit_pairs_run_under_ddp_and_match_one_process(tmp_path):
    """SetFit trains in the one loop, so DDP shares each batch of pairs out like any batch: two processes reach the
    one-process weights (a BERT without dropout, so both draw no random masks)."""
    import shutil

    from transformers import BertConfig, BertModel

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tiny_models import tiny_bert_source

    bert = tmp_path / "bert"
    shutil.copytree(tiny_bert_source(), bert)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0), add_pooling_layer=False).save_pretrained(bert)
    words = ["rain falls", "cold wind", "snow storm", "sunny sky", "heavy rain", "fresh bread", "hot soup",
             "sweet cake", "ripe apple", "green salad"]
    csv = tmp_path / "topics.csv"
    csv.write_text("text,label\n" + "\n".join(f"{w},{'weather' if i < 5 else 'food'}" for i, w in enumerate(words))
                   + "\n")
    run = {"from": f"hf:{bert}", "data": str(csv), "data_options": {"val_fraction": 0.0, "max_length": 8},
           "strategy": "setfit", "strategy_options": {"iterations": 2},
           "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "seed": 0}}
    done = _torchrun([{**run, "out": str(tmp_path / "two")}], tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    api.finetune(run["from"], DataConfig(str(csv), **run["data_options"]),
                 strategy=create_strategy("setfit", iterations=2), train=TrainConfig(**run["train"], progress=False),
                 out=tmp_path / "one")
    assert _largest_difference(tmp_path / "one", tmp_path / "two") < 1e-4
    one, two = _log(tmp_path / "one"), _log(tmp_path / "two")
    assert [e["pairs"] for e in two] == [e["pairs"] for e in one] == [32, 32]  # 2 x 2 x 8 training texts
    assert [e["pair_loss"] for e in two] == pytest.approx([e["pair_loss"] for e in one], rel=1e-4)


@pytest.mark.slow
def test_simclr_pretrains_under_ddp_with_the_embeddings_gathered(tmp_path, fashion_subset_npz):
    """A contrastive objective under ``--nproc 2``: every process embeds its share and the embeddings are gathered
    with their gradients, so each view is contrasted with the whole global batch: the loss is on one process's
    scale (about ln 63 for 32 images, against ln 31 for a rank's 16 alone). Not bit for bit: the cnn's BatchNorm
    normalises each process's share with its own statistics. Rank 0 writes one plain checkpoint."""
    import numpy as np

    with np.load(fashion_subset_npz) as archive:
        np.savez(tmp_path / "images.npz", x=archive["x"][:128])  # inputs only: no labels
    args = [sys.executable, "-m", "warmstart", "pretrain", "--data", str(tmp_path / "images.npz"), "--objective",
            "simclr", "--model", "cnn", "--model-option", "widths=[8,16]", "--epochs", "2", "--batch-size", "32",
            "--quiet"]
    for out, extra in ((tmp_path / "one", []), (tmp_path / "two", ["--nproc", "2"])):
        done = subprocess.run([*args, *extra, "--out", str(out)], capture_output=True, text=True, timeout=240,
                              env=_env())
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    one, two = ([e["pretext_loss"] for e in _log(tmp_path / run)] for run in ("one", "two"))
    assert len(two) == 2 and two[-1] < two[0], two  # one writer, and the contrastive loss fell
    assert two == pytest.approx(one, abs=0.1)  # measured: 4.02, 3.86 against 4.00, 3.84; gather=false: 3.31, 3.15
    out = tmp_path / "two"
    assert json.loads((out / "config.json").read_text())["resolved"]["processes"] == 2
    model, info = load_checkpoint(out)
    assert not any(k.startswith("projection") for k in model.state_dict())
    assert info.extra["self_supervised"]["objective"]["name"] == "simclr"
