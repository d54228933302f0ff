"""Shared fixtures. Tests never reach the network: hubs and downloads are switched off here."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WARMSTART_OFFLINE", "1")
# Tests compare runs bit for bit (seeds, resume, DDP against one process); the thread policy would change the thread
# count with the machine's load, and with it the order of floating-point sums. tests/engine/test_threads.py tests it.
os.environ.setdefault("WARMSTART_ADAPTIVE_THREADS", "0")


def _default_threads() -> int:
    """The cores shared out between pytest-xdist's workers (`make test` runs one per core): two workers each
    spinning two intra-op threads on two cores would collapse (see benchmarks/contention.py)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, (os.cpu_count() or 1) // workers))


THREADS = int(os.environ.get("WARMSTART_TEST_THREADS", _default_threads()))
# The warmstart processes tests start (the CLI, torchrun's workers) get the same share.
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numpy as np
import pytest
import torch

torch.set_num_threads(THREADS)


@pytest.fixture(scope="session")
def fashion_available() -> bool:
    from warmstart.data import fashion_mnist

    if fashion_mnist.find_files() is None:
        pytest.skip("Fashion-MNIST is not installed (make test installs the Debian package dataset-fashion-mnist)")
    return True


@pytest.fixture(scope="session")
def fashion_subset_npz(tmp_path_factory, fashion_available) -> str:
    """A small, real, stratified Fashion-MNIST subset as an .npz: 300 train and 100 test images per class."""
    from warmstart.data import fashion_mnist

    train, test = fashion_mnist.load()
    rng = np.random.default_rng(0)

    def take(ds, per_class):
        idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(ds.y == c), per_class, replace=False)
                                      for c in range(10)]))
        return (ds.x[idx, 0] * 255).round().astype(np.uint8), ds.y[idx]

    x, y = take(train, 300)
    x_test, y_test = take(test, 100)
    path = tmp_path_factory.mktemp("data") / "fashion_subset.npz"
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test, class_names=np.array(fashion_mnist.CLASS_NAMES))
    return str(path)
