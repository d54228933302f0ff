"""The documented examples run, and show what they say they show."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_keras_mlp_transfer_example(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    outcome = load("keras_mlp_transfer").main(["--small", "--workdir", str(tmp_path)])
    assert outcome["source_accuracy"] > 0.8  # Keras learnt the source task
    assert (tmp_path / "pretrained_model.weights.h5").is_file()
    compare = outcome["compare"]
    assert compare["linear-probe"] > compare["scratch"] + 0.05  # transfer paid, through compare
    estimator = outcome["estimator"]
    assert estimator["fine-tuned"] > estimator["scratch"] + 0.05  # and through the estimator, on arrays
