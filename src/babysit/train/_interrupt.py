"""Turn SIGTERM into KeyboardInterrupt during training, so Ctrl-C and a scheduler's kill save the same way.

While fit trains (:func:`interrupts_between_steps`) the first interrupt does not raise where it lands, which
may be the middle of an optimizer step: it is remembered, the step in progress (or the epoch's close: its
evaluation and callbacks) finishes, and the loop raises it before the next one (:func:`raise_if_interrupted`).
The model, the optimizer and the epoch's tally then agree, so the run folder can save exactly where training
stopped and a resume continues from there. A second interrupt raises at once (a step or a data loader that
hangs must not hold the run).

An interrupt is also *remembered*: CPython runs a signal's handler between any two bytecodes, and when that
happens inside a finalizer (a ``__del__``, a weakref callback: the tensors of a training step are freed all
the time) the KeyboardInterrupt it raises is printed as "Exception ignored" and lost, and training would go
on as if Ctrl-C was never pressed. The training loop calls :func:`raise_if_interrupted` once per step, which
raises the remembered interrupt again (a Python bool check: no device sync).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

log = logging.getLogger("babysit")


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by the SIGTERM handler; a KeyboardInterrupt so the same clean-up runs."""


_requested: list[int] = []  # signals received inside sigterm_as_interrupt and not yet acted on
# the same list under a public name: a hot loop tests it (a truth test) before paying for the call
interrupt_requested = _requested
_between_steps: list[int] = []  # the process id, while a first interrupt waits for the loop to raise it
_held: list[int] = []  # a signal held for the loop and not raised yet


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _requested.append(signum)
    if _between_steps and len(_requested) == 1:  # the training loop raises it once the step in progress is done
        _held.append(signum)
        if _between_steps[-1] == os.getpid():  # not in a DataLoader worker forked meanwhile: it keeps serving
            log.warning("%s: stopping after the step in progress, and saving there (again to stop at once)",
                        "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)
        return
    _raise(signum)


def _interrupt(signum: int, *, between_steps: bool = False) -> KeyboardInterrupt:
    del _held[:]  # raised now: no longer only held
    interrupt = KeyboardInterrupt() if signum == signal.SIGINT else \
        TrainingInterrupted(f"received signal {signal.Signals(signum).name}")
    interrupt.between_steps = between_steps  # type: ignore[attr-defined]
    return interrupt


def _raise(signum: int, *, between_steps: bool = False) -> None:
    raise _interrupt(signum, between_steps=between_steps)


def held_interrupt(error: BaseException) -> KeyboardInterrupt | None:
    """The interrupt received and not raised yet when ``error`` was, if any (``error`` becomes its context): the
    error is taken as its effect (a terminal's Ctrl-C reaches the DataLoader's worker processes too, and a
    worker that stopped makes the loader raise), so the run ends interrupted, not failed."""
    if not _requested:
        return None
    interrupt = _interrupt(_requested[0])
    interrupt.__context__ = error
    return interrupt


def stopped_between_steps(interrupt: BaseException) -> bool:
    """Whether ``interrupt`` was raised by the training loop between two steps (what was trained is consistent
    and can be saved), not wherever the signal landed."""
    return bool(getattr(interrupt, "between_steps", False))


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


def raise_if_interrupted(*, between_steps: bool = False) -> None:
    """Raise an interrupt that was received but not raised yet (held for the step in progress, or swallowed in a
    finalizer); the training loop calls this between steps (``between_steps=True`` marks the interrupt so, inside
    :func:`interrupts_between_steps`: with several processes the others may be elsewhere, and nothing is saved)."""
    if _requested:
        _raise(_requested[0], between_steps=between_steps and bool(_between_steps))


@contextmanager
def interrupts_between_steps(enabled: bool = True) -> Iterator[None]:
    """Within the block (fit's epochs), the first Ctrl-C or SIGTERM waits for :func:`raise_if_interrupted`;
    ``enabled=False`` (several processes, which must stop at the same step) leaves interrupts as they are."""
    if not enabled:
        yield
        return
    _between_steps.append(os.getpid())
    try:
        yield
    finally:
        _between_steps.pop()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`TrainingInterrupted` and Ctrl-C KeyboardInterrupt, and both are
    remembered for :func:`raise_if_interrupted` (main thread only; a Ctrl-C handler set by the caller is kept).

    An interrupt still held when the block ends without an error (the run stopped or diverged before the loop
    raised it) is delivered then, to the handler put back: the run closed as it ended, and the process still
    stops as asked."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    del _requested[:]
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupt)
    del _held[:]
    completed = False
    try:
        yield
        completed = True
    finally:
        held = _held[:1] if completed else []
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        del _requested[:], _held[:]
        _deliver(held)


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
