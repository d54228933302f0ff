"""A search's workers: --trials is exact however many share the study, and --launcher spark runs them as Spark
tasks (one small Spark run; a missing pyspark is an error naming the extra to install)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest

import warmstart
from warmstart.errors import WarmstartError

from test_tune import MLP, SPACE, TRAIN, digits_npz

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


def test_no_trial_starts_past_the_search_deadline(tmp_path):
    import optuna

    from warmstart.tuning.study import STUDY_NAME, _optimize, _storage

    optuna.create_study(study_name=STUDY_NAME, storage=_storage(tmp_path), direction="maximize")
    # the driver's clock: a worker (or a Spark task) that starts after the deadline starts nothing
    _optimize(_slow_first_trials, tmp_path, 0, "none", 2, time.time() - 1)
    assert optuna.load_study(study_name=STUDY_NAME, storage=_storage(tmp_path)).trials == []


def test_a_missing_pyspark_is_an_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark raises ImportError
    with pytest.raises(WarmstartError, match="--launcher spark needs pyspark") as error:
        warmstart.tune(None, "digits", model=MLP, train=TRAIN, out=tmp_path / "run", trials=2, launcher="spark")
    assert "warmstart[spark]" in error.value.hint
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.slow  # Spark's JVM and its Python workers start in ~15 s on 2 busy cores
@pytest.mark.xdist_group("spark")
def test_spark_tasks_share_the_study_and_the_driver_reports(tmp_path):
    pytest.importorskip("pyspark")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    data = warmstart.DataConfig(digits_npz(tmp_path / "digits.npz"), shots=10)
    result = warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=2, space=space,
                            workers=2, launcher="spark")
    assert [t["state"] for t in result.trials] == ["complete", "complete"]  # exactly the budget
    workers = {t["worker"] for t in result.trials}
    assert all(int(w.rsplit(":", 1)[1]) != os.getpid() for w in workers)  # run by Spark's Python workers
    summary = json.loads((tmp_path / "run" / "tuning.json").read_text())
    assert summary["settings"]["launcher"] == "spark" and summary["trials"]["complete"] == 2
    assert result.run.metrics.accuracy > 0.5  # the driver trained the winner and scored it once
    assert (tmp_path / "run" / "report.html").is_file()



DRIVER = """
import multiprocessing, os, sys, time
sys.path.insert(0, sys.argv[2])
import follower

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=follower.work, args=(os.getpid(), sys.argv[1]))
    child.start()
    time.sleep(120)  # killed before this ends
"""
FOLLOWER = """
import os, time
from warmstart.tuning.study import _follow_driver

def work(driver, pid_file):
    _follow_driver(driver, every_s=0.1)
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)  # a trial that would outlive its driver
"""


def test_a_worker_stops_when_its_driver_is_killed(tmp_path):
    """SIGKILL of `warmstart tune` left its --workers training (and writing trials) as orphans."""
    import signal
    import subprocess

    (tmp_path / "follower.py").write_text(FOLLOWER)
    (tmp_path / "driver.py").write_text(DRIVER)
    pid_file = tmp_path / "worker.pid"
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(pid_file), str(tmp_path)])
    try:
        deadline = time.monotonic() + 120
        while not pid_file.is_file() or not pid_file.read_text():
            assert time.monotonic() < deadline and driver.poll() is None, "the worker never started"
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 10
        while _alive(worker):
            assert time.monotonic() < deadline, "the worker outlived its driver"
            time.sleep(0.1)
    finally:
        driver.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped by init) has stopped
        return f.read().split(")")[-1].split()[0] != "Z"


def test_a_second_tune_on_a_study_being_driven_is_refused(tmp_path):
    """A --resume beside a running search marked its live trials interrupted and queued them again."""
    import fcntl

    data = digits_npz(tmp_path / "digits.npz")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=1, space=space)
    with open(tmp_path / "run" / "study.driver.lock", "a") as held:  # as the running search holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(WarmstartError, match="another `warmstart tune` process is working on this study"):
            warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=2, space=space,
                           resume=True)
    resumed = warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=2, space=space,
                             resume=True)  # released: the search goes on
    assert len(resumed.trials) == 2
