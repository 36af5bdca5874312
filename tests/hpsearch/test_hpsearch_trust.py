"""Trust boundaries of a shared study (``babysit.hpsearch._trust``): whoever can write to the study database can
change numbers, not make the search import code or read and write files outside its folder.

Each test takes a real finished search on a real SQLite study, alters the study the way a hostile collaborator
could (a factory as a stage's option, an undeclared parameter, absolute and ``..`` trial folders), and checks that
the master, a joining worker and the ensemble refuse it with a clear error and import nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

import babysit
from babysit.cli import app
from babysit.hpsearch import SearchResult, evaluate_ensemble
from babysit.hpsearch._errors import UntrustedStudyError
from babysit.hpsearch._join import join_search
from babysit.hpsearch._states import STATE_FILE, TrialStates
from babysit.hpsearch._storage import default_url, make_storage

HERE = Path(__file__).resolve().parent
EVIL = "trust_evil:build"

CONFIG = """
name = "trust"
runs_dir = "{runs}"
[data]
source = "spiral"
[model]
kind = "mlp"
hidden = [8]
[train]
epochs = 1
monitor = false
report = false
[optimizer]
name = "sgd"
lr = 0.1
[search]
strategy = "random"
trials = 2
[search.space]
"optimizer.lr" = {{loguniform = [1e-2, 1.0]}}
{extra}
"""


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where trust_evil leaves a file if it is ever imported; the module is importable (tests/hpsearch)."""
    path = tmp_path / "IMPORTED"
    monkeypatch.setenv("BABYSIT_TRUST_MARKER", str(path))
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("trust_evil", None)
    yield path
    assert "trust_evil" not in sys.modules, "the planted factory was imported"
    assert not path.exists(), "the planted factory was imported"


def _finished_search(tmp: Path, extra: str = "") -> tuple[Path, Path]:
    config = tmp / "trust.toml"
    config.write_text(CONFIG.format(runs=tmp / "runs", extra=extra))
    babysit.search(str(config), progress=False, ensemble=0)
    return config, tmp / "runs" / "trust-search"


def _study(folder: Path) -> Any:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name="trust", storage=make_storage(default_url(folder)))


def _reopen_with(folder: Path, name: str, spec: dict[str, Any]) -> None:
    """Make the finished search look like one whose stage 1 still runs, with ``name`` set to ``spec``."""
    study = _study(folder)
    stages = study.user_attrs["babysit:stages"]
    stages[-1] = {**stages[-1], "status": "running", "trials": 4, "space": {**stages[-1]["space"], name: spec}}
    study.set_user_attr("babysit:stages", stages)
    study.set_user_attr("babysit:done", False)


def test_a_worker_refuses_a_factory_the_study_names(tmp_path: Path, marker: Path) -> None:
    config, folder = _finished_search(tmp_path)
    _reopen_with(folder, "model.kind", {"kind": "choice", "options": [EVIL], "scale": "categorical"})
    with pytest.raises(UntrustedStudyError, match=r"names the parameter 'model\.kind', which this search does not "
                                                  r"declare \(it declares optimizer\.lr\)"):
        join_search(str(config), search_dir=folder, idle_timeout_s=5)
    # the CLI's worker and the master resuming the search say the same, in one line, exit 2
    worker = CliRunner().invoke(app, ["search", str(config), "--worker", "--idle-timeout", "5"], env={"COLUMNS": "200"})
    assert worker.exit_code == 2 and "does not declare" in worker.output and "Traceback" not in worker.output
    master = CliRunner().invoke(app, ["search", str(config), "--no-progress"], env={"COLUMNS": "200"})
    assert master.exit_code == 2 and "does not declare" in " ".join(master.output.split()), master.output


def test_a_declared_choice_accepts_only_its_own_options(tmp_path: Path, marker: Path) -> None:
    extra = '"model.kind" = {choice = ["mlp", "linear"]}'
    config, folder = _finished_search(tmp_path, extra)
    _reopen_with(folder, "model.kind", {"kind": "choice", "options": ["mlp", EVIL], "scale": "categorical"})
    with pytest.raises(UntrustedStudyError, match=r"offers 'trust_evil:build' for 'model\.kind', which is not among "
                                                  r"the declared options \['mlp', 'linear'\]"):
        join_search(str(config), search_dir=folder, idle_timeout_s=5)


def test_a_data_path_in_the_study_is_refused(tmp_path: Path, marker: Path) -> None:
    config, folder = _finished_search(tmp_path)
    _reopen_with(folder, "data.source", {"kind": "choice", "options": ["/etc/passwd.csv"], "scale": "categorical"})
    with pytest.raises(UntrustedStudyError, match=r"data\.source"):
        babysit.search(str(config), progress=False)


def test_a_changed_sampler_name_or_range_kind_is_refused(tmp_path: Path) -> None:
    config, folder = _finished_search(tmp_path)
    study = _study(folder)
    stages = study.user_attrs["babysit:stages"]
    study.set_user_attr("babysit:stages", [{**stages[0], "sampler": "trust_evil:build"}])
    with pytest.raises(UntrustedStudyError, match="names the sampler 'trust_evil:build'"):
        babysit.search(str(config), progress=False)
    study.set_user_attr("babysit:stages", [{**stages[0], "space": {"optimizer.lr": {"kind": "uniform", "low": 0.1,
                                                                                     "high": 0.2}}}])
    with pytest.raises(UntrustedStudyError, match="keeps its scale and limits"):
        babysit.search(str(config), progress=False)


def test_trial_folders_outside_the_search_folder_are_never_read_or_removed(tmp_path: Path, marker: Path) -> None:
    _config, folder = _finished_search(tmp_path)
    # a folder outside the search, dressed as a trial: a config naming the planted factory, a state file
    outside = tmp_path / "outside"
    (outside / "checkpoints").mkdir(parents=True)
    (outside / "config.toml").write_text(CONFIG.format(runs=tmp_path, extra="").replace('kind = "mlp"',
                                                                                          f'kind = "{EVIL}"'))
    (outside / STATE_FILE).write_bytes(b"precious")
    complete = [t for t in _study(folder).trials if t.state == optuna.trial.TrialState.COMPLETE]
    # finished trials are rewritten behind Optuna's back: their results in the journal name the planted folders
    journal = folder / "study.journal"
    planted = dict(zip((t._trial_id for t in complete), (str(outside), "../../outside")))
    lines = []
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("trial_id") in planted and "result" in entry.get("user_attr", {}):
            entry["user_attr"]["result"]["run_dir"] = planted[entry["trial_id"]]
        lines.append(json.dumps(entry))
    journal.write_text("\n".join(lines) + "\n")
    # the records keep no such folder, so the report and the ensemble have nothing outside to read
    records = babysit.hpsearch.results.records_from_study(_study(folder).trials)
    assert all(r.run_dir is None for r in records if r.state == "complete")
    saved = SearchResult.load(folder)
    saved.trials = records
    with pytest.raises(babysit.hpsearch.SearchError, match="no complete trial with a checkpoint"):
        evaluate_ensemble(saved, 2)
    # a kept state is looked for, and dropped, only inside trials/
    states = TrialStates(folder)
    assert states.get(0, str(outside)) is None and states.get(0, "../../outside") is None
    states.drop(0, "../../outside")
    states.drop(0, str(outside))
    assert (outside / STATE_FILE).read_bytes() == b"precious"


def test_status_opens_the_study_read_only(tmp_path: Path) -> None:
    _config, folder = _finished_search(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != "study.db-shm"}
    result = CliRunner().invoke(app, ["search", "status", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != "study.db-shm"}
    # nothing written, nothing created
    assert after == before
