"""diagnose(): the rule set, its contract, ordering, errors, and History.diagnose()."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import babysit
from babysit.diagnose import RULES, diagnose, thresholds
from babysit.errors import ConfigError
from babysit.history import History
from babysit.testing.contracts import check_rule
from babysit.testing.histories import make_history

# the vocabulary's codes that concern training (the rest belong to gradcheck, sanity and search)
TRAINING_CODES = {
    "loss_diverged", "lr_too_high", "lr_too_low", "loss_noisy", "overfitting", "underfitting", "no_learning",
    "update_ratio_too_high", "update_ratio_too_low", "vanishing_activations", "exploding_activations",
    "saturated_activations", "dead_units", "vanishing_gradients", "exploding_gradients", "frozen_parameters",
    "gradient_accumulation", "regularization_dominates", "inputs_not_normalized", "softmax_before_loss",
    "eval_nondeterministic", "train_val_mismatch",
}


def test_every_training_code_has_exactly_one_rule() -> None:
    # one rule per code, and no rule for a code outside the vocabulary
    assert set(RULES) == TRAINING_CODES


def test_every_code_names_its_lecture_item_and_is_documented() -> None:
    from babysit.reporting._page import LECTURE

    lecture = (Path(__file__).resolve().parents[2] / "docs" / "lecture.md").read_text()
    # the report's card says which lecture item a finding belongs to, and docs/lecture.md names the code there
    assert set(RULES) <= set(LECTURE)
    assert [code for code in sorted(RULES) if f"`{code}`" not in lecture] == []


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_contract(code: str) -> None:
    # never raises on odd histories, reports only its code, stays pure
    check_rule(RULES[code])


def test_thresholds_are_documented_with_a_source() -> None:
    source = Path(thresholds.__file__).read_text()
    constants = [line for line in source.splitlines() if re.match(r"^[A-Z_]+ = ", line)]
    # every threshold line says where its number comes from
    assert len(constants) >= 20
    assert all("#" in line for line in constants)


def test_diagnose_sorts_errors_first_and_history_method_agrees() -> None:
    h = make_history(train_loss=[2.3, 2.1, 80.0, 90.0], series={"act/act1/dead": [0.9] * 3})
    findings = diagnose(h)
    # errors come before warnings, and History.diagnose() is the same call
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert [f.code for f in h.diagnose()] == [f.code for f in findings]
    assert {"loss_diverged", "dead_units"} <= {f.code for f in findings}


def test_unknown_rule_name_lists_the_rules() -> None:
    with pytest.raises(ConfigError, match="dead_units"):
        diagnose(History(), rules=["dead_unit"])


def test_a_failing_rule_is_logged_and_the_others_still_run(monkeypatch, caplog) -> None:
    def broken(history):
        raise RuntimeError("boom")

    monkeypatch.setitem(RULES, "dead_units", RULES["dead_units"].__class__("dead_units", "B5", broken))
    h = make_history(train_loss=[2.3, 2.1, 80.0])
    with caplog.at_level(logging.ERROR, logger="babysit"):
        findings = diagnose(h)
    # the broken rule is reported in the log, the diagnosis goes on
    assert "dead_units" in caplog.text
    assert "loss_diverged" in {f.code for f in findings}


def test_without_layer_statistics_an_info_finding_says_so() -> None:
    findings = diagnose(make_history(train_loss=[2.3, 1.0, 0.5]))
    # monitor=False runs get told that only the curves were judged
    assert [f.code for f in findings] == ["layer_statistics_missing"]
    assert findings[0].severity == "info"


def test_diagnose_reads_a_saved_run(tmp_path, digits) -> None:
    model = babysit.models.build("mlp", input_shape=digits.input_shape, num_classes=10, seed=0, bias_init=-5.0)
    h = babysit.fit(model, digits, optimizer="sgd", lr=0.05, epochs=3, run_dir=tmp_path)
    loaded = History.load(tmp_path)
    # the diagnosis stored by fit is the one a later reader gets from the folder
    assert [f["code"] for f in loaded.findings] == [f["code"] for f in h.findings]
    assert [f.code for f in loaded.diagnose()] == [f["code"] for f in loaded.findings]
    assert "dead_units" in {f["code"] for f in loaded.findings}
