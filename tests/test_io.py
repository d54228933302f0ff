"""Atomic writes (warmstart.io): every write the file system refuses (a parent that is a file, a path under /proc,
a full disk) is a WarmstartError naming the path with a fix, and leaves no temporary file (issue 14, item 13).
Tests run as root, for whom a read-only folder is writable, so an existing file stands in as the blocking parent."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from warmstart.errors import WarmstartError
from warmstart.io import atomic_write, make_folder, write_json, write_text


def test_a_write_under_an_existing_file_names_the_path(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    target = tmp_path / "taken" / "run" / "config.json"
    with pytest.raises(WarmstartError, match="cannot be written") as info:
        write_json(target, {"a": 1})
    assert str(target) in str(info.value) and "existing file" in info.value.hint


def test_a_write_under_proc_names_the_path():
    with pytest.raises(WarmstartError, match="/proc/warmstart-test/metrics.json") as info:
        write_json("/proc/warmstart-test/metrics.json", {})
    assert info.value.hint


def test_a_full_disk_names_the_path_and_leaves_no_temporary_file(tmp_path):
    def fill(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (tmp_path / "out.txt").write_text("previous")
    with pytest.raises(WarmstartError, match="out.txt: cannot be written .No space left") as info:
        atomic_write(tmp_path / "out.txt", fill)
    assert "free some space" in info.value.hint
    assert (tmp_path / "out.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_enospc_from_the_os_during_a_write_text(tmp_path, monkeypatch):
    real_replace = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WarmstartError, match="a.json"):
        write_json(tmp_path / "a.json", {"x": 1})
    monkeypatch.setattr(os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []


def test_writing_over_a_folder_is_refused(tmp_path):
    (tmp_path / "report.html").mkdir()
    with pytest.raises(WarmstartError, match="report.html: cannot be written"):
        write_text(tmp_path / "report.html", "<html>")


@pytest.mark.parametrize("make", [lambda p: (p / "f").write_text("x") and p / "f",
                                  lambda p: (p / "f").write_text("x") and p / "f" / "sub",
                                  lambda p: Path("/proc/warmstart-test")])
def test_make_folder_refuses_what_cannot_hold_a_run(tmp_path, make):
    with pytest.raises(WarmstartError) as info:
        make_folder(make(tmp_path))
    assert info.value.hint


def test_make_folder_makes_and_keeps_nothing_else(tmp_path):
    folder = make_folder(tmp_path / "a" / "b")
    assert folder.is_dir() and list(folder.iterdir()) == []
    write_json(folder / "x.json", {"ok": True})
    assert json.loads((folder / "x.json").read_text()) == {"ok": True}


def test_predict_to_an_out_under_a_file_exits_2(tmp_path, capsys):
    from warmstart.cli import main

    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{x:.3f},{y:.3f},{int(x > 0)}" for x, y in rng.normal(size=(40, 2))]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(SystemExit):
        main(["pretrain", "--data", str(tmp_path / "d.csv"), "--model", "mlp", "--epochs", "1", "--quiet",
              "--out", str(tmp_path / "run")])
    (tmp_path / "blocker").write_text("x")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--checkpoint", str(tmp_path / "run"), "--input", str(tmp_path / "d.csv"),
              "--out", str(tmp_path / "blocker" / "p.csv")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error:") and "fix:" in err and "blocker" in err, err


@pytest.mark.parametrize("out", ["file", "file/run", "/proc/warmstart-test"])
def test_pretrain_into_an_unwritable_out_exits_2(tmp_path, capsys, out):
    from warmstart.cli import main

    (tmp_path / "file").write_text("x")
    target = out if out.startswith("/") else str(tmp_path / out)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--model", "mlp", "--epochs", "1", "--quiet", "--out", target])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error:") and "fix:" in err, err


def test_text_naming_a_file_whose_name_is_not_utf8_is_written(tmp_path):
    """A source named b'bad\\xffname.pt' trained, then the model card's write failed with a UnicodeEncodeError and
    left the run without its card and report."""
    name = os.fsdecode(b"bad\xffname.pt")  # what Python makes of such a name: a lone surrogate
    write_text(tmp_path / "card.md", f"started from {name}\n")
    assert (tmp_path / "card.md").read_text(encoding="utf-8") == "started from bad\\udcffname.pt\n"


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    import hashlib

    from warmstart.io import file_sha256

    (tmp_path / "f").write_bytes(b"x" * (3 << 20))
    assert file_sha256(tmp_path / "f") == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
