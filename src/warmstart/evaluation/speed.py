"""Inference speed on the CPU: latency at batch 1 and throughput at batch 64, the two numbers serving depends on.

A pure measurement: ``predict`` is any callable on a batch of model inputs (a PyTorch model, an ONNX session's
wrapper). Each figure is the median over ``rounds`` timed calls after one untimed warm-up call, so a first call's
allocation and a stray pause of the machine do not count. The numbers depend on the machine and on its load: a
figure measured while other processes hold the cores says little (``benchmarks/`` says how they were measured).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

LATENCY_BATCH, THROUGHPUT_BATCH = 1, 64


def _median_seconds(predict: Callable[[torch.Tensor], Any], batch: torch.Tensor, rounds: int) -> float:
    predict(batch)  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        predict(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def measure_speed(predict: Callable[[torch.Tensor], Any], inputs: torch.Tensor, *, rounds: int) -> dict[str, float]:
    """``latency_ms`` (one example) and ``throughput_per_s`` (examples per second in batches of 64) of ``predict``
    on real ``inputs`` (repeated to fill a batch of 64 when there are fewer), with the threads torch used."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    repeats = -(-THROUGHPUT_BATCH // len(inputs))
    batch = inputs.repeat(repeats, *([1] * (inputs.ndim - 1)))[:THROUGHPUT_BATCH]
    single = _median_seconds(predict, inputs[:LATENCY_BATCH], rounds)
    many = _median_seconds(predict, batch, rounds)
    return {"latency_ms": single * 1000.0, "throughput_per_s": THROUGHPUT_BATCH / many, "rounds": rounds,
            "threads": torch.get_num_threads()}
