"""Search spaces (lecture H2): values on their own scale, validated with messages that say the fix."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import babysit
from babysit.errors import ConfigError
from babysit.hpsearch._refine import refine_space
from babysit.hpsearch.space import Choice, Range, space_from_dict, space_to_dict


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: babysit.space.loguniform(1.0, 1e-3), "low must be < high"),
        (lambda: babysit.space.uniform(0.5, 0.5), "low must be < high"),
        (lambda: babysit.space.loguniform(0.0, 1.0), "needs low > 0"),
        (lambda: babysit.space.loguniform(-1e-3, 1.0), "needs low > 0"),
        (lambda: babysit.space.int(1.5, 4), "must be integers"),
        (lambda: babysit.space.logint(0, 64), "needs low > 0 \\(>= 1 for integers\\).*use int\\(0, 64\\)"),
        (lambda: babysit.space.logint(0.5, 64), "must be integers"),
        (lambda: babysit.space.uniform(0.5, 1.2, limits=(0, 1)), "outside its limits"),
        (lambda: babysit.space.uniform(float("nan"), 1.0), "finite number"),
        (lambda: babysit.space.choice(), "at least one option"),
        (lambda: babysit.space.choice([128, 64], [32]), "options must be str, int, float, bool or None"),
        (lambda: babysit.space.choice("relu", "relu"), "must differ"),
    ],
)
def test_space_rejects_bad_ranges_with_the_fix(build, message) -> None:
    # every bad range is a ConfigError that says what is wrong
    with pytest.raises(ConfigError, match=message):
        build()


def test_space_constructors_are_values_on_their_own_scale() -> None:
    lr = babysit.space.loguniform(1e-6, 1e1)
    width = babysit.space.logint(16, 512)
    # log ranges are written in values and measured in decades / octaves
    assert (lr.low, lr.high, lr.log, lr.kind) == (1e-6, 10.0, True, "loguniform")
    assert lr.position(1e-6) == 0 and lr.position(10.0) == 1
    assert math.isclose(lr.position(10 ** -2.5), 0.5)
    assert width.integer and width.kind == "logint" and width.grid(5) == [23, 45, 91, 181, 362]
    assert babysit.space.choice(["relu", "tanh"]).options == ("relu", "tanh")


def test_space_from_toml_form_and_json_round_trip() -> None:
    raw = {
        "optimizer.lr": {"loguniform": [1e-4, 1]},
        "optimizer.momentum": {"uniform": [0.5, 0.99], "limits": [0, 0.999]},
        "model.hidden": {"logint": [16, 256]},
        "model.activation": {"choice": ["relu", "tanh"]},
    }
    space = space_from_dict(raw)
    # the TOML form reads into ranges, and the JSON form written to search.json reads back the same
    assert space["optimizer.momentum"] == Range(0.5, 0.99, limits=(0.0, 0.999))
    assert space_from_dict(space_to_dict(space)) == space


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "search space is empty"),
        ({"lr": 0.1}, "expected a range"),
        ({"lr": {"log": [1e-4, 1]}}, "give exactly one of"),
        ({"lr": {"loguniform": [1e-4]}}, "takes \\[low, high\\]"),
        ({"lr": {"loguniform": [1, 1e-4]}}, "'lr': loguniform: low must be < high"),
    ],
)
def test_space_from_dict_names_the_parameter(raw, message) -> None:
    # a bad TOML entry names the parameter and the expected form
    with pytest.raises(ConfigError, match=message):
        space_from_dict(raw)


_log_ranges = st.tuples(st.floats(-6, 2), st.floats(0.3, 6)).map(
    lambda t: Range(10 ** t[0], 10 ** (t[0] + t[1]), log=True)
)


@settings(max_examples=60, deadline=None)
@given(param=_log_ranges, fractions=st.lists(st.floats(0.15, 0.85), min_size=1, max_size=6))
@example(param=Range(1.8768842935762187, 18.768842935762187, log=True), fractions=[0.5, 0.15625])  # an ulp below
def test_narrowing_stays_inside_and_shrinks(param: Range, fractions: list[float]) -> None:
    values = [param.inverse(param.forward(param.low) + f * (param.forward(param.high) - param.forward(param.low)))
              for f in fractions]
    best = values[0]
    narrowed = refine_space({"x": param}, [{"x": v} for v in values], {"x": best})["x"]
    # top values away from the edges: the next range lies inside the parent, is narrower, and holds them all
    assert param.low <= narrowed.low < narrowed.high <= param.high * (1 + 1e-12)
    assert narrowed.forward(narrowed.high) - narrowed.forward(narrowed.low) <= (
        param.forward(param.high) - param.forward(param.low)) + 1e-9
    assert all(narrowed.low * (1 - 1e-9) <= v <= narrowed.high * (1 + 1e-9) for v in values)


def test_choice_narrows_to_the_options_of_the_top_trials() -> None:
    space = {"act": Choice(("relu", "tanh", "sigmoid"))}
    # only options that some top trial used survive
    assert refine_space(space, [{"act": "tanh"}, {"act": "relu"}], {"act": "tanh"})["act"].options == ("relu", "tanh")
