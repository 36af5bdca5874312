"""Every schedule's learning rate equals its formula (lr_at) and hand-computed values (L-A1..A3)."""

from __future__ import annotations

import io
import itertools
import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from babysit import schedules
from babysit.errors import OptimError

LR0 = 0.1
WARMUP_THEN_STEP = {"epochs": 2, "start_factor": 0.25, "then": {"name": "step", "every": 3, "factor": 0.5}}
# name, settings, lr at epochs 0..7 by hand
PER_EPOCH = [
    ("constant", {}, [0.1] * 8),
    ("step", {"every": 3, "factor": 0.5}, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]),
    ("exponential", {"k": math.log(2)}, [0.1 / 2**t for t in range(8)]),
    ("inverse_time", {"k": 0.5}, [0.1, 0.1 / 1.5, 0.05, 0.04, 0.1 / 3, 0.1 / 3.5, 0.025, 0.1 / 4.5]),
    (
        "cosine",
        {"epochs": 4, "min_lr": 0.01},
        [
            0.1,
            0.01 + 0.09 * (1 + 0.5**0.5) / 2,
            0.055,
            0.01 + 0.09 * (1 - 0.5**0.5) / 2,
            0.01,
            0.01,
            0.01,
            0.01,
        ],
    ),
    ("warmup", WARMUP_THEN_STEP, [0.025, 0.0625, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05]),
    ("warmup", {"epochs": 4, "start_factor": 0.5}, [0.05, 0.0625, 0.075, 0.0875, 0.1, 0.1, 0.1, 0.1]),
]
# name, settings, lr at steps 0..11 with 4 steps per epoch (t = step / 4) by hand
PER_BATCH = [
    ("step", {"every": 1, "factor": 0.5}, [0.1] * 4 + [0.05] * 4 + [0.025] * 4),
    ("exponential", {"k": 4 * math.log(2)}, [0.1 / 2**s for s in range(12)]),
    ("inverse_time", {"k": 4.0}, [0.1 / (1 + s) for s in range(12)]),
    ("cosine", {"epochs": 2}, [0.05 * (1 + math.cos(math.pi * min(s, 8) / 8)) for s in range(12)]),
    (
        "warmup",
        {"epochs": 1, "start_factor": 0.2, "then": "inverse_time"},
        [0.02, 0.04, 0.06, 0.08] + [0.1 / (1 + 0.1 * s / 4) for s in range(8)],
    ),
]


def sgd(*lrs: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs])


def rates(sched: Any, opt: torch.optim.Optimizer, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(("name", "settings_", "expected"), PER_EPOCH)
def test_schedule_per_epoch_matches_formula(
    name: str, settings_: dict[str, Any], expected: list[float]
) -> None:
    opt = sgd(LR0)
    got = rates(schedules.build(name, opt, **settings_), opt, len(expected))
    # torch's scheduler, the closed form and the hand-computed values agree at every epoch
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx([schedules.lr_at(name, LR0, t, **settings_) for t in range(8)], rel=1e-12)


@pytest.mark.parametrize(("name", "settings_", "expected"), PER_BATCH)
def test_schedule_per_batch_uses_fractional_epochs(
    name: str, settings_: dict[str, Any], expected: list[float]
) -> None:
    opt = sgd(LR0)
    got = rates(schedules.build(name, opt, steps_per_epoch=4, **settings_), opt, len(expected))
    # after s steps the schedule is at t = s / 4 epochs
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(
        [schedules.lr_at(name, LR0, s / 4, **settings_) for s in range(12)], rel=1e-12
    )


def test_schedule_scales_each_param_group_from_its_own_lr() -> None:
    opt = sgd(0.1, 0.02)
    sched = schedules.build("cosine", opt, epochs=4, min_lr=0.01)
    for _ in range(2):
        opt.step()
        sched.step()
    # half way: the middle between each group's lr0 and the shared absolute floor
    assert sched.get_last_lr() == pytest.approx([0.055, 0.015], rel=1e-12)


def test_plateau_halves_after_patience_epochs_without_improvement() -> None:
    opt = sgd(LR0)
    sched = schedules.build("plateau", opt, patience=2, steps_per_epoch=10)
    got = []
    for val_acc in [0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7]:
        sched.step(val_acc)
        got.append(opt.param_groups[0]["lr"])
    # 2 flat epochs are tolerated; the 3rd in a row halves the rate (torch's patience), once per epoch
    assert got == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025]


def test_warmup_then_step_resumes_from_a_weights_only_checkpoint() -> None:
    opt = sgd(LR0)
    sched = schedules.build("warmup", opt, steps_per_epoch=2, **WARMUP_THEN_STEP)
    rates(sched, opt, 5)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    opt2 = sgd(LR0)
    sched2 = schedules.build("warmup", opt2, steps_per_epoch=2, **WARMUP_THEN_STEP)
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    # the resumed schedule continues where the first one is
    assert rates(sched2, opt2, 9) == rates(sched, opt, 9)


def test_build_from_spec_accepts_none_name_dict_and_built() -> None:
    opt = sgd(LR0)
    assert schedules.build_from_spec(None, opt) is None
    built = schedules.build_from_spec({"name": "step", "every": 2}, opt, steps_per_epoch=3)
    assert isinstance(built, torch.optim.lr_scheduler.StepLR) and built.step_size == 6
    assert schedules.build_from_spec(built, opt) is built
    assert isinstance(schedules.build_from_spec("plateau", opt), torch.optim.lr_scheduler.ReduceLROnPlateau)


DECAYS = st.one_of(
    st.tuples(
        st.just("step"), st.fixed_dictionaries({"every": st.integers(1, 6), "factor": st.floats(0.01, 0.99)})
    ),
    st.tuples(st.just("exponential"), st.fixed_dictionaries({"k": st.floats(0, 5)})),
    st.tuples(st.just("inverse_time"), st.fixed_dictionaries({"k": st.floats(0, 5)})),
    st.tuples(
        st.just("cosine"), st.fixed_dictionaries({"epochs": st.floats(0.5, 8), "min_lr": st.floats(0, 1e-6)})
    ),
)


@settings(max_examples=60, deadline=None)
@given(DECAYS, st.floats(1e-5, 10), st.integers(1, 4))
def test_decay_schedules_never_increase(decay: tuple[str, dict[str, Any]], lr0: float, spe: int) -> None:
    name, settings_ = decay
    opt = sgd(lr0)
    got = rates(schedules.build(name, opt, steps_per_epoch=spe, **settings_), opt, 40)
    # each rate is at most the previous one (up to float rounding of the closed forms)
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(got))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30), st.integers(0, 3), st.sampled_from(["max", "min"]))
def test_plateau_never_increases(metrics: list[float], patience: int, mode: str) -> None:
    opt = sgd(LR0)
    sched = schedules.build("plateau", opt, patience=patience, mode=mode)
    got = []
    for m in metrics:
        sched.step(m)
        got.append(opt.param_groups[0]["lr"])
    # whatever the validation accuracy does, the rate only goes down
    assert all(b <= a for a, b in itertools.pairwise([LR0, *got]))


def test_lr_at_refuses_plateau() -> None:
    # the plateau rate depends on validation accuracy, not on t
    with pytest.raises(OptimError, match="no closed form"):
        schedules.lr_at("plateau", 0.1, 3)
