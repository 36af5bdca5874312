"""Wrong objects handed to ``fit`` and ``Monitor`` (a class for an instance, a name for an optimizer, dict samples,
a callback state a checkpoint cannot hold): each gets babysit's own error naming what came in and the fix, before
training or at the first save, never an AttributeError or TypeError from inside torch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import babysit
from babysit.callbacks import EMA, Callback, EarlyStopping
from babysit.errors import CheckpointError, ConfigError, DataError
from babysit.train import FitOptions
from babysit.train.checkpoint import checkpoint_path, read_checkpoint

X = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
Y = torch.arange(60) % 3
QUIET: dict[str, Any] = {"progress": False, "report": False}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _fit(model: Any = None, train: Any = (X, Y), **kw: Any) -> babysit.History:
    kw.setdefault("epochs", 1)
    kw.setdefault("options", QUIET)
    return babysit.fit(_model() if model is None else model, train, **kw)


class _Dicts(Dataset):
    """Hugging Face style samples: a dict per example."""

    def __len__(self) -> int:
        return len(X)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": X[i], "label": Y[i]}


def _pairs(samples: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([s["x"] for s in samples]), torch.stack([s["label"] for s in samples])


# --- the model ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "message"), [
    (lambda x: x, r"fit needs the torch\.nn\.Module being trained, got the function '<lambda>'.*nn\.Module"),
    (nn.Linear, r"got the class nn\.Linear: build it first, e.g\. nn\.Linear\(\.\.\.\)"),
    ("mlp", r"got a str \('mlp'\)"),
])
def test_fit_needs_a_module_instance(model: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _fit(model)


def test_monitor_names_a_class_given_for_the_model() -> None:
    with pytest.raises(ConfigError, match=r"Monitor needs .* got the class nn\.Linear: build it first"):
        babysit.Monitor(nn.Linear)  # type: ignore[arg-type]


# --- the Monitor's optimizer -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("optimizer", "message"), [
    ("adam", r"optimizer must be a torch\.optim\.Optimizer \(or None\), got a str \('adam'\): build one"),
    (torch.optim.Adam, r"got the class torch\.optim\.Adam: build it first, e\.g\. torch\.optim\.Adam\(model"),
])
def test_monitor_needs_an_optimizer_instance(optimizer: Any, message: str) -> None:
    model = _model()
    with pytest.raises(ConfigError, match=message):
        babysit.Monitor(model, optimizer)
    assert not model._forward_hooks and not model._forward_pre_hooks  # refused before any hook went on
    monitor = babysit.Monitor(model)
    with pytest.raises(ConfigError, match=r"optimizer must be a torch\.optim\.Optimizer"):
        monitor.watch_optimizer(optimizer)
    monitor.close()


# --- callbacks ---------------------------------------------------------------------------------------------------

def test_a_callback_class_is_refused_before_training() -> None:
    started = []

    def count(history: babysit.History) -> bool:
        started.append(1)
        return False

    with pytest.raises(ConfigError, match=r"callbacks holds the class EarlyStopping: pass an instance, "
                                          r"EarlyStopping\(\.\.\.\)"):
        _fit(callbacks=[count, EarlyStopping])
    assert not started  # refused before the first epoch


def test_a_class_that_is_no_callback_is_named_too() -> None:
    with pytest.raises(ConfigError, match=r"callbacks holds the class Path: pass babysit\.Callback instances"):
        _fit(callbacks=[Path])


@pytest.mark.parametrize("single", ["callback", "function"])
def test_a_single_callback_needs_no_list(single: str) -> None:
    seen: list[int] = []
    if single == "callback":
        callback: Any = EMA(0.9)
    else:
        def callback(history: babysit.History) -> bool:
            seen.append(len(history.epochs))
            return False
    h = _fit(val_data=(X, Y), epochs=2, callbacks=callback)
    assert h.status == "completed"
    if single == "callback":
        assert "val_acc_ema" in h.epochs[-1]
    else:
        assert seen == [1, 2]


def test_a_string_of_callbacks_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"callbacks must be a babysit\.Callback, a function or a list of them, "
                                          r"got a str"):
        _fit(callbacks="early_stopping")


# --- data --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrap", ["dataset", "loader"])
def test_dict_samples_are_named_with_their_keys_and_the_fix(wrap: str) -> None:
    data = _Dicts() if wrap == "dataset" else DataLoader(_Dicts(), batch_size=16)
    with pytest.raises(DataError) as info:
        _fit(train=data)
    text = str(info.value)
    assert re.search(r"fit needs \(input, label\) pairs.*a dict with the keys 'x', 'label'", text), text
    assert "collate_fn" in text and "babysit.Monitor" in text and "BabysitTrainerCallback" in text, text


def test_dict_samples_as_validation_data_are_named_before_training() -> None:
    started = []
    with pytest.raises(DataError, match=r"the first validation example is a dict with the keys 'x', 'label'"):
        _fit(val_data=_Dicts(), callbacks=[lambda h: started.append(1)])
    assert not started


def test_dict_samples_with_a_collate_fn_that_builds_pairs_train() -> None:
    loader = DataLoader(_Dicts(), batch_size=16, collate_fn=_pairs)
    h = _fit(train=loader, val_data=loader)
    assert h.status == "completed" and len(h.epochs) == 1 and h.epochs[0]["val_acc"] is not None


def test_samples_that_are_not_pairs_are_named() -> None:
    class Triples(_Dicts):
        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:  # type: ignore[override]
            return X[i], Y[i], i

    with pytest.raises(DataError, match=r"fit needs \(input, label\) pairs.*a tuple of 3 items"):
        _fit(train=Triples())


# --- monitor settings and fit options ----------------------------------------------------------------------------

def test_a_typo_in_the_monitor_dict_names_only_that_key_and_a_guess() -> None:
    with pytest.raises(ConfigError) as info:
        _fit(monitor={"evry": 10})
    text = str(info.value)
    assert "unknown Monitor setting 'evry'; choose one of: " in text and text.endswith("Did you mean 'every'?"), text
    assert "['activations', 'evry', 'watch_eval']" not in text and "'history'" not in text, text


def test_fit_options_typos_are_config_errors_in_both_forms() -> None:
    for make in (lambda: FitOptions(clip_grad=1.0), lambda: FitOptions.of({"clip_grad": 1.0})):
        with pytest.raises(ConfigError, match=r"unknown fit option 'clip_grad'; choose one of: .*"
                                              r"Did you mean 'clip_grad_norm'\?"):
            make()
    import copy
    import dataclasses
    import pickle

    options = FitOptions("bf16", clip_grad_norm=1.0)  # the class form works as before otherwise
    assert (options.precision, options.clip_grad_norm) == ("bf16", 1.0)
    assert pickle.loads(pickle.dumps(options)) == options == copy.deepcopy(options)
    assert dataclasses.replace(options, accumulate=2).accumulate == 2


# --- callback state in checkpoints -------------------------------------------------------------------------------

class _NumpyState(Callback):
    """A state_dict holding numpy values: a checkpoint loaded with weights_only=True cannot hold them."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def state_dict(self) -> dict[str, Any]:
        return {"best": 0.5, "hist": [1.0, self.value]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = state["hist"][1]


@pytest.mark.parametrize(("value", "kind"), [(np.float64(0.5), "numpy.float64"), (np.zeros(3), "numpy.ndarray"),
                                             ({np.int64(1): 2}, "numpy.int64")])
def test_a_callback_state_a_checkpoint_cannot_hold_is_refused_at_the_first_save(tmp_path: Path, value: Any,
                                                                                kind: str) -> None:
    with pytest.raises(CheckpointError) as info:
        _fit(run_dir=tmp_path / "run", callbacks=[_NumpyState(value)], val_data=(X, Y))
    text = str(info.value)
    assert re.search(rf"callback _NumpyState's state_dict\(\) holds a {re.escape(kind)} at \['hist'\]\[1\]", text), text
    assert "weights_only=True" in text and "float(x)" in text and ".tolist()" in text, text
    assert not checkpoint_path(tmp_path / "run", "last").exists()  # no checkpoint written that cannot be read


class _TurnsNumpy(Callback):
    """Plain state in epoch 1, a numpy number from epoch 2 on (unless fixed)."""

    def __init__(self, fixed: bool = False) -> None:
        self.best, self.fixed = 0.0, fixed

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if record["epoch"] >= 2:
            self.best = float(np.float64(record["val_acc"])) if self.fixed else np.float64(record["val_acc"])

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


def test_a_later_save_that_fails_keeps_the_last_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    kw: dict[str, Any] = {"run_dir": run_dir, "val_data": (X, Y), "options": {**QUIET, "checkpoint_every_epochs": 1}}
    with pytest.raises(CheckpointError, match=r"callback _TurnsNumpy's state_dict\(\) holds a numpy\.float64 at "
                                              r"\['best'\].*last checkpoint is intact: fix the callback, then continue "
                                              r"with resume=True"):
        _fit(epochs=3, callbacks=[_TurnsNumpy()], **kw)
    assert read_checkpoint(checkpoint_path(run_dir, "last"))["epoch"] == 1
    h = _fit(epochs=3, callbacks=[_TurnsNumpy(fixed=True)], resume=True, **kw)
    assert h.status == "completed" and len(h.epochs) == 3


class _Plain(Callback):
    def state_dict(self) -> dict[str, Any]:
        return {"a": 1, "b": [0.5, None, True, "x"], "t": torch.zeros(3), "size": torch.Size([2]),
                "dtype": torch.float32, "device": torch.device("cpu"), "nested": {"k": (1, 2.0)}, "s": {1, 2}}


def test_plain_callback_states_are_saved_and_the_check_is_cheap(tmp_path: Path) -> None:
    import time

    from babysit.train.run import callback_states

    h = _fit(run_dir=tmp_path / "run", callbacks=[_Plain(), EMA(0.9)], val_data=(X, Y))
    assert h.status == "completed"
    assert read_checkpoint(checkpoint_path(tmp_path / "run", "last"))["callbacks"]["_Plain"]["a"] == 1
    ema = EMA(0.9)
    ema.model = torch.optim.swa_utils.AveragedModel(_model())
    callbacks = [_Plain(), ema, EarlyStopping()]
    started = time.perf_counter()
    for _ in range(100):
        callback_states(callbacks)
    assert (time.perf_counter() - started) / 100 < 2e-3  # well under a millisecond per save in practice


def test_an_unreadable_checkpoint_names_the_likely_cause_and_keeps_the_run(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    torch.save({"format": 1, "callbacks": {"Mine": {"best": np.float64(0.5)}}}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    text = str(info.value)
    assert "numpy._core.multiarray.scalar" in text or "numpy.core.multiarray.scalar" in text, text
    assert "callback's state_dict()" in text and "weights_only=False" in text, text
    assert "delete it to start over" not in text, text


def test_a_damaged_checkpoint_is_still_called_damaged(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot be read, it is damaged"):
        read_checkpoint(path)
