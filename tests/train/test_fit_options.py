"""What real runs need inside the step: gradient accumulation, gradient clipping, fp16 with a GradScaler."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import babysit
from babysit import models
from babysit.config import config_from_dict
from babysit.errors import ConfigError


def _mlp(digits, hidden=(32,)):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=list(hidden), seed=0)


def test_accumulated_micro_batches_give_the_whole_batch_update(digits) -> None:
    settings = dict(optimizer="momentum", lr=0.05, reg=1e-3, epochs=2, batch_size=64, seed=1, monitor=False)
    whole, parts = _mlp(digits), _mlp(digits)
    h_whole = babysit.fit(whole, digits, **settings)
    h_parts = babysit.fit(parts, digits, options={"accumulate": 4}, **settings)
    # four micro-batches of 16, each loss weighted by its share, update exactly as one batch of 64 would
    for a, b in zip(whole.parameters(), parts.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert h_parts.steps["loss"] == pytest.approx(h_whole.steps["loss"], rel=1e-4)
    assert len(h_parts.steps["step"]) == len(h_whole.steps["step"])  # a step is an update, not a micro-batch


class StepSizes(babysit.Callback):
    """The norm of every update the optimizer took (a host read per step: fine in a test)."""

    def on_fit_start(self, run) -> None:
        self.before = [p.detach().clone() for p in run.model.parameters()]
        self.sizes: list[float] = []

    def on_step_end(self, run, loss) -> None:
        now = [p.detach() for p in run.model.parameters()]
        self.sizes.append(float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(a - b) for a, b in zip(now, self.before)]))))
        self.before = [p.clone() for p in now]


def test_clipping_bounds_every_update(digits) -> None:
    lr, clip = 0.5, 0.01
    clipped, free = StepSizes(), StepSizes()
    babysit.fit(_mlp(digits), digits, optimizer="sgd", lr=lr, epochs=1, callbacks=[clipped],
                options={"clip_grad_norm": clip})
    babysit.fit(_mlp(digits), digits, optimizer="sgd", lr=lr, epochs=1, callbacks=[free])
    # plain SGD moves the weights by lr * |g|, and |g| <= clip after clipping
    assert max(clipped.sizes) <= lr * clip * (1 + 1e-4)
    assert max(free.sizes) > 10 * lr * clip


def test_fp16_trains_with_a_grad_scaler_that_is_checkpointed(digits, tmp_path: Path) -> None:
    h = babysit.fit(_mlp(digits, hidden=(64,)), digits, optimizer="nesterov", lr=0.05, epochs=3, run_dir=tmp_path,
                    options={"precision": "fp16"}, monitor={"every": 5})
    assert h.status == "completed" and h.best_val_acc > 0.85
    payload = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert payload["scaler"]["scale"] > 1  # the loss scale travels with the run
    # the monitor sees unscaled gradients: the same order as an fp32 run's, not 2**16 times larger
    ref = babysit.fit(_mlp(digits, hidden=(64,)), digits, optimizer="nesterov", lr=0.05, epochs=1,
                      monitor={"every": 5})
    fp16_first = h.series["grad/fc1.weight/norm"]["value"][0]
    fp32_first = ref.series["grad/fc1.weight/norm"]["value"][0]
    assert 0.5 < fp16_first / fp32_first < 2
    resumed = babysit.fit(_mlp(digits, hidden=(64,)), digits, optimizer="nesterov", lr=0.05, epochs=4,
                          run_dir=tmp_path, resume=True, options={"precision": "fp16"}, monitor={"every": 5})
    assert resumed.status == "completed" and len(resumed.epochs) == 4


@pytest.mark.parametrize(("options", "pattern"), [
    ({"clip_grad_norm": 0}, "clip_grad_norm must be a number > 0"),
    ({"accumulate": 0}, "accumulate must be an integer >= 1"),
    ({"precission": "bf16"}, "unknown fit option"),
])
def test_bad_options_name_the_problem(digits, options, pattern) -> None:
    with pytest.raises(ConfigError, match=pattern):
        babysit.fit(_mlp(digits), digits, epochs=1, options=options)


def test_the_config_carries_them(tmp_path: Path) -> None:
    from babysit.train.from_config import fit_arguments

    cfg = config_from_dict({"name": "x", "runs_dir": str(tmp_path),
                            "train": {"precision": "fp16", "clip_grad_norm": 1.0, "accumulate": 2}})
    options = fit_arguments(cfg)["options"]
    assert (options.precision, options.clip_grad_norm, options.accumulate) == ("fp16", 1.0, 2)
