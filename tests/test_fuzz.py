"""Fuzzing every loader of a user's file: whatever the bytes, the outcome is a result or a WarmstartError with a fix
(exit 2 on the command line), never another exception and never a hang (issue 14, acceptance).

Covered: checkpoint headers (the safetensors metadata JSON, field by field, and the file's raw bytes), CSV and
JSON-lines data (vectors and text), ``.npz`` arrays, images (PNG, GIF, BMP, JPEG bytes mutated) and the files
``report`` reads (config.json, train_log.jsonl, predictions.npz). Training state files are left to engine/state.py's
own tests.

Bounded for CI: hypothesis runs derandomized (the same examples every run, so a failure reproduces), with few
examples per test, a per-example deadline, no example database, and pytest-timeout over each test.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import struct
from datetime import timedelta
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from warmstart.data.files import load_npz, read_image
from warmstart.data.sources import read_source
from warmstart.errors import WarmstartError
from warmstart.models import CheckpointInfo, create_model, load_checkpoint, read_info, save_checkpoint
from warmstart.models.checkpoint import METADATA_KEY
from warmstart.reporting import load_predictions
from warmstart.reporting.run_files import read_json, read_log
from warmstart.selection.zoo import list_zoo

# WARMSTART_FUZZ_EXAMPLES=2000 runs a deeper, randomised search by hand; CI keeps the small fixed one
DEEP = int(os.environ.get("WARMSTART_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=DEEP or 40, deadline=timedelta(seconds=10), derandomize=not DEEP, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
pytestmark = pytest.mark.timeout(3000 if DEEP else 240)
FRESH = itertools.count()  # a new folder per example: hypothesis reuses a test's tmp_path


def ends_well(call: Callable[[], Any]) -> None:
    """``call`` returns, or raises a WarmstartError whose message and fix are both there; anything else fails."""
    try:
        call()
    except WarmstartError as exc:
        assert exc.message.strip(), "a WarmstartError without a message"
        assert exc.hint and exc.hint.strip(), f"no fix: line for: {exc.message}"


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """``data`` with bytes overwritten at the given (position, value) pairs and maybe cut short."""
    buffer = bytearray(data)
    for position, value in edits:
        if buffer:
            buffer[position % len(buffer)] = value
    return bytes(buffer if cut is None else buffer[: cut % (len(buffer) + 1)])


EDITS = st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), max_size=8)
CUTS = st.none() | st.integers(0, 2**16)
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False) |
                           st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4),
                           max_leaves=8)


# ---------------------------------------------------------------- checkpoints

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[dict[str, torch.Tensor], dict[str, Any], bytes]:
    """A real tiny checkpoint: its tensors, its warmstart metadata and its bytes."""
    model = create_model("mlp", (4,), 3, hidden=[5])
    info = CheckpointInfo(arch=model.arch, arch_args=model.arch_args, input_shape=model.input_shape,
                          class_names=("a", "b", "c"),
                          preprocessing={"kind": "vector", "mean": [0.0] * 4, "std": [1.0] * 4}, kind="vector",
                          extra={"data": {"source": "x.csv", "shots": 5}, "metrics": {"accuracy": 0.5}})
    file = save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "model", info)
    with safe_open(str(file), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()[METADATA_KEY])
    return tensors, meta, file.read_bytes()


FIELDS = ["format", "format_version", "arch", "arch_args", "input_shape", "class_names", "preprocessing", "kind",
          "data", "metrics", "parent", "created"]


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=3),
       dropped=st.lists(st.sampled_from(FIELDS), max_size=2))
def test_fuzzed_checkpoint_metadata(checkpoint, tmp_path, changes, dropped):
    tensors, meta, _ = checkpoint
    crafted = {k: v for k, v in {**meta, **changes}.items() if k not in dropped}
    folder = tmp_path / f"run{next(FRESH)}" / "model"
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata={METADATA_KEY: json.dumps(crafted)})
    ends_well(lambda: read_info(folder))
    ends_well(lambda: load_checkpoint(folder))
    listing = list_zoo([folder.parent])  # never raises for a bad file: it is skipped with its reason
    assert len(listing.entries) + len(listing.skipped) == 1


@FUZZ
@given(header=st.text(max_size=200) | JSON_VALUES.map(json.dumps))
def test_fuzzed_checkpoint_metadata_text(checkpoint, tmp_path, header):
    tensors, _, _ = checkpoint
    file = tmp_path / "model.safetensors"
    save_file(tensors, str(file), metadata={METADATA_KEY: header})
    ends_well(lambda: load_checkpoint(file))


@FUZZ
@given(edits=EDITS, cut=CUTS)
def test_fuzzed_checkpoint_bytes(checkpoint, tmp_path, edits, cut):
    _, _, data = checkpoint
    header_length = struct.unpack("<Q", data[:8])[0]
    # aim most edits at the 8-byte length and the JSON header, where a parser can go wrong
    aimed = [(p % (8 + header_length), v) for p, v in edits]
    file = tmp_path / "model.safetensors"
    file.write_bytes(mutate(data, aimed, cut))
    ends_well(lambda: load_checkpoint(file))
    ends_well(lambda: list_zoo([tmp_path]))


# ---------------------------------------------------------------- data files

VECTOR_CSV = "a,b,label\n0.5,1,x\n-2,3e2,y\n1,0,x\n4,4,y\n"
TEXT_CSV = 'text,label\nhello there,pos\n"a, quoted text",neg\nbad day,neg\n'
JSONL = '{"text": "hello", "label": "a"}\n{"text": "bye", "label": "b"}\n{"text": "ok", "label": "a"}\n'


@FUZZ
@given(base=st.sampled_from([VECTOR_CSV, TEXT_CSV]), edits=EDITS, cut=CUTS)
def test_fuzzed_csv_bytes(tmp_path, base, edits, cut):
    file = tmp_path / "data.csv"
    file.write_bytes(mutate(base.encode(), edits, cut))
    ends_well(lambda: read_source(str(file)))
    ends_well(lambda: read_source(str(file), text_column="text"))


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list('ab,"\n\r\t 1.5e-x\x00label')), max_size=120))
def test_fuzzed_csv_text(tmp_path, text):
    file = tmp_path / "data.csv"
    file.write_text("a,label\n" + text, encoding="utf-8")
    ends_well(lambda: read_source(str(file)))


@FUZZ
@given(lines=st.lists(JSON_VALUES.map(json.dumps) | st.text(max_size=30), max_size=5), edits=EDITS)
def test_fuzzed_jsonl(tmp_path, lines, edits):
    file = tmp_path / "data.jsonl"
    file.write_bytes(mutate((JSONL + "\n".join(lines)).encode(), edits, None))
    ends_well(lambda: read_source(str(file)))


@FUZZ
@given(names=st.lists(st.sampled_from(["train.csv", "test.csv"]), min_size=1, max_size=2, unique=True),
       bodies=st.lists(st.sampled_from([VECTOR_CSV, TEXT_CSV, "a,label\n1,x\n", "label\n", ""]), min_size=2,
                       max_size=2))
def test_fuzzed_table_folders(tmp_path, names, bodies):
    folder = tmp_path / f"f{next(FRESH)}"
    folder.mkdir()
    for name, body in zip(names, bodies):
        (folder / name).write_text(body)
    ends_well(lambda: read_source(str(folder)))


def _npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.array([0, 1, 0, 1]),
             x_test=np.ones((2, 3), dtype=np.float32), y_test=np.array([1, 0]))
    return buffer.getvalue()


@FUZZ
@given(edits=EDITS, cut=CUTS)
def test_fuzzed_npz_bytes(tmp_path, edits, cut):
    file = tmp_path / "data.npz"
    file.write_bytes(mutate(_npz_bytes(), edits, cut))
    ends_well(lambda: load_npz(file))


@FUZZ
@given(x=st.sampled_from([np.zeros((3, 2)), np.zeros((3,)), np.zeros((0, 2)), np.full((3, 2), np.nan),
                          np.array([["a", "b"]] * 3), np.zeros((3, 2, 2, 5)), np.zeros((3, 1, 1, 1, 1))]),
       y=st.sampled_from([np.array([0, 1, 0]), np.array([[0], [1], [0]]), np.array(["a", "b", "a"]),
                          np.array([0.5, 1.5, 2.5]), np.array([], dtype=np.int64)]),
       names=st.none() | st.sampled_from([np.array(["p", "q"]), np.array([1, 2, 3]), np.array([])]))
def test_fuzzed_npz_arrays(tmp_path, x, y, names):
    file = tmp_path / "data.npz"
    arrays = {"x": x, "y": y, **({} if names is None else {"class_names": names})}
    np.savez(file, **arrays)
    ends_well(lambda: load_npz(file))


# ---------------------------------------------------------------- images

def _image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB" if fmt in ("JPEG", "BMP") else "L", (6, 5), 40)
    image.putpixel((1, 1), (200, 10, 10) if image.mode == "RGB" else 200)
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@FUZZ
@given(fmt=st.sampled_from(["PNG", "GIF", "BMP", "JPEG", "TIFF"]), edits=EDITS, cut=CUTS)
def test_fuzzed_image_bytes(tmp_path, fmt, edits, cut):
    data = _image_bytes(fmt)
    aimed = [(p % 64, v) for p, v in edits]  # the headers, where sizes and offsets live
    file = tmp_path / f"x.{fmt.lower()}"
    file.write_bytes(mutate(data, aimed, cut))
    ends_well(lambda: read_image(file))


@FUZZ
@given(fmt=st.sampled_from(["PNG", "GIF", "BMP"]), edits=EDITS)
def test_fuzzed_image_folders(tmp_path, fmt, edits):
    root = tmp_path / f"f{next(FRESH)}"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "good.png").write_bytes(_image_bytes("PNG"))
    (root / "b" / f"odd.{fmt.lower()}").write_bytes(mutate(_image_bytes(fmt), [(p % 64, v) for p, v in edits],
                                                           None))
    ends_well(lambda: read_source(str(root), image_size=(4, 4)))


# ---------------------------------------------------------------- what `report` reads

@FUZZ
@given(text=st.text(max_size=80) | JSON_VALUES.map(json.dumps), edits=EDITS)
def test_fuzzed_run_json_and_log(tmp_path, text, edits):
    data = mutate(text.encode(), edits, None)
    (tmp_path / "config.json").write_bytes(data)
    (tmp_path / "train_log.jsonl").write_bytes(b'{"epoch": 1, "loss": 0.5}\n' + data)
    ends_well(lambda: read_json(tmp_path / "config.json"))
    ends_well(lambda: read_log(tmp_path / "train_log.jsonl"))


@FUZZ
@given(edits=EDITS, cut=CUTS, labels=st.sampled_from([np.array([0, 1, 1]), np.array([0, 5, 1]), np.array([0.0, 1, 1]),
                                                       np.array([[0, 1, 1]])]))
def test_fuzzed_predictions(tmp_path, edits, cut, labels):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_true=labels, probabilities=np.full((3, 2), 0.5, dtype=np.float32))
    (tmp_path / "predictions.npz").write_bytes(mutate(buffer.getvalue(), edits, cut))
    ends_well(lambda: load_predictions(tmp_path))
