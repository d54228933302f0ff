"""warmstart: transfer learning that beats training from scratch on small labelled datasets.

    import warmstart
    source = warmstart.pretrain(warmstart.DataConfig("fashion-mnist", classes="0-4"), out="runs/source")
    tuned = warmstart.finetune(source.checkpoint, warmstart.DataConfig("fashion-mnist", classes="5-9", shots=10))
    print(tuned.metrics.accuracy)
"""

__version__ = "0.1.0"

from .api import RunResult, evaluate, finetune, list_registered, lr_find, predict, pretrain  # noqa: E402
from .api import rank, zoo  # noqa: E402
from .compare import CompareResult, compare  # noqa: E402
from .config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from .demo import DemoResult, demo  # noqa: E402
from .engine.lr_find import LrFindResult  # noqa: E402
from .errors import WarmstartError  # noqa: E402
from .prediction import PredictionResult  # noqa: E402
from .evaluation import EvaluationResult  # noqa: E402
from .api import export_model, report  # noqa: E402

__all__ = ["__version__", "pretrain", "finetune", "evaluate", "lr_find", "predict", "compare", "demo",
           "list_registered", "rank", "zoo", "RunResult", "LrFindResult", "CompareResult", "DemoResult",
           "EvaluationResult", "PredictionResult", "DataConfig", "ModelConfig", "TrainConfig", "WarmstartError",
           "export_model", "report"]
