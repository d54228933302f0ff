"""``Transfer``: warmstart as a scikit-learn classifier, for scripts and notebooks that hold their data in memory.

    clf = warmstart.Transfer("keras:pretrained_model.h5", model=ModelConfig("mlp", {"hidden": [64, 32]}))
    clf.fit(x_train, y_train).predict(x_test)
    cross_val_score(warmstart.Transfer("runs/source"), x, y, cv=3)

It follows scikit-learn's estimator contract (``sklearn.base.BaseEstimator``): ``__init__`` only stores its
arguments, which ``get_params``/``set_params``/``clone`` see; what ``fit`` learns ends in ``_`` (``result_``,
``classes_``); ``predict``, ``predict_proba`` and ``score`` (accuracy, from ``ClassifierMixin``) take the same kind
of ``x`` as ``fit``. It is a thin layer over the API, not a second implementation: ``fit`` is
:func:`warmstart.finetune` on ``DataConfig((x, y, x, y))``, ``predict_proba`` is :func:`warmstart.predict_proba` and
``evaluate`` :func:`warmstart.evaluate`, each given the run's model in memory; nothing is written unless ``save``.

``fit`` trains on all of ``x`` (less the validation share ``val_fraction`` holds out, as ``finetune`` does): the
same examples are passed as the test split, so nothing more is held out, and ``result_.metrics`` are training-set
metrics. Labels may be any values; ``classes_`` holds them in warmstart's class order (numbers in numeric order,
strings sorted).
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .config import AdaptConfig, DataConfig, ModelConfig, TrainConfig
from .errors import WarmstartError


class Transfer(ClassifierMixin, BaseEstimator):
    """Fine-tune ``source`` on ``(x, y)``: a warmstart checkpoint (run folder), a pretrained model (``timm:NAME``,
    ``minilm``, ...), outside weights (``keras:FILE``, ``torch:FILE`` with ``model``), or None for ``model`` from
    scratch. ``strategy`` and the training settings are :func:`warmstart.finetune`'s; ``epochs``, ``lr``,
    ``batch_size``, ``seed`` and ``device`` override the ``finetune`` preset; ``train`` replaces the preset, and
    those parameters (when given; ``seed``, ``device`` and ``progress`` always) still apply over it, so a
    ``GridSearchCV`` over ``lr`` varies the rate whatever ``train`` holds.
    ``adapt_on``: task-adaptive pretraining first, as ``finetune``'s (``"self"``: a self-supervised stage on the
    inputs ``fit`` trains on, labels ignored; a path: unlabelled inputs in a file or folder; an
    :class:`~warmstart.config.AdaptConfig` for the stage's objective and budget)."""

    def __init__(self, source: str | None = None, strategy: str = "auto", *, model: ModelConfig | str | None = None,
                 epochs: int | None = None, lr: float | None = None, batch_size: int | None = None, seed: int = 0,
                 val_fraction: float | None = None, device: str = "auto", strict: bool = True,
                 train: TrainConfig | None = None, progress: bool = False,
                 adapt_on: AdaptConfig | str | None = None):
        self.source = source
        self.strategy = strategy
        self.model = model
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.val_fraction = val_fraction
        self.device = device
        self.strict = strict
        self.train = train
        self.progress = progress
        self.adapt_on = adapt_on

    def _train_config(self) -> TrainConfig:
        changes = {name: value for name, value in (("epochs", self.epochs), ("lr", self.lr),
                                                   ("batch_size", self.batch_size)) if value is not None}
        if self.train is not None:  # the estimator's own parameters (what GridSearchCV sets) win over train's
            return replace(self.train, seed=self.seed, device=self.device, progress=self.progress, **changes)
        return TrainConfig.for_command("finetune", seed=self.seed, device=self.device, progress=self.progress,
                                       **changes)

    def fit(self, x: Any, y: Any) -> "Transfer":
        from .api import finetune
        from .data.memory import as_array

        labels = as_array(y)
        data = DataConfig((x, labels, x, labels), val_fraction=self.val_fraction)
        self.result_ = finetune(self.source, data, strategy=self.strategy, model=self.model,
                                train=self._train_config(), strict=self.strict, adapt_on=self.adapt_on)
        by_name: dict[str, Any] = {}
        for value in labels.tolist():  # np.unique would sort mixed types (1, "a") and fail
            by_name.setdefault(str(value), value)
        values = [by_name[name] for name in self.result_.info.class_names]
        self.classes_ = np.asarray(values, dtype=None if len({type(v) for v in values}) == 1 else object)
        return self

    def _fitted(self):
        if not hasattr(self, "result_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this Transfer is not fitted yet: call fit(x, y) first")
        return self.result_

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        from .api import predict_proba

        return predict_proba(self._fitted(), x, device=self.device)

    def predict(self, x: Any) -> np.ndarray:
        probabilities = self.predict_proba(x)  # NotFittedError before fit, as scikit-learn's estimators raise
        return self.classes_[probabilities.argmax(axis=1)]

    def evaluate(self, x: Any, y: Any):
        """warmstart's metrics (accuracy, macro F1, per class, confusion matrix) on ``(x, y)``, which must hold
        every class the model predicts (``score`` takes any subset)."""
        from .api import evaluate

        return evaluate(self._fitted(), DataConfig((x, y)), device=self.device)

    def save(self, folder: str | Path) -> Path:
        """Write the fitted model as a warmstart checkpoint (``folder/model.safetensors`` and ``metadata.json``):
        ``warmstart evaluate --checkpoint FOLDER``, ``--from FOLDER`` and ``Transfer(FOLDER)`` read it."""
        from .models import save_checkpoint

        result = self._fitted()
        if result.model is None:
            raise WarmstartError("the fitted run holds no model to save", hint="fit again")
        return save_checkpoint(result.model, folder, result.info)
