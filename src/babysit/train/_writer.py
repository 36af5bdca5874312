"""A background writer for a run folder's saves: one job at a time, in order, errors brought back to training.

The training thread hands over a save (a function over copies of what to write) and goes on; the next save
waits for the previous one first, so at most one copy of the training state is held and a disk slower than
training slows training down instead of filling memory. Signals are delivered to the main thread only, so an
interrupt never cuts a save short here; the main thread waits for the save in flight before it closes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import torch

from babysit.errors import CheckpointError


class BackgroundWriter:
    """Run save jobs on one daemon thread, one at a time and in order; :meth:`wait` blocks until the last one is
    done and raises its error, if any, as a CheckpointError. The thread starts with the first job and stops at
    :meth:`close` (starting a thread per save cost a millisecond each on a busy machine)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def wait(self, *, raise_error: bool = True) -> None:
        if self._thread is not None:
            self._jobs.join()
        error, self._error = self._error, None
        if error is not None and raise_error:
            if isinstance(error, CheckpointError):  # says already which save failed, and why
                raise error
            raise save_failed("saving the run", error) from error

    def close(self) -> None:
        self.wait(raise_error=False)
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except BaseException as exc:  # brought to the training thread by wait()
                self._error = exc
            finally:
                self._jobs.task_done()
        self._jobs.task_done()


def detached_copy(value: Any) -> Any:
    """A copy of a checkpoint payload whose tensors are CPU copies, safe to write while training changes the
    originals (a CUDA tensor is copied to the host here: what torch.save does while it writes)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: detached_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [detached_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(detached_copy(v) for v in value)
    return value  # numbers, strings, None: immutable


def save_failed(what: str, error: BaseException) -> CheckpointError:
    """The error a failed save becomes: what failed, why, and what to do."""
    return CheckpointError(f"{what} failed: {type(error).__name__}: {error}. The last save that completed is kept; "
                           "free disk space or fix the folder, then resume.")
