"""``warmstart tune``: search a strategy's settings on validation, then train the winner and score it once.

The search is an Optuna study (Akiba et al., KDD 2019): the TPE sampler (Bergstra et al., NeurIPS 2011) proposes
settings from the space the strategy declares (``Strategy.search_space``, changed by ``--space FILE.yaml``), and the
median pruner (or successive halving, Li et al. 2017/2020) stops trials whose per-epoch validation accuracy falls
behind the others' at the same epoch. Every trial trains in the one loop (:mod:`warmstart.tuning.objective`).
The first trial of a new study is the run's own recipe (where every value lies in the space), so the search never
ends below it on validation.

The objective is validation accuracy only: the validation split, or with few shots (no validation split held out)
stratified folds of the training examples. The test split is read once, by the winner's run: the best trial's
settings trained as ``finetune`` would train them (into ``out/best``), with ``--average`` applied.

The study lives in the run folder (``out/study.journal``, Optuna's journal storage: several processes append to one
file safely), so ``--resume`` continues it up to ``--trials`` in all, and ``--workers N`` runs N processes that share
it: on this machine, or with ``--launcher spark`` as N Spark tasks on the executors (the folder on a file system
they all see). Each worker claims trials one at a time until the budget is spent: it counts the study's trials and
creates the next one under a lock (``out/study.trials.lock``), so ``--trials`` is exact whatever the number of
workers (Optuna's ``MaxTrialsCallback`` counts only after a trial ends, so N workers would overrun by up to N - 1).
The budget counts trials finished (complete or pruned) or running; a trial left running by a process that was killed
is found on ``--resume``, marked failed and its settings queued once more. ``--time-limit`` stops starting trials
after that many seconds. The driver alone then trains and scores the winner, averages and reports.

With ``--adapt-on``, the task-adaptive stage (:mod:`warmstart.run.self_supervised`) runs once, after the study
exists and before its first trial, on the starting point every trial resolves; its weights and record are kept in
``out/adapt/``, every trial and the winner start from them, ``--resume`` reloads them, and ``tuning.json`` counts
the stage's steps beside the trials'. ``best_config.yaml`` replays it by running the stage again (same seed).

Before the search, :mod:`warmstart.tuning.validation_noise` checks that the validation signal can carry a search (a
few folds of a handful of examples cannot): a warning, printed once and kept in ``tuning.json`` and the report.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import socket
import time
from contextlib import contextmanager
from functools import partial
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from .._version import __version__
from ..config import (AdaptConfig, DataConfig, ModelConfig, TrainConfig, check_parameter, is_int, is_number, json_ready,
                      to_dict)
from ..data import DataSplits, load_splits
from ..errors import WarmstartError
from ..io import atomic_write, write_json, write_text
from ..run.averaging import AVERAGES, create_averaging
from ..run.fingerprint import data_fingerprint, inputs_fingerprint
from ..run.folder import (ADAPT_FOLDER, STUDY, TRIAL_LOCK, WORKING_DIRECTORY, begin_search_folder, open_study_folder,
                          recorded_directory, same_setting, shown_setting, working_directory)
from ..run.self_supervised import adapt_once, stage_inputs
from ..run.trial import check_folds
from ..run.starting_point import data_config, notes_unlogged
from ..run.trainer import RunResult, train_run
from ..search_space import apply_overrides, check_kind, for_kind, read_space_file
from ..strategies import Strategy, create_strategy
from ..strategies.auto import Auto
from .objective import TRAINED_WARMUP, Objective, apply, check_space, searchable
from .validation_noise import ValidationNoise

log = logging.getLogger("warmstart")

STUDY_NAME = "warmstart-tune"
DRIVER_LOCK = "study.driver.lock"  # held by the process driving the study (_driving)
RACE = "race.json"  # with --from auto: the race that chose the starting point (tuning/race.py)
PRUNERS = ("median", "halving", "none")
LAUNCHERS = ("local", "spark")  # where the workers run: processes on this machine, or Spark tasks
# A lock older than this is taken to be a dead process's and broken: claiming a trial holds it for milliseconds.
CLAIM_GRACE_S = 30


@dataclass(frozen=True)
class TuneSettings:
    """The search's budget and methods: ``trials`` in the study in all (a resumed study runs the rest), at most
    ``time_limit`` seconds of starting new ones, ``workers`` processes, the ``pruner``, the ``folds`` of the training
    examples when there is no validation split, and the weight ``average`` of the winner (``soup``: with the next
    ``soup_size - 1`` best trials). ``launcher``: ``local`` runs the workers as processes on this machine, ``spark``
    as Spark tasks (on the executors of the master Spark is configured with; without one, on this machine)."""

    trials: int = 20
    time_limit: float | None = None
    workers: int = 1
    pruner: str = "median"
    folds: int = 3
    average: str | None = None
    soup_size: int = 5
    launcher: str = "local"

    def __post_init__(self) -> None:
        check_parameter(is_int(self.trials) and self.trials >= 1, "trials", "a positive integer", self.trials)
        check_parameter(self.time_limit is None or (is_number(self.time_limit) and self.time_limit > 0), "time_limit",
                        "a positive, finite number of seconds (leave it out for no limit)", self.time_limit)
        check_parameter(is_int(self.workers) and self.workers >= 1, "workers", "a positive integer", self.workers)
        check_parameter(self.pruner in PRUNERS, "pruner", f"one of {', '.join(PRUNERS)}", self.pruner)
        check_parameter(is_int(self.folds) and self.folds >= 2, "folds", "an integer >= 2", self.folds)
        check_parameter(self.average in (None, "none", *AVERAGES), "average", f"none, {' or '.join(AVERAGES)}",
                        self.average)
        check_parameter(is_int(self.soup_size) and self.soup_size >= 2, "soup_size", "an integer >= 2",
                        self.soup_size)
        check_parameter(self.launcher in LAUNCHERS, "launcher", " or ".join(LAUNCHERS), self.launcher)


@dataclass(frozen=True)
class TuneResult:
    """What ``tune`` returns: the best trial's settings and validation accuracy, every trial's row, and the winner's
    run (trained with the best settings, scored once on the test split)."""

    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]]
    run: RunResult
    run_dir: Path
    notes: tuple[str, ...] = field(default=())

    @property
    def metrics(self):
        return self.run.metrics


def make_sampler(seed: int, trials: int):
    import optuna

    # a third of the budget (2 to 10 trials) explores at random before TPE models the results
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, trials // 3)))


def make_pruner(name: str):
    import optuna

    if name == "median":  # after two finished trials, from the second epoch on
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)  # epochs count from 1
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def _drop_cut_record(journal: Path) -> None:
    """A journal whose last line has no end: a process was killed while writing it. Optuna skips such a line when
    it reads, but a resumed search appends after it, joining the two into one line of broken JSON that no later
    read gets past; the cut record (never complete, so never read) is dropped first, and the log says so."""
    data = journal.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    kept = data[:data.rfind(b"\n") + 1]
    atomic_write(journal, lambda tmp: Path(tmp).write_bytes(kept))
    log.warning("tune: the last record of %s was cut off (a process stopped while writing it): dropped %d bytes",
                journal, len(data) - len(kept))


def _storage(folder: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(folder / STUDY)))


def _finished_states():
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _spent_states():
    """The trials the budget counts: finished, or claimed by a worker. Failed ones are not spent."""
    import optuna

    return (*_finished_states(), optuna.trial.TrialState.RUNNING)


@contextmanager
def _driving(folder: Path):
    """Held by the one ``tune`` process driving the study in ``folder``, from opening the study to its last file:
    a second ``--resume`` beside it would mark the trials its workers are training as interrupted, queue them again,
    and crash those workers when they report. An OS lock (``flock``) on ``study.driver.lock``: released by the OS
    when the process ends however it ends, so a killed search never leaves it held."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no such lock, as before
        yield
        return
    with open(folder / DRIVER_LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WarmstartError(f"{folder}: another `warmstart tune` process is working on this study",
                                 hint="wait for it to finish (or stop it), then --resume") from None
        yield


def _claim_lock(folder: Path):
    """The lock around counting the trials and creating the next one. Optuna's own file lock (a symbolic link made
    atomically, which NFS honours too, as the journal's own lock does), on a file of its own: the journal's lock is
    taken inside it, by every write."""
    from optuna.storages.journal import JournalFileSymlinkLock

    return JournalFileSymlinkLock(str(folder / TRIAL_LOCK).removesuffix(".lock"), grace_period=CLAIM_GRACE_S)


def _claim_trial(study, lock, trials: int):
    """The next trial (the first queued one, if any), or None once the study holds ``trials`` spent ones. One worker
    at a time counts and creates, so no two can both see room for the last trial (counting without the lock, even
    with running trials counted, races: optuna/optuna#3518)."""
    lock.acquire()
    try:
        if len(study.get_trials(deepcopy=False, states=_spent_states())) >= trials:
            return None
        return study.ask()
    finally:
        lock.release()


def _run_trial(study, trial, objective: Objective) -> None:
    """One trial, told to the study whatever happens: complete, pruned, or failed (the error is raised again)."""
    import optuna

    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    except KeyboardInterrupt:  # Ctrl-C: left running, as a killed process leaves it, for --resume to mark it
        raise                  # interrupted and queue its settings again (fail_interrupted): the settings did not fail
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    else:
        frozen = study.tell(trial, value)
    _log_trial(frozen)


def _optimize(objective: Objective, folder: Path, seed: int, pruner: str, trials: int,
              deadline: float | None) -> None:
    """One worker's share of the search: it claims trials until the budget is spent or, past ``deadline`` (a
    ``time.time()``, set by the driver: a worker that starts late, a Spark task queued behind others, keeps the
    search's clock), none is started."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=STUDY_NAME, storage=_storage(folder), sampler=make_sampler(seed, trials),
                              pruner=make_pruner(pruner))
    lock = _claim_lock(folder)
    while deadline is None or time.time() < deadline:
        trial = _claim_trial(study, lock, trials)
        if trial is None:
            return
        _run_trial(study, trial, objective)


def _log_trial(trial) -> None:
    epoch = max(trial.intermediate_values, default=None)
    value = f"validation accuracy {trial.value:.4f}" if trial.state.name == "COMPLETE" else \
        f"after epoch {epoch}" if epoch is not None else "no epoch"
    log.info("tune: trial %d %s (%s): %s", trial.number, trial.state.name.lower(), value,
             ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()))


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _worker(objective: Objective, folder: Path, seed: int, pruner: str, trials: int, deadline: float | None,
            log_level: int, threads: int, driver: int | None = None) -> None:
    """A worker process (spawned, or a Spark task: it imports warmstart afresh and shares only the study file). Its
    trials' notes go to its stderr at the driver's level (a Spark task's: the executor's log). ``driver``: the pid
    of the ``tune`` process that spawned it, which it outlives by at most a second (:func:`_follow_driver`)."""
    import torch

    if driver is not None:
        _follow_driver(driver)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("note: %(message)s"))
        log.addHandler(handler)
        log.setLevel(log_level)
    torch.set_num_threads(threads)
    _optimize(objective, folder, seed, pruner, trials, deadline)


def _follow_driver(driver: int, every_s: float = 1.0) -> None:
    """End this worker once the process that spawned it is gone (killed by the OOM killer, a scheduler, SIGKILL):
    left running, it kept training (holding a GPU) and writing trials into a study nobody drives, and a --resume
    took its live trial for an interrupted one. Its running trial is left as it was, which --resume marks
    interrupted and queues again."""
    import threading

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(every_s)
        log.warning("tune: the search's driver (pid %d) has stopped: this worker (pid %d) stops too", driver,
                    os.getpid())
        os._exit(1)

    threading.Thread(target=watch, name="warmstart-follow-driver", daemon=True).start()


def _spark_worker(objective: Objective, folder: Path, seed: int, pruner: str, trials: int, deadline: float | None,
                  log_level: int, index: int, threads: int) -> None:
    """A ``--launcher spark`` task: a worker whose seed is its task's."""
    _worker(objective, folder, seed + 7919 * index, pruner, trials, deadline, log_level, threads)


def _run_workers(objective: Objective, folder: Path, settings: TuneSettings, seed: int) -> None:
    import multiprocessing

    deadline = None if settings.time_limit is None else time.time() + settings.time_limit
    level = log.getEffectiveLevel()
    if settings.launcher == "spark":
        from ..launch.spark import run_spark_tasks

        run_spark_tasks(partial(_spark_worker, objective, folder, seed, settings.pruner, settings.trials,
                                deadline, level), settings.workers, "the search's workers")
        return
    if settings.workers == 1:
        _optimize(objective, folder, seed, settings.pruner, settings.trials, deadline)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
    threads = max(1, (os.cpu_count() or 1) // settings.workers)
    processes = [context.Process(target=_worker, args=(objective, folder, seed + 7919 * w, settings.pruner,
                                                        settings.trials, deadline, level, threads, os.getpid()))
                 for w in range(settings.workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise WarmstartError(f"{len(failed)} of {settings.workers} search workers failed (exit codes {failed})",
                             hint="their errors are printed above; run with --workers 1 to see one in full")


def fail_interrupted(study) -> list[int]:
    """Trials still running when a search resumes: the process running them was killed (out of memory, a lost
    machine, SIGKILL) before it could tell the study, and none will finish them. Each is marked failed, so it is
    neither counted as finished nor as spent budget, is named in the study's ``interrupted`` record (the trial table
    says so), and its settings are queued once more, since the process rather than the settings failed; a retry that
    is itself interrupted is not queued again (its settings may be what kills the process). Only for a study no
    process is working on: ``--resume``, whose folder belongs to the one ``tune`` command."""
    import optuna

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return []
    interrupted = dict(study.user_attrs.get("interrupted", {}))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        retried = "retry_of" not in trial.user_attrs and bool(trial.params)
        if retried:
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        interrupted[str(trial.number)] = ("interrupted: its process stopped before it finished; marked failed on "
                                          "--resume" + (", its settings queued again" if retried else ""))
    study.set_user_attr("interrupted", interrupted)
    return [t.number for t in running]


def _settings_record(objective: Objective, settings: TuneSettings) -> dict[str, Any]:
    """What a resumed study must share with the one it continues."""
    return json_ready({"from": objective.checkpoint, "data": to_dict(objective.data),
                       "strategy": objective.strategy.describe(), "train": {k: v for k, v in to_dict(objective.train)
                                                                            .items() if k not in ("progress",
                                                                                                  "trackers")},
                       "model": None if objective.model is None else to_dict(objective.model),
                       "space": {p.name: p.to_dict() for p in objective.space}, "folds": settings.folds,
                       "pruner": settings.pruner, "average": settings.average or "none",
                       "soup_size": settings.soup_size if settings.average == "soup" else None,
                       "keep_head": objective.keep_head})


def _open_study(folder: Path, record: dict[str, Any], resume: bool):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(folder)
    if not resume:
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize")
        study.set_user_attr("settings", record)
        return study
    _drop_cut_record(folder / STUDY)
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    except (KeyError, ValueError) as exc:  # Optuna's "Record does not exist", a JSON error in the journal
        raise WarmstartError(f"cannot resume the study in {folder}: {STUDY} cannot be read as an Optuna journal "
                             f"({type(exc).__name__}: {str(exc)[:200]})",
                             hint="the file was damaged or is not a study: start a new search (--overwrite, or "
                                  "another --out)") from None
    before = study.user_attrs.get("settings", {})
    # a study from before a setting was recorded is compared on the settings it records
    # (where it was started is no setting: it only tells what the recorded relative paths are relative to)
    keys = sorted((set(before) | {k for k in record if k in before or k not in ("data_fingerprint", "pruner",
                                                                               "average", "soup_size",
                                                                               "adapt_fingerprint")})
                  - {WORKING_DIRECTORY})
    changed = {"data_fingerprint": "the data changed (its fingerprint differs)",
               "adapt_fingerprint": "the --adapt-on data changed (its fingerprint differs)"}
    directory = recorded_directory(before)
    differences = [(changed[k] if k in changed else difference)
                   for k in keys if before.get(k) != record.get(k)
                   and not (k == "folds" and record.get(k) is None)  # a validation split: folds are not used
                   for difference in _differences(k, before.get(k), record.get(k), directory)]
    if differences:
        raise WarmstartError(f"cannot resume the study in {folder}: its settings differ: " + "; ".join(differences),
                             hint="resume with the same settings and data (only --trials, --time-limit and --workers "
                                  "may change), or start a new search in another --out")
    return study


def _differences(key: str, then: Any, now: Any, directory: str | None) -> list[str]:
    """How a recorded setting differs, key by key inside a section (``train.epochs: 1 then, 2 now``; the space's
    ``space.optimizer: None then, {...} now``), not as the two whole sections. Paths are compared as the files they
    name, the recorded ones relative to the study's first ``directory`` (:func:`same_setting`)."""
    if isinstance(then, dict) and isinstance(now, dict):
        return [d for k in sorted(set(then) | set(now), key=str) if then.get(k) != now.get(k)
                for d in _differences(f"{key}.{k}", then.get(k), now.get(k), directory)]
    return [] if same_setting(then, now, directory) else [f"{key}: {shown_setting(then, directory)} then, "
                                                          f"{shown_setting(now)} now"]


def trial_rows(study) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, parameters, epochs and steps run, duration, pruned epoch, the worker
    that ran it (host:pid), and a note (diverged, interrupted, a retry)."""
    interrupted = study.user_attrs.get("interrupted", {})
    rows = []
    for t in study.get_trials(deepcopy=False):
        notes = [t.user_attrs["diverged"]] if "diverged" in t.user_attrs else []
        notes += [interrupted[str(t.number)]] if str(t.number) in interrupted else []
        notes += [f"a retry of trial {t.user_attrs['retry_of']}"] if "retry_of" in t.user_attrs else []
        params = dict(t.params)
        if TRAINED_WARMUP in t.user_attrs:  # the table reports what trained; Optuna keeps what it suggested
            notes.append(f"warmup_epochs {_short(params['warmup_epochs'])} suggested, "
                         f"{t.user_attrs[TRAINED_WARMUP]} trained (warm-up is kept below the trial's epochs)")
            params["warmup_epochs"] = t.user_attrs[TRAINED_WARMUP]
        # an interrupted trial "completed" when the resume failed it: its time says nothing
        duration = None if t.datetime_complete is None or t.datetime_start is None or str(t.number) in interrupted \
            else (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": params,
                     "epochs_run": t.user_attrs.get("epochs_run"), "steps": t.user_attrs.get("steps"),
                     "duration_s": duration,
                     "last_epoch_reported": max(t.intermediate_values) if t.intermediate_values else None,
                     "curve": [t.intermediate_values[k] for k in sorted(t.intermediate_values)],
                     "worker": t.user_attrs.get("worker"), **({"note": "; ".join(notes)} if notes else {})})
    return rows


def write_trials(folder: Path, rows: list[dict[str, Any]]) -> None:
    write_json(folder / "trials.json", json_ready({"trials": rows}))
    names = sorted({k for r in rows for k in r["params"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["number", "state", "value", "epochs_run", "steps", "duration_s", *names, "note"])
    for r in rows:
        writer.writerow([r["number"], r["state"], "" if r["value"] is None else f"{r['value']:.6g}", r["epochs_run"],
                         r["steps"], "" if r["duration_s"] is None else f"{r['duration_s']:.2f}",
                         *(r["params"].get(n, "") for n in names), r.get("note", "")])
    write_text(folder / "trials.csv", buffer.getvalue())


def replayable_source(checkpoint: str) -> str:
    """``--from`` as a replay from any working directory finds it: a local checkpoint, weights file or ``hf:``
    folder by its absolute path (as the run's own config.json records its parent); a model's name as given."""
    from ..models.checkpoint import recorded_checkpoint
    from ..models.hf import recorded_source
    from ..models.imported import imported_weights
    from ..models.sources import pretrained_spec

    imported = imported_weights(checkpoint)
    if imported is not None:
        return str(imported)  # its file made absolute
    if pretrained_spec(checkpoint) is not None:
        prefix, _, name = checkpoint.partition(":")
        return f"hf:{recorded_source(name)}" if prefix == "hf" and Path(name).expanduser().is_dir() else checkpoint
    return recorded_checkpoint(checkpoint)


def replayable_data(source: Any) -> Any:
    """``--data`` as a replay from any working directory finds it: a local file or folder by its absolute path, a
    built-in dataset's name as given."""
    from ..data.sources import DATASETS

    if isinstance(source, str) and source not in DATASETS and Path(source).expanduser().exists():
        return os.path.abspath(Path(source).expanduser())
    return source


def best_config(checkpoint: str | None, data: DataConfig, model: ModelConfig | None, strategy: Strategy,
                train: TrainConfig, searched: Sequence[str], keep_head: bool, average: str | None,
                adapt_on: AdaptConfig | None = None) -> dict[str, Any]:
    """The winner's settings as ``warmstart finetune`` options (``--config best_config.yaml`` replays them): the
    searched ones, and every other setting where it differs from finetune's default. An ``--adapt-on`` stage is
    replayed by running it again (same settings and seed)."""
    from ..config import field_defaults, train_defaults

    data_defaults, train_default = field_defaults(DataConfig), train_defaults("finetune")
    options: dict[str, Any] = {"from": "none" if checkpoint is None else replayable_source(checkpoint),
                               "data": replayable_data(data.source)}
    options.update({k: v for k, v in to_dict(data).items() if k != "source" and v != data_defaults.get(k)})
    if model is not None:
        options.update({"model": model.name, "model_option": dict(model.options)})
    described = strategy.describe()
    options["strategy"] = described.pop("name")
    if described:
        options["strategy_option"] = described
    options.update({k: v for k, v in to_dict(train).items()
                    if k not in ("progress", "trackers") and (k in searched or v != train_default.get(k))})
    if keep_head:
        options["keep_head"] = True
    if average == "wise-ft":  # a soup needs the study's trials: finetune cannot replay it
        options["average"] = average
    if adapt_on is not None:
        stage_defaults = field_defaults(AdaptConfig)
        options["adapt_on"] = adapt_on.data
        options.update({f"adapt_{k}": v for k, v in to_dict(adapt_on).items()
                        if k != "data" and v != stage_defaults.get(k)})
    return json_ready(options)


def run_tune(checkpoint: str | None, data: DataConfig | str, *, strategy: str | Strategy = "full",
             model: ModelConfig | None = None, train: TrainConfig | None = None, out: str | Path,
             settings: TuneSettings = TuneSettings(), space: str | Path | None = None, keep_head: bool = False,
             resume: bool = False, overwrite: bool = False, candidates: Sequence[str] = (),
             rank_score: str = "logme", adapt_on: AdaptConfig | None = None) -> TuneResult:
    """The whole search (see the module's docstring); ``api.tune`` is its public face. ``adapt_on``: the
    task-adaptive stage, run once on the starting point (the race's winner with ``--from auto``) before the first
    trial; every trial and the winner start from its weights (``out/adapt/``)."""
    import yaml

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise WarmstartError("warmstart tune needs Optuna, which is not installed",
                             hint="pip install 'warmstart[tune]' (or pip install optuna)") from None
    if settings.launcher == "spark":  # before any work
        from ..launch.spark import require_pyspark

        require_pyspark("tune --launcher spark")
    started = time.perf_counter()
    checkpoint = None if checkpoint is None else str(checkpoint)
    data, train = data_config(data), train or TrainConfig.for_command("tune")
    strategy = create_strategy(strategy) if isinstance(strategy, str) else strategy
    # a bad file fails before any work, an unknown name before its value is read (auto's names are the winner's)
    overrides = {} if space is None else read_space_file(
        space, allowed=None if isinstance(strategy, Auto) else searchable(strategy))
    folder = open_study_folder(out, resume=resume, overwrite=overwrite,
                               reads=(checkpoint, *candidates, data, None if adapt_on is None else adapt_on.data))
    selection = None
    if checkpoint == "auto":  # the race picks the starting point; a resumed search reads its choice back
        if not (resume and (folder / RACE).is_file()):
            _check_before_race(data, strategy, train, overrides, settings, space, rank_score)
        selection = _race_once(folder, candidates, data, strategy, train, rank_score, settings.folds, resume)
        checkpoint = selection["chosen"]
    base = Objective(checkpoint, data, strategy, model, replace(train, progress=False, trackers=()), (),
                     settings.folds, keep_head)
    start = base.start()
    resolved, trial_train = base.resolved(start)  # auto's choice and budget, fixed for every trial
    source = f"--space {space}" if space is not None else f"{resolved.name}'s search space"
    declared = apply_overrides(resolved.search_space, overrides, searchable(resolved), path=space or "--space",
                               unused=resolved.unused_settings())
    check_kind(declared, overrides, start.splits.train.kind, path=space or "--space")
    searched = for_kind(declared, start.splits.train.kind)
    objective = replace(base, strategy=resolved, train=trial_train, space=searched)
    check_space(searched, trial_train, resolved, objective.own_values(start, resolved, trial_train), source)
    _check_splits(start.splits, settings, pretrained=start.pretrained or adapt_on is not None)
    _check_early_stopping(start.splits, trial_train, [p.name for p in searched])
    if settings.average == "soup":
        objective = replace(objective, weights_dir=folder / "trials")
    stage_start = stage_checked = None
    if adapt_on is not None:  # every check of the stage before the study exists: a refused stage leaves no study
        with notes_unlogged():  # the starting point was announced above
            stage_start = base.start()
        stage_checked = stage_inputs(stage_start, adapt_on, data)
    record = {**_settings_record(objective, settings), "data_fingerprint": data_fingerprint(start.splits),
              **working_directory(), **({"folds": None} if start.splits.val is not None else {}),
              **({} if adapt_on is None else {"adapt_on": to_dict(adapt_on),
                                              "adapt_fingerprint": inputs_fingerprint(stage_checked.dataset)})}
    # every check passed: only now is the folder made, or an old search replaced
    replaced = False if resume else begin_search_folder(folder)
    if selection is not None and not (folder / RACE).is_file():
        write_json(folder / RACE, json_ready(selection))
    with _driving(folder):  # one tune process per study: a second --resume beside it is refused
        study = _open_study(folder, json_ready(record), resume)
        stale = fail_interrupted(study) if resume else []
        if stale:
            log.warning("tune: trial(s) %s were left running by a process that stopped: marked failed, not counted",
                        ", ".join(map(str, stale)))
        stage = None
        if adapt_on is not None:  # after the study exists, so that a search killed in the stage resumes
            stage = adapt_once(stage_start, adapt_on, data, train, folder / ADAPT_FOLDER, resume=resume,
                               inputs=stage_checked)
            objective = replace(objective, adapted=stage)
        # without a validation split the folds score the labelled examples only (never those written from names)
        noise = ValidationNoise(len(start.splits.labelled_train.y) if start.splits.val is None
                                else len(start.splits.val.y),
                                settings.trials)
        if noise.warning is not None:
            log.warning("tune: %s", noise.warning)
        # the first trial is the run's own recipe, where it lies in the space: tune never loses to it
        if not study.trials:
            recipe = objective.recipe(start, resolved, trial_train)
            if recipe is not None:
                study.enqueue_trial(recipe)
        seed = train.seed * 100_003 + len(study.trials)  # a resumed search does not repeat its first random trials
        log.info("tune: searching %s over %s (%d trials in all, %d done)", resolved.name,
                 ", ".join(p.name for p in searched), settings.trials,
                 len(study.get_trials(deepcopy=False, states=_finished_states())))
        try:
            _run_workers(objective, folder, settings, seed)
        except KeyboardInterrupt:
            finished = len(study.get_trials(deepcopy=False, states=_finished_states()))
            log.warning("tune: interrupted: the study in %s keeps its %d finished trial(s)%s; run the same command "
                        "with --resume to continue it (the trial that was training is marked interrupted and "
                        "trained again)", folder, finished,
                        " (--overwrite deleted the earlier search in that folder when this one began)"
                        if replaced else "")
            raise
        except WarmstartError:
            if not resume and not study.get_trials(deepcopy=False, states=_finished_states()):
                # a setting refused by the training itself (--augment on text, LoRA on a CNN, fp16 without CUDA):
                # a new search that finished nothing holds nothing worth keeping, and its study would block the
                # corrected command ("already holds a search")
                shutil.rmtree(folder, ignore_errors=True)
            raise
        rows = trial_rows(study)
        write_trials(folder, rows)
        complete = [r for r in rows if r["state"] == "complete"]
        if not complete:
            started_rows = [r for r in rows if r["state"] != "waiting"]  # a queued trial (the recipe) never began
            if not started_rows and settings.time_limit is not None:
                raise WarmstartError(f"the search in {folder} began no trial: its --time-limit of "
                                     f"{settings.time_limit:g} s had passed before the first could start",
                                     hint="raise --time-limit")
            raise WarmstartError(f"the search in {folder} finished no trial ({len(started_rows)} started: "
                                 f"{', '.join(sorted({r['state'] for r in started_rows})) or 'none'})",
                                 hint="raise --trials or --time-limit, or use --pruner none")
        best = max(complete, key=lambda r: (r["value"], -r["number"]))
        best_train, best_strategy = apply(best["params"], replace(trial_train, progress=train.progress,
                                                                  trackers=train.trackers), resolved)
        options = best_config(checkpoint, data, model, best_strategy, best_train, list(best["params"]), keep_head,
                              settings.average, adapt_on)
        header = (f"# the best of {len(rows)} trials of `warmstart tune` (validation accuracy {best['value']:.4f}, "
                  f"trial {best['number']}): replay with `warmstart finetune --config best_config.yaml --out RUN`\n"
                  + ("# the replay trains the winner alone: best/ is a greedy soup of the study's trials, which a "
                     "finetune cannot replay\n" if settings.average == "soup" else ""))
        write_text(folder / "best_config.yaml", header + yaml.safe_dump(options, sort_keys=False))
        soup = [(f"trial {r['number']}", folder / "trials" / f"trial_{r['number']:05d}.safetensors")
                for r in sorted(complete, key=lambda r: (-r["value"], r["number"])) if r is not best]
        soup = [(label, path) for label, path in soup if path.is_file()][:settings.soup_size - 1]
        chosen = () if selection is None else (
            f"tune --from auto: {selection['why']} (the score's top choice was {selection['score_top1']}, the "
            f"largest model {selection['size_top1']})",)
        warned = () if noise.warning is None else (f"tune: {noise.warning}",)
        failed = sum(r["state"] == "fail" for r in rows)
        interrupted = len(study.user_attrs.get("interrupted", {}))
        failures = "" if not failed else f", {failed} failed" + (f" ({interrupted} interrupted)" if interrupted else "")
        settings_text = ", ".join(f"{k}={_short(v)}" for k, v in best["params"].items())
        notes = (*chosen, *warned, f"tune: the best of {len(rows)} trials ({len(complete)} finished, "
                 f"{sum(r['state'] == 'pruned' for r in rows)} pruned{failures}) was trial {best['number']}, "
                 f"validation accuracy {best['value']:.4f}, with {settings_text}",)
        run = train_run("finetune", checkpoint, data, strategy=best_strategy, model=model, train=best_train,
                        out=folder / "best", overwrite=True, keep_head=keep_head, notes=notes,
                        averaging=create_averaging(settings.average, soup), adapt_on=stage)
        winner_steps = sum(e.get("steps_per_epoch", 0) for e in run.history)
        summary = {"command": "tune", "from": checkpoint, "data": to_dict(data), "strategy": resolved.describe(),
                   "settings": {**to_dict(settings), "space_file": None if space is None else str(space)},
                   "space": {p.name: p.to_dict() for p in searched},
                   "own_values": objective.own_values(start, resolved, trial_train),
                   "best": {"number": best["number"], "value": best["value"], "params": best["params"]},
                   "trials": {"total": len(rows), **{s: sum(r["state"] == s for r in rows)
                                                     for s in ("complete", "pruned", "fail", "running")},
                              "interrupted": sorted(int(n) for n in study.user_attrs.get("interrupted", {}))},
                   "validation_noise": noise.to_dict(),
                   "compute": {"trial_steps": sum(r["steps"] or 0 for r in rows), "winner_steps": winner_steps,
                               "adapt_steps": 0 if stage is None else stage.lineage["steps"]},
                   **({} if stage is None else {"adapt_on": {**to_dict(adapt_on), "stage": stage.lineage}}),
                   "importances": importances(study), "test_accuracy": run.metrics.accuracy,
                   **({} if selection is None else {"selection": selection}),
                   "notes": list(run.notes), "wall_time_s": time.perf_counter() - started,
                   "warmstart_version": __version__}
        write_json(folder / "tuning.json", json_ready(summary))
        from ..reporting import write_report

        write_report(folder)
        return TuneResult(best_params=best["params"], best_value=best["value"], trials=rows, run=run, run_dir=folder,
                          notes=tuple(summary["notes"]))


def _check_splits(splits: DataSplits, settings: TuneSettings, *, pretrained: bool = True) -> None:
    """What a search needs of the data: folds it can cut (without a validation split), and what ``--average``
    needs (the validation split it chooses on; for WiSE-FT, ``pretrained`` weights to mix with)."""
    if splits.val is None:
        check_folds(splits, settings.folds)
    averaging = create_averaging(settings.average)
    if averaging is not None:
        averaging.check(splits, pretrained=pretrained)


def _check_early_stopping(splits: DataSplits, train: TrainConfig, searched: Sequence[str]) -> None:
    """Early stopping on a validation metric, set or searched, without a validation split: the trials stop on their
    folds, but the winner trains on every training example, with none held out, and was refused only after the
    whole search."""
    if splits.val is None and train.early_stopping_monitor.startswith("val_") and \
            (train.early_stopping is not None or "early_stopping" in searched):
        raise WarmstartError("early stopping needs a validation split, and this search holds none out (its trials "
                             "validate on folds of the training examples, and the winner trains on all of them)",
                             hint="set --val-fraction (for example 0.2), or drop --early-stopping (and "
                                  "early_stopping from the --space file)")


def _check_before_race(data: DataConfig, strategy: Strategy, train: TrainConfig, overrides: dict[str, Any],
                       settings: TuneSettings, space: str | Path | None, rank_score: str) -> None:
    """The checks that do not depend on which candidate wins, made before the race, so that a refusal costs no
    race: the score, the data's splits, and the space file's keys (against the strategy's own space, unless
    ``auto`` chooses the strategy for the winner). The rest is checked after the race, before the folder is made."""
    from ..selection.base import SCORES

    SCORES.get(rank_score, parameter="--rank-score")
    splits = load_splits(data, train.seed)
    _check_splits(splits, settings)
    _check_early_stopping(splits, train, [name for name, param in overrides.items() if param is not None])
    if not isinstance(strategy, Auto):
        apply_overrides(strategy.search_space, overrides, searchable(strategy), path=space or "--space")


def _race_once(folder: Path, candidates: Sequence[str], data: DataConfig, strategy: Strategy, train: TrainConfig,
               rank_score: str, folds: int, resume: bool) -> dict[str, Any]:
    """The starting-point race (tuning/race.py), run once per search: its record is kept in ``race.json``, written
    once the search's folder is made (every check passed), and read back by ``--resume``."""
    from .race import race

    path = folder / RACE
    if resume and path.is_file():
        record = json.loads(path.read_text(encoding="utf-8"))
        raced, now = (sorted(record["ranking"]), record["rank_score"]), (sorted(candidates), rank_score)
        if raced != now:  # the study's trials all start from the race's winner: another race is another search
            raise WarmstartError(f"{path}: this search's race ran on --candidates {' '.join(raced[0])} with "
                                 f"--rank-score {raced[1]}; this command names --candidates {' '.join(now[0])} with "
                                 f"--rank-score {now[1]}", hint="resume with the race's --candidates and --rank-score, "
                                                                "or start a new search (another --out, or --overwrite)")
        return record
    return race(candidates, data, strategy=strategy, train=train, rank_score=rank_score, folds=folds)


def importances(study) -> dict[str, float]:
    """Optuna's fANOVA parameter importances over the finished trials (empty when they cannot be estimated: fewer
    than two finished trials, or nothing varied)."""
    import warnings

    import optuna

    try:
        with warnings.catch_warnings(record=True) as caught:  # Optuna's warnings go to the log, not to stderr
            warnings.simplefilter("always")
            found = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        log.info("tune: no parameter importances (%s)", exc)
        return {}
    for warning in caught:
        text = str(warning.message)
        if "will be equal" in text:  # in our words first: Optuna's speak of its internals ("region quantiles")
            text = (f"the finished trials are too few or too alike to tell the parameters apart, so they are shown "
                    f"as equal (Optuna: {text})")
        log.info("tune: parameter importances: %s", text)
    return found

