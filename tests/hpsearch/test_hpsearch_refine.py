"""Boundary warnings (lecture H4) and coarse-to-fine narrowing (H5) on objectives with a known optimum."""

from __future__ import annotations

import math
import random

import pytest

import babysit
from babysit.hpsearch._refine import boundary_findings, edge_of, refine_space, results_depend_on
from babysit.hpsearch.space import Range
from babysit.hpsearch.toys import Peak


@pytest.mark.parametrize(
    ("param", "value", "edge"),
    [
        (Range(1e-5, 1e-1, log=True), 0.08, "high"),  # 97.6% of 4 decades
        (Range(1e-5, 1e-1, log=True), 1.5e-5, "low"),
        (Range(1e-5, 1e-1, log=True), 0.03, None),  # 87%: inside
        (Range(1e-5, 1e-1, log=True), 1e-3, None),
        (Range(0.0, 1.0), 0.95, "high"),
        (Range(0.5, 0.99, limits=(0.0, 0.99)), 0.985, None),  # at a hard limit: cannot widen, no warning
        (Range(16, 512, log=True, integer=True), 500, "high"),
    ],
)
def test_edge_is_measured_in_the_parameters_own_scale(param: Range, value: float, edge: str | None) -> None:
    # "near the edge" = within 10% of the range's width in its own scale (decades for log ranges)
    assert edge_of(param, value) == edge


def test_boundary_finding_names_parameter_value_and_edge() -> None:
    space = {"lr": Range(1e-5, 1e-3, log=True), "reg": Range(1e-6, 1e-1, log=True)}
    findings = boundary_findings(space, {"lr": 9.5e-4, "reg": 1e-4}, stage=1, user_space=space, next_space=None)
    # only lr is at an edge; the finding carries the numbers and says to widen
    assert [f.code for f in findings] == ["best_at_range_edge"]
    f = findings[0]
    assert f.severity == "warning"
    assert f.evidence["param"] == "lr" and f.evidence["edge"] == "high" and f.evidence["bound"] == 1e-3
    assert "lr" in f.message and "high edge" in f.message and "widened past 0.001" in f.suggestion


def test_refine_widens_an_edge_instead_of_narrowing() -> None:
    space = {"lr": Range(1e-5, 1e-3, log=True)}
    top = [{"lr": v} for v in (9.8e-4, 9e-4, 7e-4)]
    nxt = refine_space(space, top, top[0])["lr"]
    # the high side grows by the range's width in decades (at most one decade); the low side narrows
    assert math.isclose(nxt.high, 1e-2) and nxt.low > 1e-5


def test_inner_optimum_no_warning_and_ranges_narrow_around_it() -> None:
    objective = Peak(log={"lr": 1e-2, "reg": 1e-4}, width=0.7)
    space = {"lr": babysit.space.loguniform(1e-6, 1e1), "reg": babysit.space.loguniform(1e-8, 1e0)}
    result = babysit.search(objective, space, budget_epochs=300, epochs=10, seed=1, progress=False)
    # nothing lies at an edge of the user's ranges, so no lecture-H4 warning
    assert not [w for w in result.warnings if w.severity == "warning"]
    lrs = [Range(**{k: v for k, v in s["space"]["lr"].items() if k in ("low", "high")}, log=True)
           for s in result.stages]
    widths = [math.log10(r.high / r.low) for r in lrs]
    # every stage's lr range holds the optimum; stage 2's is narrower than stage 1's (coarse -> fine), stage
    # 3's narrower again only when stage 2's few trials show that their results depend on lr
    assert all(r.low <= 1e-2 <= r.high for r in lrs)
    assert widths[0] > widths[1] >= widths[2]
    # earlier stages' trials stay in the result; the best trial is a full-length one near the optimum
    assert {t.stage for t in result.trials} == {1, 2, 3}
    assert result.best_trial.stage == 3 and abs(math.log10(result.best_params["lr"] / 1e-2)) < 0.5


def test_edge_optimum_warns_and_the_next_stage_widens() -> None:
    # the optimum (lr = 0.1) lies above the user's range [1e-5, 1e-3]
    objective = Peak(log={"lr": 1e-1}, width=1.5)
    space = {"lr": babysit.space.loguniform(1e-5, 1e-3)}
    result = babysit.search(objective, space, budget_epochs=200, epochs=10, seed=0, progress=False)
    # the first stage whose best sits at the high edge (stage 1 with its dozen 1-epoch trials, or stage 2 when
    # stage 1's best landed just inside the edge band) gives a warning naming the parameter, value and edge
    assert result.warnings, "no boundary warning although the optimum lies above the range"
    first = result.warnings[0]
    assert first.code == "best_at_range_edge" and first.severity == "warning"
    assert first.evidence["param"] == "lr" and first.evidence["edge"] == "high"
    assert first.evidence["value"] > 10 ** -3.3 and "lr" in first.message
    # the next stage searches beyond the user's edge, and the search ends above the user's range
    stage = first.evidence["stage"]
    assert stage < len(result.stages)
    assert result.stages[stage]["space"]["lr"]["high"] > 1e-3  # stages[stage] is the next stage (0-based)
    assert first.evidence["next_range"][1] == pytest.approx(result.stages[stage]["space"]["lr"]["high"])
    assert result.best_params["lr"] > 1e-3


def test_one_stage_strategy_warns_with_a_wider_range_to_try() -> None:
    result = babysit.search(
        Peak(log={"lr": 1e-1}), {"lr": babysit.space.loguniform(1e-5, 1e-3)}, strategy="random", trials=30,
        epochs=3, progress=False,
    )
    [warning] = result.warnings
    # no next stage to widen: the suggestion names a wider range to search again
    assert warning.evidence["edge"] == "high" and "next_range" not in warning.evidence
    assert "search again" in warning.suggestion and "0.01" in warning.suggestion


def test_a_range_is_narrowed_only_where_the_results_depend_on_it() -> None:
    param = Range(1e-6, 1.0, log=True)
    values = [10.0 ** (-6 + 6 * i / 19) for i in range(20)]  # the stage's trials, one every 0.32 decades
    # ranked best first: the best around 1e-3 and worse the farther away: the results depend on it
    peaked = sorted(values, key=lambda v: abs(math.log10(v) + 3))
    assert results_depend_on(param, peaked)
    # the same values in a random order: they do not
    shuffled = list(values)
    random.Random(3).shuffle(shuffled)
    assert not results_depend_on(param, shuffled)
    assert not results_depend_on(param, peaked[:3])  # too few trials to tell
    space = {"reg": param}
    top = [{"reg": v} for v in shuffled[:4]]
    # without evidence the range stays as it was; narrowed around the top as before when no ranking is given
    assert refine_space(space, top, top[0], [{"reg": v} for v in shuffled])["reg"] == param
    assert refine_space(space, top, top[0])["reg"] != param
    # with evidence it narrows around the top
    narrowed = refine_space(space, [{"reg": v} for v in peaked[:4]], {"reg": peaked[0]}, [{"reg": v} for v in peaked])
    assert narrowed["reg"].low > 1e-6 and narrowed["reg"].high < 1.0


def test_a_parameter_the_objective_ignores_keeps_its_range() -> None:
    # the result depends on lr only: the 1-epoch stage cannot rank reg, and narrowing around its noise would
    # cut out values the long stages may need; lr's range narrows as before
    objective = Peak(log={"lr": 1e-2}, width=0.7)
    space = {"lr": babysit.space.loguniform(1e-6, 1e1), "reg": babysit.space.loguniform(1e-6, 1e0)}
    result = babysit.search(objective, space, budget_epochs=300, epochs=10, seed=0, progress=False)
    reg_widths = [math.log10(s["space"]["reg"]["high"] / s["space"]["reg"]["low"]) for s in result.stages]
    assert all(width > 5.5 for width in reg_widths), reg_widths
    lr_widths = [math.log10(s["space"]["lr"]["high"] / s["space"]["lr"]["low"]) for s in result.stages]
    assert lr_widths[0] > lr_widths[1] >= lr_widths[2]
