"""``--launcher spark`` / ``spark-cluster``: the same training command through pyspark's ``TorchDistributor``, and
``tune --launcher spark``: a search's workers as Spark tasks.

TorchDistributor (pyspark.ml.torch.distributor) runs torchrun for us. With ``local_mode=True`` (``--launcher
spark``) it starts ``--nproc`` processes on the driver machine; with ``local_mode=False`` (``--launcher
spark-cluster``) it starts ``--nproc`` barrier tasks on the executors, one torchrun per task (per GPU with
``use_gpu``), and wires them together through ``MASTER_ADDR``/``MASTER_PORT`` of the first task. The Spark master
comes from the usual Spark configuration (``spark-submit --master ...``, ``PYSPARK_SUBMIT_ARGS``, or
``spark-defaults.conf``); without one, pyspark runs a local master. Every process must be able to import warmstart
and read the data and the checkpoint at the same paths (a shared file system, or the same files on every node).
A failing worker makes ``TorchDistributor.run`` raise, and that becomes a LaunchError here.

A search's trials need no torchrun: they are independent. :func:`run_spark_tasks` runs one plain Spark task per
worker (``sc.parallelize(range(n), n).foreach``), on the executors of whatever master is configured (the local
master's tasks are processes on this machine).
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .torchrun import LaunchError

WORKER = Path(__file__).with_name("worker.py")


def require_pyspark(option: str = "--launcher spark") -> None:
    """A missing pyspark, found before any work, as an error naming the extra that installs it."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise LaunchError(f"{option} needs pyspark, which is not installed",
                          hint="pip install 'warmstart[spark]' (pyspark and a Java runtime)") from None


@contextmanager
def spark_session() -> Iterator:
    """The active Spark session (a notebook's, left running), or a new one from Spark's configuration, stopped on the
    way out. Spark's Python workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise (pyspark's own
    default, ``python3`` on the PATH, is usually another Python, without warmstart; on a cluster this path must exist
    on every node, as warmstart and the data must)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    chosen = "PYSPARK_PYTHON" in os.environ
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # read once, when the SparkContext starts
    try:
        spark = SparkSession.builder.appName("warmstart").getOrCreate()
    finally:
        if not chosen:
            del os.environ["PYSPARK_PYTHON"]
    try:
        yield spark
    finally:
        spark.stop()


def _launch_error(exc: Exception, what: str, hint: str) -> LaunchError:
    """Spark's exception as a LaunchError: the Python error a task raised (the ``SomeError: message`` line of the
    traceback Spark forwards, rather than its Java stack), else the exception's first line."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception): ", line)
              and not line.startswith(("org.", "java.", "scala.", "py4j."))]
    first = (raised or lines or [""])[0][:300]
    return LaunchError(f"{what} failed ({type(exc).__name__}): {first}", hint=hint)


def run_with_spark(argv: list[str], nproc: int, *, local_mode: bool, use_gpu: bool) -> None:
    require_pyspark()
    if not local_mode:
        try:  # the barrier tasks return their results through Arrow
            import pandas  # noqa: F401
            import pyarrow  # noqa: F401
        except ImportError:
            raise LaunchError("--launcher spark-cluster runs Spark tasks, which need pandas and pyarrow",
                              hint="pip install 'pyspark[sql]' (or use --launcher spark on one machine)") from None
    from pyspark.ml.torch.distributor import TorchDistributor

    with spark_session():
        distributor = TorchDistributor(num_processes=nproc, local_mode=local_mode, use_gpu=use_gpu)
        try:
            distributor.run(str(WORKER), *argv)
        except Exception as exc:  # RuntimeError from a failed torchrun, Py4JJavaError from a failed Spark job
            raise _launch_error(exc, "the Spark TorchDistributor run",
                                "the workers' full output is printed above") from None


def run_spark_tasks(task: Callable[[int, int], None], count: int, what: str) -> None:
    """``task(index, threads)`` in ``count`` Spark tasks, one per partition, where ``threads`` is the CPUs Spark
    gave the task (``spark.task.cpus``). ``task`` is pickled (cloudpickle) to the executors, so it must be a module
    function or a ``functools.partial`` of one, over picklable data."""
    with spark_session() as spark:
        try:
            spark.sparkContext.parallelize(range(count), count).foreach(_SparkTask(task))
        except Exception as exc:  # Py4JJavaError or PythonException: a task raised (its traceback is above)
            raise _launch_error(exc, f"{what} on Spark", "the failing task's error is printed above; the same "
                                "command without --launcher spark runs it on this machine") from None


class _SparkTask:
    """Runs on the executor: the task's CPU allocation becomes its torch threads."""

    def __init__(self, task: Callable[[int, int], None]):
        self.task = task

    def __call__(self, index: int) -> None:
        from pyspark import TaskContext

        context = TaskContext.get()
        self.task(index, max(1, int(context.cpus())) if context is not None else 1)
