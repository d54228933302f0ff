"""Starting a training command on several processes with the engines users already run: torchrun, or Spark's
TorchDistributor. The training itself is the ordinary loop; see :mod:`warmstart.engine.distributed`."""

from .torchrun import LaunchError, LaunchSettings, launch, worker_arguments

__all__ = ["LaunchError", "LaunchSettings", "launch", "worker_arguments"]
