"""The README's command-line block is true: its configs exist, its options exist, and every run folder it names
is the one its own ``train`` and ``search`` commands create (run here, shortened, in an empty folder)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from babysit.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The command line\s+```bash\n(.*?)```", text, re.S)
    assert block is not None, "README.md lost its '## The command line' block"
    commands = []
    for line in filter(str.strip, block.group(1).splitlines()):
        code, _, comment = line.partition(" # ")
        commands.append([*shlex.split(code), "#", *comment.split()])  # words of the comment after "#"
    return commands


COMMANDS = _readme_commands()


def _code(words: list[str]) -> list[str]:
    return words[: words.index("#")]


def test_every_config_and_option_in_the_readme_exists() -> None:
    group = typer.main.get_command(app)
    for words in map(_code, COMMANDS):
        assert words[0] == "babysit", words
        command = group.commands[words[1]]  # type: ignore[attr-defined]
        options = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", ()))}
        assert {w.partition("=")[0] for w in words if w.startswith("--")} <= options, words
        assert [w for w in words if w.startswith("examples/") and not (ROOT / w).is_file()] == []


def test_every_run_folder_the_readme_names_is_what_its_commands_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the README's paths are relative to where the commands run
    train = runner.invoke(app, ["train", str(ROOT / "examples/digits_mlp.toml"), "--set", "train.epochs=1",
                                "--no-progress"])
    assert train.exit_code in (0, 1), train.output  # 1: a finding after one epoch, still a run folder
    search = runner.invoke(app, ["search", str(ROOT / "examples/digits_search.toml"), "--trials", "1",
                                 "--budget-epochs", "1", "--no-progress"])
    assert search.exit_code == 0, search.output
    named = {w.rstrip("/") for words in COMMANDS for w in words if w.startswith("runs/") and "<" not in w}
    assert named, "the README names no run folder"
    assert sorted(p for p in named if not (tmp_path / p).is_dir()) == []
    assert (tmp_path / "runs/digits_mlp/report.html").is_file()  # "(history, checkpoints, report)"
    # the README's commands on those folders work as written (--open left out: no browser here)
    for words in map(_code, COMMANDS):
        if words[1] in ("diagnose", "export", "report") or words[1:3] == ["search", "status"]:
            args = [w for w in words[1:] if w != "--open"]
            result = runner.invoke(app, args)
            assert result.exit_code in ((0, 1) if words[1] == "diagnose" else (0,)), (args, result.output)
