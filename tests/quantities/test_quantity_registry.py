"""The registry and the contract of a quantity: names, the keys babysit has always written, choosing and
skipping quantities, and what a bad choice says."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from babysit import Monitor
from babysit.errors import ConfigError
from babysit.quantities import (
    DEFAULT,
    QUANTITIES,
    SCOPES,
    SOURCES,
    LayerQuantity,
    Measurement,
    Quantity,
    parse_key,
    resolve,
)
from babysit.quantities._registry import check

# the series and histogram keys of every built-in, exactly as history.json files, the report and TensorBoard
# have always had them
LEGACY_KEYS = {
    "activation_moments": {"mean": "act/{target}/mean", "std": "act/{target}/std"},
    "dead_fraction": {"dead": "act/{target}/dead"},
    "saturation": {"saturated": "act/{target}/saturated"},
    "activation_histogram": {"histogram": "act/{target}"},
    "input_moments": {"mean": "input/mean", "std": "input/std"},
    "output_range": {"min": "output/min", "max": "output/max", "rowsum_err": "output/rowsum_err"},
    "gradient_norm": {"norm": "grad/{target}/norm"},
    "gradient_std": {"std": "grad/{target}/std"},
    "gradient_carry": {"carry": "grad/carry"},
    "gradient_histogram": {"histogram": "grad/{target}"},
    "update_ratio": {"ratio": "ratio/{target}", "weight_norm": "weight/{target}/norm"},
    "eval_disagreement": {"eval_mode": "eval/disagreement", "train_mode": "eval/disagreement_train_mode"},
}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def test_builtins_keep_the_legacy_keys_and_pass_their_own_contract() -> None:
    assert tuple(QUANTITIES) == DEFAULT and set(DEFAULT) == set(LEGACY_KEYS)
    for name, q in QUANTITIES.items():
        assert check(q) is q and q.name == name
        assert dict(q.keys) == LEGACY_KEYS[name]
        assert q.needs in SOURCES and q.scope in SCOPES


@pytest.mark.parametrize("name", sorted(QUANTITIES))
def test_keys_round_trip(name: str) -> None:
    q = QUANTITIES[name]
    target = None if q.scope == "model" else "block.0/fc#2"  # names may hold dots, slashes and call numbers
    for stat in q.stats:
        key = q.key(stat, target)
        # a key parses back to its quantity, stat and target, and to no other built-in
        assert q.parse(key) == (stat, target)
        assert parse_key(key, q.store)[0] is q  # type: ignore[index]
        others = [o.name for o in QUANTITIES.values() if o is not q and o.store == q.store and o.parse(key)]
        assert others == []


def test_a_key_asks_for_a_known_stat_and_the_right_target() -> None:
    q = QUANTITIES["update_ratio"]
    assert q.key(target="fc1.weight") == "ratio/fc1.weight"  # the first stat is the primary one
    with pytest.raises(ValueError, match="weight_norm"):
        q.key("norm", "fc1.weight")
    with pytest.raises(ValueError, match="needs a target"):
        q.key("ratio")
    with pytest.raises(ValueError, match="takes no target"):
        QUANTITIES["gradient_carry"].key(target="fc1.bias")


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    for kwargs in ({"quantities": ["dead_fractoin"]}, {"skip": ["dead_fractoin"]}):
        with pytest.raises(ConfigError) as caught:
            Monitor(_net(), **kwargs)
        # the bad name, every known name, and the closest match
        message = str(caught.value)
        assert "'dead_fractoin'" in message and all(name in message for name in DEFAULT)
        assert "Did you mean 'dead_fraction'?" in message


def test_entries_that_are_not_quantities_are_refused() -> None:
    class NoName(LayerQuantity):
        keys: ClassVar[dict[str, str]] = {"x": "act/{target}/x"}

        def measure(self, source: Any) -> Measurement:
            return Measurement()

        def reduce(self, scalars: Any, vector: Any, context: Any) -> dict[str, float]:
            return {}

    class ModelKey(NoName):
        name = "layer_total"
        keys: ClassVar[dict[str, str]] = {"total": "act/total"}  # a layer quantity needs a {target} in its keys

    class NoFamily(Quantity):
        name = "floating"
        needs, scope, keys = "activations", "layer", {"x": "act/{target}/x"}

        def measure(self, source: Any) -> Measurement:
            return Measurement()

        def reduce(self, scalars: Any, vector: Any, context: Any) -> dict[str, float]:
            return {}

    for bad, words in ((42, "a quantity is a name"), (NoName, "snake_case"), (ModelKey, "{target}"),
                       (NoFamily, "must subclass one of")):
        with pytest.raises(ConfigError, match="quantit"):
            resolve([bad])
        with pytest.raises(ConfigError) as caught:
            Monitor(_net(), quantities=[bad])
        assert words in str(caught.value)


def test_resolve_defaults_skip_and_duplicates() -> None:
    assert [q.name for q in resolve()] == list(DEFAULT)
    assert [q.name for q in resolve(skip=["dead_fraction", QUANTITIES["saturation"]])] == \
        [n for n in DEFAULT if n not in ("dead_fraction", "saturation")]
    # a single name, a class and an instance mean the same built-in, kept once
    same = resolve(["update_ratio", type(QUANTITIES["update_ratio"]), QUANTITIES["update_ratio"]])
    assert same == [QUANTITIES["update_ratio"]]
    assert resolve("gradient_norm") == [QUANTITIES["gradient_norm"]]


def test_monitor_records_only_what_it_can_measure() -> None:
    model = _net()
    monitor = Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), skip=["update_ratio"])
    assert "update_ratio" not in monitor.history.sections["monitor"]["quantities"]
    # without layer hooks there are no layer outputs, model inputs or outputs, nor the bias' incoming gradient;
    # without histogram steps no histogram-step quantity
    section = Monitor(_net(), activations=False, histograms_every=0).history.sections["monitor"]
    assert section["quantities"] == ["gradient_norm", "update_ratio", "eval_disagreement"]
