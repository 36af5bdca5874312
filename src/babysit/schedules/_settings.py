"""Names, default settings and checks of the learning-rate schedules (L-A1..A3).

``resolve`` turns a name and the given settings into the full, validated settings, so that
:func:`~babysit.schedules.build` and :func:`~babysit.schedules.lr_at` refuse the same inputs with the
same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from babysit._names import unknown_name
from babysit.errors import OptimError
from babysit.optim import _checks

REQUIRED: Any = object()  # marks a setting without a default
Resolved = tuple[str, dict[str, Any]]

DEFAULTS: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"every": 5, "factor": 0.5},
    "exponential": {"k": 0.1},
    "inverse_time": {"k": 0.1},
    "plateau": {"factor": 0.5, "patience": 2, "mode": "max", "min_lr": 0.0, "threshold": 1e-4},
    "cosine": {"epochs": REQUIRED, "min_lr": 0.0},
    "warmup": {"epochs": REQUIRED, "then": None, "start_factor": 0.1},
}
NAMES: tuple[str, ...] = tuple(DEFAULTS)
_NOT_FOLLOWERS = ("warmup", "plateau")
# torch's names for settings babysit names after the lecture, used in the unknown-setting message
_ALIASES = {
    "gamma": "babysit calls the decay 'factor' (step, plateau) or 'k' (exponential: lr0 * exp(-k t)).",
    "step_size": "babysit calls it 'every' (epochs between two decays).",
    "T_max": "babysit calls it 'epochs'.",
    "eta_min": "babysit calls it 'min_lr'.",
}


def _follower(owner: str, key: str, value: Any) -> Resolved | None:
    if value is None:
        return None
    name, settings = parse_spec(value, what=f"{owner}: {key}")
    if name in _NOT_FOLLOWERS:
        raise OptimError(
            f"{owner}: {key}={name!r} cannot follow a warm-up (plateau needs the validation metric, which "
            f"torch's SequentialLR cannot pass on); choose one of: "
            f"{', '.join(n for n in NAMES if n not in _NOT_FOLLOWERS)}."
        )
    return resolve(name, settings)


_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "every": lambda o, k, v: _checks.integer(o, k, v, 1, " e.g. every=5 (x0.5 every 5 epochs)."),
    "factor": lambda o, k, v: _checks.interval(o, k, v, 0.0, 1.0, closed="()", hint=" e.g. 0.5 or 0.1."),
    "k": lambda o, k, v: _checks.non_negative(o, k, v, " A negative k would raise the rate."),
    "patience": lambda o, k, v: _checks.integer(o, k, v, 0),
    "mode": lambda o, k, v: _checks.choice(o, k, v, ["max", "min"]),
    "min_lr": _checks.non_negative,
    "threshold": _checks.non_negative,
    "epochs": _checks.positive,
    "start_factor": lambda o, k, v: _checks.interval(o, k, v, 0.0, 1.0, closed="(]"),
    "then": _follower,
}


def parse_spec(spec: Any, *, what: str = "schedule") -> Resolved:
    """Split a name or a dict ``{"name": ..., **settings}`` into the name and its settings."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        settings = dict(spec)
        if "name" not in settings:
            raise OptimError(
                f"{what}: a schedule dict needs a 'name' (one of: {', '.join(NAMES)}), "
                f"got keys {sorted(settings)}; e.g. {{'name': 'step', 'every': 5, 'factor': 0.5}}."
            )
        return settings.pop("name"), settings
    raise OptimError(
        f"{what} must be a schedule name ({', '.join(NAMES)}) or a dict with 'name', got {spec!r}."
    )


def resolve(name: Any, settings: Mapping[str, Any]) -> Resolved:
    """Validate ``settings`` for schedule ``name`` and fill in the defaults.

    Raises:
        OptimError: unknown name, unknown or missing setting, or a value out of range.
    """
    if not isinstance(name, str) or name not in DEFAULTS:
        raise OptimError(unknown_name("schedule", str(name), NAMES))
    owner = f"schedule {name!r}"
    _checks.known_settings(owner, settings, DEFAULTS[name], _ALIASES)
    full = {**DEFAULTS[name], **settings}
    missing = [k for k, v in full.items() if v is REQUIRED]
    if missing:
        raise OptimError(
            f"{owner} needs the setting {missing[0]!r} (how many epochs it lasts), "
            f"e.g. {{'name': {name!r}, {missing[0]!r}: 10}}."
        )
    return name, {k: _CHECKS[k](owner, k, v) for k, v in full.items()}
