"""Remedies: a finding's code, evidence and the config give the config change that cures it, or None with an
instruction where only code can; Finding.fix survives saving and older findings still load."""

from __future__ import annotations

import json

import pytest

from babysit.config import config_from_dict
from babysit.findings import Finding
from babysit.repair import CODE_LEVEL, accuracy_noise, apply_fix, judge, remedy_for, with_fixes


def _cfg(**sections):
    return config_from_dict({"device": "cpu", **sections})


@pytest.mark.parametrize(("code", "sections", "evidence", "expected"), [
    ("loss_diverged", {"optimizer": {"name": "sgd", "lr": 20.0}}, {"lr": 20.0}, {"optimizer.lr": 2.0}),
    ("lr_too_high", {"optimizer": {"name": "adam", "lr": 0.1}}, {}, {"optimizer.lr": 0.033}),
    ("lr_too_low", {"optimizer": {"name": "sgd", "lr": 1e-5}}, {}, {"optimizer.lr": 1e-4}),
    ("vanishing_activations", {"model": {"activation": "tanh", "init": "normal"}}, {}, {"model.init": "xavier"}),
    ("exploding_activations", {"model": {"init": "normal", "init_std": 1.0}}, {}, {"model.init": "he"}),
    ("dead_units", {"model": {"bias_init": -5.0}}, {}, {"model.bias_init": 0.0}),
    ("regularization_dominates", {"train": {"reg": 1.0}}, {"reg": 1.0}, {"train.reg": 0.01}),
    ("inputs_not_normalized", {"data": {"normalize": "none"}}, {}, {"data.normalize": "standardize"}),
    ("overfitting", {}, {}, {"train.reg": 1e-3}),
])
def test_config_level_finding_gets_its_fix(code, sections, evidence, expected) -> None:
    finding = Finding(code, "warning", "seen", evidence)
    [fixed] = with_fixes([finding], _cfg(**sections))
    # the first fix is the lecture's cure for that symptom, in this config's terms
    assert fixed.fix == expected
    apply_fix(_cfg(**sections), fixed.fix)  # and it is a valid config change


def test_lr_hint_from_the_range_test_goes_first_only_in_the_right_direction() -> None:
    cfg = _cfg(optimizer={"name": "nesterov", "lr": 5.0})
    assert remedy_for(Finding("loss_diverged", "error", "x"), cfg, lr_hint=0.013).fixes[0] == {"optimizer.lr": 0.013}
    assert remedy_for(Finding("lr_too_high", "warning", "x"), cfg).fixes[0] == {"optimizer.lr": 1.7}
    # a range test that measured a higher rate contradicts "too high": no rate change, the cause lies elsewhere
    contradicted = remedy_for(Finding("lr_too_high", "warning", "x"), cfg, lr_hint=9.0)
    assert contradicted.fixes == [] and "elsewhere" in contradicted.reason
    assert remedy_for(Finding("lr_too_low", "warning", "x"), cfg, lr_hint=0.01).fixes == []


@pytest.mark.parametrize("code", sorted(CODE_LEVEL))
def test_code_level_faults_get_an_instruction_and_no_fix(code) -> None:
    [fixed] = with_fixes([Finding(code, "error", "seen")], _cfg())
    remedy = remedy_for(fixed, _cfg())
    # no config change may hide a code-level fault
    assert fixed.fix is None and remedy.code_level and remedy.instruction


def test_model_fixes_for_a_factory_model_become_instructions() -> None:
    cfg = _cfg(model={"kind": "tests.somewhere:build", "init": "normal"})
    remedy = remedy_for(Finding("vanishing_activations", "warning", "x"), cfg)
    assert remedy.code_level and "tests.somewhere:build" in remedy.instruction
    labels = remedy_for(Finding("no_learning", "error", "x", {"cause": "the network memorises labels"}), _cfg())
    assert labels.code_level and "labels" in labels.instruction


def test_finding_fix_round_trips_and_old_records_load() -> None:
    f = Finding("lr_too_high", "warning", "loss rose", {"lr": 0.1}, "lower it", fix={"optimizer.lr": 0.03})
    again = Finding.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f and Finding(**f.to_dict()) == f
    old = {"code": "lr_too_high", "severity": "warning", "message": "m", "evidence": {}, "suggestion": "s"}
    assert Finding.from_dict(old).fix is None and Finding(**old).fix is None
    assert Finding.from_dict({**old, "suggestion": "", "advice": "a"}).suggestion == "a"


def test_a_fix_is_kept_only_beyond_the_noise_of_the_validation_split() -> None:
    # 362 validation digits: the binomial standard error of the difference at ~95% is ~1.6 points
    assert 0.015 < accuracy_noise(0.95, 0.95, 362) < 0.017
    assert not judge("lr_too_high", 0.94, 0.95, 362, []).kept  # +1 point: noise
    assert judge("lr_too_high", 0.90, 0.95, 362, []).kept  # +5 points: real
    assert not judge("lr_too_high", 0.10, 0.95, 362, ["lr_too_high"]).kept  # the finding is still there
    assert not judge("loss_diverged", None, 0.5, 36, ["update_ratio_too_high", "loss_diverged"]).kept


def test_rate_remedies_recommend_the_diagnosis_rate() -> None:
    """Every finding about the learning rate recommends one rate, evidence["recommended_lr"]: its config fix too."""
    cfg = _cfg(optimizer={"name": "sgd", "lr": 3.0})
    for code in ("update_ratio_too_high", "lr_too_high", "loss_diverged"):
        finding = Finding(code, "warning", "x", {"lr": 3.0, "recommended_lr": 1e-4})
        assert remedy_for(finding, cfg).fixes[0] == {"optimizer.lr": 1e-4}
    low = _cfg(optimizer={"name": "sgd", "lr": 1e-5})
    for code in ("lr_too_low", "update_ratio_too_low"):
        finding = Finding(code, "warning", "x", {"lr": 1e-5, "recommended_lr": 0.003})
        assert remedy_for(finding, low).fixes[0] == {"optimizer.lr": 0.003}
    # a recommendation that moves the rate the other way is no cure for that finding: the factor steps stand
    against = Finding("lr_too_high", "warning", "x", {"lr": 3.0, "recommended_lr": 10.0})
    assert remedy_for(against, cfg).fixes[0] == {"optimizer.lr": 1.0}
    # the range test's measured rate still goes first in the doctor, then the recommended one
    hinted = remedy_for(Finding("lr_too_high", "warning", "x", {"recommended_lr": 1e-4}), cfg, lr_hint=0.02)
    assert hinted.fixes[:2] == [{"optimizer.lr": 0.02}, {"optimizer.lr": 1e-4}]


def test_a_divergence_from_raw_inputs_is_cured_at_its_cause_first() -> None:
    """loss_diverged whose cause is unnormalised inputs says "standardise, then retry the same rate": its config
    fix is that, with lower rates after it."""
    cfg = _cfg(data={"normalize": "none"}, optimizer={"name": "sgd", "lr": 3.0})
    finding = Finding("loss_diverged", "error", "x", {"lr": 3.0, "cause_code": "inputs_not_normalized"})
    remedy = remedy_for(finding, cfg)
    assert remedy.fixes[0] == {"data.normalize": "standardize"}
    assert {"optimizer.lr": 0.3} in remedy.fixes[1:]
    # a run that learns nothing because it diverged gets no second, different cure
    stuck = Finding("no_learning", "error", "x", {"cause": "the loss diverged", "cause_code": "diverged"})
    assert remedy_for(stuck, cfg).fixes == []
