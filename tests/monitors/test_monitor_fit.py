"""fit(monitor=...): what the run folder holds, what monitor=False leaves out, Monitor instances, resume."""

from __future__ import annotations

import pytest
import torch

import babysit
from babysit import Monitor, models
from babysit.errors import ConfigError
from babysit.history import History
from babysit.monitors import DEFAULT_EVERY
from babysit.testing.contracts import check_series_scheme


def _mlp(bundle, **kw):
    return models.build("mlp", input_shape=bundle.input_shape, num_classes=10, seed=0, **kw)


def _fit(model, bundle, **kw):
    kw.setdefault("epochs", 3)
    return babysit.fit(model, bundle, optimizer="nesterov", lr=0.05, **kw)


def test_monitor_true_records_every_layer_into_the_run_folder(digits, tmp_path) -> None:
    model = _mlp(digits, hidden=[32, 16])
    h = _fit(model, digits, run_dir=tmp_path, epochs=7)  # 119 steps: sampled at 1 and 101
    saved = History.load(tmp_path)
    # layers in forward order, the documented key scheme, sampled every DEFAULT_EVERY steps from step 1
    assert [x["name"] for x in saved.layers] == ["fc1", "act1", "fc2", "act2", "fc3"]
    check_series_scheme(saved)
    assert saved.series["ratio/fc1.weight"]["step"][:2] == [1, 1 + DEFAULT_EVERY]
    assert {"act/act1/dead", "grad/fc3.weight/norm", "weight/fc2.weight/norm", "input/std"} <= set(saved.series)
    assert saved.sections["monitor"]["every"] == DEFAULT_EVERY
    # the diagnosis is stored with the run; a healthy run has no warning or error
    assert saved.findings == h.findings
    assert not [f for f in saved.findings if f["severity"] != "info"]
    # fit removed its hooks
    assert not model._forward_hooks and not model.fc1._forward_hooks and not model._forward_pre_hooks


def test_monitor_false_records_nothing_per_layer_and_trains_identically(digits) -> None:
    on = _fit(_mlp(digits, hidden=[32]), digits, monitor=True)
    off = _fit(_mlp(digits, hidden=[32]), digits, monitor=False)
    # the Monitor only reads: the same losses to the last bit
    assert on.steps["loss"] == off.steps["loss"]
    assert not off.series and not off.layers
    assert [f["code"] for f in off.findings] == ["layer_statistics_missing"]


def test_monitor_settings_dict_and_instance(digits) -> None:
    h = _fit(_mlp(digits, hidden=[32]), digits, monitor={"every": 4})
    assert h.series["ratio/fc1.weight"]["step"][:3] == [1, 5, 9]

    model = _mlp(digits, hidden=[32])
    monitor = Monitor(model, every=7)  # fit attaches its own optimizer
    h = _fit(model, digits, monitor=monitor)
    # the instance recorded into fit's History, with the update ratios of fit's optimizer
    assert monitor.history is h
    assert h.series["ratio/fc1.weight"]["step"][:2] == [1, 8]
    monitor.close()


def test_bad_monitor_arguments(digits) -> None:
    model = _mlp(digits, hidden=[32])
    with pytest.raises(ConfigError, match="monitor must be"):
        _fit(model, digits, monitor="yes")
    with pytest.raises(ConfigError, match=r"unknown Monitor setting 'evry'.*Did you mean 'every'\?"):
        _fit(model, digits, monitor={"evry": 3})
    other = Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ConfigError, match="another optimizer"):
        _fit(model, digits, monitor=other)
    with pytest.raises(ConfigError, match="another model"):
        _fit(_mlp(digits, hidden=[32]), digits, monitor=Monitor(model))


def test_divergence_names_the_first_nonfinite_layer(digits) -> None:
    h = babysit.fit(_mlp(digits, hidden=[32]), digits, optimizer="sgd", lr=1e6, epochs=3)
    (first,) = [f for f in h.findings if f["code"] == "loss_diverged"]
    # the run stopped, the finding names the layer whose output first became non-finite and the lr
    assert h.status == "diverged"
    assert first["severity"] == "error"
    assert first["evidence"]["first_nonfinite_layer"] in {"fc1", "act1", "fc2"}
    assert "lr" in first["suggestion"]


def test_resume_continues_the_series(digits, tmp_path) -> None:
    _fit(_mlp(digits, hidden=[32]), digits, epochs=2, run_dir=tmp_path, monitor={"every": 5})
    h = babysit.fit(_mlp(digits, hidden=[32]), digits, optimizer="nesterov", lr=0.05, epochs=4, run_dir=tmp_path,
                    resume=True, monitor={"every": 5})
    steps = h.series["ratio/fc1.weight"]["step"]
    # after resuming, sampling continues on the same grid with no step recorded twice
    assert steps == sorted(set(steps)) and steps == list(range(1, len(h.steps["step"]) + 1, 5))


def test_a_compiled_fit_is_monitored_without_a_recompilation(digits, monkeypatch) -> None:
    from torch._dynamo.utils import counters

    from babysit.diagnose import run_rules

    # dynamo's own backend: the tracing and guards under test, without generating C++ for the CPU
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_(model, backend="eager", **kw))

    def cnn():  # batch norm and dropout: training and evaluation mode trace differently
        return models.build("cnn", input_shape=digits.input_shape, num_classes=10, seed=0, batch_norm=True,
                            dropout=0.2)

    frames, runs = {}, {}
    for monitor in (False, True):
        torch._dynamo.reset()
        counters.clear()
        runs[monitor] = _fit(cnn(), digits, monitor=monitor, epochs=2, options={"compile": True})
        frames[monitor] = counters["frames"]["ok"]
    # the monitor on compiles nothing more: training and evaluation mode once each, as without it
    assert frames[True] == frames[False] == 2
    # it only reads: the compiled run's losses are the uncompiled, unmonitored run's
    assert runs[True].steps["loss"] == pytest.approx(_fit(cnn(), digits, monitor=False, epochs=2).steps["loss"],
                                                     rel=1e-5)
    # the parameters are watched; the layers are not hooked inside the compiled forward, and the rules that
    # need their activations say so instead of finding nothing
    h = runs[True]
    assert "grad/fc1.weight/norm" in h.series and "ratio/conv1.weight" in h.series
    assert not [key for key in h.series if key.startswith("act/")]
    assert run_rules(h).skipped["dead_units"] == ["dead_fraction"]
