"""Contract checks every diagnosis rule and every recorded History must pass (optuna-style test suites).

- :func:`check_rule` runs a rule on awkward histories (empty, NaN everywhere, half-recorded, one epoch)
  and asserts it never raises, reports only its own code with a valid severity and a sentence, keeps its
  evidence JSON-ready and leaves the History untouched (rules are pure).
- :func:`check_series_scheme` asserts a History's series follow the documented key scheme: every key is one
  a quantity writes (:mod:`babysit.quantities`).

A new rule adds one parametrize entry: ``@pytest.mark.parametrize("code", RULES)`` then
``check_rule(RULES[code])``.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable

from babysit.diagnose import Rule
from babysit.findings import SEVERITIES
from babysit.history import History
from babysit.quantities import QUANTITIES, Quantity, get
from babysit.quantities._keys import split
from babysit.testing.histories import make_history, mlp_layers

__all__ = ["SERIES_KEY", "check_rule", "check_series_scheme", "edge_histories"]



def _pattern(quantities: Iterable[Quantity]) -> re.Pattern[str]:
    """A regex matching exactly the series keys of ``quantities`` (a target is a name without ``/``)."""
    parts = []
    for q in quantities:
        if q.store != "series":
            continue
        for template in q.keys.values():
            around = split(template)
            head, tail = (template, None) if around is None else around
            parts.append(re.escape(head) if tail is None else f"{re.escape(head)}[^/]+{re.escape(tail)}")
    return re.compile(f"^({'|'.join(parts)})$")


# act/<layer>/<stat>, grad/<param>/<stat>, weight/<param>/norm, ratio/<param>, and the model-level keys: the
# templates of the built-in quantities
SERIES_KEY = _pattern(QUANTITIES.values())


def edge_histories() -> list[tuple[str, History]]:
    """Histories a rule must survive: nothing recorded, NaN everywhere, missing pieces, odd shapes."""
    nan = math.nan
    layers, params = mlp_layers(hidden=3)
    series = [q for q in QUANTITIES.values() if q.store == "series"]
    everything = {q.key(stat, name): [nan, 1.0, math.inf] for q in series if q.scope == "layer"
                  for name in ("fc1", "act1", "fc2", "fc3", "fc4") for stat in q.stats}
    everything |= {q.key(stat, p["name"]): [nan, 0.0, math.inf] for q in series if q.scope == "parameter"
                   for p in params for stat in q.stats}
    everything |= {q.key(stat): [nan, nan, nan] for q in series if q.scope == "model" for stat in q.stats}
    return [
        ("empty", History()),
        ("one epoch", make_history(train_loss=[2.3], val_acc=[0.1], train_acc=[0.1])),
        ("nan losses", make_history(train_loss=[nan, nan, nan], val_acc=[nan] * 3, train_acc=[nan] * 3)),
        ("no epochs, only steps", make_history(step_loss=[2.3, 2.2, 2.1])),
        ("no monitor section", History(epochs=make_history(train_loss=[2.3, 2.0, 1.0]).epochs)),
        ("unknown classes", make_history(train_acc=[0.1] * 4, val_acc=[0.1] * 4, num_classes=None)),
        ("nan and inf series", make_history(train_loss=[2.3, 2.0, 1.5], layers=layers, parameters=params,
                                            series=everything)),
        ("ragged series", make_history(series={get("activation_moments").key("std", "fc1"): {"step": [1, 2, 3],
                                                                                              "value": [1.0]},
                                               get("gradient_norm").key("norm", "fc1.weight"): {"step": [],
                                                                                                 "value": []}})),
        ("zero losses", make_history(train_loss=[0.0, 0.0, 0.0], reg_loss=[0.0, 0.0, 0.0])),
    ]


def check_rule(rule: Rule) -> None:
    """Assert the rule contract on every edge history (raises AssertionError naming the case)."""
    for name, history in edge_histories():
        before = copy.deepcopy(history.to_dict())
        try:
            findings = rule(history)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"rule {rule.code} raised {exc!r} on the {name!r} history") from exc
        assert history.to_dict() == before or _same(history.to_dict(), before), \
            f"rule {rule.code} changed the {name!r} history"
        assert isinstance(findings, list), f"rule {rule.code} returned {type(findings).__name__}, not a list"
        for f in findings:
            assert f.code == rule.code, f"rule {rule.code} reported {f.code!r} on {name!r}"
            assert f.severity in SEVERITIES and f.message, f"rule {rule.code}: bad finding {f!r} on {name!r}"
            json.dumps(f.to_dict(), allow_nan=True)


def _same(a: object, b: object) -> bool:
    """Equality that treats NaN as equal to NaN (deep)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_series_scheme(history: History, quantities: Iterable[Quantity] = ()) -> None:
    """Assert every series key follows the scheme and every series is ``{"step": [...], "value": [...]}``.

    The scheme is the built-in quantities' keys, plus those of ``quantities`` (your own, when recorded).
    """
    extra = list(quantities)
    scheme = _pattern([*QUANTITIES.values(), *extra]) if extra else SERIES_KEY
    for key, column in history.series.items():
        assert scheme.match(key), f"series key {key!r} does not follow the scheme"
        assert set(column) == {"step", "value"}, f"series {key!r} has columns {sorted(column)}"
        assert len(column["step"]) == len(column["value"]), f"series {key!r} has ragged columns"
        assert column["step"] == sorted(column["step"]), f"series {key!r} steps are not increasing"
