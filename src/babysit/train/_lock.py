"""``RunLock``: one writer per run folder. Two runs of one name would interleave their checkpoints and
histories into a folder neither can resume; the second gets a clear error instead.

An advisory ``flock`` on ``<run_dir>/.lock``, released by the OS when the process dies, so a killed run never
leaves a stale lock behind. Where ``fcntl`` does not exist (Windows) the lock is a no-op.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from babysit.errors import CheckpointError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLock:
    """Hold the run folder's lock from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if fcntl is None or self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held open while the run writes)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise CheckpointError(
                f"run folder {str(self.path.parent)!r} is being written by {holder}: two runs cannot share a "
                "folder. Give this run another name (or run_dir), or wait for that run to end."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None


def is_locked(folder: Path) -> bool:
    """Whether a live run holds ``folder`` (checked without taking the lock for long)."""
    lock = RunLock(folder)
    try:
        lock.acquire()
    except CheckpointError:
        return True
    lock.release()
    return False
