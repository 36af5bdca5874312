"""``FitOptions``: how ``fit`` runs its step, for the settings that live inside the hot path itself.

Everything that only watches or reacts to training is a callback; what changes the step itself (numeric
precision, compilation) and how the run presents itself (the progress bar, extra facts in its meta) is
here, so ``fit``'s signature stays short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from babysit.errors import ConfigError

__all__ = ["PRECISIONS", "FitOptions"]

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class FitOptions:
    """Settings of ``fit`` beyond its arguments (``fit(..., options=FitOptions(precision="bf16"))`` or a dict).

    Attributes:
        precision: ``"fp32"`` or ``"bf16"`` (autocast of the forward pass and the loss).
        compile: run the forward pass through ``torch.compile`` (the monitor then skips its layer hooks).
        progress: show a progress bar; None shows it when stderr is a terminal.
        meta: facts stored in ``history.meta`` beside fit's own, e.g. ``{"config": ..., "data": ...}``.
    """

    precision: str = "fp32"
    compile: bool = False
    progress: bool | None = None
    meta: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got precision={self.precision!r}.")
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
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(options) - known)
            if unknown:
                raise ConfigError(f"unknown fit option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
            return cls(**options)
        raise ConfigError(f"options must be a babysit.train.FitOptions, a dict or None, got {options!r}.")
