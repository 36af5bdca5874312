"""Bad update rules, schedules and settings get an OptimError that names the problem and the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from babysit import optim, schedules
from babysit.errors import BabysitError, OptimError

W = torch.zeros(2, requires_grad=True)


def _opt() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


OPTIM_CASES: list[tuple[Callable[[], Any], list[str]]] = [
    (
        lambda: optim.build("adma", [W]),
        ["unknown update rule 'adma'", "adagrad, adam", "Did you mean 'adam'?"],
    ),
    (lambda: optim.build("adam", [W], lr=0), ["lr must be > 0", "got lr=0"]),
    (lambda: optim.build("sgd", [W], lr=-0.01), ["lr must be > 0", "got lr=-0.01"]),
    (lambda: optim.build("momentum", [W], momentum=1.0), ["momentum must be in [0, 1)", "got momentum=1.0"]),
    (
        lambda: optim.build("momentum", [W], momentum=-0.1),
        ["momentum must be in [0, 1)", "got momentum=-0.1"],
    ),
    (lambda: optim.build("nesterov", [W], momentum=0), ["'nesterov'", "momentum must be in (0, 1)"]),
    (lambda: optim.build("adagrad", [W], eps=0), ["eps must be > 0", "got eps=0"]),
    (
        lambda: optim.build("rmsprop", [W], decay_rate=1.0),
        ["decay_rate must be in (0, 1)", "got decay_rate=1.0"],
    ),
    (lambda: optim.build("rmsprop", [W], decay_rate=0), ["decay_rate must be in (0, 1)", "got decay_rate=0"]),
    (lambda: optim.build("adam", [W], betas=(0.9, 1.2)), ["betas[1] must be in [0, 1)", "got betas[1]=1.2"]),
    (lambda: optim.build("adam", [W], betas=0.9), ["betas must be a pair"]),
    (lambda: optim.build("sgd", [W], weight_decay=-1), ["weight_decay must be >= 0"]),
    (lambda: optim.build("momentum", [W], torch_momentum="yes"), ["torch_momentum must be True or False"]),
    (
        lambda: optim.build("adam", [W], momentum=0.9),
        ["'adam' does not take the setting 'momentum'", "got momentum=0.9", "betas, eps, lr, weight_decay"],
    ),
    (lambda: optim.build("rmsprop", [W], alpha=0.9), ["setting 'alpha'", "'decay_rate'"]),
    (lambda: optim.build("lbfgs", [W], history_size=0), ["history_size must be an integer >= 1"]),
    (
        lambda: optim.build("lbfgs", [{"params": [W]}, {"params": [torch.zeros(1, requires_grad=True)]}]),
        ["'lbfgs'", "per-parameter options"],
    ),
    (lambda: optim.build("sgd", torch.nn.Linear(2, 2)), ["pass model.parameters()"]),
    (lambda: optim.build("sgd", []), ["got no parameters"]),
    (lambda: optim.build("sgd", [{"params": [W], "lr": 0}]), ["param group 0", "lr must be > 0"]),
    (lambda: optim.build("sgd", [{"params": [W], "momentum": 0.9}]), ["param group 0", "setting 'momentum'"]),
    (lambda: optim.build_from_spec({"lr": 0.1}, [W]), ["needs a 'name'", "got keys ['lr']"]),
    (lambda: optim.build_from_spec(42, [W]), ["optimizer must be a name", "got int 42"]),
]


@pytest.mark.parametrize(("call", "parts"), OPTIM_CASES)
def test_optim_bad_input_names_the_problem(call: Callable[[], Any], parts: list[str]) -> None:
    with pytest.raises(OptimError) as info:
        call()
    # the message says what came in and what is allowed
    for part in parts:
        assert part in str(info.value)
    assert isinstance(info.value, BabysitError)


SCHEDULE_CASES: list[tuple[Callable[[], Any], list[str]]] = [
    (lambda: schedules.build("stepp", _opt()), ["unknown schedule 'stepp'", "Did you mean 'step'?"]),
    (lambda: schedules.build("step", _opt(), factor=1.5), ["factor must be in (0, 1)", "got factor=1.5"]),
    (lambda: schedules.build("plateau", _opt(), factor=0), ["factor must be in (0, 1)", "got factor=0"]),
    (lambda: schedules.build("step", _opt(), every=0), ["every must be an integer >= 1", "got every=0"]),
    (lambda: schedules.build("exponential", _opt(), k=-0.1), ["k must be >= 0", "got k=-0.1"]),
    (lambda: schedules.lr_at("inverse_time", 0.1, 1, k=-1), ["k must be >= 0"]),
    (lambda: schedules.build("step", _opt(), gamma=0.5), ["does not take the setting 'gamma'", "'factor'"]),
    (lambda: schedules.build("cosine", _opt()), ["'cosine' needs the setting 'epochs'"]),
    (lambda: schedules.build("cosine", _opt(), epochs=5, min_lr=1.0), ["min_lr must be <= the initial lr"]),
    (lambda: schedules.build("plateau", _opt(), mode="maximum"), ["mode must be one of 'max', 'min'"]),
    (lambda: schedules.build("plateau", _opt(), patience=-1), ["patience must be an integer >= 0"]),
    (
        lambda: schedules.build("warmup", _opt(), epochs=1, then="plateau"),
        ["'plateau' cannot follow a warm-up"],
    ),
    (lambda: schedules.build("warmup", _opt(), epochs=1, then="expo"), ["unknown schedule 'expo'"]),
    (lambda: schedules.build("warmup", _opt(), epochs=1, then={"every": 2}), ["needs a 'name'"]),
    (lambda: schedules.build("warmup", _opt(), epochs=0.3, steps_per_epoch=2), ["whole number of steps"]),
    (lambda: schedules.build("warmup", _opt(), epochs=1, start_factor=0), ["start_factor must be in (0, 1]"]),
    (lambda: schedules.build("step", _opt(), steps_per_epoch=0), ["steps_per_epoch must be an integer >= 1"]),
    (lambda: schedules.build("step", "sgd"), ["needs a torch.optim.Optimizer", "got str"]),
    (lambda: schedules.lr_at("step", 0.1, -1), ["t must be >= 0"]),
    (lambda: schedules.build_from_spec(3, _opt()), ["schedule must be a schedule name"]),
]


@pytest.mark.parametrize(("call", "parts"), SCHEDULE_CASES)
def test_schedule_bad_input_names_the_problem(call: Callable[[], Any], parts: list[str]) -> None:
    with pytest.raises(OptimError) as info:
        call()
    # the message says what came in and what is allowed
    for part in parts:
        assert part in str(info.value)
