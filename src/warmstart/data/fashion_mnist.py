"""Fashion-MNIST (Xiao et al., 2017): 70,000 28x28 grey images of 10 clothing classes, read from IDX files.

The files are looked for in ``$WARMSTART_DATA_DIR`` (or its ``fashion-mnist/`` folder), then in the folder of the
Debian package ``dataset-fashion-mnist``, then in the user cache. When none has them they are downloaded from the
official mirror into the cache, checked against the published MD5 sums, unless ``WARMSTART_OFFLINE=1``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from ..errors import WarmstartError
from .dataset import Dataset

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# The MD5 sums published with the dataset (and used by torchvision); they hold for the original .gz files.
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "warmstart" / "fashion-mnist"


def search_dirs() -> list[Path]:
    dirs = []
    if env := os.environ.get("WARMSTART_DATA_DIR"):
        dirs += [Path(env) / "fashion-mnist", Path(env)]
    return dirs + [DEBIAN_DIR, cache_dir()]


def find_files() -> Path | None:
    for folder in search_dirs():
        if all((folder / name).is_file() for name in FILES.values()):
            return folder
    return None


def download(target: Path, timeout: float = 30.0) -> Path:
    """Fetch the four files into ``target``, each written atomically and checked against its MD5."""
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        if (target / name).is_file():
            continue
        with urllib.request.urlopen(MIRROR + name, timeout=timeout) as response:
            payload = response.read()
        if hashlib.md5(payload).hexdigest() != MD5[name]:
            raise WarmstartError(f"downloaded {MIRROR + name} does not match its published MD5 sum",
                                 hint="try again later, or install the Debian package dataset-fashion-mnist")
        with tempfile.NamedTemporaryFile(dir=target, delete=False) as tmp:
            tmp.write(payload)
        os.replace(tmp.name, target / name)
    return target


def locate() -> Path:
    if folder := find_files():
        return folder
    places = ", ".join(str(d) for d in search_dirs())
    how = ("install the Debian package (apt-get install dataset-fashion-mnist), or put "
           f"{', '.join(FILES.values())} in $WARMSTART_DATA_DIR")
    if os.environ.get("WARMSTART_OFFLINE") == "1":
        raise WarmstartError(f"Fashion-MNIST not found in {places} (download disabled by WARMSTART_OFFLINE=1)",
                             hint=how)
    try:
        return download(cache_dir())
    except (OSError, ValueError) as exc:  # URLError is an OSError
        raise WarmstartError(f"Fashion-MNIST not found in {places}, and downloading it from {MIRROR} failed: {exc}",
                             hint=how) from None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise WarmstartError(f"{path}: cannot be read as an IDX file ({exc})",
                             hint="the file is damaged; reinstall or re-download it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise WarmstartError(f"{path}: not an unsigned-byte IDX file (bad magic number)",
                             hint="the file is damaged; reinstall or re-download it")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise WarmstartError(f"{path}: header says {shape} but holds {data.size} bytes (truncated?)",
                             hint="the file is damaged; reinstall or re-download it")
    return data.reshape(shape)


@functools.lru_cache(maxsize=2)
def _load_split(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(Path(folder) / FILES[f"{split}_images"])
    labels = read_idx(Path(folder) / FILES[f"{split}_labels"])
    if len(images) != len(labels):
        raise WarmstartError(f"{folder}: {split} has {len(images)} images but {len(labels)} labels",
                             hint="the files are damaged or mismatched; reinstall or re-download them")
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    x.setflags(write=False)
    return x, labels.astype(np.int64)


def load() -> tuple[Dataset, Dataset]:
    folder = str(locate())
    splits = []
    for split in ("train", "test"):
        x, y = _load_split(folder, split)
        splits.append(Dataset(x, y, CLASS_NAMES, "image", "fashion-mnist"))
    return splits[0], splits[1]
