"""Small file helpers: writes that never leave a half-written file behind, and survive a power cut.

A write goes to a temporary file beside the target, is flushed to disk (fsync), renamed over the target,
and the folder is fsynced so the rename itself is durable. Files get the permissions the umask gives
(``mkstemp`` alone would make them 0600: teammates could not read a shared run folder).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_current_umask()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file, fsync it, rename it to ``path`` and fsync the folder; on any
    failure the temporary file is removed and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _jsonable(value: Any) -> Any:
    """Replace non-finite floats by strings JSON can hold ('nan', 'inf', '-inf')."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _restore_floats(value: Any) -> Any:
    if value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: _restore_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_floats(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically; NaN and inf survive as strings and come back as floats."""
    write_text_atomic(path, json_text(data, indent=1))


def read_json(path: Path) -> Any:
    """Read JSON written by :func:`write_json_atomic`."""
    return from_json_text(path.read_text(encoding="utf-8"))


def json_text(data: Any, indent: int | None = None) -> str:
    """``data`` as JSON text (NaN and inf as strings, anything else unknown as its ``str``)."""
    return json.dumps(_jsonable(data), indent=indent, default=str)


def from_json_text(text: str) -> Any:
    """Read :func:`json_text` back, NaN and inf as floats again."""
    return _restore_floats(json.loads(text))
