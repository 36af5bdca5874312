"""What ``--help`` shows is what the command takes: no ``[...]`` swallowed by rich markup, and flags that read as
flags (no ``<bool>`` after them, an ``--x/--no-x`` pair for every on/off setting). New commands are checked too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from rich.text import Text
from typer.core import TyperOption
from typer.testing import CliRunner

from babysit.cli import app

runner = CliRunner()
SWITCHES = {"--help", "--version", "--verbose", "--debug", "--worker"}  # actions or modes, not on/off settings


def _commands() -> Iterator[tuple[list[str], typer.core.TyperCommand]]:
    group = typer.main.get_command(app)
    yield [], group  # type: ignore[misc]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        yield [name], command


COMMANDS = list(_commands())


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "babysit" for p, _ in COMMANDS])
def test_no_help_text_loses_brackets_to_rich_markup(path: list[str], command: typer.core.TyperCommand) -> None:
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    for text in texts:
        # rich reads "[search]" as a style tag and drops it; "\[search]" is shown as written
        assert Text.from_markup(text).plain == text.replace("\\[", "["), text


def test_search_help_names_the_search_table() -> None:
    result = runner.invoke(app, ["search", "--help"])
    assert result.exit_code == 0
    assert "[search]" in result.output and "with a  table" not in result.output


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "babysit" for p, _ in COMMANDS])
def test_flags_show_no_value_and_settings_have_an_off_form(path: list[str], command: typer.core.TyperCommand) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output  # a flag takes no value: "--resume=true" is refused
    flags = [p for p in command.params if isinstance(p, TyperOption) and p.is_flag]
    settings = [p for p in flags if not SWITCHES & set(p.opts)]
    # every on/off setting can be stated either way, e.g. --resume / --no-resume
    assert [p.opts for p in settings if not any(o.startswith("--no-") for o in p.secondary_opts)] == []
    for p in settings:
        assert all(o in result.output for o in (*p.opts, *p.secondary_opts))


def test_off_form_of_a_flag_is_accepted_and_a_value_is_refused(tmp_path: Path) -> None:
    refused = runner.invoke(app, ["train", str(tmp_path / "none.toml"), "--resume=true"])
    assert refused.exit_code == 2 and "does not take a value" in refused.output
    accepted = runner.invoke(app, ["train", str(tmp_path / "none.toml"), "--no-resume", "--no-overwrite"])
    # parsed: the error is about the missing config file, not the flags
    assert accepted.exit_code == 2 and "none.toml" in accepted.output and "No such option" not in accepted.output
