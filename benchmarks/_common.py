"""What the benchmark scripts share: where results go, the command line and machine they record, how they write
their JSON and Markdown, and the source model most of them pretrain (a small CNN on Fashion-MNIST classes 0-4).

Scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and ``from _common import ...``
finds this module.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

# The source-pretraining preset: the demo's (warmstart.demo), so that benchmarks fine-tune the model users get
SOURCE_CLASSES = "0-4"
SOURCE_MODEL = "cnn"
SOURCE_BATCH_SIZE = 128
SOURCE_LR = 2e-3


def launch_prefix() -> str:
    """How this process was launched, as a command's prefix: its OMP_NUM_THREADS and its niceness, when set."""
    parts = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if os.environ.get("OMP_NUM_THREADS") else []
    niceness = os.nice(0)
    return " ".join(parts + ([f"nice -n {niceness}"] if niceness > 0 else []))


def command_line(script: str, *, python: str = "python") -> str:
    """The command that ran ``script`` (``benchmarks/NAME.py``) with this process's arguments and launch prefix
    (:func:`launch_prefix`: what this process really ran with, not what it was meant to), for the results, quoted as
    a shell needs them (``--arms distilled "labels only"``), so that it runs as written."""
    prefix = launch_prefix()
    return " ".join([*([prefix] if prefix else []), python, script, *map(shlex.quote, sys.argv[1:])]).strip()


def uptime() -> str:
    """``uptime``'s line (the load averages), since other work on a shared machine distorts timings."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "n/a"


def machine_info(**extra: Any) -> dict[str, Any]:
    """The machine a result was measured on: cores, torch and its threads, Python, the processor, the platform and
    the load averages now; ``extra`` adds a script's own entries."""
    import torch

    import warmstart

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "warmstart": warmstart.__version__, "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "platform": platform.platform(),
            "load_average": list(os.getloadavg()), **extra}


def write_results(out: Path, name: str, report: dict[str, Any], markdown: str | None = None) -> Path:
    """``out/NAME.json`` (and ``out/NAME.md`` when given), each written atomically; returns the JSON's path."""
    from warmstart.io import write_json, write_text

    path = write_json(Path(out) / f"{name}.json", report)
    if markdown is not None:
        write_text(Path(out) / f"{name}.md", markdown)
    return path


def pretrain_source(out: Path, *, epochs: int, data: str = "fashion-mnist", dataset=None, **train: Any):
    """The shared source model: ``cnn`` pretrained on classes 0-4 of ``data`` (or on the DataConfig ``dataset``) at
    batch size 128 and lr 2e-3, without a progress bar; ``train`` overrides TrainConfig fields (seed, device, ...)."""
    import warmstart
    from warmstart import DataConfig, TrainConfig

    source = dataset or DataConfig(data, classes=SOURCE_CLASSES)
    config = TrainConfig(**{"epochs": epochs, "batch_size": SOURCE_BATCH_SIZE, "lr": SOURCE_LR, "progress": False,
                            **train})
    return warmstart.pretrain(source, model=SOURCE_MODEL, out=out, train=config)
