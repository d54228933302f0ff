"""``--launcher spark`` / ``spark-cluster``: the same training command through pyspark's ``TorchDistributor``.

TorchDistributor (pyspark.ml.torch.distributor) runs torchrun for us. With ``local_mode=True`` (``--launcher
spark``) it starts ``--nproc`` processes on the driver machine; with ``local_mode=False`` (``--launcher
spark-cluster``) it starts ``--nproc`` barrier tasks on the executors, one torchrun per task (per GPU with
``use_gpu``), and wires them together through ``MASTER_ADDR``/``MASTER_PORT`` of the first task. The Spark master
comes from the usual Spark configuration (``spark-submit --master ...``, ``PYSPARK_SUBMIT_ARGS``, or
``spark-defaults.conf``); without one, pyspark runs a local master. Every process must be able to import warmstart
and read the data and the checkpoint at the same paths (a shared file system, or the same files on every node).
A failing worker makes ``TorchDistributor.run`` raise, and that becomes a LaunchError here.
"""

from __future__ import annotations

from pathlib import Path

from .torchrun import LaunchError

WORKER = Path(__file__).with_name("worker.py")


def run_with_spark(argv: list[str], nproc: int, *, local_mode: bool, use_gpu: bool) -> None:
    try:
        from pyspark.ml.torch.distributor import TorchDistributor
        from pyspark.sql import SparkSession
    except ImportError:
        raise LaunchError("--launcher spark needs pyspark, which is not installed",
                          hint="pip install 'warmstart[spark]' (pyspark and a Java runtime)") from None
    if not local_mode:
        try:  # the barrier tasks return their results through Arrow
            import pandas  # noqa: F401
            import pyarrow  # noqa: F401
        except ImportError:
            raise LaunchError("--launcher spark-cluster runs Spark tasks, which need pandas and pyarrow",
                              hint="pip install 'pyspark[sql]' (or use --launcher spark on one machine)") from None
    spark = SparkSession.builder.appName("warmstart").getOrCreate()
    distributor = TorchDistributor(num_processes=nproc, local_mode=local_mode, use_gpu=use_gpu)
    try:
        distributor.run(str(WORKER), *argv)
    except Exception as exc:  # RuntimeError from a failed torchrun, Py4JJavaError from a failed Spark job
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        first = lines[0][:300] if lines else ""
        raise LaunchError(f"the Spark TorchDistributor run failed ({type(exc).__name__}): {first}",
                          hint="the workers' full output is printed above") from None
    finally:
        spark.stop()
