#!/usr/bin/env bash
# Build babysit's wheel and install it, with its core dependencies only, into a fresh venv (no system site
# packages, nothing from this checkout on sys.path); then import it and smoke-run the monitor, fit and the
# gradient check, and check that a feature of a missing extra names the command that installs it.
# Usage: scripts/check_wheel.sh   (PYTHON, TORCH_SPEC and BUILD_PYTHON as in the Makefile; ~70-90 s on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC-torch==2.13.0}"   # a CPU build, as `make install` uses; empty: let pip choose
BUILD_PYTHON="${BUILD_PYTHON:-.venv/bin/python}"   # has setuptools: the wheel builds offline, without isolation
WORK="$(mktemp -d "${TMPDIR:-/tmp}/babysit-wheel.XXXXXX")"
trap '(rm -rf "$WORK" &)' EXIT  # in the background: removing torch's files takes longer than the check
started=$SECONDS

# 1. the wheel, from a copy of the tracked sources (a stale build/ or egg-info here cannot leak into it)
mkdir -p "$WORK/tree"
tar --exclude=__pycache__ --exclude='*.egg-info' -cf - pyproject.toml README.md LICENSE src | tar -xf - -C "$WORK/tree"
"$BUILD_PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/tree"
wheel=$(ls "$WORK"/dist/babysit-*.whl)
"$BUILD_PYTHON" - "$wheel" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["babysit/__init__.py", "babysit/py.typed", "babysit/reporting/templates/report.html"]
missing = [n for n in needed if n not in names]
missing += [] if any(n.endswith(".dist-info/licenses/LICENSE") for n in names) else ["LICENSE"]
assert not missing, f"the wheel lacks {missing}"
assert not any(n.startswith(("tests/", "src/")) for n in names), "the wheel carries files outside the package"
EOF
echo "wheel: $(basename "$wheel") ($((SECONDS - started)) s)"

# 2. a clean venv with the core only: torch first (the CPU build), then the wheel and what it requires
"$PYTHON" -m venv "$WORK/venv"
pip=("$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile)  # no .pyc: torch has thousands of files
if [ -n "$TORCH_SPEC" ]; then "${pip[@]}" "$TORCH_SPEC"; fi
"${pip[@]}" "$wheel"
echo "installed ($((SECONDS - started)) s)"

# 3. the smoke run, from an empty folder so only the installed copy can be imported
mkdir -p "$WORK/run"
cd "$WORK/run"
"$WORK/venv/bin/python" - <<'EOF'
import importlib.metadata, importlib.util
import torch
import torch.nn.functional as F
import babysit
from babysit._extras import MissingExtraError

assert "site-packages" in babysit.__file__, babysit.__file__
assert importlib.metadata.version("babysit") == babysit.__version__
for optional in ("optuna", "matplotlib", "sklearn", "pydantic", "typer"):  # the core brings none of them
    assert importlib.util.find_spec(optional) is None, f"{optional} came with the core install"

X, y = torch.randn(96, 6, generator=torch.Generator().manual_seed(0)), torch.arange(96) % 3
model = babysit.models.build("mlp", input_shape=(6,), num_classes=3, hidden=[16], seed=0)
h = babysit.fit(model, (X[:72], y[:72]), (X[72:], y[72:]), epochs=2, run_dir="run")
assert h.status == "completed" and len(h.epochs) == 2 and h.epochs[-1]["val_acc"] is not None
assert babysit.History.load("run").epochs[-1]["epoch"] == 2
report = babysit.gradcheck.check_module(model, F.cross_entropy, X[:3], y[:3])
assert report.ok, report
opt = torch.optim.SGD(model.parameters(), lr=0.1)
monitor = babysit.Monitor(model, opt, every=1)
for _ in range(3):
    loss = F.cross_entropy(model(X), y)
    opt.zero_grad(); loss.backward(); opt.step()
    monitor.step(loss)
monitor.end_epoch(train_acc=0.5, val_acc=0.5)
monitor.diagnose()
for feature, extra in ((lambda: babysit.search, "search"), (lambda: babysit.report("run"), "report"),
                       (lambda: babysit.data.load("digits"), "digits")):
    try:
        feature()
    except MissingExtraError as exc:
        assert f"pip install 'babysit[{extra}]'" in str(exc), exc
    else:
        raise AssertionError(f"the {extra} feature ran without its extra")
print("smoke run: fit, monitor, gradcheck and the missing-extra errors as expected")
EOF
set +e
hint=$("$WORK/venv/bin/babysit" --help 2>&1)
code=$?
set -e
[ "$code" -eq 2 ] && grep -q "pip install 'babysit\[cli\]'" <<<"$hint" || { echo "babysit without [cli]: $hint"; exit 1; }
echo "check_wheel: ok ($((SECONDS - started)) s)"
