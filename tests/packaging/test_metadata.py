"""One version, one license, one API reference: the package metadata and the docs agree with the code."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import babysit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_written_once_and_installed_as_written() -> None:
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "babysit.__version__"}
    # the installed metadata (what pip and importlib.metadata report) is the package's own __version__
    assert importlib.metadata.version("babysit") == babysit.__version__


def test_license_file_is_the_mit_license_pyproject_declares() -> None:
    assert PYPROJECT["project"]["license"] == "MIT" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_console_script_is_the_launcher_that_names_the_cli_extra() -> None:
    assert PYPROJECT["project"]["scripts"] == {"babysit": "babysit._launch:main"}


def test_api_reference_documents_every_public_name() -> None:
    pages = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs/api").glob("*.md"))
    documented = set(re.findall(r"^::: babysit\.(\w+)", pages, re.M))
    assert sorted(set(babysit.__all__) - {"__version__"} - documented) == []
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert [p.name for p in (ROOT / "docs/api").glob("*.md") if f"api/{p.name}" not in nav] == []
