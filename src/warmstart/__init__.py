"""warmstart: transfer learning that beats training from scratch on small labelled datasets.

    import warmstart
    source = warmstart.pretrain(warmstart.DataConfig("fashion-mnist", classes="0-4"), out="runs/source")
    tuned = warmstart.finetune(source.checkpoint, warmstart.DataConfig("fashion-mnist", classes="5-9", shots=10))
    print(tuned.metrics.accuracy)

The public API is imported on first use (PEP 562): ``import warmstart`` and the command line's ``--help`` stay fast,
and torch is imported only when something that needs it is called.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

from ._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(("RunResult", "evaluate", "finetune", "list_registered", "lr_find", "predict", "pretrain", "rank",
                     "zoo", "export_model", "report", "predict_proba", "tune"), "api"),
    "Transfer": "estimator",
    **dict.fromkeys(("CompareResult", "compare"), "compare"),
    **dict.fromkeys(("DataConfig", "ModelConfig", "TrainConfig"), "config"),
    **dict.fromkeys(("DemoResult", "demo"), "demo"),
    "LrFindResult": "engine.lr_find",
    "WarmstartError": "errors",
    "PredictionResult": "prediction",
    "EvaluationResult": "evaluation",
    "distill": "api",
    "DistillationResult": "run.distillation",
}

__all__ = ["__version__", "pretrain", "finetune", "evaluate", "lr_find", "predict", "compare", "demo",
           "list_registered", "rank", "zoo", "RunResult", "LrFindResult", "CompareResult", "DemoResult",
           "EvaluationResult", "PredictionResult", "DataConfig", "ModelConfig", "TrainConfig", "WarmstartError",
           "export_model", "report", "predict_proba", "Transfer", "distill", "DistillationResult",
           "tune"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:  # a subpackage, warmstart.engine say, is imported on first use too
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'warmstart' has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The submodules ``compare`` and ``demo`` share their names with the functions the package exports. Importing
    a submodule binds it on its package, which would hide the function behind the module; the functions win."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
