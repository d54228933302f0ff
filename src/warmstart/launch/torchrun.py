"""``warmstart finetune --nproc N`` (and ``pretrain``): run the same command in N processes through torchrun.

torchrun (``torch.distributed.run``) is PyTorch's own launcher: it starts the workers with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address set, watches them through its elastic agent, and when one
fails it stops the others and exits with an error naming the failed rank (we pass ``--max-restarts 0``: a
deterministic training error would only fail again). One machine uses ``--standalone`` (a free local port);
several machines pass ``--nnodes``, ``--rdzv-endpoint HOST:PORT`` and ``--rdzv-id`` through to torchrun, and the
same command runs on every machine. The workers run ``python -m warmstart`` with the same arguments minus the
launcher's own, so what they do is exactly what one process would do.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from ..errors import WarmstartError

LAUNCHERS = ("torchrun", "spark", "spark-cluster")
# the launcher's own options (each takes a value); the workers never see them
LAUNCH_OPTIONS = ("--nproc", "--launcher", "--nnodes", "--node-rank", "--rdzv-endpoint", "--rdzv-id",
                  "--rdzv-backend")


class LaunchError(WarmstartError):
    """A distributed run that failed in a worker: the worker's own error is printed above this one."""

    exit_code = 1


@dataclass(frozen=True)
class LaunchSettings:
    nproc: int = 1
    launcher: str = "torchrun"
    nnodes: str = "1"
    node_rank: int | None = None
    rdzv_endpoint: str | None = None
    rdzv_id: str | None = None
    rdzv_backend: str = "c10d"

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise WarmstartError(f"--launcher {self.launcher!r}: expected one of {', '.join(LAUNCHERS)}",
                                 hint=f"pass --launcher {' or --launcher '.join(LAUNCHERS)}")
        if self.nproc < 1:
            raise WarmstartError(f"--nproc {self.nproc}: expected a positive number of processes",
                                 hint="set --nproc to 1 or more, e.g. the number of GPUs of this machine")
        if self.nnodes != "1" and self.launcher == "torchrun" and self.rdzv_endpoint is None:
            raise WarmstartError(f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT, the address every machine "
                                 "meets at", hint="e.g. --rdzv-endpoint node0.example:29400 --rdzv-id myrun")
        if self.launcher != "torchrun" and (self.nnodes != "1" or self.rdzv_endpoint is not None):
            raise WarmstartError(f"--launcher {self.launcher} places the processes itself; --nnodes and "
                                 "--rdzv-endpoint are for --launcher torchrun",
                                 hint="drop them; with spark-cluster, --nproc counts processes over all executors")

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or self.nnodes != "1" or self.launcher != "torchrun"


def worker_arguments(argv: list[str]) -> list[str]:
    """``argv`` without the launcher's options (``--nproc 2`` and ``--nproc=2`` forms alike)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_OPTIONS:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept


def torchrun_arguments(settings: LaunchSettings) -> list[str]:
    args = [f"--nproc-per-node={settings.nproc}", "--max-restarts=0"]
    if settings.rdzv_endpoint is None:
        return ["--standalone", *args]
    args += [f"--nnodes={settings.nnodes}", f"--rdzv-backend={settings.rdzv_backend}",
             f"--rdzv-endpoint={settings.rdzv_endpoint}"]
    if settings.rdzv_id is not None:
        args.append(f"--rdzv-id={settings.rdzv_id}")
    if settings.node_rank is not None:
        args.append(f"--node-rank={settings.node_rank}")
    return args


def launch(argv: list[str], settings: LaunchSettings, *, use_gpu: bool = False) -> None:
    """Run ``warmstart <argv>`` in ``settings.nproc`` processes (per machine); raises LaunchError if one failed."""
    command = worker_arguments(argv)
    if settings.launcher != "torchrun":
        from .spark import run_with_spark

        run_with_spark(command, settings.nproc, local_mode=settings.launcher == "spark", use_gpu=use_gpu)
        return
    process = subprocess.run([sys.executable, "-m", "torch.distributed.run", *torchrun_arguments(settings),
                              "-m", "warmstart", *command])
    if process.returncode != 0:
        raise LaunchError(f"the distributed run failed: torchrun exited with code {process.returncode} after a "
                          "worker failed; its error and rank are printed above",
                          hint="fix that error; --nproc 1 runs the same command in one process")
