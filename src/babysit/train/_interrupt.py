"""Turn SIGTERM into KeyboardInterrupt during training, so Ctrl-C and a scheduler's kill save the same way."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by the SIGTERM handler; a KeyboardInterrupt so the same clean-up runs."""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise TrainingInterrupted(f"received signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`TrainingInterrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
