"""`import babysit` is light: Optuna, SQLAlchemy, matplotlib and scikit-learn load only when a search, a
report or the digits data is used. Each check runs in a fresh interpreter, since this one has imported them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("optuna", "sqlalchemy", "matplotlib", "sklearn")


def run_fresh(code: str, tmp_path: Path) -> dict[str, list[str]]:
    """Run ``code`` in a new interpreter; ``loaded(label)`` in it records which HEAVY packages are imported."""
    prelude = textwrap.dedent(f"""
        import json, sys
        HEAVY = {HEAVY!r}
        SEEN = {{}}
        def loaded(label):
            SEEN[label] = sorted(h for h in HEAVY if h in sys.modules)
    """)
    coda = f"\nopen({str(tmp_path / 'seen.json')!r}, 'w').write(json.dumps(SEEN))\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code) + coda], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "seen.json").read_text())


@pytest.mark.parametrize("name", HEAVY)
def test_heavy_packages_are_installed(name: str) -> None:
    # otherwise "not in sys.modules" below would hold for the wrong reason
    assert importlib.util.find_spec(name) is not None


def test_import_babysit_loads_no_heavy_package_and_search_loads_optuna(tmp_path: Path) -> None:
    seen = run_fresh("""
        import inspect
        import babysit
        loaded("import")
        lr = babysit.space.loguniform(1e-4, 1.0)  # a range is plain Python
        assert lr.position(1e-2) == 0.5
        names = (babysit.__all__, dir(babysit), babysit.hpsearch.__all__, babysit.reporting.__all__)
        loaded("space")
        lr.distribution()  # what Optuna samples from
        loaded("distribution")
        search = babysit.search
        from babysit.hpsearch._search import search as real
        assert search is real is babysit.hpsearch.search and "search" in dir(babysit)
        assert "budget_epochs" in inspect.signature(search).parameters and "coarse to fine" in search.__doc__
        loaded("search")
    """, tmp_path)
    assert seen["import"] == []
    assert seen["space"] == []
    assert "optuna" in seen["distribution"]
    assert "optuna" in seen["search"] and "matplotlib" not in seen["search"]


def test_report_loads_matplotlib_only_when_called(tmp_path: Path) -> None:
    folder = tmp_path / "search-run"
    folder.mkdir()
    trials = [{"number": i, "params": {"lr": 10.0 ** -i}, "value": 0.5 + 0.1 * i, "state": "complete"}
              for i in range(3)]
    (folder / "search.json").write_text(json.dumps({"trials": trials}))
    seen = run_fresh(f"""
        import babysit
        report = babysit.report
        assert "run folder" in report.__doc__
        loaded("import")
        path = report({str(folder)!r})
        assert path.name == "report.html" and path.is_file()
        loaded("report")
    """, tmp_path)
    assert seen["import"] == []
    assert "matplotlib" in seen["report"]
