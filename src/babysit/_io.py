"""Small file helpers: writes that never leave a half-written file behind, and survive a power cut.

A write goes to a temporary file beside the target, is flushed to disk (fsync), renamed over the target,
and the folder is fsynced so the rename itself is durable. Files get the permissions the umask gives
(``mkstemp`` alone would make them 0600: teammates could not read a shared run folder).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import threading
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


def write_atomic(path: Path, write: Callable[[BinaryIO], object], *, sync_folder: bool = True) -> None:
    """Call ``write(file)`` on a temporary file, fsync it, rename it to ``path`` and fsync the folder; on any
    failure the temporary file is removed and ``path`` is left as it was. ``sync_folder=False`` leaves the
    folder's fsync to the caller (one for several files renamed into it)."""
    stage_atomic(path, write).commit(sync_folder=sync_folder)


class StagedFile:
    """A file written beside its target but neither durable nor in place yet: :meth:`commit` makes it both.

    Writing and making durable are separate so that several files can be written first and made durable
    together (:func:`fsync_all`: their waits for the disk overlap), and so that a file can be written before
    another one is durable yet take its place only after it."""

    def __init__(self, tmp: Path, target: Path) -> None:
        self.tmp, self.target = tmp, target

    def commit(self, *, sync_folder: bool = True) -> None:
        """fsync the file, put it in place, and (``sync_folder``) fsync the folder; on a failure the temporary
        file is removed and the target is left as it was."""
        try:
            fsync_all([self.tmp])
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        self.put_in_place()
        if sync_folder:
            fsync_dir(self.target.parent)

    def put_in_place(self) -> None:
        """Rename the (fsynced) file over its target: readers see the old file or the new one, never half."""
        try:
            os.replace(self.tmp, self.target)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise


def fsync_all(paths: list[Path]) -> None:
    """fsync several files (or folders) at once, one thread each beyond the first: the disk takes their writes
    together instead of one round trip after another. Raises the first error."""
    errors: list[BaseException] = []

    def sync(path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException as exc:
            errors.append(exc)

    helpers = [threading.Thread(target=sync, args=(path,), daemon=True) for path in paths[1:]]
    for helper in helpers:
        helper.start()
    if paths:
        sync(paths[0])
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]


def stage_atomic(path: Path, write: Callable[[BinaryIO], object]) -> StagedFile:
    """Call ``write(file)`` on a temporary file beside ``path`` (removed again if that fails) and return it
    staged, to be committed (:meth:`StagedFile.commit`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            start_writeback(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return StagedFile(Path(tmp), path)


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file's pages to disk now, without waiting for them (on Linux,
    POSIX_FADV_DONTNEED starts it): the fsync that follows then waits for writes already under way, those of
    several files at once, instead of starting each file's writes in turn. A no-op without posix_fadvise."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):  # a file system that takes no advice: the fsync does it all
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def link_atomic(source: Path, target: Path, *, sync_folder: bool = True) -> None:
    """Make ``target`` a second name of ``source``'s file (a hard link), replacing ``target`` atomically: an
    instant, durable copy of a file that is only ever replaced, never written in place. Where the file system
    has no hard links, the bytes are copied instead."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        with open(source, "rb") as src:
            write_atomic(target, lambda fh: shutil.copyfileobj(src, fh), sync_folder=sync_folder)
        return
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_folder:
        fsync_dir(target.parent)


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
        try:  # a column of numbers, all finite (the common case), goes as it is
            if all(map(math.isfinite, value)):
                return value
        except TypeError:  # not all numbers
            pass
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


def read_json_object(path: Path, *, what: str, fix: str, error: type[Exception] | None = None) -> dict[str, Any]:
    """Read a JSON object that babysit wrote (``history.json``, ``search.json``), NaN and inf as floats.

    A file that is unreadable, empty, cut short, not JSON or not a JSON object raises ``error`` (default
    :class:`~babysit.errors.CheckpointError`) with one line that names the file, what is wrong with it, and
    ``fix``; no JSONDecodeError or AttributeError escapes.

    Example:
        >>> read_json_object(Path("runs/x/history.json"), what="history", fix="train the run again")
    """
    if error is None:
        from babysit.errors import CheckpointError

        error = CheckpointError
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path} does not exist: no {what} there; {fix}.") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not a {what} file (not text); {fix}.") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}; {fix}.") from None
    if not text.strip():
        raise error(f"{path} is empty (a {what} file cut short, e.g. by a full disk); {fix}.") from None
    try:
        data = from_json_text(text)
    except ValueError as exc:  # json.JSONDecodeError
        where = f" at line {exc.lineno}, column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise error(f"{path} is damaged: not valid JSON{where} ({getattr(exc, 'msg', exc)}; cut short or edited "
                    f"by hand?); {fix}.") from None
    if not isinstance(data, dict):
        raise error(f"{path} holds a JSON {type(data).__name__}, not the object a {what} file holds; {fix}.") from None
    return data
