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


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise the interrupt.

    Saving an epoch writes the checkpoint, then the history, then notes what is saved; an interrupt in between
    would leave a checkpoint one epoch ahead of the history the clean-up writes. Main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    # a handler installed outside Python reads as None and cannot be put back: leave that signal alone
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous = {sig: handler for sig, handler in previous.items() if handler is not None}
    for sig in previous:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        if received[0] == signal.SIGINT:
            raise KeyboardInterrupt
        _raise_interrupt(received[0], None)
