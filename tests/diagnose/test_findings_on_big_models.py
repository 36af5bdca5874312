"""Findings stay right beyond the digits MLP: Hugging Face models under the Trainer (a scheduler that decays the rate
to 0, label smoothing that leaves only epoch losses, runs of ten steps), a CNN whose ReLUs a far too high rate kills,
a dead layer behind a functional ``F.relu``, L-BFGS, and short runs whose loss is still falling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import babysit
from babysit import models
from babysit.diagnose import diagnose
from babysit.testing.histories import make_history


def _by_code(findings) -> dict[str, dict]:
    return {f["code"]: f for f in (x if isinstance(x, dict) else x.to_dict() for x in findings)}


def _rates(found: dict[str, dict]) -> set[float]:
    return {f["evidence"]["recommended_lr"] for f in found.values() if f["evidence"].get("recommended_lr")}


# --- Hugging Face: a tiny GPT-2 and a tiny BERT under the Trainer ---------------------------------------------------
def _text_windows(n: int = 400, width: int = 32):
    text = Path(torch.nn.modules.module.__file__).read_text()[:80000]
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    rows = ids[: (len(ids) // width) * width].view(-1, width)[:n]
    return [{"input_ids": x, "labels": x.clone()} for x in rows], len(chars)


def _trainer_run(model, dataset, tmp_path, callback, **settings):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from transformers import Trainer, TrainingArguments

    base = dict(output_dir=str(tmp_path / "trainer"), per_device_train_batch_size=16, num_train_epochs=2,
                learning_rate=3e-3, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
                logging_steps=5, dataloader_num_workers=0)
    base.update(settings)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(model=model, args=TrainingArguments(**base), callbacks=[callback], **dataset).train()
    finally:
        torch.set_num_threads(before)
    return _by_code(callback.findings)


def _gpt2(vocab: int):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=vocab, n_positions=32, n_embd=64, n_layer=2, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


def test_a_blow_up_with_only_epoch_losses_is_a_divergence_with_a_rate(tmp_path) -> None:
    # label smoothing takes the labels out of the forward: the model returns no loss, so only the Trainer's logged
    # epoch means are recorded; at lr 10 they sit above 2,000 against ln V = 4.5 for an untrained model
    from babysit.integrations.transformers import BabysitTrainerCallback

    windows, vocab = _text_windows()
    callback = BabysitTrainerCallback(every=5)
    found = _trainer_run(_gpt2(vocab), {"train_dataset": windows}, tmp_path, callback, learning_rate=10.0,
                         label_smoothing_factor=0.1)
    assert not callback.history.steps.get("loss")  # the situation under test: no per-step losses
    diverged = found["loss_diverged"]
    assert diverged["severity"] == "error" and "epoch 1" in diverged["message"]
    assert diverged["evidence"]["cause_code"] == "learning_rate"
    assert diverged["evidence"]["recommended_lr"] is not None and diverged["evidence"]["recommended_lr"] < 1
    assert "lower the learning rate" in diverged["suggestion"]
    assert len(_rates(found)) == 1


def test_ten_healthy_steps_of_a_gpt2_raise_no_update_ratio_finding(tmp_path) -> None:
    # Adam's first step moves every weight by exactly the rate (ratio lr / std = 0.15 at GPT-2's init 0.02); a run
    # of 10 steps sampled every 5 had only that step in its "early half"
    from babysit.integrations.transformers import BabysitTrainerCallback

    windows, vocab = _text_windows()
    callback = BabysitTrainerCallback(every=5)
    found = _trainer_run(_gpt2(vocab), {"train_dataset": windows}, tmp_path, callback, max_steps=10)
    assert callback.history.num_steps == 10
    assert {c: f["message"] for c, f in found.items() if f["severity"] != "info"} == {}


def test_a_healthy_bert_whose_loss_falls_every_epoch_is_not_told_to_lower_its_rate(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    from babysit.integrations.transformers import BabysitTrainerCallback

    def data(n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(5, 50, (n, 16), generator=g)
        y = torch.randint(0, 3, (n,), generator=g)
        ids[:, 0] = y + 1  # the class is written in the first token: learnable
        return [{"input_ids": a, "attention_mask": torch.ones(16, dtype=torch.long), "labels": b}
                for a, b in zip(ids, y)]

    def accuracy(p):
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=3)
    callback = BabysitTrainerCallback(every=5)
    found = _trainer_run(transformers.BertForSequenceClassification(config),
                         {"train_dataset": data(320, 0), "eval_dataset": data(96, 1), "compute_metrics": accuracy},
                         tmp_path, callback, learning_rate=1e-3, eval_strategy="epoch", num_train_epochs=4)
    losses = [e["train_loss"] for e in callback.history.epochs]
    assert all(b < a for a, b in zip(losses, losses[1:]))  # falls every epoch: nothing "then stalls"
    assert callback.history.epochs[-1]["val_acc"] == 1.0
    assert "lr_too_high" not in found, found.get("lr_too_high", {}).get("message")


# --- the rate the steps used, not the epoch record's decayed one ----------------------------------------------------
def _decayed(step_lrs: list[float], ratios: list[float]) -> babysit.History:
    """A run whose scheduler decayed the rate to 0 by the epoch's close (the Trainer's default linear decay)."""
    names = ("fc1.weight", "fc2.weight", "fc3.weight")
    h = make_history(train_loss=[3.7], series={f"ratio/{n}": ratios for n in names}, every=1, steps_per_epoch=10)
    h.steps["lr"] = step_lrs
    for e in h.epochs:
        e["lr"] = 0.0
    h.meta.pop("lr")
    return h


def test_rules_quote_the_rate_the_steps_used_and_recommend_one() -> None:
    lrs = [3e-3 * (1 - i / 10) for i in range(10)]  # 3e-3 down to 3e-4; the epoch closes at 0
    ratios = [0.3 * lr / 3e-3 for lr in lrs]  # updates scale with the rate
    (f,) = diagnose(_decayed(lrs, ratios), rules=["update_ratio_too_high"])
    assert f.evidence["lr"] == pytest.approx(3e-3)
    assert f.message.startswith("lr 3.0e-03:")
    # the peak that brings the measured steps to ~1e-3: 3e-3 x 1e-3 / 0.3 = 1e-5, whatever step was measured
    assert f.evidence["recommended_lr"] == pytest.approx(1e-5)
    assert "lr 1e-05" in f.suggestion


# --- a CNN at SGD lr 5: every ReLU dies at the first step ------------------------------------------------------------
def test_relus_killed_by_a_far_too_high_rate_get_a_rate() -> None:
    # the records of a BN CNN at SGD (momentum 0.9) lr 5 on shapes32: step 1's update
    # (ratio 0.4-1.6) kills every ReLU, the loss rises 5.3x (1.82 -> 9.65, below the 10x of a divergence) and
    # every gradient is 0 from then on, while momentum coasts the weights on for a while
    coast = [0.19, 0.063, 0.03, 0.016, 0.0087, 0.0049, 0.0029, 0.0017, 0.001]
    series = {"ratio/fc1.weight": [0.39, *coast], "ratio/fc2.weight": [1.64, *coast],
              "ratio/fc3.weight": [0.63, *coast],
              **{f"grad/fc{i}.weight/norm": [0.5] + [0.0] * 9 for i in (1, 2, 3)},
              "act/act1/dead": [0.3] + [1.0] * 9, "act/act2/dead": [0.2] + [1.0] * 9}
    losses = [1.82, 9.65, 6.68, 3.34, 4.67, 4.24] + [2.0] * 42
    h = make_history(step_loss=losses, train_loss=[3.79, 1.98, 2.06, 1.99], val_acc=[0.14, 0.14, 0.17, 0.17],
                     train_acc=[0.17, 0.18, 0.16, 0.16], series=series, steps_per_epoch=12, num_classes=6, lr=5.0)
    found = _by_code(diagnose(h))
    assert "loss_diverged" not in found  # never 10x: the rate has to be named by another finding
    dead = found["dead_units"]
    assert "too-high lr" in dead["message"]
    assert dead["evidence"]["cause_code"] == "learning_rate"
    # from step 1, the one step with a gradient (not from the coasting after it): 5 x 1e-3 / 1.64
    assert dead["evidence"]["recommended_lr"] == pytest.approx(0.003)
    assert "lr 0.003" in dead["suggestion"]
    assert _rates(found) == {0.003}


# --- a dead layer behind a functional F.relu ------------------------------------------------------------------------
class _FunctionalNet(nn.Module):
    """Two linear layers with ``F.relu`` between them (no ``nn.ReLU`` module for dead_units to count); fc1's bias
    at -100 keeps that ReLU shut, so neither weight matrix ever gets a gradient."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)
        with torch.no_grad():
            self.fc1.bias.fill_(-100.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


def test_a_dead_functional_relu_is_not_read_as_too_low_a_rate(digits) -> None:
    model = _FunctionalNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = babysit.Monitor(model, opt, every=5)
    x, y = torch.as_tensor(digits.X_train).flatten(1), torch.as_tensor(digits.y_train)
    xv, yv = torch.as_tensor(digits.X_val).flatten(1), torch.as_tensor(digits.y_val)
    for _ in range(4):
        for idx in torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).split(64):
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            monitor.step(loss)
        with torch.no_grad():
            scores = model(xv)
        monitor.end_epoch(val_acc=float((scores.argmax(1) == yv).float().mean()),
                          val_loss=float(F.cross_entropy(scores, yv)))
    assert monitor.history.sections["monitor"]["optimizer"] == "Adam"  # recorded for the L-BFGS checks
    found = _by_code(monitor.diagnose())
    no_learning = found["no_learning"]
    assert no_learning["evidence"]["cause_code"] == "blocked_signal"
    assert "gradient of every weight tensor is exactly 0" in no_learning["message"]
    assert "F.relu" in no_learning["suggestion"]
    # no false statement, and no rate: raising it cannot help
    assert "no update ratios were recorded" not in no_learning["message"]
    assert _rates(found) == set()
    assert not any("raise the learning rate" in f["suggestion"] for f in found.values())


# --- L-BFGS: one step is a whole quasi-Newton solve ----------------------------------------------------------------
def test_full_batch_lbfgs_is_not_judged_by_the_per_step_update_ratio(digits) -> None:
    model = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[128, 64], seed=0)
    history = babysit.fit(model, digits, optimizer="lbfgs", lr=1, batch_size=2000, epochs=2, device="cpu")
    assert history.best_val_acc > 0.9
    found = _by_code(history.findings)
    assert "update_ratio_too_high" not in found
    assert _rates(found) == set()


def test_lbfgs_on_mini_batches_is_named_as_the_cause() -> None:
    # scripted: L-BFGS with 17 steps of 64 per epoch blew up at step 2 (its ratio 0.77 would read as "the rate")
    h = make_history(step_loss=[2.3, float("nan")], train_loss=[float("nan")], steps_per_epoch=17,
                     series={"ratio/fc3.weight": [0.77, 0.77]}, lr=1.0)
    h.meta.update(optimizer="lbfgs", batch_size=64, num_train=1078)
    (f,) = diagnose(h, rules=["loss_diverged"])
    assert f.evidence["cause_code"] == "lbfgs_minibatch"
    assert "full batches" in f.suggestion and "1078" in f.suggestion
    assert f.evidence.get("recommended_lr") is None
    # a training accuracy far above validation from epoch 1 is L-BFGS fitting each batch, not padding
    gap = make_history(train_acc=[0.99, 1.0, 1.0], val_acc=[0.3, 0.35, 0.4], steps_per_epoch=17)
    gap.meta.update(optimizer={"name": "LBFGS", "lr": 1}, batch_size=64, num_train=1078)
    (g,) = diagnose(gap, rules=["train_val_mismatch"])
    assert g.evidence["cause_code"] == "lbfgs_minibatch" and "padding" not in g.suggestion
    # in a hand-written loop the Monitor records the optimizer's class
    gap.meta.pop("optimizer")
    gap.sections["monitor"]["optimizer"] = "LBFGS"
    (g,) = diagnose(gap, rules=["train_val_mismatch"])
    assert g.evidence["cause_code"] == "lbfgs_minibatch"


# --- short runs whose loss is still falling -------------------------------------------------------------------------
def test_a_short_run_still_falling_is_not_underfitting() -> None:
    # a transformer's first 3 epochs at Adam 3e-3: the loss still falls 4.5% in the last one
    h = make_history(train_loss=[3.839, 3.083, 2.943], val_loss=[3.145, 2.945, 2.836],
                     train_acc=[0.202, 0.28, 0.295], val_acc=[0.295, 0.295, 0.318], num_classes=97)
    assert diagnose(h, rules=["underfitting"]) == []
    # a CNN's 4 epochs falling ~1.5% each, steadily: slow, not stopped
    h = make_history(train_loss=[1.797, 1.774, 1.758, 1.73], train_acc=[0.176, 0.197, 0.236, 0.262],
                     val_acc=[0.203, 0.234, 0.223, 0.258], num_classes=6)
    assert diagnose(h, rules=["underfitting"]) == []
    # flat in the last epoch (0.7%): underfitting as before
    h = make_history(train_loss=[2.3, 1.5, 1.45, 1.44], train_acc=[0.4, 0.5, 0.52, 0.53],
                     val_acc=[0.39, 0.49, 0.5, 0.51])
    assert [f.code for f in diagnose(h, rules=["underfitting"])] == ["underfitting"]


def test_a_zero_initialised_parameter_is_not_judged_by_its_update_ratio() -> None:
    # a positional table starting at zero: after k Adam steps its ratio is ~1/k, however healthy the rate
    layers = [{"name": "fc1", "type": "Linear", "kind": "weighted", "activation": None, "params": ["pos"]}]
    params = [{"name": "pos", "shape": [32, 64], "numel": 2048, "fan_in": 64, "requires_grad": True,
               "in_optimizer": True}]
    series = {"ratio/pos": [float("nan"), 0.2, 0.1, 0.07], "weight/pos/norm": [0.0, 0.5, 1.0, 1.5]}
    h = make_history(train_loss=[4.6, 3.4], series=series, layers=layers, parameters=params, lr=3e-3)
    assert diagnose(h, rules=["update_ratio_too_high"]) == []
    series["weight/pos/norm"] = [0.2, 0.5, 1.0, 1.5]  # the same ratios on a table that started non-zero: too high
    h = make_history(train_loss=[4.6, 3.4], series=series, layers=layers, parameters=params, lr=3e-3)
    assert [f.code for f in diagnose(h, rules=["update_ratio_too_high"])] == ["update_ratio_too_high"]


def test_recorded_ratios_that_are_all_zero_are_not_read_as_missing() -> None:
    # gradients arrive but no weight ever changes (the optimizer's rate is 0): "no update ratios were recorded"
    # would be false, and "raise the learning rate: try lr ..." from a rate of 0 means nothing
    names = ("fc1.weight", "fc2.weight", "fc3.weight")
    series = {**{f"ratio/{n}": [0.0] * 6 for n in names}, **{f"grad/{n}/norm": [0.3] * 6 for n in names}}
    h = make_history(train_loss=[2.30, 2.30, 2.30, 2.30], val_acc=[0.1, 0.11, 0.1, 0.1],
                     train_acc=[0.1, 0.1, 0.11, 0.1], series=series)
    (f,) = diagnose(h, rules=["no_learning"])
    assert f.evidence["cause_code"] == "no_updates"
    assert "no update ratios were recorded" not in f.message and "every update/weight ratio is 0" in f.message
    assert f.evidence.get("recommended_lr") is None
