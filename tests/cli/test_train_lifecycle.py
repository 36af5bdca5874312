"""`babysit train` from start to resume, through the real CLI on the digits data: a start that fails or is
interrupted before training saved anything leaves no run behind; an interrupted run says truly what it kept;
--resume takes only what a continued run can change and records it; a run that diverged before its first
checkpoint says so; a second Ctrl-C while the final page is drawn skips only the page."""

from __future__ import annotations

import os
import signal
import sys
import types
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from babysit.cli import app
from babysit.history import History
from babysit.train import loop

runner = CliRunner()

DIGITS = """
name = "digits"
runs_dir = "{runs}"
device = "cpu"
[data]
source = "digits"
[model]
kind = "mlp"
hidden = [32]
[train]
epochs = {epochs}
report = {report}
[optimizer]
name = "momentum"
lr = 0.01
momentum = 0.9
"""


def _config(tmp_path: Path, epochs: int = 2, report: bool = False) -> Path:
    path = tmp_path / "digits.toml"
    path.write_text(DIGITS.format(runs=tmp_path / "runs", epochs=epochs, report=str(report).lower()))
    return path


def _train(*args: str):
    return runner.invoke(app, ["train", *args, "--no-progress"], env={"COLUMNS": "300"})


def _runs(tmp_path: Path) -> list[str]:
    runs = tmp_path / "runs"
    return sorted(p.name for p in runs.iterdir()) if runs.exists() else []


# --- a failed start leaves no run behind --------------------------------------------------------------------
BAD_STARTS = [
    ["--set", "data.source=missing.npz"],  # the data file does not exist
    ["--set", "model.kind=cnnn"],  # no such model
    ["--set", "model.hidden=[0]"],  # a model that cannot be built
    ["--set", "data.val_fraction=0.9", "--set", "data.test_fraction=0.2"],  # splits over 100 %
]
if not torch.cuda.is_available():
    BAD_STARTS.append(["--set", "device=cuda"])  # a device that is not there


@pytest.mark.parametrize("bad", BAD_STARTS, ids=lambda b: b[-1])
def test_a_failed_start_leaves_no_run_and_the_next_start_uses_the_name(tmp_path, bad) -> None:
    config = _config(tmp_path, epochs=1)
    for _ in range(2):  # fixing the input takes some users more than one try
        result = _train(str(config), *bad)
        assert result.exit_code == 2, result.output
        assert "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs" / "digits").exists()
    # nothing to resume, and the fixed start trains into runs/digits, not runs/digits-2
    assert "no run to resume" in _train(str(config), "--resume").output
    result = _train(str(config))
    assert result.exit_code == 0, result.output
    assert _runs(tmp_path) == ["digits"]
    assert len(History.load(tmp_path / "runs" / "digits").epochs) == 1


def test_a_failed_start_keeps_the_users_own_files_and_folder(tmp_path) -> None:
    folder = tmp_path / "runs" / "digits"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    result = _train(str(_config(tmp_path)), "--set", "model.kind=cnnn")
    assert result.exit_code == 2
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_bad_overwrite_keeps_the_earlier_run(tmp_path) -> None:
    config = _config(tmp_path, epochs=1)
    assert _train(str(config)).exit_code == 0
    # the bad input is found before --overwrite removes anything
    assert _train(str(config), "--overwrite", "--set", "data.source=missing.npz").exit_code == 2
    assert len(History.load(tmp_path / "runs" / "digits").epochs) == 1
    assert (tmp_path / "runs" / "digits" / "checkpoints" / "last.pt").is_file()


# --- Ctrl-C: the printed line is true, and the next command it names works -----------------------------------
def _interrupt_line(output: str) -> str:
    return " ".join(line for line in output.splitlines() if line.startswith("interrupted:"))


def test_ctrl_c_while_setting_up_keeps_nothing_and_says_so(tmp_path, monkeypatch) -> None:
    from babysit.train import from_config

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(from_config, "prepare", interrupted)
    config = _config(tmp_path)
    result = _train(str(config))
    assert result.exit_code == 130, result.output
    line = _interrupt_line(result.output)
    assert "no run was kept" in line and "again" in line and "--resume" not in line
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs" / "digits").exists()


def test_ctrl_c_before_the_first_step_keeps_nothing_and_the_rerun_uses_the_name(tmp_path, monkeypatch,
                                                                                  plain_sigint) -> None:
    from babysit.train.run_folder import RunFolder

    real = RunFolder.on_fit_start

    def start_then_ctrl_c(self, run):
        real(self, run)
        os.kill(os.getpid(), signal.SIGINT)  # before any step: nothing trained, nothing to save

    monkeypatch.setattr(RunFolder, "on_fit_start", start_then_ctrl_c)
    config = _config(tmp_path)
    result = _train(str(config))
    assert result.exit_code == 130, result.output
    assert "no run was kept" in _interrupt_line(result.output)
    assert not (tmp_path / "runs" / "digits").exists()
    monkeypatch.setattr(RunFolder, "on_fit_start", real)
    assert _train(str(config)).exit_code == 0
    assert _runs(tmp_path) == ["digits"]


def test_ctrl_c_inside_an_epoch_saves_there_and_resume_continues(tmp_path, monkeypatch, plain_sigint) -> None:
    begun: list[int] = []
    real_step = loop.Step._plain

    def step_with_ctrl_c(step, X, y):
        begun.append(1)
        if len(begun) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # the step finishes, the run folder saves at step 5
        return real_step(step, X, y)

    monkeypatch.setattr(loop.Step, "_plain", step_with_ctrl_c)
    config = _config(tmp_path)
    result = _train(str(config))
    assert result.exit_code == 130, result.output
    line = _interrupt_line(result.output)
    assert "progress saved in" in line and "--resume" in line
    # the library's own line is in the command line's words
    assert "resume=True" not in result.output and "--resume continues it" in result.output
    assert (tmp_path / "runs" / "digits" / "checkpoints" / "last.pt").is_file()
    monkeypatch.setattr(loop.Step, "_plain", real_step)
    result = _train(str(config), "--resume")
    assert result.exit_code == 0, result.output
    h = History.load(tmp_path / "runs" / "digits")
    assert h.status == "completed" and len(h.epochs) == 2


def test_ctrl_c_in_a_run_started_as_name_2_names_that_run_to_resume(tmp_path, monkeypatch, plain_sigint) -> None:
    config = _config(tmp_path, epochs=1)
    assert _train(str(config)).exit_code == 0
    real_step = loop.Step._plain
    begun: list[int] = []

    def step_with_ctrl_c(step, X, y):
        begun.append(1)
        if len(begun) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(step, X, y)

    monkeypatch.setattr(loop.Step, "_plain", step_with_ctrl_c)
    result = _train(str(config))
    assert result.exit_code == 130
    assert "--resume --set name=digits-2" in _interrupt_line(result.output)


def test_resume_of_a_run_that_stopped_before_its_first_save_starts_it_from_the_beginning(tmp_path) -> None:
    """The CLI's resume check agrees with fit's: a folder whose log holds no epoch and no step is resumable."""
    import tomli_w

    from babysit.config import load_config

    config = _config(tmp_path, epochs=1)
    cfg = load_config(config)
    folder = cfg.run_dir
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(tomli_w.dumps(cfg.saved_dict()))
    h = History(run_dir=folder)
    h.status, h.meta = "interrupted", {"config": cfg.saved_dict()}
    h.save()  # what fit leaves when interrupted before its first save
    result = _train(str(config), "--resume")
    assert result.exit_code == 0, result.output
    assert len(History.load(folder).epochs) == 1


def test_resume_of_a_run_without_a_checkpoint_says_why_and_what_to_do(tmp_path) -> None:
    config = _config(tmp_path, epochs=2)
    assert _train(str(config), "--set", "optimizer.lr=1e8").exit_code == 1  # diverges in its first epoch
    result = _train(str(config), "--resume")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "no checkpoint" in text and "diverged" in text and "--overwrite" in text


# --- --resume and --set ---------------------------------------------------------------------------------------
def test_resume_refuses_a_setting_it_would_not_apply(tmp_path) -> None:
    config = _config(tmp_path, epochs=1)
    assert _train(str(config)).exit_code == 0
    result = _train(str(config), "--resume", "--set", "train.epochs=2", "--set", "optimizer.lr=0.1")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    # the error names the setting that differs and what may change on a resume
    assert "optimizer.lr (0.01 -> 0.1)" in text and "train.epochs" in text
    h = History.load(tmp_path / "runs" / "digits")
    assert len(h.epochs) == 1  # nothing trained


def test_resume_with_more_epochs_records_the_new_total(tmp_path) -> None:
    import tomllib

    config = _config(tmp_path, epochs=1, report=True)
    assert _train(str(config)).exit_code == 0
    result = _train(str(config), "--resume", "--set", "train.epochs=3")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "digits"
    h = History.load(folder)
    assert len(h.epochs) == 3
    # the folder's config, the History's meta and the report say what ran: 3 epochs of 3
    assert tomllib.loads((folder / "config.toml").read_text())["train"]["epochs"] == 3
    assert h.meta["epochs"] == 3 and h.meta["config"]["train"]["epochs"] == 3
    assert "3 of 3 epochs" in (folder / "report.html").read_text()


def test_resume_and_overwrite_together_are_refused(tmp_path) -> None:
    result = _train(str(_config(tmp_path)), "--resume", "--overwrite")
    assert result.exit_code == 2
    assert "contradict" in result.output


def test_a_directory_as_config_is_named_a_directory(tmp_path) -> None:
    _config(tmp_path)
    result = _train(str(tmp_path))
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "is a directory" in text and "digits.toml" in text and "does not exist" not in text


# --- divergence before the first checkpoint -------------------------------------------------------------------
def test_divergence_before_the_first_checkpoint_does_not_claim_one_was_kept(tmp_path) -> None:
    result = _train(str(_config(tmp_path, epochs=3)), "--set", "optimizer.lr=1e8")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "last good checkpoint was kept" not in text
    assert "no checkpoint was written" in text and "--overwrite" in text
    folder = tmp_path / "runs" / "digits"
    assert not (folder / "checkpoints").exists()
    assert "no checkpoint was written" in History.load(folder).stop_reason


def test_divergence_after_a_checkpoint_names_the_one_kept(tmp_path, digits) -> None:
    from babysit import Callback, fit, models

    class BlowUp(Callback):  # an epoch of healthy training, then a rate no run survives
        def on_epoch_end(self, run, record):
            for group in run.optimizer.param_groups:
                group["lr"] = 1e9

    model = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    h = fit(model, digits, optimizer="sgd", lr=0.01, epochs=4, run_dir=tmp_path / "run", callbacks=[BlowUp()],
            options={"report": False, "checkpoint_every_epochs": 1}, device="cpu")
    assert h.status == "diverged"
    assert "the last good checkpoint was kept" in h.stop_reason and "step" in h.stop_reason


# --- a second Ctrl-C while the final page is drawn ----------------------------------------------------------
def test_second_ctrl_c_while_drawing_the_report_skips_only_the_page(tmp_path, monkeypatch, plain_sigint) -> None:
    import babysit.reporting.html as html

    begun: list[int] = []
    real_step = loop.Step._plain

    def step_with_ctrl_c(step, X, y):
        begun.append(1)
        if len(begun) == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(step, X, y)

    def drawing_hit_by_ctrl_c(history, folder, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C again while the page is drawn

    monkeypatch.setattr(loop.Step, "_plain", step_with_ctrl_c)
    monkeypatch.setattr(html, "write_report", drawing_hit_by_ctrl_c)
    result = _train(str(_config(tmp_path, report=True)))
    assert result.exit_code == 130, result.output
    text = " ".join(result.output.split())
    assert "ERROR" not in text and "failed in on_fit_end" not in text
    assert "babysit report" in text and "progress saved in" in text
    assert (tmp_path / "runs" / "digits" / "checkpoints" / "last.pt").is_file()


# --- Ctrl-C while the command's modules load ----------------------------------------------------------------
def test_ctrl_c_while_the_cli_loads_is_one_line_and_130(monkeypatch, capsys) -> None:
    from babysit import _launch

    class Loading(types.ModuleType):
        def __getattr__(self, name):
            if name == "main":  # Ctrl-C lands while the command's modules load
                raise KeyboardInterrupt
            raise AttributeError(name)

    monkeypatch.setitem(sys.modules, "babysit.cli", Loading("babysit.cli"))
    with pytest.raises(SystemExit) as stop:
        _launch.main()
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted:")


# --- diagnose: one learning rate per diagnosis -------------------------------------------------------------
def test_diagnose_recommends_one_learning_rate(tmp_path) -> None:
    import re

    config = _config(tmp_path, epochs=3)
    _train(str(config), "--set", "optimizer.lr=20")  # diverges: the rate is at fault
    result = runner.invoke(app, ["diagnose", str(tmp_path / "runs" / "digits"), "--verbose"],
                           env={"COLUMNS": "400"})
    text = " ".join(result.output.split())
    tried = set(re.findall(r"try lr ([0-9.e+-]+\d)", text))
    fixed = set(re.findall(r"optimizer\.lr = ([0-9.e+-]+\d)", text))
    assert tried and fixed, text
    assert {float(x) for x in tried | fixed} == {float(next(iter(tried)))}, text
