"""Run by torchrun in the DDP tests: the runs described in a JSON file, through the Python API, in every rank.

``python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_worker.py RUNS.json``. Each run is
``{"out": ..., "strategy": ..., "strategy_options": {...}, "train": {...}, "fail_rank": R, "fail_epoch": E}``
(optionally ``"from"``: a pretrained source, and ``"data"``, ``"data_options"``);
with ``fail_rank``, that rank raises at the end of ``fail_epoch`` (a worker crashing mid-training); with
``"resume": true`` the run continues from the state in ``out``.
"""

from __future__ import annotations

import json
import os
import sys

from warmstart import api
from warmstart.config import DataConfig, TrainConfig
from warmstart.engine import Callback
from warmstart.strategies import create_strategy


class FailOnRank(Callback):
    def __init__(self, rank: int, epoch: int):
        self.rank, self.epoch = rank, epoch

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch and int(os.environ["RANK"]) == self.rank:
            raise RuntimeError(f"rank {self.rank} failed on purpose at epoch {epoch}")


def main(path: str) -> None:
    for run in json.loads(open(path).read()):
        callbacks = () if "fail_rank" not in run else (FailOnRank(run["fail_rank"], run["fail_epoch"]),)
        source = run.get("from")  # a pretrained source (hf:FOLDER), or None for an mlp from scratch
        api.finetune(source, DataConfig(run.get("data", "digits"), **run.get("data_options", {"val_fraction": 0.1})),
                     model=run.get("model", "mlp") if source is None else None,
                     strategy=create_strategy(run["strategy"], **run.get("strategy_options", {})),
                     train=TrainConfig(**run["train"], progress=False), out=run["out"], callbacks=callbacks,
                     resume=run.get("resume", False))


if __name__ == "__main__":
    main(sys.argv[1])
