"""Bad input through the real command line: every case ends as one line that names the problem (and the fix),
the documented exit code (2 bad input, 1 a run that went wrong), and no traceback.

In-process (typer's CliRunner) and fast: tiny spiral data, no training unless the case is about training.
``test_bad_input_subprocess.py`` runs a few of them as real processes, where a traceback would reach stderr.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from babysit.cli import app

runner = CliRunner()
HERE = Path(__file__).resolve().parent

BASE = """
name = "bad"
runs_dir = "{runs}"
[data]
source = "spiral"
[model]
kind = "mlp"
hidden = [8]
[train]
epochs = 1
batch_size = 64
monitor = false
report = false
[optimizer]
name = "sgd"
lr = 0.1
"""

SEARCH = """
[search]
strategy = "random"
trials = 2
[search.space]
"optimizer.lr" = {{loguniform = [1e-3, 1.0]}}
"""


def config(tmp: Path, text: str = BASE, extra: str = "", name: str = "bad.toml") -> Path:
    path = tmp / name
    path.write_text(text.format(runs=tmp / "runs") + extra.format(runs=tmp / "runs"))
    return path


def flat(text: str) -> str:
    """The output as one line: rich wraps long messages at the terminal's width."""
    return re.sub(r"\s+", " ", text)


@dataclass
class Case:
    id: str
    setup: Callable[[Path], list[str]]
    code: int
    phrases: tuple[str, ...]
    xfail: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _csv(tmp: Path, rows: list[str], name: str = "t.csv") -> str:
    (tmp / name).write_text("\n".join(rows) + "\n")
    return str(tmp / name)


def _table(labels: list[int], extra: list[str] | None = None) -> list[str]:
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{rng.random():.3f},{rng.random():.3f},{y}" for y in labels]
    return rows + (extra or [])


def _train(tmp: Path, *sets: str, text: str = BASE) -> list[str]:
    args = ["train", str(config(tmp, text)), "--no-progress"]
    for item in sets:
        args += ["--set", item]
    return args


def _source(path: str) -> str:
    return f'data.source="{path}"'


def _npz(tmp: Path, name: str, **arrays: object) -> str:
    np.savez(tmp / name, **arrays)
    return str(tmp / name)


def _random_bytes(tmp: Path) -> list[str]:
    (tmp / "noise.npz").write_bytes(np.random.default_rng(0).bytes(300))
    return _train(tmp, _source(str(tmp / "noise.npz")))


def _npy_as_npz(tmp: Path) -> list[str]:
    with open(tmp / "one.npz", "wb") as f:
        np.save(f, np.zeros((3, 2)))
    return _train(tmp, _source(str(tmp / "one.npz")))


def _truncated_zip(tmp: Path) -> list[str]:
    path = _npz(tmp, "cut.npz", X_train=np.zeros((10, 2)), y_train=np.arange(10) % 2, X_val=np.zeros((4, 2)),
                y_val=np.arange(4) % 2)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return _train(tmp, _source(path))


def _object_npz(tmp: Path) -> list[str]:
    path = tmp / "obj.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("X_train.npy", "w") as f:
        np.lib.format.write_array(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return _train(tmp, _source(str(path)))


def _run_with_history(tmp: Path, text: str, command: str) -> list[str]:
    folder = tmp / "runs" / "bad"
    folder.mkdir(parents=True)
    (folder / "history.json").write_text(text)
    if command == "train --resume":
        return ["train", str(config(tmp)), "--resume", "--no-progress"]
    return [command, str(folder)]


def _trained_then(tmp: Path, history: str) -> list[str]:
    """A real one-epoch run whose history (history.json, or the run log history.jsonl) is then damaged; resume it."""
    result = runner.invoke(app, _train(tmp))
    assert result.exit_code in (0, 1), result.output
    files = list((tmp / "runs" / "bad").glob("history.json*"))
    assert files
    for path in files:
        path.write_text(history)
    return ["train", str(tmp / "bad.toml"), "--resume", "--no-progress"]


def _search_folder_with_pointer(tmp: Path, storage: str) -> list[str]:
    folder = tmp / "s"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"name": "x", "storage": storage}))
    return ["search", "status", str(folder)]


def _damaged_study(tmp: Path) -> list[str]:
    folder = tmp / "s"
    folder.mkdir()
    (folder / "study.db").write_bytes(b"this is no database" * 40)
    return ["search", "status", str(folder)]


def _damaged_journal(tmp: Path, content: bytes) -> list[str]:
    folder = tmp / "s"
    folder.mkdir()
    (folder / "study.journal").write_bytes(content)
    return ["search", "status", str(folder)]


def _search(tmp: Path, *args: str, extra: str = SEARCH) -> list[str]:
    return ["search", str(config(tmp, BASE, extra)), "--no-progress", *args]


def _pg(password: str, host: str = "127.0.0.1", port: int = 54329) -> str:
    return f"postgresql://babysit:{password}@{host}:{port}/babysit_test"


CASES = [
    # --- the config file and --set -----------------------------------------------------------------------------
    Case("config-missing", lambda t: ["train", str(t / "nope.toml")], 2, ("does not exist",)),
    Case("config-not-toml", lambda t: ["train", str(config(t, "name = [unclosed"))], 2, ("not valid TOML",)),
    Case("config-unknown-key", lambda t: _train(t, "data.num_clases=3"), 2,
         ("unknown key `data.num_clases`", "Did you mean 'num_classes'")),
    Case("config-bad-value", lambda t: _train(t, 'train.epochs="x"'), 2, ("train.epochs", "'x'")),
    Case("set-without-equals", lambda t: _train(t, "optimizer.lr"), 2, ("not key=value",)),
    Case("set-into-a-value", lambda t: _train(t, "train.epochs.x=1"), 2, ("'epochs' is a value, not a section",)),
    Case("unknown-update-rule", lambda t: _train(t, "optimizer.name=adamm"), 2, ("[optimizer]", "adamm")),
    Case("num-classes-one", lambda t: _train(t, "data.num_classes=1"), 2,
         ("data.num_classes", "greater than or equal to 2")),
    Case("resume-without-run", lambda t: ["train", str(config(t)), "--resume"], 2, ("no run to resume",)),
    # --- data -----------------------------------------------------------------------------------------------------
    Case("data-file-missing", lambda t: _train(t, _source(str(t / "none.npz"))), 2, ("data file not found",)),
    Case("npz-random-bytes", _random_bytes, 2, ("not an .npz archive", "numpy.savez")),
    Case("npz-is-npy", _npy_as_npz, 2, ("a single .npy array",)),
    Case("npz-truncated", _truncated_zip, 2, ("damaged .npz archive",)),
    Case("npz-object-array", _object_npz, 2, ("object (pickled) array", "never unpickles")),
    Case("npz-missing-keys", lambda t: _train(t, _source(_npz(t, "k.npz", X_train=np.zeros((4, 2)),
                                                                y_train=np.arange(4) % 2))),
         2, ("is missing X_val, y_val",)),
    Case("csv-no-label-column", lambda t: _train(t, _source(_csv(t, ["a,b", "1,2", "3,4"]))), 2,
         ("no column named 'label'", "its columns are: a, b")),
    Case("csv-text-cell", lambda t: _train(t, _source(_csv(t, _table([0, 1] * 10, ["0.1,oops,1"])))), 2,
         ("column 'b' is not numeric", "line 22", "'oops'")),
    Case("csv-stray-label", lambda t: _train(t, _source(_csv(t, _table([0, 1, 2] * 20, ["0.5,0.5,7"])))), 2,
         ("label 7 is on line 62 only", "labels 3, 4, 5, 6 never occur", "data.num_classes = 8")),
    Case("csv-label-over-num-classes", lambda t: _train(t, _source(_csv(t, _table([0, 1, 2] * 20, ["0.5,0.5,7"]))),
                                                        "data.num_classes=3"),
         2, ("holds 7 (line 62)", "outside 0..2", "data.num_classes")),
    Case("csv-one-class", lambda t: _train(t, _source(_csv(t, _table([0] * 30)))), 2,
         ("single class", "at least two")),
    Case("csv-empty", lambda t: _train(t, _source(_csv(t, []))), 2, ("is empty",)),
    Case("csv-header-only", lambda t: _train(t, _source(_csv(t, ["a,b,label"]))), 2, ("no examples",)),
    Case("csv-binary", lambda t: (t.joinpath("b.csv").write_bytes(b"\xff\xfe\x00\x81" * 50),
                                  _train(t, _source(str(t / "b.csv"))))[1], 2, ("not a text CSV",)),
    Case("csv-nan", lambda t: _train(t, _source(_csv(t, _table([0, 1] * 10, ["nan,0.5,1"])))), 2,
         ("non-finite",)),
    Case("csv-negative-label", lambda t: _train(t, _source(_csv(t, _table([0, 1] * 10, ["0.5,0.5,-1"])))), 2,
         ("negative label -1",)),
    Case("csv-ragged-row", lambda t: _train(t, _source(_csv(t, _table([0, 1] * 10, ["0.5,1"])))), 2,
         ("line 22 has 2 fields but the header has 3",)),
    Case("digits-num-classes", lambda t: _train(t, 'data.source="digits"', "data.num_classes=3"), 2,
         ("digits has 10 classes",)),
    Case("spiral-classes-disagree", lambda t: _train(t, "data.classes=3", "data.num_classes=4"), 2,
         ("classes=3 and num_classes=4 disagree",)),
    Case("unknown-source", lambda t: _train(t, 'data.source="digitz"'), 2,
         ("unknown data source 'digitz'", "Did you mean 'digits'")),
    Case("fractions-leave-nothing", lambda t: _train(t, "data.val_fraction=0.6", "data.test_fraction=0.5"), 2,
         ("leave nothing for training",)),
    Case("data-factory-missing", lambda t: _train(t, 'data.source="no_such_module_x:data"'), 2,
         ("cannot import module 'no_such_module_x'",)),
    Case("data-factory-raises", lambda t: _train(t, 'data.source="bad_input_factories:raising_data"'), 2,
         ("raised RuntimeError", "offline")),
    Case("data-factory-one-class", lambda t: _train(t, 'data.source="bad_input_factories:one_class_data"'), 2,
         ("single class",)),
    Case("data-factory-negative-label",
         lambda t: _train(t, 'data.source="bad_input_factories:datasets_with_a_bad_label"'), 2, ("negative label",)),
    # --- models -------------------------------------------------------------------------------------------------
    Case("model-factory-missing", lambda t: _train(t, 'model.kind="no_such_module_y:build"'), 2,
         ("cannot import module 'no_such_module_y'",)),
    Case("model-wrong-width", lambda t: _train(t, 'model.kind="bad_input_factories:wide_model"'), 2,
         ("cannot take inputs shaped (N, 2)", "shapes cannot be multiplied")),
    Case("model-flat-output", lambda t: _train(t, 'model.kind="bad_input_factories:flat_model"'), 2,
         ("returns scores shaped (2,)", "expected (2, 3)")),
    Case("model-float64", lambda t: _train(t, 'model.kind="bad_input_factories:double_model"'), 2,
         ("dtype", "Double")),
    Case("model-not-a-module", lambda t: _train(t, 'model.kind="bad_input_factories:not_a_model"'), 2,
         ("expected a torch.nn.Module",)),
    # --- run folders: history.json ----------------------------------------------------------------------------------
    Case("diagnose-truncated-history", lambda t: _run_with_history(t, '{"status": "comp', "diagnose"), 2,
         ("not valid JSON",)),
    Case("diagnose-empty-history-named", lambda t: _run_with_history(t, "", "diagnose"), 2, ("history.json", "empty")),
    Case("diagnose-list-history", lambda t: _run_with_history(t, "[1, 2]", "diagnose"), 2, ("history.json",)),
    Case("diagnose-wrong-types", lambda t: _run_with_history(t, '{"status": 5, "epochs": "x"}', "diagnose"), 2,
         ("history.json", "epochs")),
    Case("report-truncated-history", lambda t: _run_with_history(t, '{"status": "comp', "report"), 2,
         ("not valid JSON",)),
    Case("resume-damaged-history", lambda t: _trained_then(t, "garbage"), 2, ("history.json",)),
    Case("report-no-run", lambda t: ["report", str(t)], 2, ("no history.json",)),
    # --- search -----------------------------------------------------------------------------------------------------
    Case("search-no-space", lambda t: _search(t, extra="[search]\nstrategy = \"random\"\n"), 2, ("no search space",)),
    Case("search-space-typo", lambda t: _search(t, extra=SEARCH.replace("optimizer.lr", "optimizer.lrr")), 2,
         ("the search space does not fit the config",)),
    Case("search-status-empty-folder", lambda t: ["search", "status", str(t)], 2, ("holds no search",)),
    Case("search-status-planted-url",
         lambda t: _search_folder_with_pointer(t, f"sqlite:///{t}/planted/deep/new.db"), 2,
         ("opens only URLs given to it", "--storage")),
    Case("search-status-damaged-db", _damaged_study, 2, ("file is not a database",)),
    Case("search-status-damaged-journal", lambda t: _damaged_journal(t, b"this is no journal\nreally not\n"), 2,
         ("is not a study journal", "JSONDecodeError")),
    Case("search-status-journal-without-a-study", lambda t: _damaged_journal(t, b"this is no journal" * 40), 2,
         ("is not a study journal", "no study in it")),
    Case("search-unparseable-url", lambda t: _search(t, "--storage", "postgresql://u:pw@host:notaport/db"), 2,
         ("not a storage URL",)),
    Case("search-unknown-scheme", lambda t: _search(t, "--storage", "mongodb://u:pw@host/db"), 2,
         ("not a storage URL", "mongodb://u:***@host/db")),
    Case("search-unknown-host", lambda t: _search(t, "--storage", _pg("pw", host="no-such-host.invalid")), 2,
         ("cannot find the study database's host",)),
    Case("search-unset-env", lambda t: _search(t, "--storage", "${BABYSIT_NO_SUCH_VAR}"), 2,
         ("BABYSIT_NO_SUCH_VAR", "not set")),
    Case("worker-without-space", lambda t: ["search", str(config(t, BASE, "[search]\nstorage = \"sqlite:///"
                                                                   "{runs}/x.db\"\n")), "--worker"], 2,
         ("needs the config's [search.space]",)),
    Case("gradcheck-missing-file", lambda t: ["gradcheck", str(t / "nofile.toml")], 2, ("no such file",)),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)]
                                               if c.xfail else []) for c in CASES])
def test_bad_input_is_one_clear_line(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))  # bad_input_factories
    monkeypatch.chdir(tmp_path)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    args = case.setup(tmp_path)
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    text = flat(result.output)
    # the documented exit code, reached through babysit's own handling (never an escaped exception)
    assert result.exit_code == case.code, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    # one line that names the problem, and no traceback
    assert "Traceback" not in text and 'File "' not in text, text
    for phrase in case.phrases:
        assert phrase.lower() in text.lower(), f"{phrase!r} not in: {text}"
    assert text.count("error:") == 1, text


def test_there_are_at_least_40_cli_cases() -> None:
    assert len(CASES) >= 40


def test_status_with_a_planted_url_creates_nothing(tmp_path: Path) -> None:
    args = _search_folder_with_pointer(tmp_path, f"sqlite:///{tmp_path}/planted/deep/new.db")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    # nothing was created or connected to: the folder and file the planted URL names do not exist
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "planted").exists()


def test_a_loss_of_500_prints_the_findings_and_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, _train(tmp_path, "optimizer.lr=30", "train.epochs=3"), env={"COLUMNS": "200"})
    text = flat(result.output)
    # the run went wrong: exit 1, and each finding is printed with what was seen and what to try
    assert result.exit_code == 1, text
    assert "loss_diverged" in text and "the loss exploded to" in text and "try: lower the learning rate" in text
    assert "Traceback" not in text


def test_data_num_classes_is_accepted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    csv = _csv(tmp_path, _table([0, 1, 2] * 20))
    result = runner.invoke(app, _train(tmp_path, _source(csv), "data.num_classes=4"), env={"COLUMNS": "200"})
    # data.num_classes is a key of [data]: a 4-class model on 3-class data, with a warning about class 3
    assert result.exit_code in (0, 1), flat(result.output)
    from babysit.history import History

    assert History.load(tmp_path / "runs" / "bad").meta["data"]["num_classes"] == 4
    assert "class 3 has no training example" in flat(result.output + caplog.text)


def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    args = _run_with_history(tmp_path, '{"status": "comp', "diagnose")
    result = runner.invoke(app, ["--debug", *args])
    assert result.exit_code == 2 and "Traceback" in result.output and "error:" in result.output


@pytest.fixture(autouse=True)
def _no_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BABYSIT_STORAGE", raising=False)
    os.environ.pop("BABYSIT_DEBUG", None)
