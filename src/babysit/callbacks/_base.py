"""``Callback``: the one way to attach behaviour to ``fit``'s loop, and ``StopTraining`` to end it early.

The loop calls the hooks at named moments; a callback overrides the ones it needs. Everything beyond the
bare loop is a callback (the monitor, the run folder and its checkpoints, the live report, TensorBoard,
EMA, early stopping, the search's pruning, the progress bar), so a user-written callback has the same power
as babysit's own.

Hook order within one moment follows ``order`` (lower first; equal orders keep the order given). Order
values in use: the monitor -100 (it reads out its statistics before anyone looks at them), the diagnosis
-50 (findings exist before the callbacks that save or show them), momentum annealing -20, EMA -10, user
callbacks 0, the report 90, the run folder 100 (it checkpoints last, so every state change of the epoch is
in the checkpoint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

    from babysit.train.run import Run

__all__ = ["HOOKS", "Callback", "StopTraining"]

HOOKS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_validation_end", "on_epoch_end", "on_fit_end",
         "on_exception")


class StopTraining(Exception):  # a signal, like StopIteration, not an error
    """Raise from any hook to end the run cleanly with status ``stopped`` and ``reason`` as its stop reason.

    Raised in ``on_step_end``, the epoch in progress is closed after that step (its record counts the steps it
    took); raised in ``on_epoch_end`` or ``on_validation_end``, the other callbacks still see that moment
    (the run folder still checkpoints the epoch) before the run ends.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Callback:
    """Base class of ``fit`` callbacks: every hook does nothing until overridden.

    Hooks, in the order the loop calls them::

        on_fit_start(run)                      # once, before the first epoch (after a resume is restored)
        for each epoch:
            on_epoch_start(run)
            on_step_end(run, loss)             # after every optimizer.step(); loss: the data loss, a device
                                               # tensor (reading it with .item() forces a device sync)
            on_validation_end(run, record)     # validation numbers are in record (only with validation data)
            on_epoch_end(run, record)          # record is now in run.history.epochs
        on_exception(run, exc)                 # when anything raised (Ctrl-C included), before on_fit_end
        on_fit_end(run, status)                # exactly once: completed | stopped | diverged | interrupted |
                                               # failed

    ``run`` is the :class:`babysit.train.Run` in progress: model, optimizer, history, epoch, step, ...
    ``state_dict``/``load_state_dict`` let a callback that keeps state resume exactly: the state is saved in
    every checkpoint and given back after ``on_fit_start`` when a run resumes.

    Example:
        >>> import babysit
        >>> class GradNormLogger(babysit.Callback):
        ...     def on_step_end(self, run, loss):
        ...         pass  # e.g. keep torch.nn.utils.get_total_norm(...) on the device
    """

    order: int = 0

    @property
    def state_key(self) -> str:
        """The name this callback's state is saved under (the class name; ``#2``, ... added for repeats)."""
        return type(self).__qualname__

    def on_fit_start(self, run: Run) -> None:
        """Once, before the first epoch."""

    def on_epoch_start(self, run: Run) -> None:
        """Before an epoch's first step."""

    def on_step_end(self, run: Run, loss: Tensor) -> None:
        """After every ``optimizer.step()``; keep it cheap and never read ``loss`` on the host here."""

    def on_validation_end(self, run: Run, record: dict[str, Any]) -> None:
        """After the epoch's validation pass; ``record`` holds ``val_loss``/``val_acc`` and may gain keys."""

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        """After an epoch, once its record is in ``run.history.epochs``."""

    def on_exception(self, run: Run, exc: BaseException) -> None:
        """When the run raised (an error, Ctrl-C or SIGTERM); ``on_fit_end`` follows."""

    def on_fit_end(self, run: Run, status: str) -> None:
        """Exactly once at the end, whatever happened; ``status`` is also ``run.history.status``."""

    def state_dict(self) -> dict[str, Any]:
        """What to save in checkpoints: plain data (numbers, strings, lists, dicts) and tensors, since checkpoints
        load with ``weights_only=True``; anything else (a numpy number or array) is refused with a CheckpointError
        at the save, as no run could resume from that checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` gave, when a run resumes."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def overrides(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` does something at ``hook`` (the loop skips the others on the hot path): a subclass
    method, or one set on the instance (a callback that needs the hook only with some settings)."""
    method = getattr(callback, hook, None)
    return getattr(method, "__func__", method) is not getattr(Callback, hook)
