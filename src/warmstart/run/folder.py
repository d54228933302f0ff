"""The run folder: the one owner of its layout. Nothing else writes into a run folder.

A training run (``pretrain``, ``finetune``) writes::

    out/train_log.jsonl      one JSON object per epoch, written as the run goes
    out/state/               the resumable training state (state/config.json: what must match to resume); removed
                             when the run finishes
    out/adapt/state/         with ``finetune --adapt-on``: the self-supervised stage's own resumable state (the
                             same layout), kept until the run finishes: a run killed in the stage resumes it, and
                             one killed after it takes the adapted weights from it without training the stage again
    out/tensorboard/         TensorBoard events (by default; ``TrainConfig.trackers``), out/mlflow/ with mlflow
    out/model/               model.safetensors (weights + metadata header) and metadata.json
    out/config.json          the resolved configuration and the run's notes, written once, at the end
    out/metrics.json         test-split metrics, with the timings; out/confusion_matrix.png
    out/predictions.npz      test labels and probabilities; examples.json: misclassified examples
    out/report.html          the self-contained report; MODEL_CARD.md: the model card
    out/selection.json       with ``--from auto``: the ranking and why the chosen candidate was chosen
    out/distillation.json    with ``distill``: the student against its teacher (accuracy, agreement, size, speed)
    out/pretext.json         self-supervised pretraining (``pretrain --objective``), in place of metrics.json and the
                             predictions: the objective, its final loss, the timings

``tune`` writes a search's folder (:func:`open_study_folder`)::

    out/study.journal        the Optuna study (its journal file): --resume continues it, --workers share it
    out/study.trials.lock    there only while a worker claims its next trial (the lock that keeps --trials exact)
    out/study.driver.lock    locked (flock) by the one tune process driving the study: a second one is refused
    out/trials.csv, .json    one row per trial: state, validation accuracy, parameters, epochs and steps run
    out/best_config.yaml     the winner's settings as `warmstart finetune --config` options
    out/tuning.json          the search's settings, space, best trial, compute and parameter importances
    out/report.html          the search: optimisation history, parameter importances, parallel coordinates
    out/race.json            with --from auto: the starting-point race (tuning/race.py) that chose the starting point
    out/trials/              with --average soup: each finished trial's weights (safetensors), the soup's ingredients
    out/best/                the winner trained with the best settings: a finetune run folder (model/, report.html)

``evaluate`` writes ``config.json``, ``metrics.json``, ``confusion_matrix.png``, ``predictions.npz`` and
``report.html`` into its own folder, and never a training run's files.

The rules for an existing folder (issue 14, item 10):

- Training into a folder that holds a run (config.json, metrics.json, model/, state/ or train_log.jsonl) is refused,
  unless ``resume`` (which carries on the interrupted run in place) or ``overwrite``. An overwriting run trains in
  a hidden sibling folder (``.NAME.partial``) and is swapped in only when it finished: a run that fails or is killed
  leaves the previous run's files exactly as they were, and nothing of the old run (TensorBoard events, say)
  stays beside the new one. The swap is two renames; a kill between them leaves the old run in ``.NAME.replaced``.
  (An overwriting run that is interrupted cannot be resumed: run it again with ``overwrite``.)
- ``evaluate`` into a training run's folder (or a comparison's) is refused (pass another ``out``); with
  ``overwrite`` it writes its files into the sub-folder ``out/evaluation/``, which holds nothing of the training
  run. An earlier evaluation's folder is replaced.
- ``export`` into a folder holding a run, an evaluation, a checkpoint or a comparison is refused
  (:func:`check_not_a_results_folder`): ``predict`` on that folder would have read the export.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..config import DataConfig, json_ready, to_dict
from ..engine.state import has_training_state
from ..errors import WarmstartError
from ..evaluation import EvaluationResult, plot_confusion_matrix
from ..io import make_folder, write_json
from ..models import CheckpointInfo, TransferModel, save_checkpoint
from ..models.checkpoint import WEIGHTS
from ..reporting import DISTILLATION, finish_run_folder, write_run_reports

log = logging.getLogger("warmstart")

# what marks a folder as holding a run (a finished one, an interrupted one, or an evaluation)
RUN_FILES = ("config.json", "metrics.json", "model", "state", "adapt", "train_log.jsonl")
ADAPT_FOLDER = "adapt"  # --adapt-on's stage before the supervised run: adapt/state/
PRETEXT_FILE = "pretext.json"  # a self-supervised run's summary: it has no test metrics
EVALUATION_FOLDER = "evaluation"  # where evaluate(..., overwrite=True) writes inside a training run's folder
# What must match for a run to be resumed: everything that shapes training, not where or how loudly it runs.
_RUN_ONLY = {"progress", "device", "trackers"}


def holds_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in RUN_FILES)


# what marks a folder as holding a comparison (``compare``'s report; plateau-runs/ is its own sub-folder name)
COMPARISON_FILES = ("compare.json", "compare.csv", "compare.md", "plateau-runs")


def holds_comparison(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in COMPARISON_FILES)


def check_not_a_results_folder(out: str | Path, command: str, *, hint: str) -> None:
    """Refuse an ``out`` that ``command`` writes into when it holds a training run, an evaluation, a checkpoint
    (``model/`` itself) or a comparison: their files would be replaced or, worse, read as this command's output
    (``export --out RUN`` made ``predict -c RUN`` run the export instead of the run's checkpoint)."""
    path = Path(out)
    if not path.is_dir():
        return
    found = [name for name in (*RUN_FILES, WEIGHTS, *COMPARISON_FILES) if (path / name).exists()]
    if found:
        what = ("a comparison" if holds_comparison(path) else "a checkpoint" if (path / WEIGHTS).exists()
                else "a training run or an evaluation")
        raise WarmstartError(f"--out {str(path)!r} holds {what} ({', '.join(found)}), which {command} would mix its "
                             "files into", hint=hint)


def saved_nothing(folder: Path) -> bool:
    """A run that was stopped before its first epoch's state was saved: it began (its settings are in
    ``state/config.json``) but holds no training state, model or metrics, so there is nothing to resume or keep and
    running the command again starts it over (as the interruption's note says)."""
    state, adapt = folder / "state", folder / ADAPT_FOLDER / "state"
    return ((began(state) or began(adapt)) and not has_training_state(state) and not has_training_state(adapt)
            and not any((folder / name).exists() for name in ("model", "metrics.json")))


def is_training_run(folder: Path) -> bool:
    """A folder a training run wrote (finished or not), as opposed to an evaluation's."""
    if any((folder / name).exists() for name in ("model", "state", ADAPT_FOLDER, "train_log.jsonl")):
        return True
    try:
        return json.loads((folder / "config.json").read_text()).get("command") not in (None, "evaluate")
    except (OSError, ValueError, AttributeError):
        return (folder / "config.json").exists()


@dataclass(frozen=True)
class RunFolder:
    """A training run's folder. ``work`` is where the run writes while it trains (``path`` itself, or the hidden
    sibling of an overwriting run); ``writes`` is False on every process but the main one under torchrun."""

    path: Path
    work: Path
    writes: bool

    @classmethod
    def for_training(cls, out: str | Path, *, resume: bool, overwrite: bool, writes: bool) -> "RunFolder":
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise WarmstartError(f"--out {str(path)!r}: a file is in the way; the run folder must be a folder",
                                 hint="pass another --out")
        if resume:
            folder = cls(path, path, writes)
            if not (began(folder.state_dir) or began(folder.adapt_state_dir)):
                raise WarmstartError(f"{path}: nothing to resume (no state/config.json)",
                                     hint="the run finished, or never started; run without --resume")
            return folder
        if not writes or not holds_run(path):
            # under torchrun, only the main process checks and writes: the others may look after it started
            return cls(path, path, writes)
        if not overwrite and not saved_nothing(path):  # one that saved nothing is replaced like an overwrite
            found = ", ".join(name for name in RUN_FILES if (path / name).exists())
            raise WarmstartError(f"--out {str(path)!r} already holds a run ({found})",
                                 hint="pass another --out, --resume to continue an interrupted run, or --overwrite "
                                      "to replace it (the old run is kept until the new one finishes)")
        resolved = path.resolve()  # "." has no name to hide a sibling under
        work = resolved.parent / f".{resolved.name}.partial"
        shutil.rmtree(work, ignore_errors=True)  # what a killed overwrite left
        return cls(path, work, writes)

    @property
    def state_dir(self) -> Path:
        return self.work / "state"

    @property
    def kept_state_dir(self) -> Path | None:
        """Where the loop saves the state a ``--resume`` reads, or None for an overwriting run: its folder is
        discarded when it fails or is interrupted (the earlier run stays), so no state of it could be resumed."""
        return self.state_dir if self.work == self.path else None

    @property
    def adapt_state_dir(self) -> Path:
        """The ``--adapt-on`` stage's training state, beside the supervised run's."""
        return self.work / ADAPT_FOLDER / "state"

    @property
    def train_log(self) -> Path:
        return self.work / "train_log.jsonl"

    def start(self, config: dict[str, Any], *, resume: bool) -> None:
        """Before the first epoch: the folder, and (for a new run) what a resume must match."""
        if not self.writes:
            return
        make_folder(self.work)  # an unwritable --out is a clear error here, before the first epoch
        if not resume:
            write_json(self.state_dir / "config.json", json_ready(config))

    def check_resumed_stage(self, adapt_on: str | None) -> None:
        """A resumed run has an ``--adapt-on`` stage (``adapt_on``: its data) exactly when the interrupted run had
        one: its settings are in ``adapt/state/`` until the run finishes."""
        if adapt_on is None and began(self.adapt_state_dir):
            raise WarmstartError(f"cannot resume {self.path}: the interrupted run began with an --adapt-on stage, "
                                 "and this one has none", hint="resume with the same --adapt-on settings")
        if adapt_on is not None and not began(self.adapt_state_dir):
            raise WarmstartError(f"cannot resume {self.path}: --adapt-on {adapt_on}, and the interrupted run had no "
                                 "--adapt-on stage", hint="resume without --adapt-on, or start a new run")

    def start_stage(self, config: dict[str, Any]) -> None:
        """Before the ``--adapt-on`` stage's first epoch: what a resume of the stage must match."""
        if self.writes:
            write_json(self.adapt_state_dir / "config.json", json_ready(config))

    def abandon(self, error: BaseException | None = None) -> None:
        """After a failure: an overwriting run's partial folder goes; the previous run stays as it was, which an
        interrupt (Ctrl-C, ``error``) is told, as the loop tells a run what its saved state allows."""
        if self.writes and self.work != self.path:
            shutil.rmtree(self.work, ignore_errors=True)
            if isinstance(error, KeyboardInterrupt):
                log.warning("%s: the earlier run in its folder stays as it was (this --overwrite run's files are "
                            "gone): run the command again to start over", self.path)

    def finish(self, model: TransferModel, info: CheckpointInfo, config: dict[str, Any], metrics: EvaluationResult,
               *, data: DataConfig, timing: dict[str, float], test_set, test_logits,
               selection: dict[str, Any] | None = None) -> tuple[Path | None, list[Path]]:
        """Once training succeeded: the checkpoint, config.json (once), metrics and reports; the state goes. Returns
        the checkpoint and the report files (in ``work``; :meth:`commit` then swaps an overwriting run in)."""
        if not self.writes:
            return None, []
        checkpoint = save_checkpoint(model, self.work / "model", info)
        write_json(self.work / "config.json", json_ready(config))
        shutil.rmtree(self.state_dir, ignore_errors=True)  # the run is complete: nothing left to resume
        shutil.rmtree(self.work / ADAPT_FOLDER, ignore_errors=True)
        write_metrics(self.work, metrics, split="test", data=data, extra=timing)
        reports = finish_run_folder(self.work, test_set, test_logits)  # predictions, model card, report.html
        if selection is not None:
            write_json(self.work / "selection.json", json_ready(selection))
        return checkpoint, reports

    def finish_unlabelled(self, model: TransferModel, info: CheckpointInfo, config: dict[str, Any], *,
                          summary: dict[str, Any]) -> tuple[Path | None, list[Path]]:
        """:meth:`finish` for a self-supervised run, which has no labels to score: the checkpoint, config.json,
        ``pretext.json`` (the objective's final loss and the timings, in place of metrics.json) and the reports."""
        if not self.writes:
            return None, []
        checkpoint = save_checkpoint(model, self.work / "model", info)
        write_json(self.work / "config.json", json_ready(config))
        shutil.rmtree(self.state_dir, ignore_errors=True)
        write_json(self.work / PRETEXT_FILE, json_ready(summary))
        return checkpoint, write_run_reports(self.work)  # the model card and report.html

    def commit(self) -> None:
        """Last, once every writer (the trackers too) is done: an overwriting run replaces the old folder."""
        if self.writes and self.work != self.path:
            _swap_in(self.work, self.path.resolve())


def _swap_in(new: Path, old: Path) -> None:
    replaced = old.parent / f".{old.name}.replaced"
    shutil.rmtree(replaced, ignore_errors=True)
    old.rename(replaced)
    new.rename(old)
    shutil.rmtree(replaced, ignore_errors=True)


def check_one_of_resume_and_overwrite(resume: bool, overwrite: bool) -> None:
    """``--resume`` continues what ``--out`` holds and ``--overwrite`` replaces it: given both, either one would
    silently lose the other's meaning."""
    if resume and overwrite:
        raise WarmstartError("--resume and --overwrite were both given: --resume continues what --out holds, "
                             "--overwrite replaces it", hint="pass one of them")


def began(state_dir: Path) -> bool:
    """Whether a run (or its ``--adapt-on`` stage) saved the settings a resume must match in ``state_dir``."""
    return (state_dir / "config.json").is_file()


WORKING_DIRECTORY = "working_directory"  # recorded beside the settings: what their relative paths are relative to


def working_directory() -> dict[str, str]:
    """The record that lets a resume from another directory match the relative paths typed here."""
    return {WORKING_DIRECTORY: os.getcwd()}


def recorded_directory(record: dict[str, Any]) -> str | None:
    """The directory a recorded run or study was started in; None when not recorded (older runs) or damaged."""
    directory = record.get(WORKING_DIRECTORY)
    return directory if isinstance(directory, str) and directory else None


def named_file(value: Any, directory: str | None = None) -> Path | None:
    """The existing file or folder a setting names, a relative path read from ``directory`` (the one it was typed
    in; None: this one); None when it names none (not a path, not there, or no file system's name: a NUL byte)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        path = Path(directory or ".", value)
        return path if path.exists() else None
    except (OSError, ValueError):
        return None


def shown_setting(value: Any, directory: str | None = None) -> str:
    """A setting as a message shows it: a relative path with the file it names (relative to ``directory``, or to
    the working directory), so that ``'d.npz' then`` says which ``d.npz`` when the run was started elsewhere."""
    path = None if isinstance(value, str) and Path(value).is_absolute() else named_file(value, directory)
    return repr(value) if path is None else f"{value!r} ({path.resolve()})"


def same_setting(then: Any, now: Any, then_directory: str | None) -> bool:
    """Whether a recorded setting and the one given now are the same: equal, or two spellings of one existing file
    or folder, the recorded one relative to the directory it was typed in (``tr.csv`` typed in ``/data``, and
    ``/data/tr.csv`` or ``../data/tr.csv`` typed elsewhere to resume). The data's fingerprint still guards what the
    file holds."""
    if then == now:
        return True
    if not then_directory:  # no record of where the run started: the paths cannot be matched
        return False
    earlier, current = named_file(then, then_directory), named_file(now)
    return earlier is not None and current is not None and earlier.resolve() == current.resolve()


def check_resumable(state_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to resume when anything that shapes training differs from the interrupted run's, the data's
    fingerprint included (see :func:`warmstart.run.fingerprint.data_fingerprint`). Paths are compared as the files
    they name (:func:`same_setting`), so the run resumes from any directory."""
    saved_file = state_dir / "config.json"
    try:
        saved = json.loads(saved_file.read_text())
    except (OSError, ValueError) as exc:
        raise WarmstartError(f"{saved_file}: the interrupted run's settings cannot be read ({exc})",
                             hint="start a new run without --resume") from None
    if not isinstance(saved, dict):
        raise WarmstartError(f"{saved_file}: expected the interrupted run's settings (a JSON object), found "
                             f"{type(saved).__name__}", hint="the state is damaged; start a new run without --resume")
    now = json_ready(config)
    directory = recorded_directory(saved)
    differences = []
    for section in ("command", "data", "train", "strategy", "model", "parent", "head", "teacher", "unlabeled"):
        before, after = saved.get(section), now.get(section)
        if isinstance(before, dict) and isinstance(after, dict):
            differences += [f"{section}.{k}: {shown_setting(before.get(k), directory)} then, "
                            f"{shown_setting(after.get(k))} now" for k in sorted(set(before) | set(after))
                            if k not in _RUN_ONLY and not same_setting(before.get(k), after.get(k), directory)]
        elif not same_setting(before, after, directory):
            differences.append(f"{section}: {shown_setting(before, directory)} then, {shown_setting(after)} now")
    if differences:
        raise WarmstartError(f"cannot resume {state_dir.parent}: the settings differ from the interrupted run's: "
                             + "; ".join(differences), hint="resume with the same settings, or start a new run")
    if "data_fingerprint" in saved and saved["data_fingerprint"] != now.get("data_fingerprint"):
        raise WarmstartError(f"cannot resume {state_dir.parent}: the data changed since the interrupted run started "
                             f"(fingerprint {saved['data_fingerprint']} then, {now.get('data_fingerprint')} now)",
                             hint="resume on the same data, or start a new run on the new data (without --resume)")


def write_distillation(run_dir: Path, comparison: dict[str, Any]) -> None:
    """A finished distillation run's ``distillation.json``, then its report and model card again, which show it."""
    write_json(run_dir / DISTILLATION, json_ready(comparison))
    write_run_reports(run_dir)


def write_metrics(folder: Path, metrics: EvaluationResult, *, split: str, data: DataConfig,
                  extra: dict[str, Any] | None = None) -> None:
    write_json(folder / "metrics.json", json_ready({**metrics.to_dict(), "split": split, "data": to_dict(data),
                                                    **(extra or {})}))
    plot_confusion_matrix(metrics, folder / "confusion_matrix.png",
                          title=f"{data.source} ({split}): accuracy {metrics.accuracy:.3f}")


def evaluation_folder(out: str | Path, *, overwrite: bool) -> Path:
    """Where ``evaluate`` writes: ``out``, unless it holds a training run (refused; ``out/evaluation`` with
    ``overwrite``)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise WarmstartError(f"--out {str(path)!r}: a file is in the way; evaluate writes a folder",
                             hint="pass another --out")
    if holds_comparison(path):
        if not overwrite:
            raise WarmstartError(f"--out {str(path)!r} holds a comparison, whose report.html an evaluation would "
                                 "replace", hint="pass another --out (or --overwrite to write the evaluation into "
                                 f"{path / EVALUATION_FOLDER})")
        return path / EVALUATION_FOLDER
    if not is_training_run(path):
        return path
    if not overwrite:
        raise WarmstartError(f"--out {str(path)!r} holds a training run, whose config.json and metrics.json an "
                             "evaluation would replace", hint="pass another --out (or --overwrite to write the "
                             f"evaluation into {path / EVALUATION_FOLDER})")
    return path / EVALUATION_FOLDER


def write_evaluation(folder: Path, config: dict[str, Any], metrics: EvaluationResult, *, split: str,
                     data: DataConfig, extra: dict[str, Any], dataset, logits) -> None:
    """An evaluation's files in ``folder`` (from :func:`evaluation_folder`)."""
    write_json(folder / "config.json", json_ready(config))
    write_metrics(folder, metrics, split=split, data=data, extra=extra)
    finish_run_folder(folder, dataset, logits)  # predictions and report.html


STUDY = "study.journal"
TRIAL_LOCK = "study.trials.lock"


def open_study_folder(out: str | Path, *, resume: bool, overwrite: bool,
                      reads: Sequence[str | Path | None] = ()) -> Path:
    """A search's folder, checked before any work: a folder holding a study (or a run) is refused unless ``resume``
    (which continues the study) or ``overwrite``. Nothing is created or deleted here: :func:`begin_search_folder`
    creates (or empties) the folder once every other check of the search has passed, so a refused search leaves the
    old one as it was, and no empty folder where there was none."""
    check_one_of_resume_and_overwrite(resume, overwrite)
    path = Path(out)
    if overwrite:
        check_sources_kept(path, reads)
    if path.exists() and not path.is_dir():
        raise WarmstartError(f"--out {str(path)!r}: a file is in the way; the search's folder must be a folder",
                             hint="pass another --out")
    if resume:
        if not (path / STUDY).is_file():
            raise WarmstartError(f"{path}: nothing to resume (no {STUDY})", hint="run without --resume")
        return path
    if (path / STUDY).exists() or holds_run(path):
        if not overwrite:
            raise WarmstartError(f"--out {str(path)!r} already holds a search or a run",
                                 hint="pass another --out, --resume to continue its study, or --overwrite to replace "
                                      "it")
        here = Path.cwd().resolve()
        if path.resolve() == here or path.resolve() in here.parents:
            raise WarmstartError(f"--out {str(path)!r} is the working directory (or holds it), which --overwrite "
                                 "would empty", hint="pass a folder of its own as --out")
    return path


def check_sources_kept(out: str | Path, sources: Sequence[str | Path | DataConfig | None]) -> None:
    """Refuse an ``--overwrite`` of a folder that holds what the run reads: ``--from runs/a --out runs/a
    --overwrite`` deleted its own source (and then named itself as its parent), and a ``--data`` file kept in the
    run's folder was deleted with it. ``sources``: checkpoints, teachers, weight files and candidates, as given
    (``torch:FILE``, ``keras:FILE`` and ``hf:FOLDER`` name a path after the prefix), and data (a DataConfig's
    source; data held in memory has no path)."""
    target = Path(out).resolve()
    for source in sources:
        if isinstance(source, DataConfig):
            source = source.source
        if not isinstance(source, (str, Path)):
            continue
        text = str(source)
        prefix, _, rest = text.partition(":")
        path = Path(rest if prefix in ("torch", "keras", "hf") and rest else text)
        if not path.exists():
            continue  # a built-in or pretrained name, resolved elsewhere
        resolved = path.resolve()
        if resolved == target or target in resolved.parents:
            raise WarmstartError(f"--out {str(out)!r} holds {text!r}, which this run reads: --overwrite would delete "
                                 "it before the run could use it",
                                 hint="pass another --out (the new run can replace the old folder afterwards)")


def begin_search_folder(path: Path) -> bool:
    """Make ``path`` ready for a new search: created, and emptied first when it holds a study or a run
    (``--overwrite``). Called after every check, just before the new search writes its first file, so that an
    early error leaves no folder behind. A search's trials are not worth keeping beside another's. Returns whether
    an earlier search or run was deleted."""
    replaced = (path / STUDY).exists() or holds_run(path)
    if replaced:
        shutil.rmtree(path)
    make_folder(path)  # an unwritable --out is a clear error here
    return replaced
