"""Contract checks every diagnosis rule and every recorded History must pass (optuna-style test suites).

- :func:`check_rule` runs a rule on awkward histories (empty, NaN everywhere, half-recorded, one epoch)
  and asserts it never raises, reports only its own code with a valid severity and a sentence, keeps its
  evidence JSON-ready and leaves the History untouched (rules are pure).
- :func:`check_series_scheme` asserts a History's series follow the documented key scheme.

A new rule adds one parametrize entry: ``@pytest.mark.parametrize("code", RULES)`` then
``check_rule(RULES[code])``.
"""

from __future__ import annotations

import copy
import json
import math
import re

from babysit.diagnose import Rule
from babysit.findings import SEVERITIES
from babysit.history import History
from babysit.testing.histories import make_history, mlp_layers

__all__ = ["SERIES_KEY", "check_rule", "check_series_scheme", "edge_histories"]

# act/<layer>/<stat>, grad/<param>/<stat>, weight/<param>/norm, ratio/<param>, and the model-level keys
SERIES_KEY = re.compile(
    r"^(act/[^/]+/(mean|std|dead|saturated)|grad/[^/]+/(norm|std)|grad/carry|weight/[^/]+/norm|ratio/[^/]+"
    r"|input/(mean|std)|output/(min|max|rowsum_err)|eval/(disagreement|disagreement_train_mode))$"
)


def edge_histories() -> list[tuple[str, History]]:
    """Histories a rule must survive: nothing recorded, NaN everywhere, missing pieces, odd shapes."""
    nan = math.nan
    layers, params = mlp_layers(hidden=3)
    everything = {f"act/{name}/{stat}": [nan, 1.0, math.inf] for name in ("fc1", "act1", "fc2", "fc3", "fc4")
                  for stat in ("mean", "std", "dead", "saturated")}
    everything |= {f"{kind}/{p['name']}{tail}": [nan, 0.0, math.inf] for p in params
                   for kind, tail in (("grad", "/norm"), ("grad", "/std"), ("weight", "/norm"), ("ratio", ""))}
    everything |= {k: [nan, nan, nan] for k in ("grad/carry", "input/mean", "input/std", "output/min",
                                                "output/rowsum_err", "eval/disagreement")}
    return [
        ("empty", History()),
        ("one epoch", make_history(train_loss=[2.3], val_acc=[0.1], train_acc=[0.1])),
        ("nan losses", make_history(train_loss=[nan, nan, nan], val_acc=[nan] * 3, train_acc=[nan] * 3)),
        ("no epochs, only steps", make_history(step_loss=[2.3, 2.2, 2.1])),
        ("no monitor section", History(epochs=make_history(train_loss=[2.3, 2.0, 1.0]).epochs)),
        ("unknown classes", make_history(train_acc=[0.1] * 4, val_acc=[0.1] * 4, num_classes=None)),
        ("nan and inf series", make_history(train_loss=[2.3, 2.0, 1.5], layers=layers, parameters=params,
                                            series=everything)),
        ("ragged series", make_history(series={"act/fc1/std": {"step": [1, 2, 3], "value": [1.0]},
                                               "grad/fc1.weight/norm": {"step": [], "value": []}})),
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


def check_series_scheme(history: History) -> None:
    """Assert every series key follows the scheme and every series is ``{"step": [...], "value": [...]}``."""
    for key, column in history.series.items():
        assert SERIES_KEY.match(key), f"series key {key!r} does not follow the scheme"
        assert set(column) == {"step", "value"}, f"series {key!r} has columns {sorted(column)}"
        assert len(column["step"]) == len(column["value"]), f"series {key!r} has ragged columns"
        assert column["step"] == sorted(column["step"]), f"series {key!r} steps are not increasing"
