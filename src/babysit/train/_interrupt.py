"""Turn SIGTERM into KeyboardInterrupt during training, so Ctrl-C and a scheduler's kill save the same way.

An interrupt is also *remembered*: CPython runs a signal's handler between any two bytecodes, and when that
happens inside a finalizer (a ``__del__``, a weakref callback: the tensors of a training step are freed all
the time) the KeyboardInterrupt it raises is printed as "Exception ignored" and lost, and training would go
on as if Ctrl-C was never pressed. The training loop calls :func:`raise_if_interrupted` once per step, which
raises the remembered interrupt again (a Python bool check: no device sync).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by the SIGTERM handler; a KeyboardInterrupt so the same clean-up runs."""


_requested: list[int] = []  # signals received inside sigterm_as_interrupt and not yet acted on
# the same list under a public name: a hot loop tests it (a truth test) before paying for the call
interrupt_requested = _requested


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _requested.append(signum)
    _raise(signum)


def _raise(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise TrainingInterrupted(f"received signal {signal.Signals(signum).name}")


def interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind ``error``: itself when it is one, or the one that was being handled when it was
    raised (a clean-up that Ctrl-C cut short and that failed on its way out, like a lock file released twice:
    the run was interrupted, not broken); None when there is none."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__context__
    return None


def raise_if_interrupted() -> None:
    """Raise an interrupt that was received but lost (swallowed in a finalizer); called once per step."""
    if _requested:
        _raise(_requested[0])


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`TrainingInterrupted` and Ctrl-C KeyboardInterrupt, and both are
    remembered for :func:`raise_if_interrupted` (main thread only; a Ctrl-C handler set by the caller is kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    del _requested[:]
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        del _requested[:]


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them to the handlers they would have met.

    Saving an epoch writes the checkpoint, then the history, then notes what is saved; an interrupt in between
    would leave a checkpoint one epoch ahead of the history the clean-up writes. Main thread only.

    The handlers in place are kept: a signal that is ignored (``SIG_IGN``: a run started in the background) stays
    ignored and is not held, and one that arrives during the block goes, afterwards, to the handler that was
    installed (a caller's own, Python's KeyboardInterrupt, :func:`sigterm_as_interrupt`'s). No signal is
    dropped: each is delivered again once the handlers are back, in the order received, also when the block
    raised (the interrupt then comes with that error as its context).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    # a handler installed outside Python reads as None and cannot be put back: leave that signal alone; an ignored
    # one stays ignored
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous = {sig: h for sig, h in previous.items() if h is not None and h != signal.SIG_IGN}
    for sig in previous:
        signal.signal(sig, hold)
    _deferrals.append(_Deferral(previous, hold, received))
    try:
        yield
    finally:
        _deferrals.pop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _deliver(received)


@dataclass
class _Deferral:
    previous: dict[int, Any]  # the handlers interrupts_deferred replaced
    hold: Any
    received: list[int]


_deferrals: list[_Deferral] = []  # the interrupts_deferred blocks open now, innermost last


@contextmanager
def interrupts_resumed() -> Iterator[None]:
    """Inside :func:`interrupts_deferred`, let interrupts through again for this block (what was held so far is
    delivered on entry); outside one, do nothing.

    A search worker holds interrupts while Optuna creates and closes a trial, so an interrupt never leaves a trial
    running that no worker has claimed yet, and resumes them while the trial's objective runs.
    """
    if not _deferrals or threading.current_thread() is not threading.main_thread():
        yield
        return
    deferral = _deferrals[-1]
    for sig, handler in deferral.previous.items():
        signal.signal(sig, handler)
    try:
        held = deferral.received[:]
        del deferral.received[:]
        _deliver(held)
        yield
    finally:
        for sig in deferral.previous:
            signal.signal(sig, deferral.hold)


def _deliver(signals: list[int]) -> None:
    """Raise each held signal again, now that its own handler is back; the first exception a handler raised is
    raised after every signal has been delivered."""
    first: BaseException | None = None
    for signum in signals:
        try:
            signal.raise_signal(signum)
        except BaseException as exc:  # KeyboardInterrupt, TrainingInterrupted, a caller's handler's own error
            first = first or exc
    if first is not None:
        raise first
