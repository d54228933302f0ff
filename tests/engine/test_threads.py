"""The thread policy under load: pure functions on synthetic counters, and the callback on a fake /proc/stat."""

from __future__ import annotations

import pytest
import torch

from warmstart.engine import threads
from warmstart.engine.threads import AdaptiveThreads, CpuSample, fair_threads, others_busy_cores, read_sample


def test_fair_threads_leaves_the_cores_others_hold():
    assert fair_threads(2, 2, 0.0) == 2
    assert fair_threads(2, 2, 0.3) == 2  # noise keeps every thread
    assert fair_threads(2, 2, 0.67) == 1  # a competitor squeezed by our spinning threads still counts
    assert fair_threads(2, 2, 1.0) == 1
    assert fair_threads(2, 2, 3.0) == 1  # never fewer than one
    assert fair_threads(4, 8, 2.0) == 4  # never more than the run started with
    assert fair_threads(8, 8, 2.0) == 6


def test_others_busy_cores_takes_out_our_own_time():
    before = CpuSample(machine_busy_s=100.0, own_s=10.0, wall_s=0.0)
    after = CpuSample(machine_busy_s=104.0, own_s=12.0, wall_s=2.0)  # 2 busy cores, one of them ours
    assert others_busy_cores(before, after) == pytest.approx(1.0)
    assert others_busy_cores(after, before) == 0.0  # no time passed: nothing to say


def test_read_sample_parses_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    hertz = threads.os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text(f"cpu  {3 * hertz} 0 {hertz} {50 * hertz} {hertz} 0 0 0 0 0\ncpu0 1 2 3 4\n")
    sample = read_sample(stat)
    assert sample is not None and sample.machine_busy_s == pytest.approx(4.0)
    assert read_sample(tmp_path / "missing") is None
    stat.write_text("intr 1 2 3\n")
    assert read_sample(stat) is None


def test_callback_follows_the_load_and_restores_the_count(monkeypatch):
    start = torch.get_num_threads()
    monkeypatch.setattr(threads, "START_WINDOW_S", 0.0)
    monkeypatch.setattr(threads, "enabled", lambda: True)
    # a competitor holds one core during the first look and the first epoch, then stops
    samples = iter([CpuSample(0.0, 0.0, 0.0), CpuSample(1.0, 0.0, 1.0),  # start: 1 core busy, none of it ours
                    CpuSample(3.0, 1.0, 2.0),  # epoch 1: 2 cores busy, one ours
                    CpuSample(4.0, 2.0, 3.0)])  # epoch 2: 1 core busy, ours
    monkeypatch.setattr(threads, "read_sample", lambda: next(samples))
    policy = AdaptiveThreads(max_threads=2, cores=2)
    try:
        policy.on_train_begin({})
        assert torch.get_num_threads() == 1
        policy.on_epoch_end(1, {})
        assert torch.get_num_threads() == 1
        policy.on_epoch_end(2, {})
        assert torch.get_num_threads() == 2
        assert policy.history == [1, 1, 2]
        policy.on_train_end({})
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(start)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("WARMSTART_ADAPTIVE_THREADS", "0")
    assert not threads.enabled()
    assert not AdaptiveThreads(max_threads=2, cores=2).active
