"""An MLflow run per training run, through MLflow's own client (``mlflow.MlflowClient``).

Where it logs: ``MLFLOW_TRACKING_URI`` when set; otherwise a local SQLite store in ``RUN_DIR/mlflow/mlflow.db``
with the artifacts beside it in ``RUN_DIR/mlflow/artifacts`` (MLflow 3 keeps its plain file store in maintenance
mode and refuses it by default, so the local default is its own recommended database backend). The experiment is
``MLFLOW_EXPERIMENT_NAME`` or ``warmstart``. View with ``mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow/
mlflow.db``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import WarmstartError
from .base import TRACKERS, Tracker, epoch_scalars, flatten

log = logging.getLogger("warmstart")
FOLDER = "mlflow"
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value


def tracking_uri(run_dir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(run_dir) / FOLDER / 'mlflow.db').resolve()}"


@TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    """Parameters (the flattened config), per-epoch metrics, final test metrics and the report and model card as
    artifacts, in an MLflow run (local SQLite store in RUN_DIR/mlflow unless MLFLOW_TRACKING_URI is set)."""

    name = "mlflow"

    def __init__(self, run_dir: Path, config: Mapping[str, Any]):
        super().__init__(run_dir, config)
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise WarmstartError("--tracker mlflow needs the mlflow package, which is not installed",
                                 hint="pip install 'warmstart[tracking]', or drop --tracker mlflow") from None
        import logging as _logging

        _logging.getLogger("mlflow").setLevel(_logging.WARNING)  # its database set-up chatter is not the user's
        if "MLFLOW_TRACKING_URI" not in os.environ:
            (self.run_dir / FOLDER).mkdir(parents=True, exist_ok=True)
        self.uri = tracking_uri(self.run_dir)
        self.client = MlflowClient(tracking_uri=self.uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "warmstart")
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            artifacts = None if "MLFLOW_TRACKING_URI" in os.environ else \
                (self.run_dir / FOLDER / "artifacts").resolve().as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name,
                                             tags={"warmstart.run_dir": str(self.run_dir.resolve()),
                                                   "warmstart.command": str(config.get("command"))}).info.run_id
        from mlflow.entities import Param

        params = [Param(k[:250], v[:MAX_PARAM_LENGTH]) for k, v in flatten(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])
        log.info("mlflow: logging run %s to %s", self.run_id, self.uri)

    def _log_metrics(self, values: Mapping[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # MLflow metric names allow "/": train/loss stays grouped as in TensorBoard
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._log_metrics(epoch_scalars(logs), epoch)
        self._last_epoch = epoch

    def finish(self, metrics: Mapping[str, float], artifacts: Sequence[Path] = ()) -> None:
        self._log_metrics({f"test/{k}": v for k, v in metrics.items()}, getattr(self, "_last_epoch", 0))
        for path in artifacts:
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, "FINISHED")

    def close(self) -> None:
        self.client.set_terminated(self.run_id, "FAILED")
