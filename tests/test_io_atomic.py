"""Atomic writes: best.pt as a hard link of last.pt stays what it was when last.pt is replaced."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from babysit._io import link_atomic, write_atomic


def test_a_linked_copy_keeps_its_bytes_when_the_source_is_replaced(tmp_path: Path) -> None:
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    write_atomic(last, lambda fh: fh.write(b"epoch 3"))
    link_atomic(last, best)
    assert os.stat(last).st_ino == os.stat(best).st_ino  # one file, two names: nothing was copied
    write_atomic(last, lambda fh: fh.write(b"epoch 4"))  # the next save replaces last.pt by a new file
    assert best.read_bytes() == b"epoch 3" and last.read_bytes() == b"epoch 4"
    link_atomic(last, best)  # a later best epoch replaces best.pt atomically
    assert best.read_bytes() == b"epoch 4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temporary file left


def test_without_hard_links_the_bytes_are_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    write_atomic(last, lambda fh: fh.write(b"epoch 3"))
    monkeypatch.setattr(os, "link", no_links)
    link_atomic(last, best)
    assert best.read_bytes() == b"epoch 3" and os.stat(last).st_ino != os.stat(best).st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
