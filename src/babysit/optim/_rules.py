"""The lecture's update rules (L-U1..U4, L-P1..P3) by name, built on ``torch.optim``.

Each rule lists its settings with their defaults under the lecture's names (``decay_rate`` is RMSprop's
``beta``, torch's ``alpha``); ``build`` validates them, translates them to torch's keywords and builds
the torch optimizer. The update math is torch's; ``momentum`` and ``nesterov`` use :class:`LectureSGD`
so the velocity follows the lecture when a schedule changes the learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer

from babysit._names import unknown_name
from babysit.errors import OptimError
from babysit.optim import _checks
from babysit.optim._lbfgs import L2LBFGS
from babysit.optim._lecture_momentum import LectureSGD

Maker = Callable[[list[Any], dict[str, Any]], Optimizer]


def _betas(owner: str, key: str, value: Any) -> tuple[float, float]:
    pair = list(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2:
        raise OptimError(f"{owner}: {key} must be a pair (beta1, beta2), got {key}={value!r}.")
    b1, b2 = (_checks.interval(owner, f"{key}[{i}]", b, 0.0, 1.0) for i, b in enumerate(pair))
    return (b1, b2)


_MU_HINT = " The lecture cross-validates mu over 0.5, 0.9, 0.95, 0.99."
# setting -> check(owner, key, value) returning the normalised value
_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "lr": lambda o, k, v: _checks.positive(
        o, k, v, " Try 1e-3 to 1e-1 (lecture: lr = 10 ** uniform(-6, 1))."
    ),
    "momentum": lambda o, k, v: _checks.interval(o, k, v, 0.0, 1.0, hint=_MU_HINT),
    "eps": lambda o, k, v: _checks.positive(o, k, v, " The lecture uses 1e-8 to 1e-4."),
    "decay_rate": lambda o, k, v: _checks.interval(
        o, k, v, 0.0, 1.0, closed="()", hint=" The lecture uses 0.9, 0.99 or 0.999."
    ),
    "betas": _betas,
    "weight_decay": _checks.non_negative,
    "torch_momentum": _checks.flag,
    "history_size": lambda o, k, v: _checks.integer(o, k, v, 1),
    "max_iter": lambda o, k, v: _checks.integer(o, k, v, 1),
    "line_search_fn": lambda o, k, v: _checks.choice(o, k, v, [None, "strong_wolfe"]),
}
# torch's names for settings the lecture names differently, used in the unknown-setting message
_ALIASES = {
    "alpha": "The lecture (and babysit) call RMSprop's alpha 'decay_rate'.",
    "beta1": "Pass betas=(beta1, beta2).",
    "beta2": "Pass betas=(beta1, beta2).",
    "nesterov": "Use the update rule 'nesterov' instead of a flag.",
    "momentum": "Momentum belongs to the rules 'momentum' and 'nesterov' (in Adam, betas[0] plays its part).",
    "dampening": "The lecture's momentum has no dampening; it is always 0.",
}


@dataclass(frozen=True)
class Rule:
    """An update rule: its default lr, its settings with defaults, and how to build it."""

    default_lr: float
    settings: Mapping[str, Any]
    make: Maker
    torch_names: Mapping[str, str] = field(default_factory=dict)


def _sgd_like(nesterov: bool) -> Maker:
    def make(groups: list[Any], kw: dict[str, Any]) -> Optimizer:
        torch_momentum = kw.pop("torch_momentum")
        mus = [g.get("momentum", kw["momentum"]) for g in _as_dicts(groups)] or [kw["momentum"]]
        if nesterov and 0 in mus:
            raise OptimError("update rule 'nesterov': momentum must be in (0, 1), got momentum=0.")
        cls = torch.optim.SGD if torch_momentum else LectureSGD
        return cls(groups, nesterov=nesterov, **kw)

    return make


def _as_dicts(groups: list[Any]) -> list[dict[str, Any]]:
    return [g for g in groups if isinstance(g, dict)]


_SGD_SETTINGS = {"momentum": 0.9, "torch_momentum": False, "weight_decay": 0.0}
_ADAM_SETTINGS = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
RULES: dict[str, Rule] = {
    "sgd": Rule(1e-2, {"weight_decay": 0.0}, lambda g, kw: torch.optim.SGD(g, **kw)),
    "momentum": Rule(1e-2, _SGD_SETTINGS, _sgd_like(nesterov=False)),
    "nesterov": Rule(1e-2, _SGD_SETTINGS, _sgd_like(nesterov=True)),
    "adagrad": Rule(1e-2, {"eps": 1e-8, "weight_decay": 0.0}, lambda g, kw: torch.optim.Adagrad(g, **kw)),
    "rmsprop": Rule(
        1e-2,
        {"decay_rate": 0.99, "eps": 1e-8, "weight_decay": 0.0},
        lambda g, kw: torch.optim.RMSprop(g, **kw),
        {"decay_rate": "alpha"},
    ),
    "adam": Rule(1e-3, _ADAM_SETTINGS, lambda g, kw: torch.optim.Adam(g, **kw)),
    "adamw": Rule(1e-3, {**_ADAM_SETTINGS, "weight_decay": 1e-2}, lambda g, kw: torch.optim.AdamW(g, **kw)),
    "lbfgs": Rule(
        1.0,
        {"history_size": 100, "max_iter": 20, "line_search_fn": None, "weight_decay": 0.0},
        lambda g, kw: L2LBFGS(g, **kw),
    ),
}
NAMES: tuple[str, ...] = tuple(RULES)
_GROUP_ONLY_RULE = {"torch_momentum"}  # rule-wide settings that cannot differ per param group


def _validated(owner: str, rule: Rule, settings: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    _checks.known_settings(owner, settings, allowed, _ALIASES)
    return {rule.torch_names.get(k, k): _CHECKS[k](owner, k, v) for k, v in settings.items()}


def _param_groups(owner: str, rule: Rule, params: Any) -> list[Any]:
    if isinstance(params, torch.nn.Module):
        raise OptimError(f"{owner}: pass model.parameters(), not the model itself ({type(params).__name__}).")
    if isinstance(params, torch.Tensor) or not isinstance(params, Iterable):
        raise OptimError(
            f"{owner}: params must be an iterable of tensors or of param-group dicts, got {params!r}."
        )
    items = list(params)
    if not items:
        raise OptimError(f"{owner}: got no parameters to optimise; is the model empty or all frozen?")
    if not any(isinstance(item, Mapping) for item in items):
        return items
    if not all(isinstance(item, Mapping) and "params" in item for item in items):
        raise OptimError(
            f"{owner}: mix of tensors and param groups; give every group as a dict with 'params'."
        )
    allowed = ({"lr"} | set(rule.settings)) - _GROUP_ONLY_RULE
    groups = []
    for i, item in enumerate(items):
        settings = {k: v for k, v in item.items() if k != "params"}
        groups.append(
            {"params": item["params"], **_validated(f"{owner}, param group {i}", rule, settings, allowed)}
        )
    return groups


def build(
    name: str,
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    *,
    lr: float | None = None,
    **settings: Any,
) -> Optimizer:
    """Build the update rule ``name`` on ``params`` (see :mod:`babysit.optim` for names and settings).

    Raises:
        OptimError: unknown name, unknown setting, or a setting out of its range.
    """
    if not isinstance(name, str) or name not in RULES:
        raise OptimError(unknown_name("update rule", str(name), NAMES))
    rule, owner = RULES[name], f"update rule {name!r}"
    given = {**settings, "lr": rule.default_lr if lr is None else lr}
    kwargs = _validated(owner, rule, {**rule.settings, **given}, {"lr", *rule.settings})
    groups = _param_groups(owner, rule, params)
    try:
        return rule.make(groups, kwargs)
    except (ValueError, TypeError) as err:
        if isinstance(err, OptimError):
            raise
        raise OptimError(f"{owner}: torch.optim refused it: {err}") from err


def build_from_spec(spec: Any, params: Any, lr: float | None = None) -> Optimizer:
    """Build an optimizer from a name, a dict ``{"name": ..., **settings}`` or a built optimizer.

    An ``"lr"`` inside the dict wins over the ``lr`` argument (the dict is the more specific of the two);
    an already-built ``torch.optim.Optimizer`` is returned as is and ``params``/``lr`` are ignored.

    Raises:
        OptimError: the spec is of another type, the dict has no ``"name"``, or ``build`` refuses it.
    """
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str):
        return build(spec, params, lr=lr)
    if isinstance(spec, Mapping):
        settings = dict(spec)
        if "name" not in settings:
            raise OptimError(
                f"an optimizer spec dict needs a 'name' (one of: {', '.join(NAMES)}), got keys "
                f"{sorted(settings)}; e.g. {{'name': 'adam', 'lr': 1e-3}}."
            )
        name = settings.pop("name")
        spec_lr = settings.pop("lr", None)
        return build(name, params, lr=lr if spec_lr is None else spec_lr, **settings)
    raise OptimError(
        f"optimizer must be a name ({', '.join(NAMES)}), a dict with 'name', or a torch.optim.Optimizer; "
        f"got {type(spec).__name__} {spec!r}."
    )
