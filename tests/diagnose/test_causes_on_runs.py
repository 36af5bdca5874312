"""The cause a finding names is the one the run's records point at, not the first plausible one: gradients piled up
by a missing ``zero_grad`` are not a learning rate, an embedding's standard N(0, 1) table is not a too-large
initialisation, and a vanishing gradient is quoted past its threshold and blamed on the dead ReLUs that stop it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import babysit
from babysit import models
from babysit.diagnose import diagnose
from babysit.testing.histories import make_history, mlp_layers

CARRY_SUGGESTION = "fix that first: see gradient_accumulation"


def _by_code(findings) -> dict[str, dict]:
    return {f["code"]: f for f in (x if isinstance(x, dict) else x.to_dict() for x in findings)}


# --- a missing zero_grad, not the learning rate ----------------------------------------------------------------------
def _own_loop_without_zero_grad(digits, *, lr: float, epochs: int = 4) -> babysit.Monitor:
    """A small CNN (batch norm, dropout) on the digits images, trained in a hand-written loop that never calls
    ``optimizer.zero_grad()``: each ``.grad`` holds the sum of every gradient so far."""
    model = models.build("cnn", input_shape=(1, 8, 8), num_classes=10, seed=0, batch_norm=True, dropout=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    monitor = babysit.Monitor(model, opt, every=5)
    x, y = torch.as_tensor(digits.X_train).reshape(-1, 1, 8, 8), torch.as_tensor(digits.y_train)
    xv, yv = torch.as_tensor(digits.X_val).reshape(-1, 1, 8, 8), torch.as_tensor(digits.y_val)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        correct = 0
        for idx in torch.randperm(len(x), generator=g).split(32):
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            loss.backward()  # no opt.zero_grad() before it: the mistake under test
            opt.step()
            monitor.step(loss)
            correct += int((out.argmax(1) == y[idx]).sum())
        model.eval()
        with torch.no_grad():
            scores = model(xv)
        monitor.end_epoch(train_acc=correct / len(x), val_acc=float((scores.argmax(1) == yv).float().mean()),
                          val_loss=float(F.cross_entropy(scores, yv)))
    return monitor


def test_a_missing_zero_grad_is_named_as_the_cause_not_the_rate(digits) -> None:
    monitor = _own_loop_without_zero_grad(digits, lr=0.01)
    found = _by_code(monitor.diagnose())
    assert "gradient_accumulation" in found
    # the run learns nothing, and the piled-up gradients are why: no rate is recommended for it
    no_learning = found["no_learning"]
    assert no_learning["evidence"]["cause_code"] == "zero_grad_missing"
    assert no_learning["suggestion"].startswith(CARRY_SUGGESTION)
    assert "recommended_lr" not in no_learning["evidence"]
    # no other finding blames the rate either: a lower one would only slow the pile-up
    assert "lr_too_high" not in found
    rated = [code for code, f in found.items() if f["evidence"].get("recommended_lr") is not None]
    assert rated == []
    if "dead_units" in found:  # the ReLUs die of the large updates the carried gradients make
        assert "too-high lr" not in found["dead_units"]["message"]
        assert found["dead_units"]["evidence"].get("cause_code") == "zero_grad_missing"


def test_no_learning_with_large_updates_from_carried_gradients_does_not_blame_the_rate() -> None:
    # large updates (ratio 0.05) that would read as too high a rate, but 95% of each gradient is carried over
    series = {**{f"ratio/{n}": [0.05] * 6 for n in ("fc1.weight", "fc2.weight", "fc3.weight")},
              "grad/carry": [0.0] + [0.95] * 5}
    h = make_history(train_loss=[1.81, 1.80, 1.80, 1.79], val_acc=[0.10, 0.12, 0.11, 0.12],
                     train_acc=[0.10, 0.11, 0.12, 0.11], series=series, lr=0.01)
    (f,) = diagnose(h, rules=["no_learning"])
    assert f.evidence["cause_code"] == "zero_grad_missing"
    assert f.evidence["carry"] == 0.95
    assert "recommended_lr" not in f.evidence and "lower the learning rate" not in f.suggestion
    faster = {**series, **{f"ratio/{n}": [0.2] * 6 for n in ("fc1.weight", "fc2.weight", "fc3.weight")}}
    (high,) = diagnose(make_history(train_loss=[2.3, 1.0, 1.5, 1.6], series=faster), rules=["update_ratio_too_high"])
    # the ratio above 0.1 is still reported (it is what was measured), with the carried gradients as its cause
    assert high.evidence["cause_code"] == "zero_grad_missing"
    assert "recommended_lr" not in high.evidence and high.suggestion.startswith(CARRY_SUGGESTION)
    # without the carry-over the same records do blame the rate
    series["grad/carry"] = [0.0] * 6
    (f,) = diagnose(make_history(train_loss=[1.81, 1.80, 1.80, 1.79], val_acc=[0.10, 0.12, 0.11, 0.12],
                                 train_acc=[0.10, 0.11, 0.12, 0.11], series=series, lr=0.01), rules=["no_learning"])
    assert f.evidence["cause_code"] == "learning_rate_too_high"


# --- an embedding is a lookup: PyTorch's N(0, 1) default is not a too-large init -------------------------------------
class _TokenNet(nn.Module):
    """Each digits pixel as a token (ink or not), embedded in 32 dimensions, then an MLP."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(2, 32)  # PyTorch's default init, N(0, 1): 5.7x 1/sqrt(32)
        self.fc1 = nn.Linear(64 * 32, 64)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.emb(x.long()).flatten(1))))


def _tokens(digits) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    def ink(x) -> torch.Tensor:
        return (torch.as_tensor(x) > 0).float()  # above the pixel's mean: token 1

    return ((ink(digits.X_train), torch.as_tensor(digits.y_train)),
            (ink(digits.X_val), torch.as_tensor(digits.y_val)))


def test_a_default_embedding_is_not_blamed_for_a_divergence_the_rate_causes(digits) -> None:
    train, val = _tokens(digits)
    # the same model and init train normally at a sane rate: the N(0, 1) table is healthy
    calm = babysit.fit(_TokenNet(), train, val, optimizer="adam", lr=1e-3, epochs=2, device="cpu")
    assert calm.epochs[-1]["val_acc"] > 0.8
    wild = babysit.fit(_TokenNet(), train, val, optimizer="adam", lr=3.0, epochs=2, device="cpu")
    diverged = _by_code(wild.findings)["loss_diverged"]
    assert diverged["evidence"]["cause_code"] == "learning_rate"
    assert "emb.weight" not in diverged["evidence"]["cause"]
    assert "lower the learning rate" in diverged["suggestion"]


def test_an_embedding_table_is_not_judged_by_fan_in_but_a_linear_weight_is() -> None:
    layers, params = mlp_layers()
    layers = [{"name": "emb", "type": "Embedding", "kind": "embedding", "activation": None,
               "params": ["emb.weight"]}, *layers]
    params = [{"name": "emb.weight", "shape": [50, 64], "numel": 3200, "fan_in": 64, "requires_grad": True,
               "in_optimizer": True}, *params]
    losses = [2.3] * 10 + [40.0] + [float("inf")] * 4
    # the embedding starts at N(0, 1) (8x 1/sqrt(64)); the linear layers at a healthy scale
    series = {"weight/emb.weight/norm": [3200 ** 0.5] * 2, "weight/fc1.weight/norm": [0.125 * 64] * 2}
    h = make_history(step_loss=losses, train_loss=[2.3, float("inf")], steps_per_epoch=8, series=series,
                     layers=layers, parameters=params, lr=1e-3)
    (f,) = diagnose(h, rules=["loss_diverged"])
    assert f.evidence["cause_code"] != "initialisation"
    # the same table as a Linear weight is too large
    layers[0].update(type="Linear", kind="weighted")
    (f,) = diagnose(h, rules=["loss_diverged"])
    assert f.evidence["cause_code"] == "initialisation" and "emb.weight" in f.message


# --- vanishing and exploding gradients quote a ratio past their threshold --------------------------------------------
def _depth(first: list[float], *, dead: float | None = None):
    series = {"grad/fc1.weight/norm": first, "grad/fc3.weight/norm": [1.0] * len(first)}
    if dead is not None:
        series["act/act2/dead"] = [dead] * len(first)
    return make_history(train_loss=[2.3, 2.2, 2.1], series=series)


def test_a_vanishing_gradient_is_quoted_below_its_threshold() -> None:
    # half the sampled steps vanish (1e-6), half are normal: the median of all ten would be 0.35
    (f,) = diagnose(_depth([1e-6] * 5 + [0.7] * 5), rules=["vanishing_gradients"])
    assert f.evidence["ratio"] < 1e-3
    assert f.evidence["share"] == 0.5
    assert "1.0e-06x" in f.message and "50% of the sampled steps" in f.message


def test_an_exploding_gradient_is_quoted_above_its_threshold() -> None:
    # half the steps at 100x, half at 1x: the median of all would be 50.5, below the 70 the message names
    (f,) = diagnose(_depth([100.0] * 5 + [1.0] * 5), rules=["exploding_gradients"])
    assert f.evidence["ratio"] > 70
    assert "100x" in f.message


def test_a_gradient_stopped_by_dead_relus_points_to_them() -> None:
    (f,) = diagnose(_depth([0.0] * 6, dead=1.0), rules=["vanishing_gradients"])
    # a zero gradient is said in words, and the dead ReLUs are named instead of init advice
    assert "0x" not in f.message and "no gradient reaches fc1.weight" in f.message
    assert f.evidence["cause_code"] == "dead_units" and f.evidence["dead_layers"] == ["act2"]
    assert f.suggestion == "fix that first: see dead_units"
    assert "initialisation" not in f.suggestion
