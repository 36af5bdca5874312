"""What ``pip install babysit`` brings and what each extra adds: pyproject.toml and babysit/_extras.py agree, the
``dev`` extra installs every other one, the core runs with every optional package missing, and each feature of a
missing extra fails with the command that installs it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from babysit._extras import EXTRAS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
OPTIONAL = PROJECT["optional-dependencies"]
MODULE_OF = {"scikit-learn": "sklearn", "tomli-w": "tomli_w"}  # distribution name -> the module it installs
TOOLS = {"pytest", "hypothesis", "ruff", "mypy", "mkdocs", "mkdocstrings"}  # dev's own, not features


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower()  # type: ignore[union-attr]


def _expand(extra: str) -> set[str]:
    """The distributions an extra installs, the babysit[...] extras it names included."""
    names: set[str] = set()
    for requirement in OPTIONAL[extra]:
        inner = re.fullmatch(r"babysit\[([\w,\s-]+)\]", requirement.split(";")[0].strip())
        if inner:
            for other in inner.group(1).split(","):
                names |= _expand(other.strip())
        else:
            names.add(_name(requirement))
    return names


def test_core_is_what_monitor_fit_and_gradcheck_need() -> None:
    assert sorted(_name(r) for r in PROJECT["dependencies"]) == ["numpy", "rich", "torch"]


def test_extras_module_knows_every_package_each_extra_installs() -> None:
    assert set(EXTRAS) <= set(OPTIONAL)
    for extra, modules in EXTRAS.items():
        wanted = {MODULE_OF.get(d, d).replace("-", "_") for d in _expand(extra)}
        assert wanted <= set(modules), (extra, wanted - set(modules))


def test_dev_installs_every_extra_so_make_test_and_make_demo_have_everything() -> None:
    everything = set().union(*(_expand(e) for e in OPTIONAL if e != "dev"))
    assert everything <= _expand("dev"), everything - _expand("dev")
    assert _expand("dev") >= TOOLS


def test_core_runs_without_optional_packages_and_each_feature_names_its_extra(tmp_path: Path) -> None:
    blocked = sorted({m for modules in EXTRAS.values() for m in modules} - {"jinja2"})  # torch itself needs jinja2
    code = textwrap.dedent(f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None  # "import name" now fails as if the package were not installed
        import torch, torch.nn.functional as F
        import babysit
        from babysit._extras import MissingExtraError
        from babysit._launch import main

        X, y = torch.randn(60, 4, generator=torch.Generator().manual_seed(0)), torch.arange(60) % 3
        model = babysit.models.build("mlp", input_shape=(4,), num_classes=3, hidden=[8], seed=0)
        h = babysit.fit(model, (X[:45], y[:45]), (X[45:], y[45:]), epochs=1, run_dir="run")
        assert h.status == "completed"
        assert babysit.gradcheck.check_module(model, F.cross_entropy, X[:3], y[:3]).ok
        for feature, extra in ((lambda: babysit.search, "search"), (lambda: babysit.data.load("digits"), "digits"),
                               (lambda: babysit.report("run"), "report"),
                               (lambda: __import__("babysit.config"), "config")):
            try:
                feature()
            except MissingExtraError as exc:
                assert isinstance(exc, ImportError)
                assert f"pip install 'babysit[{{extra}}]'" in str(exc), exc
                print("refused", extra)
        sys.argv = ["babysit", "--help"]
        try:
            main()
        except SystemExit as stop:
            print("cli exit", stop.code)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:5] == ["refused search", "refused digits", "refused report", "refused config",
                                           "cli exit 2"]
    assert "pip install 'babysit[cli]'" in proc.stderr
