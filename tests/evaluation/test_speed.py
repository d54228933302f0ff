"""The CPU speed measurement: interleaved rounds, real batch shapes, clear refusals."""

import pytest
import torch

from warmstart.evaluation.speed import THROUGHPUT_BATCH, measure_speeds


def test_models_are_timed_in_turn_within_each_round():
    calls = []

    def recorder(name):
        def predict(batch):
            calls.append((name, len(batch)))
        return predict

    inputs = torch.zeros(5, 3)
    speeds = measure_speeds({"student": (recorder("student"), inputs), "teacher": (recorder("teacher"), inputs)},
                            rounds=4)
    latency_calls = [name for name, size in calls if size == 1]
    # one warm-up each, then student, teacher, student, teacher...: a change of load falls on both alike
    assert latency_calls == ["student", "teacher"] * 5
    assert [size for _, size in calls if size != 1] == [THROUGHPUT_BATCH] * 10  # 5 rows repeated to fill 64
    for figures in speeds.values():
        assert figures["latency_ms"] > 0 and figures["throughput_per_s"] > 0 and figures["rounds"] == 4


def test_a_slower_model_measures_slower():
    layer = torch.nn.Linear(64, 64)
    slow = torch.nn.Sequential(*[layer] * 40)
    speeds = measure_speeds({"fast": (layer, torch.randn(8, 64)), "slow": (slow, torch.randn(8, 64))}, rounds=20)
    assert speeds["slow"]["latency_ms"] > speeds["fast"]["latency_ms"]
    assert speeds["slow"]["throughput_per_s"] < speeds["fast"]["throughput_per_s"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        measure_speeds({"model": (lambda batch: batch, torch.zeros(2, 2))}, rounds=0)
    with pytest.raises(ValueError, match="at least one model"):
        measure_speeds({}, rounds=3)
