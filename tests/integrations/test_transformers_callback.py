"""BabysitTrainerCallback on real ``transformers.Trainer`` runs: a small GPT-2 learning characters of the Python
standard library's own source, and the digits classifier."""

from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from babysit import models
from babysit.findings import Finding
from babysit.history import History

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
from _integration_setups import DictDataset, ScoresWithLoss, accuracy, trainer_args  # noqa: E402

from babysit.integrations.transformers import BabysitTrainerCallback  # noqa: E402

BLOCK = 64  # characters per sequence (GPT-2's n_positions)


@pytest.fixture(scope="module")
def stdlib_text():
    """Character-level blocks of the standard library's own source (every Python install has it)."""
    folder = Path(os.path.dirname(os.__file__))
    text = "".join((folder / name).read_text(encoding="utf-8") for name in ("os.py", "posixpath.py", "shutil.py"))
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    blocks = ids[: len(ids) // BLOCK * BLOCK].view(-1, BLOCK)
    blocks = blocks[torch.randperm(len(blocks), generator=torch.Generator().manual_seed(0))]
    split = [{"input_ids": b, "labels": b} for b in blocks[:640]]
    return len(vocab), split[:512], split[512:]


def _gpt2(vocab_size: int):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=vocab_size, n_positions=BLOCK, n_embd=64, n_layer=2, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


def _logged(trainer, key: str) -> list[float]:
    return [entry[key] for entry in trainer.state.log_history if key in entry]


def test_callback_babysits_a_small_gpt2(stdlib_text, tmp_path) -> None:
    vocab, train, val = stdlib_text
    callback = BabysitTrainerCallback(every=4, run_dir=tmp_path / "babysit")
    args = trainer_args(tmp_path / "hf", num_train_epochs=2, per_device_train_batch_size=16,
                        per_device_eval_batch_size=64, learning_rate=3e-3)
    trainer = transformers.Trainer(model=_gpt2(vocab), args=args, train_dataset=train, eval_dataset=val,
                                   callbacks=[callback])
    trainer.train()
    h = callback.history

    # one loss per optimizer step, starting near ln(vocab) (uniform guessing) and falling
    losses = h.steps["loss"]
    assert len(losses) == trainer.state.global_step == 64
    assert all(math.isfinite(x) for x in losses)
    assert abs(losses[0] - math.log(vocab)) < 0.5
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.8
    # the learning rate each step used (taken right after optimizer.step, before the scheduler moved it)
    assert h.steps["lr"][0] == pytest.approx(3e-3)
    assert h.steps["lr"][-1] == pytest.approx(_logged(trainer, "learning_rate")[-1])

    # an epoch record per epoch: the train loss is the Trainer's own, val_loss its eval_loss after that epoch
    assert [e["epoch"] for e in h.epochs] == [1, 2]
    assert [e["train_loss"] for e in h.epochs] == pytest.approx(_logged(trainer, "loss"), rel=1e-5)
    assert [e["val_loss"] for e in h.epochs] == pytest.approx(_logged(trainer, "eval_loss"), rel=1e-6)
    assert all(e["val_acc"] is None and e["steps"] == 32 for e in h.epochs)  # no compute_metrics given

    # every layer under its module path, in forward order; update ratios of the real optimizer's steps
    names = [layer["name"] for layer in h.layers]
    assert names[:4] == ["transformer.wte", "transformer.wpe", "transformer.h.0.ln_1", "transformer.h.0.attn.c_attn"]
    assert {"transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.act",
            "lm_head"} <= set(names)
    assert h.series["act/transformer.h.0.mlp.c_fc/std"]["step"] == list(range(1, 65, 4))  # every sample, one name
    for block in (0, 1):
        for param in ("attn.c_attn.weight", "attn.c_proj.weight"):
            ratio = h.series[f"ratio/transformer.h.{block}.{param}"]
            assert ratio["step"] == list(range(1, 65, 4))
            assert all(1e-5 < r < 1 for r in ratio["value"])
    assert max(h.series["grad/transformer.h.0.attn.c_attn.weight/norm"]["value"]) > 0

    # findings: diagnosed, stored in the History, saved with it
    assert isinstance(callback.findings, list) and all(isinstance(f, Finding) for f in callback.findings)
    assert h.findings == [f.to_dict() for f in callback.findings] and h.status == "completed"
    assert h.meta["framework"] == "transformers"
    assert History.load(tmp_path / "babysit").findings == h.findings
    assert {p.name for p in tmp_path.iterdir()} <= {"babysit", "hf"}  # the Trainer writes only into tmp_path


@pytest.mark.parametrize("kind", ["gpt2", "classifier"])
def test_gradient_accumulation_counts_optimizer_steps(kind, stdlib_text, digits, tmp_path) -> None:
    """A step per optimizer step, its loss combined over the micro-batches as the Trainer combines them: a
    GPT-2 divides each micro-batch's loss by the whole step's token count (summed), a classifier returning a
    per-batch mean does not (averaged)."""
    if kind == "gpt2":
        vocab, train, _ = stdlib_text
        model, train, batch, weight = _gpt2(vocab), train[:256], 16, "transformer.h.0.attn.c_attn.weight"
    else:
        net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
        model, train, batch = ScoresWithLoss(net), DictDataset(digits.X_train, digits.y_train), 32
        weight = "net.fc1.weight"
    callback = BabysitTrainerCallback(every=1)
    args = trainer_args(tmp_path, num_train_epochs=1, per_device_train_batch_size=batch,
                        gradient_accumulation_steps=2, eval_strategy="no", learning_rate=1e-3)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=[callback])
    trainer.train()
    h = callback.history
    micro_batches = math.ceil(len(train) / batch)
    assert trainer.state.global_step == len(h.steps["loss"]) == h.epochs[0]["steps"] == math.ceil(micro_batches / 2)
    assert h.series[f"ratio/{weight}"]["step"] == list(range(1, trainer.state.global_step + 1))
    assert h.epochs[0]["train_loss"] == pytest.approx(_logged(trainer, "loss")[0], rel=1e-5)
    assert h.epochs[0]["val_loss"] is None


@pytest.mark.parametrize("strategy", ["epoch", "steps", "no"])
def test_epochs_take_the_evaluation_of_their_end(strategy, digits, tmp_path) -> None:
    """on_epoch_end comes before the Trainer evaluates at an epoch's end: the epoch waits for that evaluation;
    with evaluations every few steps an epoch takes its last one, without any it has no val_loss."""
    net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    callback = BabysitTrainerCallback(every=5)
    args = trainer_args(tmp_path, num_train_epochs=3, per_device_train_batch_size=64, eval_strategy=strategy,
                        eval_steps=10, learning_rate=0.1, optim="sgd", lr_scheduler_type="constant")
    trainer = transformers.Trainer(model=ScoresWithLoss(net), args=args, compute_metrics=accuracy,
                                   train_dataset=DictDataset(digits.X_train, digits.y_train),
                                   eval_dataset=DictDataset(digits.X_val, digits.y_val), callbacks=[callback])
    trainer.train()
    epochs = callback.history.epochs
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all(e["steps"] == 17 for e in epochs)
    evaluations = [e for e in trainer.state.log_history if "eval_loss" in e]
    if strategy == "no":
        assert not evaluations and all(e["val_loss"] is None and e["val_acc"] is None for e in epochs)
        return
    for record in epochs:  # the last evaluation at or before the epoch's end (step 17 * epoch)
        last = [e for e in evaluations if e["step"] <= 17 * record["epoch"]][-1]
        assert record["val_loss"] == pytest.approx(last["eval_loss"])
        assert record["val_acc"] == pytest.approx(last["eval_accuracy"])
    assert epochs[-1]["val_acc"] > 0.8


def test_a_forward_without_loss_takes_the_trainers_logged_loss(digits, tmp_path) -> None:
    """Given a compute_loss_func the Trainer takes the labels away and computes the loss itself: no per-step
    losses to record, so each epoch's train_loss is the mean of the losses the Trainer logged in it."""
    net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    callback = BabysitTrainerCallback(every=4)
    args = trainer_args(tmp_path, num_train_epochs=2, per_device_train_batch_size=64, eval_strategy="no",
                        learning_rate=1e-2)

    def smoothed(outputs, labels, num_items_in_batch=None):
        return F.cross_entropy(outputs["logits"], labels, label_smoothing=0.1)

    train = DictDataset(digits.X_train, digits.y_train)
    trainer = transformers.Trainer(model=ScoresWithLoss(net), args=args, train_dataset=train, callbacks=[callback],
                                   compute_loss_func=smoothed)
    trainer.train()
    h = callback.history
    assert h.steps["loss"] == [] and h.series["ratio/net.fc1.weight"]["step"] == list(range(1, 35, 4))
    assert [e["train_loss"] for e in h.epochs] == pytest.approx(_logged(trainer, "loss"), rel=1e-6)


def test_step_events_never_read_the_device(digits, tmp_path, monkeypatch) -> None:
    """Nothing the callback does per step (forward hook, step events, sampled steps) waits for the device."""
    reads: list[str] = []
    inside = [False]
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def spy(self, *a, _original=original, _name=name, **k):
            if inside[0]:
                reads.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)

    class Watched(BabysitTrainerCallback):
        def _on_forward(self, *a, **k):
            inside[0] = True
            try:
                return super()._on_forward(*a, **k)
            finally:
                inside[0] = False

    for event in ("on_step_begin", "on_optimizer_step", "on_step_end", "on_substep_end"):
        def wrapped(self, *a, _event=event, **k):
            inside[0] = True
            try:
                return getattr(BabysitTrainerCallback, _event)(self, *a, **k)
            finally:
                inside[0] = False

        setattr(Watched, event, wrapped)

    net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    callback = Watched(every=2)
    args = trainer_args(tmp_path, num_train_epochs=1, per_device_train_batch_size=64, eval_strategy="no",
                        gradient_accumulation_steps=2)
    train = DictDataset(digits.X_train, digits.y_train)
    transformers.Trainer(model=ScoresWithLoss(net), args=args, train_dataset=train, callbacks=[callback]).train()
    h = callback.history
    assert len(h.steps["loss"]) == 9 and h.series["ratio/net.fc1.weight"]["step"] == [1, 3, 5, 7, 9]
    assert reads == []


def test_keyword_forward_is_sampled_like_a_positional_one(digits, tmp_path) -> None:
    """The Trainer calls ``model(**inputs)`` and gets a dict back; the Monitor should sample it as it samples
    ``model(x)`` returning scores (what fit, an own loop and Lightning give it)."""
    net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    callback = BabysitTrainerCallback(every=2)
    args = trainer_args(tmp_path, num_train_epochs=1, per_device_train_batch_size=64, eval_strategy="no")
    train = DictDataset(digits.X_train, digits.y_train)
    transformers.Trainer(model=ScoresWithLoss(net), args=args, train_dataset=train, callbacks=[callback]).train()
    h = callback.history
    assert [layer["name"] for layer in h.layers] == ["net.fc1", "net.act1", "net.fc2"]
    assert h.series["act/net.act1/dead"]["step"] == list(range(1, 18, 2))
    assert "input/std" in h.series and "output/max" in h.series
    assert h.sections["monitor"].get("num_outputs") == 10


def test_missing_transformers_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # what an install without it looks like to import
    monkeypatch.delitem(sys.modules, "babysit.integrations.transformers")
    with pytest.raises(ImportError, match=r"pip install 'babysit\[transformers\]'"):
        importlib.import_module("babysit.integrations.transformers")


def _digits_trainer(digits, args, callback, net=None):
    net = net if net is not None else models.build("mlp", input_shape=digits.input_shape, num_classes=10,
                                                   hidden=[32], seed=0)
    return transformers.Trainer(model=ScoresWithLoss(net), args=args, compute_metrics=accuracy,
                                train_dataset=DictDataset(digits.X_train, digits.y_train),
                                eval_dataset=DictDataset(digits.X_val, digits.y_val), callbacks=[callback])


def test_a_resumed_training_continues_the_record(digits, tmp_path) -> None:
    from babysit.errors import ConfigError

    run = tmp_path / "babysit"
    args = dict(per_device_train_batch_size=64, save_strategy="epoch", learning_rate=3e-3)
    first = BabysitTrainerCallback(every=5, run_dir=run)
    _digits_trainer(digits, trainer_args(tmp_path / "hf", num_train_epochs=2, **args), first).train()
    before = [e["train_loss"] for e in first.history.epochs]
    # a new training into the same folder that does not resume: refused, the folder's record untouched
    log = (run / "history.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=r"already holds a run's history.jsonl.*resume_from_checkpoint"):
        _digits_trainer(digits, trainer_args(tmp_path / "other", num_train_epochs=1, **args),
                        BabysitTrainerCallback(every=5, run_dir=run)).train()
    assert (run / "history.jsonl").read_bytes() == log

    resumed = BabysitTrainerCallback(every=5, run_dir=run)
    trainer = _digits_trainer(digits, trainer_args(tmp_path / "hf", num_train_epochs=4, **args), resumed)
    trainer.train(resume_from_checkpoint=True)
    h = resumed.history
    # epochs and steps go on from the checkpoint's; the first training's epochs are kept
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3, 4] and h.num_steps == trainer.state.global_step == 4 * 17
    assert [e["train_loss"] for e in h.epochs[:2]] == before and all(e["steps"] == 17 for e in h.epochs)
    assert all(e["val_acc"] is not None for e in h.epochs)
    saved = History.load(run)
    assert [e["epoch"] for e in saved.epochs] == [1, 2, 3, 4] and saved.num_steps == 68


def test_a_checkpoint_at_an_epochs_last_step_before_its_end(digits, tmp_path) -> None:
    # save_steps=17: the checkpoint is written after epoch 1's last step, before the epoch's end and evaluation
    args = dict(per_device_train_batch_size=64, save_strategy="steps", save_steps=17, eval_strategy="no")
    first = BabysitTrainerCallback(every=5)
    _digits_trainer(digits, trainer_args(tmp_path, max_steps=17, **args), first).train()
    resumed = BabysitTrainerCallback(every=5)
    _digits_trainer(digits, trainer_args(tmp_path, num_train_epochs=2, **args), resumed).train(
        resume_from_checkpoint=True)
    h = resumed.history
    assert [(e["epoch"], e["steps"]) for e in h.epochs] == [(1, 17), (2, 17)] and h.num_steps == 34
    assert h.epochs[0]["train_loss"] == pytest.approx(first.history.epochs[0]["train_loss"])


def test_close_after_a_failed_training_saves_the_record_and_takes_the_hooks_off(digits, tmp_path) -> None:
    class Fails(ScoresWithLoss):
        calls = 0

        def forward(self, x, labels=None):
            Fails.calls += 1
            if Fails.calls == 30:
                raise RuntimeError("bad batch")
            return super().forward(x, labels)

    net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    model = Fails(net)
    callback = BabysitTrainerCallback(every=5, run_dir=tmp_path / "babysit")
    trainer = transformers.Trainer(model=model, args=trainer_args(tmp_path / "hf", num_train_epochs=3,
                                                                  per_device_train_batch_size=64, eval_strategy="no"),
                                   train_dataset=DictDataset(digits.X_train, digits.y_train), callbacks=[callback])
    try:
        with pytest.raises(RuntimeError, match="bad batch"):
            trainer.train()
    finally:
        callback.close()
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    assert hooks == 0
    saved = History.load(tmp_path / "babysit")
    assert saved.status == "interrupted" and 17 < saved.num_steps < 30 and [e["epoch"] for e in saved.epochs] == [1]
    callback.close()  # a second close does nothing


def test_warning_findings_are_shown_by_default_logging(digits, tmp_path, caplog) -> None:
    import logging

    caplog.set_level(logging.WARNING)  # Python's default: INFO is not shown
    net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0, bias_init=-5.0)
    callback = BabysitTrainerCallback(every=5)
    _digits_trainer(digits, trainer_args(tmp_path, num_train_epochs=2, per_device_train_batch_size=64), callback,
                    net=net).train()
    shown = [r.getMessage() for r in caplog.records if r.name == "babysit" and r.levelno == logging.WARNING]
    assert any("dead_units" in m for m in shown)
    assert all(any(f.code in m for m in shown) for f in callback.findings if f.severity != "info")


def test_settings_are_checked_when_the_callback_is_built_and_callbacks_name_their_framework(digits, tmp_path) -> None:
    from babysit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown Monitor setting.*'samplesize'.*sample_size"):
        BabysitTrainerCallback(samplesize=3)
    with pytest.raises(ConfigError, match="every must be an integer >= 1"):
        BabysitTrainerCallback(every=0)
    pytest.importorskip("lightning")
    from babysit.integrations.lightning import BabysitCallback

    with pytest.raises(ConfigError, match=r"BabysitCallback is the PyTorch Lightning callback.*BabysitTrainerCallback"):
        _digits_trainer(digits, trainer_args(tmp_path, max_steps=2), BabysitCallback())
