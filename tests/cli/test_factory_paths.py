"""A config's ``"package.module:function"`` factory is found beside the config or in the current folder without
``PYTHONPATH=.``, and ``[model.args]`` reaches the factory as keyword arguments."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from babysit.cli import app

runner = CliRunner()

FACTORY = '''
from torch import nn

CALLS = []

def build(input_shape, num_classes, width=3, depth=1):
    CALLS.append({"input_shape": tuple(input_shape), "num_classes": num_classes, "width": width, "depth": depth})
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1], width), nn.ReLU(), nn.Linear(width, num_classes))
'''

CONFIG = '''
name = "factory"
runs_dir = "{runs}"
[data]
source = "spiral"
[model]
kind = "{module}:build"
args = {{ width = 7, depth = 2 }}
[train]
epochs = 1
monitor = false
report = false
'''


@pytest.fixture
def module_name(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(sys, "path", list(sys.path))  # whatever a test appends is taken back
    name = f"factory_{uuid.uuid4().hex[:8]}"
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("where", ["beside the config", "in the current folder"])
def test_factory_found_without_pythonpath_and_args_reach_it(
    where: str, module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "config.toml").write_text(textwrap.dedent(CONFIG.format(runs=tmp_path / "runs", module=module_name)))
    (project if where == "beside the config" else elsewhere).joinpath(f"{module_name}.py").write_text(FACTORY)
    monkeypatch.chdir(elsewhere)
    assert not any(Path(p or ".").resolve() in (project, elsewhere) for p in sys.path)  # no PYTHONPATH=.
    result = runner.invoke(app, ["train", str(project / "config.toml"), "--no-progress"])
    assert result.exit_code in (0, 1), result.output  # 1: a finding after one epoch; the run itself trained
    calls = sys.modules[module_name].CALLS
    assert calls == [{"input_shape": (2,), "num_classes": 3, "width": 7, "depth": 2}]


def test_missing_factory_module_names_where_it_was_looked_for(
    module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "config.toml").write_text(textwrap.dedent(CONFIG.format(runs=tmp_path / "runs", module=module_name)))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "config.toml", "--no-progress"])
    assert result.exit_code == 2
    assert module_name in result.output and "config's folder" in " ".join(result.output.split())


def test_a_missing_import_inside_the_factory_module_is_named_not_hidden(
    module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "config.toml").write_text(textwrap.dedent(CONFIG.format(runs=tmp_path / "runs", module=module_name)))
    (tmp_path / f"{module_name}.py").write_text("import not_installed_package_xyz\n" + FACTORY)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "config.toml", "--no-progress"])
    assert result.exit_code == 2 and "not_installed_package_xyz" in result.output
