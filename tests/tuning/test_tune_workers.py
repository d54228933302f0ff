"""A search's workers: --trials is exact however many share the study."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("optuna")


def _slow_first_trials(trial) -> float:
    """Trial 0 ends at once, trial 1 later: the worker that ran trial 0 looks for more work while trial 1 runs."""
    time.sleep(0.05 if trial.number == 0 else 0.5)
    return trial.suggest_float("x", 0.0, 1.0)


def test_two_workers_run_exactly_the_trials_asked_for(tmp_path):
    import optuna

    from warmstart.tuning.study import STUDY_NAME, _optimize, _storage

    optuna.create_study(study_name=STUDY_NAME, storage=_storage(tmp_path), direction="maximize")
    # counted after each trial ends (Optuna's MaxTrialsCallback), the first worker would see 1 of 2 finished and
    # start a third trial; claimed under the lock, it sees trial 1 running and stops
    workers = [threading.Thread(target=_optimize, args=(_slow_first_trials, tmp_path, seed, "none", 2, None))
               for seed in (0, 1)]
    for worker in workers:
        worker.start()
        time.sleep(0.02)  # trial 0 to the first worker
    for worker in workers:
        worker.join()
    trials = optuna.load_study(study_name=STUDY_NAME, storage=_storage(tmp_path)).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert not (tmp_path / "study.trials.lock").exists()  # released
