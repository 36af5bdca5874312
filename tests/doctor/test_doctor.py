"""babysit doctor end to end on real data and real training: a sick config repaired and verified, a healthy one
left alone, code-level faults named and never covered up, bad input refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from doctor_zoo import BY_NAME, write_tables
from typer.testing import CliRunner

from babysit.cli import app
from babysit.config import config_from_dict, load_config
from babysit.repair import DoctorResult, doctor

SICK_DIGITS = """name = "sick"
runs_dir = "{runs}"
device = "cpu"
[model]
hidden = [128, 64]
[optimizer]
name = "nesterov"
lr = 5.0  # far too high
[train]
epochs = 10
"""


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_doctor_repairs_a_diverging_digits_config_and_writes_it_next_to_the_input(tmp_path: Path) -> None:
    config = tmp_path / "sick.toml"
    text = SICK_DIGITS.format(runs=tmp_path / "runs")
    config.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    result = _invoke("doctor", str(config))
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    # what was wrong, what was changed, before and after, within the 3 minutes on 2 cores
    assert "loss_diverged" in result.output and "changed optimizer.lr" in result.output
    assert "before/after" in result.output and elapsed < 180
    assert config.read_text(encoding="utf-8") == text  # the input is never overwritten
    fixed = load_config(tmp_path / "sick.fixed.toml")
    assert fixed.optimizer.lr < 0.5 and fixed.model.hidden == [128, 64] and fixed.train.epochs == 10
    folder = tmp_path / "runs" / "sick-doctor"
    done = DoctorResult.load(folder)
    assert done.status == "repaired" and len(done.attempts) >= 2
    # every attempt is its own run folder, and the kept fix is verified: the finding gone, accuracy up past noise
    assert all((Path(a.run_dir) / "history.jsonl").is_file() for a in done.attempts)
    kept = done.after
    # the findings it kept carry their machine-readable remedy: a config change for the diverging rate
    diverged = next(f for f in done.before.findings if f["code"] == "loss_diverged")
    assert set(diverged["fix"]) == {"optimizer.lr"} and diverged["fix"]["optimizer.lr"] < 5.0
    assert "loss_diverged" not in kept.loud_codes() and kept.best_val_acc > (done.before.best_val_acc or 0.0) + 0.5
    page = (folder / "doctor.html").read_text(encoding="utf-8")
    assert "Before and after" in page and "learning-rate range test" in page.lower()


def test_doctor_leaves_a_healthy_config_as_it_is(tmp_path: Path) -> None:
    raw = BY_NAME["digits_nesterov"].config(0, tmp_path) | {"runs_dir": str(tmp_path / "runs")}
    result = doctor(config_from_dict(raw))
    assert result.status == "nothing_to_repair" and result.ok
    assert result.fixed == result.original and len(result.attempts) == 1


def test_cli_doctor_refuses_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "sick.toml"
    config.write_text(SICK_DIGITS.format(runs=tmp_path / "runs"), encoding="utf-8")
    same = _invoke("doctor", str(config), "--out", str(config))
    # never overwrite the input: one line naming the problem and the fix, exit 2, nothing trained
    assert same.exit_code == 2 and "never overwrites" in same.output
    assert not (tmp_path / "runs").exists()
    missing = _invoke("doctor", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_doctor_names_a_softmax_before_the_loss_and_changes_nothing(tmp_path: Path) -> None:
    entry = BY_NAME["digits_softmax_before_loss"]
    raw = entry.config(0, tmp_path) | {"runs_dir": str(tmp_path / "runs")}
    result = doctor(config_from_dict(raw), model=entry.model)
    # only the code can fix it: named with its instruction, fix None, no config change tried
    assert result.status == "code_level" and not result.ok
    named = {c["code"]: c for c in result.code_level}
    assert "softmax_before_loss" in named and named["softmax_before_loss"]["fix"] is None
    assert "logits" in named["softmax_before_loss"]["instruction"]
    assert result.fixed == result.original and len(result.attempts) == 1 and not result.changes


def test_doctor_standardizes_raw_tabular_inputs_read_from_csv(tmp_path: Path) -> None:
    csv = write_tables(tmp_path / "csv")
    entry = BY_NAME["cancer_raw_inputs"]
    raw = entry.config(0, csv) | {"runs_dir": str(tmp_path / "runs")}
    result = doctor(config_from_dict(raw))
    assert result.status in ("repaired", "improved")
    assert {"data.normalize": "standardize"} in [c["fix"] for c in result.changes]
    assert result.after.best_val_acc > 0.9


def test_a_built_model_cannot_take_model_fixes_so_they_become_instructions(tmp_path: Path, digits) -> None:
    from babysit import models

    raw = BY_NAME["digits_nesterov"].config(0, tmp_path) | {"runs_dir": str(tmp_path / "runs")}
    tiny = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[64] * 6, activation="tanh",
                        init="normal", init_std=0.01, seed=0)
    result = doctor(config_from_dict(raw), model=tiny, data=digits)
    # the config's [model] does not reach a module the caller built: the init fix is an instruction, not a change
    assert result.status == "code_level" and result.fixed == result.original
    named = {c["code"]: c["instruction"] for c in result.code_level}
    assert "init" in named["vanishing_activations"].lower(), named


def test_an_interrupted_doctor_keeps_its_attempts(tmp_path: Path) -> None:
    config = tmp_path / "sick.toml"
    config.write_text(SICK_DIGITS.format(runs=tmp_path / "runs"), encoding="utf-8")

    def ctrl_c_at_the_second_run(event: str, details: dict) -> None:
        if event == "attempt" and details["index"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        doctor(config, on_progress=ctrl_c_at_the_second_run)
    done = DoctorResult.load(tmp_path / "runs" / "sick-doctor")
    # the first run is kept, in its run folder, and the record says the session was interrupted
    assert done.status == "interrupted" and len(done.attempts) == 1
    assert (Path(done.attempts[0].run_dir) / "history.jsonl").is_file()


def test_the_budget_stops_the_doctor_before_a_run_it_cannot_finish(tmp_path: Path) -> None:
    config = tmp_path / "sick.toml"
    config.write_text(SICK_DIGITS.format(runs=tmp_path / "runs"), encoding="utf-8")
    result = doctor(config, budget_s=0.01, checks=False)
    # the first run is always made; no fix is started past the budget, and the record says why it stopped
    assert len(result.attempts) == 1 and result.status == "not_repaired" and "budget" in result.note
    assert not result.ok and result.fixed == result.original
