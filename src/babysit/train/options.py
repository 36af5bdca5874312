"""``FitOptions``: how ``fit`` runs its step, for the settings that live inside the hot path itself.

Everything that only watches or reacts to training is a callback; what changes the step itself (numeric
precision, compilation) and how the run presents itself (the progress bar, extra facts in its meta) is
here, so ``fit``'s signature stays short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from babysit._names import unknown_name
from babysit.errors import ConfigError

__all__ = ["PRECISIONS", "FitOptions"]

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class FitOptions:
    """Settings of ``fit`` beyond its arguments (``fit(..., options=FitOptions(precision="bf16"))`` or a dict).

    Attributes:
        precision: ``"fp32"``, ``"bf16"`` (autocast of the forward pass and the loss) or ``"fp16"`` (autocast
            with a ``torch.amp.GradScaler``; its scale is saved in checkpoints).
        clip_grad_norm: clip the gradients' total norm to this before every update (None: no clipping).
        accumulate: run each batch as this many micro-batches, accumulating their gradients into one update
            (the same update as the whole batch, in less memory).
        checkpoint_every_steps: with a run folder, also checkpoint every this many steps (inside epochs; a resume
            continues at the next step, bit-identical on the CPU), besides every epoch's end.
        checkpoint_every_minutes: likewise, when this many minutes passed since the last checkpoint.
        checkpoint_every_epochs: checkpoint at every this many epochs' end. None (the default): every epoch,
            unless saving would cost more than 1 % of the training time; then as often as that allows, and always
            at the last epoch (a crash or Ctrl-C loses at most ~100 times one save's cost of training).
        compile: run the forward pass through ``torch.compile`` (the monitor then skips its layer hooks).
        progress: show a progress bar; None shows it when stderr is a terminal.
        report: with a run folder, draw ``report.html`` there when the run ends (about a second; refreshed at
            epoch ends within 3 % of the training time): None when the ``report`` extra is installed and the
            run is one process (not under DistributedDataParallel), True always (an error without the extra),
            False never (``babysit.report(run_dir)`` draws it any time).
        meta: facts stored in ``history.meta`` beside fit's own, e.g. ``{"config": ..., "data": ...}``.
    """

    precision: str = "fp32"
    clip_grad_norm: float | None = None
    accumulate: int = 1
    checkpoint_every_steps: int | None = None
    checkpoint_every_minutes: float | None = None
    checkpoint_every_epochs: int | None = None
    compile: bool = False
    progress: bool | None = None
    report: bool | None = None
    meta: Mapping[str, Any] | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> FitOptions:
        # a misspelt option is a ConfigError naming the known ones (as in the dict form), not a bare TypeError
        _check_names(kwargs)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got precision={self.precision!r}.")
        if self.clip_grad_norm is not None and not (
                isinstance(self.clip_grad_norm, (int, float)) and self.clip_grad_norm > 0):
            raise ConfigError(f"clip_grad_norm must be a number > 0 (or None: no clipping), got "
                              f"clip_grad_norm={self.clip_grad_norm!r}; typical values: 0.5 .. 5.")
        if isinstance(self.accumulate, bool) or not isinstance(self.accumulate, int) or self.accumulate < 1:
            raise ConfigError(f"accumulate must be an integer >= 1 (micro-batches per batch), got "
                              f"accumulate={self.accumulate!r}.")
        steps = self.checkpoint_every_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ConfigError(f"checkpoint_every_steps must be an integer >= 1 (or None), got {steps!r}.")
        epochs = self.checkpoint_every_epochs
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise ConfigError(f"checkpoint_every_epochs must be an integer >= 1 (or None: every epoch within a 1 % "
                              f"time budget), got {epochs!r}.")
        minutes = self.checkpoint_every_minutes
        if minutes is not None and not (isinstance(minutes, (int, float)) and minutes > 0):
            raise ConfigError(f"checkpoint_every_minutes must be a number > 0 (or None), got {minutes!r}.")
        if self.report is not None and not isinstance(self.report, bool):
            raise ConfigError(f"report must be True, False or None (when the report extra is installed), got "
                              f"report={self.report!r}.")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be True or False, got compile={self.compile!r}.")

    @classmethod
    def of(cls, options: FitOptions | Mapping[str, Any] | None) -> FitOptions:
        """The options given as an instance, a dict of its fields, or None (the defaults)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if isinstance(options, Mapping):
            _check_names(options)
            return cls(**options)
        raise ConfigError(f"options must be a babysit.train.FitOptions, a dict or None, got {options!r}.")


def _check_names(options: Mapping[str, Any]) -> None:
    """A ConfigError for the first name that is no FitOptions field: the known ones and the closest."""
    known = [f.name for f in fields(FitOptions)]
    for name in options:
        if name not in known:
            raise ConfigError(unknown_name("fit option", str(name), known))
