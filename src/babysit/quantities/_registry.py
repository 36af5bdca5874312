"""The built-in quantities by name, and how a name, a class or an instance becomes a checked quantity.

``QUANTITIES`` maps every built-in name to its (stateless) instance, in the order the Monitor records them;
``DEFAULT`` is all of them. :func:`resolve` turns ``Monitor(quantities=..., skip=...)`` into the list to
record and says what is wrong with a bad entry (an unknown name lists the known ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Union

from babysit._names import unknown_name
from babysit.errors import ConfigError
from babysit.quantities import _keys
from babysit.quantities._base import SCOPES, SOURCES, STORES, Quantity
from babysit.quantities._families import FAMILIES
from babysit.quantities.activations import ActivationHistogram, ActivationMoments, DeadFraction, Saturation
from babysit.quantities.evaluation import EvalDisagreement
from babysit.quantities.gradients import GradientCarry, GradientHistogram, GradientNorm, GradientStd
from babysit.quantities.model_io import InputMoments, OutputRange
from babysit.quantities.updates import UpdateRatio

QuantityLike = Union[str, type[Quantity], Quantity]  # noqa: UP007 (a runtime alias)

BUILTIN: tuple[type[Quantity], ...] = (
    ActivationMoments, DeadFraction, Saturation, ActivationHistogram, InputMoments, OutputRange,
    GradientNorm, GradientStd, GradientCarry, GradientHistogram, UpdateRatio, EvalDisagreement,
)
QUANTITIES: dict[str, Quantity] = {cls.name: cls() for cls in BUILTIN}
_BY_CLASS: dict[type[Quantity], Quantity] = {type(q): q for q in QUANTITIES.values()}
DEFAULT: tuple[str, ...] = tuple(QUANTITIES)
_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def get(spec: QuantityLike) -> Quantity:
    """The quantity a name (built-ins only), a Quantity subclass or an instance stands for, checked."""
    if isinstance(spec, type) and spec in _BY_CLASS:  # a built-in's class: what the rules ask with
        return _BY_CLASS[spec]
    if isinstance(spec, str):
        if spec not in QUANTITIES:
            raise ConfigError(unknown_name("quantity", spec, QUANTITIES))
        return QUANTITIES[spec]
    if isinstance(spec, type) and issubclass(spec, Quantity):
        builtin = QUANTITIES.get(getattr(spec, "name", ""))
        if builtin is not None and type(builtin) is spec:
            return builtin
        try:
            spec = spec()
        except TypeError as exc:
            raise ConfigError(f"quantity class {spec.__name__} cannot be built without arguments ({exc}); "
                              "pass an instance instead") from None
    if isinstance(spec, Quantity):
        return check(spec)
    raise ConfigError(f"a quantity is a name ({', '.join(DEFAULT)}), a babysit.quantities.Quantity subclass or "
                      f"an instance of one; got {spec!r}")


def name_of(spec: QuantityLike) -> str:
    """The name of a quantity given by name, class or instance (a name is checked against the built-ins)."""
    if isinstance(spec, str):
        return get(spec).name
    if isinstance(spec, (Quantity, type)) and isinstance(getattr(spec, "name", None), str):
        return spec.name  # type: ignore[union-attr]
    return get(spec).name


def resolve(quantities: QuantityLike | Iterable[QuantityLike] | None = None,
            skip: QuantityLike | Iterable[QuantityLike] = ()) -> list[Quantity]:
    """The quantities to record: ``quantities`` (None: ``DEFAULT``) less those named in ``skip``, once each.

    Raises:
        ConfigError: an unknown name (in either), an entry that is not a quantity, an invalid quantity, or two
            different quantities under one name.
    """
    chosen = [get(q) for q in _as_list(DEFAULT if quantities is None else quantities)]
    left_out = {name_of(s) for s in _as_list(skip)}
    out: dict[str, Quantity] = {}
    for q in chosen:
        seen = out.get(q.name)
        if seen is not None and type(seen) is not type(q):
            raise ConfigError(f"two different quantities are named {q.name!r} ({type(seen).__name__} and "
                              f"{type(q).__name__}); give one another name")
        if q.name not in left_out:
            out.setdefault(q.name, q)
    return list(out.values())


def check(q: Quantity) -> Quantity:
    """Assert that ``q`` is a quantity the Monitor can record; ConfigError saying what is wrong otherwise."""
    cls = type(q).__name__
    name = getattr(q, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"quantity {cls} needs a snake_case class attribute `name`, got {name!r}")
    if not isinstance(q, FAMILIES):
        raise ConfigError(f"quantity {name!r} must subclass one of {', '.join(f.__name__ for f in FAMILIES)} "
                          "(the family says what its measure() is given)")
    if q.needs not in SOURCES or q.scope not in SCOPES or q.store not in STORES:
        raise ConfigError(f"quantity {name!r}: needs must be one of {SOURCES}, scope one of {SCOPES}, store one of "
                          f"{STORES}; got needs={q.needs!r}, scope={q.scope!r}, store={q.store!r}")
    keys = getattr(q, "keys", None)
    if not isinstance(keys, Mapping) or not keys or not all(isinstance(k, str) and isinstance(t, str)
                                                         for k, t in keys.items()):
        raise ConfigError(f"quantity {name!r} needs `keys`, a non-empty dict {{stat: key template}}, got {keys!r}")
    for stat, template in keys.items():
        targeted = _keys.PLACEHOLDER in template
        if targeted == (q.scope == "model"):
            want = "no {target} (one series for the model)" if q.scope == "model" else "a {target} placeholder"
            raise ConfigError(f"quantity {name!r} has scope {q.scope!r}, so the key of {stat!r} needs {want}; "
                              f"got {template!r}")
        _keys.split(template)  # one placeholder at most
    return q


def parse_key(key: str, store: str = "series",
              among: Iterable[Quantity] | None = None) -> tuple[Quantity, str, str | None] | None:
    """``(quantity, stat, target)`` of a recorded key (built-ins unless ``among`` is given), else None."""
    for q in QUANTITIES.values() if among is None else among:
        if q.store == store:
            found = q.parse(key)
            if found is not None:
                return q, found[0], found[1]
    return None


def _as_list(value: QuantityLike | Iterable[QuantityLike]) -> list[QuantityLike]:
    if isinstance(value, (str, Quantity)) or (isinstance(value, type) and issubclass(value, Quantity)):
        return [value]
    try:
        return list(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"quantities must be a list of names, Quantity classes or instances; got {value!r}") from None
