"""Bad input through the Python API: each case raises babysit's own error (a ``BabysitError``) whose message
names the problem, never a JSONDecodeError, IndexError or ZeroDivisionError from deep inside.

Cases marked ``xfail(strict=True)`` need a change in a file another part of the team owns (the reason names the
file and the function); they turn into failures the day that change lands, so the mark is removed with it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import babysit
from babysit import data
from babysit._io import read_json_object
from babysit.errors import BabysitError, CheckpointError, ConfigError, DataError
from babysit.hpsearch import SearchError, SearchResult
from babysit.hpsearch._view import make_sampler
from babysit.hpsearch.toys import Peak

X = torch.randn(40, 4)
Y = torch.arange(40) % 3
XV, YV = torch.randn(12, 4), torch.arange(12) % 3


class _Flat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)[:, 0]


def _fit(model: nn.Module, train: object, val: object = (XV, YV)) -> Callable[[], object]:
    return lambda: babysit.fit(model, train, val_data=val, epochs=1, monitor=False)


def _damaged(tmp: Path, text: str) -> Path:
    (tmp / "search.json").write_text(text)
    return tmp


CASES: list[tuple[str, Callable[[Path], object], type[BaseException], str, str | None]] = [
    # (id, call, error type, regex the message must match, xfail reason or None)
    ("one-class", lambda t: data.from_arrays(np.random.rand(30, 2), np.zeros(30)), DataError,
     r"single class.*at least two", None),
    ("stray-label", lambda t: data.from_arrays(np.random.rand(40, 2), np.r_[np.arange(39) % 3, 7]), DataError,
     r"labels 3-6 never occur, but label 7 does.*num_classes=8", None),
    ("explicit-num-classes-one", lambda t: data.from_arrays(np.random.rand(30, 2), np.zeros(30), num_classes=1),
     DataError, r"single class|at least two", None),
    ("label-over-num-classes", lambda t: data.from_arrays(np.random.rand(30, 2), np.arange(30) % 4, num_classes=3),
     DataError, r"label 3, outside the valid range 0\.\.2", None),
    ("npz-noise", lambda t: (t.joinpath("n.npz").write_bytes(b"\x01\x02" * 100), data.load(t / "n.npz"))[1],
     DataError, r"not an \.npz archive", None),
    ("spiral-one-arm", lambda t: data.load("spiral", classes=1), DataError, r"at least 2 arms", None),
    ("digits-num-classes", lambda t: data.load("digits", num_classes=5), DataError, r"digits has 10 classes", None),
    ("search-json-truncated", lambda t: SearchResult.load(_damaged(t, '{"trials": [')), SearchError,
     r"search\.json is damaged: not valid JSON", None),
    ("search-json-list", lambda t: SearchResult.load(_damaged(t, "[]")), SearchError,
     r"holds a JSON list, not the object", None),
    ("search-json-foreign", lambda t: SearchResult.load(_damaged(t, '{"trials": [{"x": 1}], "space": {}}')),
     SearchError, r"not a search record babysit can read", None),
    ("history-empty", lambda t: read_json_object((t / "h.json", t.joinpath("h.json").write_text(""))[0],
                                                 what="history", fix="train again"),
     CheckpointError, r"h\.json is empty", None),
    ("unknown-sampler", lambda t: make_sampler("annealing", seed=0, space={}, trials=None, parallel=False),
     ConfigError, r"unknown sampler 'annealing'", None),
    ("empty-space", lambda t: babysit.search(Peak(), {}, storage="memory", progress=False), ConfigError,
     r"the search space is empty", None),
    ("memory-with-workers", lambda t: babysit.search(Peak(), {"lr": babysit.space.loguniform(1e-3, 1)},
                                                     storage="memory", workers=2, progress=False),
     ConfigError, r"needs workers=1", None),
    ("unset-env-storage", lambda t: babysit.search(Peak(), {"lr": babysit.space.loguniform(1e-3, 1)},
                                                   storage="${BABYSIT_UNSET_VAR_Q}", search_dir=t, progress=False),
     ConfigError, r"BABYSIT_UNSET_VAR_Q.*not set", None),
    # --- fit: checked before the first step (train/_inputs.py), so no shape or dtype error escapes from inside ----
    ("fit-float64-model", lambda t: _fit(nn.Linear(4, 3).double(), (X, Y))(), BabysitError, r"float64.*float32",
     None),
    ("fit-bf16-model", lambda t: _fit(nn.Linear(4, 3).to(torch.bfloat16), (X, Y))(), BabysitError,
     r"bfloat16.*precision", None),
    ("fit-wrong-width", lambda t: _fit(nn.Linear(5, 3), (X, Y))(), BabysitError, r"inputs, shaped \(N, 4\)", None),
    ("fit-flat-output", lambda t: _fit(_Flat(), (X, Y))(), BabysitError, r"returns \(2,\).*\(N, C\)", None),
    ("fit-dataset-labels", lambda t: _fit(nn.Linear(4, 3), TensorDataset(X, Y + 5))(), BabysitError,
     r"train label 7 is out of range", None),
    ("fit-empty-val-dataset", lambda t: _fit(nn.Linear(4, 3), (X, Y), TensorDataset(XV[:0], YV[:0]))(),
     DataError, r"validation data.*is empty", None),
    ("fit-empty-loader", lambda t: _fit(nn.Linear(4, 3), DataLoader(TensorDataset(X[:0], Y[:0]), batch_size=4))(),
     DataError, r"yields no batches", None),
    ("fit-one-class", lambda t: _fit(nn.Linear(4, 3), (X, Y * 0), (XV, YV * 0))(), DataError,
     r"single class \(0\)", None),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [pytest.param(c, e, m, id=i, marks=[pytest.mark.xfail(reason=x, strict=True)] if x else []) for i, c, e, m, x in
     CASES],
)
def test_bad_input_raises_babysits_own_error(tmp_path: Path, call: Callable[[Path], object],
                                             error: type[BaseException], message: str) -> None:
    with pytest.raises(BabysitError) as info:
        call(tmp_path)
    assert isinstance(info.value, error), repr(info.value)
    assert re.search(message, str(info.value)), str(info.value)


def test_a_class_without_training_examples_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="babysit"):
        bundle = data.from_arrays(np.random.rand(30, 2), np.arange(30) % 3, num_classes=4)
    assert bundle.num_classes == 4
    assert "class 3 has no training example" in caplog.text


@pytest.mark.parametrize("url", ["postgresql://u:S3cret@no-such-host.invalid/db", "foo://u:S3cret@h/db"])
def test_storage_errors_fail_fast_and_hide_the_password(url: str) -> None:
    from babysit.errors import StorageError
    from babysit.hpsearch._storage import make_storage

    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        make_storage(url)
    assert time.monotonic() - started < 5
    assert "S3cret" not in str(info.value) and "***" in str(info.value)


def test_only_transient_storage_errors_are_retried_and_each_retry_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlalchemy.exc

    from babysit.errors import StorageError
    from babysit.hpsearch import _storage

    monkeypatch.setattr(_storage.time, "sleep", lambda s: None)
    url = "postgresql://alice:S3cret-77@db.example.org/search"
    calls = []

    def dropped_twice() -> str:
        calls.append(1)
        if len(calls) <= 2:
            lost = Exception("server closed the connection unexpectedly")
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, lost)
        return "ok"

    with caplog.at_level(logging.WARNING, logger="babysit"):
        assert _storage._retrying(dropped_twice, url=url)() == "ok"
    # a dropped connection is retried, visibly, with the password hidden
    assert len(calls) == 3 and "retry 1 of" in caplog.text and "retry 2 of" in caplog.text
    assert "S3cret-77" not in caplog.text and "alice:***@db.example.org" in caplog.text
    calls.clear()

    def wrong_password() -> str:
        calls.append(1)
        raise sqlalchemy.exc.OperationalError("connect", {}, Exception(
            'connection failed: FATAL:  password authentication failed for user "alice"'))

    # a wrong password is not retried: one attempt, then the clear error
    with pytest.raises(StorageError, match=r"cannot log in to the study database postgresql://alice:\*\*\*@"):
        _storage._retrying(wrong_password, url=url)()
    assert len(calls) == 1
