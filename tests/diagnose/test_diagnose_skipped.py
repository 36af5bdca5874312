"""Rules declare the quantities they need: a quantity left out switches its rules off visibly (skipped, with
what they need) in run_rules, the CLI and the report, never silently; and every rule reads only what it
declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import babysit
from babysit import diagnose as diagnose_package
from babysit.cli import app
from babysit.diagnose import RULES, run_rules, skipped_rules
from babysit.errors import ConfigError
from babysit.history import History
from babysit.quantities import QUANTITIES, name_of
from babysit.testing.contracts import edge_histories
from babysit.testing.histories import make_history


def _dead_relus(digits):
    """An MLP whose hidden ReLUs cannot fire: the hidden bias is -10 on standardised inputs."""
    model = babysit.models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    with torch.no_grad():
        model.fc1.bias.fill_(-10.0)
    return model


def test_a_skipped_quantity_skips_its_rule_and_says_so(digits, tmp_path) -> None:
    skipped = babysit.fit(_dead_relus(digits), digits, optimizer="sgd", lr=0.05, epochs=3, run_dir=tmp_path / "skip",
                          monitor={"skip": ["dead_fraction"]})
    default = babysit.fit(_dead_relus(digits), digits, optimizer="sgd", lr=0.05, epochs=3, run_dir=tmp_path / "all")
    # with every quantity, the dead ReLUs are found
    assert "dead_units" in {f["code"] for f in default.findings}
    assert "dead_units" not in run_rules(default).skipped
    # without dead_fraction the rule does not run, and it is reported as skipped, needing dead_fraction
    assert "dead_units" not in {f["code"] for f in skipped.findings}
    assert "dead_fraction" not in skipped.recorded_quantities()
    diagnosis = run_rules(skipped)
    assert diagnosis.skipped == {"dead_units": ["dead_fraction"]}
    assert [f.code for f in diagnosis.findings] == [f["code"] for f in skipped.findings]
    # the same from the run folder: the CLI lists it with --verbose
    verbose = CliRunner().invoke(app, ["diagnose", str(tmp_path / "skip"), "--verbose"], env={"COLUMNS": "200"})
    assert verbose.exit_code in (0, 1), verbose.output
    assert re.search(r"dead_units\s.*dead_fraction", verbose.output)
    quiet = CliRunner().invoke(app, ["diagnose", str(tmp_path / "skip")], env={"COLUMNS": "200"})
    assert "1 rule skipped" in quiet.output and "dead_fraction" not in quiet.output
    everything = CliRunner().invoke(app, ["diagnose", str(tmp_path / "all"), "-v"], env={"COLUMNS": "200"})
    assert "every rule ran" in everything.output


def test_the_report_notes_the_skipped_rules(tmp_path) -> None:
    from babysit.reporting.html import render_html

    h = make_history(train_loss=[2.3, 1.5, 1.0], sections={"monitor": {"quantities": ["update_ratio"]}})
    page = render_html(h)
    # a small note in the findings section: each skipped rule with what it needs
    note = page[page.index('id="skipped-rules"') :].split("</p>")[0]
    assert "<code>dead_units</code> (needs dead_fraction)" in note
    assert "<code>frozen_parameters</code> (needs gradient_norm)" in note
    assert "update_ratio_too_high" not in note
    assert 'id="skipped-rules"' not in render_html(make_history(train_loss=[2.3, 1.5, 1.0]))


def test_run_rules_on_scripted_histories() -> None:
    recorded = make_history(series={"act/act1/dead": [0.9] * 3},
                            sections={"monitor": {"quantities": ["dead_fraction", "update_ratio"]}})
    diagnosis = run_rules(recorded, rules=["dead_units", "inputs_not_normalized", "loss_noisy"])
    # a rule runs when its quantities were recorded; one needing another is skipped; a curve rule always runs
    assert [f.code for f in diagnosis.findings] == ["dead_units"]
    assert diagnosis.skipped == {"inputs_not_normalized": ["input_moments"]}
    assert skipped_rules(recorded, rules=["inputs_not_normalized"]) == diagnosis.skipped
    # an old history (a monitor section, no list): the defaults were recorded, nothing is skipped
    assert run_rules(make_history(train_loss=[2.3, 1.0])).skipped == {}
    # no monitor at all: every rule that needs a quantity is skipped, the curves are still judged
    bare = History(epochs=make_history(train_loss=[2.3, 2.0, 1.0]).epochs)
    assert set(run_rules(bare).skipped) == {code for code, r in RULES.items() if r.needs}
    assert [f.code for f in run_rules(bare).findings] == ["layer_statistics_missing"]


def test_rules_that_read_monitor_series_declare_them() -> None:
    # the brief's table, and nothing else is needed by a rule (those reading only curves need nothing)
    needs = {code: set(r.needs) for code, r in RULES.items() if r.needs}
    assert needs == {
        "dead_units": {"dead_fraction"}, "vanishing_activations": {"activation_moments"},
        "exploding_activations": {"activation_moments"}, "update_ratio_too_high": {"update_ratio"},
        "update_ratio_too_low": {"update_ratio"}, "frozen_parameters": {"update_ratio", "gradient_norm"},
        "gradient_accumulation": {"gradient_carry"}, "vanishing_gradients": {"gradient_norm"},
        "exploding_gradients": {"gradient_norm"}, "saturated_activations": {"saturation"},
        "inputs_not_normalized": {"input_moments"}, "softmax_before_loss": {"output_range"},
        "eval_nondeterministic": {"eval_disagreement"},
    }


@pytest.mark.parametrize("code", sorted(RULES))
def test_a_rule_reads_only_the_quantities_it_declares(code: str, monkeypatch) -> None:
    read: set[str] = set()
    for method in ("series_of", "snapshots_of", "targets"):
        real = getattr(History, method)

        def spy(self, quantity, *args, _real=real, **kwargs):
            read.add(name_of(quantity))
            return _real(self, quantity, *args, **kwargs)

        monkeypatch.setattr(History, method, spy)
    rule = RULES[code]
    for _, history in edge_histories():
        rule(history)
    # what it read is what it needs or uses
    assert read <= set(rule.needs) | set(rule.uses), f"{code} reads {sorted(read - set(rule.needs + rule.uses))}"


def test_the_diagnosis_never_spells_a_key() -> None:
    folder = Path(diagnose_package.__file__).parent
    keys = re.compile(r"history\.(series|histograms)\b(?!_of)|[\"'](act|grad|ratio|weight|input|output|eval)/")
    offenders = [f"{path.name}:{n}" for path in sorted(folder.glob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if keys.search(line)]
    # every statistic is read through its quantity (History.series_of / targets)
    assert offenders == []


def test_a_rule_needing_an_unknown_quantity_fails_at_registration() -> None:
    with pytest.raises(ConfigError, match="dead_fraction"):
        babysit.diagnose.rule("made_up_rule", needs=("dead_fractions",))
    assert "made_up_rule" not in RULES and set(QUANTITIES) >= {n for r in RULES.values() for n in r.needs}
