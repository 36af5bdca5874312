"""Checks for the settings of update rules and schedules, with messages that name the fix.

Every check takes ``owner`` (e.g. ``"update rule 'adam'"``), the setting's ``key`` and its ``value``,
returns the value normalised (ints stay ints, numbers become floats) and raises
:class:`~babysit.errors.OptimError` saying what was expected and what came in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from babysit._names import did_you_mean
from babysit.errors import OptimError


def _fail(owner: str, key: str, value: Any, allowed: str, hint: str = "") -> OptimError:
    return OptimError(f"{owner}: {key} must be {allowed}, got {key}={value!r}.{hint}")


def number(owner: str, key: str, value: Any) -> float:
    """Return ``value`` as a finite float, refusing bools, strings and NaN/inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(owner, key, value, "a finite number")
    return float(value)


def positive(owner: str, key: str, value: Any, hint: str = "") -> float:
    """A finite number > 0 (learning rates, eps)."""
    v = number(owner, key, value)
    if v <= 0:
        raise _fail(owner, key, value, "> 0", hint)
    return v


def non_negative(owner: str, key: str, value: Any, hint: str = "") -> float:
    """A finite number >= 0 (weight decay, decay constants, floors)."""
    v = number(owner, key, value)
    if v < 0:
        raise _fail(owner, key, value, ">= 0", hint)
    return v


def interval(
    owner: str, key: str, value: Any, low: float, high: float, *, closed: str = "[)", hint: str = ""
) -> float:
    """A number in an interval; ``closed`` spells its brackets, e.g. ``"[)"`` for ``[low, high)``."""
    v = number(owner, key, value)
    above = v >= low if closed[0] == "[" else v > low
    below = v <= high if closed[1] == "]" else v < high
    if not (above and below):
        raise _fail(owner, key, value, f"in {closed[0]}{low:g}, {high:g}{closed[1]}", hint)
    return v


def integer(owner: str, key: str, value: Any, minimum: int, hint: str = "") -> int:
    """An int >= ``minimum`` (a float with an integral value is accepted, e.g. 5.0 from a config)."""
    ok_type = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not ok_type or value < minimum:
        raise _fail(owner, key, value, f"an integer >= {minimum}", hint)
    return int(value)


def choice(owner: str, key: str, value: Any, options: Iterable[Any]) -> Any:
    """One of ``options``."""
    options = list(options)
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        guess = (
            did_you_mean(value, [o for o in options if isinstance(o, str)]) if isinstance(value, str) else ""
        )
        raise _fail(owner, key, value, f"one of {listed}", guess)
    return value


def flag(owner: str, key: str, value: Any) -> bool:
    """A real bool (not 0/1 or a string)."""
    if not isinstance(value, bool):
        raise _fail(owner, key, value, "True or False")
    return value


def known_settings(
    owner: str, given: Mapping[str, Any], allowed: Iterable[str], aliases: Mapping[str, str] | None = None
) -> None:
    """Refuse settings the owner does not take, listing the ones it does (and torch's other names)."""
    allowed = sorted(allowed)
    for key, value in given.items():
        if key in allowed:
            continue
        hint = did_you_mean(key, allowed)
        if aliases and key in aliases:
            hint = f" {aliases[key]}"
        takes = ", ".join(allowed) if allowed else "no settings"
        raise OptimError(
            f"{owner} does not take the setting {key!r} (got {key}={value!r}); it takes: {takes}.{hint}"
        )
