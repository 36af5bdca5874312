"""``interrupts_deferred`` (held Ctrl-C / SIGTERM while a checkpoint and its history are saved) keeps the handlers
it found and never drops a signal: real signals, sent to this process with ``signal.raise_signal``."""

from __future__ import annotations

import signal

import pytest

from babysit.train._interrupt import (
    TrainingInterrupted,
    interrupts_deferred,
    interrupts_resumed,
    raise_if_interrupted,
    sigterm_as_interrupt,
)


@pytest.fixture
def handlers():
    """Put SIGINT and SIGTERM back as they were after each test."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_held_ctrl_c_is_raised_after_the_block(handlers) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        signal.raise_signal(signal.SIGINT)
        steps.append("saved")  # the block finishes first
    assert steps == ["saved"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored(handlers) -> None:
    # a run started in the background: the shell ignores SIGINT for it, and so must the save
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupts_deferred():
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_a_callers_own_handler_is_kept_and_called_after_the_block(handlers) -> None:
    calls = []

    def mine(signum, frame):
        calls.append(signum)

    signal.signal(signal.SIGTERM, mine)
    with interrupts_deferred():
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
        assert calls == []  # held while saving
    # each signal reaches the caller's handler once the block is done, and the handler is the caller's again
    assert calls == [signal.SIGTERM, signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is mine


def test_a_signal_held_during_a_save_that_raises_is_not_dropped(handlers) -> None:
    with sigterm_as_interrupt():
        with pytest.raises(TrainingInterrupted) as info, interrupts_deferred():
            signal.raise_signal(signal.SIGTERM)
            raise OSError("disk full")
        # the interrupt wins, the save's error is kept as its context, and it is remembered for the training loop
        assert isinstance(info.value.__context__, OSError)
        with pytest.raises(TrainingInterrupted):
            raise_if_interrupted()


def test_both_signals_are_delivered_in_order(handlers) -> None:
    seen = []
    signal.signal(signal.SIGINT, lambda s, f: seen.append("int"))
    signal.signal(signal.SIGTERM, lambda s, f: seen.append("term"))
    with interrupts_deferred():
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    assert seen == ["term", "int"]


def test_interrupts_resumed_lets_signals_through_inside_a_deferred_block(handlers) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    order = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        signal.raise_signal(signal.SIGINT)  # held: it arrives before the resumed block
        order.append("held")
        with interrupts_resumed():  # delivered on entry, before the body runs
            order.append("body")
    assert order == ["held"]

    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        with pytest.raises(KeyboardInterrupt), interrupts_resumed():
            signal.raise_signal(signal.SIGINT)  # at once, inside
            order.append("not reached")
        signal.raise_signal(signal.SIGINT)  # held again after the resumed block ...
        order.append("after")
    assert order == ["held", "after"]  # ... and raised as the deferred block ends
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interrupts_resumed_outside_a_deferred_block_changes_nothing(handlers) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with interrupts_resumed():
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
