"""Small file helpers: writes that never leave a half-written file behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
