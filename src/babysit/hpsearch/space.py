"""Search spaces in values, not exponents (lecture H2): log scale for scale-like hyperparameters.

``loguniform(1e-6, 1e1)`` samples ``lr = 10 ** uniform(-6, 1)`` but is written, stored, printed and narrowed
in the values a person reads. Every range knows its own scale, so "near the edge" and "narrow around the
top results" are measured there (in decades for a log range).

Example:
    >>> space = {"lr": loguniform(1e-4, 1.0), "momentum": uniform(0.5, 0.99, limits=(0.0, 0.999)),
    ...          "hidden": logint(16, 512), "activation": choice("relu", "tanh")}
    >>> space["lr"].position(1e-2)   # halfway in log scale
    0.5
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from babysit.errors import ConfigError

__all__ = [
    "Choice",
    "Param",
    "Range",
    "choice",
    "int",
    "logint",
    "loguniform",
    "space_from_dict",
    "space_to_dict",
    "uniform",
]

_KINDS = ("loguniform", "uniform", "int", "logint", "choice")
_SCALARS = (str, builtins.int, float, bool, type(None))


@dataclass(frozen=True)
class Range:
    """A numeric range ``[low, high]``, sampled uniformly in its own scale (log10 when ``log``).

    Args:
        low, high: the bounds (inclusive), ``low < high``; ``low > 0`` on a log scale.
        log: sample uniformly in log space (learning rates, regularization strengths, widths).
        integer: round to integers (widths, layer counts).
        limits: hard bounds a widened range never crosses, e.g. ``(0, 1)`` for a momentum or dropout.
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False
    limits: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        name = self.kind
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, (builtins.int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name}: {bound} must be a finite number, got {bound}={value!r}.")
        if not self.low < self.high:
            raise ConfigError(f"{name}: low must be < high, got low={self.low!r}, high={self.high!r}.")
        if self.log and self.low <= 0:
            linear = "int" if self.integer else "uniform"
            raise ConfigError(
                f"{name}: a log-scale range needs low > 0{' (>= 1 for integers)' if self.integer else ''}, got "
                f"low={self.low!r}; for a range that includes 0 use {linear}({self.low}, {self.high})."
            )
        if self.integer:
            if self.low != round(self.low) or self.high != round(self.high):
                raise ConfigError(f"{name}: bounds must be integers, got low={self.low!r}, high={self.high!r}.")
            object.__setattr__(self, "low", builtins.int(self.low))
            object.__setattr__(self, "high", builtins.int(self.high))
            if self.log and self.low < 1:
                raise ConfigError(f"{name}: a log-scale integer range needs low >= 1, got low={self.low!r}.")
        if self.limits is not None:
            lo, hi = (float(v) for v in self.limits)
            if not (lo <= self.low and self.high <= hi):
                raise ConfigError(
                    f"{name}({self.low}, {self.high}) lies outside its limits ({lo}, {hi}); "
                    "limits are the hard bounds a widened range may not cross."
                )
            object.__setattr__(self, "limits", (lo, hi))

    # --- description ---------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``loguniform``, ``uniform``, ``int`` or ``logint``."""
        if self.integer:
            return "logint" if self.log else "int"
        return "loguniform" if self.log else "uniform"

    @property
    def scale(self) -> str:
        return "log" if self.log else "linear"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "low": self.low, "high": self.high, "scale": self.scale}
        if self.limits is not None:
            out["limits"] = list(self.limits)
        return out

    def __repr__(self) -> str:
        limits = "" if self.limits is None else f", limits={self.limits}"
        return f"{self.kind}({self.low:g}, {self.high:g}{limits})"

    # --- the range's own scale -------------------------------------------------------------------------
    def forward(self, value: float) -> float:
        """Map a value to the range's own scale (log10 for log ranges)."""
        return math.log10(value) if self.log else float(value)

    def inverse(self, x: float) -> float:
        """Map a point of the range's own scale back to a value."""
        return 10.0**x if self.log else x

    def position(self, value: float) -> float:
        """Where ``value`` lies in the range, 0 at ``low`` and 1 at ``high``, measured in its own scale."""
        lo, hi = self.forward(self.low), self.forward(self.high)
        return (self.forward(value) - lo) / (hi - lo)

    def grid(self, n: builtins.int) -> list[Any]:
        """``n`` points evenly spaced in the range's own scale, at the centres of ``n`` equal cells (so 2 points
        of [1e-6, 10] are 1e-4.25 and 1e-0.75, not the two extremes; integers deduplicated)."""
        lo, hi = self.forward(self.low), self.forward(self.high)
        points = [self.inverse(lo + (hi - lo) * (i + 0.5) / n) for i in range(n)]
        if self.integer:
            return sorted({round(p) for p in points})
        return points

    # --- Optuna ------------------------------------------------------------------------------------------
    def distribution(self) -> Any:
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.integer:
            return IntDistribution(self.low, self.high, log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def suggest(self, trial: Any, name: str) -> Any:
        if self.integer:
            return trial.suggest_int(name, self.low, self.high, log=self.log)
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    # --- new ranges for the next stage -----------------------------------------------------------------
    def between(self, lo: float, hi: float) -> Range:
        """A range with the same scale and limits over ``[lo, hi]`` (points of the own scale), kept valid."""
        a, b = self.inverse(lo), self.inverse(hi)
        if self.limits is not None:
            a, b = max(a, self.limits[0]), min(b, self.limits[1])
        if self.log:
            a = max(a, 1.0 if self.integer else math.nextafter(0.0, 1.0))
        if self.integer:
            a, b = math.floor(a + 1e-9), math.ceil(b - 1e-9)
            if b <= a:
                b = a + 1
                if self.limits is not None and b > self.limits[1]:
                    a, b = a - 1, a
        elif b <= a:
            b = math.nextafter(a, math.inf)
        return Range(a, b, log=self.log, integer=self.integer, limits=self.limits)


@dataclass(frozen=True)
class Choice:
    """One of a few options (scalars: str, int, float, bool or None), e.g. an activation name."""

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        options = tuple(self.options)
        if not options:
            raise ConfigError("choice: give at least one option, e.g. choice('relu', 'tanh').")
        bad = [o for o in options if not isinstance(o, _SCALARS)]
        if bad:
            raise ConfigError(
                f"choice: options must be str, int, float, bool or None (what Optuna can store), got {bad[0]!r}."
            )
        if len(set(map(repr, options))) != len(options):
            raise ConfigError(f"choice: options must differ, got {list(options)}.")
        object.__setattr__(self, "options", options)

    kind = "choice"
    scale = "categorical"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "choice", "options": list(self.options), "scale": "categorical"}

    def __repr__(self) -> str:
        return f"choice({', '.join(map(repr, self.options))})"

    def grid(self, n: builtins.int = 0) -> list[Any]:
        return list(self.options)

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.options)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, self.options)


Param = Range | Choice


# --- the public constructors: babysit.space.loguniform(...) ---------------------------------------------
def loguniform(low: float, high: float, *, limits: tuple[float, float] | None = None) -> Range:
    """Sample uniformly in log space between ``low`` and ``high`` (values, e.g. ``loguniform(1e-6, 10)``)."""
    return Range(low, high, log=True, limits=limits)


def uniform(low: float, high: float, *, limits: tuple[float, float] | None = None) -> Range:
    """Sample uniformly between ``low`` and ``high`` (dropout, momentum)."""
    return Range(low, high, limits=limits)


def int(low: builtins.int, high: builtins.int, *, limits: tuple[float, float] | None = None) -> Range:
    """An integer uniformly between ``low`` and ``high`` (inclusive)."""
    return Range(low, high, integer=True, limits=limits)


def logint(low: builtins.int, high: builtins.int, *, limits: tuple[float, float] | None = None) -> Range:
    """An integer sampled uniformly in log space (layer widths: 16, 32, ... equally likely per octave)."""
    return Range(low, high, log=True, integer=True, limits=limits)


def choice(*options: Any) -> Choice:
    """One of the given options: ``choice("relu", "tanh")`` or ``choice(["relu", "tanh"])``."""
    if len(options) == 1 and isinstance(options[0], (list, tuple)):
        options = tuple(options[0])
    return Choice(tuple(options))


# --- dicts (TOML tables, search.json) -------------------------------------------------------------------
def param_from_value(name: str, spec: Any) -> Param:
    """Read one parameter: a Param, ``{loguniform = [1e-4, 1]}`` (TOML form) or ``{"kind": ..., ...}`` (JSON)."""
    if isinstance(spec, (Range, Choice)):
        return spec
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"search space {name!r}: expected a range such as {{loguniform = [1e-4, 1]}} or babysit.space.*(...), "
            f"got {spec!r}."
        )
    spec = dict(spec)
    limits = spec.pop("limits", None)
    limits = None if limits is None else tuple(limits)
    if "kind" in spec:  # the JSON form written by to_dict()
        kind = spec.pop("kind")
        spec.pop("scale", None)
        args = spec.get("options") if kind == "choice" else [spec.get("low"), spec.get("high")]
    else:
        kinds = [k for k in spec if k in _KINDS]
        extra = [k for k in spec if k not in _KINDS]
        if len(kinds) != 1 or extra:
            raise ConfigError(
                f"search space {name!r}: give exactly one of {', '.join(_KINDS)} (plus optional limits), "
                f"got keys {sorted(spec) + (['limits'] if limits else [])}."
            )
        kind, args = kinds[0], spec[kinds[0]]
    try:
        if kind == "choice":
            return choice(list(args))
        if kind not in _KINDS:
            raise ConfigError(f"unknown kind {kind!r}; choose one of: {', '.join(_KINDS)}")
        if not isinstance(args, (list, tuple)) or len(args) != 2:
            raise ConfigError(f"{kind} takes [low, high], got {args!r}")
        low, high = args
        return _CONSTRUCTORS[kind](low, high, limits=limits)
    except ConfigError as exc:
        raise ConfigError(f"search space {name!r}: {exc}") from None


def space_from_dict(raw: Mapping[str, Any]) -> dict[str, Param]:
    """Read a whole space (parameter name -> spec); the names are kept in the given order."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            "the search space is empty: give at least one parameter, e.g. "
            "{'optimizer.lr': babysit.space.loguniform(1e-4, 1)} or [search.space] \"optimizer.lr\" = "
            "{loguniform = [1e-4, 1]} in a config."
        )
    return {str(name): param_from_value(str(name), spec) for name, spec in raw.items()}


def space_to_dict(space: Mapping[str, Param]) -> dict[str, dict[str, Any]]:
    """The JSON form of a space (what search.json and the study store)."""
    return {name: param.to_dict() for name, param in space.items()}


_CONSTRUCTORS = {"loguniform": loguniform, "uniform": uniform, "int": int, "logint": logint}

