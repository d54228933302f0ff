"""benchmarks/self_supervised.py's diagnostic: the unsupervised SimCSE loss of all-MiniLM-L6-v2 as shipped, on 4
batches of 32 training texts per dataset (training mode: dropout on), at temperature 0.05: how much a task-adaptive
SimCSE stage has left to learn.

    python benchmarks/self_supervised_initial_loss.py sst2 emotion trec
"""
import sys
from pathlib import Path

import numpy as np
import torch

from warmstart import DataConfig
from warmstart.data import load_split
from warmstart.models import create_model
from warmstart.data.preprocess import fit_preprocessing
from warmstart.objectives import create_objective

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
torch.manual_seed(0)
model = create_model("hf", (64,), 2, source="minilm")
objective = create_objective("simcse")
objective.prepare(model, 1)
objective.train_mode(model)
module = objective.training_module(model)
for name in sys.argv[1:]:
    data = load_split(DataConfig(str(SHARED / name)), "train")
    norm = fit_preprocessing(data, model.arch_args, 64, model.pretrained_preprocessing)
    rows = np.random.default_rng(0).choice(len(data.x), 128, replace=False)
    ids = norm.apply(data.x[rows])
    with torch.no_grad():
        losses = [float(objective.compute_loss(module, ids[i:i + 32], None, None)[0]) for i in range(0, 128, 32)]
    print(f"{name}: SimCSE loss of minilm at start, 4 batches of 32: {[round(l, 5) for l in losses]} "
          f"(chance: ln 32 = {np.log(32):.3f})", flush=True)
