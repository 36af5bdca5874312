"""``MonitorCallback``: the Monitor attached to ``fit``'s loop (``fit(monitor=...)`` builds it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from babysit.callbacks._base import Callback
from babysit.errors import ConfigError
from babysit.monitors.monitor import Monitor, check_settings

if TYPE_CHECKING:
    from torch import Tensor

    from babysit.train.run import Run

__all__ = ["MonitorCallback"]


class MonitorCallback(Callback):
    """Feed the loop's steps and epochs to a :class:`Monitor` recording into the run's History.

    Args:
        monitor: True (a Monitor with the defaults), a dict of Monitor settings, or a Monitor built on the
            model being trained (kept open at the end, for you to use further).
    """

    order = -100  # its statistics are read out before any other callback looks at the History

    def __init__(self, monitor: bool | dict[str, Any] | Monitor = True) -> None:
        if not (monitor is True or isinstance(monitor, (dict, Monitor))):
            raise ConfigError(
                f"monitor must be True, False, a dict of Monitor settings or a babysit.Monitor, got {monitor!r}."
            )
        if isinstance(monitor, dict):  # fit passes the model, its optimizer and its History itself
            check_settings(monitor, given=("model", "optimizer", "history"), who="fit(monitor={...})")
        self.spec = monitor
        self.monitor: Monitor | None = None
        self._own = False

    def on_fit_start(self, run: Run) -> None:
        self.monitor, self._own = _attach(self.spec, run)
        if run.epochs > 0 and run.steps_per_epoch > 0:  # the end of training is sampled with histograms too
            self.monitor.expect_last_step(run.epochs * run.steps_per_epoch)
        self._step = self.monitor.step  # bound once: the per-step call is this and nothing else

    def on_step_end(self, run: Run, loss: Tensor) -> None:
        self._step()  # fit records the per-step losses itself

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        self.monitor.check_evaluation()  # type: ignore[union-attr]
        self.monitor.flush()  # type: ignore[union-attr]

    def on_exception(self, run: Run, exc: BaseException) -> None:
        if self.monitor is not None:
            self.monitor.flush()

    def on_fit_end(self, run: Run, status: str) -> None:
        if self.monitor is None:
            return
        if status == "diverged":
            self.monitor.locate_nonfinite()  # name the first layer that went non-finite
        if self._own:
            self.monitor.close()
        else:
            self.monitor.flush()


def _attach(spec: bool | dict[str, Any] | Monitor, run: Run) -> tuple[Monitor, bool]:
    """The Monitor recording into ``run.history``, and whether it was built here (and so is closed here)."""
    if isinstance(spec, Monitor):
        if spec.model is not run.model:
            raise ConfigError("the Monitor passed to fit watches another model; build it on the model fit trains.")
        if spec.optimizer is None:
            spec.watch_optimizer(run.optimizer)
        elif spec.optimizer is not run.optimizer:
            raise ConfigError("the Monitor passed to fit watches another optimizer; pass that optimizer to fit "
                              "(optimizer=monitor.optimizer) or build the Monitor without one.")
        spec.bind(run.history)
        return spec, False
    settings = {} if spec is True else dict(spec)  # type: ignore[arg-type]
    settings.setdefault("activations", not run.compiled)  # layer hooks and torch.compile do not mix
    settings.setdefault("watch_eval", False)  # fit evaluates in evaluation mode itself
    return Monitor(run.model, run.optimizer, history=run.history, **settings), True  # names checked in __init__
