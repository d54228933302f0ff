"""The high-level Python API: ``pretrain``, ``finetune``, ``evaluate``, ``lr_find``, ``predict`` and the rest. The
CLI is a thin layer over these, and these are a thin layer over the run layer (:mod:`warmstart.run`): where a run
starts (``run.starting_point``), the trainer (``run.trainer``), its calls into the one training loop
(``run.training``) and the run folder, the one owner of its layout (``run.folder``, which lists the files a run
writes). Data is fitted to a model's input by one policy, :mod:`warmstart.data.fit`.

``lr_find`` writes ``out/lr_find.json`` and ``out/lr_find.png`` and leaves every checkpoint as it was.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ._version import __version__
from .adaptation import Adaptation
from .adaptation.target import check_adaptation
from .config import AdaptConfig, DataConfig, ModelConfig, TrainConfig, adapt_config, json_ready, to_dict
from .data.class_names import refuse_written_examples
from .engine import Callback, resolve_device
from .engine.lr_find import DIVERGENCE_FACTOR, LrFindResult, check_range
from .evaluation.plots import plot_lr_find
from .errors import WarmstartError
from .evaluation import EvaluationResult
from .io import write_json
from .prediction import PredictionResult, predict as _predict_csv
from .run.averaging import GreedySoup, create_averaging
from .run.evaluation import evaluate_checkpoint, predict_probabilities
from .run.starting_point import data_config, model_config, note, resolve_starting_point
from .run.trainer import RunResult, resolve_strategy, train_run, training_tensors
from .run.training import lr_range
from .strategies import Strategy, create_strategy

if TYPE_CHECKING:
    from .objectives import Objective
    from .tuning import TuneResult

__all__ = ["RunResult", "pretrain", "finetune", "distill", "evaluate", "lr_find", "predict", "predict_proba",
           "list_registered", "report", "export_model", "rank", "zoo", "shift", "tune"]



_UNSET = object()


def _check_types(*, strategy=_UNSET, model=_UNSET, train=_UNSET) -> None:
    """The API's arguments of the wrong type named before any work (they failed deep inside with an AttributeError)."""
    for name, value, types, expected in (
            ("strategy", strategy, (str, Strategy), "a strategy name (e.g. 'full') or a Strategy instance"),
            ("model", model, (str, ModelConfig, type(None)), "an architecture name (e.g. 'mlp') or a ModelConfig"),
            ("train", train, (TrainConfig, type(None)), "a TrainConfig (or None for the command's defaults)")):
        if value is not _UNSET and not isinstance(value, types):
            raise WarmstartError(f"parameter {name}: expected {expected}, got {type(value).__name__} {value!r:.60}",
                                 hint=f"pass {name}=" + {"strategy": "'full'", "model": "ModelConfig('mlp', {...})",
                                                          "train": "TrainConfig(epochs=...)"}[name])

def pretrain(data: DataConfig | str, *, model: ModelConfig | str = "cnn", train: TrainConfig | None = None,
             out: str | Path | None = None, callbacks: tuple[Callback, ...] = (), resume: bool = False,
             overwrite: bool = False, objective: "str | Objective" = "supervised", ignore_labels: bool = False,
             checkpoint: str | Path | None = None) -> RunResult:
    """Train ``model`` from random initialisation on a source dataset; save it to ``out/model`` as a checkpoint.
    An ``out`` that already holds a run is refused unless ``resume`` or ``overwrite`` (:mod:`warmstart.run.folder`).

    ``objective``: ``supervised`` (cross-entropy on the labels) or a self-supervised objective that uses none,
    ``simclr`` for images or ``simcse`` for text (``warmstart list objectives``; an
    :class:`~warmstart.objectives.Objective` with its options, ``create_objective("simclr", temperature=0.2)``), on
    unlabelled data or, with ``ignore_labels``, a labelled set's training inputs
    (:mod:`warmstart.data.unlabelled`); it may start from ``checkpoint`` (a pretrained model such as ``minilm`` or
    ``hf:SOURCE``, or a checkpoint) instead of ``model`` from scratch. Its checkpoint is an ordinary source for
    ``finetune``; there are no test metrics (``RunResult.metrics`` is None). See
    :mod:`warmstart.run.self_supervised`."""
    _check_types(model=model, train=train)
    refuse_written_examples(data_config(data), "pretrain")
    if objective == "supervised":
        if ignore_labels or checkpoint is not None:
            raise WarmstartError("--ignore-labels and --from apply to self-supervised pretraining",
                                 hint="add --objective simclr (images) or simcse (text), or drop them (to start "
                                      "supervised training from a model, use `warmstart finetune --from`)")
        return finetune(None, data, model=model, train=train, out=out, callbacks=callbacks, resume=resume,
                        overwrite=overwrite, _command="pretrain")
    from .objectives import create_objective
    from .run.self_supervised import pretrain_self_supervised

    objective = create_objective(objective) if isinstance(objective, str) else objective
    if checkpoint is not None and model_config(model) == ModelConfig("cnn"):
        model = None  # the default architecture: the starting model fixes it
    return pretrain_self_supervised(data_config(data), objective, checkpoint=checkpoint, model=model, train=train,
                                    out=out, callbacks=callbacks, resume=resume, overwrite=overwrite,
                                    ignore_labels=ignore_labels)


def finetune(checkpoint: str | Path | None, data: DataConfig | str, *, strategy: str | Strategy = "full",
             model: ModelConfig | str | None = None, train: TrainConfig | None = None,
             out: str | Path | None = None, callbacks: tuple[Callback, ...] = (), resume: bool = False,
             candidates: tuple[str, ...] | list[str] = (), rank_score: str = "logme",
             target_unlabeled: DataConfig | str | None = None, adaptation: "str | Adaptation | None" = None,
             keep_head: bool = False, overwrite: bool = False, input_pipeline: str | Path | None = None,
             strict: bool = True, average: str | None = None, race: bool = False,
             adapt_on: AdaptConfig | str | None = None, _command: str = "finetune") -> RunResult:
    """Fine-tune a checkpoint on a target dataset; with ``checkpoint=None``, train ``model`` from scratch.

    The target gets a new head, unless ``keep_head`` keeps the checkpoint's (refused when the class count or the
    class names differ); the notes say which. Inputs are preprocessed with the checkpoint's recorded statistics, as
    the backbone saw them in pretraining. With ``out``, the training state is saved there after every epoch;
    ``resume=True`` continues an interrupted run from it, given the same settings and the same data. An ``out``
    holding a finished run is refused unless ``overwrite``, which replaces it only once the new run finished.

    ``checkpoint="auto"`` ranks ``candidates`` on the target's training split by ``rank_score`` (see
    :func:`warmstart.selection.ranking.rank`), fine-tunes the best one, and writes the ranking and the reason for
    the choice to ``out/selection.json``.

    Unsupervised domain adaptation: with ``target_unlabeled`` (a dataset whose train split's inputs are used, never
    its labels) and ``adaptation`` (``dann``, ``coral`` or ``adabn``; ``warmstart list adaptations``), the model is
    trained on the labelled ``data`` while adapting to the target; see :mod:`warmstart.adaptation`. The test
    metrics stay those of ``data``'s test split: evaluate the checkpoint on the target to see the effect.

    ``input_pipeline`` (with ``checkpoint=None``): a checkpoint whose input pipeline the model trained from scratch
    takes (its input size and channels, with ``data.resize``, and its normalisation): ``compare``'s scratch arm.

    ``checkpoint="keras:FILE"`` or ``"torch:FILE"`` starts from weights made outside warmstart, loaded into
    ``model`` (or a full Keras model's own architecture); ``strict=False`` loads what fits and names the rest. See
    :mod:`warmstart.models.imported`.

    ``average="wise-ft"``: the fine-tuned backbone mixed with its pretrained weights, the mixing weight chosen on the
    validation split (:mod:`warmstart.run.averaging`); the checkpoint is a plain model.

    ``race=True`` with ``checkpoint="auto"``: the top candidates by ``rank_score`` race in short fine-tunes,
    promoted by successive halving on validation accuracy, and the winner gets the full budget
    (:mod:`warmstart.tuning.race`).

    ``adapt_on``: task-adaptive pretraining (Gururangan et al. 2020) first, a short self-supervised stage on
    unlabelled inputs (a dataset, or ``"self"``: the training split's own inputs, labels ignored; an
    :class:`~warmstart.config.AdaptConfig` sets the objective and budget), recorded in the lineage. With
    ``checkpoint="auto"`` the candidates are ranked (or raced) as they are, and the stage runs once, on the chosen
    one. With ``out``, the stage saves its own state (``out/adapt/state/``): ``resume`` continues a run killed in
    the stage from its last epoch, and never trains a finished stage again.
    """
    _check_types(strategy=strategy, model=model, train=train)
    averaging = create_averaging(average)
    if isinstance(averaging, GreedySoup):
        raise WarmstartError("--average soup averages the trials of a study", hint="use `warmstart tune --average "
                             "soup`, or --average wise-ft here")
    if race and checkpoint != "auto":
        raise WarmstartError("--race races the --candidates of --from auto", hint="add --from auto --candidates ...")
    adapt_on = adapt_config(adapt_on)
    if checkpoint == "auto":  # the candidates are ranked as they are; the --adapt-on stage runs on the chosen one
        return _finetune_best(candidates, data, rank_score=rank_score, strategy=strategy, model=model, train=train,
                              race=race, out=out, callbacks=callbacks, resume=resume, overwrite=overwrite,
                              keep_head=keep_head, adaptation=adaptation, target_unlabeled=target_unlabeled,
                              averaging=averaging, adapt_on=adapt_on)
    if candidates:
        raise WarmstartError("--candidates only applies with --from auto", hint="drop --candidates, or use --from auto")
    method = check_adaptation(target_unlabeled, adaptation, resume)
    return train_run(_command, checkpoint, data_config(data), strategy=strategy, model=model, train=train, out=out,
                     callbacks=callbacks, resume=resume, overwrite=overwrite, keep_head=keep_head,
                     adaptation=method, target_unlabeled=target_unlabeled, input_pipeline=input_pipeline,
                     strict=strict, averaging=averaging, adapt_on=adapt_on)


def _finetune_best(candidates, data, *, model, adaptation, target_unlabeled, race=False, **settings) -> RunResult:
    from .selection.ranking import as_names, finetune_best
    from .tuning.race import finetune_raced

    if model is not None:
        raise WarmstartError("--model names an architecture for training from scratch; --from auto starts "
                             "from the best of --candidates", hint="drop --model")
    if adaptation is not None or target_unlabeled is not None:
        raise WarmstartError("--adaptation and --target-unlabeled do not combine with --from auto",
                             hint="run `warmstart rank` first, then finetune --from the chosen model with "
                                  "--adaptation")
    return (finetune_raced if race else finetune_best)(as_names(candidates, "candidates"), data, **settings)


def lr_find(checkpoint: str | Path | None, data: DataConfig | str, *, strategy: str | Strategy = "full",
            model: ModelConfig | str | None = None, train: TrainConfig | None = None, start_lr: float = 1e-7,
            end_lr: float = 10.0, steps: int = 100, out: str | Path | None = None,
            adapt_on: AdaptConfig | str | None = None) -> LrFindResult:
    """A learning-rate range test (Smith, WACV 2017; fastai's ``lr_find``) from where ``finetune`` would start.

    The same starting point as ``finetune`` with these arguments (the checkpoint with a new head for the target's
    classes, or ``model`` from scratch; the same splits, preprocessing and seed) trains with ``strategy``'s parameter
    groups, in the strategy's first phase, while the base learning rate grows exponentially from ``start_lr`` to
    ``end_lr`` over ``steps`` mini-batches of ``train.batch_size``; see :mod:`warmstart.engine.lr_find` for the
    smoothing, the stopping rule and the suggestion. The trained model is thrown away: no checkpoint changes. With
    ``out``, writes ``lr_find.json`` (the curve, the suggestion and the settings) and ``lr_find.png``.

    ``adapt_on``: as ``finetune``'s, the task-adaptive stage first (run here in full, every time: nothing of it is
    kept), so that the test starts from the adapted model the supervised stage would start from; ``lr_find.json``
    records the stage.
    """
    _check_types(strategy=strategy, model=model, train=train)
    data, train = data_config(data), train or TrainConfig.for_command("lr-find")
    strategy = create_strategy(strategy) if isinstance(strategy, str) else strategy  # fail before any work
    adapt_on = adapt_config(adapt_on)
    check_range(start_lr, end_lr, steps)
    start = resolve_starting_point(checkpoint, data, model, train)
    if adapt_on is not None:
        from .run.self_supervised import adapt_before_finetuning

        adapt_before_finetuning(start, adapt_on, data, train, then="the range test")
    strategy, train = resolve_strategy(strategy, start, train)
    device = resolve_device(train.device)
    result = lr_range(start.model, strategy, training_tensors(start), train, device, start_lr, end_lr, steps)
    if result.stopped_early:
        note(start.notes, f"lr-find stopped after {result.steps_run} of {steps} steps, at lr {result.lrs[-1]:.3g}: "
                          f"the loss diverged (the smoothed loss passed {DIVERGENCE_FACTOR:g}x its minimum)")
    result = replace(result, notes=tuple(start.notes))
    if out is not None:
        run_dir, net = Path(out), start.model
        write_json(run_dir / "lr_find.json", json_ready({
            **result.to_dict(), "command": "lr-find", "data": to_dict(data), "train": to_dict(train),
            "strategy": strategy.describe(), "model": {"arch": net.arch, "arch_args": net.arch_args}, **start.lineage,
            "resolved": {"device": str(device), "train_examples": len(start.splits.train)},
            "warmstart_version": __version__}))
        plot_lr_find(result, run_dir / "lr_find.png",
                     title=f"lr-find: {strategy.name} on {Path(data.source).name}, suggestion {result.suggestion:.2g}")
    return result


def distill(teacher: str | Path, data: DataConfig | str, *, student: str | ModelConfig, out: str | Path,
            unlabeled: DataConfig | str | None = None, temperature: float = 2.0, alpha: float = 0.5,
            train: TrainConfig | None = None, callbacks: tuple[Callback, ...] = (), resume: bool = False,
            overwrite: bool = False, speed_rounds: int = 20, feature_weight: float = 0.0,
            mask_tokens: float = 0.0):
    """Distil the fine-tuned ``teacher`` (a checkpoint) into a smaller ``student`` on ``data`` and save it to
    ``out``; returns a :class:`~warmstart.run.distillation.DistillationResult`.

    The loss is ``(1 - alpha) * T^2 * KL(teacher || student)`` at temperature ``temperature`` plus ``alpha`` times
    the cross-entropy on the labels, computed on the fly with the teacher in eval mode on the student's very inputs
    (augmented and mixed alike), plus ``feature_weight`` times DistilBERT's cosine loss between the student's and
    the teacher's feature vectors (0: none; it needs features of one width, as a cut student has). ``mask_tokens``
    (text): the share of each training text's tokens replaced by the mask token, one copy read by both, a new draw
    every step (0: none; it needs the teacher's tokenizer, as a cut student has); see
    :mod:`warmstart.strategies.distillation`. ``student``: ``layers=K`` or ``layers=0,1`` (the
    teacher's text encoder cut to K layers; ``ModelConfig("layers=3", {"intermediate_size": 768})`` also prunes each
    layer's feed-forward block, :mod:`warmstart.models.ffn_pruning`), ``hf:SOURCE`` or ``minilm``, or a registered
    architecture (a ``ModelConfig`` with its options: ``ModelConfig("cnn", {"widths": [4, 8, 16]})``); see
    :mod:`warmstart.run.distillation`. ``unlabeled``: inputs that extend the transfer set, as a user has them
    (:func:`warmstart.data.unlabelled.load_unlabelled`: a .txt of one text per line, a .csv/.jsonl/.parquet text
    column, a folder of images, an .npz holding x; a path is read with ``data``'s columns, image size and resizing),
    or a labelled dataset, whose train split's inputs are used, its labels ignored (the run's notes say so).
    ``train`` is every option of ``finetune`` (the ``distill`` preset when None).

    Besides a finetune run's files, ``out/distillation.json`` (also in report.html and MODEL_CARD.md) holds the
    student against the teacher on the test split: accuracy, agreement, parameters, file size and, unless
    ``speed_rounds=0``, CPU latency at batch 1 and throughput at batch 64 in PyTorch and through ONNX."""
    _check_types(train=train)
    from .run.distillation import distill_run

    return distill_run(teacher, data, student, unlabeled=unlabeled, temperature=temperature, alpha=alpha,
                       feature_weight=feature_weight, mask_tokens=mask_tokens,
                       train=train, out=out, callbacks=callbacks, resume=resume, overwrite=overwrite,
                       speed_rounds=speed_rounds)


def evaluate(checkpoint: str | Path | RunResult, data: DataConfig | str, *, split: str | None = None,
             out: str | Path | None = None, device: str = "auto", target_unlabeled: DataConfig | str | None = None,
             overwrite: bool = False) -> EvaluationResult:
    """Score a checkpoint on a split of ``data``: ``train``, ``val``, ``test`` or ``all``. By default (None), a
    file or folder without a test split of its own is scored whole (a file passed to evaluate is a test set), and
    data with one (every built-in, an .npz with ``x_test``, a folder with ``test/``) on its test split. The result
    (a :class:`~warmstart.run.evaluation.SplitEvaluation`) says which split, how many rows and why.

    With ``out``, writes ``metrics.json``, ``confusion_matrix.png``, ``config.json``, the predictions and the
    report there; a training run's folder is refused (``overwrite``: the files go to ``out/evaluation/``). With
    ``target_unlabeled``, AdaBN first re-estimates the model's BatchNorm statistics on that dataset's train split
    inputs (labels unused); the checkpoint on disk is not changed. ``checkpoint`` may also be a :class:`RunResult`
    (a run without ``out``): its model, as it is in memory."""
    refuse_written_examples(data_config(data), "evaluate")
    return evaluate_checkpoint(checkpoint, data_config(data), split=split, out=out, device=device,
                               target_unlabeled=target_unlabeled, overwrite=overwrite)


def predict(checkpoint: str | Path, input: str | Path, out: str | Path, *, text_column: str = "text",
            image_column: str = "path", label_column: str = "label", batch_size: int = 128,
            device: str = "auto") -> PredictionResult:
    """Predict every row of the table ``input`` (.csv, .tsv, .jsonl or .parquet, read as training reads them) and
    write ``out``, a CSV: the same rows and columns, plus ``predicted_label`` and ``probability`` (softmax). Vector
    models read their recorded feature columns by name, text models ``text_column`` (an empty text leaves its row
    unpredicted, with a note), image models the image paths in ``image_column``; see :mod:`warmstart.prediction`.
    ``out`` is replaced only when every row was predicted."""
    return _predict_csv(checkpoint, input, out, text_column=text_column, image_column=image_column,
                        label_column=label_column, batch_size=batch_size, device=device)


def predict_proba(checkpoint: str | Path | RunResult, x, *, device: str = "auto"):
    """Class probabilities (an array, one row per example, columns in the model's class order) for in-memory inputs
    ``x``: arrays, texts or a DataFrame, read as ``DataConfig`` reads them (:mod:`warmstart.data.memory`).
    ``checkpoint``: a checkpoint, or a :class:`RunResult` (its model, in memory)."""
    return predict_probabilities(checkpoint, x, device=device)


def list_registered(family: str) -> dict[str, str]:
    """Names and one-line descriptions of a registered family: ``models``, ``strategies``, ``datasets``,
    ``augmentations``, ``scores``, ``adaptations``, ``corruptions``, ``shift-measures``, ``optimizers`` or
    ``schedules`` (the table is :data:`warmstart.catalog.FAMILIES`)."""
    from .catalog import list_registered as listed

    return listed(family)


def report(run_dir: str | Path) -> list[Path]:
    """(Re)build a run folder's ``report.html`` (and ``MODEL_CARD.md`` when it holds a model) from its files."""
    from .reporting import write_run_reports

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise WarmstartError(f"{run_dir}: no such run folder", hint="pass the --out folder of a warmstart run")
    return write_run_reports(run_dir)


def export_model(checkpoint: str | Path, format: str, *, out: str | Path | None = None, data: str | None = None,
                 tolerance: float = 1e-4, examples: int = 32, quantize: str | None = None,
                 min_agreement: float = 0.95):
    """Export a checkpoint to ONNX or TorchScript and check it against PyTorch on real inputs; see
    :func:`warmstart.export.export_model` (the package ``warmstart.export`` takes the plain name)."""
    from .export import export_model as _export

    return _export(checkpoint, format, out=out, data=data, tolerance=tolerance, examples=examples, quantize=quantize,
                   min_agreement=min_agreement)


def rank(data: DataConfig | str, candidates, *, scores=None, rank_score: str = "logme",
         train: TrainConfig | None = None, out: str | Path | None = None):
    """Score candidate pretrained models on ``data``'s training split with transferability scores, before any
    fine-tuning; see :func:`warmstart.selection.ranking.rank`."""
    from .selection.ranking import rank as _rank

    return _rank(data, candidates, scores=scores, rank_score=rank_score, train=train, out=out)


def zoo(folders=None):
    """The local warmstart checkpoints under ``folders`` (default ``runs/`` and ``$WARMSTART_ZOO``), described from
    their safetensors headers; see :func:`warmstart.selection.zoo.list_zoo`."""
    from .selection.zoo import list_zoo

    return list_zoo(folders)


def shift(source: DataConfig | str, target: DataConfig | str, model: str | Path, *, out: str | Path | None = None,
          samples: int = 1000, permutations: int = 200, seed: int = 0, device: str = "auto"):
    """How far ``target`` lies from ``source`` in ``model``'s feature space: MMD with a permutation-test p-value, the
    proxy A-distance and the label shift, on each test split (at most ``samples`` examples each), with a verdict;
    see :mod:`warmstart.shift`. With ``out``, writes ``out/shift.json``."""
    from .shift import measure_shift

    source, target = data_config(source), data_config(target)
    result = measure_shift(model, source, target, samples=samples, permutations=permutations, seed=seed,
                           device=device)
    if out is not None:
        write_json(Path(out) / "shift.json", json_ready({**result.to_dict(), "command": "shift",
                                                         "source_data": to_dict(source),
                                                         "target_data": to_dict(target),
                                                         "warmstart_version": __version__}))
    return result


def tune(checkpoint: str | Path | None, data: DataConfig | str, *, out: str | Path, strategy: str | Strategy = "full",
         model: ModelConfig | str | None = None, train: TrainConfig | None = None, trials: int = 20,
         time_limit: float | None = None, workers: int = 1, space: str | Path | None = None, pruner: str = "median",
         folds: int = 3, average: str | None = None, candidates: tuple[str, ...] | list[str] = (),
         rank_score: str = "logme", keep_head: bool = False, resume: bool = False, overwrite: bool = False,
         launcher: str = "local", adapt_on: AdaptConfig | str | None = None) -> "TuneResult":
    """Search ``strategy``'s settings on the validation split (an Optuna study of ``trials`` trials, TPE with the
    ``pruner`` on each epoch's validation accuracy; with few shots and no validation split, ``folds`` stratified
    folds of the training examples), then train the best settings as ``finetune`` would into ``out/best`` and score
    that model once on the test split. The space is the strategy's declared one (``Strategy.search_space``),
    changed by the YAML file ``space``. ``resume`` continues the study in ``out``; ``workers`` processes share it,
    on this machine (``launcher="local"``) or as Spark tasks (``launcher="spark"``), and ``trials`` is exact.
    ``average``: ``wise-ft`` or ``soup`` (the winner with the next-best trials). See :mod:`warmstart.tuning.study`
    for the files it writes (``best_config.yaml`` replays the winner with ``finetune --config``).
    ``checkpoint="auto"``: the ``candidates`` race first (as ``finetune(..., race=True)``), and the winner is tuned.
    ``adapt_on``: as ``finetune``'s, the task-adaptive stage, run once before the search (on the race's winner):
    every trial and the winner start from the adapted weights, and tuning.json counts its steps."""
    _check_types(strategy=strategy, model=model, train=train)
    from .selection.ranking import as_names
    from .tuning import TuneSettings, run_tune

    settings = TuneSettings(trials=trials, time_limit=time_limit, workers=workers, pruner=pruner, folds=folds,
                            average=average, launcher=launcher)
    candidates = as_names(candidates, "candidates")  # one name as a string is one candidate, not its characters
    if (checkpoint == "auto") != bool(candidates):
        raise WarmstartError("--candidates go with --from auto (and --from auto needs them)",
                             hint="pass --from auto --candidates A B C, or one --from and no --candidates")
    return run_tune(checkpoint, data, strategy=strategy, model=None if model is None else model_config(model),
                    train=train, out=out, settings=settings, space=space, keep_head=keep_head, resume=resume,
                    overwrite=overwrite, candidates=tuple(candidates), rank_score=rank_score,
                    adapt_on=adapt_config(adapt_on))
